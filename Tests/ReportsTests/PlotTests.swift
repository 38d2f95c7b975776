import Foundation
import Testing
import TestSupport
import Reports

/// `dptrain plot`: the axis arithmetic, the input checks, and the SVG as a real renderer
/// (rsvg-convert, from Debian's librsvg2-bin) draws it.
@Suite struct PlotTests {
    @Test func axesHaveNiceTicks() {
        let loss = Axis(covering: [0.052, 0.31])
        #expect(loss.ticks.map(loss.label) == ["0.05", "0.10", "0.15", "0.20", "0.25", "0.30", "0.35"])
        let fromZero = Axis(covering: [0.09, 0.92])
        #expect(fromZero.ticks.map(fromZero.label) == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        let accuracy = Axis(covering: [0.912, 0.9717])
        #expect(accuracy.ticks.map(accuracy.label) == ["0.91", "0.92", "0.93", "0.94", "0.95", "0.96", "0.97", "0.98"])
        let epochs = Axis(covering: [1, 5], targetTicks: 8, integer: true)
        #expect(epochs.ticks == [1, 2, 3, 4, 5])
        let many = Axis(covering: [1, 60], targetTicks: 8, integer: true)
        #expect(many.ticks == [0, 10, 20, 30, 40, 50, 60])
        let one = Axis(covering: [1], targetTicks: 8, integer: true)
        #expect(one.ticks == [0, 1, 2])
        #expect(Axis(covering: [0.5]).ticks.count >= 2)
    }

