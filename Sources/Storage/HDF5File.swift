import CHDF5
import Foundation

/// An open HDF5 file: groups, datasets and attributes addressed by absolute paths (`"/tasks/mlm/loss"`).
///
/// - ``create(_:)`` writes to a temporary name beside the final one (``AtomicFile``); the file
///   appears under its name only when ``close()`` succeeds. Dropping it unclosed, or ``discard()``,
///   leaves nothing behind.
/// - ``open(_:writable:)`` opens an existing file read-only, or read-write in place (to append
///   rows or add datasets; such edits are not atomic).
///
/// Paths may omit the leading `/`; empty components are ignored. Every method takes a process-wide
/// lock (libhdf5 is not thread-safe), so one file may be used from several tasks, one call at a time.
/// Every failure is a ``StorageError`` naming the file and the HDF5 path.
///
/// ### References
/// HDF5 C API reference, https://docs.hdfgroup.org/hdf5/v1_10/ (H5F, H5G, H5D, H5S, H5A, H5L).
public final class HDF5File: @unchecked Sendable {
    // @unchecked: the mutable state (`fileID`, `pending`) is only touched under HDF5Library's lock.

    /// The file's final location.
    public let url: URL
    /// False when opened read-only.
    public let isWritable: Bool

    var fileID: hid_t
    private var pending: AtomicFile.Pending?
    /// A read-only file's metadata as another process read it (``HDF5MetadataTable``), if registered.
    let preloaded: HDF5MetadataTable?
    /// The strings written so far (a new file's running record for its `strings_sha256`,
    /// ``HDF5MetadataTable/stringsDigest()``); only strings, nothing numeric.
    var writtenStrings = HDF5MetadataTable()

    /// The path used in error messages.
    var name: String { url.path }

    private init(url: URL, fileID: hid_t, writable: Bool, pending: AtomicFile.Pending?) {
        self.url = url
        self.fileID = fileID
        self.isWritable = writable
        self.pending = pending
        self.preloaded = writable ? nil : HDF5MetadataTable.registered(for: url)
    }

    deinit {
        HDF5Library.lockedQuery {
            if fileID >= 0 { H5Fclose(fileID) }
            pending?.discard()  // never committed: an unclosed new file is incomplete
        }
    }

    /// Starts a new file that will replace `url` when ``close()`` succeeds.
    /// - Throws: `.cannotOpen` if the folder is missing or HDF5 cannot create the temporary file.
    public static func create(_ url: URL) throws(StorageError) -> HDF5File {
        try HDF5Library.locked { () throws(StorageError) -> HDF5File in
            let pending = try AtomicFile.begin(url)
            let fapl = try fileAccessList(url)
            defer { H5Pclose(fapl) }
            let id = H5Fcreate(
                pending.temporaryURL.path, chdf5_f_acc_excl(), chdf5_p_default(), fapl)
            guard id >= 0 else {
                let detail = HDF5Library.lastError()
                pending.discard()
                throw StorageError.cannotOpen(
                    file: url.path, reason: "HDF5 cannot create it (\(detail))")
            }
            return HDF5File(url: url, fileID: id, writable: true, pending: pending)
        }
    }

