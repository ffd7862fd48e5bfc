import MicrolithJSON
public import MicrolithStore
import NIOCore
import Synchronization

/// Responses kept by the runtime because nothing they were built from has changed since.
///
/// A handler that asks for its response to be kept runs with a ``KeptRecording`` observing its
/// reads (``begin()``): every record read (by key, present or absent) and every query (by its
/// table and filter). ``keep(_:for:recording:)`` keeps the response only if no commit touched
/// that read set while the handler ran. Afterwards a commit drops exactly the responses whose
/// read set it touches: records by key; queries by testing the changed record's images before
/// and after the write against the query's filter (a record entering or leaving an answer
/// changes it). There is no global counter: a commit to one product leaves every other page.
///
/// Commits drop responses before they are acknowledged (the store's `onCommit` listeners run
/// before writers resume), so no response older than an acknowledged commit is ever served.
///
/// Memory is bounded by a byte budget with least-recently-used eviction. Lookups
/// (``response(for:)``) are one dictionary access under a lock, from the event loop.
public final class KeptResponses: ResponseCache {
    /// Counters, for `/_cache` and tests.
    public struct Statistics: Sendable, Equatable {
        /// Responses kept now.
        public var entries: Int
        /// Their estimated memory.
        public var bytes: Int
        /// Requests answered from here.
        public var hits: UInt64
        /// Handler runs that asked to be kept (each one a miss).
        public var misses: UInt64
        /// Responses kept.
        public var kept: UInt64
        /// Responses not kept because a commit touched their reads while they were built.
        public var refusedStale: UInt64
        /// Responses not kept because they read what cannot be followed, or were too large.
        public var refusedUntracked: UInt64
        /// Responses dropped by commits.
        public var invalidations: UInt64
        /// Responses dropped to stay within the budget.
        public var evictions: UInt64
    }

    /// What ``keep(_:for:recording:)`` did.
    public enum Outcome: Sendable, Equatable {
        case kept
        /// A commit touched the read set while the handler ran.
        case stale
        /// The handler read something that cannot be followed (the reason), or the response
        /// is too large for the budget.
        case notKeepable(String)
    }

    struct ValueKey: Hashable {
        var table: Int
        var attribute: String
        var value: String
    }

    struct QueryDependency {
        var target: String
        var table: Int
        var predicate: (any RecordPredicate)?
        var bucket: ValueKey?
    }

    enum Body {
        case plain(CachedResponse)
        case live(LivePage)
        /// An operation's result (keys of these never start with `/`).
        case value(any Sendable)
    }

    struct Entry {
        var body: Body
        var records: [RecordAddress]
        var dependencies: [Int]
        var cost: Int
        var node: Int
    }

    struct State {
        var entries: [String: Entry] = [:]
        var byRecord: [RecordAddress: Set<String>] = [:]
        var dependencies: [Int: QueryDependency] = [:]
        var nextDependency = 0
        var byValue: [ValueKey: Set<Int>] = [:]
        /// Per table, the bucketed attributes and how many dependencies use each.
        var bucketAttributes: [Int: [String: Int]] = [:]
        /// Per table, the dependencies tested on every change of the table.
        var unbucketed: [Int: Set<Int>] = [:]
        var recency = LRUList()
        var recordings: [ObjectIdentifier: KeptRecording] = [:]
        var bytes = 0
        var statistics = Statistics(
            entries: 0, bytes: 0, hits: 0, misses: 0, kept: 0, refusedStale: 0, refusedUntracked: 0, invalidations: 0, evictions: 0)
    }

    private let state = Mutex(State())
    /// The store whose commits drop responses and whose record cache fills live slots.
    public let store: Store
    /// The memory budget in bytes; 0 keeps nothing.
    public let limitBytes: Int

    /// A cache of at most about `limitBytes`, following `store`'s commits.
    public init(store: Store, limitBytes: Int) {
        self.store = store
        self.limitBytes = max(0, limitBytes)
        store.onCommit { [weak self] changes in self?.committed(changes) }
    }

