"""Scene specs: parse and validate the spec dict, then place objects without overlap.

Three spec forms (docs/CONTRACTS.md "Scene spec"):
    {"objects": ["red block", "blue bowl"], "seed": 7}
    {"objects": [{"name": "red block", "position": [0.1, 0.5]}, "blue bowl"], "seed": 7}
    {"blocks": 3, "bowls": 3, "seed": 7}
Placement uses only `random.Random(seed)`, so the same spec gives the same layout bit for bit.
"""

from __future__ import annotations

import difflib
import math
import random
from dataclasses import dataclass

from capstan.primitives.backend import Workspace
from capstan.primitives.geometry import CLASSIC_COLORS, COLORS, KINDS
from capstan.primitives.scene_state import SceneState

WORKSPACE = Workspace(x=(-0.25, 0.25), y=(0.30, 0.70), table_z=0.0)
MAX_OBJECTS = 16
CLEARANCE = {"block": 0.045, "bowl": 0.075}  # keep-out radius around each object at start
EDGE_MARGIN = {"block": 0.03, "bowl": 0.065}  # random placements stay this far inside the bounds
MAX_TRIES = 4000


class SceneError(ValueError):
    """The scene spec is invalid; the message says what and how to fix it."""


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    kind: str
    color: str
    xy: tuple[float, float] | None = None  # explicit position, else random


@dataclass(frozen=True)
class PlacedObject:
    name: str
    kind: str
    color: str
    xy: tuple[float, float]
    yaw: float


