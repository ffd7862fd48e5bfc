import Testing

@testable import MicrolithRuntime

/// The scrape-time families are valid Prometheus text: escaped label values, integral numbers
/// without a fraction, cumulative histogram buckets ending in `+Inf`, `_sum` and `_count`.
@Suite struct PrometheusTextTests {
    @Test func labelValuesAreEscapedAndWholeNumbersHaveNoFraction() {
        var text = PrometheusText()
        text.family("x_total", .counter, "Some things", [([("name", "a\"b\\c\nd")], 3), ([], 0.25)])
        #expect(
            text.text == """
                # HELP x_total Some things
                # TYPE x_total counter
                x_total{name="a\\"b\\\\c\\nd"} 3
                x_total 0.25

                """)
    }

    @Test func histogramBucketsAreCumulative() {
        var text = PrometheusText()
        text.histogram("h", "Sizes", bounds: [1, 10], [([("db", "data")], [2, 3, 1], 40)])
        #expect(
            text.text == """
                # HELP h Sizes
                # TYPE h histogram
                h_bucket{db="data",le="1"} 2
                h_bucket{db="data",le="10"} 5
                h_bucket{db="data",le="+Inf"} 6
                h_sum{db="data"} 40
                h_count{db="data"} 6

                """)
    }
}
