"""RemoteRobot: a RobotBackend that drives a robot through its robot agent over HTTP.

A real robot (or another simulator) runs a small agent next to its hardware that speaks the
robot agent protocol (docs/CONTRACTS.md "Robot agent protocol"; `capstan robot-agent` serves
it for any RobotBackend, a PyBullet world by default). Capstan then treats that robot exactly
like the built-in sim: the primitives call these verbs, which become JSON requests.

Failures keep the service's promises: an agent that cannot be reached or answers garbage raises
RobotUnavailableError (a PrimitiveError, so a running program fails with a clear message and the
service keeps serving); an error the agent reports by name (UnreachableError, GraspError, ...)
is raised here as the same class. Motion verbs block until the robot is done, so they get a
long read timeout; everything else a short one. The e-stop goes out on its own connection, so
it is not stuck behind a motion in flight, and so do the heartbeats (primitives.heartbeat) that
the agent needs to see before and during every motion, from the handshake until close().
"""

from __future__ import annotations

import base64
import json
import logging
import math
import time
import uuid
import weakref
from typing import cast

import httpx
import numpy as np

from capstan.primitives.backend import CameraImage, RobotBackend, Workspace
from capstan.primitives.envelope import Envelope
from capstan.primitives.errors import ERROR_TYPES, PrimitiveError, RobotUnavailableError
from capstan.primitives.heartbeat import HEARTBEAT_PATH, HeartbeatSender
from capstan.primitives.scene_state import GripperStatus, SceneState, state_problems

log = logging.getLogger("capstan.robots")

PROTOCOL_VERSION = 1
QUICK_TIMEOUT_S = 10.0
ANSWER_GRACE_S = 5.0  # beyond a call's timeout, for its whole answer to arrive
MAX_ANSWER_BYTES = 64_000_000  # a 1920x1080 camera image (colour, depth, segmentation) is under half of it
MOTION_TIMEOUT_S = 120.0
_ARRAY_DTYPES = {"uint8", "float32", "int32"}


