#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM/SIGUSR1 (Slurm's pre-emption and time-limit signals) only raise a flag; the trainer
/// reads it at the next step boundary and carries it on the gradient allreduce, so all ranks
/// stop at the same step and rank 0 checkpoints it.
public enum StopSignal {
    /// Exit status after a signal-driven stop with a checkpoint written (EX_TEMPFAIL): a batch
    /// script tests it to requeue the job.
    public static let exitStatus: Int32 = 75

    nonisolated(unsafe) private static var raised: sig_atomic_t = 0

    public static func install() {
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for signalNumber in [SIGTERM, SIGUSR1] {
            signal(signalNumber) { _ in StopSignal.raised = 1 }
            sigaddset(&unblock, signalNumber)
        }
        // A parent may have left them blocked (the mask is inherited), which would make us deaf.
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }

    public static var isRaised: Bool { raised != 0 }
}
