// Gram benchmark (issue 5): the probe's Float64 Gram (`GramAccumulator`) against the machine's
// sgemm and dgemm rates, measured in the same run. Run on purpose, in release:
// `make bench-gram` (or `swift run -c release GramBenchmark`).
//
// Issue 5 asks for the Gram at ≥ 80 % of the machine's sgemm rate. The Gram computes in Float64
// (the 1e-6 agreement with the notebook needs it), on kernels of our own (`CGramKernel`), and only
// the upper triangle of R·Rᵀ, so two rates are printed: the Float64 multiply-adds the upper
// triangle needs (the kernels do 5–8 % more at 300 rows: whole 8 × 8 squares on the diagonal, and on the AVX2 and scalar
// paths whole 16-column blocks at the end of a row), against dgemm's
// ceiling; and the work the user asked for — the full R·Rᵀ, which one sgemm call would compute —
// over the Gram's time, against sgemm: the reading under which the target is judged. A third case
// times the MoE probe's path (experts' rows known to be zero left out, as the probe keeps them); it
// is not judged, since the skipped rows are work the Gram never does.
import BenchmarkSupport
import CBLAS
import CGramKernel
import Foundation
import GradientProbe
import Kernels
import UniPerceiver

let rows = Int(ProcessInfo.processInfo.environment["BENCH_ROWS"] ?? "") ?? 300  // T·N = 3 tasks × 100
let repeats = Int(ProcessInfo.processInfo.environment["BENCH_REPEATS"] ?? "") ?? 3

/// The demo's `small` dense model (D = 64, 2 layers, FFN 256): the widths of its `encoder.layers.*`
/// tensors, which the probe's default selection records.
func smallModelWidths() throws -> [Int] {
    let config = ModelConfig(
        hiddenSize: 64, numLayers: 2, numHeads: 4, ffnSize: 256, imageSize: 8, patchSize: 2, channels: 1,
        vocabSize: 64, maxTextLength: 16)
    let model = try Model(config: config, seed: 1)
    return model.table.entries.filter { $0.name.hasPrefix("encoder.layers.") }.map(\.range.count)
}

/// The demo's attribute-routed MoE model (the `small` shape, 8 experts in every layer): its
/// `encoder.layers.*` tensors' widths and expert indices (−1 for a tensor that is not an expert's).
func smallMoEModelTensors() throws -> [(width: Int, expert: Int)] {
    let config = ModelConfig(
        hiddenSize: 64, numLayers: 2, numHeads: 4, ffnSize: 256, imageSize: 8, patchSize: 2, channels: 1,
        vocabSize: 64, maxTextLength: 16, routing: .attribute)
    let model = try Model(config: config, seed: 1)
    return model.table.entries.filter { $0.name.hasPrefix("encoder.layers.") }.map {
        ($0.count, SelectedParameter(name: $0.name, shape: $0.shape, offset: $0.offset).expert)
    }
}

struct Case {
    let name: String
    let widths: [Int]
    /// Per tensor, the rows present as the probe keeps an MoE expert's (`RowBlock.places`: place
    /// among the rows present, −1 for a row known to be zero); nil for every row present.
    var places: [[Int]?]? = nil
    /// Whether the case is judged against issue 5's target (the MoE case is not: its zero rows are
    /// skipped, so the full R·Rᵀ over its time says nothing about the kernels' rate).
    var judged = true
}

/// Row presence of an MoE expert's rows on the demo's checkpoint at N = 100, B = 16 ranged from
/// none to all 300, 104 on average: expert K of every linear is present in a row with
/// probability `expertPresence[K]` (mean 0.36).
let expertPresence = [1.0, 0.6, 0.35, 0.15, 0.5, 0.2, 0.05, 0.0]

/// Best of `repeats` seconds for `body` over every tensor.
func best(_ body: () -> Void) -> Double { bestSeconds(repeats: repeats, body) }

