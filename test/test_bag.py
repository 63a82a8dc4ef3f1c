"""headpose-ros bag: a recorded bag in; the same bag, plus what headpose_node would have published, out."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rosbags")
pytest.importorskip("rclpy")

import cv2  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from rosbags.rosbag2 import Reader, Writer  # noqa: E402
from rosbags.rosbag2.enums import StoragePlugin  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header, String  # noqa: E402
from support import astronaut_frame, render_camera  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from headpose_ros.cli import main as cli  # noqa: E402
from headpose_ros.core.config import EngineConfig, with_values  # noqa: E402
from headpose_ros.msg import AttentionTargetArray, HeadPoseArray  # noqa: E402
from headpose_ros.ros.image_conversion import camera_from_info, compressed_to_rgb  # noqa: E402
from headpose_ros.ros.messages import head_pose_array  # noqa: E402

T0 = 1_700_000_000 * 10**9  # the first image's stamp, ns
PERIOD = 33_333_333  # 30 Hz
LATENCY = 4_000_000  # a recorder logs each message a little after its stamp
FRAME = "camera_optical_frame"
IMAGE_TOPIC, INFO_TOPIC = "/camera/image_raw", "/camera/camera_info"
SETTINGS = {"tracking.id_style": "sequential"}  # as --set gives it to the command


def stamp_of(ns: int) -> Time:
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


def camera_info(stamp_ns: int) -> CameraInfo:
    cam = render_camera()
    return CameraInfo(header=Header(stamp=stamp_of(stamp_ns), frame_id=FRAME), width=cam.width, height=cam.height,
                      distortion_model="plumb_bob", d=[0.0] * 5, k=cam.K.ravel().tolist(),
                      r=np.eye(3).ravel().tolist(), p=np.hstack([cam.K, np.zeros((3, 1))]).ravel().tolist())


def write_bag(path, frames, *, storage="sqlite3", compressed=False, infos=None, late=None):
    """A bag as a camera driver and `ros2 bag record` leave it: frames at 30 Hz on IMAGE_TOPIC (rgb8, or
    /compressed JPEG), a CameraInfo stamped like each image but logged after it, and an unrelated topic.

    infos: the indices of the frames that get a CameraInfo (default: all); late: {index: ns} images logged
    that much later than the others (out of stamp order). Returns, per frame, the stamp, the image's record
    time and the RGB image the node decodes.
    """
    store = get_typestore(Stores.ROS2_JAZZY)
    image_topic = IMAGE_TOPIC + "/compressed" if compressed else IMAGE_TOPIC
    image_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    sent = []
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        images = writer.add_connection(image_topic, image_type, typestore=store)
        info = writer.add_connection(INFO_TOPIC, "sensor_msgs/msg/CameraInfo", typestore=store)
        chatter = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=store)
        for i, rgb in enumerate(frames):
            stamp = T0 + i * PERIOD
            header = Header(stamp=stamp_of(stamp), frame_id=FRAME)
            if compressed:
                jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
                msg = CompressedImage(header=header, format="rgb8; jpeg compressed bgr8", data=jpeg)
                rgb = compressed_to_rgb(msg.format, jpeg)
            else:
                msg = Image(header=header, height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8",
                            step=rgb.shape[1] * 3, data=rgb.tobytes())
            record = stamp + LATENCY + (late or {}).get(i, 0)
            writer.write(images, record, serialize_message(msg))
            if infos is None or i in infos:
                writer.write(info, stamp + LATENCY + 1000, serialize_message(camera_info(stamp)))
            writer.write(chatter, stamp + LATENCY + 2000, serialize_message(String(data=f"frame {i}")))
            sent.append((stamp, record, rgb))
    return sent


def read_bag(path) -> dict[str, list[tuple[int, str, bytes]]]:
    """topic -> [(record time, type, CDR bytes), ...] in record order."""
    topics: dict[str, list] = {}
    with Reader(path) as reader:
        for conn, record_ns, raw in reader.messages():
            topics.setdefault(conn.topic, []).append((record_ns, conn.msgtype, bytes(raw)))
    return topics


def stamp_ns(header) -> int:
    return header.stamp.sec * 10**9 + header.stamp.nanosec


def pose_values(msg: HeadPoseArray) -> tuple[list[str], np.ndarray]:
    """(ids, (n, 17) of position, orientation, angles, confidence and box) of a HeadPoseArray."""
    rows = [[h.pose.pose.position.x, h.pose.pose.position.y, h.pose.pose.position.z,
             h.pose.pose.orientation.x, h.pose.pose.orientation.y, h.pose.pose.orientation.z,
             h.pose.pose.orientation.w, h.yaw, h.pitch, h.roll, h.confidence, h.roi.x_offset, h.roi.y_offset,
             h.roi.width, h.roi.height, h.pose.covariance[0], h.pose.covariance[35]] for h in msg.heads]
    return [h.id for h in msg.heads], np.array(rows, dtype=np.float64).reshape(-1, 17)


def engine_heads(sent) -> list[HeadPoseArray]:
    """What one HeadPoseEngine of the command's settings gives for the frames, in order: the reference."""
    from headpose_ros.pipeline import create_engine

    engine = create_engine(with_values(EngineConfig(), SETTINGS), log=lambda line: None)
    msg = camera_info(T0)
    camera = camera_from_info(msg.k, msg.d, msg.width, msg.height, msg.distortion_model, FRAME)
    out = []
    for stamp, _, rgb in sent:
        result = engine.process(rgb, camera, stamp * 1e-9)
        header = Header(stamp=stamp_of(stamp), frame_id=FRAME)
        # As a subscriber gets it: the angles, confidence and box are float32 on the wire.
        msg = head_pose_array(header, result.heads, rgb.shape[1], rgb.shape[0])
        out.append(deserialize_message(serialize_message(msg), HeadPoseArray))
    return out


