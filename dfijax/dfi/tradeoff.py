"""Attribute gain against identity drift: the DFI paper's two questions (does the edit show the
attribute; is it still the same person), measured per input × α, beside a pixel-blend baseline.

Attribute gain: the attribute probe's score for the edit's direction minus the input's.
Identity drift: distance between input and edit in the probe's penultimate feature space — a network
that is not the VGG being edited — with the edited attributes' read-out directions projected out (so
the change the edit is asked to make does not count as drift), divided by the median distance
between two different faces of the dataset in that same space (1.0 = as far apart as two strangers).
Baseline: the input blended in pixels towards the mean of its target neighbours, (1 − t)·x + t·m,
which also gains the attribute, at a much higher cost in identity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from dfijax.data import FaceDataset
from dfijax.dfi import specs
from dfijax.dfi.neighbours import Neighbours
from dfijax.dfi.probe import Probe
from dfijax.dfi.specs import target_score
from dfijax.face_models import SAME_PERSON

if TYPE_CHECKING:
    from dfijax.dfi.identity import FaceIdentity
    from dfijax.dfi.sweep import SweepResult

Spec = Sequence[tuple[int, int]]


@dataclasses.dataclass(frozen=True)
class TradeOff:
    """dfi_*: [R, A] for the sweep's rows and alphas; blend_*: [R, T] for the blend weights t."""

    alphas: np.ndarray
    dfi_gain: np.ndarray
    dfi_drift: np.ndarray
    blend_t: np.ndarray
    blend_gain: np.ndarray
    blend_drift: np.ndarray
    stranger_distance: dict[str, float]

    def to_dict(self) -> dict:
        """Named values for a run's results: the summary and every point."""
        return {
            "summary": self.summary(),
            "stranger_distance": self.stranger_distance,
            "dfi_gain": self.dfi_gain.tolist(),
            "dfi_drift": self.dfi_drift.tolist(),
            "blend_t": self.blend_t.tolist(),
            "blend_gain": self.blend_gain.tolist(),
            "blend_drift": self.blend_drift.tolist(),
            "identity_space": "attribute probe's penultimate features, edited attributes' read-out "
            "directions projected out, / median distance between two dataset faces",
        }

    def summary(self) -> list[dict[str, float]]:
        """Means over rows: one dict per alpha, then one per blend weight."""
        out = [
            {
                "method": "dfi",
                "alpha": float(a),
                "attribute_gain": float(self.dfi_gain[:, j].mean()),
                "identity_drift": float(self.dfi_drift[:, j].mean()),
            }
            for j, a in enumerate(self.alphas)
        ]
        out += [
            {
                "method": "pixel blend",
                "t": float(t),
                "attribute_gain": float(self.blend_gain[:, j].mean()),
                "identity_drift": float(self.blend_drift[:, j].mean()),
            }
            for j, t in enumerate(self.blend_t)
        ]
        return out


def identity_projector(probe: Probe, spec: Spec) -> np.ndarray:
    """[F, F] projector onto the complement of the edited attributes' head directions."""
    kernel, _ = probe.head()
    d = kernel[:, [i for i, _ in spec]]  # [F, k]
    q, _ = np.linalg.qr(d)
    return np.eye(kernel.shape[0], dtype=np.float32) - q @ q.T


def stranger_distance(emb: np.ndarray, proj: np.ndarray) -> float:
    """Median distance between two different faces' projected embeddings, emb [N, F]."""
    z = emb @ proj
    d = np.sqrt(np.maximum(np.sum(z**2, 1)[:, None] + np.sum(z**2, 1)[None] - 2 * z @ z.T, 0))
    return float(np.median(d[np.triu_indices(len(z), 1)]))


def measure(
    probe: Probe,
    data: FaceDataset,
    inputs: np.ndarray,
    edited: np.ndarray,
    specs: Sequence[Spec],
    neighbours: Sequence[Neighbours],
    alphas: Sequence[float],
    size: int,
    blend_t: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5),
    n_strangers: int = 200,
) -> TradeOff:
    """inputs: [R, H, W, 3]; edited: [R, A, H, W, 3] (in [0, 1]); specs, neighbours: per row."""
    r, a = edited.shape[:2]
    if inputs.shape[0] != r or len(specs) != r or len(neighbours) != r or len(alphas) != a:
        raise ValueError(
            f"{r} rows x {a} alphas of edits need as many inputs, specs and neighbour sets; got "
            f"{inputs.shape[0]}, {len(specs)}, {len(neighbours)} and {len(alphas)} alphas"
        )
    ts = np.asarray(blend_t, np.float32)
    means = np.stack([data.images(n.target, size).mean(0) for n in neighbours])  # [R, H, W, 3]
    blends = (1 - ts[None, :, None, None, None]) * inputs[:, None] + ts[None, :, None, None, None] * means[:, None]
    flat = np.concatenate([inputs, edited.reshape((-1,) + edited.shape[2:]), blends.reshape((-1,) + blends.shape[2:])])
    p, emb = probe.scores(flat), probe.embed(flat)
    strangers = probe.embed(data.images(range(min(n_strangers, len(data))), size))
    n_b = len(ts)
    p_in, p_ed, p_bl = p[:r], p[r : r + r * a].reshape(r, a, -1), p[r + r * a :].reshape(r, n_b, -1)
    e_in, e_ed, e_bl = emb[:r], emb[r : r + r * a].reshape(r, a, -1), emb[r + r * a :].reshape(r, n_b, -1)
    out = {k: np.zeros((r, m), np.float32) for k, m in (("dg", a), ("dd", a), ("bg", n_b), ("bd", n_b))}
    scale: dict[str, float] = {}
    for i, spec in enumerate(specs):
        key = ",".join(f"{'+' if s > 0 else '-'}{probe.attr_names[j]}" for j, s in spec)
        proj = identity_projector(probe, spec)
        if key not in scale:
            scale[key] = stranger_distance(strangers, proj)
        s_in = target_score(p_in[i], spec)
        out["dg"][i] = target_score(p_ed[i], spec) - s_in
        out["bg"][i] = target_score(p_bl[i], spec) - s_in
        out["dd"][i] = np.linalg.norm((e_ed[i] - e_in[i]) @ proj, axis=-1) / scale[key]
        out["bd"][i] = np.linalg.norm((e_bl[i] - e_in[i]) @ proj, axis=-1) / scale[key]
    return TradeOff(np.asarray(alphas, np.float32), out["dg"], out["dd"], ts, out["bg"], out["bd"], scale)


