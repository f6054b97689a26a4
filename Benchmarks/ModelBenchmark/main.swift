// Model benchmark (issues 2 and 4): milliseconds per forward+backward of one image-classification
// mini-batch and the achieved GFLOP/s, next to the machine's sgemm rate measured in the same run.
// Run on purpose, in release: `swift run -c release ModelBenchmark` (or `make bench-model`).
import BenchmarkSupport
import CBLAS
import Foundation
import Kernels
import UniPerceiver

struct Setup {
    let name: String
    let config: ModelConfig
    let batchSize: Int
    let classes: Int
}

/// GEMM FLOPs of one forward (2·m·n·k per product) as the model executes it: the last layer computes
/// only the one row per sequence the image-classification loss reads (`Model.computesOnlyReadRows`):
/// QKV of every row, one attention query, output projection and FFN of that row. Backward costs two
/// GEMMs per forward GEMM (dX and dW), so forward+backward ≈ 3× this; elementwise work is not counted.
func forwardFLOPs(_ c: ModelConfig, batch B: Int, classes K: Int, classTokens: Int) -> Double {
    let D = Double(c.hiddenSize)
    let F = Double(c.ffnSize)
    func encoder(sequences: Int, length T: Int) -> Double {
        let S = Double(sequences)
        let N = Double(sequences * T)
        let perLayer = 2 * N * (3 * D * D + D * D + 2 * D * F) + 2 * 2 * S * Double(T * T) * D
        let last = 2 * N * 3 * D * D + 2 * 2 * S * Double(T) * D + 2 * S * (D * D + 2 * D * F)
        return Double(c.numLayers - 1) * perLayer + last
    }
    let image = encoder(sequences: B, length: 1 + c.patchCount)
        + 2 * Double(B * c.patchCount) * Double(c.patchFeatures) * D
    let targets = encoder(sequences: K, length: classTokens)
    let head = 2 * Double(B + K) * D * D + 2 * Double(B * K) * D
    return image + targets + head
}


let setups = [
    Setup(
        name: "D=128, 6 layers, 4 heads, FFN 512, batch 8",
        config: ModelConfig(
            hiddenSize: 128, numLayers: 6, numHeads: 4, ffnSize: 512, imageSize: 8, patchSize: 2,
            channels: 1, vocabSize: 64, maxTextLength: 16),
        batchSize: 8, classes: 10),
    Setup(
        name: "D=256, 6 layers, 8 heads, FFN 1024, batch 8",
        config: ModelConfig(
            hiddenSize: 256, numLayers: 6, numHeads: 8, ffnSize: 1024, imageSize: 8, patchSize: 2,
            channels: 1, vocabSize: 64, maxTextLength: 16),
        batchSize: 8, classes: 10),
]
let repeats = Int(ProcessInfo.processInfo.environment["BENCH_REPEATS"] ?? "") ?? 20
// `BENCH_MOE_SETUP=1` runs the MoE rows on the second setup's width (D=256) instead of D=128: the
// ratios barely change with width (reports/benchmarks.md, "Stop 34"); kept so that anyone can re-check it.
let moeSetupText = ProcessInfo.processInfo.environment["BENCH_MOE_SETUP"] ?? "0"
guard let moeSetup = Int(moeSetupText), setups.indices.contains(moeSetup) else {
    print("BENCH_MOE_SETUP: '\(moeSetupText)' is not a setup (0 for D=128, 1 for D=256)")
    exit(2)
}

