import CSHA256
import Foundation

/// SHA-256 (FIPS 180-4) of a file or bytes, as lower-case hex — the `checkpoint` and `data`
/// fingerprints of the probe file, which `merge` compares, and the dataset a training run resumes on. Foundation on Linux has no CryptoKit and
/// the package takes no crypto dependency for one digest, so it is written out here.
///
/// The compression function runs on the CPU's SHA extensions where it has them (`CSHA256`), else in
/// Swift below (≈ 130 MB/s on the Emerald Rapids host, 40 % of `analyze`'s CPU on a 75 MB probe file
/// of the demo's MoE checkpoint); both give the same digest (`FingerprintTests`).
public struct SHA256 {
    /// Whether this CPU runs the compression on its SHA extensions.
    public static let hardwareAvailable = ti_sha256_hardware_available()

    /// Whether this hasher uses them (tests turn them off to check the Swift function).
    let hardware: Bool

    private var state: [UInt32] = [
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab,
        0x5be0_cd19,
    ]
    private var pending: [UInt8] = []
    private var length: UInt64 = 0

    private static let k: [UInt32] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4,
        0xab1c_5ed5, 0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe,
        0x9bdc_06a7, 0xc19b_f174, 0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f,
        0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da, 0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7,
        0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967, 0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc,
        0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85, 0xa2bf_e8a1, 0xa81a_664b,
        0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070, 0x19a4_c116,
        0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7,
        0xc671_78f2,
    ]

    public init() { hardware = Self.hardwareAvailable }

    init(hardware: Bool) {
        precondition(!hardware || Self.hardwareAvailable, "SHA256: this CPU has no SHA extensions")
        self.hardware = hardware
    }

    public mutating func update(_ bytes: some Collection<UInt8>) {
        length &+= UInt64(bytes.count)
        // Whole blocks straight from contiguous bytes when nothing is pending: copying a 1 MiB
        // piece through `pending` costs as much as hashing it on the SHA extensions.
        if pending.isEmpty {
            let rest: Int? = bytes.withContiguousStorageIfAvailable { buffer in
                let whole = buffer.count / 64 * 64
                if whole > 0 { compress(blocks: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[0..<whole]))) }
                pending.append(contentsOf: buffer[whole...])
                return whole
            }
            if rest != nil { return }
        }
        pending.append(contentsOf: bytes)
        let whole = pending.count / 64 * 64
        guard whole > 0 else { return }
        pending.withUnsafeBytes { compress(blocks: UnsafeRawBufferPointer(rebasing: $0[0..<whole])) }
        pending.removeFirst(whole)
    }

    public mutating func finish() -> String {
        let bits = length &* 8
        var tail: [UInt8] = [0x80]
        while (pending.count + tail.count) % 64 != 56 { tail.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
        pending.append(contentsOf: tail)
        pending.withUnsafeBytes { compress(blocks: $0) }
        pending = []
        return state.map { word in
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: 8 - hex.count) + hex
        }.joined()
    }

    /// The compression function over whole 64-byte blocks. The message schedule lives in one
    /// stack buffer for all blocks: an array per block made hashing a 1 MB file take 14 ms.
    private mutating func compress(blocks: UnsafeRawBufferPointer) {
        precondition(blocks.count % 64 == 0, "SHA256.compress: \(blocks.count) bytes is not whole blocks")
        if hardware {
            guard let base = blocks.baseAddress else { return }
            state.withUnsafeMutableBufferPointer { h in
                ti_sha256_blocks_hardware(h.baseAddress!, base.assumingMemoryBound(to: UInt8.self), blocks.count / 64)
            }
            return
        }
        @inline(__always) func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { x >> n | x << (32 - n) }
        var h0 = state[0], h1 = state[1], h2 = state[2], h3 = state[3]
        var h4 = state[4], h5 = state[5], h6 = state[6], h7 = state[7]
        Self.k.withUnsafeBufferPointer { k in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
                for block in stride(from: 0, to: blocks.count, by: 64) {
                    for t in 0..<16 {
                        w[t] = UInt32(bigEndian: blocks.loadUnaligned(fromByteOffset: block + 4 * t, as: UInt32.self))
                    }
                    for t in 16..<64 {
                        let s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
                        let s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
                        w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
                    }
                    var (a, b, c, d, e, f, g, h) = (h0, h1, h2, h3, h4, h5, h6, h7)
                    for t in 0..<64 {
                        let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                        let ch = (e & f) ^ (~e & g)
                        let t1 = h &+ s1 &+ ch &+ k[t] &+ w[t]
                        let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                        let maj = (a & b) ^ (a & c) ^ (b & c)
                        let t2 = s0 &+ maj
                        (h, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
                    }
                    h0 &+= a; h1 &+= b; h2 &+= c; h3 &+= d
                    h4 &+= e; h5 &+= f; h6 &+= g; h7 &+= h
                }
            }
        }
        state = [h0, h1, h2, h3, h4, h5, h6, h7]
    }

    public static func hex(of bytes: some Collection<UInt8>) -> String {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finish()
    }

    /// The digest of a file, read in 1 MiB pieces.
    /// - Throws: `StorageError.cannotOpen` / `.io` naming the file.
    public static func hex(ofFile url: URL) throws(StorageError) -> String {
        guard let handle = try? FileHandle(forReadingFrom: url) else {
            throw .cannotOpen(file: url.path, reason: "cannot open to fingerprint it")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk: Data
            do { chunk = try handle.read(upToCount: 1 << 20) ?? Data() } catch {
                throw .io(file: url.path, reason: "read failed: \(error)")
            }
            if chunk.isEmpty { break }
            hasher.update(chunk)
        }
        return hasher.finish()
    }
}
