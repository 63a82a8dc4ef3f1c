"""``headpose-ros demo``: the node, over real DDS, on a built-in sequence, a video file or a camera.

It starts headpose_node as its own process (exactly as ``ros2 run`` would),
publishes Image + CameraInfo from a camera source, prints one line per frame
as the node's HeadPoseArray and AttentionTargetArray come back, and writes
the node's own ~/debug_image frames (boxes, projected face axes, ids, angles,
attended targets) to the output folder.

The built-in sequence is the astronaut photo that ships in scikit-image
(public domain, NASA): panned across a 640x480 frame, rotated in-plane and
mirrored, seen by an ideal 60 degree camera.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from ..cli import CommandError
from ..core.config import BACKENDS
from ..core.camera import CameraModel

FRAME_SIZE = (640, 480)
DEMO_FOV_DEG = 60.0
OPTICAL_FRAME = "camera_optical_frame"
BODY_FRAME = "camera_link"


def add_arguments(parser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--video", type=Path, metavar="FILE", help="a video file (any format OpenCV reads)")
    source.add_argument("--camera", type=int, metavar="N", help="an OpenCV camera index (e.g. 0 for /dev/video0)")
    parser.add_argument("--camera-info", type=Path, metavar="YAML",
                        help="calibration of --video/--camera (camera_calibration_parsers YAML); "
                             f"without it an ideal {DEMO_FOV_DEG:.0f} degree camera is assumed")
    parser.add_argument("--frames", type=int, default=120, help="frames to publish (default: 120)")
    parser.add_argument("--rate", type=float, default=15.0, help="publishing rate in Hz (default: 15)")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="folder for annotated frames (default: out/demo)")
    parser.add_argument("--backend", default="landmarks", choices=BACKENDS, help="estimation method (default: landmarks)")
    parser.add_argument("--params-file", type=Path, help="node parameters (default: config/headpose.yaml)")
    parser.add_argument("--isolated", action="store_true",
                        help="use a random ROS_DOMAIN_ID and localhost-only discovery")


def builtin_sequence(photo_rgb: np.ndarray, frames: int) -> Iterator[np.ndarray]:
    """640x480 RGB frames: the photo panned left to right, then rotated +-25 degrees, then mirrored."""
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
        import cv2

        M = cv2.getRotationMatrix2D((src.shape[1] / 2, src.shape[0] / 2), angle, scale)
        M[0, 2] += w / 2 - src.shape[1] / 2 + dx
        M[1, 2] += h / 2 - src.shape[0] / 2
        yield cv2.warpAffine(np.ascontiguousarray(src), M, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=(40, 40, 40))


def _source(args) -> tuple[Iterator[np.ndarray], CameraModel, str]:
    import cv2

    from ..core.camera import CameraModelError

    if args.video is None and args.camera is None:
        from .. import assets

        try:
            photo = assets.read_photo("astronaut")
        except assets.AssetError as exc:
            raise CommandError(str(exc)) from None
        camera = CameraModel.from_field_of_view(*FRAME_SIZE, DEMO_FOV_DEG, OPTICAL_FRAME)
        head_and_shoulders = photo[0:320, 56:456]  # the 512x512 photo's upper part, face near its centre
        return builtin_sequence(head_and_shoulders, args.frames), camera, "built-in astronaut sequence"
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

    def frames():
        yield cv2.cvtColor(first, cv2.COLOR_BGR2RGB)
        for _ in range(args.frames - 1):
            ok, frame = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        cap.release()

    return frames(), camera, str(args.video or f"camera {args.camera}")


def frame_line(index: int, latency_s: float, heads, attention: dict) -> str:
    """One printed line: the frame, its latency, and each head's angles, position and attended target."""
    parts = []
    for h in heads:
        p = h.pose.pose.position
        text = (f"[{h.id}] yaw {h.yaw:+6.1f} pitch {h.pitch:+6.1f} roll {h.roll:+6.1f}  "
                f"t ({p.x:+.2f}, {p.y:+.2f}, {p.z:.2f}) m  conf {h.confidence:.2f}")
        a = attention.get(h.id)
        if a is not None:
            text += f"  -> {a.target} {a.dwell_s:.1f} s" if a.target else "  -> (none)"
        parts.append(text)
    return f"frame {index:4d}  {latency_s * 1000:5.1f} ms  {len(heads)} face(s)  " + ("  ".join(parts) or "-")


def run(args) -> int:
    import cv2
    from sensor_msgs.msg import Image
    from tf2_msgs.msg import TFMessage

    from headpose_ros.msg import AttentionTargetArray

    from .ros_harness import (
        Pacer, isolated_ros, large_image_dds_env, node_with_camera, optical_frame_static_tf, ros_with_env, stamp_key,
        stamp_now,
    )

    frames, camera, label = _source(args)
    args.out.mkdir(parents=True, exist_ok=True)
    sent: dict[tuple[int, int], tuple[int, float]] = {}  # stamp -> (frame index, publish time)
    index_of: dict[tuple[int, int], int] = {}
    waiting: dict[tuple[int, int], tuple] = {}  # a frame's heads, printed when its attention comes
    latencies: list[float] = []
    counts: list[int] = []
    expects_attention = [False]

    def key_of(msg) -> tuple[int, int]:
        return stamp_key(msg.header.stamp)

    def on_heads(now: float, msg) -> None:
        key = key_of(msg)
        if key not in sent:
            return
        index, sent_at = sent.pop(key)
        latencies.append((now - sent_at) * 1000)
        counts.append(len(msg.heads))
        if expects_attention[0]:
            waiting[key] = (index, now - sent_at, msg.heads)
        else:
            print(frame_line(index, now - sent_at, msg.heads, {}), flush=True)

    def on_attention(now: float, msg) -> None:
        frame = waiting.pop(key_of(msg), None)
        if frame is not None:
            print(frame_line(*frame, {a.id: a for a in msg.targets}), flush=True)

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
                               args.params_file, keep_log=True) as (node, client):
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
        print(f"publishing {label} at {args.rate:g} Hz on /camera/image_raw; annotated frames -> {args.out}/")
        pacer = Pacer(args.rate)
        published = 0
        for index, rgb in enumerate(frames):
            stamp = stamp_now()
            sent[stamp_key(stamp)] = (index, time.monotonic())
            index_of[stamp_key(stamp)] = index
            client.publish_frame(rgb, camera, stamp, OPTICAL_FRAME)
            published += 1
            pacer.wait()
            if not node.alive():
                raise CommandError(f"headpose_node died:\n{node.output()[-3000:]}")
        client.wait_until(lambda: not sent and not waiting, timeout=2.0)
        for frame in waiting.values():  # heads whose attention did not come back
            print(frame_line(*frame, {}), flush=True)
    faces = sum(1 for c in counts if c > 0)
    print(f"\n{published} frames published, {len(counts)} results received "
          f"({published - len(counts)} dropped by the newest-frame policy), {faces} with a face; "
          f"publish->result latency median {np.median(latencies) if latencies else float('nan'):.1f} ms; "
          f"frames in {args.out}/; node log: {node.log_path}")
    if not counts:
        raise CommandError(f"no result came back from headpose_node; its log:\n{node.output()[-3000:]}")
    return 0
