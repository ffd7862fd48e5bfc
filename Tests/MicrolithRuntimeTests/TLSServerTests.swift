import Foundation
import MicrolithHTTP
import MicrolithMQTT
import MicrolithNetwork
import MicrolithRuntime
import MicrolithStore
import MicrolithTLS
import MicrolithTestSupport
import Testing

/// A temporary directory of test certificates, deleted after `body`.
func withCertificates<T>(_ body: (TestCertificates) async throws -> T) async throws -> T {
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-tls-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(try TestCertificates(directory: path))
}

/// A live to-do server with a fresh set of test certificates for `tls.*`, and `configure`'s settings.
func withTLSServer(
    configure: @escaping (inout RuntimeConfiguration, TestCertificates) -> Void = { _, _ in },
    _ body: (LiveServer, TestCertificates) async throws -> Void
) async throws {
    try await withCertificates { certificates in
        try await withLiveServer(["schema.graphql": todoSchema]) { c in
            c.tls.certificateFile = certificates.certificateFile
            c.tls.privateKeyFile = certificates.privateKeyFile
            configure(&c, certificates)
        } _: { live in
            try await body(live, certificates)
        }
    }
}

/// One HTTP/1.1 request over TLS with `Connection: close`: the status line, headers and body as text.
func https(
    port: Int, _ certificates: TestCertificates, _ method: String, _ path: String, json: String? = nil, clientCertificate: Bool = false
) async throws -> String {
    var head = "\(method) \(path) HTTP/1.1\r\nHost: localhost:\(port)\r\nConnection: close\r\n"
    if let json { head += "Content-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n" }
    let reply = try await TLSTestClient.exchange(
        port: port, authorityFile: certificates.authorityFile, certificateFile: clientCertificate ? certificates.clientCertificateFile : nil,
        keyFile: clientCertificate ? certificates.clientKeyFile : nil, send: Array((head + "\r\n" + (json ?? "")).utf8))
    return String(decoding: reply, as: UTF8.self)
}

/// MQTT 3.1.1 CONNECT (clean session, client id "tls") and the CONNACK that accepts it.
let mqttConnect: [UInt8] = [0x10, 15, 0, 4, 0x4D, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, 3, 0x74, 0x6C, 0x73]
let mqttAccepted: [UInt8] = [0x20, 2, 0, 0]

