/// A JetStream publish sent and not yet acknowledged (``NATSJetStream/send(publish:payload:messageID:headers:)``).
public struct NATSPendingPublish: Sendable {
    let subject: String
    let request: NATSPendingRequest

    /// Waits for the stream's receipt.
    public func value() async throws -> NATSPublishAck {
        let answer: NATSMessage
        do {
            answer = try await request.value()
        } catch let error as NATSError where error.kind == .noResponders {
            throw NATSError(.noResponders, "no stream stores subject '\(subject)'")
        }
        if let receipt = NATSPublishAck(receipt: answer.payload) { return receipt }
        return try NATSJetStream.decode(answer)
    }
}
