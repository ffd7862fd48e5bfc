import MicrolithSchema
import MicrolithStore
import NIOCore
import Synchronization

/// A kept response with live slots: its fixed parts, and what serving it rendered last.
///
/// Serving renders a slot again only after its record changed (each slot's last text is kept by
/// the version it showed). The whole body filled last is kept too, with the record cache's
/// ``RecordCache/changes`` count it was filled at: while that count stays the same no record
/// has changed, so the body is served again without looking a slot up.
final class LivePage: Sendable {
    let status: Int
    let headers: [(name: String, value: String)]
    let fieldLines: ByteBuffer
    let segments: [LiveSlot.Segment]
    /// Whether a filled body may be served again while no commit happened: not when a slot's
    /// table expires records by time, as such a record lapses without a commit.
    let reusesBodies: Bool
    private let memo: Mutex<Memo>

    private struct Memo {
        var texts: [(version: Int64, text: ByteBuffer)?]
        var body: (changes: UInt64, bytes: ByteBuffer)?
    }

    init(status: Int, headers: [(name: String, value: String)], fieldLines: ByteBuffer, segments: [LiveSlot.Segment]) {
        self.status = status
        self.headers = headers
        self.fieldLines = fieldLines
        self.segments = segments
        reusesBodies = segments.allSatisfy {
            if case .slot(let slot) = $0 { return slot.table.definition.expiration == nil }
            return true
        }
        memo = Mutex(Memo(texts: Array(repeating: nil, count: segments.count), body: nil))
    }

    /// The body filled when the record cache's change count was `changes`, if it was the last one filled.
    func body(at changes: UInt64) -> ByteBuffer? {
        guard reusesBodies else { return nil }
        return memo.withLock { m in
            guard let last = m.body, last.changes == changes else { return nil }
            return last.bytes
        }
    }

    /// Keeps `bytes`, filled from records read after the change count was `changes`.
    func remember(body bytes: ByteBuffer, at changes: UInt64) {
        guard reusesBodies else { return }
        memo.withLock { $0.body = (changes, bytes) }
    }

    /// The text segment `index` rendered for its record at `version`, if that was the last one.
    func text(_ index: Int, version: Int64) -> ByteBuffer? {
        memo.withLock { m in
            guard let last = m.texts[index], last.version == version else { return nil }
            return last.text
        }
    }

    /// Keeps the text segment `index` rendered for its record at `version`.
    func remember(_ index: Int, version: Int64, text: ByteBuffer) {
        memo.withLock { $0.texts[index] = (version, text) }
    }
}
