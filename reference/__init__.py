"""The ground truth of the course: the MLE/KL math and the VAE, GAN and DDPM models.

One module per part of the assignment contract (``CONTRACT.md``): ``mle``,
``divergences``, ``vae``, ``gan`` and ``ddpm``; ``data`` loads the bundled digits
and MNIST-format (IDX) files and ``train`` runs the reference models on them.
Nothing here imports the grader, the exercises or the solutions.
"""
