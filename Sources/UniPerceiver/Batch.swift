import Kernels

/// The four tasks of the bundled demo; raw values are the names used on the command line, in files
/// and in reports.
public enum TaskKind: String, CaseIterable, Codable, Sendable {
    case imageClassification = "image-classification"
    case mlm = "mlm"
    case captioning = "captioning"
    case retrieval = "retrieval"
}

/// One mini-batch of one task, as the model consumes it (see README.md, "Task losses").
///
/// Token sequences never include the `<SPE>` prefix: the model prepends it. Text that ends a
/// sentence (class names, captions) already ends with the EOT id. Images are `[B, C, S, S]` floats,
/// already normalised by the dataset.
public enum Batch: Sendable {
    /// `labels[b]` indexes `classNames`; every class name is a candidate for every image.
    case imageClassification(images: Tensor, labels: [Int], classNames: [[Int]])
    /// `tokens[b]` is the masked text; `labels[b][t]` the original id at masked positions, −1 elsewhere.
    case mlm(tokens: [[Int]], labels: [[Int]])
    /// `captions[b]` is the caption of image b, ending with EOT; every token is predicted.
    case captioning(images: Tensor, captions: [[Int]])
    /// Image b and caption b are a positive pair; the batch's other captions are its negatives.
    case retrieval(images: Tensor, captions: [[Int]])

    public var task: TaskKind {
        switch self {
        case .imageClassification: .imageClassification
        case .mlm: .mlm
        case .captioning: .captioning
        case .retrieval: .retrieval
        }
    }
}
