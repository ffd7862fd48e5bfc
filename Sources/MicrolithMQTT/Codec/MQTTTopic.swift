/// Topic names, topic filters and matching, compared byte by byte as MQTT requires (no Unicode normalization).
package enum MQTTTopic {
    @inlinable static var slash: UInt8 { UInt8(ascii: "/") }
    @inlinable static var plus: UInt8 { UInt8(ascii: "+") }
    @inlinable static var hash: UInt8 { UInt8(ascii: "#") }
    @inlinable static var dollar: UInt8 { UInt8(ascii: "$") }

    /// Whether `name` can be published to: non-empty, at most 65,535 UTF-8 bytes, no `+`, `#` or U+0000.
    package static func isValidTopicName(_ name: String) -> Bool {
        let utf8 = name.utf8
        guard !utf8.isEmpty, utf8.count <= MQTTWire.maximumTwoByteLength else { return false }
        return !utf8.contains { $0 == plus || $0 == hash || $0 == 0 }
    }

    /// Whether `filter` can be subscribed to: non-empty, at most 65,535 UTF-8 bytes, no U+0000,
    /// `#` only as the whole last level and `+` only as a whole level.
    /// (A shared subscription `$share/group/filter` is a valid filter too; interpreting it is the server's business.)
    /// The parts of a shared subscription's filter, `$share/{ShareName}/{filter}` (MQTT 5 §4.8.2): `nil`
    /// for a filter that is not one. The share name must be non-empty without `/`, `+` or `#`, and the
    /// filter after it valid [MQTT-4.8.2-1, -2]; otherwise `.invalid`.
    package static func sharedSubscription(_ filter: String) -> SharedFilter? {
        guard filter.hasPrefix("$share/") else { return nil }
        let rest = filter.dropFirst("$share/".count)
        guard let slash = rest.firstIndex(of: "/") else { return .invalid }
        let name = rest[..<slash]
        let topicFilter = String(rest[rest.index(after: slash)...])
        guard !name.isEmpty, !name.contains("+"), !name.contains("#"), isValidFilter(topicFilter) else { return .invalid }
        return .valid(shareName: String(name), filter: topicFilter)
    }

    /// What ``sharedSubscription(_:)`` found.
    package enum SharedFilter: Sendable, Equatable {
        case valid(shareName: String, filter: String)
        case invalid
    }

    package static func isValidFilter(_ filter: String) -> Bool {
        let utf8 = filter.utf8
        guard !utf8.isEmpty, utf8.count <= MQTTWire.maximumTwoByteLength else { return false }
        var previous = slash
        var afterHash = false
        for byte in utf8 {
            if afterHash { return false }
            switch byte {
            case 0: return false
            case plus, hash:
                if previous != slash { return false }
                afterHash = byte == hash
            case slash:
                break
            default:
                if previous == plus { return false }
            }
            previous = byte
        }
        return true
    }

    /// Whether `topic` matches `filter`: `+` matches exactly one level, `#` its level and all below, including the
    /// parent (`a/#` matches `a`); a filter starting with a wildcard does not match a topic starting with `$`.
    /// Levels compare as bytes and may be empty (`a//b` has three levels). An invalid filter or topic matches nothing.
    package static func matches(filter: String, topic: String) -> Bool {
        var filter = filter
        var topic = topic
        return filter.withUTF8 { filterBytes in
            topic.withUTF8 { topicBytes in matches(filter: filterBytes, topic: topicBytes) }
        }
    }

    static func matches(filter: UnsafeBufferPointer<UInt8>, topic: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !filter.isEmpty, !topic.isEmpty, !topic.contains(where: { $0 == plus || $0 == hash }) else { return false }
        if topic[0] == dollar && (filter[0] == plus || filter[0] == hash) { return false }
        var filterIndex = 0
        var topicIndex = 0
        while true {
            // The filter level is filter[filterIndex..<filterEnd], the topic level topic[topicIndex..<topicEnd].
            var filterEnd = filterIndex
            while filterEnd < filter.count && filter[filterEnd] != slash { filterEnd += 1 }
            let isSingleByte = filterEnd - filterIndex == 1
            if isSingleByte && filter[filterIndex] == hash { return filterEnd == filter.count }
            var topicEnd = topicIndex
            while topicEnd < topic.count && topic[topicEnd] != slash { topicEnd += 1 }
            if !(isSingleByte && filter[filterIndex] == plus) {
                guard filterEnd - filterIndex == topicEnd - topicIndex else { return false }
                var offset = 0
                while filterIndex + offset < filterEnd {
                    let byte = filter[filterIndex + offset]
                    if byte != topic[topicIndex + offset] || byte == plus || byte == hash { return false }
                    offset += 1
                }
            }
            let filterDone = filterEnd == filter.count
            let topicDone = topicEnd == topic.count
            if filterDone { return topicDone }
            filterIndex = filterEnd + 1
            if topicDone {
                // Only a final "#" matches the parent level.
                return filter.count - filterIndex == 1 && filter[filterIndex] == hash
            }
            topicIndex = topicEnd + 1
        }
    }
}
