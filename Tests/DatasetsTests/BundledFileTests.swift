import Datasets
import Foundation
import Kernels
import Storage
import Testing
import UniPerceiver

/// `notebooks-data/digits.h5`, found from this file's location (tests never download anything).
let bundledFile = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("notebooks-data/digits.h5")

/// Loaded once for the whole suite.
let bundled: Result<DigitsDataset, DatasetError> = Result { () throws(DatasetError) in
    try DigitsDataset.load(bundledFile)
}

@Suite("The bundled dataset file")
struct BundledFileTests {
    let data: DigitsDataset

    init() throws { data = try bundled.get() }

    @Test("loads 1797 single-channel 8×8 images with normalised pixels and a small vocabulary")
    func shapes() throws {
        #expect(data.imageCount == 1797 && data.labels.count == 1797)
        try data.checkImageShape(imageSize: 8, channels: 1)
        #expect(data.images.count == 1797 * 64)
        #expect(data.images.min() == -1 && data.images.max() == 1)
        #expect(data.classNames.count == 10)
        #expect(data.vocabulary.count < 150)
        #expect(data.corpus.count > 3000, "thousands of sentences, so MLM is not memorisation")
    }

    @Test("the five specials are the last ids in CLIP's order")
    func specials() {
        let v = data.vocabulary
        #expect(Array(v.words.suffix(5)) == Vocabulary.specialTokens)
        #expect(v.word(of: v.count - 5) == "<|startoftext|>")
        #expect(v.word(of: v.endOfText) == "<|endoftext|>" && v.endOfText == v.count - 4)
        #expect(v.word(of: v.spe) == "<|spe|>" && v.spe == v.count - 1)
        #expect(v.words.dropLast(5).allSatisfy { $0 == $0.lowercased() && !$0.contains(" ") })
    }

    @Test("class names are the digit words followed by EOT")
    func classNames() {
        let words = [
            "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
        ]
        #expect(data.classNames == words.map { data.vocabulary.encode($0)! })
    }

    @Test("image and corpus splits have the documented sizes, are disjoint and cover everything")
    func splits() {
        let train = data.imageSplits[.train]!
        let validation = data.imageSplits[.validation]!
        #expect(train.count == 1438 && validation.count == 359)
        #expect(Set(train).isDisjoint(with: validation))
        #expect(Set(train + validation) == Set(0..<1797))
        let ctrain = data.corpusSplits[.train]!
        let cvalidation = data.corpusSplits[.validation]!
        #expect(Set(ctrain).isDisjoint(with: cvalidation))
        #expect(Set(ctrain + cvalidation) == Set(0..<data.corpus.count))
        #expect(cvalidation.count > data.corpus.count / 20)
        let trainSentences = Set(ctrain.map { data.corpus[$0] })
        #expect(cvalidation.allSatisfy { !trainSentences.contains(data.corpus[$0]) })
    }

    @Test("the image split is stratified: 20 % of every class is validation")
    func stratified() {
        let validation = Set(data.imageSplits[.validation]!)
        for digit in 0..<10 {
            let rows = data.labels.indices.filter { data.labels[$0] == digit }
            let held = rows.filter(validation.contains).count
            #expect(held == Int((0.2 * Double(rows.count)).rounded()), "digit \(digit)")
        }
    }

