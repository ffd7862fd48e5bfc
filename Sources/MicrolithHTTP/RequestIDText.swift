import NIOCore
import Synchronization

/// Request ids for answers written in the event loop, in the form of Hummingbird's
/// `RequestID` (a random 64-bit number in hex, then a 16-digit hex counter started at a random
/// value), written straight into a buffer instead of built as a string per request.
enum RequestIDText {
    private static let prefix = String(UInt64.random(in: .min ... .max), radix: 16)
    private static let counter = Atomic<UInt64>(UInt64.random(in: .min ... .max))
    private static let digits: StaticString = "0123456789abcdef"

    /// Writes the next id into `out`.
    static func write(into out: inout ByteBuffer) {
        let value = counter.wrappingAdd(1, ordering: .relaxed).oldValue
        out.writeString(prefix)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: 16) { raw in
            let hex = digits.utf8Start
            for k in 0..<16 { raw[k] = hex[Int((value >> UInt64(60 - 4 * k)) & 0xF)] }
            return 16
        }
    }

}
