import Synchronization

/// A wall clock in milliseconds since 1970 that tests set and move (for `StoreConfiguration.wallClock`).
public final class ManualClock: Sendable {
    private let milliseconds = Mutex<Int64>(0)

    public init(_ start: Int64) { set(start) }

    /// A clock at an arbitrary instant of 2027.
    public convenience init() { self.init(1_800_000_000_000) }

    public func set(_ value: Int64) { milliseconds.withLock { $0 = value } }

    public func read() -> Int64 { milliseconds.withLock { $0 } }

    public func advance(seconds: Double) { set(read() + Int64(seconds * 1000)) }
}
