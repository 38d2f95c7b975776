import Datasets
import NN

extension Network {
    /// Summed loss and correct count over examples `range` of `set`, in chunks of the network's
    /// batch capacity, through the caller's input and label buffers (the workers reuse theirs).
    public func evaluate(_ set: LabeledImages, range: Range<Int>, x: UnsafeMutablePointer<Float>,
                         y: UnsafeMutablePointer<Int32>) -> (lossSum: Double, correct: Int) {
        var total = (lossSum: 0.0, correct: 0)
        forEachChunk(of: set, range: range, x: x, y: y) { count in
            let result = evaluate(x, labels: y, batch: count)
            total = (total.lossSum + result.lossSum, total.correct + result.correct)
        }
        return total
    }

    /// Mean loss and accuracy over `set`.
    public func score(_ set: LabeledImages) -> (loss: Double, accuracy: Double) {
        let total = withBuffers { x, y in evaluate(set, range: 0..<set.count, x: x, y: y) }
        return (total.lossSum / Double(set.count), Double(total.correct) / Double(set.count))
    }

    /// The most probable class of every image of `set`.
    public func classify(_ set: LabeledImages) -> [Int] {
        var predictions: [Int] = []
        let classes = architecture.classes
        withBuffers { x, y in
            forEachChunk(of: set, range: 0..<set.count, x: x, y: y) { count in
                forward(x, batch: count)
                for b in 0..<count {
                    let p = probabilities + b * classes
                    predictions.append((0..<classes).max { p[$0] < p[$1] }!)
                }
            }
        }
        return predictions
    }

    private func forEachChunk(of set: LabeledImages, range: Range<Int>, x: UnsafeMutablePointer<Float>,
                              y: UnsafeMutablePointer<Int32>, _ body: (Int) -> Void) {
        for start in stride(from: range.lowerBound, to: range.upperBound, by: maxBatch) {
            let count = min(maxBatch, range.upperBound - start)
            set.gather(start..<(start + count), into: x, labels: y)
            body(count)
        }
    }

    private func withBuffers<T>(_ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>) -> T) -> T {
        let x = UnsafeMutablePointer<Float>.allocate(capacity: maxBatch * inputCount)
        let y = UnsafeMutablePointer<Int32>.allocate(capacity: maxBatch)
        defer {
            x.deallocate()
            y.deallocate()
        }
        return body(x, y)
    }
}