class RemoteRobot(RobotBackend):
    def __init__(
        self,
        url: str,
        *,
        name: str = "remote",
        token: str | None = None,
        motion_timeout_s: float = MOTION_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ):
        self.url = url.rstrip("/")
        self.name = name
        self.motion_timeout_s = motion_timeout_s
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        timeout = httpx.Timeout(QUICK_TIMEOUT_S, connect=5.0)
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        # the e-stop must not queue behind a motion request on a shared connection
        self._estop = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self._headers = headers  # for the heartbeat's own process
        self.heartbeat_ms = 0  # the agent's watchdog limit (0: it watches none)
        self.heartbeat: HeartbeatSender | None = None
        try:
            self._handshake(name)
        except BaseException:  # a robot we cannot use keeps no connection open
            self.close()
            raise

    def _handshake(self, name: str) -> None:
        """Ask the agent what it is: its protocol version, workspace and model."""
        info = self._call("GET", "/v1/robot")
        if info.get("protocol") != PROTOCOL_VERSION:
            raise RobotUnavailableError(
                f"robot {name!r} at {self.url} speaks robot agent protocol {info.get('protocol')!r}; "
                f"this Capstan speaks version {PROTOCOL_VERSION}"
            )
        ws = info.get("workspace") or {}
        try:
            self._workspace = Workspace(
                x=(float(ws["x"][0]), float(ws["x"][1])),
                y=(float(ws["y"][0]), float(ws["y"][1])),
                table_z=float(ws["table_z"]),
            )
        except (KeyError, TypeError, ValueError, IndexError):
            raise RobotUnavailableError(f"robot {name!r} at {self.url} sent no usable workspace") from None
        box = self._workspace
        bounds = (*box.x, *box.y, box.table_z)
        if not all(math.isfinite(v) for v in bounds) or box.x[0] >= box.x[1] or box.y[0] >= box.y[1]:
            raise RobotUnavailableError(f"robot {name!r} at {self.url} sent an impossible workspace: {ws}")
        self.model = str(info.get("robot", "unknown"))
        # what the robot says it can do: a robot with no perception takes a declared scene
        self.supports_declaring = info.get("declared_scene") is True
        self.supports_recovery = info.get("recovery") is True
        self.agent_envelope = self._envelope(info.get("envelope"))
        self._start_heartbeat(info.get("heartbeat_ms", 0))

    def _envelope(self, spec: object) -> Envelope | None:
        """The safety envelope the agent enforces (None from an agent that reports none)."""
        if spec is None:
            return None
        try:
            return Envelope.from_dict(spec, what=f"robot {self.name!r}'s envelope")
        except ValueError as exc:  # fail closed: a robot whose limits we cannot read is not used
            raise RobotUnavailableError(
                f"robot {self.name!r} at {self.url} sent an unusable envelope: {exc}"
            ) from None

    def apply_limits(self, max_speed: float, max_force_n: float) -> None:
        """The service's caps. Speed is kept on this side (move_ee's speed is clamped before it is
        sent); the grasp force only the agent can cap, so a cap below the agent's own is refused,
        not quietly left unapplied."""
        agent = self.agent_envelope
        if agent is None or agent.max_force_n > max_force_n:
            theirs = "none" if agent is None else f"{agent.max_force_n} N"
            raise RobotUnavailableError(
                f"robot {self.name!r}: this service caps the grasp force at {max_force_n} N, the agent's "
                f"envelope at {theirs}, and only the agent can apply it; give the agent an envelope "
                f"with max_force_n at most {max_force_n}"
            )

    def _start_heartbeat(self, limit_ms) -> None:
        """Beat once now (the agent refuses motions until it has a fresh heartbeat), then every
        limit/4 from a process of its own, until close()."""
        if isinstance(limit_ms, bool) or not isinstance(limit_ms, int) or limit_ms < 0:
            raise RobotUnavailableError(f"robot {self.name!r} sent no usable heartbeat_ms: {limit_ms!r}")
        self.heartbeat_ms = limit_ms
        self.supports_watchdog = limit_ms > 0
        if limit_ms == 0:  # an agent run with its watchdog off on purpose: say so, loudly
            log.warning(
                "UNSAFE: robot %r at %s runs without a heartbeat watchdog: if this service or the "
                "network dies mid-motion, nothing stops the arm",
                self.name,
                self.url,
            )
            return
        client_id = uuid.uuid4().hex[:12]
        self._call("POST", HEARTBEAT_PATH, {"client": client_id})
        # a heartbeat later than the limit is worth nothing: wait no longer for one
        limit_s = limit_ms / 1000
        self.heartbeat = HeartbeatSender(self.url, self._headers, client_id, limit_s / 4, limit_s)
        self.heartbeat.start()
        # a RemoteRobot dropped without close() must not keep telling the agent all is well
        weakref.finalize(self, self.heartbeat.close)

    # -- transport --------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        *,
        timeout: float | None = None,
        client: httpx.Client | None = None,
        params: dict | None = None,
    ) -> dict:
        return self._answer(self._send(method, path, body, timeout, client, params))

    def _send(
        self,
        method: str,
        path: str,
        body: dict | None,
        timeout: float | None,
        client: httpx.Client | None = None,
        params: dict | None = None,
    ) -> tuple[int, bytes]:
        """The agent's answer (status, body); RobotUnavailableError when none came (timeout, no
        connection), when it came slower than the timeout allows in all (a byte now and then keeps
        each read alive), or when it is larger than any answer of the protocol."""
        client = client or self._http
        limit = httpx.USE_CLIENT_DEFAULT if timeout is None else timeout
        deadline = time.monotonic() + (QUICK_TIMEOUT_S if timeout is None else timeout) + ANSWER_GRACE_S
        late = RobotUnavailableError(
            f"robot {self.name!r} at {self.url} did not answer {method} {path} in time"
        )
        try:
            with client.stream(method, path, json=body, params=params, timeout=limit) as response:
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        raise RobotUnavailableError(
                            f"robot {self.name!r} at {self.url} sent more than {MAX_ANSWER_BYTES} bytes "
                            f"for {method} {path}"
                        )
                    if time.monotonic() > deadline:
                        raise late
                    chunks.append(chunk)
                return response.status_code, b"".join(chunks)
        except httpx.TimeoutException:
            raise late from None
        except httpx.HTTPError as exc:
            raise RobotUnavailableError(
                f"robot {self.name!r} at {self.url} cannot be reached ({type(exc).__name__}: {exc})"
            ) from None

    def _answer(self, answer: tuple[int, bytes]) -> dict:
        status, content = answer
        try:
            data = json.loads(content)
        except ValueError:
            data = None
        if status >= 400 or not isinstance(data, dict):
            raise _agent_error(self.name, status, data)
        return data

    def _motion(self, path: str, body: dict, timeout: float) -> dict:
        """A verb that moves the robot. When its answer is lost (timeout, connection cut), the motion
        may still be going on at the agent while the program is told it failed, and the heartbeats,
        which come from another process, keep the watchdog quiet: so it is stopped (and, once
        still, the robot is free for the next motion, as after a cancelled run)."""
        try:
            answer = self._send("POST", path, body, timeout)
        except RobotUnavailableError:
            try:
                self.stop()
                self.resume()  # the agent resumes only once the lost motion has let go of the robot
            except PrimitiveError as exc:
                log.warning("robot %r: stopping after a lost motion failed: %s", self.name, exc)
            raise
        return self._answer(answer)

    # -- RobotBackend -----------------------------------------------------------------------
    def workspace(self) -> Workspace:
        return self._workspace

    def state(self) -> SceneState:
        state = self._call("GET", "/v1/robot/state")
        # keys the contract does not declare are tolerated (a newer agent may send more); the
        # service's schemas leave them out of its answers
        problems = state_problems(state, undeclared=False)
        if problems:
            raise RobotUnavailableError(
                f"robot {self.name!r} sent a state outside the scene contract (docs/CONTRACTS.md "
                f"'Scene state'): {'; '.join(problems[:5])}"
            )
        return cast(SceneState, state)

    def render(self, view: str = "top", width: int = 320, height: int = 240) -> CameraImage:
        data = self._call("GET", "/v1/robot/render", params={"view": view, "width": width, "height": height})
        try:
            seg = data.get("segmentation")
            return CameraImage(
                rgb=_array(data["rgb"], "uint8", 3),
                depth=_array(data["depth"], "float32", 2),
                segmentation=_array(seg, "int32", 2) if seg is not None else None,
                intrinsics=np.asarray(data["intrinsics"], dtype=float).reshape(3, 3),
                extrinsics=np.asarray(data["extrinsics"], dtype=float).reshape(4, 4),
                id_to_name={int(k): str(v) for k, v in (data.get("id_to_name") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RobotUnavailableError(f"robot {self.name!r} sent an unusable camera image: {exc}") from None

    def ee_position(self) -> np.ndarray:
        return _xyz(self._call("GET", "/v1/robot/ee").get("xyz"), self.name)

    def move_ee(self, xyz, yaw: float = 0.0, speed: float = 1.0) -> None:
        body = {"xyz": [float(v) for v in xyz], "yaw": float(yaw), "speed": float(speed)}
        self._motion("/v1/robot/move_ee", body, self.motion_timeout_s)

    def can_reach(self, xyz, yaw: float = 0.0) -> bool:
        body = {"xyz": [float(v) for v in xyz], "yaw": float(yaw)}
        reachable = self._call("POST", "/v1/robot/can_reach", body).get("reachable")
        if not isinstance(reachable, bool):  # an answer that does not say is not a yes
            raise RobotUnavailableError(
                f"robot {self.name!r} sent no usable answer to can_reach: {reachable!r}"
            )
        return reachable

    def set_gripper(self, closed: bool) -> bool:
        data = self._motion("/v1/robot/gripper", {"closed": bool(closed)}, self.motion_timeout_s)
        return bool(data.get("holding"))

    def gripper_state(self) -> GripperStatus:
        data = self._call("GET", "/v1/robot/gripper")
        holding, width = data.get("holding"), data.get("width", 0.0)
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not math.isfinite(width):
            raise RobotUnavailableError(f"robot {self.name!r} sent no usable gripper width: {width!r}")
        return {
            "open": bool(data.get("open")),
            "width": float(width),
            "holding": holding if isinstance(holding, str) else None,
        }

    def wait(self, seconds: float) -> None:
        self._motion("/v1/robot/wait", {"seconds": float(seconds)}, self.motion_timeout_s + seconds)

    def begin_run(self) -> None:
        self._call("POST", "/v1/robot/begin_run", {})  # the agent's envelope counts per run too

    def check_path(self, points) -> None:
        self._call("POST", "/v1/robot/check_path", {"points": [[float(v) for v in p] for p in points]})

    def stop(self) -> None:
        self._call("POST", "/v1/robot/stop", {}, client=self._estop)

    def resume(self) -> None:
        """Lift an e-stop; refused (RobotStoppedError) while the agent's watchdog holds its stop."""
        self._call("POST", "/v1/robot/resume", {}, client=self._estop)

    def clear_watchdog(self) -> None:
        """The operator's resume after a watchdog stop, once the link to the service was checked."""
        if not self.supports_watchdog:
            raise self._missing("supports_watchdog", "clear a watchdog stop")
        self._call("POST", "/v1/robot/resume", {"watchdog": True}, client=self._estop)

    def declare(self, objects: object) -> None:
        if not self.supports_declaring:
            raise self._missing("supports_declaring", "take a declared scene")
        self._call("PUT", "/v1/robot/scene", {"objects": objects})

    def recover(self) -> None:
        if not self.supports_recovery:
            raise self._missing("supports_recovery", "recover from errors")
        self._call("POST", "/v1/robot/recover", {}, timeout=self.motion_timeout_s)

    def close(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.close()
        self._http.close()
        self._estop.close()


def _agent_error(name: str, status: int, data) -> PrimitiveError:
    """The agent's own error, by class name when it is a primitive error we know."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        cls = ERROR_TYPES.get(str(error.get("type")))
        message = str(error.get("message", ""))[:2000]
        if cls is not None and cls.__name__ != "UnknownObjectError":
            return cls(message)
        if cls is not None:
            return ERROR_TYPES["PrimitiveError"](message)
        return RobotUnavailableError(f"robot {name!r} failed: {error.get('type')}: {message}")
    return RobotUnavailableError(f"robot {name!r} answered HTTP {status} without a usable body")


def _array(spec, dtype: str, ndim: int) -> np.ndarray:
    if not isinstance(spec, dict) or spec.get("dtype") != dtype or dtype not in _ARRAY_DTYPES:
        raise ValueError(f"expected a {dtype} array")
    shape = tuple(int(n) for n in spec["shape"])
    if len(shape) != ndim or any(n <= 0 or n > 4096 for n in shape):
        raise ValueError(f"bad array shape {shape}")
    raw = base64.b64decode(spec["data"], validate=True)
    count = math.prod(shape)
    arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    if arr.size != count:
        raise ValueError(f"array data holds {arr.size} values, shape {shape} needs {count}")
    return arr.reshape(shape).astype(dtype)


def array_spec(arr: np.ndarray, dtype: str) -> dict:
    """The wire form of a camera array (little-endian raw bytes, base64)."""
    a = np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": dtype, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def _xyz(value, name: str) -> np.ndarray:
    try:
        xyz = np.asarray(value, dtype=float).reshape(3)
    except (TypeError, ValueError):
        raise RobotUnavailableError(f"robot {name!r} sent a gripper position that is not [x, y, z]") from None
    if not np.all(np.isfinite(xyz)):
        raise RobotUnavailableError(f"robot {name!r} sent a non-finite gripper position")
    return xyz
