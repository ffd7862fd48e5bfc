public import MicrolithJSON

/// When, and on which node, each attribute of a record was last written: what lets concurrent
/// PATCHes of different attributes on different nodes both survive.
///
/// A record's attributes all carry the stamp of the write that replaced the whole record (a put:
/// ``base``), except those a PATCH wrote since, which carry that PATCH's stamp
/// (``attributes``; top-level attributes only: a PATCH of a nested object stamps the whole
/// object). An attribute a PATCH removed keeps its stamp, so an older write of it cannot bring it
/// back.
///
/// Two copies of one record merge attribute by attribute, the later stamp winning
/// (``merge(_:_:)``): the result is the same whatever the order copies arrive in, and merging a
/// copy twice changes nothing.
public struct RecordStamps: Sendable, Hashable {
    /// A write's version (hybrid logical clock timestamp) and node; later versions win, and the
    /// greater node name between equal versions.
    public struct Stamp: Sendable, Hashable, Comparable, CustomStringConvertible {
        public var version: Int64
        public var origin: String

        public init(version: Int64, origin: String) {
            self.version = version
            self.origin = origin
        }

        /// Node names compare byte by byte (UTF-8), the same on every platform and whatever
        /// Unicode normalisation would say.
        public static func < (a: Stamp, b: Stamp) -> Bool {
            a.version != b.version ? a.version < b.version : a.origin.utf8.lexicographicallyPrecedes(b.origin.utf8)
        }

        public var description: String { "\(version)@\(origin)" }
    }

    /// An integer attribute changed by additions (``WriteTransaction/add(_:id:attribute:amount:)``)
    /// since a write last set it: the value set, and per node what it added and took away in
    /// all. Copies merge node by node (the larger total wins, totals only grow), so additions
    /// made on several nodes at once all count; a write that sets the attribute again (a later
    /// stamp) starts a new counter, and additions made on the old one are dropped.
    public struct Counter: Sendable, Hashable {
        /// The value the attribute was set to.
        public var base: Int64
        /// Per node, the total added.
        public var added: [String: Int64]
        /// Per node, the total taken away.
        public var removed: [String: Int64]

        public init(base: Int64, added: [String: Int64] = [:], removed: [String: Int64] = [:]) {
            self.base = base
            self.added = added
            self.removed = removed
        }

        /// The attribute's value.
        public var value: Int64 { base &+ added.values.reduce(0, &+) &- removed.values.reduce(0, &+) }

        /// The counter after `node` adds `amount` (a negative amount takes away).
        public func adding(_ amount: Int64, on node: String) -> Counter {
            // Totals saturate rather than wrap: a total only grows.
            func plus(_ a: Int64, _ b: Int64) -> Int64 {
                let (sum, overflow) = a.addingReportingOverflow(b)
                return overflow ? Int64.max : sum
            }
            var result = self
            if amount >= 0 {
                result.added[node] = plus(result.added[node] ?? 0, amount)
            } else {
                result.removed[node] = plus(result.removed[node] ?? 0, amount == Int64.min ? Int64.max : -amount)
            }
            return result
        }

        /// Two copies of the same counter (one base) merged node by node.
        public static func merge(_ a: Counter, _ b: Counter) -> Counter {
            Counter(
                base: max(a.base, b.base), added: a.added.merging(b.added, uniquingKeysWith: max),
                removed: a.removed.merging(b.removed, uniquingKeysWith: max))
        }
    }

    /// The stamp of the last write that replaced the whole record.
    public var base: Stamp
    /// Attributes written after ``base``, by PATCHes, with their stamps (each later than ``base``).
    public var attributes: [String: Stamp]
    /// Attributes changed by additions since their stamp, with their counters.
    public var counters: [String: Counter]

    public init(base: Stamp, attributes: [String: Stamp] = [:], counters: [String: Counter] = [:]) {
        self.base = base
        self.attributes = attributes
        self.counters = counters
    }

    /// The stamp of `attribute`.
    public func stamp(of attribute: String) -> Stamp { attributes[attribute] ?? base }

    /// The latest stamp of all: the record's version.
    public var latest: Stamp { attributes.values.max().map { max($0, base) } ?? base }

    /// The stamps after a local PATCH stamped `stamp` that wrote the top-level `attributes`
    /// (their counters, if any, end: the PATCH set a new value).
    public func patched(_ names: some Sequence<String>, at stamp: Stamp) -> RecordStamps {
        var result = self
        for name in names {
            result.attributes[name] = stamp
            result.counters[name] = nil
        }
        return result
    }

