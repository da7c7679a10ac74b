"""The PyBullet world: state JSON, snapshot/restore, determinism, e-stop, cameras, recording."""

from __future__ import annotations

import json
import math
import threading
import time

import numpy as np
import pytest

from capstan.primitives.backend import CameraImage, RobotBackend
from capstan.primitives.errors import InvalidArgumentError, RobotStoppedError, UnreachableError
from capstan.primitives.geometry import named_positions
from capstan.primitives.perception import quat_yaw
from capstan.primitives.scene_state import state_problems
from capstan.sim import World
from capstan.sim.recorder import write_gif, write_mp4
from capstan.sim.scene import WORKSPACE

SPEC = {"objects": ["red block", "blue bowl", "green block"], "seed": 4}


@pytest.fixture(scope="module")
def world():
    w = World(SPEC)
    yield w
    w.close()


@pytest.fixture
def fresh(world):
    snap = world.snapshot()
    world.resume()
    yield world
    world.resume()
    world.restore(snap)


def _pick_place(w: World, block: str, target_xy, release_z: float = 0.03) -> None:
    """Backend verbs only: grasp across the block's faces, carry, release at release_z."""
    o = w.state()["objects"][block]
    s = o["position"]
    yaw = math.remainder(quat_yaw(o["orientation"]), math.pi / 2)
    w.move_ee([s[0], s[1], 0.15], yaw)
    w.move_ee([s[0], s[1], 0.02], yaw)
    assert w.set_gripper(True)
    w.move_ee([s[0], s[1], 0.15], yaw)
    assert w.gripper_state()["holding"] == block
    w.move_ee([target_xy[0], target_xy[1], 0.15], yaw)
    w.move_ee([target_xy[0], target_xy[1], release_z], yaw)
    w.set_gripper(False)
    w.move_ee([target_xy[0], target_xy[1], 0.15], yaw)


def test_is_a_robot_backend(world):
    assert isinstance(world, RobotBackend)
    assert world.workspace() == WORKSPACE


def test_state_matches_the_contract_and_is_json(world):
    s = world.state()
    assert json.loads(json.dumps(s)) == s
    assert state_problems(s) == []  # every key declared in primitives.scene_state, and every one sent
    assert set(s) == {"objects", "workspace", "named_positions", "gripper", "robot", "seed", "time_s"}
    assert set(s["objects"]) == {"red block", "blue bowl", "green block"}
    for name, o in s["objects"].items():
        assert set(o) == {"kind", "color", "position", "orientation"}
        assert o["kind"] == name.split()[1] and o["color"] == name.split()[0]
        assert len(o["position"]) == 3 and len(o["orientation"]) == 4
        assert all(type(v) is float for v in o["position"] + o["orientation"])
    assert s["workspace"] == {"x": [-0.25, 0.25], "y": [0.3, 0.7], "table_z": 0.0}
    assert s["named_positions"] == named_positions(WORKSPACE)
    assert s["named_positions"]["top left corner"] == [-0.25, 0.7]
    assert s["named_positions"]["middle"] == [0.0, 0.5]
    g = s["gripper"]
    assert set(g) == {"position", "open", "width", "holding"} and g["open"] is True and g["holding"] is None
    assert s["robot"] == "panda" and s["seed"] == 4 and type(s["time_s"]) is float
    red = s["objects"]["red block"]["position"]
    assert abs(red[2] - 0.02) < 1e-3  # resting on the table


def test_pick_and_drop_into_bowl(fresh):
    bowl = fresh.state()["objects"]["blue bowl"]["position"]
    _pick_place(fresh, "red block", bowl[:2], release_z=0.08)
    fresh.wait(0.5)
    s = fresh.state()
    red = np.array(s["objects"]["red block"]["position"])
    assert np.linalg.norm(red[:2] - np.array(bowl[:2])) < 0.03
    assert 0.0 < red[2] < 0.04  # inside, below the rim
    assert s["gripper"]["holding"] is None and s["gripper"]["open"]


def test_gripper_closing_on_nothing_holds_nothing(fresh):
    assert fresh.set_gripper(True) is False
    st = fresh.gripper_state()
    assert st == {"open": False, "width": pytest.approx(0.0, abs=2e-3), "holding": None}
    assert fresh.set_gripper(False) is False
    assert fresh.gripper_state()["width"] == pytest.approx(0.07, abs=2e-3)


