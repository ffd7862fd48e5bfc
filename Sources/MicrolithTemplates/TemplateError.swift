/// A template that cannot be used: a syntax error found when it is loaded (with the template's
/// name and the line), a partial or template that does not exist, or a render that cannot finish.
public struct TemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, in a sentence.
    public let message: String
    /// The template it concerns, when there is one.
    public let template: String?
    /// The 1-based line of the template, for syntax errors.
    public let line: Int?

    public init(_ message: String, template: String? = nil, line: Int? = nil) {
        self.message = message
        self.template = template
        self.line = line
    }

    public var description: String {
        switch (template, line) {
        case (let t?, let l?): return "template \(t), line \(l): \(message)"
        case (let t?, nil): return "template \(t): \(message)"
        default: return message
        }
    }
}
