import Datasets
import Foundation
import Kernels
import Storage
import Testing
import Training
import UniPerceiver

@testable import GradientProbe

@Suite struct ProbeTests {
    @Test func gramEqualsTheDotProductsOfTheRecordedRowsAndIsSymmetricPSD() throws {
        let fixture = try ProbeFixture()
        defer { fixture.remove() }
        let summary = try fixture.probe("probe.h5", ProbeFixture.options(storeGradients: true))
        #expect(summary.rows == 12)
        #expect(summary.spilled.isEmpty)
        // The wall time the CLI reports the share outside forward and backward of covers every timed
        // part, and the parts outside are named with what is left over.
        #expect(summary.gradientSeconds > 0 && summary.gramSeconds > 0)
        #expect(summary.rowSeconds > 0 && summary.fileSeconds > 0)
        #expect(
            summary.wallSeconds
                >= summary.gradientSeconds + summary.gramSeconds + summary.rowSeconds + summary.fileSeconds)
        #expect(summary.wallDescription.hasSuffix("% outside forward and backward"))
        #expect(summary.outsideDescription.hasPrefix("rows "))
        #expect(summary.outsideDescription.contains(", file "))
        #expect(summary.outsideDescription.contains(", the rest "))
        let contents = try ProbeFile.read(fixture.file("probe.h5"))
        let n = contents.rowCount
        #expect(n == 12)
        for p in contents.parameters {
            let (shape, rows) = try ProbeFile.gradients(fixture.file("probe.h5"), parameter: p.name)
            let width = p.shape.reduce(1, *)
            #expect(shape == [n, width])
            let naive = naiveGram(rows, count: n, width: width)
            var worst = 0.0
            for a in 0..<n {
                #expect(p.gram[a * n + a] >= 0)
                for b in 0..<n {
                    let g = p.gram[a * n + b]
                    #expect(g == p.gram[b * n + a])
                    let scale = (naive[a * n + a] * naive[b * n + b]).squareRoot()
                    if scale > 0 { worst = max(worst, abs(g - naive[a * n + b]) / scale) }
                    // Cauchy–Schwarz, the 2×2 minors of a PSD matrix.
                    #expect(g * g <= p.gram[a * n + a] * p.gram[b * n + b] * (1 + 1e-12))
                }
            }
            #expect(worst < 1e-12, "\(p.name)")
            // A quadratic form of a PSD matrix is non-negative.
            let x = (0..<n).map { Double(($0 * 7) % 5) - 2 }
            var form = 0.0
            for a in 0..<n { for b in 0..<n { form += x[a] * p.gram[a * n + b] * x[b] } }
            #expect(form >= -1e-9 * p.gram.map(abs).reduce(0, +))
        }
        // The encoder's gradients are genuinely non-zero with this fixture (the check can fail).
        let dense2 = try #require(contents.parameter(named: "encoder.layers.1.ffn.dense2.weight"))
        #expect((0..<n).allSatisfy { dense2.gram[$0 * n + $0] > 0 })
    }

    /// Every (task, mini-batch) masks and draws its gate noise from generators of its own: no two
    /// items share a masking or a noise seed, and no item's masking seed is its noise seed.
    @Test func everyItemHasGeneratorsOfItsOwn() {
        var seeds = Set<UInt64>()
        for task in TaskKind.allCases {
            for a in 0..<50 {
                seeds.insert(WorkPlan.maskingSeed(3, task: task, miniBatch: a))
                seeds.insert(WorkPlan.noiseSeed(3, task: task, miniBatch: a))
            }
        }
        #expect(seeds.count == 2 * 50 * TaskKind.allCases.count)
    }

    @Test func rowsAreTheModelsGradientSlicesOfTheRecordedBatches() throws {
        // Rebuild one mini-batch from the file's examples and the documented masking seed.
        let model = ProbeFixture.model()
        let fixture = try ProbeFixture(model: model)
        defer { fixture.remove() }
        let options = ProbeFixture.options(parameters: ["*.ffn.dense2.weight"], storeGradients: true)
        try fixture.probe("probe.h5", options)
        let contents = try ProbeFile.read(fixture.file("probe.h5"))
        let plan = try WorkPlan(options: options, dataset: ProbeFixture.dataset)
        for (t, task) in ProbeFixture.tasks.enumerated() {
            #expect(contents.examples[task.rawValue] == plan.examples[t])
        }
        let w = 1 * 4 + 2  // mlm, mini-batch 2
        let (loss, gradient) = try model.lossAndGradient(plan.batch(w, dataset: ProbeFixture.dataset))
        #expect(contents.losses["mlm"]?[2] == Float(loss))
        let entry = try #require(model.table.entry(named: "encoder.layers.0.ffn.dense2.weight"))
        let row = try ProbeFile.gradients(
            fixture.file("probe.h5"), parameter: entry.name, rows: w..<(w + 1)).values
        #expect(row == Array(gradient[entry.range]))
    }

    @Test func sameSeedSameFileDifferentSeedDifferentBatches() throws {
        let fixture = try ProbeFixture()
        defer { fixture.remove() }
        try fixture.probe("a.h5", ProbeFixture.options(seed: 9))
        try fixture.probe("b.h5", ProbeFixture.options(seed: 9))
        try fixture.probe("c.h5", ProbeFixture.options(seed: 10))
        let a = try ProbeFile.read(fixture.file("a.h5"))
        let b = try ProbeFile.read(fixture.file("b.h5"))
        let c = try ProbeFile.read(fixture.file("c.h5"))
        #expect(a.parameters == b.parameters)
        #expect(a.losses == b.losses)
        #expect(a.examples == b.examples)
        let cExamples = c.examples
        let cGrams = c.parameters.map(\.gram)
        #expect(a.examples != cExamples)
        #expect(a.parameters.map(\.gram) != cGrams)
        // Mini-batches of a task are distinct draws without replacement within an epoch.
        for examples in a.examples.values {
            let all = examples.flatMap { $0 }
            #expect(Set(all).count == all.count)
        }
    }

    @Test func spilledRowsGiveTheInMemoryGramBitForBit() throws {
        let fixture = try ProbeFixture()
        defer { fixture.remove() }
        let memory = try fixture.probe("memory.h5", ProbeFixture.options())
        let spilled = try fixture.probe("spilled.h5", ProbeFixture.options(memoryBudget: 0))
        // A budget that holds some parameters and spills the rest (table order).
        let table = Model.parameterTable(for: ProbeFixture.config)
        let firstTwo = table.entries.filter { $0.name.hasPrefix("encoder.layers.") }.prefix(2)
            .map { 12 * $0.count * 4 }.reduce(0, +)
        let mixed = try fixture.probe("mixed.h5", ProbeFixture.options(memoryBudget: firstTwo))
        #expect(memory.spilled.isEmpty)
        #expect(spilled.spilled.count == spilled.parameters)
        #expect(mixed.spilled.count == mixed.parameters - 2)
        let a = try ProbeFile.read(fixture.file("memory.h5"))
        let b = try ProbeFile.read(fixture.file("spilled.h5"))
        let c = try ProbeFile.read(fixture.file("mixed.h5"))
        let grams = (a.parameters.map(\.gram), b.parameters.map(\.gram), c.parameters.map(\.gram))
        #expect(grams.0 == grams.1)
        #expect(grams.0 == grams.2)
        #expect(a.losses == b.losses)
        #expect(b.parameters.filter(\.hasGradients).count == b.parameters.count)
        #expect(a.parameters.filter(\.hasGradients).isEmpty)
    }

    @Test(
        "every routing: the Gram is the stored rows' dot products, spilled equals in memory bit for bit, and a row is the model's gradient under the probe's gate noise",
        arguments: [Routing.attribute, .token, .context, .modality, .task])
    func everyRouting(routing: Routing) throws {
        var config = ProbeFixture.config
        config.routing = routing
        config.numExperts = 4
        config.topK = 2
        let model = try Model(config: config, seed: 13)
        let fixture = try ProbeFixture(model: model)
        defer { fixture.remove() }
        let options = ProbeFixture.options(storeGradients: true)
        try fixture.probe("memory.h5", options)
        try fixture.probe("spilled.h5", ProbeFixture.options(memoryBudget: 0))
        let memory = try ProbeFile.read(fixture.file("memory.h5"))
        let spilled = try ProbeFile.read(fixture.file("spilled.h5"))
        #expect(memory.parameters.map(\.gram) == spilled.parameters.map(\.gram))
        #expect(memory.parameters.contains { $0.name.contains(".experts.3.") }, "the experts are probed")
        let n = memory.rowCount
        for p in memory.parameters {
            let rows = try ProbeFile.gradients(fixture.file("memory.h5"), parameter: p.name).values
            let naive = naiveGram(rows, count: n, width: p.shape.reduce(1, *))
            for a in 0..<n {
                for b in 0..<n {
                    let scale = (naive[a * n + a] * naive[b * n + b]).squareRoot()
                    #expect(abs(p.gram[a * n + b] - naive[a * n + b]) <= 1e-12 * scale, "\(p.name) [\(a), \(b)]")
                }
            }
        }
        // Captioning's mini-batch 3, rebuilt with the gate noise the probe drew for it.
        let plan = try WorkPlan(options: options, dataset: ProbeFixture.dataset)
        let w = 2 * 4 + 3
        let pass = try model.forward(plan.batch(w, dataset: ProbeFixture.dataset), noise: plan.noise(w))
        var gradient = [Float](repeating: 0, count: model.table.totalCount)
        model.gradient(pass, into: &gradient)
        #expect(memory.losses["captioning"]?[3] == Float(pass.loss))
        for name in ["encoder.layers.0.ffn.dense2.experts.1.weight", "encoder.layers.1.attention.self.qkv_proj.gate.wg.weight"] {
            let entry = try #require(model.table.entry(named: name), "\(name) in a \(routing) model")
            let row = try ProbeFile.gradients(fixture.file("memory.h5"), parameter: name, rows: w..<(w + 1)).values
            #expect(row == Array(gradient[entry.range]), "\(name)")
        }
    }

    /// An attribute-routed MoE leaves every expert a mini-batch did not route to with an all-zero
    /// row. Spilling skips writing those rows (they read back as 0) and the Gram skips multiplying
    /// them: the Grams and the stored rows must still equal the in-memory run's bit for bit.
    @Test func moeZeroRowsSpilledAndInMemoryAgreeBitForBit() throws {
        let fixture = try ProbeFixture(model: ProbeFixture.moeModel())
        defer { fixture.remove() }
        try fixture.probe("memory.h5", ProbeFixture.options(storeGradients: true))
        let spilled = try fixture.probe("spilled.h5", ProbeFixture.options(memoryBudget: 0))
        #expect(spilled.spilled.count == spilled.parameters)
        let a = try ProbeFile.read(fixture.file("memory.h5"))
        let b = try ProbeFile.read(fixture.file("spilled.h5"))
        #expect(a.parameters.map(\.gram) == b.parameters.map(\.gram))
        let memoryFile = try HDF5File.open(fixture.file("memory.h5"))
        let spilledFile = try HDF5File.open(fixture.file("spilled.h5"))
        var zeroRows = 0
        var zeroRowBytes = 0
        for p in a.parameters {
            let path = ProbeFile.gradientsPath(p.name)
            let x = try memoryFile.readRows(0..<12, from: path, as: Float.self).values
            let y = try spilledFile.readRows(0..<12, from: path, as: Float.self).values
            #expect(x == y, "stored rows of \(p.name)")
            let width = x.count / 12
            let zeros = (0..<12).filter { r in x[(r * width)..<((r + 1) * width)].allSatisfy { $0 == 0 } }.count
            zeroRows += zeros
            zeroRowBytes += zeros * width * 4
        }
        #expect(zeroRows > 0, "some expert rows are all zero, so the skipping is exercised")
        // The zero rows (here most of them) were not written: the spilled file is smaller than its
        // rows alone would be (measured: 0.96 MB against 1.73 MB of rows; 2.67 MB when every row is
        // written).
        let rowBytes = a.parameters.map { 12 * $0.shape.reduce(1, *) * 4 }.reduce(0, +)
        let fileBytes = try FileManager.default.attributesOfItem(atPath: fixture.file("spilled.h5").path)[.size] as? Int ?? Int.max
        #expect(fileBytes < rowBytes, "spilled file \(fileBytes) B, rows \(rowBytes) B, zero rows \(zeroRowBytes) B")
    }

    /// The probe neither scans nor keeps the experts the model reports zero-filled
    /// (`Model.zeroRanges(of:)`). Three runs on the same gradients: the probe as shipped; the ranges
    /// withheld, so every tensor is scanned; and the ranges handed on over a copy of the gradient
    /// with a NaN and a 1 planted in the first reported range. All three files must be the same bit
    /// for bit: the ranges hold zeros, and the probe really reads nothing in them (a scan would stop
    /// at the NaN; keeping the row would put the 1 in its Gram and stored rows).
    @Test func knownZeroExpertsAreSkippedWithoutChangingTheFile() throws {
        let model = try ProbeFixture.moeModel()
        let fixture = try ProbeFixture(model: model)
        defer { fixture.remove() }
        let source = ErrorTests.source(fixture)
        let options = ProbeFixture.options(storeGradients: true)
        try Probe.run(
            model: model, dataset: ProbeFixture.dataset, source: source, options: options,
            out: fixture.file("shipped.h5"))
        var skippedValues = 0
        for (name, handOn) in [("scanning.h5", false), ("planted.h5", true)] {
            var reused = [Float](repeating: 0, count: model.parameters.count)
            var zeroed = Model.ZeroedExperts()
            _ = try Probe.run(
                model: model, dataset: ProbeFixture.dataset, source: source, options: options,
                out: fixture.file(name), progress: nil
            ) { (batch, noise) throws(ProbeError) in
                do throws(ModelError) {
                    let pass = try model.forward(batch, noise: noise)
                    model.gradient(pass, into: &reused, zeroed: &zeroed)
                    let ranges = model.zeroRanges(of: zeroed)
                    for range in ranges {
                        #expect(reused[range].allSatisfy { $0 == 0 }, "\(range)")
                        if !handOn { skippedValues += range.count }
                    }
                    guard handOn, let first = ranges.first(where: { $0.count >= 2 }) else {
                        return Probe.ProbeGradient(loss: pass.loss, values: reused)
                    }
                    // A copy: `reused` must keep its zeros for the next step (`zeroed`'s promise).
                    var planted = reused
                    planted[first.lowerBound] = .nan
                    planted[first.upperBound - 1] = 1
                    return Probe.ProbeGradient(loss: pass.loss, values: planted, zeroRanges: ranges)
                } catch { throw .model(error) }
            }
        }
        #expect(skippedValues > 0, "the MoE fixture leaves experts unchosen, so the skip is exercised")
        let shipped = try ProbeFile.read(fixture.file("shipped.h5"))
        let shippedFile = try HDF5File.open(fixture.file("shipped.h5"))
        for name in ["scanning.h5", "planted.h5"] {
            let other = try ProbeFile.read(fixture.file(name))
            #expect(shipped.parameters.map(\.gram) == other.parameters.map(\.gram), "\(name)")
            #expect(shipped.losses == other.losses, "\(name)")
            let otherFile = try HDF5File.open(fixture.file(name))
            for p in shipped.parameters {
                let path = ProbeFile.gradientsPath(p.name)
                #expect(
                    try shippedFile.readRows(0..<12, from: path, as: Float.self).values
                        == otherFile.readRows(0..<12, from: path, as: Float.self).values, "\(name): stored rows of \(p.name)")
            }
        }
    }

    /// writeGram on synthetic Grams: every chunk pattern (none, all, alternate, only the partial last
    /// chunk zero), n below, at and off a multiple of 8, n = 0: the read-back has the same bits,
    /// and exactly the all-zero chunks take no space.
    @Test func writeGramReadsBackTheSameBitsForEveryChunkPattern() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("GradientProbeTests-writeGram-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SeededRNG(seed: 25)
        for n in [0, 1, 5, 8, 12, 13, 17, 24, 300] {
            let chunk = ProbeFile.gramChunkRows(n)
            let chunks = (n + chunk - 1) / chunk
            for pattern in 0..<4 {
                let zeroChunk: (Int) -> Bool = { c in
                    switch pattern {
                    case 0: false
                    case 1: true
                    case 2: c % 2 == 1
                    default: c == chunks - 1 && n % chunk != 0
                    }
                }
                var gram = [Double](repeating: 0, count: n * n)
                for r in 0..<n where !zeroChunk(r / chunk) {
                    for c in 0..<n where !zeroChunk(c / chunk) {
                        gram[r * n + c] = Double.random(in: -1...1, using: &rng) * 1e-3 + 1e-9 / 3
                    }
                }
                let url = dir.appendingPathComponent("g\(n)-\(pattern).h5")
                let file = try HDF5File.create(url)
                try ProbeFile.writeGram(gram, rows: n, name: "w", to: file)
                try file.close()
                let reader = try HDF5File.open(url)
                let back = try reader.read(ProbeFile.gramPath("w"), as: Double.self)
                #expect(back.shape == [n, n], "n \(n) pattern \(pattern)")
                let differing = zip(back.values, gram).count { $0.bitPattern != $1.bitPattern }
                #expect(back.values.count == gram.count && differing == 0, "n \(n) pattern \(pattern): \(differing) values differ")
                // Exactly the all-zero chunks take no space; a Gram without one is one chunk.
                let zeros = (0..<chunks).count { zeroChunk($0) }
                if n > 0 {
                    #expect(
                        try reader.storedBytes(of: ProbeFile.gramPath("w")) == gramBytes(n: n, written: chunks - zeros),
                        "n \(n) pattern \(pattern)")
                }
            }
        }
    }

    /// The bytes a Gram of `n` rows takes in the file when `written` of its chunks of
    /// `ProbeFile.gramChunkRows(n)` rows are written: one chunk of the whole Gram when none was left
    /// out, otherwise each written chunk whole (a short last chunk is stored full size); every chunk
    /// carries a 4-byte Fletcher-32 checksum.
    func gramBytes(n: Int, written: Int) -> Int {
        let chunk = min(ProbeFile.gramChunkRows(n), n)
        return written == (n + chunk - 1) / chunk ? n * n * 8 + 4 : written * (chunk * n * 8 + 4)
    }

    /// `prefault` asks for every whole page of the buffer (in bytes, not elements), and a Linux of
    /// 5.14 or later takes the advice.
    @Test func prefaultAsksForEveryWholePageOfTheBuffer() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        for count in [0, 1, 1023, 3_000_000] {
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            defer { buffer.deallocate() }
            let (bytes, result) = prefault(UnsafeMutableRawBufferPointer(buffer))
            #if os(Linux)
                #expect(bytes <= 4 * count && bytes >= 4 * count - 2 * page, "\(count) Floats: \(bytes) bytes")
                if bytes > 0 && Self.linuxAtLeast(5, 14) { #expect(result == 0, "madvise on Linux \(Self.linuxRelease)") }
            #endif
        }
    }

    #if os(Linux)
        /// The running kernel's release, e.g. `6.1.0-18-amd64`.
        static var linuxRelease: String {
            var name = utsname()
            uname(&name)
            return withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }

        /// Whether the kernel is at least `major.minor` (where `MADV_POPULATE_WRITE` exists: 5.14).
        static func linuxAtLeast(_ major: Int, _ minor: Int) -> Bool {
            let version = linuxRelease.split(separator: ".").prefix(2).compactMap { Int($0.prefix { $0.isNumber }) }
            return version.count == 2 && (version[0], version[1]) >= (major, minor)
        }
    #endif

    /// Row buffers stay on small pages over their whole room, whatever the system's huge-page mode:
    /// `zeroedRows`' buffer and an expert's reserved room past the rows faulted in both carry
    /// `MADV_NOHUGEPAGE` (`nh` among the mapping's `VmFlags`) on a Linux built with huge pages. On a VM
    /// that hands freed memory back to its host, a fresh process's huge pages are faulted in by the
    /// host again, several times slower (`adviseSmallPages`, `Benchmarks/row_memory_hugepages.c`).
    @Test func rowBuffersKeepSmallPages() throws {
        #if os(Linux)
            let supported = FileManager.default.fileExists(atPath: "/sys/kernel/mm/transparent_hugepage/enabled")
            let plain = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3_000_000)
            defer { plain.deallocate() }
            let (bytes, result) = adviseSmallPages(UnsafeMutableRawBufferPointer(plain))
            #expect(bytes >= 4 * 3_000_000 - 2 * Int(sysconf(Int32(_SC_PAGESIZE))))
            if supported { #expect(result == 0, "madvise(MADV_NOHUGEPAGE) gave \(result) with huge pages supported") }
            // A kernel without huge pages refuses the advice; its pages are small anyway.
            guard result == 0 else { return }
            #expect(Self.vmFlags(at: plain.baseAddress! + 1_500_000)?.contains("nh") == true, "adviseSmallPages")

            let rows = zeroedRows(3_000_000)
            rows.withUnsafeBufferPointer { buffer in
                #expect(Self.vmFlags(at: buffer.baseAddress! + 1_500_000)?.contains("nh") == true, "zeroedRows")
            }
            var values: [Float] = []
            values.reserveCapacity(20_000_000)
            var populated = 0
            prefaultAhead(&values, needed: 1000, populated: &populated)
            values.append(contentsOf: [Float](repeating: 1, count: 1000))
            values.withUnsafeBufferPointer { buffer in
                // Far past the room faulted in (at most a few MB), inside the reserved 80 MB.
                let ahead = buffer.baseAddress! + 15_000_000
                #expect(populated < 15_000_000)
                #expect(Self.vmFlags(at: ahead)?.contains("nh") == true, "prefaultAhead's reserved room")
            }
        #endif
    }

    #if os(Linux)
        /// The `VmFlags` of the mapping of this process that holds `address` (`/proc/self/smaps`).
        static func vmFlags(at address: UnsafePointer<Float>) -> [Substring]? {
            // Read line by line: /proc files report a size of 0, so whole-file reads come back empty.
            guard let file = fopen("/proc/self/smaps", "r") else { return nil }
            defer { fclose(file) }
            var lines: [String] = []
            var line: UnsafeMutablePointer<CChar>? = nil
            var capacity = 0
            defer { free(line) }
            while getline(&line, &capacity, file) > 0 { lines.append(String(cString: line!)) }
            let target = UInt(bitPattern: address)
            var inside = false
            for line in lines {
                let fields = line.split(whereSeparator: \.isWhitespace)
                if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
                    let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                    inside = bounds.count == 2 && bounds[0] <= target && target < bounds[1]
                } else if inside && fields.first == "VmFlags:" {
                    return Array(fields.dropFirst())
                }
            }
            return nil
        }
    #endif

    /// `prefaultAhead` before each append of an expert's row: the room it has faulted in always
    /// covers the rows appended and stays inside the reserved capacity, the rows keep their values,
    /// and (Linux ≥ 5.14, where the advice is taken) the pages of the room ahead of the first row are
    /// resident before anything is written to them.
    @Test func prefaultAheadCoversEachAppendAndStaysInTheReservedRoom() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        for (width, rows) in [(1, 5), (1000, 40), (300_000, 9), (1_100_000, 2)] {
            var values: [Float] = []
            values.reserveCapacity(width * rows)
            var populated = 0
            var advised = false
            for r in 0..<rows {
                prefaultAhead(&values, needed: width, populated: &populated)
                #expect(populated >= values.count + width && populated <= values.capacity, "width \(width), row \(r)")
                if r == 0 {
                    // At least 4 MB (1 Mi Floats) ahead of the start, as far as the room goes.
                    #expect(populated >= min(values.capacity, max(width, 1 << 20)), "width \(width): \(populated) Floats")
                }
                #if os(Linux)
                    // Whole pages between the end of the data and the end of the faulted-in room.
                    let first = (values.count * 4 + page - 1) / page
                    let last = (populated * 4) / page
                    if last > first + 1 {
                        let resident = values.withUnsafeBufferPointer { buffer -> Bool in
                            let base = UInt(bitPattern: buffer.baseAddress!)
                            // The buffer's first page may start before the allocation's: align down.
                            let start = (base + UInt(first * page)) / UInt(page) * UInt(page)
                            var flags = [UInt8](repeating: 0, count: last - first)
                            let result = mincore(UnsafeMutableRawPointer(bitPattern: start), (last - first) * page, &flags)
                            return result == 0 && flags.allSatisfy { $0 & 1 == 1 }
                        }
                        if r == 0 { advised = resident }  // the room ahead of the first row, fresh memory
                    }
                #endif
                values.append(contentsOf: (0..<width).map { Float(r * width + $0) })
            }
            #expect(values == (0..<(width * rows)).map { Float($0) })
            // A shared array is copied on its first mutation into room for its count alone: the
            // room faulted in must be the copy's, never past its end.
            var shared: [Float] = []
            shared.reserveCapacity(4 * width + 8)
            shared.append(contentsOf: values.prefix(width))
            let other = shared
            var done = 0
            prefaultAhead(&shared, needed: width, populated: &done)
            #expect(done <= shared.capacity && other == shared, "width \(width): \(done) of \(shared.capacity)")
            #if os(Linux)
                if width >= 300_000 && Self.linuxAtLeast(5, 14) {
                    #expect(advised, "width \(width): the pages ahead of the first row were not resident before its write")
                }
            #endif
        }
    }

    /// The row buffers are zeros whatever memory they get (malloc may hand back a dirty block) and
    /// however the pages are faulted in (`MADV_POPULATE_WRITE`, refused by old kernels).
    @Test func rowBuffersAreZeros() {
        for count in [0, 1, 1023, 1025, 3_000_000] {
            // A block of NaNs freed just before, for malloc to hand back.
            do {
                let dirty = [Float](repeating: .nan, count: count)
                #expect(dirty.count == count)
            }
            let rows = zeroedRows(count)
            #expect(rows.count == count)
            #expect(rows.allSatisfy { $0.bitPattern == 0 }, "\(count)")
        }
    }

    @Test func gramChunksOfZeroRowsAreNotWrittenAndReadBackAsZero() throws {
        let fixture = try ProbeFixture(model: ProbeFixture.moeModel())
        defer { fixture.remove() }
        try fixture.probe("probe.h5", ProbeFixture.options(storeGradients: true))
        let contents = try ProbeFile.read(fixture.file("probe.h5"))
        let file = try HDF5File.open(fixture.file("probe.h5"))
        let n = contents.rowCount
        let chunk = ProbeFile.gramChunkRows(n)
        #expect(chunk == 8 && n == 12, "two chunks per Gram: rows 0–7 and 8–11")
        var skipped = 0
        var whole = 0
        for p in contents.parameters {
            // The Gram read back is the Gram of the stored rows: zero exactly where a row is zero.
            let rows = try file.readRows(0..<n, from: ProbeFile.gradientsPath(p.name), as: Float.self).values
            let width = rows.count / n
            let zeroRow = (0..<n).map { r in rows[(r * width)..<((r + 1) * width)].allSatisfy { $0 == 0 } }
            for a in 0..<n {
                for b in 0..<n where zeroRow[a] || zeroRow[b] {
                    #expect(p.gram[a * n + b].bitPattern == 0, "\(p.name) (\(a), \(b))")
                }
                if !zeroRow[a] { #expect(p.gram[a * n + a] > 0, "\(p.name) row \(a)") }
            }
            // Only the 8-row chunks holding a non-zero row take space (each with its 4-byte
            // checksum); a Gram with no all-zero chunk is one chunk, as before.
            let written = stride(from: 0, to: n, by: chunk).filter { r0 in
                (r0..<min(r0 + chunk, n)).contains { !zeroRow[$0] }
            }.count
            let chunks = (n + chunk - 1) / chunk
            skipped += chunks - written
            whole += written == chunks ? 1 : 0
            #expect(try file.storedBytes(of: ProbeFile.gramPath(p.name)) == gramBytes(n: n, written: written), "\(p.name)")
        }
        #expect(skipped > 0, "some expert's rows 0–7 or 8–11 are all zero, so a chunk is left out")
        #expect(whole > 0, "and some Gram (a layer norm's, say) has no zero chunk and is written whole")
    }

    @Test func fileHoldsEveryAttributeOfTheSchemaAndNoStrayFile() throws {
        let fixture = try ProbeFixture()
        defer { fixture.remove() }
        let out = fixture.file("probe.h5")
        try fixture.probe("probe.h5", ProbeFixture.options(seed: UInt64(1) << 63 + 5))
        #expect(try fixture.contents() == ["model.safetensors", "probe.h5"])
        let contents = try ProbeFile.read(out)
        let m = contents.metadata
        #expect(try ModelConfig.fromJSON(m.modelConfig) == ProbeFixture.config)
        #expect(m.checkpointPath == fixture.checkpoint.path)
        #expect(m.checkpointSHA256 == SHA256.hex(of: [UInt8](try Data(contentsOf: fixture.checkpoint))))
        #expect(m.dataPath == ProbeFixture.dataURL.path)
        #expect(m.dataSHA256.count == 64)
        #expect(m.kind == "dense")
        #expect(m.routing == "none")
        #expect(m.tasks == ["image-classification", "mlm", "captioning"])
        #expect(m.samplesPerTask == 4)
        #expect(m.batchSize == 4)
        #expect(m.seed == UInt64(1) << 63 + 5)
        #expect(m.split == "train")
        #expect(m.toolVersion == Probe.toolVersion)
        #expect(ISO8601DateFormatter().date(from: m.created) != nil)
        #expect(m.shard == nil)
        for task in m.tasks {
            #expect(contents.losses[task]?.count == 4)
            #expect(contents.losses[task]?.allSatisfy { $0.isFinite && $0 > 0 } == true)
            #expect(contents.examples[task]?.map(\.count) == [4, 4, 4, 4])
            #expect(contents.excluded[task] == [false, false, false, false])
        }
        let qkv = try #require(contents.parameter(named: "encoder.layers.1.attention.self.qkv_proj.weight"))
        #expect(qkv.shape == [48, 16])
        #expect(qkv.layer == 1)
        #expect(qkv.role == "attention.self.qkv_proj")
        #expect(qkv.expert == -1)
        #expect(qkv.gram.count == 144)

        // What h5py sees: the raw root attributes and dataset types of the schema.
        let file = try HDF5File.open(out)
        defer { file.discard() }
        #expect(try file.stringAttribute("format") == "task-interference/probe")
        #expect(try file.intAttribute("version") == 1)
        #expect(try file.stringsAttribute("checkpoint").count == 2)
        #expect(try file.read("/tasks/mlm/loss", as: Float.self).shape == [4])
        #expect(try file.read("/tasks/mlm/examples", as: Int64.self).shape == [4, 4])
        #expect(try file.read("/parameters/encoder.layers.0.ffn.dense2.weight/gram", as: Double.self).shape == [12, 12])
        #expect(try file.intsAttribute("shape", at: "/parameters/encoder.layers.0.ffn.dense2.weight") == [16, 32])
    }

    @Test func attributesOnlyAndChosenParameters() throws {
        let fixture = try ProbeFixture()
        defer { fixture.remove() }
        try fixture.probe("probe.h5", ProbeFixture.options())
        let name = "encoder.layers.0.ffn.dense2.weight"
        let one = try ProbeFile.read(fixture.file("probe.h5"), parameters: [name])
        #expect(one.parameters.map(\.name) == [name])
        let light = try ProbeFile.read(fixture.file("probe.h5"), grams: false)
        #expect(light.parameters.count == 28)
        #expect(light.parameters.allSatisfy { $0.gram.isEmpty })
        #expect(throws: ProbeError.missingDataset(file: fixture.file("probe.h5").path, path: "/parameters/nope")) {
            try ProbeFile.read(fixture.file("probe.h5"), parameters: ["nope"])
        }
    }
}
