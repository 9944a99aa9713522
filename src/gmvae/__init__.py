"""gmvae: semi-supervised Gaussian-mixture VAE with auxiliary tasks (Arias Figueroa).

The public face: :class:`GMVAEClassifier` (the scikit-learn estimator), :func:`load_model`
(a model file of ``gmvae fit`` or ``GMVAEClassifier.save`` as a ``GMVAE`` and its card),
and the errors a user may catch. The first two are imported on first use, so that
``import gmvae`` (and every ``gmvae.*`` module) stays free of Lightning's import cost.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gmvae.errors import ConfigError, DataError, GMVAEError, TrainingError

if TYPE_CHECKING:
    from gmvae.estimator import GMVAEClassifier
    from gmvae.io.model_file import load_model

__version__ = "0.1.0"
__all__ = [
    "ConfigError",
    "DataError",
    "GMVAEClassifier",
    "GMVAEError",
    "TrainingError",
    "__version__",
    "load_model",
]

_LAZY = {"GMVAEClassifier": "gmvae.estimator", "load_model": "gmvae.io.model_file"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gmvae' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
