"""Video frames are drawn from recorded states in the renderer process: the same pixels as drawing
the live world, nothing drawn while the arm moves, and frames still come when the renderer dies or
cannot start."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from capstan.primitives import PolicyAPI
from capstan.sim import World, camera, frames

SPEC = {"objects": ["red block", "green block", "blue block", "blue bowl", "red bowl"], "seed": 3}


@pytest.fixture
def world():
    with World(SPEC) as w:
        yield w


def live(world: World, view: str) -> np.ndarray:
    return camera.render(world.cid, world._views[view], 320, 240, {}, rgb_only=True).rgb


def drawn(world: World, view: str) -> np.ndarray:
    job = frames.FrameJob(world.workspace().table_z, world._views[view], 320, 240, (world._frame_state(),))
    return frames.render_frames(job)[0]


def test_a_drawn_state_has_the_pixels_of_the_live_world(world):
    put = PolicyAPI(world).functions()["put_first_on_second"]
    for block, target in (("red block", "blue bowl"), ("green block", "red block")):
        put(block, target)
        for view in ("angled", "top"):
            assert np.array_equal(drawn(world, view), live(world, view)), (block, view)


def test_a_held_block_mid_motion_is_drawn_where_it_is(world):
    """The fingers, the block between them and the raised arm, all in one recorded state."""
    f = PolicyAPI(world).functions()
    f["pick"]("blue block")
    assert world.holding() == "blue block"
    assert np.array_equal(drawn(world, "angled"), live(world, "angled"))


def test_nothing_is_drawn_while_the_arm_moves(world, monkeypatch):
    put = PolicyAPI(world).functions()["put_first_on_second"]

    def no_drawing(*args, **kwargs):
        raise AssertionError("a frame was drawn in this process during the motion")

    world.start_recording(fps=8, view="angled", width=320, height=240)
    with monkeypatch.context() as m:
        m.setattr(camera, "render", no_drawing)
        put("red block", "blue bowl")
    images = world.stop_recording()
    assert len(images) > 5
    assert images[0].shape == (240, 320, 3)
    assert not np.array_equal(images[0], images[-1])  # the block moved


def test_frames_come_back_after_the_renderer_dies(world):
    frames.start_renderer()
    renderer = frames._RENDERERS.members[0]
    proc = renderer._proc
    assert proc is not None and proc.poll() is None
    proc.kill()
    proc.wait()
    world.start_recording(fps=8, view="top", width=320, height=240)
    PolicyAPI(world).functions()["put_first_on_second"]("green block", "red bowl")
    images = world.stop_recording()
    assert len(images) > 5 and not np.array_equal(images[0], images[-1])
    assert renderer._proc is not proc and renderer._proc.poll() is None


def test_a_wedged_renderer_is_replaced_within_its_deadline(world):
    renderer = frames.Renderer(deadline_s=1.0)
    try:
        renderer.start()
        wedged = renderer._proc
        os.kill(wedged.pid, signal.SIGSTOP)  # alive, but never answers
        job = frames.FrameJob(0.0, world._views["angled"], 320, 240, (world._frame_state(),))
        assert np.array_equal(renderer.draw(job)[0], live(world, "angled"))
        assert wedged.poll() is not None  # killed, not left behind
        assert renderer._proc is not wedged
    finally:
        renderer.close()


def test_without_a_renderer_process_frames_are_drawn_here(world, monkeypatch):
    renderer = frames.Renderer()

    def cannot_start():
        raise OSError("no processes left")

    monkeypatch.setattr(renderer, "_connection", cannot_start)
    renderer.start()  # says so, and does not raise: the service starts regardless
    job = frames.FrameJob(0.0, world._views["angled"], 320, 240, (world._frame_state(),))
    assert np.array_equal(renderer.draw(job)[0], live(world, "angled"))
    renderer.close()
    assert frames.render_frames(frames.FrameJob(0.0, world._views["top"], 32, 24, ())) == []


def test_frames_split_among_renderers_come_back_in_order(world):
    """A job split among the renderers gives the frames of drawing it whole, in order."""
    world.start_recording(fps=8, view="angled", width=320, height=240)
    PolicyAPI(world).functions()["put_first_on_second"]("red block", "red bowl")
    states = tuple(world._rec["states"])
    world.stop_recording()
    job = frames.FrameJob(0.0, world._views["angled"], 320, 240, states)
    one, three = frames.Renderer(), frames.Renderers(3)
    try:
        whole, split = one.draw(job), three.draw(job)
    finally:
        one.close()
        three.close()
    assert len(split) == len(whole) == len(states) > 5
    assert all(np.array_equal(a, b) for a, b in zip(split, whole, strict=True))


def test_the_renderer_runs_below_the_service_priority():
    renderer = frames.Renderer()
    try:
        renderer.start()
        pid = renderer._proc.pid
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # it lowers its priority first thing, once started
            nice = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
            if nice == frames.NICE:
                break
            time.sleep(0.05)
        assert nice == frames.NICE
    finally:
        renderer.close()
