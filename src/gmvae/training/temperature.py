"""The Gumbel-Softmax temperature schedule (paper 5.2: smoothly from 1 to 0.5 in 50 epochs)."""

from __future__ import annotations

from gmvae.config import TemperatureConfig


def gumbel_temperature(epoch: float, config: TemperatureConfig) -> float:
    """Geometric interpolation start -> end over ``config.epochs`` (fractional epochs), then end.

    Derived from the epoch alone, so a resumed run continues the schedule exactly.
    """
    if config.epochs <= 0 or epoch >= config.epochs:
        return config.end
    progress = max(epoch, 0.0) / config.epochs
    return config.start * (config.end / config.start) ** progress
