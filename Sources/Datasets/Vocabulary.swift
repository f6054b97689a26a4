/// The word-level vocabulary: one id per lower-case word, then the five specials as the last ids.
///
/// Layout (the model contract, `Sources/UniPerceiver/README.md`): ids `0 ..< V−5` are regular
/// words; V−5 `<|startoftext|>`, V−4 `<|endoftext|>` (EOT), V−3 `<|mask|>`, V−2 `<|gen|>`,
/// V−1 `<|spe|>` (SPE, also the MLM mask token and the caption query token). Tokenisation splits
/// on spaces; there is no sub-word step, so a "whole word" for masking is one token.
public struct Vocabulary: Sendable, Equatable {
    /// The five specials in the order they follow the regular words (CLIP's order).
    public static let specialTokens = [
        "<|startoftext|>", "<|endoftext|>", "<|mask|>", "<|gen|>", "<|spe|>",
    ]

    /// The word of every id, specials included (`words.count == count`).
    public let words: [String]
    private let index: [String: Int]

    /// A vocabulary over `regularWords` (ids in the given order) followed by the five specials.
    public init(regularWords: [String]) {
        precondition(
            Set(regularWords).count == regularWords.count,
            "Vocabulary: regular words must be distinct")
        precondition(
            Set(regularWords).isDisjoint(with: Vocabulary.specialTokens),
            "Vocabulary: a regular word spells a special token")
        self.words = regularWords + Vocabulary.specialTokens
        var index: [String: Int] = [:]
        for (id, word) in words.enumerated() { index[word] = id }
        self.index = index
    }

    /// Checks a full word list read from `file` (`path` names the dataset in messages): distinct
    /// words, at least one regular word, and the specials as the last five entries in order.
    /// - Throws: `DatasetError.badContent` naming the file, the path and the offending word.
    public init(words: [String], file: String, path: String) throws(DatasetError) {
        let specials = Vocabulary.specialTokens
        guard words.count > specials.count else {
            throw .badContent(
                file: file, path: path,
                reason: "\(words.count) words, need at least one regular word and the 5 specials")
        }
        guard Array(words.suffix(specials.count)) == specials else {
            throw .badContent(
                file: file, path: path,
                reason: "the last five words are \(Array(words.suffix(specials.count))), "
                    + "expected \(specials)")
        }
        let regular = Array(words.dropLast(specials.count))
        var seen = Set<String>()
        for word in regular {
            guard !specials.contains(word) else {
                throw .badContent(
                    file: file, path: path, reason: "special token \(word) among the regular words")
            }
            guard seen.insert(word).inserted else {
                throw .badContent(file: file, path: path, reason: "word '\(word)' appears twice")
            }
        }
        self.init(regularWords: regular)
    }

    /// V, the number of ids including the specials.
    public var count: Int { words.count }
    /// Number of regular words (ids `0 ..< regularCount`).
    public var regularCount: Int { words.count - Vocabulary.specialTokens.count }

    /// `<|startoftext|>`, id V−5.
    public var startOfText: Int { count - 5 }
    /// `<|endoftext|>` (EOT), id V−4; ends every class name, caption and corpus sentence.
    public var endOfText: Int { count - 4 }
    /// `<|mask|>`, id V−3 (unused by the tasks: MLM masks with SPE, as the reference code does).
    public var mask: Int { count - 3 }
    /// `<|gen|>`, id V−2.
    public var gen: Int { count - 2 }
    /// `<|spe|>` (SPE), id V−1: the sequence prefix the model adds, the MLM mask token.
    public var spe: Int { count - 1 }

    /// Whether `id` is one of the five specials.
    public func isSpecial(_ id: Int) -> Bool { id >= regularCount && id < count }

    /// The id of `word`, or nil when the word is not in the vocabulary.
    public func id(of word: String) -> Int? { index[word] }

    /// The word of `id` (precondition: `0 ≤ id < count`).
    public func word(of id: Int) -> String {
        precondition(id >= 0 && id < count, "Vocabulary: id \(id) outside 0..<\(count)")
        return words[id]
    }

    /// Token ids of `text` (lower-cased, split on spaces), followed by EOT when
    /// `appendingEndOfText`; nil if a word is not in the vocabulary.
    public func encode(_ text: String, appendingEndOfText: Bool = true) -> [Int]? {
        var ids: [Int] = []
        for word in text.lowercased().split(separator: " ") {
            guard let id = index[String(word)] else { return nil }
            ids.append(id)
        }
        if appendingEndOfText { ids.append(endOfText) }
        return ids
    }

    /// The words of `ids` joined by spaces (specials spelled out).
    public func decode(_ ids: [Int]) -> String {
        ids.map { word(of: $0) }.joined(separator: " ")
    }
}
