"""Domain Transfer Network (Taigman, Polyak, Wolf, "Unsupervised Cross-Domain Image Generation",
2016): G = g ∘ f with a frozen, pretrained f, a 3-class D, and L_G = L_GANG + α L_CONST + β L_TID +
γ L_TV. `model` holds the networks (small digits/faces nets and the paper's faces nets), `networks`
the DTN as one value and G as a function, `losses` the objective and presets, `classifier` f's and the
evaluation classifier's training and the transfer accuracy, `steps` the state and the jitted D/G
steps, `config` a run's settings (`DTNConfig`) and the experiments' (`DigitsConfig`, `FacesConfig`,
with their presets), `train` a run's training on `training.fit` over all devices (`train_dtn`) and
`restore`, `faces` the faces setting (VGG-19 f, net choice, identity keeping), `translator` a trained
run as G(x), and `pipeline` the experiments as library calls (`run_digits`, `run_faces`)."""

from dfijax.dtn.classifier import ClassifierConfig, accuracy, train_classifier, transfer_accuracy
from dfijax.dtn.config import DigitsConfig, DTNConfig, FacesConfig, RunSettings
from dfijax.dtn.fitting import check_images
from dfijax.dtn.losses import PRESETS, DTNWeights, preset
from dfijax.dtn.model import DigitClassifier, Discriminator, Generator, PaperDiscriminator, PaperGenerator
from dfijax.dtn.networks import DTN, apply_net, make_dtn, translate, uses_batch_stats
from dfijax.dtn.steps import DTNState, init_state, make_d_step, make_g_step, make_train_step
from dfijax.dtn.train import dtn_batches, records, restore, train_dtn

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
    "DigitsConfig",
    "FacesConfig",
    "RunSettings",
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
