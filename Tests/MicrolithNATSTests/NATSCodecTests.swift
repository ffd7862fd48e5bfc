import Foundation
import NIOCore
import Testing

@testable import MicrolithNATS

/// The wire format, byte by byte: what the client writes, and what it reads from a server.
@Suite struct NATSCodecTests {
    func bytes(_ op: NATSClientOperation) -> String {
        var buffer = ByteBuffer()
        op.encode(into: &buffer)
        return String(buffer: buffer)
    }

    func parseAll(_ text: String, _ parser: NATSParser = NATSParser()) throws -> [NATSServerOperation] {
        var buffer = ByteBuffer(string: text)
        var ops: [NATSServerOperation] = []
        while let op = try parser.next(&buffer) { ops.append(op) }
        #expect(buffer.readableBytes == 0, "left over: \(String(buffer: buffer))")
        return ops
    }

    func refusal(_ text: String, _ parser: NATSParser = NATSParser()) -> String? {
        var buffer = ByteBuffer(string: text)
        do {
            while try parser.next(&buffer) != nil {}
            return nil
        } catch {
            return error.message
        }
    }

    @Test func clientOperationsAreWrittenExactly() {
        #expect(bytes(.publish(subject: "a.b", replyTo: nil, headers: nil, payload: ByteBuffer(string: "hello"))) == "PUB a.b 5\r\nhello\r\n")
        #expect(bytes(.publish(subject: "a", replyTo: "_INBOX.x.1", headers: nil, payload: ByteBuffer())) == "PUB a _INBOX.x.1 0\r\n\r\n")
        let headers = NATSHeaders([("Nats-Msg-Id", "n1:7")])
        // "NATS/1.0\r\n" (10) + "Nats-Msg-Id: n1:7\r\n" (19) + "\r\n" (2) = 31 header bytes.
        #expect(
            bytes(.publish(subject: "rep.n1", replyTo: "r", headers: headers, payload: ByteBuffer(string: "{}")))
                == "HPUB rep.n1 r 31 33\r\nNATS/1.0\r\nNats-Msg-Id: n1:7\r\n\r\n{}\r\n")
        #expect(bytes(.subscribe(subject: "a.*", queueGroup: nil, sid: "1")) == "SUB a.* 1\r\n")
        #expect(bytes(.subscribe(subject: "a.>", queueGroup: "workers", sid: "22")) == "SUB a.> workers 22\r\n")
        #expect(bytes(.unsubscribe(sid: "3", after: nil)) == "UNSUB 3\r\n")
        #expect(bytes(.unsubscribe(sid: "3", after: 5)) == "UNSUB 3 5\r\n")
        #expect(bytes(.ping) == "PING\r\n")
        #expect(bytes(.pong) == "PONG\r\n")
    }

    @Test func connectCarriesCredentialsAndCapabilities() {
        var options = NATSConnectOptions(name: "node-1", user: "u", password: "p/w\"")
        options.echo = false
        #expect(
            bytes(.connect(options))
                == #"CONNECT {"echo":false,"headers":true,"lang":"swift","name":"node-1","no_responders":true,"pass":"p/w\"","pedantic":false,"protocol":1,"tls_required":false,"user":"u","verbose":false,"version":"microlith"}"#
                + "\r\n")
        #expect(NATSConnectOptions(token: "s3cret").json.contains(#""auth_token":"s3cret""#))
        #expect(!NATSConnectOptions().json.contains("user"))
    }

    @Test func serverOperationsAreReadInAnyCase() throws {
        let info =
            #"INFO {"server_id":"S1","version":"2.9.10","proto":1,"headers":true,"max_payload":1048576,"jetstream":true,"connect_urls":["10.0.0.2:4222"],"auth_required":true}"#
        let ops = try parseAll(info + "\r\nping\r\nPONG\r\n+ok\r\n-ERR 'Authorization Violation'\r\n")
        #expect(ops.count == 5)
        guard case .info(let i) = ops[0] else { Issue.record("not INFO: \(ops[0])"); return }
        #expect(i.serverID == "S1" && i.version == "2.9.10" && i.headers && i.jetStream && i.authRequired)
        #expect(i.maxPayload == 1_048_576 && i.connectURLs == ["10.0.0.2:4222"] && !i.tlsRequired && !i.lameDuckMode)
        #expect(Array(ops[1...]) == [.ping, .pong, .ok, .error("Authorization Violation")])
    }

    @Test func messagesWithAndWithoutReplyAndHeaders() throws {
        let ops = try parseAll(
            "MSG a.b 1 5\r\nhello\r\nmsg\ta.b\t9\t_INBOX.z\t0\r\n\r\n"
                + "HMSG _INBOX.q.1 2 _INBOX.r 39 41\r\nNATS/1.0\r\nNats-Msg-Id: x\r\nA: 1\r\nA:2\r\n\r\nok\r\n"
                + "HMSG _INBOX.q.2 2 30 30\r\nNATS/1.0 503 No Responders\r\n\r\n\r\n")
        #expect(ops.count == 4)
        #expect(ops[0] == .message(NATSMessage(subject: "a.b", sid: "1", payload: ByteBuffer(string: "hello"))))
        #expect(ops[1] == .message(NATSMessage(subject: "a.b", sid: "9", replyTo: "_INBOX.z", payload: ByteBuffer())))
        guard case .message(let h) = ops[2], case .message(let s) = ops[3] else { Issue.record("not messages"); return }
        #expect(h.replyTo == "_INBOX.r" && h.headers?["Nats-Msg-Id"] == "x" && h.headers?.values("A") == ["1", "2"])
        #expect(h.status == nil && String(buffer: h.payload) == "ok")
        #expect(s.status == 503 && s.headers?.statusDescription == "No Responders" && s.payload.readableBytes == 0)
    }

    @Test func aPartialOperationWaitsForTheRestAndConsumesNothing() throws {
        let parser = NATSParser()
        let text = "HMSG s 1 r 12 17\r\nNATS/1.0\r\n\r\nhello\r\nPING\r\n"
        var buffer = ByteBuffer()
        var ops: [NATSServerOperation] = []
        for byte in text.utf8 {
            buffer.writeInteger(byte)
            let before = buffer.readableBytes
            if let op = try parser.next(&buffer) {
                ops.append(op)
            } else {
                #expect(buffer.readableBytes == before)
            }
        }
        #expect(ops.count == 2)
        #expect(ops.last == .ping)
        guard case .message(let m) = ops.first else { Issue.record("not a message"); return }
        #expect(m.headers == NATSHeaders() && String(buffer: m.payload) == "hello")
    }

    @Test func aBareLineFeedEndsALineToo() throws {
        #expect(try parseAll("PING\nMSG a 1 2\nhi\r\n") == [.ping, .message(NATSMessage(subject: "a", sid: "1", payload: ByteBuffer(string: "hi")))])
    }

    @Test func brokenInputIsRefusedWithAReason() {
        #expect(refusal("HELLO\r\n")?.contains("unknown operation 'HELLO'") == true)
        #expect(refusal("PING now\r\n")?.contains("PING takes no arguments") == true)
        #expect(refusal("MSG a 1\r\n")?.contains("MSG takes 3 or 4 fields, got 2") == true)
        #expect(refusal("MSG a 1 x\r\n")?.contains("'x' is not a number") == true)
        #expect(refusal("MSG a 1 -1\r\n")?.contains("is not a number") == true)
        #expect(refusal("MSG a 1 2\r\nhiXX")?.contains("not followed by CR LF") == true)
        #expect(refusal("HMSG a 1 10 5\r\n")?.contains("header size 10 is more than its total size 5") == true)
        #expect(refusal("HMSG a 1 12 12\r\nHTTP/1.0\r\n\r\n\r\n")?.contains("must begin with NATS/1.0") == true)
        #expect(refusal("HMSG a 1 21 21\r\nNATS/1.0\r\nnocolon\r\n\r\n\r\n") == nil, "a malformed header line is passed over")
        #expect(refusal("HMSG a 1 15 15\r\nNATS/1.0 5x\r\n\r\n\r\n")?.contains("three digits") == true)
        #expect(refusal("INFO {not json}\r\n")?.contains("INFO is not the JSON object") == true)
        let small = NATSParser(maximumControlLine: 16, maximumInfoLine: 64, maximumPayload: 8)
        #expect(refusal(String(repeating: "x", count: 17), small)?.contains("longer than 16 bytes") == true)
        #expect(refusal("INFO " + String(repeating: "x", count: 40), small) == nil, "an INFO line may be longer")
        #expect(refusal("INFO " + String(repeating: "x", count: 60), small)?.contains("longer than 64 bytes") == true)
        #expect(refusal("MSG a 1 9\r\n", small)?.contains("over the 8-byte limit") == true)
    }

    @Test func headersKeepOrderCaseAndRepeats() throws {
        var h = NATSHeaders([("A", "1"), ("a", "2"), ("A", "3")])
        #expect(h["A"] == "1" && h["a"] == "2" && h.values("A") == ["1", "3"])
        h["A"] = "9"
        #expect(h.fields.map(\.value) == ["9", "2"])
        h.add(name: "B", value: "x y")
        h["a"] = nil
        #expect(h.fields == [.init(name: "A", value: "9"), .init(name: "B", value: "x y")])
        var block = ByteBuffer()
        h.status = 408
        h.statusDescription = "Request Timeout"
        h.encode(into: &block)
        #expect(String(buffer: block) == "NATS/1.0 408 Request Timeout\r\nA: 9\r\nB: x y\r\n\r\n")
        #expect(try NATSHeaders.parse(block.readableBytesView) == h)
    }

    @Test func headersThatCannotBeSentAreNamed() {
        #expect(NATSHeaders([("Good-Name", "any value: at all")]).problem == nil)
        #expect(NATSHeaders([("", "v")]).problem?.contains("empty") == true)
        #expect(NATSHeaders([("Bad Name", "v")]).problem?.contains("names are printable ASCII") == true)
        #expect(NATSHeaders([("Bad:Name", "v")]).problem?.contains("':'") == true)
        #expect(NATSHeaders([("N", "line\r\nInjected: yes")]).problem?.contains("line break") == true)
        var h = NATSHeaders()
        h.status = 42
        #expect(h.problem?.contains("three digits") == true)
    }

    @Test func subjectsFollowTheRules() {
        // The one-pass check every publish makes agrees with the token-by-token description.
        var random = SystemRandomNumberGenerator()
        let alphabet: [String] = ["a", "b", ".", "*", ">", " ", "\n", "é", "\u{301}"]
        for _ in 0..<5_000 {
            let subject = (0..<Int.random(in: 0...6, using: &random)).map { _ in alphabet.randomElement(using: &random)! }.joined()
            for wildcards in [false, true] {
                #expect(
                    NATSSubject.isWellFormed(subject, wildcards: wildcards) == (NATSSubject.describe(subject, wildcards: wildcards) == nil),
                    "\(subject.debugDescription) wildcards: \(wildcards)")
            }
        }
        #expect(NATSSubject.problem("a.b.c", wildcards: false) == nil)
        #expect(NATSSubject.problem("$JS.API.STREAM.CREATE.R", wildcards: false) == nil)
        #expect(NATSSubject.problem("a.*.c", wildcards: true) == nil)
        #expect(NATSSubject.problem("a.>", wildcards: true) == nil)
        #expect(NATSSubject.problem("", wildcards: true)?.contains("empty") == true)
        #expect(NATSSubject.problem("a..b", wildcards: true)?.contains("empty token") == true)
        #expect(NATSSubject.problem(".a", wildcards: true)?.contains("empty token") == true)
        #expect(NATSSubject.problem("a b", wildcards: true)?.contains("a space") == true)
        #expect(NATSSubject.problem("a\r\nPUB x 1", wildcards: true)?.contains("control character") == true)
        #expect(NATSSubject.problem("a.*", wildcards: false)?.contains("wildcard") == true)
        #expect(NATSSubject.problem("a.>.b", wildcards: true)?.contains("last token") == true)
        let op = NATSClientOperation.publish(subject: "ok", replyTo: "bad reply", headers: nil, payload: ByteBuffer())
        #expect(op.problem?.contains("a space") == true)
        #expect(NATSClientOperation.subscribe(subject: "a", queueGroup: "q q", sid: "1").problem?.contains("queue group") == true)
        #expect(NATSClientOperation.unsubscribe(sid: "1", after: 0).problem?.contains("positive") == true)
    }

    @Test func receiptsAreReadWithoutADecoderAsTheDecoderReadsThem() throws {
        for text in [
            #"{"stream":"R","seq":1}"#, #"{"stream":"MICROLITH_CHANGES","seq":18446744073709551}"#, #"{"stream":"R","seq":42,"duplicate":true}"#,
        ] {
            let fast = try #require(NATSPublishAck(receipt: ByteBuffer(string: text)), "\(text)")
            #expect(fast == (try JSONDecoder().decode(NATSPublishAck.self, from: Data(text.utf8))))
        }
        // Anything else is left to the decoder.
        for text in [
            #"{"stream":"R","domain":"hub","seq":1}"#, #"{"error":{"code":503,"description":"no"}}"#, #"{"stream":"R","seq":1} "#,
            #"{"stream":"R","seq":}"#, #"{"stream":"R\"x","seq":1}"#, #"{"stream":"R","seq":1,"duplicate":false}"#, "",
        ] {
            #expect(NATSPublishAck(receipt: ByteBuffer(string: text)) == nil, "\(text)")
        }
    }
}
