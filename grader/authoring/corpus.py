"""Plausible wrong implementations (mutants) and correct-but-different ones (alternates) of every item.

Each entry patches one solution file: ``old`` must occur exactly once in solutions/<part>.py
(``patched`` refuses otherwise, so the corpus cannot rot silently) and is replaced by ``new`` (and
``old2`` by ``new2`` where a change takes two places). A mutant named like an entry of its item's
catalogue of mistakes (grader/checks) implements that mistake: every entry has one, and grading
it must name exactly that entry. ``python -m grader audit`` grades the corpus (grader/audit.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Patch:
    item: str
    name: str
    old: str
    new: str
    old2: str = ""  # a second replacement, for a change in two places (the same rule: occurs exactly once)
    new2: str = ""

    @property
    def part(self) -> str:
        return self.item.split(".")[0]


class StalePatch(ValueError):
    """A patch whose text no longer occurs exactly once in its solution file."""


def patched(patch: Patch, solutions: Path) -> str:
    """The source of solutions/<part>.py with ``patch`` applied."""
    source = (solutions / f"{patch.part}.py").read_text()
    for old, new in [(patch.old, patch.new), (patch.old2, patch.new2)][: 2 if patch.old2 else 1]:
        if source.count(old) != 1:
            raise StalePatch(
                f"{patch.item} / {patch.name}: the patch's old text occurs {source.count(old)} times in "
                f"solutions/{patch.part}.py (it must occur once): update the corpus entry"
            )
        source = source.replace(old, new)
    return source


M = Patch
BERNOULLI_MLE = (
    'the share of ones.  [mle.bernoulli_mle, 1 point]"""\n    ### BEGIN SOLUTION\n    return float(np.mean(x))'
)
POISSON_MLE = (
    'non-negative counts.  [mle.poisson_mle, 1 point]"""\n    ### BEGIN SOLUTION\n    return float(np.mean(x))'
)
BIN_LL = "return float(np.sum(log_choose + xlogy(k, p) + xlog1py(n - k, -p)))"
BER_LL = "return float(np.sum(xlogy(x, p) + xlog1py(1 - x, -p)))"
GAUSS_LL = "return float(np.sum(-0.5 * np.log(2 * np.pi * sigma2) - (x - mu) ** 2 / (2 * sigma2)))"
POIS_LL = "return float(np.sum(xlogy(x, lam) - lam - gammaln(x + 1)))"
CAT = "return float(np.mean(logsumexp(logits, axis=1) - picked))"
NLL = "return (0.5 * math.log(2 * math.pi) + 0.5 * log_var + (x - mean) ** 2 / (2 * torch.exp(log_var))).mean()"

