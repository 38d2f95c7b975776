import NN

/// Rank 0's start-up lines: where the job runs, on what data and model, and where it writes.
enum Banner {
    static func lines(_ run: RunStart) -> [String] {
        var byHost: [(host: String, ranks: [Int])] = []
        for (rank, host) in run.hosts.enumerated() {
            if let i = byHost.firstIndex(where: { $0.host == host }) { byHost[i].ranks.append(rank) } else { byHost.append((host, [rank])) }
        }
        let hosts = byHost.map { "\($0.host): \(ranges($0.ranks))" }.joined(separator: ", ")
        let plural = { (n: Int, word: String) in "\(n) \(word)\(n == 1 ? "" : "s")" }
        return [
            "\(plural(run.ranks, "rank")) on \(plural(byHost.count, "host")) (\(hosts)), \(plural(run.threads, "thread")) per rank, kernels: \(run.kernelPath)",
            "data: \(run.dataDirectory) (\(run.dataShape)), sha256 \(run.dataFingerprint)",
            "model: \(run.model.oneLine), \(formatThousands(run.parameterCount)) parameters",
            "run directory: \(run.runDirectory)",
        ]
    }

    /// "rank 0" or "ranks 0-3, 6".
    static func ranges(_ ranks: [Int]) -> String {
        var runs: [String] = []
        var i = 0
        while i < ranks.count {
            var j = i
            while j + 1 < ranks.count && ranks[j + 1] == ranks[j] + 1 { j += 1 }
            runs.append(i == j ? "\(ranks[i])" : "\(ranks[i])-\(ranks[j])")
            i = j + 1
        }
        return (ranks.count == 1 ? "rank " : "ranks ") + runs.joined(separator: ", ")
    }
}
