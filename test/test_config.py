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
