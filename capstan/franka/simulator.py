"""franky-sim (MuJoCo) with real blocks on a table, in its own process, for tests and demos.

    python -m capstan.franka.simulator --blocks '{"red block": {"color": "red", "position": [0.0, 0.5]}}'

The child builds a Franka (FR3) at the base-frame origin and 4 cm blocks with a free joint at
the given table-frame positions (mapped to the base frame through a Calibration), serves the
Franka network protocol on a loopback address, and prints one ready line on stdout:
`{"ready": true, "hostname": "127.x.y.z"}`. It then answers JSON lines on stdin, one line each
on stdout, until "quit" or end of input:

    {"query": "blocks"}       -> {"blocks": {name: [x, y, z] true position, table frame}}
    {"query": "joint_speed"}  -> {"joint_speed": largest |dq| of the arm's joints, rad/s}
    {"query": "joints"}       -> {"joints": the arm's 7 joint angles, rad}
    {"query": "place", "blocks": {name: [x, y]}}  -> {"placed": [names]}: blocks set down at rest

franky-sim steps at 1 kHz in a Python thread; in its own process that loop is not starved by the
process using the robot. `FrankySim` is the parent's handle on such a child.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
from typing import IO, Any

import numpy as np

from capstan.franka import _franky
from capstan.franka.calibration import Calibration
from capstan.primitives.geometry import BLOCK_SIZE, COLORS

START_TIMEOUT_S = 60.0
QUERY_TIMEOUT_S = 10.0
BLOCK_MASS_KG = 0.05


def _parse_blocks(text: str) -> dict[str, dict]:
    blocks = json.loads(text)
    if not isinstance(blocks, dict):
        raise ValueError('--blocks is a JSON object {name: {"color": c, "position": [x, y]}}')
    for name, spec in blocks.items():
        if not isinstance(spec, dict) or spec.get("color") not in COLORS:
            raise ValueError(f"block {name!r} needs a color, one of {', '.join(COLORS)}")
        pos = spec.get("position")
        if not isinstance(pos, list) or len(pos) != 2:
            raise ValueError(f"block {name!r} needs a position [x, y] in the table frame")
    return blocks


def _add_scene(sim: Any, blocks: dict[str, dict], cal: Calibration) -> dict[str, str]:
    """Blocks (and a table top when the table is above the floor); {block name: MuJoCo body name}."""
    if cal.table_z > 0.001:
        centre = cal.to_base([0.0, 0.5, 0.0])
        ET.SubElement(
            sim.worldbody,
            "geom",
            name="table",
            type="box",
            size=f"0.5 0.5 {cal.table_z / 2}",
            pos=f"{centre[0]} {centre[1]} {cal.table_z / 2}",
            rgba="0.8 0.75 0.65 1",
        )
    bodies: dict[str, str] = {}
    half = BLOCK_SIZE / 2
    for i, (name, spec) in enumerate(blocks.items()):
        x, y = (float(v) for v in spec["position"])
        base = cal.to_base([x, y, half])
        body = ET.SubElement(sim.worldbody, "body", name=f"block{i}", pos=" ".join(map(str, base)))
        ET.SubElement(body, "freejoint", name=f"block{i}_joint")
        r, g, b = COLORS[spec["color"]]
        ET.SubElement(
            body,
            "geom",
            type="box",
            size=f"{half} {half} {half}",
            rgba=f"{r} {g} {b} 1",
            mass=str(BLOCK_MASS_KG),
            friction="1.0 0.01 0.001",
        )
        bodies[name] = f"block{i}"
    return bodies


def _place(sim: Any, bodies: dict[str, str], cal: Calibration, where: object) -> dict:
    """Set blocks down at rest at table-frame [x, y]: a new scene without a new simulator. The
    stepping thread does not pause; a block's 7 coordinates are written in one assignment, so at
    worst one step sees it half-moved, and the callers place blocks only where the arm is not."""
    if not isinstance(where, dict) or not all(
        name in bodies and isinstance(xy, list) and len(xy) == 2 for name, xy in where.items()
    ):
        return {"error": f"place needs {{name: [x, y]}} for blocks among {sorted(bodies)}"}
    for name, (x, y) in where.items():
        joint = sim.model.joint(f"{bodies[name]}_joint")
        qpos, dof = int(joint.qposadr[0]), int(joint.dofadr[0])
        # a hair above the table, so that it settles onto it rather than starting in contact
        base = cal.to_base([float(x), float(y), BLOCK_SIZE / 2 + 0.001])
        yaw = cal.yaw
        sim.data.qvel[dof : dof + 6] = 0.0
        sim.data.qpos[qpos : qpos + 7] = [*base, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
    return {"placed": sorted(where)}


def serve(blocks: dict[str, dict], cal: Calibration, requests: IO[str], answers: IO[str]) -> None:
    mujoco_sim = _franky.load("franky_sim.mujoco_simulator")
    server = _franky.load("franky_sim.simulation_server")
    sim = mujoco_sim.MujocoSimulator()
    sim.init()
    robot = sim.add_robot()
    bodies = _add_scene(sim, blocks, cal)
    srv = server.SimulationServer(sim)
    srv.init()
    srv.run_async()
    try:
        dofs = list(robot._dof_addrs)
        ids = {name: sim.model.body(body).id for name, body in bodies.items()}

        def answer(message: dict) -> None:
            answers.write(json.dumps(message) + "\n")
            answers.flush()

        answer({"ready": True, "hostname": srv.robot_servers[0].hostname})
        for line in requests:
            try:
                message = json.loads(line)
                query = message.get("query")
            except (ValueError, AttributeError):
                message, query = {}, None
            if query == "blocks":
                xpos = np.array(sim.data.xpos)  # a copy: the stepping thread keeps writing
                answer({"blocks": {n: cal.to_table(xpos[i]).tolist() for n, i in ids.items()}})
            elif query == "joint_speed":
                answer({"joint_speed": float(np.max(np.abs(np.array(sim.data.qvel)[dofs])))})
            elif query == "joints":
                answer({"joints": [float(v) for v in np.array(sim.data.qpos)[list(robot._qpos_addrs)]]})
            elif query == "place":
                answer(_place(sim, bodies, cal, message.get("blocks")))
            elif query == "quit":
                break
            else:
                known = "blocks, joint_speed, joints, place or quit"
                answer({"error": f"unknown query in {line.strip()[:80]!r}; ask {known}"})
    finally:
        srv.cleanup()
        sim.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m capstan.franka.simulator", description="franky-sim with blocks, in its own process"
    )
    parser.add_argument(
        "--blocks", default="{}", help='{name: {"color": c, "position": [x, y]}} (table frame)'
    )
    parser.add_argument(
        "--calibration", default=None, help='calibration JSON {"translation": [x, y, z], "yaw": r}'
    )
    args = parser.parse_args(argv)
    blocks = _parse_blocks(args.blocks)
    cal = Calibration.from_dict(json.loads(args.calibration)) if args.calibration else Calibration()
    # the protocol owns stdout: anything else the libraries print goes to stderr
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(blocks, cal, sys.stdin, answers)
    return 0


class FrankySim:
    """A franky-sim child process: `with FrankySim(blocks) as sim: FrankaBackend.connect(sim.hostname)`."""

    def __init__(self, blocks: dict[str, dict] | None = None, calibration: Calibration | None = None):
        self.blocks = blocks or {}
        self.calibration = calibration or Calibration()
        self.hostname = ""
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._log: IO[str] | None = None  # the child's stderr, shown when it fails
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> FrankySim:
        if self._proc is not None:
            raise RuntimeError("this FrankySim is already started; make another for a second simulator")
        command = [
            sys.executable,
            "-m",
            "capstan.franka.simulator",
            "--blocks",
            json.dumps(self.blocks),
            "--calibration",
            json.dumps(self.calibration.to_dict()),
        ]
        self._log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - lives as long as the child
        self._proc = subprocess.Popen(  # noqa: S603 - our own module, run by this interpreter
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        self._reader = threading.Thread(target=self._read, args=(self._proc.stdout,), daemon=True)
        self._reader.start()
        ready = self._next(START_TIMEOUT_S, "start")
        self.hostname = str(ready["hostname"])
        return self

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def _next(self, timeout: float, what: str) -> dict:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            output = self._tail()
            self.close()
            raise RuntimeError(f"franky-sim did not {what} in time or exited; its output:\n{output}")
        return json.loads(line)

    def _tail(self) -> str:
        if self._log is None:
            return ""
        with contextlib.suppress(ValueError, OSError):
            self._log.seek(0)
            return self._log.read()[-3000:]
        return ""

    def _query(self, query: str, **fields: object) -> dict:
        with self._lock:
            if self._proc is None or self._proc.stdin is None:
                raise RuntimeError("franky-sim is not running: call start() first")
            self._proc.stdin.write(json.dumps({"query": query, **fields}) + "\n")
            self._proc.stdin.flush()
            return self._next(QUERY_TIMEOUT_S, f"answer {query!r}")

    def block_positions(self) -> dict[str, np.ndarray]:
        """Every block's true position [x, y, z] (its centre) in the table frame."""
        return {name: np.asarray(xyz) for name, xyz in self._query("blocks")["blocks"].items()}

    def joint_speed(self) -> float:
        """The fastest arm joint's speed, rad/s."""
        return float(self._query("joint_speed")["joint_speed"])

    def joint_positions(self) -> np.ndarray:
        """The arm's 7 joint angles, rad."""
        return np.asarray(self._query("joints")["joints"])

    def place_blocks(self, positions: dict[str, list[float]]) -> None:
        """Set the named blocks down at rest at table-frame [x, y] (keep the arm clear of them)."""
        answer = self._query("place", blocks=positions)
        if "error" in answer:
            raise ValueError(answer["error"])

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError, ValueError):
                if proc.stdin is not None:
                    proc.stdin.write(json.dumps({"query": "quit"}) + "\n")
                    proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if self._reader is not None:
                self._reader.join(5)  # it ends at the pipe's end of file
            if proc.stdout is not None:
                proc.stdout.close()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> FrankySim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(main())
