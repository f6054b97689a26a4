// Test fixtures and THE table of tolerances.
//
//   Tolerance.kernel, .fastVersusNaive, .accumulate                (rtol, atol) pairs for expectClose
//   Tolerance.modelLossRelative, .modelGradientRelative            relative bounds of the model fixtures
//   Tolerance.finiteDifference…                                    GradientCheck defaults
//   fixtureURL("kernels.safetensors")   -> <directory of the calling test file>/Fixtures/kernels.safetensors
//   try loadFixture("kernels.safetensors") -> Fixture   (throws FixtureError: fails the test with the
//       file's path and the regenerate command when the file is missing or unreadable)
//   fixture.floats("layernorm.x") -> [Float]      inputs (any float dtype, rounded to Float)
//   fixture.tensor("layernorm.x") -> Tensor
//   fixture.doubles("layernorm.y") -> DoubleTensor  outputs (F64 exact), for expectClose
//   fixture.ints("cross_entropy.targets") -> [Int]
//   fixture.metadata, fixture.names, fixture.file (the underlying SafeTensorsFile)
//
// Every tolerance used by a test lives here, with the reason for its value, so none is a magic
// number in a test (house-style §6).

import Foundation
import Kernels
import Storage
import Testing

/// An element-wise tolerance: `|actual − expected| ≤ atol + rtol · |expected|`.
public struct Tolerance: Sendable, Equatable, CustomStringConvertible {
    public var rtol: Double
    public var atol: Double

    public init(rtol: Double, atol: Double) {
        self.rtol = rtol
        self.atol = atol
    }

    public var description: String { "rtol \(rtol) / atol \(atol)" }
}

extension Tolerance {
    // MARK: Golden fixtures (Float32 code against a PyTorch float64 reference)

    /// A single kernel against PyTorch float64 (house-style §6 tier 2).
    public static let kernel = Tolerance(rtol: 1e-5, atol: 1e-6)
    /// Whole-model loss against the float64 model, `|l − l_ref| / |l_ref|`: the bound issues 2 and
    /// 4 set (measured on 2026-12-06 under OpenBLAS's `Prescott` kernels: dense ≤ 6.8e-7, MoE ≤ 1.0e-6).
    public static let modelLossRelative = 1e-5
    /// Whole-model parameter gradients per tensor, `‖g − g_ref‖ / ‖g_ref‖`: the issues' bound
    /// (measured the same day: dense ≤ 3.0e-6, MoE ≤ 1.7e-5, a gate's `wg` under retrieval).
    public static let modelGradientRelative = 1e-4

    /// Five AdamW steps in Float32 against `torch.optim.AdamW` in float64 from the same Float32
    /// gradients, per tensor `‖p − p_ref‖ / ‖p_ref‖` (parameters after each step, and the final
    /// moments). Float32 storage of p, m and v costs ~1e-7 per step; a wrong decay group, bias
    /// correction or ε placement moves a tensor by ≥ lr·wd ≈ 5e-5 of itself, or its moments by O(1).
    public static let adamWRelative = 1e-5

    // MARK: One model, two computations (lanes, read rows, one expert, pre-merged experts)

    /// The loss of two computations that differ only in GEMM shapes or summation order (lanes
    /// against one lane, one expert against the dense model), relative.
    public static let reorderedLossRelative = 1e-6
    /// The loss of the read-rows last layer against every row: 1e-5, because OpenBLAS's `Prescott`
    /// kernels round a GEMM row by where it falls in their blocking, and retrieval's logit scale
    /// amplified that to 2.5e-6 (2026-12-06); a wrong or missing row moves the loss by O(1).
    public static let readRowsLossRelative = 1e-5
    /// Per tensor, `‖a − b‖ / ‖b‖`, for gradients two such computations sum in different orders:
    /// summation order moves single small elements by more than an elementwise bound that would
    /// still catch a bug, and a dropped or misplaced row moves a tensor by O(its norm).
    public static let reorderedGradientRelative = 1e-5
    /// The same for MoE gates (and, for read rows, every MoE tensor): a gate's gradient is
    /// g1·g2·(∂L/∂g1 − ∂L/∂g2), a small difference of dot products whose Float sums the two
    /// computations split differently; the MoE fixtures' bound.
    public static let reorderedGateGradientRelative = 1e-4
    /// The one-expert MoE's gradients against the dense model's, elementwise.
    public static let oneExpert = Tolerance(rtol: 1e-5, atol: 1e-6)
    /// Pre-merged against unmerged experts, logits elementwise and the loss relative (issue 4:
    /// "agree to 1e-5").
    public static let premerged = Tolerance(rtol: 1e-5, atol: 1e-5)

    // MARK: Fast kernel against its naive twin (both ours)

    /// Fast Float32 kernel against its naive Double-accumulating twin on small odd shapes: the
    /// same bound as `kernel`, since the twin plays the float64 reference's role.
    public static let fastVersusNaive = Tolerance(rtol: 1e-5, atol: 1e-6)

    /// The same for a product whose reduction runs over `k` terms in one Float32 sum, as the unpacked
    /// linear kernels' do: its rounding grows with k, so the absolute bound does too (1e-7 per term
    /// of values in [-1, 1]; at k = 256 they differed from the twin by up to 1.1e-5).
    public static func fastVersusNaive(reduction k: Int) -> Tolerance {
        Tolerance(rtol: 1e-5, atol: max(1e-6, 1e-7 * Double(k)))
    }

