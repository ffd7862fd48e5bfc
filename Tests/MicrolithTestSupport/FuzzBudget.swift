#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How many inputs a seeded fuzz test tries, and the line it prints about them.
///
/// The test command runs each fuzz test with its own small default; `Benchmarks/fuzz/run` sets
/// `MICROLITH_FUZZ_INPUTS` (a million by default) for the long run and reads the printed lines.
public enum FuzzBudget {
    /// `MICROLITH_FUZZ_INPUTS` when it is set to a positive number, otherwise `count`.
    public static func inputs(default count: Int) -> Int {
        guard let text = getenv("MICROLITH_FUZZ_INPUTS"), let n = Int(String(cString: text)), n > 0 else { return count }
        return n
    }

    /// Prints `fuzz <target>: <inputs> inputs, <accepted> accepted, <refused> refused, <failures> failures`.
    public static func report(_ target: String, inputs: Int, accepted: Int, refused: Int, failures: Int) {
        print("fuzz \(target): \(inputs) inputs, \(accepted) accepted, \(refused) refused, \(failures) failures")
    }
}
