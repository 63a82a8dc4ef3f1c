"""RViz markers of the heads and their attention (visualization_msgs/MarkerArray on ~/markers).

Per face, in the camera optical frame of the image, stamped with the image stamp:

- ``head_axes``: the face frame's axes, 10 cm (x red: out of the face, y green, z blue);
- ``gaze``: an arrow along the gaze ray, 0.5 m;
- ``cone``: the attention cone (the default half-angle), translucent, green while the face attends
  something, grey otherwise;
- ``label``: id, yaw/pitch/roll and the attended target, above the head;
- ``target``: a sphere on the attended target (deleted while there is none).

Each face keeps one marker id in every namespace for its track's life; when
the track ends every one of its markers is deleted (no ghosts).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

NAMESPACES = ("head_axes", "gaze", "cone", "label", "target")
AXIS_LENGTH_M = 0.1
GAZE_LENGTH_M = 0.5
CONE_SEGMENTS = 16
IDLE = ColorRGBA(r=0.7, g=0.7, b=0.7, a=0.15)
ATTENDING = ColorRGBA(r=0.1, g=0.9, b=0.2, a=0.25)
AXIS_COLOURS = (ColorRGBA(r=1.0, a=1.0), ColorRGBA(g=1.0, a=1.0), ColorRGBA(b=1.0, a=1.0))


class MarkerIds:
    """A stable integer marker id per track id, for the track's life."""

    def __init__(self):
        self._ids: dict[str, int] = {}
        self._next = itertools.count(1)

    def of(self, track_id: str) -> int:
        if track_id not in self._ids:
            self._ids[track_id] = next(self._next)
        return self._ids[track_id]

    def release(self, track_id: str) -> int | None:
        return self._ids.pop(track_id, None)


def _point(p) -> Point:
    return Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))


def _marker(header, ns: str, marker_id: int, kind: int) -> Marker:
    m = Marker(header=header, ns=ns, id=marker_id, type=kind, action=Marker.ADD)
    m.pose = Pose(orientation=Quaternion(w=1.0))
    m.lifetime = Duration()  # until replaced or deleted
    return m


def _cone(apex: np.ndarray, R: np.ndarray, half_angle_deg: float, length: float) -> list[Point]:
    """TRIANGLE_LIST points of a cone along the face's x axis."""
    radius = length * math.tan(math.radians(half_angle_deg))
    axis, u, v = R[:, 0], R[:, 1], R[:, 2]
    rim = [apex + length * axis + radius * (math.cos(a) * u + math.sin(a) * v)
           for a in np.linspace(0, 2 * math.pi, CONE_SEGMENTS + 1)]
    return [_point(p) for k in range(CONE_SEGMENTS) for p in (apex, rim[k], rim[k + 1])]


def head_markers(header, head, attention, marker_id: int, cone_deg: float, cone_length: float) -> list[Marker]:
    """The five markers of one face (see the module docstring)."""
    R, t = np.asarray(head.R), np.asarray(head.t)
    axes = _marker(header, "head_axes", marker_id, Marker.LINE_LIST)
    axes.scale = Vector3(x=0.01)
    for k in range(3):
        axes.points += [_point(t), _point(t + AXIS_LENGTH_M * R[:, k])]
        axes.colors += [AXIS_COLOURS[k], AXIS_COLOURS[k]]
    gaze = _marker(header, "gaze", marker_id, Marker.ARROW)
    gaze.points = [_point(t), _point(t + GAZE_LENGTH_M * R[:, 0])]
    gaze.scale = Vector3(x=0.012, y=0.025, z=0.04)
    gaze.color = ColorRGBA(r=1.0, g=0.2, b=1.0, a=1.0)
    attending = attention is not None and bool(attention.target)
    cone = _marker(header, "cone", marker_id, Marker.TRIANGLE_LIST)
    cone.points = _cone(t, R, cone_deg, cone_length)
    cone.scale = Vector3(x=1.0, y=1.0, z=1.0)
    cone.color = ATTENDING if attending else IDLE
    label = _marker(header, "label", marker_id, Marker.TEXT_VIEW_FACING)
    label.pose.position = _point(t + np.array([0.0, -0.15, 0.0]))  # above the head (optical y is down)
    label.scale = Vector3(z=0.05)
    label.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
    yaw, pitch, roll = head.yaw_pitch_roll_deg
    text = f"{head.track_id}  y{yaw:+.0f} p{pitch:+.0f} r{roll:+.0f}"
    if attention is not None:
        text += f"\n-> {attention.target} {attention.dwell_s:.1f} s" if attending else "\n-> (none)"
    label.text = text
    target = _marker(header, "target", marker_id, Marker.SPHERE)
    attended = attention.attended if attending else None
    if attended is None:
        target.action = Marker.DELETE
    else:
        target.pose.position = _point(attended.position)
        target.scale = Vector3(x=0.08, y=0.08, z=0.08)
        target.color = ColorRGBA(r=0.1, g=1.0, b=0.2, a=0.8)
    return [axes, gaze, cone, label, target]


def deletions(header, marker_id: int) -> list[Marker]:
    """DELETE of every marker of one face."""
    out = []
    for ns in NAMESPACES:
        m = Marker(header=header, ns=ns, id=marker_id, action=Marker.DELETE)
        out.append(m)
    return out


def marker_array(header, heads, attention_by_id: dict, ended: list[str], ids: MarkerIds,
                 cone_deg: float, cone_length: float) -> MarkerArray:
    """The frame's markers: every head's, and the deletion of every ended track's."""
    markers = []
    for track_id in ended:
        marker_id = ids.release(track_id)
        if marker_id is not None:
            markers += deletions(header, marker_id)
    for head in heads:
        markers += head_markers(header, head, attention_by_id.get(head.track_id), ids.of(head.track_id),
                                cone_deg, cone_length)
    return MarkerArray(markers=markers)
