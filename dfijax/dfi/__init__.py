"""Deep Feature Interpolation (Upchurch et al. 2016; chainer-dfi): edit specs, neighbour sets,
attribute vectors in VGG feature space, edits by inverting φ(x) + α·w, post-processing, the attribute
probe that scores edits, and the sweep pipeline that ties them together.

Modules: `specs` (edit specs, hand-given attributes), `neighbours`, `vectors` (attribute vectors,
edit targets, the batched edit), `postprocess`, `features` (neighbour-set features and caches),
`probe`, `sweep` (`run_sweep`: neighbours → vectors → solve → post-process → evaluate) with its parts
`sweep_config` (`SweepConfig`), `sweep_inputs` (dataset faces or own photos), `rules` (the neighbour
rules), `solve`, `residuals` (chainer-dfi's corrections) and `finish` (colour match, output formats),
`presets` (the references' settings), `chainer` (chainer-dfi's
residual correction, 8-bit output, neighbour rules and crops), `align` (own photos to the
dataset's face template and back), `landmarks` (the reference's landmark fit and the datasets' 68-landmark
templates), `face_crops` (every face dlib finds, aligned by that fit), `photos` (own photos into a sweep),
`full_photo` (the reference's demo2: the photo at its resolution, the database warped onto it),
`identity` (dlib's face-descriptor distance of each edit), `tradeoff` (attribute gain against identity
drift, with a pixel-blend baseline), `dataset_job` (a whole dataset, sharded over processes and devices,
resumable).
"""

from dfijax.dfi.neighbours import NeighbourError, Neighbours, select_neighbours
from dfijax.dfi.postprocess import apply_at_full_resolution, mask_blend, match_color, subtract_residual
from dfijax.dfi.presets import PRESETS, preset
from dfijax.dfi.specs import parse_attrs, parse_edit
from dfijax.dfi.sweep import SweepResult, run_sweep
from dfijax.dfi.sweep_config import SweepConfig
from dfijax.dfi.sweep_inputs import SweepInputs, dataset_inputs, photo_inputs
from dfijax.dfi.vectors import SCALINGS, attribute_vector, edit, edit_targets, uses_normalized_features

__all__ = [
    "NeighbourError",
    "Neighbours",
    "select_neighbours",
    "apply_at_full_resolution",
    "mask_blend",
    "match_color",
    "subtract_residual",
    "parse_attrs",
    "parse_edit",
    "SweepConfig",
    "SweepInputs",
    "SweepResult",
    "dataset_inputs",
    "photo_inputs",
    "run_sweep",
    "PRESETS",
    "preset",
    "SCALINGS",
    "attribute_vector",
    "edit",
    "edit_targets",
    "uses_normalized_features",
]
