// Read-only access to a forward pass's scores, for evaluation (Training's `Evaluation`): which
// candidate each feature row ranks first, and which row each candidate ranks first (retrieval's
// text→image direction). Nothing here changes the pass or its backward.

extension ForwardPass {
    /// Feature rows R scored by this pass (images, masked positions, caption positions, …).
    public var rowCount: Int { logits.inputs }

    /// Candidates K each row is scored against (class names, vocabulary ids, the batch's captions).
    public var candidateCount: Int { logits.candidates }

    /// The target candidate of each row, in row order (for MLM: the labelled positions in batch
    /// order; for captioning: every caption token in batch order; for retrieval: `0..<B`).
    public var targetIndices: [Int] { targets }

    /// The scaled cosine logits `[R, K]`, row-major.
    public var logitValues: [Float] { logits.logits.array }

    /// The highest-scoring candidate of each row (first index on ties).
    public var rowPredictions: [Int] {
        let R = logits.inputs
        let K = logits.candidates
        let values = logits.logits.base
        return (0..<R).map { r in
            var best = 0
            for k in 1..<max(K, 1) where values[r * K + k] > values[r * K + best] { best = k }
            return best
        }
    }

    /// The highest-scoring row of each candidate (first index on ties).
    public var columnPredictions: [Int] {
        let R = logits.inputs
        let K = logits.candidates
        let values = logits.logits.base
        return (0..<K).map { k in
            var best = 0
            for r in 1..<max(R, 1) where values[r * K + k] > values[best * K + k] { best = r }
            return best
        }
    }
}
