import ArgumentParser
import MicrolithCLI
import NIOCore
import NIOPosix

/// The `microlith` executable.
@main
enum MicrolithMain {
    static func main() async {
        // Run Swift concurrency on NIO's event loops: no thread hop between the socket and the handler.
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await MicrolithCommand.main()
    }
}
