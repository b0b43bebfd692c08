"""The trained weights the feedback page's pictures use, stored small beside the public results.

``grader/public/pictures.npz`` holds two state dicts, saved as float16 and used as float32 on both
sides of a picture, so the student's code and the reference see exactly the same model:

- ``digits/…``: a DigitNet (grader/runtime/drivers.py), the ε-model for ``p_sample_loop``'s picture;
- ``vae/…``: the contract's VAE(64, 128, 8), for the reconstructions and samples.

Both were trained by the reference on scikit-learn's 8 x 8 digits (grader/pictures/train.py); the
manifest records their checksum and the losses they reach on a fixed batch, which
``reference verify`` recomputes.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

FILE = Path(__file__).resolve().parents[1] / "public" / "pictures.npz"
SIDE = 8  # the digits' own 8 x 8: the MLPs learn them there (see reference/train.py on the DDPM)
DIM = SIDE * SIDE
T = 1000  # the linear schedule of Ho et al. (2020) the sampler was trained with
DIGIT_HIDDEN = 192
VAE_DIMS = (DIM, 128, 8)  # input_dim, hidden_dim, latent_dim
PREFIXES = ("digits", "vae")


@functools.cache
def _stored(path: Path) -> dict[str, dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    return {p: {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(p + "/")} for p in PREFIXES}


def state(model: str, path: Path | None = None) -> dict[str, torch.Tensor]:
    """The stored state dict of ``model`` ("digits" or "vae") as float32 tensors (fresh copies)."""
    arrays = _stored(path or FILE)[model]
    return {k: torch.from_numpy(v.astype(np.float32)) for k, v in arrays.items()}


def save(states: dict[str, dict[str, torch.Tensor]], path: Path | None = None) -> None:
    """Write the state dicts as float16, in a fixed order (the file's bytes depend on the weights only)."""
    arrays = {f"{p}/{k}": v.detach().cpu().numpy().astype(np.float16) for p in PREFIXES for k, v in states[p].items()}
    target = path or FILE
    with open(target, "wb") as f:
        np.savez_compressed(f, **dict(sorted(arrays.items())))  # type: ignore[arg-type]  # numpy's stub: allow_pickle
    _stored.cache_clear()
