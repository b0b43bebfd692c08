# %% [markdown]
# # Part 2: entropy and divergences (20 points)
#
# Training a generative model means making a model distribution $q$ close to the data's $p$.
# *Close* is measured by a divergence, and each choice (KL, reverse KL, Jensen-Shannon,
# Wasserstein) gives a different model: maximum likelihood minimises $\mathrm{KL}(p \,\|\, q)$,
# the original GAN a Jensen-Shannon divergence, a VAE's regulariser is a KL to $\mathcal N(0, I)$.
#
# Discrete distributions lie along the **last** dimension: `p` and `q` have shape `(..., K)`,
# are non-negative and sum to 1 there; results have the leading shape `(...)` and keep the inputs'
# dtype and device. Everything is in nats and in PyTorch.
#
# Conventions: a term with $p_k = 0$ contributes 0 ($0 \log 0 = 0$, `torch.xlogy`); a divergence
# that is infinite returns `inf`, never `nan`.

# %% include="header"

# %% [markdown]
# ## Entropy and cross-entropy
#
# $$H(p) = -\sum_k p_k \log p_k, \qquad H(p, q) = -\sum_k p_k \log q_k.$$
#
# $H(p)$ is the average surprise of a sample from $p$; $H(p, q)$ the average surprise when we
# expect $q$ but draw from $p$. The uniform distribution on $K$ outcomes has the largest entropy,
# $\log K$.

# %% include="entropy"

# %% include="cross_entropy"

# %% [markdown]
# ## Kullback-Leibler divergence
#
# $$\mathrm{KL}(p \,\|\, q) = \sum_k p_k \log\frac{p_k}{q_k} = H(p, q) - H(p) \;\ge\; 0,$$
#
# zero exactly when $p = q$, infinite when $q$ puts no mass where $p$ does. It is **not
# symmetric**: the weights are $p$'s.

# %% include="kl_divergence"

# %% [markdown]
# ### KL's asymmetry: mean-seeking and mode-seeking
#
# Let $p$ be a mixture of two bumps and $q_m$ a single Gaussian bump at $m$. Fitting $q$ by the
# forward $\mathrm{KL}(p \,\|\, q_m)$ (maximum likelihood) must cover both bumps, so it prefers
# $m$ between them; the reverse $\mathrm{KL}(q_m \,\|\, p)$ punishes mass where $p$ has none, so it
# prefers sitting on one bump. (This cell uses your `kl_divergence`.)

# %% tags=["demo"]
import matplotlib.pyplot as plt

grid = torch.linspace(-6, 6, 601, dtype=torch.float64)


def bump(center: float, width: float) -> torch.Tensor:
    density = torch.exp(-0.5 * ((grid - center) / width) ** 2)
    return density / density.sum()


p = 0.5 * bump(-2.0, 0.6) + 0.5 * bump(2.0, 0.6)
centers = torch.linspace(-4, 4, 81)
forward = [kl_divergence(p, bump(float(m), 1.0)).item() for m in centers]
reverse = [kl_divergence(bump(float(m), 1.0), p).item() for m in centers]
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.5))
left.plot(grid, p, label="p: two bumps")
left.plot(grid, bump(0.0, 1.0), label="q at m = 0")
left.plot(grid, bump(2.0, 1.0), label="q at m = 2")
left.legend()
right.plot(centers, forward, label="KL(p ‖ q_m): forward, mean-seeking")
right.plot(centers, reverse, label="KL(q_m ‖ p): reverse, mode-seeking")
right.set_xlabel("centre m of q")
right.set_ylabel("nats")
right.set_ylim(0, 6)
right.legend()
plt.show()

# %% [markdown]
# ## Gaussians in closed form
#
# For one-dimensional Gaussians, with standard deviations $\sigma_1, \sigma_2$:
#
# $$\mathrm{KL}\big(\mathcal N(\mu_1, \sigma_1^2) \,\|\, \mathcal N(\mu_2, \sigma_2^2)\big)
#   = \log\frac{\sigma_2}{\sigma_1} + \frac{\sigma_1^2 + (\mu_1 - \mu_2)^2}{2\sigma_2^2} - \frac12.$$
#
# A VAE's encoder gives a diagonal Gaussian through its mean and **log-variance**; its KL to the
# standard normal, summed over the $L$ latent dimensions, is
#
# $$\mathrm{KL}\big(\mathcal N(\mu, \operatorname{diag} e^{\text{logvar}}) \,\|\, \mathcal N(0, I)\big)
#   = -\tfrac12 \sum_{l=1}^{L} \left(1 + \text{logvar}_l - \mu_l^2 - e^{\text{logvar}_l}\right).$$

# %% include="gaussian_kl"

# %% include="kl_to_standard_normal"

# %% [markdown]
# ## Jensen-Shannon and Wasserstein
#
# $$\mathrm{JS}(p, q) = \tfrac12\mathrm{KL}(p \,\|\, m) + \tfrac12\mathrm{KL}(q \,\|\, m), \qquad m = \tfrac12(p + q),$$
#
# is symmetric and always finite, at most $\log 2 \approx 0.693$ nats. The Wasserstein-1 distance
# of two equally sized 1-D samples pairs them in sorted order:
# $W_1 = \frac1n\sum_i |x_{(i)} - y_{(i)}|$.

# %% include="js_divergence"

# %% include="wasserstein_1d"

# %% [markdown]
# ### Why WGANs use Wasserstein
#
# Slide a narrow distribution away from another. Once they stop overlapping, the JS divergence is
# stuck at $\log 2$: it no longer says *how far* apart they are, and its gradient vanishes. $W_1$
# keeps growing with the distance.

# %% tags=["demo"]
shifts = torch.linspace(0, 6, 61, dtype=torch.float64)
base = bump(-3.0, 0.3)
js = [js_divergence(base, bump(-3.0 + float(s), 0.3)).item() for s in shifts]
sample = torch.randn(2000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.3
w1 = [wasserstein_1d(sample, sample + s).item() for s in shifts]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(shifts, js, label="JS (nats)")
ax.axhline(math.log(2), color="gray", linestyle=":", label="log 2")
ax.plot(shifts, w1, label="W₁")
ax.set_xlabel("shift")
ax.legend()
plt.show()
