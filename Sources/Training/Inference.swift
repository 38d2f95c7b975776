import Datasets
import NN

extension Network {
    /// Mean loss and accuracy over `set`.
    public func score(_ set: LabeledImages) -> (loss: Double, accuracy: Double) {
        var lossSum = 0.0, correct = 0
        forEachChunk(of: set) { x, y, count in
            let result = evaluate(x, labels: y, batch: count)
            lossSum += result.lossSum
            correct += result.correct
        }
        return (lossSum / Double(set.count), Double(correct) / Double(set.count))
    }

    /// The most probable class of every image of `set`.
    public func classify(_ set: LabeledImages) -> [Int] {
        var predictions: [Int] = []
        let classes = architecture.classes
        forEachChunk(of: set) { x, _, count in
            forward(x, batch: count)
            for b in 0..<count {
                let p = probabilities + b * classes
                predictions.append((0..<classes).max { p[$0] < p[$1] }!)
            }
        }
        return predictions
    }

    /// Feeds `set` through in chunks of the network's batch capacity.
    private func forEachChunk(of set: LabeledImages, _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>, Int) -> Void) {
        let x = UnsafeMutablePointer<Float>.allocate(capacity: maxBatch * inputCount)
        let y = UnsafeMutablePointer<Int32>.allocate(capacity: maxBatch)
        defer {
            x.deallocate()
            y.deallocate()
        }
        for start in stride(from: 0, to: set.count, by: maxBatch) {
            let count = min(maxBatch, set.count - start)
            set.gather(start..<(start + count), into: x, labels: y)
            body(x, y, count)
        }
    }
}
