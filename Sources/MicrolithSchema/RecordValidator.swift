public import MicrolithJSON

/// Checks a record against its table's declared attributes before it is stored, and returns it
/// in the normalised form the store keeps.
///
/// Rules:
/// - a declared attribute present in the record must hold a value of its type, or `null` when it
///   is not required (`!`);
/// - a required attribute must be present and non-null, except the primary key and the
///   `@createdTime` / `@updatedTime` attributes, which the store fills;
/// - relationship attributes are computed and may not be written;
/// - a sealed table or nested type refuses undeclared attributes; an open one keeps them as they are.
///
/// Normalisation: integral numbers given as doubles (`5.0`) become integers for `ID`, `Int` and
/// `Long`; `Date` values (ISO 8601 text or milliseconds since 1970) become
/// `YYYY-MM-DDTHH:MM:SS.mmmZ` strings. Member order is kept.
public enum RecordValidator {
    /// Validates `record` as a whole record of `table` and returns it normalised.
    ///
    /// `schema` supplies the nested types that attributes refer to.
    public static func validate(_ record: JSONObject, table: TableDefinition, schema: Schema) throws(RecordValidationError) -> JSONObject {
        try validateObject(
            record,
            attributes: table.attributes,
            isSealed: table.isSealed,
            owner: "table \(table.typeName)",
            path: "",
            schema: schema
        ) ?? record
    }

    /// Validates one attribute's value on its own (for example a single member of a partial
    /// update) and returns it normalised. `null` is refused for a required attribute unless the
    /// store fills it; relationship attributes are refused.
    public static func validate(_ value: JSONValue, for attribute: AttributeDefinition, schema: Schema) throws(RecordValidationError) -> JSONValue {
        try validateMember(value, attribute: attribute, path: attribute.name, schema: schema) ?? value
    }

    // MARK: - Objects

    // The functions below return `nil` when the value is valid and already in normal form (the
    // common case), so a valid record is checked without being copied. Paths and owners are only
    // put into words when a message needs them.

    private static func validateObject(
        _ object: JSONObject,
        attributes: [AttributeDefinition],
        isSealed: Bool,
        owner: @autoclosure () -> String,
        path: String,
        schema: Schema
    ) throws(RecordValidationError) -> JSONObject? {
        var result: JSONObject?
        for (position, (key, value)) in object.members.enumerated() {
            // Few attributes: a scan beats building a dictionary per record (the first
            // declaration of a name wins, as everywhere).
            guard let attribute = attributes.first(where: { $0.name == key }) else {
                if isSealed {
                    let memberPath = path.isEmpty ? key : "\(path).\(key)"
                    throw RecordValidationError(
                        attribute: memberPath,
                        message: "attribute '\(memberPath)' is not declared in sealed \(owner())"
                    )
                }
                continue
            }
            guard let normalised = try validateMember(value, attribute: attribute, path: path.isEmpty ? key : "\(path).\(key)", schema: schema)
            else { continue }
            if result == nil { result = object }
            result?.replaceValue(at: position, with: normalised)
        }
        for attribute in attributes
        where attribute.isRequired && attribute.relationship == nil && !isFilledByStore(attribute) && object[attribute.name] == nil {
            let memberPath = path.isEmpty ? attribute.name : "\(path).\(attribute.name)"
            throw RecordValidationError(attribute: memberPath, message: "attribute '\(memberPath)' is required")
        }
        return result
    }

    private static func validateMember(
        _ value: JSONValue,
        attribute: AttributeDefinition,
        path: @autoclosure () -> String,
        schema: Schema
    ) throws(RecordValidationError) -> JSONValue? {
        if attribute.relationship != nil {
            throw RecordValidationError(attribute: path(), message: "attribute '\(path())' is a relationship and cannot be written")
        }
        if value.isNull {
            if attribute.isRequired && !isFilledByStore(attribute) {
                throw RecordValidationError(attribute: path(), message: "attribute '\(path())' is required and cannot be null")
            }
            return nil
        }
        if attribute.isPrimaryKey {
            return try validatePrimaryKey(value, type: attribute.type, path: path())
        }
        return try validateValue(value, type: attribute.type, path: path(), schema: schema)
    }

    /// Attributes the store sets itself, so a write may leave them out.
    private static func isFilledByStore(_ attribute: AttributeDefinition) -> Bool {
        attribute.isPrimaryKey || attribute.isCreatedTime || attribute.isUpdatedTime
    }

    // MARK: - Values

    private static func validatePrimaryKey(
        _ value: JSONValue, type: AttributeType, path: @autoclosure () -> String
    ) throws(RecordValidationError) -> JSONValue? {
        switch type {
        case .id, .string:
            guard case .string = value else {
                throw mismatch(path(), expected: type == .id ? "an ID (string)" : "a String (string)", got: value)
            }
            return nil
        case .int:
            return try integer(value, in: Int64(Int32.min)...Int64(Int32.max), path: path(), expected: "an Int (32-bit integer)")
        default:
            return try integer(value, in: Int64.min...Int64.max, path: path(), expected: "a Long (64-bit integer)")
        }
    }

