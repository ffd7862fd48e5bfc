/// What the JetStream API refused, as it said it.
public struct NATSJetStreamError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The HTTP-like status (400, 404, 503…).
    public var code: Int
    /// JetStream's own error number (10058: a stream of that name exists with another
    /// configuration, …); 0 for a refused pull, which has none.
    public var errorCode: Int
    public var message: String

    public init(code: Int, errorCode: Int, message: String) {
        self.code = code
        self.errorCode = errorCode
        self.message = message
    }

    public var description: String { "JetStream: \(message) (\(code)\(errorCode == 0 ? "" : ", error \(errorCode)"))" }
}