MUTANTS = [
    # ------------------------------------------------------------------ mle
    M("mle.binomial_mle", "mean of ratios", "return float(k.sum() / n.sum())", "return float(np.mean(k / n))"),
    M("mle.binomial_mle", "no broadcast", "return float(k.sum() / n.sum())", "return float(k.sum() / np.sum(trials))"),
    M(
        "mle.binomial_mle",
        "Laplace smoothing",
        "return float(k.sum() / n.sum())",
        "return float((k.sum() + 1) / (n.sum() + 2))",
    ),
    M(
        "mle.binomial_log_likelihood",
        "no coefficient",
        BIN_LL,
        "return float(np.sum(xlogy(k, p) + xlog1py(n - k, -p)))",
    ),
    M(
        "mle.binomial_log_likelihood",
        "naive logs",
        BIN_LL,
        "return float(np.sum(log_choose + k * np.log(p) + (n - k) * np.log(1 - p)))",
    ),
    M("mle.binomial_log_likelihood", "log base 2", BIN_LL, BIN_LL[:-1] + " / np.log(2))"),
    M("mle.bernoulli_mle", "count", BERNOULLI_MLE, BERNOULLI_MLE.replace("np.mean(x)", "np.sum(x)")),
    M("mle.bernoulli_mle", "median", BERNOULLI_MLE, BERNOULLI_MLE.replace("np.mean(x)", "np.median(x)")),
    M("mle.bernoulli_log_likelihood", "swapped", BER_LL, "return float(np.sum(xlogy(1 - x, p) + xlog1py(x, -p)))"),
    M("mle.bernoulli_log_likelihood", "mean", BER_LL, BER_LL.replace("np.sum", "np.mean")),
    M(
        "mle.gaussian_mle",
        "unbiased",
        "return float(mu), float(np.mean((x - mu) ** 2))",
        "return float(mu), float(np.var(x, ddof=1))",
    ),
    M(
        "mle.gaussian_mle",
        "std",
        "return float(mu), float(np.mean((x - mu) ** 2))",
        "return float(mu), float(np.std(x))",
    ),
    M(
        "mle.gaussian_mle",
        "median",
        "return float(mu), float(np.mean((x - mu) ** 2))",
        "return float(np.median(x)), float(np.var(x))",
    ),
    M(
        "mle.gaussian_log_likelihood",
        "sigma2 as std",
        GAUSS_LL,
        GAUSS_LL.replace("2 * np.pi * sigma2", "2 * np.pi * sigma2**2").replace("(2 * sigma2)", "(2 * sigma2**2)"),
    ),
    M(
        "mle.gaussian_log_likelihood",
        "no 2π",
        GAUSS_LL,
        GAUSS_LL.replace("np.log(2 * np.pi * sigma2)", "np.log(sigma2)"),
    ),
    M("mle.gaussian_log_likelihood", "mean", GAUSS_LL, GAUSS_LL.replace("np.sum", "np.mean")),
    M("mle.poisson_mle", "variance", POISSON_MLE, POISSON_MLE.replace("np.mean(x)", "np.var(x)")),
    M("mle.poisson_mle", "median", POISSON_MLE, POISSON_MLE.replace("np.mean(x)", "np.median(x)")),
    M("mle.poisson_log_likelihood", "no factorial", POIS_LL, "return float(np.sum(xlogy(x, lam) - lam))"),
    M(
        "mle.poisson_log_likelihood",
        "naive log",
        POIS_LL,
        "return float(np.sum(x * np.log(lam) - lam - gammaln(x + 1)))",
    ),
    M("mle.poisson_log_likelihood", "log base 2", POIS_LL, POIS_LL[:-1] + " / np.log(2))"),
    M(
        "mle.multinomial_mle",
        "grand total",
        "return counts / counts.sum(axis=-1, keepdims=True)",
        "return counts / counts.sum()",
    ),
    M(
        "mle.multinomial_mle",
        "add-one",
        "return counts / counts.sum(axis=-1, keepdims=True)",
        "return (counts + 1) / (counts + 1).sum(axis=-1, keepdims=True)",
    ),
    M(
        "mle.categorical_nll",
        "naive softmax",
        CAT,
        "return float(np.mean(np.log(np.exp(logits).sum(axis=1)) - picked))",
    ),
    M("mle.categorical_nll", "sum", CAT, CAT.replace("np.mean", "np.sum")),
    M("mle.categorical_nll", "log base 2", CAT, CAT[:-1] + " / np.log(2))"),
    M("mle.gaussian_nll", "log_var as variance", NLL, NLL.replace("torch.exp(log_var)", "log_var")),
    M("mle.gaussian_nll", "sum", NLL, NLL.replace(".mean()", ".sum()")),
    M("mle.gaussian_nll", "no constant", NLL, NLL.replace("0.5 * math.log(2 * math.pi) + ", "")),
    M("mle.gaussian_nll", "detached", NLL, "return torch.tensor(" + NLL[len("return ") :] + ".item())"),
    # ------------------------------------------------------------------ divergences
    M(
        "divergences.entropy",
        "log base 2",
        "return -torch.xlogy(p, p).sum(dim=-1)",
        "return -torch.xlogy(p, p).sum(dim=-1) / math.log(2)",
    ),
    M(
        "divergences.entropy",
        "naive",
        "return -torch.xlogy(p, p).sum(dim=-1)",
        "return -(p * torch.log(p)).sum(dim=-1)",
    ),
    M("divergences.entropy", "all dims", "return -torch.xlogy(p, p).sum(dim=-1)", "return -torch.xlogy(p, p).sum()"),
    M(
        "divergences.cross_entropy",
        "swapped",
        "return -torch.xlogy(p, q).sum(dim=-1)",
        "return -torch.xlogy(q, p).sum(dim=-1)",
    ),
    M(
        "divergences.cross_entropy",
        "naive",
        "return -torch.xlogy(p, q).sum(dim=-1)",
        "return -(p * torch.log(q)).sum(dim=-1)",
    ),
    M(
        "divergences.cross_entropy",
        "log base 2",
        "return -torch.xlogy(p, q).sum(dim=-1)",
        "return -torch.xlogy(p, q).sum(dim=-1) / math.log(2)",
    ),
    M(
        "divergences.kl_divergence",
        "reversed",
        "p, q = torch.broadcast_tensors(p, q)",
        "q, p = torch.broadcast_tensors(p, q)",
    ),
    M(
        "divergences.kl_divergence",
        "naive",
        "terms = torch.where(p > 0, p * (torch.log(p) - torch.log(q)), torch.zeros_like(p))",
        "terms = p * torch.log(p / q)",
    ),
    M(
        "divergences.kl_divergence",
        "log base 2",
        "return terms.sum(dim=-1).clamp_min(0.0)",
        "return terms.sum(dim=-1).clamp_min(0.0) / math.log(2)",
    ),
    M(
        "divergences.gaussian_kl",
        "sigma as variance",
        "return torch.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2) - 0.5",
        "return 0.5 * torch.log(sigma2 / sigma1) + (sigma1 + (mu1 - mu2) ** 2) / (2 * sigma2) - 0.5",
    ),
    M(
        "divergences.gaussian_kl",
        "reversed",
        "return torch.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2) - 0.5",
        "return torch.log(sigma1 / sigma2) + (sigma2**2 + (mu1 - mu2) ** 2) / (2 * sigma1**2) - 0.5",
    ),
    M(
        "divergences.gaussian_kl",
        "no -1/2",
        "return torch.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2) - 0.5",
        "return torch.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2)",
    ),
    M(
        "divergences.kl_to_standard_normal",
        "mean over latent",
        "return -0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).sum(dim=-1)",
        "return -0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).mean(dim=-1)",
    ),
    M(
        "divergences.kl_to_standard_normal",
        "logvar as log std",
        "return -0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).sum(dim=-1)",
        "return -0.5 * (1 + 2 * logvar - mu**2 - torch.exp(2 * logvar)).sum(dim=-1)",
    ),
    M(
        "divergences.kl_to_standard_normal",
        "sign",
        "return -0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).sum(dim=-1)",
        "return 0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).sum(dim=-1)",
    ),
    M(
        "divergences.js_divergence",
        "log base 2",
        "return js.clamp(0.0, math.log(2.0))",
        "return js.clamp(0.0, math.log(2.0)) / math.log(2.0)",
    ),
    M(
        "divergences.js_divergence",
        "symmetrised KL",
        "js = 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)",
        "js = 0.5 * kl_divergence(p, q) + 0.5 * kl_divergence(q, p)",
        "return js.clamp(0.0, math.log(2.0))",
        "return js",
    ),
    M(
        "divergences.js_divergence",
        "no halves",
        "js = 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)",
        "js = kl_divergence(p, m) + kl_divergence(q, m)",
        "return js.clamp(0.0, math.log(2.0))",
        "return js",
    ),
    M(
        "divergences.wasserstein_1d",
        "unsorted",
        "return (torch.sort(x).values - torch.sort(y).values).abs().mean()",
        "return (x - y).abs().mean()",
    ),
    M(
        "divergences.wasserstein_1d",
        "sum",
        "return (torch.sort(x).values - torch.sort(y).values).abs().mean()",
        "return (torch.sort(x).values - torch.sort(y).values).abs().sum()",
    ),
    M(
        "divergences.wasserstein_1d",
        "squared",
        "return (torch.sort(x).values - torch.sort(y).values).abs().mean()",
        "return ((torch.sort(x).values - torch.sort(y).values) ** 2).mean()",
    ),
    # ------------------------------------------------------------------ vae
    M(
        "vae.reparameterize",
        "variance as std",
        "return mu + torch.exp(0.5 * logvar) * eps",
        "return mu + torch.exp(logvar) * eps",
    ),
    M("vae.reparameterize", "logvar as std", "return mu + torch.exp(0.5 * logvar) * eps", "return mu + logvar * eps"),
    M(
        "vae.reparameterize",
        "minus",
        "return mu + torch.exp(0.5 * logvar) * eps",
        "return mu - torch.exp(0.5 * logvar) * eps",
    ),
    M(
        "vae.elbo_loss",
        "mean BCE",
        'recon = F.binary_cross_entropy(recon_x, x, reduction="sum")',
        "recon = F.binary_cross_entropy(recon_x, x)",
    ),
    M(
        "vae.elbo_loss",
        "KL batch mean",
        "kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())",
        "kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / mu.shape[0]",
    ),
    M("vae.elbo_loss", "beta on recon", "return recon + beta * kl, recon, kl", "return beta * recon + kl, recon, kl"),
    M(
        "vae.elbo_loss",
        "KL sign",
        "kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())",
        "kl = 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())",
    ),
    M(
        "vae.VAE",
        "samples in eval",
        "        if self.training:\n            if eps is None:",
        "        if True:\n            if eps is None:",
    ),
    M(
        "vae.VAE",
        "never samples",
        "        if self.training:\n            if eps is None:",
        "        if False:\n            if eps is None:",
    ),
    M("vae.VAE", "heads swapped", "return self.fc_mu(h), self.fc_logvar(h)", "return self.fc_logvar(h), self.fc_mu(h)"),
    M("vae.VAE", "uniform eps", "eps = torch.randn_like(mu)", "eps = torch.rand_like(mu)"),
    M("vae.VAE", "eps of ones", "eps = torch.randn_like(mu)", "eps = torch.ones_like(mu)"),
    M(
        "vae.vae_train_step",
        "no zero_grad",
        "    model.train()\n    optimizer.zero_grad()\n    recon_x",
        "    model.train()\n    recon_x",
    ),
    M(
        "vae.vae_train_step",
        "no train mode",
        "    model.train()\n    optimizer.zero_grad()\n    recon_x",
        "    optimizer.zero_grad()\n    recon_x",
    ),
    M(
        "vae.vae_train_step",
        "beta ignored",
        "total, recon, kl = elbo_loss(recon_x, x, mu, logvar, beta)",
        "total, recon, kl = elbo_loss(recon_x, x, mu, logvar)",
    ),
    # ------------------------------------------------------------------ gan
    M(
        "gan.discriminator_loss",
        "labels swapped",
        "real = F.binary_cross_entropy(real_output, torch.ones_like(real_output))\n"
        "    fake = F.binary_cross_entropy(fake_output, torch.zeros_like(fake_output))",
        "real = F.binary_cross_entropy(real_output, torch.zeros_like(real_output))\n"
        "    fake = F.binary_cross_entropy(fake_output, torch.ones_like(fake_output))",
    ),
    M(
        "gan.discriminator_loss",
        "sum",
        "    real = F.binary_cross_entropy(real_output, torch.ones_like(real_output))\n",
        '    real = F.binary_cross_entropy(real_output, torch.ones_like(real_output), reduction="sum")\n',
        "    fake = F.binary_cross_entropy(fake_output, torch.zeros_like(fake_output))\n    return real + fake",
        '    fake = F.binary_cross_entropy(fake_output, torch.zeros_like(fake_output), reduction="sum")\n    return real + fake',
    ),
    M(
        "gan.discriminator_loss",
        "average of the two",
        "    return real + fake\n    ### END SOLUTION\n\n\ndef generator_loss",
        "    return (real + fake) / 2\n    ### END SOLUTION\n\n\ndef generator_loss",
    ),
    M(
        "gan.generator_loss",
        "minimax",
        "return F.binary_cross_entropy(fake_output, torch.ones_like(fake_output))",
        "return torch.log(1 - fake_output).mean()",
    ),
    M(
        "gan.generator_loss",
        "label 0",
        "return F.binary_cross_entropy(fake_output, torch.ones_like(fake_output))",
        "return F.binary_cross_entropy(fake_output, torch.zeros_like(fake_output))",
    ),
    M(
        "gan.gan_value_function",
        "sign",
        "return torch.log(real_output).mean() + torch.log(1 - fake_output).mean()",
        "return -(torch.log(real_output).mean() + torch.log(1 - fake_output).mean())",
    ),
    M(
        "gan.gan_value_function",
        "log D(G(z))",
        "return torch.log(real_output).mean() + torch.log(1 - fake_output).mean()",
        "return torch.log(real_output).mean() + torch.log(fake_output).mean()",
    ),
    M(
        "gan.optimal_discriminator",
        "swapped",
        "return torch.where(total > 0, p_data / safe, torch.full_like(total, 0.5))",
        "return torch.where(total > 0, p_model / safe, torch.full_like(total, 0.5))",
    ),
    M(
        "gan.optimal_discriminator",
        "0/0",
        "return torch.where(total > 0, p_data / safe, torch.full_like(total, 0.5))",
        "return p_data / total",
    ),
    M(
        "gan.optimal_discriminator",
        "zero where both vanish",
        "return torch.where(total > 0, p_data / safe, torch.full_like(total, 0.5))",
        "return torch.where(total > 0, p_data / safe, torch.zeros_like(total))",
    ),
    M("gan.gan_train_step", "no zero_grad for G", "    g_optimizer.zero_grad()\n    g_loss", "    g_loss"),
    M(
        "gan.gan_train_step",
        "old D",
        "    d_loss.backward()\n    d_optimizer.step()\n\n    g_optimizer.zero_grad()\n"
        "    g_loss = generator_loss(discriminator(generator(z_g)))\n    g_loss.backward()\n    g_optimizer.step()\n",
        "    d_loss.backward()\n    g_optimizer.zero_grad()\n    g_loss = generator_loss(discriminator(generator(z_g)))\n"
        "    g_loss.backward()\n    d_optimizer.step()\n    g_optimizer.step()\n",
    ),
    M("gan.gan_train_step", "no zero_grad for D", "    d_optimizer.zero_grad()\n    real_output", "    real_output"),
    M(
        "gan.gan_train_step",
        "fake_acc threshold",
        '"fake_acc": (fake_output <= 0.5).float().mean().item()',
        '"fake_acc": (fake_output < 0.4).float().mean().item()',
    ),
    # ------------------------------------------------------------------ ddpm
    M(
        "ddpm.linear_beta_schedule",
        "float32",
        "return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)",
        "return torch.linspace(beta_start, beta_end, T)",
    ),
    M(
        "ddpm.linear_beta_schedule",
        "T + 1 points",
        "return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)",
        "return torch.linspace(beta_start, beta_end, T + 1, dtype=torch.float64)[:-1]",
    ),
    M(
        "ddpm.cosine_beta_schedule",
        "no clip",
        "return torch.clamp(1 - f[1:] / f[:-1], max=max_beta)",
        "return 1 - f[1:] / f[:-1]",
    ),
    M(
        "ddpm.cosine_beta_schedule",
        "alpha_bar",
        "return torch.clamp(1 - f[1:] / f[:-1], max=max_beta)",
        "return torch.clamp(1 - f[1:] / f[0], max=max_beta)",
    ),
    M(
        "ddpm.cosine_beta_schedule",
        "no offset",
        "f = torch.cos(((u / T) + s) / (1 + s) * math.pi / 2) ** 2",
        "f = torch.cos((u / T) * math.pi / 2) ** 2",
    ),
    M(
        "ddpm.q_sample",
        "alpha_t",
        "    alpha_bars = torch.cumprod(1 - betas.double(), dim=0)\n    return _gather(alpha_bars.sqrt(), t, x_0) * x_0",
        "    alpha_bars = 1 - betas.double()\n    return _gather(alpha_bars.sqrt(), t, x_0) * x_0",
    ),
    M(
        "ddpm.q_sample",
        "variance as scale",
        "return _gather(alpha_bars.sqrt(), t, x_0) * x_0 + _gather((1 - alpha_bars).sqrt(), t, x_0) * noise",
        "return _gather(alpha_bars, t, x_0) * x_0 + _gather(1 - alpha_bars, t, x_0) * noise",
    ),
    M(
        "ddpm.q_sample",
        "off by one",
        "return _gather(alpha_bars.sqrt(), t, x_0) * x_0 + _gather((1 - alpha_bars).sqrt(), t, x_0) * noise",
        "return _gather(alpha_bars.sqrt(), t - 1, x_0) * x_0 + _gather((1 - alpha_bars).sqrt(), t - 1, x_0) * noise",
    ),
    M(
        "ddpm.q_posterior_mean_variance",
        "wrap at t = 0",
        "    alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])\n    coef_x0",
        "    alpha_bars_prev = torch.roll(alpha_bars, 1)\n    coef_x0",
    ),
    M(
        "ddpm.q_posterior_mean_variance",
        "beta variance",
        "    variance = betas * (1 - alpha_bars_prev) / (1 - alpha_bars)\n    mean =",
        "    variance = betas\n    mean =",
    ),
    M(
        "ddpm.q_posterior_mean_variance",
        "coefficients swapped",
        "mean = _gather(coef_x0, t, x_t) * x_0 + _gather(coef_xt, t, x_t) * x_t",
        "mean = _gather(coef_xt, t, x_t) * x_0 + _gather(coef_x0, t, x_t) * x_t",
    ),
    M(
        "ddpm.predict_x0_from_eps",
        "multiply",
        "return (x_t - _gather((1 - alpha_bars).sqrt(), t, x_t) * eps) / _gather(alpha_bars.sqrt(), t, x_t)",
        "return (x_t - _gather((1 - alpha_bars).sqrt(), t, x_t) * eps) * _gather(alpha_bars.sqrt(), t, x_t)",
    ),
    M(
        "ddpm.predict_x0_from_eps",
        "plus",
        "return (x_t - _gather((1 - alpha_bars).sqrt(), t, x_t) * eps) / _gather(alpha_bars.sqrt(), t, x_t)",
        "return (x_t + _gather((1 - alpha_bars).sqrt(), t, x_t) * eps) / _gather(alpha_bars.sqrt(), t, x_t)",
    ),
    M(
        "ddpm.p_sample_step",
        "beta_t variance",
        "    return mean + nonzero * _gather(variance.sqrt(), t, x_t) * noise",
        "    return mean + nonzero * _gather(betas.sqrt(), t, x_t) * noise",
    ),
    M(
        "ddpm.p_sample_step",
        "no mask",
        "    return mean + nonzero * _gather(variance.sqrt(), t, x_t) * noise",
        "    return mean + _gather(betas.sqrt(), t, x_t) * noise",
    ),
    M(
        "ddpm.p_sample_step",
        "alpha_bar in the mean",
        "mean = (x_t - coef * eps_hat) / _gather(alphas.sqrt(), t, x_t)",
        "mean = (x_t - coef * eps_hat) / _gather(alpha_bars.sqrt(), t, x_t)",
    ),
    M(
        "ddpm.p_sample_step",
        "x0 coefficient",
        "coef = _gather(betas / (1 - alpha_bars).sqrt(), t, x_t)",
        "coef = _gather((1 - alpha_bars).sqrt(), t, x_t)",
    ),
    M(
        "ddpm.p_sample_loop",
        "noise first",
        "    x = torch.randn(shape, generator=generator, device=device)\n    for step",
        "    noise0 = torch.randn(shape, generator=generator, device=device)\n    x = torch.randn(shape, generator=generator, device=device)\n    for step",
    ),
    M(
        "ddpm.p_sample_loop",
        "skips t = T-1",
        "for step in reversed(range(len(betas))):",
        "for step in reversed(range(len(betas) - 1)):",
    ),
    M("ddpm.p_sample_loop", "forwards", "for step in reversed(range(len(betas))):", "for step in range(len(betas)):"),
    M(
        "ddpm.ddpm_loss",
        "x_0 target",
        "return F.mse_loss(model(x_t, t), noise)",
        "return F.mse_loss(model(x_t, t), x_0)",
    ),
    M(
        "ddpm.ddpm_loss",
        "sum",
        "return F.mse_loss(model(x_t, t), noise)",
        'return F.mse_loss(model(x_t, t), noise, reduction="sum")',
    ),
    M(
        "ddpm.ddpm_loss",
        "model on x_0",
        "return F.mse_loss(model(x_t, t), noise)",
        "return F.mse_loss(model(x_0, t), noise)",
    ),
    M(
        "ddpm.timestep_embedding",
        "cos first",
        "return torch.cat([torch.sin(args), torch.cos(args)], dim=-1).float()",
        "return torch.cat([torch.cos(args), torch.sin(args)], dim=-1).float()",
    ),
    M(
        "ddpm.timestep_embedding",
        "divide by half",
        "torch.arange(half, dtype=torch.float64, device=t.device) / (half - 1))",
        "torch.arange(half, dtype=torch.float64, device=t.device) / half)",
    ),
    M(
        "ddpm.timestep_embedding",
        "float64 out",
        "return torch.cat([torch.sin(args), torch.cos(args)], dim=-1).float()",
        "return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)",
    ),
    M(
        "ddpm.ddpm_train_step",
        "no zero_grad",
        "    optimizer.zero_grad()\n    loss = ddpm_loss(model, x_0, t, noise, betas)",
        "    loss = ddpm_loss(model, x_0, t, noise, betas)",
    ),
    M(
        "ddpm.ddpm_train_step",
        "noise before t",
        "    if t is None:\n        t = torch.randint(0, len(betas), (x_0.shape[0],), device=x_0.device)\n"
        "    if noise is None:\n        noise = torch.randn_like(x_0)\n",
        "    if noise is None:\n        noise = torch.randn_like(x_0)\n    if t is None:\n"
        "        t = torch.randint(0, len(betas), (x_0.shape[0],), device=x_0.device)\n",
    ),
    M(
        "ddpm.ddpm_train_step",
        "t from 1",
        "t = torch.randint(0, len(betas), (x_0.shape[0],), device=x_0.device)",
        "t = torch.randint(1, len(betas), (x_0.shape[0],), device=x_0.device)",
    ),
    M(
        "ddpm.ddpm_train_step.speed",
        "per-sample loop",
        "    loss = ddpm_loss(model, x_0, t, noise, betas)\n    loss.backward()",
        "    loss = sum(ddpm_loss(model, x_0[i : i + 1], t[i : i + 1], noise[i : i + 1], betas) for i in range(len(x_0))) / len(x_0)\n"
        "    loss.backward()",
    ),
    M(
        "ddpm.ddpm_train_step.speed",
        "alpha_bar per sample in Python",
        "    alpha_bars = torch.cumprod(1 - betas.double(), dim=0)\n    return _gather(alpha_bars.sqrt(), t, x_0) * x_0",
        "    alpha_bars = torch.ones(len(betas), dtype=torch.float64)\n"
        "    for s in t.tolist():\n        value = 1.0\n        for b in betas[: s + 1]:\n            value *= float(1 - b)\n"
        "        alpha_bars[s] = value\n"
        "    return _gather(alpha_bars.sqrt(), t, x_0) * x_0",
    ),
]

