"""Domain Transfer Network on digits (Taigman et al. 2016): source -> target digits with f-constancy.

    python -m experiments.train_dtn                                   # embedded street digits -> sklearn digits, CPU
    python -m experiments.train_dtn --steps 2000 --ablation-steps 1000 --out runs/dtn/long
    python -m experiments.train_dtn --data svhn-mnist --data-dir ~/tensorflow_datasets --source-limit 50000 \\
        --scale paper --out runs/dtn/svhn

Pipeline: (1) f, a small conv classifier, is trained on the source train split (its source test
accuracy is reported) and frozen; (2) an evaluation classifier is trained on the target train split
(its target test accuracy is reported); both are cached with orbax under ~/.cache/dfijax/dtn, so
ablations and reruns reuse them; (3) the DTN (G = g ∘ f, 3-class D, the digits loss weights (--losses) α = β = 15,
γ = 0) is trained; (4) the evaluation classifier labels G(source test) and its accuracy against the
source labels is the transfer accuracy (the paper's metric); (5) the ablations "no L_TID" (β = 0)
and "2-class D" (real target vs G(anything)) are trained the same way for --ablation-steps iterations
(default half of --steps), and the full DTN's accuracy at that point is reported next to them.
--scale names the run length (dfijax.dtn.config.DIGITS_PRESETS: quick, paper's 20000 iterations of
batch 100, f 5000 and classifier 3000 steps, or the tests' tiny); every flag given overrides it.

Data (--data): "digits" (default, offline) generates street-number digits as the source
(dfijax.data.digits.street_digits) and uses scikit-learn's 8×8 handwritten digits upscaled to 32×32
as the target; "svhn-mnist" reads tfds svhn_cropped (train+extra for f and the DTN, test for
evaluation) and mnist prepared in --data-dir (array_record; nothing is downloaded).

Writes to --out (default runs/dtn/default; a rerun resumes every run from its newest checkpoint):
results.json (accuracies, settings, timings), config.json, report.html, samples_<run>.png (source test,
G(source), target test, G(target)), loss_<run>.png and <run>/ (orbax checkpoints, the run's config,
metrics.jsonl) for run in dtn, no_tid, two_class. Pipeline: dfijax.dtn.pipeline.run_digits, on every
device of every process (--coordinator/--num-processes/--process-id, or detected); process 0 writes.

Expected: `python -m experiments.train_dtn --steps 200 --ablation-steps 100` (about 3.5 minutes on 2
CPU cores) gives f 0.97 on source test, the evaluation classifier 0.997 on target test, 0.27 on raw
sources (no transfer), transfer accuracy 0.77 for the full DTN (0.68 without L_TID, 0.72 with the
2-class D, at 100 iterations), and samples_dtn.png shows G(source) as grey handwriting-like digits of
the source's class.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

from dfijax import images as im
from dfijax import report
from dfijax.dtn import pipeline
from dfijax.dtn.config import DIGITS_PRESETS, DigitsConfig
from dfijax.progress import Bars
from dfijax.runtime import cache_dir
from experiments import runner


@dataclasses.dataclass(frozen=True)
class Args:
    config: Annotated[DigitsConfig, runner.FLAT] = DigitsConfig()
    out: str = "runs/dtn/default"
    """output and checkpoint folder (resumes)"""
    processes: Annotated[runner.Processes, runner.FLAT] = runner.Processes()


def run(args: Args, ctx: runner.Context) -> runner.Outputs | None:

    t_start, cfg = time.perf_counter(), args.config
    data, data_desc = pipeline.load_digits(cfg)
    out = ctx.out()
    device = f"{ctx.device}; {ctx.proc.count} process(es), {ctx.proc.global_devices} device(s)"
    ctx.say(f"device: {device}; {data_desc}; output {out}")
    with Bars() as bars:
        progress = bars.update if ctx.main_proc else None
        r = pipeline.run_digits(cfg, data, out, cache_dir=cache_dir("dtn"), progress=progress)
    if not ctx.main_proc:
        return None
    for name, picture in r.pictures.items():
        im.save_image(out / name, picture)
    runs = r.summary["runs"]
    for name, x in runs.items():
        x["loss_plot"] = f"loss_{name}.png"
        report.plot_losses(out / x["loss_plot"], r.records[name], keys=("d_loss", "gang", "const", "tid"))
    r.summary["seconds"]["total"] = time.perf_counter() - t_start
    headers, rows = pipeline.accuracy_table(r.summary)
    note = (
        "Transfer accuracy: the target-domain classifier's accuracy on G(source test) against the source labels "
        f"(the paper's digits metric), on {r.summary['n_source_test']} source test images from one training seed: "
        f"the binomial standard error alone is about {runs['dtn']['transfer_accuracy_se']:.3f}, so differences of "
        "a point or two are within noise."
    )
    samples = "Rows: source test, G(source) (column label = source label), target test, G(target)."
    return runner.Outputs(
        title="Domain Transfer Network: digits",
        results={"device": device, **r.summary},
        sections=[
            {"title": "Accuracies", "text": note, "table": {"headers": headers, "rows": rows}},
            *({"title": f"Samples: {x['title']}", "text": samples, "images": [x["samples"]]} for x in runs.values()),
            {
                "title": "Losses",
                "text": "|loss| on a log scale, per run",
                "images": [x["loss_plot"] for x in runs.values()],
                "pixelated": False,
            },
        ],
        files=[x["samples"] for x in runs.values()],
        device=device,
        weights="f: a digit classifier trained on the source domain, then frozen (no pretrained weights needed)",
        data=data_desc,
        seconds=r.summary["seconds"],
        summary=[
            f"{n}: transfer accuracy {x['transfer_accuracy']:.4f} after {x['steps']} iterations"
            for n, x in runs.items()
        ],
    )


main, parse = runner.Experiment("train_dtn", Args, run, __doc__, DIGITS_PRESETS, preset_field="scale").entry_points()

if __name__ == "__main__":
    raise SystemExit(main())
