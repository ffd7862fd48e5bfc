import Foundation
public import NIOCore

/// A message as a stream stores it, read back by sequence or as a subject's latest
/// (``NATSJetStream/lastMessage(stream:subject:)``).
public struct NATSStoredMessage: Sendable, Equatable, Decodable {
    /// The subject it was published to.
    public var subject: String
    /// Its sequence in the stream.
    public var sequence: UInt64
    /// Its payload.
    public var payload: ByteBuffer

    enum CodingKeys: String, CodingKey { case subject, sequence = "seq", data }

    public init(subject: String, sequence: UInt64, payload: ByteBuffer) {
        self.subject = subject
        self.sequence = sequence
        self.payload = payload
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        subject = try c.decode(String.self, forKey: .subject)
        sequence = try c.decode(UInt64.self, forKey: .sequence)
        let base64 = try c.decodeIfPresent(String.self, forKey: .data) ?? ""
        guard let data = Data(base64Encoded: base64) else {
            throw DecodingError.dataCorruptedError(forKey: .data, in: c, debugDescription: "the payload is not base64")
        }
        payload = ByteBuffer(bytes: data)
    }
}
