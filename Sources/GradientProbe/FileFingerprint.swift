import Foundation
import Storage

/// The SHA-256 fingerprint of a file, as the probe records for its checkpoint and data: for
/// `interference analyze`, which records the probe file's digest in the interference file.
public enum FileFingerprint {
    /// Lower-case hex SHA-256 of the file's bytes.
    public static func sha256(ofFile url: URL) throws(ProbeError) -> String {
        do { return try SHA256.hex(ofFile: url) } catch {
            switch error {
            case .cannotOpen(let file, let reason), .io(let file, let reason): throw .unreadable(file: file, reason: reason)
            default: throw .storage(error)
            }
        }
    }
}
