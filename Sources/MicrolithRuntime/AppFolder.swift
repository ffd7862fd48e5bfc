import Foundation
public import MicrolithSchema

/// An application folder: `schema.graphql` (required), `microlith.yaml`, `data/*.json` seed
/// files and a `web/` folder of static files (all optional).
public struct AppFolder: Sendable {
    /// The folder's path.
    public var path: String
    /// The parsed schema.
    public var schema: Schema

    /// Reads and validates the folder; a missing folder or schema, or a schema error, throws a
    /// ``RuntimeError`` naming the file (and line:column for schema errors).
    public static func load(_ path: String) throws -> AppFolder {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RuntimeError("app folder \(path) does not exist")
        }
        let schemaPath = (path as NSString).appendingPathComponent("schema.graphql")
        guard let data = FileManager.default.contents(atPath: schemaPath) else {
            throw RuntimeError("\(schemaPath) is missing: an app folder needs a schema.graphql declaring its tables")
        }
        do {
            let schema = try SchemaParser.parse(String(decoding: data, as: UTF8.self), file: schemaPath)
            return AppFolder(path: path, schema: schema)
        } catch {
            throw RuntimeError(error.description)
        }
    }

    /// `microlith.yaml`, if present.
    public var configurationFile: String? {
        let p = (path as NSString).appendingPathComponent("microlith.yaml")
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }

    /// The `web/` folder, if present.
    public var webRoot: String? {
        let p = (path as NSString).appendingPathComponent("web")
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: p, isDirectory: &isDirectory) && isDirectory.boolValue ? p : nil
    }

    /// The `data/*.json` seed files, sorted by name.
    public var seedFiles: [String] {
        let p = (path as NSString).appendingPathComponent("data")
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: p) else { return [] }
        return names.filter { $0.hasSuffix(".json") }.sorted().map { (p as NSString).appendingPathComponent($0) }
    }
}
