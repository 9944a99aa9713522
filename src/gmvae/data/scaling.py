"""Real-valued features mapped onto the [0, 1] the decoder models, with a range learned once.

The decoder ends in a sigmoid (p(x|z) is Bernoulli or a Gaussian mean in [0, 1]), so
inputs must lie in [0, 1]. uint8 images are read as 0..255 and floats already in [0, 1]
are used as they are; any other numbers are scaled by the range of the data given to
``fit``: the global minimum and maximum (``global``, which keeps the relative intensity
of pixels), or each feature's own (``feature``, for tabular columns of unrelated units).
Later data is scaled by the same range and clipped to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gmvae.errors import ConfigError

SCALINGS = ("auto", "global", "feature", "none")


@dataclass(frozen=True)
class InputScaling:
    """x -> clip((x - offset) / scale, 0, 1), per feature of a flattened row or global."""

    offset: np.ndarray  # () or (D,)
    scale: np.ndarray  # same shape, > 0

    @classmethod
    def fit(cls, X: np.ndarray, mode: str = "auto") -> InputScaling | None:
        """The scaling ``mode`` learns from ``X`` (N, ...); None where the values need none.

        ``auto``: none for uint8 or values already in [0, 1], else ``global``;
        ``none``: never scale (values outside [0, 1] are then refused).
        """
        if mode not in SCALINGS:
            raise ConfigError(
                f"scaling={mode!r} is not allowed; choose one of {', '.join(SCALINGS)}"
            )
        if mode == "none" or X.dtype == np.uint8:
            return None
        rows = X.reshape(len(X), -1)
        if mode == "auto":
            if rows.min() >= 0 and rows.max() <= 1:
                return None
            mode = "global"
        axis = None if mode == "global" else 0
        low = np.asarray(rows.min(axis=axis), dtype=np.float64)
        span = np.asarray(rows.max(axis=axis), dtype=np.float64) - low
        return cls(low, np.where(span > 0, span, 1.0))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``X`` (N, ...) as float32 in [0, 1], its shape kept."""
        rows = X.reshape(len(X), -1).astype(np.float64)
        return (
            np.clip((rows - self.offset) / self.scale, 0.0, 1.0).astype(np.float32).reshape(X.shape)
        )

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Values in [0, 1] back in the units of the data given to ``fit``."""
        rows = X.reshape(len(X), -1).astype(np.float64)
        return (rows * self.scale + self.offset).reshape(X.shape)

    def to_json(self) -> dict[str, list[float] | float]:
        return {"offset": self.offset.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_json(cls, data: dict | None) -> InputScaling | None:
        if not data:
            return None
        return cls(
            np.asarray(data["offset"], dtype=np.float64),
            np.asarray(data["scale"], dtype=np.float64),
        )
