"""``headpose-ros bag``: run the engine over a recorded rosbag2 bag offline, into a new bag.

IN is read with the pure-Python `rosbags` library (``pip install '.[bag]'`` in the headpose_ros clone;
sqlite3 and MCAP storage, no ROS needed to read). Its images, Image or
CompressedImage, go through one HeadPoseEngine in stamp order (images logged
out of order are put back in it, within REORDER_WINDOW images), as a video:
tracking and smoothing are timed by the images' header stamps (by the record
time for an image stamped 0). Each image's intrinsics are the latest
CameraInfo stamped at or before it, converted and checked as the node does
(a refused one takes the earlier ones out of use); an image without usable
intrinsics is dropped and counted, unless --fov guesses them.

OUT is a new bag (MCAP or sqlite3, as IN unless --storage says) with every
topic of IN copied as it is, plus what headpose_node of that name would
publish for each image: ``/<node>/heads`` (HeadPoseArray), ``/tf``
(face_<id> and gaze_<id>), and, while attention.enabled,
``/<node>/attention`` and ``/<node>/attention_events``. The messages are
built by the node's own functions (ros.messages), stamped with the image's
header and recorded at the image's record time. The node's markers, debug
image and diagnostics are not written.

At the end a report goes to stdout: images, processed and dropped by reason,
faces, time per image. Exit status 0, or 1 when some images were dropped.
"""

from __future__ import annotations

import heapq
import os
import re
import shutil
import sys
import time
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..cli import CommandError, add_set_argument, check_fov, setting_values
from ..core.config import BACKENDS

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
STORAGES = ("mcap", "sqlite3")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


def add_arguments(parser) -> None:
    parser.add_argument("bag_in", type=Path, metavar="IN", help="the recorded bag (its folder, or one .mcap/.db3 file)")
    parser.add_argument("bag_out", type=Path, metavar="OUT", help="the bag to write (must not exist)")
    parser.add_argument("--image", metavar="TOPIC", help="the image topic, Image or CompressedImage (default: "
                        "the bag's only one)")
    parser.add_argument("--camera-info", metavar="TOPIC", help="the CameraInfo topic (default: the image's "
                        "sibling camera_info, else the bag's only one)")
    parser.add_argument("--fov", type=float, default=None, metavar="DEG",
                        help="for images without a usable CameraInfo, guess an ideal camera of this horizontal "
                             "field of view (poses are then approximate); default: drop those images")
    parser.add_argument("--node", default="headpose_node", metavar="NAME",
                        help="the node whose outputs are written: /NAME/heads, ... (default: headpose_node)")
    parser.add_argument("--storage", choices=STORAGES, help="OUT's storage (default: IN's)")
    parser.add_argument("--backend", default="landmarks", choices=BACKENDS, help="estimation method (default: "
                        "landmarks)")
    parser.add_argument("--engine", default="auto", help="auto (default), onnxruntime or tensorrt")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per network (default: 2)")
    add_set_argument(parser)


# -- what is in the bag --------------------------------------------------------------------------

def topic_list(topics: dict[str, str]) -> str:
    """'/a (pkg/msg/A), /b (pkg/msg/B)' of {topic: type}, for error messages."""
    return ", ".join(f"{name} ({kind})" for name, kind in sorted(topics.items())) or "none"


def choose_topics(topics: dict[str, str], image: str | None, camera_info: str | None,
                  guess_fov: bool) -> tuple[str, str | None]:
    """The image topic and the CameraInfo topic (None: the bag has none and `guess_fov`) among a bag's
    {topic: type}; CommandError, listing the bag's topics, when they are not there or not one."""
    images = sorted(t for t, kind in topics.items() if kind in (IMAGE, COMPRESSED_IMAGE))
    infos = sorted(t for t, kind in topics.items() if kind == CAMERA_INFO)
    have = f"the bag's topics: {topic_list(topics)}"
    if image is not None:
        if topics.get(image) not in (IMAGE, COMPRESSED_IMAGE):
            raise CommandError(f"--image {image}: " + (f"a {topics[image]} topic, not an image" if image in topics
                               else "no such topic") + f"; {have}")
    elif len(images) != 1:
        raise CommandError(("no Image or CompressedImage topic" if not images else
                            f"{len(images)} image topics, choose one with --image") + f"; {have}")
    else:
        image = images[0]
    if camera_info is not None:
        if topics.get(camera_info) != CAMERA_INFO:
            raise CommandError(f"--camera-info {camera_info}: " + (
                f"a {topics[camera_info]} topic, not {CAMERA_INFO}" if camera_info in topics else "no such topic")
                + f"; {have}")
        return image, camera_info
    # image_transport's naming: /ns/image_raw[/compressed] beside /ns/camera_info.
    base = image[: -len("/compressed")] if topics[image] == COMPRESSED_IMAGE and image.endswith("/compressed") \
        else image
    sibling = base.rsplit("/", 1)[0] + "/camera_info"
    if sibling in infos:
        return image, sibling
    if len(infos) == 1:
        return image, infos[0]
    if not infos and guess_fov:
        return image, None
    raise CommandError((f"{len(infos)} CameraInfo topics, none named {sibling}: choose one with --camera-info"
                        if infos else f"no {CAMERA_INFO} topic, and poses need the camera's K and D (--fov DEG "
                        "guesses them instead)") + f"; {have}")


