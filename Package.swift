// swift-tools-version: 6.1
// Ember: a Kafka worker that turns newly uploaded short videos into omni-modal
// embeddings on the CPU. Layering (no cycles, C never leaks past its wrapper):
//   CRdKafka → EmberKafka ┐
//   CFFmpeg  → EmberMedia ├→ EmberPipeline → ember
//   COpenBLAS → EmberModel┘
import PackageDescription

let package = Package(
    name: "Ember",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ember", targets: ["ember"]),
        .library(name: "EmberKafka", targets: ["EmberKafka"]),
        .library(name: "EmberMedia", targets: ["EmberMedia"]),
        .library(name: "EmberModel", targets: ["EmberModel"]),
        .library(name: "EmberPipeline", targets: ["EmberPipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
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

        .target(name: "EmberKafka", dependencies: ["CRdKafka"]),
        .target(name: "EmberMedia", dependencies: ["CFFmpeg"]),
        .target(
            name: "EmberModel", dependencies: ["COpenBLAS"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        .target(name: "EmberPipeline", dependencies: ["EmberKafka", "EmberMedia", "EmberModel"]),
        .executableTarget(
            name: "ember",
            dependencies: [
                "EmberPipeline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        .testTarget(name: "EmberKafkaTests", dependencies: ["EmberKafka"]),
        .testTarget(name: "EmberMediaTests", dependencies: ["EmberMedia"]),
        .testTarget(name: "EmberModelTests", dependencies: ["EmberModel"]),
        .testTarget(name: "EmberCLITests", dependencies: ["ember"]),
    ],
    swiftLanguageModes: [.v6]
)
