import ModelFiles
import Foundation

/// Loss and accuracy per epoch for one or several runs, as a standalone SVG: two panels (loss,
/// accuracy) sharing the epoch axis, one colour per run, one line style per series (train
/// solid, validation dashed, test a diamond just after the last epoch), a legend and a title.
public struct SVGPlot: Sendable {
    public var runs: [RunRecord]
    public var title: String

    public init(runs: [RunRecord], title: String? = nil) {
        self.runs = runs
        self.title = title ?? "Loss and accuracy per epoch: " + runs.map(\.name).joined(separator: ", ")
    }

    public enum Series: String, CaseIterable, Sendable {
        case train, validation, test
        var dash: String? { self == .validation ? "7 4" : nil }
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    static let font = "DejaVu Sans, Helvetica, Arial, sans-serif"

    // Layout, in pixels.
    static let width = 1000.0, panelTop = 60.0, panelHeight = 360.0, panelWidth = 500.0
    static let margin = (left: 64.0, right: 20.0, top: 30.0, bottom: 46.0)
    static let legendRow = 24.0

    public var height: Double { Self.panelTop + Self.panelHeight + 16 + Double(runs.count) * Self.legendRow + 12 }

    /// The series a run has data for.
    public static func series(of run: RunRecord) -> [Series] {
        var present: [Series] = [.train]
        if run.epochs.contains(where: { $0.valLoss != nil || $0.valAccuracy != nil }) { present.append(.validation) }
        if run.testLoss != nil || run.testAccuracy != nil { present.append(.test) }
        return present
    }

    public func svg() -> String {
        var out = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(Self.width))" height="\(Int(height))" viewBox="0 0 \(Int(Self.width)) \(Int(height))" font-family="\(Self.font)">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(Self.width / 2)" y="30" text-anchor="middle" font-size="18" font-weight="bold">\(Escape.xml(title))</text>

