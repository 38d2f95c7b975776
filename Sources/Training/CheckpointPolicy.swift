/// When checkpoints are written: every `--checkpoint-every` steps within an epoch, at every
/// epoch end (also one cut short by --max-steps, so a longer run continues it), on a stop
/// signal, and `best.safetensors` with --save-best when validation accuracy improves.
final class CheckpointPolicy: TrainingObserver {
    unowned let trainer: Trainer
    var config: TrainingConfig { trainer.config }

    init(trainer: Trainer) { self.trainer = trainer }

    func stepEnded(_ step: StepReport) throws {
        guard !step.stopRequested, config.checkpointEvery > 0, step.globalStep % config.checkpointEvery == 0,
              step.step < step.stepsInEpoch else { return }
        _ = try trainer.writeCheckpoint()
    }

    func epochEnded(_ row: EpochMetrics, finished: Bool) throws {
        let isBest = finished && (row.valAccuracy ?? -1) > trainer.state.bestValidationAccuracy
        if isBest { trainer.state.bestValidationAccuracy = row.valAccuracy! }
        _ = try trainer.writeCheckpoint()
        if config.saveBest && isBest { _ = try trainer.writeCheckpoint(best: true) }
    }

    func runStopped(step: Int) throws {
        let path = try trainer.writeCheckpoint()
        print("\nstopping on a signal: checkpoint \(path) written; resume with --resume auto")
    }
}
