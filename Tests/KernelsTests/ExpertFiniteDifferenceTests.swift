import Kernels
import TestSupport
import Testing

/// Tier 1 (house-style §6) for the kernels the naive twins alone used to cover: `expertMerge`'s
/// backward with respect to every chosen expert and every gate (k = 1, 2, 3: the top-2 SIMD path
/// and the general one; 19 elements, so the SIMD tail runs too), `expertRowBackward` with respect
/// to the gate and the expert's output, and `linearWeightGradient` written as two lanes' disjoint
/// output ranges. Each backward starts from zeros (or from NaN where it must overwrite).
@Suite("Finite differences: MoE kernels and lane-split weight gradients")
struct ExpertFiniteDifferenceTests {
    static let n = 19

    /// `expertMerge` over copies of `experts`, returning the merged tensor.
    static func merge(_ experts: [[Float]], _ gates: [Float]) -> [Float] {
        var merged = [Float](repeating: .nan, count: n)
        withPointers(experts) { pointers in
            merged.withUnsafeMutableBufferPointer {
                expertMerge(merged: $0.baseAddress!, experts: pointers, gates: gates, count: n)
            }
        }
        return merged
    }

    /// `expertMergeBackward` from zeroed expert gradients: (every expert's gradient, every gate's).
    static func mergeBackward(_ experts: [[Float]], _ gates: [Float], _ dMerged: [Float]) -> ([[Float]], [Double]) {
        let k = experts.count
        let gradients = (0..<k).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: n) }
        defer { gradients.forEach { $0.deallocate() } }
        for g in gradients { g.initialize(repeating: 0, count: n) }
        let dots = withPointers(experts) { pointers in
            dMerged.withUnsafeBufferPointer {
                expertMergeBackward(
                    dExperts: gradients, dMerged: $0.baseAddress!, experts: pointers, gates: gates, count: n)
            }
        }
        return (gradients.map { Array(UnsafeBufferPointer(start: $0, count: n)) }, dots)
    }

    @Test("expertMerge: every chosen expert and every gate", arguments: [1, 2, 3])
    func merge(k: Int) {
        var rng = SeededRNG(seed: 40 + UInt64(k))
        let experts = (0..<k).map { _ in rng.gaussianFloats(count: Self.n) }
        let gates = rng.gaussianFloats(count: k, std: 0.5)
        for j in 0..<k {
            expectGradient(at: experts[j], name: "expertMerge k=\(k) dExpert\(j)") { e in
                var replaced = experts
                replaced[j] = e
                return Self.merge(replaced, gates)
            } backward: { e, dy in
                var replaced = experts
                replaced[j] = e
                return Self.mergeBackward(replaced, gates, dy).0[j]
            }
        }
        expectGradient(at: gates, name: "expertMerge k=\(k) dGates") { g in
            Self.merge(experts, g)
        } backward: { g, dy in
            Self.mergeBackward(experts, g, dy).1.map(Float.init)
        }
    }

    @Test("expertRowBackward: the gate and the expert's output")
    func rowBackward() {
        var rng = SeededRNG(seed: 47)
        let expertOutput = rng.gaussianFloats(count: Self.n)
        let gate: Float = 0.37
        func backward(_ g: Float, _ eo: [Float], _ dy: [Float]) -> ([Float], Double) {
            var output = [Float](repeating: .nan, count: Self.n)  // overwritten, never read
            let dot = output.withUnsafeMutableBufferPointer { o in
                dy.withUnsafeBufferPointer { d in
                    eo.withUnsafeBufferPointer { e in
                        expertRowBackward(
                            output: o.baseAddress!, dOutput: d.baseAddress!, gate: g, expertOutput: e.baseAddress!,
                            count: Self.n)
                    }
                }
            }
            return (output, dot)
        }
        expectGradient(at: expertOutput, name: "expertRowBackward dExpertOutput") { eo in
            eo.map { gate * $0 }
        } backward: { eo, dy in
            backward(gate, eo, dy).0
        }
        expectGradient(at: [gate], name: "expertRowBackward dGate") { g in
            expertOutput.map { g[0] * $0 }
        } backward: { g, dy in
            [Float(backward(g[0], expertOutput, dy).1)]
        }
    }

    @Test("linearWeightGradient: two lanes' output ranges, overwriting and accumulating", arguments: [false, true])
    func laneSplitWeightGradient(accumulate: Bool) {
        let (rows, inF, outF) = (6, 5, 7)
        let (x, w, b) = linearInputs(rows: rows, inF: inF, outF: outF, seed: 53)
        expectGradient(at: w, name: "linearWeightGradient accumulate=\(accumulate)") { w in
            linear(x: x, w: w, b: b, rows: rows, inF: inF, outF: outF)
        } backward: { w, dy in
            // Overwriting must not read what was there: start from NaN then. Accumulating starts
            // from a non-zero gradient and returns what was added, so an overwrite would fail.
            let start = accumulate ? (0..<w.count).map { Float($0 % 7) - 3 } : [Float](repeating: .nan, count: w.count)
            var dw = start
            dw.withUnsafeMutableBufferPointer { pw in
                dy.withUnsafeBufferPointer { pdy in
                    x.withUnsafeBufferPointer { px in
                        for outputs in [0..<3, 3..<outF] {
                            linearWeightGradient(
                                dWeight: pw.baseAddress!, dOutput: pdy.baseAddress!, input: px.baseAddress!, rows: rows,
                                inFeatures: inF, outFeatures: outF, outputs: outputs, accumulate: accumulate)
                        }
                    }
                }
            }
            return accumulate ? zip(dw, start).map { $0 - $1 } : dw
        }
    }
}

/// Runs `body` with stable pointers to copies of `arrays`.
func withPointers<R>(_ arrays: [[Float]], _ body: ([UnsafePointer<Float>]) -> R) -> R {
    let copies = arrays.map { array -> UnsafeMutablePointer<Float> in
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(array.count, 1))
        p.initialize(from: array, count: array.count)
        return p
    }
    defer { copies.forEach { $0.deallocate() } }
    return body(copies.map { UnsafePointer($0) })
}
