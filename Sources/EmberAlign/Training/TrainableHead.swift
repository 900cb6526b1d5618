import EmberModel

/// The projection head's parameters during training, with a forward pass that keeps what
/// the backward pass needs and a hand-written backward pass. Shapes (row-major):
/// x (R, in); linear: W (out, in), b (out); mlp: W1 (hidden, in), b1 (hidden),
/// W2 (out, hidden), b2 (out); y (R, out). Parameters are in
/// `ProjectionHead.Layers.tensorShapes` order, so they are the head file's tensors.
public struct TrainableHead: Sendable {
    public let layers: ProjectionHead.Layers
    public let inputDim: Int
    public let outputDim: Int
    public var parameters: [[Float]]

    /// What the backward pass needs from one forward pass.
    public struct Cache: Sendable {
        let x: [Float]
        let rows: Int
        /// mlp: pre-activations (R, hidden) and activations (R, hidden).
        let pre: [Float]
        let hidden: [Float]
    }

    /// PyTorch's `nn.Linear` initialization (uniform ±1/√fan_in for weight and bias),
    /// from `generator` so a seed fixes it.
    public init(layers: ProjectionHead.Layers, inputDim: Int, outputDim: Int, generator: inout SeededGenerator) {
        self.layers = layers
        self.inputDim = inputDim
        self.outputDim = outputDim
        parameters = layers.tensorShapes(input: inputDim, output: outputDim).map { shape in
            let fanIn = shape.name.hasPrefix("fc2") ? Self.hidden(layers) : inputDim
            let bound = 1 / Double(fanIn).squareRoot()
            return (0..<shape.shape.reduce(1, *)).map { _ in Float((generator.unit() * 2 - 1) * bound) }
        }
    }

    public init(layers: ProjectionHead.Layers, inputDim: Int, outputDim: Int, parameters: [[Float]]) {
        self.layers = layers
        self.inputDim = inputDim
        self.outputDim = outputDim
        self.parameters = parameters
    }

    static func hidden(_ layers: ProjectionHead.Layers) -> Int {
        if case .mlp(let h, _) = layers { return h }
        return 0
    }

    /// Indices of weight matrices (decayed by AdamW; biases are not).
    public var weightIndices: [Int] {
        switch layers {
        case .linear: [0]
        case .mlp: [0, 2]
        }
    }

    /// y = head(x), x: (rows, in) → (rows, out).
    public func forward(_ x: [Float], rows: Int) -> (y: [Float], cache: Cache) {
        switch layers {
        case .linear:
            let y = affine(x, rows: rows, in: inputDim, weight: parameters[0], bias: parameters[1], out: outputDim)
            return (y, Cache(x: x, rows: rows, pre: [], hidden: []))
        case .mlp(let hiddenDim, let activation):
            let pre = affine(x, rows: rows, in: inputDim, weight: parameters[0], bias: parameters[1], out: hiddenDim)
            let hidden = pre.map(activation.apply)
            let y = affine(hidden, rows: rows, in: hiddenDim, weight: parameters[2], bias: parameters[3], out: outputDim)
            return (y, Cache(x: x, rows: rows, pre: pre, hidden: hidden))
        }
    }

    /// Gradients of the parameters (same order and shapes) given dL/dy (rows, out), and
    /// dL/dx when `inputGradient` (the gradient checks use it; training does not).
    public func backward(_ dy: [Float], cache: Cache, inputGradient: Bool = false) -> (parameters: [[Float]], dx: [Float]?) {
        let rows = cache.rows
        switch layers {
        case .linear:
            let (dW, db) = affineBackward(dy, input: cache.x, rows: rows, in: inputDim, out: outputDim)
            let dx = inputGradient ? matmul(dy, rows: rows, inner: outputDim, weight: parameters[0], out: inputDim) : nil
            return ([dW, db], dx)
        case .mlp(let hiddenDim, let activation):
            let (dW2, db2) = affineBackward(dy, input: cache.hidden, rows: rows, in: hiddenDim, out: outputDim)
            // dh = dy · W2 (rows, hidden); through the activation: dpre = dh ⊙ act'(pre).
            var dpre = matmul(dy, rows: rows, inner: outputDim, weight: parameters[2], out: hiddenDim)
            for i in dpre.indices { dpre[i] *= activation.derivative(cache.pre[i]) }
            let (dW1, db1) = affineBackward(dpre, input: cache.x, rows: rows, in: inputDim, out: hiddenDim)
            let dx = inputGradient ? matmul(dpre, rows: rows, inner: hiddenDim, weight: parameters[0], out: inputDim) : nil
            return ([dW1, db1, dW2, db2], dx)
        }
    }

    /// The head as the worker runs it.
    public func projectionHead(matryoshka: [Int], name: String, baseModel: String, training: [String: String]) throws -> ProjectionHead {
        try ProjectionHead.make(
            layers: layers, inputDim: inputDim, outputDim: outputDim, matryoshka: matryoshka, tensors: parameters, name: name,
            baseModel: baseModel, training: training)
    }
}

/// x · Wᵀ + b: x (rows, in), W (out, in), b (out) → (rows, out).
func affine(_ x: [Float], rows: Int, in inputs: Int, weight: [Float], bias: [Float], out outputs: Int) -> [Float] {
    var y = [Float](repeating: 0, count: rows * outputs)
    x.withUnsafeBufferPointer { x in
        weight.withUnsafeBufferPointer { w in
            y.withUnsafeMutableBufferPointer { y in
                gemm(.none, .transposed, m: rows, n: outputs, k: inputs, a: x.baseAddress!, b: w.baseAddress!, c: y.baseAddress!)
            }
        }
    }
    for r in 0..<rows {
        for j in 0..<outputs { y[r * outputs + j] += bias[j] }
    }
    return y
}

/// dW = dyᵀ · input (out, in) and db = Σ_rows dy (out) for an affine layer.
func affineBackward(_ dy: [Float], input: [Float], rows: Int, in inputs: Int, out outputs: Int) -> ([Float], [Float]) {
    var dW = [Float](repeating: 0, count: outputs * inputs)
    dy.withUnsafeBufferPointer { dy in
        input.withUnsafeBufferPointer { x in
            dW.withUnsafeMutableBufferPointer { dW in
                gemm(.transposed, .none, m: outputs, n: inputs, k: rows, a: dy.baseAddress!, b: x.baseAddress!, c: dW.baseAddress!)
            }
        }
    }
    var db = [Float](repeating: 0, count: outputs)
    for r in 0..<rows {
        for j in 0..<outputs { db[j] += dy[r * outputs + j] }
    }
    return (dW, db)
}

/// g · W: g (rows, inner), W (inner, out) → (rows, out); the gradient through x · Wᵀ.
func matmul(_ g: [Float], rows: Int, inner: Int, weight: [Float], out outputs: Int) -> [Float] {
    var dx = [Float](repeating: 0, count: rows * outputs)
    g.withUnsafeBufferPointer { g in
        weight.withUnsafeBufferPointer { w in
            dx.withUnsafeMutableBufferPointer { dx in
                gemm(.none, .none, m: rows, n: outputs, k: inner, a: g.baseAddress!, b: w.baseAddress!, c: dx.baseAddress!)
            }
        }
    }
    return dx
}
