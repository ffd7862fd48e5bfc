/// The sessions whose subscriptions (shared ones aside) match recently published topics, each once
/// with what its matching subscriptions grant together, so that a topic published to again (a
/// record's changes, a sensor's readings) reaches its subscribers without matching the topic tree
/// and merging each client's overlapping filters again.
///
/// The owner empties it whenever a subscription or a session changes. It holds at most
/// ``maximumSubscribers`` subscribers over all its topics; past that, topics are dropped (whichever
/// the dictionary gives first) until the new one fits.
struct MQTTMatchCache: Sendable {
    /// The subscribers of one topic.
    struct Entry: Sendable {
        /// Every session with a subscription matching the topic, with what they grant together,
        /// no-local ones included.
        var subscribers: [(session: MQTTSession, target: MQTTFanOut.Target)]
        /// The client ids among them with a matching no-local subscription: a publish by one of them
        /// is matched afresh, without that subscription [MQTT-3.8.3-3].
        var noLocal: Set<String>
    }

    /// How many subscribers, over all topics, the cache holds at most.
    static var maximumSubscribers: Int { 65_536 }

    private var entries: [String: Entry] = [:]
    /// The subscribers of every entry together.
    private(set) var held = 0

    /// The topics held.
    var count: Int { entries.count }

    /// The entry of `topic`, if held.
    subscript(topic: String) -> Entry? { entries.isEmpty ? nil : entries[topic] }

    /// Keeps `entry` for `topic`, dropping other topics while the cache would exceed its bound; an entry
    /// larger than the bound by itself is not kept.
    mutating func keep(_ entry: Entry, for topic: String) {
        let size = max(1, entry.subscribers.count)
        guard size <= Self.maximumSubscribers else { return }
        if let old = entries.removeValue(forKey: topic) { held -= max(1, old.subscribers.count) }
        while held + size > Self.maximumSubscribers, let first = entries.first {
            entries.remove(at: entries.startIndex)
            held -= max(1, first.value.subscribers.count)
        }
        entries[topic] = entry
        held += size
    }

    /// Forgets every topic (a subscription or a session changed).
    mutating func removeAll() {
        guard !entries.isEmpty else { return }
        entries = [:]
        held = 0
    }
}
