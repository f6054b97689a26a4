import Storage

/// Runs a Storage call and wraps its error (house-style §7: wrap, don't re-stringify).
func storage<T>(_ body: () throws(StorageError) -> T) throws(InterferenceError) -> T {
    do {
        return try body()
    } catch {
        throw .storage(error)
    }
}

/// `[[Double]]` ⇄ flat row-major, with the shape checked on the way in.
func flatten(_ m: [[Double]]) -> [Double] { m.flatMap { $0 } }
func flatten(_ m: [[[Double]]]) -> [Double] { m.flatMap { $0.flatMap { $0 } } }
func unflatten(_ v: [Double], rows: Int, columns: Int) -> [[Double]] {
    (0..<rows).map { r in Array(v[(r * columns)..<((r + 1) * columns)]) }
}
