/// Metric families written in the Prometheus text format (version 0.0.4), for figures read at
/// scrape time from counters the runtime keeps anyway.
struct PrometheusText {
    enum Kind: String {
        case counter, gauge, histogram
    }

    private(set) var text = ""

    /// A family of one sample per label set.
    mutating func family(_ name: String, _ kind: Kind, _ help: String, _ samples: [(labels: [(String, String)], value: Double)]) {
        header(name, kind, help)
        for sample in samples { line(name, sample.labels, sample.value) }
    }

    /// A family of one sample without labels.
    mutating func single(_ name: String, _ kind: Kind, _ help: String, _ value: Double) {
        family(name, kind, help, [([], value)])
    }

    /// A histogram family: per label set, per-bucket (not cumulative) counts for `bounds` (the
    /// last count is above the highest bound), and the sum of the observations.
    mutating func histogram(
        _ name: String, _ help: String, bounds: [Double], _ series: [(labels: [(String, String)], buckets: [UInt64], sum: Double)]
    ) {
        header(name, .histogram, help)
        for s in series {
            var cumulative: UInt64 = 0
            for (i, bound) in bounds.enumerated() {
                cumulative &+= s.buckets[i]
                line(name + "_bucket", s.labels + [("le", Self.number(bound))], Double(cumulative))
            }
            cumulative &+= s.buckets[bounds.count]
            line(name + "_bucket", s.labels + [("le", "+Inf")], Double(cumulative))
            line(name + "_sum", s.labels, s.sum)
            line(name + "_count", s.labels, Double(cumulative))
        }
    }

    private mutating func header(_ name: String, _ kind: Kind, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
    }

    private mutating func line(_ name: String, _ labels: [(String, String)], _ value: Double) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += " \(Self.number(value))\n"
    }

    /// A label value with `\`, `"` and line feeds escaped.
    static func escape(_ value: String) -> String {
        var out = ""
        for c in value {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    /// A value as Prometheus writes it: integers without a fraction.
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
