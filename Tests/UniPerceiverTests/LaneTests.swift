import Kernels
import Synchronization
import TestSupport
import Testing

@testable import UniPerceiver

/// The encoder's sequence lanes (Encoder.swift, "Lanes") must compute the same loss and gradient as
/// one lane: only the order of the weight-gradient sums changes.
@Suite struct LaneTests {
    static let laneCounts = [2, 3]

    @Test("lanes give the loss and gradient of one lane", arguments: TaskKind.allCases, laneCounts)
    func sameAsOneLane(task: TaskKind, lanes: Int) throws {
        var single = randomizedModel(seed: 31)
        single.lanes = 1
        var laned = single
        laned.lanes = lanes
        let batch = randomBatch(task, seed: 9)
        let one = try single.forward(batch)
        let many = try laned.forward(batch)
        #expect(!one.inputPass.isLaned)
        #expect(many.inputPass.isLaned && many.candidatePass.isLaned, "the test must exercise the laned path")
        let used = Set((many.inputPass.parts + many.candidatePass.parts).map(\.lane))
        #expect(used.count == lanes, "every lane gets work: \(used)")
        #expect(abs(many.loss - one.loss) <= Tolerance.reorderedLossRelative * abs(one.loss))
        // Start from a non-zero buffer: both paths accumulate.
        var rng = SeededRNG(seed: 5)
        let start = rng.gaussianFloats(count: single.parameters.count)
        var gOne = start
        var gMany = start
        single.backward(one, into: &gOne)
        laned.backward(many, into: &gMany)
        // Per tensor, relative to its norm (the fixtures' measure): summation order moves single
        // small elements by more than any elementwise tolerance that would still catch a bug.
        for entry in single.table.entries {
            let (difference, norm) = Self.distance(gMany, gOne, entry.range)
            #expect(
                difference <= Tolerance.reorderedGradientRelative * norm,
                "\(task), \(lanes) lanes: \(entry.name) differs by \(difference) (norm \(norm))")
        }
    }

    /// ‖a − b‖ and ‖b‖ over `range`, in Double.
    static func distance(_ a: [Float], _ b: [Float], _ range: Range<Int>) -> (difference: Double, norm: Double) {
        var difference = 0.0
        var norm = 0.0
        for i in range {
            difference += Double(a[i] - b[i]) * Double(a[i] - b[i])
            norm += Double(b[i]) * Double(b[i])
        }
        return (difference.squareRoot(), norm.squareRoot())
    }

    @Test("the lane plan cuts the passes' sequences into contiguous ranges of about equal tokens")
    func lanePlan() {
        // 8 image sequences of 17 tokens and 10 class names of 3 (benchmark (b)): 166 tokens.
        let inputs = SequenceBatch(batchSize: 8, length: 17)
        let candidates = SequenceBatch(batchSize: 10, length: 3)
        let plan = Encoder.lanePlan([inputs, candidates], lanes: 2)
        #expect(plan[0].map(\.batch) == [0] && plan[0][0].range == 0..<5)
        #expect(plan[1].map(\.batch) == [0, 1] && plan[1][0].range == 5..<8 && plan[1][1].range == 0..<10)
        // Every sequence exactly once, in order.
        for b in 0..<2 {
            let ranges = plan.flatMap { $0.filter { $0.batch == b }.map(\.range) }
            #expect(ranges.flatMap { Array($0) } == Array(0..<[8, 10][b]))
        }
        let tokens = plan.map { $0.reduce(0) { $0 + $1.range.count * [17, 3][$1.batch] } }
        #expect(abs(tokens[0] - tokens[1]) <= 17, "\(tokens)")
    }

    @Test("token- and context-routed encoders run in one lane", arguments: [Routing.token, .context])
    func dataDependentRoutingStaysInOneLane(routing: Routing) throws {
        let model = try Model(config: tinyConfig(routing: routing, experts: 2, topK: 1), seed: 3)
        #expect(model.lanes > 1)
        let pass = try model.forward(randomBatch(.imageClassification, seed: 2))
        #expect(!pass.inputPass.isLaned && !pass.candidatePass.isLaned)
    }

    /// Dispatched experts (token, context) run their products in one lane per OpenBLAS thread, each
    /// a share of every expert's columns (`ExpertLinear.inExpertLanes`), and inline on one thread.
    /// The forward products and dX run on the unpacked kernels, whose bits do not depend on the
    /// split; dW goes through BLAS on a share of the output rows, so the gradient is compared within
    /// the reordering tolerance. At width 64 and FFN 256 every product is split; 3 lanes leave one
    /// lane without columns of the 64-wide products.
    @Test("dispatched experts in lanes give the loss and gradient of one thread", arguments: [Routing.token, .context], [2, 3])
    func dispatchedExpertsInLanes(routing: Routing, lanes: Int) throws {
        var config = tinyConfig(routing: routing, experts: 4, topK: 2)
        (config.hiddenSize, config.numHeads, config.ffnSize) = (64, 4, 256)
        let model = try Model(config: config, seed: 7)
        let batch = randomBatch(.imageClassification, seed: 3)
        let laned = try ExpertLinear.$lanesForTesting.withValue(lanes) { try model.forward(batch) }
        let inline = try ExpertLinear.$lanesForTesting.withValue(1) { try model.forward(batch) }
        var gLaned = [Float](repeating: 0, count: model.parameters.count)
        var gInline = gLaned
        ExpertLinear.$lanesForTesting.withValue(lanes) { model.backward(laned, into: &gLaned) }
        ExpertLinear.$lanesForTesting.withValue(1) { model.backward(inline, into: &gInline) }
        guard LinearKernel.active == .unpacked else {
            // On BLAS (CPUs without AVX-512F, or TI_LINEAR_KERNEL=blas) a lane's column share can
            // round differently from the whole product: OpenBLAS picks its small-matrix kernel by a
            // product's size. This model's gradients are small differences (the initial LayerScale),
            // which turns that rounding into up to 2.5 % in single small tensors (measured, stop 44),
            // so the BLAS path is held to the loss and to the whole gradient: a lost or doubled
            // share moves the loss by far more than 1e-6 of itself, and the gradient by O(its norm).
            #expect(abs(laned.loss - inline.loss) <= Tolerance.reorderedLossRelative * abs(inline.loss), "\(routing): loss \(laned.loss) vs \(inline.loss)")
            let (difference, norm) = Self.distance(gLaned, gInline, 0..<gInline.count)
            #expect(norm > 0 && difference <= 1e-2 * norm, "\(routing), \(lanes) lanes (BLAS): gradient differs by \(difference) (norm \(norm))")
            return
        }
        #expect(laned.loss == inline.loss, "\(routing): loss \(laned.loss) vs \(inline.loss)")
        var checkedExperts = 0
        for entry in model.table.entries {
            let (difference, norm) = Self.distance(gLaned, gInline, entry.range)
            if entry.name.contains(".experts.") && norm > 0 { checkedExperts += 1 }
            #expect(
                difference <= Tolerance.reorderedGradientRelative * norm,
                "\(routing), \(lanes) lanes: \(entry.name) differs by \(difference) (norm \(norm))")
        }
        #expect(checkedExperts > 0)
    }

    /// The comparison above holds as well if the experts never leave one thread, so this one asks
    /// the lanes themselves: every lane runs once, told the lane count, and one thread runs inline.
    @Test("the expert loops run one body per lane, or one inline", arguments: [1, 2, 3])
    func expertLanesRun(lanes: Int) {
        let calls = Mutex<[[Int]]>([])
        ExpertLinear.$lanesForTesting.withValue(lanes) {
            ExpertLinear.inExpertLanes { lane, count in calls.withLock { $0.append([lane, count]) } }
        }
        let seen = calls.withLock { $0 }.sorted { $0[0] < $1[0] }
        #expect(seen == (0..<lanes).map { [$0, lanes] }, "\(lanes) lanes: \(seen)")
    }

    /// Merged routings decide and merge before the split (`SharedRoutes`); the lanes must give one
    /// lane's loss, decisions, routing statistics and gradient (experts and gates included), with gate
    /// noise on (the draws must come in the same order), on every task (captioning has two segments).
    /// On the PyTorch fixture models: the default initialisation's small LayerScale makes the inner
    /// layers' gradients differences of nearly equal terms, where any change of summation order
    /// (the lanes', or OpenBLAS's thread split) moves them by ~1e-4 of their norm, dense model alike.
    @Test(
        "merged-routing MoE in lanes gives the loss, statistics and gradient of one lane",
        arguments: [Routing.attribute, .modality, .task], TaskKind.allCases)
    func mergedRoutingLanes(routing: Routing, task: TaskKind) throws {
        var single = try loadMoEFixtureModel(routing)
        single.lanes = 1
        var laned = single
        laned.lanes = 2
        let batch = randomBatch(task, seed: 9)
        let one = try single.forward(batch, noise: RoutingNoise(seed: 4))
        let many = try laned.forward(batch, noise: RoutingNoise(seed: 4))
        #expect(!one.inputPass.isLaned)
        #expect(many.inputPass.isLaned && many.candidatePass.isLaned, "the test must exercise the laned path")
        #expect(abs(many.loss - one.loss) <= Tolerance.reorderedLossRelative * abs(one.loss), "loss \(many.loss) vs \(one.loss)")
        // Both sides must report every MoE layer's two decisions (route signatures read these).
        #expect(one.inputPass.decisions.count == 2 * single.config.numLayers)
        #expect(many.inputPass.decisions.map(\.chosen) == one.inputPass.decisions.map(\.chosen))
        #expect(many.routingStatistics == one.routingStatistics)
        var gOne = [Float](repeating: 0, count: single.parameters.count)
        var gMany = [Float](repeating: .nan, count: single.parameters.count)
        single.backward(one, into: &gOne)
        laned.gradient(many, into: &gMany)
        var checkedExperts = 0
        for entry in single.table.entries {
            let (difference, norm) = Self.distance(gMany, gOne, entry.range)
            if entry.name.contains(".experts.") && norm > 0 { checkedExperts += 1 }
            // A gate's gradient is a small difference of dots with dW_u, whose Float row sums the
            // lanes split (`Tolerance.reorderedGateGradientRelative`).
            let tolerance =
                entry.name.contains(".gate.") ? Tolerance.reorderedGateGradientRelative : Tolerance.reorderedGradientRelative
            #expect(
                difference <= tolerance * norm,
                "\(routing), \(task): \(entry.name) differs by \(difference) (norm \(norm))")
        }
        #expect(checkedExperts > 0)
    }

    @Test("a slice of a sequence batch keeps its sequences, masks, padding and patches")
    func slice() {
        let config = tinyConfig
        var rng = SeededRNG(seed: 4)
        let images = Tensor.gaussian([3, config.channels, config.imageSize, config.imageSize], rng: &rng)
        var batch = SequenceBatch.images(images, config: config)
        // Padding (ignored by context pooling, the balance loss and statistics) stays padding.
        for i in batch.valid.indices where i % 3 == 1 { batch.valid[i] = false }
        let part = batch.slice(1..<3)
        let T = batch.length
        #expect(part.batchSize == 2 && part.length == T)
        #expect(part.tokenIds == Array(batch.tokenIds[T..<(3 * T)]))
        #expect(part.mask == Array(batch.mask[(T * T)..<(3 * T * T)]))
        #expect(part.valid == Array(batch.valid[T..<(3 * T)]) && part.valid.contains(false))
        #expect(part.patchCount == 2 * config.patchCount)
        let width = batch.patches.count / batch.patchCount
        #expect(part.patches == Array(batch.patches[(config.patchCount * width)...]))
        #expect(part.patchRows.filter { $0 >= 0 } == Array(0..<part.patchCount))
    }
}
