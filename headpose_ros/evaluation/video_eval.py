"""Tracking measured on video with exact truth (what ``headpose-ros synth --video`` writes).

Each sequence is played through one engine in video mode, in order, with its
stamps (engine.reset() between sequences). In every frame each published head
is matched to the truth head whose box centre is nearest its own, within half
the truth box's size; greedy, nearest first.

A truth head is *eligible* (counted for recall) when at least half of its face
is visible (inside the image, not covered), its box is at least 24 px wide,
and, relative to the line of sight, |yaw| <= 75 and |pitch| <= 35 degrees.

Per sequence and backend:

- recall: matched eligible heads / eligible heads; also per frame (the plot);
- rotation error: geodesic angle to the truth (deg), over matched eligible heads;
- depth error: |z - z_true| (metres, and relative to z_true);
- jitter: frame to frame, the rotation of the estimate relative to that of the
  truth, as a geodesic angle (deg): the change of the estimate minus that of the
  truth. Over pairs of consecutive frames in which one person was matched to
  one track both times. Median and 95th percentile;
- id switches: how often the track id matched to one person changes (gaps
  where the person is not matched do not count as a switch by themselves);
- first found: frames from a person's first eligible frame to the first frame
  it is published (min_hits confirms a new face, so 2 is the least at the
  default tracking.min_hits 3);
- reappear: after a person was not eligible (hidden) for a while, frames from
  eligible again until published again; the largest per sequence;
- looking at the camera: a head looks at the camera when its gaze ray (face +x)
  passes within attention.cone_half_angle_deg (15) of the camera centre; the
  share of matched heads where estimate and truth agree;
- false heads: published heads matched to no truth head.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.attention import gaze_geometry
from ..core.camera import CameraModel
from ..core.config import AttentionConfig
from ..core.rotation import angle_between_deg
from .datasets import DatasetError

VIDEO_FORMAT = "headpose_ros.video/1"
MIN_VISIBLE = 0.5
MIN_BOX_PX = 24.0
MAX_YAW_DEG = 75.0
MAX_PITCH_DEG = 35.0
LOOKING_CONE_DEG = AttentionConfig().cone_half_angle_deg


@dataclass
class TruthHead:
    person: int
    R: np.ndarray
    t: np.ndarray
    box: np.ndarray
    visible: float
    view_yaw: float
    view_pitch: float

    @property
    def eligible(self) -> bool:
        return (self.visible >= MIN_VISIBLE and self.box[2] - self.box[0] >= MIN_BOX_PX
                and abs(self.view_yaw) <= MAX_YAW_DEG and abs(self.view_pitch) <= MAX_PITCH_DEG)


@dataclass
class VideoFrame:
    image: Path
    stamp: float
    heads: list[TruthHead]

    def read(self) -> np.ndarray:
        import cv2

        image = cv2.imread(str(self.image))
        if image is None:
            raise DatasetError(f"{self.image}: cannot read the image")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@dataclass
class VideoSequence:
    name: str
    frames: list[VideoFrame]


@dataclass
class VideoSet:
    name: str
    protocol: str
    rate_hz: float
    camera: CameraModel
    sequences: list[VideoSequence]


def is_video_set(path: str | Path) -> bool:
    labels = Path(path) / "labels.json"
    if not labels.is_file():
        return False
    try:
        with open(labels) as f:
            head = f.read(200)
    except OSError:
        return False
    return VIDEO_FORMAT in head


def read_video_set(folder: str | Path, sequences: list[str] | None = None) -> VideoSet:
    """The sequences in `folder` (labels.json of format headpose_ros.video/1), optionally only those named."""
    folder = Path(folder)
    try:
        labels = json.loads((folder / "labels.json").read_text())
        camera = CameraModel.from_yaml(folder / labels["camera_info"]).validated()
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"{folder}: not a readable video set: {exc}") from None
    if labels.get("format") != VIDEO_FORMAT:
        raise DatasetError(f"{folder}: labels.json is not of format {VIDEO_FORMAT}")
    out = []
    for seq in labels["sequences"]:
        if sequences and seq["name"] not in sequences:
            continue
        frames = [VideoFrame(folder / f["image"], float(f["stamp"]),
                             [TruthHead(int(h["person"]), np.array(h["R"]), np.array(h["t"]), np.array(h["box"]),
                                        float(h["visible"]), float(h["view_yaw"]), float(h["view_pitch"]))
                              for h in f["heads"]])
                  for f in seq["frames"]]
        out.append(VideoSequence(seq["name"], frames))
    if not out:
        raise DatasetError(f"{folder}: no sequences" + (f" named {', '.join(sequences)}" if sequences else ""))
    return VideoSet(labels.get("name", folder.name), labels.get("protocol", ""), float(labels["rate_hz"]), camera, out)


@dataclass
class Match:
    """One truth head in one frame, and the published head matched to it (if any)."""

    frame: int
    truth: TruthHead
    track_id: str | None = None
    R: np.ndarray | None = None
    t: np.ndarray | None = None


@dataclass
class SequenceRun:
    """Everything one backend published on one sequence, matched to the truth."""

    name: str
    rate_hz: float
    matches: list[list[Match]] = field(default_factory=list)  # per frame, one per truth head
    false_heads: int = 0


def match_heads(truth: list[TruthHead], heads) -> tuple[list[Match], int]:
    """Truth heads matched to published heads (module docstring); and how many heads matched none."""
    pairs = []
    for i, h in enumerate(truth):
        centre, size = (h.box[:2] + h.box[2:]) / 2, max(h.box[2] - h.box[0], h.box[3] - h.box[1])
        for j, head in enumerate(heads):
            d = float(np.linalg.norm((np.asarray(head.box[:2]) + np.asarray(head.box[2:])) / 2 - centre))
            if d <= 0.5 * size:
                pairs.append((d, i, j))
    matches = [Match(0, h) for h in truth]
    used_truth, used_head = set(), set()
    for _, i, j in sorted(pairs):
        if i in used_truth or j in used_head:
            continue
        used_truth.add(i)
        used_head.add(j)
        head = heads[j]
        matches[i] = Match(0, truth[i], head.track_id, np.asarray(head.R), np.asarray(head.t))
    return matches, len(heads) - len(used_head)


def run_sequence(engine, sequence: VideoSequence, camera: CameraModel, rate_hz: float) -> SequenceRun:
    engine.reset()
    run = SequenceRun(sequence.name, rate_hz)
    for k, frame in enumerate(sequence.frames):
        result = engine.process(frame.read(), camera, frame.stamp)
        matches, false_heads = match_heads(frame.heads, result.heads)
        for m in matches:
            m.frame = k
        run.matches.append(matches)
        run.false_heads += false_heads
    return run


def _looking(R: np.ndarray, t: np.ndarray) -> bool:
    angle, _ = gaze_geometry(R, t, np.zeros((1, 3)))
    return bool(angle[0] <= LOOKING_CONE_DEG)


def _by_person(run: SequenceRun) -> dict[int, list[Match]]:
    people: dict[int, list[Match]] = {}
    for frame in run.matches:
        for m in frame:
            people.setdefault(m.truth.person, []).append(m)
    return people


def summarise_run(run: SequenceRun) -> dict:
    """The figures of one run (module docstring)."""
    eligible = [m for frame in run.matches for m in frame if m.truth.eligible]
    found = [m for m in eligible if m.track_id is not None]
    rot = np.array([angle_between_deg(m.R, m.truth.R) for m in found])
    depth = np.array([abs(m.t[2] - m.truth.t[2]) for m in found])
    depth_rel = np.array([abs(m.t[2] - m.truth.t[2]) / m.truth.t[2] for m in found])
    looking = [_looking(m.R, m.t) == _looking(m.truth.R, m.truth.t) for m in found]
    jitter, switches, first_found, reappear = [], 0, [], []
    for person, track in _by_person(run).items():
        ids = [m.track_id for m in track if m.track_id is not None]
        switches += sum(1 for a, b in zip(ids, ids[1:]) if a != b)
        for a, b in zip(track, track[1:]):
            if a.track_id is not None and a.track_id == b.track_id:
                est = a.R.T @ b.R
                true = a.truth.R.T @ b.truth.R
                jitter.append(angle_between_deg(est, true))
        # First found, and reappearances after a stretch of not eligible.
        seen, waiting_since, hidden = False, None, False
        for m in track:
            if not m.truth.eligible:
                if seen:
                    hidden = True
                continue
            if waiting_since is None and (not seen or hidden):
                waiting_since = m.frame
            if m.track_id is not None and waiting_since is not None:
                (reappear if seen else first_found).append(m.frame - waiting_since)
                waiting_since, hidden = None, False
                seen = True
            elif m.track_id is not None:
                seen = True
        if waiting_since is not None:  # never found (again) before the end
            (reappear if seen else first_found).append(math.inf)
    per_frame = [sum(1 for m in frame if m.truth.eligible and m.track_id is not None)
                 / max(1, sum(1 for m in frame if m.truth.eligible)) if any(m.truth.eligible for m in frame)
                 else math.nan for frame in run.matches]
    jitter = np.array(jitter)

    def stat(values: np.ndarray, fn) -> float | None:
        return float(fn(values)) if values.size else None

    return {
        "frames": len(run.matches), "eligible": len(eligible), "found": len(found),
        "recall": len(found) / len(eligible) if eligible else None,
        "geodesic_mean": stat(rot, np.mean), "geodesic_median": stat(rot, np.median),
        "depth_mean_m": stat(depth, np.mean), "depth_rel_median": stat(depth_rel, np.median),
        "jitter_median": stat(jitter, np.median), "jitter_p95": stat(jitter, lambda v: np.percentile(v, 95)),
        "id_switches": switches, "first_found_frames": max(first_found) if first_found else None,
        "reappear_frames": max(reappear) if reappear else None, "reappearances": len(reappear),
        "looking_agreement": float(np.mean(looking)) if looking else None, "false_heads": run.false_heads,
        "recall_per_frame": per_frame,
        "error_per_frame": [float(np.mean([angle_between_deg(m.R, m.truth.R) for m in frame
                                           if m.truth.eligible and m.track_id is not None]))
                            if any(m.truth.eligible and m.track_id is not None for m in frame) else math.nan
                            for frame in run.matches],
    }


def evaluate_video(video: VideoSet, engines: dict, progress: Callable[[str], None] | None = None) -> dict[str, dict]:
    """{sequence: {backend: summary}} for every sequence and engine."""
    results: dict[str, dict] = {}
    for seq in video.sequences:
        results[seq.name] = {}
        for backend, engine in engines.items():
            if progress:
                progress(f"{seq.name}: {backend} ({len(seq.frames)} frames)")
            results[seq.name][backend] = summarise_run(run_sequence(engine, seq, video.camera, video.rate_hz))
    return results


def pooled(results: dict[str, dict]) -> dict[str, dict]:
    """Per backend, over all sequences: recall of all eligible heads, id switches summed, the slowest
    first find and reappearance, the mean rotation error (weighted by heads found)."""
    out: dict[str, dict] = {}
    for backends in results.values():
        for backend, s in backends.items():
            p = out.setdefault(backend, {"eligible": 0, "found": 0, "id_switches": 0, "first_found_frames": None,
                                         "reappear_frames": None, "_error_sum": 0.0})
            p["eligible"] += s["eligible"]
            p["found"] += s["found"]
            p["id_switches"] += s["id_switches"]
            p["_error_sum"] += (s["geodesic_mean"] or 0.0) * s["found"]
            for key in ("first_found_frames", "reappear_frames"):
                if s[key] is not None:
                    p[key] = s[key] if p[key] is None else max(p[key], s[key])
    for p in out.values():
        p["recall"] = p["found"] / p["eligible"] if p["eligible"] else None
        p["geodesic_mean"] = p.pop("_error_sum") / p["found"] if p["found"] else None
    return out


def _f(value, digits: int = 1, scale: float = 1.0, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "never"
    return f"{value * scale:.{digits}f}{suffix}"


def video_markdown(video: VideoSet, results: dict[str, dict]) -> str:
    lines = [f"### {video.name}: tracking on video", "", f"Protocol: {video.protocol}. Eligible: visible >= "
             f"{MIN_VISIBLE:g}, box >= {MIN_BOX_PX:g} px, |yaw| <= {MAX_YAW_DEG:g}, |pitch| <= {MAX_PITCH_DEG:g} deg. "
             "Frames at the sequence's rate; errors over found eligible heads.", "",
             "| sequence | backend | recall | rotation error mean / median (deg) | depth error mean (cm) "
             "| jitter median / p95 (deg) | id switches | first found (frames) | reappear (frames) "
             "| looking at camera agreed | false heads |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for seq, backends in results.items():
        for backend, s in backends.items():
            lines.append(
                f"| {seq} | `{backend}` | {_f(s['recall'], 1, 100, '%')} ({s['found']}/{s['eligible']}) "
                f"| {_f(s['geodesic_mean'])} / {_f(s['geodesic_median'])} | {_f(s['depth_mean_m'], 1, 100)} "
                f"| {_f(s['jitter_median'], 2)} / {_f(s['jitter_p95'], 2)} | {s['id_switches']} "
                f"| {_f(s['first_found_frames'], 0)} | {_f(s['reappear_frames'], 0)} "
                f"| {_f(s['looking_agreement'], 1, 100, '%')} | {s['false_heads']} |")
    for backend, p in pooled(results).items():
        lines.append(f"| **all** | `{backend}` | **{_f(p['recall'], 1, 100, '%')}** ({p['found']}/{p['eligible']}) "
                     f"| {_f(p['geodesic_mean'])} / – | | | {p['id_switches']} | {_f(p['first_found_frames'], 0)} "
                     f"| {_f(p['reappear_frames'], 0)} | | |")
    return "\n".join(lines) + "\n"


def plot_video(results: dict[str, dict], rate_hz: float, path: Path) -> str | None:
    """A PNG per sequence (rows): rotation error and recall against time, per backend. None when written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib is not installed ({exc}); pip install '.[eval]' in the headpose_ros clone"
    fig, axes = plt.subplots(len(results), 2, figsize=(11, 2.4 * len(results)), dpi=100, squeeze=False)
    for row, (seq, backends) in enumerate(results.items()):
        for k, (backend, s) in enumerate(backends.items()):
            time_s = np.arange(len(s["error_per_frame"])) / rate_hz
            axes[row, 0].plot(time_s, s["error_per_frame"], color=f"C{k}", lw=1, label=backend)
            axes[row, 1].plot(time_s, s["recall_per_frame"], color=f"C{k}", lw=1, label=backend)
        axes[row, 0].set_ylabel(f"{seq}\nerror (deg)")
        axes[row, 0].set_ylim(bottom=0)
        axes[row, 1].set_ylabel("recall")
        axes[row, 1].set_ylim(-0.05, 1.05)
        for ax in axes[row]:
            ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    axes[0, 0].set_title("rotation error of found heads")
    axes[0, 1].set_title("share of eligible heads found")
    axes[0, 1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None


def write_video_eval(out: Path, video: VideoSet, results: dict[str, dict], meta: dict) -> dict:
    """video.json, video.md and video.png in `out`."""
    out.mkdir(parents=True, exist_ok=True)

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None if math.isnan(value) else "never"
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    doc = {"dataset": video.name, "protocol": video.protocol, "rate_hz": video.rate_hz, **meta,
           "all": clean(pooled(results)), "results": clean(results)}
    (out / "video.json").write_text(json.dumps(doc, indent=1))
    (out / "video.md").write_text(video_markdown(video, results))
    return {"plot_skipped": plot_video(results, video.rate_hz, out / "video.png")}
