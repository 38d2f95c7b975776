import ArgumentParser
import Training

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the Keras-style model summary for the data's input shape and classes.")
    @OptionGroup var model: ModelOptions
    @OptionGroup var data: DataOptions

    func run() throws {
        do {
            let data = try data.load()
            print(try model.architecture(for: data.shape).summaryTable())
            print(data.descriptionLine)
        } catch {
            fail("\(error)")
        }
    }
}
