# %% [markdown]
# # Part 4: generative adversarial networks (15 points)
#
# Goodfellow et al., *Generative Adversarial Nets* (2014). A generator $G$ maps noise
# $z \sim \mathcal N(0, I)$ to samples; a discriminator $D(x) \in (0, 1)$ is the probability that
# $x$ is real. They play the minimax game
#
# $$\min_G \max_D \; V(D, G) = \mathbb E_{x \sim p_\text{data}}[\log D(x)]
#   + \mathbb E_{z}[\log(1 - D(G(z)))].$$
#
# In practice $D$ minimises binary cross-entropy with label 1 for real and 0 for fake samples,
# and $G$ minimises the **non-saturating** loss $-\mathbb E_z[\log D(G(z))]$. All functions take
# and return torch tensors; discriminator outputs have shape `(B, 1)`.
#
# The networks are given, complete; run their cells.

# %% include="header"

# %% include="Generator"

# %% include="Discriminator"

# %% [markdown]
# ## The losses
#
# $$\mathcal L_D = -\frac1B\sum_b \log D(x_b) - \frac1B\sum_b \log\big(1 - D(G(z_b))\big),
# \qquad \mathcal L_G = -\frac1B\sum_b \log D(G(z_b)).$$
#
# The minimax form $\log(1 - D(G(z)))$ for the generator saturates: when $D$ confidently rejects
# the fakes (early in training) its gradient vanishes.

# %% include="discriminator_loss"

# %% include="generator_loss"

# %% include="gan_value_function"

# %% [markdown]
# ## The optimal discriminator
#
# For a fixed generator with density $p_g$, $V$ is maximised pointwise by
#
# $$D^*(x) = \frac{p_\text{data}(x)}{p_\text{data}(x) + p_g(x)},$$
#
# and at $D^*$ the game's value is $2\,\mathrm{JS}(p_\text{data}, p_g) - \log 4$: the generator
# minimises a Jensen-Shannon divergence. Where both densities are 0, take $D^* = 1/2$.

# %% include="optimal_discriminator"

# %% tags=["demo"]
import math

import matplotlib.pyplot as plt

x = torch.linspace(-5, 7, 400, dtype=torch.float64)


def normal_pdf(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


p_data = normal_pdf(x, 0.0, 1.0)
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(x, p_data, "k", label="p_data = N(0, 1)")
for mean in (3.0, 1.0, 0.0):
    ax.plot(x, optimal_discriminator(p_data, normal_pdf(x, mean, 1.0)), label=f"D* against p_g = N({mean:g}, 1)")
ax.axhline(0.5, color="gray", linestyle=":")
ax.set_xlabel("x")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# When $p_g = p_\text{data}$ the best discriminator can only answer $1/2$ everywhere.
#
# ## One training step
#
# First the discriminator (on $G(z_d)$ **detached**, so that its loss does not train $G$), then the
# generator against the *updated* discriminator.

# %% include="gan_train_step"

# %% [markdown]
# ## Training on handwritten digits
#
# The 8 × 8 digits of scikit-learn, scaled to $[-1, 1]$ to match the generator's tanh. A GAN's
# losses do not go down steadily (two players trade blows); look at the samples instead.

# %% tags=["demo"]
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = torch.tensor(load_digits().data / 8.0 - 1.0, dtype=torch.float32)  # (1797, 64) in [-1, 1]
G = Generator(noise_dim=16, hidden_dim=128, output_dim=64)
D = Discriminator(input_dim=64, hidden_dim=128)
g_opt = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
d_opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
history = []
for _ in range(2000):
    history.append(gan_train_step(G, D, digits[torch.randint(0, len(digits), (64,))], g_opt, d_opt))
with torch.no_grad():
    samples = G(torch.randn(16, 16))
fig, axes = plt.subplots(2, 8, figsize=(10, 2.8))
for ax, image in zip(axes.flat, samples, strict=True):
    ax.imshow(image.reshape(8, 8), cmap="gray_r")
    ax.axis("off")
fig.suptitle("generated digits after 2,000 steps")
plt.show()
real_acc = sum(h["real_acc"] for h in history[-100:]) / 100
fake_acc = sum(h["fake_acc"] for h in history[-100:]) / 100
print(f"last 100 steps: D accuracy on real {real_acc:.2f}, on fake {fake_acc:.2f}")
