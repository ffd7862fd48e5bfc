#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's limit on open files, which every connection draws on.
///
/// A server that accepts until `accept` fails with `EMFILE` can no longer open its own files
/// (the store, logs) and spins on the listening socket. So the connection budget is kept below
/// the limit, with ``reserve`` descriptors left for everything else.
public enum FileDescriptorLimit {
    /// Descriptors kept for the store's files, logs, listening sockets and outgoing calls.
    public static let reserve = 128

    /// Raises the soft limit on open files to the hard limit (as far as the system allows) and
    /// returns the soft limit in force afterwards, or `nil` when it cannot be read.
    @discardableResult
    public static func raise() -> Int? {
        var limit = rlimit()
        guard getrlimit(resourceNoFile, &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resourceNoFile, &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// The most connections that fit under an open-file limit of `softLimit` with ``reserve``
    /// descriptors kept back (at least 16).
    public static func connectionBudget(softLimit: Int) -> Int {
        max(16, softLimit - reserve)
    }

    #if canImport(Glibc)
    private static var resourceNoFile: __rlimit_resource_t { __rlimit_resource_t(RLIMIT_NOFILE.rawValue) }
    #else
    private static var resourceNoFile: Int32 { RLIMIT_NOFILE }
    #endif
}
