import MicrolithSchema
import MicrolithStore
import NIOCore
import Synchronization

/// A kept response with live slots: its fixed parts, and what serving it rendered last.
///
/// Serving renders a slot again only after its record changed (each slot's last text is kept by
/// the version it showed). The whole body filled last is kept too, with the record cache's commit
/// counters of its slots' records (``RecordCache/changeCounts(_:)``) at the time: while none of
/// them has moved, no slot's record has changed, and the body is served again as it is.
final class LivePage: Sendable {
    let status: Int
    let headers: [(name: String, value: String)]
    let fieldLines: ByteBuffer
    let segments: [LiveSlot.Segment]
    /// The record cache's commit counter of each slot's record, in the order of the slots.
    let counters: [Int]
    /// Whether a filled body may be served again while its slots' counters stand still: not when
    /// a slot's table expires records by time, as such a record lapses without a commit.
    let reusesBodies: Bool
    private let memo: Mutex<Memo>

    private struct Memo {
        var texts: [(version: Int64, text: ByteBuffer)?]
        var body: (counts: [UInt64], bytes: ByteBuffer)?
    }

    init(status: Int, headers: [(name: String, value: String)], fieldLines: ByteBuffer, segments: [LiveSlot.Segment], cache: RecordCache) {
        self.status = status
        self.headers = headers
        self.fieldLines = fieldLines
        self.segments = segments
        var counters: [Int] = []
        var expiring = false
        for case .slot(let slot) in segments {
            counters.append(cache.changeCounter(table: slot.table.index, id: slot.id))
            if slot.table.definition.expiration != nil { expiring = true }
        }
        self.counters = counters
        reusesBodies = !expiring
        memo = Mutex(Memo(texts: Array(repeating: nil, count: segments.count), body: nil))
    }

    /// The body filled last, if no commit to a slot's record has happened since.
    func reusableBody(_ cache: RecordCache) -> ByteBuffer? {
        guard reusesBodies, let last = memo.withLock({ $0.body }), cache.unchanged(counters, since: last.counts) else { return nil }
        return last.bytes
    }

    /// The slots' commit counters now, for ``remember(body:counts:)``; `nil` when bodies are not reused.
    func changeCounts(_ cache: RecordCache) -> [UInt64]? {
        reusesBodies ? cache.changeCounts(counters) : nil
    }

    /// Keeps `bytes`, filled from records read after the slots' counters were `counts`.
    func remember(body bytes: ByteBuffer, counts: [UInt64]) {
        memo.withLock { $0.body = (counts, bytes) }
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
