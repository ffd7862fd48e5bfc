import Foundation
import MicrolithTLS
import MicrolithTestSupport
import NIOCore
import NIOPosix
import NIOSSL
import Testing

/// A fresh temporary directory, deleted after `body`.
func withDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-tls-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// Echoes what it reads.
final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

/// A loopback echo server whose connections start with `source`'s handler; closed after `body`.
func withEchoServer<T>(_ source: TLSContextSource, _ body: (Int) async throws -> T) async throws -> T {
    let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers([source.makeServerHandler(), EchoHandler()])
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
    do {
        let result = try await body(server.localAddress?.port ?? 0)
        try await server.close()
        return result
    } catch {
        try? await server.close()
        throw error
    }
}

/// Sends `ping` and waits for its echo.
func ping(_ port: Int, trusting authority: String, certificate: String? = nil, key: String? = nil) async throws -> String {
    let reply = try await TLSTestClient.exchange(
        port: port, authorityFile: authority, certificateFile: certificate, keyFile: key, send: Array("ping".utf8), until: { $0.count >= 4 })
    return String(decoding: reply, as: UTF8.self)
}

@Suite struct TLSSettingsTests {
    @Test func settingsThatNeedAnotherSayWhich() throws {
        #expect(throws: Never.self) { try TLSSettings().validate() }
        #expect(!TLSSettings().isEnabled)
        let cases: [(TLSSettings, String)] = [
            (TLSSettings(certificateFile: "c.pem"), "tls.certificate is set but tls.privateKey is not"),
            (TLSSettings(privateKeyFile: "k.pem"), "tls.privateKey is set but tls.certificate is not"),
            (TLSSettings(clientCAFile: "ca.pem"), "need tls.certificate and tls.privateKey"),
            (TLSSettings(certificateFile: "c.pem", privateKeyFile: "k.pem", clientCertificates: .required), "tls.clientCA is not set"),
        ]
        for (settings, words) in cases {
            let error = #expect(throws: TLSError.self) { try settings.validate() }
            #expect(error?.description.contains(words) == true, "\(error?.description ?? "no error")")
        }
        var settings = TLSSettings(certificateFile: "c.pem", privateKeyFile: "k.pem")
        #expect(settings.effectiveClientCertificates == .none)
        settings.clientCAFile = "ca.pem"
        #expect(settings.effectiveClientCertificates == .optional)
        settings.clientCertificates = TLSSettings.ClientCertificates.none
        #expect(throws: Never.self) { try settings.validate() }
    }
}

@Suite struct TLSContextSourceTests {
    @Test func servesTheCertificateAndDescribesIt() async throws {
        try await withDirectory { dir in
            let certificates = try TestCertificates(directory: dir)
            let source = try TLSContextSource(
                settings: TLSSettings(certificateFile: certificates.certificateFile, privateKeyFile: certificates.privateKeyFile))
            #expect(source.certificateSummary.contains("CN=localhost"), "\(source.certificateSummary)")
            #expect(source.certificateSummary.contains("127.0.0.1"), "\(source.certificateSummary)")
            #expect((source.notValidAfter ?? .distantPast) > Date())
            try await withEchoServer(source) { port in
                #expect(try await ping(port, trusting: certificates.authorityFile) == "ping")
                // A client that trusts another authority refuses the handshake.
                let other = try TestCertificates(directory: dir + "/other", authority: "Someone else")
                await #expect(throws: (any Error).self) { try await ping(port, trusting: other.authorityFile) }
            }
        }
    }

    @Test func unusableFilesAreNamed() async throws {
        try await withDirectory { dir in
            let certificates = try TestCertificates(directory: dir)
            let other = try TestCertificates(directory: dir + "/other")
            let garbage = dir + "/garbage.pem"
            try "not a certificate\n".write(toFile: garbage, atomically: true, encoding: .utf8)
            let cases: [(TLSSettings, String)] = [
                (
                    TLSSettings(certificateFile: dir + "/missing.pem", privateKeyFile: certificates.privateKeyFile),
                    "tls.certificate: \(dir)/missing.pem does not exist"
                ),
                (TLSSettings(certificateFile: dir, privateKeyFile: certificates.privateKeyFile), "cannot be read"),
                (TLSSettings(certificateFile: garbage, privateKeyFile: certificates.privateKeyFile), "tls.certificate: \(garbage)"),
                (TLSSettings(certificateFile: certificates.certificateFile, privateKeyFile: garbage), "tls.privateKey: \(garbage)"),
                (
                    TLSSettings(certificateFile: certificates.certificateFile, privateKeyFile: other.privateKeyFile),
                    "is not the private key of the certificate"
                ),
                (
                    TLSSettings(certificateFile: certificates.certificateFile, privateKeyFile: certificates.privateKeyFile, clientCAFile: garbage),
                    "tls.clientCA: \(garbage) holds no PEM certificate"
                ),
            ]
            for (settings, words) in cases {
                let error = #expect(throws: TLSError.self) { try TLSContextSource(settings: settings) }
                #expect(error?.description.contains(words) == true, "\(error?.description ?? "no error")")
            }
        }
    }