def test_snapshot_restore_gives_identical_results(fresh):
    snap = fresh.snapshot()
    _pick_place(fresh, "green block", [0.0, 0.5])
    first = fresh.state()
    fresh.restore(snap)
    assert fresh.state()["time_s"] == snap.steps * (1 / 240)
    assert fresh.gripper_state()["holding"] is None
    _pick_place(fresh, "green block", [0.0, 0.5])
    assert fresh.state() == first


def test_restore_rejects_a_foreign_snapshot(world):
    other = World({"objects": ["red block"], "seed": 1})
    try:
        with pytest.raises(ValueError, match="same scene spec"):
            world.restore(other.snapshot())
    finally:
        other.close()


def test_same_spec_and_calls_give_identical_final_state():
    finals = []
    for _ in range(2):
        with World(SPEC) as w:
            _pick_place(w, "red block", [0.1, 0.4])
            finals.append(w.state())
    assert finals[0] == finals[1]


def test_unreachable_target_raises_before_moving(fresh):
    before = fresh.ee_position()
    with pytest.raises(UnreachableError, match="cannot reach"):
        fresh.move_ee([0.0, 1.4, 0.1])
    assert np.allclose(fresh.ee_position(), before, atol=1e-3)
    assert fresh.can_reach([0.0, 0.5, 0.1]) and not fresh.can_reach([0.0, 1.4, 0.1])
    with pytest.raises(InvalidArgumentError):
        fresh.move_ee([0.0, float("nan"), 0.1])


def test_stop_from_another_thread_ends_the_motion(fresh):
    t0 = fresh.time_s
    timer = threading.Timer(0.05, fresh.stop)
    timer.start()
    start = time.monotonic()
    with pytest.raises(RobotStoppedError):
        # 144,000 steps unless stopped: long enough that a timer thread delayed by a busy machine
        # still stops it midway
        fresh.wait(600.0)
    timer.join()
    assert fresh.time_s - t0 < 300.0 and time.monotonic() - start < 60.0
    with pytest.raises(RobotStoppedError):
        fresh.move_ee([0.0, 0.5, 0.2])
    with pytest.raises(RobotStoppedError):
        fresh.set_gripper(True)
    fresh.resume()
    fresh.move_ee([0.0, 0.5, 0.2])
    assert np.allclose(fresh.ee_position(), [0.0, 0.5, 0.2], atol=5e-3)


def test_worlds_coexist_in_one_process(world):
    with World({"objects": ["red block"], "seed": 9}) as other:
        other.move_ee([0.1, 0.5, 0.2])
        assert world.cid != other.cid
        assert set(other.state()["objects"]) == {"red block"}
    assert set(world.state()["objects"]) == {"red block", "blue bowl", "green block"}


def test_top_camera_projects_objects_where_they_are(world):
    img = world.render("top", 160, 120)
    assert isinstance(img, CameraImage)
    assert img.rgb.shape == (120, 160, 3) and img.rgb.dtype == np.uint8
    assert img.depth.shape == (120, 160) and img.segmentation.shape == (120, 160)
    assert img.intrinsics.shape == (3, 3) and img.extrinsics.shape == (4, 4)
    assert set(img.id_to_name.values()) == {"red block", "blue bowl", "green block"}
    red_id = next(i for i, n in img.id_to_name.items() if n == "red block")
    rows, cols = np.nonzero(img.segmentation == red_id)
    pos = np.array(world.state()["objects"]["red block"]["position"] + [1.0])
    cam = np.linalg.inv(img.extrinsics) @ pos
    u = img.intrinsics[0, 0] * cam[0] / cam[2] + img.intrinsics[0, 2]
    v = img.intrinsics[1, 1] * cam[1] / cam[2] + img.intrinsics[1, 2]
    assert abs(cols.mean() - u) < 1.5 and abs(rows.mean() - v) < 1.5
    assert abs(float(img.depth[int(rows.mean()), int(cols.mean())]) - (0.75 - 0.04)) < 0.005
    # +x is right and +y is up in the top view
    assert img.extrinsics[0, 0] == pytest.approx(1.0) and img.extrinsics[1, 1] == pytest.approx(-1.0)
    assert world.render("angled", 64, 48).rgb.shape == (48, 64, 3)
    with pytest.raises(InvalidArgumentError):
        world.render("side")