    /// Two copies of a record merged attribute by attribute: each attribute's value and stamp
    /// come from the copy whose stamp for it is later.
    public static func merge(
        _ a: (record: JSONObject, stamps: RecordStamps), _ b: (record: JSONObject, stamps: RecordStamps)
    ) -> (record: JSONObject, stamps: RecordStamps) {
        let base = max(a.stamps.base, b.stamps.base)
        // The first copy's order, then what only the second holds, then names only stamps hold.
        var names = a.record.keys
        var seen = Set(names)
        for name in b.record.keys where seen.insert(name).inserted { names.append(name) }
        for name in Set(a.stamps.attributes.keys).union(b.stamps.attributes.keys).sorted() where seen.insert(name).inserted {
            names.append(name)
        }
        var record = JSONObject()
        var attributes: [String: Stamp] = [:]
        var counters: [String: Counter] = [:]
        for name in names {
            let sa = a.stamps.stamp(of: name)
            let sb = b.stamps.stamp(of: name)
            let stamp = max(sa, sb)
            if stamp > base { attributes[name] = stamp }
            if sa == sb, let ca = a.stamps.counters[name], let cb = b.stamps.counters[name] {
                // Additions to one value on several nodes: they all count.
                let counter = Counter.merge(ca, cb)
                counters[name] = counter
                record[name] = .int(counter.value)
                continue
            }
            // One stamp is one write: between equal stamps, the copy with additions is the later.
            let winner = sb > sa || (sa == sb && b.stamps.counters[name] != nil) ? b : a
            if let value = winner.record[name] { record[name] = value }
            if let counter = winner.stamps.counters[name] { counters[name] = counter }
        }
        return (record, RecordStamps(base: base, attributes: attributes, counters: counters))
    }

    // MARK: Stored form

    /// The JSON text kept beside the record: `{"base":[version,"node"],"attributes":{"a":[version,"node"]}}`,
    /// with `"counters":{"a":{"base":n,"added":{"node":n},"removed":{"node":n}}}` when there are any.
    public var text: String { String(decoding: JSONWriter.encode(json), as: UTF8.self) }

    /// The JSON form (what ``text`` holds).
    public var json: JSONValue {
        func pair(_ s: Stamp) -> JSONValue { .array([.int(s.version), .string(s.origin)]) }
        var object = JSONObject()
        object["base"] = pair(base)
        var names = JSONObject()
        for (name, stamp) in attributes.sorted(by: { $0.key < $1.key }) { names[name] = pair(stamp) }
        object["attributes"] = .object(names)
        if !counters.isEmpty {
            func totals(_ t: [String: Int64]) -> JSONValue {
                var o = JSONObject()
                for (node, n) in t.sorted(by: { $0.key < $1.key }) { o[node] = .int(n) }
                return .object(o)
            }
            var all = JSONObject()
            for (name, c) in counters.sorted(by: { $0.key < $1.key }) {
                all[name] = .object(["base": .int(c.base), "added": totals(c.added), "removed": totals(c.removed)])
            }
            object["counters"] = .object(all)
        }
        return .object(object)
    }

    /// Reads ``text`` back; `nil` when it is not that form.
    public init?(text: String) {
        var text = text
        guard let value = try? text.withUTF8({ try JSONParser.parse($0) }) else { return nil }
        self.init(json: value)
    }

    /// Reads the JSON form; `nil` when it is not that form.
    public init?(json value: JSONValue) {
        func stamp(_ value: JSONValue?) -> Stamp? {
            guard case .array(let pair)? = value, pair.count == 2, case .int(let version) = pair[0], case .string(let origin) = pair[1]
            else { return nil }
            return Stamp(version: version, origin: origin)
        }
        guard case .object(let object) = value, let base = stamp(object["base"]) else { return nil }
        var attributes: [String: Stamp] = [:]
        switch object["attributes"] {
        case .object(let names)?:
            for (name, value) in names.members {
                guard let s = stamp(value) else { return nil }
                attributes[name] = s
            }
        case nil: break
        default: return nil
        }
        func totals(_ value: JSONValue?) -> [String: Int64]? {
            guard case .object(let o)? = value else { return value == nil ? [:] : nil }
            var t: [String: Int64] = [:]
            for (node, n) in o.members {
                guard case .int(let n) = n, n >= 0 else { return nil }
                t[node] = n
            }
            return t
        }
        var counters: [String: Counter] = [:]
        switch object["counters"] {
        case .object(let all)?:
            for (name, value) in all.members {
                guard case .object(let c) = value, case .int(let b)? = c["base"], let added = totals(c["added"]), let removed = totals(c["removed"])
                else { return nil }
                counters[name] = Counter(base: b, added: added, removed: removed)
            }
        case nil: break
        default: return nil
        }
        self.init(base: base, attributes: attributes, counters: counters)
    }
}