def _parse_name(name: object) -> tuple[str, str]:
    if not isinstance(name, str):
        raise SceneError(f"object names must be strings like 'red block', got {type(name).__name__}")
    parts = name.strip().split()
    if len(parts) != 2 or parts[1] not in KINDS:
        raise SceneError(f"bad object name {name[:80]!r}: expected '<color> block' or '<color> bowl'")
    if parts[0] not in COLORS:
        close = difflib.get_close_matches(parts[0], list(COLORS), n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise SceneError(
            f"unknown color {parts[0][:40]!r} in {name[:80]!r}{hint}; colors: {', '.join(COLORS)}"
        )
    return parts[0], parts[1]


def _parse_position(name: str, pos: object, ws: Workspace) -> tuple[float, float]:
    if not isinstance(pos, (list, tuple)) or len(pos) != 2:
        raise SceneError(f"position of {name!r} must be [x, y] in metres")
    try:
        x, y = (float(v) for v in pos)
    except (TypeError, ValueError):
        raise SceneError(f"position of {name!r} must hold two numbers, got {pos!r:.80}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise SceneError(f"position of {name!r} must be finite, got {pos!r}")
    if not ws.contains((x, y)):
        raise SceneError(
            f"position {[x, y]} of {name!r} is outside the workspace x in {list(ws.x)}, y in {list(ws.y)}"
        )
    return x, y


def _parse_entry(entry: object, ws: Workspace) -> ObjectSpec:
    if isinstance(entry, str):
        color, kind = _parse_name(entry)
        return ObjectSpec(f"{color} {kind}", kind, color)
    if isinstance(entry, dict):
        extra = set(entry) - {"name", "position"}
        if "name" not in entry or extra:
            raise SceneError(
                f"object entries are names or {{'name': ..., 'position': [x, y]}}; got keys "
                f"{sorted(map(str, entry))}"
            )
        color, kind = _parse_name(entry["name"])
        name = f"{color} {kind}"
        xy = _parse_position(name, entry["position"], ws) if entry.get("position") is not None else None
        return ObjectSpec(name, kind, color, xy)
    raise SceneError(f"object entries must be a name string or a dict, got {type(entry).__name__}")


def _parse_count(spec: dict, key: str) -> int:
    n = spec.get(key, 0)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(CLASSIC_COLORS):
        raise SceneError(f"{key!r} must be an integer between 0 and {len(CLASSIC_COLORS)}, got {n!r:.40}")
    return n


def parse_spec(spec: object, ws: Workspace = WORKSPACE) -> tuple[list[ObjectSpec], int]:
    """Validate a spec dict; returns (object specs in spec order, seed). Raises SceneError."""
    if not isinstance(spec, dict):
        raise SceneError(f"scene spec must be a JSON object, got {type(spec).__name__}")
    unknown = set(spec) - {"objects", "blocks", "bowls", "seed"}
    if unknown:
        raise SceneError(
            f"unknown scene spec keys {sorted(map(str, unknown))}; allowed: objects, blocks, bowls, seed"
        )
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise SceneError(f"'seed' must be a whole number from 0 to 2**63 - 1, got {seed!r:.40}")
    rng = random.Random(seed)
    if "objects" in spec:
        if "blocks" in spec or "bowls" in spec:
            raise SceneError("give either 'objects' or 'blocks'/'bowls' counts, not both")
        entries = spec["objects"]
        if not isinstance(entries, list):
            raise SceneError("'objects' must be a list of names like 'red block'")
        if len(entries) > MAX_OBJECTS:
            raise SceneError(f"too many objects ({len(entries)}); at most {MAX_OBJECTS} fit on the table")
        objs = [_parse_entry(e, ws) for e in entries]
    else:
        counts = {k: _parse_count(spec, k + "s") for k in KINDS}
        if sum(counts.values()) > MAX_OBJECTS:
            raise SceneError(
                f"too many objects ({sum(counts.values())}); at most {MAX_OBJECTS} fit on the table"
            )
        objs = []
        for kind in KINDS:
            for color in rng.sample(CLASSIC_COLORS, counts[kind]):
                objs.append(ObjectSpec(f"{color} {kind}", kind, color))
    seen: set[str] = set()
    for o in objs:
        if o.name in seen:
            raise SceneError(f"duplicate object {o.name!r}: each name may appear once")
        seen.add(o.name)
    return objs, seed


def _fits(kind: str, xy: tuple[float, float], placed: list[PlacedObject]) -> bool:
    return all(math.dist(xy, p.xy) >= CLEARANCE[kind] + CLEARANCE[p.kind] for p in placed)


def place_objects(objs: list[ObjectSpec], seed: int, ws: Workspace = WORKSPACE) -> list[PlacedObject]:
    """Positions for every object: explicit ones as given, the rest by rejection sampling
    (bowls first, they need the most room). Raises SceneError when they cannot all fit."""
    rng = random.Random(f"capstan-scene-{seed}")
    placed: list[PlacedObject] = []
    for o in objs:
        if o.xy is not None:
            if not _fits(o.kind, o.xy, placed):
                raise SceneError(f"{o.name!r} at {list(o.xy)} overlaps another explicitly placed object")
            placed.append(PlacedObject(o.name, o.kind, o.color, o.xy, 0.0))
    order = sorted((o for o in objs if o.xy is None), key=lambda o: o.kind != "bowl")
    for o in order:
        m = EDGE_MARGIN[o.kind]
        for _ in range(MAX_TRIES):
            xy = (rng.uniform(ws.x[0] + m, ws.x[1] - m), rng.uniform(ws.y[0] + m, ws.y[1] - m))
            if _fits(o.kind, xy, placed):
                break
        else:
            raise SceneError(
                f"cannot place {o.name!r}: too many objects to place without overlap "
                f"({len(objs)} objects, {sum(p.kind == 'bowl' for p in objs)} bowls); use fewer bowls or "
                "objects"
            )
        yaw = rng.uniform(-math.pi / 4, math.pi / 4) if o.kind == "block" else 0.0
        placed.append(PlacedObject(o.name, o.kind, o.color, xy, yaw))
    by_name = {p.name: p for p in placed}
    return [by_name[o.name] for o in objs]


def build_layout(spec: object, ws: Workspace = WORKSPACE) -> tuple[list[PlacedObject], int]:
    """parse_spec + place_objects: the full, validated layout of a spec."""
    objs, seed = parse_spec(spec, ws)
    return place_objects(objs, seed, ws), seed


def spec_from_state(state: SceneState, ws: Workspace = WORKSPACE) -> dict:
    """A spec for a world holding the objects of a scene state (another robot's table), in its
    order; where they stand is set afterwards (World.place_objects), so stacks and objects in
    bowls need no room of their own. Each object must be one the sim can build: a known colour
    and kind, named '<color> <kind>'. Raises SceneError."""
    names = []
    for name, o in state["objects"].items():
        if name != f"{o.get('color')} {o.get('kind')}":
            raise SceneError(
                f"object {name[:80]!r} ({o.get('color')!r} {o.get('kind')!r}) has no simulated "
                "counterpart: the sim builds objects named '<color> <kind>'"
            )
        names.append(name)
    spec = {"objects": names, "seed": 0}
    parse_spec(spec, ws)  # the sim's own validation: colours, kinds, duplicates, how many
    return spec
