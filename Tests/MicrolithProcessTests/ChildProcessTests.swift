import MicrolithProcess
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Child processes: started with posix_spawn, reaped once, never signalled after that")
struct ChildProcessTests {
    static let shell = "/bin/sh"

    @Test func anExitStatusIsReported() throws {
        let child = try ChildProcess(executable: Self.shell, arguments: ["-c", "exit 3"])
        #expect(child.waitUntilExit() == .exited(3))
        #expect(child.ended == .exited(3))
        #expect(!child.isRunning)
    }

    @Test func terminateEndsItWithSIGTERM() throws {
        let child = try ChildProcess(executable: "/bin/sleep", arguments: ["30"])
        #expect(child.isRunning)
        #expect(child.ended == nil)
        child.terminate()
        #expect(child.waitUntilExit() == .signaled(SIGTERM))
        // Reaped: signals go nowhere now, and what is known stays.
        child.send(SIGKILL)
        #expect(child.waitUntilExit() == .signaled(SIGTERM))
    }

    @Test func standardOutputIsReadALineAtATime() throws {
        let child = try ChildProcess(
            executable: Self.shell, arguments: ["-c", "echo \"$GREETING\"; printf 'no newline'"], environment: ["GREETING": "hello there"],
            standardOutput: .pipe)
        #expect(child.readLine() == "hello there")
        #expect(child.readLine() == "no newline")
        #expect(child.readLine() == nil)
        #expect(child.waitUntilExit() == .exited(0))
    }

    @Test func withoutAPipeThereIsNothingToRead() throws {
        let child = try ChildProcess(executable: Self.shell, arguments: ["-c", "echo discarded"], standardOutput: .discard)
        #expect(child.readLine() == nil)
        #expect(child.waitUntilExit() == .exited(0))
    }

    /// A descriptor the parent opened without close-on-exec does not reach the child.
    @Test func theChildGetsNoOtherDescriptor() throws {
        let leaked = open("/dev/null", O_RDONLY)
        try #require(leaked > 2)
        defer { close(leaked) }
        let child = try ChildProcess(
            executable: Self.shell, arguments: ["-c", "if [ -e /proc/self/fd/\(leaked) ]; then echo open; else echo closed; fi"],
            standardOutput: .pipe)
        #expect(child.readLine() == "closed")
        #expect(child.waitUntilExit() == .exited(0))
    }

    /// A signal this process ignores is at its default in the child (a server ignores or traps
    /// SIGTERM and SIGINT; the services it starts must still stop on them).
    @Test func signalsIgnoredHereAreAtTheirDefaultInTheChild() throws {
        let previous = signal(SIGUSR2, SIG_IGN)
        defer { signal(SIGUSR2, previous) }
        let child = try ChildProcess(executable: "/bin/sleep", arguments: ["30"])
        child.send(SIGUSR2)
        #expect(child.waitUntilExit() == .signaled(SIGUSR2))
    }

    /// Its own process group: a Ctrl-C at a terminal reaches this process, which stops its
    /// children in its own order, and not the children directly.
    @Test func theChildLeadsAProcessGroupOfItsOwn() throws {
        let child = try ChildProcess(executable: "/bin/sleep", arguments: ["30"])
        defer {
            child.terminate()
            child.waitUntilExit()
        }
        #expect(getpgid(child.processIdentifier) == child.processIdentifier)
        #expect(getpgid(child.processIdentifier) != getpgrp())
    }

    /// A child reaped by other code counts as ended (its number may be another process's by now).
    @Test func aChildReapedElsewhereCountsAsEnded() throws {
        let child = try ChildProcess(executable: Self.shell, arguments: ["-c", "exit 0"])
        var status: Int32 = 0
        #expect(waitpid(child.processIdentifier, &status, 0) == child.processIdentifier)
        #expect(!child.isRunning)
        #expect(child.ended == .reapedElsewhere)
        #expect(child.waitUntilExit() == .reapedElsewhere)
    }

    @Test func waitersOnSeveralThreadsAllLearnHowItEnded() async throws {
        let child = try ChildProcess(executable: Self.shell, arguments: ["-c", "sleep 0.2; exit 7"])
        let endings = await withTaskGroup(of: ChildProcess.Termination.self) { group in
            for _ in 0..<4 { group.addTask { child.waitUntilExit() } }
            group.addTask {
                while child.isRunning { usleep(10_000) }
                return child.ended ?? .exited(-1)
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(endings == Array(repeating: .exited(7), count: 5))
    }

    @Test func aMissingProgramIsNamedInTheError() {
        let missing = "/nonexistent/microlith-no-such-program"
        #expect {
            try ChildProcess(executable: missing, arguments: [])
        } throws: { error in
            guard let error = error as? ChildProcessError else { return false }
            return error.executable == missing && error.code == ENOENT && error.description.contains(missing)
        }
    }
}
