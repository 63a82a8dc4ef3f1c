"""The robot route: `headpose-ros prepare --export DIR` on a prepared machine, `--import DIR` on one that cannot
prepare (no torch, no converters, no network). Both caches here are copies under tmp_path (HEADPOSE_ROS_CACHE);
the real cache is only read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from headpose_ros import assets
from headpose_ros.cli import main
from headpose_ros.core.files import sha256_file

CLI = shutil.which("headpose-ros", path=str(Path(sys.executable).parent)) or "headpose-ros"

MODEL_FILES = {f"{name}.{ext}" for name in assets.MODEL_NAMES for ext in ("onnx", "json")}
PHOTO_FILES = {spec.filename for spec in assets.PHOTOS.values()}
# What a robot's Python may lack: importing any of these during --import fails it.
CONVERTERS = ("torch", "tflite2onnx", "ai_edge_litert", "h5py", "onnx", "tensorflow", "pip")


@pytest.fixture(scope="module")
def workstation(prepared_assets, tmp_path_factory) -> Path:
    """A prepared cache: a copy of the real one's models and photos."""
    root = tmp_path_factory.mktemp("workstation")
    for sub in ("models", "photos"):
        shutil.copytree(assets.cache_dir() / sub, root / sub)
    return root


@pytest.fixture(scope="module")
def pristine_export(workstation, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("exported") / "hp_models"
    out = cli("prepare", "--export", folder, env={"HEADPOSE_ROS_CACHE": str(workstation)})
    assert out.returncode == 0, out.stderr
    assert f"prepare --import {folder.name}" in out.stdout
    return folder


@pytest.fixture
def export(pristine_export, tmp_path) -> Path:
    """A copy of the export, to damage."""
    return Path(shutil.copytree(pristine_export, tmp_path / "copied"))


@pytest.fixture
def robot(tmp_cache) -> Path:
    """This process's (empty) cache: the robot's."""
    return tmp_cache


def test_export_holds_every_model_beside_its_manifest_and_the_photos(pristine_export, workstation):
    assert {p.name for p in pristine_export.iterdir() if p.is_file()} == MODEL_FILES | {"README.txt"}
    assert {p.name for p in (pristine_export / "photos").iterdir()} == PHOTO_FILES
    for name in MODEL_FILES:
        assert sha256_file(pristine_export / name) == sha256_file(workstation / "models" / name)
    assert "prepare --import" in (pristine_export / "README.txt").read_text()


def test_import_without_converters_installs_what_the_engine_runs_on(pristine_export, workstation, tmp_path):
    robot = tmp_path / "robot_cache"
    blocked = f"sys.modules.update(dict.fromkeys({CONVERTERS!r}))"
    code = (f"import sys; {blocked}; from headpose_ros.cli import main; sys.exit(main(['prepare', '--import', "
            f"{str(pristine_export)!r}]))")
    out = cli_python(code, env={"HEADPOSE_ROS_CACHE": str(robot)})
    assert out.returncode == 0, out.stderr
    assert f"imported {len(assets.MODEL_NAMES)} models with their manifests and {len(PHOTO_FILES)} sample photos" \
        in out.stdout
    assert {p.name for p in (robot / "models").iterdir()} == MODEL_FILES
    for name in MODEL_FILES:
        assert sha256_file(robot / "models" / name) == sha256_file(workstation / "models" / name)
    assert not (robot / "downloads").exists()  # nothing was fetched
    # The cache checks out, and the command-line engine runs from it as if it had been prepared here.
    env = {"HEADPOSE_ROS_CACHE": str(robot)}
    assert cli("prepare", "--list", env=env).returncode == 0
    photo = robot / "photos" / assets.PHOTOS["astronaut"].filename
    out = cli("predict", "--fov", 60, photo, env=env)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["images"][str(photo)]["faces"]) == 1


def test_the_export_serves_as_model_dir_as_it_is(pristine_export, tmp_path):
    photo = pristine_export / "photos" / assets.PHOTOS["t1"].filename
    empty_cache = {"HEADPOSE_ROS_CACHE": str(tmp_path / "nothing_here")}
    for backend in ("landmarks", "fusion"):
        out = cli("predict", "--model-dir", pristine_export, "--backend", backend, photo, env=empty_cache)
        assert out.returncode == 0, out.stderr
        assert len(json.loads(out.stdout)["images"][str(photo)]["faces"]) == 6
    assert not (tmp_path / "nothing_here" / "models").exists()


