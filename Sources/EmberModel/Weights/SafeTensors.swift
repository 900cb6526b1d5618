import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A memory-mapped `.safetensors` file: an 8-byte little-endian header length, a JSON
/// header `{name: {dtype, shape, data_offsets: [begin, end]}}`, then the raw tensor bytes.
/// Reads F32, F16, BF16 (widened to Float), I64 and U8; anything else is an error.
public final class SafeTensorsFile: @unchecked Sendable {
    /// One tensor's entry in the header.
    public struct Entry: Sendable, Equatable {
        public let dtype: String
        public let shape: [Int]
        /// Byte range relative to the start of the data section.
        public let range: Range<Int>
    }

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let base: UnsafeRawPointer
    private let size: Int
    private let dataStart: Int

    public var names: [String] { entries.keys.sorted() }

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ModelError.fileUnreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ModelError.fileUnreadable(path: path, reason: String(cString: strerror(errno))) }
        let size = Int(info.st_size)
        guard size >= 8 else { throw ModelError.truncatedFile(path: path, expectedBytes: 8, actualBytes: size) }
        guard let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapping != MAP_FAILED else {
            throw ModelError.fileUnreadable(path: path, reason: "mmap: \(String(cString: strerror(errno)))")
        }
        let base = UnsafeRawPointer(mapping)
        var parsed: (entries: [String: Entry], metadata: [String: String], dataStart: Int)
        do {
            parsed = try Self.parseHeader(base: base, size: size, path: path)
        } catch {
            munmap(mapping, size)
            throw error
        }
        self.base = base
        self.size = size
        self.entries = parsed.entries
        self.metadata = parsed.metadata
        self.dataStart = parsed.dataStart
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }

    private static func parseHeader(base: UnsafeRawPointer, size: Int, path: String) throws
        -> (entries: [String: Entry], metadata: [String: String], dataStart: Int)
    {
        // A length over Int.max must be an error, not a trap: checked as UInt64 first.
        let declaredLength = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
        guard declaredLength < 100_000_000, 8 + Int(declaredLength) <= size else {
            throw ModelError.truncatedFile(path: path, expectedBytes: Int(min(declaredLength, UInt64(Int.max - 8))) + 8, actualBytes: size)
        }
        let headerLength = Int(declaredLength)
        let headerData = Data(bytes: base + 8, count: headerLength)
        guard let json = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw ModelError.invalidHeader(path: path, reason: "header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        var dataEnd = 0
        for (name, value) in json {
            if name == "__metadata__" {
                for (key, item) in value as? [String: Any] ?? [:] { metadata[key] = "\(item)" }
                continue
            }
            guard let fields = value as? [String: Any], let dtype = fields["dtype"] as? String,
                let shape = (fields["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                let offsets = (fields["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                offsets.count == 2, offsets[0] <= offsets[1], offsets[0] >= 0, shape.allSatisfy({ $0 >= 0 })
            else { throw ModelError.invalidHeader(path: path, reason: "malformed entry for \(name)") }
            guard let width = Self.byteWidth(dtype) else { throw ModelError.unsupportedDType(tensor: name, dtype: dtype) }
            // Shapes come from the file: a product that overflows is a bad header, not a trap.
            let bytes = shape.reduce(Optional(width)) { product, dimension in
                product.flatMap { $0.multipliedReportingOverflow(by: dimension) }.flatMap { $0.overflow ? nil : $0.partialValue }
            }
            guard let bytes, offsets[1] - offsets[0] == bytes else {
                throw ModelError.invalidHeader(
                    path: path, reason: "\(name): \(offsets[1] - offsets[0]) bytes for shape \(shape) of \(dtype)")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
            dataEnd = max(dataEnd, offsets[1])
        }
        guard dataEnd <= size - dataStart else {
            let (expected, overflow) = dataStart.addingReportingOverflow(dataEnd)
            throw ModelError.truncatedFile(path: path, expectedBytes: overflow ? .max : expected, actualBytes: size)
        }
        return (entries, metadata, dataStart)
    }

    static func byteWidth(_ dtype: String) -> Int? {
        switch dtype {
        case "F32": 4
        case "F16", "BF16": 2
        case "I64": 8
        case "U8": 1
        default: nil
        }
    }

    /// The tensor widened to Float32 (F32, F16 or BF16), checked against `shape` when given.
    /// The copy is the model's; the mapped pages are released from this process's
    /// resident set right after, so loading does not hold the file twice.
    public func floats(_ name: String, shape expected: [Int]? = nil) throws -> [Float] {
        let values = try widened(name, shape: expected)
        if let entry = entries[name] { release(entry.range) }
        return values
    }

    /// Drops the mapped pages of a data range from the resident set (they are re-read from
    /// the file if touched again; the mapping is private and read-only).
    private func release(_ range: Range<Int>) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (dataStart + range.lowerBound) / page * page
        let end = min(size, (dataStart + range.upperBound + page - 1) / page * page)
        if end > start { madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED) }
    }

    private func widened(_ name: String, shape expected: [Int]?) throws -> [Float] {
        guard let entry = entries[name] else { throw ModelError.missingTensor(name) }
        if let expected, expected != entry.shape {
            throw ModelError.shapeMismatch(tensor: name, got: entry.shape, expected: expected)
        }
        let count = entry.shape.reduce(1, *)
        let source = base + dataStart + entry.range.lowerBound
        switch entry.dtype {
        case "F32":
            return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                memcpy(buffer.baseAddress!, source, count * 4)
                initialized = count
            }
        case "F16":
            return (0..<count).map { Float(Float16(bitPattern: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))) }
        case "BF16":
            return (0..<count).map {
                Float(bitPattern: UInt32(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) << 16)
            }
        default:
            throw ModelError.unsupportedDType(tensor: name, dtype: entry.dtype)
        }
    }

    /// A U8 tensor (quantized codes), checked against `shape`; copied like `floats`.
    public func bytes(_ name: String, shape expected: [Int]) throws -> [UInt8] {
        guard let entry = entries[name] else { throw ModelError.missingTensor(name) }
        guard entry.dtype == "U8" else { throw ModelError.unsupportedDType(tensor: name, dtype: entry.dtype) }
        guard entry.shape == expected else { throw ModelError.shapeMismatch(tensor: name, got: entry.shape, expected: expected) }
        let values = [UInt8](UnsafeRawBufferPointer(start: base + dataStart + entry.range.lowerBound, count: entry.range.count))
        release(entry.range)
        return values
    }

    /// An I64 tensor.
    public func int64s(_ name: String) throws -> [Int64] {
        guard let entry = entries[name] else { throw ModelError.missingTensor(name) }
        guard entry.dtype == "I64" else { throw ModelError.unsupportedDType(tensor: name, dtype: entry.dtype) }
        let source = base + dataStart + entry.range.lowerBound
        return (0..<entry.shape.reduce(1, *)).map { Int64(littleEndian: source.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
    }
}

/// Strict loading for one model: every tensor taken must exist with the expected shape,
/// and every tensor in the file must be taken (or explicitly ignored) by the end.
struct TensorLoader {
    let file: SafeTensorsFile
    private(set) var taken: Set<String> = []

    init(_ file: SafeTensorsFile) { self.file = file }

    mutating func take(_ name: String, _ shape: [Int]) throws -> [Float] {
        taken.insert(name)
        return try file.floats(name, shape: shape)
    }

    mutating func takeBytes(_ name: String, _ shape: [Int]) throws -> [UInt8] {
        taken.insert(name)
        return try file.bytes(name, shape: shape)
    }

    mutating func ignore(_ name: String) { taken.insert(name) }

    /// Throws when the file holds tensors the model did not ask for.
    func finish() throws {
        let extra = Set(file.entries.keys).subtracting(taken).sorted()
        if !extra.isEmpty { throw ModelError.unexpectedTensors(extra) }
    }
}
