import Synchronization
import Tracing

/// Whether the runtime makes trace spans (request, operation, store write): off until a process
/// bootstraps a tracer (`serve` with `tracing.endpoint`), so nothing is spent on them otherwise.
public enum Spans {
    private static let on = Atomic<Bool>(false)

    /// Whether spans are made.
    public static var enabled: Bool { on.load(ordering: .relaxed) }

    /// Makes spans from now on (call it once `InstrumentationSystem` has its tracer).
    public static func enable() { on.store(true, ordering: .relaxed) }

    /// Runs `work` in a span named `name` when spans are on, else just runs it.
    public static func measure<T>(
        _ name: String, attributes: [(String, String)] = [], _ work: () async throws -> T
    ) async rethrows -> T {
        guard enabled else { return try await work() }
        return try await withSpan(name, ofKind: .internal) { span in
            for (key, value) in attributes { span.attributes[key] = value }
            return try await work()
        }
    }
}
