"""The safety envelope: strict configuration, and every limit refusing before the real PyBullet
world moves (its simulated clock, arm and objects stay as they were)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from capstan.primitives.backend import Workspace
from capstan.primitives.envelope import Box, Envelope, EnvelopedBackend, envelopes_from_file
from capstan.primitives.envelope_checks import segment_hits_box
from capstan.primitives.errors import ERROR_TYPES, EnvelopeError, InvalidArgumentError, PrimitiveError
from capstan.primitives.fake import FakeBackend

SCENE = {"objects": ["red block", "blue bowl"], "seed": 7}
WS = Workspace(x=(-0.25, 0.25), y=(0.30, 0.70), table_z=0.0)
# a fixture standing on the table in the middle of the workspace, 20 cm tall
FIXTURE = Box("fixture", x=(-0.05, 0.05), y=(0.45, 0.55), z=(0.0, 0.20))


@pytest.fixture
def world():
    from capstan.sim import World

    w = World(SCENE)
    yield w
    w.close()


def envelope(**kw) -> Envelope:
    return Envelope(**{"x": WS.x, "y": (0.22, 0.70), **kw})


def frozen(world) -> tuple:
    """What must not change when a motion is refused: simulated time, the arm, every object."""
    objects = {n: tuple(np.round(o["position"], 6)) for n, o in world.state()["objects"].items()}
    return world.time_s, tuple(np.round(world.ee_position(), 6)), objects


# ---------------------------------------------------------------------------- configuration


def test_from_dict_fills_conservative_defaults_and_round_trips():
    env = Envelope.from_dict({"x": [-0.2, 0.2], "y": [0.3, 0.6], "keep_out": [FIXTURE.to_dict()]})
    assert (env.z_floor, env.z_ceiling, env.max_speed, env.max_force_n) == (0.015, 0.5, 0.5, 40.0)
    assert (env.max_motions_per_run, env.max_run_s) == (60, 300.0)
    assert env.keep_out == (FIXTURE,) and env.x == (-0.2, 0.2)
    assert Envelope.from_dict(json.loads(json.dumps(env.to_dict()))) == env


def test_default_for_a_workspace():
    env = Envelope.default_for(WS)
    assert env.x == WS.x and env.y[1] == WS.y[1]
    assert env.y[0] == pytest.approx(WS.y[0] - 0.08)  # the parking spot in front of the table
    assert (env.z_floor, env.z_ceiling, env.max_speed, env.max_force_n) == (0.015, 0.5, 0.5, 40.0)
    assert (env.max_motions_per_run, env.max_run_s, env.keep_out) == (60, 300.0, ())


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"speed": 0.5}, r"unknown key\(s\) \['speed'\]"),
        ({"x": [0.2, -0.2]}, "x must satisfy"),
        ({"x": [0, "1"]}, "x must be a pair of numbers"),
        ({"y": [0.3]}, "y must be a pair"),
        ({"max_speed": 0}, "max_speed must be more than 0.0 and at most 1.0"),
        ({"max_speed": 1.5}, "max_speed must be more than 0.0 and at most 1.0"),
        ({"max_force_n": -1}, "max_force_n"),
        ({"max_motions_per_run": 10.5}, "max_motions_per_run must be an integer"),
        ({"max_motions_per_run": True}, "max_motions_per_run must be an integer"),
        ({"max_run_s": float("nan")}, "max_run_s"),
        ({"z_floor": -0.01}, "0 <= z_floor < z_ceiling"),
        ({"z_floor": 0.3, "z_ceiling": 0.2}, "0 <= z_floor < z_ceiling"),
        ({"keep_out": {"name": "a"}}, "keep_out must be a list"),
        ({"keep_out": [{"name": "a", "x": [0, 1], "y": [0, 1]}]}, r"missing key\(s\) \['z'\]"),
        ({"keep_out": [{"name": "", "x": [0, 1], "y": [0, 1], "z": [0, 1]}]}, "'name' must be"),
        ({"keep_out": [FIXTURE.to_dict(), FIXTURE.to_dict()]}, "names must be unique"),
    ],
)
def test_from_dict_refuses_bad_input_naming_it(patch, message):
    with pytest.raises(ValueError, match=message) as err:
        Envelope.from_dict({"x": [-0.2, 0.2], "y": [0.3, 0.6], **patch}, "lab's envelope")
    assert str(err.value).startswith("lab's envelope")


def test_from_dict_needs_the_box_and_an_object():
    with pytest.raises(ValueError, match=r"missing key\(s\) \['y'\]"):
        Envelope.from_dict({"x": [-0.2, 0.2]})
    with pytest.raises(ValueError, match="must be a JSON object"):
        Envelope.from_dict([1, 2])


def test_files(tmp_path):
    good = tmp_path / "env.json"
    good.write_text(json.dumps({"x": [-0.2, 0.2], "y": [0.3, 0.6], "max_speed": 0.3}))
    assert Envelope.from_file(good).max_speed == 0.3
    with pytest.raises(ValueError, match="cannot read envelope file"):
        Envelope.from_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ValueError, match="is not valid JSON"):
        Envelope.from_file(bad)
    many = tmp_path / "robots.json"
    many.write_text(json.dumps({"lab": {"x": [-0.2, 0.2], "y": [0.3, 0.6]}}))
    assert envelopes_from_file(many)["lab"].x == (-0.2, 0.2)
    many.write_text(json.dumps({"lab": {"x": [-0.2, 0.2], "y": [0.3, 0.6], "z_ceiling": 0}}))
    with pytest.raises(ValueError, match="robot 'lab'.*z_floor < z_ceiling"):
        envelopes_from_file(many)
    many.write_text("[]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        envelopes_from_file(many)


def test_envelope_error_is_a_primitive_error_the_sandbox_knows():
    assert issubclass(EnvelopeError, PrimitiveError) and ERROR_TYPES["EnvelopeError"] is EnvelopeError


# ---------------------------------------------------------------------------- geometry


def test_segment_box_test():
    lo, hi = np.array([-0.05, 0.45, 0.0]), np.array([0.05, 0.55, 0.2])
    a, b = np.array([-0.15, 0.5, 0.1]), np.array([0.15, 0.5, 0.1])
    assert segment_hits_box(a, b, lo, hi)  # both ends outside, the middle inside
    assert not segment_hits_box(a + [0, 0, 0.2], b + [0, 0, 0.2], lo, hi)  # over the top
    assert not segment_hits_box(a, a + [0.09, 0, 0], lo, hi)  # stops short
    assert segment_hits_box(a, np.array([0.0, 0.5, 0.1]), lo, hi)  # ends inside
    assert segment_hits_box(np.array([0.0, 0.5, 0.3]), np.array([0.0, 0.5, 0.1]), lo, hi)  # straight down
    assert not segment_hits_box(np.array([0.1, 0.3, 0.1]), np.array([0.1, 0.7, 0.1]), lo, hi)  # beside it


# ---------------------------------------------------------------------------- each limit refuses first


@pytest.mark.parametrize(
    ("target", "limit", "nearest"),
    [
        ([0.40, 0.50, 0.10], "x 0.400 is outside the allowed x range [-0.25, 0.25]", [0.25, 0.5, 0.1]),
        ([0.15, 0.80, 0.10], "y 0.800 is outside the allowed y range [0.22, 0.7]", [0.15, 0.7, 0.1]),
        ([0.1, 0.40, 0.005], "below the floor: the tool point must stay at z >= 0.015", [0.1, 0.4, 0.015]),
        ([0.1, 0.40, 0.45], "above the ceiling: the tool point must stay at z <= 0.3", [0.1, 0.4, 0.3]),
        ([0.0, 0.50, 0.10], "inside keep-out zone 'fixture'", [0.0, 0.449, 0.1]),
    ],
)
def test_a_target_outside_the_envelope_is_refused_before_the_world_moves(world, target, limit, nearest):
    robot = EnvelopedBackend(world, envelope(z_ceiling=0.3, keep_out=(FIXTURE,)))
    before = frozen(world)
    with pytest.raises(EnvelopeError) as err:
        robot.move_ee(target)
    assert limit in str(err.value) and f"the nearest allowed point is {nearest}" in str(err.value)
    assert frozen(world) == before and robot.motions == 0
    assert robot.can_reach(target) is False
    robot.move_ee(nearest)  # the suggested point is allowed, and the arm gets there
    assert np.allclose(world.ee_position(), nearest, atol=0.015)


def test_the_default_floor_keeps_the_fingertips_off_the_table(world):
    """The lowest move the default envelope allows leaves the fingers above the table top; the
    old 5 mm floor let them press 6 mm into it with ~210 N."""
    import pybullet as p

    robot = EnvelopedBackend(world, Envelope.default_for(world.workspace()))
    floor = Envelope.default_for(world.workspace()).z_floor
    robot.move_ee([0.0, 0.45, 0.10])
    robot.move_ee([0.0, 0.45, floor], speed=0.2)
    assert world.ee_position()[2] == pytest.approx(floor, abs=0.002)
    assert p.getContactPoints(bodyA=world.robot.body, bodyB=world.table, physicsClientId=world.cid) == ()
    with pytest.raises(EnvelopeError, match="below the floor"):
        robot.move_ee([0.0, 0.45, 0.005])


def test_a_move_whose_path_crosses_a_keep_out_zone_is_refused(world):
    robot = EnvelopedBackend(world, envelope(keep_out=(FIXTURE,)))
    robot.move_ee([-0.15, 0.5, 0.10])
    before = frozen(world)
    with pytest.raises(EnvelopeError, match="crosses keep-out zone 'fixture'") as err:
        robot.move_ee([0.15, 0.5, 0.10])  # both ends are allowed; the straight line is not
    assert "up to z = 0.22 first" in str(err.value)
    assert frozen(world) == before
    with pytest.raises(EnvelopeError, match="crosses keep-out zone 'fixture'"):
        robot.check_path([[-0.15, 0.5, 0.10], [0.15, 0.5, 0.10]])
    robot.check_path([[0.15, 0.5, 0.10]])  # one allowed point is an allowed path
    for waypoint in ([-0.15, 0.5, 0.25], [0.15, 0.5, 0.25], [0.15, 0.5, 0.10]):  # over the top
        robot.move_ee(waypoint)
    assert np.allclose(world.ee_position(), [0.15, 0.5, 0.10], atol=0.015)
    assert robot.motions == 4


def test_speed_is_clamped_to_the_cap(world):
    from capstan.sim import World

    def sim_seconds(backend) -> float:
        t0 = backend.time_s
        backend.move_ee([0.0, 0.5, 0.15])
        backend.move_ee([0.2, 0.5, 0.15], speed=2.0)
        return backend.time_s - t0

    with World(SCENE) as other:
        fast = sim_seconds(EnvelopedBackend(other, envelope(max_speed=1.0)))
    robot = EnvelopedBackend(world, envelope(max_speed=0.25))
    slow = sim_seconds(robot)
    assert slow > 2.5 * fast  # the second move asked for speed 2.0 and got 0.25
    for bad in (float("nan"), 0.0, -1.0, "fast"):
        with pytest.raises(InvalidArgumentError, match="speed must be a positive number"):
            robot.move_ee([0.0, 0.5, 0.2], speed=bad)
    assert robot.motions == 2


def test_motions_per_run_and_begin_run(world):
    robot = EnvelopedBackend(world, envelope(max_motions_per_run=3))
    robot.move_ee([0.0, 0.5, 0.2])
    robot.set_gripper(True)  # the gripper counts as a motion
    robot.set_gripper(False)
    before = frozen(world)
    with pytest.raises(
        EnvelopeError, match=r"motion limit: this run has made 3 motions, .*max_motions_per_run = 3"
    ):
        robot.set_gripper(True)
    with pytest.raises(EnvelopeError, match="motion limit"):
        robot.move_ee([0.0, 0.5, 0.25])
    assert frozen(world) == before and world.gripper_state()["open"]
    robot.state(), robot.ee_position(), robot.gripper_state(), robot.render("top", 32, 24)  # reads: free
    robot.begin_run()
    assert robot.motions == 0
    robot.move_ee([0.0, 0.5, 0.25])
    assert robot.motions == 1


def test_run_time_counts_from_the_first_motion_and_restarts_with_begin_run(world):
    robot = EnvelopedBackend(world, envelope(max_run_s=0.6))
    time.sleep(0.7)  # before the first motion the clock does not run (a model may still be writing)
    robot.move_ee([0.0, 0.5, 0.2])
    with pytest.raises(EnvelopeError, match=r"waiting 5 s more.*allows 0.6 s per run \(max_run_s\)"):
        robot.wait(5.0)
    time.sleep(0.7)
    before = frozen(world)
    with pytest.raises(EnvelopeError, match="run time limit: this run has kept the robot busy for"):
        robot.move_ee([0.0, 0.5, 0.25])
    assert frozen(world) == before
    robot.begin_run()
    robot.move_ee([0.0, 0.5, 0.25])
    robot.wait(0.1)


def test_limits_go_to_the_inner_backend_and_only_data_passes_through(world):
    class Limited(FakeBackend):
        limits: tuple | None = None

        def apply_limits(self, max_speed: float, max_force_n: float) -> None:
            self.limits = (max_speed, max_force_n)

    fake = Limited({"red block": [0.0, 0.5]})
    wrapped = EnvelopedBackend(fake, envelope(max_speed=0.3, max_force_n=25.0))
    assert fake.limits == (0.3, 25.0)  # once, at wrap time
    EnvelopedBackend(wrapped, envelope(max_speed=0.8, max_force_n=20.0))  # the tighter of both wins
    assert fake.limits == (0.3, 20.0)
    assert wrapped.calls is fake.calls and wrapped.seed == 0  # the inner backend's own attributes
    with pytest.raises(AttributeError):
        _ = wrapped.no_such_thing
    fake.push = lambda: fake.move_ee([0.3, 0.9, 0.0])  # a verb the envelope knows nothing of
    with pytest.raises(AttributeError, match="not available behind the safety envelope"):
        wrapped.push()

    robot = EnvelopedBackend(world, envelope())
    assert (robot.supports_snapshots, robot.supports_recording, robot.supports_placing) == (True, True, True)
    assert robot.changes_only_when_commanded and not EnvelopedBackend(fake, envelope()).supports_snapshots
    assert robot.workspace() == world.workspace() and robot.state() == world.state()
    snap = robot.snapshot()
    robot.move_ee([0.0, 0.5, 0.2])
    robot.set_gripper(True)
    with robot.headless():
        robot.restore(snap)  # a dry run's motions go back with its world
    assert robot.motions == 0 and np.allclose(robot.ee_position(), world.ee_position())


# ---------------------------------------------------------------------------- through the primitives


def test_put_first_on_second_into_a_keep_out_zone_moves_nothing(world):
    from capstan.primitives.api import PolicyAPI

    robot = EnvelopedBackend(
        world, envelope(keep_out=(Box("tray", x=(0.1, 0.2), y=(0.55, 0.65), z=(0, 0.1)),))
    )
    api = PolicyAPI(robot)
    before = frozen(world)
    with pytest.raises(EnvelopeError, match="inside keep-out zone 'tray'"):
        api.put_first_on_second("red block", [0.15, 0.6])
    assert frozen(world) == before and robot.motions == 0
    api.put_first_on_second("red block", [0.15, 0.45])  # elsewhere it works
    assert np.allclose(world.state()["objects"]["red block"]["position"][:2], [0.15, 0.45], atol=0.02)


def test_a_sandboxed_program_gets_the_envelope_error_as_its_error(world):
    from capstan.primitives.api import PolicyAPI
    from capstan.sandbox import Sandbox

    api = PolicyAPI(EnvelopedBackend(world, envelope(z_ceiling=0.3)))
    code = "say('moving')\nmove_gripper_to([0.0, 0.5, 0.35])\n"
    before = frozen(world)
    with Sandbox(pool_size=1) as sb:
        res = sb.run(code, host_functions=api.functions(), timeout_s=30)
    assert res.error is not None and res.error.kind == "primitive" and res.error.line == 2
    assert res.error.message.startswith("EnvelopeError: the gripper may not go to [0.0, 0.5, 0.35]")
    assert "the nearest allowed point is [0.0, 0.5, 0.3]" in res.error.message
    assert frozen(world) == before


def test_the_model_is_told_about_the_breach_and_repairs_its_program(world):
    from capstan.llm.scripted import ScriptedProvider
    from capstan.lmp import Engine
    from capstan.primitives.api import PolicyAPI
    from capstan.primitives.rehearsal import SnapshotRehearsal
    from capstan.sandbox import Sandbox

    api = PolicyAPI(EnvelopedBackend(world, envelope(keep_out=(FIXTURE,))))
    llm = ScriptedProvider(
        ["put_first_on_second('red block', [0.0, 0.5])", "put_first_on_second('red block', [0.15, 0.45])"]
    )
    with Sandbox(pool_size=1) as sb:
        out = Engine(llm, sb, rehearsal=SnapshotRehearsal(), candidates=1).run_command(
            "put the red block in the middle", api
        )
    assert out.status == "succeeded" and len(out.attempts) == 2
    first = out.attempts[0].error
    assert first is not None and first.kind == "primitive" and "EnvelopeError" in first.message
    repair = llm.requests[1].messages[-1].content
    assert (
        "EnvelopeError" in repair
        and "keep-out zone 'fixture'" in repair
        and "nearest allowed point" in repair
    )


def test_the_default_envelope_lets_a_pick_and_place_park_out_of_the_cameras_view(world):
    from capstan.primitives.api import PolicyAPI

    robot = EnvelopedBackend(world, Envelope.default_for(world.workspace()))
    PolicyAPI(robot, perception="camera").put_first_on_second("red block", "blue bowl")
    assert robot.motions == 10  # 4 to pick, 5 to place, 1 to park in front of the table
    assert world.ee_position()[1] < world.workspace().y[0]  # parked outside the workspace box


def test_a_pick_and_place_whose_crossing_hits_a_keep_out_zone_never_picks():
    """Both columns are clear, the straight crossing between them is not: refused before the pick."""
    from capstan.primitives.api import PolicyAPI

    ws = Workspace(x=(-0.25, 0.25), y=(0.30, 0.70), table_z=0.0)
    mast = Box("camera mast", x=(-0.05, 0.05), y=(0.30, 0.50), z=(0.0, 0.30))
    arm = FakeBackend({"red block": [0.15, 0.4], "blue bowl": [-0.15, 0.4]}, ws)
    api = PolicyAPI(EnvelopedBackend(arm, Envelope(x=ws.x, y=(0.22, 0.70), keep_out=(mast,))))
    with pytest.raises(EnvelopeError, match="camera mast"):
        api.put_first_on_second("red block", "blue bowl")
    assert arm.calls == [] and arm.gripper_state()["holding"] is None
