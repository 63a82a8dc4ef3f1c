"""headpose_node as a robot integrator meets it: every parameter readable, mistakes named, several cameras,
lost images seen, a clean stop on a double Ctrl-C. Real node processes over real DDS (isolated domain)."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from rcl_interfaces.msg import ParameterType  # noqa: E402
from rcl_interfaces.srv import GetParameters, ListParameters  # noqa: E402
from rclpy.node import Node  # noqa: E402

from headpose_ros.core.camera import CameraModel  # noqa: E402
from headpose_ros.tools.ros_harness import (CameraClient, NodeProcess, camera_info_msg,  # noqa: E402
                                           default_params_file, stamp_now)

from support import astronaut_frame  # noqa: E402

pytestmark = pytest.mark.ros


def wait_for_log(proc: NodeProcess, text: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = proc.output()
        if text in log:
            return log
        if not proc.alive():
            break
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in the node's log:\n{proc.output()[-3000:]}")


def call(node: Node, client, request, timeout: float = 20.0):
    assert client.wait_for_service(timeout_sec=timeout), f"no service {client.srv_name}"
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    assert future.done(), f"{client.srv_name} did not answer"
    return future.result()


def test_every_parameter_has_a_value_for_param_dump(ros, prepared_assets):
    """Before: attention.target_names had no value, so `ros2 param dump` printed `ros__parameters: {}` (one
    get_parameters request for all names answered nothing at all)."""
    with NodeProcess(default_params_file(), name="dump_node") as proc:
        wait_for_log(proc, "ready:")
        asker = Node("dump_asker")
        try:
            names = call(asker, asker.create_client(ListParameters, "/dump_node/list_parameters"),
                         ListParameters.Request()).result.names
            values = call(asker, asker.create_client(GetParameters, "/dump_node/get_parameters"),
                          GetParameters.Request(names=list(names))).values
        finally:
            asker.destroy_node()
    assert "attention.target_names" in names and "backend" in names and len(names) > 60
    assert len(values) == len(names)  # `ros2 param dump` gets every one in one request
    unset = [n for n, v in zip(names, values) if v.type == ParameterType.PARAMETER_NOT_SET]
    assert unset == []


def test_misspelled_parameters_and_a_params_file_for_another_node_are_named(ros, prepared_assets, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("typo_node:\n  ros__parameters:\n    score_treshold: 0.4\n    detection:\n"
                      "      score_treshold: 0.4\n    attention:\n      targets:\n        door:\n"
                      "          frame: map\n")
    other = tmp_path / "other.yaml"
    other.write_text("head_pose_node:\n  ros__parameters:\n    backend: hopenet\n")
    with NodeProcess(params, name="typo_node") as proc:
        wait_for_log(proc, "ready:")
    assert proc.process.returncode == 0
    log = proc.output()
    assert "unknown parameter 'score_treshold' is ignored; did you mean 'detection.score_threshold'?" in log
    assert "unknown parameter 'detection.score_treshold' is ignored; did you mean 'detection.score_threshold'?" in log
    assert "parameter 'attention.targets.door.frame' is ignored: 'door' is not in attention.target_names" in log
    assert "parameters: 0 given" in log

    with NodeProcess(other, name="typo_node") as proc:
        wait_for_log(proc, "ready:")
    log = proc.output()
    assert "params file" in log and "['head_pose_node'] do not name this node, /typo_node" in log
    assert "Traceback" not in log


def test_two_cameras_publish_distinct_frames_and_statuses(ros, photo):
    """Before: with sequential ids both nodes published face_0001 under two parents, and both statuses were
    named 'headpose_node: head pose'."""
    camera = CameraModel.from_field_of_view(640, 480, 60.0, "x")
    frame = astronaut_frame(photo)
    params = {"tracking.id_style": "sequential", "tracking.min_hits": 1, "diagnostics_period": 0.5}
    clients = {}
    with NodeProcess(default_params_file(), params=params, namespace="/left",
                     remaps={"image": "/left/image_raw", "camera_info": "/left/camera_info"}) as left, \
            NodeProcess(default_params_file(), params=params, namespace="/right",
                        remaps={"image": "/right/image_raw", "camera_info": "/right/camera_info"}) as right:
        try:
            for side, proc in (("left", left), ("right", right)):
                clients[side] = CameraClient(f"/{side}/image_raw", f"/{side}/camera_info",
                                             f"/{side}/headpose_node/heads", name=f"{side}_camera", expect_tf=True)
                clients[side].wait_for_node(proc, timeout=90)
            stamps = {}
            for _ in range(40):
                for side, c in clients.items():
                    stamps[side] = stamp_now()
                    c.publish_frame(frame, camera, stamps[side], f"{side}_camera_optical_frame")
                time.sleep(1 / 10)
                if all(any(m.heads for _, m in c.received()[0]) for c in clients.values()):
                    break
            for c in clients.values():
                assert c.wait_until(lambda c=c: any(m.heads for _, m in c.heads), timeout=10)
                assert c.wait_until(lambda c=c: len(c.diagnostics) >= 2, timeout=10)
            tf = clients["left"].received()[1]
            statuses = {s.name for c in clients.values() for d in c.diagnostics for s in d.status}
        finally:
            for c in clients.values():
                c.close()
    children = {}
    for _, msg in tf:
        for t in msg.transforms:
            children.setdefault(t.child_frame_id, set()).add(t.header.frame_id)
    assert {"face_left_0001", "face_right_0001"} <= set(children)
    assert children["face_left_0001"] == {"left_camera_optical_frame"}
    assert children["face_right_0001"] == {"right_camera_optical_frame"}
    assert all(len(parents) == 1 for name, parents in children.items() if name.startswith("face_"))
    assert {"/left/headpose_node: head pose", "/right/headpose_node: head pose"} <= statuses
    heads = {side: {h.id for _, m in c.heads for h in m.heads} for side, c in clients.items()}
    assert heads == {"left": {"left_0001"}, "right": {"right_0001"}}


def test_images_lost_on_the_way_turn_the_diagnostics_to_warn(ros, photo):
    """Before: with 6 of 15 images a second arriving, /diagnostics still said OK. Here every other image is
    'lost' (its CameraInfo is published, the image is not)."""
    camera = CameraModel.from_field_of_view(640, 480, 60.0, "lossy_optical_frame")
    frame = astronaut_frame(photo)
    with NodeProcess(default_params_file(), params={"diagnostics_period": 0.5}, name="lossy_node",
                     remaps={"image": "/lossy/image_raw", "camera_info": "/lossy/camera_info"}) as proc:
        client = CameraClient("/lossy/image_raw", "/lossy/camera_info", "/lossy_node/heads", name="lossy_camera")
        try:
            client.wait_for_node(proc, timeout=90)

            def warned() -> bool:
                return any(s.name == "/lossy_node: head pose" and s.level == DiagnosticStatus.WARN
                           and s.message.startswith("images lost on the way") for d in client.diagnostics
                           for s in d.status)

            deadline = time.monotonic() + 60
            k = 0
            while time.monotonic() < deadline and not warned():
                stamp = stamp_now()
                if k % 2 == 0:
                    client.publish_frame(frame, camera, stamp, "lossy_optical_frame")
                else:  # the image of this frame is lost on the way
                    client.info_pub.publish(camera_info_msg(camera, stamp, "lossy_optical_frame"))
                k += 1
                time.sleep(1 / 15)
            assert warned(), [s.message for d in client.diagnostics[-3:] for s in d.status]
            last = [s for d in client.diagnostics for s in d.status if s.name == "/lossy_node: head pose"][-1]
            lost = {kv.key: kv.value for kv in last.values}["images lost on the way (window)"]
            assert int(lost.split(" of ")[0]) > 0
        finally:
            client.close()


@pytest.mark.parametrize("gap_s", [0.05, 0.3])
def test_a_second_ctrl_c_while_stopping_ends_the_node_cleanly(ros, prepared_assets, gap_s):
    """Before: a second SIGINT during shutdown printed a traceback, or ended the node with exit -2."""
    with NodeProcess(default_params_file(), name="ctrl_c_node") as proc:
        wait_for_log(proc, "ready:")
        proc.process.send_signal(signal.SIGINT)
        time.sleep(gap_s)
        if proc.alive():
            proc.process.send_signal(signal.SIGINT)
        proc.process.wait(timeout=30)
    log = proc.output()
    assert proc.process.returncode == 0, log[-2000:]
    assert "Traceback" not in log and "KeyboardInterrupt" not in log


def test_a_camera_mounted_sideways_gets_poses_in_its_own_optical_frame(ros, photo):
    """image_rotation turns the images upright for the engine; what the node publishes is in the camera's frame."""
    from headpose_ros.core.rotation import matrix_from_quaternion_xyzw
    from headpose_ros.core.upright import Upright
    from headpose_ros.pipeline import create_engine

    from support import single_frame_config

    frame = astronaut_frame(photo)
    camera = CameraModel.from_field_of_view(640, 480, 60.0, "side_optical_frame")
    upright = create_engine(single_frame_config()).process(frame, camera, 1.0).heads[0]
    mounted = Upright(270, 640, 480)  # the camera rolled a quarter turn counter-clockwise
    seen, seen_camera = mounted.image(frame), mounted.camera(camera)
    params = {"image_rotation": 90, "tracking.min_hits": 1, "smoothing.enabled": False}
    with NodeProcess(default_params_file(), params=params, name="side_node",
                     remaps={"image": "/side/image_raw", "camera_info": "/side/camera_info"}) as proc:
        client = CameraClient("/side/image_raw", "/side/camera_info", "/side_node/heads", name="side_camera")
        try:
            client.wait_for_node(proc, timeout=90)
            for _ in range(30):
                client.publish_frame(seen, seen_camera, stamp_now(), "side_optical_frame")
                if client.wait_until(lambda: any(m.heads for _, m in client.heads), timeout=0.3):
                    break
            answers = [m for _, m in client.received()[0] if m.heads]
        finally:
            client.close()
    assert answers, proc.output()[-2000:]
    head = answers[0].heads[0]
    assert answers[0].header.frame_id == "side_optical_frame"
    q = head.pose.pose.orientation
    R = matrix_from_quaternion_xyzw([q.x, q.y, q.z, q.w])
    p = head.pose.pose.position
    angle = np.degrees(np.arccos(np.clip((np.trace(R.T @ mounted.Q @ upright.R) - 1) / 2, -1, 1)))
    assert angle < 1.0
    np.testing.assert_allclose([p.x, p.y, p.z], mounted.Q @ upright.t, atol=0.01)
    box = head.roi  # in the sideways image's own pixels
    expected = mounted.boxes(upright.box.reshape(1, 4))[0]
    assert abs(box.x_offset - expected[0]) < 4 and abs(box.y_offset - expected[1]) < 4


