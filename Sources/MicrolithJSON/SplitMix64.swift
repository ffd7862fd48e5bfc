/// A small, fast, deterministic pseudo-random number generator (Steele, Lea and Flood's
/// SplitMix64): the same seed always gives the same sequence, on every platform.
///
/// For generated data and randomised tests that must repeat exactly (the storefront's catalogue,
/// fuzzing seeds), never for anything secret.
///
/// ```swift
/// var random = SplitMix64(seed: 42)
/// let roll = Int.random(in: 1...6, using: &random)
/// ```
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The generator's whole state: it advances by a fixed odd step on every draw.
    public var state: UInt64

    /// A generator starting from `seed`.
    public init(seed: UInt64) {
        state = seed
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
