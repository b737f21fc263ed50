"""Every experiment end to end at its GPU-sized settings, timed, with its pictures packed for review.

    python -m benchmarks.gpu_defaults --dry-run             # check every command line (no compute)
    python -m benchmarks.gpu_defaults --out runs/gpu_defaults --archives results/ --budget-s 480
    python -m benchmarks.gpu_defaults --only style_transfer,video_style

Runs each `python -m experiments.<name>` below (and the studio's latency, `benchmarks.bench_studio`)
in its own process, in this order, with the reference
settings (200 px / 500 iterations DFI sweep, 224 px inversion, 512 + 800 px Gatys, the paper's video
preset, 256 px fast style, 128 px width-64 fusion GAN, the paper's DTN networks): training runs are
shortened with their step flags, never with smaller images. The data are the embedded ones, so no
download is needed; without weights/ the VGG-19 is the seeded random one, which every run says.

A step that would start after --budget-s is skipped (and marked so); a running step is stopped at
its own timeout or at the budget. Writes, under --out: <step>/ (each run's own outputs),
<step>.log (its stdout and stderr), summary.json (per step: command, exit code, wall seconds, the
pictures it wrote) and summary.md (the table); with --archives DIR also DIR/gpu_defaults_<group>.tar.gz
(every picture, report and JSON, no checkpoints) and DIR/gpu_defaults_summary.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import json
import os
import pathlib
import platform
import subprocess
import sys
import tarfile
import time

import jax
import numpy as np
from PIL import Image

KEEP = (".png", ".gif", ".mp4", ".html", ".json", ".jsonl", ".md", ".txt")


@dataclasses.dataclass(frozen=True)
class Step:
    name: str  # the step's own name (folder, log)
    module: str  # experiments.<module>, or a dotted module path (benchmarks.bench_studio)
    args: tuple[str, ...]  # "{runs}" is replaced by --out
    group: str  # archive it goes into
    timeout_s: int
    note: str


STEPS = (
    Step(
        "alpha_sweep",
        "alpha_sweep",
        ("--preset", "official"),
        "dfi",
        300,
        "official preset: 200 px, 500 iterations of scipy's L-BFGS-B (one problem at a time), K = 100 of 2000 "
        "synthetic faces, 3 inputs at alpha 0.4",
    ),
    Step("invert_features", "invert_features", ("--preset", "paper"), "dfi", 240, "paper preset: 224 px, 500 it."),
    Step(
        "style_transfer",
        "style_transfer",
        ("--preset", "paper"),
        "style",
        300,
        "paper preset: 512 px x 520 it., then 800 px x 220 it.",
    ),
    Step("video_style", "video_style", ("--preset", "paper"), "style", 420, "paper preset: 350 px, 2000 + 1000 it."),
    Step(
        "train_fast_style",
        "train_fast_style",
        ("--preset", "paper", "--vgg", "19", "--steps", "2000", "--save-every", "1000"),
        "style",
        420,
        "paper preset (256 px, batch 4) shortened to 2000 steps, on VGG-19 (no VGG-16 weights there)",
    ),
    Step("stylize", "stylize", ("--ckpt", "{runs}/train_fast_style"), "style", 180, "the embedded scenes"),
    Step(
        "train_fusion",
        "train_fusion",
        ("--preset", "paper", "--stage1-steps", "200", "--stage2-steps", "200", "--holdout", "last"),
        "fusion",
        480,
        "paper preset (128 px, width 64, batch 100) shortened to 200 + 200 steps; synthetic faces, last 16 held out",
    ),
    Step("fuse", "fuse", ("--ckpt", "{runs}/train_fusion"), "fusion", 180, "two embedded synthetic faces"),
    Step(
        "studio",
        "benchmarks.bench_studio",
        ("--size", "200", "--iters", "300"),
        "dfi",
        300,
        "the studio's API: Edit -> 10-alpha ladder at 200 px, 300 iterations; one fusion slider update",
    ),
    Step(
        "train_dtn",
        "train_dtn",
        ("--scale", "paper", "--steps", "1000", "--ablation-steps", "500"),
        "dtn",
        420,
        "paper scale (batch 100, f 5000 and classifier 3000 steps) shortened to 1000 DTN steps",
    ),
    Step(
        "train_dtn_faces",
        "train_dtn_faces",
        ("--nets", "paper", "--steps", "500"),
        "dtn",
        420,
        "the paper's networks (64 px g, 152 px D) shortened to 500 steps",
    ),
)
NAMES = tuple(s.name for s in STEPS)


def target(step: Step) -> str:
    """The module `python -m` runs for a step."""
    return step.module if "." in step.module else f"experiments.{step.module}"


def command(step: Step, runs: pathlib.Path) -> list[str]:
    """The step's argv for `python -m experiments.<module>`, with its own --out."""
    args = [a.replace("{runs}", str(runs)) for a in step.args]
    return [*args, "--out", str(runs / step.name)]


