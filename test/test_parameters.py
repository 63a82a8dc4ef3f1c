"""ros.parameters: one ROS parameter per setting, with its definition's description, type, range and read-only flag.

descriptor() is tested as a pure function of a setting's definition;
declare_all, declare_targets and live_change on real in-process rclpy nodes
(with parameter_overrides as `-p name:=value` gives them), and live_change
against a real engine's apply(), so that refusals carry the engine's own
check messages.
"""

from __future__ import annotations

import uuid

import pytest

rclpy = pytest.importorskip("rclpy")

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterType  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from headpose_ros.core.config import (LIVE_SETTINGS, EngineConfig, Setting, TargetConfig, definitions,  # noqa: E402
                                      get_path, leaves, with_values)
from headpose_ros.ros.parameters import (NodeConfig, StartupError, declare_all, declare_targets,  # noqa: E402
                                         descriptor, live_change, node_key_matches, params_file_problems,
                                         ros_params_files, unknown_parameters)

pytestmark = pytest.mark.ros

READ_ONLY_SUFFIX = " (read-only: restart the node to change it)"
ENGINE_DEFINITIONS = definitions()


def engine_descriptor(name: str):
    """The descriptor the node declares for engine setting `name`."""
    return descriptor(name, ENGINE_DEFINITIONS[name], get_path(EngineConfig(), name), name in LIVE_SETTINGS)


# -- descriptor(): pure ---------------------------------------------------------------------------------------------


def test_a_live_setting_is_writable_and_its_description_is_the_settings_own():
    d = engine_descriptor("detection.score_threshold")
    assert d.name == "detection.score_threshold"
    assert d.read_only is False
    assert d.description == ("Face detection score in [0.05, 1] from which a face is kept (the face mesh must still "
                             "see a face in it, at a low bar).")
    assert d.type == ParameterType.PARAMETER_DOUBLE


def test_a_setting_that_is_not_live_is_read_only_and_says_how_to_change_it():
    d = engine_descriptor("detection.max_faces")
    assert d.read_only is True
    assert d.description == ("At most this many faces (the highest scoring) are processed per image."
                             + READ_ONLY_SUFFIX)
    assert d.type == ParameterType.PARAMETER_INTEGER
    assert d.additional_constraints == "[1, 64]"
    assert list(d.integer_range) == [IntegerRange(from_value=1, to_value=64, step=0)]


def test_choices_become_the_additional_constraints():
    d = engine_descriptor("backend")
    assert d.type == ParameterType.PARAMETER_STRING
    assert d.additional_constraints == "one of: landmarks, hopenet, fusion"
    assert d.read_only is True


def test_a_closed_numeric_range_is_enforced_by_a_floating_point_range():
    d = engine_descriptor("detection.score_threshold")
    assert d.additional_constraints == "[0.05, 1]"
    assert list(d.floating_point_range) == [FloatingPointRange(from_value=0.05, to_value=1.0, step=0.0)]
    assert list(d.integer_range) == []
    hopenet = engine_descriptor("hopenet.sellion_offset")
    assert list(hopenet.floating_point_range) == [FloatingPointRange(from_value=-1.0, to_value=1.0, step=0.0)]


@pytest.mark.parametrize("name, text", [
    ("attention.cone_half_angle_deg", "(0, 90)"),  # open at both ends
    ("pnp.outlier_threshold", "(0, 1]"),  # open below
    ("smoothing.position_min_cutoff", "(0, 1000]"),  # open below
])
def test_ranges_rclpy_cannot_express_are_only_described(name, text):
    # FloatingPointRange bounds are inclusive: an open range would let the bound itself through.
    d = engine_descriptor(name)
    assert d.additional_constraints == text
    assert list(d.floating_point_range) == []
    assert list(d.integer_range) == []


