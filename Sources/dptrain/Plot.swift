import ArgumentParser
import Foundation
import Reports

/// `dptrain plot RUN_DIR… -o curves.svg`: loss and accuracy per epoch of one or several runs
/// in one SVG, to compare them (np=1 against np=4, two seeds, two learning rates).
struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw loss and accuracy per epoch of one or more run directories into an SVG.")

    @Argument(help: "Run directories (each with metrics.jsonl; summary.json adds the test scores).")
    var runDirs: [String]

    @Option(name: .shortAndLong, help: "The SVG file to write.")
    var output = "curves.svg"

    @Option(help: "Title (default: the run names).")
    var title: String?

    func run() throws {
        do {
            // Two directories with the same last component (a/run, b/run) keep their paths as names.
            let lastNames = runDirs.map { ($0 as NSString).standardizingPath.split(separator: "/").last.map(String.init) ?? $0 }
            let runs = try runDirs.enumerated().map { index, directory in
                try RunRecord(directory: directory, name: lastNames.filter { $0 == lastNames[index] }.count > 1 ? directory : nil)
            }
            try SVGPlot(runs: runs, title: title).write(to: output)
            print("wrote \(output)")
        } catch {
            fail("\(error)")
        }
    }
}
