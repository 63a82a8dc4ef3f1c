"""Through ROS: headpose_node in its own process, frames published over DDS on localhost, latencies measured."""

from __future__ import annotations

import time

from .machine import stats


def bench_ros(frame, camera, args, engine_kind: str) -> dict:
    """--ros-frames of `frame` at --ros-rate Hz to a node of --ros-backend on `engine_kind`: the time from
    publish to the face's /tf frame and to the HeadPoseArray, or {"skipped": why}."""
    from ..ros_harness import Pacer, isolated_ros, node_with_camera, stamp_key, stamp_now

    sent: dict[tuple[int, int], float] = {}
    params = {"num_threads": args.threads, "detection.model": args.detector, "backend": args.ros_backend,
              "inference.engine": engine_kind}
    with isolated_ros(), node_with_camera("/bench/image", "/bench/camera_info", params) as (node, client):
        client.wait_for_node(node, timeout=60)
        pacer = Pacer(args.ros_rate)
        for _ in range(args.ros_frames):
            stamp = stamp_now()
            sent[stamp_key(stamp)] = time.monotonic()
            client.publish_frame(frame, camera, stamp, "camera_optical_frame")
            pacer.wait()
        time.sleep(1.0)
        heads, tf = client.received()
    tf_latency = [(t - sent[k]) * 1e3 for t, msg in tf for tr in msg.transforms
                  if tr.child_frame_id.startswith("face_") and (k := stamp_key(tr.header.stamp)) in sent]
    heads_latency = [(t - sent[k]) * 1e3 for t, msg in heads if (k := stamp_key(msg.header.stamp)) in sent]
    if not tf_latency:
        return {"skipped": f"no /tf frame came back; node log:\n{node.output()[-2000:]}"}
    return {"publish_to_tf": stats(tf_latency), "publish_to_heads": stats(heads_latency),
            "published": args.ros_frames, "answered": len(heads_latency), "rate_hz": args.ros_rate,
            "engine": engine_kind}
