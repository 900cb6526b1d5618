import Foundation

/// Writes F32 tensors as a `.safetensors` file (header entries in the given order, data
/// 8-byte aligned). Used to hand benchmark inputs to the PyTorch reference and to save
/// codebooks. `metadata` becomes the `__metadata__` entry, keys sorted, so equal inputs
/// give equal bytes.
public func writeSafeTensors(
    _ tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String] = [:], to url: URL
) throws {
    var header: [String] = []
    if !metadata.isEmpty {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        header.append("\"__metadata__\":" + String(decoding: try encoder.encode(metadata), as: UTF8.self))
    }
    var offset = 0
    for tensor in tensors {
        guard tensor.shape.reduce(1, *) == tensor.values.count else {
            throw ModelError.invalidInput("\(tensor.name): shape \(tensor.shape) does not hold \(tensor.values.count) values")
        }
        let end = offset + tensor.values.count * 4
        let shape = tensor.shape.map(String.init).joined(separator: ",")
        header.append("\"\(tensor.name)\":{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
        offset = end
    }
    var json = Array("{\(header.joined(separator: ","))}".utf8)
    json += [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8)
    var data = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(contentsOf: json)
    for tensor in tensors {
        tensor.values.withUnsafeBytes { data.append(contentsOf: $0) }
    }
    try data.write(to: url, options: .atomic)
}
