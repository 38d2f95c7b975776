import Foundation

extension ModelGraph {
    /// Keras 3's `model.summary()` as it prints to a wide console (rich's table at Keras's
    /// line length: 88 for sequential-like models, 108 with the "Connected to" column of a
    /// Functional graph), so users can diff it against Keras's own.
    public func summaryTable() throws -> String {
        let rows = try resolve()
        var readers = [Int](repeating: 0, count: rows.count)
        for row in rows { for j in row.inputIndices where j >= 0 { readers[j] += 1 } }
        let sequentialLike = !functional || rows.allSatisfy { $0.inputIndices.count == 1 } && readers.allSatisfy { $0 <= 1 }
        func shape(_ s: [Int]) -> String { "(None, " + s.map(String.init).joined(separator: ", ") + ")" }
        var table: [[String]] = []
        if functional { table.append(["\(inputName) (InputLayer)", shape(input), "0"] + (sequentialLike ? [] : ["-"])) }
        for row in rows {
            var fields = ["\(row.node.name) (\(row.node.layer.kerasClass))", shape(row.outputShape), formatThousands(row.parameterCount)]
            if !sequentialLike { fields.append(row.node.inputs.map { "\($0)[0][0]" }.joined(separator: ", ")) }
            table.append(fields)
        }
        let header = ["Layer (type)", "Output Shape", "Param #"] + (sequentialLike ? [] : ["Connected to"])
        let (lineLength, positions) = sequentialLike ? (88, [0.45, 0.80, 1.0]) : (108, [0.3, 0.56, 0.74, 1.0])
        var lines = ["Model: \"\(name)\""] + RichTable(header: header, rightAligned: 2, lineLength: lineLength, positions: positions).render(table)
        let (total, trainable) = try parameterCounts()
        func memory(_ count: Int) -> String {
            var size = Double(count * 4)
            for unit in ["B", "KB", "MB", "GB"] {
                if size / 1024 < 1 { return String(format: "%.2f %@", size, unit) }
                size /= 1024
            }
            return String(format: "%.2f TB", size)
        }
        lines += [" Total params: \(formatThousands(total)) (\(memory(total)))",
                  " Trainable params: \(formatThousands(trainable)) (\(memory(trainable)))",
                  " Non-trainable params: \(formatThousands(total - trainable)) (\(memory(total - trainable)))"]
        return lines.joined(separator: "\n")
    }

    /// One line for the banner: "Conv2D(32, 5x5, relu) → MaxPooling2D(2x2) → … → Dense(10, softmax)".
    public var oneLine: String {
        func size(_ s: [Int]) -> String { s.map(String.init).joined(separator: "x") }
        let parts = nodes.map { node -> String in
            switch node.layer {
            case .conv2D(let c): "Conv2D(\(c.filters), \(size(c.kernel))\(c.strides != [1, 1] ? "/\(size(c.strides))" : "")\(c.padding == .same ? ", same" : ""), \(c.activation.rawValue))"
            case .maxPooling2D(let p): "MaxPooling2D(\(size(p.size)))"
            case .averagePooling2D(let p): "AveragePooling2D(\(size(p.size)))"
            case .dense(let d): "Dense(\(d.units), \(d.activation.rawValue))"
            case .dropout(let rate): "Dropout(\(rate))"
            case .activation(let a): "Activation(\(a.rawValue))"
            default: node.layer.kerasClass
            }
        }
        return parts.joined(separator: " → ")
    }

    /// FLOP of one training example: forward, weight gradients, and input gradients where a
    /// layer before it learns; convolutions and dense layers only (the rest is a few percent).
    public func trainingFLOP() throws -> Int {
        let rows = try resolve()
        var learns: [Bool] = []
        var flop = 0
        for row in rows {
            let upstream = row.inputIndices.contains { $0 >= 0 && learns[$0] }
            learns.append(upstream || row.variables.contains(where: \.trainable))
            let macs: Int
            switch row.node.layer {
            case .conv2D(let c): macs = row.outputShape[0] * row.outputShape[1] * c.filters * c.kernel[0] * c.kernel[1] * row.inputShapes[0][2]
            case .dense(let d): macs = row.inputShapes[0][0] * d.units
            default: continue
            }
            flop += 2 * macs * (upstream ? 3 : 2)
        }
        return flop
    }
}

/// 62346 -> "62,346".
public func formatThousands(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return value < 0 ? "-" + out : out
}

/// The table rich draws for Keras's summary: column widths from Keras's positions, shrunk as
/// rich shrinks fixed-width columns to the line (its `ratio_reduce`), cells wrapped at spaces,
/// and a word wider than its cell cut with "…".
struct RichTable {
    let header: [String]
    let rightAligned: Int
    let widths: [Int]

    init(header: [String], rightAligned: Int, lineLength: Int, positions: [Double]) {
        (self.header, self.rightAligned) = (header, rightAligned)
        var columns: [Int] = []
        var current = 0
        for p in positions {
            let width = Int(p * Double(lineLength)) - current
            columns.append(width + 2)  // one space of padding each side
            current += width
        }
        var excess = columns.reduce(0, +) - (lineLength - columns.count - 1)
        var ratioLeft = columns.count
        for i in columns.indices where excess > 0 {
            let share = min(columns[i], Int((Double(excess) / Double(ratioLeft)).rounded(.toNearestOrEven)))
            columns[i] -= share
            excess -= share
            ratioLeft -= 1
        }
        widths = columns.map { $0 - 2 }
    }

    func render(_ rows: [[String]]) -> [String] {
        func rule(_ left: String, _ fill: String, _ middle: String, _ right: String) -> String {
            left + widths.map { String(repeating: fill, count: $0 + 2) }.joined(separator: middle) + right
        }
        func lines(_ cells: [String], bar: String) -> [String] {
            let wrapped = cells.enumerated().map { wrap($1, widths[$0]) }
            let height = wrapped.map(\.count).max() ?? 1
            return (0..<height).map { line in
                bar + wrapped.enumerated().map { i, cell in
                    let text = line < cell.count ? cell[line] : ""
                    let space = String(repeating: " ", count: widths[i] - text.count)
                    return " " + (i == rightAligned ? space + text : text + space) + " "
                }.joined(separator: bar) + bar
            }
        }
        var out = [rule("┏", "━", "┳", "┓")] + lines(header, bar: "┃") + [rule("┡", "━", "╇", "┩")]
        for (i, row) in rows.enumerated() {
            if i > 0 { out.append(rule("├", "─", "┼", "┤")) }
            out += lines(row, bar: "│")
        }
        return out + [rule("└", "─", "┴", "┘")]
    }

    /// Greedy wrapping at spaces; a word wider than the cell gets a line of its own, cut with "…".
    private func wrap(_ text: String, _ width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ").map(String.init) {
            let candidate = line.isEmpty ? word : line + " " + word
            if candidate.count <= width {
                line = candidate
                continue
            }
            if !line.isEmpty { lines.append(line) }
            line = word.count <= width ? word : String(word.prefix(width - 1)) + "…"
        }
        return lines + [line]
    }
}
