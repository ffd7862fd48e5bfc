import MicrolithJSON
public import NIOCore

/// A node's answer to a request for entries of its log another node missed (``RepairResponder``):
/// the entries, where the next request should start, whether the span is done, or why it cannot
/// be answered.
///
/// On the wire: `{"changes":[…],"next":n,"done":true|false}`, or `{"problem":"…"}`.
public struct RepairReply: Sendable {
    public var changes: [ReplicatedChange]
    /// The sequence up to which the span was looked through.
    public var next: Int64
    /// Whether the whole span was looked through.
    public var done: Bool
    /// Why the entries cannot be given (the log no longer holds them, no such database).
    public var problem: String?

    public init(changes: [ReplicatedChange], next: Int64, done: Bool, problem: String? = nil) {
        self.changes = changes
        self.next = next
        self.done = done
        self.problem = problem
    }

    /// The JSON object, as bytes.
    public var json: ByteBuffer {
        var o = JSONObject()
        if let problem {
            o["problem"] = .string(problem)
        } else {
            o["changes"] = .array(changes.map(\.jsonValue))
            o["next"] = .int(next)
            o["done"] = .bool(done)
        }
        return ByteBuffer(bytes: JSONWriter.encode(.object(o)))
    }

    /// Reads an answer, or says what is wrong with it.
    public init(json bytes: ByteBuffer) throws(ReplicationError) {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes.readableBytesView)
        } catch {
            throw ReplicationError("a repair answer is not JSON: \(error)")
        }
        guard case .object(let o) = value else { throw ReplicationError("a repair answer is not a JSON object") }
        if case .string(let problem)? = o["problem"] {
            self.init(changes: [], next: 0, done: false, problem: problem)
            return
        }
        guard case .array(let list)? = o["changes"], case .int(let next)? = o["next"], case .bool(let done)? = o["done"] else {
            throw ReplicationError("a repair answer lacks its changes, next or done")
        }
        var changes: [ReplicatedChange] = []
        for item in list { changes.append(try ReplicatedChange(jsonValue: item)) }
        self.init(changes: changes, next: next, done: done)
    }
}
