import Graph

/// The order Keras gives a model's layers (`model.layers`), which names their groups in
/// model.weights.h5: `layers/<snake case of the class>` with `_1`, `_2`, … for repeats.
enum KerasOrder {
    /// Indices into `graph.nodes`, -1 for the input layer (a Functional model lists it; a
    /// Sequential one does not). Functional: Keras's `map_graph` — by depth from the output,
    /// deepest first, ties in the order a depth-first walk from the output first meets them.
    static func layers(of graph: ModelGraph) -> [Int] {
        guard graph.functional else { return Array(graph.nodes.indices) }
        var index: [String: Int] = [graph.inputName: -1]
        for (i, node) in graph.nodes.enumerated() { index[node.name] = i }
        func parents(_ i: Int) -> [Int] { i < 0 ? [] : graph.nodes[i].inputs.compactMap { index[$0] } }

        var walkIndex: [Int: Int] = [:]
        var finished = Set<Int>()
        var postorder: [Int] = []
        func visit(_ i: Int) {
            guard !finished.contains(i) else { return }
            if walkIndex[i] == nil { walkIndex[i] = walkIndex.count }
            for p in parents(i) { visit(p) }
            finished.insert(i)
            postorder.append(i)
        }
        guard !graph.nodes.isEmpty else { return [-1] }
        visit(graph.nodes.count - 1)

        var depth: [Int: Int] = [:]
        for i in postorder.reversed() {
            let d = depth[i] ?? 0
            depth[i] = d
            for p in parents(i) { depth[p] = max(d + 1, depth[p] ?? 0) }
        }
        return postorder.sorted { a, b in
            depth[a]! != depth[b]! ? depth[a]! > depth[b]! : walkIndex[a]! < walkIndex[b]!
        }
    }

    /// Each listed layer's group path in model.weights.h5, e.g. "layers/conv2d_1".
    static func groups(_ classes: [String]) -> [String] {
        var used: [String: Int] = [:]
        return classes.map { kerasClass in
            let name = KerasNames.snakeCase(kerasClass)
            if let n = used[name] {
                used[name] = n + 1
                return "layers/\(name)_\(n + 1)"
            }
            used[name] = 0
            return "layers/\(name)"
        }
    }
}