def message_types():
    """The rosbags typestore of ROS 2 Jazzy's messages and this package's (from its .msg files)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    folder = _msg_folder()
    types = {}
    for path in sorted(folder.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(encoding="utf-8"), f"headpose_ros/msg/{path.stem}"))
    store.register(types)
    return store


def _msg_folder() -> Path:
    """headpose_ros's .msg files: installed with the ROS package (share/headpose_ros/msg), else the source tree's."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    places = [Path(p, "share", "headpose_ros", "msg") for p in prefixes]
    places.append(Path(__file__).resolve().parents[2] / "msg")
    for place in places:
        if (place / "HeadPoseArray.msg").is_file():
            return place
    raise CommandError("cannot find headpose_ros's message definitions (HeadPoseArray.msg) in "
                       + ", ".join(map(str, places)) + ": build or install the ROS package")


def storage_of(path: Path) -> str:
    """mcap or sqlite3: the storage of a bag folder or file."""
    files = list(path.iterdir()) if path.is_dir() else [path]
    return "mcap" if any(f.suffix == ".mcap" for f in files) else "sqlite3"


class CameraInfoTimeline:
    """The intrinsics for each image: the latest CameraInfo stamped at or before it (by record time for an
    image stamped 0).

    infos: (header stamp ns, record time ns, message) of every CameraInfo, any order; each is converted and
    checked once, as the node does on receipt (ros.image_conversion.camera_from_info_msg, CameraModel.problems).
    """

    def __init__(self, infos: list[tuple[int, int, object]], topic: str):
        from ..ros.image_conversion import camera_from_info_msg

        self.topic = topic
        entries = []  # (stamp, record, camera or None, problem)
        for stamp, record, msg in infos:
            camera = camera_from_info_msg(msg)
            problems = camera.problems()
            entries.append((stamp, record, None if problems else camera, "; ".join(problems)))
        self._by_stamp = sorted(entries, key=lambda e: (e[0], e[1]))
        self._by_record = sorted(entries, key=lambda e: e[1])
        self._stamps = [e[0] for e in self._by_stamp]
        self._records = [e[1] for e in self._by_record]

    def at(self, stamp_ns: int, record_ns: int):
        """(CameraModel, "") of the latest CameraInfo at or before an image, else (None, why not)."""
        entries, keys, when = ((self._by_stamp, self._stamps, stamp_ns) if stamp_ns > 0 else
                               (self._by_record, self._records, record_ns))
        i = bisect_right(keys, when) - 1
        if i < 0:
            return None, f"no CameraInfo on {self.topic} at or before the image"
        _, _, camera, problem = entries[i]
        return camera, (f"refused CameraInfo on {self.topic}: {problem}" if camera is None else "")


# -- what is written --------------------------------------------------------------------------------

def _definition(conn, store) -> dict | None:
    """How OUT declares a copied connection's type: the bag's own definition, else the known type's."""
    if conn.msgdef.data and conn.digest:
        return {"msgdef": conn.msgdef.data, "rihs01": conn.digest}
    if conn.msgtype in store.fielddefs:
        return {"typestore": store}
    return None


def copy_connections(writer, connections, store) -> tuple[dict[int, object], list[str]]:
    """OUT's connection for each of IN's connection ids, and the topics that cannot be copied (no definition)."""
    out, seen, lost = {}, {}, []
    for conn in connections:
        key = (conn.topic, conn.msgtype, conn.ext.serialization_format, repr(conn.ext.offered_qos_profiles))
        if key not in seen:
            definition = _definition(conn, store)
            if definition is None:
                lost.append(f"{conn.topic} ({conn.msgtype})")
                continue
            seen[key] = writer.add_connection(conn.topic, conn.msgtype, serialization_format=key[2],
                                              offered_qos_profiles=conn.ext.offered_qos_profiles, **definition)
        out[conn.id] = seen[key]
    return out, lost


