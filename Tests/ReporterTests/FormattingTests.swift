import Testing

@testable import Reporter

/// The report's numbers are the same text on every machine; a table that shows `-0.000` beside
/// `0.000` reads as a sign where there is none.
@Suite struct FormattingTests {
    @Test("a value that rounds to zero is written 0.000 whatever its sign; differences carry theirs")
    func signsAroundZero() {
        #expect(fixed(-0.0004) == "0.000")
        #expect(fixed(-0.0) == "0.000")
        #expect(fixed(-0.0006) == "-0.001")
        #expect(fixed(-0.00004, 4) == "0.0000")
        #expect(signed(-0.0004) == "0.000")
        #expect(signed(0.0004) == "0.000")
        #expect(signed(0.0006) == "+0.001")
        #expect(signed(-0.02) == "-0.020")
        #expect(fixed(.nan) == "n/a" && fixed(.infinity) == "inf" && fixed(-.infinity) == "-inf")
        #expect(cell("dense|moe") == "dense\\|moe")
    }
}
