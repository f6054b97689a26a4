import CHDF5

/// What lives at an HDF5 path.
public enum HDF5ObjectKind: Sendable, Equatable {
    case group, dataset, other
}

extension HDF5File {
    /// Creates the group at `path` and any missing parents (`"/tasks/mlm"`); an existing group is fine.
    /// - Throws: `.wrongType` if a dataset is in the way; `.hdf5` otherwise.
    public func createGroup(_ path: String) throws(StorageError) {
        try HDF5Library.locked { () throws(StorageError) in
            let p = Self.normalize(path)
            try requireWritable(p)
            if p == "/" { return }
            if try linkExists(p) {
                let object = try openObject(p)
                defer { H5Oclose(object) }
                guard H5Iget_type(object) == H5I_GROUP else {
                    throw StorageError.wrongType(
                        file: name, name: p, expected: "a group", found: "a dataset")
                }
                return
            }
            let lcpl = try intermediateGroupsList(p)
            defer { H5Pclose(lcpl) }
            let group = H5Gcreate2(try openID(p), p, lcpl, chdf5_p_default(), chdf5_p_default())
            guard group >= 0 else { throw failure("create group", p) }
            H5Gclose(group)
        }
    }

    /// True if a group or dataset exists at `path` (`"/"` always exists).
    public func exists(_ path: String) -> Bool {
        HDF5Library.lockedQuery { () -> Bool in
            let p = Self.normalize(path)
            if let preloaded, let listed = preloaded.listed(p) { return listed }
            return (try? linkExists(p)) ?? false
        }
    }

    /// Whether `path` is a group or a dataset, or nil if nothing is there.
    public func kind(of path: String) -> HDF5ObjectKind? {
        HDF5Library.lockedQuery { () -> HDF5ObjectKind? in
            if let preloaded {
                let p = Self.normalize(path)
                if let known = preloaded.objects[p] { return known.isGroup ? .group : .dataset }
                if preloaded.listed(p) == false { return nil }
            }
            guard let object = try? openObject(path) else { return nil }
            defer { H5Oclose(object) }
            switch H5Iget_type(object) {
            case H5I_GROUP: return .group
            case H5I_DATASET: return .dataset
            default: return .other
            }
        }
    }

    /// The names (not paths) of the links in the group at `path`, in byte order of their names.
    /// - Throws: `.missingDataset` if there is no such group; `.wrongType` if it is a dataset.
    public func children(of path: String = "/") throws(StorageError) -> [String] {
        try HDF5Library.locked { () throws(StorageError) -> [String] in
            let p = Self.normalize(path)
            if let known = try preloadedObject(p) {
                guard known.isGroup else {
                    throw StorageError.wrongType(file: name, name: p, expected: "a group", found: "a dataset")
                }
                guard let members = known.members else { throw unreadable("list", p) }
                return members
            }
            let object = try openObject(p)
            defer { H5Oclose(object) }
            guard H5Iget_type(object) == H5I_GROUP else {
                throw StorageError.wrongType(
                    file: name, name: p, expected: "a group", found: "a dataset")
            }
            var info = H5G_info_t()
            guard H5Gget_info(object, &info) >= 0 else { throw failure("list", p) }
            var names: [String] = []
            for index in 0..<info.nlinks {
                let length = H5Lget_name_by_idx(
                    object, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, chdf5_p_default())
                guard length >= 0 else { throw failure("list", p) }
                var buffer = [CChar](repeating: 0, count: Int(length) + 1)
                guard
                    H5Lget_name_by_idx(
                        object, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, buffer.count,
                        chdf5_p_default()) >= 0
                else { throw failure("list", p) }
                names.append(
                    String(
                        decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) },
                        as: UTF8.self))
            }
            return names
        }
    }
}
