"""Domain Transfer Network (Taigman, Polyak, Wolf, "Unsupervised Cross-Domain Image Generation",
2016): G = g ∘ f with a frozen, pretrained f, a 3-class D, and L_G = L_GANG + α L_CONST + β L_TID +
γ L_TV. `model` holds the networks (small digits/faces nets and the paper's faces nets), `losses` the
objective and presets, `train` the classifiers, the jitted D/G steps, a run's settings (`DTNConfig`),
its training on `training.fit` over all devices (`train_dtn`), `restore` and the transfer-accuracy
evaluation, `faces` the faces setting (VGG-19 f, net choice, identity keeping), and `pipeline` the
experiments as library calls (`run_digits`, `run_faces`)."""

from dfijax.dtn.losses import PRESETS, DTNWeights, preset
from dfijax.dtn.model import DigitClassifier, Discriminator, Generator, PaperDiscriminator, PaperGenerator
from dfijax.dtn.train import (
    DTN,
    ClassifierConfig,
    DTNConfig,
    DTNState,
    accuracy,
    apply_net,
    check_images,
    dtn_batches,
    init_state,
    make_d_step,
    make_dtn,
    make_g_step,
    make_train_step,
    records,
    restore,
    train_classifier,
    train_dtn,
    transfer_accuracy,
    translate,
    uses_batch_stats,
)

__all__ = [
    "PRESETS",
    "DTNWeights",
    "preset",
    "DigitClassifier",
    "Discriminator",
    "Generator",
    "PaperDiscriminator",
    "PaperGenerator",
    "DTN",
    "ClassifierConfig",
    "DTNConfig",
    "DTNState",
    "accuracy",
    "apply_net",
    "check_images",
    "dtn_batches",
    "init_state",
    "make_d_step",
    "make_dtn",
    "make_g_step",
    "make_train_step",
    "records",
    "restore",
    "train_classifier",
    "train_dtn",
    "transfer_accuracy",
    "translate",
    "uses_batch_stats",
]
