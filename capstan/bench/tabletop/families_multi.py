"""Families that move several objects: stacking, sorting into matching bowls, arrangements."""

from __future__ import annotations

import itertools
import math

from capstan.bench.tabletop import geometry as g
from capstan.bench.tabletop.colors import ALL_COLORS
from capstan.bench.tabletop.task import Family, Task, Verdict


def tower_order(state: dict, blocks: list[str]) -> list[str] | None:
    """The blocks bottom-up when they form one tower (each resting on the one below), else None."""
    order = sorted(blocks, key=lambda b: g.z(state, b))
    if not g.on_table(state, order[0]):
        return None
    if all(g.on_top(state, up, down) for down, up in itertools.pairwise(order)):
        return order
    return None


class Stacking(Family):
    name = "stacking"
    phrasings = (
        "stack the {a} on the {b}",
        "put the {a} on top of the {b}",
        "stack all the blocks",
        "build a tower with the {b} at the bottom and the other blocks on top of it",
        "stack the blocks on top of each other",
    )

    def generate(self, seed: int) -> Task:
        rng = self.rng(seed)
        colors = rng.sample(list(ALL_COLORS), 4)
        blocks = [f"{c} block" for c in colors[:3]]
        bowl = f"{colors[3]} bowl"
        kind = seed % len(self.phrasings)
        params = {"blocks": blocks} if kind >= 2 else {"upper": blocks[0], "lower": blocks[1]}
        if kind == 3:
            params["bottom"] = blocks[1]
        text = self.phrase(seed, a=blocks[0], b=blocks[1])
        return self.task(seed, {"objects": [*blocks, bowl]}, text, params)

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        end = states[-1]
        if "upper" in params:
            up, down = params["upper"], params["lower"]
            extra = sorted(set(g.moved(states[0], end)) - {up})
            return Verdict.all_of(
                [
                    (g.on_top(end, up, down), f"{up} is not on top of the {down}"),
                    (not extra, f"also moved {extra}"),
                ]
            )
        order = tower_order(end, params["blocks"])
        if order is None:
            zs = ", ".join(f"{b} z={g.z(end, b):.3f}" for b in params["blocks"])
            return Verdict(False, f"the blocks do not form one tower ({zs})")
        if "bottom" in params and order[0] != params["bottom"]:
            return Verdict(False, f"the tower's bottom block is the {order[0]}, not the {params['bottom']}")
        return Verdict(True, "ok")


class Sorting(Family):
    name = "sorting"
    phrasings = (
        "put each block in the bowl of the same color",
        "sort the blocks into the bowls with matching colors",
        "put the blocks in their matching bowls",
        "put every block into the bowl that has the same color as the block",
    )

    def generate(self, seed: int) -> Task:
        rng = self.rng(seed)
        n = 2 if seed % 3 == 0 else 3
        colors = rng.sample(list(ALL_COLORS), n)
        objects = [f"{c} block" for c in colors] + [f"{c} bowl" for c in rng.sample(colors, n)]
        return self.task(seed, {"objects": objects}, self.phrase(seed), {"colors": colors})

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        end = states[-1]
        return Verdict.all_of(
            [
                (g.in_bowl(end, f"{c} block", f"{c} bowl"), f"{c} block is not in the {c} bowl")
                for c in params["colors"]
            ]
        )


SHAPES = (
    ("horizontal line", 3, "arrange the blocks in a horizontal line"),
    ("triangle", 3, "make a triangle with the blocks"),
    ("vertical line", 3, "put the blocks in a vertical line"),
    ("circle", 4, "arrange the blocks in a circle"),
    ("horizontal line", 4, "line up the blocks from left to right"),
    ("triangle", 3, "place the three blocks at the corners of a triangle"),
    ("circle", 4, "put the blocks in a circle around the middle of the table"),
)


class Arrangement(Family):
    """Geometric arrangements: lines, a triangle, a circle."""

    name = "arrangement"
    phrasings = tuple(text for _, _, text in SHAPES)
    line_tol, min_gap = 0.025, 0.035

    def generate(self, seed: int) -> Task:
        rng = self.rng(seed)
        shape, n, _ = SHAPES[seed % len(SHAPES)]
        colors = rng.sample(list(ALL_COLORS), n)
        return self.task(
            seed, {"objects": [f"{c} block" for c in colors]}, self.phrase(seed), {"shape": shape}
        )

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        end = states[-1]
        blocks = g.names(end, "block")
        pts = [g.xy(end, b) for b in blocks]
        gaps = [math.dist(p, q) for i, p in enumerate(pts) for q in pts[i + 1 :]]
        common = [
            # three blocks dropped at random already form some triangle: the robot must make it
            (bool(g.moved(states[0], end)), "no block moved: the arrangement was not made"),
            (all(g.on_table(end, b) for b in blocks), "not every block rests on the table"),
            (min(gaps) > self.min_gap, f"two blocks are only {min(gaps):.3f} m apart"),
        ]
        shape = params["shape"]
        if shape in ("horizontal line", "vertical line"):
            axis = 1 if shape == "horizontal line" else 0
            vals = [p[axis] for p in pts]
            spread = max(vals) - min(vals)
            ok = (
                spread < 2 * self.line_tol,
                f"not a {shape}: positions differ by {spread:.3f} m across the line",
            )
        elif shape == "triangle":
            ok = (
                _min_angle(pts) > 25.0,
                f"not a triangle: smallest angle {_min_angle(pts):.0f} deg (want > 25)",
            )
        else:
            ok = _circle_ok(pts)
        return Verdict.all_of([*common, ok])


def _min_angle(pts) -> float:
    angles = []
    for i in range(3):
        a, b, c = pts[i], pts[(i + 1) % 3], pts[(i + 2) % 3]
        v1, v2 = (b[0] - a[0], b[1] - a[1]), (c[0] - a[0], c[1] - a[1])
        n1, n2 = math.hypot(*v1), math.hypot(*v2)
        if n1 < 1e-9 or n2 < 1e-9:
            return 0.0
        cos = max(-1.0, min(1.0, (v1[0] * v2[0] + v1[1] * v2[1]) / (n1 * n2)))
        angles.append(math.degrees(math.acos(cos)))
    return min(angles)


def _circle_ok(pts) -> tuple[bool, str]:
    cx, cy = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    radii = [math.dist(p, (cx, cy)) for p in pts]
    mean_r = sum(radii) / len(radii)
    angles = sorted(math.atan2(p[1] - cy, p[0] - cx) for p in pts)
    gaps = [b - a for a, b in itertools.pairwise(angles)] + [2 * math.pi - (angles[-1] - angles[0])]
    max_gap = math.degrees(max(gaps))
    ok = mean_r > 0.04 and max(radii) - min(radii) < 0.03 and max_gap < 150
    return ok, (
        f"not a circle: radii {min(radii):.3f}..{max(radii):.3f} m around {g.fmt((cx, cy))}, "
        f"largest angular gap {max_gap:.0f} deg"
    )
