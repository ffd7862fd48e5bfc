import Foundation
import Synchronization

/// An advisory lock on a data folder (`flock` on its `.microlith.lock` file), held while the
/// folder's databases are open.
///
/// Every ``Store`` holds it shared, so servers and command-line tools may use one folder at the
/// same time. Whatever replaces the files (``Backup/restore(from:into:replace:)``) holds it
/// exclusively, so it cannot start while anything has them open, and nothing opens them while it
/// runs. The operating system releases the lock when the process ends, however it ends.
public final class DataFolderLock: Sendable {
    /// How the folder is held.
    public enum Mode: Sendable {
        /// Beside other shared holders: a server, a command-line tool.
        case shared
        /// Alone: the files are being replaced.
        case exclusive
    }

    /// The lock file's name inside a data folder.
    public static let fileName = ".microlith.lock"

    /// The data folder held.
    public let directory: String
    private let descriptor: Mutex<Int32?>

    /// Takes the lock on `directory` (which must exist) without waiting.
    ///
    /// - Throws: ``StoreError/Code/storage`` naming the folder when another process holds it in a
    ///   mode that excludes `mode`, or when the lock file cannot be opened.
    public init(directory: String, mode: Mode) throws(StoreError) {
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        var fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        // A reader without the right to write in the folder may still share a lock file that exists.
        if fd < 0, mode == .shared, errno == EACCES || errno == EROFS { fd = open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else {
            throw StoreError(.storage, "cannot open the lock file \(path): \(String(cString: strerror(errno)))")
        }
        // A shared holder waits out a short exclusive one (a command checking whether the folder is
        // in use holds it for a moment), up to two seconds; a restore holds it longer.
        var attempts = mode == .shared ? 40 : 1
        var locked = false
        while attempts > 0 {
            attempts -= 1
            if flock(fd, (mode == .shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0 {
                locked = true
                break
            }
            guard errno == EWOULDBLOCK, attempts > 0 else { break }
            usleep(50_000)
        }
        guard locked else {
            let reason = errno
            close(fd)
            if reason == EWOULDBLOCK {
                throw StoreError(
                    .storage,
                    mode == .shared
                        ? "the data folder \(directory) is being restored by another process; start again once it is done"
                        : "the data folder \(directory) is in use (a server or another microlith command has its databases open); stop it first"
                )
            }
            throw StoreError(.storage, "cannot lock \(path): \(String(cString: strerror(reason)))")
        }
        self.directory = directory
        self.descriptor = Mutex(fd)
    }

    /// Lets the folder go (at once; otherwise when the lock is released from memory). Later calls
    /// do nothing.
    public func release() {
        descriptor.withLock { fd in
            if let open = fd { close(open) }
            fd = nil
        }
    }

    deinit {
        release()
    }
}
