// swift-tools-version: 6.1
// Ember's side of the Qwen2-VL vision tower benchmark (Ops/reference/qwen2_vl_vision_bench.py
// is transformers' side and makes the weights and frames). Not part of the Ember build:
//   cd Ops/reference/qwen2_vl_vision_bench && swift run -c release qwen2-vision-bench DIR 448 1 3 2 [fp32|bf16]
import PackageDescription

let package = Package(
    name: "qwen2-vision-bench",
    dependencies: [.package(name: "Ember", path: "../../..")],
    targets: [
        .executableTarget(name: "qwen2-vision-bench", dependencies: [.product(name: "EmberModel", package: "Ember")]),
    ],
    swiftLanguageModes: [.v6]
)
