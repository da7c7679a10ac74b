"""Robot backends by name: the one place that knows how to build a world for a session."""

from __future__ import annotations

from primitives.backend import RobotBackend

ROBOTS = ("sim",)


class UnknownRobotError(ValueError):
    def __init__(self, robot: str):
        super().__init__(
            f"unknown robot {robot[:40]!r}: available robots are {', '.join(ROBOTS)} "
            "(a real-robot adapter is not implemented yet)"
        )


def scene_error_type() -> type[Exception]:
    import sim

    return sim.SceneError


def make_backend(robot: str, scene: dict) -> RobotBackend:
    """A fresh backend with `scene` built; raises UnknownRobotError or sim.SceneError."""
    if robot not in ROBOTS:
        raise UnknownRobotError(robot)
    import sim

    return sim.World(scene)
