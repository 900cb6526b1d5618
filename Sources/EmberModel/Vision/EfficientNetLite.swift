// EfficientNet-Lite (`efficientnet_lite_pytorch` 0.1.0, EfficientNet.extract_features +
// global average pooling): TF "SAME" padding, ReLU6, no squeeze-excite, batch norm
// folded into each convolution's weight and bias by the converter.
//
// Shape legend: N frames, C channels, S×S spatial; activations are (C, N, S, S) so every
// 1×1 convolution over the batch is one GEMM.

import EmberContract

/// One MBConv stage entry, decoded from strings like `r2_k3_s22_e6_i16_o24`.
public struct MBConvArguments: Sendable, Equatable {
    public var repeats, kernel, stride, expansion, input, output: Int

    init(_ text: String) throws {
        // r repeats, k kernel, s stride as "22" (square strides only: the first digit), e
        // expansion, i/o channels. Squeeze-excite ("se0.25") and "noskip" are not Lite: rejected.
        var values: [Character: Int] = [:]
        for part in text.split(separator: "_") {
            guard let key = part.first, let value = Int(part.dropFirst().prefix(key == "s" ? 1 : part.count)) else {
                throw ModelError.invalidConfig(key: "blocks", reason: "cannot parse \(text)")
            }
            values[key] = value
        }
        guard let r = values["r"], let k = values["k"], let s = values["s"], let e = values["e"], let i = values["i"], let o = values["o"],
            r > 0, k > 0, k % 2 == 1, s > 0, e > 0, i > 0, o > 0
        else { throw ModelError.invalidConfig(key: "blocks", reason: "\(text) needs positive r, k (odd), s, e, i, o") }
        (repeats, kernel, stride, expansion, input, output) = (r, k, s, e, i, o)
    }
}

/// One inverted-residual block: [expand 1×1 + ReLU6] → depthwise k×k + ReLU6 → project 1×1 [+ input].
/// (ReLU6 runs inside each convolution's output pass: `relu6: true`.)
struct MBConvBlock: Sendable {
    let input, expanded, output, kernel, stride: Int
    let expand, expandBias: [Float]?        // _blocks.N._expand_conv (+ folded _bn0)
    let depthwise, depthwiseBias: [Float]   // _blocks.N._depthwise_conv (+ folded _bn1)
    let project, projectBias: [Float]       // _blocks.N._project_conv (+ folded _bn2)
    var expandBF16, projectBF16: BF16Rows?  // ComputePrecision.bf16 only
    var residual: Bool { stride == 1 && input == output }

    init(_ loader: inout TensorLoader, index n: Int, input: Int, output: Int, arguments a: MBConvArguments) throws {
        let p = "_blocks.\(n)."
        self.input = input
        self.output = output
        expanded = input * a.expansion
        kernel = a.kernel
        stride = a.stride
        if a.expansion != 1 {
            expand = try loader.take(p + "_expand_conv.weight", [expanded, input, 1, 1])
            expandBias = try loader.take(p + "_expand_conv.bias", [expanded])
        } else {
            expand = nil
            expandBias = nil
        }
        depthwise = try loader.take(p + "_depthwise_conv.weight", [expanded, 1, kernel, kernel])
        depthwiseBias = try loader.take(p + "_depthwise_conv.bias", [expanded])
        project = try loader.take(p + "_project_conv.weight", [output, expanded, 1, 1])
        projectBias = try loader.take(p + "_project_conv.bias", [output])
    }
}

/// The vision tower: preprocessed frames in, one pooled feature vector per frame out.
public final class EfficientNetLite: Sendable {
    public let config: EfficientNetLiteConfig
    let stem, stemBias: [Float]   // _conv_stem (+ folded _bn0)
    let blocks: [MBConvBlock]
    let head, headBias: [Float]   // _conv_head (+ folded _bn1)
    let classifier, classifierBias: [Float]?  // _fc: ImageNet logits, only for checks
    let headBF16: BF16Rows?
    public let precision: ComputePrecision

