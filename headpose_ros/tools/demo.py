"""``headpose-ros demo``: the node, over real DDS, on a built-in sequence, a video file or a camera.

It starts headpose_node as its own process (exactly as ``ros2 run`` would),
publishes Image + CameraInfo from a camera source, prints one short line per
frame as the node's HeadPoseArray and AttentionTargetArray come back, and
writes the node's own ~/debug_image frames (boxes, projected face axes, ids,
angles, attended targets) to the output folder.

The built-in sequence (evaluation.demo_sequence) is a real face, fitted in 3D
from the astronaut photo that ships in scikit-image (public domain, NASA),
turning to near profile (yaw +-85 degrees) and nodding (pitch +-30), seen by
an ideal 60 degree camera: what tells the backends apart. Its truth is known,
so each line shows it, and the run ends with how many frames of each part
(profile, nod, the rest) got a pose, and how far off it was.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..cli import CommandError
from ..core.camera import CameraModel
from ..core.config import BACKENDS, EngineConfig

FRAME_SIZE = (640, 480)
DEMO_FOV_DEG = 60.0
OPTICAL_FRAME = "camera_optical_frame"
BODY_FRAME = "camera_link"
VIDEO_FRAMES = 120  # --frames' default for a video or a camera
LINE_WIDTH = 120  # at most this many characters a printed frame line
CLOSE_DEG = 20.0  # the built-in sequence's summary: a pose whose yaw and pitch are this close to the truth
LEGEND = ("per face: id yaw/pitch/roll (deg, relative to the line of sight), distance (m), -> attended target "
          "and for how long;\n  fewer details and '+N more' when many faces share a line")


def add_arguments(parser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--video", type=Path, metavar="FILE", help="a video file (any format OpenCV reads)")
    source.add_argument("--camera", type=int, metavar="N", help="an OpenCV camera index (e.g. 0 for /dev/video0)")
    parser.add_argument("--camera-info", type=Path, metavar="YAML",
                        help="calibration of --video/--camera (camera_calibration_parsers YAML); "
                             f"without it an ideal {DEMO_FOV_DEG:.0f} degree camera is assumed")
    parser.add_argument("--frames", type=int,
                        help="frames to publish (default: the whole built-in sequence, about 10 s, played again "
                             f"if more are asked; {VIDEO_FRAMES} of a video or camera)")
    parser.add_argument("--rate", type=float, default=15.0, help="publishing rate in Hz (default: 15)")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="folder for annotated frames (default: out/demo)")
    parser.add_argument("--backend", default="landmarks", choices=BACKENDS, help="estimation method (default: landmarks)")
    parser.add_argument("--params-file", type=Path, help="node parameters (default: config/headpose.yaml)")
    parser.add_argument("--isolated", action="store_true",
                        help="use a random ROS_DOMAIN_ID and localhost-only discovery")


def builtin_sequence(photo_rgb: np.ndarray, frames: int) -> Iterator[np.ndarray]:
    """640x480 RGB frames: the photo panned left to right, then rotated +-25 degrees, then mirrored.

    The demo's sequence before it showed head turns; the bench still times this one (tools.bench).
    """
    import cv2

    w, h = FRAME_SIZE
    face = photo_rgb
    scale = 0.9 * h / face.shape[0]
    for i in range(frames):
        phase = i / max(1, frames - 1)
        if phase < 0.4:  # pan
            dx, angle, mirror = (phase / 0.4 - 0.5) * 0.5 * w, 0.0, False
        elif phase < 0.8:  # rotate in-plane
            dx, angle, mirror = 0.0, 25.0 * math.sin((phase - 0.4) / 0.4 * 2 * math.pi), False
        else:  # mirrored, panning back
            dx, angle, mirror = (0.5 - (phase - 0.8) / 0.2) * 0.3 * w, 0.0, True
        src = face[:, ::-1] if mirror else face
        M = cv2.getRotationMatrix2D((src.shape[1] / 2, src.shape[0] / 2), angle, scale)
        M[0, 2] += w / 2 - src.shape[1] / 2 + dx
        M[1, 2] += h / 2 - src.shape[0] / 2
        yield cv2.warpAffine(np.ascontiguousarray(src), M, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=(40, 40, 40))


@dataclass
class Source:
    """What the demo publishes: RGB frames, the camera that saw them, a name for the user, and, for the
    built-in sequence, the rendered head's angles of each frame (truth[index])."""

    frames: Iterable[np.ndarray]
    camera: CameraModel
    label: str
    truth: Sequence | None = None  # evaluation.demo_sequence.Truth per frame index


