"""Reading pickles that reference chumpy, scipy.sparse or torch without importing them.

FLAME's ``generic_model.pkl`` was written by Python 2 with chumpy ``Ch`` objects and a scipy
sparse ``J_regressor``; DECA's ``landmark_embedding.npy`` holds pickled torch tensors. Users
should not need chumpy (unmaintained, broken on recent NumPy) or torch to load them, so this
unpickler swaps those classes for small stand-ins that keep the pickled state and turn it into
ndarrays:

- chumpy ``Ch``: ``__getstate__`` is the object's ``__dict__``; a plain ``Ch`` keeps its value
  under ``x``.
- scipy sparse matrices: the state holds ``_shape`` and ``data``/``indices``/``indptr`` (CSC, CSR)
  or ``data``/``row``/``col`` (COO).
- torch tensors: ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` where the
  storage is ``torch.storage._load_from_bytes(bytes)``: bytes of torch's legacy ``torch.save``
  format (magic, protocol, sys info, the pickled storage whose persistent id names its type and
  key, the sorted storage keys, then per storage an int64 element count and the raw data).
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

_TORCH_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
    "UntypedStorage": np.uint8,
}


class ChumpyObject:
    """Stand-in for any chumpy class: keeps the pickled ``__dict__``."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __setstate__(self, state):
        self.state = state

    def to_numpy(self):
        """The stored array of a plain ``Ch``; a derived expression (no ``x``: a product or a
        selection of other chumpy objects) cannot be evaluated without chumpy and is
        returned unchanged, for the caller to reject if it needs it."""
        if not isinstance(getattr(self, "state", None), dict) or "x" not in self.state:
            return self
        return np.asarray(to_numpy(self.state["x"]))


class SparseMatrix:
    """Stand-in for scipy.sparse matrices/arrays: rebuilt dense from the pickled state."""

    fmt = "csc"

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __setstate__(self, state):
        self.state = state

    def to_numpy(self) -> np.ndarray:
        s = self.state
        shape = tuple(int(n) for n in s.get("_shape", s.get("shape")))
        data = np.asarray(s["data"])
        dense = np.zeros(shape, dtype=data.dtype)
        if self.fmt == "coo":
            coords = s["coords"] if "coords" in s else (s["row"], s["col"])
            np.add.at(dense, (np.asarray(coords[0]), np.asarray(coords[1])), data)
            return dense
        indptr, indices = np.asarray(s["indptr"]), np.asarray(s["indices"])
        major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        rows, cols = (indices, major) if self.fmt == "csc" else (major, indices)
        np.add.at(dense, (rows, cols), data)
        return dense


def _sparse_class(name: str) -> type:
    fmt = name[:3]
    if fmt not in ("csc", "csr", "coo"):
        raise pickle.UnpicklingError(f"unsupported scipy.sparse class {name!r} in pickle")
    return type(name, (SparseMatrix,), {"fmt": fmt})


class _StorageType:
    def __init__(self, name: str):
        self.name, self.dtype = name, _TORCH_STORAGE_DTYPES[name]


class _StorageRef:
    def __init__(self, key: str):
        self.key = key


def _rebuild_tensor(storage, offset, size, stride, *unused) -> np.ndarray:
    """torch._utils._rebuild_tensor(_v2): a strided view of the storage, copied."""
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * item for s in stride))
    return np.array(view)


def _rebuild_parameter(data, *unused):
    return data


def _load_torch_storage_bytes(blob: bytes) -> np.ndarray:
    """torch.storage._load_from_bytes, for torch's legacy serialization format."""
    f = io.BytesIO(blob)
    for _ in range(3):  # magic number, protocol version, sys info
        CompatUnpickler(f).load()
    records: dict[str, tuple[Any, tuple | None]] = {}

    def persistent_load(pid):
        kind, storage_type, key, _location, _numel, view = pid
        if kind != "storage":
            raise pickle.UnpicklingError(f"unsupported torch persistent id {kind!r}")
        records[key] = (storage_type.dtype, view)
        return _StorageRef(key)

    unpickler = CompatUnpickler(f)
    unpickler.persistent_load = persistent_load
    obj = unpickler.load()
    keys = CompatUnpickler(f).load()
    storages = {}
    for key in keys:
        dtype = np.dtype(records[key][0])
        count = int(np.frombuffer(f.read(8), "<i8")[0])
        raw = f.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise pickle.UnpicklingError("torch storage data is truncated")
        storages[key] = np.frombuffer(raw, dtype.newbyteorder("<")).astype(dtype)
    if not isinstance(obj, _StorageRef):
        raise pickle.UnpicklingError("torch storage bytes did not hold a storage")
    data = storages[obj.key]
    view = records[obj.key][1]
    if view is not None:
        _view_key, offset, size = view
        data = data[offset: offset + size]
    return data


class CompatUnpickler(pickle.Unpickler):
    """An unpickler that reads chumpy, scipy.sparse and torch objects as described above."""

    def __init__(self, file):
        super().__init__(file, encoding="latin1")

    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "chumpy":
            return ChumpyObject
        if module.startswith("scipy.sparse"):
            return _sparse_class(name)
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch.storage" and name == "_load_from_bytes":
            return _load_torch_storage_bytes
        if module == "torch" and name in _TORCH_STORAGE_DTYPES:
            return _StorageType(name)
        if module.split(".")[0] == "torch":
            raise pickle.UnpicklingError(f"unsupported torch object {module}.{name} in pickle")
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module[len("numpy.core"):]  # NumPy 2 renamed numpy.core
        return super().find_class(module, name)


def to_numpy(obj: Any) -> Any:
    """Replaces the stand-ins inside dicts, lists and object arrays by ndarrays."""
    if isinstance(obj, ChumpyObject | SparseMatrix):
        return obj.to_numpy()
    if isinstance(obj, dict):
        return {k: to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_numpy(v) for v in obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.ndim == 0:
        return to_numpy(obj.item())
    return obj


def load_pickle(file) -> Any:
    """Unpickles ``file`` (an open binary file) and converts the stand-ins to ndarrays."""
    return to_numpy(CompatUnpickler(file).load())


def load_object_npy(file) -> Any:
    """Reads an ``np.save``-d object array (e.g. a dict) through :class:`CompatUnpickler`."""
    version = np.lib.format.read_magic(file)
    if version == (1, 0):
        _shape, _fortran, dtype = np.lib.format.read_array_header_1_0(file)
    else:
        _shape, _fortran, dtype = np.lib.format.read_array_header_2_0(file)
    if not dtype.hasobject:
        raise pickle.UnpicklingError(f"expected an object array, found dtype {dtype}")
    return load_pickle(file)