@pytest.mark.parametrize("storage, compressed", [("sqlite3", False), ("mcap", True)], ids=["raw-sqlite3",
                                                                                           "jpeg-mcap"])
def test_bag_holds_what_the_node_would_publish(photo, tmp_path, capsys, storage, compressed):
    frames = [astronaut_frame(photo, shift=(3.0 * i, 1.0 * i)) for i in range(6)]
    sent = write_bag(tmp_path / "in", frames, storage=storage, compressed=compressed)
    code = cli(["bag", str(tmp_path / "in"), str(tmp_path / "out"), "--set", "tracking.id_style=sequential"])
    report = capsys.readouterr()
    assert code == 0, report.err
    assert "images: 6, processed 6, dropped 0" in report.out
    assert "faces: 4 published" in report.out  # from the third image on (tracking.min_hits 3)
    assert "time per processed image:" in report.out
    # OUT is in IN's storage, and holds IN as it was, every message at its record time.
    assert any((tmp_path / "out").glob("*.mcap" if storage == "mcap" else "*.db3"))
    given, got = read_bag(tmp_path / "in"), read_bag(tmp_path / "out")
    for topic, messages in given.items():
        assert got[topic] == messages, topic
    assert set(got) == set(given) | {"/headpose_node/heads", "/headpose_node/attention", "/tf"}

    # One HeadPoseArray per image, stamped with its header and recorded at its record time.
    heads = [deserialize_message(raw, HeadPoseArray) for _, _, raw in got["/headpose_node/heads"]]
    assert [t for t, _, _ in got["/headpose_node/heads"]] == [record for _, record, _ in sent]
    assert [stamp_ns(m.header) for m in heads] == [stamp for stamp, _, _ in sent]
    assert {m.header.frame_id for m in heads} == {FRAME}
    # The poses are those of one engine fed the same frames in the same order (video: tracked, smoothed).
    expected = engine_heads(sent)
    assert [len(m.heads) for m in heads] == [0, 0, 1, 1, 1, 1]
    for msg, want in zip(heads, expected):
        (ids, values), (want_ids, want_values) = pose_values(msg), pose_values(want)
        assert ids == want_ids
        np.testing.assert_allclose(values, want_values, rtol=0, atol=1e-9)
    # Smoothing and tracking ran: the face moves 3 px a frame and the poses follow it.
    moved = [pose_values(m)[1][0, 0] for m in heads[2:]]
    assert np.all(np.diff(moved) > 0), moved

    # /tf: face_0001 in the camera frame and gaze_0001 in it, for each image with a face, at its stamps.
    tf = [(t, deserialize_message(raw, TFMessage)) for t, _, raw in got["/tf"]]
    assert [t for t, _ in tf] == [record for _, record, _ in sent[2:]]
    for (_, msg), (stamp, _, _) in zip(tf, sent[2:]):
        assert [(x.header.frame_id, x.child_frame_id) for x in msg.transforms] == [
            (FRAME, "face_0001"), ("face_0001", "gaze_0001")]
        assert {stamp_ns(x.header) for x in msg.transforms} == {stamp}
        assert msg.transforms[0].transform.translation.z > 0.2
    # attention is on by default: one AttentionTargetArray per image, one entry per published face.
    attention = [deserialize_message(raw, AttentionTargetArray) for _, _, raw in got["/headpose_node/attention"]]
    assert [[a.id for a in m.targets] for m in attention] == [[h.id for h in m.heads] for m in heads]
    assert [stamp_ns(m.header) for m in attention] == [stamp for stamp, _, _ in sent]