    /// A run directory as the trainer writes it.
    static func runDirectory(_ name: String, epochs: Int, validation: Bool, test: (Double, Double)?, shift: Double = 0) -> String {
        let directory = Repo.scratch("plot") + "/" + name
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var lines = ""
        for epoch in 0..<epochs {
            let loss = 0.9 / Double(epoch + 1) + shift, accuracy = 0.88 + 0.02 * Double(epoch) - shift
            var row = #"{"accuracy":\#(accuracy),"allreduce_seconds":0.1,"epoch":\#(epoch),"images_per_second":6900,"loss":\#(loss),"seconds":8.5,"steps":540"#
            if validation { row += #","val_accuracy":\#(accuracy + 0.01),"val_loss":\#(loss * 0.9)"# }
            lines += row + "}\n"
        }
        try! lines.write(toFile: directory + "/metrics.jsonl", atomically: true, encoding: .utf8)
        if let test {
            try! #"{"epochs":\#(epochs),"test_loss":\#(test.0),"test_accuracy":\#(test.1),"steps":2700,"ranks":1}"#
                .write(toFile: directory + "/summary.json", atomically: true, encoding: .utf8)
        }
        return directory
    }

    @Test func readsRunDirectories() throws {
        let directory = Self.runDirectory("np1", epochs: 3, validation: true, test: (0.1, 0.97))
        let run = try RunRecord(directory: directory)
        #expect(run.name == "np1")
        #expect(run.epochs.map(\.epoch) == [0, 1, 2])
        #expect(run.epochs[1].valLoss == 0.45 * 0.9)
        #expect(run.testAccuracy == 0.97)
        #expect(SVGPlot.series(of: run) == [.train, .validation, .test])
        let bare = try RunRecord(directory: Self.runDirectory("np4", epochs: 2, validation: false, test: nil))
        #expect(SVGPlot.series(of: bare) == [.train])
    }

    @Test(arguments: [
        ("{\"epoch\":0,\"loss\":1,\"accuracy\":0.5}\nnot json\n", "metrics.jsonl: line 2: not valid JSON"),
        ("{\"epoch\":0,\"accuracy\":0.5}\n", "metrics.jsonl: line 1: 'loss' is missing"),
        ("{\"epoch\":0,\"loss\":\"high\",\"accuracy\":0.5}\n", "metrics.jsonl: line 1: 'loss' is not a number"),
        ("[1,2]\n", "metrics.jsonl: line 1: not a JSON object"),
        ("{\"epoch\":1,\"loss\":1,\"accuracy\":0.5}\n{\"epoch\":0,\"loss\":1,\"accuracy\":0.5}\n", "metrics.jsonl: line 2: epoch 0 does not follow epoch 1"),
        ("{\"epoch\":-1,\"loss\":1,\"accuracy\":0.5}\n", "metrics.jsonl: line 1: 'epoch' is not a whole number 0 or more"),
        ("\n", "metrics.jsonl: no epoch rows"),
    ]) func badMetricsAreNamedInOneLine(content: String, message: String) throws {
        let directory = Repo.scratch("plot-bad")
        try content.write(toFile: directory + "/metrics.jsonl", atomically: true, encoding: .utf8)
        let result = try dptrain(["plot", directory, "-o", directory + "/out.svg"])
        #expect(result.status == 1)
        #expect(result.stderrLines == ["dptrain: error: \(directory)/\(message)"], "\(result)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/out.svg"))
    }

    @Test func missingRunsAndBadSummariesAreNamed() throws {
        let missing = Repo.scratch("plot-missing") + "/nowhere"
        var result = try dptrain(["plot", missing, "-o", "/tmp/unused.svg"])
        #expect(result.status == 1)
        #expect(result.stderrLines == ["dptrain: error: \(missing): not a run directory (no such directory)"])

        let empty = Repo.scratch("plot-empty")
        result = try dptrain(["plot", empty])
        #expect(result.stderrLines == ["dptrain: error: \(empty)/metrics.jsonl: no such file"])

        let run = Self.runDirectory("broken", epochs: 2, validation: false, test: (0.1, 0.9))
        try "{\"test_loss\": true}".write(toFile: run + "/summary.json", atomically: true, encoding: .utf8)
        result = try dptrain(["plot", run, "-o", run + "/out.svg"])
        #expect(result.stderrLines == ["dptrain: error: \(run)/summary.json: 'test_loss' is not a number"], "\(result)")

        result = try dptrain(["plot"])
        #expect(result.status == 1)
        #expect(result.stderrLines == ["dptrain: error: Missing expected argument '<run-dirs> ...'"], "\(result)")
    }

    @Test func helpIsFixedText() throws {
        let result = try dptrain(["plot", "--help"])
        #expect(result.status == 0)
        #expect(result.stdout == """
            OVERVIEW: Draw loss and accuracy per epoch of one or more run directories into
            an SVG.

            USAGE: dptrain plot <run-dirs> ... [--output <output>] [--title <title>]

            ARGUMENTS:
              <run-dirs>              Run directories (each with metrics.jsonl;
                                      summary.json adds the test scores).

            OPTIONS:
              -o, --output <output>   The SVG file to write. (default: curves.svg)
              --title <title>         Title (default: the run names).
              -h, --help              Show help information.


            """)
    }

    /// Two runs (np1 with validation and test, np4 with train only), rendered by rsvg-convert:
    /// the PNG has the SVG's size, is mostly white with both runs' colours drawn, and the SVG's
    /// text names every run and series.
    @Test func twoRunsRenderWithARealRenderer() throws {
        let np1 = Self.runDirectory("np1", epochs: 5, validation: true, test: (0.09, 0.971))
        let np4 = Self.runDirectory("np4", epochs: 5, validation: false, test: nil, shift: 0.02)
        let output = Repo.scratch("plot-out") + "/curves.svg"
        let result = try dptrain(["plot", np1, np4, "-o", output, "--title", "np=1 vs np=4"])
        try #require(result.status == 0, "\(result)")
        let svg = try String(contentsOfFile: output, encoding: .utf8)
        for text in ["np=1 vs np=4", ">np1 train<", ">np1 validation<", ">np1 test<", ">np4 train<", ">Loss<", ">Accuracy<", ">epoch<"] {
            #expect(svg.contains(text), "the SVG has no \(text)")
        }
        #expect(!svg.contains(">np4 validation<") && !svg.contains(">np4 test<"))

        let rsvg = try #require(["/usr/bin/rsvg-convert", "/usr/local/bin/rsvg-convert"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                "run scripts/setup --test to install librsvg2-bin")
        let png = output.replacingOccurrences(of: ".svg", with: ".png")
        let rendered = try run([rsvg, "-o", png, output])
        try #require(rendered.status == 0, "\(rendered)")

        let python = Repo.root.appendingPathComponent(".venv-test/bin/python").path
        let stats = try run([python, Repo.root.appendingPathComponent("tests/python/png_stats.py").path, png, "#1f77b4", "#d62728"])
        try #require(stats.status == 0, "\(stats)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any])
        let width = try #require(object["width"] as? Int), height = try #require(object["height"] as? Int)
        #expect(width == 1000)
        #expect(height == Int(SVGPlot(runs: [try RunRecord(directory: np1), try RunRecord(directory: np4)]).height))
        let drawn = Double(try #require(object["not_white"] as? Int)) / Double(width * height)
        #expect(drawn > 0.02 && drawn < 0.5, "\(drawn) of the pixels drawn")
        let colors = try #require(object["colors"] as? [String: Int])
        #expect(colors["#1f77b4", default: 0] > 500, "np1's blue: \(colors)")
        #expect(colors["#d62728", default: 0] > 500, "np4's red: \(colors)")
    }
}
