"""Camera perception (top-down RGB-D lifted to 3-D) against ground truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from capstan.primitives import PolicyAPI
from capstan.primitives.errors import NotVisibleError
from capstan.primitives.geometry import COLORS
from capstan.primitives.perception import CameraPerception, TruthPerception, classify_color, make_perception
from capstan.sim import World


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_camera_positions_within_1cm_of_truth(seed):
    with World({"blocks": 5, "bowls": 3, "seed": seed}) as w:
        cam, truth = CameraPerception(w).observe(), TruthPerception(w).observe()
        assert set(cam) == set(truth)
        for name, o in cam.items():
            assert o.visible, name  # the arm is parked out of view at the start
            assert np.linalg.norm(o.position - truth[name].position) < 0.01, name
            t = truth[name].bbox
            assert np.all(np.abs(o.bbox - t) < 0.012), (name, o.bbox, t)


def test_stacked_and_bowled_blocks_are_seen_and_hidden_ones_are_not():
    spec = {"objects": ["red block", "green block", "blue block", "yellow bowl"], "seed": 11}
    with World(spec) as w:
        api = PolicyAPI(w, perception="camera")
        f = api.functions()
        f["put_first_on_second"]("green block", "red block")
        f["put_first_on_second"]("blue block", "yellow bowl")
        cam, truth = api.perception.observe(), TruthPerception(w).observe()
        assert not cam["red block"].visible  # right under the green one
        with pytest.raises(NotVisibleError):
            f["get_obj_pos"]("red block")
        assert f["is_obj_visible"]("red block") is False
        for name in ("green block", "blue block", "yellow bowl"):
            assert cam[name].visible
            assert np.linalg.norm(cam[name].position - truth[name].position) < 0.01, name


def test_identifies_objects_by_color_without_the_simulators_ids():
    names = [f"{c} block" for c in COLORS][:6] + ["gray bowl", "white bowl", "brown bowl"]
    with World({"objects": names, "seed": 5}) as w:
        img = w.render("top", 320, 240)
        by_ids = CameraPerception(w)._from_image(img, w.state())
        blind = dataclasses.replace(img, id_to_name={})
        by_color = CameraPerception(w)._from_image(blind, w.state())
        for name in names:
            assert by_color[name].visible, name
            assert np.allclose(by_color[name].position, by_ids[name].position), name


def test_color_classifier_on_rendered_pixels():
    names = [f"{c} block" for c in COLORS]
    with World({"objects": names[:8] + ["gray bowl", "white bowl", "brown bowl"], "seed": 2}) as w:
        img = w.render("top", 320, 240)
        for seg_id, name in img.id_to_name.items():
            pixels = img.rgb[img.segmentation == seg_id]
            assert classify_color(pixels) == name.split()[0], name


def test_camera_cache_follows_simulated_time():
    with World({"objects": ["red block"], "seed": 0}) as w:
        cam = CameraPerception(w)
        first = cam.observe()
        assert cam.observe() is first  # no new render while time stands still
        w.wait(0.1)
        assert cam.observe() is not first
    with pytest.raises(ValueError, match="truth' or 'camera"):
        make_perception("lidar", None)


def test_camera_estimates_block_yaw():
    with World({"blocks": 6, "bowls": 0, "seed": 8}) as w:
        cam, truth = CameraPerception(w).observe(), TruthPerception(w).observe()
        for name, o in cam.items():
            # faces repeat every 90 deg
            err = np.remainder(o.yaw - truth[name].yaw + np.pi / 4, np.pi / 2) - np.pi / 4
            assert abs(err) < np.radians(6), (name, o.yaw, truth[name].yaw)
