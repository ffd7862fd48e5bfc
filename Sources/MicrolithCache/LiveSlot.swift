public import MicrolithJSON
public import MicrolithStore
import NIOCore

/// A fragment of a kept response filled in from the record cache each time the response is
/// served: a stock level or a price on an otherwise unchanging page.
///
/// The record behind a slot is not part of the response's read set, so its changes leave the
/// response kept; the slot shows the record's committed value at the moment of serving.
public struct LiveSlot: Sendable {
    /// The table of the record shown.
    public let table: TableLayout
    /// The record shown.
    public let id: RecordID
    /// The text standing in the response for the record (`nil`: there is none). It is inserted
    /// as it is: escape it for the response's format (HTML, JSON) yourself.
    public let render: @Sendable (JSONObject?) -> String

    public init(table: TableLayout, id: RecordID, render: @escaping @Sendable (JSONObject?) -> String) {
        self.table = table
        self.id = id
        self.render = render
    }

    /// Private-use code points no escaper rewrites, around the slot's number.
    static let open: [UInt8] = Array("\u{E000}".utf8)
    static let close: [UInt8] = Array("\u{E001}".utf8)

    static func marker(_ index: Int) -> String { "\u{E000}\(index)\u{E001}" }

    /// A body cut at its markers: bytes, then slots, in order. In a JSON body a marker standing
    /// alone in a string (`"\u{E000}0\u{E001}"`) takes its quotes with it, so a slot can render
    /// a number or `true`. `nil` when the body holds no valid marker.
    static func split(_ body: ByteBuffer, slots: [LiveSlot], json: Bool) -> [Segment]? {
        let bytes = Array(body.readableBytesView)
        var segments: [Segment] = []
        var start = 0
        var i = 0
        var found = false
        while i + open.count < bytes.count {
            guard bytes[i] == open[0], bytes[i + 1] == open[1], bytes[i + 2] == open[2] else {
                i += 1
                continue
            }
            var j = i + open.count
            var number = 0
            var digits = 0
            while j < bytes.count, bytes[j] >= 0x30, bytes[j] <= 0x39, digits < 6 {
                number = number * 10 + Int(bytes[j] - 0x30)
                j += 1
                digits += 1
            }
            guard digits > 0, j + close.count <= bytes.count, Array(bytes[j..<(j + close.count)]) == close, number < slots.count else {
                i += 1
                continue
            }
            var from = i
            var to = j + close.count
            if json, from > 0, to < bytes.count, bytes[from - 1] == UInt8(ascii: "\""), bytes[to] == UInt8(ascii: "\"") {
                from -= 1
                to += 1
            }
            if from > start { segments.append(.bytes(ByteBuffer(bytes: bytes[start..<from]))) }
            segments.append(.slot(slots[number]))
            found = true
            start = to
            i = to
        }
        guard found else { return nil }
        if start < bytes.count { segments.append(.bytes(ByteBuffer(bytes: bytes[start...]))) }
        return segments
    }

    /// A piece of a body with live slots.
    enum Segment: Sendable {
        case bytes(ByteBuffer)
        case slot(LiveSlot)
    }
}
