import ArgumentParser
import Datasets
import Foundation
import GradientProbe
import Interference
import UniPerceiver

// Numeric options are declared `parsing: .unconditional`: by default argument-parser reads "-1"
// as an unknown flag and reports a missing value, so a negative number never reached the checks
// that say what the value must be.

/// Checks and conversions of option values shared by the commands.
enum OptionValues {
    /// A seed: an integer 0 … 2⁶⁴ − 1 (the transform of every `--seed`-like option).
    static func seed(_ text: String) throws -> UInt64 {
        guard let value = UInt64(text) else {
            throw ValidationError("must be a non-negative integer (0 … \(UInt64.max))")
        }
        return value
    }

    /// `value` ≥ `minimum`, or a usage error naming `option`.
    static func require(_ value: Int, atLeast minimum: Int, _ option: String, because reason: String = "")
        throws(ValidationError)
    {
        guard value < minimum else { return }
        let bound =
            switch minimum {
            case 0: "non-negative"
            case 1: "positive"
            default: "at least \(minimum)"
            }
        throw ValidationError("\(option) must be \(bound)\(reason.isEmpty ? "" : " (\(reason))"), got \(value)")
    }

    /// `--bootstrap`: 0 (no intervals) or 2 … `BootstrapInterval.maxReplicates`, checked before any
    /// work. One replicate's "interval" is a single resampled value: zero width, and mostly not
    /// even holding the estimate.
    static func requireBootstrap(_ value: Int) throws(ValidationError) {
        guard value == 0 || (2...BootstrapInterval.maxReplicates).contains(value) else {
            throw ValidationError(
                "--bootstrap must be 0 (no intervals) or 2 … \(BootstrapInterval.maxReplicates) replicates (default \(BootstrapInterval.defaultReplicates)), got \(value)")
        }
    }

    /// A byte count such as `4GiB`, refused naming `option` (the probe's own parser says "probe:",
    /// which misleads under `merge`).
    static func byteCount(_ text: String, option: String) throws(InputError) -> Int {
        do { return try ProbeOptions.parseBytes(text) } catch {
            guard case .badOption(let reason) = error else { throw InputError(error.description) }
            throw InputError("\(option): \(reason)")
        }
    }

    /// Comma-separated names, trimmed; none, an empty or a repeated name is refused naming `option`.
    static func names(_ text: String, option: String) throws(InputError) -> [String] {
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { throw InputError("\(option) names nothing") }
        let names = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        var seen = Set<String>()
        for name in names {
            guard !name.isEmpty else { throw InputError("\(option): '\(text)' has an empty name") }
            guard seen.insert(name).inserted else { throw InputError("\(option): '\(name)' is listed twice") }
        }
        return names
    }

    /// `--tasks`: comma-separated task names, in row order; an unknown, empty (`mlm,`) or repeated
    /// one is refused naming `option`.
    static func tasks(_ text: String, option: String = "--tasks") throws(InputError) -> [TaskKind] {
        var kinds: [TaskKind] = []
        for name in try names(text, option: option) {
            do throws(DatasetError) {
                kinds.append(try TaskDefinition.named(name).kind)
            } catch {
                throw InputError("\(option): \(error.description)")
            }
        }
        return kinds
    }
}