def _builtin_source(args) -> Source:
    from .. import assets
    from ..evaluation.demo_sequence import render_sequence

    camera = CameraModel.from_field_of_view(*FRAME_SIZE, DEMO_FOV_DEG, OPTICAL_FRAME)
    try:
        images, truths = render_sequence(assets.read_photo, camera, args.rate, args.frames)
    except assets.AssetError as exc:
        raise CommandError(str(exc)) from None
    count = len(images) if args.frames is None else args.frames
    # Played again from the start when more frames are asked: it starts and ends facing the camera.
    return Source((images[k % len(images)] for k in range(count)), camera,
                  "the built-in sequence (a fitted real face turning to profile and nodding)",
                  [truths[k % len(truths)] for k in range(count)])


def demo_source(args) -> Source:
    """The frames to publish: the built-in sequence, or --video / --camera (CommandError when it cannot play)."""
    import cv2

    from ..core.camera import CameraModelError

    if args.frames is not None and args.frames < 1:
        raise CommandError(f"--frames must be at least 1 (got {args.frames})")
    if not args.rate > 0:
        raise CommandError(f"--rate must be positive (got {args.rate:g})")
    if args.video is None and args.camera is None:
        return _builtin_source(args)
    cap = cv2.VideoCapture(str(args.video) if args.video is not None else args.camera)
    if not cap.isOpened():
        raise CommandError(f"cannot open {'video ' + str(args.video) if args.video else 'camera ' + str(args.camera)}")
    ok, first = cap.read()
    if not ok:
        raise CommandError("the source gave no frame")
    h, w = first.shape[:2]
    if args.camera_info:
        try:
            camera = CameraModel.from_yaml(args.camera_info).validated()
        except CameraModelError as exc:
            raise CommandError(str(exc)) from None
    else:
        camera = CameraModel.from_field_of_view(w, h, DEMO_FOV_DEG, OPTICAL_FRAME)
        print(f"no --camera-info: assuming an ideal {DEMO_FOV_DEG:.0f} degree camera; distances are approximate")
    count = VIDEO_FRAMES if args.frames is None else args.frames

    def frames():
        yield cv2.cvtColor(first, cv2.COLOR_BGR2RGB)
        for _ in range(count - 1):
            ok, frame = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        cap.release()

    return Source(frames(), camera, str(args.video or f"camera {args.camera}"))


def _angles(yaw: float, pitch: float, roll: float) -> str:
    return f"{yaw:+.0f}/{pitch:+.0f}/{roll:+.0f}"


def _face_entry(head, attention, detail: int) -> str:
    """One face for a frame line; detail 2: angles, distance, target and dwell; 1: angles and target; 0: angles."""
    text = f"{head.id} {_angles(head.yaw, head.pitch, head.roll)}"
    if detail >= 2:
        text += f" {head.pose.pose.position.z:.2f}m"
    if attention is not None and detail >= 1 and (attention.target or detail >= 2):
        text += f" ->{attention.target or '(none)'}"
        if detail >= 2 and attention.target:
            text += f" {attention.dwell_s:.1f}s"
    return text


def frame_line(index: int, latency_s: float, heads, attention: dict, truth=None, width: int = LINE_WIDTH) -> str:
    """One printed line of at most `width` characters: the frame, its latency, how many faces, then
    'id yaw/pitch/roll' of each (LEGEND), and the rendered head's angles when the truth is known.

    heads: headpose_ros/HeadPose messages; attention: {face id: AttentionTarget message};
    truth: an object with yaw, pitch and roll in degrees, or None. The details (the 'yaw/pitch/roll'
    header, distance, target) go as faces are added, and faces that still do not fit are counted as '+N more'.
    """
    prefix = f"frame {index:4d} {latency_s * 1000:6.1f} ms  {len(heads)} face(s)"
    suffix = "" if truth is None else f"  | truth {_angles(truth.yaw, truth.pitch, truth.roll)}"
    if not heads:
        return prefix + "  -" + suffix
    for header, detail in ((True, 2), (True, 1), (False, 1), (False, 0)):
        start = prefix + ("  yaw/pitch/roll" if header else "")
        entries = [_face_entry(h, attention.get(h.id), detail) for h in heads]
        line = start + "  " + "  ".join(entries) + suffix
        if len(line) <= width:
            return line
    shown: list[str] = []
    for k, entry in enumerate(entries):
        more = f"  +{len(entries) - k - 1} more" if k + 1 < len(entries) else ""
        if len(prefix + "  " + "  ".join(shown + [entry]) + more + suffix) > width:
            break
        shown.append(entry)
    return prefix + "  " + "  ".join(shown + [f"+{len(entries) - len(shown)} more"]) + suffix


