"""Reading dlib's serialized DNN files (``dlib::serialize(net)``) in NumPy.

dlib writes integers as a control byte (low nibble: how many little-endian bytes follow; bit
0x80: negative) then the bytes; floats and doubles as two integers, mantissa and base-2
exponent; strings as their length then the characters; bools as the characters '0' / '1';
tensors as version 2, (n, k, nr, nc), then n k nr nc raw float32; alias tensors (shapes of
views into a layer's parameter tensor) as version 1 and (n, k, nr, nc).

A network is written outside-in: the loss layer's fields, then each ``add_layer``'s version
down to the input layer, then, from the input outwards, each layer's fields followed by the
``add_layer`` bookkeeping (three bools and three, normally empty, tensors; the layer on the
input, an ``add_layer`` of version 3, adds its sample expansion factor). Tag and skip
layers write only their version, so the topology is known from the network type, not from
the file; :func:`read_layers` returns the layers in forward order.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from jaxface.assets import AssetError


class DlibReader:
    """Sequential reader over the bytes of a dlib serialization."""

    def __init__(self, data: bytes, name: str = "dlib file"):
        self.data, self.pos, self.name = data, 0, name

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise AssetError(f"{self.name}: truncated (wanted {n} bytes at offset {self.pos})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size > 8:
            raise AssetError(f"{self.name}: bad integer control byte {control:#x} at offset "
                             f"{self.pos - 1}")
        value = int.from_bytes(self._take(size), "little") if size else 0
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(np.ldexp(float(mantissa), exponent))

    def string(self) -> str:
        return self._take(self.int()).decode("latin1")

    def bool(self) -> bool:
        char = self._take(1)
        if char not in (b"0", b"1"):
            raise AssetError(f"{self.name}: expected a bool at offset {self.pos - 1}")
        return char == b"1"

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise AssetError(f"{self.name}: tensor version {version} at offset {self.pos}")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        return np.frombuffer(self._take(4 * count), "<f4").reshape(shape).copy()

    def alias(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise AssetError(f"{self.name}: alias tensor version {version} at offset {self.pos}")
        return tuple(self.int() for _ in range(4))

    def peek_string(self, text: str) -> bool:
        """Whether a string equal to ``text`` starts here."""
        encoded = text.encode("latin1")
        head = bytes([0x01, len(encoded)]) + encoded
        return self.data[self.pos:self.pos + len(head)] == head


@dataclasses.dataclass
class Layer:
    """One computational layer: its dlib name and its fields (arrays and numbers)."""

    kind: str
    fields: dict


def _read_fields(r: DlibReader, kind: str) -> dict:
    if kind in ("con_4", "con_5"):
        params = r.tensor().reshape(-1)
        f = dict(zip(("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y",
                      "padding_x"), (r.int() for _ in range(7)), strict=True))
        filters, biases = r.alias(), r.alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.float()
        use_bias = r.bool() if kind == "con_5" else True
        n_filt = int(np.prod(filters))
        f["filters_OIHW"] = params[:n_filt].reshape(filters)
        f["bias"] = params[n_filt:n_filt + biases[1]] if use_bias else np.zeros(filters[0],
                                                                                 np.float32)
        return f
    if kind == "affine_":
        params = r.tensor().reshape(-1)
        gamma, beta = r.alias(), r.alias()
        mode = r.int()
        n = int(np.prod(gamma))
        return {"gamma": params[:n], "beta": params[n:n + int(np.prod(beta))], "mode": mode}
    if kind in ("max_pool_2", "avg_pool_2"):
        return dict(zip(("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"),
                        (r.int() for _ in range(6)), strict=True))
    if kind in ("relu_", "add_prev_"):
        return {}
    if kind == "fc_2":
        n_out, n_in = r.int(), r.int()
        params = r.tensor().reshape(-1)
        weights, _biases = r.alias(), r.alias()
        bias_mode = r.int()
        for _ in range(4):
            r.float()
        n = int(np.prod(weights))
        has_bias = bias_mode == 0  # dlib's FC_HAS_BIAS = 0, FC_NO_BIAS = 1
        return {"weights_InxOut": params[:n].reshape(n_in, n_out),
                "bias": params[n:n + n_out] if has_bias else np.zeros(n_out, np.float32)}
    raise AssetError(f"{r.name}: unsupported dlib layer {kind!r} at offset {r.pos}")


LAYER_KINDS = ("con_4", "con_5", "affine_", "max_pool_2", "avg_pool_2", "relu_", "add_prev_",
               "fc_2")


def read_layers(path: str | pathlib.Path) -> tuple[dict, list[Layer]]:
    """-> (input layer fields, computational layers in forward order) of a dlib network
    whose loss is ``loss_metric_`` and input ``input_rgb_image_sized``."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise AssetError(f"dlib network file not found: {path}")
    r = DlibReader(path.read_bytes(), str(path))
    if r.int() != 1 or not r.string().startswith("loss_metric"):
        raise AssetError(f"{path}: not a dlib metric-learning network (loss_metric_)")
    r.float(), r.float()  # the loss's margin and distance threshold
    version = None
    while not r.peek_string("input_rgb_image_sized"):
        version = r.int()  # add_layer / tag / skip versions, outside in
        if version not in (1, 2, 3):
            raise AssetError(f"{path}: unexpected layer version {version} at offset {r.pos}")
    r.string()
    image_input = {"mean_rgb": np.array([r.float(), r.float(), r.float()], np.float32),
                   "rows": r.int(), "cols": r.int()}
    layers = []
    while r.pos < len(r.data):
        kind = r.string()
        if kind not in LAYER_KINDS:
            raise AssetError(f"{path}: unsupported dlib layer {kind!r} at offset {r.pos}")
        layers.append(Layer(kind, _read_fields(r, kind)))
        for _ in range(3):
            r.bool()
        for _ in range(3):
            r.tensor()
        if len(layers) == 1 and version == 3:
            r.int()  # the input-adjacent add_layer (version 3) also stores its sample expansion
    return image_input, layers
