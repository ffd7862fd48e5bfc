import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(CoreFoundation)
// `timespec` resolves to the declaration CoreFoundation re-exports; reading its members needs
// that module imported here (MemberImportVisibility).
import CoreFoundation
#endif

/// A hybrid logical clock: timestamps that follow wall-clock milliseconds yet never go
/// backwards and never repeat on one node.
///
/// A timestamp is `milliseconds << 16 | counter`; the counter orders events within one
/// millisecond (up to 65,535 of them before the clock borrows the next millisecond).
public final class HybridLogicalClock: Sendable {
    private let state = Mutex<Int64>(0)
    private let wallClock: @Sendable () -> Int64

    /// A clock reading milliseconds since 1970 from `wallClock` (the system clock by default).
    public init(wallClock: @escaping @Sendable () -> Int64 = HybridLogicalClock.systemMilliseconds) {
        self.wallClock = wallClock
    }

    /// The current time in milliseconds since 1970.
    public static let systemMilliseconds: @Sendable () -> Int64 = {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// A new timestamp, greater than every one this clock has issued or observed.
    public func now() -> Int64 {
        let physical = wallClock() << 16
        return state.withLock { last in
            let next = max(physical, last + 1)
            last = next
            return next
        }
    }

    /// Moves the clock past a timestamp seen from elsewhere (another node's write).
    public func observe(_ timestamp: Int64) {
        state.withLock { last in last = max(last, timestamp) }
    }

    /// The wall-clock milliseconds of a timestamp.
    public static func milliseconds(of timestamp: Int64) -> Int64 { timestamp >> 16 }

    /// The first timestamp of the wall-clock millisecond `milliseconds`.
    public static func timestamp(milliseconds: Int64) -> Int64 { milliseconds << 16 }
}