def _flip_a_byte(path: Path) -> None:
    with path.open("r+b") as f:
        f.seek(path.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _foreign_manifest(path: Path) -> None:
    manifest = json.loads(path.read_text())
    manifest["source"]["sha256"] = "0" * 64
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("file, damage, says", [
    ("whenet.onnx", _flip_a_byte, "whenet.onnx: model whenet is corrupt (sha256 does not match its manifest)"),
    ("face_landmark.onnx", _truncate, "face_landmark.onnx: model face_landmark is truncated or corrupt"),
    ("face_detection_short_range.json", _foreign_manifest,
     "face_detection_short_range.json: model face_detection_short_range was prepared by another headpose_ros "
     "version"),
    ("face_detection_full_range.json", lambda p: p.write_text("{not json"), "has an unreadable manifest"),
    ("photos/t1.jpg", _flip_a_byte, "photos/t1.jpg: photo t1 is corrupt"),
])
def test_a_damaged_file_is_refused_by_name_and_nothing_is_installed(export, robot, capsys, file, damage, says):
    damage(export / file)
    assert main(["prepare", "--import", str(export)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("headpose-ros prepare: error: ")
    assert says in err and str(export) in err and "nothing was installed" in err, err
    assert Path(file).name in err
    assert not (robot / "models").exists() and not (robot / "photos").exists()


@pytest.mark.parametrize("missing", ["face_landmark.json", "whenet.onnx", "photos/obama.jpg"])
def test_an_incomplete_export_is_refused_naming_the_missing_file(export, robot, capsys, missing):
    (export / missing).unlink()
    assert main(["prepare", "--import", str(export)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{export / missing}: missing (the export is incomplete)" in err, err
    assert not (robot / "models").exists()


def test_what_is_not_an_export_is_refused(tmp_path, robot, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["prepare", "--import", str(tmp_path / "empty")]) == 2
    assert "holds none of the exported models" in capsys.readouterr().err
    assert main(["prepare", "--import", str(tmp_path / "absent")]) == 2
    assert f"{tmp_path / 'absent'}: no such folder" in capsys.readouterr().err
    assert main(["prepare", "--import", str(tmp_path / "empty"), "--force"]) == 2
    assert "--force does not apply to --import" in capsys.readouterr().err


def test_photos_are_imported_when_exported_and_required_only_when_asked(workstation, tmp_path, monkeypatch, capsys):
    models_only = tmp_path / "models_only"
    monkeypatch.setenv("HEADPOSE_ROS_CACHE", str(workstation))
    assets.export_assets(models_only, photos=False, log=lambda line: None)
    assert not (models_only / "photos").exists()
    robot = tmp_path / "robot"
    monkeypatch.setenv("HEADPOSE_ROS_CACHE", str(robot))
    assert main(["prepare", "--import", str(models_only), "--photos"]) == 2
    assert f"{models_only / 'photos'}/" in capsys.readouterr().err and not robot.exists()
    assert main(["prepare", "--import", str(models_only)]) == 0
    assert {p.name for p in (robot / "models").iterdir()} == MODEL_FILES and not (robot / "photos").exists()
    assert main(["prepare", "--list", "--models"]) == 0
    assert main(["prepare", "--list", "--photos"]) == 1


def test_export_refuses_a_broken_cache_and_writes_nothing(workstation, tmp_path, monkeypatch):
    broken = tmp_path / "broken_cache"
    shutil.copytree(workstation / "models", broken / "models")
    _flip_a_byte(broken / "models" / "whenet.onnx")
    monkeypatch.setenv("HEADPOSE_ROS_CACHE", str(broken))
    with pytest.raises(assets.AssetError, match="model whenet is corrupt .*headpose-ros prepare"):
        assets.export_assets(tmp_path / "out", photos=False, log=lambda line: None)
    assert not (tmp_path / "out").exists()


def cli(*args, env: dict):
    """`headpose-ros ARGS` as a user runs it, with `env` added to the environment."""
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def cli_python(code: str, env: dict):
    """`python -c code` in this venv, as a fresh process."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})
