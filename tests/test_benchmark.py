"""The benchmark runs (tiny setting) and its two sides solve the same problems to the same loss."""

import json

import numpy as np
import pytest


def test_bench_inversion_tiny(tmp_path, capsys):
    pytest.importorskip("torch")
    from benchmarks import bench_inversion

    out = tmp_path / "bench.json"
    # the stacked engine beside PyTorch one problem at a time and one image at a time (the other variants
    # differ only in dtype or optimiser, whose trajectories tests/test_invert.py compares)
    skip = "jax_jaxopt_bf16,jax_optax_f32,jax_optax_bf16,torch_all,torch_all_bf16"
    argv = ["--tiny", "--json", str(out), "--skip", skip, "--curve-variant", "jax_jaxopt_f32"]
    assert bench_inversion.main([*argv, "--scaling", "6", "--max-batch", "6", "--max-batch-probes", "1"]) == 0
    info = json.loads(out.read_text())
    rows = {r["variant"]: r for r in info["rows"]}
    assert set(rows) == {"jax_jaxopt_f32", "torch_single", "torch_image"}
    for r in rows.values():
        assert r["sec_per_image_alpha"] > 0 and np.isfinite(r["final_loss"]) and r["tflops"] > 0
    # one problem at a time on both sides: the same L-BFGS iterates, so the same final loss
    np.testing.assert_allclose(
        rows["jax_jaxopt_f32"]["final_loss_ref_problems"], rows["torch_single"]["final_loss_ref_problems"], rtol=2e-3
    )
    assert rows["torch_image"]["speedup_vs_torch_image"] == pytest.approx(1.0)
    # 2 images x 2 alphas at 32 px, 3 iterations: FLOPs = 2 * MACs(conv5_1) * 2 * 3
    assert info["flop_per_image_alpha"] == 2 * bench_inversion.macs_to("conv5_1", 32) * 2 * 3
    assert "| jax_jaxopt_f32 |" in capsys.readouterr().out
    # the scaling curve (6 problems: the 4 tiled) and the batch search (no allocation fails on this machine)
    assert [c["problems"] for c in info["scaling"]] == [6]
    assert all(c["sec_per_image_alpha"] > 0 and c["compile_s"] > 0 for c in info["scaling"])
    assert info["max_batch"] == {"largest_fitting": 6, "smallest_failing": None, "tried": [[6, True]]}


def test_batch_search_doubles_then_bisects():
    from benchmarks.bench_inversion import largest_batch

    calls = []

    def fits(b):
        calls.append(b)
        return b <= 300

    r = largest_batch(fits, 80, probes=10)
    assert calls[:4] == [80, 160, 320, 240]  # doubling until 320 fails, then halving the gap
    assert r["largest_fitting"] <= 300 < r["smallest_failing"] and r["smallest_failing"] - r["largest_fitting"] <= 18
    assert largest_batch(lambda b: False, 8, probes=3) == {
        "largest_fitting": 0,
        "smallest_failing": 2,
        "tried": [(8, False), (4, False), (2, False)],
    }
    assert len(largest_batch(fits, 1, probes=4)["tried"]) == 4  # never more compiles than allowed


def test_a_real_allocation_failure_is_recognised():
    import jax
    import jax.numpy as jnp

    from benchmarks.bench_inversion import is_out_of_memory

    with pytest.raises(jax.errors.JaxRuntimeError, match="RESOURCE_EXHAUSTED") as e:  # 4 TB: more than any machine
        jax.jit(lambda: jnp.ones((1 << 40,), jnp.float32))().block_until_ready()
    assert is_out_of_memory(e.value)
    assert not is_out_of_memory(ValueError("shapes (3,) and (4,) do not match"))


def test_macs_match_the_reference_count():
    from benchmarks.bench_inversion import macs_to

    # REFERENCE: 14.4 GMAC forward to conv5_1 at 200x200
    assert macs_to("conv5_1", 200) == pytest.approx(14.4e9, rel=0.01)
    # Caffe's rounding makes pool4 13x13 at 200 px: conv5_1 works on 169 positions, not 144
    extra = macs_to("conv5_1", 200, "ceil") - macs_to("conv5_1", 200)
    assert extra == (13 * 13 - 12 * 12) * 9 * 512 * 512


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