    @Test func reloadServesNewConnectionsWithTheNewFilesAndKeepsTheOldOnAnError() async throws {
        try await withDirectory { dir in
            let first = try TestCertificates(directory: dir + "/first", authority: "First CA")
            let second = try TestCertificates(directory: dir + "/second", authority: "Second CA")
            let certificate = dir + "/cert.pem"
            let key = dir + "/key.pem"
            try FileManager.default.copyItem(atPath: first.certificateFile, toPath: certificate)
            try FileManager.default.copyItem(atPath: first.privateKeyFile, toPath: key)
            let source = try TLSContextSource(settings: TLSSettings(certificateFile: certificate, privateKeyFile: key))
            try await withEchoServer(source) { port in
                #expect(try await ping(port, trusting: first.authorityFile) == "ping")
                // A certificate from another authority, written over the files: served once reloaded.
                try Data(contentsOf: URL(fileURLWithPath: second.certificateFile)).write(to: URL(fileURLWithPath: certificate))
                try Data(contentsOf: URL(fileURLWithPath: second.privateKeyFile)).write(to: URL(fileURLWithPath: key))
                #expect(try await ping(port, trusting: first.authorityFile) == "ping", "not before the reload")
                try source.reload()
                #expect(try await ping(port, trusting: second.authorityFile) == "ping")
                await #expect(throws: (any Error).self) { try await ping(port, trusting: first.authorityFile) }
                // Half-written files (the key of another certificate) fail the reload and change nothing.
                try Data(contentsOf: URL(fileURLWithPath: first.privateKeyFile)).write(to: URL(fileURLWithPath: key))
                let error = #expect(throws: TLSError.self) { try source.reload() }
                #expect(error?.description.contains("is not the private key") == true)
                #expect(try await ping(port, trusting: second.authorityFile) == "ping")
            }
        }
    }

    @Test func clientCertificatesOptionalOrRequired() async throws {
        try await withDirectory { dir in
            let certificates = try TestCertificates(directory: dir)
            let stranger = try TestCertificates(directory: dir + "/stranger", authority: "Stranger CA")
            func source(_ mode: TLSSettings.ClientCertificates) throws -> TLSContextSource {
                try TLSContextSource(
                    settings: TLSSettings(
                        certificateFile: certificates.certificateFile, privateKeyFile: certificates.privateKeyFile,
                        clientCAFile: certificates.authorityFile, clientCertificates: mode))
            }
            let ca = certificates.authorityFile
            try await withEchoServer(try source(.optional)) { port in
                #expect(try await ping(port, trusting: ca) == "ping", "no certificate: accepted")
                let withCertificate = try await ping(
                    port, trusting: ca, certificate: certificates.clientCertificateFile, key: certificates.clientKeyFile)
                #expect(withCertificate == "ping")
                // A certificate shown must verify.
                await #expect(throws: (any Error).self) {
                    try await ping(port, trusting: ca, certificate: stranger.clientCertificateFile, key: stranger.clientKeyFile)
                }
            }
            try await withEchoServer(try source(.required)) { port in
                // No certificate: refused.
                await #expect(throws: (any Error).self) { try await ping(port, trusting: ca) }
                let withCertificate = try await ping(
                    port, trusting: ca, certificate: certificates.clientCertificateFile, key: certificates.clientKeyFile)
                #expect(withCertificate == "ping")
                await #expect(throws: (any Error).self) {
                    try await ping(port, trusting: ca, certificate: stranger.clientCertificateFile, key: stranger.clientKeyFile)
                }
            }
        }
    }
}
