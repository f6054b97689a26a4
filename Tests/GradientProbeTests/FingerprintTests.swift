import Foundation
import Testing

@testable import GradientProbe
@testable import Storage

/// The probe's SHA-256 (what `merge` compares shards by) against the FIPS 180-2 example digests
/// (the expected strings are those printed by Python's `hashlib.sha256`, an independent
/// implementation). Each test runs the Swift compression function and, where the CPU has them, the
/// SHA extensions' (`CSHA256`).
@Suite("SHA-256 fingerprints")
struct FingerprintTests {
    /// Which compression functions this CPU can run: Swift, and the SHA extensions where present.
    static let paths = [false] + (SHA256.hardwareAvailable ? [true] : [])

    static func hex(_ bytes: some Collection<UInt8>, hardware: Bool) -> String {
        var hasher = SHA256(hardware: hardware)
        hasher.update(bytes)
        return hasher.finish()
    }

    @Test("FIPS 180-2 examples, the empty message and a 1-block padding edge")
    func knownAnswers() {
        let cases: [([UInt8], String)] = [
            ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
            ),
            (
                [UInt8](repeating: 0x61, count: 1_000_000),
                "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
            ),
            (
                // 9 × 256 + 55 bytes: the length field fits the last block exactly.
                (0..<9).flatMap { _ in (0...255).map { UInt8($0) } } + [UInt8](repeating: 0x78, count: 55),
                "7da2347242e4eab076e3bfdf76004d41258281981050739e00ff819a0589a251"
            ),
        ]
        for (message, digest) in cases {
            #expect(SHA256.hex(of: message) == digest, "\(message.count) bytes")
            for hardware in Self.paths {
                #expect(Self.hex(message, hardware: hardware) == digest, "\(message.count) bytes, hardware \(hardware)")
            }
        }
    }

    @Test("the SHA extensions and the Swift function agree on every length from 0 to 300 bytes, on 70 kB, and at every alignment")
    func pathsAgree() {
        var state: UInt64 = 0x9e37_79b9_7f4a_7c15
        let bytes = (0..<70_000).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        for count in Array(0...300) + [70_000] {
            let digests = Set(Self.paths.map { Self.hex(bytes.prefix(count), hardware: $0) })
            #expect(digests.count == 1, "\(count) bytes: \(digests)")
        }
        // Blocks read straight from the caller's bytes start wherever those do: every alignment.
        for offset in 1..<16 {
            let digests = Set(Self.paths.map { Self.hex(bytes[offset..<(offset + 1000)], hardware: $0) })
            #expect(digests.count == 1, "1000 bytes from offset \(offset): \(digests)")
        }
    }

    /// A detection bug must not silently leave the SHA extensions unused (or used where absent).
    @Test func hardwareMatchesTheCPUFlags() throws {
        #if os(Linux) && arch(x86_64)
            let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
            let flags = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ") ?? []
            #expect(SHA256.hardwareAvailable == flags.contains("sha_ni"), "sha_ni in /proc/cpuinfo: \(flags.contains("sha_ni"))")
        #endif
    }

    @Test("pieces of any size, and a file read in 1 MiB pieces, give the one-piece digest")
    func pieces() throws {
        let bytes = (0..<1_300_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        let whole = SHA256.hex(of: bytes)
        for hardware in Self.paths {
            var hasher = SHA256(hardware: hardware)
            var start = 0
            for size in [1, 63, 64, 65, 1000, 127, 128, 0, 4096] {
                hasher.update(bytes[start..<(start + size)])
                start += size
            }
            hasher.update(bytes[start...])
            #expect(hasher.finish() == whole, "hardware \(hardware)")
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fingerprint-\(UUID()).bin")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(bytes).write(to: url)
        #expect(try SHA256.hex(ofFile: url) == whole)
    }
}
