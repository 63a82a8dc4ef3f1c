"""Shared fixtures: real models and real photos from the asset cache (filled by `make setup`)."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from headpose_ros import assets
from headpose_ros.core.camera import CameraModel


@pytest.fixture(scope="session")
def prepared_assets():
    """Models and photos, prepared once (a no-op when `make setup` already did it)."""
    assets.prepare_models()
    assets.prepare_photos()


@pytest.fixture(scope="session")
def photo(prepared_assets):
    """photo(name) -> (h, w, 3) uint8 RGB array of a sample photo."""
    cache = {}

    def load(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = assets.read_photo(name)
        return cache[name].copy()

    return load


@pytest.fixture
def camera() -> CameraModel:
    """An ideal 640x480 camera with a 60 degree horizontal field of view."""
    return CameraModel.from_field_of_view(640, 480, 60.0, "camera_optical_frame")


@pytest.fixture
def no_subprocess(monkeypatch):
    """Make any attempt to start a process (pip included) fail the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"unexpected subprocess: {args[0] if args else kwargs}")

    for fn in ("run", "Popen", "call", "check_call", "check_output"):
        monkeypatch.setattr(subprocess, fn, refuse)


@pytest.fixture
def tmp_cache(monkeypatch, tmp_path):
    """An empty asset cache directory that headpose_ros.assets uses for this test."""
    root = tmp_path / "cache"
    monkeypatch.setenv("HEADPOSE_ROS_CACHE", str(root))
    return root


@pytest.fixture(scope="module")
def ros(prepared_assets):
    """rclpy initialised in an isolated DDS domain (this run's ROS_DOMAIN_ID, localhost only), for this
    module and the nodes it starts; the environment is restored afterwards."""
    pytest.importorskip("rclpy")
    from headpose_ros.tools.ros_harness import isolated_ros

    domain = int(os.environ["ROS_DOMAIN_ID"]) if os.environ.get("ROS_DOMAIN_ID") else None
    with isolated_ros(domain):
        yield


@pytest.fixture(scope="module")
def node(serving):
    """The NodeProcess of a DDS test module's `serving` fixture (support.serving_node)."""
    return serving[0]


@pytest.fixture(scope="module")
def client(serving):
    """The CameraClient of a DDS test module's `serving` fixture (support.serving_node)."""
    return serving[1]
