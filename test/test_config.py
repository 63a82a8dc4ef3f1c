"""config/headpose.yaml documents exactly the parameters the node declares, with the same defaults."""

from pathlib import Path

import pytest
import yaml

from headpose_ros.core.config import EngineConfig, leaves, with_values
from headpose_ros.core.engine import ConfigError
from headpose_ros.pipeline import create_engine

ROOT = Path(__file__).resolve().parents[1]


def flatten(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


def test_yaml_mirrors_the_declared_parameters():
    pytest.importorskip("rclpy")
    from headpose_ros.ros.parameters import NodeConfig

    doc = yaml.safe_load((ROOT / "config" / "headpose.yaml").read_text())
    in_yaml = dict(flatten(doc["/**"]["ros__parameters"]))
    declared = {name: list(value) if isinstance(value, tuple) else value
                for config in (EngineConfig(), NodeConfig()) for name, value, _ in leaves(config)}
    assert in_yaml == declared


def test_every_engine_setting_is_documented():
    for name, _, spec in leaves(EngineConfig()):
        assert len(spec.description) > 15, name


def test_with_values_and_problems():
    cfg = with_values(EngineConfig(), {"detection.max_faces": 2, "tracking.id_style": "sequential"})
    assert cfg.detection.max_faces == 2 and cfg.tracking.id_style == "sequential"
    with pytest.raises(KeyError):
        with_values(EngineConfig(), {"detection.nope": 1})
    bad = with_values(EngineConfig(), {"backend": "magic", "detection.score_threshold": 2.0, "detection.max_faces": 0})
    problems = bad.problems()
    assert len(problems) == 3 and "backend 'magic' is unknown" in problems[0]
    with pytest.raises(ConfigError, match="magic"):
        create_engine(bad)


def test_each_setting_is_checked_by_its_own_definition():
    from headpose_ros.core.config import LIVE_SETTINGS, definitions

    cases = {
        "smoothing.position_min_cutoff": (0.0, "smoothing.position_min_cutoff must be in (0, 1000], not 0.0"),
        "pnp.ransac_iterations": (0, "pnp.ransac_iterations must be in [1, 10000], not 0"),
        "pnp.outlier_threshold": (float("nan"), "pnp.outlier_threshold must be a finite number in (0, 1], not nan"),
        "tracking.iou_threshold": (1.5, "tracking.iou_threshold must be in [0, 1], not 1.5"),
        # At 0 every detector anchor is a face to check: 0.4-0.9 s a frame, without a word before.
        "detection.score_threshold": (0.0, "detection.score_threshold must be in [0.05, 1] (below 0.05 every anchor "
                                           "is a face to check), not 0.0"),
        "tracking.max_misses": (2.5, "tracking.max_misses must be an integer, not 2.5"),
        "detection.max_faces": (True, "detection.max_faces must be an integer, not True"),
        "smoothing.enabled": (1, "smoothing.enabled must be true or false, not 1"),
        "attention.robot_gaze_axis": ("w", "attention.robot_gaze_axis 'w' is unknown (choose x, y, z)"),
        "num_threads": (-1, "num_threads must be in [0, 256] (0 lets ONNX Runtime choose), not -1"),
        "attention.max_distance_m": (float("inf"), "attention.max_distance_m must be a finite number in (0, 1000], "
                                                   "not inf"),
        "pnp.ransac_iterations ": (10**18, "pnp.ransac_iterations must be in [1, 10000], not 1000000000000000000"),
    }
    for name, (value, message) in cases.items():
        assert with_values(EngineConfig(), {name.strip(): value}).problems() == [message], name
    # Every number, in every group, is bounded on both sides and finite: NaN, infinities and huge values are
    # refused by name, with the value and the allowed range.
    from headpose_ros.core.config import leaves

    for name, default, spec in leaves(EngineConfig()):
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            assert spec.low is not None and spec.high is not None, name
            for bad in (float("nan"), float("inf"), -float("inf"), 10**30 if isinstance(default, int) else 1e30):
                (problem,) = with_values(EngineConfig(), {name: bad}).problems()
                assert problem.startswith(name + " must be") and problem.endswith(f"not {bad!r}"), problem
    # What may change at run time is part of each definition, and LIVE_SETTINGS is derived from it.
    specs = definitions()
    assert LIVE_SETTINGS == {name for name, spec in specs.items() if spec.live}
    assert {"detection.score_threshold", "smoothing.rotation_beta", "attention.release_s"} <= LIVE_SETTINGS
    assert not {"backend", "detection.model", "inference.engine", "attention.robot_frame"} & LIVE_SETTINGS
