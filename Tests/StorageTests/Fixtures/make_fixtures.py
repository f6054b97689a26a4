"""Writes the StorageTests fixtures with the reference libraries (torch + safetensors, h5py).

Run from the repository root with a Python that has torch, safetensors, h5py and numpy:
    python Tests/StorageTests/Fixtures/make_fixtures.py
The Swift tests only read the files written here; they never run Python.
"""
import os

import h5py
import numpy as np
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))

tensors = {
    "f32": torch.tensor([[1.5, -2.25, 0.0], [3e-8, 1e30, -7.0]], dtype=torch.float32),
    "f16": torch.tensor([0.5, -1.0, 65504.0, 5.960464477539063e-08], dtype=torch.float16),
    "bf16": torch.tensor([1.0, -2.0, 3.140625], dtype=torch.bfloat16),
    "f64": torch.tensor([0.1, -1e-300], dtype=torch.float64),
    "i64": torch.tensor([-5, 1 << 40], dtype=torch.int64),
    "i32": torch.tensor([-7, 9], dtype=torch.int32),
    "u8": torch.tensor([0, 255], dtype=torch.uint8),
    "bool": torch.tensor([True, False]),
}
save_file(tensors, os.path.join(HERE, "reference.safetensors"),
          metadata={"source": "make_fixtures.py", "format": "pt"})

with h5py.File(os.path.join(HERE, "reference.h5"), "w") as f:
    f.attrs["format"] = "task-interference/probe"
    f.attrs["version"] = np.int64(1)
    f.attrs["scale"] = 0.25
    f.attrs["tasks"] = ["mlm", "caption"]
    f.attrs["sizes"] = np.array([3, 4], dtype=np.int64)
    f.attrs["fixed"] = np.bytes_("fixed-length")
    g = f.create_group("tasks/mlm")
    g.create_dataset("loss", data=np.array([1.0, 2.5, -3.0], dtype=np.float32))
    g.create_dataset("examples", data=np.arange(6, dtype=np.int64).reshape(3, 2))
    f.create_dataset("gram", data=np.arange(4, dtype=np.float64).reshape(2, 2) / 8)
    f.create_dataset("mask", data=np.array([0, 1, 255], dtype=np.uint8))
    f.create_dataset("vocab", data=["[PAD]", "héllo", ""], dtype=h5py.string_dtype("utf-8"))
    f.create_dataset("fixed_names", data=np.array([b"cat", b"zebra"], dtype="S5"))
    ds = f.create_dataset("rows", shape=(5, 3), maxshape=(None, 3), chunks=(1, 3), dtype=np.float32)
    ds[...] = np.arange(15, dtype=np.float32).reshape(5, 3)
