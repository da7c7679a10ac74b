"""Where the objects are: ground truth from the backend, or a top-down RGB-D camera.

Both sources answer `observe() -> {name: Observation}` for every object of the scene. The camera
source renders one top-down image per simulated instant (cached until time moves), takes each
object's pixels, lifts them to 3-D with depth + intrinsics + extrinsics, and uses the top surface:
a block's centre is its top face's centroid minus half its size, a bowl's is its rim's centroid.
Which object a mask is comes from the simulator's mask id -> name mapping when the image has one;
otherwise (a real camera's segmenter) from the RGB colour of its pixels and its area (block or bowl).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import numpy as np

from capstan.primitives.backend import CameraImage, RobotBackend
from capstan.primitives.geometry import BLOCK_SIZE, BOWL_HEIGHT, BOWL_RADIUS, COLORS
from capstan.primitives.scene_state import SceneState

TOP_BAND = 0.006  # metres below the highest point that count as an object's top surface
MIN_PIXELS = 8  # fewer visible pixels than this and the object is "not visible"
RENDER_SIZE = (320, 240)


@dataclass(frozen=True)
class Observation:
    name: str
    kind: str
    color: str
    position: np.ndarray  # [x, y, z]: block centre or bowl base centre
    bbox: np.ndarray  # [x_min, y_min, x_max, y_max]
    visible: bool
    yaw: float = 0.0  # rotation about z in radians (a block's faces; 0 for bowls)


def quat_yaw(q) -> float:
    x, y, z, w = (float(v) for v in q)
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def footprint_bbox(kind: str, xy, yaw: float) -> np.ndarray:
    r = BOWL_RADIUS if kind == "bowl" else BLOCK_SIZE / 2 * (abs(math.cos(yaw)) + abs(math.sin(yaw)))
    return np.array([xy[0] - r, xy[1] - r, xy[0] + r, xy[1] + r])


class Perception(abc.ABC):
    """One source of object positions."""

    name: str

    def __init__(self, backend: RobotBackend):
        self.backend = backend

    @abc.abstractmethod
    def observe(self) -> dict[str, Observation]: ...


class TruthPerception(Perception):
    """Exact poses from `backend.state()`; an object is visible while it is on the table."""

    name = "truth"

    def observe(self) -> dict[str, Observation]:
        state = self.backend.state()
        table_z = state["workspace"]["table_z"]
        out = {}
        for name, o in state["objects"].items():
            pos = np.array(o["position"], dtype=float)
            bbox = footprint_bbox(o["kind"], pos, quat_yaw(o["orientation"]))
            yaw = quat_yaw(o["orientation"])
            out[name] = Observation(
                name, o["kind"], o["color"], pos, bbox, bool(pos[2] > table_z - 0.05), yaw
            )
        return out


def square_yaw(xy: np.ndarray, steps: int = 45) -> float:
    """Yaw in [-pi/4, pi/4) of a square seen as points (N, 2): the rotation whose axis-aligned
    bounding box is smallest."""
    c = xy - xy.mean(axis=0)
    best, best_area = 0.0, math.inf
    for a in np.linspace(-math.pi / 4, math.pi / 4, steps, endpoint=False):
        r = c @ np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        area = float(np.ptp(r[:, 0]) * np.ptp(r[:, 1]))
        if area < best_area:
            best, best_area = float(a), area
    return best


def pixels_to_world(img: CameraImage, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Lift pixels (row, column) with their depth to world points, shape (N, 3)."""
    k = img.intrinsics
    z = img.depth[rows, cols].astype(np.float64)
    x = (cols - k[0, 2]) * z / k[0, 0]
    y = (rows - k[1, 2]) * z / k[1, 1]
    cam = np.stack([x, y, z, np.ones_like(z)], axis=1)
    return (img.extrinsics @ cam.T).T[:, :3]


def classify_color(rgb_pixels: np.ndarray) -> str:
    """Nearest palette colour to the median of (N, 3) uint8 pixels, compared after removing
    overall brightness for saturated colours and by brightness for grays."""
    c = np.median(rgb_pixels.astype(float) / 255.0, axis=0)
    best, best_d = "gray", math.inf
    for name, ref in COLORS.items():
        ref = np.asarray(ref)
        scale = float(c @ ref / max(ref @ ref, 1e-9))  # shading only scales the colour
        d = float(np.linalg.norm(c - scale * ref)) + 0.25 * abs(math.log(max(scale, 1e-3)))
        if d < best_d:
            best, best_d = name, d
    return best


