// Gradient benchmark, Swift side (issue 6): loads a checkpoint and an image-classification
// mini-batch written by Benchmarks/run_bench.py, prints the loss and the gradient norm of every
// parameter, then times forward+backward (loss and all gradients) and prints JSON on stdout.
// The PyTorch and JAX peers (Benchmarks/peers/) read the same two files and print the same JSON.
//
//   GradientBenchmark run --checkpoint CKPT --batch BATCH [--warmup 5] [--iterations 20] [--lanes 2]
//   GradientBenchmark sgemm [--size 1024] [--repeats 5]
//
// Threads: OpenBLAS reads OPENBLAS_NUM_THREADS; the harness sets it to 2.
import BenchmarkSupport
import CBLAS
import Foundation
import Kernels
import Storage
import Training
import UniPerceiver

struct Failure: Error, CustomStringConvertible {
    let description: String
}

func option(_ name: String, in arguments: [String]) -> String? {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}

func intOption(_ name: String, in arguments: [String], default value: Int, minimum: Int = 1) throws -> Int {
    guard let text = option(name, in: arguments) else { return value }
    guard let n = Int(text), n >= minimum else {
        throw Failure(description: "\(name) wants an integer ≥ \(minimum), got \(text)")
    }
    return n
}

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e6 }

/// What OpenBLAS says about itself: the core type it picked at run time, its build string, threads.
func blasInfo() -> [String: Any] {
    [
        "blas": "OpenBLAS",
        "blas_core": String(cString: openblas_get_corename()),
        "blas_config": String(cString: openblas_get_config()).trimmingCharacters(in: .whitespaces),
        "blas_threads": Int(openblas_get_num_threads()),
        "linear_kernel": LinearKernel.active.rawValue,
    ]
}

/// VmHWM of /proc/self/status in MiB: this process's own peak since exec (`ru_maxrss` as seen by the
/// harness would carry over the harness's own peak through vfork/exec).
func peakResidentMiB() -> Double? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let fields = line.split(separator: " ")
        if fields.count >= 2, let kb = Double(fields[1]) { return kb / 1024 }
    }
    return nil
}

func emit(_ object: [String: Any]) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}


/// The mini-batch file: `images` F32 [B, C, S, S], `labels` I64 [B], `class_tokens` I64 [K, Lmax]
/// (padded), `class_lengths` I64 [K] (tokens including EOT, no SPE).
func loadBatch(_ path: String) throws -> Batch {
    let file = try SafeTensors.read(URL(fileURLWithPath: path))
    let images = try file.tensor("images")
    let labels = try file.ints("labels").values
    let tokens = try file.ints("class_tokens")
    let lengths = try file.ints("class_lengths").values
    let width = tokens.shape[1]
    let names = lengths.enumerated().map { k, n in Array(tokens.values[(k * width)..<(k * width + n)]) }
    return .imageClassification(images: images, labels: labels, classNames: names)
}

func run(_ arguments: [String]) throws {
    guard let checkpoint = option("--checkpoint", in: arguments), let batchPath = option("--batch", in: arguments)
    else { throw Failure(description: "run needs --checkpoint and --batch") }
    let warmup = try intOption("--warmup", in: arguments, default: 5, minimum: 0)
    let iterations = try intOption("--iterations", in: arguments, default: 20)

    let loadStart = now()
    var model = try Checkpoint.load(URL(fileURLWithPath: checkpoint))
    // Sequence lanes of the encoder (Model.lanes); 1 leaves the threading to OpenBLAS.
    model.lanes = try intOption("--lanes", in: arguments, default: model.lanes)
    let batch = try loadBatch(batchPath)
    let loadMs = now() - loadStart

    // The first pass gives the numbers the harness compares with the peers.
    var gradient = [Float](repeating: 0, count: model.parameters.count)
    let first = try model.forward(batch)
    model.backward(first, into: &gradient)
    var norms: [String: Double] = [:]
    for entry in model.table.entries {
        norms[entry.name] = gradient[entry.range].reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    }

    // A gradient sample overwrites the reused buffer (`Model.gradient(_:into:)`, no separate zeroing).
    for _ in 0..<warmup { model.gradient(try model.forward(batch), into: &gradient) }
    var times: [Double] = []
    for _ in 0..<iterations {
        let start = now()
        let pass = try model.forward(batch)
        model.gradient(pass, into: &gradient)
        times.append(now() - start)
    }
    var out = blasInfo()
    out["side"] = "swift"
    out["loss"] = first.loss
    out["grad_norms"] = norms
    out["times_ms"] = times
    out["load_ms"] = loadMs
    out["parameters"] = model.parameters.count
    out["lanes"] = model.lanes
    if let peak = peakResidentMiB() { out["peak_rss_mib"] = peak }
    try emit(out)
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch arguments.first {
    case "run":
        try run(arguments)
    case "sgemm":
        let size = try intOption("--size", in: arguments, default: 1024)
        let repeats = try intOption("--repeats", in: arguments, default: 5)
        var out = blasInfo()
        out["sgemm_gflops"] = sgemmRate(size: size, repeats: repeats)
        out["sgemm_size"] = size
        try emit(out)
    default:
        throw Failure(
            description: "usage: GradientBenchmark run --checkpoint CKPT --batch BATCH [--warmup N] [--iterations N] [--lanes N]\n"
                + "       GradientBenchmark sgemm [--size N] [--repeats N]")
    }
} catch {
    FileHandle.standardError.write(Data("GradientBenchmark: \(error)\n".utf8))
    exit(1)
}