def test_gpu_defaults_command_lines_parse(tmp_path, capsys):
    from benchmarks import gpu_defaults

    # every experiment's own parser accepts its GPU-sized command (a bad flag would exit with 2)
    assert gpu_defaults.main(["--dry-run", "--out", str(tmp_path / "runs")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(gpu_defaults.STEPS) == 11
    assert lines[0].startswith("python -m experiments.alpha_sweep --preset official --out ")
    assert any("train_fusion --preset paper --stage1-steps" in line for line in lines)
    assert any(line.startswith("python -m benchmarks.bench_studio --size 200 --iters 300 --out ") for line in lines)
    with pytest.raises(SystemExit):
        gpu_defaults.main(["--dry-run", "--only", "alpha_sweep,no_such_step"])
    assert "unknown step(s) ['no_such_step']" in capsys.readouterr().err


def test_gpu_defaults_packs_pictures_not_checkpoints(tmp_path):
    import tarfile

    from benchmarks import gpu_defaults

    runs = tmp_path / "runs"
    (runs / "train_fusion" / "checkpoints" / "100").mkdir(parents=True)
    (runs / "train_fusion" / "classifier" / "300").mkdir(parents=True)
    (runs / "train_fusion" / "classifier" / "300" / "data.json").write_text("{}")
    (runs / "train_fusion" / "checkpoints" / "100" / "state.json").write_text("{}")
    (runs / "train_fusion" / "samples.png").write_bytes(b"png")
    (runs / "train_fusion" / "metrics.jsonl").write_text("{}\n")
    (runs / "train_fusion" / "params.npz").write_bytes(b"npz")
    (runs / "train_fusion.log").write_text("log\n")
    records = [
        {"step": "train_fusion", "settings": "s", "status": "ok", "exit_code": 0, "wall_s": 3.0, "pictures": ["x"]},
        {
            "step": "train_dtn",
            "settings": "s",
            "status": "skipped (budget)",
            "exit_code": None,
            "wall_s": None,
            "pictures": [],
        },
    ]
    written = gpu_defaults.pack(runs, records, tmp_path / "arch")
    assert [p.name for p in written] == ["gpu_defaults_fusion.tar.gz"]  # nothing of the skipped step's group
    with tarfile.open(written[0]) as tar:
        names = sorted(tar.getnames())
    assert names == ["train_fusion.log", "train_fusion/metrics.jsonl", "train_fusion/samples.png"]
    md = gpu_defaults.table(records)
    assert "| train_fusion | s | ok | 3 | 1 | - |" in md and "| train_dtn | s | skipped (budget) | - | 0 | - |" in md


def test_gpu_defaults_flags_flat_and_unreadable_pictures(tmp_path):
    from PIL import Image

    from benchmarks import gpu_defaults

    rng = np.random.default_rng(0)
    Image.fromarray(np.full((16, 16, 3), (200, 30, 30), np.uint8)).save(tmp_path / "red.png")  # a solid square
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    names = gpu_defaults.pictures(tmp_path)
    assert names == ["broken.png", "noise.png", "red.png"]
    assert gpu_defaults.suspicious(tmp_path, names) == ["broken.png (unreadable)", "red.png (flat, mean 0.32)"]


def test_gpu_defaults_runs_a_step_end_to_end(tmp_path):
    import tarfile
    import time

    from benchmarks import gpu_defaults

    runs = tmp_path / "runs"
    runs.mkdir()
    tiny = gpu_defaults.Step(
        "invert_features", "invert_features", ("--size", "32", "--iters", "3", "--layers", "relu1_1"), "dfi", 300, "x"
    )
    r = gpu_defaults.run_step(tiny, runs, deadline=time.monotonic() + 300)
    assert r["status"] == "ok" and r["exit_code"] == 0 and r["wall_s"] > 0, r
    assert "grid.png" in r["pictures"] and r["suspicious_pictures"] == []
    assert r["command"].endswith(f"--layers relu1_1 --out {runs / 'invert_features'}")
    (archive,) = gpu_defaults.pack(runs, [r], tmp_path / "arch")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "invert_features.log" in names and "invert_features/grid.png" in names
    stopped = gpu_defaults.run_step(tiny, runs, deadline=time.monotonic() + 0.5)  # the budget ends mid-run
    assert stopped["status"].startswith("stopped after") and stopped["exit_code"] is None
