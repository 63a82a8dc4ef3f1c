"""Evaluation results as JSON, a Markdown table and a plot of error against yaw."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .metrics import YAW_BUCKETS, Outcome, bucket_name, outcome_record, summarise

def _f(value, digits: int = 2, scale: float = 1.0, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value * scale:.{digits}f}{suffix}"


def eval_markdown(dataset_name: str, protocol: str, summaries: dict[str, dict], dropped: int) -> str:
    """The tables of one dataset: overall figures per backend, then the |yaw| buckets."""
    lines = [f"### {dataset_name}", "", f"Protocol: {protocol}. Dropped by the protocol: {dropped}.", "",
             "| backend | detected | MAE yaw | MAE pitch | MAE roll | **MAE mean** | geodesic median | geodesic mean "
             "| translation median | depth error median |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for backend, s in summaries.items():
        lines.append(
            f"| `{backend}` | {s['detected']}/{s['samples']} ({_f(s['detection_rate'], 1, 100, '%')}) "
            f"| {_f(s.get('mae_yaw'))} | {_f(s.get('mae_pitch'))} | {_f(s.get('mae_roll'))} "
            f"| **{_f(s.get('mae_mean'))}** | {_f(s.get('geodesic_median'))} | {_f(s.get('geodesic_mean'))} "
            f"| {_f(s.get('translation_median_m'), 1, 1000, ' mm')} | {_f(s.get('depth_rel_median'), 1, 100, '%')} |")
    buckets = [bucket_name(lo, hi) for lo, hi in YAW_BUCKETS]
    lines += ["", "By |yaw| of the truth as the camera sees it (degrees): MAE mean / detected.", "",
              "| backend | " + " | ".join(f"{b}°" for b in buckets) + " |",
              "|---|" + "---|" * len(buckets)]
    for backend, s in summaries.items():
        cells = []
        for b in buckets:
            part = s["by_yaw"].get(b)
            cells.append("–" if part is None else f"{_f(part.get('mae_mean'))} / {part['detected']} of {part['samples']}")
        lines.append(f"| `{backend}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_error_vs_yaw(outcomes: dict[str, list[Outcome]], path: Path, title: str) -> str | None:
    """A PNG of geodesic error against the truth's yaw (as the camera sees it), per backend.

    Returns None when written, else why not (matplotlib missing).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib is not installed ({exc}); pip install 'headpose_ros[eval]'"
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    edges = np.arange(-90, 91, 15)
    for k, (backend, found) in enumerate(outcomes.items()):
        # Signed yaw of the view: sign from the truth's own angles, size from the ray-relative one.
        yaw = np.array([math.copysign(o.view_yaw_deg, o.truth_deg[0]) for o in found if o.detected])
        err = np.array([o.geodesic_deg for o in found if o.detected])
        colour = f"C{k}"
        ax.scatter(yaw, err, s=6, alpha=0.3, color=colour)
        centres, medians = [], []
        for lo, hi in zip(edges[:-1], edges[1:]):
            inside = err[(yaw >= lo) & (yaw < hi)]
            if inside.size >= 3:
                centres.append((lo + hi) / 2)
                medians.append(np.median(inside))
        ax.plot(centres, medians, "-o", color=colour, label=f"{backend} (median per 15°)")
    ax.set_xlabel("true yaw as the camera sees it (deg)")
    ax.set_ylabel("rotation error, geodesic (deg)")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None


def write_eval(out: Path, dataset, outcomes: dict[str, list[Outcome]], meta: dict) -> dict:
    """eval.json (summaries, per-sample outcomes, meta), eval.md and error_vs_yaw.png in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    summaries = {b: summarise(o) for b, o in outcomes.items()}
    doc = {"dataset": dataset.name, "protocol": dataset.protocol, "dropped": len(dataset.dropped), **meta,
           "summary": summaries, "samples": {b: [outcome_record(o) for o in found] for b, found in outcomes.items()}}
    (out / "eval.json").write_text(json.dumps(doc, indent=1))
    (out / "eval.md").write_text(eval_markdown(dataset.name, dataset.protocol, summaries, len(dataset.dropped)))
    skipped = plot_error_vs_yaw(outcomes, out / "error_vs_yaw.png", f"{dataset.name}: error against yaw")
    return {"summary": summaries, "plot_skipped": skipped}


def consistency_markdown(results: dict[str, dict]) -> str:
    """One table: flip, in-plane rotation and jitter per backend (degrees; position in mm)."""
    lines = ["| backend | faces | flip yaw / pitch / roll | roll shift (mean / median / max) | tilt | rotation geodesic "
             "| jitter yaw / pitch / roll | jitter position |",
             "|---|---|---|---|---|---|---|---|"]
    for backend, s in results.items():
        lines.append(
            f"| `{backend}` | {s['faces']} | {_f(s['flip_yaw'])} / {_f(s['flip_pitch'])} / {_f(s['flip_roll'])} "
            f"| {_f(s['roll_shift'])} / {_f(s['roll_shift_median'])} / {_f(s['roll_shift_max'])} | {_f(s['tilt'])} | {_f(s['rotation_geodesic'])} "
            f"| {_f(s['jitter_yaw'])} / {_f(s['jitter_pitch'])} / {_f(s['jitter_roll'])} "
            f"| {_f(s['jitter_position_mm'], 1, 1, ' mm')} |")
    return "\n".join(lines) + "\n"
