import Testing

@testable import MicrolithQuery

/// The bound on the query texts read connections keep prepared.
@Suite struct KeptStatementTextsTests {
    @Test func theFirstTextsAreKeptAndLaterOnesAreNot() {
        let kept = KeptStatementTexts(maximum: 3)
        #expect(["a", "b", "a", "c"].map(kept.admits) == [true, true, true, true])
        #expect(kept.count == 3)
        #expect(!kept.admits("d"), "no room: prepared per use")
        #expect(!kept.admits("d"))
        #expect(kept.admits("b"), "an admitted text stays admitted")
        #expect(kept.count == 3)
    }
}
