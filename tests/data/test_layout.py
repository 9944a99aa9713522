"""User arrays in every accepted layout become (N, C, H, W) model images, and back."""

import numpy as np
import pytest
import torch

from gmvae.data.layout import from_images, to_images
from gmvae.errors import DataError

RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    "shape,image_shape",
    [((5, 8, 8), (1, 8, 8)), ((5, 8, 8, 3), (3, 8, 8)), ((5, 64), (1, 1, 64))],
)
def test_layouts_follow_the_number_of_axes_and_round_trip(shape, image_shape):
    x = RNG.random(shape)
    images = to_images(x)
    assert images.shape == (5, *image_shape) and images.dtype == torch.float32
    np.testing.assert_allclose(from_images(images, shape[1:]), x, rtol=1e-6)
    if len(shape) == 4:  # channels-last, pixel by pixel
        assert images[2, 1, 3, 4] == pytest.approx(x[2, 3, 4, 1])


def test_a_known_image_shape_accepts_every_layout_that_holds_it():
    x = RNG.integers(0, 256, (4, 3, 6, 6)).astype(np.uint8)  # channels-first
    expected = torch.from_numpy(x)
    for variant in (x, x.transpose(0, 2, 3, 1), x.reshape(4, -1)):
        got = to_images(variant, (3, 6, 6))
        assert got.dtype == torch.uint8 and torch.equal(got, expected)
    with pytest.raises(DataError, match=r"do not fit the model's images"):
        to_images(RNG.random((4, 5, 5)), (3, 6, 6))


@pytest.mark.parametrize(
    "x,match",
    [
        (np.full((2, 4, 4), 3.0), r"\[3, 3\]"),
        (np.full((2, 4, 4), np.nan), "NaN"),
        (np.zeros((2,)), "shape"),
        (np.array([["a", "b"]]), "numbers"),
    ],
)
def test_bad_arrays_are_refused_with_the_reason(x, match):
    with pytest.raises(DataError, match=match):
        to_images(x)
