import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MicrolithHTTP
import Testing

/// An app-like folder: `web/` with pages, a dotfile, a hidden folder and links in and out of it,
/// and `secret.txt` beside `web/`. Runs `body` with the web folder's path, then deletes it all.
private func withWebFolder(_ body: (String) async throws -> Void) async throws {
    let base = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-static-tests-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(atPath: base) }
    let web = (base as NSString).appendingPathComponent("web")
    let files = [
        "index.html": "<h1>home</h1>", "sub/a.txt": "plain a", "sub/index.html": "sub home", "real.html": "<p>real</p>",
        ".env": "SECRET=1", ".git/config": "[core]", "sub/.hidden": "hidden", "empty.css": "",
    ]
    for (name, text) in files {
        let path = (web as NSString).appendingPathComponent(name)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
    try "TOP SECRET".write(toFile: (base as NSString).appendingPathComponent("secret.txt"), atomically: true, encoding: .utf8)
    let links = [
        "out.txt": "../secret.txt", "outdir": "..", "page": "real.html", "sub/up.html": "../real.html", "env-link": ".env",
        "abs.txt": (base as NSString).appendingPathComponent("secret.txt"),
    ]
    for (name, target) in links {
        try FileManager.default.createSymbolicLink(atPath: (web as NSString).appendingPathComponent(name), withDestinationPath: target)
    }
    try await body(web)
}

@Suite("REST: static files from web/")
struct StaticFilesTests {
    @Test func pagesAreServedWithTypeLengthAndValidators() async throws {
        try await withWebFolder { web in
            try await withREST(HTTPConfiguration(webRoot: web)) { client, _ in
                let home = try await client.execute(uri: "/", method: .get)
                #expect(home.status == .ok && home.text == "<h1>home</h1>")
                #expect(home.headers[.contentType]?.hasPrefix("text/html") == true)
                #expect(home.headers[.contentLength] == "13")
                let etag = try #require(home.headers[.eTag])
                let lastModified = try #require(home.headers[.lastModified])
                #expect(lastModified.hasSuffix(" GMT"))

                let a = try await client.execute(uri: "/sub/a.txt", method: .get)
                #expect(a.status == .ok && a.text == "plain a")
                #expect(a.headers[.contentType]?.hasPrefix("text/plain") == true)
                #expect(try await client.execute(uri: "/sub/", method: .get).text == "sub home")
                let redirect = try await client.execute(uri: "/sub", method: .get)
                #expect(redirect.status == .movedPermanently && redirect.headers[.location] == "/sub/")

                let head = try await client.execute(uri: "/index.html", method: .head)
                #expect(head.status == .ok && head.body.readableBytes == 0)
                #expect(head.headers[.contentLength] == "13")
                let cached = try await client.execute(uri: "/", method: .get, headers: [.ifNoneMatch: etag])
                #expect(cached.status == .notModified && cached.body.readableBytes == 0)
                let since = try await client.execute(uri: "/", method: .get, headers: [.ifModifiedSince: lastModified])
                #expect(since.status == .notModified)
                let empty = try await client.execute(uri: "/empty.css", method: .get)
                #expect(empty.status == .ok && empty.body.readableBytes == 0 && empty.headers[.contentType]?.hasPrefix("text/css") == true)
            }
        }
    }

    @Test(arguments: ["/.env", "/.git/config", "/.git/", "/sub/.hidden", "/%2eenv", "/sub/%2ehidden", "/env-link", "/./.env"])
    func dotfilesAreNotFound(path: String) async throws {
        try await withWebFolder { web in
            try await withREST(HTTPConfiguration(webRoot: web)) { client, _ in
                let response = try await client.execute(uri: path, method: .get)
                response.expectProblem(.notFound, code: "notFound")
                #expect(!response.text.contains("SECRET=1") && !response.text.contains("[core]") && response.text != "hidden")
            }
        }
    }

    @Test(arguments: ["/out.txt", "/abs.txt", "/outdir/secret.txt", "/sub/../../secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt"])
    func linksAndPathsOutOfTheFolderAreNotFound(path: String) async throws {
        try await withWebFolder { web in
            try await withREST(HTTPConfiguration(webRoot: web)) { client, _ in
                let response = try await client.execute(uri: path, method: .get)
                response.expectProblem(.notFound)
                #expect(!response.text.contains("TOP SECRET"))
            }
        }
    }

    @Test func linksInsideTheFolderAreServedAsTheirTarget() async throws {
        try await withWebFolder { web in
            try await withREST(HTTPConfiguration(webRoot: web)) { client, _ in
                let page = try await client.execute(uri: "/page", method: .get)
                #expect(page.status == .ok && page.text == "<p>real</p>")
                #expect(page.headers[.contentType]?.hasPrefix("text/html") == true, "the type comes from the file served, real.html")
                #expect(try await client.execute(uri: "/sub/up.html", method: .get).text == "<p>real</p>")
            }
        }
    }

    @Test(arguments: [
        "/sub/a.txt%00.html", "/sub/a.txt%0a", "/sub/%1b.txt", "/sub/a%zz.txt", "/sub/a.txt%", "/sub/%ff%fe.txt", "/x%7f", "/sub/%c2%85.txt",
    ])
    func controlCharactersAndBadEscapesAre400(path: String) async throws {
        try await withWebFolder { web in
            try await withREST(HTTPConfiguration(webRoot: web)) { client, _ in
                let response = try await client.execute(uri: path, method: .get)
                response.expectProblem(.badRequest, code: "badPath")
                #expect(!response.text.contains("plain a"))
                #expect(try await client.execute(uri: "/sub/a.txt", method: .get).status == .ok)
            }
        }
    }

    @Test func onlyGetAndHeadReachFiles() async throws {
        try await withWebFolder { web in
            try await withREST(HTTPConfiguration(webRoot: web)) { client, _ in
                try await client.execute(uri: "/sub/a.txt", method: .post, body: json("{}")).expectProblem(.notFound)
                try await client.execute(uri: "/nothing.txt", method: .get).expectProblem(.notFound)
            }
        }
    }
}
