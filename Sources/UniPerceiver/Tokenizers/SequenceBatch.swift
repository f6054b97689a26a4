import Foundation
import Kernels

/// B token sequences of equal (padded) length T, ready for the encoder, with their attention mask.
///
/// Each position is one of: the `<SPE>` prefix (word embedding only), a text token (word +
/// position + type row 0) or an image patch (patch projection + spatial + temporal row 0); all then
/// go through the shared LayerNorm (README.md, "Token embedding").
struct SequenceBatch {
    let batchSize: Int
    let length: Int
    /// Word id per position; −1 for image patches.
    var tokenIds: [Int]
    /// Text position per position; −1 for the `<SPE>` prefix and image patches.
    var positions: [Int]
    /// Row of `patches` per position; −1 for text.
    var patchRows: [Int]
    /// Grid index (row-major) of the patch per position; −1 for text.
    var gridIndex: [Int]
    /// Flattened patches `[P, C·p·p]` in `(c, py, px)` order.
    var patches: [Float]
    var patchCount: Int
    /// Additive mask `[B, T, T]`: 0 where the query (row) may attend the key (column), −∞ elsewhere.
    var mask: [Float]
    /// Routing segment per position (uniperceiver-model.md §5.2): 0, or 1 for the text + query
    /// part of a caption input. The `<SPE>` prefix belongs to segment 0.
    var segment: [Int]
    /// False at padded positions (ignored by context pooling, the balance loss and statistics).
    var valid: [Bool]
    /// The task and side this batch is encoded for; they select the attribute vectors, the
    /// modality of each segment and the task embedding of the MoE gates.
    var task: TaskKind = .imageClassification
    var side: SequenceSide = .input

    var tokenCount: Int { batchSize * length }
    var segmentCount: Int { AttributeVector.segmentCount(task: task, side: side) }

    init(batchSize: Int, length: Int) {
        self.batchSize = batchSize
        self.length = length
        let n = batchSize * length
        tokenIds = [Int](repeating: 0, count: n)
        positions = [Int](repeating: 0, count: n)
        patchRows = [Int](repeating: -1, count: n)
        gridIndex = [Int](repeating: -1, count: n)
        patches = []
        patchCount = 0
        mask = [Float](repeating: 0, count: batchSize * length * length)
        segment = [Int](repeating: 0, count: n)
        valid = [Bool](repeating: true, count: n)
    }

    /// The batch marked as encoded for `task` on `side`.
    func routed(task: TaskKind, side: SequenceSide) -> SequenceBatch {
        var copy = self
        copy.task = task
        copy.side = side
        precondition(
            segment.allSatisfy { $0 < copy.segmentCount },
            "SequenceBatch: a segment id exceeds the \(copy.segmentCount) segments of \(task) \(side)")
        return copy
    }

    /// Sequences `range` as a batch of their own (same length, task and side; patches renumbered in
    /// order), for the encoder's lanes.
    func slice(_ range: Range<Int>) -> SequenceBatch {
        var out = SequenceBatch(batchSize: range.count, length: length)
        let tokens = (range.lowerBound * length)..<(range.upperBound * length)
        out.tokenIds = Array(tokenIds[tokens])
        out.positions = Array(positions[tokens])
        out.gridIndex = Array(gridIndex[tokens])
        out.segment = Array(segment[tokens])
        out.valid = Array(valid[tokens])
        out.mask = Array(mask[(range.lowerBound * length * length)..<(range.upperBound * length * length)])
        out.task = task
        out.side = side
        let width = patchCount > 0 ? patches.count / patchCount : 0
        out.patchRows = patchRows[tokens].map { row in
            guard row >= 0 else { return -1 }
            out.patches.append(contentsOf: patches[(row * width)..<((row + 1) * width)])
            out.patchCount += 1
            return out.patchCount - 1
        }
        return out
    }

    mutating func setSPE(_ b: Int, _ t: Int, config: ModelConfig) {
        tokenIds[b * length + t] = config.speId
        positions[b * length + t] = -1
    }

    mutating func setText(_ b: Int, _ t: Int, id: Int, position: Int) {
        tokenIds[b * length + t] = id
        positions[b * length + t] = position
    }

    /// Places image `image` of `images` (`[B, C, S, S]`) at positions `start ..< start + patchCount` of
    /// sequence b, appending its patches.
    mutating func setImage(_ b: Int, start: Int, images: Tensor, image: Int, config: ModelConfig) {
        let C = config.channels
        let S = config.imageSize
        let p = config.patchSize
        let side = config.patchesPerSide
        let imageBase = image * C * S * S
        for u in 0..<side {
            for v in 0..<side {
                let g = u * side + v
                let at = b * length + start + g
                tokenIds[at] = -1
                positions[at] = -1
                patchRows[at] = patchCount
                gridIndex[at] = g
                for c in 0..<C {
                    for py in 0..<p {
                        for px in 0..<p {
                            patches.append(images.data[imageBase + c * S * S + (u * p + py) * S + v * p + px])
                        }
                    }
                }
                patchCount += 1
            }
        }
    }

    /// Masks key column `key` of sequence b for every query.
    mutating func maskKey(_ b: Int, _ key: Int) {
        for q in 0..<length { mask[(b * length + q) * length + key] = -Float.infinity }
    }

    mutating func setAllowed(_ b: Int, query: Int, key: Int, _ allowed: Bool) {
        mask[(b * length + query) * length + key] = allowed ? 0 : -Float.infinity
    }
}

/// The fixed 2-D sin-cos spatial table `[(S/p)², D]`: for grid cell (u, v) and `d = D/4`,
/// `[sin(u·ω), cos(u·ω), sin(v·ω), cos(v·ω)]` with `ω_k = 10000^(−k/d)`; u is the row index
/// (`video_embed.py`, MAE's `get_2d_sincos_pos_embed` with ij indexing).
func spatialPositionTable(_ config: ModelConfig) -> [Float] {
    let D = config.hiddenSize
    let d = D / 4
    let side = config.patchesPerSide
    var table = [Float](repeating: 0, count: side * side * D)
    for u in 0..<side {
        for v in 0..<side {
            let row = (u * side + v) * D
            for k in 0..<d {
                let omega = pow(10000.0, -Double(k) / Double(d))
                table[row + k] = Float(sin(Double(u) * omega))
                table[row + d + k] = Float(cos(Double(u) * omega))
                table[row + 2 * d + k] = Float(sin(Double(v) * omega))
                table[row + 3 * d + k] = Float(cos(Double(v) * omega))
            }
        }
    }
    return table
}