// The rates are read before and after the Gram timings and the higher reading is the reference: a
// busy moment during one reading must not flatter the Gram.
let sgemmBefore = sgemmRate(size: 1024, repeats: 5)
let dgemmBefore = dgemmRate(size: 1024, repeats: 5)
var table: [String] = [
    "| tensors | rows × width | Gram s (best of \(repeats)) | Float64 GFLOP needed (upper triangle) | GFLOP/s | % of dgemm | full R·Rᵀ by sgemm, s | full R·Rᵀ GFLOP / Gram s | % of sgemm |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
let moeTensors = try smallMoEModelTensors()
var presenceRNG = SeededRNG(seed: 11)
let moePlaces: [[Int]?] = moeTensors.map { tensor in
    guard tensor.expert >= 0 else { return nil }
    var present = 0
    return (0..<rows).map { _ in
        guard Double(presenceRNG.nextInt(below: 1000)) < 1000 * expertPresence[tensor.expert] else { return -1 }
        present += 1
        return present - 1
    }
}
let cases = [
    Case(name: "the `small` model's 28 `encoder.layers.*` tensors (the probe's defaults)", widths: try smallModelWidths()),
    Case(name: "one D = 192 `ffn.dense2.weight`", widths: [192 * 768]),
    Case(
        name: "the attribute-MoE `small` model's \(moeTensors.count) tensors, experts' zero rows left out as the probe does",
        widths: moeTensors.map(\.width), places: moePlaces, judged: false),
]
struct Timing {
    let name: String
    let width: Int
    let gramSeconds: Double
    let multiplyAdds: Int
    let sgemmSeconds: Double
    /// Timed on the AVX2 kernels although this CPU runs AVX-512 ones (what an AVX2 CPU would run).
    let standIn: Bool
    let judged: Bool
}
// On an AVX-512 CPU the Gram is also timed on its AVX2 kernels, which an AVX2 CPU would run: with
// OpenBLAS's `Haswell` kernels set by hand that pairing stands in for an AVX2 host.
let standInPath: TIGramPath? =
    ti_gram_best_path() == TIGramPathAVX512 && ti_gram_path_supported(TIGramPathAVX2) ? TIGramPathAVX2 : nil
// `BENCH_PROFILE=K` times only case K (0-based) on this CPU's kernels, `BENCH_REPEATS` times, and
// prints each time, so that `perf record` sees the Gram and nothing else.
let profiled = Int(ProcessInfo.processInfo.environment["BENCH_PROFILE"] ?? "")
if let k = profiled, !cases.indices.contains(k) {
    print("BENCH_PROFILE: no case \(k) (0–\(cases.count - 1))")
    exit(2)
}
var timings: [Timing] = []
for (index, c) in cases.enumerated() where profiled == nil || profiled == index {
    var rng = SeededRNG(seed: 7)
    let data = c.widths.map { w in (0..<(rows * w)).map { _ in Float(rng.nextGaussian()) } }
    // What the probe holds in memory: every row, or an expert's rows present and their places
    // (the full rows keep zeros in place of the rows left out, for sgemm below).
    let blocks = zip(c.widths, data).enumerated().map { t, tensor -> (GramAccumulator.RowBlock, [Float]) in
        let (w, values) = tensor
        guard let places = c.places?[t] else { return (GramAccumulator.RowBlock(values: values), values) }
        var kept: [Float] = []
        var full = [Float](repeating: 0, count: rows * w)
        for r in 0..<rows where places[r] >= 0 {
            kept += values[(r * w)..<((r + 1) * w)]
            full.replaceSubrange((r * w)..<((r + 1) * w), with: values[(r * w)..<((r + 1) * w)])
        }
        return (GramAccumulator.RowBlock(values: kept, places: places), full)
    }
    var multiplyAdds = 0
    func timeGram(_ path: TIGramPath?) -> Double {
        best {
            multiplyAdds = 0
            // As the probe does: one workspace for all its tensors.
            let workspace = path.map { GramAccumulator.Workspace(path: $0) } ?? GramAccumulator.Workspace()
            for (w, block) in zip(c.widths, blocks) {
                _ = GramAccumulator.gram(
                    rowCount: rows, width: w, rows: block.0, multiplyAdds: &multiplyAdds, workspace: workspace)
            }
        }
    }
    if profiled != nil {
        let workspace = GramAccumulator.Workspace()
        for _ in 0..<repeats {
            let seconds = bestSeconds(repeats: 1) {
                for (w, block) in zip(c.widths, blocks) {
                    _ = GramAccumulator.gram(
                        rowCount: rows, width: w, rows: block.0, multiplyAdds: &multiplyAdds, workspace: workspace)
                }
            }
            print(String(format: "%.4f s", seconds))
        }
        exit(0)
    }
    let gramSeconds = timeGram(nil)
    let standInSeconds = standInPath.map { timeGram($0) }
    // The full product one sgemm call computes (OpenBLAS's own threads), same rows.
    var product = [Float](repeating: 0, count: rows * rows)
    let sgemmSeconds = best {
        for (w, values) in zip(c.widths, blocks.map(\.1)) {
            values.withUnsafeBufferPointer { v in
                product.withUnsafeMutableBufferPointer { p in
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(rows), Int32(w), 1, v.baseAddress!,
                        Int32(w), v.baseAddress!, Int32(w), 0, p.baseAddress!, Int32(rows))
                }
            }
        }
    }
    for (seconds, standIn) in [(gramSeconds, false)] + (standInSeconds.map { [($0, true)] } ?? []) {
        timings.append(
            Timing(
                name: standIn ? c.name + ", on the AVX2 kernels" : c.name, width: c.widths.reduce(0, +),
                gramSeconds: seconds, multiplyAdds: multiplyAdds, sgemmSeconds: sgemmSeconds, standIn: standIn,
                judged: c.judged))
    }
}
let sgemmAfter = sgemmRate(size: 1024, repeats: 5)
let dgemmAfter = dgemmRate(size: 1024, repeats: 5)
let sgemm = max(sgemmBefore, sgemmAfter)
let dgemm = max(dgemmBefore, dgemmAfter)
func f(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
printMachine()
print(
    "sgemm 1024³ (best of 5, before / after the Gram timings): \(f(sgemmBefore)) / \(f(sgemmAfter)) GFLOP/s; "
        + "dgemm 1024³: \(f(dgemmBefore)) / \(f(dgemmAfter)) GFLOP/s; the higher readings are the reference")
print("")
var verdicts: [String] = []
for t in timings {
    let needed = 2 * Double(t.multiplyAdds) / 1e9
    let full = 2 * Double(rows * rows) * Double(t.width) / 1e9
    let equivalent = full / t.gramSeconds
    table.append(
        "| \(t.name) | \(rows) × \(t.width) | \(f(t.gramSeconds, 3)) | \(f(needed)) | \(f(needed / t.gramSeconds)) | "
            + "\(f(100 * needed / t.gramSeconds / dgemm)) | \(f(t.sgemmSeconds, 3)) | "
            // Rows skipped as zero are work the Gram never does: the full R·Rᵀ over its time would
            // read as a rate no kernel reaches.
            + (t.judged ? "\(f(equivalent)) | \(f(100 * equivalent / sgemm)) |" : "– (zero rows skipped) | – |"))
    if !t.standIn && t.judged {
        verdicts.append("\(t.name): \(f(100 * equivalent / sgemm)) % (\(100 * equivalent / sgemm >= 80 ? "met" : "missed"))")
    }
}
print(table.joined(separator: "\n"))
print("")
print("issue 5 target, Gram ≥ 80 % of sgemm (full R·Rᵀ over the Gram's time, against sgemm 1024³): " + verdicts.joined(separator: "; "))
if standInPath != nil {
    print(
        "(the rows \"on the AVX2 kernels\" are what an AVX2 CPU would run: against OpenBLAS's Haswell sgemm "
            + "(OPENBLAS_CORETYPE=Haswell, set by hand) they stand in for an AVX2 host; against any other sgemm they say little)")
}
// The same work against sgemm on the same rows (one call computing the full R·Rᵀ), for reference:
// sgemm runs these 300-row products well below its 1024³ rate, and the Gram, in Float64, has half
// Float32's peak to work with, so at most ≈ 100 % of sgemm 1024³ even with no packing at all.
print(
    "for reference, the Gram's time against one sgemm computing the full R·Rᵀ of the same rows: "
        + timings.map { "\($0.name): \(f(100 * $0.sgemmSeconds / $0.gramSeconds)) %" }.joined(separator: "; "))

// One lane's call (the probe's 300 rows × one lane's share of a column block, one thread): our
// kernels on every path this CPU runs (what the Gram uses: the fastest), against OpenBLAS's `dsyrk`
// on the same Doubles, and `ssyrk` on the Floats — what Float32 would buy. Float32 is not used:
// `Benchmarks/float32_gram_error.py` shows a Float32 Gram moving the metric by ~1e-5 on the demo's
// real gradients, ten times the 1e-6 parity target with the notebook.
let laneColumns = GramAccumulator.columnBlock / GramAccumulator.lanes
let calls = Int(ProcessInfo.processInfo.environment["BENCH_LANE_CALLS"] ?? "") ?? 200
var rng = SeededRNG(seed: 9)
let singles = (0..<(rows * laneColumns)).map { _ in Float(rng.nextGaussian()) }
let doubles = singles.map(Double.init)
var panels = [Double](repeating: 0, count: (rows + 7) / 8 * 8 * laneColumns)
ti_gram_pack(singles, Int32(rows), Int32(laneColumns), &panels)
var singleTarget = [Float](repeating: 0, count: rows * rows)
var doubleTarget = [Double](repeating: 0, count: rows * rows)
let (dsyrkSeconds, ssyrkSeconds) = BLASThreads.singleThreaded {
    (best {
        for _ in 0..<calls {
            cblas_dsyrk(
                CblasRowMajor, CblasUpper, CblasNoTrans, Int32(rows), Int32(laneColumns), 1, doubles, Int32(laneColumns),
                1, &doubleTarget, Int32(rows))
        }
    },
    best {
        for _ in 0..<calls {
            cblas_ssyrk(
                CblasRowMajor, CblasUpper, CblasNoTrans, Int32(rows), Int32(laneColumns), 1, singles, Int32(laneColumns),
                0, &singleTarget, Int32(rows))
        }
    })
}
let paths: [(String, TIGramPath)] = [("scalar", TIGramPathScalar), ("AVX2", TIGramPathAVX2), ("AVX-512", TIGramPathAVX512)]
// The scalar path (software fused multiply-adds on x86) is ~100× slower: a few calls tell.
let kernelTimes = paths.filter { ti_gram_path_supported($0.1) }.map { name, path in
    let pathCalls = path == TIGramPathScalar ? min(5, calls) : calls
    let seconds = best {
        for _ in 0..<pathCalls { ti_gram_syrk(path, Int32(rows), Int32(laneColumns), panels, &doubleTarget, rows) }
    }
    return (name, seconds * Double(calls) / Double(pathCalls))
}
let laneFLOP = Double(rows * (rows + 1) * laneColumns)  // 2 × the upper triangle's multiply-adds
func perCall(_ seconds: Double) -> String {
    "\(f(seconds / Double(calls) * 1e6)) µs (\(f(laneFLOP * Double(calls) / seconds / 1e9)) GFLOP/s)"
}
print("")
print(
    "one lane's call, \(rows) × \(laneColumns), upper triangle, one thread (best of \(repeats) × \(calls) calls, 5 for scalar; packing "
        + "not timed): "
        + kernelTimes.map { "our \($0.0) kernel \(perCall($0.1))" }.joined(separator: ", ")
        + "; OpenBLAS dsyrk \(perCall(dsyrkSeconds)), ssyrk \(perCall(ssyrkSeconds)) (Float32, not used)")
