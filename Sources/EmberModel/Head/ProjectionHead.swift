import Foundation

/// A projection head over a frozen model's fused embedding (`ember align` trains it):
/// either one linear layer or a two-layer MLP,
///
///     linear:  y = x · proj.weightᵀ + proj.bias
///     mlp:     y = act(x · fc1.weightᵀ + fc1.bias) · fc2.weightᵀ + fc2.bias
///
/// followed by a Matryoshka cut: the output is the first `dims` values of y, L2-normalized.
/// Any prefix size the head was trained for (`matryoshka`) is an embedding of its own.
/// Weights are PyTorch-shaped (out, in) so a head can be exported to or from torch as is.
public struct ProjectionHead: Sendable {
    public enum Layers: Sendable, Equatable {
        case linear
        case mlp(hidden: Int, activation: HeadActivation)

        /// Tensor names and shapes in the file, in order.
        public func tensorShapes(input: Int, output: Int) -> [(name: String, shape: [Int])] {
            switch self {
            case .linear:
                [("proj.weight", [output, input]), ("proj.bias", [output])]
            case .mlp(let hidden, _):
                [("fc1.weight", [hidden, input]), ("fc1.bias", [hidden]), ("fc2.weight", [output, hidden]), ("fc2.bias", [output])]
            }
        }
    }

    public let layers: Layers
    public let inputDim: Int
    public let outputDim: Int
    /// Nested output sizes the head was trained for, largest first (e.g. 512, 256, 128).
    public let matryoshka: [Int]
    /// Tensors in `layers.tensorShapes` order.
    public let tensors: [[Float]]
    public let metadata: HeadMetadata

    public init(layers: Layers, inputDim: Int, outputDim: Int, matryoshka: [Int], tensors: [[Float]], metadata: HeadMetadata) throws(ModelError) {
        let shapes = layers.tensorShapes(input: inputDim, output: outputDim)
        guard tensors.count == shapes.count else { throw .invalidInput("head has \(tensors.count) tensors, expected \(shapes.count)") }
        for (tensor, shape) in zip(tensors, shapes) where tensor.count != shape.shape.reduce(1, *) {
            throw .shapeMismatch(tensor: shape.name, got: [tensor.count], expected: shape.shape)
        }
        guard !matryoshka.isEmpty, matryoshka.allSatisfy({ $0 >= 1 && $0 <= outputDim }) else {
            throw .invalidConfig(key: "matryoshka", reason: "sizes \(matryoshka) must be within 1…\(outputDim)")
        }
        if case .mlp(let hidden, _) = layers, hidden < 1 { throw .invalidConfig(key: "hidden_dim", reason: "must be at least 1") }
        self.layers = layers
        self.inputDim = inputDim
        self.outputDim = outputDim
        self.matryoshka = matryoshka.sorted(by: >)
        self.tensors = tensors
        self.metadata = metadata
    }

    /// `<base model name>+<head name>@<hash>`, e.g. `omni-small+align@3f9c01ab22de`: the id
    /// records carry when the head is applied. The base's weights hash is part of the head's
    /// hash (see `HeadMetadata.hash`), so the id names the whole chain.
    public var modelID: String {
        let baseName = metadata.baseModel.split(separator: "@").first.map(String.init) ?? metadata.baseModel
        return "\(baseName)+\(metadata.name)@\(metadata.hash)"
    }

    /// y = head(x) for `rows` input rows (x: rows × inputDim) into `out` (rows × outputDim),
    /// before the Matryoshka cut. One GEMM per layer.
    public func forward(_ x: [Float], rows: Int) -> [Float] {
        precondition(x.count == rows * inputDim, "head input is \(x.count) values, expected \(rows) × \(inputDim)")
        var out = [Float](repeating: 0, count: rows * outputDim)
        x.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { out in
                switch layers {
                case .linear:
                    linear(x.baseAddress!, rows: rows, inFeatures: inputDim, weight: tensors[0], bias: tensors[1], outFeatures: outputDim, out: out.baseAddress!)
                case .mlp(let hidden, let activation):
                    var h = [Float](repeating: 0, count: rows * hidden)
                    h.withUnsafeMutableBufferPointer { h in
                        linear(x.baseAddress!, rows: rows, inFeatures: inputDim, weight: tensors[0], bias: tensors[1], outFeatures: hidden, out: h.baseAddress!)
                        for i in 0..<h.count { h[i] = activation.apply(h[i]) }
                        linear(h.baseAddress!, rows: rows, inFeatures: hidden, weight: tensors[2], bias: tensors[3], outFeatures: outputDim, out: out.baseAddress!)
                    }
                }
            }
        }
        return out
    }

    /// The embedding of one fused vector at a Matryoshka size: head(x)[0..<dims], L2-normalized.
    public func embed(_ x: [Float], dims: Int) -> [Float] {
        var y = Array(forward(x, rows: 1).prefix(dims))
        l2Normalize(&y)
        return y
    }

    /// Every row of `x` at `dims`, each normalized (rows × dims).
    public func embed(rows x: [Float], count: Int, dims: Int) -> [Float] {
        let y = forward(x, rows: count)
        var out = [Float](repeating: 0, count: count * dims)
        for r in 0..<count {
            var row = Array(y[(r * outputDim)..<(r * outputDim + dims)])
            l2Normalize(&row)
            out.replaceSubrange((r * dims)..<((r + 1) * dims), with: row)
        }
        return out
    }
}

extension ProjectionHead {
    /// `linear` with the weight and bias as arrays.
    private func linear(
        _ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, weight: [Float], bias: [Float], outFeatures: Int, out: UnsafeMutablePointer<Float>
    ) {
        weight.withUnsafeBufferPointer { w in
            bias.withUnsafeBufferPointer { b in
                EmberModel.linear(x, rows: rows, inFeatures: inFeatures, weight: w.baseAddress!, bias: b.baseAddress!, outFeatures: outFeatures, out: out)
            }
        }
    }
}
