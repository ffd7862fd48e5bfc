import Crypto
public import Foundation
import SwiftASN1
import X509

/// A certificate authority and certificates it signed, written as PEM files into a directory,
/// for tests that serve or connect with TLS (made afresh each time: nothing secret is committed).
public struct TestCertificates: Sendable {
    /// The directory the files are in.
    public let directory: String
    /// The authority's certificate (what clients trust, and what the server trusts client
    /// certificates by).
    public let authorityFile: String
    /// The server's certificate (for `localhost` and 127.0.0.1) and its key.
    public let certificateFile: String
    public let privateKeyFile: String
    /// A client certificate signed by the same authority, and its key.
    public let clientCertificateFile: String
    public let clientKeyFile: String

    private let authorityKey: P256.Signing.PrivateKey
    private let authorityName: DistinguishedName

    /// A new authority named `authority` and, signed by it, a server certificate named
    /// `commonName` and a client certificate, written into `directory` (created when missing).
    public init(directory: String, authority: String = "Microlith test CA", commonName: String = "localhost") throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.directory = directory
        authorityKey = P256.Signing.PrivateKey()
        authorityName = try DistinguishedName { CommonName(authority) }
        let now = Date()
        let authorityCertificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(authorityKey.publicKey), notValidBefore: now - 3600,
            notValidAfter: now + 86_400 * 30, issuer: authorityName, subject: authorityName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(authorityKey))
        authorityFile = (directory as NSString).appendingPathComponent("ca.pem")
        try authorityCertificate.serializeAsPEM().pemString.write(toFile: authorityFile, atomically: true, encoding: .utf8)
        certificateFile = (directory as NSString).appendingPathComponent("server.pem")
        privateKeyFile = (directory as NSString).appendingPathComponent("server-key.pem")
        clientCertificateFile = (directory as NSString).appendingPathComponent("client.pem")
        clientKeyFile = (directory as NSString).appendingPathComponent("client-key.pem")
        try issue(commonName: commonName, server: true, certificateFile: certificateFile, keyFile: privateKeyFile)
        try issue(commonName: "client", server: false, certificateFile: clientCertificateFile, keyFile: clientKeyFile)
    }

    /// Writes a certificate for `commonName` signed by this authority (for a server: valid for
    /// `localhost` and 127.0.0.1), and its private key, to the two files; `validFor` from now.
    public func issue(
        commonName: String, server: Bool = true, certificateFile: String, keyFile: String, validFor: TimeInterval = 86_400 * 7
    ) throws {
        let key = P256.Signing.PrivateKey()
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now - 3600, notValidAfter: now + validFor,
            issuer: authorityName, subject: try DistinguishedName { CommonName(commonName) }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([server ? .serverAuth : .clientAuth])
                if server {
                    SubjectAlternativeNames([.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
                }
            },
            issuerPrivateKey: .init(authorityKey))
        try certificate.serializeAsPEM().pemString.write(toFile: certificateFile, atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(toFile: keyFile, atomically: true, encoding: .utf8)
    }
}
