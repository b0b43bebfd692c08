"""Scenarios that exercise one graded item: the same code runs on the reference and on a submission.

A driver takes a module (``reference.<part>`` in the grader, the student's module in
a worker) and plain inputs, builds whatever the item needs (models with given
weights, optimisers, stale gradients, seeded generators), calls the module's
function and returns plain outputs: numbers, arrays, tensors, dicts of them. The
grader runs each driver on the reference itself, so an expected value never comes
from a student's code. Drivers import torch and NumPy and nothing of the project:
they run inside the sandboxed worker.

Models: items that take a model (``p_sample_step``, ``ddpm_loss``, the training
steps) are driven with models whose weights the grader sends. DDPM items use
``EpsNet``, the grader's own small ε-model, so that a wrong ``timestep_embedding`` or
``Denoiser`` in a submission costs its own item and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch
from torch import nn

STALE_GRAD = 7.0  # every parameter starts a training step with this gradient: a missing zero_grad shows
EVAL_SEED = 0  # torch's generator before the VAE's eval-mode forward (which must not sample at all)
DRAW_SEED = 1  # torch's generator before the VAE's training-mode forward without eps (which draws randn_like(mu))
DRAWN = "train, eps drawn"  # the vae_model result of forward(x) in training mode with no eps given


class EpsNet(nn.Module):
    """A small ε-model for grading DDPM items: ε̂ = W₂ tanh(W₁ [x_t, sin(ωt), cos(ωt)]), any x rank."""

    def __init__(self, dim: int, hidden: int = 16) -> None:
        super().__init__()
        self.inp = nn.Linear(dim + 2, hidden)
        self.out = nn.Linear(hidden, dim)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        phase = 3.0 * t.to(x_t.dtype)[:, None] / 1000.0  # (B, 1)
        h = torch.cat([x_t.reshape(x_t.shape[0], -1), torch.sin(phase), torch.cos(phase)], dim=-1)
        return self.out(torch.tanh(self.inp(h))).reshape(x_t.shape)


class DigitNet(nn.Module):
    """The ε-model behind the feedback page's picture of ``p_sample_loop``: ε̂ = MLP([x_t, sin(t ω), cos(t ω)]),
    ω_k = 1000^(-k/(K-1)), two SiLU layers. The reference trains it on scikit-learn's 8 x 8 digits
    (grader/pictures/train.py); its weights travel to the worker like EpsNet's."""

    def __init__(self, dim: int = 64, hidden: int = 192, frequencies: int = 8) -> None:
        super().__init__()
        self.frequencies = frequencies
        self.net = nn.Sequential(
            nn.Linear(dim + 2 * frequencies, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, dim),
        )

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        k = torch.arange(self.frequencies, dtype=x_t.dtype, device=x_t.device)
        omega = torch.exp(-math.log(1000.0) * k / (self.frequencies - 1))  # (K,)
        args = t.to(x_t.dtype)[:, None] * omega  # (B, K)
        h = torch.cat([x_t.reshape(x_t.shape[0], -1), torch.sin(args), torch.cos(args)], dim=-1)
        return self.net(h).reshape(x_t.shape)


def _load(model: nn.Module, state: dict[str, torch.Tensor], dtype: torch.dtype) -> nn.Module:
    model = model.to(dtype)
    model.load_state_dict(state, strict=True)
    return model


