import chex
import numpy as np
import pytest

from dfijax.data.synthetic_faces import ATTRIBUTES, synthetic_faces


def test_deterministic_attributes_and_images():
    a, b = synthetic_faces(50, seed=3), synthetic_faces(80, seed=3)
    np.testing.assert_array_equal(a.attrs, b.attrs[:50])
    np.testing.assert_array_equal(a.images([7, 2], 40), b.images([7, 2], 40))
    c = synthetic_faces(50, seed=4)
    assert not np.array_equal(a.attrs, c.attrs)
    x = a.images(range(5), 48)
    chex.assert_shape(x, (5, 48, 48, 3))
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    assert a.attr_names == ATTRIBUTES and a.binary and set(np.unique(a.attrs)) == {-1.0, 1.0}
    with pytest.raises(IndexError, match=r"face 50 out of range \(dataset has 50\)"):
        a.load(50, 32)


def test_attribute_statistics_and_constraints():
    d = synthetic_faces(3000)
    col = {n: d.attrs[:, i] > 0 for i, n in enumerate(d.attr_names)}
    hair = np.stack([col[h] for h in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")], 1)
    assert np.all(hair.sum(1) == 1)  # exactly one hair colour
    assert not np.any(col["Beard"] & ~col["Male"])  # beards only on men
    assert 0.4 < col["Smiling"].mean() < 0.6 and 0.1 < col["Eyeglasses"].mean() < 0.3
    assert col["Mouth_Open"][col["Smiling"]].mean() > col["Mouth_Open"][~col["Smiling"]].mean() + 0.2
    assert col["Gray_Hair"][~col["Young"]].mean() > 0.4 and col["Gray_Hair"][col["Young"]].mean() == 0


def test_attributes_are_visible_where_they_should_be():
    """Eyeglasses darken the band between the eyes; Mouth_Open darkens the mouth; averaged over faces."""
    d = synthetic_faces(400)
    x = d.images(range(400), 64)
    col = {n: d.attrs[:, i] > 0 for i, n in enumerate(d.attr_names)}
    bridge = x[:, 28:33, 28:36].mean(axis=(1, 2, 3))  # between the eyes at ~45% height
    assert bridge[col["Eyeglasses"]].mean() < bridge[~col["Eyeglasses"]].mean() - 0.1
    mouth = x[:, 44:50, 26:38].mean(axis=(1, 2, 3))
    assert mouth[col["Mouth_Open"]].mean() < mouth[~col["Mouth_Open"]].mean() - 0.03
