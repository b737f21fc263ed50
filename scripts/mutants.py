"""Plant small bugs ("mutants") in a temporary copy of the project and run the tests that should catch
each one: a mutant the tests let through marks a check that does not bite.

    python scripts/mutants.py                            # every mutant; a table, and runs/mutants.json
    python scripts/mutants.py --only tradeoff-stranger-one,fusion-grid-black
    python scripts/mutants.py --list

Each mutant replaces exact text in one library file (every `old` must occur exactly once; the test suite
checks that the list still applies) and names the test files that exercise it. The copy holds the
tracked and untracked files git does not ignore; its tests run with the project's pytest settings
(`-x`: the first failure kills the mutant) and report the test that failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    edits: tuple[tuple[str, str], ...]  # (old, new) text replacements in `path`
    tests: tuple[str, ...]
    what: str


MUTANTS = (
    Mutant(
        "dtn-transfer-wrong-labels",
        "dfijax/dtn/classifier.py",
        (
            (
                "translate(dtn, f_params, g_params, x_source), y_source)",
                "translate(dtn, f_params, g_params, x_source), np.roll(y_source, 1))",
            ),
        ),
        ("tests/test_dtn.py",),
        "the digits DTN's transfer accuracy scored against the wrong labels",
    ),
    Mutant(
        "tradeoff-stranger-one",
        "dfijax/dfi/tradeoff.py",
        (("return float(np.median(d[np.triu_indices(len(z), 1)]))", "return 1.0"),),
        ("tests/test_dfi_tradeoff.py", "tests/test_experiments.py"),
        "identity drift no longer in units of two strangers' distance",
    ),
    Mutant(
        "tradeoff-drift-unprojected",
        "dfijax/dfi/tradeoff.py",
        (
            (
                'out["dd"][i] = np.linalg.norm((e_ed[i] - e_in[i]) @ proj, axis=-1)',
                'out["dd"][i] = np.linalg.norm((e_ed[i] - e_in[i]), axis=-1)',
            ),
        ),
        ("tests/test_dfi_tradeoff.py",),
        "the edit's own attribute change counted as identity drift",
    ),
    Mutant(
        "fusion-grid-black",
        "dfijax/fusion/figures.py",
        (
            (
                "rec = np.asarray(reconstruct(cfg, eg, pair))",
                "rec = -np.ones_like(np.asarray(reconstruct(cfg, eg, pair)))",
            ),
            (
                "fused = np.asarray(fuse(cfg, eg, pair[0], pair[1],",
                "fused = -np.ones_like(fuse(cfg, eg, pair[0], pair[1],",
            ),
        ),
        ("tests/test_fusion.py",),
        "samples.png draws every reconstruction and fusion black",
    ),
    Mutant(
        "fusion-heldout-wrong-pairs",
        "dfijax/fusion/pipeline.py",
        (
            (
                "mse = float(np.mean((to_unit(rec) - to_unit(held)) ** 2))",
                "mse = float(np.mean((to_unit(rec) - to_unit(held[::-1])) ** 2))",
            ),
        ),
        ("tests/test_fusion.py",),
        "the held-out PSNR compares each reconstruction with another face",
    ),
    Mutant(
        "dtn-faces-samples-ignore-input",
        "dfijax/dtn/pipeline.py",
        (
            (
                "g_src = T.translate(dtn, f_params, state.g.params, show, g_stats=state.g_stats)",
                "g_src = T.translate(dtn, f_params, state.g.params, show[[0] * len(show)], g_stats=state.g_stats)",
            ),
        ),
        ("tests/test_dtn_faces.py",),
        "the faces DTN's samples show G of one source for every source",
    ),
    Mutant(
        "dtn-faces-constancy-self-pairs",
        "dfijax/dtn/faces.py",
        (("other[order] = np.roll(order, 1)", "other[order] = order"),),
        ("tests/test_dtn_faces.py",),
        "the constancy baselines pair each source with itself",
    ),
    Mutant(
        "studio-fuse-ignores-lambda",
        "dfijax/studio/session.py",
        (
            (
                "r = fusion.run_fuse(run, a, b, [list(map(float, lam))])",
                "r = fusion.run_fuse(run, a, b, [[1.0] * len(lam)])",
            ),
        ),
        ("tests/test_studio.py",),
        "the studio's fusion ignores the Λ sliders",
    ),
    Mutant(
        "studio-dtn-identity",
        "dfijax/studio/session.py",
        (("return x, t(x[None])[0]", "return x, x"),),
        ("tests/test_studio.py",),
        "the studio's domain transfer shows the input as G(x)",
    ),
    Mutant(
        "sweep-rmse-other-row",
        "dfijax/dfi/sweep.py",
        (
            (
                "pix = np.sqrt(np.mean((np.asarray(flat) - np.asarray(ref)) ** 2",
                "pix = np.sqrt(np.mean((np.asarray(flat) - np.roll(np.asarray(ref), 1, 0)) ** 2",
            ),
        ),
        ("tests/test_experiments.py", "tests/test_dfi.py"),
        "the sweep's pixel RMSE measured against another row's input",
    ),
    Mutant(
        "fast-flicker-of-the-input",
        "dfijax/style/fast_run.py",
        (
            (
                '"stylized": float(vid.warping_errors(y, pairs).mean())',
                '"stylized": float(vid.warping_errors(x, pairs).mean())',
            ),
        ),
        ("tests/test_fast_style.py",),
        "stylize reports the input clip's flicker as the stylised one's",
    ),
    Mutant(
        "chainer-residual-first-snapshot",
        "dfijax/dfi/chainer.py",
        (
            (
                "return np.stack([z - residuals[nearest_residual(residuals, z - image)] for z in edited])",
                "return np.stack([z - residuals[0] for z in edited])",
            ),
        ),
        ("tests/test_reference_chainer_dfi.py",),
        "chainer-dfi's correction subtracts the first residual snapshot, not the nearest",
    ),
    Mutant(
        "target-score-sign",
        "dfijax/dfi/specs.py",
        (("p[..., i] if sign > 0 else 1 - p[..., i]", "p[..., i]"),),
        ("tests/test_dfi_tradeoff.py", "tests/test_experiments.py", "tests/test_dfi.py"),
        "a removing edit (Smiling-) scored by the attribute's presence",
    ),
)


def tracked_files(root: pathlib.Path) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=root, capture_output=True, text=True, check=True
    )
    return [p for p in out.stdout.splitlines() if (root / p).is_file()]


def apply(m: Mutant, tree: pathlib.Path) -> None:
    path = tree / m.path
    text = path.read_text()
    for old, new in m.edits:
        if text.count(old) != 1:
            raise SystemExit(f"error: mutant {m.name}: {old!r} occurs {text.count(old)} times in {m.path}, not once")
        text = text.replace(old, new)
    path.write_text(text)


def check_applies(root: pathlib.Path = ROOT) -> list[str]:
    """The mutants whose text is not found exactly once in today's files (an empty list when all apply)."""
    bad = []
    for m in MUTANTS:
        text = (root / m.path).read_text()
        bad += [f"{m.name}: {old!r}" for old, _ in m.edits if text.count(old) != 1]
    return bad