def check(steps: list[Step], runs: pathlib.Path) -> None:
    """Parse every command with its experiment's own parser (raises SystemExit on a bad flag)."""
    for s in steps:
        importlib.import_module(target(s)).parse(command(s, runs))


def pictures(folder: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix in (".png", ".gif", ".mp4"))


def suspicious(folder: pathlib.Path, names: list[str]) -> list[str]:
    """The PNGs among `names` that are flat (grey std < 1 %: one colour, a solid square) or unreadable."""
    bad = []
    for name in names:
        if not name.endswith(".png"):
            continue
        try:
            x = np.asarray(Image.open(folder / name).convert("L"), np.float32) / 255.0
        except OSError:
            bad.append(f"{name} (unreadable)")
            continue
        if x.std() < 0.01:
            bad.append(f"{name} (flat, mean {x.mean():.2f})")
    return bad


def run_step(step: Step, runs: pathlib.Path, deadline: float) -> dict:
    """Run one step in its own process; its record for summary.json."""
    argv = [sys.executable, "-m", target(step), *command(step, runs)]
    timeout = max(1.0, min(step.timeout_s, deadline - time.monotonic()))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.monotonic()
    with open(runs / f"{step.name}.log", "w") as log:
        try:
            rc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout).returncode
            status = "ok" if rc == 0 else "failed"
        except subprocess.TimeoutExpired:
            rc, status = None, f"stopped after {timeout:.0f} s"
    wall = time.monotonic() - t0
    tail = (runs / f"{step.name}.log").read_text(errors="replace").splitlines()[-3:]
    out = runs / step.name
    pics = pictures(out) if out.exists() else []
    return {
        "step": step.name,
        "command": "python -m " + " ".join([target(step), *command(step, runs)]),
        "settings": step.note,
        "status": status,
        "exit_code": rc,
        "wall_s": round(wall, 1),
        "pictures": pics,
        "suspicious_pictures": suspicious(out, pics),
        "log_tail": tail,
    }


def table(records: list[dict]) -> str:
    lines = ["| step | settings | status | wall s | pictures | flat or unreadable |", "|---|---|---|---|---|---|"]
    for r in records:
        wall = "-" if r["wall_s"] is None else f"{r['wall_s']:.0f}"
        bad = ", ".join(r.get("suspicious_pictures", [])) or "-"
        lines.append(f"| {r['step']} | {r['settings']} | {r['status']} | {wall} | {len(r['pictures'])} | {bad} |")
    return "\n".join(lines)


def in_checkpoint(rel: pathlib.Path) -> bool:
    """A file of a saved training state: under an orbax step folder (named by its step) or a checkpoint folder."""
    return any(d.isdigit() or "checkpoint" in d or d.startswith("ckpt") for d in rel.parts[:-1])


