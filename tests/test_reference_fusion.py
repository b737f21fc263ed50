"""The fusion GAN's pixel losses against a numpy transcription of Takagi & Okadome's equations.

`paper.md eq. (n)` cites seeds/fusion_gan_paper.md, the paper's text: eq. (7) the reconstruction loss
with R(I), eq. (8) φ, eq. (9) L_TV, eq. (10) the autoencoder's L1, section 4.3 the weights w1…w5.
"sum" is the equations as printed; "mean" the project's per-element reading of the same terms.
Nothing here computes an expected value with dfijax.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dfijax import fusion
from dfijax.fusion import losses as fl
from dfijax.fusion import presets


def np_l1(x, y, reduction):
    """‖x − y‖₁ (paper.md eqs. (7), (10)); "mean" divides by the element count."""
    d = np.abs(x.astype(np.float64) - y.astype(np.float64))
    return d.sum() if reduction == "sum" else d.sum() / d.size


def np_phi(x, reduction):
    """paper.md eq. (8): φ(X) = Σ_{i,j} ((x_{i,j+1} − x_{i,j})² + (x_{i+1,j} − x_{i,j})²), channels summed,
    over the (i, j) where both neighbours exist; "mean": each squared difference averaged over its entries."""
    x = x.astype(np.float64)
    h, w, c = x.shape
    if reduction == "sum":
        total = 0.0
        for i in range(h - 1):
            for j in range(w - 1):
                total += np.sum((x[i, j + 1] - x[i, j]) ** 2 + (x[i + 1, j] - x[i, j]) ** 2)
        return total
    across = sum(np.sum((x[i, j + 1] - x[i, j]) ** 2) for i in range(h) for j in range(w - 1)) / (h * (w - 1) * c)
    down = sum(np.sum((x[i + 1, j] - x[i, j]) ** 2) for i in range(h - 1) for j in range(w)) / ((h - 1) * w * c)
    return across + down


def np_recon(a, a_rec, b, b_rec, c, lam, reduction):
    """paper.md eq. (7): L_R = ‖A' − A‖₁ + ‖B' − B‖₁ + R(I), R = ‖C − A‖₁ if Λ = 1, ‖C − B‖₁ if Λ = 0, else 0."""
    if np.all(lam == 1):
        r = np_l1(c, a, reduction)  # R(A), Λ = 1
    elif np.all(lam == 0):
        r = np_l1(c, b, reduction)  # R(B), Λ = 0
    else:
        r = 0.0  # Λ ≠ 1 ∩ Λ ≠ 0
    return np_l1(a_rec, a, reduction) + np_l1(b_rec, b, reduction) + r


def np_tv(c, a_rec, b_rec, reduction):
    """paper.md eq. (9): L_TV = φ(C) + φ(A') + φ(B')."""
    return np_phi(c, reduction) + np_phi(a_rec, reduction) + np_phi(b_rec, reduction)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_pixel_losses_equal_the_papers_equations(reduction):
    """A batch of 3 pairs at 16×20 px in [-1, 1] (the paper's pixel range, section 4.2), Λ all ones, all
    zeros and mixed (per chunk, 4×4×10): eqs. (7), (9), (10) per pair and their batch means."""
    rng = np.random.default_rng(0)
    a, a_rec, b, b_rec, c = (rng.uniform(-1, 1, (3, 16, 20, 3)).astype(np.float32) for _ in range(5))
    lam = np.stack(
        [
            np.ones((4, 4, 10)),
            np.zeros((4, 4, 10)),
            np.repeat([1.0, 0, 1, 0, 1], 2)[None, None].repeat(4, 0).repeat(4, 1),
        ]
    )
    lam = lam.astype(np.float32)

    rec = jax.vmap(lambda *v: fl.reconstruction(*v, reduction=reduction))(a, a_rec, b, b_rec, c, lam)
    tv = jax.vmap(lambda *v: fl.total_variation(*v, reduction=reduction))(c, a_rec, b_rec)
    ae = jax.vmap(lambda r, y: fl.l1(r, y, reduction))(a_rec, a)
    exp_rec = [np_recon(a[k], a_rec[k], b[k], b_rec[k], c[k], lam[k], reduction) for k in range(3)]
    exp_tv = [np_tv(c[k], a_rec[k], b_rec[k], reduction) for k in range(3)]
    exp_ae = [np_l1(a_rec[k], a[k], reduction) for k in range(3)]  # paper.md eq. (10): ‖G(E(A)) − A‖₁
    np.testing.assert_allclose(rec, exp_rec, rtol=1e-5)
    np.testing.assert_allclose(tv, exp_tv, rtol=1e-5)
    np.testing.assert_allclose(ae, exp_ae, rtol=1e-5)
    # R(I) is there for Λ = 1 and Λ = 0 only
    assert exp_rec[0] > exp_rec[2] and exp_rec[1] > exp_rec[2]
    # the sums are the means times the element counts (L1) — the two readings differ in scale only
    if reduction == "sum":
        np.testing.assert_allclose(ae, [np_l1(a_rec[k], a[k], "mean") * a[k].size for k in range(3)], rtol=1e-5)
    # gradients of the batch-mean terms w.r.t. the fused image C: d/dC Σ|C − A| = sign(C − A) (Λ = 1 pair)
    g = jax.grad(
        lambda cc: jnp.mean(
            jax.vmap(lambda *v: fl.reconstruction(*v, reduction=reduction))(a, a_rec, b, b_rec, cc, lam)
        )
    )(jnp.asarray(c))
    scale = 1.0 if reduction == "sum" else 1.0 / a[0].size
    np.testing.assert_allclose(g[0], np.sign(c[0] - a[0]) * scale / 3, rtol=1e-6)
    np.testing.assert_allclose(g[1], np.sign(c[1] - b[1]) * scale / 3, rtol=1e-6)
    np.testing.assert_allclose(g[2], 0.0, atol=0)


def test_presets_pick_the_reduction_and_the_printed_weights():
    """`paper` sums the pixel losses as eqs. (7)–(10) print them, with w1…w5 of section 4.3
    (paper.md: w1 = 1, w2 = 1e-6, w3 = 5e-5, w4 = 30, w5 = 1); paper_gp and cpu_small keep means."""
    paper = fusion.training_config("paper", devices=1).fusion.loss
    assert paper.pixel_reduction == "sum"
    assert (paper.w_adv, paper.w_content, paper.w_style, paper.w_recon, paper.w_tv) == (1.0, 1e-6, 5e-5, 30.0, 1.0)
    for name in ("paper_gp", "cpu_small"):
        assert fusion.training_config(name, devices=1).fusion.loss.pixel_reduction == "mean"
    over = fusion.training_config("paper_gp", devices=1, pixel_reduction="sum").fusion.loss
    assert over.pixel_reduction == "sum" and presets.PRESETS["paper_gp"].fusion.loss.pixel_reduction == "mean"
    from experiments import train_fusion

    args = train_fusion.parse(["--preset", "cpu_small", "--pixel-reduction", "sum"])
    assert fusion.for_devices(args.config, devices=1).fusion.loss.pixel_reduction == "sum"
    with pytest.raises(ValueError, match="pixel_reduction must be one of"):
        fl.FusionLoss(pixel_reduction="median")
