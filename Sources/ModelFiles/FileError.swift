/// A model, checkpoint or output file that cannot be read or written; its description is the
/// one line the user sees, naming the file.
public struct FileError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
