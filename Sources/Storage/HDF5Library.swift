import CHDF5
import Foundation

/// Process-wide access to libhdf5.
///
/// The distribution builds of libhdf5 are not thread-safe, and Swift Testing (or a probe writing
/// from several tasks) calls in from many threads, so every wrapper call runs under one recursive
/// lock. The first call also turns off HDF5's own error printing (failures are reported as
/// ``StorageError`` values carrying HDF5's innermost message instead) and its cleanup at exit.
enum HDF5Library {
    private static let lock = NSRecursiveLock()
    private static let initialized: Bool = {
        // No library shutdown at exit (must precede every other HDF5 call): after a close that
        // failed to flush (a full disk), HDF5 1.10's atexit cleanup dereferenced the half-closed
        // file and crashed the process after its error line. Files are closed or discarded
        // explicitly, so nothing is lost by skipping it.
        H5dont_atexit()
        return true
    }()

    /// HDF5's automatic error printing is a per-thread setting in Debian's build (its messages say
    /// "thread N"), so it is turned off on every thread that calls in, the first time it does.
    private static func silenceThisThread() {
        let key = "TaskInterference.HDF5Library.silenced"
        let storage = Thread.current.threadDictionary
        guard storage[key] == nil else { return }
        chdf5_silence_errors()
        storage[key] = true
    }

    /// Runs `body` while holding the library lock.
    static func locked<T>(_ body: () throws(StorageError) -> T) throws(StorageError) -> T {
        lock.lock()
        defer { lock.unlock() }
        _ = initialized
        silenceThisThread()
        return try body()
    }

    /// Non-throwing variant, for queries that answer nil or false instead of failing.
    static func lockedQuery<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        _ = initialized
        silenceThisThread()
        return body()
    }

    /// HDF5's most specific message for the error that just happened ("" if none).
    static func lastError() -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        _ = chdf5_last_error(&buffer, buffer.count)
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Kept until InterferenceCLI/main.swift (the package skeleton's link check) stops calling it.
public func _hdf5Probe() -> Int64 { Int64(chdf5_native_float()) }
