import MicrolithJSON
import MicrolithMQTT
import MicrolithTestSupport
import NIOCore
import Testing

@Suite("MQTTPacketDecoder: fuzzing")
struct MQTTPacketDecoderFuzzTests {
    /// What decoding a byte string produced: the packets, then an error or a need for more bytes.
    struct Outcome: Equatable {
        var packets: [MQTTPacket] = []
        var error: MQTTCodecError?
    }

    static let reasonCodes: Set<UInt8> = [0x81, 0x82, 0x84, 0x95]

    /// Valid packets to mutate, each with the version its decoder starts with (nil before CONNECT).
    static var seeds: [(MQTTProtocolVersion?, [UInt8])] {
        var seeds: [(MQTTProtocolVersion?, [UInt8])] = []
        for version in [MQTTProtocolVersion.v3_1_1, .v5] {
            for packet in MQTTPacketSamples.all(version) {
                let bytes = encodedBytes(packet, version)
                if case .connect = packet { seeds.append((nil, bytes)) }
                seeds.append((version, bytes))
            }
        }
        return seeds
    }

    static func mutate(_ input: [UInt8], using random: inout SplitMix64) -> [UInt8] {
        var bytes = input
        switch Int.random(in: 0..<7, using: &random) {
        case 0:  // truncate
            bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &random)))
        case 1:  // replace a few bytes
            for _ in 0..<Int.random(in: 1...4, using: &random) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
        case 2:  // flip a few bits
            for _ in 0..<Int.random(in: 1...3, using: &random) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= 1 << UInt8.random(in: 0...7, using: &random)
            }
        case 3:  // a random remaining length
            let lengthBytes = (0..<Int.random(in: 1...5, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            var end = 1
            while end < bytes.count && bytes[end] & 0x80 != 0 { end += 1 }
            bytes = [bytes.first ?? 0x30] + lengthBytes + Array(bytes.dropFirst(min(end + 1, bytes.count)))
        case 4:  // a random two-byte length somewhere in the body
            if bytes.count > 3 {
                let at = Int.random(in: 2..<(bytes.count - 1), using: &random)
                bytes[at] = UInt8.random(in: 0...255, using: &random)
                bytes[at + 1] = UInt8.random(in: 0...255, using: &random)
            }
        case 5:  // insert or delete bytes
            let at = Int.random(in: 0...bytes.count, using: &random)
            if Bool.random(using: &random) || at == bytes.count {
                bytes.insert(contentsOf: (0..<Int.random(in: 1...8, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }, at: at)
            } else {
                bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...8, using: &random)))
            }
        default:  // random bytes after a plausible first byte
            let length = Int.random(in: 0...48, using: &random)
            bytes = [bytes.first ?? 0] + (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
        }
        return bytes
    }

    /// Decodes everything in `bytes`, fed in chunks of the given sizes (all at once when empty), checking as it goes
    /// that every decoded packet consumed bytes and re-encodes to itself. Problems are appended to `failures`.
    static func decodeAll(
        _ bytes: [UInt8],
        version: MQTTProtocolVersion?,
        maximumPacketSize: Int,
        chunkSizes: [Int],
        failures: inout [String]
    ) -> Outcome {
        var decoder = MQTTPacketDecoder(maximumPacketSize: maximumPacketSize, version: version)
        var input = ByteBuffer()
        var outcome = Outcome()
        var offset = 0
        var chunk = 0
        var steps = 0
        while true {
            let size = chunkSizes.isEmpty ? bytes.count : chunkSizes[chunk % chunkSizes.count]
            chunk += 1
            let end = min(bytes.count, offset + size)
            input.writeBytes(bytes[offset..<end])
            offset = end
            do {
                while true {
                    steps += 1
                    if steps > bytes.count + chunk + 2 {
                        failures.append("too many steps for \(bytes)")
                        return outcome
                    }
                    let before = input.readableBytes
                    let versionBefore = decoder.version
                    guard let packet = try decoder.decode(&input) else {
                        if input.readableBytes != before { failures.append("nil moved the buffer for \(bytes)") }
                        break
                    }
                    if before - input.readableBytes < 2 { failures.append("a packet consumed under 2 bytes in \(bytes)") }
                    outcome.packets.append(packet)
                    checkReencoding(packet, versionBefore: versionBefore, failures: &failures)
                }
            } catch {
                if !reasonCodes.contains(error.reasonCode) || error.message.isEmpty { failures.append("odd error \(error)") }
                outcome.error = error
                return outcome
            }
            if offset == bytes.count { return outcome }
        }
    }

    static func checkReencoding(_ packet: MQTTPacket, versionBefore: MQTTProtocolVersion?, failures: inout [String]) {
        let version: MQTTProtocolVersion
        if case .connect(let connect) = packet {
            version = connect.version
        } else if let versionBefore {
            version = versionBefore
        } else {
            return  // a CONNACK whose version was inferred
        }
        var decoder = MQTTPacketDecoder(maximumPacketSize: Int.max, version: version)
        var bytes = packet.encoded(version: version)
        do {
            let again = try decoder.decode(&bytes)
            if again != packet || bytes.readableBytes != 0 { failures.append("\(packet) re-encoded differently") }
        } catch {
            failures.append("\(packet) re-encoded into an error: \(error)")
        }
    }

    @Test(.timeLimit(.minutes(30)))
    func mutatedPacketsOnlyDecodeOrThrow() {
        var random = SplitMix64(seed: 0x4D51_5454)
        let seeds = Self.seeds
        var failures: [String] = []
        var decodedPackets = 0
        var errors = 0
        let inputs = FuzzBudget.inputs(default: 5000)
        for _ in 0..<inputs {
            let (version, seed) = seeds[Int.random(in: 0..<seeds.count, using: &random)]
            var bytes = Self.mutate(seed, using: &random)
            if Int.random(in: 0..<4, using: &random) == 0 {
                bytes += Self.mutate(seeds[Int.random(in: 0..<seeds.count, using: &random)].1, using: &random)
            }
            let maximumPacketSize = [1 << 20, 64, 8, Int.max][Int.random(in: 0..<4, using: &random)]
            let whole = Self.decodeAll(bytes, version: version, maximumPacketSize: maximumPacketSize, chunkSizes: [], failures: &failures)
            let chunkSizes = (0..<3).map { _ in Int.random(in: 1...7, using: &random) }
            let chunked = Self.decodeAll(
                bytes,
                version: version,
                maximumPacketSize: maximumPacketSize,
                chunkSizes: chunkSizes,
                failures: &failures
            )
            if whole != chunked { failures.append("chunking \(chunkSizes) changed the outcome for \(bytes)") }
            decodedPackets += whole.packets.count
            if whole.error != nil { errors += 1 }
            if failures.count > 20 { break }
        }
        FuzzBudget.report("mqtt", inputs: inputs, accepted: inputs - errors, refused: errors, failures: failures.count)
        #expect(failures.isEmpty, "\(failures.count) failures, first: \(failures.prefix(3))")
        // The mutations reach both outcomes.
        #expect(decodedPackets > inputs / 10)
        #expect(errors > inputs / 10)
    }

    @Test(.timeLimit(.minutes(10)))
    func randomBytesOnlyDecodeOrThrow() {
        var random = SplitMix64(seed: 42)
        var failures: [String] = []
        var errors = 0
        let inputs = FuzzBudget.inputs(default: 3000)
        for iteration in 0..<inputs {
            let length = Int.random(in: 0...64, using: &random)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let versions: [MQTTProtocolVersion?] = [nil, .v3_1_1, .v5]
            let outcome = Self.decodeAll(
                bytes,
                version: versions[iteration % 3],
                maximumPacketSize: Int.max,
                chunkSizes: [],
                failures: &failures
            )
            if outcome.error != nil { errors += 1 }
            if failures.count > 20 { break }
        }
        FuzzBudget.report("mqtt-random", inputs: inputs, accepted: inputs - errors, refused: errors, failures: failures.count)
        #expect(failures.isEmpty, "\(failures.count) failures, first: \(failures.prefix(3))")
    }

    @Test func aHugeDeclaredLengthWaitsWithoutAllocating() throws {
        var decoder = MQTTPacketDecoder(maximumPacketSize: Int.max, version: .v5)
        var input = ByteBuffer(bytes: [0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01])
        #expect(try decoder.decode(&input) == nil)
        #expect(input.readableBytes == 7)
    }
}
