"""The pinhole camera a pose is solved through: intrinsics K, distortion D and image size.

Everything here is in the camera optical frame (x right, y down, z forward)
and in pixels of the image the camera model describes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Distortion models whose coefficients OpenCV's solvePnP and projectPoints
# take as they are (k1, k2, p1, p2[, k3[, k4, k5, k6]]).
OPENCV_DISTORTION_MODELS = ("plumb_bob", "rational_polynomial")


class CameraModelError(ValueError):
    """Intrinsics that cannot be used to solve a pose; the message says why."""


# Plausibility bounds (CameraModel.problems): what a calibrated pinhole camera can publish. Outside them
# the intrinsics are a mistake (a wrong unit, a K for another resolution, an unfilled field), and poses
# solved through them would be wrong without a sign.
# The principal point lies within the image, give or take this fraction of its width / height.
PRINCIPAL_POINT_MARGIN = 0.2
# fx / fy within [1 / MAX_ASPECT, MAX_ASPECT]: square pixels give 1, anamorphic lenses about 1.33-2.
MAX_ASPECT = 2.5
# Horizontal and vertical field of view of the pinhole, degrees (a telephoto of 1 deg to a wide angle of 170).
MIN_FOV_DEG, MAX_FOV_DEG = 1.0, 170.0
# |K[0, 1]| (skew) and |K[2] - (0, 0, 1)| beyond these, relative to fx and 1, are refused.
MAX_SKEW = 1e-3


@dataclass(frozen=True)
class CameraModel:
    """A calibrated pinhole camera, as published in sensor_msgs/CameraInfo.

    K: (3, 3) intrinsic matrix in pixels.
    D: (n,) distortion coefficients in OpenCV order; empty means none.
    width, height: size in pixels of the images K describes.
    frame_id: the camera optical frame's name ("" when unknown).
    distortion_model: the CameraInfo distortion model name.
    exact_size: images must be exactly width x height (a CameraInfo with a
        region of interest or binning says what it publishes; a differently
        sized image is then not taken for a resize).
    """

    K: np.ndarray
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))
    width: int = 0
    height: int = 0
    frame_id: str = ""
    distortion_model: str = "plumb_bob"
    exact_size: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "K", np.array(self.K, dtype=np.float64).reshape(3, 3))
        object.__setattr__(self, "D", np.array(self.D, dtype=np.float64).reshape(-1))

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    def problems(self) -> list[str]:
        """Reasons these intrinsics cannot be used; empty when they are fine."""
        found = []
        if not np.all(np.isfinite(self.K)):
            found.append("K contains NaN or infinite values")
        elif not np.any(self.K):
            found.append("K is all zeros (the camera is not calibrated)")
        elif self.fx <= 0 or self.fy <= 0:
            found.append(f"K has fx={self.fx:g}, fy={self.fy:g}; both must be > 0 (uncalibrated camera?)")
        else:
            found += self._implausible()
        if not np.all(np.isfinite(self.D)):
            found.append("D contains NaN or infinite values")
        if self.distortion_model not in OPENCV_DISTORTION_MODELS and np.any(self.D):
            found.append(
                f"distortion model '{self.distortion_model}' is not supported "
                f"(supported: {', '.join(OPENCV_DISTORTION_MODELS)})"
            )
        elif self.D.size not in (0, 4, 5, 8, 12, 14):
            found.append(f"D has {self.D.size} coefficients; OpenCV takes 4, 5, 8, 12 or 14")
        if self.width < 0 or self.height < 0:
            found.append(f"negative image size {self.width}x{self.height}")
        return found

    def _implausible(self) -> list[str]:
        """Problems of a finite K with positive focal lengths (the bounds above)."""
        found = []
        if np.abs(self.K[2] - [0.0, 0.0, 1.0]).max() > 1e-6:
            found.append(f"K's last row is {[round(float(v), 6) for v in self.K[2]]}, not [0, 0, 1] (a K in "
                         "homogeneous scale or transposed?)")
        if abs(self.K[0, 1]) > MAX_SKEW * self.fx or self.K[1, 0] != 0:
            found.append(f"K has skew (K[0][1] = {self.K[0, 1]:g}, K[1][0] = {self.K[1, 0]:g}); poses are solved "
                         "for zero skew: calibrate without it")
        aspect = self.fx / self.fy
        if not 1 / MAX_ASPECT <= aspect <= MAX_ASPECT:
            found.append(f"fx / fy = {aspect:.3g} (fx={self.fx:g}, fy={self.fy:g}) is outside "
                         f"[{1 / MAX_ASPECT:g}, {MAX_ASPECT:g}]: is one of them for another resolution or binning?")
        for name, f, c, size in (("horizontal", self.fx, self.cx, self.width), ("vertical", self.fy, self.cy,
                                                                                self.height)):
            if size <= 0:
                continue  # no image size yet: checked again once fitted to an image
            fov = math.degrees(2 * math.atan(size / (2 * f)))
            if not MIN_FOV_DEG <= fov <= MAX_FOV_DEG:
                found.append(f"the {name} field of view is {fov:.3g} deg (focal length {f:g} px for {size} px), "
                             f"outside [{MIN_FOV_DEG:g}, {MAX_FOV_DEG:g}]: focal lengths are in pixels")
            axis = "cx" if name == "horizontal" else "cy"
            if not -PRINCIPAL_POINT_MARGIN * size <= c <= (1 + PRINCIPAL_POINT_MARGIN) * size:
                found.append(f"the principal point {axis}={c:g} lies outside the {size} px image (by more than "
                             f"{PRINCIPAL_POINT_MARGIN:.0%} of it): is K for another resolution or crop?")
        return found

    def validated(self) -> "CameraModel":
        """Return self, or raise CameraModelError naming every problem."""
        found = self.problems()
        if found:
            raise CameraModelError("; ".join(found))
        return self

    @property
    def opencv_distortion(self) -> np.ndarray:
        """D as OpenCV takes it: (n,) float64, zeros(4) when there is none."""
        return self.D if self.D.size else np.zeros(4)

    def scaled_to(self, width: int, height: int) -> "CameraModel":
        """The same camera for an image resized to width x height (pure resize, no crop)."""
        if (width, height) == (self.width, self.height) or self.width <= 0 or self.height <= 0:
            return self
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[0, :] *= sx
        K[1, :] *= sy
        # Pixel centres: a principal point at the centre of pixel (cx, cy) keeps its
        # relative position under a resize when scaled about the pixel corner.
        K[0, 2] = (self.K[0, 2] + 0.5) * sx - 0.5
        K[1, 2] = (self.K[1, 2] + 0.5) * sy - 0.5
        return CameraModel(K, self.D, width, height, self.frame_id, self.distortion_model)

    def fitted_to(self, width: int, height: int) -> "CameraModel":
        """This camera for an image of width x height pixels.

        Unknown size (0) is taken as the image's. A pure resize (same aspect
        ratio within half a pixel) scales K; anything else raises
        CameraModelError, because the intrinsics would not describe this image.
        """
        if self.width <= 0 or self.height <= 0:
            return CameraModel(self.K, self.D, width, height, self.frame_id, self.distortion_model)
        if (self.width, self.height) == (width, height):
            return self
        if self.exact_size:
            raise CameraModelError(
                f"camera info (with a region of interest or binning) is for {self.width}x{self.height} images but the "
                f"image is {width}x{height}: publish the CameraInfo of the stream you subscribe to (ROI and binning "
                "as the image has them)")
        if (abs(self.width * height / self.height - width) <= 0.5
                and abs(self.height * width / self.width - height) <= 0.5):
            return self.scaled_to(width, height)
        raise CameraModelError(
            f"camera info is for {self.width}x{self.height} images but the image is {width}x{height} "
            "(not a pure resize): calibrate for this resolution or publish matching CameraInfo"
        )

    def ray_direction(self, u: float, v: float) -> np.ndarray:
        """Unit (3,) direction, in the optical frame, of the ray through pixel (u, v).

        Distortion is removed, so the ray is exact for the real lens.
        """
        import cv2  # local: keeps `import headpose_ros.core.camera` light

        pts = np.array([[[u, v]]], dtype=np.float64)
        x, y = cv2.undistortPoints(pts, self.K, self.opencv_distortion).reshape(2)
        d = np.array([x, y, 1.0])
        return d / np.linalg.norm(d)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "CameraModel":
        """Read a camera_calibration_parsers YAML file (as written by camera_calibration).

        Keys used: image_width, image_height, camera_name (not needed),
        camera_matrix{rows, cols, data}, distortion_model,
        distortion_coefficients{rows, cols, data}; an optional frame_id.
        """
        import yaml

        path = Path(path)
        try:
            with path.open() as f:
                doc = yaml.safe_load(f)
        except OSError as exc:
            raise CameraModelError(f"cannot read camera info file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise CameraModelError(f"{path} is not valid YAML: {exc}".splitlines()[0]) from None
        except (UnicodeDecodeError, ValueError):
            raise CameraModelError(f"{path} is not a text file: is it a camera_calibration YAML file?") from None
        if not isinstance(doc, dict) or "camera_matrix" not in doc:
            raise CameraModelError(f"{path} has no 'camera_matrix': is it a camera_calibration YAML file?")
        try:
            K = _matrix(doc["camera_matrix"], (3, 3))
            dist = doc.get("distortion_coefficients") or {"data": []}
            D = np.array(dist.get("data") or [], dtype=np.float64)
            camera = cls(
                K=K,
                D=D,
                width=int(doc.get("image_width", 0)),
                height=int(doc.get("image_height", 0)),
                frame_id=str(doc.get("frame_id", "")),
                distortion_model=str(doc.get("distortion_model", "plumb_bob") or "plumb_bob"),
            )
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise CameraModelError(f"{path}: malformed camera info ({exc})") from None
        return camera

    def to_yaml_dict(self, camera_name: str = "camera") -> dict:
        """The camera_calibration_parsers YAML structure of this camera."""
        P = np.zeros((3, 4))
        P[:, :3] = self.K
        return {
            "image_width": int(self.width),
            "image_height": int(self.height),
            "camera_name": camera_name,
            "camera_matrix": {"rows": 3, "cols": 3, "data": [float(x) for x in self.K.ravel()]},
            "distortion_model": self.distortion_model,
            "distortion_coefficients": {"rows": 1, "cols": int(self.D.size), "data": [float(x) for x in self.D]},
            "rectification_matrix": {"rows": 3, "cols": 3, "data": [float(x) for x in np.eye(3).ravel()]},
            "projection_matrix": {"rows": 3, "cols": 4, "data": [float(x) for x in P.ravel()]},
        }

    @classmethod
    def from_field_of_view(cls, width: int, height: int, horizontal_fov_deg: float, frame_id: str = "") -> "CameraModel":
        """An ideal pinhole camera (no distortion, centred principal point) of a given horizontal FOV.

        Only for synthetic inputs (the demo, tests) and for the explicit fallback-intrinsics
        option: a real camera's intrinsics come from its calibration.
        """
        f = 0.5 * width / math.tan(math.radians(horizontal_fov_deg) / 2)
        K = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
        return cls(K, np.zeros(5), width, height, frame_id)


def _matrix(entry: dict, shape: tuple[int, int]) -> np.ndarray:
    data = np.array(entry["data"], dtype=np.float64)
    if data.size != shape[0] * shape[1]:
        raise ValueError(f"expected {shape[0]}x{shape[1]} values, got {data.size}")
    return data.reshape(shape)
