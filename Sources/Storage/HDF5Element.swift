import CHDF5

/// The numeric element types an HDF5 dataset can hold through this wrapper.
public enum HDF5ElementType: String, Sendable, CaseIterable {
    case float32, float64, int64, int32, uint8

    var isFloatingPoint: Bool { self == .float32 || self == .float64 }

    /// The native in-memory HDF5 type (owned by the library; never closed).
    var nativeType: hid_t {
        switch self {
        case .float32: return chdf5_native_float()
        case .float64: return chdf5_native_double()
        case .int64: return chdf5_native_int64()
        case .int32: return chdf5_native_int32()
        case .uint8: return chdf5_native_uint8()
        }
    }
}

/// A Swift type that maps to one HDF5 numeric type: `Float` (float32), `Double` (float64),
/// `Int64` and `Int` (int64), `Int32`, `UInt8`.
///
/// Reading converts within a class (a float64 dataset reads as `Float`, a uint8 one as `Int`),
/// as h5py does; reading across classes (integers as floats or back) is a `.wrongType` error.
public protocol HDF5Element: Sendable {
    static var hdf5Type: HDF5ElementType { get }
    /// The zero used to allocate read buffers.
    static var hdf5Zero: Self { get }
}

extension Float: HDF5Element {
    public static var hdf5Type: HDF5ElementType { .float32 }
    public static var hdf5Zero: Float { 0 }
}

extension Double: HDF5Element {
    public static var hdf5Type: HDF5ElementType { .float64 }
    public static var hdf5Zero: Double { 0 }
}

extension Int64: HDF5Element {
    public static var hdf5Type: HDF5ElementType { .int64 }
    public static var hdf5Zero: Int64 { 0 }
}

/// `Int` is stored as int64; this package supports 64-bit platforms only.
extension Int: HDF5Element {
    public static var hdf5Type: HDF5ElementType { .int64 }
    public static var hdf5Zero: Int { 0 }
}

extension Int32: HDF5Element {
    public static var hdf5Type: HDF5ElementType { .int32 }
    public static var hdf5Zero: Int32 { 0 }
}

extension UInt8: HDF5Element {
    public static var hdf5Type: HDF5ElementType { .uint8 }
    public static var hdf5Zero: UInt8 { 0 }
}

/// A whole dataset (or a block of its rows) read into memory: row-major values and their shape.
/// A scalar dataset has shape `[]` and one value.
public struct HDF5Array<Element: HDF5Element>: Sendable {
    public var shape: [Int]
    public var values: [Element]

    public init(shape: [Int], values: [Element]) {
        precondition(
            shape.reduce(1, *) == values.count,
            "HDF5Array: shape \(shape) for \(values.count) values")
        self.shape = shape
        self.values = values
    }
}

extension HDF5Array: Equatable where Element: Equatable {}
