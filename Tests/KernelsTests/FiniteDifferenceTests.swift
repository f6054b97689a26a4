import Kernels
import TestSupport
import Testing

/// Tier 1 (house-style §6): every backward against central differences of `L = Σ R ⊙ f(x)` with a
/// seeded random upstream `R` (drawn inside `expectGradient`), every coordinate of these small
/// inputs. Each backward starts from zeros here; accumulation has its own suite.
@Suite("Finite differences")
struct FiniteDifferenceTests {
    // MARK: Linear — input, weight and bias

    @Test func linearWithRespectToInputWeightAndBias() {
        let (rows, inF, outF) = (5, 4, 3)
        let (x, w, b) = linearInputs(rows: rows, inF: inF, outF: outF, seed: 21)

        expectGradient(at: x, name: "linear dX") { x in
            linear(x: x, w: w, b: b, rows: rows, inF: inF, outF: outF)
        } backward: { x, dy in
            var dx: [Float]? = zeros(x.count)
            var dw = zeros(w.count)
            var db: [Float]? = zeros(outF)
            linearBack(
                dy: dy, x: x, w: w, rows: rows, inF: inF, outF: outF, dx: &dx, dw: &dw, db: &db)
            return dx!
        }
        expectGradient(at: w, name: "linear dW") { w in
            linear(x: x, w: w, b: b, rows: rows, inF: inF, outF: outF)
        } backward: { w, dy in
            var dx: [Float]? = nil
            var dw = zeros(w.count)
            var db: [Float]? = nil
            linearBack(
                dy: dy, x: x, w: w, rows: rows, inF: inF, outF: outF, dx: &dx, dw: &dw, db: &db)
            return dw
        }
        expectGradient(at: b, name: "linear db") { b in
            linear(x: x, w: w, b: b, rows: rows, inF: inF, outF: outF)
        } backward: { _, dy in
            var dx: [Float]? = nil
            var dw = zeros(w.count)
            var db: [Float]? = zeros(outF)
            linearBack(
                dy: dy, x: x, w: w, rows: rows, inF: inF, outF: outF, dx: &dx, dw: &dw, db: &db)
            return db!
        }
    }

    // MARK: LayerNorm — input, weight and bias

    @Test(arguments: [(rows: 3, cols: 8), (rows: 1, cols: 2), (rows: 4, cols: 33)])
    func layerNorm(_ s: (rows: Int, cols: Int)) {
        var rng = SeededRNG(seed: 22)
        let x = layerNormInput(rows: s.rows, cols: s.cols, rng: &rng)
        let w = rng.uniformFloats(count: s.cols, in: 0.5...1.5)
        let b = rng.uniformFloats(count: s.cols)
        func forward(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
            KernelsTests.layerNorm(x: x, w: w, b: b, rows: s.rows, cols: s.cols).y
        }
        func backward(_ x: [Float], _ w: [Float], _ dy: [Float]) -> (
            dx: [Float], dw: [Float], db: [Float]
        ) {
            var (dx, dw, db) = (zeros(x.count), zeros(s.cols), zeros(s.cols))
            layerNormBack(dy: dy, x: x, w: w, rows: s.rows, cols: s.cols, dx: &dx, dw: &dw, db: &db)
            return (dx, dw, db)
        }
        expectGradient(at: x, name: "layernorm dx \(s)") {
            forward($0, w, b)
        } backward: {
            backward($0, w, $1).dx
        }
        expectGradient(at: w, name: "layernorm dweight \(s)") {
            forward(x, $0, b)
        } backward: {
            backward(x, $0, $1).dw
        }
        expectGradient(at: b, name: "layernorm dbias \(s)") {
            forward(x, w, $0)
        } backward: { _, dy in
            backward(x, w, dy).db
        }
    }

    // MARK: GELU

    @Test func gelu() {
        var rng = SeededRNG(seed: 23)
        let x = rng.uniformFloats(count: 40, in: -4...4)
        expectGradient(at: x, name: "gelu dx") {
            KernelsTests.gelu($0)
        } backward: { x, dy in
            var dx = zeros(x.count)
            geluBack(dy: dy, x: x, dx: &dx)
            return dx
        }
    }

    // MARK: Softmax with a mask

    /// Differentiates with respect to the unmasked logits only (a `-inf` entry cannot be
    /// perturbed); the masked entries' gradient must be exactly zero.
    @Test func maskedSoftmax() {
        let (rows, cols) = (4, 9)
        var rng = SeededRNG(seed: 24)
        let z = maskedLogits(rows: rows, cols: cols, rng: &rng)
        let open = z.indices.filter { z[$0] != -.infinity }
        #expect(open.count < z.count, "the recipe should mask something")
        func scatter(_ values: [Float]) -> [Float] {
            var full = [Float](repeating: -.infinity, count: z.count)
            for (i, v) in zip(open, values) { full[i] = v }
            return full
        }
        expectGradient(at: open.map { z[$0] }, name: "masked softmax dlogits") { values in
            softmax(scatter(values), rows: rows, cols: cols)
        } backward: { values, dp in
            var dz = zeros(z.count)
            softmaxBack(dp: dp, z: scatter(values), rows: rows, cols: cols, dz: &dz)
            for i in z.indices where z[i] == -.infinity {
                #expect(dz[i] == 0, "masked entry \(i) got \(dz[i])")
            }
            return open.map { dz[$0] }
        }
    }

