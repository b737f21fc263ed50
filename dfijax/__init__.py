"""dfijax: editing images through the features of a pretrained CNN, in JAX."""

import warnings as _warnings

# jaxopt announces on import that it is unmaintained; we know (optax is the second solver backend).
# Only that one warning is silenced.
_warnings.filterwarnings("ignore", message=r"JAXopt is no longer maintained", category=DeprecationWarning)

__version__ = "0.1.0"
