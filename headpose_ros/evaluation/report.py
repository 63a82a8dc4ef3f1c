"""Evaluation results as JSON, a Markdown table and a plot of error against yaw."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .metrics import PROTOCOLS, YAW_BUCKETS, Outcome, bucket_name, outcome_record, summarise


def _f(value, digits: int = 2, scale: float = 1.0, suffix: str = "", signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value * scale:{'+' if signed else ''}.{digits}f}{suffix}"


# Per protocol: its name, whose it is, and the column of faces with a pose (the detector's finds, or
# the estimates on the given boxes).
PROTOCOL_NAMES = {"detector": ("Detector protocol", "the package's own", "detected"),
                  "box": ("Labelled-box protocol", "published tables", "estimated")}


def camera_note(dataset) -> str:
    """Which camera the poses were solved with: the dataset's intrinsics, or the nominal pinhole (its field of view)."""
    nominal = [s.camera for s in dataset.samples if s.nominal_camera]
    if not nominal:
        return "the dataset's own intrinsics"
    fovs = sorted({round(2 * math.degrees(math.atan(c.width / 2 / c.fx)), 1) for c in nominal})
    assumed = (f"a pinhole assumed (the images carry no intrinsics): fx = fy, centred, "
               f"{' / '.join(f'{f:g}' for f in fovs)} deg horizontal field of view")
    return assumed if len(nominal) == len(dataset.samples) else f"the dataset's own intrinsics; for images without, {assumed}"


def eval_markdown(dataset, summaries: dict[str, dict[str, dict]]) -> str:
    """The tables of one dataset: the protocols side by side, then per protocol the figures per backend and the |yaw| buckets.

    summaries: {protocol: {backend: summarise(...)}} (protocols: metrics.PROTOCOLS).
    """
    reference = {s.reference for s in dataset.samples}
    relative = "the viewing ray through the face" if reference == {"ray"} else \
        "the camera axes" if reference == {"camera"} else "the camera axes or the viewing ray, as labelled"
    lines = [f"### {dataset.name}", "", f"Dataset: {dataset.protocol}. Dropped by the dataset's protocol: "
             f"{len(dataset.dropped)}.", "", f"Camera: {camera_note(dataset)}.", "",
             "Angles: yaw, pitch, roll in the 300W-LP / AFLW2000 convention of the published tables (yaw > 0 turns "
             "the nose to the image's left, pitch > 0 looks up, roll > 0 is clockwise on screen), truth and estimate "
             f"both relative to {relative}; MAE and bias (mean signed error, estimate - truth: a negative pitch bias "
             "looks further down than the labels) in degrees.", ""]
    if len(summaries) > 1:
        protocols = list(summaries)
        lines += ["| backend | " + " | ".join(f"{PROTOCOL_NAMES[p][0]}: {PROTOCOL_NAMES[p][2]} | **MAE mean** "
                                             "| pitch bias" for p in protocols) + " |",
                  "|---|" + "---|---|---|" * len(protocols)]
        for backend in summaries[protocols[0]]:
            cells = []
            for p in protocols:
                s = summaries[p][backend]
                cells.append(f"{_f(s['detection_rate'], 1, 100, '%')} | **{_f(s.get('mae_mean'))}** "
                             f"| {_f(s.get('bias_pitch'), 1, 1, '', True)}")
            lines.append(f"| `{backend}` | " + " | ".join(cells) + " |")
        lines.append("")
    for protocol, by_backend in summaries.items():
        name, whose, found = PROTOCOL_NAMES[protocol]
        boxes = f" Boxes: {dataset.boxes}." if protocol == "box" else ""
        lines += [f"#### {name} ({whose})", "", f"{PROTOCOLS[protocol]}.{boxes}", ""]
        lines += _protocol_tables(by_backend, found) + [""]
    return "\n".join(lines)


