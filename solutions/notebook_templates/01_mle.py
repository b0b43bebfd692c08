# %% [markdown]
# # Part 1: maximum likelihood estimation (20 points)
#
# Given i.i.d. data $x_1, \dots, x_n$ and a model $p(x \mid \theta)$, the **likelihood** of a
# parameter is $L(\theta) = \prod_i p(x_i \mid \theta)$ and the **log-likelihood** is
#
# $$\ell(\theta) = \sum_{i=1}^n \log p(x_i \mid \theta).$$
#
# The maximum likelihood estimate is $\hat\theta = \arg\max_\theta \ell(\theta)$. Logarithms are
# natural throughout, so log-likelihoods are in **nats**. We use the convention $0 \log 0 = 0$:
# `scipy.special.xlogy(a, b)` computes $a \log b$ with it, and `xlog1py(a, b)` computes $a \log(1 + b)$.
#
# Fill in every cell marked `YOUR CODE HERE`, then run the cell below it: it runs a few public
# checks. Your grade comes from many more, hidden, checks of the same functions.
#
# Inputs and outputs are NumPy (Python floats or float64 arrays), except `gaussian_nll`, which is
# PyTorch so that its gradients can be taken.

# %% include="header"

# %% [markdown]
# ## The binomial model
#
# $k_i$ successes out of $n_i$ trials, each a success with probability $p$:
#
# $$\ell(p) = \sum_i \left[\log\binom{n_i}{k_i} + k_i \log p + (n_i - k_i)\log(1 - p)\right].$$
#
# Setting $\ell'(p) = \sum_i k_i / p - (n_i - k_i)/(1-p) = 0$ gives the pooled share of successes,
#
# $$\hat p = \frac{\sum_i k_i}{\sum_i n_i}.$$
#
# With a single `trials` $n$ and several counts, every count had $n$ trials: broadcast before summing.

# %% include="binomial_mle"

# %% [markdown]
# The binomial coefficient does not depend on $p$, so it does not move the maximum, but it *is* part
# of the log-likelihood: leave it out and every value is off by a constant. $\log\binom{n}{k} =
# \log n! - \log k! - \log(n-k)!$ and $\log m! =$ `gammaln(m + 1)`.

# %% include="binomial_log_likelihood"

# %% [markdown]
# ### Looking at a likelihood
#
# A coin lands heads 7 times in 10 tosses. The curve below is $\ell(p)$; its maximum sits at
# $\hat p = 0.7$. Notice how flat it is: 10 tosses say little about $p$. (This cell uses your two
# functions above.)

# %% tags=["demo"]
import matplotlib.pyplot as plt

p_grid = np.linspace(0.01, 0.99, 197)
curve = [binomial_log_likelihood(p, 7, 10) for p in p_grid]
p_hat = binomial_mle(7, 10)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(p_grid, curve, label=r"$\ell(p)$, 7 heads in 10 tosses")
ax.axvline(p_hat, color="C3", linestyle="--", label=rf"$\hat p$ = {p_hat:.2f}")
ax.set_xlabel("p")
ax.set_ylabel("log-likelihood (nats)")
ax.set_ylim(-15, 0)
ax.legend()
plt.show()

# %% [markdown]
# ## Bernoulli
#
# Each $x_i \in \{0, 1\}$ is a single trial: $\ell(p) = \sum_i x_i \log p + (1 - x_i)\log(1-p)$,
# with no binomial coefficient, and $\hat p = \bar x$.

# %% include="bernoulli_mle"

# %% include="bernoulli_log_likelihood"

# %% [markdown]
# ## Gaussian
#
# $$\ell(\mu, \sigma^2) = \sum_i -\tfrac12 \log(2\pi\sigma^2) - \frac{(x_i - \mu)^2}{2\sigma^2},
# \qquad \hat\mu = \frac1n\sum_i x_i, \qquad \hat\sigma^2 = \frac1n\sum_i (x_i - \hat\mu)^2.$$
#
# The MLE of the variance divides by $n$, not $n - 1$; and it is a *variance* $\sigma^2$, not a
# standard deviation.

# %% include="gaussian_mle"

# %% include="gaussian_log_likelihood"

# %% [markdown]
# ### The MLE of the variance is biased
#
# On average $\hat\sigma^2$ is $\frac{n-1}{n}\sigma^2$: with few samples it underestimates the
# spread. The simulation draws many samples of size $n$ from $\mathcal N(0, 1)$ and averages your
# `gaussian_mle`'s variance.

# %% tags=["demo"]
rng = np.random.default_rng(0)
sizes = [2, 3, 5, 10, 20, 50]
average = [np.mean([gaussian_mle(rng.standard_normal(n))[1] for _ in range(2000)]) for n in sizes]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(sizes, average, "o-", label=r"mean of $\hat\sigma^2$ over 2000 samples")
ax.plot(sizes, [(n - 1) / n for n in sizes], "k--", label=r"$(n-1)/n$")
ax.axhline(1.0, color="gray", linewidth=0.8)
ax.set_xscale("log")
ax.set_xlabel("sample size n")
ax.legend()
plt.show()

# %% [markdown]
# ## Poisson
#
# Counts $x_i \in \{0, 1, 2, \dots\}$ with rate $\lambda$:
# $\ell(\lambda) = \sum_i x_i \log\lambda - \lambda - \log x_i!$, and $\hat\lambda = \bar x$.
# Remember the $\log x_i!$ term (`gammaln(x + 1)`).

# %% include="poisson_mle"

# %% include="poisson_log_likelihood"

# %% [markdown]
# ## Categorical data and classifiers
#
# For counts $c_1, \dots, c_K$ of $K$ categories the MLE is $\hat\pi_k = c_k / \sum_j c_j$.
#
# A softmax classifier gives $p(y = k \mid x_i) = \operatorname{softmax}(z_i)_k$ for logits $z_i$;
# its mean negative log-likelihood is
#
# $$\text{NLL} = \frac1n \sum_i \left[\log\sum_k e^{z_{ik}} - z_{i, y_i}\right].$$
#
# $e^{10^4}$ overflows: the log-sum-exp trick subtracts the row maximum first.

# %% include="multinomial_mle"

# %% include="categorical_nll"

# %% [markdown]
# ## A Gaussian likelihood you can differentiate
#
# Neural networks fit likelihoods by gradient descent. With a learned log-variance
# $s = \log\sigma^2$ the per-sample negative log-likelihood is
# $\tfrac12\log 2\pi + \tfrac12 s + (x - \mu)^2 / (2e^{s})$, averaged over the sample. Write it
# with torch operations only, so that `backward()` reaches `mean` and `log_var`.

# %% include="gaussian_nll"
