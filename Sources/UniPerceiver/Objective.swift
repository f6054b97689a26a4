import Foundation
import Kernels

// Dimension letters: R feature rows (inputs), K candidates, D width.

/// The shared feature head `f(h) = proj(ln_post(h))`, L2-normalised, on selected rows of an encoded
/// batch (official `embed_cls_predictor.py`: `ln_post`, `proj`, `PRED_USE_NORM`).
struct FeatureHead {
    let config: ModelConfig
    let layout: ParameterLayout

    final class Cache {
        let rows: [Int]
        let gathered: Buffer, normed: Buffer, mean: Buffer, rstd: Buffer
        let projected: Buffer, unit: Buffer, norms: Buffer
        init(rows: [Int], width D: Int) {
            self.rows = rows
            let R = rows.count
            gathered = Buffer(R * D)
            normed = Buffer(R * D)
            mean = Buffer(R)
            rstd = Buffer(R)
            projected = Buffer(R * D)
            unit = Buffer(R * D)
            norms = Buffer(R)
        }
    }

    func forward(_ hidden: UnsafePointer<Float>, rows: [Int], _ P: ParameterPointers) -> Cache {
        let D = config.hiddenSize
        let R = rows.count
        let cache = Cache(rows: rows, width: D)
        for (i, row) in rows.enumerated() { (cache.gathered.base + i * D).update(from: hidden + row * D, count: D) }
        layerNormForward(
            output: cache.normed.base, mean: cache.mean.base, rstd: cache.rstd.base,
            input: cache.gathered.base, weight: P(layout.postNormWeight), bias: P(layout.postNormBias),
            rows: R, cols: D)
        linearForward(
            output: cache.projected.base, input: cache.normed.base, weight: P(layout.projWeight),
            bias: P(layout.projBias), rows: R, inFeatures: D, outFeatures: D)
        l2NormalizeForward(
            output: cache.unit.base, norms: cache.norms.base, input: cache.projected.base, rows: R, cols: D)
        return cache
    }

    /// From `dUnit [R, D]` back to the hidden states: scatter-adds into `dHidden` at the cached rows.
    func backward(
        _ cache: Cache, dUnit: UnsafePointer<Float>, dHidden: UnsafeMutablePointer<Float>,
        _ P: ParameterPointers, _ G: GradientPointers
    ) {
        let D = config.hiddenSize
        let R = cache.rows.count
        let dProjected = Buffer(R * D)
        let dNormed = Buffer(R * D)
        let dGathered = Buffer(R * D)
        l2NormalizeBackward(
            dInput: dProjected.base, dOutput: dUnit, output: cache.unit.base, norms: cache.norms.base,
            rows: R, cols: D)
        linearBackward(
            dInput: dNormed.base, dWeight: G(layout.projWeight), dBias: G(layout.projBias),
            dOutput: dProjected.base, input: cache.normed.base, weight: P(layout.projWeight),
            rows: R, inFeatures: D, outFeatures: D)
        layerNormBackward(
            dInput: dGathered.base, dWeight: G(layout.postNormWeight), dBias: G(layout.postNormBias),
            dOutput: dNormed.base, input: cache.gathered.base, weight: P(layout.postNormWeight),
            mean: cache.mean.base, rstd: cache.rstd.base, rows: R, cols: D)
        for (i, row) in cache.rows.enumerated() {
            let src = dGathered.base + i * D
            let dst = dHidden + row * D
            for c in 0..<D { dst[c] += src[c] }
        }
    }
}

/// Scaled cosine logits `logit[r, k] = min(exp(s), 100) · ⟨û_r, v̂_k⟩` (official
/// `embed_cls_predictor.py`: the learned temperature is clamped to 100; a clamped scale passes no
/// gradient to `s`).
struct CosineLogits {
    let cosine: Buffer  // [R, K]
    let logits: Buffer  // [R, K]
    let scale: Float
    let clamped: Bool
    let inputs: Int, candidates: Int

    init(
        _ u: UnsafePointer<Float>, _ v: UnsafePointer<Float>, inputs R: Int, candidates K: Int,
        width D: Int, logScale: Float
    ) {
        inputs = R
        candidates = K
        cosine = Buffer(R * K)
        logits = Buffer(R * K)
        let raw = expf(logScale)
        clamped = raw > 100
        scale = clamped ? 100 : raw
        // Single-threaded: the MLM and captioning rows against the whole vocabulary cross OpenBLAS's
        // threading threshold at batch 32 (a token-routed model's training).
        gemmSingleThreaded(
            transposeA: false, transposeB: true, m: R, n: K, k: D, a: u, lda: D, b: v, ldb: D,
            beta: 0, c: cosine.base, ldc: K)
        for i in 0..<(R * K) { logits.base[i] = scale * cosine.base[i] }
    }

    /// Accumulates `dU += scale·dL·V̂`, `dV += scale·dLᵀ·Û` and `ds += exp(s)·Σ dL ⊙ cos` (unclamped).
    func backward(
        dLogits: UnsafePointer<Float>, u: UnsafePointer<Float>, v: UnsafePointer<Float>, width D: Int,
        dU: UnsafeMutablePointer<Float>, dV: UnsafeMutablePointer<Float>,
        dLogScale: UnsafeMutablePointer<Float>
    ) {
        let R = inputs
        let K = candidates
        gemmSingleThreaded(
            transposeA: false, transposeB: false, m: R, n: D, k: K, alpha: scale,
            a: dLogits, lda: K, b: v, ldb: D, beta: 1, c: dU, ldc: D)
        gemmSingleThreaded(
            transposeA: true, transposeB: false, m: K, n: D, k: R, alpha: scale,
            a: dLogits, lda: K, b: u, ldb: D, beta: 1, c: dV, ldc: D)
        if !clamped {
            var sum = 0.0
            for i in 0..<(R * K) { sum += Double(dLogits[i]) * Double(cosine.base[i]) }
            dLogScale[0] += Float(sum) * scale
        }
    }
}
