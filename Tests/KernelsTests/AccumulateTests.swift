import Kernels
import TestSupport
import Testing

/// The accumulate contract (house-style §3): every backward, fast and naive, ADDS into its
/// gradient buffers. Backward twice from zeros equals 2× once, and a backward into a non-zero
/// buffer equals that buffer plus a backward from zeros.
@Suite("Accumulate contract")
struct AccumulateTests {
    /// One backward call writing into named gradient buffers of fixed sizes.
    struct BackwardCase: Sendable, CustomStringConvertible {
        var description: String
        var sizes: [Int]
        var run: @Sendable (inout [[Float]]) -> Void
    }

    static let cases: [BackwardCase] = [false, true].flatMap { naive -> [BackwardCase] in
        let tag = naive ? "naive" : "fast"
        var rng = SeededRNG(seed: 41)
        let (rows, cols, outF) = (5, 7, 3)
        let x = layerNormInput(rows: rows, cols: cols, rng: &rng)
        let w = rng.uniformFloats(count: cols, in: 0.5...1.5)
        let lw = rng.gaussianFloats(count: outF * cols)
        let dyLinear = rng.gaussianFloats(count: rows * outF)
        let dy = rng.gaussianFloats(count: rows * cols)
        let z = maskedLogits(rows: rows, cols: cols, rng: &rng)
        let logits = rng.gaussianFloats(count: rows * cols, std: 2)
        let targets = [2, -1, 0, 6, 4]
        return [
            BackwardCase(description: "linear (\(tag))", sizes: [rows * cols, outF * cols, outF]) {
                g in
                var dx: [Float]? = g[0]
                var dw = g[1]
                var db: [Float]? = g[2]
                linearBack(
                    dy: dyLinear, x: x, w: lw, rows: rows, inF: cols, outF: outF, dx: &dx, dw: &dw,
                    db: &db, naive: naive)
                g = [dx!, dw, db!]
            },
            BackwardCase(description: "layernorm (\(tag))", sizes: [rows * cols, cols, cols]) { g in
                var (dx, dw, db) = (g[0], g[1], g[2])
                layerNormBack(
                    dy: dy, x: x, w: w, rows: rows, cols: cols, dx: &dx, dw: &dw, db: &db,
                    naive: naive)
                g = [dx, dw, db]
            },
            BackwardCase(description: "gelu (\(tag))", sizes: [rows * cols]) { g in
                geluBack(dy: dy, x: x, dx: &g[0], naive: naive)
            },
            BackwardCase(description: "masked softmax (\(tag))", sizes: [rows * cols]) { g in
                softmaxBack(dp: dy, z: z, rows: rows, cols: cols, dz: &g[0], naive: naive)
            },
            BackwardCase(description: "cross-entropy ε 0.1 (\(tag))", sizes: [rows * cols]) { g in
                crossEntropyBack(
                    logits, targets: targets, rows: rows, classes: cols, smoothing: 0.1,
                    scale: 0.25, dz: &g[0], naive: naive)
            },
            BackwardCase(description: "l2normalize (\(tag))", sizes: [rows * cols]) { g in
                l2NormalizeBack(dy: dy, x: x, rows: rows, cols: cols, dx: &g[0], naive: naive)
            },
        ]
    }

    @Test(arguments: cases)
    func twiceIsTwiceOnce(_ c: BackwardCase) {
        var once = c.sizes.map { zeros($0) }
        c.run(&once)
        var twice = c.sizes.map { zeros($0) }
        c.run(&twice)
        c.run(&twice)
        for (i, (t, o)) in zip(twice, once).enumerated() {
            #expect(o.contains { $0 != 0 }, "\(c) buffer \(i): one backward left it all zeros")
            expectClose(
                t, scaled(o, 2), tolerance: .accumulate, "\(c) buffer \(i): twice vs 2× once")
        }
    }

    @Test(arguments: cases)
    func addsOntoExistingGradient(_ c: BackwardCase) {
        var rng = SeededRNG(seed: 43)
        let start = c.sizes.map { rng.uniformFloats(count: $0, in: -3...3) }
        var once = c.sizes.map { zeros($0) }
        c.run(&once)
        var buffers = start
        c.run(&buffers)
        for i in buffers.indices {
            expectClose(
                buffers[i], adding(start[i], once[i]), tolerance: .accumulate,
                "\(c) buffer \(i): start + once")
        }
    }
}
