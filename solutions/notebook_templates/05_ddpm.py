# %% [markdown]
# # Part 5: denoising diffusion probabilistic models (30 points)
#
# Ho, Jain & Abbeel, *Denoising Diffusion Probabilistic Models* (2020). A fixed **forward process**
# adds a little Gaussian noise at each of $T$ steps, with variances $\beta_0, \dots, \beta_{T-1}$;
# a network learns to undo one step at a time, and sampling runs the learned **reverse process**
# from pure noise.
#
# $$\alpha_t = 1 - \beta_t, \qquad \bar\alpha_t = \prod_{s \le t} \alpha_s, \qquad
#   q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\, x_0,\; (1 - \bar\alpha_t) I\big).$$
#
# Conventions: timesteps are 0-indexed, $t \in [0, T)$, and $\bar\alpha_{-1} = 1$. `t` is an int64
# tensor of shape `(B,)`, **one timestep per sample**. Schedules are float64 tensors of length $T$;
# results keep `x`'s dtype and device. A per-sample coefficient $c[t]$ of shape `(B,)` must be
# reshaped to `(B, 1, ..., 1)` to broadcast over `x`, whatever `x`'s rank: the given helper
# `_gather` does that.

# %% include="header"

# %% include="_gather"

# %% [markdown]
# ## Noise schedules
#
# The linear schedule spaces $\beta_t$ evenly from $10^{-4}$ to $0.02$. The cosine schedule of
# Nichol & Dhariwal (2021) defines $\bar\alpha$ instead, through
# $f(u) = \cos^2\!\big(\tfrac{u/T + s}{1 + s}\cdot\tfrac{\pi}{2}\big)$, and
# $\beta_t = \min\big(1 - f(t+1)/f(t),\ \text{max\_beta}\big)$.

# %% include="linear_beta_schedule"

# %% include="cosine_beta_schedule"

# %% tags=["demo"]
import matplotlib.pyplot as plt

T = 1000
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, betas in (("linear", linear_beta_schedule(T)), ("cosine", cosine_beta_schedule(T))):
    ax.plot(torch.cumprod(1 - betas, dim=0), label=name)
ax.set_xlabel("t")
ax.set_ylabel(r"$\bar\alpha_t$ (signal kept)")
ax.legend()
plt.show()

# %% [markdown]
# The cosine schedule destroys the signal more gently: the linear one has almost nothing left long
# before $t = T$.
#
# ## The forward process in one jump
#
# $$x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \varepsilon, \qquad \varepsilon \sim \mathcal N(0, I).$$
#
# The noise is injected (the argument `noise`), so that a call is deterministic.

# %% include="q_sample"

# %% tags=["demo"]
from sklearn.datasets import load_digits

digits = torch.tensor(load_digits().data / 8.0 - 1.0, dtype=torch.float32)  # (1797, 64) in [-1, 1]
steps = [0, 50, 100, 200, 400, 600, 999]
x_0 = digits[:1].repeat(len(steps), 1)
noise = torch.randn(1, 64, generator=torch.Generator().manual_seed(0)).repeat(len(steps), 1)
x_t = q_sample(x_0, torch.tensor(steps), noise, linear_beta_schedule(T))
fig, axes = plt.subplots(1, len(steps), figsize=(10, 1.8))
for ax, image, t in zip(axes, x_t, steps, strict=True):
    ax.imshow(image.reshape(8, 8), cmap="gray_r")
    ax.set_title(f"t = {t}")
    ax.axis("off")
plt.show()

# %% [markdown]
# ## The reverse process
#
# Given $x_0$, the step back is Gaussian in closed form:
#
# $$q(x_{t-1} \mid x_t, x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I), \qquad
#   \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1 - \bar\alpha_t} x_0
#   + \frac{\sqrt{\alpha_t}\,(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t} x_t, \qquad
#   \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\beta_t.$$
#
# The network predicts the noise $\varepsilon$; from it
# $\hat x_0 = \big(x_t - \sqrt{1 - \bar\alpha_t}\,\hat\varepsilon\big) / \sqrt{\bar\alpha_t}$, and one
# sampling step (Algorithm 2) is
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\,
#   \varepsilon_\theta(x_t, t)\Big) + \sqrt{\tilde\beta_t}\, z, \qquad \text{no noise where } t = 0.$$

# %% include="q_posterior_mean_variance"

# %% include="predict_x0_from_eps"

# %% include="p_sample_step"

# %% include="p_sample_loop"

# %% [markdown]
# ## Training
#
# Algorithm 1 picks a random $t$ per sample, noises $x_0$ with `q_sample` and regresses the noise:
#
# $$L_\text{simple} = \mathbb E_{x_0, t, \varepsilon}\big\|\varepsilon - \varepsilon_\theta(x_t, t)\big\|^2 .$$
#
# The network learns which step it is at through a sinusoidal **timestep embedding**, the one of
# the Transformer: $\text{half} = \text{dim}/2$, frequencies
# $\omega_j = \exp(-\log(10000)\, j / (\text{half} - 1))$, and $[\sin(t\omega), \cos(t\omega)]$.
#
# `ddpm_train_step` is also timed against the reference's step (2 points): no Python loop over the
# samples of a batch.

# %% include="ddpm_loss"

# %% include="timestep_embedding"

# %% include="ddpm_train_step"

# %% [markdown]
# ## The denoiser, and samples
#
# The network is given: an MLP on $x_t$ concatenated with an embedding of $t$. Trained for a few
# thousand steps on the 8 × 8 digits (about half a minute on a laptop's CPU), your sampler should
# draw rough but recognisable digits from pure noise.

# %% include="Denoiser"

# %% tags=["demo"]
torch.manual_seed(0)
betas = linear_beta_schedule(T)
model = Denoiser(input_dim=64)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
losses = [ddpm_train_step(model, optimizer, digits[torch.randint(0, len(digits), (128,))], betas) for _ in range(3000)]
samples = p_sample_loop(model, (16, 64), betas, generator=torch.Generator().manual_seed(0))
fig, axes = plt.subplots(2, 8, figsize=(10, 2.8))
for ax, image in zip(axes.flat, samples.clamp(-1, 1), strict=True):
    ax.imshow(image.reshape(8, 8), cmap="gray_r")
    ax.axis("off")
fig.suptitle("DDPM samples after 3,000 training steps")
plt.show()
print(f"L_simple: {sum(losses[:50]) / 50:.3f} -> {sum(losses[-50:]) / 50:.3f}")