    /// Opens an existing file.
    /// - Parameter writable: open read-write, in place.
    /// - Throws: `.cannotOpen` if the file is missing, not HDF5, or damaged (e.g. truncated).
    public static func open(_ url: URL, writable: Bool = false) throws(StorageError) -> HDF5File {
        try HDF5Library.locked { () throws(StorageError) -> HDF5File in
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw StorageError.cannotOpen(file: url.path, reason: "no such file")
            }
            let isHDF5 = H5Fis_hdf5(url.path)
            guard isHDF5 > 0 else {
                let reason =
                    isHDF5 == 0
                    ? "not an HDF5 file" : "unreadable (\(HDF5Library.lastError()))"
                throw StorageError.cannotOpen(file: url.path, reason: reason)
            }
            let fapl = try fileAccessList(url)
            defer { H5Pclose(fapl) }
            let flags = writable ? chdf5_f_acc_rdwr() : chdf5_f_acc_rdonly()
            let id = H5Fopen(url.path, flags, fapl)
            guard id >= 0 else {
                throw StorageError.cannotOpen(
                    file: url.path, reason: "damaged HDF5 file (\(HDF5Library.lastError()))")
            }
            return HDF5File(url: url, fileID: id, writable: writable, pending: nil)
        }
    }

    /// Creates a file, runs `body` on it and closes it; if `body` throws, nothing appears at `url`.
    /// - Throws: whatever `body` throws, or the errors of ``create(_:)`` and ``close()``.
    public static func write(
        to url: URL, _ body: (HDF5File) throws(StorageError) -> Void
    ) throws(StorageError) {
        let file = try create(url)
        do throws(StorageError) {
            try body(file)
        } catch {
            file.discard()
            throw error
        }
        try file.close()
    }

    /// Bytes of data handed to HDF5 since writeback was last started (files made by ``create(_:)``).
    private var unsyncedBytes = 0
    /// How many times ``wrote(bytes:)`` has asked Linux to start writing the file out (tests read it).
    private(set) var writebacksStarted = 0
    /// How many row writes went to the file as whole chunks with our own checksum rather than
    /// through `H5Dwrite` (``writeRows(_:type:first:count:memory:file:_:)``; tests read it).
    var directWrites = 0
    /// Data between two writeback requests.
    static let writebackBytes = 4 << 20

    /// After `bytes` of data were written into a file made by ``create(_:)``: once
    /// ``writebackBytes`` have accumulated, asks Linux to start writing the file to disk without
    /// waiting (`sync_file_range`), so that the `fsync` before ``close()``'s rename waits only for
    /// the last few megabytes. The demo MoE probe's 75 MB of Grams had left 0.04–0.06 s of waiting
    /// at close (`reports/benchmarks.md`, "Stop 29"). Callers hold the lock.
    func wrote(bytes: Int) {
        guard pending != nil, fileID >= 0 else { return }
        unsyncedBytes += bytes
        guard unsyncedBytes >= Self.writebackBytes else { return }
        unsyncedBytes = 0
        if chdf5_start_writeback(fileID) == 0 { writebacksStarted += 1 }
    }

    /// Closes the file; for a file made by ``create(_:)``, renames it into place.
    /// Calling it again does nothing.
    /// - Throws: `.hdf5` if HDF5 cannot flush or close; `.io` if the rename fails. Either way the
    ///   temporary file is removed and the final name is untouched.
    public func close() throws(StorageError) {
        try HDF5Library.locked { () throws(StorageError) in
            guard fileID >= 0 else { return }
            do throws(StorageError) {
                try recordStringsDigest()
            } catch {
                discard()
                throw error
            }
            let status = H5Fclose(fileID)
            fileID = -1
            let pending = self.pending
            self.pending = nil
            guard status >= 0 else {
                let error = StorageError.hdf5(
                    file: name, operation: "close", path: "/", detail: HDF5Library.lastError())
                pending?.discard()
                throw error
            }
            try pending?.commit()
        }
    }

    /// Writes `strings_sha256` (``HDF5MetadataTable/stringsDigest()``) on the root: for a new file
    /// from the record of what was written; for a file edited in place that records one, from a
    /// walk of the whole file, so that our own edits keep it valid. Callers hold the lock.
    private func recordStringsDigest() throws(StorageError) {
        guard isWritable else { return }
        let digest: String
        if pending != nil {
            digest = writtenStrings.stringsDigest()
        } else {
            guard hasAttribute(HDF5MetadataTable.stringsDigestAttribute) else { return }
            digest = metadataTable().stringsDigest()
        }
        try setAttribute(HDF5MetadataTable.stringsDigestAttribute, .string(digest), fixedLength: true)
    }

    /// Abandons a file made by ``create(_:)`` (nothing appears at ``url``); closes any other file.
    public func discard() {
        HDF5Library.lockedQuery {
            if fileID >= 0 { H5Fclose(fileID) }
            fileID = -1
            pending?.discard()
            pending = nil
        }
    }

    /// STRONG close degree: H5Fclose also closes any object a failed call left open, so the
    /// file is complete on disk before it is renamed.
    /// Files in the HDF5 1.10 format, whose object headers and chunk indexes carry checksums: a
    /// damaged header or chunk index of a file we wrote is refused by libhdf5 itself ("incorrect
    /// metadata checksum") instead of being read as something else. (With the 1.8 format the
    /// chunk index is a B-tree without a checksum, and one damaged byte in it made a dataset read
    /// as all zeros, silently.) Readable by HDF5 ≥ 1.10 (every h5py wheel since 2018). Reading
    /// files of older formats is unchanged.
    private static func fileAccessList(_ url: URL) throws(StorageError) -> hid_t {
        let fapl = H5Pcreate(chdf5_p_file_access())
        guard fapl >= 0, H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0,
            H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) >= 0
        else {
            throw StorageError.hdf5(
                file: url.path, operation: "set up file access for", path: "/",
                detail: HDF5Library.lastError())
        }
        return fapl
    }

    // MARK: Shared helpers (callers hold the lock)

    /// `"a//b/"` → `"/a/b"`; `""` → `"/"`.
    static func normalize(_ path: String) -> String {
        "/" + path.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
    }

    /// The file id, or an error if the file was closed.
    func openID(_ path: String) throws(StorageError) -> hid_t {
        guard fileID >= 0 else {
            throw StorageError.hdf5(file: name, operation: "use a closed file at", path: path)
        }
        return fileID
    }

    func requireWritable(_ path: String) throws(StorageError) {
        guard isWritable else {
            throw StorageError.hdf5(
                file: name, operation: "write (file is open read-only) at", path: path)
        }
    }

    /// An `.hdf5` error carrying HDF5's own message.
    func failure(_ operation: String, _ path: String) -> StorageError {
        .hdf5(file: name, operation: operation, path: path, detail: HDF5Library.lastError())
    }

    /// True if every component of `path` exists (a missing intermediate is "no", not an error).
    func linkExists(_ path: String) throws(StorageError) -> Bool {
        let id = try openID(path)
        var prefix = ""
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if H5Lexists(id, prefix, chdf5_p_default()) <= 0 { return false }
        }
        return true
    }

    /// Opens the object (group or dataset) at `path`; the caller closes it with `H5Oclose`.
    func openObject(_ path: String) throws(StorageError) -> hid_t {
        let p = Self.normalize(path)
        guard try linkExists(p) else { throw StorageError.missingDataset(file: name, path: p) }
        let object = H5Oopen(try openID(p), p, chdf5_p_default())
        guard object >= 0 else { throw failure("open", p) }
        return object
    }

    /// Opens the dataset at `path`; the caller closes it with `H5Dclose`.
    func openDataset(_ path: String) throws(StorageError) -> hid_t {
        let p = Self.normalize(path)
        guard try linkExists(p) else { throw StorageError.missingDataset(file: name, path: p) }
        let object = H5Oopen(try openID(p), p, chdf5_p_default())
        guard object >= 0 else { throw failure("open", p) }
        guard H5Iget_type(object) == H5I_DATASET else {
            H5Oclose(object)
            throw StorageError.wrongType(
                file: name, name: p, expected: "a dataset", found: "a group")
        }
        return object
    }

    /// A link-creation property list that creates missing intermediate groups; close with `H5Pclose`.
    func intermediateGroupsList(_ path: String) throws(StorageError) -> hid_t {
        let lcpl = H5Pcreate(chdf5_p_link_create())
        guard lcpl >= 0, H5Pset_create_intermediate_group(lcpl, 1) >= 0 else {
            throw failure("set up link creation for", path)
        }
        return lcpl
    }

    /// Removes the link at `path` if there is one, so a write replaces what was there.
    func removeIfPresent(_ path: String) throws(StorageError) {
        if try linkExists(path) {
            guard H5Ldelete(try openID(path), path, chdf5_p_default()) >= 0 else {
                throw failure("replace", path)
            }
            writtenStrings.recordRemoval(of: path)
        }
    }

    /// A dataspace for `shape` (`[]` → scalar); close with `H5Sclose`.
    func dataspace(_ shape: [Int], maxShape: [UInt64]? = nil, path: String) throws(StorageError)
        -> hid_t
    {
        let space: hid_t
        if shape.isEmpty {
            space = H5Screate(H5S_SCALAR)
        } else {
            let dims = shape.map { hsize_t($0) }
            if let maxShape {
                space = H5Screate_simple(Int32(dims.count), dims, maxShape)
            } else {
                space = H5Screate_simple(Int32(dims.count), dims, nil)
            }
        }
        guard space >= 0 else { throw failure("make a dataspace \(shape) for", path) }
        return space
    }

    /// The dimensions of a dataspace (`[]` for scalar).
    func dimensions(ofSpace space: hid_t, path: String) throws(StorageError) -> [Int] {
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0 else { throw failure("read the shape of", path) }
        if rank == 0 { return [] }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        guard H5Sget_simple_extent_dims(space, &dims, nil) >= 0 else {
            throw failure("read the shape of", path)
        }
        var shape: [Int] = []
        for d in dims {
            guard let size = Int(exactly: d) else {
                throw StorageError.outOfRange(file: name, path: path, reason: "a dimension of \(d) (damaged file?)")
            }
            shape.append(size)
        }
        return shape
    }
}
