"""The simulated twin: a headless world standing as another robot's scene says, where a program is
rehearsed while that robot's own world never moves. The "robot" here is a second PyBullet world,
read only through state() and workspace() as a real robot would be."""

from __future__ import annotations

import math

import pytest

from capstan.lmp.rehearsal import DryRun, judge
from capstan.primitives.api import PolicyAPI
from capstan.primitives.backend import Workspace
from capstan.primitives.errors import PrimitiveError
from capstan.primitives.outcome import ErrorKind, RunError
from capstan.primitives.rehearsal import RehearsalUnavailable
from capstan.sim import World
from capstan.sim.scene import SceneError, spec_from_state
from capstan.sim.twin import TwinRehearsal, TwinVideo

SPEC = {"objects": ["red block", "blue bowl", "green block"], "seed": 7}


@pytest.fixture
def robot():
    w = World(SPEC)
    yield w
    w.close()


@pytest.fixture
def twin():
    t = TwinRehearsal(TwinVideo(max_frames=40))
    yield t
    t.close()


def as_sandbox(fn):
    """`run` for a rehearsal: a primitive error comes back as the run's error, as from the sandbox."""

    def run():
        try:
            fn()
        except PrimitiveError as exc:
            return RunError(ErrorKind.PRIMITIVE, f"{type(exc).__name__}: {exc}")
        return None

    return run


def positions(state: dict) -> dict[str, list[float]]:
    return {n: o["position"] for n, o in state["objects"].items()}


def assert_same_place(a: dict, b: dict, tol: float = 0.01) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert math.dist(a[name], b[name]) < tol, (name, a[name], b[name])


def test_the_twin_stands_as_the_robot_holding_what_it_holds_and_the_robot_never_moves(robot, twin):
    api = PolicyAPI(robot)
    api.put_first_on_second("red block", "green block")  # a stack: no room of its own in a spec
    api.pick("red block")
    real = robot.state()
    place = api.functions()["place"]  # as a program calls it: reported as a primitive call
    rehearsed = twin.rehearse(api, as_sandbox(lambda: place("blue bowl")))
    assert rehearsed.error is None and rehearsed.twin
    assert_same_place(positions(rehearsed.before), positions(real))
    assert rehearsed.before["gripper"]["holding"] == "red block"
    assert math.dist(rehearsed.before["gripper"]["position"], real["gripper"]["position"]) < 0.01
    after = positions(rehearsed.after)
    assert math.dist(after["red block"][:2], after["blue bowl"][:2]) < 0.05  # placed, on the twin
    assert robot.state() == real  # not a step of the robot's world, not even its clock
    assert api.backend is robot and api.perception.backend is robot
    assert [c["name"] for c in rehearsed.calls] == ["place"] and len(rehearsed.frames) > 1


def test_the_twin_is_reused_and_starts_again_from_the_robots_scene(robot, twin):
    api = PolicyAPI(robot)
    first = twin.rehearse(api, as_sandbox(lambda: api.put_first_on_second("red block", "blue bowl")))
    world = twin._world
    second = twin.rehearse(api, as_sandbox(lambda: api.say("nothing moves")))
    assert twin._world is world  # same objects on the same workspace: no new world
    assert_same_place(positions(second.before), positions(first.before))
    assert second.said == ["nothing moves"] and api.said == []


def test_a_program_that_drops_a_block_outside_the_workspace_is_refused_on_the_twin(robot, twin):
    api = PolicyAPI(robot)
    real = robot.state()
    program = "pick red block, carry it past the right edge, let go"

    def run():
        api.pick("red block")
        api.move_gripper_to([0.29, 0.5, 0.1])
        api.open_gripper()

    dry = judge(DryRun(0, "greedy", program), twin.rehearse(api, as_sandbox(run)))
    assert dry.rejected == "left_workspace" and dry.twin
    assert robot.state() == real


def test_a_program_that_raises_on_the_twin_reports_its_error(robot, twin):
    api = PolicyAPI(robot)

    def run():
        api.pick("red block")
        api.get_obj_pos("purple block")

    real = robot.state()
    dry = judge(DryRun(0, "greedy", "..."), twin.rehearse(api, as_sandbox(run)))
    assert dry.rejected == "primitive" and "purple block" in dry.error.message
    assert robot.state() == real


