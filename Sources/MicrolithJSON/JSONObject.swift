/// The members of a JSON object, in the order they were added.
///
/// Lookups go through a dictionary of positions, so reading a member is O(1); removal is O(n),
/// which is fine for records. Two objects are equal when they hold the same members, whatever
/// their order.
public struct JSONObject: Sendable {
    public private(set) var keys: [String] = []
    public private(set) var values: [JSONValue] = []
    private var index: [String: Int] = [:]

    /// An empty object.
    public init() {}

    /// The number of members.
    public var count: Int { keys.count }

    /// `true` when the object has no members.
    public var isEmpty: Bool { keys.isEmpty }

    /// The member named `key`; setting `nil` removes it, setting a value adds or replaces it
    /// (a replaced member keeps its position).
    public subscript(key: String) -> JSONValue? {
        get {
            guard let i = index[key] else { return nil }
            return values[i]
        }
        set {
            if let newValue {
                if let i = index[key] {
                    values[i] = newValue
                } else {
                    index[key] = keys.count
                    keys.append(key)
                    values.append(newValue)
                }
            } else if let i = index.removeValue(forKey: key) {
                keys.remove(at: i)
                values.remove(at: i)
                for j in i..<keys.count { index[keys[j]] = j }
            }
        }
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
