import Foundation
import Microlith
import Storefront

/// `storefront [serve] [--topology microlith|services] [--port N] [--mqtt-port N] [--data-dir D] [--scale N] [--cache on|off] [--app DIR]`
/// opens the shop (default: one process on port 9926, data in .storefront, pages kept).
/// `storefront service NAME --port N --data-dir D ...` runs one module (the services topology starts these).
@main
enum StorefrontMain {
    static let usage = """
        usage: storefront [serve] [--topology microlith|services] [--port N] [--mqtt-port N] [--host H] [--data-dir D] [--scale N] [--cache on|off] [--app DIR] [--log-level L]
               storefront service catalog|inventory|pricing|reviews --port N --data-dir D [--scale N] [--app DIR]
        """

    static func main() async {
        Microlith.runConcurrencyOnEventLoops()
        var arguments = Array(CommandLine.arguments.dropFirst())
        let command = arguments.first.map { $0.hasPrefix("-") ? "serve" : $0 } ?? "serve"
        if arguments.first == command { arguments.removeFirst() }
        do {
            switch command {
            case "serve":
                let options = try parse(arguments, service: false).0
                try await serve(options)
            case "service":
                let (options, name) = try parse(arguments, service: true)
                try await Storefront.serveModule(name!, options) { port in
                    FileHandle.standardOutput.write(Data("storefront: service \(name!) on http://127.0.0.1:\(port)\n".utf8))
                }
            case "help", "--help", "-h":
                print(usage)
            default:
                throw RuntimeError("unknown command '\(command)'\n\(usage)")
            }
        } catch let error as RuntimeError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            exit(2)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            exit(1)
        }
    }

    static func serve(_ options: Storefront.Options) async throws {
        let (server, services) = try await Storefront.start(options)
        let topology = options.topology.rawValue
        do {
            try await server.run { channel in
                let port = channel.localAddress?.port ?? 0
                FileHandle.standardOutput.write(Data("storefront: serving the shop (\(topology)) on http://\(options.host):\(port)\n".utf8))
            }
        } catch {
            Storefront.stop(services)
            throw error
        }
        Storefront.stop(services)
    }

    static func parse(_ arguments: [String], service: Bool) throws -> (Storefront.Options, String?) {
        var options = Storefront.Options(appDirectory: defaultApp())
        var name: String?
        var rest = arguments[...]
        if service {
            guard let first = rest.first, !first.hasPrefix("-") else { throw RuntimeError("service needs a module name\n\(usage)") }
            name = first
            rest = rest.dropFirst()
        }
        while let flag = rest.first {
            rest = rest.dropFirst()
            guard let value = rest.first else { throw RuntimeError("\(flag) needs a value\n\(usage)") }
            rest = rest.dropFirst()
            switch flag {
            case "--topology":
                guard let t = Topology(rawValue: value) else { throw RuntimeError("--topology must be microlith or services, got '\(value)'") }
                options.topology = t
            case "--port":
                guard let p = Int(value), (0...65535).contains(p) else { throw RuntimeError("--port must be 0 to 65535, got '\(value)'") }
                options.port = p
            case "--mqtt-port":
                guard let p = Int(value), (0...65535).contains(p) else { throw RuntimeError("--mqtt-port must be 0 to 65535, got '\(value)'") }
                options.mqttPort = p
            case "--host": options.host = value
            case "--data-dir": options.dataDirectory = value
            case "--scale":
                guard let s = Int(value), (1...1000).contains(s) else { throw RuntimeError("--scale must be 1 to 1000, got '\(value)'") }
                options.scale = s
            case "--app": options.appDirectory = value
            case "--log-level": options.logLevel = value
            case "--cache":
                guard value == "on" || value == "off" else { throw RuntimeError("--cache must be on or off, got '\(value)'") }
                options.cache = value == "on"
            default: throw RuntimeError("unknown option \(flag)\n\(usage)")
            }
        }
        guard FileManager.default.fileExists(atPath: (options.appDirectory as NSString).appendingPathComponent("schema.graphql")) else {
            throw RuntimeError("no storefront app folder at '\(options.appDirectory)' (it needs schema.graphql and templates/); pass --app DIR")
        }
        return (options, name)
    }

    /// `app` here, or the storefront's own app folder when run from the repository root.
    static func defaultApp() -> String {
        for candidate in ["app", "Apps/Storefront/app"]
        where FileManager.default.fileExists(atPath: (candidate as NSString).appendingPathComponent("schema.graphql")) {
            return candidate
        }
        return "app"
    }
}
