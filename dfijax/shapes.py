"""Array shape annotations (jaxtyping) for the engine's public functions.

They document the shapes the docstrings state and can be checked at runtime with
`jaxtyping.jaxtyped(typechecker=beartype.beartype)(fn)` (the tests do).
"""

from __future__ import annotations

from jaxtyping import Array, Float

Scalar = Float[Array, ""]
Image = Float[Array, "H W 3"]  # RGB in [0, 1]
Images = Float[Array, "B H W 3"]  # a batch of RGB images in [0, 1]
FeatureMap = Float[Array, "h w C"]
GramMatrix = Float[Array, "C C"]
Vector = Float[Array, "D"]
