"""Time the reference ddpm_train_step against the same step built on diffusers' DDPMScheduler.add_noise.

    python -m benchmarks.ddpm_train_step [--batch 128] [--repeats 100] [--device cpu|cuda]

Both sides train their own copy of the same Denoiser (same initial weights, batch,
Adam settings, t and noise): the only difference is how x_t is made, by
``reference.ddpm.q_sample`` (schedule derived in float64 each call) or by
``DDPMScheduler.add_noise`` (float32 schedule precomputed once). Steps are
interleaved A, B, B, A so that drift in the machine's speed hits both; the median of
the per-pair ratios is printed, and the making of x_t alone is timed beside it. CUDA
is synchronised around every timed step. A ratio <= 1.0 means the reference is no
slower than the diffusers path.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

from reference import ddpm

T = 1000


def diffusers_step(scheduler: DDPMScheduler) -> Callable[..., float]:
    def step(
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        x_0: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
    ) -> float:
        model.train()
        optimizer.zero_grad()
        x_t = scheduler.add_noise(x_0, noise, t)
        loss = F.mse_loss(model(x_t, t), noise)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def measure(batch: int, repeats: int, warmup: int, device: torch.device) -> dict[str, float]:
    torch.manual_seed(0)
    betas = ddpm.linear_beta_schedule(T)
    model_ref = ddpm.Denoiser().to(device)
    model_dif = copy.deepcopy(model_ref)
    opt_ref = torch.optim.Adam(model_ref.parameters(), lr=1e-3)
    opt_dif = torch.optim.Adam(model_dif.parameters(), lr=1e-3)
    scheduler = DDPMScheduler(num_train_timesteps=T, beta_schedule="linear")
    dif_step = diffusers_step(scheduler)

    def ref_step(x_0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> float:
        return ddpm.ddpm_train_step(model_ref, opt_ref, x_0, betas, t, noise)

    def timed(fn: Callable[[], float]) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"reference": [], "diffusers": []}
    noising: dict[str, list[float]] = {"reference": [], "diffusers": []}
    pair_ratios: list[float] = []
    for i in range(warmup + repeats):
        x_0 = torch.randn(batch, 784, device=device)
        t = torch.randint(0, T, (batch,), device=device)
        noise = torch.randn_like(x_0)
        steps = [
            ("reference", lambda x_0=x_0, t=t, noise=noise: ref_step(x_0, t, noise)),
            ("diffusers", lambda x_0=x_0, t=t, noise=noise: dif_step(model_dif, opt_dif, x_0, t, noise)),
        ]
        making_x_t = [
            ("reference", lambda x_0=x_0, t=t, noise=noise: ddpm.q_sample(x_0, t, noise, betas)),
            ("diffusers", lambda x_0=x_0, t=t, noise=noise: scheduler.add_noise(x_0, noise, t)),
        ]
        if i % 2:  # alternate which goes first
            steps.reverse()
            making_x_t.reverse()
        step_seconds = {name: timed(fn) for name, fn in steps}
        noise_seconds = {name: timed(fn) for name, fn in making_x_t}
        if i >= warmup:
            for name in times:
                times[name].append(step_seconds[name])
                noising[name].append(noise_seconds[name])
            pair_ratios.append(step_seconds["reference"] / step_seconds["diffusers"])
    med = {name: statistics.median(v) for name, v in times.items()}
    med_noise = {name: statistics.median(v) for name, v in noising.items()}
    return {
        "reference_ms": 1e3 * med["reference"],
        "diffusers_ms": 1e3 * med["diffusers"],
        "ratio": statistics.median(pair_ratios),
        "reference_x_t_us": 1e6 * med_noise["reference"],
        "diffusers_x_t_us": 1e6 * med_noise["diffusers"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    r = measure(args.batch, args.repeats, args.warmup, device)
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(
        f"device {device} ({where}), batch {args.batch}, {args.repeats} interleaved repeats, torch {torch.__version__}"
    )
    print(f"reference ddpm_train_step  median {r['reference_ms']:.3f} ms")
    print(f"diffusers add_noise step   median {r['diffusers_ms']:.3f} ms")
    print(
        f"making x_t alone: reference q_sample {r['reference_x_t_us']:.1f} us, add_noise {r['diffusers_x_t_us']:.1f} us"
    )
    print(f"ratio reference / diffusers = {r['ratio']:.3f}  (median of paired ratios; target <= 1.0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
