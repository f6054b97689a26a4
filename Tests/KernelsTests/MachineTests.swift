import Kernels
import Testing

/// The benchmarks and the demo report name the CPU and OpenBLAS's kernels, and warn when OpenBLAS
/// runs kernels older than the CPU (it falls back to `Prescott` on CPUs it does not know).
@Suite struct MachineTests {
    @Test("a warning only when the CPU has AVX2 and FMA and OpenBLAS runs a pre-AVX2 kernel")
    func blasCoreWarningRule() throws {
        let avx512: Set<String> = ["sse2", "avx", "avx2", "fma", "avx512f"]
        let avx2: Set<String> = ["sse2", "avx", "avx2", "fma"]
        let old: Set<String> = ["sse2", "sse3", "avx"]
        let prescott = try #require(Machine.blasCoreWarning(core: "Prescott", cpuFlags: avx512))
        #expect(prescott.contains("Prescott") && prescott.contains("OPENBLAS_CORETYPE=SkylakeX"))
        let sandy = try #require(Machine.blasCoreWarning(core: "Sandybridge", cpuFlags: avx2))
        #expect(sandy.contains("OPENBLAS_CORETYPE=Haswell"))
        for core in ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"] {
            #expect(Machine.blasCoreWarning(core: core, cpuFlags: avx512) == nil, "\(core)")
        }
        #expect(Machine.blasCoreWarning(core: "Prescott", cpuFlags: old) == nil, "the right kernels for an old CPU")
        // AVX2 without FMA (some VMs mask it): OpenBLAS's Haswell kernels need both (mutant K41).
        #expect(Machine.blasCoreWarning(core: "Prescott", cpuFlags: ["sse2", "avx", "avx2"]) == nil, "AVX2 without FMA")
        #expect(Machine.blasCoreWarning(core: "Prescott", cpuFlags: []) == nil, "no /proc/cpuinfo: no guess")
    }

    @Test("the summary names the kernels OpenBLAS reports")
    func summaryNamesTheKernels() {
        #expect(!Machine.blasCore.isEmpty)
        #expect(Machine.summary.contains("\(Machine.blasCore) kernels"))
        #expect(Machine.blasConfig.hasPrefix("OpenBLAS"))
    }

    /// Which code computes the linears changes the rounding of every result, so every report's
    /// machine line says it.
    @Test("the summary names the linear kernel in use")
    func summaryNamesTheLinearKernel() {
        let expected = LinearKernel.active == .unpacked && LinearKernel.unpackedAvailable
            ? "linear forward and input gradient on the unpacked AVX-512 kernels" : "every linear on OpenBLAS"
        #expect(Machine.summary.hasSuffix("; " + expected))
    }
}
