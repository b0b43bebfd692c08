"""Train the reference VAE, GAN and DDPM on scikit-learn's digits, on the CPU, and record what they learnt.

    python -m reference.train [vae gan ddpm] [--out DIR] [--steps N] [--quick]

Each run writes into ``DIR/<model>/``: ``metrics.json`` (configuration, timings,
the full loss history and summary figures), ``loss.png`` (loss curves) and
``samples.png`` (an 8 x 8 grid of generated digits). For the VAE and the GAN the
digits are upsampled to 28 x 28, the contract's default 784 inputs; the DDPM's MLP
denoiser learns them at their native 8 x 8 (64 inputs).
Runs are seeded and deterministic on a given machine.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from tqdm import tqdm

from reference import ddpm, gan, vae
from reference.data import digits

MODELS = ("vae", "gan", "ddpm")
FULL_STEPS = {"vae": 1500, "gan": 3000, "ddpm": 6000}
QUICK_STEPS = 150
BATCH_SIZE = 128
GRID = 64  # samples in the picture, 8 x 8
DDPM_SIDE = 8  # the DDPM learns the digits at their native 8 x 8 (see train_ddpm)


def _batches(data: torch.Tensor, generator: torch.Generator) -> Callable[[], torch.Tensor]:
    def draw() -> torch.Tensor:
        return data[torch.randint(0, data.shape[0], (BATCH_SIZE,), generator=generator)]

    return draw


def _window_mean(values: list[float], first: bool, width: int = 20) -> float:
    part = values[:width] if first else values[-width:]
    return sum(part) / len(part)


def _plot_losses(history: dict[str, list[float]], title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in history.items():
        window = max(1, len(values) // 50)
        smooth = torch.tensor(values).unfold(0, window, 1).mean(1) if len(values) >= window else torch.tensor(values)
        ax.plot(range(window - 1, window - 1 + len(smooth)), smooth.numpy(), label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (moving average)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _save_grid(images01: torch.Tensor, path: Path, side: int = 28, columns: int = 8, padding: int = 2) -> None:
    """A grid of 28 x 28 tiles, ``columns`` to a row, ``padding`` black pixels around each, as a grayscale PNG;
    smaller images are upsampled as the training digits were."""
    images = images01.detach().cpu().float().clamp(0, 1).reshape(-1, 1, side, side)
    if side != 28:
        images = torch.nn.functional.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False)
    step = 28 + padding
    rows = -(-images.shape[0] // columns)
    grid = torch.zeros(rows * step + padding, min(columns, images.shape[0]) * step + padding)
    for index, tile in enumerate(images[:, 0]):
        top, left = padding + (index // columns) * step, padding + (index % columns) * step
        grid[top : top + 28, left : left + 28] = tile
    plt.imsave(path, grid.numpy(), cmap="gray", vmin=0.0, vmax=1.0)


def train_vae(steps: int, seed: int, progress: bool) -> tuple[dict[str, list[float]], torch.Tensor, dict[str, Any]]:
    torch.manual_seed(seed)
    data, _ = digits(28, (0.0, 1.0))
    model = vae.VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    draw = _batches(data, torch.Generator().manual_seed(seed))
    history: dict[str, list[float]] = {"total_loss": [], "recon_loss": [], "kl_loss": []}
    for _ in tqdm(range(steps), desc="vae", disable=not progress):
        out = vae.vae_train_step(model, draw(), optimizer)
        for key in history:
            history[key].append(out[key] / BATCH_SIZE)  # per image, in nats
    model.eval()
    with torch.no_grad():
        samples = model.decode(torch.randn(GRID, model.latent_dim))
    return history, samples, {"loss_unit": "nats per image"}


def train_gan(steps: int, seed: int, progress: bool) -> tuple[dict[str, list[float]], torch.Tensor, dict[str, Any]]:
    torch.manual_seed(seed)
    data, _ = digits(28, (-1.0, 1.0))
    generator, discriminator = gan.Generator(), gan.Discriminator()
    g_opt = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    draw = _batches(data, torch.Generator().manual_seed(seed))
    z_fixed = torch.randn(512, generator.noise_dim, generator=torch.Generator().manual_seed(seed + 1))
    data_mean = data.mean(0)

    def mean_image_gap() -> float:
        """L1 gap per pixel between the mean generated image and the mean digit: falls as G learns."""
        with torch.no_grad():
            return (generator(z_fixed).mean(0) - data_mean).abs().mean().item()

    gap_start = mean_image_gap()
    history: dict[str, list[float]] = {"d_loss": [], "g_loss": []}
    accuracies = []
    for _ in tqdm(range(steps), desc="gan", disable=not progress):
        out = gan.gan_train_step(generator, discriminator, draw(), g_opt, d_opt)
        history["d_loss"].append(out["d_loss"])
        history["g_loss"].append(out["g_loss"])
        accuracies.append((out["real_acc"] + out["fake_acc"]) / 2)
    with torch.no_grad():
        samples = (generator(z_fixed[:GRID]) + 1) / 2
    extra = {
        "mean_image_gap_start": gap_start,
        "mean_image_gap_end": mean_image_gap(),
        "d_accuracy_last_100": sum(accuracies[-100:]) / len(accuracies[-100:]),
        "log4": math.log(4.0),
    }
    return history, samples, extra


def train_ddpm(steps: int, seed: int, progress: bool) -> tuple[dict[str, list[float]], torch.Tensor, dict[str, Any]]:
    torch.manual_seed(seed)
    # The MLP denoiser underfits the 784 strongly correlated pixels of upsampled digits (loss
    # stalls near 0.44 and samples stay noise after 8,000 steps); at the digits' own 8 x 8
    # it reaches ~0.13 and draws recognisable digits in a minute. So it trains at 8 x 8.
    data, _ = digits(DDPM_SIDE, (-1.0, 1.0))
    betas = ddpm.linear_beta_schedule(1000)
    model = ddpm.Denoiser(input_dim=DDPM_SIDE * DDPM_SIDE)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    draw = _batches(data, torch.Generator().manual_seed(seed))
    history: dict[str, list[float]] = {"loss": []}
    for _ in tqdm(range(steps), desc="ddpm", disable=not progress):
        history["loss"].append(ddpm.ddpm_train_step(model, optimizer, draw(), betas))
    model.eval()
    started = time.perf_counter()
    x = ddpm.p_sample_loop(model, (GRID, DDPM_SIDE * DDPM_SIDE), betas, generator=torch.Generator().manual_seed(seed))
    extra = {
        "T": 1000,
        "schedule": "linear",
        "image_side": DDPM_SIDE,
        "sampling_seconds": time.perf_counter() - started,
    }
    return history, (x + 1) / 2, extra


TRAINERS = {"vae": train_vae, "gan": train_gan, "ddpm": train_ddpm}


def run(model: str, out: Path, steps: int, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Train one model for ``steps`` steps and write metrics.json, loss.png and samples.png under out/model."""
    if model not in TRAINERS:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    folder = out / model
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    history, samples, extra = TRAINERS[model](steps, seed, progress)
    seconds = time.perf_counter() - started
    _plot_losses(history, f"reference {model.upper()} on sklearn digits (28x28)", folder / "loss.png")
    _save_grid(samples, folder / "samples.png", side=int(samples.shape[-1] ** 0.5))
    metrics = {
        "model": model,
        "steps": steps,
        "batch_size": BATCH_SIZE,
        "seed": seed,
        "seconds": round(seconds, 2),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "first_20_mean": {k: _window_mean(v, True) for k, v in history.items()},
        "last_20_mean": {k: _window_mean(v, False) for k, v in history.items()},
        **extra,
        "history": history,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", metavar="MODEL", help=f"any of {', '.join(MODELS)} (default: all)")
    parser.add_argument("--out", type=Path, default=Path("runs/reference"), help="output folder (default: %(default)s)")
    parser.add_argument("--steps", type=int, help="optimiser steps per model (default: a full run, see FULL_STEPS)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps per model: a smoke test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        parser.error(f"unknown model {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    for model in args.models or MODELS:
        steps = args.steps or (QUICK_STEPS if args.quick else FULL_STEPS[model])
        metrics = run(model, args.out, steps, args.seed, progress=not args.no_progress)
        first, last = metrics["first_20_mean"], metrics["last_20_mean"]
        summary = ", ".join(f"{k} {first[k]:.4g} -> {last[k]:.4g}" for k in first)
        print(f"{model}: {steps} steps in {metrics['seconds']:.1f}s; {summary}; wrote {args.out / model}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
