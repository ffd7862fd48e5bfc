import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A client socket to a loopback port that reads only when a test says so: a test plays with it
/// the client that stops reading, and sees what the server wrote and whether it closed.
final class RawConnection: Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let socket: Int32
    private let state = Mutex<(data: [UInt8], closed: Bool)>(([], false))

    /// Connects to `127.0.0.1:port`; `receiveBufferBytes` shrinks the socket's receive buffer
    /// (set before connecting, so the window the server sees is small from the start).
    init(port: Int, receiveBufferBytes: Int? = nil) throws {
        #if canImport(Glibc)
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = Darwin.socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw Failure(description: "socket() failed: errno \(errno)") }
        if let receiveBufferBytes {
            var size = Int32(receiveBufferBytes)
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            _ = close(fd)
            throw Failure(description: "connect() to port \(port) failed: errno \(code)")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        socket = fd
    }

    deinit {
        _ = close(socket)
    }

    /// Sends `text` whole.
    func send(_ text: String) throws {
        var bytes = Array(text.utf8)[...]
        let deadline = ContinuousClock.now + .seconds(5)
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(socket, $0.baseAddress, $0.count) }
            if n > 0 {
                bytes = bytes.dropFirst(n)
            } else if errno != EAGAIN || ContinuousClock.now > deadline {
                throw Failure(description: "write() failed: errno \(errno)")
            }
        }
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
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                let tail = state.withLock { s in
                    s.data.append(contentsOf: chunk[..<n])
                    return String(decoding: s.data.suffix(1024), as: UTF8.self)
                }
                if done(tail) { return true }
                continue
            }
            if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) {
                state.withLock { $0.closed = true }
                return true
            }
            if ContinuousClock.now > deadline { return false }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Reads until the server closes, or `timeout` passes; returns whether it closed.
    func readUntilClosed(within timeout: Duration) async throws -> Bool {
        try await read(for: timeout)
        return closed
    }
}
