"""`capstan bench sim`: how reliable and how fast the simulated robot is.

- pick-and-place over random reachable placements (block -> free table position, block -> bowl),
  `--trials` of them spread over scenes of several seeds (target >= 99 % success);
- stacking four blocks over `--stack-seeds` scenes (target >= 95 %);
- median wall time of one pick-and-place, headless, no rendering (target <= 0.3 s);
- real-time factor of stepping: simulated seconds per wall second of `world.wait()` in a 6-object
  scene (`realtime_factor`, target >= 40x), and while the pick-and-place motions run with IK and
  control included (`motion_realtime_factor`); the `_cpu` variants divide by this process's CPU
  time instead of wall time, which is what counts on a shared, busy machine;
- extra wall time per recorded frame (320x240 angled view), drawn by the renderer processes when
  the recording stops (`frame_cost_cpu_ms` counts this process's CPU only: handing the states over
  and taking the frames back);
- memory one more world adds to the process (`world_pss_mb`, PSS; a service holds one per session).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections import Counter

TRIALS_PER_SCENE = 6


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--trials", type=int, default=300, help="pick-and-place trials (default 300)")
    parser.add_argument(
        "--stack-seeds", type=int, default=50, help="scenes for the 4-block stack (default 50)"
    )
    parser.add_argument("--frames", type=int, default=3, help="pick-and-places recorded for the frame cost")
    parser.add_argument("--seed", type=int, default=0, help="first scene seed")
    parser.add_argument(
        "--idle-seconds", type=float, default=20.0, help="simulated seconds of plain stepping to time"
    )


def _free_spot(rng: random.Random, state: dict, block: str) -> list[float]:
    from capstan.sim.scene import CLEARANCE, WORKSPACE

    objs = state["objects"]
    here = objs[block]["position"][:2]
    for _ in range(1000):
        xy = [
            rng.uniform(WORKSPACE.x[0] + 0.03, WORKSPACE.x[1] - 0.03),
            rng.uniform(WORKSPACE.y[0] + 0.03, WORKSPACE.y[1] - 0.03),
        ]
        if math.dist(xy, here) > 0.06 and all(
            math.dist(xy, o["position"][:2]) >= CLEARANCE["block"] + CLEARANCE[o["kind"]]
            for n, o in objs.items()
            if n != block
        ):
            return xy
    raise RuntimeError("no free spot found")


def _check_position(state: dict, block: str, xy) -> str | None:
    o = state["objects"][block]
    pos = o["position"]
    if state["gripper"]["holding"] is not None:
        return "still held"
    if math.dist(pos[:2], xy) > 0.015:
        return "placed off target"
    if abs(pos[2] - 0.02) > 0.004:
        return "not resting on the table"
    return None


def _check_bowl(state: dict, block: str, bowl: str) -> str | None:
    from capstan.primitives.geometry import BOWL_FLOOR_RADIUS, BOWL_HEIGHT

    b, w = state["objects"][block]["position"], state["objects"][bowl]["position"]
    if state["gripper"]["holding"] is not None:
        return "still held"
    if math.dist(b[:2], w[:2]) > BOWL_FLOOR_RADIUS or b[2] - w[2] > BOWL_HEIGHT:
        return "not inside the bowl"
    return None


def _pick_place_trials(args, progress) -> dict:
    from capstan.primitives import PolicyAPI, PrimitiveError
    from capstan.sim import World

    times, cpu, failures, sim_s, wall_s, cpu_s, done = [], [], Counter(), 0.0, 0.0, 0.0, 0
    seed = args.seed
    while done < args.trials:
        rng = random.Random(f"bench-sim-{seed}")
        with World({"blocks": 4, "bowls": 2, "seed": seed}) as world:
            f = PolicyAPI(world).functions()
            blocks = [n for n in f["get_obj_names"]() if n.endswith("block")]
            bowls = [n for n in f["get_obj_names"]() if n.endswith("bowl")]
            for i in range(min(TRIALS_PER_SCENE, args.trials - done)):
                state = world.state()
                free = [
                    b
                    for b in blocks
                    if all(
                        math.dist(state["objects"][b]["position"][:2], state["objects"][w]["position"][:2])
                        > 0.07
                        for w in bowls
                    )
                ]
                block = rng.choice(free or blocks)
                empty = [
                    w
                    for w in bowls
                    if all(
                        math.dist(state["objects"][b]["position"][:2], state["objects"][w]["position"][:2])
                        > 0.07
                        for b in blocks
                    )
                ]
                target = rng.choice(empty) if i % 2 and empty else _free_spot(rng, state, block)
                t_sim, t0, c0 = world.time_s, time.perf_counter(), time.process_time()
                try:
                    f["put_first_on_second"](block, target)
                    dt, dc = time.perf_counter() - t0, time.process_time() - c0
                    world.wait(0.3)
                    s = world.state()
                    why = (
                        _check_bowl(s, block, target)
                        if isinstance(target, str)
                        else _check_position(s, block, target)
                    )
                except PrimitiveError as e:
                    dt, dc = time.perf_counter() - t0, time.process_time() - c0
                    why = f"{type(e).__name__}: {str(e)[:80]}"
                times.append(dt)
                cpu.append(dc)
                sim_s += world.time_s - t_sim
                wall_s += time.perf_counter() - t0
                cpu_s += time.process_time() - c0
                if why:
                    failures[why] += 1
                    if world.gripper_state()["holding"]:
                        world.set_gripper(False)
                done += 1
                progress.update(1)
        seed += 1
    return {
        "n": done,
        "ok": done - sum(failures.values()),
        "times": times,
        "cpu": cpu,
        "failures": failures,
        "rtf": sim_s / wall_s,
        "rtf_cpu": sim_s / max(cpu_s, 1e-9),
    }


def _stack_trials(args, progress) -> dict:
    from capstan.primitives import PolicyAPI, PrimitiveError
    from capstan.sim import World

    ok, failures = 0, Counter()
    for seed in range(args.seed, args.seed + args.stack_seeds):
        with World({"blocks": 4, "bowls": 2, "seed": 10_000 + seed}) as world:
            f = PolicyAPI(world).functions()
            blocks = [n for n in f["get_obj_names"]() if n.endswith("block")]
            why = None
            try:
                for upper, lower in zip(blocks[1:], blocks, strict=False):
                    f["put_first_on_second"](upper, lower)
                world.wait(1.0)
                pos = [world.state()["objects"][b]["position"] for b in blocks]
                for k, p in enumerate(pos):
                    if math.dist(p[:2], pos[0][:2]) > 0.02 or abs(p[2] - (0.02 + 0.04 * k)) > 0.005:
                        why = f"block {k + 1} of 4 out of place"
                        break
            except PrimitiveError as e:
                why = f"{type(e).__name__}: {str(e)[:80]}"
            if why:
                failures[why] += 1
            else:
                ok += 1
        progress.update(1)
    return {"n": args.stack_seeds, "ok": ok, "failures": failures}


def _frame_cost(args) -> tuple[float, float]:
    """Extra (wall, CPU) seconds per recorded frame: one pick-and-place with and without recording."""
    from capstan.primitives import PolicyAPI
    from capstan.sim import World

    def timed(fn, *args) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        fn(*args)
        return time.perf_counter() - t0, time.process_time() - c0

    extra_wall, extra_cpu, frames = 0.0, 0.0, 0
    for k in range(args.frames):
        with World({"objects": ["red block", "blue bowl"], "seed": 500 + k}) as world:
            f = PolicyAPI(world).functions()
            snap = world.snapshot()
            plain = timed(f["put_first_on_second"], "red block", "blue bowl")
            world.restore(snap)
            world.start_recording(fps=10, view="angled", width=320, height=240)
            drawn: list = []  # frames are drawn when the recording stops: time both
            recorded = timed(_move_and_draw, f["put_first_on_second"], world, drawn)
            frames += len(drawn)
            extra_wall += recorded[0] - plain[0]
            extra_cpu += recorded[1] - plain[1]
    return extra_wall / max(frames, 1), extra_cpu / max(frames, 1)


def _move_and_draw(put, world, drawn: list) -> None:
    put("red block", "blue bowl")
    drawn.extend(world.stop_recording())


def _stepping_rtf(seconds: float) -> tuple[float, float]:
    """(wall, CPU) real-time factor of plain stepping: a 6-object scene, the arm holding still."""
    from capstan.sim import World

    with World({"blocks": 4, "bowls": 2, "seed": 1}) as world:
        t0, c0, s0 = time.perf_counter(), time.process_time(), world.time_s
        world.wait(seconds)
        sim_s = world.time_s - s0
        return sim_s / (time.perf_counter() - t0), sim_s / max(time.process_time() - c0, 1e-9)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from capstan.bench.memory import world_mb

    t_start = time.perf_counter()
    with tqdm(total=args.trials + args.stack_seeds, desc="bench sim", file=sys.stderr, disable=None) as bar:
        pp = _pick_place_trials(args, bar)
        st = _stack_trials(args, bar)
    frame_wall, frame_cpu = _frame_cost(args) if args.frames > 0 else (math.nan, math.nan)
    rtf_wall, rtf_cpu = _stepping_rtf(args.idle_seconds)
    per_world = world_mb()
    result = {
        "pick_place_success_rate": pp["ok"] / max(pp["n"], 1),
        "pick_place_trials": pp["n"],
        "stack4_success_rate": st["ok"] / max(st["n"], 1),
        "stack4_trials": st["n"],
        "pick_place_median_s": statistics.median(pp["times"]) if pp["times"] else float("nan"),
        "pick_place_median_cpu_s": statistics.median(pp["cpu"]) if pp["cpu"] else float("nan"),
        "realtime_factor": rtf_wall,
        "realtime_factor_cpu": rtf_cpu,
        "motion_realtime_factor": pp["rtf"],
        "motion_realtime_factor_cpu": pp["rtf_cpu"],
        "frame_cost_ms": frame_wall * 1000,
        "frame_cost_cpu_ms": frame_cpu * 1000,
        "world_pss_mb": per_world,
        "failures": dict(pp["failures"] + st["failures"]),
        "wall_s": time.perf_counter() - t_start,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"pick-and-place success   {result['pick_place_success_rate']:.1%} of {pp['n']} (target >= 99%)"
        )
        print(f"4-block stack success    {result['stack4_success_rate']:.1%} of {st['n']} (target >= 95%)")
        print(
            f"pick-and-place median    {result['pick_place_median_s'] * 1000:.0f} ms wall, "
            f"{result['pick_place_median_cpu_s'] * 1000:.0f} ms CPU (target <= 300 ms)"
        )
        print(
            f"real-time factor         stepping {rtf_wall:.0f}x wall, {rtf_cpu:.0f}x CPU (target >= 40x); "
            f"during pick-and-place (IK + control + physics) {pp['rtf']:.0f}x wall, {pp['rtf_cpu']:.0f}x CPU"
        )
        print(
            f"cost per recorded frame  {frame_wall * 1000:.1f} ms wall, {frame_cpu * 1000:.1f} ms CPU "
            "(320x240 angled view)"
        )
        print(f"memory per world         {per_world:.0f} MB PSS (a service holds one per session)")
        for why, n in Counter(result["failures"]).most_common(8):
            print(f"  failure x{n}: {why}")
        print(f"total {result['wall_s']:.0f} s")
    return 0
