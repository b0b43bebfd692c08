"""reference.data: the IDX (MNIST) reader and writer on small files the tests write, and the digits."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from reference.data import digits, load_mnist, read_idx, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path: Path, dtype: type, suffix: str) -> None:
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    path = tmp_path / f"a-idx3{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (3, 4, 5)
    np.testing.assert_array_equal(back, array)


def test_idx_header_is_the_mnist_layout(tmp_path: Path) -> None:
    """A hand-written MNIST-style label file: magic 0x00000801, count, then the bytes."""
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 1]) + (3).to_bytes(4, "big") + bytes([7, 2, 1]))
    np.testing.assert_array_equal(read_idx(path), [7, 2, 1])
    write_idx(tmp_path / "again", np.array([7, 2, 1], dtype=np.uint8))
    assert (tmp_path / "again").read_bytes() == path.read_bytes()


def test_idx_big_endian_values(tmp_path: Path) -> None:
    path = tmp_path / "ints"
    path.write_bytes(
        bytes([0, 0, 0x0C, 1])
        + (2).to_bytes(4, "big")
        + (258).to_bytes(4, "big")
        + (-1).to_bytes(4, "big", signed=True)
    )
    np.testing.assert_array_equal(read_idx(path), [258, -1])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (bytes([1, 0, 0x08, 1]) + (1).to_bytes(4, "big") + b"\x00", "not an IDX file"),
        (bytes([0, 0, 0x07, 1]) + (1).to_bytes(4, "big") + b"\x00", "unknown IDX type code 0x07"),
        (bytes([0, 0, 0x08, 1]) + (5).to_bytes(4, "big") + b"\x00\x00", "truncated"),
        (bytes([0, 0, 0x08, 1]) + (1).to_bytes(4, "big") + b"\x00\x00", "trailing bytes"),
    ],
)
def test_malformed_idx_files_are_rejected(tmp_path: Path, payload: bytes, message: str) -> None:
    path = tmp_path / "bad"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=message):
        read_idx(path)


def test_write_idx_rejects_unsupported_dtypes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot store dtype"):
        write_idx(tmp_path / "x", np.zeros(2, dtype=np.int64))


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_from_small_files(tmp_path: Path, compress: bool) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels)
    if compress:
        with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz") as fh:
            assert fh.read(4) == bytes([0, 0, 8, 3])
    x, y = load_mnist(tmp_path, "test")
    assert x.shape == (5, 784) and x.dtype == torch.float32
    torch.testing.assert_close(x, torch.from_numpy(images.reshape(5, -1) / 255.0).float())
    assert y.tolist() == [5, 0, 4, 1, 9]
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path, "train")


def test_load_mnist_rejects_mismatched_labels(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 2, 2), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, dtype=np.uint8))
    with pytest.raises(ValueError, match="2 labels for 3 images"):
        load_mnist(tmp_path)


def test_digits_are_scaled_and_resized() -> None:
    x, y = digits(28, (-1.0, 1.0))
    assert x.shape == (1797, 784) and x.dtype == torch.float32
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    assert sorted(set(y.tolist())) == list(range(10))
    small, _ = digits(8, flatten=False)
    assert small.shape == (1797, 1, 8, 8) and small.min().item() == 0.0 and small.max().item() == 1.0
