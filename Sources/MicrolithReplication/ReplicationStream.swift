public import MicrolithNATS

/// The JetStream stream that carries every node's change log: its name, the subjects in it, and
/// how it is made.
///
/// Subjects are `<prefix>.<node>.<database>.<table>`, so one stream holds every node's entries
/// and a consumer can follow all of them, or one node's.
public struct ReplicationStream: Sendable, Equatable {
    /// The stream's name.
    public var name: String
    /// The first token(s) of every subject.
    public var subjectPrefix: String
    /// Copies the stream keeps in a JetStream cluster (1 for a single server, 3 for a cluster of three).
    public var replicas: Int
    /// How long entries are kept: a node away longer cannot resume from the stream alone
    /// (7 days by default).
    public var maximumAge: Duration
    /// The first token(s) of the subjects a node answers repair requests on
    /// (`<repairPrefix>.<node>.<database>`): entries of its log another node missed.
    public var repairPrefix = "microlith.repair"
    /// The first token(s) of the subjects a node tells an origin how far it applied the origin's
    /// log on (`<appliedPrefix>.<origin>.<database>`, ``AppliedNotice``).
    public var appliedPrefix = "microlith.applied"
    /// The first token(s) of the subjects nodes ask each other for a table's rows on
    /// (``ResyncResponder``).
    public var resyncPrefix = "microlith.resync"
    /// The first token(s) of the subjects running nodes answer on for their names
    /// (``NodePresence``): two processes never replicate under one name.
    public var presencePrefix = "microlith.presence"

    public init(
        name: String = ReplicationStream.defaultName, subjectPrefix: String = "microlith.changes", replicas: Int = 1,
        maximumAge: Duration = .seconds(7 * 86_400)
    ) {
        self.name = name
        self.subjectPrefix = subjectPrefix
        self.replicas = replicas
        self.maximumAge = maximumAge
    }

    /// The default stream's name: its subjects start `microlith.changes`, `microlith.repair`, ….
    public static let defaultName = "MICROLITH_CHANGES"

    /// The stream named `name`, every subject scoped to it: `microlith.<name>.changes`,
    /// `microlith.<name>.repair`, `microlith.<name>.applied`, `microlith.<name>.resync`,
    /// `microlith.<name>.presence` (the default
    /// name keeps the unscoped ones). Clusters sharing a NATS account under different stream names
    /// then neither take each other's changes nor answer each other's repair, resync and digest
    /// requests. `name` must be a subject token.
    public static func named(_ name: String, replicas: Int = 1, maximumAge: Duration = .seconds(7 * 86_400)) -> ReplicationStream {
        guard name != defaultName else { return ReplicationStream(replicas: replicas, maximumAge: maximumAge) }
        var stream = ReplicationStream(name: name, subjectPrefix: "microlith.\(name).changes", replicas: replicas, maximumAge: maximumAge)
        stream.repairPrefix = "microlith.\(name).repair"
        stream.appliedPrefix = "microlith.\(name).applied"
        stream.resyncPrefix = "microlith.\(name).resync"
        stream.presencePrefix = "microlith.\(name).presence"
        return stream
    }

    /// The subject `node` answers repair requests for `database` on.
    public func repairSubject(node: String, database: String) -> String {
        "\(repairPrefix).\(node).\(database)"
    }

    /// The subject a node tells `origin` on how far it applied its log of `database`.
    public func appliedSubject(origin: String, database: String) -> String {
        "\(appliedPrefix).\(origin).\(database)"
    }

    /// The table token of a message that holds entries of several tables: a hyphen, which no
    /// table name has.
    public static let mixedTables = "mixed-tables"

    /// The subject of an entry of `node`'s log of `database`, table `table`.
    public func subject(node: String, database: String, table: String) -> String {
        "\(subjectPrefix).\(node).\(database).\(table)"
    }

    /// The stream's configuration: every subject under the prefix, file storage.
    public var configuration: NATSStreamConfiguration {
        NATSStreamConfiguration(name: name, subjects: ["\(subjectPrefix).>"], replicas: replicas, maximumAge: maximumAge)
    }

    /// Creates the stream unless it exists. One that exists is used as it is (its limits and
    /// replicas are someone's choice) if it takes the subjects, and refused otherwise.
    public func prepare(_ jetStream: NATSJetStream) async throws {
        do {
            _ = try await jetStream.createStream(configuration)
        } catch let error as NATSJetStreamError where error.code == 400 {
            var info = try await jetStream.streamInfo(name)
            // A stream made under this name by a version that did not scope its subjects takes
            // `microlith.changes.>`: it takes this version's subjects too, beside its messages.
            if name != Self.defaultName, !info.config.subjects.contains("\(subjectPrefix).>"),
                info.config.subjects.contains("microlith.changes.>")
            {
                var config = info.config
                config.subjects.append("\(subjectPrefix).>")
                info = try await jetStream.updateStream(config)
            }
            guard info.config.subjects.contains("\(subjectPrefix).>") else {
                throw ReplicationError(
                    "stream \(name) exists but does not take \(subjectPrefix).> (it takes \(info.config.subjects.joined(separator: ", "))): \(error)"
                )
            }
        }
    }
}
