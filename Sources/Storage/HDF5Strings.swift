import CHDF5
import Foundation

/// String datasets (vocabularies, class names, captions) and the string encoding shared with
/// attributes. Strings are UTF-8; written variable-length by default (h5py's `string_dtype()`),
/// or fixed-length and NUL-padded (numpy `S<n>`). Both kinds are read.
extension HDF5File {
    /// Writes a 1-D string dataset at `path`, creating parents and replacing what was there.
    /// - Parameter fixedLength: store as fixed-length strings of the longest UTF-8 length
    ///   (NUL-padded) instead of variable-length ones.
    /// - Throws: `.outOfRange` for a string containing NUL; `.hdf5`.
    public func write(strings: [String], to path: String, fixedLength: Bool = false)
        throws(StorageError)
    {
        try HDF5Library.locked { () throws(StorageError) in
            let p = Self.normalize(path)
            try requireWritable(p)
            try removeIfPresent(p)
            try withStringBuffer(strings, fixedLength: fixedLength, path: p) {
                (type, buffer) throws(StorageError) in
                let space = try dataspace([strings.count], path: p)
                defer { H5Sclose(space) }
                let lcpl = try intermediateGroupsList(p)
                defer { H5Pclose(lcpl) }
                let dataset = H5Dcreate2(
                    try openID(p), p, type, space, lcpl, chdf5_p_default(), chdf5_p_default())
                guard dataset >= 0 else { throw failure("create dataset", p) }
                defer { H5Dclose(dataset) }
                if strings.isEmpty { return }
                guard
                    H5Dwrite(dataset, type, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), buffer)
                        >= 0
                else {
                    throw failure("write dataset", p)
                }
            }
            writtenStrings.strings[p] = strings
        }
    }

    /// Reads a string dataset of any rank, flattened in row-major order.
    /// - Throws: `.missingDataset`; `.wrongType` for a numeric dataset; `.hdf5`.
    public func readStrings(_ path: String) throws(StorageError) -> [String] {
        try HDF5Library.locked { () throws(StorageError) -> [String] in
            let p = Self.normalize(path)
            if let values = preloaded?.strings[p] { return values }
            let dataset = try openDataset(p)
            defer { H5Dclose(dataset) }
            let type = H5Dget_type(dataset)
            guard type >= 0 else { throw failure("read the type of", p) }
            defer { H5Tclose(type) }
            let space = H5Dget_space(dataset)
            guard space >= 0 else { throw failure("read the shape of", p) }
            defer { H5Sclose(space) }
            let count = Int(H5Sget_simple_extent_npoints(space))
            guard count >= 0 else { throw failure("read the shape of", p) }
            // A string dataset the child could not read is not read here either.
            if preloaded != nil, H5Tget_class(type) == H5T_STRING { throw unreadable("read strings from", p) }
            return try readStringBuffer(storedType: type, count: count, path: p) {
                memoryType, buffer in
                H5Dread(
                    dataset, memoryType, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), buffer)
            }
        }
    }

    // MARK: Encoding shared with attributes (callers hold the lock)

    /// Makes a UTF-8 string type and the matching buffer for `strings`, and hands both to `body`
    /// (which creates the dataset or attribute with that type and writes the buffer).
    func withStringBuffer(
        _ strings: [String], fixedLength: Bool, path: String,
        _ body: (hid_t, UnsafeRawPointer?) throws(StorageError) -> Void
    ) throws(StorageError) {
        if let bad = strings.first(where: { $0.utf8.contains(0) }) {
            throw StorageError.outOfRange(
                file: name, path: path, reason: "string \(bad.debugDescription) contains NUL")
        }
        let type = H5Tcopy(chdf5_c_s1())
        guard type >= 0 else { throw failure("make a string type for", path) }
        defer { H5Tclose(type) }
        let width = max(1, strings.map(\.utf8.count).max() ?? 1)
        let sized = fixedLength ? H5Tset_size(type, width) : H5Tset_size(type, chdf5_t_variable())
        guard sized >= 0, H5Tset_cset(type, H5T_CSET_UTF8) >= 0,
            H5Tset_strpad(type, fixedLength ? H5T_STR_NULLPAD : H5T_STR_NULLTERM) >= 0
        else { throw failure("make a string type for", path) }

        if fixedLength {
            var bytes = [UInt8](repeating: 0, count: width * max(strings.count, 1))
            for (i, s) in strings.enumerated() {
                for (j, b) in s.utf8.enumerated() { bytes[i * width + j] = b }
            }
            try bytes.withUnsafeBytes { raw in
                Result { () throws(StorageError) in try body(type, raw.baseAddress) }
            }
            .get()
        } else {
            let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
            defer { for pointer in pointers { free(pointer) } }
            try pointers.withUnsafeBytes { raw in
                Result { () throws(StorageError) in try body(type, raw.baseAddress) }
            }
            .get()
        }
    }

    /// Reads `count` strings stored with `storedType` through `read(memoryType, buffer)`.
    func readStringBuffer(
        storedType: hid_t, count: Int, path: String,
        _ read: (hid_t, UnsafeMutableRawPointer?) -> herr_t
    ) throws(StorageError) -> [String] {
        guard H5Tget_class(storedType) == H5T_STRING else {
            throw StorageError.wrongType(
                file: name, name: path, expected: "strings", found: "numeric data")
        }
        if count == 0 { return [] }
        let memoryType = H5Tcopy(storedType)
        guard memoryType >= 0 else { throw failure("make a string type for", path) }
        defer { H5Tclose(memoryType) }

        if H5Tis_variable_str(storedType) > 0 {
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            let status = pointers.withUnsafeMutableBytes { read(memoryType, $0.baseAddress) }
            guard status >= 0 else { throw failure("read strings from", path) }
            defer { for pointer in pointers where pointer != nil { H5free_memory(pointer) } }
            var strings: [String] = []
            for pointer in pointers {
                guard let pointer else { strings.append(""); continue }
                strings.append(try utf8(UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)), path))
            }
            return strings
        }

        let width = H5Tget_size(storedType)
        guard width > 0 else { throw failure("read the string size of", path) }
        let padding = H5Tget_strpad(storedType)
        var bytes = [UInt8](repeating: 0, count: width * count)
        let status = bytes.withUnsafeMutableBytes { read(memoryType, $0.baseAddress) }
        guard status >= 0 else { throw failure("read strings from", path) }
        var strings: [String] = []
        for i in 0..<count {
            var field = bytes[(i * width)..<((i + 1) * width)].prefix { $0 != 0 }
            if padding == H5T_STR_SPACEPAD {
                while field.last == 0x20 { field = field.dropLast() }
            }
            strings.append(try utf8(field, path))
        }
        return strings
    }

    /// `bytes` as a string, refused unless they are UTF-8, the encoding every writer of our files
    /// uses (h5py's too). Variable-length strings live in the global heap, which no HDF5 format
    /// checksums: a damaged byte there would otherwise read as "\u{FFFD}" inside a task name.
    private func utf8<Bytes: Collection<UInt8>>(_ bytes: Bytes, _ path: String) throws(StorageError) -> String {
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw StorageError.hdf5(
                file: name, operation: "read strings from", path: path, detail: "damaged string (not UTF-8)")
        }
        return string
    }
}
