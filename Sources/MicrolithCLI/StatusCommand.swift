import ArgumentParser
import AsyncHTTPClient
import Foundation
import MicrolithHTTP
import MicrolithJSON
import MicrolithRuntime
import MicrolithStore
import MicrolithTLS
import NIOCore
import NIOHTTP1

/// `microlith status`: a data folder's databases (sizes, records per table, last change; read
/// without writing, beside a running server), and the running server's own figures from its
/// `GET /_status` (uptime, caches, connections, subscribers).
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Print a data folder's databases and, from a running server, its uptime, caches and connections.",
        discussion: """
            The databases are read from the files, whether a server runs or not. The server's figures come \
            from GET /_status, which needs a super user: set MICROLITH_USER and MICROLITH_PASSWORD. With --app \
            and a folder in use, the server is looked for at the app's http.host and http.port; --url names it.
            """)

    @OptionGroup var folder: DataFolderOptions

    @Option(help: "The running server's base URL (default with --app: http://<http.host>:<http.port>).")
    var url: String?

    @Flag(help: "Print JSON instead of text.") var json = false

    func run() async throws {
        let directory = try folder.resolve()
        guard FileManager.default.fileExists(atPath: directory) else {
            throw UserCommand.fail("there is no data folder \(directory) (nothing has served it yet)")
        }
        let summaries: [DatabaseSummary]
        do {
            summaries = try DatabaseSummary.read(dataDirectory: directory)
        } catch let error as StoreError {
            throw UserCommand.fail(error.message)
        }
        let inUse: Bool
        do {
            try DataFolderLock(directory: directory, mode: .exclusive).release()
            inUse = false
        } catch {
            inUse = true
        }
        var server: JSONValue = .null
        var base = url
        if base == nil, inUse, let app = folder.app {
            let configuration = try UserCommand.load(appDirectory: app, dataDir: nil).1
            let host = configuration.http.host == "0.0.0.0" || configuration.http.host == "::" ? "127.0.0.1" : configuration.http.host
            let scheme = configuration.tls == TLSSettings() ? "http" : "https"
            base = "\(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(configuration.http.port)"
        }
        if let base { server = await Self.fetchStatus(base) }
        if json {
            let root: JSONValue = [
                "dataDirectory": .string(directory), "inUse": .bool(inUse), "databases": .array(summaries.map(MicrolithServer.statusJSON)),
                "server": server,
            ]
            print(String(decoding: JSONWriter.encode(root), as: UTF8.self))
            return
        }
        print("data folder \(directory): \(inUse ? "in use (a server or another command has it open)" : "not in use")")
        if let node = summaries.lazy.compactMap(\.node).first { print("node \(node)") }
        if summaries.isEmpty { print("no database yet") }
        for summary in summaries {
            let last = summary.lastChange.map { ", last change \($0)" } ?? ""
            print("database \(summary.name): \(Self.size(summary.bytes)) (+ \(Self.size(summary.logBytes)) in its log)\(last)")
            for (table, count) in summary.tables.sorted(by: { $0.key < $1.key }) { print("  \(table): \(count) record\(count == 1 ? "" : "s")") }
        }
        if let base { print(Self.describe(server, at: base)) }
    }

    /// `GET base/_status` as the user of `MICROLITH_USER`/`MICROLITH_PASSWORD`: its JSON, or an
    /// object with `error`.
    static func fetchStatus(_ base: String) async -> JSONValue {
        var request = HTTPClientRequest(url: base.hasSuffix("/") ? base + "_status" : base + "/_status")
        let environment = ProcessInfo.processInfo.environment
        if let user = environment["MICROLITH_USER"], let password = environment["MICROLITH_PASSWORD"] {
            request.headers.add(name: "Authorization", value: "Basic " + Data("\(user):\(password)".utf8).base64EncodedString())
        }
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            let body = try await response.body.collect(upTo: 4 << 20)
            switch response.status.code {
            case 200:
                return try JSONParser.parse(body.readableBytesView)
            case 401, 403:
                return [
                    "error": .string("\(base) wants a super user for /_status: set MICROLITH_USER and MICROLITH_PASSWORD (\(response.status.code))")
                ]
            default:
                return ["error": .string("\(base)/_status answered \(response.status.code): \(String(buffer: body).prefix(200))")]
            }
        } catch {
            return ["error": .string("cannot reach \(base): \(error)")]
        }
    }

    /// The server's figures as text.
    static func describe(_ status: JSONValue, at base: String) -> String {
        guard case .object(let s) = status else { return "server \(base): no answer" }
        if case .string(let error)? = s["error"] { return "server: \(error)" }
        func int(_ value: JSONValue?, _ key: String) -> Int64 {
            if case .object(let o)? = value, case .int(let n)? = o[key] { return n }
            return 0
        }
        var lines: [String] = []
        let uptime: Double
        if case .double(let seconds)? = s["uptimeSeconds"] { uptime = seconds } else { uptime = 0 }
        let version: String
        if case .string(let v)? = s["version"] { version = v } else { version = "?" }
        lines.append("server \(base): microlith \(version), up \(String(format: "%.1f", uptime)) s")
        let connections = s["connections"]
        lines.append(
            "  connections: \(int(connections, "open")) open of \(int(connections, "limit")) "
                + "(refused \(int(connections, "refused")), idle ones closed for room \(int(connections, "evictedIdle")))")
        let records = s["recordCache"]
        lines.append(
            "  record cache: \(int(records, "entries")) records, \(size(int(records, "bytes"))) of \(size(int(records, "limitBytes"))), "
                + "hits \(int(records, "hits")), misses \(int(records, "misses"))")
        if case .object = s["responseCache"] {
            let kept = s["responseCache"]
            lines.append(
                "  response cache: \(int(kept, "entries")) responses, \(size(int(kept, "bytes"))) of \(size(int(kept, "limitBytes"))), "
                    + "hits \(int(kept, "hits")), misses \(int(kept, "misses")), invalidations \(int(kept, "invalidations"))")
        }
        var live = "  subscriptions: "
        if case .int(let n)? = s["subscriptions"] { live += "\(n)" }
        if case .object = s["mqtt"] {
            live += "; MQTT: \(int(s["mqtt"], "connections")) connections, \(int(s["mqtt"], "subscriptions")) subscriptions"
        }
        lines.append(live)
        return lines.joined(separator: "\n")
    }

    /// `bytes` for people: B, KiB, MiB or GiB.
    static func size(_ bytes: Int64) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        let units = ["KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes) / 1024
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return String(format: "%.1f %@", value, units[unit])
    }
}