// `BENCH_PROFILE=dense|attribute|token` runs only that sibling of the first setup's model, forward +
// backward in a loop (`BENCH_REPEATS` times, `BENCH_LANES` lanes, batch `BENCH_BATCH`), so `perf record -g` sees nothing else; with `-ffn`
// appended (`token-ffn`) only its layer-0 FFN sub-layer, 10× as many times.
// `BENCH_PROFILE=ffn-ratio` prints only issue 4's token-routing ratio (the FFN sub-layer of the MoE
// table below, batch `BENCH_BATCH`, `BENCH_REPEATS` × 10 interleaved rounds), with OpenBLAS's threads
// and on one core: a quick reading while working on that target.
if ProcessInfo.processInfo.environment["BENCH_PROFILE"] == "ffn-ratio" {
    let B = Int(ProcessInfo.processInfo.environment["BENCH_BATCH"] ?? "") ?? setups[0].batchSize
    var rng = SeededRNG(seed: 2)
    var c = setups[0].config
    let pixels = (0..<(B * c.imageSize * c.imageSize)).map { _ in Float(rng.nextGaussian()) }
    let batch = Batch.imageClassification(
        images: Tensor(shape: [B, 1, c.imageSize, c.imageSize], data: pixels),
        labels: (0..<B).map { $0 % setups[0].classes },
        classNames: (0..<setups[0].classes).map { [$0 + 1, c.eotId] })
    let denseFFN = try FeedForwardSubLayer(model: try Model(config: c, seed: 1), batch: batch)
    c.routing = .token
    let tokenFFN = try FeedForwardSubLayer(model: try Model(config: c, seed: 1), batch: batch)
    let rounds = 10 * repeats
    let threads = try interleavedMedians([{ denseFFN.run() }, { tokenFFN.run() }], rounds: rounds)
    let oneCore = try BLASThreads.singleThreaded {
        try interleavedMedians([{ denseFFN.run() }, { tokenFFN.run() }], rounds: rounds)
    }
    func ms(_ x: Double) -> String { String(format: "%.3f", x) }
    print("FFN sub-layer, \(denseFFN.rows) tokens (batch \(B)), medians of \(rounds) interleaved rounds: "
        + "threads dense \(ms(threads[0])) token \(ms(threads[1])) ms, ratio \(String(format: "%.3f", threads[1] / threads[0])); "
        + "one core dense \(ms(oneCore[0])) token \(ms(oneCore[1])) ms, ratio \(String(format: "%.3f", oneCore[1] / oneCore[0]))")
    exit(0)
}
if var name = ProcessInfo.processInfo.environment["BENCH_PROFILE"] {
    let ffnOnly = name.hasSuffix("-ffn")
    if ffnOnly { name.removeLast(4) }
    guard let routing = name == "dense" ? Routing.none : Routing(rawValue: name) else {
        print("BENCH_PROFILE: unknown routing \"\(name)\" (dense, attribute, token, context, modality, task)")
        exit(2)
    }
    var c = setups[0].config
    c.routing = routing
    var model = try Model(config: c, seed: 1)
    if let lanes = Int(ProcessInfo.processInfo.environment["BENCH_LANES"] ?? "") { model.lanes = lanes }
    var rng = SeededRNG(seed: 2)
    let B = Int(ProcessInfo.processInfo.environment["BENCH_BATCH"] ?? "") ?? setups[0].batchSize
    let pixels = (0..<(B * c.imageSize * c.imageSize)).map { _ in Float(rng.nextGaussian()) }
    let batch = Batch.imageClassification(
        images: Tensor(shape: [B, 1, c.imageSize, c.imageSize], data: pixels),
        labels: (0..<B).map { $0 % setups[0].classes },
        classNames: (0..<setups[0].classes).map { [$0 + 1, c.eotId] })
    if ffnOnly {
        let ffn = try FeedForwardSubLayer(model: model, batch: batch)
        for _ in 0..<(10 * repeats) { ffn.run() }
        exit(0)
    }
    var gradient = [Float](repeating: 0, count: model.parameters.count)
    var zeroed = Model.ZeroedExperts()
    // `BENCH_ZERO=1`: the old step (zero the whole buffer, then accumulate) instead of `gradient(into:)`.
    let zeroThenAccumulate = ProcessInfo.processInfo.environment["BENCH_ZERO"] == "1"
    for _ in 0..<repeats {
        if zeroThenAccumulate {
            gradient.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            model.backward(try model.forward(batch), into: &gradient)
        } else {
            model.gradient(try model.forward(batch), into: &gradient, zeroed: &zeroed)
        }
    }
    exit(0)
}
printMachine()
// The sgemm rate read before and after the dense timings; the higher one is the reference (a noisy
// host reads low at times, and a low reference would flatter the percentages).
let sgemmBefore = sgemmRate(size: 1024, repeats: 5)
var denseRows: [(cells: String, gflops: Double)] = []
for setup in setups {
    let c = setup.config
    let model = try Model(config: c, seed: 1)
    var rng = SeededRNG(seed: 2)
    let pixels = (0..<(setup.batchSize * c.imageSize * c.imageSize)).map { _ in Float(rng.nextGaussian()) }
    let images = Tensor(shape: [setup.batchSize, 1, c.imageSize, c.imageSize], data: pixels)
    let labels = (0..<setup.batchSize).map { $0 % setup.classes }
    let classNames = (0..<setup.classes).map { [$0 + 1, c.eotId] }
    let batch = Batch.imageClassification(images: images, labels: labels, classNames: classNames)
    var gradient = [Float](repeating: 0, count: model.parameters.count)
    for _ in 0..<3 {  // warm-up
        let pass = try model.forward(batch)
        model.backward(pass, into: &gradient)
    }
    var times: [Double] = []
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        gradient.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        let pass = try model.forward(batch)
        model.backward(pass, into: &gradient)
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    let ms = median(times)
    let flops = 3 * forwardFLOPs(c, batch: setup.batchSize, classes: setup.classes, classTokens: 3)
    let gflops = flops / (ms / 1e3) / 1e9
    denseRows.append(
        ("| \(setup.name) | \(1 + c.patchCount) / 3 | \(String(format: "%.2f", ms)) | \(String(format: "%.2f", gflops)) | ", gflops))
}
let sgemmAfter = sgemmRate(size: 1024, repeats: 5)
let sgemm = max(sgemmBefore, sgemmAfter)
print(
    "sgemm 1024³ (best of 5, before / after the dense timings): \(String(format: "%.1f", sgemmBefore)) / "
        + "\(String(format: "%.1f", sgemmAfter)) GFLOP/s; the higher is the reference")