def test_a_closed_integer_range_becomes_an_integer_range_and_a_bool_gets_none():
    spec = Setting("Frames to skip.", low=1, high=10)
    d = descriptor("skip", spec, 3, live=True)
    assert d.type == ParameterType.PARAMETER_INTEGER
    assert list(d.integer_range) == [IntegerRange(from_value=1, to_value=10, step=0)]
    assert list(d.floating_point_range) == []
    flag = descriptor("flag", Setting("A flag.", low=0, high=1), True, live=False)
    assert flag.type == ParameterType.PARAMETER_BOOL
    assert list(flag.integer_range) == [] and list(flag.floating_point_range) == []


def test_array_settings_are_typed_by_their_elements():
    assert engine_descriptor("attention.robot_offset").type == ParameterType.PARAMETER_DOUBLE_ARRAY
    # An empty default has no element type: it is a list of names.
    assert engine_descriptor("attention.target_names").type == ParameterType.PARAMETER_STRING_ARRAY
    assert engine_descriptor("attention.robot_offset").additional_constraints == ""


def test_node_settings_are_described_from_their_definitions_too():
    spec = {name: s for name, _, s in leaves(NodeConfig())}
    d = descriptor("fallback_horizontal_fov_deg", spec["fallback_horizontal_fov_deg"], 0.0, live=False)
    assert d.additional_constraints == "[0, 180)"
    assert list(d.floating_point_range) == []
    assert d.description.endswith("arrives." + READ_ONLY_SUFFIX)
    reliability = descriptor("image_reliability", spec["image_reliability"], "best_effort", live=False)
    assert reliability.additional_constraints == "one of: best_effort, reliable"


def test_node_config_checks_its_own_values():
    assert NodeConfig().problems() == []
    assert with_values(NodeConfig(), {"wait_warning_period": 0.0}).problems() == ["wait_warning_period must be in (0, 3600], not 0.0"]
    assert with_values(NodeConfig(), {"image_transport": "theora"}).problems() == [
        "image_transport 'theora' is unknown (choose raw, compressed)"]
    assert with_values(NodeConfig(), {"fallback_horizontal_fov_deg": 180.0}).problems() == [
        "fallback_horizontal_fov_deg must be in [0, 180) (0: off), not 180.0"]


# -- declare_all, declare_targets: on real nodes -------------------------------------------------------------------


@pytest.fixture
def make_node(ros):
    """make_node(overrides) -> a real rclpy node with those parameter overrides; destroyed after the test."""
    nodes = []

    def make(overrides=()):
        node = Node(f"test_parameters_{uuid.uuid4().hex[:8]}", parameter_overrides=list(overrides))
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.destroy_node()


def test_declare_all_without_overrides_gives_the_defaults(make_node):
    node = make_node()
    config = declare_all(node, EngineConfig(), LIVE_SETTINGS)
    assert config == EngineConfig()
    # Declared with a value, so that `ros2 param dump` and every get_parameters answer include it (rclpy types
    # an empty list as a byte array; the names are checked by the node).
    names = node.get_parameters(["attention.target_names"])[0]
    assert names.type_ != Parameter.Type.NOT_SET and list(names.value) == []
    assert node.describe_parameter("attention.target_names").read_only
    assert config.attention.target_names == ()
    assert node.get_parameter("attention.robot_offset").value == [0.0, 0.0, 0.0]
    assert config.attention.robot_offset == (0.0, 0.0, 0.0)


def test_declare_all_returns_the_overrides_with_tuples_for_arrays(make_node):
    node = make_node([Parameter("detection.score_threshold", value=0.7),
                      Parameter("tracking.id_style", value="sequential"),
                      Parameter("attention.robot_offset", value=[0.1, -0.2, 0.3]),
                      Parameter("attention.target_names", value=["screen", "door"])])
    config = declare_all(node, EngineConfig(), LIVE_SETTINGS)
    assert config.detection.score_threshold == 0.7
    assert config.tracking.id_style == "sequential"
    assert config.attention.robot_offset == (0.1, -0.2, 0.3)
    assert config.attention.target_names == ("screen", "door")
    # Everything else kept its default.
    defaults = {"detection.score_threshold": 0.5, "tracking.id_style": "random",
                "attention.robot_offset": (0.0, 0.0, 0.0), "attention.target_names": ()}
    assert with_values(config, defaults) == EngineConfig()


