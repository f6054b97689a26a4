// The 8-bit attribute vectors of the released attribute routing (uniperceiver-model.md §5.6).

/// Which side of a task a sequence is encoded for: the inputs, or the candidates (targets).
public enum SequenceSide: String, CaseIterable, Codable, Sendable {
    case input
    case target
}

/// The modality a position counts as for modality routing. The `<SPE>` prefix takes the modality of
/// its sequence's first segment (as in attribute routing, where it belongs to the first segment).
public enum Modality: Int, CaseIterable, Codable, Sendable {
    case image = 0
    case text = 1
}

/// The attribute vector of each (task, side, segment), values from the official
/// `datasets/moe_embeddings.py` (indices 0..7). Inferred bit meanings: 0 task input is visual, 1 task
/// input is text, 2 unused, 3 target is text, 4 token is visual, 5 token is text, 6 target side,
/// 7 causal (caption) mask. They depend only on task, side and segment, so the model derives them
/// itself; `Datasets.TaskAttributes` holds the same table by name (a test keeps the two equal).
public enum AttributeVector {
    /// Bits per vector (the gate's `tag_transform.0` is Linear 8→D).
    public static let width = 8

    /// Segments of a sequence: captioning inputs have two (SPE + image, then text + queries),
    /// every other sequence one.
    public static func segmentCount(task: TaskKind, side: SequenceSide) -> Int {
        task == .captioning && side == .input ? 2 : 1
    }

    /// The 8 bits of segment `segment` of a `side` sequence of `task`, index 0 first.
    public static func bits(task: TaskKind, side: SequenceSide, segment: Int) -> [UInt8] {
        precondition(segment < segmentCount(task: task, side: side), "AttributeVector: no segment \(segment) for \(task) \(side)")
        switch (task, side) {
        case (.imageClassification, .input), (.retrieval, .input): return [1, 0, 0, 1, 1, 0, 0, 0]
        case (.mlm, .input): return [0, 1, 0, 1, 0, 1, 0, 0]
        case (.captioning, .input):
            return segment == 0 ? [1, 1, 0, 1, 1, 0, 0, 0] : [1, 1, 0, 1, 0, 1, 0, 1]
        // Class names and retrieval captions are target text; the vocabulary set is shared by MLM
        // and captioning, hence both input-modality bits.
        case (.imageClassification, .target), (.retrieval, .target): return [1, 0, 0, 1, 0, 1, 1, 0]
        case (.mlm, .target), (.captioning, .target): return [1, 1, 0, 1, 0, 1, 1, 0]
        }
    }

    /// The bits as the Float vector the gate consumes.
    public static func vector(task: TaskKind, side: SequenceSide, segment: Int) -> [Float] {
        bits(task: task, side: side, segment: segment).map(Float.init)
    }

    /// The modality of segment `segment` (image for the first segment of image sequences).
    static func modality(task: TaskKind, side: SequenceSide, segment: Int) -> Modality {
        switch (task, side) {
        case (.imageClassification, .input), (.retrieval, .input): .image
        case (.captioning, .input): segment == 0 ? .image : .text
        default: .text
        }
    }

    /// Every distinct vector of the table, for pre-merging.
    static var all: [[Float]] {
        var seen: [[Float]] = []
        for task in TaskKind.allCases {
            for side in SequenceSide.allCases {
                for s in 0..<segmentCount(task: task, side: side) {
                    let v = vector(task: task, side: side, segment: s)
                    if !seen.contains(v) { seen.append(v) }
                }
            }
        }
        return seen
    }

    /// A key for a 0/1 vector (bit i of the key = element i), for pre-merged lookups.
    static func key(_ v: [Float]) -> Int {
        v.enumerated().reduce(0) { $0 | (($1.element != 0 ? 1 : 0) << $1.offset) }
    }
}
