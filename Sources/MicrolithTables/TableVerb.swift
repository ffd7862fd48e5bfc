/// What a role may do with a table's records: the permissions `roles.yaml` grants.
public enum TableVerb: String, Sendable, CaseIterable, Hashable, Comparable {
    /// `GET` of a record, a query or a prefix.
    case read
    /// Creating a record: `POST`, or `PUT` / a retained MQTT publish of a key that does not exist.
    case insert
    /// Changing a record: `PATCH`, or `PUT` / a retained MQTT publish of a key that exists.
    case update
    /// `DELETE` of a record or of a query's matches; an empty retained MQTT publish.
    case delete
    /// Subscribing: Server-Sent Events, WebSocket, MQTT subscriptions to the table's topics.
    case subscribe
    /// Publishing a message to a record's subscribers (not stored): WebSocket `publish`, MQTT publish without retain.
    case publish

    public static func < (lhs: TableVerb, rhs: TableVerb) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
