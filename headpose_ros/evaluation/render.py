"""Render a photographed face at a known pose: ground truth made the way 300W-LP was.

The face mesh's 468 landmarks, found on a frontal photo, texture the metric
face model (core.face_model) triangle by triangle; the textured model is
then drawn at any rotation and position through any pinhole camera.
Triangles are the Delaunay triangulation of the model seen from the front
(the project's own; MediaPipe's tesselation is not shipped), drawn back to
front with back faces culled.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core.camera import CameraModel
from ..core.face_model import FACE_OVAL, FaceModel


def frontal_triangles(model: FaceModel) -> np.ndarray:
    """(k, 3) vertex indices: Delaunay triangles of the model projected on its frontal (y, z) plane."""
    yz = model.points[:, 1:3] * np.array([1.0, -1.0])  # as seen from the front: its left on the right, up up
    lo = yz.min(axis=0) - 1e-3
    hi = yz.max(axis=0) + 1e-3
    scale = 1e4  # Subdiv2D works in float pixels; use 0.1 mm units
    subdiv = cv2.Subdiv2D((0, 0, int((hi[0] - lo[0]) * scale) + 2, int((hi[1] - lo[1]) * scale) + 2))
    pts = (yz - lo) * scale
    index = {}
    for i, (x, y) in enumerate(pts):
        subdiv.insert((float(x), float(y)))
        index[(round(float(x), 3), round(float(y), 3))] = i
    triangles = []
    for tri in subdiv.getTriangleList():
        corners = [index.get((round(float(tri[2 * k]), 3), round(float(tri[2 * k + 1]), 3))) for k in range(3)]
        if None not in corners:
            triangles.append(corners)
    return np.array(triangles, dtype=np.int32)


@dataclass
class TexturedFace:
    """A face mesh textured from one photo.

    vertices: (k, 3) metres, REP-155 face frame; the first 468 are the face
        mesh's landmarks, any others the surround (see with_surround).
    texture: (h, w, 3) uint8 RGB, the photo.
    uv: (k, 2) where each vertex is in the photo, pixels.
    triangles: (m, 3) vertex indices, wound clockwise on screen seen from the front.
    """

    vertices: np.ndarray
    texture: np.ndarray
    uv: np.ndarray
    triangles: np.ndarray

    def project(self, R: np.ndarray, t: np.ndarray, camera: CameraModel) -> np.ndarray:
        """(k, 2) pixels of the vertices with the face at orientation R (3, 3) and sellion position t (3,) m."""
        rvec, _ = cv2.Rodrigues(np.asarray(R, dtype=np.float64))
        px, _ = cv2.projectPoints(self.vertices, rvec, np.asarray(t, dtype=np.float64),
                                  camera.K, camera.opencv_distortion)
        return px.reshape(-1, 2)

    def render(self, R: np.ndarray, t: np.ndarray, camera: CameraModel,
               background: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The face at orientation R (3, 3) and sellion position t (3,) m in the camera optical frame.

        Returns the (height, width, 3) uint8 RGB image (the face over
        `background`, or mid grey) and its (height, width) bool face mask.
        """
        h, w = camera.height, camera.width
        image = np.full((h, w, 3), 110, np.uint8) if background is None else background.copy()
        mask = np.zeros((h, w), np.uint8)
        cam_pts = self.vertices @ R.T + t
        px = self.project(R, t, camera)
        tris = self.triangles
        depth = cam_pts[tris, 2].mean(axis=1)
        for k in np.argsort(-depth):  # far to near: nearer triangles paint over
            a, b, c = tris[k]
            dst = px[[a, b, c]].astype(np.float32)
            # Front faces wind clockwise on screen (positive cross product with v down);
            # the others are the far side of the face.
            if (dst[1, 0] - dst[0, 0]) * (dst[2, 1] - dst[0, 1]) - (dst[1, 1] - dst[0, 1]) * (dst[2, 0] - dst[0, 0]) <= 0:
                continue
            _paint_triangle(image, mask, self.texture, self.uv[[a, b, c]].astype(np.float32), dst)
        return image, mask.astype(bool)


