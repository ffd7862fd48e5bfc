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
    public static func runConcurrencyOnEventLoops() {
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }
}
