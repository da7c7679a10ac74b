"""FrankaBackend against franky-sim (the Franka network protocol, MuJoCo physics): a real block is
picked and placed where asked, the e-stop halts a motion at once, unreachable targets are refused
without moving, and libfranka's errors come back as primitive errors the model can act on."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from capstan.primitives.errors import (
    GraspError,
    InvalidArgumentError,
    RobotStoppedError,
    RobotUnavailableError,
    UnreachableError,
)
from capstan.primitives.scene_state import state_problems

pytestmark = pytest.mark.slow

BLOCKS = {
    "red block": {"color": "red", "position": [0.0, 0.5]},
    "green block": {"color": "green", "position": [-0.15, 0.40]},
}
TRAVEL_Z = 0.15
STILL = 0.15  # rad/s: an arm slower than this is at rest (franky-sim jitters at ~0.08)


@pytest.fixture(scope="module")
def blocks() -> dict:
    return BLOCKS


def settle(franky_sim, timeout_s: float = 3.0) -> float:
    """Wait until the simulated arm is still: franky-sim's arm lags its trajectory by ~0.3 s and
    its holding controller keeps a jitter below 0.1 rad/s."""
    deadline = time.monotonic() + timeout_s
    while (speed := franky_sim.joint_speed()) > STILL and time.monotonic() < deadline:
        time.sleep(0.05)
    return speed


def resting_speed(franky_sim) -> float:
    """The median of a few joint speed samples: one sample may catch the jitter's peak."""
    samples = []
    for _ in range(5):
        samples.append(franky_sim.joint_speed())
        time.sleep(0.03)
    return float(np.median(samples))


def wait_until_moving(franky_sim, above: float = 0.2, timeout_s: float = 3.0) -> float:
    deadline = time.monotonic() + timeout_s
    while (speed := franky_sim.joint_speed()) <= above and time.monotonic() < deadline:
        time.sleep(0.02)
    return speed


def seconds_to_rest(franky_sim, timeout_s: float = 3.0) -> float:
    """How long until the arm's (median) joint speed drops below STILL."""
    start = time.monotonic()
    while resting_speed(franky_sim) >= STILL and time.monotonic() - start < timeout_s:
        pass
    return time.monotonic() - start


def declare_as_they_lie(robot, franky_sim) -> None:
    truth = franky_sim.block_positions()
    robot.declare({name: {"position": [float(v) for v in truth[name]]} for name in BLOCKS})


def test_pick_and_place_moves_the_real_block_to_the_target(robot, franky_sim):
    declare_as_they_lie(robot, franky_sim)
    start = franky_sim.block_positions()["red block"]
    target = np.array([0.12, 0.60])
    robot.set_gripper(False)
    assert robot.gripper_state()["open"]
    robot.move_ee([start[0], start[1], TRAVEL_Z])  # approach
    robot.move_ee([start[0], start[1], 0.02], speed=0.3)  # descend
    assert robot.set_gripper(True)  # grasp: something is between the fingers
    assert robot.gripper_state()["holding"] == "red block"
    robot.move_ee([start[0], start[1], TRAVEL_Z])  # lift
    lifted = franky_sim.block_positions()["red block"]
    assert lifted[2] > 0.08, f"the block stayed on the table: {lifted}"
    # the declared block travels with the gripper
    assert robot.state()["objects"]["red block"]["position"][2] > 0.08
    robot.move_ee([target[0], target[1], TRAVEL_Z])  # transfer
    robot.move_ee([target[0], target[1], 0.026], speed=0.3)
    assert robot.set_gripper(False) is False  # release
    robot.move_ee([target[0], target[1], TRAVEL_Z])
    truth = franky_sim.block_positions()["red block"]
    assert np.linalg.norm(truth[:2] - target) < 0.02, f"block at {truth}, target {target}"
    assert abs(truth[2] - 0.02) < 0.005  # resting on the table
    declared = robot.state()["objects"]["red block"]["position"]
    assert np.linalg.norm(np.array(declared[:2]) - truth[:2]) < 0.02
    assert robot.gripper_state()["holding"] is None


def test_closing_on_nothing_holds_nothing(robot):
    robot.set_gripper(False)
    robot.move_ee([0.15, 0.62, 0.03])
    assert robot.set_gripper(True) is False
    assert robot.gripper_state() == {"open": False, "width": pytest.approx(0.0, abs=0.005), "holding": None}
    robot.set_gripper(False)


