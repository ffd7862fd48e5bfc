import MicrolithTestSupport

/// A WebSocket client on a plain loopback socket (RFC 6455 by hand), so a test sees the upgrade
/// answer, every frame and close code the server sends, and can stop reading.
final class WebSocketTestClient {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A frame from the server.
    struct Frame {
        var opcode: UInt8
        var payload: [UInt8]

        var text: String { String(decoding: payload, as: UTF8.self) }
        /// The close code of a close frame.
        var closeCode: Int? { opcode == 0x8 && payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : nil }
        var closeReason: String { String(decoding: payload.dropFirst(2), as: UTF8.self) }
    }

    private let socket: LoopbackSocket
    private var buffer: [UInt8] = []
    /// The upgrade answer's status line and header lines.
    private(set) var head = ""
    /// Whether the server closed the TCP connection.
    private(set) var closed = false

    /// Connects to `127.0.0.1:port` and asks to upgrade `path`, offering `subprotocol` when given;
    /// `receiveBufferBytes` shrinks the socket's receive buffer.
    init(port: Int, path: String, subprotocol: String? = nil, receiveBufferBytes: Int? = nil) async throws {
        socket = try LoopbackSocket(port: port, receiveBufferBytes: receiveBufferBytes)
        var request = "GET \(path) HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        if let subprotocol { request += "Sec-WebSocket-Protocol: \(subprotocol)\r\n" }
        try socket.send(request + "\r\n")
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            if let range = buffer.firstRange(of: end) {
                head = String(decoding: buffer[..<range.lowerBound], as: UTF8.self)
                buffer.removeSubrange(..<range.upperBound)
                return
            }
            guard try await fill(until: deadline) else { throw Failure(description: "no upgrade answer: \(String(decoding: buffer, as: UTF8.self))") }
        }
    }

    /// Whether the server switched protocols.
    var upgraded: Bool { head.hasPrefix("HTTP/1.1 101") }

    /// The next frame, or `nil` when the connection closed or `timeout` passed first.
    func next(timeout: Duration = .seconds(10)) async throws -> Frame? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let frame = parse() { return frame }
            guard try await fill(until: deadline) else { return nil }
        }
    }

    /// The next text or close frame, skipping pings and pongs.
    func nextMessage(timeout: Duration = .seconds(10)) async throws -> Frame? {
        while let frame = try await next(timeout: timeout) {
            if frame.opcode == 0x1 || frame.opcode == 0x8 || frame.opcode == 0x2 { return frame }
        }
        return nil
    }

    /// Sends a masked text frame.
    func send(_ text: String) throws {
        let payload = Array(text.utf8)
        var frame: [UInt8] = [0x81]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else {
            frame.append(0x80 | 126)
            frame += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try socket.send(frame)
    }

    /// Waits until the server closes the TCP connection (reading and dropping what comes), or
    /// `timeout` passes; returns whether it closed.
    func waitUntilClosed(within timeout: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !closed {
            buffer.removeAll()
            guard try await fill(until: deadline) else { return closed }
        }
        return true
    }

    /// Reads what is there into the buffer; false when the connection closed or the deadline passed.
    private func fill(until deadline: ContinuousClock.Instant) async throws -> Bool {
        switch try await socket.read(until: deadline) {
        case .bytes(let bytes):
            buffer += bytes
            return true
        case .closed:
            closed = true
            return false
        case .timedOut:
            return false
        }
    }

    /// Takes one whole frame off the buffer (the server does not mask).
    private func parse() -> Frame? {
        guard buffer.count >= 2 else { return nil }
        var length = Int(buffer[1] & 0x7F)
        var offset = 2
        if length == 126 {
            guard buffer.count >= 4 else { return nil }
            length = Int(buffer[2]) << 8 | Int(buffer[3])
            offset = 4
        } else if length == 127 {
            guard buffer.count >= 10 else { return nil }
            length = buffer[2..<10].reduce(0) { $0 << 8 | Int($1) }
            offset = 10
        }
        guard buffer.count >= offset + length else { return nil }
        let frame = Frame(opcode: buffer[0] & 0x0F, payload: Array(buffer[offset..<offset + length]))
        buffer.removeSubrange(..<(offset + length))
        return frame
    }
}
