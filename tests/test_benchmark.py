"""The benchmark runs (tiny setting) and its two sides solve the same problems to the same loss."""

import json

import numpy as np
import pytest


def test_bench_inversion_tiny(tmp_path, capsys):
    pytest.importorskip("torch")
    from benchmarks import bench_inversion

    out = tmp_path / "bench.json"
    assert bench_inversion.main(["--tiny", "--json", str(out), "--skip", "jax_optax_bf16,torch_all"]) == 0
    info = json.loads(out.read_text())
    rows = {r["variant"]: r for r in info["rows"]}
    assert set(rows) == {
        "jax_jaxopt_f32",
        "jax_jaxopt_bf16",
        "jax_optax_f32",
        "torch_single",
        "torch_image",
        "torch_all_bf16",
    }
    for r in rows.values():
        assert r["sec_per_image_alpha"] > 0 and np.isfinite(r["final_loss"]) and r["tflops"] > 0
    # one problem at a time on both sides: the same L-BFGS iterates, so the same final loss
    np.testing.assert_allclose(
        rows["jax_jaxopt_f32"]["final_loss_ref_problems"], rows["torch_single"]["final_loss_ref_problems"], rtol=2e-3
    )
    np.testing.assert_allclose(
        rows["jax_optax_f32"]["final_loss_ref_problems"], rows["jax_jaxopt_f32"]["final_loss_ref_problems"], rtol=2e-3
    )
    assert rows["torch_image"]["speedup_vs_torch_image"] == pytest.approx(1.0)
    # 2 images x 2 alphas at 32 px, 3 iterations: FLOPs = 2 * MACs(conv5_1) * 2 * 3
    assert info["flop_per_image_alpha"] == 2 * bench_inversion.macs_to("conv5_1", 32) * 2 * 3
    assert "| jax_jaxopt_bf16 |" in capsys.readouterr().out


def test_macs_match_the_reference_count():
    from benchmarks.bench_inversion import macs_to

    # REFERENCE: 14.4 GMAC forward to conv5_1 at 200x200
    assert macs_to("conv5_1", 200) == pytest.approx(14.4e9, rel=0.01)


def test_bench_fast_style_tiny(tmp_path, capsys):
    pytest.importorskip("torch")
    from benchmarks import bench_fast_style

    out = tmp_path / "fs.json"
    assert (
        bench_fast_style.main(["--size", "32", "--batch", "2", "--batches", "1", "--reps", "1", "--json", str(out)])
        == 0
    )
    info = json.loads(out.read_text())
    rows = {r["variant"]: r for r in info["rows"]}
    assert set(rows) == {"jax_f32", "jax_bf16", "torch_tf32", "torch_bf16_autocast"}
    assert all(r["images_per_s"] > 0 for r in rows.values())
    assert rows["torch_bf16_autocast"]["ratio_vs_torch_bf16"] == pytest.approx(1.0)
    assert info["command"].startswith("python -m benchmarks.bench_fast_style") and info["date"]
    assert "| jax_bf16 |" in capsys.readouterr().out


def test_torch_and_jax_fast_style_nets_have_the_same_size():
    torch = pytest.importorskip("torch")
    import jax
    import jax.numpy as jnp

    from benchmarks.bench_fast_style import torch_net
    from dfijax.style.fast import TransformNet

    params = TransformNet().init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
    n_jax = sum(x.size for x in jax.tree.leaves(params))
    n_torch = sum(p.numel() for p in torch_net().parameters())
    assert n_jax == n_torch  # same layers, same widths: a like-for-like throughput comparison
    y = torch_net()(torch.rand(1, 3, 32, 36))
    assert tuple(y.shape) == (1, 3, 32, 36)