class NodeOutputs:
    """What headpose_node publishes for one image, as bag messages: built by the node's own functions
    (ros.messages, the way ros.outputs.ResultPublisher does), serialized to CDR with rclpy.

    node: the node's name (topics /<node>/heads, ...); attention: whether ~/attention and ~/attention_events
    exist; tf: OUT's /tf connection to add to (IN's, copied), or None for a new one.
    """

    def __init__(self, writer, store, node: str, attention: bool, tf=None):
        from ..ros.parameters import NodeConfig

        def connection(topic, msgtype):
            return writer.add_connection(topic, msgtype, typestore=store)

        settings = NodeConfig()
        self.face_prefix, self.gaze_prefix = settings.face_frame_prefix, settings.gaze_frame_prefix
        self.heads = connection(f"/{node}/heads", "headpose_ros/msg/HeadPoseArray")
        self.tf = tf or connection("/tf", TF_MESSAGE)
        self.attention = connection(f"/{node}/attention", "headpose_ros/msg/AttentionTargetArray") \
            if attention else None
        self.events = connection(f"/{node}/attention_events", "headpose_ros/msg/AttentionEvent") \
            if attention else None
        self.topics = [c.topic for c in (self.heads, self.tf, self.attention, self.events) if c is not None]

    def write(self, writer, record_ns: int, header, result, width: int, height: int) -> None:
        """One image's messages, recorded at `record_ns`; header: the image's (std_msgs/Header)."""
        from rclpy.serialization import serialize_message
        from tf2_msgs.msg import TFMessage

        from ..ros.messages import attention_array, attention_event, head_pose_array, heads_transforms

        def put(connection, msg):
            writer.write(connection, record_ns, serialize_message(msg))

        put(self.heads, head_pose_array(header, result.heads, width, height))
        if result.heads and header.frame_id:  # the node sends no TF without a frame to hang it on
            put(self.tf, TFMessage(transforms=heads_transforms(header, result.heads, self.face_prefix,
                                                               self.gaze_prefix)))
        if self.attention is not None:
            put(self.attention, attention_array(header, result.attention))
            for event in result.events:
                put(self.events, attention_event(header, event))


@dataclass
class Tally:
    """What became of a run's images, for the closing report."""

    images: int = 0
    processed: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> images
    first_detail: dict[str, str] = field(default_factory=dict)  # reason -> what the first such image had
    faces: int = 0
    not_measured: Counter = field(default_factory=Counter)  # reason -> faces found but not measured
    resets: int = 0  # times the engine reset every track (a stamp going backwards, a gap)
    first_reset: str = ""
    guessed: int = 0  # processed with --fov's guessed intrinsics
    unstamped: int = 0  # stamped 0, timed by their record time
    out_of_order: int = 0  # stamped before an image already processed (more than REORDER_WINDOW out of order)
    seconds: float = 0.0  # of the processed images, each from its bytes to its messages written
    engine_ms: float = 0.0  # of the processed images in HeadPoseEngine.process

    def drop(self, reason: str, detail: str) -> None:
        self.dropped[reason] += 1
        self.first_detail.setdefault(reason, detail)

    def lines(self) -> list[str]:
        dropped = sum(self.dropped.values())
        out = [f"images: {self.images}, processed {self.processed}, dropped {dropped}"]
        out += [f"  dropped, {reason}: {n} (first: {self.first_detail[reason]})"
                for reason, n in self.dropped.most_common()]
        per = f" ({self.faces / self.processed:.2f} per processed image)" if self.processed else ""
        out.append(f"faces: {self.faces} published{per}, {sum(self.not_measured.values())} found but not measured"
                   + "".join(f"; {reason}: {n}" for reason, n in self.not_measured.most_common()))
        if self.processed:
            out.append(f"time per processed image: {1000.0 * self.seconds / self.processed:.1f} ms "
                       f"(engine {self.engine_ms / self.processed:.1f} ms)")
        if self.guessed:
            out.append(f"guessed intrinsics (--fov) for {self.guessed} images: their poses are approximate")
        if self.unstamped:
            out.append(f"{self.unstamped} images stamped 0: timed by their record time, output stamped 0")
        if self.out_of_order:
            out.append(f"{self.out_of_order} images recorded too far out of stamp order to be put back in it: "
                       "processed late (tracks reset)")
        if self.resets:
            out.append(f"tracks reset {self.resets} times (first: {self.first_reset})")
        return out


