import CHDF5
import Foundation
import Synchronization

/// Every string of an HDF5 file — its string attributes and string datasets — read by another
/// process, so that this one never asks libhdf5 to read them.
///
/// Why: libhdf5 1.10 (Debian 12's `libhdf5-dev`) does not bounds-check where a variable-length
/// string points into the file's global heap (`H5HG_read` trusts the heap index and the object
/// size it finds). One changed byte there — found by flipping bytes of our own probe and
/// interference files — makes the read copy from a wild address: a segmentation fault, or memory
/// silently overwritten, never an error code. Such a read can only be made safe by making it
/// somewhere else. The command line reads each HDF5 input's strings in a child process
/// (`interference read-strings`), refuses the file if the child dies, and otherwise registers the
/// table here (``register(_:for:)``): a read-only ``HDF5File`` opened on that file afterwards
/// answers string reads from the table. Numbers are still read in process: their reads fail
/// cleanly on a corrupted file.
public struct HDF5StringTable: Codable, Sendable, Equatable {
    /// Object path → attribute name → values (one value for a scalar attribute).
    public var attributes: [String: [String: [String]]] = [:]
    /// Dataset path → values, flattened in row-major order.
    public var datasets: [String: [String]] = [:]

    public init() {}

    /// The file whose table is kept, as `stat(2)` saw it: a table answers only for the same file,
    /// unchanged since it was read.
    struct Identity: Hashable {
        let device: UInt64
        let inode: UInt64
        let size: Int64
        let modified: Int64
        let modifiedNanoseconds: Int64

        init?(_ url: URL) {
            var info = stat()
            guard stat(url.path, &info) == 0 else { return nil }
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modified = Int64(info.st_mtim.tv_sec)
            modifiedNanoseconds = Int64(info.st_mtim.tv_nsec)
        }
    }

    private static let registered = Mutex<[Identity: HDF5StringTable]>([:])

    /// Makes `table` the answer to string reads of `url` by every read-only ``HDF5File`` opened on
    /// it from now on (while the file is unchanged).
    public static func register(_ table: HDF5StringTable, for url: URL) {
        guard let identity = Identity(url) else { return }
        registered.withLock { $0[identity] = table }
    }

    /// The table registered for `url`, if the file is still the one it was read from.
    static func registered(for url: URL) -> HDF5StringTable? {
        guard let identity = Identity(url) else { return nil }
        return registered.withLock { $0[identity] }
    }
}

extension HDF5File {
    /// Reads every string attribute of every object and every string dataset, walking the groups
    /// from the root (at most `maxDepth` deep: a hard link can make a cycle). Made to run in a
    /// child process (see ``HDF5StringTable``). What fails to read cleanly is left out and the walk
    /// goes on: the parent refuses to read a string the table lacks, so a failure here still
    /// reaches the command, as the command's own error, when it needs that string. Attributes of
    /// other types are not read, nor are numeric datasets.
    public func stringTable(maxDepth: Int = 64) -> HDF5StringTable {
        var table = HDF5StringTable()
        func visit(_ path: String, depth: Int) {
            for name in (try? attributeNames(at: path)) ?? [] {
                switch try? attribute(name, at: path) {
                case .string(let s)?: table.attributes[path, default: [:]][name] = [s]
                case .strings(let list)?: table.attributes[path, default: [:]][name] = list
                default: continue
                }
            }
            switch kind(of: path) {
            case .group?:
                guard depth < maxDepth else { return }
                for child in (try? children(of: path)) ?? [] {
                    visit(path == "/" ? "/\(child)" : "\(path)/\(child)", depth: depth + 1)
                }
            case .dataset?:
                if let strings = try? readStrings(path) { table.datasets[path] = strings }
            default:
                return
            }
        }
        visit("/", depth: 0)
        return table
    }

    /// The strings of attribute `name` on `path` from the registered table, or nil when no table
    /// is registered (read them from the file). `count` is the attribute's own element count: a
    /// table that disagrees was read from another state of the file. With a table registered,
    /// a string it lacks is refused, never read here: its read failed or crashed in the child.
    func preloadedAttribute(_ name: String, at path: String, count: Int) throws(StorageError) -> [String]? {
        guard let preloaded else { return nil }
        return try preloaded.checked(
            preloaded.attributes[path]?[name], count: count, file: self.name,
            operation: "read attribute '\(name)' on", path: path)
    }

    /// The strings of dataset `path` from the registered table (see ``preloadedAttribute``).
    func preloadedDataset(_ path: String, count: Int) throws(StorageError) -> [String]? {
        guard let preloaded else { return nil }
        return try preloaded.checked(
            preloaded.datasets[path], count: count, file: name, operation: "read strings from", path: path)
    }
}

extension HDF5StringTable {
    /// `values` when present with `count` strings; otherwise the error a damaged file gives.
    fileprivate func checked(
        _ values: [String]?, count: Int, file: String, operation: String, path: String
    ) throws(StorageError) -> [String] {
        guard let values else {
            throw StorageError.hdf5(
                file: file, operation: operation, path: path,
                detail: "unreadable (damaged file: reading it failed in a separate process)")
        }
        guard values.count == count else {
            throw StorageError.hdf5(
                file: file, operation: operation, path: path,
                detail: "\(count) strings in the file, \(values.count) when it was first read")
        }
        return values
    }
}
