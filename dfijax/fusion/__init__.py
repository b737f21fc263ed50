"""Fusion of two face images by mixing latent chunks (Takagi & Okadome): an encoder/generator pair
trained as an autoencoder, then with a Wasserstein critic, VGG-19 perceptual, reconstruction and TV
losses; fusing is G(Λ∘E(A) + (1 − Λ)∘E(B)) with one λ per latent chunk.

pipeline: the two pipelines, `run_training(training_config(preset, …), load_data(…), vgg, folder)`
and `run_fuse(folder, a, b, lambdas)`, with the held-out evaluation; model: E, G, D and the chunk
split / mixing; losses: the loss terms; train: config, state, jitted steps, the two-stage loop,
checkpoint restore and fusing; data: the datasets and hold-out splits, step-seeded training batches
and the grain loader; presets: named settings (the default WGAN-GP one, the paper's); figures: the
sample and fusion grids and the feature-map figure (the paper's Fig. 6).
"""

from dfijax.fusion import presets  # noqa: F401
from dfijax.fusion.data import FusionData, load_data  # noqa: F401
from dfijax.fusion.figures import LAMBDAS, fusion_grid, sample_grid  # noqa: F401
from dfijax.fusion.losses import FusionLoss  # noqa: F401
from dfijax.fusion.model import Discriminator, Encoder, Generator, chunk_lambda, chunk_sizes, mix  # noqa: F401
from dfijax.fusion.pipeline import (  # noqa: F401
    FuseResult,
    TrainingConfig,
    TrainingResult,
    check_data,
    evaluate,
    logged_records,
    parse_lambda,
    run_fuse,
    run_training,
    training_config,
)
from dfijax.fusion.train import FusionConfig, FusionState, fuse, init_state, restore  # noqa: F401
