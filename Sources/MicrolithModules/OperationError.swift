public import MicrolithTables

/// An error an operation reports to its caller, with the same meaning in-process and over HTTP.
///
/// Throw it from an operation to refuse with a status and a stable ``code``; the caller catches
/// the equal value whether the callee ran in its process or in another one (where it travels as
/// RFC 9457 `application/problem+json` with a `code` member). Failures of the call itself are
/// reported the same way: ``unavailable(_:)`` when the callee cannot be reached,
/// ``timeout(_:)`` when it does not answer in time.
public struct OperationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The HTTP status this error maps to (4xx: the caller's fault, 5xx: the callee's).
    public var status: Int
    /// A stable, machine-readable name of the failure (`notFound`, `conflict`, ...).
    public var code: String
    /// What went wrong, for people.
    public var message: String

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(code) (\(status)): \(message)" }

    /// The input is not acceptable (400).
    public static func badRequest(_ message: String) -> OperationError { .init(status: 400, code: "badRequest", message: message) }
    /// Something the input names does not exist (404).
    public static func notFound(_ message: String) -> OperationError { .init(status: 404, code: "notFound", message: message) }
    /// The input conflicts with the current state (409).
    public static func conflict(_ message: String) -> OperationError { .init(status: 409, code: "conflict", message: message) }
    /// No such operation (404, code `unknownOperation`).
    public static func unknownOperation(_ message: String) -> OperationError {
        .init(status: 404, code: "unknownOperation", message: message)
    }
    /// The operation failed for a reason of its own (500).
    public static func `internal`(_ message: String) -> OperationError { .init(status: 500, code: "internal", message: message) }
    /// The module that implements the operation could not be reached (503).
    public static func unavailable(_ message: String) -> OperationError { .init(status: 503, code: "unavailable", message: message) }
    /// The module did not answer within the configured time (504).
    public static func timeout(_ message: String) -> OperationError { .init(status: 504, code: "timeout", message: message) }
    /// The module answered with something that is not the operation's output (502).
    public static func badResponse(_ message: String) -> OperationError { .init(status: 502, code: "badResponse", message: message) }
}

// Read by doors other than HTTP (MQTT) to answer a hook's refusal in their own terms.
extension OperationError: StatusCodedError {}
