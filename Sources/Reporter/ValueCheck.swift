import Interference

/// Refuses an interference file holding a value the analysis never writes, before a report prints
/// it or a regression check compares it (where it would read as a regression that is not one).
///
/// The analysis writes NaN on purpose for what is undefined: a row of `I` whose every own-task
/// denominator was flagged (`InterferenceMatrix`: the whole row, diagonal included), and interval,
/// agreement or look-ahead entries with no usable sample. With the first-order metric a NaN inside
/// a row that is otherwise defined cannot come from it, and no value is ever ±∞ (the Gram is
/// checked finite and every division is by a positive number).
///
/// - Throws: `.unusableValue` naming `file`, the group and the entry.
public func checkValues(of analysis: InterferenceAnalysis, file: String) throws(ReportError) {
    let tasks = analysis.tasks
    func pair(_ i: Int, _ j: Int) -> String {
        i < tasks.count && j < tasks.count ? "[\(tasks[i]), \(tasks[j])]" : "[\(i), \(j)]"
    }
    func refuseInfinity(_ matrix: [[Double]], _ what: String, group: String) throws(ReportError) {
        for (i, row) in matrix.enumerated() {
            for (j, value) in row.enumerated() where value.isInfinite {
                throw .unusableValue(
                    file: file, group: group, entry: what + pair(i, j),
                    reason: "is \(value), and the analysis never writes an infinity")
            }
        }
    }
    for group in analysis.groups {
        let name = group.name
        let values = group.interference.values
        try refuseInfinity(values, "I", group: name)
        if analysis.metric == .firstOrder {
            for (i, row) in values.enumerated() where !row.allSatisfy(\.isNaN) {
                if let j = row.firstIndex(where: \.isNaN) {
                    throw .unusableValue(
                        file: file, group: name, entry: "I" + pair(i, j),
                        reason: "is NaN in a row that is otherwise defined (the analysis leaves only whole rows undefined)")
                }
                // s/s is exactly 1 for every sample, so a defined row's diagonal is exactly 1: a file
                // whose values were damaged without a checksum to say so (older files have none)
                // shows it here first.
                if i < row.count, row[i] != 1 {
                    throw .unusableValue(
                        file: file, group: name, entry: "I" + pair(i, i),
                        reason: "is \(row[i]), and the analysis writes exactly 1 on the diagonal of a defined row")
                }
            }
        }
        if let interval = group.interval {
            try refuseInfinity(interval.low, "interval low of I", group: name)
            try refuseInfinity(interval.high, "interval high of I", group: name)
        }
        try refuseInfinity(group.agreement.cosine, "cosine", group: name)
        try refuseInfinity(group.agreement.conflictFraction, "conflict fraction", group: name)
        if let check = group.lookAhead {
            try refuseInfinity(check.exact.values, "look-ahead exact I", group: name)
            try refuseInfinity(check.firstOrder.values, "look-ahead first-order I", group: name)
        }
    }
}
