"""Fusion of two face images by mixing latent chunks (Takagi & Okadome): an encoder/generator pair
trained as an autoencoder, then with a Wasserstein critic, VGG-19 perceptual, reconstruction and TV
losses; fusing is G(Λ∘E(A) + (1 − Λ)∘E(B)) with one λ per latent chunk.

pipeline: the run's settings (TrainingConfig, one field per setting, from a preset by
`training_config` or the command line), the two pipelines, `run_training(config, load_data(…), vgg,
folder)` and `run_fuse(folder, a, b, lambdas)`, the held-out evaluation and a fusion's L1 table
(`evaluate_fuse`); model: E, G, D and the chunk split / mixing; losses: the loss terms; train:
the networks' config, state, jitted steps, the two-stage loop, checkpoint restore and fusing; data:
the datasets and hold-out splits, step-seeded training batches and the grain loader; presets: named
settings (the default WGAN-GP one, the paper's); figures: the sample and fusion grids and the
feature-map figure (the paper's Fig. 6).
"""

from dfijax.fusion import presets  # noqa: F401
from dfijax.fusion.data import FusionData, load_data  # noqa: F401
from dfijax.fusion.figures import LAMBDAS, fusion_grid, sample_grid  # noqa: F401
from dfijax.fusion.losses import FusionLoss  # noqa: F401
from dfijax.fusion.model import Discriminator, Encoder, Generator, chunk_lambda, chunk_sizes, mix  # noqa: F401
from dfijax.fusion.pipeline import (  # noqa: F401
    FuseConfig,
    FuseResult,
    TrainingConfig,
    TrainingResult,
    check_data,
    describe,
    evaluate,
    evaluate_fuse,
    for_devices,
    logged_records,
    parse_lambda,
    run_fuse,
    run_record,
    run_training,
    training_config,
)
from dfijax.fusion.train import FusionConfig, FusionState, fuse, init_state, restore  # noqa: F401
