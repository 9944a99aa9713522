"""Schedules over fractional epochs: the Gumbel-Softmax temperature (paper 5.2: smoothly
from 1 to 0.5 in 50 epochs) and the warm-up of the k-NN-labeled terms.

Both are derived from the epoch alone, so a resumed run continues them exactly.
"""

from __future__ import annotations

from gmvae.config import TemperatureConfig


def gumbel_temperature(epoch: float, config: TemperatureConfig) -> float:
    """Geometric interpolation start -> end over ``config.epochs`` (fractional epochs), then end."""
    if config.epochs <= 0 or epoch >= config.epochs:
        return config.end
    progress = max(epoch, 0.0) / config.epochs
    return config.start * (config.end / config.start) ** progress


def linear_warmup(epoch: float, epochs: float) -> float:
    """0 -> 1 linearly over the first ``epochs`` (fractional) epochs, then 1; 1 when epochs is 0."""
    if epochs <= 0 or epoch >= epochs:
        return 1.0
    return max(epoch, 0.0) / epochs
