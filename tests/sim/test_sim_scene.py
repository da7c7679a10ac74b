"""Scene spec parsing, placement and validation (no physics)."""

from __future__ import annotations

import itertools
import math

import pytest

from capstan import sim
from capstan.sim.assets import BOWL_OBJ, bowl_obj_text
from capstan.sim.scene import CLEARANCE, MAX_OBJECTS, WORKSPACE, SceneError, build_layout


def test_same_spec_same_layout_bit_for_bit():
    spec = {"objects": ["red block", "blue bowl", "green block", "yellow bowl"], "seed": 7}
    a, _ = build_layout(spec)
    b, _ = build_layout(dict(spec))
    assert a == b
    c, _ = build_layout({**spec, "seed": 8})
    assert [o.xy for o in a] != [o.xy for o in c]


def test_layout_keeps_order_and_clearance_inside_workspace():
    for seed in range(20):
        layout, s = build_layout({"blocks": 4, "bowls": 4, "seed": seed})
        assert s == seed and len(layout) == 8
        for o in layout:
            assert WORKSPACE.contains(o.xy)
        for p, q in itertools.combinations(layout, 2):
            assert math.dist(p.xy, q.xy) >= CLEARANCE[p.kind] + CLEARANCE[q.kind] - 1e-12


def test_counts_pick_distinct_colors_per_kind():
    layout, _ = build_layout({"blocks": 11, "bowls": 0, "seed": 3})
    colors = [o.color for o in layout]
    assert len(set(colors)) == 11 and all(o.kind == "block" for o in layout)
    a, _ = build_layout({"blocks": 3, "bowls": 2, "seed": 1})
    b, _ = build_layout({"blocks": 3, "bowls": 2, "seed": 2})
    assert [o.name for o in a] != [o.name for o in b] or [o.xy for o in a] != [o.xy for o in b]


def test_explicit_positions_are_kept():
    layout, _ = build_layout(
        {"objects": [{"name": "red block", "position": [0.1, 0.5]}, "blue bowl"], "seed": 7}
    )
    assert layout[0].xy == (0.1, 0.5) and layout[0].yaw == 0.0
    assert math.dist(layout[1].xy, (0.1, 0.5)) >= CLEARANCE["block"] + CLEARANCE["bowl"]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"objects": ["mauve block"]}, "unknown color 'mauve'"),
        ({"objects": ["gren block"]}, "did you mean green"),
        ({"objects": ["red cube"]}, "expected '<color> block'"),
        ({"objects": ["red block", "red block"]}, "duplicate object 'red block'"),
        ({"objects": [{"name": "red block", "position": [2.0, 0.5]}]}, "outside the workspace"),
        ({"objects": [{"name": "red block", "position": [0.0]}]}, "must be [x, y]"),
        ({"objects": [{"name": "red block", "position": ["a", 1]}]}, "two numbers"),
        ({"objects": [{"name": "red block", "position": [float("nan"), 0.5]}]}, "finite"),
        ({"objects": [{"name": "red block", "colour": "x"}]}, "object entries are names or"),
        ({"objects": [42]}, "name string or a dict"),
        ({"objects": "red block"}, "must be a list"),
        (
            {
                "objects": [f"{c} block" for c in sim.scene.COLORS]
                + [f"{c} bowl" for c in list(sim.scene.COLORS)[:6]]
            },
            "too many objects",
        ),
        ({"blocks": 0, "bowls": 11, "seed": 1}, "too many objects to place"),
        ({"blocks": 12}, "between 0 and 11"),
        ({"blocks": True}, "between 0 and 11"),
        ({"blocks": 1, "objects": []}, "not both"),
        ({"seed": -1}, "a whole number from 0 to"),
        ({"seed": "7"}, "a whole number from 0 to"),
        ({"seed": 2**63}, "a whole number from 0 to"),
        ({"objcts": []}, "unknown scene spec keys"),
        ([], "must be a JSON object"),
        (
            {
                "objects": [
                    {"name": "red block", "position": [0.0, 0.5]},
                    {"name": "blue bowl", "position": [0.05, 0.5]},
                ]
            },
            "overlaps",
        ),
    ],
)
def test_invalid_specs_raise_scene_error(spec, fragment):
    with pytest.raises(SceneError) as err:
        build_layout(spec)
    assert fragment in str(err.value)


def test_max_objects_is_sixteen_and_error_is_exported():
    assert MAX_OBJECTS == 16 and sim.SceneError is SceneError
    assert issubclass(SceneError, ValueError)


def test_committed_bowl_mesh_matches_generator():
    assert BOWL_OBJ.read_text() == bowl_obj_text()


def test_public_face_is_sorted_and_importable():
    assert sim.__all__ == sorted(sim.__all__)
    for name in sim.__all__:
        assert getattr(sim, name) is not None