def run(m: Mutant, files: list[str], timeout: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"mutant-{m.name}-") as d:
        tree = pathlib.Path(d)
        for p in files:
            (tree / p).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / p, tree / p)
        apply(m, tree)
        t0 = time.perf_counter()
        try:
            p = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *m.tests],
                cwd=tree,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            out, rc = p.stdout + p.stderr, p.returncode
        except subprocess.TimeoutExpired:
            out, rc = "", -1
    failed = re.findall(r"^FAILED (\S+)", out, re.M) or re.findall(r"^ERROR (\S+)", out, re.M)
    status = "timeout" if rc == -1 else ("killed" if rc != 0 else "survived")
    return {
        "mutant": m.name,
        "what": m.what,
        "file": m.path,
        "status": status,
        "killed_by": failed[0] if failed else None,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read without running anything."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="comma-separated mutant names (default: all)")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per mutant")
    p.add_argument("--json", type=pathlib.Path, default=ROOT / "runs" / "mutants.json", help="where to write the rows")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    if a.list:
        for m in MUTANTS:
            print(f"{m.name:32s} {m.path:30s} {m.what}")
        return 0
    names = [n for n in a.only.split(",") if n]
    unknown = sorted(set(names) - {m.name for m in MUTANTS})
    if unknown:
        print(f"error: unknown mutants {unknown}; see --list", file=sys.stderr)
        return 1
    if bad := check_applies():
        print(f"error: mutants that no longer apply: {bad}", file=sys.stderr)
        return 1
    files = tracked_files(ROOT)
    rows = []
    for m in MUTANTS:
        if names and m.name not in names:
            continue
        r = run(m, files, a.timeout)
        rows.append(r)
        print(f"{r['status']:9s} {m.name:32s} {r['killed_by'] or '-'}  ({r['seconds']} s)", flush=True)
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(rows, indent=1) + "\n")
    survived = [r["mutant"] for r in rows if r["status"] != "killed"]
    print(
        f"{len(rows) - len(survived)} of {len(rows)} killed"
        + (f"; not killed: {', '.join(survived)}" if survived else "")
    )
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