    /// Whether responses are kept at all (a budget above 0).
    public var isEnabled: Bool { limitBytes > 0 }

    // MARK: Serving

    public func response(for target: String) -> CachedResponse? {
        let body: Body? = state.withLock { s in
            guard let entry = s.entries[target] else { return nil }
            s.recency.touch(entry.node)
            if case .plain = entry.body { s.statistics.hits &+= 1 }
            return entry.body
        }
        switch body {
        case nil, .value?: return nil
        case .plain(let response)?: return response
        case .live(let page)?:
            guard let filled = fill(page) else { return nil }
            state.withLock { $0.statistics.hits &+= 1 }
            return CachedResponse(status: page.status, headers: page.headers, body: filled, fieldLines: page.fieldLines)
        }
    }

    /// The body with each slot rendered from the record cache; `nil` when a slot's record is not
    /// in the cache (the handler then runs again, and reads it in). While no slot's record has
    /// been committed since, the body filled last is served again as it is.
    private func fill(_ page: LivePage) -> ByteBuffer? {
        if let body = page.reusableBody(store.cache) { return body }
        // Taken before the slots are read: a commit to one of them meanwhile makes this body one
        // not served again.
        let counts = page.changeCounts(store.cache)
        let segments = page.segments
        // One allocation: the fixed bytes plus room for the slots' texts.
        var out = ByteBuffer()
        out.reserveCapacity(
            segments.reduce(0) {
                if case .bytes(let b) = $1 { return $0 + b.readableBytes }
                return $0 + 64
            })
        for (index, segment) in segments.enumerated() {
            switch segment {
            case .bytes(let b): out.writeImmutableBuffer(b)
            case .slot(let slot):
                let record: CachedRecord?
                switch store.cachedGet(slot.table, slot.id) {
                case .present(let r)?: record = r
                case .absent?: record = nil
                case nil: return nil
                }
                // The text of a version is rendered once; a commit to the record gives a new version.
                let version = record?.version ?? Int64.min
                if let text = page.text(index, version: version) {
                    out.writeImmutableBuffer(text)
                } else {
                    let text = ByteBuffer(string: slot.render(record?.record))
                    page.remember(index, version: version, text: text)
                    out.writeImmutableBuffer(text)
                }
            }
        }
        if let counts { page.remember(body: out, counts: counts) }
        return out
    }

    /// `response` with the live slots `recording` handed out filled in: what the request that
    /// built it is sent. Records not in the record cache are read from the store.
    public func filled(_ response: CachedResponse, recording: KeptRecording) async throws -> CachedResponse {
        let slots = recording.state.withLock { $0.slots }
        guard !slots.isEmpty, let segments = LiveSlot.split(response.body, slots: slots, json: Self.isJSON(response)) else {
            return response
        }
        var out = ByteBuffer()
        for segment in segments {
            switch segment {
            case .bytes(let b): out.writeImmutableBuffer(b)
            case .slot(let slot): out.writeString(slot.render(try await store.get(slot.table, slot.id)?.record))
            }
        }
        var result = response
        result.body = out
        return result
    }

    static func isJSON(_ response: CachedResponse) -> Bool {
        response.headers.contains { $0.name.lowercased() == "content-type" && $0.value.contains("json") }
    }

    // MARK: Keeping

    /// Starts recording the reads of a handler whose response may be kept. Run the handler with
    /// the recording as ``ReadObservation/observer``, then pass it to
    /// ``keep(_:for:recording:)`` or ``abandon(_:)``.
    public func begin() -> KeptRecording {
        begin(parent: nil)
    }

    /// Starts recording for code running inside other code whose result may be kept (`parent`,
    /// usually the current ``ReadObservation/observer``): every read is reported to it too.
    public func begin(parent: (any ReadObserver)?) -> KeptRecording {
        let recording = KeptRecording(parent: parent)
        state.withLock { s in
            s.recordings[ObjectIdentifier(recording)] = recording
            s.statistics.misses &+= 1
        }
        return recording
    }