    @Test("every caption ends with EOT, names its digit, and captions differ within a class")
    func captions() {
        let v = data.vocabulary
        for (i, caption) in data.captions.enumerated() {
            #expect(caption.last == v.endOfText)
            #expect(
                caption.contains(data.classNames[data.labels[i]][0]),
                "caption \(i): \(v.decode(caption))")
            #expect(!caption.contains(v.spe))
        }
        for digit in 0..<10 {
            let captions = data.labels.indices.filter { data.labels[$0] == digit }.map {
                data.captions[$0]
            }
            #expect(
                Set(captions).count >= 30,
                "digit \(digit) has \(Set(captions).count) distinct captions")
            for word in ["light", "medium", "heavy", "narrow", "wide"] {
                let id = v.id(of: word)!
                #expect(captions.contains { $0.contains(id) }, "digit \(digit) is never \(word)")
            }
        }
    }

    @Test("MLM masks the expected share of the bundled corpus (at least one word per sentence)")
    func corpusMaskingRate() {
        // Expected count per sentence of L words: rate·L when rate·L ≥ 1, else exactly 1.
        let train = data.corpusSplits[.train]!
        let expected =
            train.map { Swift.max(1, 0.15 * Double(data.corpus[$0].count - 1)) }.reduce(0, +)
            / train.map { Double(data.corpus[$0].count - 1) }.reduce(0, +)
        var rng = SeededRNG(seed: 3)
        var masked = 0
        var words = 0
        for _ in 0..<20 {
            for index in train {
                let (_, labels) = WordMasking().mask(
                    data.corpus[index], vocabulary: data.vocabulary, rng: &rng)
                masked += labels.filter { $0 != -1 }.count
                words += labels.count - 1
            }
        }
        let rate = Double(masked) / Double(words)
        // 20 passes × ~17 000 words: the standard error of the rate is below 0.001.
        #expect(abs(rate - expected) < 0.005, "rate \(rate), expected \(expected)")
        #expect(rate > 0.15 && rate < 0.2)
    }

    @Test("batches of every task from the file", arguments: TaskKind.allCases)
    func batches(task: TaskKind) throws {
        let sampler = try data.sampler(task: task, split: .train, batchSize: 16, seed: 1)
        var rng = SeededRNG(seed: 1)
        let batch = data.makeBatch(
            task: task, split: .train, indices: sampler.indices(ofBatch: 0), rng: &rng)
        switch batch {
        case .imageClassification(let images, let labels, _):
            #expect(images.shape == [16, 1, 8, 8] && labels.count == 16)
        case .mlm(let tokens, let labels):
            #expect(tokens.count == 16 && zip(tokens, labels).allSatisfy { $0.count == $1.count })
        case .captioning(let images, let captions), .retrieval(let images, let captions):
            #expect(images.shape == [16, 1, 8, 8] && captions.count == 16)
        }
    }
}

@Suite("Bad dataset files")
struct BadFileTests {
    func temporaryURL(_ name: String) -> URL {
        FileManager.default.temporaryDirectory
            .appendingPathComponent("DatasetsTests-\(UUID().uuidString)-\(name)")
    }

    @Test("a missing file is named")
    func missing() {
        let url = temporaryURL("absent.h5")
        do {
            _ = try DigitsDataset.load(url)
            Issue.record("no error")
        } catch {
            #expect(error == .missingFile(file: url.path))
            #expect(error.description == "\(url.path): no such file")
        }
    }

    @Test("a file that is not HDF5 is named as unreadable")
    func notHDF5() throws {
        let url = temporaryURL("text.h5")
        try Data("not an hdf5 file\n".utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        do {
            _ = try DigitsDataset.load(url)
            Issue.record("no error")
        } catch {
            guard case .unreadable(let file, _) = error else {
                Issue.record("expected .unreadable, got \(error)")
                return
            }
            #expect(file == url.path && error.description.hasPrefix(url.path + ": "))
            // Named once: the storage error's own "file: " prefix is not repeated after ours.
            #expect(error.description.components(separatedBy: url.path).count == 2, "\(error.description)")
        }
    }

    @Test("the bundled file's images do not fit a 16 px model, and the message names the file")
    func imageSizeMismatch() throws {
        let data = try bundled.get()
        #expect(
            throws: DatasetError.imageShapeMismatch(
                file: bundledFile.path, expectedImageSize: 16, expectedChannels: 1,
                foundImageSize: 8,
                foundChannels: 1)
        ) {
            try data.checkImageShape(imageSize: 16, channels: 1)
        }
    }
}

