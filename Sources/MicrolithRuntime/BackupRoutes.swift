import Foundation
import Hummingbird
import MicrolithHTTP
import MicrolithJSON
import MicrolithStore
import MicrolithTables

/// `POST /_backup`: a backup of every database, taken while the server goes on serving, into a new
/// folder under `backup.directory`; `GET /_backup`: the finished backups there. Both need a super
/// user. Restoring is `microlith restore`, with the server stopped.
enum BackupRoutes {
    static func add(to router: Router<MicrolithRequestContext>, store: Store, access: TableAccess, directory: String) {
        router.post("/_backup") { request, _ -> Response in
            try access.authorize(.superUser, to: "take a backup", for: Principal.current)
            let name = try request.uri.queryParameters.get("name").map(checkedName) ?? defaultName()
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw Problem(.internalServerError, "cannot create the backup folder \(directory): \(error)")
            }
            let path = (directory as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: path) { throw Problem(.conflict, "a backup named '\(name)' exists already") }
            let manifest: BackupManifest
            do {
                manifest = try await store.backup(to: path)
            } catch let error as StoreError where error.code == .alreadyExists {
                throw Problem(.conflict, "a backup named '\(name)' exists already")
            } catch let error as StoreError {
                throw Problem(.internalServerError, error.message)
            }
            var root = json(manifest)
            root["name"] = .string(name)
            root["path"] = .string(path)
            var response = JobRoutes.json(.object(root))
            response.status = .created
            return response
        }
        router.get("/_backup") { _, _ -> Response in
            try access.authorize(.superUser, to: "list the backups", for: Principal.current)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            var backups: [JSONValue] = []
            for name in names.sorted() where !name.contains(".partial") {
                guard let manifest = try? Backup.manifest(at: (directory as NSString).appendingPathComponent(name)) else { continue }
                var entry = json(manifest)
                entry["name"] = .string(name)
                backups.append(.object(entry))
            }
            return JobRoutes.json(.object(["directory": .string(directory), "backups": .array(backups)]))
        }
    }

    /// A name given with `?name=`: letters, digits, `-`, `_` and `.`, not starting with a dot.
    static func checkedName(_ name: String) throws -> String {
        let allowed = name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D || c == 0x2E
        }
        guard allowed, !name.isEmpty, name.count <= 100, !name.hasPrefix("."), !name.hasSuffix(".partial") else {
            throw Problem(
                .badRequest, "name must be 1 to 100 letters, digits, '-', '_' or '.' (not first, and not ending in .partial), got '\(name)'")
        }
        return name
    }

    /// `backup-<UTC time>`, to the millisecond.
    static func defaultName() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss.SSS'Z'"
        return "backup-\(formatter.string(from: Date()))"
    }

    static func json(_ manifest: BackupManifest) -> JSONObject {
        var root: JSONObject = ["format": .int(Int64(manifest.format)), "created": .string(manifest.created)]
        root["node"] = manifest.node.map(JSONValue.string) ?? .null
        root["databases"] = .array(
            manifest.databases.map { database in
                var tables = JSONObject()
                for (name, count) in database.tables.sorted(by: { $0.key < $1.key }) { tables[name] = .int(Int64(count)) }
                return .object([
                    "name": .string(database.name), "file": .string(database.file), "bytes": .int(database.bytes), "tables": .object(tables),
                    "lastChange": database.lastChange.map(JSONValue.int) ?? .null,
                ])
            })
        return root
    }
}
