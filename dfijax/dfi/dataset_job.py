"""A dataset-scale DFI job: edit every selected face of a dataset, over every device of every process.

The rows (image × edit) are cut into chunks of a fixed size; chunk c belongs to process c mod P.
Each step every process takes its next unfinished chunk, the processes' chunks are assembled into one
global batch over the global mesh (`dfijax.distributed`), and rows × alphas problems are inverted in
one compiled call (the chunk size never changes, so it compiles once). A process with nothing left in
a step contributes a filler chunk whose results are dropped, so all processes stay in lockstep.

Output folder:
  job.json                     what the job is (settings, rows, chunk size); a resume must match it
  shards/chunk-00003.npz       edited images of chunk 3, uint8 [n, A, H, W, 3], and their row numbers
  index/chunk-00003.jsonl      one record per row × alpha (input id, edit, alpha, final loss, probe
                               scores); its presence marks chunk 3 finished (written last, atomically)
A rerun with the same folder skips finished chunks (`read_index` reads the records back).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from dfijax import config
from dfijax import distributed as dist
from dfijax.data import FaceDataset
from dfijax.dfi import features, postprocess, presets, rules, solve, specs, sweep, sweep_inputs
from dfijax.dfi.sweep_config import SweepConfig
from dfijax.weights import VGGWeights

# progress(stage, done, total, info): stage "features" (neighbour images of this process's chunk given
# their features), "probe", "solve" (L-BFGS iterations of the current step) or "chunks" (steps done;
# info["seconds"]: the step's, the first one's counted from the start of the job).
Progress = Callable[[str, int, int, dict], None]


@dataclasses.dataclass(frozen=True)
class JobConfig:
    """A dataset job: the sweep's settings for each face, and how the faces are chosen and cut into chunks."""

    sweep: Annotated[SweepConfig, config.FLAT] = SweepConfig(alphas=(0.4,))
    """the objective, solver, neighbour and post-processing settings, edits and alphas of each face's edit;
    the job always picks neighbours by attributes, subtracts a single residual, matches colours with
    postprocess.match_color and writes the edited image at the dataset's crop (neighbours, include,
    exclude, residual_mode, color_eps, output, crop and shard do not apply)"""
    select: Literal["lacking", "all"] = "lacking"
    """edit the faces lacking the edit (as dataset_inputs picks them) or every face"""
    limit: Annotated[int | None, config.POSITIVE] = None
    """at most this many faces per edit (default: all; on the synthetic set: 64)"""
    chunk: Annotated[int | None, config.POSITIVE] = None
    """rows (image x edit) per process per compiled call, a multiple of the local device count (default:
    local devices x --rows-per-device)"""
    # --rows-: the abbreviation the command line has always accepted
    rows_per_device: Annotated[int, config.POSITIVE, config.flag(aliases=("--rows-",))] = 4
    """rows per device per call (without --chunk)"""
    stop_after_chunks: int | None = None
    """stop after this many chunks per process (as if killed)"""

    def __post_init__(self):
        config.freeze_tuples(self)
        config.check(self)
        if self.sweep.solve.optimizer != "engine":
            raise ValueError(
                "the dataset job solves every chunk in one engine call on a global mesh: use --optimizer engine"
            )

    def chunk_rows(self, local_devices: int) -> int:
        """Rows per process per call: chunk, or local_devices x rows_per_device."""
        return self.chunk or local_devices * self.rows_per_device


# the DFI presets (dfi.presets) as jobs: the dataset job edits at one alpha, 0.4, unless told otherwise,
# always on the batched engine (the official preset's scipy solver runs one problem at a time)
PRESETS: dict[str, JobConfig] = config.registry(
    *(
        config.Preset(name, JobConfig(sweep=presets.preset(name, alphas=(0.4,), optimizer="engine")))
        for name in presets.PRESETS
    )
)


