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
    assert set(rows) == {"jax_jaxopt_f32", "jax_jaxopt_bf16", "jax_optax_f32", "torch_single", "torch_image", "torch_all_bf16"}
    for r in rows.values():
        assert r["sec_per_image_alpha"] > 0 and np.isfinite(r["final_loss"]) and r["tflops"] > 0
    # one problem at a time on both sides: the same L-BFGS iterates, so the same final loss
    np.testing.assert_allclose(rows["jax_jaxopt_f32"]["final_loss_ref_problems"],
                               rows["torch_single"]["final_loss_ref_problems"], rtol=2e-3)
    np.testing.assert_allclose(rows["jax_optax_f32"]["final_loss_ref_problems"],
                               rows["jax_jaxopt_f32"]["final_loss_ref_problems"], rtol=2e-3)
    assert rows["torch_image"]["speedup_vs_torch_image"] == pytest.approx(1.0)
    # 2 images x 2 alphas at 32 px, 3 iterations: FLOPs = 2 * MACs(conv5_1) * 2 * 3
    assert info["flop_per_image_alpha"] == 2 * bench_inversion.macs_to("conv5_1", 32) * 2 * 3
    assert "| jax_jaxopt_bf16 |" in capsys.readouterr().out


def test_macs_match_the_reference_count():
    from benchmarks.bench_inversion import macs_to

    # REFERENCE: 14.4 GMAC forward to conv5_1 at 200x200
    assert macs_to("conv5_1", 200) == pytest.approx(14.4e9, rel=0.01)
