import CBLAS
import Foundation

/// What a run's timings depend on: the CPU, and the GEMM kernels OpenBLAS chose for it.
///
/// OpenBLAS's `DYNAMIC_ARCH` build picks its kernels from the CPU's model number when it loads.
/// A CPU newer than the library (Debian 12's 0.3.21 does not know Intel's model 207, Emerald
/// Rapids) gets the generic SSE3 `Prescott` kernels: `sgemm` then ran at 34 GFLOP/s on two cores
/// where the AVX-512 kernels reach several times that. Timings are only comparable with the kernel
/// name beside them, so the benchmarks and the demo report print it.
public enum Machine {
    /// The CPU's `model name` from `/proc/cpuinfo` ("unknown CPU" where there is none).
    public static let cpuModel: String = cpuinfoField("model name") ?? "unknown CPU"

    /// The kernel family OpenBLAS chose (`openblas_get_corename`), e.g. `Haswell`, `SkylakeX`, `Prescott`.
    public static let blasCore: String = String(cString: openblas_get_corename())

    /// OpenBLAS's own description of its build, e.g. `OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH …`.
    public static let blasConfig: String = String(cString: openblas_get_config())
        .trimmingCharacters(in: .whitespaces)

    /// One line for a report: CPU, cores, OpenBLAS version and kernels, and which code computes the
    /// linears' forward and input gradient (`LinearKernel.active`), since that changes the rounding.
    public static var summary: String {
        let version = blasConfig.split(separator: " ").prefix(2).joined(separator: " ")
        return "\(cpuModel), \(ProcessInfo.processInfo.activeProcessorCount) cores; "
            + "\(version.isEmpty ? "OpenBLAS" : version), \(blasCore) kernels; \(linearKernelSummary)"
    }

    /// `LinearKernel.active` in words.
    public static var linearKernelSummary: String {
        switch LinearKernel.active {
        case .unpacked: "linear forward and input gradient on the unpacked AVX-512 kernels"
        case .blas: "every linear on OpenBLAS"
        }
    }

    /// A warning when the CPU has AVX2 and FMA but OpenBLAS runs kernels written for older CPUs,
    /// which happens when it does not recognise the CPU; nil otherwise.
    public static var blasCoreWarning: String? {
        blasCoreWarning(core: blasCore, cpuFlags: cpuFlags)
    }

    /// The rule of `blasCoreWarning`, apart from the machine it runs on (tested on made-up inputs).
    public static func blasCoreWarning(core: String, cpuFlags: Set<String>) -> String? {
        guard cpuFlags.contains("avx2"), cpuFlags.contains("fma"),
            !avx2Cores.contains(core.lowercased())
        else { return nil }
        let suggestion = cpuFlags.contains("avx512f") ? "SkylakeX" : "Haswell"
        return "OpenBLAS chose its \(core) kernels, written for CPUs without AVX2, because it does not "
            + "recognise this CPU; its GEMMs run several times slower than they could. Setting "
            + "OPENBLAS_CORETYPE=\(suggestion) picks faster ones (README, \"Build flags\")."
    }

    /// OpenBLAS's x86-64 kernel families that use AVX2 or wider.
    static let avx2Cores: Set<String> = ["haswell", "zen", "skylakex", "cooperlake", "sapphirerapids", "excavator"]

    /// The CPU's feature flags (`flags` in `/proc/cpuinfo`); empty where there is none.
    public static let cpuFlags: Set<String> = Set((cpuinfoField("flags") ?? "").split(separator: " ").map(String.init))

    private static func cpuinfoField(_ name: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                return parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }
}
