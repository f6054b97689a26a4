import CHDF5
import Foundation
import Synchronization

/// Everything of an HDF5 file's metadata that a command reads through attributes and listings —
/// every attribute of every object, every group's members, every string dataset — read by another
/// process, so that this one never asks libhdf5 to decode it.
///
/// Why: libhdf5 1.10 (Debian 12's `libhdf5-dev`) crashes, instead of failing, on some damaged
/// bytes, and a crash cannot be caught in process. Flipping bytes of our own files found:
/// - a variable-length string whose global-heap reference is damaged: `H5HG_read` trusts the heap
///   index and the object size it finds (`assert`s only), and copies from a wild address;
/// - a damaged attribute message in an object header of the 1.6 format (no checksum): decoding it
///   for `H5Aexists` copies past its buffer.
/// Either may also not crash and return garbage, or loop. The command line therefore reads each
/// HDF5 input's metadata in a child process first (`interference read-metadata`), refuses the
/// file if the child dies or does not finish, and otherwise registers the table here
/// (``register(_:for:)``): a read-only ``HDF5File`` opened on that unchanged file afterwards
/// answers attribute reads, attribute and member listings and string-dataset reads from the
/// table. A wild read that did not crash the child cannot crash the command; what the child could
/// not read is refused when the command asks for it. Numeric datasets are still read in process,
/// after their type and storage are checked (`checkNumericLayout`, `checkStorageLayout`).
public struct HDF5MetadataTable: Codable, Sendable, Equatable {
    /// One object the walk reached (paths as ``HDF5File`` normalises them, `"/"` the root).
    public struct Object: Codable, Sendable, Equatable {
        /// Its attributes that read cleanly.
        public var attributes: [String: HDF5AttributeValue] = [:]
        /// Attributes it has whose read failed (refused when asked for), or that are of a type this
        /// library does not read (compound, enum: refused as before, by type).
        public var unreadable: [String: String] = [:]
        /// A group's member names, in byte order; nil for a dataset or when listing them failed.
        public var members: [String]? = nil
        /// True for a group, false for a dataset.
        public var isGroup = false
        /// False when listing its attributes failed: then none of them can be answered.
        public var attributesListed = false
        public init() {}
    }

    public var objects: [String: Object] = [:]
    /// String datasets that read cleanly: path → values, flattened in row-major order.
    public var strings: [String: [String]] = [:]

    public init() {}

    /// The file a table was read from, as `stat(2)` saw it: a table answers only for the same file,
    /// unchanged since.
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

    private static let registered = Mutex<[Identity: HDF5MetadataTable]>([:])

    /// Makes `table` the answer to metadata reads of `url` by every read-only ``HDF5File`` opened on
    /// it from now on (while the file is unchanged), once its strings pass the file's own digest
    /// (``checkStringsDigest(file:)``): the table is the one place every string of the file is read.
    /// - Throws: `.stringsDigestMismatch`; nothing is registered then.
    public static func register(_ table: HDF5MetadataTable, for url: URL) throws(StorageError) {
        try table.checkStringsDigest(file: url.path)
        guard let identity = Identity(url) else { return }
        registered.withLock { $0[identity] = table }
    }

    /// The table registered for `url`, if the file is still the one it was read from.
    static func registered(for url: URL) -> HDF5MetadataTable? {
        guard let identity = Identity(url) else { return nil }
        return registered.withLock { $0[identity] }
    }

    /// JSON as the child writes it: non-finite numbers as strings (JSON has none).
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    /// The reader of ``encoder()``'s JSON.
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}

extension HDF5MetadataTable {
    /// Whether the object at normalised path `p` exists by the members the child listed: nil when
    /// a group on the way could not be listed.
    func listed(_ p: String) -> Bool? {
        if p == "/" || objects[p] != nil { return true }
        let cut = p.lastIndex(of: "/")!
        let parent = cut == p.startIndex ? "/" : String(p[..<cut])
        switch listed(parent) {
        case false?: return false
        case nil: return nil
        case true?:
            // The parent exists; p is not in the table, so at best it exists and could not be read.
            guard let parentObject = objects[parent] else { return nil }
            guard parentObject.isGroup else { return false }
            guard let members = parentObject.members else { return nil }
            return members.contains(String(p[p.index(after: cut)...])) ? nil : false
        }
    }
}

extension HDF5File {
    /// Reads every attribute of every object, every group's members and every string dataset,
    /// walking the groups from the root (at most `maxDepth` deep: a hard link can make a cycle).
    /// Made to run in a child process (see ``HDF5MetadataTable``). What fails to read cleanly is
    /// recorded as unreadable or left out, and the walk goes on.
    public func metadataTable(maxDepth: Int = 64) -> HDF5MetadataTable {
        var table = HDF5MetadataTable()
        func visit(_ path: String, depth: Int) {
            var object = HDF5MetadataTable.Object()
            let names = try? attributeNames(at: path)
            object.attributesListed = names != nil
            for name in names ?? [] {
                do {
                    object.attributes[name] = try attribute(name, at: path)
                } catch {
                    object.unreadable[name] = error.description
                }
            }
            switch kind(of: path) {
            case .group?:
                let members = try? children(of: path)
                object.members = members
                object.isGroup = true
                table.objects[path] = object
                guard depth < maxDepth else { return }
                for child in members ?? [] {
                    visit(path == "/" ? "/\(child)" : "\(path)/\(child)", depth: depth + 1)
                }
            case .dataset?:
                table.objects[path] = object
                if let strings = try? readStrings(path) { table.strings[path] = strings }
            default:
                return
            }
        }
        visit("/", depth: 0)
        return table
    }

    /// The registered table's entry for the object at normalised path `p`, or nil when no table is
    /// registered (read the file). With a table, an object it lacks is refused: missing when its
    /// group's members, as the child listed them, do not name it; unreadable otherwise.
    func preloadedObject(_ p: String) throws(StorageError) -> HDF5MetadataTable.Object? {
        guard let preloaded else { return nil }
        if let object = preloaded.objects[p] { return object }
        if preloaded.listed(p) == false { throw StorageError.missingDataset(file: name, path: p) }
        throw unreadable("read the metadata of", p)
    }

    /// Attribute `name` of the object at normalised path `p` from the registered table: nil when
    /// no table is registered (read the file), its value, or the error a damaged or absent
    /// attribute gives.
    func preloadedAttribute(_ name: String, at p: String) throws(StorageError) -> HDF5AttributeValue? {
        guard let object = try preloadedObject(p) else { return nil }
        if let value = object.attributes[name] { return value }
        if let reason = object.unreadable[name] { throw unreadable("read attribute '\(name)' on", p, reason) }
        guard object.attributesListed else { throw unreadable("list attributes of", p) }
        throw StorageError.missingAttribute(file: self.name, path: p, name: name)
    }

    /// The error for metadata the child process could not read.
    func unreadable(_ operation: String, _ path: String, _ detail: String? = nil) -> StorageError {
        StorageError.hdf5(
            file: name, operation: operation, path: path,
            detail: "unreadable (damaged file: reading it failed in a separate process\(detail.map { ": \($0)" } ?? ""))")
    }
}
