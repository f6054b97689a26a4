import Datasets
import Testing
import Training
import UniPerceiver

/// `TrainingOptions.validate()`: every value a user (or a resumed checkpoint's stored options) can
/// set is refused outside its range, naming the option; the boundary values are accepted.
@Suite struct TrainingOptionsTests {
    static let valid = TrainingOptions(steps: 10, batchSize: 4, peakLearningRate: 1e-3, minLearningRate: 1e-5)

    static func changed(_ change: (inout TrainingOptions) -> Void) -> TrainingOptions {
        var options = valid
        change(&options)
        return options
    }

    @Test("each out-of-range value is refused, naming the option")
    func outOfRange() throws {
        try Self.valid.validate()
        let known = TaskKind.allCases.map(\.rawValue)
        let cases: [(TrainingOptions, TrainingError)] = [
            (Self.changed { $0.steps = 0 }, .badOption(name: "--steps", reason: "must be positive, got 0")),
            (Self.changed { $0.batchSize = 0 }, .badOption(name: "--batch-size", reason: "must be positive, got 0")),
            (Self.changed { $0.warmupSteps = -1 }, .badOption(name: "--warmup", reason: "must not be negative, got -1")),
            (Self.changed { $0.checkpointEvery = 0 },
             .badOption(name: "--checkpoint-every", reason: "must be positive, got 0")),
            (Self.changed { $0.peakLearningRate = .nan }, .badOption(name: "--lr", reason: "must be a positive number, got nan")),
            // A floor above the peak would make the cosine rise.
            (Self.changed { $0.minLearningRate = 2e-3 }, .badOption(name: "--min-lr", reason: "must lie in [0, lr], got 0.002")),
            (Self.changed { $0.minLearningRate = -1e-6 },
             .badOption(name: "--min-lr", reason: "must lie in [0, lr], got -1e-06")),
            (Self.changed { $0.gradientClip = 0 }, .badOption(name: "--clip", reason: "must be a positive number, got 0.0")),
            (Self.changed { $0.adam.epsilon = 0 },
             .badOption(name: "AdamW epsilon", reason: "must be a positive number, got 0.0")),
            // β = 1 never forgets its first moment and divides by 1 − β^t = 0.
            (Self.changed { $0.adam.beta1 = 1 }, .badOption(name: "AdamW beta1", reason: "must lie in [0, 1), got 1.0")),
            (Self.changed { $0.adam.beta2 = -0.1 },
             .badOption(name: "AdamW beta2", reason: "must lie in [0, 1), got -0.1")),
            (Self.changed { $0.adam.weightDecay = -0.01 },
             .badOption(name: "--weight-decay", reason: "must not be negative, got -0.01")),
            (Self.changed { $0.samplingWeights["vqa"] = 1 }, .dataset(.unknownTask(name: "vqa", known: known))),
            (Self.changed { $0.lossWeights["mlm"] = -1 },
             .badOption(name: "--loss-weights", reason: "mlm must be a non-negative number, got -1.0")),
            (Self.changed { $0.samplingWeights = ["mlm": 0, "captioning": 0] },
             .badOption(name: "--sampling-weights", reason: "no task has a positive sampling weight")),
        ]
        for (options, error) in cases {
            #expect(throws: error) { try options.validate() }
        }
    }

    @Test("the boundary values are accepted: floor = peak, floor 0, no warm-up, β = 0, no decay, a zero weight")
    func boundaries() throws {
        for options in [
            Self.changed { $0.minLearningRate = $0.peakLearningRate },
            Self.changed { $0.minLearningRate = 0 },
            Self.changed { $0.warmupSteps = 0 },
            Self.changed { ($0.adam.beta1, $0.adam.beta2) = (0, 0) },
            Self.changed { $0.adam.weightDecay = 0 },
            Self.changed { $0.samplingWeights["retrieval"] = 0 },
        ] {
            try options.validate()
        }
    }
}