def change_state(asker, clients, node_name: str, transition: int) -> bool:
    from lifecycle_msgs.srv import ChangeState

    client = clients.setdefault(("change", node_name),
                                asker.create_client(ChangeState, f"/{node_name}/change_state"))
    request = ChangeState.Request()
    request.transition.id = transition
    return call(asker, client, request, timeout=60).success


def current_state(asker, clients, node_name: str) -> str:
    from lifecycle_msgs.srv import GetState

    client = clients.setdefault(("get", node_name), asker.create_client(GetState, f"/{node_name}/get_state"))
    return call(asker, client, GetState.Request()).current_state.label


def test_the_managed_node_loads_serves_pauses_and_frees_on_its_transitions(ros, photo):
    """headpose_lifecycle_node: configure loads the models, activate subscribes and publishes, deactivate stops
    processing and keeps the models, cleanup frees them. Driven through the lifecycle services."""
    from lifecycle_msgs.msg import Transition

    camera = CameraModel.from_field_of_view(640, 480, 60.0, "managed_optical_frame")
    frame = astronaut_frame(photo)
    params = {"tracking.min_hits": 1}
    with NodeProcess(default_params_file(), params=params, name="managed_node", executable="headpose_lifecycle_node",
                     remaps={"image": "/managed/image_raw", "camera_info": "/managed/camera_info"}) as proc:
        asker, clients = Node("lifecycle_asker"), {}
        client = CameraClient("/managed/image_raw", "/managed/camera_info", "/managed_node/heads",
                              name="managed_camera")
        try:
            def answers(seconds: float) -> int:
                """How many of the frames published for `seconds` the node answers (matched by stamp, so a late
                answer to an earlier frame is not counted)."""
                stamps, end = [], time.monotonic() + seconds
                while time.monotonic() < end:
                    stamps.append(stamp_now())
                    client.publish_frame(frame, camera, stamps[-1], "managed_optical_frame")
                    time.sleep(0.1)
                client.wait_until(lambda: client.heads_for(stamps[-1]) is not None, timeout=2.0)
                return sum(client.heads_for(stamp) is not None for stamp in stamps)

            assert current_state(asker, clients, "managed_node") == "unconfigured"
            assert "models loaded" not in proc.output() and client.image_pub.get_subscription_count() == 0
            assert change_state(asker, clients, "managed_node", Transition.TRANSITION_CONFIGURE)
            assert current_state(asker, clients, "managed_node") == "inactive"
            assert "configured: models loaded" in proc.output()
            loaded = proc.output().count("engine auto for face_landmark.onnx")
            assert loaded >= 1
            assert client.image_pub.get_subscription_count() == 0  # configured, not reading images

            assert change_state(asker, clients, "managed_node", Transition.TRANSITION_ACTIVATE)
            client.wait_for_node(proc, timeout=30)
            assert answers(3.0) > 0

            assert change_state(asker, clients, "managed_node", Transition.TRANSITION_DEACTIVATE)
            assert client.wait_until(lambda: client.image_pub.get_subscription_count() == 0, timeout=10)
            assert answers(1.5) == 0  # inactive: nothing processed

            assert change_state(asker, clients, "managed_node", Transition.TRANSITION_ACTIVATE)
            client.wait_for_node(proc, timeout=30)
            assert answers(3.0) > 0
            assert proc.output().count("engine auto for face_landmark.onnx") == loaded  # the models were kept

            assert change_state(asker, clients, "managed_node", Transition.TRANSITION_DEACTIVATE)
            assert change_state(asker, clients, "managed_node", Transition.TRANSITION_CLEANUP)
            assert current_state(asker, clients, "managed_node") == "unconfigured"
            assert "unconfigured: models freed" in proc.output()
        finally:
            client.close()
            asker.destroy_node()
    assert proc.process.returncode == 0 and "Traceback" not in proc.output()
