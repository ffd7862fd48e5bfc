import MicrolithMQTT
import Testing

@Suite("MQTTTopic: validation and matching")
struct MQTTTopicTests {
    static let topicNames: [(String, Bool)] = [
        ("a", true), ("a/b", true), ("/", true), ("a//b", true), ("/a/", true), ("$SYS/broker", true), (" ", true),
        ("ü/€/😀", true), (String(repeating: "a", count: 65_535), true),
        ("", false), ("a/+", false), ("+", false), ("#", false), ("a/#", false), ("a+b", false), ("a#", false),
        ("a\u{0}b", false), (String(repeating: "a", count: 65_536), false),
    ]

    @Test(arguments: topicNames)
    func topicName(_ name: String, _ valid: Bool) {
        #expect(MQTTTopic.isValidTopicName(name) == valid)
    }

    static let filters: [(String, Bool)] = [
        ("#", true), ("+", true), ("a/#", true), ("a/+/b", true), ("+/+", true), ("/#", true), ("a//b", true), ("+/#", true),
        ("$SYS/#", true), ("/", true), ("//", true), ("+//+", true), ("a/b/", true), ("$share/group/a/+", true), ("ü/+", true),
        ("", false), ("a#", false), ("a/#/b", false), ("#/", false), ("##", false), ("a/b+", false), ("a+/b", false),
        ("+a", false), ("a/#/", false), ("++", false), ("#/#", false), ("\u{0}", false), ("a/\u{0}/#", false),
        (String(repeating: "a", count: 65_536), false),
    ]

    @Test(arguments: filters)
    func filter(_ filter: String, _ valid: Bool) {
        #expect(MQTTTopic.isValidFilter(filter) == valid)
    }

    static let matches: [(String, String, Bool)] = [
        ("a/b", "a/b", true), ("a/b", "a/c", false), ("a/b", "a/b/c", false), ("a/b/c", "a/b", false), ("A", "a", false),
        ("a/+", "a/b", true), ("a/+", "a/b/c", false), ("a/+", "a", false), ("a/+", "a/", true), ("+/b", "a/b", true),
        ("a/#", "a", true), ("a/#", "a/b", true), ("a/#", "a/b/c", true), ("a/#", "ab", false), ("a/#", "b/a", false),
        ("a/b/#", "a/b", true), ("a/b/#", "a", false), ("a/b/#", "a/b/", true), ("a/+/#", "a/b", true), ("a/+/#", "a", false),
        ("#", "a", true), ("#", "a/b/c", true), ("#", "/", true), ("#", "/a", true),
        ("+/+", "a/b", true), ("+/+", "a", false), ("+/+", "/a", true), ("+/+", "a/", true), ("+/+", "/", true),
        ("+/+", "a/b/c", false), ("+", "/", false), ("+", "a", true), ("/+", "/a", true), ("/+", "a", false),
        ("a//b", "a//b", true), ("a/+/b", "a//b", true), ("a//b", "a/b", false), ("a/b", "a//b", false), ("+/+/+", "a//b", true),
        ("/#", "/", true), ("/#", "a", false),
        // Wildcards at the first level do not match "$" topics.
        ("#", "$SYS/x", false), ("+/x", "$SYS/x", false), ("+", "$SYS", false), ("+/#", "$SYS", false),
        ("$SYS/#", "$SYS/x", true), ("$SYS/+", "$SYS/x", true), ("$SYS/#", "$SYS", true), ("$SYS", "$SYS", true),
        ("a/#", "a/$x", true), ("a/+", "a/$x", true), ("#", "a$", true),
        // Bytes, not canonical equivalence.
        ("\u{E9}", "e\u{301}", false), ("e\u{301}", "e\u{301}", true), ("ü/+", "ü/x", true),
        // Invalid filters and topics match nothing.
        ("a/#/b", "a/x/b", false), ("a/b#", "a/b#", false), ("a+", "a+", false), ("a/+", "a/+", false), ("#", "a/#", false),
        ("", "a", false), ("a", "", false), ("#", "", false),
    ]

    @Test(arguments: matches)
    func matching(_ filter: String, _ topic: String, _ expected: Bool) {
        #expect(MQTTTopic.matches(filter: filter, topic: topic) == expected)
    }

    @Test func bridgedAndSubstringBackedStrings() {
        let topic = String("xx/a/b".dropFirst(3))
        #expect(MQTTTopic.matches(filter: "a/+", topic: topic))
    }
}
