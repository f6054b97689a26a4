import CHDF5

/// The value of an HDF5 attribute: a scalar or a 1-D array of strings, integers or doubles.
///
/// Stored as h5py stores the matching Python values: `str` → variable-length UTF-8 scalar,
/// `int` → int64 scalar, `float` → float64 scalar, lists → 1-D arrays.
public enum HDF5AttributeValue: Sendable, Equatable, Codable {
    case string(String)
    case int(Int)
    case double(Double)
    case strings([String])
    case ints([Int])
    case doubles([Double])

    var kindName: String {
        switch self {
        case .string: return "a string"
        case .int: return "an integer"
        case .double: return "a double"
        case .strings: return "a string list"
        case .ints: return "an integer list"
        case .doubles: return "a double list"
        }
    }
}

/// Attributes on the root group, on groups and on datasets.
extension HDF5File {
    /// Sets attribute `name` on the object at `path` (default: the root), replacing any old value.
    /// - Parameter fixedLength: store strings fixed-length (in the object header, which the file
    ///   format checksums) instead of variable-length (in the global heap, which it does not).
    /// - Throws: `.missingDataset` if nothing is at `path`; `.hdf5`.
    public func setAttribute(
        _ name: String, _ value: HDF5AttributeValue, at path: String = "/", fixedLength: Bool = false
    ) throws(StorageError) {
        try HDF5Library.locked { () throws(StorageError) in
            let p = Self.normalize(path)
            try requireWritable(p)
            let object = try openObject(p)
            defer { H5Oclose(object) }
            let exists = H5Aexists(object, name)
            guard exists >= 0 else { throw failure("look up attribute '\(name)' on", p) }
            if exists > 0 {
                guard H5Adelete(object, name) >= 0 else {
                    throw failure("replace attribute '\(name)' on", p)
                }
            }
            let label = "write attribute '\(name)' on"

            /// Creates the attribute with `type` over `shape` and writes `buffer`.
            func create(_ type: hid_t, _ shape: [Int], _ buffer: UnsafeRawPointer?)
                throws(StorageError)
            {
                let space = try dataspace(shape, path: p)
                defer { H5Sclose(space) }
                let attribute = H5Acreate2(
                    object, name, type, space, chdf5_p_default(), chdf5_p_default())
                guard attribute >= 0 else { throw failure(label, p) }
                defer { H5Aclose(attribute) }
                if shape == [0] { return }
                guard H5Awrite(attribute, type, buffer) >= 0 else { throw failure(label, p) }
            }

            func numbers<T: HDF5Element>(_ values: [T], scalar: Bool) throws(StorageError) {
                let type = T.hdf5Type.nativeType
                try values.withUnsafeBytes { raw in
                    Result { () throws(StorageError) in
                        try create(type, scalar ? [] : [values.count], raw.baseAddress)
                    }
                }.get()
            }

            switch value {
            case .string(let s):
                try withStringBuffer([s], fixedLength: fixedLength, path: p) {
                    (type, buffer) throws(StorageError) in
                    try create(type, [], buffer)
                }
            case .strings(let list):
                try withStringBuffer(list, fixedLength: fixedLength, path: p) {
                    (type, buffer) throws(StorageError) in
                    try create(type, [list.count], buffer)
                }
            case .int(let v): try numbers([Int64(v)], scalar: true)
            case .ints(let list): try numbers(list.map(Int64.init), scalar: false)
            case .double(let v): try numbers([v], scalar: true)
            case .doubles(let list): try numbers(list, scalar: false)
            }
            writtenStrings.recordAttribute(name, value, at: p)
        }
    }

    /// True if the object at `path` exists and has attribute `name`.
    public func hasAttribute(_ name: String, at path: String = "/") -> Bool {
        HDF5Library.lockedQuery { () -> Bool in
            if preloaded != nil {
                guard let object = try? preloadedObject(Self.normalize(path)) else { return false }
                return object.attributes[name] != nil || object.unreadable[name] != nil
            }
            guard let object = try? openObject(path) else { return false }
            defer { H5Oclose(object) }
            return H5Aexists(object, name) > 0
        }
    }

