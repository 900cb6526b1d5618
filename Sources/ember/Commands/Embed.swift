import ArgumentParser
import EmberMedia
import EmberModel
import EmberPipeline
import Foundation
import Logging

/// `ember embed`: embeds one item given on the command line and prints its output
/// record. Local files and loopback URLs are allowed here: the operator chose them.
struct Embed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed one item and print its output record as JSON.",
        discussion: "Exits non-zero with a one-line reason (the dead-letter class) when the item cannot be embedded.")

    @Option(help: "Video URI or local path.") var video: String?
    @Option(help: "Cover image URI or local path.") var cover: String?
    @Option(help: "Title.") var title: String?
    @Option(help: "Comma-separated tags.") var tags: String?
    @Option(help: "On-screen text.") var ocr: String?
    @Option(help: "Speech transcript.") var asr: String?
    @Option(help: "Author.") var author: String?
    @Option(help: "Item id written into the record.") var itemID = "cli"
    @Option(help: "Model directory (default: EMBER_MODEL_DIR or ~/.cache/ember/models/omni-small).") var model: String?
    @Option(help: "Arithmetic: auto, fp32 or bf16, as the worker's model.precision (default: EMBER_MODEL_PRECISION or auto).")
    var precision: String?
    @Option(help: "Vector encoding: f32, f16, int8 or binary.") var encoding: String = "f16"
    @Option(help: .hidden) var dtype: String?
    @Option(help: "Semantic-ID codebook trained for the model (default: EMBER_MODEL_CODEBOOK).") var codebook: String?
    @Option(help: "Semantic-ID disambiguation: none or item_hash.") var disambiguation: String = "none"
    @Option(help: "Record format: json, or protobuf (binary, to stdout).") var format: String = "json"
    @Option(help: "Projection head from ember align train, applied after fusion (default: EMBER_MODEL_HEAD).") var head: String?
    @Option(help: "Matryoshka size of the head's output (default: its largest).") var headDims: Int?
    @Flag(help: "With --head, the record carries the fused vector too.") var rawVector = false
    @Flag(help: "Transcribe the video's speech when --asr is not given (the worker's asr.enabled).") var transcribe = false

    func run() async throws {
        // --dtype f16|f32 is the earlier name of --encoding.
        guard let encoding = VectorEncoding(rawValue: dtype ?? encoding) else {
            throw ValidationError("--encoding must be one of f32, f16, int8, binary")
        }
        guard let disambiguation = SemanticIDDisambiguation(rawValue: disambiguation) else {
            throw ValidationError("--disambiguation must be none or item_hash")
        }
        guard let format = RecordFormat(rawValue: format) else { throw ValidationError("--format must be json or protobuf") }
        let precisionName = precision ?? ProcessInfo.processInfo.environment["EMBER_MODEL_PRECISION"] ?? "auto"
        guard let setting = PrecisionSetting(rawValue: precisionName.lowercased()) else {
            throw ValidationError("--precision must be auto, fp32 or bf16, not \(precisionName)")
        }
        let precision: ComputePrecision
        do { precision = try ModelPrecision.resolve(setting) } catch { throw ValidationError("--precision \(setting.rawValue): \(error)") }
        let level = ProcessInfo.processInfo.environment["EMBER_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) }
        ProcessLogging.bootstrap(level: level ?? .warning)
        let event = UploadEvent(
            itemID: itemID, videoURI: video.map(Self.uri), coverURI: cover.map(Self.uri), title: title,
            tags: tags?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }, ocrText: ocr, asrText: asr,
            author: author)
        do {
            let encoded = try JSONEncoder().encode(event)
            _ = try UploadEvent.parse([UInt8](encoded))  // the same validation as the worker
            let directory = model ?? ModelDirectory.resolved()
            let engine: EmbeddingEngine
            do {
                BLASThreads.count = 1
                engine = try EmbeddingEngine(modelDirectory: URL(fileURLWithPath: directory), precision: precision)
            } catch {
                throw ItemFailure(.modelError, "cannot load the model from \(directory): \(error)")
            }
            var media = MediaConfiguration()
            media.uriPolicy = URIPolicy(mediaRoot: "/", blockPrivateAddresses: false)
            var processor = try MediaModelProcessor(engine: engine, media: media)
            if let path = head ?? ProcessInfo.processInfo.environment["EMBER_MODEL_HEAD"], !path.isEmpty {
                do {
                    processor.head = try AppliedHead(
                        head: try ProjectionHead(contentsOf: URL(fileURLWithPath: path)), dims: headDims, keepRaw: rawVector,
                        modelID: engine.modelID, modelDim: engine.manifest.output.dim)
                } catch {
                    throw ItemFailure(.modelError, "head \(path): \(error)")
                }
            }
            if let path = codebook ?? ProcessInfo.processInfo.environment["EMBER_MODEL_CODEBOOK"], !path.isEmpty {
                do {
                    processor.semanticIDs = try SemanticIDAssigner(
                        codebook: try Codebook(contentsOf: URL(fileURLWithPath: path)), disambiguation: disambiguation,
                        modelID: processor.modelID, dim: processor.outputDim)
                } catch {
                    throw ItemFailure(.modelError, "codebook \(path): \(error)")
                }
            }
            if transcribe, let encoder = engine.audio {
                do {
                    processor.speech = SpeechTranscription(
                        transcriber: try SpeechTranscriber(modelDirectory: URL(fileURLWithPath: directory), manifest: engine.manifest, encoder: encoder),
                        threads: 1, logger: Logger(label: "ember.asr"))
                } catch {
                    throw ItemFailure(.modelError, "--transcribe: \(error)")
                }
            }
            let prepared = try processor.prepare(event)
            guard let result = processor.embed([prepared]).first else { throw ItemFailure(.modelError, "no result") }
            let embedded = try result.get()
            var record = EmbeddingRecord(
                itemID: itemID, model: processor.modelID, vector: embedded.vector, encoding: encoding,
                semanticID: embedded.semanticID, matryoshka: embedded.matryoshka, raw: embedded.raw, modalities: embedded.modalities,
                source: nil, uploadedAt: nil,
                embeddedAt: Date())
            record.attach(embedded.transcript)
            switch format {
            case .json: print(String(decoding: try record.jsonBytes(), as: UTF8.self))
            case .protobuf: FileHandle.standardOutput.write(Data(try record.protobufBytes()))
            }
        } catch let failure as ItemFailure {
            FileHandle.standardError.write(Data("ember: \(failure.failureClass.rawValue): \(failure.message)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// Plain paths become absolute file URIs.
    static func uri(_ value: String) -> String {
        if value.contains("://") { return value }
        return URL(fileURLWithPath: value).absoluteURL.absoluteString
    }
}