def test_estop_halts_a_motion_at_once_and_later_motions_wait_for_resume(robot, franky_sim):
    robot.move_ee([-0.2, 0.45, 0.25])
    settle(franky_sim)  # so that the speed measured next is the new motion's
    target = [0.2, 0.65, 0.10]
    outcome: list[BaseException | None] = []

    def move():
        try:
            robot.move_ee(target, speed=0.3)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    mover = threading.Thread(target=move)
    mover.start()
    time.sleep(0.2)
    moving = wait_until_moving(franky_sim)
    assert moving > 0.2, f"the arm was not moving ({moving} rad/s)"
    robot.stop()
    mover.join(5)
    assert not mover.is_alive(), "move_ee did not return after the e-stop"
    assert isinstance(outcome[0], RobotStoppedError)
    # franky-sim's holding controller leaves a jitter below 0.1 rad/s on a resting arm
    halt_s = seconds_to_rest(franky_sim)  # how fast is the bench's figure; here: it comes to rest
    assert halt_s < 2.9, (
        f"joints still above {STILL} rad/s {halt_s:.1f} s after the e-stop (moving: {moving})"
    )
    halted = robot.ee_position()
    assert np.linalg.norm(halted - target) > 0.05, "the motion ran to its end despite the e-stop"
    with pytest.raises(RobotStoppedError):
        robot.move_ee([0.0, 0.5, 0.2])
    with pytest.raises(RobotStoppedError):
        robot.set_gripper(True)
    assert np.linalg.norm(robot.ee_position() - halted) < 0.005
    robot.resume()
    robot.move_ee([0.0, 0.5, 0.2])
    assert np.linalg.norm(robot.ee_position() - [0.0, 0.5, 0.2]) < 0.01


def test_unreachable_targets_are_refused_without_moving(robot, franky_sim):
    robot.move_ee([0.0, 0.5, 0.2])
    assert settle(franky_sim) < STILL
    before = robot.ee_position()
    for target in ([0.0, 1.3, 0.1], [0.0, 0.05, 0.1], [0.0, 0.5, -0.01]):
        assert not robot.can_reach(target)
        with pytest.raises(UnreachableError) as info:
            robot.move_ee(target)
        assert "robot" in str(info.value) or "table" in str(info.value)
    # where the arm is, not how fast its joints jitter at rest (that rises with the machine's load)
    assert np.linalg.norm(robot.ee_position() - before) < 0.002
    with pytest.raises(InvalidArgumentError):
        robot.move_ee([0.0, float("nan"), 0.1])


def test_the_whole_workspace_is_reachable(robot):
    for x, y in ((-0.25, 0.70), (0.25, 0.70), (0.25, 0.30)):
        for z in (0.03, 0.30):
            assert robot.can_reach([x, y, z])
    robot.move_ee([0.25, 0.70, 0.03])  # the far corners, low: the hardest reach
    robot.move_ee([-0.25, 0.70, 0.03])
    robot.move_ee([0.0, 0.5, 0.2])


def test_state_and_render_follow_the_contract(robot):
    state = robot.state()
    assert state_problems(state) == []
    assert state["robot"] == "franka" and set(state["objects"]) == set(BLOCKS)
    img = robot.render("angled", 160, 120)
    assert img.rgb.shape == (120, 160, 3) and img.segmentation is None
    # the red block is drawn where it is declared: project its position with the image's own camera
    p = np.array(state["objects"]["green block"]["position"] + [1.0])
    cam = np.linalg.inv(img.extrinsics) @ p
    u, v = (img.intrinsics @ (cam[:3] / cam[2]))[:2]
    assert tuple(img.rgb[int(v), int(u)]) == (38, 165, 51)


def test_limits_only_go_down(robot):
    speed, force = robot.max_speed, robot.max_force_n
    robot.apply_limits(max_speed=0.9, max_force_n=70)
    assert (robot.max_speed, robot.max_force_n) == (speed, force)
    robot.apply_limits(max_speed=0.2, max_force_n=10)
    assert (robot.max_speed, robot.max_force_n) == (0.2, 10)
    with pytest.raises(ValueError, match="max_speed"):
        robot.apply_limits(max_speed=0)
    with pytest.raises(ValueError, match="slowest dynamics factor"):  # franky moves no slower than 0.05
        robot.apply_limits(max_speed=0.01)
    assert robot.max_speed == 0.2
    robot.max_speed, robot.max_force_n = speed, force


@pytest.mark.parametrize(
    ("error", "message", "becomes", "says"),
    [
        (
            "ControlException",
            "motion aborted by reflex! [joint_position_limits_violation]",
            UnreachableError,
            "limit",
        ),
        ("ControlException", "motion aborted by reflex! [cartesian_reflex]", UnreachableError, "collision"),
        ("NetworkException", "libfranka: TCP connection lost", RobotUnavailableError, "lost the Franka"),
        ("CommandException", "libfranka: user stop pressed", RobotUnavailableError, "recover"),
        ("GripperException", "grasp failed", GraspError, "gripper"),
    ],
)
def test_franky_errors_become_primitive_errors_the_model_can_act_on(robot, error, message, becomes, says):
    import franky

    def fail():
        raise getattr(franky, error)(message)

    with pytest.raises(becomes) as info:
        robot._call(fail)
    assert says in str(info.value) and message in str(info.value)


def test_recover_asks_the_robot_to_clear_its_errors(robot):
    robot.recover()  # a healthy robot recovers at once
    robot.move_ee([0.0, 0.5, 0.2])
