import Kernels

/// Seeded mini-batches drawn without replacement, epoch by epoch, as a pure function of the batch
/// number — so a resumed run draws exactly the batches the interrupted one would have.
///
/// Batch `k` (0-based) lies in epoch `e = k / m` with `m = ⌊P / B⌋` batches per epoch (P examples,
/// B batch size; the last `P mod B` examples of each epoch's order are skipped). The epoch's
/// order is the population shuffled (`SeededRNG.shuffle`, Fisher–Yates) by a generator seeded with
/// `SeededRNG(seed: seed ^ (stream &* 0x9E3779B97F4A7C15) ^ (e &* 0xD1B54A32D192ED03)).next()`;
/// batch `k` is that order's slice `(k mod m)·B ..< (k mod m + 1)·B`. Each task is its own stream
/// (its index in `TaskKind.allCases`), so tasks sharing one seed do not share an order.
public struct BatchSampler: Sendable, Equatable {
    /// The dataset indices drawn from (a split of one task's source).
    public let population: [Int]
    public let batchSize: Int
    public let seed: UInt64
    public let stream: UInt64

    /// A sampler over `population`. Precondition: `0 < batchSize ≤ population.count`.
    public init(population: [Int], batchSize: Int, seed: UInt64, stream: UInt64 = 0) {
        precondition(
            batchSize > 0 && batchSize <= population.count,
            "BatchSampler: batch size \(batchSize) for \(population.count) examples")
        self.population = population
        self.batchSize = batchSize
        self.seed = seed
        self.stream = stream
    }

    /// Batches per epoch, `⌊P / B⌋`.
    public var batchesPerEpoch: Int { population.count / batchSize }

    /// The population in the order of `epoch`.
    public func order(epoch: Int) -> [Int] {
        precondition(epoch >= 0, "BatchSampler: negative epoch \(epoch)")
        var mixer = SeededRNG(
            seed: seed ^ (stream &* 0x9E37_79B9_7F4A_7C15)
                ^ (UInt64(epoch) &* 0xD1B5_4A32_D192_ED03))
        var rng = SeededRNG(seed: mixer.next())
        var order = population
        rng.shuffle(&order)
        return order
    }

    /// The dataset indices of batch `number` (0-based): `batchSize` distinct examples.
    public func indices(ofBatch number: Int) -> [Int] {
        precondition(number >= 0, "BatchSampler: negative batch number \(number)")
        let start = (number % batchesPerEpoch) * batchSize
        return Array(order(epoch: number / batchesPerEpoch)[start..<start + batchSize])
    }

    /// The dataset indices of each batch in `numbers`, the same as `indices(ofBatch:)` of each, with
    /// every epoch's order drawn once instead of once per batch.
    public func indices(ofBatches numbers: Range<Int>) -> [[Int]] {
        precondition(numbers.lowerBound >= 0, "BatchSampler: negative batch number \(numbers.lowerBound)")
        var epoch = -1
        var order: [Int] = []
        return numbers.map { number in
            if number / batchesPerEpoch != epoch {
                epoch = number / batchesPerEpoch
                order = self.order(epoch: epoch)
            }
            let start = (number % batchesPerEpoch) * batchSize
            return Array(order[start..<start + batchSize])
        }
    }
}
