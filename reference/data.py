"""Image data for the reference models: scikit-learn's bundled 8x8 digits, and MNIST-format (IDX) files.

No data is downloaded. ``digits`` returns the 1,797 handwritten digits that ship
with scikit-learn (UCI optical digits), scaled from their 0..16 grey levels into a
chosen range and optionally resized (bilinear) to the 28 x 28 of the models'
default ``input_dim`` of 784. ``read_idx``/``write_idx`` implement the IDX format
of LeCun et al.'s MNIST files, so a course that has MNIST on disk can use it with
``load_mnist``:

    magic  = 0x00 0x00 <type code> <number of dimensions>
    dims   = one big-endian uint32 per dimension
    data   = the values, big-endian, C order
    type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["digits", "load_mnist", "read_idx", "write_idx"]

DIGITS_MAX_LEVEL = 16.0  # sklearn's digits are counts of set pixels in 4x4 blocks: 0..16

IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_CODES = {dt.newbyteorder(">") if dt.itemsize > 1 else dt: code for code, dt in IDX_TYPES.items()}


def digits(
    size: int = 28, value_range: tuple[float, float] = (0.0, 1.0), flatten: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels): the 1,797 scikit-learn digits as float32 in ``value_range``.

    images are (N, size * size) when ``flatten`` else (N, 1, size, size); labels (N,) int64.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / DIGITS_MAX_LEVEL)[:, None]  # (N, 1, 8, 8) in [0, 1]
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False).clamp(0.0, 1.0)
    low, high = value_range
    images = low + (high - low) * images
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    return (images.flatten(1) if flatten else images), labels


def _open(path: Path) -> BinaryIO:
    if path.suffix == ".gz":
        return cast(BinaryIO, gzip.open(path, "rb"))
    return path.open("rb")


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (plain or ``.gz``), in native byte order."""
    path = Path(path)
    with _open(path) as fh:
        header = fh.read(4)
        if len(header) != 4 or header[0] != 0 or header[1] != 0:
            raise ValueError(f"{path}: not an IDX file (the magic number must start with two zero bytes)")
        code, ndim = header[2], header[3]
        if code not in IDX_TYPES:
            raise ValueError(f"{path}: unknown IDX type code 0x{code:02X}")
        dims = struct.unpack(f">{ndim}I", fh.read(4 * ndim))
        dtype = IDX_TYPES[code]
        count = int(np.prod(dims, dtype=np.int64))
        payload = fh.read(count * dtype.itemsize)
        if len(payload) != count * dtype.itemsize:
            raise ValueError(f"{path}: truncated, expected {count} values of shape {dims}")
        if fh.read(1):
            raise ValueError(f"{path}: trailing bytes after {count} values of shape {dims}")
    return np.frombuffer(payload, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when the name ends in ``.gz``)."""
    path = Path(path)
    arr = np.asarray(array)
    big_endian = arr.dtype.newbyteorder(">") if arr.dtype.itemsize > 1 else arr.dtype
    if big_endian not in IDX_CODES:
        raise ValueError(f"IDX cannot store dtype {arr.dtype}; use one of uint8, int8, int16, int32, float32, float64")
    if arr.ndim > 255:
        raise ValueError("IDX stores at most 255 dimensions")
    header = bytes([0, 0, IDX_CODES[big_endian], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + np.ascontiguousarray(arr, dtype=big_endian).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_mnist(root: str | Path, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, H*W) float32 in [0, 1], labels (N,) int64) from MNIST's IDX files under ``root``.

    Looks for the standard file names, plain or with ``.gz``.
    """
    if split not in MNIST_FILES:
        raise ValueError(f"split must be one of {sorted(MNIST_FILES)}, got {split!r}")
    root = Path(root)

    def find(name: str) -> Path:
        for candidate in (root / name, root / f"{name}.gz"):
            if candidate.exists():
                return candidate
        raise FileNotFoundError(f"no {name} or {name}.gz under {root}")

    image_name, label_name = MNIST_FILES[split]
    images = read_idx(find(image_name))
    labels = read_idx(find(label_name))
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"MNIST images must be uint8 of shape (N, H, W), got {images.dtype} {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"{labels.shape[0] if labels.ndim else 0} labels for {images.shape[0]} images")
    x = torch.from_numpy(images.reshape(images.shape[0], -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))