    public var featureWidth: Int { config.headChannels }

    /// In bf16 mode, 1×1 convolutions with at least this many input and output channels run
    /// in bf16 (in Lite0: from the 40-channel stage at 28×28 on). The wider early layers
    /// have few channels, are memory-bound and gained little, while their rounding spread
    /// through the whole network: on the bench's frames, per-frame cosine to fp32 was 0.9986
    /// with every 1×1 convolution in bf16, 0.9996 with this rule, for 23% less CPU than
    /// fp32 against 27% (measured with `ember bench engine --bf16 --only vision`).
    static let bf16MinimumChannels = 40

    /// `precision` .bf16 (AVX512-BF16 CPUs only) runs the 1×1 convolutions of at least
    /// `bf16MinimumChannels` channels in bf16 with fp32 sums; the stem, depthwise
    /// convolutions, the other 1×1 convolutions and pooling stay fp32.
    public init(weights file: SafeTensorsFile, config: EfficientNetLiteConfig, precision: ComputePrecision = .fp32) throws {
        self.config = config
        self.precision = precision
        guard config.batchNormFolded else {
            throw ModelError.invalidConfig(key: "batch_norm_folded", reason: "the runtime expects batch norm folded by the converter")
        }
        let stages = try config.blocks.map(MBConvArguments.init)
        guard !stages.isEmpty else { throw ModelError.invalidConfig(key: "blocks", reason: "empty") }
        var loader = TensorLoader(file)
        stem = try loader.take("_conv_stem.weight", [config.stemChannels, 3, 3, 3])
        stemBias = try loader.take("_conv_stem.bias", [config.stemChannels])
        // Block expansion as in the reference: the stem width feeds the first stage; every
        // repeat after the first keeps the stage's output width and stride 1.
        var blocks: [MBConvBlock] = []
        var channels = config.stemChannels
        for stage in stages {
            for r in 0..<stage.repeats {
                var arguments = stage
                if r > 0 { arguments.stride = 1 }
                var block = try MBConvBlock(&loader, index: blocks.count, input: r == 0 ? channels : stage.output,
                                            output: stage.output, arguments: arguments)
                if precision == .bf16 {
                    if min(block.input, block.expanded) >= Self.bf16MinimumChannels {
                        block.expandBF16 = block.expand.map { BF16Rows($0, rows: block.expanded, columns: block.input) }
                    }
                    if min(block.output, block.expanded) >= Self.bf16MinimumChannels {
                        block.projectBF16 = BF16Rows(block.project, rows: block.output, columns: block.expanded)
                    }
                }
                blocks.append(block)
            }
            channels = stage.output
        }
        self.blocks = blocks
        head = try loader.take("_conv_head.weight", [config.headChannels, channels, 1, 1])
        headBias = try loader.take("_conv_head.bias", [config.headChannels])
        headBF16 = precision == .bf16 ? BF16Rows(head, rows: config.headChannels, columns: channels) : nil
        if let classes = config.numClasses, file.entries["_fc.weight"] != nil {
            classifier = try loader.take("_fc.weight", [classes, config.headChannels])
            classifierBias = try loader.take("_fc.bias", [classes])
        } else {
            classifier = nil
            classifierBias = nil
        }
        try loader.finish()
    }

    /// Frames per CNN pass: bounds scratch memory (about 11.6 MB per 224² frame) while
    /// keeping every 1×1 convolution a large GEMM (n = frames · H · W ≥ 4 · 49).
    public static let framesPerPass = 4

    /// Scratch floats one pass of `n` frames of size S needs: ping-pong block buffers,
    /// expanded and depthwise activations, stem columns and the (3, N, S, S) input; one
    /// padded depthwise plane and one expand + depthwise band per thread.
    public func scratchFloats(frames n: Int, size: Int, threads: Int = 1) -> Int {
        let plan = plan(size: size)
        return n * (2 * plan.io + plan.expanded + plan.depthwise + 27 * plan.stem * plan.stem + 3 * size * size)
            + max(threads, 1) * plan.paddedPlane + (precision == .bf16 ? plan.bf16(n) : 0) + bandFloats(threads: threads)
    }

