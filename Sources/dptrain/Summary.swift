import ArgumentParser
import Training

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the Keras-style model summary for the data's input shape and classes.")
    @OptionGroup var model: ModelOptions
    @OptionGroup var modelFile: ModelFileOption
    @OptionGroup var data: DataOptions

    func run() throws {
        do {
            guard let path = modelFile.path else {
                let data = try data.load()
                print(try model.graph(for: data.shape).summaryTable())
                print(data.descriptionLine)
                return
            }
            print(try UserModel(path: path).keras.graph.summaryTable())
        } catch {
            fail("\(error)")
        }
    }
}
