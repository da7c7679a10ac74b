"""A top-down picture of a declared scene, drawn with numpy, for a robot that has no camera yet.

Traces and the web page show a frame after every step; with no camera the honest picture is the
scene as declared (and kept up to date by the robot's own grasps). The drawing is a true pinhole
image from a virtual camera above the workspace, so its intrinsics and extrinsics are usable, but
it shows only what was declared: it is no evidence of where objects really are.
"""

from __future__ import annotations

import numpy as np

from capstan.primitives.backend import CameraImage, Workspace
from capstan.primitives.geometry import BLOCK_SIZE, BOWL_HEIGHT, BOWL_RADIUS, COLORS
from capstan.primitives.scene_state import ObjectState

CAMERA_HEIGHT = 1.0  # metres above the table
MARGIN = 0.05  # metres shown around the workspace
_TABLE = np.array([205, 190, 165], dtype=np.uint8)
_OUTSIDE = np.array([120, 115, 105], dtype=np.uint8)
_GRIPPER = np.array([30, 30, 30], dtype=np.uint8)
_BOWL_RIM = 0.008  # width of the drawn bowl rim, metres


def draw_top_view(
    objects: dict[str, ObjectState], tcp, ws: Workspace, width: int, height: int
) -> CameraImage:
    """The declared objects (blocks as squares, bowls as rings) and the gripper (a cross) seen
    from straight above the middle of the workspace."""
    cx, cy = (ws.x[0] + ws.x[1]) / 2, (ws.y[0] + ws.y[1]) / 2
    span_x, span_y = ws.x[1] - ws.x[0] + 2 * MARGIN, ws.y[1] - ws.y[0] + 2 * MARGIN
    f = min(width / span_x, height / span_y) * CAMERA_HEIGHT
    intrinsics = np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])
    # world-from-camera (OpenCV axes): camera x = world +x, camera y = world -y, looking down -z
    extrinsics = np.eye(4)
    extrinsics[:3, :3] = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
    extrinsics[:3, 3] = [cx, cy, ws.table_z + CAMERA_HEIGHT]

    # the table-frame point each pixel sees at the table's height (the camera looks straight down)
    v, u = np.mgrid[0:height, 0:width].astype(float)
    x = cx + (u + 0.5 - width / 2) / f * CAMERA_HEIGHT
    y = cy - (v + 0.5 - height / 2) / f * CAMERA_HEIGHT
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    rgb[:] = _OUTSIDE
    inside = (x >= ws.x[0]) & (x <= ws.x[1]) & (y >= ws.y[0]) & (y <= ws.y[1])
    rgb[inside] = _TABLE
    depth = np.full((height, width), CAMERA_HEIGHT, dtype=np.float32)

    # lowest first, so a block in a bowl or on another block is drawn over what holds it
    for o in sorted(objects.values(), key=lambda o: o["position"][2]):
        px, py, pz = o["position"]
        colour = (np.asarray(COLORS.get(o["color"], (0.5, 0.5, 0.5))) * 255).astype(np.uint8)
        if o["kind"] == "bowl":
            r = np.hypot(x - px, y - py)
            mask = (r <= BOWL_RADIUS) & (r >= BOWL_RADIUS - _BOWL_RIM)
            top = pz + BOWL_HEIGHT
        else:
            half = BLOCK_SIZE / 2
            mask = (np.abs(x - px) <= half) & (np.abs(y - py) <= half)
            top = pz + half
        rgb[mask] = colour
        depth[mask] = np.float32(CAMERA_HEIGHT - (top - ws.table_z))

    gx, gy = float(tcp[0]), float(tcp[1])
    arm = (np.abs(x - gx) <= 0.015) & (np.abs(y - gy) <= 0.003)
    arm |= (np.abs(y - gy) <= 0.015) & (np.abs(x - gx) <= 0.003)
    rgb[arm] = _GRIPPER
    return CameraImage(rgb=rgb, depth=depth, segmentation=None, intrinsics=intrinsics, extrinsics=extrinsics)
