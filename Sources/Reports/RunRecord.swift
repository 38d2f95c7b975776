import Foundation

/// What a plot needs from a run directory: metrics.jsonl's epoch rows and, when the run got
/// that far, summary.json's test scores. Read without Training's types (Reports stands alone).
public struct RunRecord: Equatable, Sendable {
    public struct Epoch: Equatable, Sendable {
        public var epoch: Int
        public var loss: Double
        public var accuracy: Double
        public var valLoss: Double?
        public var valAccuracy: Double?
        public init(epoch: Int, loss: Double, accuracy: Double, valLoss: Double? = nil, valAccuracy: Double? = nil) {
            (self.epoch, self.loss, self.accuracy, self.valLoss, self.valAccuracy) = (epoch, loss, accuracy, valLoss, valAccuracy)
        }
    }

    public var name: String
    public var epochs: [Epoch]
    public var testLoss: Double?
    public var testAccuracy: Double?

    public init(name: String, epochs: [Epoch], testLoss: Double? = nil, testAccuracy: Double? = nil) {
        (self.name, self.epochs, self.testLoss, self.testAccuracy) = (name, epochs, testLoss, testAccuracy)
    }

    /// Reads `directory`/metrics.jsonl (required, at least one row) and summary.json (optional:
    /// a run stopped early has none). Errors name the file, the line and what is wrong.
    public init(directory: String, name: String? = nil) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ReportError("\(directory): not a run directory (no such directory)")
        }
        let metricsPath = (directory as NSString).appendingPathComponent("metrics.jsonl")
        guard FileManager.default.fileExists(atPath: metricsPath) else { throw ReportError("\(metricsPath): no such file") }
        let text = String(decoding: try FileIO.read(metricsPath), as: UTF8.self)
        var epochs: [Epoch] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let place = "\(metricsPath): line \(index + 1)"
            let object = try Self.object(String(line), place: place)
            let row = Epoch(epoch: try Self.int(object, "epoch", place),
                            loss: try Self.number(object, "loss", place),
                            accuracy: try Self.number(object, "accuracy", place),
                            valLoss: try Self.optionalNumber(object, "val_loss", place),
                            valAccuracy: try Self.optionalNumber(object, "val_accuracy", place))
            if let last = epochs.last, row.epoch <= last.epoch {
                throw ReportError("\(place): epoch \(row.epoch) does not follow epoch \(last.epoch)")
            }
            epochs.append(row)
        }
        guard !epochs.isEmpty else { throw ReportError("\(metricsPath): no epoch rows") }

        var testLoss: Double?, testAccuracy: Double?
        let summaryPath = (directory as NSString).appendingPathComponent("summary.json")
        if FileManager.default.fileExists(atPath: summaryPath) {
            let object = try Self.object(String(decoding: try FileIO.read(summaryPath), as: UTF8.self), place: summaryPath)
            testLoss = try Self.optionalNumber(object, "test_loss", summaryPath)
            testAccuracy = try Self.optionalNumber(object, "test_accuracy", summaryPath)
        }
        let defaultName = (directory as NSString).standardizingPath.split(separator: "/").last.map(String.init) ?? directory
        self.init(name: name ?? defaultName, epochs: epochs, testLoss: testLoss, testAccuracy: testAccuracy)
    }

    static func object(_ text: String, place: String) throws -> [String: Any] {
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) } catch {
            throw ReportError("\(place): not valid JSON")
        }
        guard let object = parsed as? [String: Any] else { throw ReportError("\(place): not a JSON object") }
        return object
    }

    static func optionalNumber(_ object: [String: Any], _ key: String, _ place: String) throws -> Double? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        // JSON booleans also arrive as NSNumber; theirs is the only "c" (char) type.
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c" else {
            throw ReportError("\(place): '\(key)' is not a number")
        }
        guard number.doubleValue.isFinite else { throw ReportError("\(place): '\(key)' is not finite") }
        return number.doubleValue
    }

    static func number(_ object: [String: Any], _ key: String, _ place: String) throws -> Double {
        guard let value = try optionalNumber(object, key, place) else { throw ReportError("\(place): '\(key)' is missing") }
        return value
    }

    static func int(_ object: [String: Any], _ key: String, _ place: String) throws -> Int {
        let value = try number(object, key, place)
        guard value >= 0, value == value.rounded(), value < 1e9 else { throw ReportError("\(place): '\(key)' is not a whole number 0 or more") }
        return Int(value)
    }
}