def pack(runs: pathlib.Path, records: list[dict], archives: pathlib.Path) -> list[pathlib.Path]:
    """One tar.gz per group of the steps that ran: their pictures, reports, JSON and logs."""
    archives.mkdir(parents=True, exist_ok=True)
    ran = {r["step"] for r in records if r["wall_s"] is not None}
    groups: dict[str, list[str]] = {}
    for s in STEPS:
        if s.name in ran:
            groups.setdefault(s.group, []).append(s.name)
    written = []
    for group, names in groups.items():
        path = archives / f"gpu_defaults_{group}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for name in names:
                log = runs / f"{name}.log"
                if log.exists():
                    tar.add(log, arcname=log.name)
                for p in sorted((runs / name).rglob("*")) if (runs / name).exists() else []:
                    if p.is_file() and p.suffix in KEEP and not in_checkpoint(p.relative_to(runs)):
                        tar.add(p, arcname=str(p.relative_to(runs)))
        written.append(path)
    return written


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read without running anything."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/gpu_defaults", help="runs folder (each step in its own subfolder)")
    p.add_argument("--only", help=f"comma list of steps to run (of {', '.join(NAMES)})")
    p.add_argument("--skip", default="", help="comma list of steps to leave out")
    p.add_argument("--budget-s", type=float, default=float("inf"), help="stop starting steps after this long")
    p.add_argument("--archives", help="also pack the pictures and the summary into this folder")
    p.add_argument("--dry-run", action="store_true", help="check every command line and print it; run nothing")
    a = p.parse_args(argv)
    named = set(filter(None, (a.only or "").split(","))) | set(filter(None, a.skip.split(",")))
    if unknown := named - set(NAMES):
        p.error(f"unknown step(s) {sorted(unknown)}; use {', '.join(NAMES)}")
    return a


def main(argv=None) -> int:
    a = parse(argv)
    chosen = set(a.only.split(",")) if a.only else set(NAMES)
    chosen -= set(filter(None, a.skip.split(",")))
    steps = [s for s in STEPS if s.name in chosen]
    runs = pathlib.Path(a.out).absolute()
    check(steps, runs)
    if a.dry_run:
        for s in steps:
            print("python -m " + " ".join([target(s), *command(s, runs)]))
        return 0
    runs.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + a.budget_s
    records = []
    for s in steps:
        if time.monotonic() >= deadline - 10:
            records.append(
                {"step": s.name, "settings": s.note, "status": "skipped (budget)", "exit_code": None, "wall_s": None}
                | {"command": "", "pictures": [], "log_tail": []}
            )
            continue
        print(f"[{datetime.datetime.now():%H:%M:%S}] {s.name}: {s.note}", file=sys.stderr, flush=True)
        r = run_step(s, runs, deadline)
        records.append(r)
        print(f"    {r['status']} in {r['wall_s']:.0f} s, {len(r['pictures'])} pictures", file=sys.stderr, flush=True)
        for b in r["suspicious_pictures"]:
            print(f"    look at {b}", file=sys.stderr, flush=True)
        if r["status"] != "ok":
            print("    " + "\n    ".join(r["log_tail"]), file=sys.stderr, flush=True)

    dev = jax.devices()[0]
    info = {
        "date": datetime.date.today().isoformat(),
        "device": f"{len(jax.devices())} x {dev.platform} ({getattr(dev, 'device_kind', '?')})",
        "jax": jax.__version__,
        "python": platform.python_version(),
        "command": "python -m benchmarks.gpu_defaults " + " ".join(sys.argv[1:] if argv is None else argv),
        "steps": records,
    }
    md = f"{info['date']} · {info['device']} · jax {info['jax']}\n\n{table(records)}\n"
    (runs / "summary.json").write_text(json.dumps(info, indent=2))
    (runs / "summary.md").write_text(md)
    print("\n" + md)
    if a.archives:
        dest = pathlib.Path(a.archives)
        pack(runs, records, dest)
        (dest / "gpu_defaults_summary.json").write_text(json.dumps(info, indent=2))
        (dest / "gpu_defaults_summary.md").write_text(md)
    return 0 if all(r["status"] in ("ok", "skipped (budget)") for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