        """
        let lastEpoch = runs.flatMap(\.epochs).map { Double($0.epoch + 1) }
        var xAxis = Axis(covering: lastEpoch + [1], targetTicks: 8, integer: true)
        xAxis.margin = 0.4 * xAxis.step
        out += panel(x: 0, name: "loss", xAxis: xAxis, train: { $0.loss }, validation: { $0.valLoss }, test: \.testLoss)
        out += panel(x: Self.panelWidth, name: "accuracy", xAxis: xAxis, train: { $0.accuracy }, validation: { $0.valAccuracy }, test: \.testAccuracy)
        out += legend(y: Self.panelTop + Self.panelHeight + 16)
        return out + "</svg>\n"
    }

    private func panel(x: Double, name: String, xAxis: Axis, train: (RunRecord.Epoch) -> Double,
                       validation: (RunRecord.Epoch) -> Double?, test: KeyPath<RunRecord, Double?>) -> String {
        let m = Self.margin
        let left = x + m.left, right = x + Self.panelWidth - m.right
        let top = Self.panelTop + m.top, bottom = Self.panelTop + Self.panelHeight - m.bottom
        let values = runs.flatMap { run in run.epochs.map(train) + run.epochs.compactMap(validation) + [run[keyPath: test]].compactMap { $0 } }
        var yAxis = Axis(covering: values)
        yAxis.margin = 0.03 * (yAxis.upper - yAxis.lower)
        func px(_ v: Double) -> Double { xAxis.position(v, from: left, to: right) }
        func py(_ v: Double) -> Double { yAxis.position(v, from: bottom, to: top) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var out = "<g class=\"panel\" id=\"\(name)\">\n"
        out += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(Self.panelTop + 16))\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">\(name.capitalized)</text>\n"
        for tick in yAxis.ticks {
            out += "<line x1=\"\(f(left))\" x2=\"\(f(right))\" y1=\"\(f(py(tick)))\" y2=\"\(f(py(tick)))\" stroke=\"#e3e3e3\"/>\n"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(py(tick) + 4))\" text-anchor=\"end\" font-size=\"11\">\(yAxis.label(tick))</text>\n"
        }
        for tick in xAxis.ticks {
            out += "<line x1=\"\(f(px(tick)))\" x2=\"\(f(px(tick)))\" y1=\"\(f(bottom))\" y2=\"\(f(bottom + 5))\" stroke=\"black\"/>\n"
            out += "<text x=\"\(f(px(tick)))\" y=\"\(f(bottom + 18))\" text-anchor=\"middle\" font-size=\"11\">\(xAxis.label(tick))</text>\n"
        }
        out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(right - left))\" height=\"\(f(bottom - top))\" fill=\"none\" stroke=\"black\"/>\n"
        out += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(bottom + 38))\" text-anchor=\"middle\" font-size=\"12\">epoch</text>\n"
        out += "<text transform=\"translate(\(f(x + 16)) \(f((top + bottom) / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">\(name)</text>\n"

        for (index, run) in runs.enumerated() {
            let color = Self.palette[index % Self.palette.count]
            // Earlier runs are drawn wider, so identical runs (np=1 and np=2 often are, bit for
            // bit) show as a line inside a halo instead of one hiding the other.
            let under = Double(min(runs.count - 1 - index, 3))
            let width = 2 + 2 * under, radius = 3 + 1.5 * under
            let trainPoints = run.epochs.map { (Double($0.epoch + 1), train($0)) }
            let validationPoints = run.epochs.compactMap { e in validation(e).map { (Double(e.epoch + 1), $0) } }
            for (series, points) in [(Series.train, trainPoints), (.validation, validationPoints)] where !points.isEmpty {
                let coordinates = points.map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
                out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(width)\"\(series.dash.map { " stroke-dasharray=\"\($0)\"" } ?? "") points=\"\(coordinates)\"><title>\(Escape.xml(run.name)) \(series.rawValue) \(name)</title></polyline>\n"
                for point in points {
                    out += "<circle cx=\"\(f(px(point.0)))\" cy=\"\(f(py(point.1)))\" r=\"\(radius)\" fill=\"\(series == .train ? color : "white")\" stroke=\"\(color)\" stroke-width=\"1.5\"/>\n"
                }
            }
            if let value = run[keyPath: test], let last = run.epochs.last {
                // Just right of the last epoch, where it does not hide that epoch's points.
                out += Self.diamond(x: px(Double(last.epoch + 1) + 0.2 * xAxis.step), y: py(value), size: 6 + 2 * under, color: color, title: "\(run.name) test \(name): \(String(format: "%.4f", value))")
            }
        }
        return out + "</g>\n"
    }

    private func legend(y: Double) -> String {
        var out = "<g class=\"legend\">\n"
        for (index, run) in runs.enumerated() {
            let color = Self.palette[index % Self.palette.count]
            let row = y + Double(index) * Self.legendRow + 12
            var x = Self.margin.left
            out += "<text x=\"\(x)\" y=\"\(row + 4)\" font-size=\"13\" font-weight=\"bold\" fill=\"\(color)\">\(Escape.xml(run.name))</text>\n"
            x += max(120, Double(run.name.count) * 8 + 20)
            for series in Self.series(of: run) {
                if series == .test {
                    out += Self.diamond(x: x + 15, y: row, size: 6, color: color, title: nil)
                } else {
                    out += "<line x1=\"\(x)\" x2=\"\(x + 30)\" y1=\"\(row)\" y2=\"\(row)\" stroke=\"\(color)\" stroke-width=\"2\"\(series.dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>\n"
                    out += "<circle cx=\"\(x + 15)\" cy=\"\(row)\" r=\"3\" fill=\"\(series == .train ? color : "white")\" stroke=\"\(color)\" stroke-width=\"1.5\"/>\n"
                }
                out += "<text x=\"\(x + 38)\" y=\"\(row + 4)\" font-size=\"12\">\(Escape.xml("\(run.name) \(series.rawValue)"))</text>\n"
                x += 54 + Double(run.name.count + series.rawValue.count + 1) * 7.2
            }
        }
        return out + "</g>\n"
    }

    static func diamond(x: Double, y: Double, size r: Double, color: String, title: String?) -> String {
        let path = String(format: "M%.1f %.1f L%.1f %.1f L%.1f %.1f L%.1f %.1fZ", x, y - r, x + r, y, x, y + r, x - r, y)
        return "<path d=\"\(path)\" fill=\"\(color)\" stroke=\"white\" stroke-width=\"1\">\(title.map { "<title>\(Escape.xml($0))</title>" } ?? "")</path>\n"
    }

    /// Writes the SVG atomically.
    public func write(to path: String) throws { try AtomicFile.write(Array(svg().utf8), to: path) }
}
