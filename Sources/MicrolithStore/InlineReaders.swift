import GRDB
import Synchronization

/// Read-only connections of one database for reads that run on the calling thread
/// (``Store/readInline(database:_:)``), apart from the pool's readers.
///
/// Taking one never waits: when every connection is in use (and ``limit`` are open) the caller
/// reads through the pool instead. Waiting here could deadlock: the calling thread is an event
/// loop, and a pool reader is only given back when the task that holds it resumes on an event
/// loop. A connection is held only for one synchronous read, never across a suspension, so a
/// few cover every thread that runs tasks.
final class InlineReaders: Sendable {
    /// The most connections open at once.
    let limit: Int
    private let open: @Sendable () throws -> DatabaseQueue
    private let state = Mutex<State>(State())

    private struct State: ~Copyable {
        var idle: [DatabaseQueue] = []
        var opened = 0
        var closed = false
    }

    private enum Take {
        case reuse(DatabaseQueue)
        case open
        case none
    }

    init(limit: Int, open: @escaping @Sendable () throws -> DatabaseQueue) {
        self.limit = limit
        self.open = open
    }

    /// `work` run on an idle connection (opened now when fewer than ``limit`` are), in a read
    /// transaction; `nil` when none is free or the readers are closed.
    func read<T>(_ work: (Database) throws -> T) throws -> T? {
        let take = state.withLock { s -> Take in
            if s.closed { return .none }
            if let q = s.idle.popLast() { return .reuse(q) }
            guard s.opened < limit else { return .none }
            s.opened += 1
            return .open
        }
        let queue: DatabaseQueue
        switch take {
        case .none:
            return nil
        case .reuse(let q):
            queue = q
        case .open:
            do {
                queue = try open()
            } catch {
                state.withLock { $0.opened -= 1 }
                throw error
            }
        }
        defer { giveBack(queue) }
        return try queue.read(work)
    }

    private func giveBack(_ queue: DatabaseQueue) {
        let keep = state.withLock { s -> Bool in
            if s.closed {
                s.opened -= 1
                return false
            }
            s.idle.append(queue)
            return true
        }
        if !keep { try? queue.close() }
    }

    /// Closes the idle connections; one in use closes when its read ends.
    func close() {
        let idle = state.withLock { s -> [DatabaseQueue] in
            s.closed = true
            defer {
                s.opened -= s.idle.count
                s.idle = []
            }
            return s.idle
        }
        for q in idle { try? q.close() }
    }
}