# -- the command ---------------------------------------------------------------------------------------

def run(args) -> int:
    try:
        from rosbags.rosbag2 import Reader, Writer
        from rosbags.rosbag2.enums import StoragePlugin
    except ImportError:
        raise CommandError("reading bags needs rosbags: pip install 'rosbags>=0.11' (the bag extra)") from None

    node = args.node.strip("/")
    if not re.fullmatch(f"{_NAME}(/{_NAME})*", node):
        raise CommandError(f"--node {args.node!r}: a node name (letters, digits, '_'), optionally with a namespace")
    if not args.bag_in.exists():
        raise CommandError(f"{args.bag_in}: no such bag")
    if args.bag_out.exists():
        raise CommandError(f"{args.bag_out} exists already: give a new path for the output bag")
    check_fov(args.fov)
    config = _engine_config(args, node)
    store = message_types()
    try:
        reader = Reader(args.bag_in)
        reader.open()
    except Exception as exc:  # rosbags' ReaderError, a missing metadata.yaml, a corrupt file
        raise CommandError(f"{args.bag_in}: not a rosbag2 bag rosbags can read ({type(exc).__name__}: {exc})") \
            from None
    try:
        topics = {name: info.msgtype or "mixed types" for name, info in reader.topics.items()}
        image, info = choose_topics(topics, args.image, args.camera_info, args.fov is not None)
        if reader.topics[image].msgcount == 0:
            raise CommandError(f"{image}: no messages in {args.bag_in}")
        taken = [t for t in (f"/{node}/heads", f"/{node}/attention", f"/{node}/attention_events") if t in topics]
        if taken:
            raise CommandError(f"{args.bag_in} has {', '.join(taken)} already: name another node with --node, "
                               "e.g. --node headpose_offline")
        engine = _create_engine(config)
        storage = args.storage or storage_of(args.bag_in)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        try:
            with Writer(args.bag_out, version=9, storage_plugin=plugin) as writer:
                result = _convert(reader, writer, store, engine, image, info, node, args.fov)
        except BaseException:
            shutil.rmtree(args.bag_out, ignore_errors=True)  # a half-written bag of ours is no use to anyone
            raise
    finally:
        reader.close()
    tally, outputs, lost, interrupted = result
    print(f"wrote {args.bag_out} ({storage}): {', '.join(outputs)} from {image} ({topics[image]}), intrinsics "
          f"from {info or f'--fov {args.fov:g}'}; {len(topics) - len(lost)} input topics copied")
    if lost:
        print(f"not copied (no message definition in the bag, nor known): {', '.join(lost)}")
    for line in tally.lines():
        print(line)
    if interrupted:
        print(f"interrupted: {args.bag_out} holds the images before that")
        return 130
    return 1 if tally.dropped else 0


def _engine_config(args, node: str):
    """The engine's settings: the defaults (config/headpose.yaml's), the options, then --set; a track-id
    prefix of `auto` becomes what headpose_node of that name uses."""
    from ..core.config import EngineConfig, for_node, with_values

    config = with_values(EngineConfig(), {"backend": args.backend, "num_threads": args.threads,
                                          "inference.engine": args.engine, **setting_values(args.settings)})
    return for_node(config, "/" + node)


def _create_engine(config):
    from ..assets import AssetError
    from ..core.engine import ConfigError
    from ..core.inference import InferenceError
    from ..pipeline import create_engine

    try:
        return create_engine(config, log=lambda line: None)
    except (ConfigError, InferenceError, AssetError) as exc:
        raise CommandError(str(exc)) from None