    /// Stops following `recording` without keeping anything (the handler failed).
    public func abandon(_ recording: KeptRecording) {
        _ = state.withLock { $0.recordings.removeValue(forKey: ObjectIdentifier(recording)) }
    }

    /// Keeps `response` as the answer for `target` unless a commit touched what `recording` read
    /// since ``begin()``; the recording ends either way.
    @discardableResult
    public func keep(_ response: CachedResponse, for target: String, recording: KeptRecording) -> Outcome {
        let snapshot = recording.state.withLock { $0 }
        let json = Self.isJSON(response)
        // The header lines are encoded once here, not for every request answered.
        let fieldLines = CachedResponse.fieldLines(response.headers)
        let body: Body
        if !snapshot.slots.isEmpty, let segments = LiveSlot.split(response.body, slots: snapshot.slots, json: json) {
            body = .live(LivePage(status: response.status, headers: response.headers, fieldLines: fieldLines, segments: segments, cache: store.cache))
        } else {
            var kept = response
            kept.fieldLines = fieldLines
            body = .plain(kept)
        }
        let cost =
            256 + target.utf8.count * 2 + response.body.readableBytes
            + response.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 32 } + snapshot.records.count * 64
            + snapshot.queries.count * 128
        return insert(body, for: target, cost: cost, recording: recording, snapshot: snapshot)
    }

    /// Keeps an operation's result `value` under `key` (never a path: keys of results and of
    /// responses must not meet) unless a commit touched what `recording` read; `estimatedBytes`
    /// is its memory, for the budget.
    @discardableResult
    public func keep(value: any Sendable, for key: String, estimatedBytes: Int, recording: KeptRecording) -> Outcome {
        let snapshot = recording.state.withLock { $0 }
        let cost = 256 + key.utf8.count * 2 + estimatedBytes + snapshot.records.count * 64 + snapshot.queries.count * 128
        return insert(.value(value), for: key, cost: cost, recording: recording, snapshot: snapshot)
    }

    /// The result kept under `key`, if any. Its read set is reported to `observer` first (the
    /// code using the result depends on what it was built from), atomically with the lookup.
    public func value(for key: String, reportingTo observer: (any ReadObserver)?) -> (any Sendable)? {
        state.withLock { s -> (any Sendable)? in
            guard let entry = s.entries[key], case .value(let value) = entry.body else { return nil }
            s.recency.touch(entry.node)
            s.statistics.hits &+= 1
            if let observer {
                for address in entry.records { observer.willRead(store.tables[address.table], id: address.id) }
                for id in entry.dependencies {
                    guard let d = s.dependencies[id] else { continue }
                    observer.willQuery(store.tables[d.table], predicate: d.predicate)
                }
            }
            return value
        }
    }

    private func insert(_ body: Body, for target: String, cost: Int, recording: KeptRecording, snapshot: KeptRecording.State) -> Outcome {
        state.withLock { s -> Outcome in
            s.recordings[ObjectIdentifier(recording)] = nil
            if let reason = snapshot.untracked ?? (cost > limitBytes / 4 ? "the response is too large for the budget" : nil) {
                s.statistics.refusedUntracked &+= 1
                return .notKeepable(reason)
            }
            // Read under the lock: a commit marks recordings stale under it too.
            if recording.state.withLock({ $0.stale }) {
                s.statistics.refusedStale &+= 1
                return .stale
            }
            Self.remove(&s, target)
            let records = Array(snapshot.records)
            for address in records { s.byRecord[address, default: []].insert(target) }
            var ids: [Int] = []
            for query in snapshot.queries {
                let id = s.nextDependency
                s.nextDependency &+= 1
                var dependency = QueryDependency(target: target, table: query.table, predicate: query.predicate, bucket: nil)
                if let equality = query.predicate?.equality, let key = Self.valueKeys(equality.value).first {
                    let bucket = ValueKey(table: query.table, attribute: equality.attribute, value: key)
                    dependency.bucket = bucket
                    s.byValue[bucket, default: []].insert(id)
                    s.bucketAttributes[query.table, default: [:]][equality.attribute, default: 0] += 1
                } else {
                    s.unbucketed[query.table, default: []].insert(id)
                }
                s.dependencies[id] = dependency
                ids.append(id)
            }
            let node = s.recency.pushFront(target)
            s.entries[target] = Entry(body: body, records: records, dependencies: ids, cost: cost, node: node)
            s.bytes += cost
            s.statistics.kept &+= 1
            while s.bytes > limitBytes, let oldest = s.recency.leastRecent {
                Self.remove(&s, oldest)
                s.statistics.evictions &+= 1
            }
            return .kept
        }
    }

    /// Drops every response (after a change the read sets cannot see, such as a migration).
    public func removeAll() {
        state.withLock { s in
            let recordings = s.recordings
            let statistics = s.statistics
            s = State()
            s.recordings = recordings
            s.statistics = statistics
            for r in recordings.values { r.state.withLock { $0.stale = true } }
        }
    }

    /// The current counters.
    public var statistics: Statistics {
        state.withLock { s in
            var out = s.statistics
            out.entries = s.entries.count
            out.bytes = s.bytes
            return out
        }
    }

    // MARK: Commits

    func committed(_ changes: [Change]) {
        state.withLock { s in
            guard !s.entries.isEmpty || !s.recordings.isEmpty else { return }
            for recording in s.recordings.values { recording.noteCommit(changes) }
            guard !s.entries.isEmpty else { return }
            var dropped: Set<String> = []
            for change in changes {
                if let targets = s.byRecord[RecordAddress(table: change.table, id: change.id)] { dropped.formUnion(targets) }
                let images = [change.previous?.record, change.record?.record].compactMap { $0 }
                func test(_ id: Int) {
                    guard let d = s.dependencies[id], !dropped.contains(d.target) else { return }
                    if let predicate = d.predicate, !images.contains(where: predicate.mayMatch) { return }
                    dropped.insert(d.target)
                }
                for id in s.unbucketed[change.table] ?? [] { test(id) }
                for attribute in (s.bucketAttributes[change.table] ?? [:]).keys {
                    var keys = Set<String>()
                    for image in images { keys.formUnion(Self.valueKeys(image[attribute] ?? .null)) }
                    for key in keys {
                        for id in s.byValue[ValueKey(table: change.table, attribute: attribute, value: key)] ?? [] { test(id) }
                    }
                }
            }
            for target in dropped { Self.remove(&s, target) }
            s.statistics.invalidations &+= UInt64(dropped.count)
        }
    }

    private static func remove(_ s: inout State, _ target: String) {
        guard let entry = s.entries.removeValue(forKey: target) else { return }
        s.bytes -= entry.cost
        s.recency.remove(entry.node)
        for address in entry.records {
            s.byRecord[address]?.remove(target)
            if s.byRecord[address]?.isEmpty == true { s.byRecord[address] = nil }
        }
        for id in entry.dependencies {
            guard let d = s.dependencies.removeValue(forKey: id) else { continue }
            if let bucket = d.bucket {
                s.byValue[bucket]?.remove(id)
                if s.byValue[bucket]?.isEmpty == true { s.byValue[bucket] = nil }
                let left = (s.bucketAttributes[d.table]?[bucket.attribute] ?? 1) - 1
                s.bucketAttributes[d.table]?[bucket.attribute] = left > 0 ? left : nil
            } else {
                s.unbucketed[d.table]?.remove(id)
            }
        }
    }

    /// The keys an equality bucket is found under for a record's value: one per scalar, one
    /// per element of an array (equality matches any element); numbers by numeric value.
    static func valueKeys(_ value: JSONValue) -> [String] {
        switch value {
        case .null: return ["z"]
        case .bool(let b): return [b ? "t" : "f"]
        case .string(let s): return ["s" + s]
        case .int(let n): return ["n\(n)"]
        case .double(let d):
            if d.rounded() == d, abs(d) < 9.2e18 { return ["n\(Int64(d))"] }
            return ["d\(d)"]
        case .array(let elements): return elements.flatMap(valueKeys)
        case .object: return []
        }
    }
}
