import Foundation
import HTTPTypes
public import Hummingbird
import MicrolithJSON

/// `X-Replicate-To: N` on a write (`PUT`, `POST`, `PATCH`, `DELETE`): the answer waits until N
/// nodes of the cluster, this one included, have applied the write, and says how many did in
/// `X-Replicated-To`.
///
/// The write commits here first, as any other. When fewer than N nodes have applied it within
/// the wait (``ReplicationWaiter/timeout``), the answer is `504` with the problem
/// `replicationTimeout` and `replicatedTo` in its body: the write stays committed here and
/// reaches the other nodes when they catch up (retrying a `PUT` is safe; a `POST` makes a second
/// record). A value that is not a whole number from 1 to 64 is `400`, and so is N above 1 on a
/// node that does not replicate. Reads ignore the header.
public struct ReplicateToMiddleware<Context: RequestContext>: RouterMiddleware {
    public let waiter: ReplicationWaiter

    public init(waiter: ReplicationWaiter) {
        self.waiter = waiter
    }

    static var requested: HTTPField.Name { HTTPField.Name("X-Replicate-To")! }
    static var reached: HTTPField.Name { HTTPField.Name("X-Replicated-To")! }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let value = request.headers[Self.requested], [.put, .post, .patch, .delete].contains(request.method) else {
            return try await next(request, context)
        }
        guard let nodes = Int(value.trimmingCharacters(in: .whitespaces)), (1...64).contains(nodes) else {
            throw Problem(.badRequest, "X-Replicate-To must be a whole number of nodes from 1 to 64, this node included; got '\(value)'")
        }
        guard nodes == 1 || waiter.replicating else {
            throw Problem(
                .badRequest,
                "X-Replicate-To: \(nodes) cannot be met: this node does not replicate (replication.nats is not set); send 1 or leave it out")
        }
        let before = nodes > 1 ? try await waiter.positions() : [:]
        var response = try await next(request, context)
        guard (200..<300).contains(response.status.code) else { return response }
        guard nodes > 1 else {
            response.headers[Self.reached] = "1"
            return response
        }
        let after = try await waiter.positions()
        let moved = after.filter { $0.value > (before[$0.key] ?? 0) }
        var reached = nodes
        for (database, sequence) in moved.sorted(by: { $0.key < $1.key }) {
            reached = min(reached, 1 + (await waiter.wait(database, sequence, nodes - 1)))
        }
        guard reached >= nodes else {
            var extensions = JSONObject()
            extensions["replicatedTo"] = .int(Int64(reached))
            extensions["requested"] = .int(Int64(nodes))
            throw Problem(
                .gatewayTimeout,
                "the write was committed on this node and applied on \(reached) of the \(nodes) nodes asked for within \(waiter.timeout); "
                    + "it stays committed and reaches the other nodes when they catch up",
                code: "replicationTimeout", extensions: extensions, headers: [Self.reached: "\(reached)"])
        }
        response.headers[Self.reached] = "\(reached)"
        return response
    }
}

/// What ``ReplicateToMiddleware`` asks of the node: where its change logs stand, and a wait for
/// other nodes to apply them.
public struct ReplicationWaiter: Sendable {
    /// Whether this node replicates at all.
    public var replicating: Bool
    /// How long a write waits for the other nodes.
    public var timeout: Duration
    /// The latest sequence of each database's change log.
    public var positions: @Sendable () async throws -> [String: Int64]
    /// Waits (at most ``timeout``) until `peers` other nodes have applied entry `sequence` of
    /// this node's log of `database`; returns how many had.
    public var wait: @Sendable (_ database: String, _ sequence: Int64, _ peers: Int) async -> Int

    public init(
        replicating: Bool, timeout: Duration, positions: @escaping @Sendable () async throws -> [String: Int64],
        wait: @escaping @Sendable (_ database: String, _ sequence: Int64, _ peers: Int) async -> Int
    ) {
        self.replicating = replicating
        self.timeout = timeout
        self.positions = positions
        self.wait = wait
    }
}
