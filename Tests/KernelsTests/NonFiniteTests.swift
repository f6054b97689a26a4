import Kernels
import Testing

/// `firstNonFinite` against the scalar definition: every position (SIMD body and tail), every kind
/// of non-finite value, and the finite extremes that share bits with them.
@Suite("First non-finite value")
struct NonFiniteTests {
    static func scan(_ values: [Float]) -> Int? { values.withUnsafeBufferPointer { firstNonFinite($0) } }

    @Test("finds NaN, +∞ and −∞ at every position of 1...20 values, and around 256-value blocks, the first of two")
    func finds() {
        for count in Array(1...20) + [530] {
            for position in 0..<count where count < 100 || position % 256 < 9 || position % 256 > 247 || position > 520 {
                for bad in [Float.nan, -Float.nan, Float.infinity, -Float.infinity, Float(bitPattern: 0x7fc0_0001)] {
                    var values = (0..<count).map { Float($0) - 3.5 }
                    values[position] = bad
                    if position + 2 < count { values[position + 2] = .nan }
                    #expect(Self.scan(values) == position, "\(count) values, \(bad) at \(position)")
                }
            }
        }
    }

    @Test("skipping ranges: finds the first non-finite value outside them, none inside them")
    func skipping() {
        var values = (0..<600).map { Float($0) - 3.5 }
        let skipped = [0..<3, 10..<10, 40..<300, 590..<600]
        func scan() -> Int? { values.withUnsafeBufferPointer { firstNonFinite($0, skipping: skipped) } }
        #expect(scan() == nil)
        for inside in [0, 2, 40, 299, 590, 599] { values[inside] = .nan }
        #expect(scan() == nil, "non-finite values only inside skipped ranges")
        for outside in [599 - 10, 300, 39, 10, 3] {
            values[outside] = .infinity
            #expect(scan() == outside, "first outside at \(outside)")
        }
        // After the last skipped range, when it ends before the values do.
        var tail = [Float](repeating: 0, count: 50)
        tail[45] = .nan
        tail[10] = .nan
        #expect(tail.withUnsafeBufferPointer { firstNonFinite($0, skipping: [0..<3, 5..<40]) } == 45)
    }

    @Test("finite extremes, signed zeros and subnormals are finite")
    func finite() {
        let extremes: [Float] = [
            .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
            .leastNormalMagnitude, 0, -0, 1, -1,
        ]
        for count in [0, 1, 7, 8, 9, 17, 256, 600] {
            let values = (0..<count).map { extremes[$0 % extremes.count] }
            #expect(Self.scan(values) == nil, "\(count) values")
        }
    }
}

/// `isAllZero` against the scalar definition: ±0 count as zero; any other value, anywhere (SIMD body,
/// block boundary, tail), does not.
@Suite("All-zero scan")
struct AllZeroTests {
    static func scan(_ values: [Float]) -> Bool { values.withUnsafeBufferPointer { isAllZero($0) } }

    @Test("zeros of either sign are all zero; one other value anywhere is not")
    func scans() {
        for count in Array(0...20) + [255, 256, 257, 530] {
            let zeros = (0..<count).map { $0 % 2 == 0 ? Float(0) : -Float(0) }
            #expect(Self.scan(zeros), "\(count) zeros")
            for position in 0..<count where count < 100 || position % 256 < 9 || position % 256 > 247 || position > 520 {
                for value in [Float.leastNonzeroMagnitude, -1, .nan, .infinity] {
                    var values = zeros
                    values[position] = value
                    #expect(!Self.scan(values), "\(count) values, \(value) at \(position)")
                }
            }
        }
    }
}

/// Non-finite weights must reach the loss, where the trainer and the probe name them: the softmax
/// turns a row holding a NaN into NaN instead of stopping the process (a NaN used to leave the row's
/// maximum at −∞ and trip the fully-masked check), and so a row whose every score overflowed to −∞
/// (a damaged checkpoint's 1e38 weight, found by flipping checkpoint bytes: it trapped).
@Suite("Softmax of non-finite logits")
struct SoftmaxNonFiniteTests {
    @Test("a NaN logit, or no logit above −∞, makes its row NaN and leaves the other rows alone")
    func nanPropagates() {
        let rows = 4
        let cols = 4
        for naive in [false, true] {
            // Row 0: all NaN; row 1: one NaN beside a masked entry; row 2: finite with a masked
            // entry; row 3: every score −∞.
            let logits: [Float] = [
                .nan, .nan, .nan, .nan, 1, -.infinity, .nan, 2, 0.5, -.infinity, 1.5, -1,
                -.infinity, -.infinity, -.infinity, -.infinity,
            ]
            var probs = [Float](repeating: 0, count: rows * cols)
            logits.withUnsafeBufferPointer { z in
                probs.withUnsafeMutableBufferPointer { p in
                    if naive {
                        softmaxForwardNaive(probs: p.baseAddress!, logits: z.baseAddress!, rows: rows, cols: cols)
                    } else {
                        softmaxForward(probs: p.baseAddress!, logits: z.baseAddress!, rows: rows, cols: cols)
                    }
                }
            }
            let nanRows = probs[0..<8].allSatisfy { $0.isNaN } && probs[12..<16].allSatisfy { $0.isNaN }
            let finiteRow = probs[8..<12].allSatisfy { $0.isFinite } && probs[9] == 0
            #expect(nanRows, "naive \(naive): \(probs)")
            #expect(finiteRow, "naive \(naive): \(probs)")
            #expect(abs(probs[8..<12].reduce(0, +) - 1) < 1e-6, "naive \(naive): \(probs)")
        }
    }
}