def _paint_triangle(image, mask, texture, src, dst) -> None:
    x0, y0 = np.floor(dst.min(axis=0)).astype(int)
    x1, y1 = np.ceil(dst.max(axis=0)).astype(int) + 1
    H, W = image.shape[:2]
    if x1 <= 0 or y1 <= 0 or x0 >= W or y0 >= H or x1 - x0 > W or y1 - y0 > H:
        return
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    M = cv2.getAffineTransform(src, dst - np.array([cx0, cy0], np.float32))
    patch = cv2.warpAffine(texture, M, (cx1 - cx0, cy1 - cy0), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    tri_mask = np.zeros((cy1 - cy0, cx1 - cx0), np.uint8)
    cv2.fillConvexPoly(tri_mask, np.round(dst - [cx0, cy0]).astype(np.int32), 1, lineType=cv2.LINE_8)
    region = image[cy0:cy1, cx0:cx1]
    region[tri_mask > 0] = patch[tri_mask > 0]
    mask[cy0:cy1, cx0:cx1] |= tri_mask


def textured_face(photo_rgb: np.ndarray, landmarks_px: np.ndarray, model: FaceModel,
                  triangles: np.ndarray | None = None) -> TexturedFace:
    """Texture `model` from a photo whose 468 landmarks (468, 2+) pixels were found by the face mesh.

    triangles: the mesh topology (default: frontal_triangles(model)).
    """
    return TexturedFace(model.points, photo_rgb, np.asarray(landmarks_px, dtype=np.float64)[:, :2],
                        frontal_triangles(model) if triangles is None else triangles)


# The surround: rings around the face oval, each (scale of the oval about its centre, set back in metres).
SURROUND_RINGS = ((1.3, 0.03), (1.7, 0.08))


def with_surround(face: TexturedFace, rings=SURROUND_RINGS) -> TexturedFace:
    """The face with rings of photo around it (hair, ears, neck), curving back like a head's sides.

    A bare face mask lacks the head outline a detector keys on: at 50 px the
    face detector's score fell below 0.5 on most masks. Each ring scales the
    face oval about its centre, in the face's y-z plane and in the photo
    alike, and moves it back along -x; consecutive rings are joined by
    triangle strips.
    """
    oval = np.array(FACE_OVAL)
    loop_v, loop_uv = face.vertices[oval], face.uv[oval]
    centre_v, centre_uv = loop_v.mean(axis=0), loop_uv.mean(axis=0)
    vertices, uv, triangles = [face.vertices], [face.uv], [face.triangles]
    inner = oval
    count = len(face.vertices)
    for scale, back in rings:
        ring_v = loop_v.copy()
        ring_v[:, 1:] = centre_v[1:] + (loop_v[:, 1:] - centre_v[1:]) * scale
        ring_v[:, 0] -= back
        vertices.append(ring_v)
        uv.append(centre_uv + (loop_uv - centre_uv) * scale)
        outer = np.arange(count, count + len(oval))
        nxt = np.roll(np.arange(len(oval)), -1)
        strip = np.concatenate([np.stack([inner, inner[nxt], outer[nxt]], 1), np.stack([inner, outer[nxt], outer], 1)])
        triangles.append(strip)
        inner, count = outer, count + len(oval)
    all_v = np.concatenate(vertices)
    all_t = np.concatenate(triangles)
    # Wind the strips like the face: clockwise on screen seen from the front (positive in (y, -z)).
    yz = all_v[:, 1:3] * np.array([1.0, -1.0])
    a, b, c = yz[all_t[:, 0]], yz[all_t[:, 1]], yz[all_t[:, 2]]
    flip = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]) < 0
    all_t[flip] = all_t[flip][:, ::-1]
    return TexturedFace(all_v, face.texture, np.concatenate(uv), all_t)
