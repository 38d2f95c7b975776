import Collectives
import NN

/// Where a run stands: what a checkpoint saves and rank 0 broadcasts on resume, so training
/// continues at the exact next step with the epoch's running totals.
struct RunState {
    var epoch = 0, stepInEpoch = 0, globalStep = 0
    /// Totals of the epoch in progress and the seconds it has run so far.
    var epochTotals = Totals()
    var epochSeconds = 0.0
    var bestValidationAccuracy = -1.0
    /// Early stopping (Keras's EarlyStopping on val_loss): the best so far and epochs since.
    var bestValidationLoss = Double.infinity
    var epochsWithoutImprovement = 0
    /// The gradient reduction's own state (the exact reduction's scales).
    var reductionState: [Int] = []
    /// The rate each step of the epoch in progress ran with, recorded as it ran (not recomputed:
    /// a resume may change the schedule, and the record must say what was used).
    var epochLearningRates: [Float] = []
    /// Names the run across resumes, so a run prunes only its own checkpoints (rank 0's).
    var runID = ""

    /// Every rank takes rank 0's state (exact: each value is an integer or a double).
    mutating func broadcast(_ comm: Communicator) throws {
        var count = [Double(comm.isRoot ? reductionState.count : 0)]
        try comm.allreduce(&count, .sum)
        if !comm.isRoot { reductionState = Array(repeating: 0, count: Int(count[0])) }
        var values = [Double(epoch), Double(stepInEpoch), Double(globalStep), epochTotals.lossSum, epochTotals.correct,
                      Double(epochTotals.count), epochSeconds, bestValidationAccuracy, bestValidationLoss,
                      Double(epochsWithoutImprovement)] + reductionState.map(Double.init)
        if !comm.isRoot { values = values.map { _ in 0 } }
        try comm.allreduce(&values, .sum)
        (epoch, stepInEpoch, globalStep) = (Int(values[0]), Int(values[1]), Int(values[2]))
        epochTotals = Totals(lossSum: values[3], correct: values[4], count: Int(values[5]))
        epochSeconds = values[6]
        bestValidationAccuracy = values[7]
        (bestValidationLoss, epochsWithoutImprovement) = (values[8], Int(values[9]))
        reductionState = values[10...].map { Int($0) }
    }
}
