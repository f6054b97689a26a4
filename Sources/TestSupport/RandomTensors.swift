// Seeded random inputs for tests, drawn from `Kernels.SeededRNG` so another language can
// regenerate them (see SeededRNG's doc comment for the exact stream).
//
//   var rng = SeededRNG(seed: 1)
//   rng.uniformFloats(count: 12, in: -1...1)        -> [Float]   lo + (hi − lo)·nextFloat()
//   rng.gaussianFloats(count: 12, mean: 0, std: 1)  -> [Float]   Float(mean + std·nextGaussian())
//   Tensor.uniform([3, 4], in: -1...1, rng: &rng)   -> Tensor
//   Tensor.gaussian([3, 4], std: 0.5, rng: &rng)    -> Tensor
//   Tensor.uniform([3, 4], seed: 9)                 -> Tensor (fresh generator)

import Kernels

extension SeededRNG {
    /// `count` values `lo + (hi − lo) · nextFloat()` (one draw each).
    public mutating func uniformFloats(count: Int, in range: ClosedRange<Float> = -1...1) -> [Float]
    {
        (0..<count).map { _ in
            range.lowerBound + (range.upperBound - range.lowerBound) * nextFloat()
        }
    }

    /// `count` values `Float(mean + std · nextGaussian())` (two draws each).
    public mutating func gaussianFloats(count: Int, mean: Double = 0, std: Double = 1) -> [Float] {
        (0..<count).map { _ in Float(mean + std * nextGaussian()) }
    }

    /// `count` integers in `0..<bound` (one draw each).
    public mutating func integers(count: Int, below bound: Int) -> [Int] {
        (0..<count).map { _ in nextInt(below: bound) }
    }
}

extension Tensor {
    /// A tensor of uniform values in `range`, drawn from `rng` in row-major order.
    public static func uniform(
        _ shape: [Int], in range: ClosedRange<Float> = -1...1, rng: inout SeededRNG
    ) -> Tensor {
        Tensor(shape: shape, data: rng.uniformFloats(count: shape.reduce(1, *), in: range))
    }

    /// A tensor of Gaussian values, drawn from `rng` in row-major order.
    public static func gaussian(
        _ shape: [Int], mean: Double = 0, std: Double = 1, rng: inout SeededRNG
    ) -> Tensor {
        Tensor(
            shape: shape, data: rng.gaussianFloats(count: shape.reduce(1, *), mean: mean, std: std))
    }

    /// A tensor of uniform values from a fresh `SeededRNG(seed:)`.
    public static func uniform(_ shape: [Int], in range: ClosedRange<Float> = -1...1, seed: UInt64)
        -> Tensor
    {
        var rng = SeededRNG(seed: seed)
        return uniform(shape, in: range, rng: &rng)
    }

    /// A tensor of Gaussian values from a fresh `SeededRNG(seed:)`.
    public static func gaussian(_ shape: [Int], mean: Double = 0, std: Double = 1, seed: UInt64)
        -> Tensor
    {
        var rng = SeededRNG(seed: seed)
        return gaussian(shape, mean: mean, std: std, rng: &rng)
    }
}
