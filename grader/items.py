"""The graded items of the assignment contract (shared/SPEC.md): id and points, 38 items, 100 points."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    id: str  # "<module>.<function>" (or "ddpm.ddpm_train_step.speed")
    points: int

    @property
    def module(self) -> str:
        return self.id.split(".")[0]

    @property
    def function(self) -> str:
        return self.id.split(".")[1]


ITEMS: tuple[Item, ...] = tuple(
    Item(item_id, points)
    for item_id, points in [
        ("mle.binomial_mle", 2),
        ("mle.binomial_log_likelihood", 3),
        ("mle.bernoulli_mle", 1),
        ("mle.bernoulli_log_likelihood", 1),
        ("mle.gaussian_mle", 3),
        ("mle.gaussian_log_likelihood", 2),
        ("mle.poisson_mle", 1),
        ("mle.poisson_log_likelihood", 2),
        ("mle.multinomial_mle", 1),
        ("mle.categorical_nll", 2),
        ("mle.gaussian_nll", 2),
        ("divergences.entropy", 2),
        ("divergences.cross_entropy", 2),
        ("divergences.kl_divergence", 4),
        ("divergences.gaussian_kl", 4),
        ("divergences.kl_to_standard_normal", 3),
        ("divergences.js_divergence", 3),
        ("divergences.wasserstein_1d", 2),
        ("vae.reparameterize", 2),
        ("vae.elbo_loss", 5),
        ("vae.VAE", 4),
        ("vae.vae_train_step", 4),
        ("gan.discriminator_loss", 4),
        ("gan.generator_loss", 2),
        ("gan.gan_value_function", 1),
        ("gan.optimal_discriminator", 2),
        ("gan.gan_train_step", 6),
        ("ddpm.linear_beta_schedule", 2),
        ("ddpm.cosine_beta_schedule", 2),
        ("ddpm.q_sample", 4),
        ("ddpm.q_posterior_mean_variance", 4),
        ("ddpm.predict_x0_from_eps", 1),
        ("ddpm.p_sample_step", 5),
        ("ddpm.p_sample_loop", 2),
        ("ddpm.ddpm_loss", 3),
        ("ddpm.timestep_embedding", 2),
        ("ddpm.ddpm_train_step", 3),
        ("ddpm.ddpm_train_step.speed", 2),
    ]
)

BY_ID = {item.id: item for item in ITEMS}
SPEED_ITEM = "ddpm.ddpm_train_step.speed"  # timed, not compared: graded by grader/timing.py
MAX_SCORE = sum(item.points for item in ITEMS)
