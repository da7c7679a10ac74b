"""The robot agent for a Franka: FrankaBackend (capstan.franka) behind the robot agent protocol.

`capstan robot-agent --backend franka --franka-host HOST` serves a real robot; `--franka-sim`
starts franky-sim (MuJoCo) in a child process instead, with two blocks on the table that are
also declared, so the whole chain can be tried without hardware.
"""

from __future__ import annotations

from fastapi import FastAPI

from capstan.primitives.envelope import Envelope
from capstan.service.agent_watchdog import DEFAULT_HEARTBEAT_MS
from capstan.service.robot_agent import make_agent_app

# the blocks franky-sim puts on the table for a demo, declared to the backend as they are
DEMO_BLOCKS = {
    "red block": {"color": "red", "position": [-0.1, 0.5]},
    "blue block": {"color": "blue", "position": [0.1, 0.45]},
}


def franka_agent_app(
    host: str | None,
    *,
    calibration_file: str | None = None,
    simulate: bool = False,
    max_speed: float | None = None,
    max_force_n: float | None = None,
    realtime: bool = False,
    token: str | None = None,
    envelope: Envelope | None = None,
    heartbeat_ms: int = DEFAULT_HEARTBEAT_MS,
    unsafe_no_heartbeat: bool = False,
) -> FastAPI:
    """An agent app for the Franka at `host`, or for franky-sim when `simulate`, behind `envelope`
    (default: Envelope.default_for its workspace, whose speed and force caps go to the backend's own
    limits through apply_limits). The caller closes
    `app.state.world` (the backend) and `app.state.simulator` (franky-sim, or None) when done."""
    from capstan.franka import Calibration, FrankaBackend, FrankySim

    if simulate == bool(host):
        raise ValueError("give the Franka's address (--franka-host) or --franka-sim, exactly one of them")
    calibration = Calibration.from_file(calibration_file) if calibration_file else Calibration()
    simulator = FrankySim(DEMO_BLOCKS, calibration).start() if simulate else None
    try:
        options: dict = {"calibration": calibration, "realtime": realtime}
        if max_speed is not None:
            options["max_speed"] = max_speed
        if max_force_n is not None:
            options["max_force_n"] = max_force_n
        if simulator is not None:
            options["objects"] = {name: {"position": b["position"]} for name, b in DEMO_BLOCKS.items()}
        backend = FrankaBackend.connect(simulator.hostname if simulator else str(host), **options)
    except BaseException:
        if simulator is not None:
            simulator.close()
        raise
    robot = "franka-sim" if simulator else "franka"
    app = make_agent_app(
        backend, robot, token, envelope, heartbeat_ms=heartbeat_ms, unsafe_no_heartbeat=unsafe_no_heartbeat
    )
    app.state.world = backend
    app.state.simulator = simulator
    return app
