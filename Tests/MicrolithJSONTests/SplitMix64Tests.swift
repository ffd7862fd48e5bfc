import MicrolithJSON
import Testing

@Suite struct SplitMix64Tests {
    @Test func theSequenceIsTheReferenceOne() {
        // The first outputs of the reference implementation seeded with 0.
        var random = SplitMix64(seed: 0)
        #expect((0..<4).map { _ in random.next() } == [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F, 0xF88B_B8A8_724C_81EC])
    }

    @Test func oneSeedGivesOneSequence() {
        var a = SplitMix64(seed: 42)
        var b = SplitMix64(seed: 42)
        var c = SplitMix64(seed: 43)
        let first = (0..<8).map { _ in a.next() }
        #expect(first == (0..<8).map { _ in b.next() })
        #expect(first != (0..<8).map { _ in c.next() })
    }
}
