# %% [markdown]
# # Part 3: the variational autoencoder (15 points)
#
# Kingma & Welling, *Auto-Encoding Variational Bayes* (2014). A latent variable model
# $p_\theta(x) = \int p_\theta(x \mid z)\, p(z)\, dz$ with $p(z) = \mathcal N(0, I)$ cannot be
# maximised directly: the integral is intractable. An encoder $q_\phi(z \mid x) =
# \mathcal N(\mu, \operatorname{diag} e^{\text{logvar}})$ gives the **evidence lower bound**
#
# $$\log p_\theta(x) \;\ge\; \mathbb E_{q_\phi(z \mid x)}\big[\log p_\theta(x \mid z)\big]
#   - \mathrm{KL}\big(q_\phi(z \mid x) \,\|\, p(z)\big) = \mathrm{ELBO}.$$
#
# With a Bernoulli decoder (means $\hat x \in (0, 1)$) the negative ELBO of a batch is
#
# $$-\mathrm{ELBO} = \underbrace{\sum_{b, i} \mathrm{BCE}(\hat x_{bi}, x_{bi})}_{\text{recon}}
#   + \beta \cdot \underbrace{\sum_b \mathrm{KL}\big(\mathcal N(\mu_b, \operatorname{diag} e^{\text{logvar}_b}) \,\|\, \mathcal N(0, I)\big)}_{\text{kl}}.$$
#
# Shapes: `x` is `(B, D)`, `mu` and `logvar` are `(B, L)`.

# %% include="header"

# %% [markdown]
# ## The reparameterisation trick
#
# Sampling $z \sim \mathcal N(\mu, \sigma^2)$ is not differentiable in $\mu$ and $\sigma$; writing
# $z = \mu + \sigma \odot \varepsilon$ with $\varepsilon \sim \mathcal N(0, I)$ is. Here
# $\sigma = e^{\text{logvar}/2}$: logvar is the log of the **variance**.

# %% include="reparameterize"

# %% [markdown]
# ## The loss
#
# Return `(total, recon, kl)` as 0-d tensors: sums over the batch and the dimensions (not means),
# and `total = recon + beta * kl`.

# %% include="elbo_loss"

# %% [markdown]
# ## The model
#
# The layers are given; write `encode`, `decode` and `forward`. In training mode `forward` samples
# $z$ with the reparameterisation trick; in evaluation mode it uses $z = \mu$.

# %% include="VAE"

# %% include="vae_train_step"

# %% [markdown]
# ## Training on handwritten digits
#
# scikit-learn ships 1,797 digits of 8 × 8 pixels, with intensities 0 to 16; scaled to $[0, 1]$
# they are Bernoulli means a VAE can model. A few hundred steps of your `vae_train_step` take a few
# seconds. The negative ELBO (nats per image) should fall, and the reconstructions should look like
# the inputs.

# %% tags=["demo"]
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = torch.tensor(load_digits().data / 16.0, dtype=torch.float32)  # (1797, 64) in [0, 1]
model = VAE(input_dim=64, hidden_dim=256, latent_dim=8)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
losses = []
for _ in range(600):
    batch = digits[torch.randint(0, len(digits), (128,))]
    losses.append(vae_train_step(model, batch, optimizer)["total_loss"] / len(batch))
model.eval()
with torch.no_grad():
    recon, _, _ = model(digits[:8])
fig, axes = plt.subplots(3, 8, figsize=(10, 4.2))
for column in range(8):
    axes[0, column].imshow(digits[column].reshape(8, 8), cmap="gray_r")
    axes[1, column].imshow(recon[column].reshape(8, 8), cmap="gray_r")
for ax in axes[:2].flat:
    ax.axis("off")
for ax in axes[2]:
    ax.remove()
curve = fig.add_subplot(3, 1, 3)
curve.plot(losses)
curve.set_ylabel("-ELBO (nats/image)")
curve.set_xlabel("step")
fig.suptitle("inputs (top), reconstructions (middle)")
plt.show()
print(f"negative ELBO: {losses[0]:.1f} -> {sum(losses[-50:]) / 50:.1f} nats per image")
