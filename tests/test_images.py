"""Image loading never stretches: crop or pad to the asked aspect, short side otherwise."""

import chex
import numpy as np
import pytest
from PIL import Image

from dfijax import images as im


def _stripes(h, w):
    x = np.zeros((h, w, 3), np.uint8)
    x[:, : w // 4] = 255  # a white band on the left quarter
    return x


def test_load_image_crops_to_aspect_instead_of_stretching(tmp_path):
    p = tmp_path / "wide.png"
    Image.fromarray(_stripes(40, 80)).save(p)  # 2:1 wide, white on x < 20
    sq = im.load_image(p, (40, 40))
    chex.assert_shape(sq, (40, 40, 3))
    # the centre 40x40 crop (x in 20..60) holds no white band; a stretch would keep a 10 px one
    assert sq[:, :8].mean() < 0.05 and sq.max() < 0.2
    short = im.load_image(p, 20)
    chex.assert_shape(short, (20, 40, 3))  # int: short side, aspect kept
    padded = im.load_image(p, (40, 40), fit="pad")
    chex.assert_shape(padded, (40, 40, 3))
    np.testing.assert_allclose(padded[0], padded[12], atol=1 / 255)  # edge rows repeated above the photo
    with pytest.raises(ValueError, match="fit must be"):
        im.fit_aspect(np.zeros((4, 4, 3)), 1.0, "stretch")


def test_fit_aspect_shapes():
    x = np.arange(6 * 10 * 3, dtype=np.float32).reshape(6, 10, 3)
    chex.assert_shape(im.fit_aspect(x, 1.0), (6, 6, 3))
    chex.assert_shape(im.fit_aspect(x, 2.0), (6, 3, 3))
    chex.assert_shape(im.fit_aspect(x, 0.5), (5, 10, 3))
    chex.assert_shape(im.fit_aspect(x, 1.0, "pad"), (10, 10, 3))
    np.testing.assert_array_equal(im.fit_aspect(x, 1.0)[:, 0], x[:, 2])  # centred
