"""The declared scene: what an operator may declare, and how the robot's own grasps move it."""

from __future__ import annotations

import pytest

from capstan.primitives.backend import Workspace
from capstan.primitives.declared import MAX_DECLARED, DeclaredScene
from capstan.primitives.errors import InvalidArgumentError
from capstan.primitives.geometry import BLOCK_SIZE, BOWL_WALL

WS = Workspace(x=(-0.25, 0.25), y=(0.30, 0.70), table_z=0.0)


def scene(**objects) -> DeclaredScene:
    return DeclaredScene(WS, objects or {"red block": {"position": [0.0, 0.5]}})


def test_names_give_kind_and_colour_and_objects_rest_on_the_table():
    s = DeclaredScene(
        WS,
        {
            "red block": {"position": [0.0, 0.5]},
            "blue bowl": {"position": [0.1, 0.4]},
            "cup": {"kind": "bowl", "color": "green", "position": [-0.1, 0.6, 0.0]},
        },
    )
    objs = s.objects([0.0, 0.5, 0.3])
    assert objs["red block"] == {
        "kind": "block",
        "color": "red",
        "position": [0.0, 0.5, BLOCK_SIZE / 2],
        "orientation": [0.0, 0.0, 0.0, 1.0],
    }
    assert objs["blue bowl"]["position"] == [0.1, 0.4, 0.0]
    assert objs["cup"]["kind"] == "bowl" and objs["cup"]["color"] == "green"


def test_a_list_form_is_accepted_too():
    s = DeclaredScene(WS, [{"name": "red block", "position": [0.0, 0.5]}])
    assert s.names == ["red block"]


@pytest.mark.parametrize(
    ("objects", "says"),
    [
        ({"red thing": {"position": [0, 0.5]}}, "needs a kind"),
        ({"block": {"position": [0, 0.5]}}, "needs a colour"),
        ({"red block": {"position": [0, 0.5], "color": "ultraviolet"}}, "needs a colour"),
        ({"red block": {"position": [0.9, 0.5]}}, "outside the workspace"),
        ({"red block": {"position": [float("nan"), 0.5]}}, "finite"),
        ({"red block": {"position": [0, 0.5, 2.0]}}, "not on the table"),
        ({"red block": {"position": "middle"}}, "[x, y]"),
        ({"red block": {"position": [0, 0.5], "orientation": [0, 0, 0, 0]}}, "unit quaternion"),
        ({"red block": {"position": [0, 0.5], "mass": 1}}, "unknown keys"),
        ({"red block; rm -rf": {"position": [0, 0.5]}}, "letters, digits"),
        (
            [{"name": "red block", "position": [0, 0.5]}, {"name": "red block", "position": [0, 0.6]}],
            "duplicate",
        ),
        ("red block", "declare objects as"),
        ({f"block {i}": {"color": "red", "position": [0, 0.5]} for i in range(MAX_DECLARED + 1)}, "too many"),
    ],
)
def test_bad_declarations_are_refused_and_change_nothing(objects, says):
    s = scene()
    before = s.objects([0, 0.5, 0.3])
    with pytest.raises(InvalidArgumentError) as info:
        s.declare(objects)
    assert says in str(info.value)
    assert s.objects([0, 0.5, 0.3]) == before


def test_a_grasp_takes_the_object_between_the_fingers_and_it_moves_with_the_gripper():
    s = DeclaredScene(WS, {"red block": {"position": [0.0, 0.5]}, "blue block": {"position": [0.1, 0.5]}})
    assert s.closed([0.003, 0.5, 0.02], width=0.039) == "red block"
    assert s.holding == "red block"
    carried = s.objects([0.103, 0.6, 0.2])["red block"]["position"]
    assert carried == pytest.approx([0.1, 0.6, 0.2])
    s.opened([0.153, 0.45, 0.05])
    assert s.holding is None
    assert s.objects([0, 0, 0])["red block"]["position"] == pytest.approx([0.15, 0.45, BLOCK_SIZE / 2])


def test_closing_to_nothing_or_far_from_any_object_holds_nothing():
    s = scene()
    assert s.closed([0.0, 0.5, 0.02], width=0.0005) is None  # closed all the way: empty
    assert s.closed([0.2, 0.65, 0.02], width=0.04) is None  # something nobody declared
    assert s.closed([0.0, 0.5, 0.25], width=0.04) is None  # far above the block
    assert s.holding is None


def test_a_released_block_lands_on_what_is_below_it():
    s = DeclaredScene(
        WS,
        {
            "red block": {"position": [0.0, 0.5]},
            "blue block": {"position": [0.1, 0.5]},
            "green bowl": {"position": [-0.1, 0.4]},
        },
    )
    s.closed([0.0, 0.5, 0.02], width=0.04)
    s.opened([0.1, 0.5, 0.07])  # stacked on the blue block
    assert s.objects([0, 0, 0])["red block"]["position"][2] == pytest.approx(BLOCK_SIZE * 1.5)
    s.closed([0.1, 0.5, 0.06], width=0.04)
    s.opened([-0.1, 0.4, 0.08])  # dropped into the bowl
    assert s.objects([0, 0, 0])["red block"]["position"] == pytest.approx(
        [-0.1, 0.4, BOWL_WALL + BLOCK_SIZE / 2]
    )


def test_declaring_again_replaces_the_scene_and_drops_what_was_held():
    s = scene()
    s.closed([0.0, 0.5, 0.02], width=0.04)
    s.declare({"green block": {"position": [0.1, 0.6]}})
    assert s.names == ["green block"] and s.holding is None
