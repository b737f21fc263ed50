"""One report.html for every run (jinja2), the matplotlib figures in it, and the JSON beside it.

Every report opens with the same header: what ran, on which weights (and whether they are pretrained),
device, data, timings, then the experiment's sections (pictures, tables, text), then the full config.
Every run also saves that config (`save_config`); `load_config` reads it back for --config.
`write_run` writes a run's three files (results.json, config.json, report.html) from its `Outputs`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

_TEMPLATE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: sans-serif; max-width: 1100px; margin: auto; padding: 0 1em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #bbb; padding: 3px 7px; }
th { background: #eee; } img { max-width: 100%; } .pix { image-rendering: pixelated; width: 100%; }
.notice { color: #a00; } dt { font-weight: bold; float: left; width: 7em; } dd { margin-left: 8em; }
</style></head><body>
<h1>{{ title }}</h1>
<dl>
<dt>weights</dt><dd>{{ weights }}</dd>
<dt>device</dt><dd>{{ device }}</dd>
{% if data %}<dt>data</dt><dd>{{ data }}</dd>{% endif %}
{% if seconds %}<dt>time</dt><dd>{% for k, v in seconds.items() -%}
{{ k }} {{ "%.1f"|format(v) }} s{% if not loop.last %}, {% endif %}{% endfor %}</dd>{% endif %}
</dl>
{% if not pretrained %}<p class="notice"><b>The weights are a seeded random network, not pretrained:</b> these
results show what the method does, not what trained features give.</p>{% endif %}
{% for s in sections %}
<h2>{{ s.title }}</h2>
{% if s.text %}<p>{{ s.text }}</p>{% endif %}
{% for img in s.get("images", []) -%}
<p><img src="{{ img }}" class="{{ 'pix' if s.get('pixelated', True) else '' }}"></p>{% endfor %}
{% if s.table %}<table><tr>{% for h in s.table.headers %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in s.table.rows %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% endfor %}
<h2>Config</h2><pre style="white-space:pre-wrap">{{ config }}</pre>
</body></html>
""")


@dataclasses.dataclass
class Outputs:
    """What an experiment's run hands back: the report's title and sections (`write_report`), its results
    (merged into results.json), the files its final line names, lines printed before it, and the config
    it resolved (when it is not the one it was given)."""

    title: str
    results: dict[str, Any]
    sections: list[dict[str, Any]]
    files: Sequence[str] = ("grid.png",)
    results_file: str = "results.json"
    device: str | None = None  # the report's device line, when it says more than the device summary
    weights: str | None = None  # the report's weights line for a run without VGG weights (default "none")
    data: str | None = None
    seconds: Mapping[str, float] | None = None
    summary: Sequence[str] = ()
    config: Any = None


def write_run(out: pathlib.Path, o: Outputs, head: Mapping[str, Any], weights: Any = None) -> None:
    """results.json ({**head, "config", weights', data, **o.results}), config.json and report.html of
    one run; head: {"experiment", "settings", "device", "config"} (config a dict); weights: the
    dfijax.weights.VGGWeights the run used, if any."""
    cfg = head["config"]
    base = dict(head)
    if weights is not None:
        base.update(weights=weights.description, weights_pretrained=weights.pretrained, weights_meta=weights.meta)
    write_json(out / o.results_file, {**base, **({"data": o.data} if o.data is not None else {}), **o.results})
    save_config(out, cfg)
    write_report(
        out / "report.html",
        o.title,
        weights=weights.description if weights is not None else o.weights or "none",
        pretrained=weights.pretrained if weights is not None else True,
        device=o.device or head["device"],
        data=o.data,
        seconds=o.seconds,
        config=cfg,
        sections=o.sections,
    )


def fmt(x: Any) -> str:
    """Table cell text: 4 significant digits for floats."""
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def write_report(
    path: str | os.PathLike,
    title: str,
    *,
    weights: str,
    pretrained: bool,
    device: str,
    config: Mapping[str, Any],
    sections: Sequence[Mapping[str, Any]],
    data: str | None = None,
    seconds: Mapping[str, float] | None = None,
) -> pathlib.Path:
    """sections: [{"title", "text"?, "images"? [relative paths], "pixelated"? (default True),
    "table"? {"headers": [...], "rows": [[...], ...]}}]."""
    sections = [
        dict(s, table={"headers": s["table"]["headers"], "rows": [[fmt(c) for c in r] for r in s["table"]["rows"]]})
        if s.get("table")
        else dict(s)
        for s in sections
    ]
    page = _TEMPLATE.render(
        title=title,
        weights=weights,
        pretrained=pretrained,
        device=device,
        data=data,
        seconds=dict(seconds or {}),
        sections=sections,
        config=json.dumps(dict(config), indent=2, default=str),
    )
    path = pathlib.Path(path)
    path.write_text(page)
    return path


def plot_curves(
    path: str | os.PathLike,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    log_y: bool = False,
    markers: bool = False,
    integer_x: bool = False,
) -> pathlib.Path:
    """Line plot of {label: (x, y)} with axes, labels and a legend; integer_x: ticks on whole numbers
    only (frames, steps)."""

    fig = Figure(figsize=(7, 3.5), dpi=80)  # 560 × 280 px; Agg, without pyplot's global state
    ax = fig.subplots()
    for label, (x, y) in series.items():
        ax.plot(list(x), list(y), marker="o" if markers else None, ms=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    if integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(series) > 1 or markers:
        ax.legend()
    fig.tight_layout()
    path = pathlib.Path(path)
    fig.savefig(path, facecolor="white")

    Image.open(path).convert("RGB").save(path)  # no alpha channel: plain RGB like every other picture
    return path


def save_config(out: str | os.PathLike, config: Mapping[str, Any]) -> pathlib.Path:
    """Write a run's resolved config to <out>/config.json; `load_config` (--config) reads it back."""
    path = pathlib.Path(out) / "config.json"
    path.write_text(json.dumps(dict(config), indent=2))
    return path


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """A saved config: a config.json, or a results.json holding it under "config" (one-line
    ValueError when the file cannot be read)."""
    try:
        saved = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read --config {path}: {e}") from None
    if not isinstance(saved, dict):
        raise ValueError(f"--config {path} holds no config object; give a run's config.json")
    return saved.get("config", saved)


def write_json(path: pathlib.Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def plot_losses(
    path: str | os.PathLike, records: list[dict[str, Any]], keys: tuple[str, ...] = ("loss",), log: bool = True
) -> None:
    """Loss curves (one per key in `records`, x = record["step"]): a matplotlib figure with axes and a
    legend. Values are plotted as |value| on a log axis when log is set."""

    series = {}
    for k in keys:
        pts = [(r["step"], r[k]) for r in records if r.get(k) is not None and np.isfinite(r[k])]
        if len(pts) >= 2:
            xs, ys = np.array(pts, float).T
            series[k] = (xs, np.maximum(np.abs(ys), 1e-30) if log else ys)
    plot_curves(path, series, xlabel="step", ylabel="|value| (log scale)" if log else "value", log_y=log)
