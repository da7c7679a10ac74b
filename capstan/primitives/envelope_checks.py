"""Where an envelope lets the tool point go, in the frame of move_ee: the point and path checks,
the nearest allowed point, and the messages EnvelopeError carries (primitives.envelope)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from capstan.primitives.envelope import Envelope

_OUTSIDE = 0.001  # the nearest allowed point lies this far outside a keep-out box
_OVER = 0.02  # a suggested detour passes this far above a keep-out box


def _fmt(values) -> list[float]:
    return [round(float(v), 3) for v in values]


def segment_hits_box(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Whether the straight segment a-b meets the closed box [lo, hi] (slab test)."""
    t0, t1 = 0.0, 1.0
    d = b - a
    for i in range(3):
        if abs(d[i]) < 1e-12:
            if not lo[i] <= a[i] <= hi[i]:
                return False
            continue
        ta, tb = (lo[i] - a[i]) / d[i], (hi[i] - a[i]) / d[i]
        t0, t1 = max(t0, min(ta, tb)), min(t1, max(ta, tb))
        if t0 > t1:
            return False
    return True


@dataclass(frozen=True)
class _Zone:
    """A keep-out box in the frame of move_ee (its heights shifted by table_z)."""

    name: str
    lo: np.ndarray
    hi: np.ndarray

    def contains(self, p: np.ndarray) -> bool:
        return bool(np.all(self.lo <= p) and np.all(p <= self.hi))

    def describe(self) -> str:
        x, y, z = (_fmt([self.lo[i], self.hi[i]]) for i in range(3))
        return f"keep-out zone {self.name!r} (x {x}, y {y}, z {z})"


class Limits:
    """An envelope in the frame of move_ee, with the checks that produce EnvelopeError's messages."""

    def __init__(self, envelope: Envelope, table_z: float):
        self.envelope = envelope
        self.lo = np.array([envelope.x[0], envelope.y[0], table_z + envelope.z_floor])
        self.hi = np.array([envelope.x[1], envelope.y[1], table_z + envelope.z_ceiling])
        self.zones = tuple(
            _Zone(
                b.name,
                np.array([b.x[0], b.y[0], table_z + b.z[0]]),
                np.array([b.x[1], b.y[1], table_z + b.z[1]]),
            )
            for b in envelope.keep_out
        )

    def allows(self, p: np.ndarray) -> bool:
        inside = bool(np.all(self.lo <= p) and np.all(p <= self.hi))
        return inside and not any(z.contains(p) for z in self.zones)

    def nearest_allowed(self, p: np.ndarray) -> np.ndarray | None:
        """The allowed point nearest `p`: clamped into the box and band, then pushed out of a
        keep-out zone through its nearest face; None when no such point is allowed."""
        q = np.clip(p, self.lo, self.hi)
        if self.allows(q):
            return q
        options = []
        for zone in (z for z in self.zones if z.contains(q)):
            for axis in range(3):
                for side, edge in ((-1, zone.lo[axis]), (1, zone.hi[axis])):
                    c = q.copy()
                    c[axis] = edge + side * _OUTSIDE
                    if self.allows(c):
                        options.append(c)
        return min(options, key=lambda c: float(np.linalg.norm(c - p)), default=None)

    def point_problem(self, p: np.ndarray) -> str | None:
        """Why the tool point may not be at `p` (every limit it breaks), or None."""
        broken = []
        for axis, name in ((0, "x"), (1, "y")):
            if not self.lo[axis] <= p[axis] <= self.hi[axis]:
                allowed = _fmt([self.lo[axis], self.hi[axis]])
                broken.append(f"{name} {p[axis]:.3f} is outside the allowed {name} range {allowed}")
        if p[2] < self.lo[2]:
            broken.append(
                f"z {p[2]:.3f} is below the floor: the tool point must stay at z >= {self.lo[2]:.3f}"
            )
        elif p[2] > self.hi[2]:
            broken.append(
                f"z {p[2]:.3f} is above the ceiling: the tool point must stay at z <= {self.hi[2]:.3f}"
            )
        broken += [f"it lies inside {z.describe()}" for z in self.zones if z.contains(p)]
        if not broken:
            return None
        near = self.nearest_allowed(p)
        hint = (
            f"the nearest allowed point is {_fmt(near)}"
            if near is not None
            else "no allowed point is near it"
        )
        return f"the gripper may not go to {_fmt(p)}: {'; '.join(broken)}; {hint}"

    def path_problem(self, a: np.ndarray, b: np.ndarray) -> str | None:
        """Why the straight move a-b may not be made (it crosses a keep-out zone), or None."""
        for zone in self.zones:
            if segment_hits_box(a, b, zone.lo, zone.hi):
                over = zone.hi[2] + _OVER
                detour = (
                    f"go around it: e.g. up to z = {round(over, 3)} first, across, then down"
                    if over <= self.hi[2]
                    else "go around its sides"
                )
                return f"the straight move from {_fmt(a)} to {_fmt(b)} crosses {zone.describe()}; {detour}"
        return None
