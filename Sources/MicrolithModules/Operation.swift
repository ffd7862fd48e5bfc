/// A typed operation a module offers: `Input` in, `Output` out, both `Codable`.
///
/// Declare operations once, where both the module that implements them and the modules that
/// call them can see them:
///
/// ```swift
/// enum Pricing {
///     static let quote = Operation<QuoteRequest, Quote>(module: "pricing", name: "quote")
/// }
/// let quote = try await modules.call(Pricing.quote, QuoteRequest(sku: "A1", quantity: 2))
/// ```
///
/// In the same process the call is a direct function call on these values; when configuration
/// places the module in another process, the same call travels as JSON over HTTP to
/// ``path``.
public struct Operation<Input: Codable & Sendable, Output: Codable & Sendable>: Sendable, Hashable {
    /// The module that implements the operation.
    public let module: String
    /// The operation's name within its module.
    public let name: String

    /// An operation `name` of `module`. Both are URL path segments: letters, digits, `-`, `_`.
    public init(module: String, name: String) {
        self.module = module
        self.name = name
    }

    /// Where the operation is reachable over HTTP (`POST`, JSON in and out).
    public var path: String { OperationPath.make(module: module, operation: name) }

    /// `module.name`, for messages.
    public var qualifiedName: String { "\(module).\(name)" }
}

/// The HTTP paths of operations.
public enum OperationPath {
    /// The prefix of every operation path.
    public static let prefix = "/_operations"

    /// `/_operations/{module}/{operation}`.
    public static func make(module: String, operation: String) -> String {
        "\(prefix)/\(module)/\(operation)"
    }

    /// Whether `name` is a valid module or operation name.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { b in
                (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                    || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
            }
    }
}
