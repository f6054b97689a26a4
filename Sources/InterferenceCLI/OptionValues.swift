import Foundation

/// Checks and conversions of option values shared by the commands.
enum OptionValues {
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
}
