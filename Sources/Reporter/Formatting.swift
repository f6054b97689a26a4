import Foundation

/// Fixed-point text for a number, the same on every machine: `"%.<digits>f"` in the POSIX locale,
/// `-0.000` written as `0.000`, NaN as `n/a`, infinities as `inf` / `-inf`.
func fixed(_ value: Double, _ digits: Int = 3) -> String {
    guard value.isFinite else { return value.isNaN ? "n/a" : (value > 0 ? "inf" : "-inf") }
    let text = String(format: "%.\(digits)f", value)
    if text.hasPrefix("-"), text.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) {
        return String(text.dropFirst())
    }
    return text
}

/// Two significant digits in scientific notation (`3.0e-05`), for quantities whose scale varies.
func scientific(_ value: Double) -> String {
    value.isFinite ? String(format: "%.1e", value) : fixed(value)
}

/// A signed difference: `+0.012`, `-0.104`, `0.000`.
func signed(_ value: Double, _ digits: Int = 3) -> String {
    let text = fixed(value, digits)
    guard value.isFinite, !text.hasPrefix("-"), text.contains(where: { $0 != "0" && $0 != "." })
    else {
        return text
    }
    return "+" + text
}

/// Escapes `|` so a value cannot break a markdown table row.
func cell(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|") }

/// Escapes the five XML special characters.
func xmlEscaped(_ text: String) -> String {
    var out = ""
    for ch in text {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        default: out.append(ch)
        }
    }
    return out
}
