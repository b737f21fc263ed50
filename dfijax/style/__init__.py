"""Style transfer, one package: Gatys et al.'s optimisation (`gatys`, re-exported here: `style.StyleLoss`,
`style.coarse_to_fine`, ...), colour preservation (`color`), video with temporal consistency (`video`,
Ruder et al.) and fast feed-forward stylisation (`fast`, Johnson et al.).

    from dfijax import style
    from dfijax.style import color, fast, video
"""

from dfijax.style.gatys import (
    GATYS_STYLE_LAYERS,
    GATYS_CONTENT_LAYERS,
    NORMALIZATIONS,
    NEURAL_STYLE_STYLE_WEIGHT,
    StyleLoss,
    STYLE_LOSS_PRESETS,
    style_loss_preset,
    style_grams,
    style_targets,
    style_problems,
    stage_shape,
    resize_images,
    upsample,
    StagedResult,
    coarse_to_fine,
)

__all__ = [
    "GATYS_STYLE_LAYERS",
    "GATYS_CONTENT_LAYERS",
    "NORMALIZATIONS",
    "NEURAL_STYLE_STYLE_WEIGHT",
    "StyleLoss",
    "STYLE_LOSS_PRESETS",
    "style_loss_preset",
    "style_grams",
    "style_targets",
    "style_problems",
    "stage_shape",
    "resize_images",
    "upsample",
    "StagedResult",
    "coarse_to_fine",
]
