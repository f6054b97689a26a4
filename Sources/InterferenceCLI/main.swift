import Kernels
import Storage
print(_blasProbe(), _hdf5Probe())
