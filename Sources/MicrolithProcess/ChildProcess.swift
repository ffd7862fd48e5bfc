import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A program started as a child of this process (`posix_spawn`): the nodes and NATS servers of a
/// local cluster, the services of a split topology, a server a test needs.
///
/// Foundation's `Process.run()` is not used: on Linux (swift-corelibs-foundation as shipped with
/// Swift 6.3) it lists `/proc/self/fd` and copies each entry's whole 256-byte `d_name`, reading
/// past the end of the directory buffer; in a process with many descriptors open that crashes now
/// and then (SIGSEGV in `memmove`, seen in this project's test runs). Here the child gets the
/// parent's standard input, its standard output and error as asked (``Output``), no other
/// descriptor, every signal at its default disposition and none blocked, whatever the parent
/// traps or ignores.
///
/// The child is reaped by ``waitUntilExit()`` or a call of ``isRunning`` that finds it ended;
/// signals are sent only while it has not been reaped, so never to another process that took
/// its number since.
public final class ChildProcess: Sendable {
    /// Where the child's standard output or standard error goes.
    public enum Output: Sendable {
        /// This process's own.
        case inherit
        /// `/dev/null`.
        case discard
        /// A pipe this process reads (standard output only: ``readLine()``).
        case pipe
    }

    /// How the child ended.
    public enum Termination: Sendable, Equatable, CustomStringConvertible {
        /// It exited with this status.
        case exited(Int32)
        /// A signal ended it.
        case signaled(Int32)
        /// It ended, and something else in this process reaped it (`waitpid` answered ECHILD), so
        /// how is not known.
        case reapedElsewhere

        public var description: String {
            switch self {
            case .exited(let status): return "exit status \(status)"
            case .signaled(let signal): return "signal \(signal)"
            case .reapedElsewhere: return "reaped elsewhere, status unknown"
            }
        }
    }

    /// The child's process ID.
    public let processIdentifier: Int32
    /// The program it runs.
    public let executable: String
    /// The read end of its standard output, when that is a pipe.
    private let outputPipe: Int32?
    /// What `waitpid` said once it reaped the child; `nil` until then.
    private let termination = Mutex<Termination?>(nil)

