import Foundation
import MicrolithSchema
public import MicrolithStore

/// The exported tables of a store, by the names every door spells them with, and the one reader of
/// table targets (see ``TableTarget`` for the grammar).
///
/// Built once per store and shared: REST, the event-loop fast path, Server-Sent Events, WebSocket
/// and MQTT all resolve their URLs and topics here, so a key reads the same and a mistake gets the
/// same words whichever door it came through.
public struct TableDirectory: Sendable {
    /// The store whose tables these are.
    public let store: Store
    /// Every exported table's name, sorted (for messages).
    public let exportedNames: [String]
    private let byName: [String: TableLayout]

    /// The directory of `store`'s exported tables.
    public init(store: Store) {
        self.store = store
        var byName: [String: TableLayout] = [:]
        for table in store.tables {
            if let name = table.definition.exportName { byName[name] = table }
        }
        self.byName = byName
        self.exportedNames = byName.keys.sorted()
    }

    /// The exported table called `name`, compared as sent.
    public func table(named name: String) -> TableLayout? {
        byName[name]
    }

    /// The exported table whose name is the first segment of the URL `path` (which starts with
    /// `/`), without reading the rest: how a middleware tells a table URL from another.
    public func table(inPath path: String) -> TableLayout? {
        let utf8 = path.utf8
        guard utf8.first == UInt8(ascii: "/") else { return nil }
        let start = utf8.index(after: utf8.startIndex)
        let end = utf8[start...].firstIndex(of: UInt8(ascii: "/")) ?? utf8.endIndex
        guard start != end else { return nil }
        return byName[String(path[start..<end])]
    }

    /// How messages name `table`: its export name, else its name.
    public static func displayName(_ table: TableLayout) -> String {
        table.definition.exportName ?? table.name
    }

    // MARK: URL paths

    /// What the URL `path` (without its query; starting with `/`) names, with `query` (the text
    /// after `?`, raw) attached.
    ///
    /// - Throws: ``TableTargetError``: `noTable` or `unknownTable` (404) when no exported table is
    ///   named, `badEscape`, `invalidID` or `invalidPrefix` (400) when the key or prefix is not one.
    public func target(path: String, query: Substring? = nil) throws(TableTargetError) -> TableTarget {
        let utf8 = path.utf8
        let afterSlash = utf8.first == UInt8(ascii: "/") ? utf8.index(after: utf8.startIndex) : utf8.startIndex
        let tableEnd = utf8[afterSlash...].firstIndex(of: UInt8(ascii: "/")) ?? utf8.endIndex
        guard afterSlash != tableEnd, utf8.first == UInt8(ascii: "/") else {
            throw TableTargetError(
                kind: .noTable, detail: "name a table: /Table/id, /Table/, /Table/prefix/ or /Table/?query", tableName: nil)
        }
        let name = String(path[afterSlash..<tableEnd])
        guard let table = byName[name] else { throw unknownTable(name) }
        let query = query.flatMap { $0.isEmpty ? nil : $0 }
        let key = tableEnd == utf8.endIndex ? Substring() : path[utf8.index(after: tableEnd)...]
        if key.isEmpty {
            return TableTarget(table: table, name: name, selection: .collection, spelledKey: key, query: query)
        }
        if key.utf8.last == UInt8(ascii: "/") {
            let type = table.definition.primaryKeyAttribute.type
            guard type != .int, type != .long else {
                throw TableTargetError(
                    kind: .invalidPrefix, detail: "the prefix in /\(name)/\(key) can match no key: the keys of \(name) are numbers", tableName: name)
            }
            let prefix: String
            do {
                prefix = try PathSegment.decode(key)
            } catch {
                throw TableTargetError(kind: .badEscape, detail: "the prefix in /\(name)/\(key) has \(error.description)", tableName: name)
            }
            if let problem = RecordID.keyTextProblem(prefix) {
                throw TableTargetError(kind: .invalidPrefix, detail: "the prefix in /\(name)/\(key) can match no key: \(problem)", tableName: name)
            }
            return TableTarget(table: table, name: name, selection: .prefix(prefix), spelledKey: key, query: query)
        }
        let text: String
        do {
            text = try PathSegment.decode(key)
        } catch {
            throw TableTargetError(kind: .badEscape, detail: "the key in /\(name)/\(key) has \(error.description)", tableName: name)
        }
        let id = try recordID(text, spelled: key, table: table, name: name)
        return TableTarget(table: table, name: name, selection: .record(id), spelledKey: key, query: query)
    }

