// swift-tools-version:6.0
// TaskInterference: measures task interference in a small Uni-Perceiver (dense or Conditional MoE).
// Module map: README.md ("Code map") and ../shared/design/architecture.md.
import Foundation
import PackageDescription

// `TI_TARGET_CPU` (set by the Makefile): the CPU the modules with the hot Swift kernels are compiled
// for; unset or empty, the baseline x86-64. Why and what it costs: README.md, "Build flags".
let targetCPU = ProcessInfo.processInfo.environment["TI_TARGET_CPU"] ?? ""
let cpu: [SwiftSetting] = targetCPU.isEmpty ? [] : [.unsafeFlags(["-target-cpu", targetCPU])]

let package = Package(
    name: "TaskInterference",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "interference", targets: ["InterferenceCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // C libraries, found through pkg-config (Debian: libopenblas-dev, libhdf5-dev).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5System", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        // A small C shim: HDF5's constants are macros that call H5open(), which Swift cannot import;
        // also the Fletcher-32 checksum of the chunks we write directly (optimised in debug too).
        .target(name: "CHDF5", dependencies: ["CHDF5System"], cSettings: [.unsafeFlags(["-O2"])]),
        // The probe's Float64 Gram kernels (scalar, AVX2, AVX-512, chosen at run time). Optimised in
        // debug builds too, so that `make test`'s probes do not crawl; no contraction, so every path
        // sums the same way.
        .target(name: "CGramKernel", cSettings: [.unsafeFlags(["-O2", "-ffp-contract=off"])]),

        // A linear's forward and input gradient on AVX-512 CPUs, unpacked (Kernels/Linear.swift says why);
        // always optimised, as CGramKernel: at -O0 (`make test`) they would run many times slower than BLAS.
        .target(name: "CLinearKernel", cSettings: [.unsafeFlags(["-O2"])]),
        .target(name: "Kernels", dependencies: ["CBLAS", "CLinearKernel"], exclude: ["README.md", "fit_erf.py"], swiftSettings: cpu),
        // SHA-256's compression on the x86 SHA extensions, when the CPU has them (Storage/SHA256.swift).
        .target(name: "CSHA256", cSettings: [.unsafeFlags(["-O2"])]),
        .target(name: "Storage", dependencies: ["CHDF5", "CSHA256", "Kernels"], exclude: ["README.md"]),
        .target(name: "UniPerceiver", dependencies: ["Kernels"], exclude: ["README.md"], swiftSettings: cpu),
        .target(name: "Datasets", dependencies: ["Kernels", "Storage", "UniPerceiver"], exclude: ["README.md"]),
        .target(name: "Training", dependencies: ["Kernels", "UniPerceiver", "Datasets", "Storage"], exclude: ["README.md"]),
        .target(
            name: "GradientProbe",
            dependencies: [
                "CGramKernel", "Kernels", "UniPerceiver", "Datasets", "Storage", "Training", "Interference",
            ],
            exclude: ["README.md"], swiftSettings: cpu),
        .target(name: "Interference", dependencies: ["Kernels", "Storage"], exclude: ["README.md"]),
        .target(name: "Reporter", dependencies: ["Interference", "Storage"], exclude: ["README.md"]),
        .executableTarget(
            name: "InterferenceCLI",
            dependencies: [
                "Kernels", "Storage", "UniPerceiver", "Datasets", "Training", "GradientProbe",
                "Interference", "Reporter",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Benchmarks are executables run on purpose (README "Benchmarks"), never from the tests.
        .executableTarget(
            name: "ModelBenchmark", dependencies: ["BenchmarkSupport", "Kernels", "UniPerceiver", "CBLAS"],
            path: "Benchmarks/ModelBenchmark"),
        .target(name: "TestSupport", dependencies: ["Kernels", "Storage"]),

        .testTarget(name: "KernelsTests", dependencies: ["CLinearKernel", "Kernels", "Storage", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(
            name: "StorageTests", dependencies: ["Storage", "CHDF5", "Kernels", "TestSupport"],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "UniPerceiverTests",
            dependencies: ["UniPerceiver", "Storage", "Kernels", "TestSupport"],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "InterferenceTests", dependencies: ["Interference", "Storage", "TestSupport"],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "ReporterTests", dependencies: ["Reporter", "Interference", "TestSupport"],
            exclude: ["Snapshots"]),
        .testTarget(
            name: "DatasetsTests", dependencies: ["Datasets", "UniPerceiver", "Storage", "TestSupport"]),
        .testTarget(
            name: "TrainingTests", dependencies: ["Training", "UniPerceiver", "Storage", "TestSupport"],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "GradientProbeTests",
            dependencies: [
                "GradientProbe", "CGramKernel", "UniPerceiver", "Datasets", "Storage", "Training", "Interference",
                "TestSupport",
            ]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport"], exclude: ["Baselines", "Fuzz"]),
        // Swift side of the PyTorch/JAX comparison (issue 6); driven by Benchmarks/run_bench.py.
        .executableTarget(
            name: "GradientBenchmark",
            dependencies: ["BenchmarkSupport", "CBLAS", "Kernels", "Storage", "UniPerceiver", "Training"],
            path: "Benchmarks/GradientBenchmark"),
        // The probe's Float64 Gram against the machine's sgemm and dgemm rates (issue 5).
        .executableTarget(
            name: "GramBenchmark",
            dependencies: ["BenchmarkSupport", "CBLAS", "CGramKernel", "Kernels", "UniPerceiver", "GradientProbe"],
            path: "Benchmarks/GramBenchmark"),
        .target(name: "BenchmarkSupport", dependencies: ["CBLAS", "Kernels"], path: "Benchmarks/Support"),
    ],
    swiftLanguageModes: [.v6]
)
