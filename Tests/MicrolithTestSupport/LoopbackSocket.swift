import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A non-blocking client socket to a loopback port, for tests that play a client byte by byte:
/// one that stops reading, sends a broken request, or watches for the server's close.
public final class LoopbackSocket: Sendable {
    /// What a test's socket call ran into.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String

        public init(description: String) {
            self.description = description
        }
    }

    /// What a ``read(until:)`` found.
    public enum Read: Sendable {
        /// Bytes the server sent.
        case bytes([UInt8])
        /// The server closed the connection (end of stream or reset).
        case closed
        /// Nothing arrived before the deadline.
        case timedOut
    }

    private let descriptor: Int32

    /// Connects to `127.0.0.1:port`; `receiveBufferBytes` shrinks the socket's receive buffer
    /// (set before connecting, so the window the server sees is small from the start).
    public init(port: Int, receiveBufferBytes: Int? = nil) throws {
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
        descriptor = fd
    }

    deinit {
        _ = close(descriptor)
    }

    /// Sends `bytes` whole (waiting at most 5 s for room in the socket's send buffer).
    public func send(_ bytes: [UInt8]) throws {
        var rest = bytes[...]
        let deadline = ContinuousClock.now + .seconds(5)
        while !rest.isEmpty {
            let n = rest.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if n > 0 {
                rest = rest.dropFirst(n)
            } else if errno != EAGAIN || ContinuousClock.now > deadline {
                throw Failure(description: "write() failed: errno \(errno)")
            }
        }
    }

    /// Sends `text` whole, as UTF-8.
    public func send(_ text: String) throws {
        try send(Array(text.utf8))
    }

    /// Waits for what the server sends next, until `deadline`.
    public func read(until deadline: ContinuousClock.Instant) async throws -> Read {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if n > 0 { return .bytes(Array(chunk[..<n])) }
            if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) { return .closed }
            if ContinuousClock.now > deadline { return .timedOut }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