class CameraPerception(Perception):
    """Object poses from a rendered top-down RGB-D image (see the module docstring)."""

    name = "camera"

    def __init__(self, backend: RobotBackend, view: str = "top", size: tuple[int, int] = RENDER_SIZE):
        super().__init__(backend)
        self.view, self.size = view, size
        self._cache: tuple[float, dict[str, Observation]] | None = None
        self.last_image: CameraImage | None = None

    def observe(self) -> dict[str, Observation]:
        state = self.backend.state()
        if self._cache is not None and self._cache[0] == state["time_s"]:
            return self._cache[1]
        img = self.backend.render(self.view, *self.size)
        self.last_image = img
        obs = self._from_image(img, state)
        self._cache = (state["time_s"], obs)
        return obs

    def _masks(self, img: CameraImage, state: SceneState) -> dict[str, np.ndarray]:
        """Pixel masks per scene object name."""
        masks: dict[str, np.ndarray] = {}
        if img.segmentation is None:
            return masks
        fit: dict[str, float] = {}
        for seg_id in np.unique(img.segmentation):
            mask = img.segmentation == seg_id
            if seg_id < 0 or mask.sum() < MIN_PIXELS:
                continue
            if img.id_to_name:  # the simulator says which body each id is
                name, score = img.id_to_name.get(int(seg_id)), 0.0
            else:
                name, score = self._identify(img, mask, state)
            if name is not None and name in state["objects"] and score <= fit.get(name, math.inf):
                masks[name], fit[name] = mask, score
        return masks

    def _identify(self, img: CameraImage, mask: np.ndarray, state: SceneState) -> tuple[str | None, float]:
        """(name, misfit) of a mask from its colour and area; misfit ranks rival masks."""
        rows, cols = np.nonzero(mask)
        pts = pixels_to_world(img, rows, cols)
        if pts[:, 2].max() - state["workspace"]["table_z"] < 0.002:
            return None, math.inf  # the table itself
        z = img.depth[rows, cols].astype(float)
        area = float(np.sum((z / img.intrinsics[0, 0]) ** 2))  # m^2 seen from above
        kind = "bowl" if area > 0.45 * math.pi * BOWL_RADIUS**2 else "block"
        expected = math.pi * BOWL_RADIUS**2 if kind == "bowl" else BLOCK_SIZE**2
        if not 0.3 * expected <= area <= 2.0 * expected:
            return None, math.inf  # the arm, the table, or an object mostly hidden
        return f"{classify_color(img.rgb[rows, cols])} {kind}", abs(math.log(area / expected))

    @staticmethod
    def _top_face_pixels(img: CameraImage, top: np.ndarray) -> float:
        """How many pixels a fully visible block top face at this height covers."""
        cam_z = img.extrinsics[2, 3] - float(np.mean(top[:, 2]))  # the top view looks straight down
        return (BLOCK_SIZE * img.intrinsics[0, 0] / max(cam_z, 1e-3)) ** 2

    def _from_image(self, img: CameraImage, state: SceneState) -> dict[str, Observation]:
        masks = self._masks(img, state)
        out = {}
        for name, o in state["objects"].items():
            mask = masks.get(name)
            if mask is None:
                out[name] = Observation(
                    name, o["kind"], o["color"], np.full(3, np.nan), np.full(4, np.nan), False
                )
                continue
            rows, cols = np.nonzero(mask)
            pts = pixels_to_world(img, rows, cols)
            top = pts[pts[:, 2] >= pts[:, 2].max() - TOP_BAND]
            if o["kind"] == "block" and len(top) < 0.6 * self._top_face_pixels(img, top):
                # most of the top face is hidden (under the arm or another block): no reliable centre
                out[name] = Observation(
                    name, o["kind"], o["color"], np.full(3, np.nan), np.full(4, np.nan), False
                )
                continue
            xy = top[:, :2].mean(axis=0)
            if o["kind"] == "bowl":  # the rim ring: centre of its extent is robust to one-sided gaps
                xy = (top[:, :2].min(axis=0) + top[:, :2].max(axis=0)) / 2
            z = pts[:, 2].max() - (BLOCK_SIZE / 2 if o["kind"] == "block" else BOWL_HEIGHT)
            bbox = np.concatenate([pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)])
            yaw = square_yaw(top[:, :2]) if o["kind"] == "block" else 0.0
            out[name] = Observation(name, o["kind"], o["color"], np.array([xy[0], xy[1], z]), bbox, True, yaw)
        return out


def make_perception(kind: str, backend: RobotBackend) -> Perception:
    if kind == "truth":
        return TruthPerception(backend)
    if kind == "camera":
        return CameraPerception(backend)
    raise ValueError(f"perception must be 'truth' or 'camera', got {kind!r}")
