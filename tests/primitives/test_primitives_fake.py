"""The primitives run on any RobotBackend: the kinematic FakeBackend double."""

from __future__ import annotations

import numpy as np
import pytest

from capstan.primitives import PolicyAPI
from capstan.primitives.errors import GraspError, RobotStoppedError
from capstan.primitives.fake import FakeBackend


@pytest.fixture
def fake():
    return FakeBackend({"red block": [-0.1, 0.4], "green block": [0.1, 0.4], "blue bowl": [0.0, 0.6]})


def test_pick_place_stack_and_bowl_through_backend_verbs(fake):
    f = PolicyAPI(fake).functions()
    f["put_first_on_second"]("red block", "green block")
    assert np.allclose(f["get_obj_xyz"]("red block"), [0.1, 0.4, 0.06], atol=1e-6)
    f["put_first_on_second"]("red block", "blue bowl")
    assert np.allclose(f["get_obj_xyz"]("red block"), [0.0, 0.6, 0.026], atol=1e-6)
    f["put_first_on_second"]("green block", [0.2, 0.65])
    assert np.allclose(f["get_obj_pos"]("green block"), [0.2, 0.65])
    verbs = [c[0] for c in fake.calls]
    assert verbs.count("set_gripper") == 6 and verbs[:2] == ["move_ee", "move_ee"]
    assert fake.state()["gripper"]["holding"] is None and fake.state()["time_s"] > 0


def test_estop_and_grasp_miss(fake):
    api = PolicyAPI(fake)
    f = api.functions()
    fake.stop()
    with pytest.raises(RobotStoppedError):
        f["pick"]("green block")
    fake.resume()
    truth = api.perception.observe

    def stale():  # perception reports the red block 3 cm from where it really is
        obs = truth()
        obs["red block"].position[0] -= 0.03
        return obs

    api.perception.observe = stale
    with pytest.raises(GraspError, match="closed on nothing"):
        f["pick"]("red block")
    assert fake.gripper_state()["open"] is True and fake.held is None