def with_stale_grads(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        p.grad = torch.full_like(p, STALE_GRAD)
    return model


def parameters_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _eps_net(inputs: dict[str, Any]) -> EpsNet:
    net = EpsNet(inputs["eps_dim"], inputs.get("eps_hidden", 16))
    return _load(net, inputs["eps_state"], inputs["dtype"])  # type: ignore[return-value]


def _dtype(inputs: dict[str, Any]) -> dict[str, Any]:
    if "dtype" in inputs and isinstance(inputs["dtype"], str):
        inputs = {**inputs, "dtype": getattr(torch, inputs["dtype"])}
    return inputs


# ------------------------------------------------------------------------------------------ drivers


def call(module: ModuleType, inputs: dict[str, Any]) -> Any:
    """module.<function>(*args, **kwargs), returned as it is."""
    function = getattr(module, inputs["function"])
    return function(*inputs.get("args", []), **inputs.get("kwargs", {}))


def gaussian_nll(module: ModuleType, inputs: dict[str, Any]) -> dict[str, Any]:
    """The value and the gradients in mean and log_var."""
    mean = inputs["mean"].clone().requires_grad_(True)
    log_var = inputs["log_var"].clone().requires_grad_(True)
    value = module.gaussian_nll(inputs["x"], mean, log_var)
    if not isinstance(value, torch.Tensor) or not value.requires_grad:
        return {"value": value, "grad_mean": None, "grad_log_var": None}
    value.backward()
    return {"value": value, "grad_mean": mean.grad, "grad_log_var": log_var.grad}


def vae_model(module: ModuleType, inputs: dict[str, Any]) -> dict[str, Any]:
    """encode, decode, forward in training mode with eps and without it, forward in eval mode, with given
    weights. torch's generator is seeded before each forward that may draw (DRAW_SEED, EVAL_SEED): the draw
    of eps = randn_like(mu) is then the reference's own, and a model that draws otherwise, or samples in eval
    mode, does so the same way every run, so the grader can recognise it."""
    model: Any = _load(module.VAE(*inputs["dims"]), inputs["state"], inputs["dtype"])
    x, eps, z = inputs["x"], inputs["eps"], inputs["z"]
    with torch.no_grad():
        mu, logvar = model.encode(x)
        decoded = model.decode(z)
        model.train()
        train_out = model(x, eps)
        torch.manual_seed(DRAW_SEED)
        drawn_out = model(x)
        model.eval()
        torch.manual_seed(EVAL_SEED)
        eval_out = model(x)
    return {"encode": (mu, logvar), "decode": decoded, "train": train_out, DRAWN: drawn_out, "eval": eval_out}


def vae_train_step(module: ModuleType, inputs: dict[str, Any]) -> dict[str, Any]:
    """One step from stale gradients, SGD; eps is drawn by the model from torch's seeded generator."""
    model = with_stale_grads(_load(module.VAE(*inputs["dims"]), inputs["state"], inputs["dtype"]))
    model.eval()  # the step must put the model in training mode itself
    optimizer = torch.optim.SGD(model.parameters(), lr=inputs["lr"])
    torch.manual_seed(inputs["seed"])
    result = module.vae_train_step(model, inputs["x"], optimizer, inputs["beta"])
    return {"result": result, "params": parameters_of(model)}


def gan_train_step(module: ModuleType, inputs: dict[str, Any]) -> dict[str, Any]:
    """One D step and one G step from stale gradients, SGD, with given z_d and z_g."""
    noise_dim, hidden, data_dim = inputs["dims"]
    generator = with_stale_grads(
        _load(module.Generator(noise_dim, hidden, data_dim), inputs["g_state"], inputs["dtype"])
    )
    discriminator = with_stale_grads(_load(module.Discriminator(data_dim, hidden), inputs["d_state"], inputs["dtype"]))
    g_opt = torch.optim.SGD(generator.parameters(), lr=inputs["lr"])
    d_opt = torch.optim.SGD(discriminator.parameters(), lr=inputs["lr"])
    result = module.gan_train_step(generator, discriminator, inputs["real"], g_opt, d_opt, inputs["z_d"], inputs["z_g"])
    return {"result": result, "g_params": parameters_of(generator), "d_params": parameters_of(discriminator)}


def with_eps_model(module: ModuleType, inputs: dict[str, Any]) -> Any:
    """module.<function>(EpsNet, *args): p_sample_step and ddpm_loss."""
    model = _eps_net(inputs)
    with torch.no_grad():
        return getattr(module, inputs["function"])(model, *inputs["args"])


def p_sample_loop(module: ModuleType, inputs: dict[str, Any]) -> Any:
    model = _eps_net(inputs)
    generator = torch.Generator().manual_seed(inputs["seed"])
    return module.p_sample_loop(model, tuple(inputs["shape"]), inputs["betas"], generator)


def sample_digits(module: ModuleType, inputs: dict[str, Any]) -> Any:
    """module.p_sample_loop with the trained DigitNet (weights sent) and a seeded generator: the page's samples."""
    model = _load(DigitNet(inputs["dim"], inputs["hidden"]), inputs["state"], torch.float32)
    model.eval()
    generator = torch.Generator().manual_seed(inputs["seed"])
    with torch.no_grad():
        return module.p_sample_loop(model, tuple(inputs["shape"]), inputs["betas"], generator)


def ddpm_train_step(module: ModuleType, inputs: dict[str, Any]) -> dict[str, Any]:
    """One step from stale gradients, SGD; t and noise given, or drawn from torch's seeded generator."""
    model = with_stale_grads(_eps_net(inputs))
    optimizer = torch.optim.SGD(model.parameters(), lr=inputs["lr"])
    torch.manual_seed(inputs["seed"])
    loss = module.ddpm_train_step(model, optimizer, inputs["x_0"], inputs["betas"], inputs["t"], inputs["noise"])
    return {"loss": loss, "params": parameters_of(model)}


# ------------------------------------------------------------------------------------------ timing


def timed_eps_net(dim: int, hidden: int, seed: int) -> EpsNet:
    """The timed step's model before its first step: EpsNet as torch initialises it after ``manual_seed(seed)``
    (the caller's own random state left as it was). The grader builds it to see how far the steps moved it,
    and each side's worker builds it alike, so that its 0.8 M weights never cross the wire."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return EpsNet(dim, hidden)


class SpeedSession:
    """A Denoiser-sized EpsNet, Adam and a batch, built once; ``run(n)`` takes n steps.

    On the CPU the steps run on one torch thread (the process's count is restored after): with
    both cores busy elsewhere, two threads meeting at every parallel region's barrier made the
    rounds of either side 2 to 30 times slower than idle, and by chance unevenly, so that a
    per-sample loop (7x idle) once measured 1.4x; on one thread each round is slowed by load about
    as much as the other side's."""

    def __init__(self, module: ModuleType, inputs: dict[str, Any]) -> None:
        device = torch.device(inputs["device"])
        g = torch.Generator().manual_seed(inputs["seed"])
        dim, batch, T = inputs["dim"], inputs["batch"], inputs["T"]
        self.step = module.ddpm_train_step
        self.model = timed_eps_net(dim, inputs["hidden"], inputs["seed"]).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.betas = inputs["betas"]
        self.x_0 = torch.randn(batch, dim, generator=g).to(device)
        self.t = torch.randint(0, T, (batch,), generator=g).to(device)
        self.noise = torch.randn(batch, dim, generator=g).to(device)
        self.device = device

    def run(self, steps: int) -> None:
        threads = torch.get_num_threads()
        if self.device.type == "cpu":
            torch.set_num_threads(1)
        try:
            for _ in range(steps):
                self.step(self.model, self.optimizer, self.x_0, self.betas, self.t, self.noise)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
        finally:
            torch.set_num_threads(threads)


DRIVERS: dict[str, Callable[[ModuleType, dict[str, Any]], Any]] = {
    "call": call,
    "gaussian_nll": gaussian_nll,
    "vae_model": vae_model,
    "vae_train_step": vae_train_step,
    "gan_train_step": gan_train_step,
    "with_eps_model": with_eps_model,
    "p_sample_loop": p_sample_loop,
    "sample_digits": sample_digits,
    "ddpm_train_step": ddpm_train_step,
}
# The drivers that build an optimizer. A process's first optimizer imports torch._dynamo (about 1 s), which
# ``warm_up`` pays in advance, so that no graded call pays it inside its time limit; a process that will run
# none of these need not pay it at all (tests/test_dependencies.py measures which drivers import it).
TRAINING = frozenset({"vae_train_step", "gan_train_step", "ddpm_train_step"})


def warm_up() -> None:
    """Take one SGD and one Adam step on a tiny EpsNet: the first optimizer a process builds imports
    torch._dynamo (1 to 1.7 s here), which a zygote then pays once for all the workers it forks. The
    tensors are far below torch's parallel grain, so no thread pool is started before the forks. Only a
    process that will run a ``TRAINING`` driver or the timed step needs it."""
    model = EpsNet(2, 4)
    for make in (torch.optim.SGD, torch.optim.Adam):
        warm = make(model.parameters(), lr=0.1)
        model(torch.zeros(1, 2), torch.zeros(1, dtype=torch.int64)).square().mean().backward()
        warm.step()


def run_driver(name: str, module: ModuleType, inputs: dict[str, Any]) -> Any:
    return DRIVERS[name](module, _dtype(inputs))


# ------------------------------------------------------------------------------------- requests


class UnknownOp(ValueError):
    """A request this side does not know."""


class Calls:
    """The requests that call a student's code, for a worker and for the in-kernel checks alike:
    ``run`` a driver, ``speed_setup`` (build the timed step's state and warm up), ``speed_run``, and
    ``speed_params`` (the timed model's parameters, to check that the timed steps trained it)."""

    def __init__(self) -> None:
        self.speed: SpeedSession | None = None

    def perform(self, module: ModuleType | None, request: dict[str, Any]) -> Any:
        op = request.get("op")  # a worker answers run and speed_setup without a module itself
        if op == "run":
            assert module is not None
            return run_driver(request["driver"], module, request["inputs"])
        if op == "speed_setup":
            assert module is not None
            self.speed = SpeedSession(module, request["inputs"])
            self.speed.run(request["inputs"]["warmup"])
            return True
        if op == "speed_run" and self.speed is not None:
            self.speed.run(request["steps"])
            return True
        if op == "speed_params" and self.speed is not None:
            return parameters_of(self.speed.model)
        raise UnknownOp(f"unknown op {op!r}")
