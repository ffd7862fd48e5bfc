/// An error that names the HTTP status it stands for, such as the `OperationError` a hook throws
/// to refuse: what a door other than HTTP (MQTT) reads to choose an answer of its own.
public protocol StatusCodedError: Error {
    /// The HTTP status (4xx: the client's fault, 5xx: the server's).
    var status: Int { get }
    /// What went wrong, for people.
    var message: String { get }
}

extension TableAccess {
    /// Whether `error`, thrown by a hook, is a deliberate refusal (a ``StatusCodedError`` with a 4xx
    /// status) rather than a failure of the hook, which the server should log.
    public static func isRefusal(_ error: any Error) -> Bool {
        guard let error = error as? any StatusCodedError else { return false }
        return error.status < 500
    }
}
