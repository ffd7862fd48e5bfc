/// What a template reads: the view a page is rendered from, as plain values.
///
/// ``TemplateEncoder`` makes one from any `Encodable` view; the cases are what a Mustache
/// template can tell apart. In a section (`{{#name}}…{{/name}}`) ``null``, `false` and an empty
/// list render nothing, a list renders once per element, `true` renders once, and any other
/// value renders once with that value on top of the context; an inverted section
/// (`{{^name}}…{{/name}}`) renders exactly when a section would not.
public enum TemplateValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([TemplateValue])
    case object([String: TemplateValue])

    /// Whether a section over this value renders nothing (and an inverted one renders).
    public var isFalsey: Bool {
        switch self {
        case .null: return true
        case .bool(let b): return !b
        case .list(let l): return l.isEmpty
        default: return false
        }
    }

    /// The member `name` of an object; `nil` for a missing member and for any other value.
    public subscript(name: String) -> TemplateValue? {
        if case .object(let members) = self { return members[name] }
        return nil
    }
}

extension TemplateValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByFloatLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(arrayLiteral elements: TemplateValue...) { self = .list(elements) }
    public init(dictionaryLiteral elements: (String, TemplateValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