print("")
print("| configuration | tokens (image / class-name seqs) | ms per fwd+bwd (median of \(repeats)) | GFLOP/s | % of sgemm |")
print("| --- | --- | ---: | ---: | ---: |")
for row in denseRows { print(row.cells + "\(String(format: "%.1f", 100 * row.gflops / sgemm)) |") }
print("")
print("FLOPs = 3 × forward GEMM FLOPs (forward, plus dX and dW in backward); forward per layer = 2·N·(3D² + D² + 2·D·F) + 4·B·T²·D over N = B·T tokens, for the image batch and the 10 class-name sequences, except the last layer, which computes only the row each sequence's loss reads: 2·N·3D² + 4·B·T·D + 2·B·(D² + 2·D·F); plus patch projection and head.")

// MoE rows (issue 4): the same batch through MoE siblings of the first setup (or `BENCH_MOE_SETUP`'s;
// every layer MoE, E = 8, top-2), measured in this run next to the dense model. Attribute routing merges the chosen
// experts once per segment, so its GEMMs are a dense model's (target ≤ 1.15×); what it adds is
// per-step memory traffic over E× the parameters (merges, merge-backward, zero-filling unchosen
// experts), fixed per step, so the ratio falls as the batch grows. Hence two batch sizes: 8 (issue
// 6's configurations) and 32 (the trainer's default). Token routing dispatches every row to two
// experts; the issue's target (≤ 2.3×) is against the dense model's FFN, so the FFN sub-layer is also
// timed on its own (`FeedForwardSubLayer`: dense FFN vs token-routed FFN with gate, dispatch,
// combine and balance loss, on the same layer-0 hidden states).
// Every sibling runs once per round, round after round (interleaved), so load from other work on
// the machine falls on all of them alike; the ratios are of medians over the rounds.
func interleavedMedians(_ steps: [() throws -> Void], rounds: Int) throws -> [Double] {
    for step in steps { for _ in 0..<3 { try step() } }  // warm-up
    var times = [[Double]](repeating: [], count: steps.count)
    for _ in 0..<rounds {
        for (i, step) in steps.enumerated() {
            let start = DispatchTime.now().uptimeNanoseconds
            try step()
            times[i].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
    }
    return times.map(median)
}
// `BENCH_MOE_BATCHES=8,32,64` chooses the MoE rows' batch sizes (default 8 and 32; the trainer's default
// batch is 32 and the demo probes with 64): how the ratios move with the batch (reports/benchmarks.md, "Stop 36").
let moeBatchesText = ProcessInfo.processInfo.environment["BENCH_MOE_BATCHES"] ?? "8,32"
let moeBatches = moeBatchesText.split(separator: ",").compactMap { Int($0) }
guard !moeBatches.isEmpty, moeBatches.count == moeBatchesText.split(separator: ",").count,
    moeBatches.allSatisfy({ $0 >= 2 && $0 % 2 == 0 })
else {
    print("BENCH_MOE_BATCHES: '\(moeBatchesText)' is not a list of even batch sizes >= 2 (e.g. 8,32,64)")
    exit(2)
}
for moeBatch in moeBatches {
    let setup = setups[moeSetup]
    var rng = SeededRNG(seed: 2)
    let c = setup.config
    let pixels = (0..<(moeBatch * c.imageSize * c.imageSize)).map { _ in Float(rng.nextGaussian()) }
    let images = Tensor(shape: [moeBatch, 1, c.imageSize, c.imageSize], data: pixels)
    let batch = Batch.imageClassification(
        images: images, labels: (0..<moeBatch).map { $0 % setup.classes },
        classNames: (0..<setup.classes).map { [$0 + 1, c.eotId] })
    // Attribute routing runs in lanes like the dense model (Encoder.swift, "Lanes"): the two are
    // compared at the default two lanes, interleaved. Token routing runs one lane with OpenBLAS's own
    // threads, so it is compared with the dense model in one lane, in a separate interleaved group:
    // right after a step with threaded OpenBLAS its worker spin-waits and takes a core from lanes.
    // A step is `Model.gradient(_:into:zeroed:)`, which overwrites a reused buffer (experts left
    // unchosen by the previous step are not zero-filled again), as in the trainer and the probe.
    func model(_ routing: Routing, lanes: Int, layers: MoELayers = .all) throws -> Model {
        var mc = c
        mc.routing = routing
        if routing != .none { mc.moeLayers = layers }
        var m = try Model(config: mc, seed: 1)
        m.lanes = lanes
        return m
    }
    let moeRounds = max(repeats, 2 * repeats * 8 / moeBatch)  // the ratios are the point here
    // `noisy[i]`: sibling i draws gate noise as in training, a new seed every step, so its choices
    // change from step to step (without noise one batch repeats its choices, the best case of
    // `Model.ZeroedExperts`).
    func medians(_ group: [Model], noisy: [Bool] = []) throws -> [Double] {
        // Each sibling reuses its buffer step after step, as the trainer and the probe do.
        var gradients = group.map { [Float](repeating: 0, count: $0.parameters.count) }
        var zeroed = group.map { _ in Model.ZeroedExperts() }
        var step: UInt64 = 0
        return try interleavedMedians(
            group.indices.map { i in {
                let pass: ForwardPass
                if i < noisy.count && noisy[i] {
                    step += 1
                    pass = try group[i].forward(batch, noise: RoutingNoise(seed: step))
                } else {
                    pass = try group[i].forward(batch)
                }
                group[i].gradient(pass, into: &gradients[i], zeroed: &zeroed[i])
            } },
            rounds: moeRounds)
    }
    // The target is checked on the strictest sibling (every layer MoE); the released base and large
    // configurations put experts in every other layer (`odd`), shown for reference, and so is the
    // same sibling with training's gate noise.
    let laned = try medians(
        [
            model(.none, lanes: 2), model(.attribute, lanes: 2), model(.attribute, lanes: 2, layers: .odd),
            model(.attribute, lanes: 2),
        ],
        noisy: [false, false, false, true])
    let oneLane = try medians([model(.none, lanes: 1), model(.token, lanes: 1)])
    print("")
    print("| MoE sibling of D=\(c.hiddenSize), \(c.numLayers) layers, \(c.numHeads) heads, FFN \(c.ffnSize), **batch \(moeBatch)** (E=8, top-2; every layer MoE unless noted) | ms per fwd+bwd (median of \(moeRounds), interleaved in pairs) | ratio to dense |")
    print("| --- | ---: | ---: |")
    print("| dense, 2 lanes | \(String(format: "%.2f", laned[0])) | 1.00 |")
    print("| attribute, 2 lanes | \(String(format: "%.2f", laned[1])) | \(String(format: "%.2f", laned[1] / laned[0])) |")
    print("| attribute, MoE in layers 0, 2, 4 only (the released base/large layout, for reference), 2 lanes | \(String(format: "%.2f", laned[2])) | \(String(format: "%.2f", laned[2] / laned[0])) |")
    print("| attribute, 2 lanes, gate noise on as in training (choices change every step; for reference) | \(String(format: "%.2f", laned[3])) | \(String(format: "%.2f", laned[3] / laned[0])) |")
    print("| dense, 1 lane (OpenBLAS threads) | \(String(format: "%.2f", oneLane[0])) | 1.00 |")
    print("| token, 1 lane (OpenBLAS threads) | \(String(format: "%.2f", oneLane[1])) | \(String(format: "%.2f", oneLane[1] / oneLane[0])) |")
    // What the merges must move: the distinct experts the (noise-free) attribute step reads per MoE
    // linear, per layer and decision; `Benchmarks/merge_floors.c` takes this list and times those
    // memory passes alone against the allowance the 1.15 target leaves.
    let attributePass = try model(.attribute, lanes: 2).forward(batch)
    let read = (0..<c.numLayers).flatMap { layer in
        RoutingStatistics.Decision.allCases.map { decision in
            let records = attributePass.routingStatistics.filter { $0.layer == layer && $0.decision == decision }
            return Set(records.flatMap { r in r.weightShare.indices.filter { r.weightShare[$0] > 0 } }).count
        }
    }
    print("")
    print("attribute step at batch \(moeBatch): distinct experts read per MoE linear, by layer (attention, FFN): \(read.map(String.init).joined(separator: ",")) (`merge_floors` input; the dense step \(String(format: "%.2f", laned[0])) ms)")
    // FFN sub-layer alone: dense vs token routing, on layer 0 of the same image batch.
    let denseFFN = try FeedForwardSubLayer(model: model(.none, lanes: 1), batch: batch)
    let tokenFFN = try FeedForwardSubLayer(model: model(.token, lanes: 1), batch: batch)
    let ffnRounds = max(5 * repeats, 10 * repeats * 8 / moeBatch)
    let ffn = try interleavedMedians([{ denseFFN.run() }, { tokenFFN.run() }], rounds: ffnRounds)
    let ffnZeroing = try interleavedMedians([{ denseFFN.zeroGradient() }, { tokenFFN.zeroGradient() }], rounds: ffnRounds)
    // The same two on one core (OpenBLAS single-threaded): the work itself, without the two-thread
    // split, which the experts' GEMMs (about N/4 rows each) gain less from than the dense FFN's.
    let ffnOneCore = try BLASThreads.singleThreaded {
        try interleavedMedians([{ denseFFN.run() }, { tokenFFN.run() }], rounds: max(repeats, ffnRounds / 2))
    }
    print("")
    print("| FFN sub-layer of layer 0 alone (\(denseFFN.rows) tokens, D=\(c.hiddenSize), F=\(c.ffnSize), fwd+bwd) | ms (median of \(ffnRounds), interleaved) | ratio to dense FFN | of which gradient zeroing (ms) |")
    print("| --- | ---: | ---: | ---: |")
    print("| dense FFN | \(String(format: "%.3f", ffn[0])) | 1.00 | \(String(format: "%.3f", ffnZeroing[0])) |")
    print("| token-routed FFN, E=8, top-2 (gate, dispatch, combine, balance loss) | \(String(format: "%.3f", ffn[1])) | \(String(format: "%.2f", ffn[1] / ffn[0])) | \(String(format: "%.3f", ffnZeroing[1])) |")
    print("| dense FFN, one core (for reference) | \(String(format: "%.3f", ffnOneCore[0])) | 1.00 | |")
    print("| token-routed FFN, one core (for reference) | \(String(format: "%.3f", ffnOneCore[1])) | \(String(format: "%.2f", ffnOneCore[1] / ffnOneCore[0])) | |")
    // What token routing in lanes could give (it runs in one lane today; README, Open work): the same
    // two sub-layers built on each half of the images, the halves run at once on one core each. Each
    // half routes its own tokens; the balance loss's join across the halves is not included.
    let half = moeBatch / 2
    func halfBatch(_ h: Int) -> Batch {
        let size = c.imageSize * c.imageSize
        let images = Tensor(shape: [half, 1, c.imageSize, c.imageSize], data: Array(pixels[(h * half * size)..<((h + 1) * half * size)]))
        return Batch.imageClassification(
            images: images, labels: (0..<half).map { (h * half + $0) % setup.classes },
            classNames: (0..<setup.classes).map { [$0 + 1, c.eotId] })
    }
    let denseHalves = try (0..<2).map { try FeedForwardSubLayer(model: model(.none, lanes: 1), batch: halfBatch($0)) }
    let tokenHalves = try (0..<2).map { try FeedForwardSubLayer(model: model(.token, lanes: 1), batch: halfBatch($0)) }
    func inLanes(_ halves: [FeedForwardSubLayer]) {
        let shared = UncheckedSendable(halves)
        BLASThreads.singleThreaded { forEachLane(2) { _ = shared.value[$0].run() } }
    }
    let ffnLanes = try interleavedMedians([{ inLanes(denseHalves) }, { inLanes(tokenHalves) }], rounds: ffnRounds)
    print("| dense FFN, 2 lanes of half the images (experiment) | \(String(format: "%.3f", ffnLanes[0])) | 1.00 | |")
    print("| token-routed FFN, 2 lanes of half the images, no balance-loss join (experiment) | \(String(format: "%.3f", ffnLanes[1])) | \(String(format: "%.2f", ffnLanes[1] / ffnLanes[0])) | |")
    print("")
    let attributeRatio = laned[1] / laned[0]
    let tokenRatio = ffn[1] / ffn[0]
    print("issue 4 targets at batch \(moeBatch): attribute / dense (whole model) \(String(format: "%.3f", attributeRatio)) (target ≤ 1.15: \(attributeRatio <= 1.15 ? "met" : "missed")); token FFN / dense FFN \(String(format: "%.3f", tokenRatio)) (target ≤ 2.3: \(tokenRatio <= 2.3 ? "met" : "missed")); token / dense whole model (one lane) \(String(format: "%.2f", oneLane[1] / oneLane[0])) (all four linears routed, for reference).")
}
