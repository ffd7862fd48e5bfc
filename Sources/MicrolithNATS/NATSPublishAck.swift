import NIOCore

/// The server's receipt for a message stored in a stream.
public struct NATSPublishAck: Sendable, Equatable, Decodable {
    public var stream: String
    /// Its sequence in the stream.
    public var sequence: UInt64
    /// The message had been stored before under the same `Nats-Msg-Id` (within the duplicate
    /// window): it was not stored again, and `sequence` is the first copy's.
    public var duplicate: Bool

    enum CodingKeys: String, CodingKey { case stream, sequence = "seq", duplicate }

    public init(stream: String, sequence: UInt64, duplicate: Bool = false) {
        self.stream = stream
        self.sequence = sequence
        self.duplicate = duplicate
    }

    /// The receipt as the server writes it, `{"stream":"S","seq":N}` with perhaps
    /// `,"duplicate":true`, read without a JSON decoder (one per publish); `nil` for anything
    /// else (an error, a domain), which the decoder then reads.
    init?(receipt payload: ByteBuffer) {
        let parsed: (String, UInt64, Bool)? =
            payload.readableBytesView.withContiguousStorageIfAvailable { bytes in
                var i = bytes.startIndex
                func expect(_ text: StaticString) -> Bool {
                    let count = text.utf8CodeUnitCount
                    guard bytes.endIndex - i >= count else { return false }
                    for k in 0..<count where bytes[i + k] != text.utf8Start[k] { return false }
                    i += count
                    return true
                }
                guard expect("{\"stream\":\"") else { return nil }
                let nameStart = i
                while i < bytes.endIndex && bytes[i] != UInt8(ascii: "\"") && bytes[i] != UInt8(ascii: "\\") { i += 1 }
                guard i < bytes.endIndex, bytes[i] == UInt8(ascii: "\""), i > nameStart else { return nil }
                let name = String(decoding: bytes[nameStart..<i], as: UTF8.self)
                i += 1
                guard expect(",\"seq\":") else { return nil }
                var sequence: UInt64 = 0
                let digitsStart = i
                while i < bytes.endIndex, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9"), i - digitsStart < 19 {
                    sequence = sequence * 10 + UInt64(bytes[i] - UInt8(ascii: "0"))
                    i += 1
                }
                guard i > digitsStart else { return nil }
                let duplicate = expect(",\"duplicate\":true")
                guard expect("}"), i == bytes.endIndex else { return nil }
                return (name, sequence, duplicate)
            } ?? nil
        guard let parsed else { return nil }
        self.init(stream: parsed.0, sequence: parsed.1, duplicate: parsed.2)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stream = try c.decode(String.self, forKey: .stream)
        sequence = try c.decode(UInt64.self, forKey: .sequence)
        duplicate = try c.decodeIfPresent(Bool.self, forKey: .duplicate) ?? false
    }
}
