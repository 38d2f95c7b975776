import NN
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Keras-style epoch progress on stdout: `600/600 [====] - 12s 20ms/step - loss: ... `.
/// On a terminal the line is redrawn in place; otherwise only whole lines are printed.
struct Progress {
    let steps: Int
    let interactive: Bool
    private var lastDraw = 0.0

    /// `mpirun` hands its ranks a pseudo-terminal even when its own output is a file, so a
    /// multi-rank job always prints whole lines.
    init(epoch: Int, epochs: Int, steps: Int, ranks: Int) {
        self.steps = steps
        interactive = ranks == 1 && isatty(STDOUT_FILENO) != 0
        print("Epoch \(epoch + 1)/\(epochs)")
    }

    static func metrics(_ values: [(String, Double)]) -> String {
        values.map { " - \($0.0): \(String(format: "%.4f", $0.1))" }.joined()
    }

    private func bar(_ step: Int) -> String {
        let width = 30
        let done = steps == 0 ? width : width * step / steps
        if done >= width { return String(repeating: "=", count: width) }
        return String(repeating: "=", count: max(done - 1, 0)) + ">" + String(repeating: ".", count: width - max(done, 1))
    }

    /// `metrics` is only evaluated when the line is redrawn (at most 10 times a second).
    mutating func update(step: Int, elapsed: Double, metrics: @autoclosure () -> [(String, Double)]) {
        guard interactive, elapsed - lastDraw >= 0.1 || step == steps else { return }
        lastDraw = elapsed
        let eta = step > 0 ? elapsed / Double(step) * Double(steps - step) : 0
        let line = "\(step)/\(steps) [\(bar(step))] - ETA: \(Int(eta.rounded()))s" + Self.metrics(metrics())
        FileHandle.standardOutput.write(Data(("\r" + line + "\u{1B}[K").utf8))
    }

    func finish(step: Int, elapsed: Double, metrics: [(String, Double)]) {
        let perStep = step > 0 ? elapsed / Double(step) * 1000 : 0
        let line = "\(step)/\(steps) [\(bar(step))] - \(Int(elapsed.rounded()))s \(Int(perStep.rounded()))ms/step" + Self.metrics(metrics)
        print((interactive ? "\r" : "") + line + (interactive ? "\u{1B}[K" : ""))
        fflush(stdout)
    }
}

/// Rank 0's voice: a Keras progress line per epoch, then the test result.
final class ProgressPrinter: TrainingObserver {
    let epochs: Int, ranks: Int
    private var progress: Progress?

    init(epochs: Int, ranks: Int) { (self.epochs, self.ranks) = (epochs, ranks) }

    func runStarted(_ run: RunStart) {
        Banner.lines(run).forEach { print($0) }
        fflush(stdout)
    }

    func epochStarted(epoch: Int, steps: Int) {
        progress = Progress(epoch: epoch, epochs: epochs, steps: steps, ranks: ranks)
    }

    func stepEnded(_ step: StepReport) {
        progress?.update(step: step.step, elapsed: step.epochSeconds, metrics: step.epochTotals.means.progressMetrics)
    }

    func epochEnded(_ row: EpochMetrics, finished: Bool) {
        progress?.finish(step: row.steps, elapsed: row.seconds, metrics: row.progressMetrics)
    }

    func evaluated(_ test: Totals.Means, step: Int) {
        print("test loss: \(String(format: "%.4f", test.loss)) - test accuracy: \(String(format: "%.4f", test.accuracy))")
    }
}

extension Totals.Means {
    var progressMetrics: [(String, Double)] { [("loss", loss), ("accuracy", accuracy)] }
}

extension EpochMetrics {
    var progressMetrics: [(String, Double)] {
        var values = [("loss", loss), ("accuracy", accuracy)]
        if let valLoss, let valAccuracy { values += [("val_loss", valLoss), ("val_accuracy", valAccuracy)] }
        return values
    }
}
