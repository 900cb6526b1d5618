// swift-tools-version: 6.1
// Ember: a Kafka worker that turns newly uploaded short videos into omni-modal
// embeddings on the CPU. Layering (no cycles, C never leaks past its wrapper):
//   EmberContract (pure Swift) ──┬──────────────┐
//   CFFmpeg  → EmberMedia ←──────┘              │
//   COpenBLAS, CEmberBF16 → EmberModel ←─────────┘
//   CRdKafka → EmberKafka
//   EmberKafka, EmberMedia, EmberModel, EmberContract → EmberPipeline → ember
import PackageDescription

let package = Package(
    name: "Ember",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ember", targets: ["ember"]),
        .library(name: "EmberContract", targets: ["EmberContract"]),
        .library(name: "EmberKafka", targets: ["EmberKafka"]),
        .library(name: "EmberMedia", targets: ["EmberMedia"]),
        .library(name: "EmberModel", targets: ["EmberModel"]),
        .library(name: "EmberPipeline", targets: ["EmberPipeline"]),
        .library(name: "EmberAlign", targets: ["EmberAlign"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.0.0", traits: [.defaults, "YAML"]),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        // Already resolved through swift-configuration's YAML trait; used directly to list
        // the keys a configuration file sets (unknown keys are start-up errors).
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        // W3C trace context and per-stage spans; an exporter (swift-otel) is left to the
        // deployment (README, "Tracing").
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.0"),
        // /metrics, /healthz, /readyz (README, "HTTP server": measured against Hummingbird).
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
        // Protocol Buffers output records: the runtime only; the generated code is committed.
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // System libraries: a module map plus shim.h with static inline wrappers for
        // what Swift cannot import (function-like macros, variadic functions).
        .systemLibrary(
            name: "CRdKafka", path: "Sources/CRdKafka", pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(
            name: "CFFmpeg", path: "Sources/CFFmpeg", pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswscale-dev", "libswresample-dev"])]),
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),

        // The model contract between media and model: manifest preprocessing, LogMel,
        // frame batches, modalities, failure classes, counts, source positions. No C.
        .target(name: "EmberContract"),
        .target(
            name: "EmberKafka",
            dependencies: ["CRdKafka", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "EmberMedia",
            dependencies: ["CFFmpeg", "EmberContract", .product(name: "Logging", package: "swift-log")]),
        // EmberModel's AVX-512 kernels: bf16 GEMM (Swift cannot emit vdpbf16ps), depthwise and 1×1 convolutions.
        // -O3 in every configuration: the kernels are hot loops that -O0 (debug) slows about tenfold,
        // and -O3 keeps the GEMM tile's accumulators in registers where -O2 spills them (≈ 3%).
        .target(name: "CEmberBF16", cSettings: [.unsafeFlags(["-O3"])]),
        .target(
            name: "EmberModel",
            dependencies: ["COpenBLAS", "CEmberBF16", "EmberContract", .product(name: "Logging", package: "swift-log")],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        .target(
            name: "EmberPipeline",
            dependencies: [
                "EmberContract", "EmberKafka", "EmberMedia", "EmberModel",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]),
        // `ember align`: trains a recommendation-aware projection head over frozen fused
        // embeddings (hand-written backprop, GEMMs through EmberModel's `gemm`). The worker
        // applies the head with EmberModel's `ProjectionHead` and does not link this.
        .target(
            name: "EmberAlign",
            dependencies: ["EmberModel", .product(name: "Logging", package: "swift-log")],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        .executableTarget(
            name: "ember",
            dependencies: [
                "EmberPipeline",
                "EmberAlign",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "FlyingFox", package: "FlyingFox"),
            ]),

        .testTarget(name: "EmberKafkaTests", dependencies: ["EmberKafka"]),
        .testTarget(name: "EmberMediaTests", dependencies: ["EmberContract", "EmberMedia"], exclude: ["Fixtures"]),
        .testTarget(name: "EmberModelTests", dependencies: ["EmberContract", "EmberMedia", "EmberModel"], exclude: ["Fixtures"]),
        .testTarget(
            name: "EmberPipelineTests",
            dependencies: ["EmberContract", "EmberPipeline", .product(name: "InMemoryTracing", package: "swift-distributed-tracing")]),
        .testTarget(name: "EmberAlignTests", dependencies: ["EmberAlign", "EmberModel"]),
        .testTarget(name: "EmberCLITests", dependencies: ["ember", .product(name: "Yams", package: "Yams")]),
        .testTarget(name: "EmberWorkerTests", dependencies: ["EmberKafka", "EmberModel", "EmberPipeline", "ember"]),
    ],
    swiftLanguageModes: [.v6]
)