def test_declared_parameters_carry_their_descriptors(make_node):
    node = make_node()
    declare_all(node, EngineConfig(), LIVE_SETTINGS)
    d = node.describe_parameter("backend")
    assert d.read_only is True and d.description.endswith(READ_ONLY_SUFFIX)
    assert node.describe_parameter("detection.score_threshold").read_only is False
    # rclpy enforces what the descriptors say.
    refused = node.set_parameters([Parameter("backend", value="hopenet")])[0]
    assert refused.successful is False and refused.reason == "Trying to set a read-only parameter: backend."
    out_of_range = node.set_parameters([Parameter("detection.score_threshold", value=1.5)])[0]
    assert out_of_range.successful is False and "out of range" in out_of_range.reason
    assert node.get_parameter("detection.score_threshold").value == 0.5


def test_declare_all_of_the_node_settings(make_node):
    node = make_node([Parameter("camera_frame", value="head_camera_optical"),
                      Parameter("fallback_horizontal_fov_deg", value=70.0)])
    settings = declare_all(node, NodeConfig())
    assert isinstance(settings, NodeConfig)
    assert settings.camera_frame == "head_camera_optical"
    assert settings.fallback_horizontal_fov_deg == 70.0
    assert settings.publish_tf is True and settings.image_transport == "raw"
    assert node.describe_parameter("publish_tf").read_only is True


@pytest.mark.parametrize("override, expected", [
    (Parameter("publish_tf", value=1), "expected a bool"),  # -p publish_tf:=1
    (Parameter("diagnostics_period", value="fast"), "expected a float"),
    (Parameter("image_transport", value=3), "expected a str"),
])
def test_a_wrongly_typed_node_setting_stops_the_start_up_naming_it(make_node, override, expected):
    node = make_node([override])
    with pytest.raises(StartupError) as info:
        declare_all(node, NodeConfig())
    message = str(info.value)
    assert message.startswith(f"parameter '{override.name}': ")
    assert message.endswith(f"({expected})")


def test_a_wrongly_typed_array_stops_the_start_up_naming_it(make_node):
    node = make_node([Parameter("attention.robot_offset", value=["left"])])
    with pytest.raises(StartupError, match=r"^parameter 'attention\.robot_offset': .*\(expected a list\)$"):
        declare_all(node, EngineConfig(), LIVE_SETTINGS)
    names = make_node([Parameter("attention.target_names", value=5)])
    with pytest.raises(StartupError, match=r"^parameter 'attention\.target_names': .*\(expected a list\)$"):
        declare_all(names, EngineConfig(), LIVE_SETTINGS)


def test_a_named_target_without_any_parameter_stops_the_start(make_node):
    """Before: target_names: [plant] alone put the plant at the camera's origin without a word."""
    node = make_node([Parameter("attention.targets.screen.offset", value=[0.35, 0.0, 0.1])])
    with pytest.raises(StartupError, match=r"attention.target_names names 'plant', but attention.targets.plant is "
                                           r"not given: set its frame and offset"):
        declare_targets(node, ("screen", "plant"))


def test_declare_targets_builds_each_named_target_from_its_parameters(make_node):
    node = make_node([Parameter("attention.targets.screen.offset", value=[0.35, 0.0, 0.1]),
                      Parameter("attention.targets.screen.cone_half_angle_deg", value=10.0),
                      Parameter("attention.targets.door.frame", value="map"),
                      Parameter("attention.targets.door.offset", value=[2.0, -1.0, 0.0])])
    targets = declare_targets(node, ("screen", "door"))
    assert targets == (
        TargetConfig(name="screen", frame="", offset=(0.35, 0.0, 0.1), cone_half_angle_deg=10.0),
        TargetConfig(name="door", frame="map", offset=(2.0, -1.0, 0.0), cone_half_angle_deg=0.0),
    )
    assert node.has_parameter("attention.targets.door.cone_half_angle_deg")
    # The name is the key, not a parameter of its own.
    assert not node.has_parameter("attention.targets.screen.name")
    assert node.describe_parameter("attention.targets.screen.offset").read_only is True


