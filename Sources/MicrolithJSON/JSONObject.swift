/// The members of a JSON object, in the order they were added.
///
/// A small object (up to ``JSONObject/linearLimit`` members, as most records are) finds a member
/// by comparing names in order, which costs less than hashing; a larger one keeps a dictionary of
/// positions, so reading a member stays O(1). Removal is O(n), which is fine for records. Two
/// objects are equal when they hold the same members, whatever their order.
public struct JSONObject: Sendable {
    public private(set) var keys: [String] = []
    public private(set) var values: [JSONValue] = []
    /// Positions by name, once the object has more than ``linearLimit`` members.
    private var index: [String: Int]?

    /// The most members an object looks up by comparing names in order.
    static let linearLimit = 8

    /// An empty object.
    public init() {}

    /// The number of members.
    public var count: Int { keys.count }

    /// `true` when the object has no members.
    public var isEmpty: Bool { keys.isEmpty }

    /// The position of the member named `key`.
    private func position(_ key: String) -> Int? {
        if let index { return index[key] }
        for i in keys.indices where keys[i] == key { return i }
        return nil
    }

    /// The member named `key`; setting `nil` removes it, setting a value adds or replaces it
    /// (a replaced member keeps its position).
    public subscript(key: String) -> JSONValue? {
        get {
            guard let i = position(key) else { return nil }
            return values[i]
        }
        set {
            if let newValue {
                if let i = position(key) {
                    values[i] = newValue
                } else {
                    append(key, newValue)
                }
            } else if let i = position(key) {
                keys.remove(at: i)
                values.remove(at: i)
                if index != nil {
                    index![key] = nil
                    for j in i..<keys.count { index![keys[j]] = j }
                }
            }
        }
    }

    /// Adds the member `key`, which must not be there yet; returns `false` (and changes nothing)
    /// when it is. One lookup, for building objects from parsed text.
    public mutating func insertNew(_ key: String, _ value: JSONValue) -> Bool {
        if position(key) != nil { return false }
        append(key, value)
        return true
    }

    private mutating func append(_ key: String, _ value: JSONValue) {
        if index != nil {
            index![key] = keys.count
        } else if keys.count == Self.linearLimit {
            var built = [String: Int](minimumCapacity: keys.count * 2)
            for (i, k) in keys.enumerated() { built[k] = i }
            built[key] = keys.count
            index = built
        }
        keys.append(key)
        values.append(value)
    }

    /// Replaces the value of the member at `position` (in ``keys`` order), keeping its key.
    public mutating func replaceValue(at position: Int, with value: JSONValue) {
        values[position] = value
    }

    /// The members as (key, value) pairs in order.
    public var members: Zip2Sequence<[String], [JSONValue]> { zip(keys, values) }
}

extension JSONObject: Equatable {
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for (k, v) in lhs.members {
            guard let other = rhs[k], other == v else { return false }
        }
        return true
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init()
        for (k, v) in elements { self[k] = v }
    }
}
