import pytest

from gmvae.config import LossConfig, TemperatureConfig
from gmvae.errors import ConfigError
from gmvae.training.schedules import gumbel_temperature, linear_warmup


def test_schedule_goes_from_one_to_half_in_fifty_epochs_then_stays():
    cfg = TemperatureConfig()
    assert gumbel_temperature(0, cfg) == pytest.approx(1.0)
    assert gumbel_temperature(25, cfg) == pytest.approx(0.5**0.5)
    assert gumbel_temperature(50, cfg) == pytest.approx(0.5)
    assert gumbel_temperature(120, cfg) == pytest.approx(0.5)
    values = [gumbel_temperature(e / 10, cfg) for e in range(0, 500)]
    assert all(
        a > b for a, b in zip(values, values[1:], strict=False)
    )  # smooth and strictly decreasing


def test_schedule_is_configurable_and_validated():
    cfg = TemperatureConfig(start=2.0, end=0.2, epochs=10)
    assert gumbel_temperature(5, cfg) == pytest.approx(2.0 * 0.1**0.5)
    assert gumbel_temperature(3, TemperatureConfig(epochs=0)) == 0.5
    with pytest.raises(ConfigError, match="temperature.end"):
        TemperatureConfig(end=0.0)


def test_linear_warmup_rises_from_zero_to_one_then_stays():
    assert [linear_warmup(e, 2.0) for e in (0, 0.5, 1.0, 2.0, 7.0)] == [0, 0.25, 0.5, 1, 1]
    assert linear_warmup(0.0, 0.0) == 1.0  # no warm-up: full weight from the first step


def test_pseudo_label_warmup_is_validated():
    with pytest.raises(ConfigError, match="pseudo_label_warmup"):
        LossConfig(pseudo_label_warmup=-1.0)
