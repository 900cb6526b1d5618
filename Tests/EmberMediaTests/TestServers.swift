import Foundation

/// A small Python server started by a test and stopped when the test ends (or when
/// the test process dies: the server exits when its stdin closes).
///
/// - `.files(directory)`: `python3 -m http.server` on the directory.
/// - `.stall`: accepts connections and never answers.
/// - `.partial(file, bytes)`: answers 200 with the file's full length but sends
///   only its first `bytes`, then stalls.
final class TestServer {
    enum Kind {
        case files(String)
        case stall
        case partial(String, Int)
        /// Answers every request with a 302 to this URL.
        case redirect(String)
        /// Answers 200 with the file's length, then sends one byte every 0.2 s.
        case drip(String)
    }

    let port: Int
    private let process: Process
    private let input: Pipe

    private static let script = #"""
        import functools, http.server, os, socket, sys, threading, time
        threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
        mode = sys.argv[1]
        if mode == "files":
            handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2])
            handler.log_message = lambda *args: None
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            print(server.server_address[1], flush=True)
            server.serve_forever()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        print(listener.getsockname()[1], flush=True)
        held = []
        while True:
            connection, _ = listener.accept()
            held.append(connection)
            if mode == "redirect":
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % sys.argv[2].encode())
                connection.close()
            if mode == "drip":
                def drip(connection, data):
                    try:
                        connection.recv(65536)
                        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: %d\r\n\r\n" % len(data))
                        for i in range(len(data)):
                            connection.sendall(data[i : i + 1])
                            time.sleep(0.2)
                    except OSError:
                        pass
                threading.Thread(target=drip, args=(connection, open(sys.argv[2], "rb").read()), daemon=True).start()
            if mode == "partial":
                data = open(sys.argv[2], "rb").read()
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: %d\r\n\r\n" % len(data))
                connection.sendall(data[: int(sys.argv[3])])
        """#

    init(_ kind: Kind) throws {
        var arguments = ["python3", "-u", "-c", Self.script]
        switch kind {
        case .files(let directory): arguments += ["files", directory]
        case .stall: arguments += ["stall"]
        case .partial(let file, let bytes): arguments += ["partial", file, String(bytes)]
        case .redirect(let target): arguments += ["redirect", target]
        case .drip(let file): arguments += ["drip", file]
        }
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The first line is the port.
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw FixtureError(message: "test server did not report a port: \(String(decoding: line, as: UTF8.self))")
        }
        self.port = port
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)/\(path)" }

    deinit {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

/// A TCP port on loopback that nothing listens on (bound, then closed).
func closedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            _ = bind(fd, pointer, length)
            return getsockname(fd, pointer, &length)
        }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