    /// The names of the attributes on the object at `path`, in byte order.
    /// - Throws: `.missingDataset`; `.hdf5`.
    public func attributeNames(at path: String = "/") throws(StorageError) -> [String] {
        try HDF5Library.locked { () throws(StorageError) -> [String] in
            let p = Self.normalize(path)
            if let known = try preloadedObject(p) {
                guard known.attributesListed else { throw unreadable("list attributes of", p) }
                return (Array(known.attributes.keys) + Array(known.unreadable.keys))
                    .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            }
            let object = try openObject(p)
            defer { H5Oclose(object) }
            var names: [String] = []
            // H5Oget_info's signature differs between HDF5 1.10 and 1.12+, so count by walking
            // the name index until HDF5 reports the end.
            var index: hsize_t = 0
            while true {
                let length = H5Aget_name_by_idx(
                    object, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, chdf5_p_default())
                if length < 0 { break }
                var buffer = [CChar](repeating: 0, count: Int(length) + 1)
                guard
                    H5Aget_name_by_idx(
                        object, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, buffer.count,
                        chdf5_p_default()) >= 0
                else { throw failure("list attributes of", p) }
                names.append(
                    String(
                        decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) },
                        as: UTF8.self))
                index += 1
            }
            return names
        }
    }

    /// Reads attribute `name` of the object at `path`. Integers of any width read as `.int`/`.ints`,
    /// floats as `.double`/`.doubles`, strings (variable or fixed length) as `.string`/`.strings`;
    /// a rank-0 attribute is a scalar, any other rank a flattened list.
    /// - Throws: `.missingDataset` (no object), `.missingAttribute`, `.wrongType` (e.g. compound
    ///   or enum attributes), `.hdf5`.
    public func attribute(_ name: String, at path: String = "/") throws(StorageError)
        -> HDF5AttributeValue
    {
        try HDF5Library.locked { () throws(StorageError) -> HDF5AttributeValue in
            let p = Self.normalize(path)
            if let value = try preloadedAttribute(name, at: p) { return value }
            let object = try openObject(p)
            defer { H5Oclose(object) }
            guard H5Aexists(object, name) > 0 else {
                throw StorageError.missingAttribute(file: self.name, path: p, name: name)
            }
            let attribute = H5Aopen(object, name, chdf5_p_default())
            guard attribute >= 0 else { throw failure("open attribute '\(name)' on", p) }
            defer { H5Aclose(attribute) }
            let type = H5Aget_type(attribute)
            guard type >= 0 else { throw failure("read the type of attribute '\(name)' on", p) }
            defer { H5Tclose(type) }
            let space = H5Aget_space(attribute)
            guard space >= 0 else { throw failure("read the shape of attribute '\(name)' on", p) }
            defer { H5Sclose(space) }
            let isScalar = H5Sget_simple_extent_type(space) == H5S_SCALAR
            let count = Int(H5Sget_simple_extent_npoints(space))
            let label = "read attribute '\(name)' on"
            guard count >= 0 else { throw failure(label, p) }

            func numbers<T: HDF5Element>(_: T.Type) throws(StorageError) -> [T] {
                try checkNumericLayout(type, path: "\(p)@\(name)")
                var values = [T](repeating: T.hdf5Zero, count: count)
                if count == 0 { return values }
                let status = values.withUnsafeMutableBytes {
                    H5Aread(attribute, T.hdf5Type.nativeType, $0.baseAddress)
                }
                guard status >= 0 else { throw failure(label, p) }
                return values
            }

            switch H5Tget_class(type) {
            case H5T_STRING:
                let strings = try readStringBuffer(storedType: type, count: count, path: p) { memoryType, buffer in
                    H5Aread(attribute, memoryType, buffer)
                }
                return isScalar ? .string(strings.first ?? "") : .strings(strings)
            case H5T_INTEGER:
                let ints = try numbers(Int64.self).map { Int($0) }
                return isScalar ? .int(ints.first ?? 0) : .ints(ints)
            case H5T_FLOAT:
                let doubles = try numbers(Double.self)
                return isScalar ? .double(doubles.first ?? 0) : .doubles(doubles)
            default:
                throw StorageError.wrongType(
                    file: self.name, name: "\(p)@\(name)",
                    expected: "a string, integer or float attribute",
                    found: "another HDF5 type class")
            }
        }
    }

    /// A string attribute. - Throws: as ``attribute(_:at:)``, `.wrongType` if it is not a scalar string.
    public func stringAttribute(_ name: String, at path: String = "/") throws(StorageError)
        -> String
    {
        let value = try attribute(name, at: path)
        guard case .string(let s) = value else {
            throw wrongAttribute(name, path, "a string", value)
        }
        return s
    }

    /// An integer attribute. - Throws: as ``attribute(_:at:)``, `.wrongType` if it is not a scalar integer.
    public func intAttribute(_ name: String, at path: String = "/") throws(StorageError) -> Int {
        let value = try attribute(name, at: path)
        guard case .int(let v) = value else {
            throw wrongAttribute(name, path, "an integer", value)
        }
        return v
    }

    /// A floating-point attribute (an integer attribute is accepted and converted).
    /// - Throws: as ``attribute(_:at:)``, `.wrongType` if it is not a scalar number.
    public func doubleAttribute(_ name: String, at path: String = "/") throws(StorageError)
        -> Double
    {
        let value = try attribute(name, at: path)
        switch value {
        case .double(let v): return v
        case .int(let v): return Double(v)
        default: throw wrongAttribute(name, path, "a double", value)
        }
    }

    /// A string-list attribute. - Throws: as ``attribute(_:at:)``, `.wrongType` otherwise.
    public func stringsAttribute(_ name: String, at path: String = "/") throws(StorageError)
        -> [String]
    {
        let value = try attribute(name, at: path)
        guard case .strings(let list) = value else {
            throw wrongAttribute(name, path, "a string list", value)
        }
        return list
    }

    /// An integer-list attribute. - Throws: as ``attribute(_:at:)``, `.wrongType` otherwise.
    public func intsAttribute(_ name: String, at path: String = "/") throws(StorageError) -> [Int] {
        let value = try attribute(name, at: path)
        guard case .ints(let list) = value else {
            throw wrongAttribute(name, path, "an integer list", value)
        }
        return list
    }

    /// A double-list attribute (an integer list is accepted and converted).
    /// - Throws: as ``attribute(_:at:)``, `.wrongType` otherwise.
    public func doublesAttribute(_ name: String, at path: String = "/") throws(StorageError)
        -> [Double]
    {
        let value = try attribute(name, at: path)
        switch value {
        case .doubles(let list): return list
        case .ints(let list): return list.map(Double.init)
        default: throw wrongAttribute(name, path, "a double list", value)
        }
    }

    private func wrongAttribute(
        _ attribute: String, _ path: String, _ expected: String, _ found: HDF5AttributeValue
    ) -> StorageError {
        .wrongType(
            file: name, name: "\(Self.normalize(path))@\(attribute)", expected: expected,
            found: found.kindName)
    }
}
