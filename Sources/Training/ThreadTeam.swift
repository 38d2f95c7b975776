import Foundation
import NN

/// A fixed team of threads that run one job together and wait for each other: the calling
/// thread is member 0, the others are started once and park on semaphores between jobs, so a
/// training step costs two semaphore hand-offs per extra thread and no allocation (GCD's
/// concurrentPerform allocates a few objects per call).
final class ThreadTeam {
    /// What the parked threads hold on to; it outlives the team until they have all left.
    private final class Shared {
        var job: ((Int) -> Void)?
        var stopping = false
        let start: [DispatchSemaphore]
        let done = DispatchSemaphore(value: 0)
        init(size: Int) { start = (0..<size).map { _ in DispatchSemaphore(value: 0) } }
    }

    let size: Int
    private let shared: Shared
    /// Member 0 also has a thread of its own, for `run(_:whileWaiting:)`.
    private let detached: Bool

    /// `detached`: start a thread for member 0 too, so that the caller can drive the step's
    /// communication while every member computes.
    init(size: Int, detached: Bool = false) {
        self.size = max(size, 1)
        self.detached = detached
        let shared = Shared(size: self.size)
        self.shared = shared
        Kernels.flushDenormals()  // member 0 is the caller
        for member in (detached ? 0 : 1)..<self.size {
            let thread = Thread {
                Kernels.flushDenormals()
                while true {
                    shared.start[member].wait()
                    if shared.stopping { return }
                    shared.job!(member)
                    shared.done.signal()
                }
            }
            thread.name = "dptrain-worker-\(member)"
            thread.start()
        }
    }

    deinit {
        shared.stopping = true
        for member in (detached ? 0 : 1)..<size { shared.start[member].signal() }
    }

    /// Runs `body(member)` on every member at once and returns when all have finished.
    func run(_ body: (Int) -> Void) {
        guard size > 1 else { return body(0) }
        withoutActuallyEscaping(body) { body in
            shared.job = body
            for member in 1..<size { shared.start[member].signal() }
            body(0)
            for _ in 1..<size { shared.done.wait() }
            shared.job = nil
        }
    }

    /// Runs `body(member)` on every member's own thread while the caller calls `progress`
    /// about every 0.1 ms (the caller's thread stays the one that talks to MPI); returns when
    /// all members have finished, then throws `progress`'s error if it threw.
    func run(_ body: (Int) -> Void, whileWaiting progress: () throws -> Void) throws {
        precondition(detached, "a team made without a thread for member 0")
        var failure: Error?
        withoutActuallyEscaping(body) { body in
            shared.job = body
            for member in 0..<size { shared.start[member].signal() }
            var running = size
            while running > 0 {
                if failure == nil {
                    do { try progress() } catch { failure = error }
                }
                if shared.done.wait(timeout: .now() + .microseconds(100)) == .success { running -= 1 }
            }
            shared.job = nil
        }
        if let failure { throw failure }
    }
}
