import Datasets
import Kernels
import Testing
import UniPerceiver

/// Statistical bounds for masking draws. With M masked tokens the standard error of a fraction p is
/// √(p(1−p)/M); the bounds below are at least 5 standard errors for the sample sizes used, so a
/// correct implementation fails with probability far below 1e-6 (and the seeds are fixed anyway).
private enum Bounds {
    static let maskedRate = 0.005  // 4000 × 17 tokens: SE ≈ 0.0014
    static let speShare = 0.02  // ≈ 10 000 masked: SE ≈ 0.004
    static let randomShare = 0.015  // SE ≈ 0.003
}

@Suite("MLM whole-word masking")
struct MaskingTests {
    @Test("about 15 % of the words are masked, 80/10/10 SPE / random / unchanged")
    func statistics() throws {
        let data = try Synthetic.dataset(sentenceLength: 17)
        let v = data.vocabulary
        var rng = SeededRNG(seed: 2024)
        var words = 0
        var masked = 0
        var spe = 0
        var random = 0
        var unchanged = 0
        for _ in 0..<4000 {
            let sentence = data.corpus[rng.nextInt(below: data.corpus.count)]
            let (tokens, labels) = WordMasking().mask(sentence, vocabulary: v, rng: &rng)
            words += sentence.count - 1
            #expect(tokens.last == v.endOfText && labels.last == -1, "EOT is never masked")
            for t in sentence.indices where labels[t] != -1 {
                masked += 1
                #expect(labels[t] == sentence[t])
                if tokens[t] == v.spe {
                    spe += 1
                } else if tokens[t] == sentence[t] {
                    unchanged += 1
                } else {
                    random += 1
                    #expect(!v.isSpecial(tokens[t]), "random replacements are regular words")
                }
            }
            for t in sentence.indices where labels[t] == -1 { #expect(tokens[t] == sentence[t]) }
        }
        let rate = Double(masked) / Double(words)
        #expect(abs(rate - 0.15) < Bounds.maskedRate, "masked rate \(rate)")
        // A random replacement equal to the original counts as unchanged: 1/regularCount of 10 %.
        let collide = 0.1 / Double(v.regularCount)
        #expect(abs(Double(spe) / Double(masked) - 0.8) < Bounds.speShare)
        #expect(abs(Double(random) / Double(masked) - (0.1 - collide)) < Bounds.randomShare)
        #expect(abs(Double(unchanged) / Double(masked) - (0.1 + collide)) < Bounds.randomShare)
    }

    @Test(
        "every sequence has at least one masked word, even a one-word sentence",
        arguments: [1, 2, 3, 6])
    func atLeastOne(length: Int) throws {
        let data = try Synthetic.dataset(sentenceLength: length)
        var rng = SeededRNG(seed: UInt64(length))
        for _ in 0..<500 {
            let (_, labels) = WordMasking().mask(
                data.corpus[0], vocabulary: data.vocabulary, rng: &rng)
            #expect(labels.contains { $0 != -1 })
        }
    }

    @Test("the same seed gives the same masks; another seed gives others")
    func determinism() throws {
        let data = try Synthetic.dataset()
        let indices = data.indices(of: .mlm, in: .train)
        func draw(_ seed: UInt64) -> [[Int]] {
            var rng = SeededRNG(seed: seed)
            guard
                case .mlm(let tokens, _) = data.makeBatch(
                    task: .mlm, split: .train, indices: indices, rng: &rng)
            else { return [] }
            return tokens
        }
        #expect(draw(5) == draw(5))
        #expect(draw(5) != draw(6))
    }
}
