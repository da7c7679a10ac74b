"""Robot backends by name: the one place that knows how to build a world for a session.

"sim" is the built-in PyBullet world, built from the session's scene. Every other name is a
remote robot configured by the operator (CAPSTAN_ROBOTS=name=url): a robot agent reached over
HTTP (primitives.remote). A remote robot's scene is whatever is on its table, so it takes none.
"""

from __future__ import annotations

from collections.abc import Mapping

from capstan.primitives.backend import RobotBackend

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
    robot: str, scene: dict, remotes: Mapping[str, str] | None = None, token: str | None = None
) -> RobotBackend:
    """A fresh backend: the sim with `scene` built, or a connection to a remote robot's agent.

    Raises UnknownRobotError, sim.SceneError, or RobotUnavailableError (agent unreachable)."""
    remotes = remotes or {}
    if robot == SIM:
        from capstan.service.assembly import build_sim

        return build_sim(scene)
    if robot in remotes:
        from capstan.primitives.remote import RemoteRobot

        return RemoteRobot(remotes[robot], name=robot, token=token)
    raise UnknownRobotError(robot, robot_names(remotes))
