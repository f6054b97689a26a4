import Foundation

/// Linear warm-up to `peak`, then half a cosine down to `floor` at the last step
/// (uniperceiver-model.md §4: warm-up, then cosine to 1e-6).
///
/// For 0-based step `s` of `total`:
/// * `s < warmup`: `peak · (s + 1) / warmup`;
/// * otherwise, with `q = (s − warmup) / max(1, total − warmup − 1)` clamped to [0, 1]:
///   `floor + (peak − floor) · (1 + cos(π·q)) / 2` — `peak` at the first step after warm-up and
///   exactly `floor` at the last step.
public struct LearningRateSchedule: Codable, Sendable, Equatable {
    public var peak: Double
    public var floor: Double
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(peak: Double, floor: Double, warmupSteps: Int, totalSteps: Int) {
        self.peak = peak
        self.floor = floor
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// The learning rate of 0-based step `step`.
    public func rate(atStep step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step + 1) / Double(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps - 1)
        let q = min(1, max(0, Double(step - warmupSteps) / Double(span)))
        return floor + (peak - floor) * (1 + cos(Double.pi * q)) / 2
    }
}
