import Foundation
import CHDF5
import Kernels

/// Numeric datasets: whole reads and writes, and chunked datasets written and read by rows.
///
/// A "row" is one index of the first dimension (for shape `[R, P]`, a row is `P` values); row
/// reads and writes are hyperslab selections, so a gradient spill of `[T·N, P]` can be filled and
/// read back block by block without holding it in memory.
extension HDF5File {
    /// Writes `values` (row-major, `shape.product` of them) as a dataset at `path`, creating
    /// missing parent groups and replacing any dataset already there. `shape == []` writes a scalar.
    /// - Throws: `.outOfRange` if the count does not match the shape; `.hdf5` if HDF5 fails.
    public func write<T: HDF5Element>(_ values: [T], shape: [Int], to path: String)
        throws(StorageError)
    {
        try HDF5Library.locked { () throws(StorageError) in
            let p = Self.normalize(path)
            try requireWritable(p)
            guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
                throw StorageError.outOfRange(
                    file: name, path: p,
                    reason: "shape \(shape) does not hold \(values.count) values")
            }
            try removeIfPresent(p)
            var written = 0
            // Counted once the dataset is closed, when HDF5 has handed its last chunk to the OS.
            defer { wrote(bytes: written) }
            let dataset = try createDataset(
                p, type: T.hdf5Type, shape: shape, maxShape: nil,
                chunk: Self.checksummedChunk(shape, elementSize: MemoryLayout<T>.stride))
            defer { H5Dclose(dataset) }
            if values.isEmpty { return }
            let status = values.withUnsafeBytes {
                writeRows(
                    dataset, type: T.hdf5Type.nativeType, first: 0, count: shape.first ?? 1,
                    memory: chdf5_s_all(), file: chdf5_s_all(), $0)
            }
            guard status >= 0 else { throw failure("write dataset", p) }
            written = values.count * MemoryLayout<T>.stride
        }
    }

    /// Writes a float32 tensor as a dataset at `path` (see ``write(_:shape:to:)``).
    public func write(_ tensor: Tensor, to path: String) throws(StorageError) {
        try write(tensor.data, shape: tensor.shape, to: path)
    }

    /// Reads a whole numeric dataset, converting to `T` within its class (float ↔ float, int ↔ int).
    /// - Throws: `.missingDataset`; `.wrongType` for a string dataset or across classes; `.hdf5`.
    public func read<T: HDF5Element>(_ path: String, as type: T.Type = T.self) throws(StorageError)
        -> HDF5Array<T>
    {
        try HDF5Library.locked { () throws(StorageError) -> HDF5Array<T> in
            let p = Self.normalize(path)
            let dataset = try openDataset(p)
            defer { H5Dclose(dataset) }
            let shape = try shape(ofNumeric: dataset, path: p, wanted: T.hdf5Type)
            var values = [T](repeating: T.hdf5Zero, count: try affordableCount(shape, of: T.self, path: p))
            if values.isEmpty { return HDF5Array(shape: shape, values: values) }
            let status = values.withUnsafeMutableBytes {
                H5Dread(
                    dataset, T.hdf5Type.nativeType, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(),
                    $0.baseAddress)
            }
            guard status >= 0 else { throw failure("read dataset", p) }
            return HDF5Array(shape: shape, values: values)
        }
    }

    /// Reads a floating-point dataset as a `Tensor` (float64 is rounded to Float).
    public func readTensor(_ path: String) throws(StorageError) -> Tensor {
        let array = try read(path, as: Float.self)
        return Tensor(shape: array.shape, data: array.values)
    }

    /// Bytes the dataset at `path` occupies in the file (`H5Dget_storage_size`): chunks never
    /// written take none.
    /// - Throws: `.missingDataset`, `.wrongType` for a group.
    public func storedBytes(of path: String) throws(StorageError) -> Int {
        try HDF5Library.locked { () throws(StorageError) -> Int in
            let p = Self.normalize(path)
            let dataset = try openDataset(p)
            defer { H5Dclose(dataset) }
            return Int(H5Dget_storage_size(dataset))
        }
    }

    /// The shape of the dataset at `path` (`[]` for a scalar).
    /// - Throws: `.missingDataset`, `.wrongType` for a group.
    public func shape(of path: String) throws(StorageError) -> [Int] {
        try HDF5Library.locked { () throws(StorageError) -> [Int] in
            let p = Self.normalize(path)
            let dataset = try openDataset(p)
            defer { H5Dclose(dataset) }
            let space = H5Dget_space(dataset)
            guard space >= 0 else { throw failure("read the shape of", p) }
            defer { H5Sclose(space) }
            return try dimensions(ofSpace: space, path: p)
        }
    }

    /// Creates an empty chunked dataset of rank ≥ 1 to be filled by ``writeRows(_:at:to:)`` or
    /// ``appendRows(_:to:)``; unwritten elements read as 0. Replaces any dataset at `path`.
    ///
    /// - Parameters:
    ///   - shape: initial shape; `shape[0]` rows (may be 0 when `extendible`).
    ///   - chunkRows: rows per chunk (the chunk spans the other dimensions whole). One row per
    ///     chunk suits row-at-a-time access (the probe's gradient rows).
    ///   - extendible: allow ``appendRows(_:to:)`` to grow the first dimension without limit.
    /// - Throws: `.outOfRange` for a bad shape or chunk size; `.hdf5`.
    public func createDataset<T: HDF5Element>(
        _ path: String, of type: T.Type, shape: [Int], chunkRows: Int = 1, extendible: Bool = false
    ) throws(StorageError) {
        try HDF5Library.locked { () throws(StorageError) in
            let p = Self.normalize(path)
            try requireWritable(p)
            guard !shape.isEmpty, shape.allSatisfy({ $0 >= 0 }), chunkRows >= 1,
                shape.dropFirst().allSatisfy({ $0 >= 1 })
            else {
                throw StorageError.outOfRange(
                    file: name, path: p,
                    reason:
                        "cannot chunk shape \(shape) by \(chunkRows) rows (rank ≥ 1, inner dimensions ≥ 1)"
                )
            }
            try removeIfPresent(p)
            var maxShape = shape.map { hsize_t($0) }
            if extendible { maxShape[0] = chdf5_s_unlimited() }
            let chunk =
                [extendible ? chunkRows : min(chunkRows, max(shape[0], 1))] + shape.dropFirst()
            let dataset = try createDataset(
                p, type: T.hdf5Type, shape: shape, maxShape: maxShape, chunk: chunk)
            H5Dclose(dataset)
        }
    }

    /// Writes whole rows starting at `firstRow`; `values.count` must be a multiple of the row length.
    /// - Throws: `.outOfRange` if the rows do not fit the dataset's current shape; `.missingDataset`; `.hdf5`.
    public func writeRows<T: HDF5Element>(_ values: [T], at firstRow: Int, to path: String)
        throws(StorageError)
    {
        try HDF5Library.locked { () throws(StorageError) in
            let p = Self.normalize(path)
            try requireWritable(p)
            var written = 0
            defer { wrote(bytes: written) }
            let dataset = try openDataset(p)
            defer { H5Dclose(dataset) }
            try checkClass(of: dataset, path: p, wanted: T.hdf5Type)
            try transferRows(dataset, path: p, firstRow: firstRow, count: values.count, write: true)
            { memory, file, rows in
                values.withUnsafeBytes {
                    writeRows(
                        dataset, type: T.hdf5Type.nativeType, first: firstRow, count: rows, memory: memory,
                        file: file, $0)
                }
            }
            written = values.count * MemoryLayout<T>.stride
        }
    }

    /// Appends whole rows to an extendible dataset (see ``createDataset(_:of:shape:chunkRows:extendible:)``)
    /// and returns the index of the first appended row.
    /// - Throws: `.outOfRange` if `values.count` is not a multiple of the row length; `.hdf5` if
    ///   the dataset is not extendible.
    @discardableResult
    public func appendRows<T: HDF5Element>(_ values: [T], to path: String) throws(StorageError)
        -> Int
    {
        try HDF5Library.locked { () throws(StorageError) -> Int in
            let p = Self.normalize(path)
            try requireWritable(p)
            var written = 0
            defer { wrote(bytes: written) }
            let dataset = try openDataset(p)
            defer { H5Dclose(dataset) }
            try checkClass(of: dataset, path: p, wanted: T.hdf5Type)
            let space = H5Dget_space(dataset)
            guard space >= 0 else { throw failure("read the shape of", p) }
            let shape = try dimensions(ofSpace: space, path: p)
            H5Sclose(space)
            let rowLength = shape.dropFirst().reduce(1, *)
            guard !shape.isEmpty, rowLength > 0, values.count % rowLength == 0 else {
                throw StorageError.outOfRange(
                    file: name, path: p,
                    reason: "\(values.count) values are not whole rows of shape \(shape)")
            }
            let firstRow = shape[0]
            let newDims =
                [hsize_t(firstRow + values.count / rowLength)]
                + shape.dropFirst().map { hsize_t($0) }
            guard H5Dset_extent(dataset, newDims) >= 0 else {
                throw failure("extend (is it extendible?)", p)
            }
            try transferRows(dataset, path: p, firstRow: firstRow, count: values.count, write: true)
            { memory, file, _ in
                values.withUnsafeBytes {
                    H5Dwrite(
                        dataset, T.hdf5Type.nativeType, memory, file, chdf5_p_default(),
                        $0.baseAddress)
                }
            }
            written = values.count * MemoryLayout<T>.stride
            return firstRow
        }
    }

    /// Reads the rows `rows` (a range of the first dimension) of a dataset of rank ≥ 1.
    /// The result has shape `[rows.count] + shape.dropFirst()`.
    /// - Throws: `.outOfRange` if the range is outside the dataset; `.missingDataset`; `.wrongType`; `.hdf5`.
    public func readRows<T: HDF5Element>(
        _ rows: Range<Int>, from path: String, as type: T.Type = T.self
    ) throws(StorageError) -> HDF5Array<T> {
        try HDF5Library.locked { () throws(StorageError) -> HDF5Array<T> in
            let p = Self.normalize(path)
            let dataset = try openDataset(p)
            defer { H5Dclose(dataset) }
            let shape = try shape(ofNumeric: dataset, path: p, wanted: T.hdf5Type)
            guard !shape.isEmpty else {
                throw StorageError.outOfRange(
                    file: name, path: p, reason: "a scalar dataset has no rows")
            }
            let rowLength = try affordableCount(Array(shape.dropFirst()), of: T.self, path: p)
            var values = [T](
                repeating: T.hdf5Zero, count: try affordableCount([rows.count, rowLength], of: T.self, path: p))
            try transferRows(
                dataset, path: p, firstRow: rows.lowerBound, count: values.count, write: false
            ) {
                memory, file, _ in
                values.withUnsafeMutableBytes {
                    H5Dread(
                        dataset, T.hdf5Type.nativeType, memory, file, chdf5_p_default(),
                        $0.baseAddress)
                }
            }
            return HDF5Array(shape: [rows.count] + shape.dropFirst(), values: values)
        }
    }

    // MARK: Internals (callers hold the lock)

    /// The shape of an open numeric dataset, after checking its class against `wanted`.
    private func shape(ofNumeric dataset: hid_t, path: String, wanted: HDF5ElementType) throws(StorageError) -> [Int] {
        try checkClass(of: dataset, path: path, wanted: wanted)
        let space = H5Dget_space(dataset)
        guard space >= 0 else { throw failure("read the shape of", path) }
        defer { H5Sclose(space) }
        return try dimensions(ofSpace: space, path: path)
    }

    /// The element count of `shape` when reading it fits this machine's memory. A small file can
    /// declare any shape (a chunked dataset stores only what was written), so the product is
    /// overflow-checked and compared with physical memory before anything is allocated.
    /// - Throws: `.outOfRange` naming the shape and the bytes it would take.
    private func affordableCount<T>(_ shape: [Int], of _: T.Type, path: String) throws(StorageError) -> Int {
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: max(d, 0))
            guard !overflow else {
                throw StorageError.outOfRange(file: name, path: path, reason: "shape \(shape) is too large to read")
            }
            count = product
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        let memory = ProcessInfo.processInfo.physicalMemory
        guard !overflow, UInt64(bytes) <= memory else {
            throw StorageError.outOfRange(
                file: name, path: path,
                reason: "shape \(shape) would take \(overflow ? "over 2^63" : "\(bytes)") bytes, more than this machine's memory (\(memory) bytes)")
        }
        return count
    }

    /// Chunks of whole rows, about 1 MiB each, for a dataset written whole: chunked storage is
    /// what carries HDF5's Fletcher-32 checksum, so a damaged value is refused on read ("data
    /// error detected by Fletcher32 checksum") instead of being computed with. nil (contiguous, no
    /// checksum) for a scalar or an empty dataset, which cannot be chunked.
    static func checksummedChunk(_ shape: [Int], elementSize: Int) -> [Int]? {
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 1 }) else { return nil }
        let rowBytes = shape.dropFirst().reduce(elementSize, *)
        let rows = min(shape[0], max(1, (1 << 20) / max(rowBytes, 1)))
        return [rows] + shape.dropFirst()
    }

    /// Creates a dataset; a chunked one also gets the Fletcher-32 checksum filter (see
    /// ``checksummedChunk(_:elementSize:)``).
    func createDataset(
        _ p: String, type: HDF5ElementType, shape: [Int], maxShape: [hsize_t]?, chunk: [Int]?
    ) throws(StorageError) -> hid_t {
        let space = try dataspace(shape, maxShape: maxShape, path: p)
        defer { H5Sclose(space) }
        let lcpl = try intermediateGroupsList(p)
        defer { H5Pclose(lcpl) }
        let dcpl = H5Pcreate(chdf5_p_dataset_create())
        guard dcpl >= 0 else { throw failure("set up dataset creation for", p) }
        defer { H5Pclose(dcpl) }
        if let chunk {
            let dims = chunk.map { hsize_t($0) }
            guard H5Pset_chunk(dcpl, Int32(dims.count), dims) >= 0, H5Pset_fletcher32(dcpl) >= 0 else {
                throw failure("set chunking \(chunk) on", p)
            }
        }
        let dataset = H5Dcreate2(
            try openID(p), p, type.nativeType, space, lcpl, dcpl, chdf5_p_default())
        guard dataset >= 0 else { throw failure("create dataset", p) }
        return dataset
    }

    /// `.wrongType` unless the dataset's stored class (float/integer) matches `wanted`'s.
    func checkClass(of dataset: hid_t, path: String, wanted: HDF5ElementType) throws(StorageError) {
        let fileType = H5Dget_type(dataset)
        guard fileType >= 0 else { throw failure("read the type of", path) }
        defer { H5Tclose(fileType) }
        let typeClass = H5Tget_class(fileType)
        let stored: String
        switch typeClass {
        case H5T_FLOAT: stored = "floating-point"
        case H5T_INTEGER: stored = "integer"
        case H5T_STRING: stored = "string"
        default: stored = "another HDF5 type class"
        }
        let expected = wanted.isFloatingPoint ? "floating-point" : "integer"
        guard stored == expected else {
            throw StorageError.wrongType(
                file: name, name: path, expected: "\(expected) data (\(wanted.rawValue))",
                found: "\(stored) data")
        }
        try checkNumericLayout(fileType, path: path)
        try checkStorageLayout(of: dataset, elementSize: H5Tget_size(fileType), path: path)
    }

    /// `.hdf5` unless the dataset's storage agrees with its shape: chunks no larger than a
    /// fixed-size dimension (HDF5 refuses to create such a dataset), contiguous storage of exactly
    /// the shape's bytes (or none yet). libhdf5 1.10 reads a chunk whose header claims larger
    /// dimensions past its buffer (a crash, found by flipping bytes of our dataset file).
    func checkStorageLayout(of dataset: hid_t, elementSize: Int, path: String) throws(StorageError) {
        let space = H5Dget_space(dataset)
        guard space >= 0 else { throw failure("read the shape of", path) }
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank > 0 else { return }
        var dims = [hsize_t](repeating: 0, count: rank)
        var maxDims = [hsize_t](repeating: 0, count: rank)
        guard H5Sget_simple_extent_dims(space, &dims, &maxDims) >= 0 else { throw failure("read the shape of", path) }
        let plist = H5Dget_create_plist(dataset)
        guard plist >= 0 else { throw failure("read the storage layout of", path) }
        defer { H5Pclose(plist) }
        var sane = true
        switch H5Pget_layout(plist) {
        case H5D_CHUNKED:
            var chunk = [hsize_t](repeating: 0, count: rank)
            sane = H5Pget_chunk(plist, Int32(rank), &chunk) == Int32(rank)
                && zip(chunk, maxDims).allSatisfy { c, m in c >= 1 && (m == chdf5_s_unlimited() || c <= m) }
        case H5D_CONTIGUOUS:
            let stored = H5Dget_storage_size(dataset)
            var expected: hsize_t = UInt64(max(elementSize, 0))
            for d in dims {
                let (product, overflow) = expected.multipliedReportingOverflow(by: d)
                expected = overflow ? .max : product
            }
            sane = stored == 0 || stored == expected
        default:
            break
        }
        try refuseDamaged(unless: sane, path, "storage that does not match its shape \(dims) (damaged file)")
    }

    /// `.hdf5` unless a stored integer or float type has a size and bit layout that a real file
    /// could hold: libhdf5 1.10 converts, say, a 64-bit integer whose header claims 137 bytes
    /// without question and overruns its buffers (a crash, found by flipping bytes of our dataset
    /// file; 1.14 refuses such a type itself).
    func checkNumericLayout(_ type: hid_t, path: String) throws(StorageError) {
        let size = H5Tget_size(type)
        let bits = 8 * size
        let precision = H5Tget_precision(type)
        let offset = H5Tget_offset(type)
        var sane = precision > 0 && offset >= 0 && size_t(offset) + precision <= bits
        switch H5Tget_class(type) {
        case H5T_INTEGER:
            sane = sane && [1, 2, 4, 8].contains(size)
        case H5T_FLOAT:
            var (sign, exponentPosition, exponentSize, mantissaPosition, mantissaSize) = (0, 0, 0, 0, 0) as (size_t, size_t, size_t, size_t, size_t)
            sane = sane && [2, 4, 8].contains(size)
                && H5Tget_fields(type, &sign, &exponentPosition, &exponentSize, &mantissaPosition, &mantissaSize) >= 0
                && sign < bits && exponentPosition + exponentSize <= bits && mantissaPosition + mantissaSize <= bits
                && exponentSize > 0 && mantissaSize > 0
        default:
            return
        }
        try refuseDamaged(unless: sane, path, "damaged numeric type (\(size) bytes, \(precision) bits at offset \(offset))")
        // Sane fields are not enough: a damaged exponent bias or normalisation reads as zeros.
        try refuseDamaged(
            unless: chdf5_is_standard_number(type) == 1, path,
            "damaged numeric type (not a standard IEEE float or integer: its values would read wrong)")
    }

    /// The read of `path` refused, saying what is damaged, unless `sane`.
    private func refuseDamaged(unless sane: Bool, _ path: String, _ detail: @autoclosure () -> String)
        throws(StorageError)
    {
        guard !sane else { return }
        throw StorageError.hdf5(file: name, operation: "read", path: path, detail: detail())
    }

    /// Writes rows `first..<first + count` from `bytes`: as whole chunks straight to the file with
    /// our own checksum where they cover whole chunks of one of our datasets (direct_chunks.c;
    /// libhdf5's filter copies every chunk and sums it a word at a time), else through `H5Dwrite`
    /// with the `memory` and `file` selections. Negative on failure.
    private func writeRows(
        _ dataset: hid_t, type: hid_t, first: Int, count: Int, memory: hid_t, file: hid_t,
        _ bytes: UnsafeRawBufferPointer
    ) -> herr_t {
        let direct = chdf5_write_rows_as_chunks(dataset, type, hsize_t(first), hsize_t(count), bytes.baseAddress)
        if direct > 0 { directWrites += 1 }
        return direct != 0 ? direct : H5Dwrite(dataset, type, memory, file, chdf5_p_default(), bytes.baseAddress)
    }

    /// Selects rows `[firstRow, firstRow + count/rowLength)` in the file and a matching memory
    /// space, then runs `transfer(memorySpace, fileSpace, rowCount)`.
    private func transferRows(
        _ dataset: hid_t, path p: String, firstRow: Int, count: Int, write: Bool,
        _ transfer: (hid_t, hid_t, Int) -> herr_t
    ) throws(StorageError) {
        let fileSpace = H5Dget_space(dataset)
        guard fileSpace >= 0 else { throw failure("read the shape of", p) }
        defer { H5Sclose(fileSpace) }
        let shape = try dimensions(ofSpace: fileSpace, path: p)
        let rowLength = shape.dropFirst().reduce(1, *)
        guard !shape.isEmpty, rowLength > 0, count % rowLength == 0 else {
            throw StorageError.outOfRange(
                file: name, path: p, reason: "\(count) values are not whole rows of shape \(shape)")
        }
        let rowCount = count / rowLength
        guard firstRow >= 0, firstRow + rowCount <= shape[0] else {
            throw StorageError.outOfRange(
                file: name, path: p,
                reason:
                    "rows \(firstRow)..<\(firstRow + rowCount) are outside the \(shape[0]) rows of shape \(shape)"
            )
        }
        if rowCount == 0 { return }
        let start = [hsize_t(firstRow)] + shape.dropFirst().map { _ in hsize_t(0) }
        let counts = [hsize_t(rowCount)] + shape.dropFirst().map { hsize_t($0) }
        guard H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, start, nil, counts, nil) >= 0 else {
            throw failure("select rows of", p)
        }
        let memorySpace = H5Screate_simple(Int32(counts.count), counts, nil)
        guard memorySpace >= 0 else { throw failure("select rows of", p) }
        defer { H5Sclose(memorySpace) }
        guard transfer(memorySpace, fileSpace, rowCount) >= 0 else {
            throw failure(
                write
                    ? "write rows \(firstRow)..<\(firstRow + rowCount) of"
                    : "read rows \(firstRow)..<\(firstRow + rowCount) of", p)
        }
    }
}
