"""Style transfer, one package: Gatys et al.'s optimisation (`gatys`, re-exported here: `style.StyleLoss`,
`style.coarse_to_fine`, ...), colour preservation (`color`), video with temporal consistency (`video`,
Ruder et al.) and fast feed-forward stylisation (`fast`, Johnson et al.).

The pipelines (no printing; progress through a callback, files are the caller's):

    cfg = style.style_config("quick", preserve_color="luminance")
    result = style.run_style_transfer(cfg, weights, contents, styles)      # -> StyleResult
    vcfg = video.video_config("quick", offsets=(1, 2), preserve_color="luminance")
    clip = video.run_video_style(vcfg, weights, frames, styles)            # -> VideoResult

    from dfijax import style
    from dfijax.style import color, fast, video
"""

from dfijax.style.gatys import (
    GATYS_CONTENT_LAYERS,
    GATYS_STYLE_LAYERS,
    INITS,
    NEURAL_STYLE_STYLE_WEIGHT,
    NORMALIZATIONS,
    STYLE_LOSS_PRESETS,
    STYLE_PRESETS,
    StagedResult,
    StyleConfig,
    StyleLoss,
    StyleResult,
    coarse_to_fine,
    resize_images,
    run_style_transfer,
    stage_shape,
    style_config,
    style_grams,
    style_loss_preset,
    style_problems,
    style_targets,
    upsample,
)
from dfijax.style.video import VIDEO_PRESETS, VideoConfig, VideoResult, run_video_style, video_config

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
    "INITS",
    "STYLE_PRESETS",
    "StyleConfig",
    "StyleResult",
    "style_config",
    "run_style_transfer",
    "VideoConfig",
    "VideoResult",
    "VIDEO_PRESETS",
    "video_config",
    "run_video_style",
]
