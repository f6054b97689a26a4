import CHDF5
public func _hdf5Probe() -> Int64 { Int64(chdf5_native_float()) }