def part_summary(truth: Sequence, measured: dict[int, tuple[float, float, float] | None]) -> list[str]:
    """Lines on how the built-in sequence went, one per part of its script (profile, nod, other).

    truth: evaluation.demo_sequence.Truth per frame index; measured: for each frame whose result came
    back, the published (yaw, pitch, roll) in degrees of the face closest to the truth, or None when
    no face was published. A pose is close when its yaw and pitch are within CLOSE_DEG of the truth.
    """
    from ..evaluation.demo_sequence import NOD_PITCH_DEG, PROFILE_YAW_DEG

    names = {"profile": f"profile (|yaw| >= {PROFILE_YAW_DEG:.0f} deg)",
             "nod": f"nod (|pitch| >= {NOD_PITCH_DEG:.0f} deg)", "other": "facing or turning"}
    lines = []
    for part, name in names.items():
        answered = [k for k in measured if truth[k].part == part]
        posed = [k for k in answered if measured[k] is not None]
        yaw_error = np.array([abs(measured[k][0] - truth[k].yaw) for k in posed])
        pitch_error = np.array([abs(measured[k][1] - truth[k].pitch) for k in posed])
        close = int(np.sum((yaw_error <= CLOSE_DEG) & (pitch_error <= CLOSE_DEG)))
        text = f"  {name:26s} {len(posed):3d} of {len(answered):3d} answered frames with a pose, {close:3d} close"
        if posed:
            text += f"; mean error yaw {yaw_error.mean():4.1f}, pitch {pitch_error.mean():4.1f} deg"
        lines.append(text)
    return lines


def _closest(heads, truth) -> tuple[float, float, float] | None:
    """(yaw, pitch, roll) of the published face closest in angle to the truth; None without faces."""
    if not heads:
        return None
    best = min(heads, key=lambda h: abs(h.yaw - truth.yaw) + abs(h.pitch - truth.pitch))
    return best.yaw, best.pitch, best.roll


def confirmation_note(min_hits: int | None) -> str:
    """Why a new face's first frames print '0 face(s)': the tracker confirms it after min_hits detections."""
    if min_hits is None:
        return (f"new faces are published after tracking.min_hits detections (default "
                f"{EngineConfig().tracking.min_hits}): a new face's first frames print '0 face(s)'")
    return (f"new faces are published after tracking.min_hits={min_hits} detections: a new face's first "
            f"{max(0, min_hits - 1)} frame(s) print '0 face(s)'")


def _min_hits(client) -> int | None:
    """tracking.min_hits as the running node has it (asked through its parameter service); None if it does not say."""
    from rclpy.parameter import parameter_value_to_python
    from rclpy.parameter_client import AsyncParameterClient

    params = AsyncParameterClient(client, "headpose_node")
    if params.wait_for_services(timeout_sec=3.0):
        future = params.get_parameters(["tracking.min_hits"])
        if client.wait_until(future.done, timeout=3.0) and future.result() is not None:
            values = future.result().values
            value = parameter_value_to_python(values[0]) if values else None
            if isinstance(value, int):
                return value
    return None