def test_declare_targets_with_no_names_declares_nothing(make_node):
    node = make_node()
    assert declare_targets(node, ()) == ()
    assert list(node.list_parameters(["attention.targets"], 0).names) == []


def test_a_wrongly_typed_target_parameter_stops_the_start_up_naming_it(make_node):
    node = make_node([Parameter("attention.targets.screen.offset", value="0.3 0 0")])
    with pytest.raises(StartupError, match=r"^parameter 'attention\.targets\.screen\.offset': "):
        declare_targets(node, ("screen",))


# -- live_change: with a real engine's apply() ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(ros):
    from headpose_ros.pipeline import create_engine

    return create_engine(EngineConfig(), log=lambda line: None)


class Recorder:
    """apply() that records what it was given, then hands it to the real engine."""

    def __init__(self, engine):
        self.engine = engine
        self.calls = []

    def __call__(self, config):
        self.calls.append(config)
        self.engine.apply(config)


@pytest.fixture
def apply(engine):
    engine.apply(EngineConfig())  # every test starts from the defaults
    return Recorder(engine)


def test_a_live_change_is_applied_and_the_new_config_returned(make_node, apply):
    log = make_node().get_logger()
    config, result = live_change(EngineConfig(), [Parameter("detection.score_threshold", value=0.8),
                                                  Parameter("tracking.min_hits", value=1)], apply, log)
    assert result.successful is True and result.reason == ""
    assert config == with_values(EngineConfig(), {"detection.score_threshold": 0.8, "tracking.min_hits": 1})
    assert apply.calls == [config]
    assert apply.engine.config.detection.score_threshold == 0.8


def test_a_bad_value_is_refused_with_the_checks_message_and_the_old_config_stays(make_node, apply):
    log = make_node().get_logger()
    before = with_values(EngineConfig(), {"detection.score_threshold": 0.6})
    config, result = live_change(before, [Parameter("attention.cone_half_angle_deg", value=95.0)], apply, log)
    assert result.successful is False
    assert result.reason == "attention.cone_half_angle_deg must be in (0, 90), not 95.0"
    assert config is before
    assert apply.engine.config == EngineConfig()  # the engine kept its settings too


def test_a_setting_that_needs_a_restart_is_refused_by_the_engine(make_node, apply):
    log = make_node().get_logger()
    config, result = live_change(EngineConfig(), [Parameter("detection.model", value="short_range")], apply, log)
    assert result.successful is False
    assert result.reason == "detection.model only changes with a restart (they choose models and runtimes)"
    assert config == EngineConfig()


def test_parameters_that_are_not_engine_settings_are_accepted_untouched(make_node, apply):
    log = make_node().get_logger()
    before = EngineConfig()
    config, result = live_change(before, [Parameter("publish_tf", value=False),
                                          Parameter("use_sim_time", value=True)], apply, log)
    assert result.successful is True
    assert config is before
    assert apply.calls == []


def test_only_the_engine_settings_of_a_mixed_request_are_applied(make_node, apply):
    log = make_node().get_logger()
    config, result = live_change(EngineConfig(), [Parameter("publish_markers", value=False),
                                                  Parameter("attention.min_dwell_s", value=0.5)], apply, log)
    assert result.successful is True
    assert config == with_values(EngineConfig(), {"attention.min_dwell_s": 0.5})
    assert len(apply.calls) == 1


