import Hummingbird
import Logging
import MicrolithHTTP
import MicrolithJSON
import MicrolithTables

/// `GET /_log`: the log levels, of everything and of single subsystems; `PUT /_log` with
/// `{"level": "info", "levels": {"MicrolithStore": "debug", "MicrolithHTTP": null}}` changes them
/// while the server runs (null gives a subsystem back to the base level). A super user only.
enum LogRoutes {
    static func add(to router: Router<MicrolithRequestContext>, levels: LogLevels, access: TableAccess, logger: Logger) {
        router.get("/_log") { _, _ -> Response in
            try access.authorize(.superUser, to: "read the log levels", for: Principal.current)
            return JobRoutes.json(json(levels))
        }
        router.put("/_log") { request, _ -> Response in
            try access.authorize(.superUser, to: "change the log levels", for: Principal.current)
            let body = try TableEndpoint.jsonObject(try await TableEndpoint.body(request, limit: 64 << 10))
            for key in body.keys where key != "level" && key != "levels" {
                throw Problem(.badRequest, "unknown member '\(key)'; send level (every subsystem) and levels (by subsystem)")
            }
            var base: Logger.Level?
            if let value = body["level"] { base = try level(value, "level") }
            var sources: [String: Logger.Level?] = [:]
            if let value = body["levels"] {
                guard case .object(let map) = value else {
                    throw Problem(.badRequest, "levels must be an object of subsystems (MicrolithStore) to levels or null")
                }
                for (source, value) in map.members {
                    guard !source.isEmpty, source.utf8.count <= 100 else {
                        throw Problem(.badRequest, "a subsystem is a module name, got '\(source)'")
                    }
                    sources[source] = value == .null ? .some(nil) : try level(value, "levels.\(source)")
                }
            }
            levels.set(base: base, sources: sources)
            logger.notice("log levels changed", metadata: ["levels": "\(json(levels))"])
            return JobRoutes.json(json(levels))
        }
    }

    static func level(_ value: JSONValue, _ name: String) throws -> Logger.Level {
        guard case .string(let text) = value, let level = Logger.Level(rawValue: text) else {
            throw Problem(.badRequest, "\(name) must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), got \(value)")
        }
        return level
    }

    static func json(_ levels: LogLevels) -> JSONValue {
        let (base, sources) = levels.levels
        var map = JSONObject()
        for (source, level) in sources.sorted(by: { $0.key < $1.key }) { map[source] = .string(level.rawValue) }
        return ["level": .string(base.rawValue), "levels": .object(map)]
    }
}
