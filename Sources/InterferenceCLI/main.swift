import Storage
print(_hdf5Probe())