    private static func validateValue(
        _ value: JSONValue,
        type: AttributeType,
        path: @autoclosure () -> String,
        schema: Schema
    ) throws(RecordValidationError) -> JSONValue? {
        switch type {
        case .id:
            switch value {
            case .string: return nil
            case .int, .double: return try integer(value, in: Int64.min...Int64.max, path: path(), expected: "an ID (string or integer)")
            default: throw mismatch(path(), expected: "an ID (string or integer)", got: value)
            }
        case .string:
            guard case .string = value else { throw mismatch(path(), expected: "a String (string)", got: value) }
            return nil
        case .int:
            return try integer(value, in: Int64(Int32.min)...Int64(Int32.max), path: path(), expected: "an Int (32-bit integer)")
        case .long:
            return try integer(value, in: Int64.min...Int64.max, path: path(), expected: "a Long (64-bit integer)")
        case .float:
            switch value {
            case .int, .double: return nil
            default: throw mismatch(path(), expected: "a Float (number)", got: value)
            }
        case .boolean:
            guard case .bool = value else { throw mismatch(path(), expected: "a Boolean (true or false)", got: value) }
            return nil
        case .date:
            let normal = JSONValue.string(DateValue.format(try date(value, path: path())))
            // (Not a `? nil :` expression: JSONValue is itself nil-literal expressible.)
            if normal == value { return nil }
            return normal
        case .any:
            return nil
        case .object(let typeName):
            guard let nested = schema.nestedTypes[typeName] else {
                throw RecordValidationError(
                    attribute: path(),
                    message: "attribute '\(path())' has type \(typeName), which is not a nested type of the schema"
                )
            }
            guard case .object(let object) = value else {
                throw mismatch(path(), expected: "\(article(typeName)) \(typeName) (object)", got: value)
            }
            let validated = try validateObject(
                object,
                attributes: nested.attributes,
                isSealed: nested.isSealed,
                owner: "type \(typeName)",
                path: path(),
                schema: schema
            )
            return validated.map(JSONValue.object)
        case .list(let element):
            guard case .array(let elements) = value else { throw mismatch(path(), expected: "a list \(type) (array)", got: value) }
            var result: [JSONValue]?
            for (index, item) in elements.enumerated() {
                // Lists may hold nulls: `[T!]` is read as `[T]`.
                if item.isNull { continue }
                guard let normal = try validateValue(item, type: element, path: "\(path())[\(index)]", schema: schema) else { continue }
                if result == nil { result = elements }
                result?[index] = normal
            }
            return result.map(JSONValue.array)
        }
    }

    /// `nil` for an integer within `range`; `.int` for a double with an integral value in range.
    private static func integer(
        _ value: JSONValue,
        in range: ClosedRange<Int64>,
        path: @autoclosure () -> String,
        expected: String
    ) throws(RecordValidationError) -> JSONValue? {
        switch value {
        case .int(let i):
            guard range.contains(i) else { throw mismatch(path(), expected: expected, got: value) }
            return nil
        case .double(let d):
            guard let integer = Int64(exactly: d), range.contains(integer) else { throw mismatch(path(), expected: expected, got: value) }
            return .int(integer)
        default:
            throw mismatch(path(), expected: expected, got: value)
        }
    }

    /// The milliseconds since 1970 of a `Date` value: an ISO 8601 string or a number of milliseconds.
    private static func date(_ value: JSONValue, path: String) throws(RecordValidationError) -> Int64 {
        let expected = "a Date (ISO 8601 string or milliseconds since 1970)"
        let milliseconds: Int64
        switch value {
        case .string(let text):
            guard let parsed = DateValue.parse(text) else {
                throw RecordValidationError(
                    attribute: path,
                    message: "attribute '\(path)' must be \(expected), got string \(JSONValue.string(text)) which is not a valid date"
                )
            }
            milliseconds = parsed
        case .int(let i):
            milliseconds = i
        case .double(let d):
            let whole = d.rounded(.down)
            guard whole.isFinite, let i = Int64(exactly: whole) else { throw mismatch(path, expected: expected, got: value) }
            milliseconds = i
        default:
            throw mismatch(path, expected: expected, got: value)
        }
        guard (DateValue.minimumMilliseconds...DateValue.maximumMilliseconds).contains(milliseconds) else {
            throw RecordValidationError(
                attribute: path,
                message: "attribute '\(path)' must be a Date between years 0000 and 9999, got \(describe(value))"
            )
        }
        return milliseconds
    }

    // MARK: - Messages

    private static func mismatch(_ path: String, expected: String, got value: JSONValue) -> RecordValidationError {
        RecordValidationError(attribute: path, message: "attribute '\(path)' must be \(expected), got \(describe(value))")
    }

    /// The JSON type of `value`, with the number itself for numbers (`number 1.5`).
    private static func describe(_ value: JSONValue) -> String {
        switch value {
        case .int, .double: return "number \(value)"
        default: return value.typeName
        }
    }

    private static func article(_ word: String) -> String {
        guard let first = word.first else { return "a" }
        return "AEIOUaeiou".contains(first) ? "an" : "a"
    }
}