@Suite("Bad dataset file contents")
struct BadContentFileTests {
    /// Writes an HDF5 file with the given root attributes and, optionally, a few real datasets.
    func write(
        _ name: String, format: String?, version: Int? = 1, withImages: Bool = false,
        attributes: [String: Int] = [:], imageShape: [Int] = [2, 8, 8]
    ) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("DatasetsTests-\(UUID().uuidString)-\(name)")
        try HDF5File.write(to: url) { (h5) throws(StorageError) in
            if let format { try h5.setAttribute("format", .string(format)) }
            if let version { try h5.setAttribute("version", .int(version)) }
            for (key, value) in attributes { try h5.setAttribute(key, .int(value)) }
            if withImages {
                try h5.write(
                    [UInt8](repeating: 3, count: imageShape.reduce(1, *)), shape: imageShape, to: "/images")
            }
        }
        return url
    }

    @Test("a file of another format is refused by its format attribute, naming the file")
    func wrongFormat() throws {
        let url = try write("probe.h5", format: "task-interference/probe")
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(throws: DatasetError.wrongFormat(file: url.path, found: "task-interference/probe"))
        {
            try DigitsDataset.load(url)
        }
        let bare = try write("bare.h5", format: nil)
        defer { try? FileManager.default.removeItem(at: bare) }
        do {
            _ = try DigitsDataset.load(bare)
            Issue.record("no error")
        } catch {
            #expect(error == .wrongFormat(file: bare.path, found: nil))
            #expect(error.description.hasPrefix(bare.path + ": root attribute 'format' is missing"))
        }
    }

    @Test("a newer schema version is refused")
    func wrongVersion() throws {
        let url = try write("v2.h5", format: DigitsDataset.format, version: 2)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(throws: DatasetError.unsupportedVersion(file: url.path, found: 2, supported: 1)) {
            try DigitsDataset.load(url)
        }
    }

    @Test("a missing dataset is named by its path")
    func missingDataset() throws {
        let url = try write("partial.h5", format: DigitsDataset.format, withImages: true)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(throws: DatasetError.missingDataset(file: url.path, path: "/labels")) {
            try DigitsDataset.load(url)
        }
    }

    @Test("images that are not square, or not [N, S, S] / [N, C, S, S], are refused with their shape")
    func imageShapes() throws {
        for shape in [[2, 8, 6], [2, 1, 8, 6], [2, 64], [1, 2, 1, 8, 8]] {
            let url = try write("shape.h5", format: DigitsDataset.format, withImages: true, imageShape: shape)
            defer { try? FileManager.default.removeItem(at: url) }
            #expect(
                throws: DatasetError.badShape(
                    file: url.path, path: "/images", expected: "[N, S, S] or [N, C, S, S]", found: shape)
            ) {
                try DigitsDataset.load(url)
            }
        }
    }

    @Test("a sequence length outside 1…L is refused at its lengths dataset, not as a missing EOT")
    func sequenceLengths() throws {
        for (length, width) in [(0, 10), (11, 10)] {
            let url = FileManager.default.temporaryDirectory
                .appendingPathComponent("DatasetsTests-\(UUID().uuidString)-lengths.h5")
            defer { try? FileManager.default.removeItem(at: url) }
            try FileManager.default.copyItem(at: bundledFile, to: url)
            let file = try HDF5File.open(url, writable: true)
            try file.writeRows([Int64(length)], at: 2, to: "/corpus/lengths")
            try file.close()
            #expect(
                throws: DatasetError.badContent(
                    file: url.path, path: "/corpus/lengths", reason: "row 2 has length \(length), outside 1...\(width)")
            ) {
                try DigitsDataset.load(url)
            }
        }
    }

    @Test("root attributes image_size and channels that contradict /images are refused")
    func declaredImageShape() throws {
        let consistent = try write(
            "declared.h5", format: DigitsDataset.format, withImages: true,
            attributes: ["image_size": 8, "channels": 1])
        defer { try? FileManager.default.removeItem(at: consistent) }
        // Agreeing attributes pass on to the next check.
        #expect(throws: DatasetError.missingDataset(file: consistent.path, path: "/labels")) {
            try DigitsDataset.load(consistent)
        }
        for (key, value, found) in [("image_size", 16, 8), ("channels", 3, 1)] {
            let url = try write(
                "\(key).h5", format: DigitsDataset.format, withImages: true, attributes: [key: value])
            defer { try? FileManager.default.removeItem(at: url) }
            #expect(
                throws: DatasetError.badContent(
                    file: url.path, path: "/",
                    reason: "root attribute '\(key)' = \(value), but /images has shape [2, 8, 8] (\(key) \(found))")
            ) {
                try DigitsDataset.load(url)
            }
        }
    }
}
