import Foundation
import HTTPTypes
import Hummingbird
import MicrolithTables

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The files of an app's `web/` folder, served for `GET` and `HEAD`.
///
/// Only regular files whose real path (every symbolic link resolved) lies inside the folder's
/// real path are served, and no file or folder whose name starts with a dot (`.env`, `.git/`),
/// whether the request or a link names it: anything else is the caller's 404. A path holding a
/// control character (NUL included) or a `%` escape that does not decode to UTF-8 is a 400
/// (decoded by ``PathSegment``, as record keys are).
/// A folder answers with its `index.html` (a folder path without its final `/` is redirected to
/// it). Answers carry `Content-Type` (from the served file's own name), `Content-Length`, `ETag`
/// and `Last-Modified`; `If-None-Match`, or else an `If-Modified-Since` equal to the file's
/// `Last-Modified`, gives 304.
struct StaticFiles: Sendable {
    /// The folder's real path, without a final `/`.
    let root: String
    let fileIO = FileIO()

    /// The files under `folder`, or nil when it does not exist or is not a folder.
    init?(folder: String) {
        guard let real = Self.realPath(folder), Self.kind(real)?.isFolder == true else { return nil }
        root = real.count > 1 && real.hasSuffix("/") ? String(real.dropLast()) : real
    }

    /// Answers `request`; throws `notFound` for anything that is not a file to serve.
    func respond(_ request: Request, context: some RequestContext, notFound: Problem) async throws -> Response {
        let segments = try Self.segments(of: request.uri.path)
        guard !segments.contains(where: { $0.hasPrefix(".") }), var path = resolve(segments), var info = Self.kind(path) else {
            throw notFound
        }
        if info.isFolder {
            guard request.uri.path.hasSuffix("/") else {
                let location = "/" + segments.map(Self.encode).joined(separator: "/") + "/"
                return Response(status: .movedPermanently, headers: [.location: location])
            }
            guard let index = resolve(relative(path).map(String.init) + ["index.html"]), let indexInfo = Self.kind(index) else { throw notFound }
            path = index
            info = indexInfo
        }
        guard info.isRegular else { throw notFound }

        let etag = "\"\(String(info.size, radix: 16))-\(String(info.modifiedMicroseconds, radix: 16))\""
        let lastModified = Self.httpDate(seconds: info.modifiedMicroseconds / 1_000_000)
        let headers: HTTPFields = [
            .contentType: Self.mediaType(of: path), .contentLength: String(info.size), .eTag: etag, .lastModified: lastModified,
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        ]
        if let tags = request.headers[.ifNoneMatch] {
            let list = tags.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.map {
                $0.hasPrefix("W/") ? String($0.dropFirst(2)) : $0
            }
            if list.contains("*") || list.contains(etag) { return Response(status: .notModified, headers: Self.notModified(headers)) }
        } else if request.headers[.ifModifiedSince] == lastModified {
            return Response(status: .notModified, headers: Self.notModified(headers))
        }
        guard request.method == .get, info.size > 0 else { return Response(status: .ok, headers: headers) }
        let body = try await fileIO.loadFile(path: path, range: 0...(info.size - 1), context: context)
        return Response(status: .ok, headers: headers, body: body)
    }

    /// The real path of `segments` under the root, or nil when it does not exist, lies outside
    /// the root, or passes through a name starting with a dot once links are resolved.
    func resolve(_ segments: [String]) -> String? {
        let joined = segments.isEmpty ? root : root + "/" + segments.joined(separator: "/")
        guard let real = Self.realPath(joined), real == root || real.hasPrefix(root == "/" ? "/" : root + "/") else { return nil }
        guard !relative(real).contains(where: { $0.hasPrefix(".") }) else { return nil }
        return real
    }

    /// The names of `path` below the root.
    func relative(_ path: String) -> [Substring] {
        path.dropFirst(root.count).split(separator: "/")
    }

    /// The decoded, non-empty segments of a request path; throws a 400 problem for a control
    /// character (U+0000–U+001F, U+007F–U+009F) or an escape that does not decode.
    static func segments(of rawPath: String) throws -> [String] {
        let text: String
        do {
            text = try PathSegment.decode(rawPath)
        } catch {
            throw badPath("the path has \(error.description)")
        }
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
            throw badPath("the path contains a control character (such as NUL)")
        }
        return text.split(separator: "/").map(String.init)
    }

    static func badPath(_ what: String) -> Problem {
        Problem(.badRequest, "\(what); it names no file", code: "badPath")
    }

    static func encode(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? segment
    }

    /// `Content-Type` for a file, by its name's extension (`application/octet-stream` when unknown).
    static func mediaType(of path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "application/octet-stream" }
        let ext = name[name.index(after: dot)...].lowercased()
        return MediaType.getMediaType(forExtension: ext)?.description ?? "application/octet-stream"
    }

    /// The headers a 304 keeps.
    static func notModified(_ headers: HTTPFields) -> HTTPFields {
        var kept = HTTPFields()
        for name in [HTTPField.Name.eTag, .lastModified] { kept[name] = headers[name] }
        return kept
    }

    struct Kind {
        var isFolder: Bool
        var isRegular: Bool
        var size: Int
        var modifiedMicroseconds: Int64
    }

    static func kind(_ path: String) -> Kind? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
        let type = attributes[.type] as? FileAttributeType
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return Kind(
            isFolder: type == .typeDirectory, isRegular: type == .typeRegular, size: size, modifiedMicroseconds: Int64(modified * 1_000_000))
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as the `Date` header is written.
    static func httpDate(seconds: Int64) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return HTTPDate.format(parts)
    }
}
