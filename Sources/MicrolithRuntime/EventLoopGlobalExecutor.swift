import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Swift concurrency's global executor on NIO's event loops, running each task as the generic
/// executor would.
///
/// NIO's own take-over (`NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor`)
/// runs every job with the event loop as its *serial* executor. A task running there that calls
/// or returns from any nonisolated `async` function must then switch to the generic executor, and
/// the runtime cannot do that in place from a custom serial executor: it enqueues the task again,
/// and the loop runs it on its next turn, as the loop's executor again. Every `async` call
/// boundary is a trip through the loop's queue: about 90 per `GET /health` through Hummingbird's
/// middleware and 225 per product page, measured with a `perf` probe on `swift_task_switch`.
///
/// Here a job is run as the runtime's default executor runs it: on the generic executor, where
/// nonisolated calls continue in place. Only a task resumed after a real suspension (a
/// continuation, a child task ending) goes through a loop's queue, on the loop where it was
/// enqueued when that is one of the group's.
public enum EventLoopGlobalExecutor {
    /// Jobs enqueued on the loops since installation: resumptions of tasks, not function calls.
    public static var enqueuedJobs: Int { enqueued.load(ordering: .relaxed) }

    /// Whether the global executor is this one (installed by this process).
    public static var isInstalled: Bool { installed.load(ordering: .relaxed) }

    /// Makes the event loops of `MultiThreadedEventLoopGroup.singleton` the global executor;
    /// `false` when the runtime offers no hook, the executor reference has an unexpected layout,
    /// or another global executor was installed first. Call it before any task runs (first thing
    /// in `main`); a second call returns `false`.
    public static func install() -> Bool {
        // The generic executor is the null executor reference: two null words.
        guard MemoryLayout<UnownedSerialExecutor>.size == 2 * MemoryLayout<UInt>.size else { return false }
        guard !installed.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "swift_task_enqueueGlobal_hook") else {
            installed.store(false, ordering: .releasing)
            return false
        }
        let hook: EnqueueHook = { job, _ in EventLoopGlobalExecutor.enqueue(job) }
        let pointer = unsafeBitCast(hook, to: UnsafeRawPointer.self)
        let slot = symbol.assumingMemoryBound(to: UnsafeRawPointer?.self)
        // The runtime reads the hook on every enqueue; nothing else in this process writes it
        // before `main` has run this.
        guard slot.pointee == nil else {
            installed.store(false, ordering: .releasing)
            return false
        }
        slot.pointee = pointer
        return true
    }

    // MARK: Private

    /// The runtime's `swift_task_enqueueGlobal_hook`: the job and the original enqueue.
    private typealias EnqueueHook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void

    private static let enqueued = Atomic<Int>(0)
    private static let installed = Atomic<Bool>(false)

    /// The runtime's generic executor: the reference with no identity and no implementation.
    private static var generic: UnownedSerialExecutor { unsafeBitCast((UInt(0), UInt(0)), to: UnownedSerialExecutor.self) }

    private static func enqueue(_ job: UnownedJob) {
        enqueued.add(1, ordering: .relaxed)
        // The current loop when called on one of the group's (no thread hop), another otherwise.
        MultiThreadedEventLoopGroup.singleton.any().execute {
            job.runSynchronously(on: generic)
        }
    }
}
