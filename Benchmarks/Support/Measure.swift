// What every benchmark executable measures the same way: the machine's GEMM rates and medians.
import CBLAS
import Foundation
import Kernels

/// Seconds on the monotonic clock.
public func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// The fastest of `repeats` runs of `body`, in seconds.
public func bestSeconds(repeats: Int, _ body: () -> Void) -> Double {
    var best = Double.infinity
    for _ in 0..<repeats {
        let start = monotonicSeconds()
        body()
        best = min(best, monotonicSeconds() - start)
    }
    return best
}

/// Best-of-`repeats` single-precision GEMM rate, n×n×n, in GFLOP/s (2·n³ FLOPs per product), with
/// OpenBLAS's current thread count: the machine's `sgemm` rate every benchmark compares against.
public func sgemmRate(size n: Int, repeats: Int) -> Double {
    var rng = SeededRNG(seed: 1)
    let a = (0..<(n * n)).map { _ in rng.nextFloat() - 0.5 }
    var c = [Float](repeating: 0, count: n * n)
    let seconds = bestSeconds(repeats: repeats) {
        a.withUnsafeBufferPointer { pa in
            c.withUnsafeMutableBufferPointer { pc in
                gemm(
                    transposeA: false, transposeB: false, m: n, n: n, k: n, a: pa.baseAddress!, lda: n,
                    b: pa.baseAddress!, ldb: n, beta: 0, c: pc.baseAddress!, ldc: n)
            }
        }
    }
    return 2 * Double(n * n * n) / seconds / 1e9
}

/// The same for Double (`cblas_dgemm`): the ceiling of anything computed in Float64.
public func dgemmRate(size n: Int, repeats: Int) -> Double {
    var rng = SeededRNG(seed: 1)
    let a = (0..<(n * n)).map { _ in Double(rng.nextFloat()) - 0.5 }
    var c = [Double](repeating: 0, count: n * n)
    let seconds = bestSeconds(repeats: repeats) {
        a.withUnsafeBufferPointer { pa in
            c.withUnsafeMutableBufferPointer { pc in
                cblas_dgemm(
                    CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, pa.baseAddress!,
                    Int32(n), pa.baseAddress!, Int32(n), 0, pc.baseAddress!, Int32(n))
            }
        }
    }
    return 2 * Double(n * n * n) / seconds / 1e9
}

public func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// The line every benchmark starts with: timings mean little without the CPU and OpenBLAS's kernels
/// (`Machine`), and a warning when OpenBLAS runs kernels older than the CPU.
public func printMachine() {
    print("machine: \(Machine.summary)")
    if let warning = Machine.blasCoreWarning { print("warning: \(warning)") }
}
