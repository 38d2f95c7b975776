import Collectives
import Testing

/// The watchdog's decisions without MPI: when to warn and end, and whom to name.
struct StallInspectorTests {
    let inspector = StallInspector(warning: 2, shutdown: 4, hosts: ["a", "b", "c", "d"])

    @Test func warnsOnceThenShutsDown() {
        #expect(inspector.verdict(waited: 1.9, warned: false) == .waiting)
        #expect(inspector.verdict(waited: 2, warned: false) == .warn)
        #expect(inspector.verdict(waited: 3, warned: true) == .waiting)
        #expect(inspector.verdict(waited: 4, warned: true) == .shutdown)
        #expect(StallInspector(warning: 2, shutdown: nil, hosts: []).verdict(waited: 1e9, warned: true) == .waiting)
    }

    /// Rank 1 never arrived at collective 7; rank 2 arrived and keeps sending; rank 3 arrived
    /// and has been silent for longer than two heartbeats (stopped inside the collective).
    @Test func namesMissingAndSilentRanksWithTheirHosts() {
        let latest: [Int64] = [0, 6, 7, 7], heard = [0, 9.0, 9.9, 8.0]
        #expect(StallInspector.missing(latest: latest, sequence: 7) == [1])
        #expect(inspector.silent(latest: latest, sequence: 7, lastHeard: heard, now: 10) == [3])
        #expect(inspector.message(step: 42, missing: [1], silent: [3], waited: 2.3)
            == "step 42: waited 2s in the gradient reduction for rank 1 (b), which did not arrive and rank 3 (d), which arrived but fell silent")
        #expect(inspector.message(step: 5, missing: [1, 2], silent: [], waited: 4)
            == "step 5: waited 4s in the gradient reduction for ranks 1 (b), 2 (c), which did not arrive")
        #expect(inspector.message(step: 5, missing: [], silent: [], waited: 2).hasSuffix("although every rank arrived and is still there"))
    }
}
