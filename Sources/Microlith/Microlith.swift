@_exported import Logging
@_exported import MicrolithCLI
@_exported import MicrolithCache
@_exported import MicrolithHTTP
@_exported import MicrolithJSON
@_exported import MicrolithJobs
@_exported import MicrolithMQTT
@_exported import MicrolithModules
@_exported import MicrolithRealtime
@_exported import MicrolithRuntime
@_exported import MicrolithSchema
@_exported import MicrolithStore
import NIOCore
import NIOPosix

#if os(Linux)
import Glibc
#endif

/// The library an application depends on: the whole runtime in one import.
///
/// An application is a Swift package whose executable calls ``main(modules:)`` with its modules;
/// the binary then takes the same commands as `microlith` (`serve DIR`, `check DIR`), with the
/// app's modules and roles:
///
/// ```swift
/// import Microlith
///
/// @main struct ShopApp {
///     static func main() async { await Microlith.main(modules: [PricingModule(), CartModule()]) }
/// }
/// ```
public enum Microlith {
    /// Runs the command line with `modules`, Swift concurrency running on NIO's event loops.
    public static func main(modules: [any Module]) async {
        runConcurrencyOnEventLoops()
        await MicrolithCommand.main(modules: modules)
    }

    /// Makes NIO's event loops Swift concurrency's global executor, so handlers run where the
    /// socket is read: no thread hop. Call it first thing in a custom `main`; later calls do nothing.
    ///
    /// There is one event loop per core the process may run on: a process pinned to fewer cores
    /// than the machine has (`taskset`, a CPU set) does not run more loops than cores, which
    /// would only pass connections and tasks between threads on the same core.
    public static func runConcurrencyOnEventLoops() {
        // Through NIO's own variable (an explicit one wins): unlike its setter, it cannot trap
        // when the loops already exist, it merely comes too late then.
        #if os(Linux)
        if getenv("NIO_SINGLETON_GROUP_LOOP_COUNT") == nil, let cores = allowedCoreCount(), cores < System.coreCount {
            setenv("NIO_SINGLETON_GROUP_LOOP_COUNT", String(cores), 0)
        }
        #endif
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }

    /// How many cores this process may run on (its CPU affinity, `Cpus_allowed` in
    /// `/proc/self/status`), where the system says.
    static func allowedCoreCount() -> Int? {
        #if os(Linux)
        guard let file = fopen("/proc/self/status", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            guard text.hasPrefix("Cpus_allowed:") else { continue }
            let count = text.dropFirst("Cpus_allowed:".count).reduce(0) { $0 + ($1.hexDigitValue?.nonzeroBitCount ?? 0) }
            return count > 0 ? count : nil
        }
        return nil
        #else
        return nil
        #endif
    }
}