# ------------------------------------------------------------------ each catalogued mistake, and the conventions
# that code from popular public repositories brings (the catalogue names each; tests/test_discrimination.py
# asserts that grading a mutant named like a catalogue entry names exactly that entry)
MUTANTS += [
    M("mle.bernoulli_log_likelihood", "log base 2", BER_LL, BER_LL[:-1] + " / np.log(2))"),
    M(
        "mle.categorical_nll",
        "positive log-likelihood",
        CAT,
        CAT.replace("np.mean(logsumexp(logits, axis=1) - picked)", "np.mean(picked - logsumexp(logits, axis=1))"),
    ),
    M("mle.gaussian_nll", "log_var as log std", NLL, NLL.replace("torch.exp(log_var)", "torch.exp(log_var) ** 2")),
    M("divergences.entropy", "sign", "return -torch.xlogy(p, p).sum(dim=-1)", "return torch.xlogy(p, p).sum(dim=-1)"),
    M("divergences.entropy", "dim 1", "return -torch.xlogy(p, p).sum(dim=-1)", "return -torch.xlogy(p, p).sum(dim=1)"),
    M(
        "divergences.cross_entropy",
        "entropy",
        "return -torch.xlogy(p, q).sum(dim=-1)",
        "return -torch.xlogy(p, p).sum(dim=-1)",
    ),
    M("divergences.kl_divergence", "sign", "return terms.sum(dim=-1).clamp_min(0.0)", "return -terms.sum(dim=-1)"),
    M(
        "divergences.kl_divergence",
        "dim 1",
        "return terms.sum(dim=-1).clamp_min(0.0)",
        "return terms.sum(dim=1).clamp_min(0.0)",
    ),
    M(
        "divergences.kl_to_standard_normal",
        "batch sum",
        "return -0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).sum(dim=-1)",
        "return -0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).sum()",
    ),
    M(
        "divergences.kl_to_standard_normal",
        "dim 1",
        "return -0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).sum(dim=-1)",
        "return -0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).sum(dim=1)",
    ),
    M(
        "divergences.js_divergence",
        "distance",
        "return js.clamp(0.0, math.log(2.0))",
        "return js.clamp(0.0, math.log(2.0)).sqrt()",
    ),
    M(
        "vae.elbo_loss",
        "squared error",
        'recon = F.binary_cross_entropy(recon_x, x, reduction="sum")',
        'recon = F.mse_loss(recon_x, x, reduction="sum")',
    ),
    M(
        "gan.gan_train_step",
        "reused fake batch",
        "    fake_output = discriminator(generator(z_d).detach())",
        "    fake = generator(z_d)\n    fake_output = discriminator(fake.detach())",
        "    g_loss = generator_loss(discriminator(generator(z_g)))",
        "    g_loss = generator_loss(discriminator(fake))",
    ),
    M(
        "ddpm.q_posterior_mean_variance",
        "shifted",
        "    alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])\n    coef_x0",
        "    alpha_bars_prev = F.pad(alpha_bars[:-1], (0, 1), value=1.0)\n    coef_x0",
    ),
    M(
        "ddpm.predict_x0_from_eps",
        "alpha_t",
        "return (x_t - _gather((1 - alpha_bars).sqrt(), t, x_t) * eps) / _gather(alpha_bars.sqrt(), t, x_t)",
        "alphas = 1 - betas.double()\n    return (x_t - _gather((1 - alphas).sqrt(), t, x_t) * eps) / _gather(alphas.sqrt(), t, x_t)",
    ),
    M(
        "ddpm.p_sample_step",
        "clipped x0",
        "mean = (x_t - coef * eps_hat) / _gather(alphas.sqrt(), t, x_t)",
        "x0_hat = predict_x0_from_eps(x_t, t, eps_hat, betas).clamp(-1.0, 1.0)\n"
        "    mean, _ = q_posterior_mean_variance(x0_hat, x_t, t, betas)",
    ),
    M("ddpm.ddpm_loss", "L1", "return F.mse_loss(model(x_t, t), noise)", "return F.l1_loss(model(x_t, t), noise)"),
]