    // MARK: Cross-entropy with and without smoothing, one ignored row

    /// f = mean loss over counted rows; the random upstream multiplies it, so the backward's
    /// `scale` is `R / counted`. The ignored row's numeric gradient is 0, so a backward that
    /// touched it would fail too.
    @Test(arguments: [Float(0), 0.1])
    func crossEntropy(_ smoothing: Float) {
        let (rows, classes) = (5, 7)
        var rng = SeededRNG(seed: 25)
        let z = rng.gaussianFloats(count: rows * classes, std: 2)
        var targets = rng.integers(count: rows, below: classes)
        targets[3] = -1
        let counted = Float(rows - 1)
        expectGradient(at: z, name: "cross-entropy dlogits ε \(smoothing)") { z in
            [
                Float(
                    KernelsTests.crossEntropy(
                        z, targets: targets, rows: rows, classes: classes, smoothing: smoothing
                    ).mean)
            ]
        } backward: { z, upstream in
            var dz = zeros(z.count)
            crossEntropyBack(
                z, targets: targets, rows: rows, classes: classes, smoothing: smoothing,
                scale: upstream[0] / counted, dz: &dz)
            return dz
        }
        // The same gradient through the Double scalar-loss entry point (no Float rounding of L).
        var dz = zeros(z.count)
        crossEntropyBack(
            z, targets: targets, rows: rows, classes: classes, smoothing: smoothing,
            scale: 1 / counted, dz: &dz)
        expectGradient(
            ofScalar: {
                KernelsTests.crossEntropy(
                    $0, targets: targets, rows: rows, classes: classes, smoothing: smoothing
                ).mean
            },
            at: z, analytic: dz, name: "cross-entropy scalar ε \(smoothing)")
    }

    // MARK: L2 normalisation (and cosine similarity through it)

    @Test func l2Normalize() {
        let (rows, cols) = (4, 6)
        var rng = SeededRNG(seed: 26)
        let x = rng.gaussianFloats(count: rows * cols, std: 2)
        expectGradient(at: x, name: "l2normalize dx") {
            KernelsTests.l2Normalize($0, rows: rows, cols: cols).y
        } backward: { x, dy in
            var dx = zeros(x.count)
            l2NormalizeBack(dy: dy, x: x, rows: rows, cols: cols, dx: &dx)
            return dx
        }
    }

    /// Cosine similarity `Û·V̂ᵀ` composed from l2normalize and gemm, as the objective uses it.
    @Test func cosineSimilarity() {
        let (n, m, d) = (3, 4, 5)
        var rng = SeededRNG(seed: 27)
        let u = rng.gaussianFloats(count: n * d)
        let v = rng.gaussianFloats(count: m * d)
        expectGradient(at: u, name: "cosine du") {
            cosine($0, v, n: n, m: m, d: d).sim
        } backward: { u, ds in
            cosineBack(u, v, ds, n: n, m: m, d: d).du
        }
        expectGradient(at: v, name: "cosine dv") {
            cosine(u, $0, n: n, m: m, d: d).sim
        } backward: { v, ds in
            cosineBack(u, v, ds, n: n, m: m, d: d).dv
        }
    }
}

func zeros(_ count: Int) -> [Float] { [Float](repeating: 0, count: count) }

/// `sim[i, j] = cos(u_i, v_j)` for `u [n, d]`, `v [m, d]`: normalise rows, then `Û · V̂ᵀ`.
func cosine(_ u: [Float], _ v: [Float], n: Int, m: Int, d: Int) -> (
    sim: [Float], uHat: [Float], vHat: [Float]
) {
    let uHat = l2Normalize(u, rows: n, cols: d).y
    let vHat = l2Normalize(v, rows: m, cols: d).y
    var sim = zeros(n * m)
    gemm(
        transposeA: false, transposeB: true, m: n, n: m, k: d, a: uHat, lda: d, b: vHat, ldb: d,
        beta: 0, c: &sim, ldc: m)
    return (sim, uHat, vHat)
}

/// Backward of `cosine`: `dÛ = dS·V̂`, `dV̂ = dSᵀ·Û`, then through each normalisation.
func cosineBack(_ u: [Float], _ v: [Float], _ dSim: [Float], n: Int, m: Int, d: Int) -> (
    du: [Float], dv: [Float]
) {
    let f = cosine(u, v, n: n, m: m, d: d)
    var dUHat = zeros(n * d)
    var dVHat = zeros(m * d)
    gemm(
        transposeA: false, transposeB: false, m: n, n: d, k: m, a: dSim, lda: m, b: f.vHat, ldb: d,
        beta: 0, c: &dUHat, ldc: d)
    gemm(
        transposeA: true, transposeB: false, m: m, n: d, k: n, a: dSim, lda: m, b: f.uHat, ldb: d,
        beta: 0, c: &dVHat, ldc: d)
    var du = zeros(u.count)
    var dv = zeros(v.count)
    l2NormalizeBack(dy: dUHat, x: u, rows: n, cols: d, dx: &du)
    l2NormalizeBack(dy: dVHat, x: v, rows: m, cols: d, dx: &dv)
    return (du, dv)
}