BLEND_T = (0.1, 0.2, 0.3, 0.45, 0.6)
EXPLAINED = (
    "One point per input × alpha. Attribute gain: the attribute probe's score for the edit's direction, "
    "minus the input's. Identity drift: distance from the input in the probe's penultimate features (a "
    "network apart from the VGG being edited) with the edited attributes' read-out directions projected "
    "out, in units of the median distance between two different faces of the dataset. Baseline: the "
    "input blended in pixels towards the mean of its target neighbours, (1 - t)·x + t·mean, "
    "t = 0.1 … 0.6. Up and to the left is better."
)


def evaluate(result: "SweepResult", data: FaceDataset, blend_t: Sequence[float] = BLEND_T) -> TradeOff | None:
    """A sweep's trade-off (None when it ran without the attribute probe)."""

    if result.probe_model is None:
        return None
    cfg = result.config
    edit_specs = [specs.parse_edit(cfg.edits[e], data.attr_names) for _, e in result.rows]
    return measure(
        result.probe_model,
        data,
        result.inputs,
        result.edited,
        edit_specs,
        result.neighbours,
        cfg.alphas,
        cfg.size,
        blend_t=blend_t,
    )


def plot(
    path, t: TradeOff | None, title: str = "attribute gain vs identity drift", face: "FaceIdentity | None" = None
) -> None:
    """Scatter of every input × α (DFI) and input × t (pixel blend) with their mean curves; beside it, with
    `face`, dlib's face-descriptor distance of each edit from its input against α, with the 0.6 line below
    which face recognition calls them the same person. Axes and legends (matplotlib), an RGB PNG."""

    panels = (t is not None) + (face is not None)
    if not panels:
        raise ValueError("nothing to plot: neither a trade-off nor face distances")
    fig = Figure(figsize=(7 * panels, 4.5), dpi=80)  # Agg, without pyplot's global state
    axes = list(np.atleast_1d(fig.subplots(1, panels)))
    if t is not None:
        ax = axes.pop(0)
        for name, drift, gain, params, color in (
            ("DFI", t.dfi_drift, t.dfi_gain, t.alphas, "tab:blue"),
            ("pixel blend to target neighbours' mean", t.blend_drift, t.blend_gain, t.blend_t, "tab:orange"),
        ):
            ax.scatter(drift.ravel(), gain.ravel(), s=10, alpha=0.35, color=color)
            mx, my = drift.mean(0), gain.mean(0)
            ax.plot(mx, my, marker="o", color=color, label=f"{name} (mean per {'α' if name == 'DFI' else 't'})")
            for v, x, y in zip(params, mx, my):
                ax.annotate(f"{v:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=color)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xlabel("identity drift (probe features, edited attributes projected out; 1 = two different faces)")
        ax.set_ylabel("attribute gain (probe score change)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if face is not None:
        ax = axes.pop(0)
        d, a = face.distances, face.alphas
        for r in range(len(d)):
            ax.scatter(a, d[r], s=12, alpha=0.5, color="tab:green")
        measured = np.isfinite(d).any(0)
        if measured.any():
            mean = np.array([np.nanmean(d[:, j]) if measured[j] else np.nan for j in range(len(a))])
            ax.plot(a, mean, marker="o", color="tab:green", label="DFI (mean over inputs)")
        ax.axhline(SAME_PERSON, color="tab:red", ls="--", lw=1, label=f"{SAME_PERSON:g}: below, the same person")
        ax.set_xlabel("α (edit strength)")
        ax.set_ylabel(f"face-descriptor distance to the input ({face.measured_on})")
        ax.set_title(f"identity by face recognition (dlib ResNet), {int(face.found.sum())}/{len(face.found)} faces")
        ax.set_ylim(0, max(1.0, float(np.nanmax(d)) * 1.1) if measured.any() else 1.0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, facecolor="white")
    Image.open(path).convert("RGB").save(path)
