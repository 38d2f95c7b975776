extension UnsafeMutablePointer {
    /// Memory for a tensor the kernels stream, 64-byte aligned: malloc's 16 bytes would split most
    /// 64-byte vector loads and stores across two cache lines, which costs an Intel core about a
    /// quarter of a first layer's conv + pooling.
    public static func tensor(capacity: Int) -> UnsafeMutablePointer<Pointee> {
        let count = Swift.max(capacity, 1)
        return UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Pointee>.stride, alignment: 64)
            .bindMemory(to: Pointee.self, capacity: count)
    }
}

extension UnsafeMutableBufferPointer {
    /// As `UnsafeMutablePointer.tensor`: parameters and gradients, which the kernels read too.
    public static func tensor(capacity: Int) -> UnsafeMutableBufferPointer<Element> {
        UnsafeMutableBufferPointer(start: UnsafeMutablePointer<Element>.tensor(capacity: capacity), count: capacity)
    }
}