    /// Per-thread bands of `expandDepthwiseConv` (only where its kernels run).
    private func bandFloats(threads: Int) -> Int { depthwiseAVX512Available ? max(threads, 1) * expandDepthwiseBandFloats : 0 }

    private func plan(size: Int) -> (stem: Int, io: Int, expanded: Int, depthwise: Int, paddedPlane: Int, bf16: (Int) -> Int) {
        let stem = SamePadding(input: size, kernel: 3, stride: 2).output
        var spatial = stem
        var io = config.stemChannels * spatial * spatial, expanded = 0, depthwise = 0, paddedPlane = 0
        var pointwise: [(inChannels: Int, spatial: Int)] = []  // per frame, for the bf16 packing scratch
        for block in blocks {
            pointwise.append((block.input, spatial * spatial))
            expanded = max(expanded, block.expanded * spatial * spatial)
            spatial = SamePadding(input: spatial, kernel: block.kernel, stride: block.stride).output
            depthwise = max(depthwise, block.expanded * spatial * spatial)
            paddedPlane = max(paddedPlane, depthwisePaddedPlane(outHeight: spatial, outWidth: spatial, kernel: block.kernel, stride: block.stride))
            io = max(io, block.output * spatial * spatial)
            pointwise.append((block.expanded, spatial * spatial))
        }
        pointwise.append((blocks.last?.output ?? 0, spatial * spatial))
        let bf16 = { (n: Int) in pointwise.map { pointwiseBF16ScratchFloats(inChannels: $0.inChannels, spatial: n * $0.spatial) }.max() ?? 0 }
        return (stem, max(io, config.headChannels * spatial * spatial), expanded, depthwise, paddedPlane, bf16)
    }

    /// Pooled features (N, headChannels) of a `FrameBatch`: (N, 3, S, S), normalized as
    /// the manifest's preprocessing says. Runs in passes of `framesPerPass` frames;
    /// `threads` is how many threads a pass may use (see Parallel.swift), results do not
    /// depend on it.
    public func features(_ batch: FrameBatch, arena: ScratchArena, threads: Int = 1) throws -> [Float] {
        guard batch.size >= 1 else { throw ModelError.invalidInput("frames of size \(batch.size)") }
        let frameValues = batch.frameValues
        var pooled = [Float](repeating: 0, count: batch.count * config.headChannels)
        batch.values.withUnsafeBufferPointer { frames in
            pooled.withUnsafeMutableBufferPointer { out in
                var first = 0
                while first < batch.count {
                    let n = min(Self.framesPerPass, batch.count - first)
                    forward(frames.baseAddress! + first * frameValues, count: n, size: batch.size, arena: arena, threads: threads,
                            pooled: out.baseAddress! + first * config.headChannels)
                    first += n
                }
            }
        }
        return pooled
    }

