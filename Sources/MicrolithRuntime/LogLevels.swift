public import Logging
import Synchronization

/// The log level of each subsystem (a log message's `source`: the module that logs it, such as
/// `MicrolithStore`), and of everything else; changeable while the server runs (`PUT /_log`).
public final class LogLevels: Sendable {
    private struct State {
        var base: Logger.Level
        var sources: [String: Logger.Level]
    }

    private let state: Mutex<State>
    /// The lowest level of all, so a logger asks the handler only for what some subsystem wants.
    private let lowest: Atomic<Int>

    /// `base` for every subsystem but those of `sources`.
    public init(base: Logger.Level = .info, sources: [String: Logger.Level] = [:]) {
        state = Mutex(State(base: base, sources: sources))
        lowest = Atomic(Self.rank(([base] + sources.values).min() ?? base))
    }

    /// The lowest level any subsystem logs at.
    public var minimum: Logger.Level { Logger.Level.allCases[lowest.load(ordering: .relaxed)] }

    /// The level messages of `source` are logged at.
    public func level(for source: String) -> Logger.Level {
        state.withLock { $0.sources[source] ?? $0.base }
    }

    /// The level of every subsystem without one of its own, and the subsystems' own levels.
    public var levels: (base: Logger.Level, sources: [String: Logger.Level]) {
        state.withLock { ($0.base, $0.sources) }
    }

    /// Sets the level of subsystems without one of their own (when `base` is given) and of the
    /// subsystems in `sources` (a nil level gives a subsystem back to the base level).
    public func set(base: Logger.Level? = nil, sources: [String: Logger.Level?] = [:]) {
        state.withLock { s in
            if let base { s.base = base }
            for (source, level) in sources { s.sources[source] = level }
            lowest.store(Self.rank(([s.base] + s.sources.values).min() ?? s.base), ordering: .relaxed)
        }
    }

    private static func rank(_ level: Logger.Level) -> Int {
        Logger.Level.allCases.firstIndex(of: level) ?? 0
    }
}
