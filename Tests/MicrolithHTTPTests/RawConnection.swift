import MicrolithTestSupport
import Synchronization

/// A client socket to a loopback port that reads only when a test says so: a test plays with it
/// the client that stops reading, and sees what the server wrote and whether it closed.
final class RawConnection: Sendable {
    private let socket: LoopbackSocket
    private let state = Mutex<(data: [UInt8], closed: Bool)>(([], false))

    /// Connects to `127.0.0.1:port`; `receiveBufferBytes` shrinks the socket's receive buffer
    /// (set before connecting, so the window the server sees is small from the start).
    init(port: Int, receiveBufferBytes: Int? = nil) throws {
        socket = try LoopbackSocket(port: port, receiveBufferBytes: receiveBufferBytes)
    }

    /// Sends `text` whole.
    func send(_ text: String) throws {
        try socket.send(text)
    }

    /// Everything read so far.
    var data: [UInt8] { state.withLock { $0.data } }

    /// Everything read so far, as text.
    var text: String { String(decoding: data, as: UTF8.self) }

    /// Whether the server closed the connection (end of stream or reset) and all it sent was read.
    var closed: Bool { state.withLock { $0.closed } }

    /// Reads what arrives until `done` holds for the last KiB read so far (as text, tested after
    /// each read), the server closes, or `timeout` passes. Returns whether `done` held or the
    /// connection closed.
    @discardableResult
    func read(for timeout: Duration, until done: (_ tail: String) -> Bool = { _ in false }) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            switch try await socket.read(until: deadline) {
            case .bytes(let bytes):
                let tail = state.withLock { s in
                    s.data.append(contentsOf: bytes)
                    return String(decoding: s.data.suffix(1024), as: UTF8.self)
                }
                if done(tail) { return true }
            case .closed:
                state.withLock { $0.closed = true }
                return true
            case .timedOut:
                return false
            }
        }
    }

    /// Reads until the server closes, or `timeout` passes; returns whether it closed.
    func readUntilClosed(within timeout: Duration) async throws -> Bool {
        try await read(for: timeout)
        return closed
    }
}