    /// One CNN pass over n frames (N, 3, S, S) → pooled (n, headChannels).
    private func forward(_ frames: UnsafePointer<Float>, count n: Int, size: Int, arena: ScratchArena, threads: Int,
                         pooled: UnsafeMutablePointer<Float>) {
        let plan = plan(size: size)
        arena.begin(floats: scratchFloats(frames: n, size: size, threads: threads))
        var a = arena.carve(plan.io * n), b = arena.carve(plan.io * n)
        let expanded = arena.carve(plan.expanded * n), depthwised = arena.carve(plan.depthwise * n)
        let columns = arena.carve(27 * n * plan.stem * plan.stem), input = arena.carve(3 * n * size * size)
        let planes = arena.carve(max(threads, 1) * plan.paddedPlane)
        let bands = arena.carve(bandFloats(threads: threads))
        let bf16 = precision == .bf16 ? arena.carve(plan.bf16(n)) : nil

        // (N, 3, S, S) → (3, N, S, S)
        let plane = size * size
        for i in 0..<n {
            for c in 0..<3 { (input + (c * n + i) * plane).update(from: frames + (i * 3 + c) * plane, count: plane) }
        }
        let stemPad = SamePadding(input: size, kernel: 3, stride: 2)
        var s = plan.stem
        conv2d(input, inChannels: 3, images: n, height: size, width: size, weight: stem, bias: stemBias,
               outChannels: config.stemChannels, kernel: 3, stride: 2, padTop: stemPad.before, padLeft: stemPad.before,
               outHeight: s, outWidth: s, relu6: true, columns: columns, out: a, threads: threads)

        for block in blocks {
            let pad = SamePadding(input: s, kernel: block.kernel, stride: block.stride)
            let o = pad.output
            // fp32 expand and depthwise fused by bands of rows where they fit (see expandDepthwiseConv).
            if let expand = block.expand, block.expandBF16 == nil,
               expandDepthwiseFits(channels: block.expanded, height: s, width: s, kernel: block.kernel) {
                expandDepthwiseConv(a, inChannels: block.input, images: n, height: s, width: s, expandWeight: expand,
                                    expandBias: block.expandBias, channels: block.expanded, weight: block.depthwise,
                                    bias: block.depthwiseBias, kernel: block.kernel, stride: block.stride, padTop: pad.before,
                                    padLeft: pad.before, outHeight: o, outWidth: o, relu6: true, scratch: bands, out: depthwised,
                                    threads: threads)
            } else {
                var source = UnsafePointer(a)
                if let expand = block.expand, let expandBias = block.expandBias {
                    pointwiseConv(a, inChannels: block.input, spatial: n * s * s, weight: expand, bias: expandBias, outChannels: block.expanded,
                                  relu6: true, out: expanded, bf16: block.expandBF16, scratch: bf16, threads: threads)
                    source = UnsafePointer(expanded)
                }
                depthwiseConv(source, channels: block.expanded, images: n, height: s, width: s,
                              weight: block.depthwise, bias: block.depthwiseBias, kernel: block.kernel, stride: block.stride,
                              padTop: pad.before, padLeft: pad.before, outHeight: o, outWidth: o, relu6: true,
                              scratch: planes, out: depthwised, threads: threads)
            }
            pointwiseConv(depthwised, inChannels: block.expanded, spatial: n * o * o, weight: block.project,
                          bias: block.projectBias, outChannels: block.output, out: b, bf16: block.projectBF16, scratch: bf16, threads: threads)
            if block.residual { addInPlace(b, a, count: block.output * n * o * o, threads: threads) }
            swap(&a, &b)
            s = o
        }
        pointwiseConv(a, inChannels: blocks.last!.output, spatial: n * s * s, weight: head, bias: headBias,
                      outChannels: config.headChannels, relu6: true, out: b, bf16: headBF16, scratch: bf16, threads: threads)
        globalAveragePool(b, channels: config.headChannels, images: n, spatial: s * s, out: pooled)
    }

    /// ImageNet logits (N, classes) from pooled features (N, headChannels); nil without `_fc`.
    public func logits(features: [Float], count n: Int) -> [Float]? {
        guard let classifier, let classifierBias, let classes = config.numClasses else { return nil }
        var out = [Float](repeating: 0, count: n * classes)
        linear(features, rows: n, inFeatures: config.headChannels, weight: classifier, bias: classifierBias, outFeatures: classes, out: &out)
        return out
    }
}

/// `towers.vision.config`, written by the converter from the reference's builder.
public struct EfficientNetLiteConfig: Codable, Sendable {
    /// Stage strings as in `efficientnet_lite_pytorch.utils.efficientnet_lite`, e.g. `r2_k3_s22_e6_i16_o24`.
    public var blocks: [String]
    public var stemChannels: Int
    public var headChannels: Int
    public var numClasses: Int?
    public var batchNormFolded: Bool
}
