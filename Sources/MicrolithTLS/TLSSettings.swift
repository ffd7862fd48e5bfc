/// The `tls.*` settings: where the server's certificate and private key are, and whether clients
/// must show certificates of their own.
///
/// With a certificate, HTTP (and WebSocket) and, unless `mqtt.tls` is `false`, MQTT speak TLS
/// only. ``validate()`` says what is missing or contradictory before anything is read.
public struct TLSSettings: Sendable, Equatable {
    /// Whether clients are asked for a certificate signed by ``clientCAFile``.
    public enum ClientCertificates: String, Sendable, CaseIterable {
        /// Clients are not asked for one.
        case none
        /// Clients may show one; a certificate shown must verify, and a client without one connects.
        case optional
        /// A client without a certificate that verifies is refused during the handshake.
        case required
    }

    /// A PEM file: the server's certificate, then the intermediate certificates of its chain.
    public var certificateFile: String?
    /// A PEM file: the certificate's private key (not encrypted).
    public var privateKeyFile: String?
    /// A PEM file of the certificate authorities whose client certificates are accepted.
    public var clientCAFile: String?
    /// Whether clients are asked for a certificate; by default ``ClientCertificates/optional`` with
    /// a ``clientCAFile`` and ``ClientCertificates/none`` without.
    public var clientCertificates: ClientCertificates?

    public init(
        certificateFile: String? = nil, privateKeyFile: String? = nil, clientCAFile: String? = nil, clientCertificates: ClientCertificates? = nil
    ) {
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
        self.clientCAFile = clientCAFile
        self.clientCertificates = clientCertificates
    }

    /// Whether the listeners speak TLS: a certificate is configured.
    public var isEnabled: Bool { certificateFile != nil }

    /// What is asked of clients once the defaults are applied.
    public var effectiveClientCertificates: ClientCertificates {
        clientCertificates ?? (clientCAFile == nil ? .none : .optional)
    }

    /// Throws when a setting needs another that is missing (a certificate without its key, a
    /// client-certificate mode without the authorities that sign them, and the reverse).
    public func validate() throws(TLSError) {
        switch (certificateFile, privateKeyFile) {
        case (nil, nil):
            if clientCAFile != nil || clientCertificates != nil {
                throw TLSError("tls.clientCA and tls.clientCertificates need tls.certificate and tls.privateKey: the server must speak TLS first")
            }
            return
        case (nil, _?):
            throw TLSError("tls.privateKey is set but tls.certificate is not: give both (PEM files) to serve TLS")
        case (_?, nil):
            throw TLSError("tls.certificate is set but tls.privateKey is not: give both (PEM files) to serve TLS")
        case (_?, _?):
            break
        }
        if clientCAFile == nil, let mode = clientCertificates, mode != .none {
            throw TLSError(
                "tls.clientCertificates is \(mode.rawValue) but tls.clientCA is not set: name the PEM file of the authorities that sign client certificates"
            )
        }
    }
}

/// A TLS setting or file that cannot be used, in words that name the setting or file.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
