import Foundation
import Kernels
import TestSupport
import Testing

/// Tier 2 (house-style §6): the Float32 kernels against PyTorch float64 on
/// `Fixtures/kernels.safetensors` (written by `Tests/UniPerceiverTests/Fixtures/make_fixtures.py`;
/// inputs F32, outputs F64) at `Tolerance.kernel`. A missing fixture fails the test with the
/// regenerate command; nothing here skips. Set `KERNELS_REPORT_ERRORS=1` to print each measured
/// max abs / rel error (for tightening the table).
@Suite("Golden values from PyTorch float64")
struct GoldenTests {
    static let fixtureVersion = ["fixture_version": "1"]

    @Test func layerNorm() throws {
        let f = try loadFixture("kernels.safetensors", requiredMetadata: Self.fixtureVersion)
        let x = try f.tensor("layernorm.x")
        let (rows, cols) = (x.shape[0], x.shape[1])
        let w = try f.floats("layernorm.weight")
        let b = try f.floats("layernorm.bias")
        let dy = try f.floats("layernorm.upstream")
        let forward = KernelsTests.layerNorm(x: x.data, w: w, b: b, rows: rows, cols: cols)
        check(Tensor(shape: x.shape, data: forward.y), try f.doubles("layernorm.y"), "layernorm.y")
        var (dx, dw, db) = (zeros(x.count), zeros(cols), zeros(cols))
        layerNormBack(dy: dy, x: x.data, w: w, rows: rows, cols: cols, dx: &dx, dw: &dw, db: &db)
        check(Tensor(shape: x.shape, data: dx), try f.doubles("layernorm.dx"), "layernorm.dx")
        check(
            Tensor(shape: [cols], data: dw), try f.doubles("layernorm.dweight"), "layernorm.dweight"
        )
        check(Tensor(shape: [cols], data: db), try f.doubles("layernorm.dbias"), "layernorm.dbias")
    }

    @Test func gelu() throws {
        let f = try loadFixture("kernels.safetensors", requiredMetadata: Self.fixtureVersion)
        let x = try f.tensor("gelu.x")
        check(
            Tensor(shape: x.shape, data: KernelsTests.gelu(x.data)), try f.doubles("gelu.y"),
            "gelu.y")
        var dx = zeros(x.count)
        geluBack(dy: try f.floats("gelu.upstream"), x: x.data, dx: &dx)
        check(Tensor(shape: x.shape, data: dx), try f.doubles("gelu.dx"), "gelu.dx")
    }

    /// The fixture's mask has 1 = allowed; our kernel takes masked logits as -inf.
    @Test func maskedSoftmax() throws {
        let f = try loadFixture("kernels.safetensors", requiredMetadata: Self.fixtureVersion)
        let logits = try f.tensor("softmax.logits")
        let mask = try f.ints("softmax.mask")
        let (rows, cols) = (logits.shape[0], logits.shape[1])
        let z = zip(logits.data, mask).map { $1 == 0 ? -Float.infinity : $0 }
        let p = softmax(z, rows: rows, cols: cols)
        check(Tensor(shape: logits.shape, data: p), try f.doubles("softmax.probs"), "softmax.probs")
        var dz = zeros(z.count)
        softmaxBack(dp: try f.floats("softmax.upstream"), z: z, rows: rows, cols: cols, dz: &dz)
        check(
            Tensor(shape: logits.shape, data: dz), try f.doubles("softmax.dlogits"),
            "softmax.dlogits")
        for i in z.indices where mask[i] == 0 {
            #expect(p[i] == 0 && dz[i] == 0, "masked entry \(i)")
        }
    }

    /// Loss = mean over rows whose target is not −1; dlogits is the gradient of that mean.
    @Test(arguments: ["cross_entropy", "cross_entropy_plain"])
    func crossEntropy(_ prefix: String) throws {
        let f = try loadFixture("kernels.safetensors", requiredMetadata: Self.fixtureVersion)
        let smoothing: Float = prefix == "cross_entropy" ? 0.1 : 0
        let logits = try f.tensor(prefix + ".logits")
        let targets = try f.ints(prefix + ".targets")
        let (rows, classes) = (logits.shape[0], logits.shape[1])
        #expect(targets.contains(-1), "the fixture should exercise an ignored row")
        let loss = KernelsTests.crossEntropy(
            logits.data, targets: targets, rows: rows, classes: classes, smoothing: smoothing)
        check([loss.mean], try f.doubles(prefix + ".loss"), "\(prefix).loss")
        var dz = zeros(logits.count)
        crossEntropyBack(
            logits.data, targets: targets, rows: rows, classes: classes, smoothing: smoothing,
            scale: 1 / Float(loss.counted), dz: &dz)
        check(
            Tensor(shape: logits.shape, data: dz), try f.doubles(prefix + ".dlogits"),
            "\(prefix).dlogits")
    }

    /// `sim = normalize(u) · normalize(v)ᵀ` through l2normalize + gemm, and its backward.
    @Test func cosine() throws {
        let f = try loadFixture("kernels.safetensors", requiredMetadata: Self.fixtureVersion)
        let u = try f.tensor("cosine.u")
        let v = try f.tensor("cosine.v")
        let (n, m, d) = (u.shape[0], v.shape[0], u.shape[1])
        let sim = KernelsTests.cosine(u.data, v.data, n: n, m: m, d: d).sim
        check(Tensor(shape: [n, m], data: sim), try f.doubles("cosine.sim"), "cosine.sim")
        let grads = cosineBack(u.data, v.data, try f.floats("cosine.upstream"), n: n, m: m, d: d)
        check(Tensor(shape: u.shape, data: grads.du), try f.doubles("cosine.du"), "cosine.du")
        check(Tensor(shape: v.shape, data: grads.dv), try f.doubles("cosine.dv"), "cosine.dv")
    }

    /// `expectClose` at the kernel tolerance, optionally printing the measured error.
    private func check(
        _ actual: some CloseComparable, _ expected: DoubleTensor, _ name: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        expectClose(actual, expected, tolerance: .kernel, name, sourceLocation: sourceLocation)
        if ProcessInfo.processInfo.environment["KERNELS_REPORT_ERRORS"] != nil {
            let c = closeness(
                actual, expected, rtol: Tolerance.kernel.rtol, atol: Tolerance.kernel.atol)
            print("golden \(name): max abs \(c.maxAbsoluteError), max rel \(c.maxRelativeError)")
        }
    }
}
