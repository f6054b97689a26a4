import Interference

/// Every way a report or a regression check can be refused. One line each.
public enum ReportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Two runs (or a baseline and a candidate) that cannot be put side by side or compared:
    /// different tasks, groups, metric or format version. The CLI maps this to exit 2.
    case incompatible(reason: String)
    /// A selected group that no run holds.
    case unknownGroup(String)
    /// Settings out of range (no run, no group to show, a negative tolerance).
    case invalidOptions(reason: String)
    /// A file could not be read; the underlying error names the file.
    case input(InterferenceError)
    /// A baseline and a candidate file that cannot be compared (`incompatible`, with both files).
    case incompatibleFiles(baseline: String, candidate: String, reason: String)
    /// A value the analysis never writes (±∞, or NaN inside a defined row): the file is damaged or
    /// was made by something else (`checkValues(of:file:)`).
    case unusableValue(file: String, group: String, entry: String, reason: String)
    /// Two runs with the same label: their heatmaps (`<report>-<label>-<group>.svg`) would share names.
    case sameLabel(String)
    /// Two heatmaps whose names differ only in characters a file name replaces, so they would be
    /// written to one file.
    case clashingHeatmaps(fileName: String)

    public var description: String {
        switch self {
        case .incompatible(let reason): return "cannot compare: \(reason)"
        case .unknownGroup(let name): return "no group '\(name)' in the given runs"
        case .invalidOptions(let reason): return reason
        case .input(let error): return error.description
        case .incompatibleFiles(let baseline, let candidate, let reason):
            return "cannot compare candidate \(candidate) with baseline \(baseline): \(reason)"
        case .unusableValue(let file, let group, let entry, let reason):
            return "\(file): group '\(group)': \(entry) \(reason)"
        case .sameLabel(let label):
            return "two runs are labelled '\(label)', so their heatmaps would overwrite each other"
        case .clashingHeatmaps(let fileName):
            return "two heatmaps would both be written to \(fileName) (run labels or group names that differ only in characters a file name replaces)"
        }
    }
}