    /// Accumulate contract: `backward` twice vs 2× once, and start + once vs once into `start`.
    /// Not exact: a kernel that sums over rows adds each row's term to a running buffer, so the
    /// second call rounds differently (a few Float ulps of values up to ~10).
    public static let accumulate = Tolerance(rtol: 1e-6, atol: 1e-6)

    // MARK: Finite differences (GradientCheck defaults)

    /// A coordinate passes when the CS231n score `|a − n| / max(floor, |a| + |n|)` is at most this…
    public static let finiteDifferenceRelative = 1e-2
    /// …or when `|a − n|` is at most this (Float32 round-off floor of a central difference).
    public static let finiteDifferenceAbsolute = 1e-4
    /// Denominator floor of the relative score.
    public static let finiteDifferenceRelativeFloor = 1e-8
    /// `h = step · max(1, |x|)`; the top of the 1e-3…5e-3 range for Float32 (≈ ε^(1/3)). With
    /// 1e-3 the round-off of a Float32 forward (≈ 6e-8·Σ|R ⊙ y| over ~100 outputs, divided by 2h)
    /// reached 1.5e-4 abs on a 4×33 LayerNorm and failed near-zero gradients; the truncation error
    /// at 5e-3 (h²/6 · f‴) stays below 1e-5 for these smooth kernels.
    public static let finiteDifferenceStep = 5e-3
    /// Inputs up to this many entries are checked at every coordinate…
    public static let finiteDifferenceExhaustiveLimit = 256
    /// …larger ones at this many random coordinates (CS231n's sparse check).
    public static let finiteDifferenceCoordinates = 48
}

// MARK: - Locating fixtures

/// The command that regenerates every fixture (it writes both `Fixtures/` folders).
public let regenerateFixturesCommand =
    "/opt/refvenv/bin/python Tests/UniPerceiverTests/Fixtures/make_fixtures.py"

/// `<directory of the calling file>/Fixtures/<name>`: fixtures live beside the test that reads
/// them (excluded from the target in Package.swift and found through `#filePath`).
public func fixtureURL(_ name: String, filePath: String = #filePath) -> URL {
    URL(fileURLWithPath: filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent(name)
}

/// Why a fixture could not be used; every message names the file and how to regenerate it.
public enum FixtureError: Error, Sendable, CustomStringConvertible {
    /// The fixture file does not exist.
    case missing(path: String)
    /// The file exists but Storage refused it, or a tensor or metadata entry is wrong.
    case unusable(path: String, underlying: String)

    public var description: String {
        switch self {
        case .missing(let path):
            return
                "fixture \(path) is missing; regenerate it with `\(regenerateFixturesCommand)` (from the package root)"
        case .unusable(let path, let underlying):
            return
                "fixture \(path) is unusable: \(underlying); regenerate it with `\(regenerateFixturesCommand)`"
        }
    }
}

/// Loads `<directory of the calling file>/Fixtures/<name>` (a safetensors file) through Storage.
///
/// Never skips: a missing or damaged fixture throws `FixtureError`, which fails the calling test
/// with the file's path and the regenerate command.
/// - Parameter requiredMetadata: `__metadata__` entries that must be present with these values
///   (e.g. `["fixture_version": "1"]`); a mismatch is a `FixtureError.unusable` naming both values.
public func loadFixture(
    _ name: String, requiredMetadata: [String: String] = [:], filePath: String = #filePath
) throws(FixtureError) -> Fixture {
    let url = fixtureURL(name, filePath: filePath)
    guard FileManager.default.fileExists(atPath: url.path) else { throw .missing(path: url.path) }
    let file: SafeTensorsFile
    do {
        file = try SafeTensors.read(url)
    } catch {
        throw .unusable(path: url.path, underlying: error.description)
    }
    for key in requiredMetadata.keys.sorted() where file.metadata[key] != requiredMetadata[key] {
        throw .unusable(
            path: url.path,
            underlying:
                "metadata \(key) is \(file.metadata[key].map { "'\($0)'" } ?? "absent"), expected '\(requiredMetadata[key]!)'"
        )
    }
    return Fixture(file: file, path: url.path)
}

/// A loaded safetensors fixture with accessors that turn Storage errors into `FixtureError`.
public struct Fixture: Sendable {
    /// The underlying file (metadata, names, shapes, dtypes).
    public let file: SafeTensorsFile
    /// The fixture's path, as used in messages.
    public let path: String

    public var metadata: [String: String] { file.metadata }
    public var names: [String] { file.names }

    /// A floating-point tensor rounded to Float (inputs fed to Float32 kernels).
    public func tensor(_ name: String) throws(FixtureError) -> Tensor {
        do { return try file.tensor(name) } catch {
            throw .unusable(path: path, underlying: error.description)
        }
    }

    /// A floating-point tensor's values rounded to Float.
    public func floats(_ name: String) throws(FixtureError) -> [Float] { try tensor(name).data }

    /// A floating-point tensor in Double (F64 exact): reference outputs.
    public func doubles(_ name: String) throws(FixtureError) -> DoubleTensor {
        do {
            let (shape, values) = try file.doubles(name)
            return DoubleTensor(shape: shape, data: values)
        } catch {
            throw .unusable(path: path, underlying: error.description)
        }
    }

    /// An integer (or bool) tensor's values.
    public func ints(_ name: String) throws(FixtureError) -> [Int] {
        do { return try file.ints(name).values } catch {
            throw .unusable(path: path, underlying: error.description)
        }
    }

    /// The shape of a tensor.
    public func shape(of name: String) throws(FixtureError) -> [Int] {
        do { return try file.shape(of: name) } catch {
            throw .unusable(path: path, underlying: error.description)
        }
    }
}
