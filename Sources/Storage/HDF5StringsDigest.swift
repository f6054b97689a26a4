/// A SHA-256 of every string in an HDF5 file we write, recorded in the file as the root attribute
/// `strings_sha256`.
///
/// Why: the characters of variable-length strings live in HDF5's global heap, which no HDF5
/// format checksums. A damaged byte that leaves them valid UTF-8 reads as another string: a task
/// name, a run's kind or a path with one letter changed, which a report then shows without
/// complaint (`reports/robustness.md`). The digest is a fixed-length string attribute of the
/// root, so it sits in the root's object header, which the 1.10 format checksums: damage to the
/// digest itself is refused by libhdf5.
///
/// What it covers: every string attribute (scalar or list, fixed or variable length) of every
/// object, except the digest, and every string dataset. Items are taken in byte order of
/// (object path, attribute before dataset, attribute name); each contributes its kind (`a` or
/// `d`), path, NUL, name, NUL, value count in decimal, NUL, then each value followed by NUL (a
/// value never contains NUL: writing one is refused). Files without the attribute (anything
/// h5py wrote, our files from before 2026-12-06) are read without the check.
extension HDF5MetadataTable {
    /// The root attribute that records ``stringsDigest()``.
    public static let stringsDigestAttribute = "strings_sha256"

    /// SHA-256 (hex) of the table's strings, in the order the type's documentation gives.
    public func stringsDigest() -> String {
        var items: [(path: String, kind: UInt8, name: String, values: [String])] = []
        for (path, object) in objects {
            for (name, value) in object.attributes where !(path == "/" && name == Self.stringsDigestAttribute) {
                switch value {
                case .string(let s): items.append((path, UInt8(ascii: "a"), name, [s]))
                case .strings(let list): items.append((path, UInt8(ascii: "a"), name, list))
                case .int, .ints, .double, .doubles: continue
                }
            }
        }
        for (path, values) in strings { items.append((path, UInt8(ascii: "d"), "", values)) }
        items.sort {
            if $0.path != $1.path { return $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
            if $0.kind != $1.kind { return $0.kind < $1.kind }
            return $0.name.utf8.lexicographicallyPrecedes($1.name.utf8)
        }
        var hash = SHA256()
        for item in items {
            hash.update([item.kind])
            hash.update(Array(item.path.utf8) + [0] + Array(item.name.utf8) + [0])
            hash.update(Array(String(item.values.count).utf8) + [0])
            for value in item.values { hash.update(Array(value.utf8) + [0]) }
        }
        return hash.finish()
    }

    /// Refuses a table whose strings do not match the `strings_sha256` its file records; a file
    /// that records none passes. A string that could not be read counts as missing, so it fails.
    /// - Throws: `.stringsDigestMismatch` naming `file`.
    public func checkStringsDigest(file: String) throws(StorageError) {
        guard let recorded = objects["/"]?.attributes[Self.stringsDigestAttribute] else { return }
        guard case .string(let digest) = recorded else {
            throw .stringsDigestMismatch(file: file, reason: "its \(Self.stringsDigestAttribute) attribute is not a string")
        }
        guard digest == stringsDigest() else {
            throw .stringsDigestMismatch(
                file: file,
                reason: "damaged file: its strings (names, kinds, paths) do not match the \(Self.stringsDigestAttribute) "
                    + "it records (a damaged byte in HDF5's global heap, or an edit by a tool that did not update it; "
                    + "delete that attribute to accept an edit)")
        }
    }

    /// Records that string attribute `name` of object `path` is now `value` (nil: removed, or
    /// no longer a string) — the writer's running copy of what ``stringsDigest()`` will cover.
    mutating func recordAttribute(_ name: String, _ value: HDF5AttributeValue?, at path: String) {
        switch value {
        case .string?, .strings?: objects[path, default: Object()].attributes[name] = value
        default: objects[path]?.attributes[name] = nil
        }
    }

    /// Records that the object at `path` and everything under it were removed.
    mutating func recordRemoval(of path: String) {
        let prefix = path == "/" ? "/" : path + "/"
        objects = objects.filter { $0.key != path && !$0.key.hasPrefix(prefix) }
        strings = strings.filter { $0.key != path && !$0.key.hasPrefix(prefix) }
    }
}