@dataclasses.dataclass
class JobResult:
    """rows: the job's (dataset index, edit index) list; n_chunks; solved/skipped: this process's chunk
    ids solved now / found finished; images: edited images (rows × alphas) written by all processes
    in this run; seconds: {"solve" (the step loop, all processes' slowest), "first_step" (includes the
    compile), "total"}; images_per_s over the step loop and, from the second step on, steady."""

    rows: list[tuple[int, int]]
    n_chunks: int
    solved: list[int]
    skipped: list[int]
    images: int
    seconds: dict[str, float]
    images_per_s: float
    images_per_s_steady: float | None
    process: dist.ProcessInfo

    def summary(self) -> dict[str, Any]:
        """This process's result as a JSON-ready dict (rates and seconds rounded to 3 decimals): process,
        processes, devices, rows, chunks, solved, skipped, images, images_per_s, images_per_s_steady, seconds."""
        steady = self.images_per_s_steady
        return {
            "process": self.process.index,
            "processes": self.process.count,
            "devices": self.process.global_devices,
            "rows": len(self.rows),
            "chunks": self.n_chunks,
            "solved": self.solved,
            "skipped": self.skipped,
            "images": self.images,
            "images_per_s": round(self.images_per_s, 3),
            "images_per_s_steady": None if steady is None else round(steady, 3),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def select_rows(
    data: FaceDataset, edits: Sequence[str], select: str = "lacking", limit: int | None = None
) -> list[tuple[int, int]]:
    """The job's rows, (dataset index, edit index), edit-major then dataset order."""
    rows = []
    for e, edit in enumerate(edits):
        keep = np.ones(len(data), bool)
        if select == "lacking":
            for i, sign in specs.parse_edit(edit, data.attr_names):
                keep &= (data.attrs[:, i] < -0.5) if sign > 0 else (data.attrs[:, i] >= 0.5)
        idx = np.flatnonzero(keep)[:limit]
        rows += [(int(i), e) for i in idx]
    if not rows:
        raise ValueError(f"no face in {data.name} lacks the edits {list(edits)}; use select='all'")
    return rows


def assign_chunks(n_chunks: int, process_index: int, process_count: int) -> list[int]:
    """The chunk ids of one process: c with c mod process_count == process_index (disjoint, covering)."""
    return list(range(process_index, n_chunks, process_count))


def chunk_name(c: int) -> str:
    return f"chunk-{c:05d}"


def finished_chunks(out_dir: str | os.PathLike) -> set[int]:
    """Chunk ids whose index shard exists (written last, so their images are complete)."""
    d = pathlib.Path(out_dir) / "index"
    return {int(p.stem.split("-")[1]) for p in d.glob("chunk-*.jsonl")} if d.is_dir() else set()


def read_index(out_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of the finished chunks, ordered by (row, alpha index)."""
    records = []
    for c in sorted(finished_chunks(out_dir)):
        text = (pathlib.Path(out_dir) / "index" / f"{chunk_name(c)}.jsonl").read_text()
        records += [json.loads(line) for line in text.splitlines() if line.strip()]
    return sorted(records, key=lambda r: (r["row"], r["alpha_index"]))


def load_images(out_dir: str | os.PathLike, records: Sequence[dict[str, Any]]) -> np.ndarray:
    """The edited images of these index records, [n, H, W, 3] float32 in [0, 1]."""
    shards: dict[str, Any] = {}
    out = []
    for r in records:
        if r["shard"] not in shards:
            with np.load(pathlib.Path(out_dir) / r["shard"]) as z:
                shards[r["shard"]] = (z["images"], {int(v): k for k, v in enumerate(z["rows"])})
        images, pos = shards[r["shard"]]
        out.append(images[pos[r["row"]], r["alpha_index"]])
    return np.stack(out).astype(np.float32) / 255.0


def _atomic_write(path: pathlib.Path, write: Callable[[pathlib.Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _result_settings(sweep: SweepConfig | dict[str, Any]) -> dict[str, Any]:
    """The sweep's settings that decide a job's result (either layout saved), those that do not at their
    defaults."""
    if isinstance(sweep, dict):
        sweep = config.from_dict(SweepConfig, sweep)
    return config.to_dict(config.replace(sweep, shard=True, batch=32, feature_cache=True))


def _manifest(job: JobConfig, chunk: int, data: FaceDataset, weights: VGGWeights, rows) -> dict[str, Any]:
    rows_hash = hashlib.sha256(json.dumps([[data.ids[i], e] for i, e in rows]).encode()).hexdigest()[:16]
    return {
        "data": data.name,
        "data_size": len(data),
        "weights": features.weights_id(weights.meta),
        "sweep": _result_settings(job.sweep),
        "chunk": chunk,
        "select": job.select,
        "limit": job.limit,
        "n_rows": len(rows),
        "rows_sha256": rows_hash,
    }


def check_manifest(out_dir: pathlib.Path, manifest: dict[str, Any]) -> None:
    """Raise unless the folder is new or holds the same job; process 0 writes job.json."""
    path = out_dir / "job.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if "sweep" in old:
            old["sweep"] = _result_settings(old["sweep"])
        norm = json.loads(json.dumps(manifest))
        diff = sorted(k for k in set(old) | set(norm) if old.get(k) != norm.get(k))
        if diff:
            raise ValueError(
                f"{out_dir} holds a different job ({', '.join(diff)} differ); use a new output folder "
                "or the same settings to resume"
            )
    elif dist.is_main():
        out_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, lambda p: p.write_text(json.dumps(manifest, indent=2)))


def _row_noise(seed: int, row: int, shape) -> np.ndarray:
    """chainer-dfi's noise start for one row (seeded by the row, so independent of the batch)."""
    return np.asarray(solve.noise_start(jax.random.fold_in(jax.random.key(seed), row), shape))


def run_job(
    config: JobConfig,
    data: FaceDataset,
    weights: VGGWeights,
    out_dir: str | os.PathLike,
    *,
    cache_root: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> JobResult:
    """Edit every selected row at every alpha into `out_dir`, resuming past finished chunks.

    Every process of the job calls it with the same arguments (after `distributed.initialize`).
    cache_root: attribute vectors, per-image neighbour features and (one process) the probe; with several
    processes each keeps its own subfolder, so no two write the same file. config.stop_after_chunks:
    stop after this many steps (each process solves at most that many chunks), as if killed there.
    """
    progress = progress or (lambda *a: None)
    t_start = time.perf_counter()
    cfg = config.sweep
    info = dist.process_info()
    out = pathlib.Path(out_dir)
    chunk = config.chunk_rows(info.local_devices)
    if chunk % info.local_devices:
        raise ValueError(
            f"chunk of {chunk} rows does not split over {info.local_devices} local devices; "
            f"use a multiple of {info.local_devices}"
        )
    rows = select_rows(data, cfg.edits, config.select, config.limit)
    n_chunks = -(-len(rows) // chunk)
    check_manifest(out, _manifest(config, chunk, data, weights, rows))
    for sub in ("shards", "index"):
        (out / sub).mkdir(parents=True, exist_ok=True)

    mine = assign_chunks(n_chunks, info.index, info.count)
    done_before = finished_chunks(out)
    pending = [c for c in mine if c not in done_before]
    skipped = [c for c in mine if c in done_before]
    n_steps = int(dist.allgather(np.int32(len(pending))).max())
    if config.stop_after_chunks is not None:
        n_steps = min(n_steps, config.stop_after_chunks)

    edit_specs = [specs.parse_edit(e, data.attr_names) for e in cfg.edits]
    weights = cfg.objective.network(weights)
    loss = cfg.objective.feature_loss(weights.pretrained)
    root = pathlib.Path(cache_root) if cache_root is not None else None
    if root is not None and info.count > 1:  # processes never write the same cache file
        root = root / f"process{info.index}-of-{info.count}"
    probe = (
        sweep_inputs.photo_probe(cfg, data, root if info.count == 1 else None, progress) if cfg.probe.enabled else None
    )

    mesh = dist.global_mesh()
    gvars = dist.replicate(weights.variables, mesh)
    alphas = list(cfg.alphas)
    run_alphas = ([0.0] if cfg.finish.residual else []) + alphas
    filler_rows = [rows[k % len(rows)] for k in range(chunk)]

    def chunk_inputs(c: int | None):
        """x [C, H, W, 3], w {tap: [C, ...]}, x0, the real rows' global numbers."""
        nums = list(range(c * chunk, min((c + 1) * chunk, len(rows)))) if c is not None else []
        sel = [rows[k] for k in nums] if nums else filler_rows
        pad = [sel[-1]] * (chunk - len(sel))
        x = data.images([i for i, _ in sel + pad], cfg.size)
        if not nums:  # filler: w = 0 (the target is φ(x) itself); its results are dropped
            shapes = jax.eval_shape(
                lambda z: loss.features(weights.variables, z), jax.ShapeDtypeStruct(x.shape[1:], jnp.float32)
            )
            w = {t: np.zeros((chunk,) + s.shape, np.float32) for t, s in shapes.items()}
        else:
            sets = [
                rules.attribute_neighbours(
                    cfg, data, data.attrs[i], edit_specs[e], None if cfg.neighbours.include_input else i
                )
                for i, e in sel
            ]
            ws, _ = sweep.attribute_vectors(cfg, loss, weights, data, sets, root, progress)
            ws += [ws[-1]] * len(pad)
            w = {t: np.stack([wi[t] for wi in ws]).astype(np.float32) for t in cfg.objective.taps}
        if cfg.solve.init == "input":
            x0 = x
        else:
            x0 = np.stack(
                [_row_noise(cfg.seed, nums[k] if k < len(nums) else len(rows) + k, x.shape[1:]) for k in range(chunk)]
            )
        return x, w, x0, nums

    def solve_step(x, w, x0):
        """One global step: every process's C rows x A alphas in one engine call (alpha by alpha, warm
        started, in "warm" mode); this process's ([C, A, H, W, 3] images, [C, A] final losses)."""
        xg, wg, x0g = dist.global_batch((x, w, x0), mesh)
        local = lambda t: dist.local_batch(t, mesh)  # noqa: E731
        return solve.solve_alphas(cfg, loss, gvars, xg, wg, run_alphas, progress, x0=x0g, shard=False, local=local)

    solved, images_written = [], 0
    t_loop = time.perf_counter()
    t_first, t_prev = None, t_start
    for step in range(n_steps):
        c = pending[step] if step < len(pending) else None
        x, w, x0, nums = chunk_inputs(c)
        edited, final = solve_step(x, w, x0)
        if nums:
            _write_chunk(out, c, cfg, data, rows, nums, x, edited, final, edit_specs, probe, info)
            solved.append(c)
            images_written += len(nums) * len(alphas)
        if t_first is None:
            t_first = time.perf_counter() - t_loop
        now = time.perf_counter()
        progress("chunks", step + 1, n_steps, {"chunk": c, "process": info.index, "seconds": now - t_prev})
        t_prev = now
    t_solve_local = time.perf_counter() - t_loop

    totals = dist.allgather(np.array([images_written, t_solve_local, t_first or 0.0], np.float64))
    images = int(totals[:, 0].sum())
    t_solve, t_first_all = float(totals[:, 1].max()), float(totals[:, 2].max())
    first_images = len(alphas) * chunk * info.count  # upper bound of the first step's real images
    steady = None
    if n_steps > 1 and t_solve > t_first_all:
        steady = max(images - min(first_images, images), 0) / (t_solve - t_first_all)
    return JobResult(
        rows,
        n_chunks,
        solved,
        skipped,
        images,
        {"solve": t_solve, "first_step": t_first_all, "total": time.perf_counter() - t_start},
        images / t_solve if t_solve > 0 else 0.0,
        steady,
        info,
    )


def _write_chunk(
    out: pathlib.Path,
    c: int,
    cfg: SweepConfig,
    data: FaceDataset,
    rows,
    nums,
    x,
    edited,
    final,
    edit_specs,
    probe,
    info: dist.ProcessInfo,
) -> None:
    n = len(nums)
    x, edited, final = x[:n], edited[:n], final[:n]
    if cfg.finish.residual:
        edited = np.asarray(
            postprocess.subtract_residual(
                jnp.asarray(edited[:, 1:]), jnp.asarray(edited[:, :1]), jnp.asarray(x)[:, None]
            )
        )
        final = final[:, 1:]
    if cfg.finish.color_match != "none":
        per_channel = cfg.finish.color_match == "channel"
        edited = np.asarray(
            jax.vmap(lambda e, r: jax.vmap(lambda z: postprocess.match_color(z, r, per_channel=per_channel))(e))(
                jnp.asarray(edited), jnp.asarray(x)
            )
        )
    edited = np.clip(edited, 0, 1)
    a = edited.shape[1]
    stored = np.round(edited * 255).astype(np.uint8)
    pix = np.sqrt(np.mean((edited - x[:, None]) ** 2, axis=(2, 3, 4)))
    s_in = s_out = None
    if probe is not None:
        p_in = probe.scores(x)
        p_out = probe.scores(edited.reshape((n * a,) + edited.shape[2:])).reshape(n, a, -1)
        s_in = [float(specs.target_score(p_in[k], edit_specs[rows[r][1]])) for k, r in enumerate(nums)]
        s_out = [[float(v) for v in specs.target_score(p_out[k], edit_specs[rows[r][1]])] for k, r in enumerate(nums)]
    shard = f"shards/{chunk_name(c)}.npz"
    _atomic_write(out / shard, lambda p: np.savez(open(p, "wb"), images=stored, rows=np.asarray(nums, np.int64)))
    lines = []
    for k, r in enumerate(nums):
        i, e = rows[r]
        for j, alpha in enumerate(cfg.alphas):
            lines.append(
                json.dumps(
                    {
                        "row": r,
                        "chunk": c,
                        "input": data.ids[i],
                        "input_index": i,
                        "edit": cfg.edits[e],
                        "alpha": alpha,
                        "alpha_index": j,
                        "final_loss": float(final[k, j]),
                        "probe_score": s_out[k][j] if s_out else None,
                        "input_probe_score": s_in[k] if s_in else None,
                        "pixel_rmse_to_input": float(pix[k, j]),
                        "shard": shard,
                        "process": info.index,
                    }
                )
            )
    _atomic_write(out / "index" / f"{chunk_name(c)}.jsonl", lambda p: p.write_text("\n".join(lines) + "\n"))