/// HTTP and MQTT over TLS (`tls.*`), the plain-HTTP redirect port, and the settings that need TLS.
@Suite struct TLSServerTests {
    @Test func httpAndMQTTSpeakTLSOnlyAndTheFastPathAnswersOverIt() async throws {
        try await withTLSServer { live, certificates in
            let port = live.httpPort
            let created = try await https(port: port, certificates, "PUT", "/Todo/a", json: #"{"title":"over TLS"}"#)
            #expect(created.hasPrefix("HTTP/1.1 201"), "\(created)")
            for attempt in 1...3 {
                // The second and third are answered from the record cache, in the event loop.
                let read = try await https(port: port, certificates, "GET", "/Todo/a")
                #expect(read.hasPrefix("HTTP/1.1 200") && read.contains("over TLS"), "attempt \(attempt): \(read)")
            }
            // Plain HTTP on the TLS port gets no HTTP answer: the handshake fails and the connection closes.
            let (plain, closed) = try await RawConnection.open(port: port).exchange(
                Array("GET /Todo/a HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
            #expect(closed && !String(decoding: plain, as: UTF8.self).contains("over TLS"))

            let mqttPort = try #require(live.server.mqttPort)
            let acknowledged = try await TLSTestClient.exchange(
                port: mqttPort, authorityFile: certificates.authorityFile, send: mqttConnect, until: { $0.count >= 4 })
            #expect(Array(acknowledged.prefix(4)) == mqttAccepted)
            let (plainMQTT, _) = try await RawConnection.open(port: mqttPort).exchange(mqttConnect)
            #expect(Array(plainMQTT.prefix(4)) != mqttAccepted, "a plain CONNECT on the TLS port is not accepted")
            #expect(live.log.messages.contains { $0.hasPrefix("TLS: HTTPS and MQTT over TLS with the certificate CN=localhost") })
        }
    }

    @Test func aClientThatNeverFinishesTheHandshakeIsClosed() async throws {
        try await withTLSServer { c, _ in
            c.http.headerTimeoutSeconds = 1
            c.mqtt.enabled = false
        } _: { live, certificates in
            // One that says nothing, and one that starts a ClientHello and stops.
            for opening in [[], [0x16, 0x03, 0x01, 0x02, 0x00, 0x01]] as [[UInt8]] {
                let connection = try await RawConnection.open(port: live.httpPort)
                let outcome = await withDeadline(.seconds(15)) { try? await connection.exchange(opening) }
                let (_, closed) = try #require(outcome ?? nil, "the connection was still open 15 s after it connected")
                #expect(closed)
            }
            for _ in 0..<20 where live.server.connections.openConnections > 0 { try await Task.sleep(for: .milliseconds(50)) }
            #expect(live.server.connections.openConnections == 0, "the limiter no longer counts them")
        }
    }

    @Test func mqttMayStayPlainWhileHTTPIsHTTPS() async throws {
        try await withTLSServer { c, _ in
            c.mqtt.tls = false
        } _: { live, certificates in
            let mqttPort = try #require(live.server.mqttPort)
            let (plain, _) = try await RawConnection.open(port: mqttPort).exchange(mqttConnect) { $0.count >= 4 }
            #expect(Array(plain.prefix(4)) == mqttAccepted)
            let read = try await https(port: live.httpPort, certificates, "GET", "/Todo/")
            #expect(read.hasPrefix("HTTP/1.1 200"), "\(read)")
        }
    }

    @Test func theRedirectPortSendsEveryRequestToHTTPS() async throws {
        try await withTLSServer { c, _ in
            c.http.redirectPort = 0
        } _: { live, certificates in
            var redirectPort = live.server.redirectPort
            for _ in 0..<100 where redirectPort == nil {
                try await Task.sleep(for: .milliseconds(50))
                redirectPort = live.server.redirectPort
            }
            let port = try #require(redirectPort, "the redirect port was never bound")
            func plain(_ request: String) async throws -> String {
                let (bytes, _) = try await RawConnection.open(port: port).exchange(Array(request.utf8))
                return String(decoding: bytes, as: UTF8.self)
            }
            let get = try await plain("GET /Todo/?done=true&limit(2) HTTP/1.1\r\nHost: localhost:\(port)\r\nConnection: close\r\n\r\n")
            #expect(get.hasPrefix("HTTP/1.1 308"), "\(get)")
            #expect(get.contains("\r\nLocation: https://localhost:\(live.httpPort)/Todo/?done=true&limit(2)\r\n"), "\(get)")
            let post = try await plain(
                "POST /Todo/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            #expect(post.hasPrefix("HTTP/1.1 308") && post.contains("https://127.0.0.1:\(live.httpPort)/Todo/"), "\(post)")
            // A Host the server does not answer to is refused, not redirected (DNS rebinding).
            let foreign = try await plain("GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
            #expect(foreign.hasPrefix("HTTP/1.1 403") && foreign.contains("hostNotAllowed"), "\(foreign)")
            let hostless = try await plain("GET / HTTP/1.0\r\n\r\n")
            #expect(hostless.hasPrefix("HTTP/1.0 400") || hostless.hasPrefix("HTTP/1.1 400"), "\(hostless)")
            #expect(hostless.contains("hostRequired"), "\(hostless)")
        }
    }

    @Test func requiredClientCertificatesRefuseClientsWithoutOne() async throws {
        try await withTLSServer { c, certificates in
            c.tls.clientCAFile = certificates.authorityFile
            c.tls.clientCertificates = .required
            c.mqtt.enabled = false
        } _: { live, certificates in
            let read = try await https(port: live.httpPort, certificates, "GET", "/Todo/", clientCertificate: true)
            #expect(read.hasPrefix("HTTP/1.1 200"), "\(read)")
            await #expect(throws: (any Error).self) {
                let reply = try await https(port: live.httpPort, certificates, "GET", "/Todo/")
                if reply.isEmpty { throw LoopbackSocket.Failure(description: "closed") }
            }
        }
    }

    @Test func settingsThatCannotServeStopTheStartWithTheirNames() async throws {
        try await withCertificates { certificates in
            let app = try TemporaryApp(["schema.graphql": todoSchema])
            defer { app.remove() }
            let cases: [(String, (inout RuntimeConfiguration) -> Void)] = [
                ("http.redirectPort redirects plain HTTP to HTTPS, but this server has no certificate", { $0.http.redirectPort = 8080 }),
                ("tls.certificate is set but tls.privateKey is not", { $0.tls.certificateFile = certificates.certificateFile }),
                (
                    "tls.privateKey: \(app.path)/nope.pem does not exist",
                    {
                        $0.tls.certificateFile = certificates.certificateFile
                        $0.tls.privateKeyFile = app.path + "/nope.pem"
                    }
                ),
                (
                    "tls.clientCertificates is required but mqtt.tls is false",
                    {
                        $0.tls.certificateFile = certificates.certificateFile
                        $0.tls.privateKeyFile = certificates.privateKeyFile
                        $0.tls.clientCAFile = certificates.authorityFile
                        $0.tls.clientCertificates = .required
                        $0.mqtt.tls = false
                    }
                ),
                (
                    "tls.privateKey: \(certificates.clientKeyFile) is not the private key of the certificate",
                    {
                        $0.tls.certificateFile = certificates.certificateFile
                        $0.tls.privateKeyFile = certificates.clientKeyFile
                    }
                ),
            ]
            for (words, configure) in cases {
                let error = await #expect(throws: RuntimeError.self) {
                    _ = try await MicrolithServer.start(appDirectory: app.path, environment: [:]) { c in
                        c.store.directory = app.file("data")
                        configure(&c)
                    }
                }
                #expect(error?.message.contains(words) == true, "\(error?.message ?? "no error")")
            }
        }
    }
}
