"""PolicyAPI on the real PyBullet world: every primitive, events, and every error path."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from capstan import primitives
from capstan.primitives import PolicyAPI
from capstan.primitives.api import FUNCTION_NAMES
from capstan.primitives.errors import (
    ERROR_TYPES,
    GraspError,
    InvalidArgumentError,
    OutOfWorkspaceError,
    PlacementError,
    PrimitiveError,
    UnknownObjectError,
    suggested_point,
)
from capstan.sim import World

SPEC = {
    "objects": [
        {"name": "red block", "position": [-0.15, 0.40]},
        {"name": "green block", "position": [0.15, 0.40]},
        {"name": "yellow block", "position": [0.0, 0.62]},
        {"name": "blue bowl", "position": [0.12, 0.58]},
        {"name": "pink bowl", "position": [-0.12, 0.58]},
    ],
    "seed": 0,
}
CONTRACT_FUNCTIONS = {
    "get_obj_names",
    "get_obj_pos",
    "get_obj_xyz",
    "get_bbox",
    "get_color",
    "is_obj_visible",
    "get_table_bounds",
    "get_corner_positions",
    "get_side_positions",
    "get_named_position",
    "get_corner_name",
    "get_side_name",
    "denormalize_xy",
    "pick",
    "place",
    "put_first_on_second",
    "move_gripper_to",
    "move_gripper_by",
    "get_gripper_pos",
    "open_gripper",
    "close_gripper",
    "get_gripper_state",
    "wait",
    "say",
}


@pytest.fixture(scope="module")
def world():
    w = World(SPEC)
    yield w
    w.close()


@pytest.fixture
def api(world):
    snap = world.snapshot()
    events: list[tuple[str, dict]] = []
    a = PolicyAPI(world, on_event=lambda kind, payload: events.append((kind, payload)))
    a.events = events
    a.fns = a.functions()
    yield a
    world.restore(snap)


def dist(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def test_functions_match_the_contract_and_are_documented(api):
    assert set(api.fns) == CONTRACT_FUNCTIONS == set(FUNCTION_NAMES)
    text = api.describe()
    for name in CONTRACT_FUNCTIONS:
        assert f"\n{name}(" in "\n" + text
        assert inspect.getdoc(getattr(api, name))
    assert "metres" in text and "[x, y]" in text
    assert primitives.__all__ == sorted(primitives.__all__)
    assert "NotVisibleError" in ERROR_TYPES


READ_ARGS = {
    "get_obj_pos": ("red block",),
    "get_obj_xyz": ("blue bowl",),
    "get_bbox": ("green block",),
    "get_color": ("pink bowl",),
    "is_obj_visible": ("yellow block",),
    "get_named_position": ("top left corner",),
    "get_corner_name": ([0.1, 0.5],),
    "get_side_name": ([0.1, 0.5],),
    "denormalize_xy": ([0.5, 0.5],),
}


def test_pure_functions_only_look_and_answer_the_same_twice(api, world):
    """What the sandbox may answer again without asking (Sandbox.run(pure=...)): on the sim,
    every read; each leaves the world and the sim clock alone and repeats its answer."""
    pure = api.pure_functions()
    assert set(pure) <= set(FUNCTION_NAMES) and "get_obj_pos" in pure
    assert not {"pick", "place", "put_first_on_second", "wait", "say", "move_gripper_by"} & set(pure)
    before = world.state()
    for name in pure:
        args = READ_ARGS.get(name, ())
        first, second = api.fns[name](*args), api.fns[name](*args)
        assert json.dumps(first, default=np.ndarray.tolist) == json.dumps(second, default=np.ndarray.tolist)
    assert world.state() == before and not api.said


def test_no_pure_functions_on_a_robot_that_moves_by_itself(world, monkeypatch):
    monkeypatch.setattr(World, "changes_only_when_commanded", False)
    assert PolicyAPI(world).pure_functions() == ()


def test_perception_functions(api):
    f = api.fns
    assert f["get_obj_names"]() == ["red block", "green block", "yellow block", "blue bowl", "pink bowl"]
    assert dist(f["get_obj_pos"]("red block"), [-0.15, 0.40]) < 2e-3
    xyz = f["get_obj_xyz"]("red block")
    assert xyz.shape == (3,) and abs(xyz[2] - 0.02) < 1e-3
    assert abs(f["get_obj_xyz"]("blue bowl")[2]) < 2e-3
    bbox = f["get_bbox"]("blue bowl")
    assert np.allclose(bbox, [0.06, 0.52, 0.18, 0.64], atol=3e-3)
    rb = f["get_bbox"]("red block")
    assert rb[0] < -0.15 < rb[2] and rb[1] < 0.40 < rb[3] and 0.039 < rb[2] - rb[0] < 0.06
    assert f["get_color"]("pink bowl") == "pink"
    assert f["is_obj_visible"]("red block") is True
    assert np.allclose(f["get_table_bounds"](), [-0.25, 0.30, 0.25, 0.70])
    assert np.allclose(f["get_corner_positions"](), [[-0.25, 0.7], [0.25, 0.7], [-0.25, 0.3], [0.25, 0.3]])
    assert np.allclose(f["get_side_positions"](), [[0.0, 0.7], [0.0, 0.3], [-0.25, 0.5], [0.25, 0.5]])
    assert np.allclose(f["get_named_position"]("middle"), [0.0, 0.5])
    assert f["get_corner_name"]([0.2, 0.65]) == "top right corner"
    assert f["get_corner_name"](np.array([-0.2, 0.35])) == "bottom left corner"
    assert f["get_side_name"]([-0.2, 0.5]) == "left side"
    assert np.allclose(f["denormalize_xy"]([0.5, 1.0]), [0.0, 0.7])
    assert np.allclose(f["denormalize_xy"]([0.0, 0.0]), [-0.25, 0.3])


def test_put_block_into_bowl_ends_inside(api):
    api.fns["put_first_on_second"]("red block", "pink bowl")
    api.fns["wait"](0.5)
    s = api.backend.state()["objects"]
    red, bowl = np.array(s["red block"]["position"]), np.array(s["pink bowl"]["position"])
    assert dist(red[:2], bowl[:2]) < 0.025 and red[2] < 0.04
    assert api.fns["get_gripper_state"]()["holding"] is None


def test_take_a_block_back_out_of_a_bowl(api):
    f = api.fns
    f["put_first_on_second"]("red block", "pink bowl")
    bowl = f["get_obj_xyz"]("pink bowl")
    f["put_first_on_second"]("red block", [-0.15, 0.40])
    assert dist(f["get_obj_xyz"]("red block"), [-0.15, 0.40, 0.02]) < 0.01
    assert dist(f["get_obj_xyz"]("pink bowl"), bowl) < 0.005  # the fingers barely touch the bowl


def test_stack_on_block_and_place_on_position(api):
    f = api.fns
    f["put_first_on_second"]("green block", "red block")
    red, green = f["get_obj_xyz"]("red block"), f["get_obj_xyz"]("green block")
    assert dist(red[:2], green[:2]) < 0.01 and abs(green[2] - red[2] - 0.04) < 2e-3
    f["pick"]("yellow block")
    assert f["get_gripper_state"]()["holding"] == "yellow block"
    f["place"]([0.05, 0.45])
    assert dist(f["get_obj_pos"]("yellow block"), [0.05, 0.45]) < 0.01


def test_events_carry_plain_data(api):
    f = api.fns
    f["get_obj_pos"]("red block")
    with pytest.raises(UnknownObjectError):
        f["get_obj_pos"]("red blok")
    f["say"]("hello")
    kinds = [k for k, _ in api.events]
    assert kinds == ["primitive_call", "primitive_call", "say", "primitive_call"]
    ok, bad, said, say_call = (p for _, p in api.events)
    json.dumps([ok, bad, said, say_call])
    assert ok["name"] == "get_obj_pos" and ok["args"] == ["red block"] and len(ok["result"]) == 2
    assert ok["t_start"] <= ok["t_end"] and "error" not in ok
    assert bad["error"]["type"] == "UnknownObjectError" and "red block" in bad["error"]["message"]
    assert "result" not in bad
    assert said == {"text": "hello"} and api.said == ["hello"]


def test_gripper_control_and_reactive_moves(api):
    f = api.fns
    f["move_gripper_to"]([0.0, 0.5, 0.2])
    assert dist(f["get_gripper_pos"](), [0.0, 0.5, 0.2]) < 3e-3
    f["move_gripper_by"]([0.02, -0.01, -0.03])
    assert dist(f["get_gripper_pos"](), [0.02, 0.49, 0.17]) < 3e-3
    assert f["close_gripper"]() is False
    assert f["get_gripper_state"]()["open"] is False
    f["open_gripper"]()
    st = f["get_gripper_state"]()
    assert st["open"] is True and st["holding"] is None and st["width"] > 0.06
    t0 = api.backend.state()["time_s"]
    f["wait"](0.5)
    assert api.backend.state()["time_s"] == pytest.approx(t0 + 0.5, abs=1e-9)


def test_reactive_policy_pushes_block_until_it_touches_the_bowl(api):
    """A closed-loop policy: push the green block left, a few millimetres at a time, until it
    touches the blue bowl (which sits up and to its left)."""
    f = api.fns
    block, bowl = "green block", "blue bowl"
    bx, by = f["get_obj_pos"](block)
    f["close_gripper"]()
    f["move_gripper_to"]([bx, by - 0.05, 0.15])
    f["move_gripper_to"]([bx, by - 0.05, 0.02])
    for _ in range(80):
        gap = dist(f["get_obj_pos"](block), f["get_obj_pos"](bowl)) - 0.06 - 0.02  # rim radius + half block
        if gap < 0.004:
            break
        direction = f["get_obj_pos"](bowl) - f["get_gripper_pos"]()[:2]
        step = 0.01 * direction / np.linalg.norm(direction)
        f["move_gripper_by"]([step[0], step[1], 0.0])
        f["wait"](0.05)
    else:
        pytest.fail("the block never reached the bowl")
    f["move_gripper_by"]([0.0, 0.0, 0.1])
    gap = dist(f["get_obj_pos"](block), f["get_obj_pos"](bowl))
    assert gap < 0.06 + 0.0285 + 0.006  # touching the rim (half-diagonal of the block at worst)
    assert f["get_obj_xyz"](block)[2] > 0.015  # still upright on the table or leaning on the rim


@pytest.mark.parametrize(
    ("fn", "args", "error", "fragment"),
    [
        ("get_obj_pos", ("red blok",), UnknownObjectError, "closest known names: 'red block'"),
        ("get_obj_pos", (3,), InvalidArgumentError, "must be a name string"),
        ("get_obj_pos", ("x" * 10_000,), InvalidArgumentError, "characters long"),
        ("get_obj_pos", (), InvalidArgumentError, "missing a required argument"),
        ("get_obj_pos", ("red block", 2), InvalidArgumentError, "too many positional"),
        ("get_named_position", ("by the window",), InvalidArgumentError, "not a named position"),
        ("get_named_position", ("corner",), InvalidArgumentError, "'top left corner', 'top right corner'"),
        ("get_named_position", (3,), InvalidArgumentError, "short name"),
        ("put_first_on_second", ("red block", "by the window"), UnknownObjectError, "unknown object"),
        ("put_first_on_second", ("red block", "the left corner"), InvalidArgumentError, "no single place"),
        ("place", ("near the middle",), InvalidArgumentError, "'top left corner', 'top right corner'"),
        ("get_corner_name", ([0.1],), InvalidArgumentError, "must have 2 numbers"),
        ("get_side_name", ("ab",), InvalidArgumentError, "list of 2 numbers"),
        ("denormalize_xy", ([float("nan"), 0.5],), InvalidArgumentError, "finite"),
        ("place", ([0.1, 0.5],), GraspError, "not holding anything"),
        ("place", ([1.0, 0.5],), OutOfWorkspaceError, "outside the workspace"),
        ("place", ([0.1] * 10_000_000,), InvalidArgumentError, "must have 2 numbers"),
        ("place", (np.zeros((2, 2)),), InvalidArgumentError, "must have shape (2,)"),
        ("pick", ("blue bowl",), InvalidArgumentError, "only blocks"),
        ("pick", ("purple block",), UnknownObjectError, "unknown object"),
        ("put_first_on_second", ("red block", "red block"), InvalidArgumentError, "on itself"),
        ("put_first_on_second", ("red block", [0.0, 2.0]), OutOfWorkspaceError, "outside"),
        ("move_gripper_to", ([0.0, 0.5, float("inf")],), InvalidArgumentError, "finite"),
        ("move_gripper_to", ([0.0, 0.5, 0.9],), OutOfWorkspaceError, "height"),
        ("move_gripper_to", ([0.0, 0.5, 0.2], 0.0), InvalidArgumentError, "speed"),
        ("move_gripper_to", ([True, 0.5, 0.2],), InvalidArgumentError, "must be a number"),
        ("move_gripper_by", ([0.5, 0.0, 0.0],), InvalidArgumentError, "at most 0.1"),
        ("move_gripper_by", ([0.0, 0.0, -0.5],), InvalidArgumentError, "at most"),
        ("wait", (-1,), InvalidArgumentError, "between 0.0 and 30.0"),
        ("wait", (1e9,), InvalidArgumentError, "between"),
        ("wait", ("1",), InvalidArgumentError, "must be a number"),
        ("wait", (10**400,), InvalidArgumentError, "too large for a float"),
        ("move_gripper_to", ([10**400, 0.5, 0.2],), InvalidArgumentError, "too large for a float"),
        ("say", (None,), InvalidArgumentError, "takes a string"),
    ],
)
def test_error_paths(api, fn, args, error, fragment):
    before = api.backend.state()
    with pytest.raises(error) as err:
        api.fns[fn](*args)
    assert isinstance(err.value, PrimitiveError)
    assert fragment in str(err.value)
    assert api.backend.state()["objects"] == before["objects"]  # the world is untouched
    kind, payload = api.events[-1]
    assert kind == "primitive_call" and payload["error"]["type"] == error.__name__
    json.dumps(payload)


def test_pick_while_holding_and_giant_say(api):
    f = api.fns
    f["pick"]("red block")
    with pytest.raises(GraspError, match="already holding 'red block'"):
        f["pick"]("green block")
    f["pick"]("red block")  # already in hand: nothing to do
    assert api.backend.gripper_state()["holding"] == "red block"
    f["put_first_on_second"]("red block", "blue bowl")  # a follow-up command that picks it "again"
    assert api.backend.gripper_state()["holding"] is None
    f["say"]("x" * 1_000_000)
    assert len(api.said[-1]) == 2000
    f["say"](42)
    assert api.said[-1] == "42"


def test_camera_perception_api_parks_out_of_view(world):
    snap = world.snapshot()
    try:
        cam = PolicyAPI(world, perception="camera").functions()
        cam["put_first_on_second"]("red block", "blue bowl")
        truth = PolicyAPI(world).functions()
        for name in truth["get_obj_names"]():
            assert cam["is_obj_visible"](name)
            assert dist(cam["get_obj_xyz"](name), truth["get_obj_xyz"](name)) < 0.01
    finally:
        world.restore(snap)


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ([0.17, 0.58], "rim of the 'blue bowl'"),  # 5 cm from the bowl's centre: onto its rim
        ([0.125, 0.40], "half on the 'green block'"),  # 2.5 cm from the block: half on it
    ],
)
def test_a_target_that_would_not_land_cleanly_is_refused_with_a_free_spot(api, target, fragment):
    before = api.backend.state()
    with pytest.raises(PlacementError) as err:
        api.fns["put_first_on_second"]("red block", target)
    message = str(err.value)
    assert fragment in message and "the nearest free spot is" in message
    assert api.backend.state() == before, "refused before anything moved"
    spot = json.loads(message.split("the nearest free spot is ")[1])
    assert suggested_point(message) == spot
    assert np.hypot(spot[0] - target[0], spot[1] - target[1]) < 0.1
    api.fns["put_first_on_second"]("red block", spot)  # the named spot is usable as it stands
    landed = api.fns["get_obj_pos"]("red block")
    assert np.allclose(landed, spot, atol=0.02)


def test_in_a_bowl_squarely_on_a_block_and_on_bare_table_are_fine(api):
    api.fns["put_first_on_second"]("red block", [0.12, 0.585])  # in the blue bowl
    api.fns["put_first_on_second"]("yellow block", [0.15, 0.405])  # on the green block
    assert api.fns["get_obj_pos"]("yellow block")[0] == pytest.approx(0.15, abs=0.02)


def test_out_of_workspace_names_the_nearest_point_inside(api):
    with pytest.raises(OutOfWorkspaceError, match=r"nearest point inside is \[0.25, 0.5\]") as err:
        api.fns["put_first_on_second"]("red block", [0.4, 0.5])
    assert suggested_point(str(err.value)) == [0.25, 0.5]  # what feedback to the model quotes
    assert suggested_point("GraspError: the gripper closed on nothing") is None


def test_named_places_are_read_as_a_person_means_them_and_are_targets(api):
    f = api.fns
    assert np.allclose(f["get_named_position"]("the far left corner"), [-0.25, 0.7])
    assert np.allclose(f["get_named_position"]("right edge"), [0.25, 0.5])
    assert np.allclose(f["get_named_position"]("centre"), [0.0, 0.5])
    # a place as the target of a pick-and-place, landing-checked like any position
    f["put_first_on_second"]("red block", "the far right corner")
    assert dist(f["get_obj_pos"]("red block"), [0.25, 0.7]) < 0.02
    f["put_first_on_second"]("yellow block", [0.22, 0.30])  # 3 cm from the near right corner
    with pytest.raises(PlacementError, match="half on the 'yellow block'.*nearest free spot"):
        f["put_first_on_second"]("green block", "the corner nearest the robot on the right")
