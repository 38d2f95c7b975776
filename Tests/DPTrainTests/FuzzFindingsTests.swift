import Datasets
import Foundation
import KerasFiles
import Testing
import TestSupport

/// Inputs `scripts/fuzz` found that crashed a reader (kept in Tests/Fuzz/seeds): each is now a
/// thrown error with one line naming the file.
struct FuzzFindingsTests {
    static func seed(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: Repo.root.appendingPathComponent("Tests/Fuzz/seeds/\(name)")))
    }

    /// A .npy header whose shape multiplies past Int.max trapped; now it is "truncated".
    @Test func npyShapeThatOverflows() throws {
        #expect(throws: DataError.self) { try NPYArray(bytes: try Self.seed("npy-overflowing-shape.npy"), name: "x.npy") }
    }

    /// A .keras whose weights file has a corrupt global heap: reading the vars groups' `name`
    /// attribute ran into a memory error inside libhdf5; the reader no longer reads it.
    @Test func kerasWithACorruptHeap() throws {
        let path = Repo.root.appendingPathComponent("Tests/Fuzz/seeds/keras-corrupt-name-attribute.keras").path
        do {
            _ = try KerasModel.read(path: path)
        } catch let error as KerasFileError {
            #expect(error.description.hasPrefix(path + ": ") && !error.description.contains("\n"), "\(error)")
        }
    }
}