    /// The record key `text` (already decoded) of `table`, as its primary key's type reads it;
    /// `spelled` is how the client wrote it, for the message.
    public func recordID(_ text: String, spelled: Substring, table: TableLayout, name: String? = nil) throws(TableTargetError) -> RecordID {
        let pk = table.definition.primaryKeyAttribute
        if let id = RecordID(text: text, type: pk.type) { return id }
        let reason = pk.type == .int || pk.type == .long ? nil : RecordID.keyTextProblem(text)
        let name = name ?? Self.displayName(table)
        throw TableTargetError(
            kind: .invalidID,
            detail: "'\(spelled)' is not a valid \(pk.type) key for \(name): \(reason ?? "expected \(RecordID.keyKind(pk.type))")",
            tableName: name)
    }

    /// The error for a table name no exported table has.
    public func unknownTable(_ name: String) -> TableTargetError {
        TableTargetError(
            kind: .unknownTable,
            detail: "no exported table named '\(name)'; exported tables: \(exportedNames.isEmpty ? "none" : exportedNames.joined(separator: ", "))",
            tableName: name)
    }

    /// The URL path of record `id` of `table`: `/T/` and the key, percent-encoded so that
    /// ``target(path:query:)`` reads it back as the same key (a `/` in the key is `%2F`).
    public static func path(_ table: TableLayout, _ id: RecordID) -> String {
        let text = id.description
        // Most keys (UUIDs, numbers, slugs) need no escaping: checked byte by byte, without Foundation.
        let segment =
            text.utf8.allSatisfy(isSegmentByte) ? text : text.addingPercentEncoding(withAllowedCharacters: segmentAllowed) ?? text
        return "/\(displayName(table))/\(segment)"
    }

    /// What a path segment may hold unescaped: the URL path characters but `/`.
    private static let segmentAllowed = CharacterSet.urlPathAllowed.subtracting(["/"])

    /// Whether `byte` is an unreserved ASCII character (RFC 3986), all of which ``segmentAllowed`` holds.
    private static func isSegmentByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
        }
    }

    // MARK: MQTT topics

    /// What the MQTT topic `topic` names: a record of an exported table (`T/id`, the key being
    /// everything after the first `/`, taken literally), or `nil` for a plain topic (no `/`, a first
    /// level that is no exported table, or nothing after the `/`).
    ///
    /// - Throws: ``TableTargetError`` `invalidID` when the table is exported but the key is not one
    ///   its primary key accepts.
    public func target(topic: String) throws(TableTargetError) -> TableTarget? {
        guard let slash = topic.utf8.firstIndex(of: UInt8(ascii: "/")) else { return nil }
        let name = String(topic[..<slash])
        guard let table = byName[name] else { return nil }
        let key = topic[topic.utf8.index(after: slash)...]
        guard !key.isEmpty else { return nil }
        let id = try recordID(String(key), spelled: key, table: table, name: name)
        return TableTarget(table: table, name: name, selection: .record(id), spelledKey: key, query: nil)
    }

    /// The topic of record `id` of `table`: `T/id`, the key as it is; `nil` when the table is not exported.
    public static func topic(_ table: TableLayout, _ id: RecordID) -> String? {
        table.definition.exportName.map { "\($0)/\(id)" }
    }
}