def _convert(reader, writer, store, engine, image_topic: str, info_topic: str | None, node: str,
             fov: float | None):
    """Copy IN to OUT and add the node's outputs for each image; (tally, output topics, topics not copied,
    interrupted)."""
    from tqdm import tqdm

    image_conns = reader.topics[image_topic].connections
    info_conns = reader.topics[info_topic].connections if info_topic else []
    infos = []
    for conn, record_ns, raw in reader.messages(connections=info_conns):
        msg = store.deserialize_cdr(raw, conn.msgtype)
        infos.append((msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec, record_ns, msg))
    timeline = CameraInfoTimeline(infos, info_topic) if info_topic else None

    copies, lost = copy_connections(writer, reader.connections, store)
    tf = next((c for c in writer.connections if c.topic == "/tf" and c.msgtype == TF_MESSAGE), None)
    outputs = NodeOutputs(writer, store, node, engine.config.attention.enabled, tf)
    ids = {c.id for c in image_conns}
    tally = Tally()
    bar = tqdm(total=sum(c.msgcount for c in image_conns), unit="image", file=sys.stderr,
               disable=not sys.stderr.isatty())
    # Images go to the engine in stamp order: a recorder may log them a little out of order (several
    # threads, a loaded machine), so the next REORDER_WINDOW images wait and the earliest stamp goes first.
    pending: list = []
    last_key = -1

    def process_earliest() -> None:
        nonlocal last_key
        key, record_ns, _, msgtype, msg = heapq.heappop(pending)
        tally.out_of_order += key < last_key
        last_key = max(last_key, key)
        _one_image(msgtype, msg, record_ns, engine, timeline, fov, outputs, writer, tally)
        tally.images += 1
        bar.update()

    interrupted = False
    try:
        for seq, (conn, record_ns, raw) in enumerate(reader.messages()):
            if conn.id in copies:
                writer.write(copies[conn.id], record_ns, raw)
            if conn.id in ids:
                msg = _deserialized(store, raw, conn.msgtype)
                stamp = getattr(getattr(msg, "header", None), "stamp", None)
                key = (stamp.sec * 10**9 + stamp.nanosec) if stamp is not None else 0
                heapq.heappush(pending, (key or record_ns, record_ns, seq, conn.msgtype, msg))
                if len(pending) > REORDER_WINDOW:
                    process_earliest()
        while pending:
            process_earliest()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    return tally, outputs.topics, lost, interrupted


# Images held back to put them in stamp order (about 1 s of a 30 Hz camera).
REORDER_WINDOW = 30


def _deserialized(store, raw, msgtype: str):
    """The message of CDR bytes, or the exception that refused them (reported when the image's turn comes)."""
    try:
        return store.deserialize_cdr(raw, msgtype)
    except Exception as exc:  # corrupt CDR
        return exc


def _one_image(msgtype: str, msg, record_ns: int, engine, timeline, fov: float | None, outputs, writer,
               tally: Tally) -> None:
    """Run the engine on one deserialized image and write what the node would publish, or count why not."""
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    from ..core.camera import CameraModel, CameraModelError
    from ..ros.image_conversion import ImageConversionError, compressed_to_rgb, image_to_rgb

    start = time.perf_counter()
    if isinstance(msg, Exception):
        tally.drop("bad image", f"cannot deserialize ({type(msg).__name__}: {msg})")
        return
    try:
        rgb = compressed_to_rgb(msg.format, msg.data) if msgtype == COMPRESSED_IMAGE else \
            image_to_rgb(msg.encoding, msg.width, msg.height, msg.step, msg.data)
    except ImageConversionError as exc:
        tally.drop("bad image", str(exc))
        return
    stamp = msg.header.stamp
    stamp_ns = stamp.sec * 10**9 + stamp.nanosec
    height, width = rgb.shape[:2]
    camera, problem = timeline.at(stamp_ns, record_ns) if timeline else (None, "no CameraInfo topic")
    guessed = camera is None
    if guessed:
        if fov is None:
            tally.drop("no valid camera info", problem)
            return
        camera = CameraModel.from_field_of_view(width, height, fov, msg.header.frame_id)
    try:
        result = engine.process(rgb, camera, (stamp_ns or record_ns) * 1e-9)
    except CameraModelError as exc:
        tally.drop("camera info unusable for this image", str(exc))
        return
    header = Header(stamp=Time(sec=stamp.sec, nanosec=stamp.nanosec), frame_id=msg.header.frame_id)
    outputs.write(writer, record_ns, header, result, width, height)
    tally.processed += 1
    tally.guessed += guessed
    tally.unstamped += stamp_ns == 0
    tally.faces += len(result.heads)
    tally.not_measured.update(r.status.value for r in result.rejected)
    if result.reset:
        tally.resets += 1
        tally.first_reset = tally.first_reset or result.reset
    tally.engine_ms += result.timings_ms.get("total", 0.0)
    tally.seconds += time.perf_counter() - start
