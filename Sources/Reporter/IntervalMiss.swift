import Interference

/// An off-diagonal entry whose value lies outside its own bootstrap percentile interval, and, when
/// one sample accounts for it, that sample.
///
/// Why it happens: `I[i, j]` is a mean over task i's samples b of `s[j,i][b] / s[i,i][b]`, with no
/// guard against a small positive own-task change `s[i,i][b]` (as in the official notebook). One
/// sample whose own change is close to zero gives a ratio that carries the mean. In a resampled set
/// its leave-one-out denominator is recomputed over other members and rarely stays as close to zero,
/// so the bootstrap does not reproduce the value; neither the value nor the interval is then a
/// stable summary. With very few replicates a value can also miss its interval by chance.
struct IntervalMiss {
    let i: Int
    let j: Int
    let value: Double
    let low: Double
    let high: Double
    /// The sample that accounts for the miss, when there is one (see `carrier(in:i:j:low:high:)`).
    let carrier: Carrier?

    typealias Carrier = FarthestSample

    /// The misses of `g`, row-major. A value counts as outside only beyond half a unit of the
    /// `digits`-th decimal, so that a printed value never reads as inside its printed interval.
    static func misses(in g: GroupAnalysis, digits: Int) -> [IntervalMiss] {
        guard let ci = g.interval else { return [] }
        let slack = 0.5 * pow10(-digits)
        let T = g.interference.values.count
        var found: [IntervalMiss] = []
        for i in 0..<T {
            for j in 0..<T where i != j {
                let v = g.interference[i, j]
                let (low, high) = (ci.low[i][j], ci.high[i][j])
                guard v.isFinite, low.isFinite, high.isFinite, v < low - slack || v > high + slack else { continue }
                found.append(
                    IntervalMiss(
                        i: i, j: j, value: v, low: low, high: high,
                        carrier: carrier(in: g.interference, i: i, j: j, low: low - slack, high: high + slack)))
            }
        }
        return found
    }

    /// The kept sample whose ratio lies farthest from the value, when the other kept samples' mean
    /// lies inside `[low, high]` (one sample then accounts for the miss). Nil when the per-sample
    /// ratios do not give back the stored value (a file edited by hand), or when no single sample
    /// accounts for it.
    static func carrier(in m: InterferenceMatrix, i: Int, j: Int, low: Double, high: Double) -> Carrier? {
        guard let f = FarthestSample.find(in: m, i: i, j: j, minimumKept: 2),
            f.valueWithout >= low, f.valueWithout <= high
        else { return nil }
        return f
    }

    private static func pow10(_ e: Int) -> Double {
        var x = 1.0
        for _ in 0..<abs(e) { x *= 10 }
        return e < 0 ? 1 / x : x
    }
}

/// An off-diagonal value that rests on one sample: leaving that sample out of the mean of ratios
/// moves it by more than `threshold` (0.5, half of a task's own effect, which the diagonal's 1 is).
///
/// `I[i, j]` averages `s[j,i][b] / s[i,i][b]` over task i's kept samples with no guard against a small
/// positive own change `s[i,i][b]` (as in the official notebook), so one sample whose own change is
/// close to zero can move the mean by far more than the others together, whether or not the value
/// stays inside its interval (`IntervalMiss` covers the values that leave it). The report marks such
/// values ‡ and names the sample, so that a reader sees which values rest on one mini-batch.
struct OneSampleInfluence {
    let i: Int
    let j: Int
    let value: Double
    /// The sample whose removal moves the value most, and the value without it.
    let farthest: FarthestSample

    static let threshold = 0.5

    /// The off-diagonal entries of `m` that rest on one sample, row-major. Entries whose per-sample
    /// ratios do not give back the stored value (a file edited by hand) are skipped.
    static func find(in m: InterferenceMatrix) -> [OneSampleInfluence] {
        var found: [OneSampleInfluence] = []
        for i in m.values.indices {
            for j in m.values[i].indices where j != i {
                guard let f = FarthestSample.find(in: m, i: i, j: j, minimumKept: 3),
                    abs(f.valueWithout - m.values[i][j]) > threshold
                else { continue }
                found.append(OneSampleInfluence(i: i, j: j, value: m.values[i][j], farthest: f))
            }
        }
        return found
    }
}

/// Entry (i, j)'s kept sample whose ratio `s[j,i][b] / s[i,i][b]` lies farthest from the value, and
/// so moves it most when left out: the sample `IntervalMiss` and `OneSampleInfluence` name.
struct FarthestSample {
    /// Index b of the sample among task i's samples.
    let sample: Int
    /// Its own-task change `s[i,i][b]`, and the median of the kept samples' own changes.
    let ownChange: Double
    let medianOwnChange: Double
    /// Its ratio, and the mean of the other kept samples' ratios.
    let ratio: Double
    let valueWithout: Double

    /// Nil when fewer than `minimumKept` samples are kept (own change > 0, both changes finite), or
    /// when their ratios do not give back the stored value (a file edited by hand).
    static func find(in m: InterferenceMatrix, i: Int, j: Int, minimumKept: Int) -> FarthestSample? {
        guard i < m.delta.count, j < m.delta[i].count, i < m.values.count, j < m.values[i].count else { return nil }
        let own = m.delta[i][i]
        let cross = m.delta[i][j]
        let flagged = Set(m.flaggedSamples.indices.contains(i) ? m.flaggedSamples[i] : [])
        let kept = own.indices.filter { b in
            !flagged.contains(b) && b < cross.count && own[b] > 0 && own[b].isFinite && cross[b].isFinite
        }
        guard kept.count >= max(2, minimumKept) else { return nil }
        let ratios = kept.map { cross[$0] / own[$0] }
        let sum = ratios.reduce(0, +)
        let value = m.values[i][j]
        guard abs(sum / Double(kept.count) - value) <= 1e-9 * max(1, abs(value)) else { return nil }
        let k = ratios.indices.max { abs(ratios[$0] - value) < abs(ratios[$1] - value) }!
        let owns = kept.map { own[$0] }.sorted()
        let median = owns.count % 2 == 1 ? owns[owns.count / 2] : (owns[owns.count / 2 - 1] + owns[owns.count / 2]) / 2
        return FarthestSample(
            sample: kept[k], ownChange: own[kept[k]], medianOwnChange: median, ratio: ratios[k],
            valueWithout: (sum - ratios[k]) / Double(kept.count - 1))
    }
}