    /// Starts `executable` (a path; the `PATH` is not searched) with `arguments`.
    ///
    /// - Parameters:
    ///   - environment: the child's environment; `nil` passes this process's own.
    ///   - standardOutput: where its standard output goes.
    ///   - standardError: where its standard error goes (``Output/pipe`` is taken as ``Output/inherit``).
    /// - Throws: ``ChildProcessError`` naming the program and the system's reason when it cannot be started.
    public init(
        executable: String, arguments: [String], environment: [String: String]? = nil, standardOutput: Output = .inherit,
        standardError: Output = .inherit
    ) throws {
        self.executable = executable
        #if canImport(Darwin)
        var actions: posix_spawn_file_actions_t? = nil
        var attributes: posix_spawnattr_t? = nil
        #else
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        #endif
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        var pipeEnds: [Int32] = [-1, -1]
        if case .pipe = standardOutput {
            guard pipe(&pipeEnds) == 0 else { throw ChildProcessError(executable, "cannot make a pipe", errno) }
            // Close-on-exec, so no other child started meanwhile holds the write end open.
            for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            // dup2 clears close-on-exec on the copy the child keeps as its standard output.
            posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        } else if case .discard = standardOutput {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        if case .discard = standardError {
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        #if os(Linux)
        Self.closeOtherDescriptors(&actions)
        #endif

        // Signals the parent ignores or blocks (a server traps SIGTERM and SIGINT) would stay so
        // across exec: the child starts with every one at its default and none blocked.
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        // A process group of its own, as Foundation's Process gave it: Ctrl-C at a terminal reaches
        // this process only, which stops its children in the order it chooses (`cluster up`: the
        // nodes first, then NATS).
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for pointer in envp ?? [] { free(pointer) } }

        var pid: pid_t = 0
        let result = argv.withUnsafeBufferPointer { arguments in
            if let envp {
                return envp.withUnsafeBufferPointer { posix_spawn(&pid, executable, &actions, &attributes, arguments.baseAddress!, $0.baseAddress!) }
            }
            #if canImport(Darwin)
            return posix_spawn(&pid, executable, &actions, &attributes, arguments.baseAddress!, _NSGetEnviron()!.pointee)
            #else
            return posix_spawn(&pid, executable, &actions, &attributes, arguments.baseAddress!, environ)
            #endif
        }
        if pipeEnds[1] >= 0 { close(pipeEnds[1]) }
        guard result == 0 else {
            if pipeEnds[0] >= 0 { close(pipeEnds[0]) }
            throw ChildProcessError(executable, "cannot start it", result)
        }
        processIdentifier = pid
        outputPipe = pipeEnds[0] >= 0 ? pipeEnds[0] : nil
    }

    deinit {
        if let outputPipe { close(outputPipe) }
    }

    /// Whether the child has not ended yet (one that has is reaped now).
    public var isRunning: Bool {
        termination.withLock { ended in
            if ended == nil { ended = Self.reap(processIdentifier, blocking: false) }
            return ended == nil
        }
    }

    /// How the child ended; `nil` while it runs (or before ``isRunning`` or ``waitUntilExit()`` found it ended).
    public var ended: Termination? { termination.withLock { $0 } }

    /// Sends SIGTERM.
    public func terminate() { send(SIGTERM) }

    /// Sends `signal`, unless the child was reaped already.
    public func send(_ signal: Int32) {
        termination.withLock { ended in
            if ended == nil { kill(processIdentifier, signal) }
        }
    }

    /// Waits until the child ends, reaps it and says how it ended.
    @discardableResult
    public func waitUntilExit() -> Termination {
        if let ended = termination.withLock({ $0 }) { return ended }
        // Waits without reaping (the number stays the child's while the lock is not held), then
        // reaps under the lock, so a signal sent meanwhile cannot reach another process.
        var info = siginfo_t()
        while waitid(P_PID, id_t(processIdentifier), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
        return termination.withLock { ended in
            if ended == nil { ended = Self.reap(processIdentifier, blocking: true) }
            return ended ?? .reapedElsewhere
        }
    }

    /// One line of the child's standard output (without its newline); `nil` at the end of it, or
    /// when standard output is not a pipe. Reads a byte at a time, so nothing past the line is
    /// taken from the pipe.
    public func readLine(maximumBytes: Int = 64 * 1024) -> String? {
        guard let outputPipe else { return nil }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while line.count < maximumBytes {
            let n = read(outputPipe, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            guard n == 1 else { return line.isEmpty ? nil : String(decoding: line, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        return String(decoding: line, as: UTF8.self)
    }

    // MARK: Private

    /// `waitpid` once: how the child ended, or `nil` when it has not.
    private static func reap(_ pid: Int32, blocking: Bool) -> Termination? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, blocking ? 0 : WNOHANG)
            if result == pid { break }
            if result < 0 && errno == EINTR { continue }
            // No such child any more: it ended and was reaped by other code, and its number may
            // be another process's now; it must count as ended, so nothing signals that number.
            if result < 0 && errno == ECHILD { return .reapedElsewhere }
            return nil
        }
        // The wait status: the low 7 bits are the signal that ended it (0: it exited), the next
        // byte its exit status.
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }

    #if os(Linux)
    /// Closes every descriptor above standard error in the child (glibc 2.34 and later); where
    /// that is not offered (and on macOS), descriptors opened close-on-exec (as SwiftNIO's and
    /// SQLite's are) are all the child does not get.
    private static func closeOtherDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = UnsafeMutableRawPointer(bitPattern: closeFromAddress) else { return }
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
    }

    /// Where `posix_spawn_file_actions_addclosefrom_np` is (0: not offered); the C library
    /// declares it outside what Swift imports.
    private static let closeFromAddress = UInt(bitPattern: dlsym(nil, "posix_spawn_file_actions_addclosefrom_np"))
    #endif
}

/// Why a child process could not be started.
public struct ChildProcessError: Error, Sendable, CustomStringConvertible {
    /// The program that was to run.
    public let executable: String
    /// The system's error number.
    public let code: Int32
    public let description: String

    init(_ executable: String, _ what: String, _ code: Int32) {
        self.executable = executable
        self.code = code
        description = "\(executable): \(what): \(String(cString: strerror(code)))"
    }
}
