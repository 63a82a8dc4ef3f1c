"""Plain helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib

import cv2
import numpy as np

from headpose_ros.core.config import EngineConfig, with_values


def centred_frame(face_rgb: np.ndarray, size=(640, 480), face_height_fraction=0.8, angle_deg=0.0, mirror=False,
                  shift=(0.0, 0.0)) -> np.ndarray:
    """A frame of `size` with the photo scaled, centred (plus `shift` px), rotated in-plane and/or mirrored.

    Rotation is about the frame centre, counter-clockwise on screen for angle > 0.
    """
    w, h = size
    src = np.ascontiguousarray(face_rgb[:, ::-1]) if mirror else face_rgb
    s = face_height_fraction * h / src.shape[0]
    M = cv2.getRotationMatrix2D((src.shape[1] / 2, src.shape[0] / 2), angle_deg, s)
    M[0, 2] += (w - src.shape[1]) / 2 + shift[0]
    M[1, 2] += (h - src.shape[0]) / 2 + shift[1]
    return cv2.warpAffine(src, M, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=(40, 40, 40))


def astronaut_frame(photo, **kw) -> np.ndarray:
    """The astronaut's face centred in a 640x480 frame (the photo is cropped to her head first)."""
    face = photo("astronaut")[0:300, 100:400]
    return centred_frame(face, **kw)


def single_frame_config(**overrides) -> EngineConfig:
    """Publish on the first detection, deterministic ids."""
    values = {"tracking.min_hits": 1, "tracking.id_style": "sequential"}
    values.update(overrides)
    return with_values(EngineConfig(), values)


def render_camera(width=640, height=480, fov=60.0):
    from headpose_ros.core.camera import CameraModel

    return CameraModel.from_field_of_view(width, height, fov, "camera_optical_frame")


def textured_astronaut(photo):
    """The metric face model textured from the astronaut photo's face mesh landmarks."""
    from headpose_ros.core.face_model import load_face_model
    from headpose_ros.evaluation.render import textured_face
    from headpose_ros.pipeline import face_stages

    image = photo("astronaut")
    detector, mesh = face_stages()
    landmarks = mesh.estimate(image, detector.detect(image)).points[0]
    return textured_face(image, landmarks, load_face_model())


@contextlib.contextmanager
def serving_node(prefix: str, params: dict | None = None, client_name: str = "headpose_camera_client",
                 record: dict | None = None):
    """headpose_node as a user starts it (config/headpose.yaml plus `params`) on /<prefix>/image_raw and
    /<prefix>/camera_info, and a CameraClient publishing there: yields (node, client) once the node is
    ready and the client's subscriptions are matched. `record`: {attribute: (type, topic, depth)} topics
    the client records, as client.<attribute>. On exit the node's log must hold no traceback.
    """
    from headpose_ros.tools.ros_harness import CameraClient, NodeProcess, default_params_file

    image, info = f"/{prefix}/image_raw", f"/{prefix}/camera_info"
    with NodeProcess(default_params_file(), params=params, remaps={"image": image, "camera_info": info}) as node:
        client = CameraClient(image, info, "/headpose_node/heads", name=client_name, expect_tf=True)
        try:
            for attribute, (msg_type, topic, depth) in (record or {}).items():
                setattr(client, attribute, client.record(msg_type, topic, depth=depth))
            client.wait_for_node(node, timeout=60)
            yield node, client
        finally:
            client.close()
    assert "Traceback" not in node.output(), node.output()


class NodeUnderTest:
    """A real in-process node to test, and a listener node that records what it publishes.

    Both are named `<prefix>_<tag>` / `<prefix>_listener_<tag>` with a tag unique to this object, so
    nothing else in the DDS domain is mistaken for this test's traffic. The listener has its own
    executor; spin_until() spins it until a predicate holds or the timeout passes.
    """

    def __init__(self, prefix: str):
        import uuid

        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        self.tag = uuid.uuid4().hex[:8]
        self.node = Node(f"{prefix}_{self.tag}")
        self.listener = Node(f"{prefix}_listener_{self.tag}")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.listener)

    def spin_until(self, predicate, timeout: float = 10.0) -> bool:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def close(self) -> None:
        self.executor.remove_node(self.listener)
        self.executor.shutdown()
        self.listener.destroy_node()
        self.node.destroy_node()