def test_a_scene_the_sim_cannot_build_means_no_rehearsal(robot, twin):
    state = robot.state()
    state["objects"]["red cup"] = dict(state["objects"].pop("red block"), kind="cup")
    with pytest.raises(SceneError, match="bad object name .red cup."):
        spec_from_state(state)
    state["objects"]["red cup"]["kind"] = "block"  # named unlike its colour and kind
    with pytest.raises(SceneError, match="no simulated counterpart"):
        spec_from_state(state)
    with pytest.raises(RehearsalUnavailable, match="no simulated twin"):
        twin.twin_of(state, robot.workspace())


def test_the_twin_refuses_what_the_robots_safety_envelope_refuses(robot, twin):
    from capstan.primitives.envelope import Box, Envelope, EnvelopedBackend

    box = Box.from_dict({"name": "camera mast", "x": [0.0, 0.25], "y": [0.3, 0.7], "z": [0, 1]})
    ws = robot.workspace()
    fenced = EnvelopedBackend(robot, Envelope(x=ws.x, y=(0.1, ws.y[1]), keep_out=(box,)))
    api = PolicyAPI(fenced)
    real = robot.state()
    rehearsed = twin.rehearse(api, as_sandbox(lambda: api.move_gripper_to([0.1, 0.5, 0.1])))
    assert rehearsed.error is not None and "EnvelopeError" in rehearsed.error.message
    assert robot.state() == real


def test_the_twin_starts_with_the_motions_the_robot_has_left_this_run(robot, twin):
    from capstan.primitives.envelope import Envelope, EnvelopedBackend

    ws = robot.workspace()
    fenced = EnvelopedBackend(robot, Envelope(x=ws.x, y=(0.1, ws.y[1]), max_motions_per_run=3))
    fenced.set_gripper(True)
    fenced.set_gripper(False)  # an earlier attempt of this run spent two of three motions
    api = PolicyAPI(fenced)

    def two_moves():
        api.move_gripper_to([0.0, 0.5, 0.2])
        api.move_gripper_to([0.05, 0.5, 0.2])

    rehearsed = twin.rehearse(api, as_sandbox(two_moves))
    assert rehearsed.error is not None and "max_motions_per_run = 3" in rehearsed.error.message
    assert fenced.motions == 2  # the rehearsal spent none of the robot's own


def test_the_twin_counts_its_waits_as_the_robot_will_spend_them(robot, twin):
    """The twin waits in simulated time, no wall time at all: its run-time budget counts each wait's
    seconds, so four 15 s waits do not pass there to be stopped halfway on the robot (max_run_s 40)."""
    from capstan.primitives.envelope import Envelope, EnvelopedBackend

    ws = robot.workspace()
    fenced = EnvelopedBackend(robot, Envelope(x=ws.x, y=(0.1, ws.y[1]), max_run_s=40))
    api = PolicyAPI(fenced)

    def long_waits():
        for _ in range(4):
            api.wait(15)

    rehearsed = twin.rehearse(api, as_sandbox(long_waits))
    assert rehearsed.error is not None and "run time limit" in rehearsed.error.message


def test_a_block_dropped_off_the_table_on_the_twin_of_a_robot_with_a_wider_workspace(twin):
    # the robot's workspace reaches the table's edge (x 0.45): the twin takes that workspace over,
    # so the move past it is allowed there as on the robot, and the drop is seen on the twin
    wide = Workspace(x=(-0.25, 0.42), y=(0.30, 0.70), table_z=0.0)
    robot = World(SPEC, workspace=wide)
    try:
        api = PolicyAPI(robot)
        real = robot.state()

        def run():
            api.pick("red block")
            api.move_gripper_to([0.47, 0.5, 0.15])
            api.open_gripper()
            api.move_gripper_to([0.3, 0.5, 0.3])
            api.wait(1.0)

        rehearsed = twin.rehearse(api, as_sandbox(run))
        assert rehearsed.after["workspace"]["x"] == [-0.25, 0.42]
        dry = judge(DryRun(0, "greedy", "..."), rehearsed)
        assert dry.rejected == "off_table" and "fell off the table" in dry.error.message
        assert robot.state() == real
    finally:
        robot.close()


def test_the_twins_physics_client_goes_with_the_rehearsal(robot):
    import gc

    import pybullet as p

    twin = TwinRehearsal()
    api = PolicyAPI(robot)
    twin.rehearse(api, as_sandbox(lambda: api.say("hello")))
    cid = twin._world.cid
    assert p.isConnected(cid)
    del twin
    gc.collect()
    assert not p.isConnected(cid)
