"""Argument checks shared by the reference modules.

Out-of-domain input raises ``ValueError`` naming the argument and the rule it
breaks; the wrong kind of object raises ``TypeError``. Nothing is clipped or
repaired silently.
"""

from __future__ import annotations

import numpy as np
import torch


def as_int_array(name: str, value: object) -> np.ndarray:
    """``value`` as an int64 array; floats are accepted only when integral."""
    arr = np.asarray(value)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold whole numbers, got {arr!r}")
    arr = arr.astype(np.int64)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got {arr!r}")
    return arr


def as_float_array(name: str, value: object) -> np.ndarray:
    """``value`` as a finite float64 array."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numeric, got {type(value).__name__}") from err
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr!r}")
    return arr


def require_1d_nonempty(name: str, arr: np.ndarray) -> None:
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")


def require_probability(name: str, p: float) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {p}")
    return p


def require_tensor(name: str, x: object, *, floating: bool = True) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def broadcast_shape(**tensors: torch.Tensor) -> torch.Size:
    """The broadcast shape of the named tensors, or a ValueError that names them."""
    try:
        return torch.broadcast_shapes(*(t.shape for t in tensors.values()))
    except RuntimeError as err:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in tensors.items())
        raise ValueError(f"shapes do not broadcast: {shapes}") from err


def require_same_shape(**tensors: torch.Tensor) -> None:
    shapes = {tuple(t.shape) for t in tensors.values()}
    if len(shapes) > 1:
        listed = ", ".join(f"{n} {tuple(t.shape)}" for n, t in tensors.items())
        raise ValueError(f"shapes must match: {listed}")


def require_in_unit_interval(name: str, x: torch.Tensor) -> None:
    if bool(((x < 0) | (x > 1) | torch.isnan(x)).any()):
        raise ValueError(f"{name} must lie in [0, 1] elementwise")


def require_positive(name: str, x: torch.Tensor) -> None:
    if bool((~(x > 0)).any()):
        raise ValueError(f"{name} must be > 0 elementwise")


def sum_to_one_atol(dtype: torch.dtype) -> float:
    """How far from 1 a distribution's total may be: sqrt(machine epsilon) of its dtype.

    A vector normalised by dividing by its sum is off by about K * eps; sqrt(eps)
    (1.5e-8 in float64, 3.5e-4 in float32) accepts that for any realistic K and
    still rejects unnormalised input such as counts or logits.
    """
    return float(torch.finfo(dtype).eps) ** 0.5


def require_distribution(name: str, p: torch.Tensor) -> None:
    """Non-negative along the last dimension and summing to 1 there."""
    require_tensor(name, p)
    if p.ndim == 0 or p.shape[-1] == 0:
        raise ValueError(f"{name} must have a non-empty last dimension of outcomes, got shape {tuple(p.shape)}")
    if bool(((p < 0) | torch.isnan(p)).any()):
        raise ValueError(f"{name} must be non-negative")
    total = p.sum(-1)
    if bool(((total - 1).abs() > sum_to_one_atol(p.dtype)).any()):
        raise ValueError(f"{name} must sum to 1 along its last dimension")
