// swift-tools-version: 6.1
// libFuzzer targets for Ember's parsers of untrusted input (README, "Reliability:
// fuzzing, SSRF and hostile input"). A package of its own so the normal build never
// compiles them; Ops/fuzz builds it with `-sanitize=fuzzer,address` into .build-fuzz.
// Debug builds are compiled with -enable-testing, so targets reach internal API.
import Foundation
import PackageDescription

// A path dependency is named after its directory, which differs between checkouts.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let ember = root.lastPathComponent

func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(
        name: name, dependencies: ["FuzzSupport"] + products.map { .product(name: $0, package: ember) },
        swiftSettings: [.unsafeFlags(["-parse-as-library"])])
}

let package = Package(
    name: "EmberFuzz",
    dependencies: [.package(path: root.path)],
    targets: [
        .target(name: "FuzzSupport"),
        fuzzTarget("FuzzUploadEvent", ["EmberPipeline"]),
        fuzzTarget("FuzzManifest", ["EmberModel"]),
        fuzzTarget("FuzzSafeTensors", ["EmberModel"]),
        fuzzTarget("FuzzWordPiece", ["EmberModel"]),
        fuzzTarget("FuzzURIPolicy", ["EmberMedia"]),
        fuzzTarget("FuzzMedia", ["EmberMedia"]),
    ],
    swiftLanguageModes: [.v6]
)
