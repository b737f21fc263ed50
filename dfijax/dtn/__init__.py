"""Domain Transfer Network (Taigman, Polyak, Wolf, "Unsupervised Cross-Domain Image Generation",
2016): G = g ∘ f with a frozen, pretrained f, a 3-class D, and L_G = L_GANG + α L_CONST + β L_TID +
γ L_TV. `model` holds the networks, `losses` the objective and presets, `train` the classifiers,
the jitted D/G steps, the resumable loop and the transfer-accuracy evaluation."""

from dfijax.dtn.losses import PRESETS, DTNWeights, preset
from dfijax.dtn.model import DigitClassifier, Discriminator, Generator
from dfijax.dtn.train import (DTN, ClassifierConfig, DTNState, accuracy, check_images, init_state, make_d_step,
                              make_dtn, make_g_step, train_classifier, train_dtn, transfer_accuracy, translate)

__all__ = ["PRESETS", "DTNWeights", "preset", "DigitClassifier", "Discriminator", "Generator", "DTN",
           "ClassifierConfig", "DTNState", "accuracy", "check_images", "init_state", "make_d_step", "make_dtn",
           "make_g_step", "train_classifier", "train_dtn", "transfer_accuracy", "translate"]