def test_images_logged_out_of_order_go_to_the_engine_in_stamp_order(photo, tmp_path, capsys):
    """A recorder logged the third image after the fifth: the engine still sees the frames in stamp order (no
    track reset), and each HeadPoseArray is recorded at its own image's record time."""
    frames = [astronaut_frame(photo, shift=(3.0 * i, 1.0 * i)) for i in range(6)]
    sent = write_bag(tmp_path / "in", frames, late={2: 3 * PERIOD})
    code = cli(["bag", str(tmp_path / "in"), str(tmp_path / "out"), "--set", "tracking.id_style=sequential"])
    report = capsys.readouterr()
    assert code == 0, report.err
    assert "tracks reset" not in report.out and "out of stamp order" not in report.out
    got = read_bag(tmp_path / "out")["/headpose_node/heads"]
    by_stamp = sorted(((stamp_ns(m.header), record, m) for record, _, raw in got
                       for m in [deserialize_message(raw, HeadPoseArray)]), key=lambda x: x[0])
    assert [(stamp, record) for stamp, record, _ in by_stamp] == [(stamp, record) for stamp, record, _ in sent]
    for (_, _, msg), want in zip(by_stamp, engine_heads(sent)):
        (ids, values), (want_ids, want_values) = pose_values(msg), pose_values(want)
        assert ids == want_ids
        np.testing.assert_allclose(values, want_values, rtol=0, atol=1e-9)


def test_intrinsics_are_the_latest_camera_info_at_or_before_each_image(photo, tmp_path, capsys):
    """The first image has no CameraInfo before it: it is dropped, counted and said. The second's CameraInfo
    is logged after it but stamped like it, so it counts. With --fov the first is guessed instead."""
    frames = [astronaut_frame(photo) for _ in range(3)]
    sent = write_bag(tmp_path / "in", frames, infos={1})
    code = cli(["bag", str(tmp_path / "in"), str(tmp_path / "out"), "--node", "/robot/head_camera",
                "--set", "attention.enabled=false", "--set", "tracking.min_hits=1"])
    report = capsys.readouterr()
    assert code == 1, report.err
    assert "images: 3, processed 2, dropped 1" in report.out
    assert f"dropped, no valid camera info: 1 (first: no CameraInfo on {INFO_TOPIC} at or before the image)" \
        in report.out
    got = read_bag(tmp_path / "out")
    heads = [deserialize_message(raw, HeadPoseArray) for _, _, raw in got["/robot/head_camera/heads"]]
    assert [stamp_ns(m.header) for m in heads] == [stamp for stamp, _, _ in sent[1:]]
    # attention off: no attention topic. The node's name is in its topics and, as tracking.id_prefix auto
    # makes it in that node, in its track ids.
    assert not any("attention" in topic for topic in got)
    ids = [h.id for m in heads for h in m.heads]
    assert len(ids) == 2 and all(i.startswith("robot_head_camera_") for i in ids), ids

    code = cli(["bag", str(tmp_path / "in"), str(tmp_path / "guessed"), "--fov", "60", "--storage", "mcap",
                "--set", "tracking.min_hits=1"])
    report = capsys.readouterr()
    assert code == 0, report.err
    assert "images: 3, processed 3, dropped 0" in report.out
    assert "guessed intrinsics (--fov) for 1 images" in report.out
    assert any((tmp_path / "guessed").glob("*.mcap"))
    heads = [deserialize_message(raw, HeadPoseArray) for _, _, raw in read_bag(tmp_path / "guessed")[
        "/headpose_node/heads"]]
    assert [len(m.heads) for m in heads] == [1, 1, 1]


def test_user_mistakes_are_one_line_with_exit_status_2(photo, tmp_path, capsys):
    write_bag(tmp_path / "in", [astronaut_frame(photo)])
    (tmp_path / "taken").mkdir()

    def error(*args) -> str:
        code = cli(["bag", *map(str, args)])
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.startswith("headpose-ros bag: error: ") and err.count("\n") == 1, err
        return err

    err = error(tmp_path / "in", tmp_path / "out", "--image", "/camera/image")
    assert "--image /camera/image: no such topic" in err
    assert ("the bag's topics: /camera/camera_info (sensor_msgs/msg/CameraInfo), /camera/image_raw "
            "(sensor_msgs/msg/Image), /chatter (std_msgs/msg/String)") in err
    assert "a std_msgs/msg/String topic, not an image" in error(tmp_path / "in", tmp_path / "out", "--image",
                                                                  "/chatter")
    assert "--camera-info /camera/info: no such topic" in error(tmp_path / "in", tmp_path / "out",
                                                                  "--camera-info", "/camera/info")
    assert "between 1 and 170" in error(tmp_path / "in", tmp_path / "out", "--fov", "200")
    assert "exists already" in error(tmp_path / "in", tmp_path / "taken")
    assert "no such bag" in error(tmp_path / "missing", tmp_path / "out")
    assert "not a rosbag2 bag" in error(tmp_path / "taken", tmp_path / "out")
    assert not (tmp_path / "out").exists()
