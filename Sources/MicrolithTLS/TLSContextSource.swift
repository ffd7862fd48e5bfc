public import Foundation
public import NIOSSL
import SwiftASN1
import Synchronization
import X509

/// The server's TLS context, read from the files of ``TLSSettings`` and read again on
/// ``reload()`` (SIGHUP): connections accepted afterwards use the new certificate, those already
/// open keep theirs.
///
/// Every listener that speaks TLS (HTTP, MQTT) shares one source and asks it for a handler per
/// connection. A file that cannot be read, a key that does not belong to the certificate, or an
/// authority file without a certificate is an error that names the file; a failed reload keeps
/// the context in use.
public final class TLSContextSource: Sendable {
    /// The settings the files are read from.
    public let settings: TLSSettings
    private let state: Mutex<Loaded>

    /// A context and what its certificate says, for the logs.
    struct Loaded: Sendable {
        var context: NIOSSLContext
        var summary: String
        var notValidAfter: Date?
    }

    /// Reads the files of `settings` (validated first).
    public init(settings: TLSSettings) throws(TLSError) {
        try settings.validate()
        self.settings = settings
        self.state = Mutex(try Self.load(settings))
    }

    /// What the certificate in use says: its subject, its names and when it expires.
    public var certificateSummary: String { state.withLock { $0.summary } }

    /// When the certificate in use expires (`nil` when it could not be read as X.509).
    public var notValidAfter: Date? { state.withLock { $0.notValidAfter } }

    /// Reads the files again and, when they are usable, serves new connections with them; returns
    /// the new certificate's summary. On an error the context in use stays.
    @discardableResult
    public func reload() throws(TLSError) -> String {
        let loaded = try Self.load(settings)
        state.withLock { $0 = loaded }
        return loaded.summary
    }

    /// A handler for one accepted connection, with the context in use now; it goes ahead of
    /// everything that reads plain bytes.
    public func makeServerHandler() -> NIOSSLServerHandler {
        NIOSSLServerHandler(context: state.withLock { $0.context })
    }

    static func load(_ settings: TLSSettings) throws(TLSError) -> Loaded {
        guard let certificateFile = settings.certificateFile, let keyFile = settings.privateKeyFile else {
            throw TLSError("tls.certificate and tls.privateKey are both needed to serve TLS")
        }
        let chainBytes = try read(certificateFile, setting: "tls.certificate")
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(chainBytes)
        } catch {
            throw TLSError("tls.certificate: \(certificateFile) is not a PEM certificate file (\(error))")
        }
        guard let leaf = chain.first else {
            throw TLSError("tls.certificate: \(certificateFile) holds no PEM certificate ('-----BEGIN CERTIFICATE-----')")
        }
        let keyBytes = try read(keyFile, setting: "tls.privateKey")
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw TLSError("tls.privateKey: \(keyFile) holds no usable PEM private key (an encrypted key must be decrypted first): \(error)")
        }
        var summary = "certificate from \(certificateFile)"
        var notValidAfter: Date?
        // The key must belong to the leaf certificate; BoringSSL would otherwise fail every handshake.
        if let certificate = try? Certificate(derEncoded: leaf.toDERBytes()) {
            notValidAfter = certificate.notValidAfter
            if let privateKey = try? Certificate.PrivateKey(pemEncoded: String(decoding: keyBytes, as: UTF8.self)),
                privateKey.publicKey != certificate.publicKey
            {
                throw TLSError("tls.privateKey: \(keyFile) is not the private key of the certificate in \(certificateFile)")
            }
            summary = describe(certificate, file: certificateFile)
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        if let caFile = settings.clientCAFile {
            let caBytes = try read(caFile, setting: "tls.clientCA")
            let authorities = (try? NIOSSLCertificate.fromPEMBytes(caBytes)) ?? []
            guard !authorities.isEmpty else {
                throw TLSError("tls.clientCA: \(caFile) holds no PEM certificate ('-----BEGIN CERTIFICATE-----')")
            }
            configuration.trustRoots = .certificates(authorities)
            configuration.sendCANameList = true
        }
        switch settings.effectiveClientCertificates {
        case .none: configuration.certificateVerification = .none
        case .optional: configuration.certificateVerification = .optionalVerification
        case .required: configuration.certificateVerification = .noHostnameVerification
        }
        do {
            return Loaded(context: try NIOSSLContext(configuration: configuration), summary: summary, notValidAfter: notValidAfter)
        } catch {
            throw TLSError("tls: the certificate in \(certificateFile) and the key in \(keyFile) cannot be used together: \(error)")
        }
    }

    static func read(_ path: String, setting: String) throws(TLSError) -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TLSError("\(setting): \(path) does not exist")
        }
        guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path) else {
            throw TLSError("\(setting): \(path) cannot be read (a directory, or no permission)")
        }
        return Array(data)
    }

    /// `CN=shop.example.com (localhost, 127.0.0.1), valid until 2027-12-05`.
    static func describe(_ certificate: Certificate, file: String) -> String {
        var names: [String] = []
        if let alternatives = try? certificate.extensions.subjectAlternativeNames {
            for name in alternatives {
                switch name {
                case .dnsName(let dns): names.append(dns)
                case .ipAddress(let bytes):
                    names.append(bytes.bytes.count == 4 ? bytes.bytes.map(String.init).joined(separator: ".") : "IPv6 address")
                default: continue
                }
            }
        }
        let until = ISO8601DateFormatter.string(from: certificate.notValidAfter, timeZone: .gmt, formatOptions: [.withFullDate])
        let alternatives = names.isEmpty ? "" : " (\(names.joined(separator: ", ")))"
        return "certificate \(certificate.subject)\(alternatives) from \(file), valid until \(until)"
    }
}
