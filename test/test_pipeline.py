"""pipeline: the engine and the face stages find their models through the asset store, or in model_dir."""

import shutil

import pytest

from headpose_ros import assets
from headpose_ros.assets import AssetError
from headpose_ros.core.config import still_image_config
from headpose_ros.core.inference import InferenceError
from headpose_ros.pipeline import create_engine, face_stages


def test_face_stages_run_the_prepared_detector_and_mesh(prepared_assets, photo):
    detector, mesh = face_stages()
    assert detector.describe().startswith("face_detection_full_range (onnxruntime:")
    assert mesh.describe().startswith("face_landmark (onnxruntime:")
    assert detector.runtime.threads == {"intra_op": 2, "inter_op": 1}
    short, _ = face_stages("short_range", threads=1)
    assert short.model.asset == "face_detection_short_range" and short.runtime.threads["intra_op"] == 1


def test_model_dir_replaces_the_asset_cache(prepared_assets, tmp_path, photo):
    for name in ("face_detection_full_range", "face_detection_short_range", "face_landmark"):
        shutil.copy(assets.model_path(name), tmp_path / f"{name}.onnx")
        shutil.copy(assets.model_path(name).with_suffix(".json"), tmp_path / f"{name}.json")  # its manifest
    engine = create_engine(still_image_config(), model_dir=str(tmp_path), log=lambda line: None)
    assert engine.detector.runtime.path == tmp_path / "face_detection_full_range.onnx"
    assert len(engine.process(photo("astronaut"), _camera(photo), 0.0).heads) == 1
    # A network that is not there stops the engine with its name; unchecked, the runtime names the file.
    with pytest.raises(AssetError, match="whenet not prepared in model_dir"):
        create_engine(still_image_config({"backend": "hopenet"}), model_dir=str(tmp_path), log=lambda line: None)
    with pytest.raises(InferenceError, match="whenet.onnx does not exist"):
        create_engine(still_image_config({"backend": "hopenet"}), model_dir=str(tmp_path), unchecked_models=True,
                      log=lambda line: None)


def _camera(photo):
    from headpose_ros.core.camera import CameraModel

    image = photo("astronaut")
    return CameraModel.from_field_of_view(image.shape[1], image.shape[0], 60.0)
