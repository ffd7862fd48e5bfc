import Foundation
public import HTTPTypes

/// Which address a request comes from, for the per-address limits on failed sign-ins: the
/// connection's peer, or, when the peer is a trusted reverse proxy (`http.trustedProxies`), the
/// address that proxy saw, from `X-Forwarded-For`.
///
/// Each proxy appends the address it saw to `X-Forwarded-For`, so the right-most entries are the
/// trustworthy ones: the client's address is the right-most entry that is not itself a trusted
/// proxy. What a client writes into the header itself stays to the left and is never taken; an
/// entry that is not an IP address ends the walk, and the last trusted address stands instead.
public struct ClientAddress: Sendable {
    /// `X-Forwarded-For`: the addresses each proxy on the way saw, left to right.
    public static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    /// The addresses of the reverse proxies whose `X-Forwarded-For` is believed.
    public let trustedProxies: Set<String>

    public init(trustedProxies: [String] = []) {
        self.trustedProxies = Set(trustedProxies.map(Self.normalized))
    }

    /// The address `peer`'s request with `headers` comes from (every `X-Forwarded-For` line of them).
    public func of(peer: String?, headers: HTTPFields) -> String? {
        guard !trustedProxies.isEmpty else { return peer.map(Self.normalized) }
        let forwarded = headers[values: Self.forwardedFor]
        return of(peer: peer, forwardedFor: forwarded.isEmpty ? nil : forwarded.joined(separator: ","))
    }

    /// The address `peer`'s request comes from, given its `X-Forwarded-For` header.
    public func of(peer: String?, forwardedFor: String?) -> String? {
        guard let peer = peer.map(Self.normalized) else { return nil }
        guard !trustedProxies.isEmpty, trustedProxies.contains(peer), let forwardedFor else { return peer }
        var address = peer
        for entry in forwardedFor.split(separator: ",").reversed() {
            let candidate = Self.normalized(entry.trimmingCharacters(in: .whitespaces))
            guard Self.isAddress(candidate) else { break }
            address = candidate
            if !trustedProxies.contains(candidate) { break }
        }
        return address
    }

    /// `address` lowercased, an IPv4 address mapped into IPv6 (`::ffff:10.0.0.1`, how a peer shows on
    /// a listener bound to `::`) as the IPv4 address.
    public static func normalized(_ address: String) -> String {
        let lowered = address.lowercased()
        return lowered.hasPrefix("::ffff:") && lowered.contains(".") ? String(lowered.dropFirst(7)) : lowered
    }

    /// Whether `text` is written as an IPv4 or IPv6 address (digits, hex digits, dots and colons,
    /// at most 45 characters), without checking every rule of either.
    public static func isAddress(_ text: String) -> Bool {
        let text = normalized(text)
        guard !text.isEmpty, text.utf8.count <= 45 else { return false }
        let isIPv6 = text.contains(":")
        // A dotted quad with a colon is an address with a port (or worse), not an IPv6 address.
        if isIPv6, text.contains(".") { return false }
        return text.utf8.allSatisfy { b in
            (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: ".")
                || (isIPv6 && (b == UInt8(ascii: ":") || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "f"))))
        }
    }
}