def test_live_change_as_the_nodes_set_parameters_callback(make_node, apply):
    """What the node wires up: declared parameters, rclpy's checks, then live_change's."""
    node = make_node()
    state = {"config": declare_all(node, EngineConfig(), LIVE_SETTINGS)}

    def on_set(params):
        state["config"], result = live_change(state["config"], params, apply, node.get_logger())
        return result

    node.add_on_set_parameters_callback(on_set)
    # An open range passes rclpy (no FloatingPointRange) and is refused by the engine's check.
    refused = node.set_parameters([Parameter("attention.cone_half_angle_deg", value=90.0)])[0]
    assert (refused.successful, refused.reason) == (False, "attention.cone_half_angle_deg must be in (0, 90), not 90.0")
    # NaN gets through rclpy's own range checks (every comparison with it is false): the engine's check refuses it.
    nan = node.set_parameters([Parameter("smoothing.position_min_cutoff", value=float("nan"))])[0]
    assert nan.successful is False and nan.reason.startswith("smoothing.position_min_cutoff must be a finite number")
    assert node.get_parameter("smoothing.position_min_cutoff").value == 1.0
    assert node.get_parameter("attention.cone_half_angle_deg").value == 15.0
    accepted = node.set_parameters([Parameter("attention.cone_half_angle_deg", value=25.0)])[0]
    assert accepted.successful is True
    assert state["config"].attention.cone_half_angle_deg == 25.0
    assert apply.engine.config.attention.cone_half_angle_deg == 25.0


# -- mistakes in what the node was given ----------------------------------------------------------------------------

DECLARED = {"backend", "detection.score_threshold", "tracking.id_style", "attention.target_names",
            "attention.targets.screen.frame"}


def test_unknown_parameters_are_named_with_the_nearest_known_name():
    warnings = unknown_parameters(["score_treshold", "detection.score_treshold", "backnd", "backend",
                                   "qos_overrides./image.subscription.depth", "completely_else"], DECLARED, ("screen",))
    assert warnings == [
        "unknown parameter 'backnd' is ignored; did you mean 'backend'?",
        "unknown parameter 'completely_else' is ignored; `ros2 param list` shows the node's parameters",
        "unknown parameter 'detection.score_treshold' is ignored; did you mean 'detection.score_threshold'?",
        "unknown parameter 'score_treshold' is ignored; did you mean 'detection.score_threshold'?",
    ]


def test_a_target_that_is_not_named_in_target_names_is_said_to_be_ignored():
    warnings = unknown_parameters(["attention.targets.door.frame", "attention.targets.screen.frme"], DECLARED,
                                  ("screen",))
    assert warnings[0] == ("parameter 'attention.targets.door.frame' is ignored: 'door' is not in "
                           "attention.target_names ['screen']")
    assert warnings[1].endswith("did you mean 'attention.targets.screen.frame'?")


@pytest.mark.parametrize("key, matches", [
    ("headpose_node", True), ("/headpose_node", True), ("/**", True), ("/cam/headpose_node", False),
    ("head_pose_node", False), ("/**/headpose_node", True), ("/*", True), ("/*/headpose_node", False),
])
def test_params_file_keys_match_nodes_as_rcl_does(key, matches):
    assert node_key_matches(key, "/headpose_node") is matches


def test_params_file_keys_match_namespaced_nodes():
    assert node_key_matches("/**/headpose_node", "/robot/head/headpose_node")
    assert node_key_matches("/robot/*/headpose_node", "/robot/head/headpose_node")
    assert not node_key_matches("headpose_node", "/robot/head/headpose_node")


def test_a_params_file_for_another_node_is_found_among_the_ros_arguments(tmp_path):
    mine, other = tmp_path / "mine.yaml", tmp_path / "other.yaml"
    mine.write_text("/**:\n  ros__parameters:\n    backend: hopenet\n")
    other.write_text("head_pose_node:\n  ros__parameters:\n    backend: hopenet\n")
    argv = ["headpose_node", "--params-file", "not-a-ros-arg.yaml", "--ros-args", "--params-file", str(mine),
            "-p", "x:=1", "--params-file", str(other), "--", "--params-file", "after.yaml"]
    assert ros_params_files(argv) == [str(mine), str(other)]
    problems = params_file_problems(ros_params_files(argv), "/headpose_node")
    assert len(problems) == 1 and problems[0].startswith(f"params file '{other}' applies to none of its nodes")
