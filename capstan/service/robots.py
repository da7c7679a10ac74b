"""Robot backends by name: the one place that knows how to build a world for a session.

"sim" is the built-in PyBullet world, built from the session's scene. Every other name is a
remote robot configured by the operator (CAPSTAN_ROBOTS=name=url): a robot agent reached over
HTTP (primitives.remote). A remote robot's scene is whatever is on its table, so it takes none.
Every real robot is wrapped in its safety envelope (primitives.envelope; CAPSTAN_ENVELOPE, else
the conservative default for its workspace); the sim only when CAPSTAN_ENVELOPE names "sim".
"""

from __future__ import annotations

from collections.abc import Mapping

from capstan.primitives.backend import RobotBackend
from capstan.primitives.envelope import Envelope, EnvelopedBackend

SIM = "sim"


class UnknownRobotError(ValueError):
    def __init__(self, robot: str, known: tuple[str, ...] = (SIM,)):
        super().__init__(
            f"unknown robot {robot[:40]!r}: available robots are {', '.join(known)} "
            "(remote robots are configured with CAPSTAN_ROBOTS=name=http://agent:port)"
        )


def scene_error_type() -> type[Exception]:
    from capstan import sim

    return sim.SceneError


def takes_scene(robot: str) -> bool:
    """Only the sim is built from a scene; a remote robot's scene is what is on its table."""
    return robot == SIM


def scene_refused(robot: str, fix: str) -> str:
    """Why a scene (or seed) sent for a remote robot is refused; `fix` says what to drop."""
    return f"robot {robot[:40]!r} is a real robot: its scene is what is on its table; {fix}"


def robot_names(remotes: Mapping[str, str]) -> tuple[str, ...]:
    return (SIM, *remotes)


def make_backend(
    robot: str,
    scene: dict,
    remotes: Mapping[str, str] | None = None,
    token: str | None = None,
    envelopes: Mapping[str, Envelope] | None = None,
) -> RobotBackend:
    """A fresh backend: the sim with `scene` built, or a connection to a remote robot's agent
    behind its envelope (`envelopes[robot]`, else the one its agent enforces, else the default for
    its workspace).

    Raises UnknownRobotError, sim.SceneError, or RobotUnavailableError (agent unreachable)."""
    remotes, envelopes = remotes or {}, envelopes or {}
    if robot == SIM:
        from capstan.service.assembly import build_sim

        world = build_sim(scene)
        return EnvelopedBackend(world, envelopes[SIM]) if SIM in envelopes else world
    if robot in remotes:
        from capstan.primitives.remote import RemoteRobot

        remote = RemoteRobot(remotes[robot], name=robot, token=token)
        # the operator's file first; else what the agent enforces, so the twin and the service refuse
        # what the agent would refuse midway through a program
        envelope = envelopes.get(robot) or remote.agent_envelope or Envelope.default_for(remote.workspace())
        return EnvelopedBackend(remote, envelope)
    raise UnknownRobotError(robot, robot_names(remotes))
