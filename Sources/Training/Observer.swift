import NN

/// Everything besides the step itself hangs off this interface: the banner and progress, the
/// metrics files, TensorBoard, the checkpoint policy, the run's final files, the timeline's file.
/// (What every rank must do together, such as gathering timings, is RunObservation's.) The trainer calls its observers in order after each event; rank 0 has those
/// that print and write. Every method has an empty default.
public protocol TrainingObserver: AnyObject {
    func runStarted(_ run: RunStart) throws
    func epochStarted(epoch: Int, steps: Int) throws
    func stepEnded(_ step: StepReport) throws
    /// The epoch's row, validation included; `finished` is false when --max-steps cut it short.
    func epochEnded(_ row: EpochMetrics, finished: Bool) throws
    /// The test set's loss and accuracy, after the last epoch.
    func evaluated(_ test: Totals.Means, step: Int) throws
    /// A stop signal ended the run after `step`: the state is the one to resume from.
    func runStopped(step: Int) throws
    func runFinished(_ summary: RunSummary) throws
}

extension TrainingObserver {
    public func runStarted(_ run: RunStart) throws {}
    public func epochStarted(epoch: Int, steps: Int) throws {}
    public func stepEnded(_ step: StepReport) throws {}
    public func epochEnded(_ row: EpochMetrics, finished: Bool) throws {}
    public func evaluated(_ test: Totals.Means, step: Int) throws {}
    public func runStopped(step: Int) throws {}
    public func runFinished(_ summary: RunSummary) throws {}
}

/// What a run starts from, once every rank agrees.
public struct RunStart: Sendable {
    public var ranks: Int
    public var threads: Int
    public var parameterCount: Int
    public var runDirectory: String
    /// Where training starts: 0 for a fresh run, the checkpoint's position on resume.
    public var epoch: Int
    public var globalStep: Int
    public var resumedFrom: String?
    /// Host name of each rank.
    public var hosts: [String] = []
    /// The kernels the conv passes run on.
    public var kernelPath = Kernels.pathName
    public var model = Architecture.mnistReference.graph()
    public var dataDirectory = ""
    public var dataShape = ""
    public var dataFingerprint = ""
}

/// Seconds one rank spent in each phase of a step (forward and backward as worker 0 saw them);
/// `reduce` is the whole allreduce, waiting for the other ranks included. `start` is when the
/// step began, in seconds since the run's common origin (the timeline's clock).
public struct StepTimings: Sendable {
    public var start = 0.0
    public var data = 0.0, forward = 0.0, backward = 0.0, reduce = 0.0, update = 0.0
    /// Each bucket's sum: when it started and completed (MonotonicClock seconds), in start order.
    /// With overlap most of it runs during the backward pass; `reduce` is what is left after it.
    public var buckets: [(start: Double, end: Double)] = []
    public var compute: Double { forward + backward }
    public var total: Double { data + compute + reduce + update }
}

/// One finished step, as every rank sees it: the metrics are the global batch's.
public struct StepReport: Sendable {
    public var epoch: Int
    /// Steps done in this epoch, this one included.
    public var step: Int
    public var stepsInEpoch: Int
    public var globalStep: Int
    public var batch: Totals
    public var epochTotals: Totals
    public var epochSeconds: Double
    public var learningRate: Double
    public var timings: StepTimings
    /// A rank was signalled: the run stops after this step (`runStopped` follows).
    public var stopRequested: Bool
}
