"""Fusion of two face images by mixing latent chunks (Takagi & Okadome): an encoder/generator pair
trained as an autoencoder, then with a Wasserstein critic, VGG-19 perceptual, reconstruction and TV
losses; fusing is G(Λ∘E(A) + (1 − Λ)∘E(B)) with one λ per latent chunk.

model: E, G, D and the chunk split / mixing; losses: the loss terms; train: config, state, jitted
steps, the two-stage loop, checkpoint restore and fusing; data: step-seeded training batches and the
hold-out splits; presets: named settings (the default WGAN-GP one, the paper's); figures: the
feature-map figure (the paper's Fig. 6).
"""

from dfijax.fusion.losses import FusionLoss  # noqa: F401
from dfijax.fusion.model import Discriminator, Encoder, Generator, chunk_lambda, chunk_sizes, mix  # noqa: F401
from dfijax.fusion.train import FusionConfig, FusionState, fuse, init_state, restore  # noqa: F401
