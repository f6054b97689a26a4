import UniPerceiver

/// The 8-bit attribute vectors of Uni-Perceiver-MoE's released attribute routing, per segment.
///
/// Values from the official `datasets/moe_embeddings.py` (spec `uniperceiver-model.md` §5.6,
/// indices 0..7). Inferred bit meanings: 0 task input is visual, 1 task input is text, 2 unused,
/// 3 target is text, 4 token is visual, 5 token is text, 6 token is on the target side, 7 causal
/// (caption) mask.
/// The MoE gate embeds a segment's vector (Linear 8→D, LayerNorm) and routes every token of that
/// segment with it; the `<SPE>` prefix belongs to the first segment of its sequence.
public enum AttributeSegment: String, CaseIterable, Codable, Sendable {
    /// `image-classification` input `[SPE, I]`: 1 0 0 1 1 0 0 0.
    case classificationImage = "classification-image"
    /// `mlm` input `[SPE, x'…]`: 0 1 0 1 0 1 0 0.
    case mlmText = "mlm-text"
    /// `captioning` input segment 1, SPE + image: 1 1 0 1 1 0 0 0.
    case captionImage = "caption-image"
    /// `captioning` input segment 2, text + queries: 1 1 0 1 0 1 0 1.
    case captionText = "caption-text"
    /// `retrieval` image side `[SPE, I]`: 1 0 0 1 1 0 0 0.
    case retrievalImage = "retrieval-image"
    /// `retrieval` caption side `[SPE, x…]`, encoded as the targets: 1 0 0 1 0 1 1 0.
    case retrievalCaption = "retrieval-caption"
    /// Class-name target set `[SPE, name…, EOT]`: 1 0 0 1 0 1 1 0.
    case classNameTarget = "class-name-target"
    /// Vocabulary target set `[SPE, v, EOT]` (MLM and captioning): 1 1 0 1 0 1 1 0.
    case vocabularyTarget = "vocabulary-target"

    /// The 8 bits, index 0 first.
    public var bits: [UInt8] {
        switch self {
        case .classificationImage, .retrievalImage: [1, 0, 0, 1, 1, 0, 0, 0]
        case .mlmText: [0, 1, 0, 1, 0, 1, 0, 0]
        case .captionImage: [1, 1, 0, 1, 1, 0, 0, 0]
        case .captionText: [1, 1, 0, 1, 0, 1, 0, 1]
        case .retrievalCaption, .classNameTarget: [1, 0, 0, 1, 0, 1, 1, 0]
        case .vocabularyTarget: [1, 1, 0, 1, 0, 1, 1, 0]
        }
    }

    /// The bits as the Float vector the gate's Linear 8→D consumes.
    public var vector: [Float] { bits.map(Float.init) }
}

/// Which attribute segment each encoded sequence of a task uses, in sequence order.
public struct TaskAttributes: Sendable, Equatable {
    /// Segments of the input sequence, in order (captioning has two: SPE + image, then text +
    /// queries).
    public let input: [AttributeSegment]
    /// The segment of every target-side sequence (class names, vocabulary entries or captions).
    public let target: AttributeSegment

    /// The attribute table of `task` (spec §5.6).
    public static func of(_ task: TaskKind) -> TaskAttributes {
        switch task {
        case .imageClassification:
            TaskAttributes(input: [.classificationImage], target: .classNameTarget)
        case .mlm:
            TaskAttributes(input: [.mlmText], target: .vocabularyTarget)
        case .captioning:
            TaskAttributes(input: [.captionImage, .captionText], target: .vocabularyTarget)
        case .retrieval:
            TaskAttributes(input: [.retrievalImage], target: .retrievalCaption)
        }
    }

    /// The segment of every position of an input sequence, SPE included.
    ///
    /// Layouts (model README, "Task losses"): classification and retrieval `[SPE, I]` is
    /// `1 + imageTokens` positions; MLM `[SPE, x…]` is `1 + textLength`; captioning
    /// `[SPE, I, x_1..x_T, q_1..q_T]` is `1 + imageTokens` positions of segment 1, then
    /// `2·textLength` of segment 2.
    public static func inputSegments(
        of task: TaskKind, imageTokens: Int, textLength: Int
    ) -> [AttributeSegment] {
        let layout = of(task)
        switch task {
        case .imageClassification, .retrieval:
            return Array(repeating: layout.input[0], count: 1 + imageTokens)
        case .mlm:
            return Array(repeating: layout.input[0], count: 1 + textLength)
        case .captioning:
            return Array(repeating: layout.input[0], count: 1 + imageTokens)
                + Array(repeating: layout.input[1], count: 2 * textLength)
        }
    }
}