A = Patch
ALTERNATES = [
    A(
        "mle.binomial_log_likelihood",
        "scipy",
        BIN_LL,
        "from scipy import stats\n    return float(stats.binom.logpmf(k, n, p).sum())",
    ),
    A(
        "mle.gaussian_mle",
        "np.var",
        "return float(mu), float(np.mean((x - mu) ** 2))",
        "return float(np.mean(x)), float(np.var(x))",
    ),
    A(
        "mle.poisson_log_likelihood",
        "scipy",
        POIS_LL,
        "from scipy import stats\n    return float(stats.poisson.logpmf(x, lam).sum())",
    ),
    A(
        "mle.categorical_nll",
        "torch",
        CAT,
        "return float(torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(targets).long()))",
    ),
    A(
        "mle.gaussian_nll",
        "torch.distributions",
        NLL,
        "return -torch.distributions.Normal(mean, torch.exp(0.5 * log_var)).log_prob(x).mean()",
    ),
    A(
        "divergences.entropy",
        "Categorical",
        "return -torch.xlogy(p, p).sum(dim=-1)",
        "return torch.distributions.Categorical(probs=p).entropy()",
    ),
    A(
        "divergences.kl_divergence",
        "loop",
        "    p, q = torch.broadcast_tensors(p, q)\n    terms = torch.where(p > 0, p * (torch.log(p) - torch.log(q)), torch.zeros_like(p))\n"
        "    return terms.sum(dim=-1).clamp_min(0.0)",
        "    p, q = torch.broadcast_tensors(p, q)\n    out = torch.zeros(p.shape[:-1], dtype=p.dtype)\n"
        "    for idx in range(p[..., 0].numel()):\n        pi, qi = p.reshape(-1, p.shape[-1])[idx], q.reshape(-1, q.shape[-1])[idx]\n"
        "        total = 0.0\n        for a, b in zip(pi.tolist(), qi.tolist()):\n            if a > 0:\n"
        "                total += math.inf if b == 0 else a * math.log(a / b)\n"
        "        out.view(-1)[idx] = max(total, 0.0)\n    return out",
    ),
    A(
        "divergences.gaussian_kl",
        "torch.distributions",
        "return torch.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2) - 0.5",
        "d = torch.distributions\n    return d.kl_divergence(d.Normal(mu1, sigma1), d.Normal(mu2, sigma2))",
    ),
    A(
        "divergences.kl_to_standard_normal",
        "Independent Normal",
        "return -0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).sum(dim=-1)",
        "d = torch.distributions\n    q = d.Independent(d.Normal(mu, torch.exp(0.5 * logvar)), 1)\n"
        "    return d.kl_divergence(q, d.Independent(d.Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1))",
    ),
    A(
        "divergences.wasserstein_1d",
        "scipy",
        "return (torch.sort(x).values - torch.sort(y).values).abs().mean()",
        "from scipy import stats\n    return torch.tensor(stats.wasserstein_distance(x.double().numpy(), y.double().numpy()), dtype=x.dtype)",
    ),
    A(
        "vae.elbo_loss",
        "written out",
        'recon = F.binary_cross_entropy(recon_x, x, reduction="sum")',
        "recon = -(x * torch.log(recon_x) + (1 - x) * torch.log(1 - recon_x)).sum()",
    ),
    A(
        "ddpm.q_sample",
        "float32 schedule",
        "    alpha_bars = torch.cumprod(1 - betas.double(), dim=0)\n    return _gather(alpha_bars.sqrt(), t, x_0) * x_0",
        "    alpha_bars = torch.cumprod(1 - betas.float(), dim=0)\n    return _gather(alpha_bars.sqrt(), t, x_0) * x_0",
    ),
    A(
        "ddpm.p_sample_step",
        "through x0 and the posterior",
        "    eps_hat = model(x_t, t)\n    coef = _gather(betas / (1 - alpha_bars).sqrt(), t, x_t)\n"
        "    mean = (x_t - coef * eps_hat) / _gather(alphas.sqrt(), t, x_t)",
        "    eps_hat = model(x_t, t)\n    mean, _ = q_posterior_mean_variance(predict_x0_from_eps(x_t, t, eps_hat, betas), x_t, t, betas)",
    ),
    A(
        "ddpm.timestep_embedding",
        "float32 arithmetic",
        "args = t.double()[:, None] * freqs[None, :]",
        "args = t.float()[:, None] * freqs[None, :].float()",
    ),
    A(
        "ddpm.ddpm_loss",
        "by hand",
        "return F.mse_loss(model(x_t, t), noise)",
        "return ((model(x_t, t) - noise) ** 2).mean()",
    ),
    A(
        "mle.binomial_mle",
        "Python sums",
        "return float(k.sum() / n.sum())",
        "return sum(int(v) for v in k.ravel()) / sum(int(v) for v in n.ravel())",
    ),
    A(
        "mle.bernoulli_mle",
        "count_nonzero",
        BERNOULLI_MLE,
        BERNOULLI_MLE.replace("float(np.mean(x))", "np.count_nonzero(x) / len(x)"),
    ),
    A(
        "mle.bernoulli_log_likelihood",
        "scipy",
        BER_LL,
        "from scipy import stats\n    return float(stats.bernoulli.logpmf(x, p).sum())",
    ),
    A(
        "mle.gaussian_log_likelihood",
        "scipy",
        GAUSS_LL,
        "from scipy import stats\n    return float(stats.norm.logpdf(x, mu, np.sqrt(sigma2)).sum())",
    ),
    A(
        "mle.poisson_mle",
        "Python",
        POISSON_MLE,
        POISSON_MLE.replace("float(np.mean(x))", "sum(int(v) for v in x) / len(x)"),
    ),
    A(
        "mle.multinomial_mle",
        "row loop",
        "return counts / counts.sum(axis=-1, keepdims=True)",
        "rows = counts.reshape(-1, counts.shape[-1])\n    out = np.stack([row / row.sum() for row in rows])\n    return out.reshape(counts.shape)",
    ),
    A(
        "divergences.cross_entropy",
        "mask",
        "return -torch.xlogy(p, q).sum(dim=-1)",
        "p, q = torch.broadcast_tensors(p, q)\n    return -torch.where(p > 0, p * torch.log(q), torch.zeros_like(p)).sum(dim=-1)",
    ),
    A(
        "divergences.js_divergence",
        "written out",
        "js = 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)",
        "p, q, m = torch.broadcast_tensors(p, q, m)\n    zero = torch.zeros_like(p)\n"
        "    js = 0.5 * torch.where(p > 0, p * torch.log(p / m), zero).sum(-1) + 0.5 * torch.where(q > 0, q * torch.log(q / m), zero).sum(-1)",
    ),
    A(
        "vae.reparameterize",
        "sqrt of the variance",
        "return mu + torch.exp(0.5 * logvar) * eps",
        "return mu + torch.sqrt(torch.exp(logvar)) * eps",
    ),
    A(
        "vae.VAE",
        "randn of the shape",
        "eps = torch.randn_like(mu)",
        "eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device)",
    ),
    A("vae.VAE", "normal_ in place", "eps = torch.randn_like(mu)", "eps = torch.empty_like(logvar).normal_()"),
    A(
        "vae.VAE",
        "inline sample",
        "            z = reparameterize(mu, logvar, eps)",
        "            z = mu + eps * torch.exp(logvar / 2)",
    ),
    A(
        "vae.vae_train_step",
        "zero_grad keeps tensors",
        "    model.train()\n    optimizer.zero_grad()\n    recon_x",
        "    model.train()\n    optimizer.zero_grad(set_to_none=False)\n    recon_x",
    ),
    A(
        "gan.discriminator_loss",
        "logs",
        "    real = F.binary_cross_entropy(real_output, torch.ones_like(real_output))\n"
        "    fake = F.binary_cross_entropy(fake_output, torch.zeros_like(fake_output))\n    return real + fake",
        "    return -(torch.log(real_output).mean() + torch.log(1 - fake_output).mean())",
    ),
    A(
        "gan.generator_loss",
        "log",
        "return F.binary_cross_entropy(fake_output, torch.ones_like(fake_output))",
        "return -torch.log(fake_output).mean()",
    ),
    A(
        "gan.gan_value_function",
        "minus the D loss",
        "return torch.log(real_output).mean() + torch.log(1 - fake_output).mean()",
        "return -discriminator_loss(real_output, fake_output)",
    ),
    A(
        "gan.optimal_discriminator",
        "nan_to_num",
        "return torch.where(total > 0, p_data / safe, torch.full_like(total, 0.5))",
        "return torch.nan_to_num(p_data / total, nan=0.5)",
    ),
    A(
        "gan.gan_train_step",
        "counts for accuracies",
        '"real_acc": (real_output > 0.5).float().mean().item()',
        '"real_acc": int((real_output > 0.5).sum()) / real_output.numel()',
    ),
    A(
        "ddpm.linear_beta_schedule",
        "numpy",
        "return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)",
        "import numpy as np\n    return torch.from_numpy(np.linspace(beta_start, beta_end, T))",
    ),
    A(
        "ddpm.cosine_beta_schedule",
        "Python loop",
        "    u = torch.arange(T + 1, dtype=torch.float64)\n    f = torch.cos(((u / T) + s) / (1 + s) * math.pi / 2) ** 2\n"
        "    return torch.clamp(1 - f[1:] / f[:-1], max=max_beta)",
        "    def f(u):\n        return math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2\n"
        "    return torch.tensor([min(1 - f(t + 1) / f(t), max_beta) for t in range(T)], dtype=torch.float64)",
    ),
    A(
        "ddpm.q_posterior_mean_variance",
        "F.pad",
        "    alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])\n    coef_x0",
        "    alpha_bars_prev = F.pad(alpha_bars[:-1], (1, 0), value=1.0)\n    coef_x0",
    ),
    A(
        "ddpm.predict_x0_from_eps",
        "reciprocal form",
        "return (x_t - _gather((1 - alpha_bars).sqrt(), t, x_t) * eps) / _gather(alpha_bars.sqrt(), t, x_t)",
        "return _gather((1 / alpha_bars).sqrt(), t, x_t) * x_t - _gather((1 / alpha_bars - 1).sqrt(), t, x_t) * eps",
    ),
    A(
        "ddpm.p_sample_loop",
        "explicit range",
        "for step in reversed(range(len(betas))):",
        "for step in range(len(betas) - 1, -1, -1):",
    ),
    A(
        "ddpm.ddpm_train_step",
        "zero_grad keeps tensors",
        "    optimizer.zero_grad()\n    loss = ddpm_loss(model, x_0, t, noise, betas)",
        "    optimizer.zero_grad(set_to_none=False)\n    loss = ddpm_loss(model, x_0, t, noise, betas)",
    ),
    A(
        "ddpm.ddpm_train_step.speed",
        "float32 schedule",
        "    alpha_bars = torch.cumprod(1 - betas.double(), dim=0)\n    return _gather(alpha_bars.sqrt(), t, x_0) * x_0",
        "    alpha_bars = torch.cumprod(1 - betas.float(), dim=0)\n    return _gather(alpha_bars.sqrt(), t, x_0) * x_0",
    ),
]
