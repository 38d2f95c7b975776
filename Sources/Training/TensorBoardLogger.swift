import Foundation
import NN
import Reports

/// Rank 0's TensorBoard scalars, in an event file in the run directory: the train loss and
/// accuracy of the last `every` steps with the learning rate, images/s and mean reduction time
/// (at global steps), each epoch's metrics and validation, and the test result at the end.
/// A resumed run continues the same file from the checkpoint's step (no step twice).
final class TensorBoardLogger: TrainingObserver {
    let directory: String
    let every: Int
    private var writer: TensorBoardEventWriter?
    private var window = Totals()
    private var windowSteps = 0, windowReduce = 0.0
    private var windowStart = MonotonicClock.now
    /// The global step of the newest step: where epoch rows go.
    private var lastStep = 0

    init(directory: String, every: Int) { (self.directory, self.every) = (directory, every) }

    func runStarted(_ run: RunStart) throws {
        writer = try TensorBoardEventWriter(directory: directory, resumingAt: run.resumedFrom == nil ? nil : run.globalStep)
        (windowStart, lastStep) = (MonotonicClock.now, run.globalStep)
    }

    func stepEnded(_ step: StepReport) throws {
        window += step.batch
        windowSteps += 1
        windowReduce += step.timings.reduce
        lastStep = step.globalStep
        guard step.globalStep % every == 0 else { return }
        let now = MonotonicClock.now
        let means = window.means
        try writer?.write(step: step.globalStep, [
            ("train/loss", means.loss), ("train/accuracy", means.accuracy), ("train/learning_rate", step.learningRate),
            ("train/images_per_second", Double(window.count) / max(now - windowStart, 1e-9)),
            ("train/reduction_seconds", windowReduce / Double(windowSteps)),
        ])
        (window, windowSteps, windowReduce, windowStart) = (Totals(), 0, 0, now)
    }

    func epochEnded(_ row: EpochMetrics, finished: Bool) throws {
        var scalars = [("epoch/loss", row.loss), ("epoch/accuracy", row.accuracy), ("epoch/images_per_second", row.imagesPerSecond),
                       ("epoch/reduction_seconds", row.allreduceSeconds)]
        if let valLoss = row.valLoss, let valAccuracy = row.valAccuracy {
            scalars += [("epoch/val_loss", valLoss), ("epoch/val_accuracy", valAccuracy)]
        }
        try writer?.write(step: lastStep, scalars)
    }

    func evaluated(_ test: Totals.Means, step: Int) throws {
        try writer?.write(step: step, [("test/loss", test.loss), ("test/accuracy", test.accuracy)])
    }

    func runStopped(step: Int) throws { try writer?.close() }
    func runFinished(_ summary: RunSummary) throws { try writer?.close() }
}