def _protocol_tables(summaries: dict[str, dict], found: str) -> list[str]:
    """Overall figures per backend, then the |yaw| buckets; `found` names the column of faces with a pose."""
    lines = [f"| backend | {found} | MAE yaw | MAE pitch | MAE roll | **MAE mean** | pitch bias | bias yaw / roll "
             "| geodesic median | geodesic mean | translation median | depth error median |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for backend, s in summaries.items():
        lines.append(
            f"| `{backend}` | {s['detected']}/{s['samples']} ({_f(s['detection_rate'], 1, 100, '%')}) "
            f"| {_f(s.get('mae_yaw'))} | {_f(s.get('mae_pitch'))} | {_f(s.get('mae_roll'))} "
            f"| **{_f(s.get('mae_mean'))}** | {_f(s.get('bias_pitch'), 2, 1, '', True)} "
            f"| {_f(s.get('bias_yaw'), 2, 1, '', True)} / {_f(s.get('bias_roll'), 2, 1, '', True)} "
            f"| {_f(s.get('geodesic_median'))} | {_f(s.get('geodesic_mean'))} "
            f"| {_f(s.get('translation_median_m'), 1, 1000, ' mm')} | {_f(s.get('depth_rel_median'), 1, 100, '%')} |")
    buckets = [bucket_name(lo, hi) for lo, hi in YAW_BUCKETS]
    lines += ["", f"By |yaw| of the truth as the camera sees it (degrees): MAE mean / {found}.", "",
              "| backend | " + " | ".join(f"{b}°" for b in buckets) + " |",
              "|---|" + "---|" * len(buckets)]
    for backend, s in summaries.items():
        cells = []
        for b in buckets:
            part = s["by_yaw"].get(b)
            cells.append("–" if part is None else f"{_f(part.get('mae_mean'))} / {part['detected']} of {part['samples']}")
        lines.append(f"| `{backend}` | " + " | ".join(cells) + " |")
    return lines


# Median lines and markers of each protocol in the plot.
PROTOCOL_LINES = {"detector": ("-", "o"), "box": ("--", "s")}


def plot_error_vs_yaw(outcomes: dict[str, dict[str, list[Outcome]]], path: Path, title: str) -> str | None:
    """A PNG of geodesic error against the truth's yaw (as the camera sees it), per backend and protocol
    (outcomes: {protocol: {backend: outcomes}}; solid median lines for the detector protocol, dashed for the box).

    Returns None when written, else why not (matplotlib missing).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib is not installed ({exc}); pip install '.[eval]' in the headpose_ros clone"
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    edges = np.arange(-90, 91, 15)
    for protocol, by_backend in outcomes.items():
        for k, (backend, found) in enumerate(by_backend.items()):
            # Signed yaw of the view: sign from the truth's own angles, size from the ray-relative one.
            yaw = np.array([math.copysign(o.view_yaw_deg, o.truth_deg[0]) for o in found if o.detected])
            err = np.array([o.geodesic_deg for o in found if o.detected])
            colour = f"C{k}"
            ax.scatter(yaw, err, s=6, alpha=0.3 / len(outcomes), color=colour)
            centres, medians = [], []
            for lo, hi in zip(edges[:-1], edges[1:]):
                inside = err[(yaw >= lo) & (yaw < hi)]
                if inside.size >= 3:
                    centres.append((lo + hi) / 2)
                    medians.append(np.median(inside))
            line, marker = PROTOCOL_LINES[protocol]
            ax.plot(centres, medians, line, marker=marker, color=colour,
                    label=f"{backend}, {protocol} protocol (median per 15°)")
    ax.set_xlabel("true yaw as the camera sees it (deg)")
    ax.set_ylabel("rotation error, geodesic (deg)")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None


def write_eval(out: Path, dataset, outcomes: dict[str, dict[str, list[Outcome]]], meta: dict) -> dict:
    """eval.json (per protocol: summaries and per-sample outcomes; meta), eval.md and error_vs_yaw.png in `out`.

    outcomes: {protocol: {backend: outcomes}} (protocols: metrics.PROTOCOLS).
    """
    out.mkdir(parents=True, exist_ok=True)
    summaries = {p: {b: summarise(o) for b, o in by_backend.items()} for p, by_backend in outcomes.items()}
    doc = {"dataset": dataset.name, "dataset_protocol": dataset.protocol, "dropped": len(dataset.dropped),
           "camera": camera_note(dataset), "boxes": dataset.boxes, **meta,
           "protocols": {p: {"description": PROTOCOLS[p], "summary": summaries[p],
                             "samples": {b: [outcome_record(o) for o in found] for b, found in by_backend.items()}}
                         for p, by_backend in outcomes.items()}}
    (out / "eval.json").write_text(json.dumps(doc, indent=1))
    (out / "eval.md").write_text(eval_markdown(dataset, summaries))
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