def test_recording_and_writing_gif_and_mp4(fresh, tmp_path):
    fresh.start_recording(fps=20, view="top", width=96, height=72)
    fresh.move_ee([0.1, 0.45, 0.25])
    fresh.wait(0.25)
    frames = fresh.stop_recording()
    assert len(frames) >= 5 and frames[0].shape == (72, 96, 3)
    assert not np.array_equal(frames[0], frames[-1])
    assert fresh.stop_recording() == []
    gif = write_gif(frames, tmp_path / "run.gif", fps=20)
    mp4 = write_mp4(frames, tmp_path / "run.mp4", fps=20)
    assert gif.read_bytes()[:6] == b"GIF89a"
    assert b"ftyp" in mp4.read_bytes()[:16] and mp4.stat().st_size > 1000
    from PIL import Image

    with Image.open(gif) as im:
        assert 2 <= im.n_frames <= len(frames)  # Pillow merges identical consecutive frames
    with pytest.raises(ValueError, match="no frames"):
        write_gif([], tmp_path / "x.gif")
    fresh.start_recording(fps=60, view="top", width=32, height=24, max_frames=3)
    fresh.wait(0.5)
    assert len(fresh.stop_recording()) == 3


def test_a_recording_can_leave_out_its_first_frame(fresh):
    """The service's segments after the first skip the frame that repeats the previous segment's
    end, without drawing it; a segment with nothing after its first frame draws nothing."""
    fresh.start_recording(fps=20, view="top", width=48, height=36)
    fresh.wait(0.2)
    frames = fresh.stop_recording()
    fresh.start_recording(fps=20, view="top", width=48, height=36)
    fresh.wait(0.2)
    rest = fresh.stop_recording(skip_first=True)
    assert len(rest) == len(frames) - 1 and rest[0].shape == (36, 48, 3)
    fresh.start_recording(fps=20, view="top", width=48, height=36)
    assert fresh.stop_recording(skip_first=True) == []


def test_gui_without_a_display_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    with pytest.raises(RuntimeError, match="needs a display"):
        World({"objects": ["red block"]}, gui=True)


def test_objects_pushed_off_the_table_land_on_the_floor():
    with World({"objects": [{"name": "red block", "position": [0.25, 0.5]}], "seed": 0}) as w:
        # sweep the block off the right edge of the table with the closed gripper
        w.set_gripper(True)
        w.move_ee([0.17, 0.5, 0.15])
        w.move_ee([0.17, 0.5, 0.02])
        for x in (0.3, 0.4, 0.46):
            w.move_ee([x, 0.5, 0.02], speed=0.5)
        w.move_ee([0.4, 0.5, 0.2])
        w.wait(2.0)
        z = w.state()["objects"]["red block"]["position"][2]
        assert -0.76 < z < -0.7  # resting on the floor below the table
        from capstan.primitives import PolicyAPI

        assert PolicyAPI(w).functions()["is_obj_visible"]("red block") is False


def test_snapshot_while_holding_keeps_the_grasp(fresh):
    from capstan.primitives import PolicyAPI

    f = PolicyAPI(fresh).functions()
    f["pick"]("green block")
    snap = fresh.snapshot()
    assert fresh.gripper_state()["holding"] == "green block"
    assert state_problems(fresh.state()) == []  # the model holds while an object is held, too
    f["place"]([0.0, 0.5])
    fresh.restore(snap)
    assert fresh.gripper_state()["holding"] == "green block"
    f["place"]([-0.15, 0.45])
    assert (
        np.linalg.norm(np.array(fresh.state()["objects"]["green block"]["position"][:2]) - [-0.15, 0.45])
        < 0.01
    )


def test_place_objects_puts_saved_poses_back_at_rest(fresh):
    saved = fresh.state()["objects"]
    other = World(SPEC)
    try:
        target = {"red block": {"position": [0.1, 0.6, 0.02], "orientation": [0, 0, 0, 1]}}
        other.place_objects(target)
        pos = other.state()["objects"]["red block"]["position"]
        assert abs(pos[0] - 0.1) < 0.005 and abs(pos[1] - 0.6) < 0.005 and pos[2] < 0.03
        other.place_objects(
            {n: {"position": o["position"], "orientation": o["orientation"]} for n, o in saved.items()}
        )
        for name, o in other.state()["objects"].items():
            assert np.allclose(o["position"], saved[name]["position"], atol=0.005), name
        with pytest.raises(ValueError, match="no object"):
            other.place_objects({"purple bowl": target["red block"]})
        with pytest.raises(ValueError, match="bad saved pose"):
            other.place_objects(
                {"red block": {"position": [float("nan"), 0.5, 0.02], "orientation": [0, 0, 0, 1]}}
            )
    finally:
        other.close()
