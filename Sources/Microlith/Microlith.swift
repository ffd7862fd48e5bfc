// What an application names, chosen declaration by declaration (as Hummingbird re-exports its
// own), rather than every public declaration of eleven libraries: wire formats, HTTP plumbing and
// store internals stay behind their own modules, which an app may still import by name. Exported:
// the logger; record values and dates; the store's typed tables, keys and transactions; modules'
// operations, resources, hooks, jobs and schedules; the job queue (to enqueue, and to run jobs in an
// app's tests); subscriptions from Swift; the server, its configuration (TLS settings included) and
// the command line.

import MicrolithRuntime
import NIOCore
import NIOPosix

@_exported import struct Logging.Logger
@_exported import struct MicrolithCLI.LocalCluster
@_exported import struct MicrolithCLI.MicrolithCommand
@_exported import struct MicrolithCache.LiveSlot
@_exported import struct MicrolithHTTP.HTTPConfiguration
@_exported import struct MicrolithJSON.JSONObject
@_exported import struct MicrolithJSON.JSONParseError
@_exported import struct MicrolithJSON.JSONParser
@_exported import enum MicrolithJSON.JSONValue
@_exported import struct MicrolithJSON.SplitMix64
@_exported import struct MicrolithJobs.JobConfiguration
@_exported import struct MicrolithJobs.JobQueue
@_exported import struct MicrolithJobs.JobRecord
@_exported import class MicrolithJobs.JobWorker
@_exported import struct MicrolithMQTT.MQTTConfiguration
@_exported import struct MicrolithModules.CronExpression
@_exported import struct MicrolithModules.Job
@_exported import struct MicrolithModules.JobRun
@_exported import enum MicrolithModules.MissedRunPolicy
@_exported import protocol MicrolithModules.Module
@_exported import struct MicrolithModules.ModuleBuilder
@_exported import struct MicrolithModules.ModuleConfigurationError
@_exported import class MicrolithModules.Modules
@_exported import struct MicrolithModules.Operation
@_exported import struct MicrolithModules.OperationContext
@_exported import struct MicrolithModules.OperationError
@_exported import struct MicrolithModules.RemoteEndpoint
@_exported import struct MicrolithModules.ResourceBuilder
@_exported import struct MicrolithModules.ResourceCall
@_exported import struct MicrolithModules.ResourceResponse
@_exported import struct MicrolithModules.RetryPolicy
@_exported import enum MicrolithModules.Schedule
@_exported import struct MicrolithModules.ScheduledRun
@_exported import struct MicrolithModules.TableHookBuilder
@_exported import struct MicrolithModules.WriteHookContext
@_exported import class MicrolithProcess.ChildProcess
@_exported import struct MicrolithProcess.ChildProcessError
@_exported import protocol MicrolithQuery.QueryArgument
@_exported import class MicrolithRealtime.RealtimeEvent
@_exported import class MicrolithRealtime.RealtimeSubscription
@_exported import enum MicrolithRealtime.SubscriptionTarget
@_exported import struct MicrolithRuntime.AppFolder
@_exported import class MicrolithRuntime.MicrolithServer
@_exported import struct MicrolithRuntime.RuntimeConfiguration
@_exported import struct MicrolithRuntime.RuntimeError
@_exported import enum MicrolithSchema.DateValue
@_exported import struct MicrolithSchema.RecordValidationError
@_exported import struct MicrolithSchema.Schema
@_exported import struct MicrolithSchema.SchemaError
@_exported import struct MicrolithStore.RecordKey
@_exported import class MicrolithStore.Store
@_exported import struct MicrolithStore.StoreConfiguration
@_exported import struct MicrolithStore.StoreError
@_exported import struct MicrolithStore.TableRef
@_exported import struct MicrolithStore.WritePrecondition
@_exported import class MicrolithStore.WriteTransaction
@_exported import struct MicrolithTLS.TLSSettings
@_exported import struct MicrolithTables.AccessDenied
@_exported import enum MicrolithTables.Permission
@_exported import struct MicrolithTables.Principal
@_exported import struct MicrolithTables.ResourceRequest
@_exported import struct MicrolithTables.TableHooks
@_exported import enum MicrolithTables.TableVerb
@_exported import enum MicrolithTemplates.HTMLText
@_exported import struct MicrolithTemplates.Template
@_exported import enum MicrolithTemplates.TemplateEncoder
@_exported import struct MicrolithTemplates.TemplateError
@_exported import struct MicrolithTemplates.TemplateLibrary
@_exported import enum MicrolithTemplates.TemplateValue

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
    /// socket is read: no thread hop. Tasks run there as on the generic executor, so an `async`
    /// call does not send its task through the loop's queue (`EventLoopGlobalExecutor`). Call it
    /// first thing in a custom `main`; later calls do nothing.
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
        _ = EventLoopGlobalExecutor.install()
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