def run(args) -> int:
    import cv2
    from sensor_msgs.msg import Image
    from tf2_msgs.msg import TFMessage

    from headpose_ros.msg import AttentionTargetArray

    from .ros_harness import (
        Pacer, isolated_ros, large_image_dds_env, node_with_camera, optical_frame_static_tf, ros_with_env, stamp_key,
        stamp_now,
    )

    source = demo_source(args)
    truth = source.truth
    args.out.mkdir(parents=True, exist_ok=True)
    sent: dict[tuple[int, int], tuple[int, float]] = {}  # stamp -> (frame index, publish time)
    index_of: dict[tuple[int, int], int] = {}
    waiting: dict[tuple[int, int], tuple] = {}  # a frame's heads, printed when its attention comes
    latencies: list[float] = []
    counts: list[int] = []
    measured: dict[int, tuple[float, float, float] | None] = {}  # built-in sequence: frame -> published angles
    expects_attention = [False]

    def key_of(msg) -> tuple[int, int]:
        return stamp_key(msg.header.stamp)

    def show(index: int, latency_s: float, heads, attention: dict) -> None:
        frame_truth = None if truth is None else truth[index]
        print(frame_line(index, latency_s, heads, attention, frame_truth), flush=True)

    def on_heads(now: float, msg) -> None:
        key = key_of(msg)
        if key not in sent:
            return
        index, sent_at = sent.pop(key)
        latencies.append((now - sent_at) * 1000)
        counts.append(len(msg.heads))
        if truth is not None:
            measured[index] = _closest(msg.heads, truth[index])
        if expects_attention[0]:
            waiting[key] = (index, now - sent_at, msg.heads)
        else:
            show(index, now - sent_at, msg.heads, {})

    def on_attention(now: float, msg) -> None:
        frame = waiting.pop(key_of(msg), None)
        if frame is not None:
            show(*frame, {a.id: a for a in msg.targets})

    def on_debug_image(now: float, msg) -> None:
        index = index_of.get(key_of(msg))
        if index is not None and msg.encoding == "bgr8":
            image = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
            cv2.imwrite(str(args.out / f"frame_{index:04d}.jpg"), image)

    if args.isolated:
        ros = isolated_ros()
    else:  # the user's DDS setup, plus the profile for large images unless they chose one
        ros = ros_with_env({} if "FASTRTPS_DEFAULT_PROFILES_FILE" in os.environ else large_image_dds_env())
    with ros, node_with_camera("/camera/image_raw", "/camera/camera_info", {"backend": args.backend},
                               args.params_file, log_dir=args.out) as (node, client):
        client.on_heads(on_heads)
        client.record(AttentionTargetArray, "/headpose_node/attention", callback=on_attention, expected=False)
        client.record(Image, "/headpose_node/debug_image", depth=5, callback=on_debug_image)
        print(f"starting headpose_node ({' '.join(node.args)})")
        try:
            client.wait_for_node(node, timeout=60)
        except (RuntimeError, TimeoutError) as exc:
            raise CommandError(str(exc)) from None
        expects_attention[0] = client.count_publishers("/headpose_node/attention") > 0
        if expects_attention[0]:  # attention is on: let our subscription match before the first frame
            client.wait_until(lambda: client.matched("/headpose_node/attention"), timeout=5.0)
        client.static_pub.publish(TFMessage(transforms=[
            optical_frame_static_tf(client.get_clock().now().to_msg(), BODY_FRAME, OPTICAL_FRAME)]))
        min_hits = _min_hits(client)
        print(f"publishing {source.label} at {args.rate:g} Hz on /camera/image_raw; "
              f"annotated frames -> {args.out}/")
        print(f"  {LEGEND}" + ("; truth: the rendered head's yaw/pitch/roll" if truth is not None else ""))
        print(f"  {confirmation_note(min_hits)}", flush=True)
        pacer = Pacer(args.rate)
        published = 0
        for index, rgb in enumerate(source.frames):
            stamp = stamp_now()
            sent[stamp_key(stamp)] = (index, time.monotonic())
            index_of[stamp_key(stamp)] = index
            client.publish_frame(rgb, source.camera, stamp, OPTICAL_FRAME)
            published += 1
            pacer.wait()
            if not node.alive():
                raise CommandError(f"headpose_node died:\n{node.output()[-3000:]}")
        client.wait_until(lambda: not sent and not waiting, timeout=2.0)
        for frame in waiting.values():  # heads whose attention did not come back
            show(*frame, {})
    faces = sum(1 for c in counts if c > 0)
    print(f"\n{published} frames published, {len(counts)} results received "
          f"({published - len(counts)} dropped by the newest-frame policy), {faces} with a face; "
          f"publish->result latency median {np.median(latencies) if latencies else float('nan'):.1f} ms; "
          f"frames in {args.out}/; node log: {node.log_path}")
    if truth is not None and measured:
        print(f"backend {args.backend}, by part of the built-in sequence (close: yaw and pitch within "
              f"{CLOSE_DEG:.0f} deg of the truth):")
        print("\n".join(part_summary(truth, measured)))
    if not counts:
        raise CommandError(f"no result came back from headpose_node; its log:\n{node.output()[-3000:]}")
    return 0
