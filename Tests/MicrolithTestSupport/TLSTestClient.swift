import NIOCore
import NIOPosix
import NIOSSL

/// A TLS client for tests: connects to a loopback port trusting one authority (optionally
/// showing a client certificate), sends bytes, and returns what arrives until the server closes
/// or `until` is satisfied. A handshake the client refuses, or the server refuses, throws.
public enum TLSTestClient {
    /// Sends `bytes` over TLS to `127.0.0.1:port` (checking the certificate against `serverName`)
    /// and returns the reply: every byte until the connection ends, or until `until` says enough.
    public static func exchange(
        port: Int, authorityFile: String, certificateFile: String? = nil, keyFile: String? = nil, serverName: String = "localhost",
        send bytes: [UInt8], until: @Sendable @escaping ([UInt8]) -> Bool = { _ in false }
    ) async throws -> [UInt8] {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(authorityFile))
        if let certificateFile, let keyFile {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
        }
        let context = try NIOSSLContext(configuration: configuration)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName))
                return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        return try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
            group.addTask {
                try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(ByteBuffer(bytes: bytes))
                    var received: [UInt8] = []
                    do {
                        for try await chunk in inbound {
                            received += chunk.readableBytesView
                            if until(received) { break }
                        }
                    } catch NIOSSLError.uncleanShutdown where !received.isEmpty {
                        // A server that closes without close_notify after answering has still answered.
                    }
                    return received
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(15))
                return nil
            }
            defer { group.cancelAll() }
            guard let reply = try await group.next(), let reply else {
                channel.channel.close(promise: nil)
                throw LoopbackSocket.Failure(description: "no TLS reply from port \(port) within 15 s")
            }
            return reply
        }
    }
}
