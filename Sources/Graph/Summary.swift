extension ModelGraph {
    /// Keras `model.summary()` layout (the plain-text form), so users can diff it against Keras;
    /// a Functional model gets Keras's "Connected to" column.
    public func summaryTable() throws -> String {
        let rows = try resolve()
        let width = functional ? 98 : 70
        let rule = String(repeating: "_", count: width)
        let double = String(repeating: "=", count: width)
        func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count) }
        func shape(_ s: [Int]) -> String { "(None, " + s.map(String.init).joined(separator: ", ") + ")" }
        var header = " " + pad("Layer (type)", 33) + pad("Output Shape", 26) + pad("Param #", functional ? 11 : 0)
        if functional { header += "Connected to" }
        var lines = ["Model: \"\(name)\"", rule, header, double]
        var body: [String] = []
        if functional {
            body.append(" " + pad("\(inputName) (InputLayer)", 33) + pad(shape(input), 26) + pad("0", 11) + "-")
        }
        for row in rows {
            var line = " " + pad("\(row.node.name) (\(row.node.layer.kerasClass))", 33) + pad(shape(row.outputShape), 26)
            if functional {
                line += pad(formatThousands(row.parameterCount), 11) + row.node.inputs.map { "\($0)[0][0]" }.joined(separator: ", ")
            } else {
                line += formatThousands(row.parameterCount)
            }
            body.append(line)
        }
        lines += body.joined(separator: "\n\n").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let (total, trainable) = try parameterCounts()
        lines += [double, "Total params: \(formatThousands(total))", "Trainable params: \(formatThousands(trainable))",
                  "Non-trainable params: \(formatThousands(total - trainable))", rule]
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
