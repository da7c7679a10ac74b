"""The Franka Panda: loading, inverse kinematics and joint-level commands.

Inverse kinematics runs in a kinematics-only PyBullet client holding a second copy of the arm, so
solving and checking a pose (reset joints, forward kinematics) never disturbs the physics. One such
client serves every world in the process (each costs ~25 MB, and a service holds a world per session).
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pybullet as p
import pybullet_data

ARM_JOINTS = list(range(7))
FINGER_JOINTS = [9, 10]
TCP_LINK = 11  # panda_grasptarget, between the fingertips
HAND_LINK = 8
ARM_FORCES = [87.0] * 4 + [12.0] * 3
FINGER_FORCE = 20.0
FINGER_OPEN = 0.035  # per finger: 7 cm between the pads when open
HOME_Q = [0.0, -1.17, 0.0, -2.87, 0.0, 1.71, math.pi / 4]
READY_Q = [0.0, -0.55, 0.0, -2.3, 0.0, 1.75, math.pi / 4]  # null-space preference of the IK
HOME_TCP = (0.0, 0.22, 0.35)  # tucked in front of the base, out of the top camera's view
BASE_POSITION = (0.0, 0.0, 0.0)
BASE_YAW = math.pi / 2  # the arm faces +y, towards the workspace
IK_TOLERANCE = 0.004  # metres; poses the solver cannot get closer to are unreachable


_KINEMATICS: tuple[int, int] | None = None  # (client, body)
# Held for each kinematics call: every call first sets the joints it then reads.
_KINEMATICS_LOCK = threading.RLock()


def _kinematics() -> tuple[int, int]:
    """The process's kinematics-only arm: no meshes (IK and forward kinematics need none)."""
    global _KINEMATICS
    with _KINEMATICS_LOCK:
        if _KINEMATICS is None or not p.isConnected(_KINEMATICS[0]):
            kin = p.connect(p.DIRECT)
            p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=kin)
            body = p.loadURDF(
                "franka_panda/panda.urdf",
                BASE_POSITION,
                p.getQuaternionFromEuler([0, 0, BASE_YAW]),
                useFixedBase=True,
                flags=p.URDF_IGNORE_VISUAL_SHAPES | p.URDF_IGNORE_COLLISION_SHAPES,
                physicsClientId=kin,
            )
            _KINEMATICS = (kin, body)
        return _KINEMATICS


def down_orientation(yaw: float) -> tuple[float, float, float, float]:
    """Quaternion of the TCP pointing straight down; yaw=0 puts the fingers' closing axis along x."""
    return p.getQuaternionFromEuler([math.pi, 0.0, yaw + math.pi / 2])


class PandaModel:
    """Loads the Panda into client `cid`; solves its kinematics on the process's shared copy."""

    def __init__(self, cid: int):
        self.cid = cid
        base_orn = p.getQuaternionFromEuler([0, 0, BASE_YAW])
        path = "franka_panda/panda.urdf"
        flags = p.URDF_USE_SELF_COLLISION_EXCLUDE_ALL_PARENTS * 0
        self.body = p.loadURDF(
            path, BASE_POSITION, base_orn, useFixedBase=True, flags=flags, physicsClientId=cid
        )
        info = [p.getJointInfo(self.body, j, physicsClientId=cid) for j in ARM_JOINTS + FINGER_JOINTS]
        self.lower = [i[8] for i in info]
        self.upper = [i[9] for i in info]
        self.ranges = [u - lo for u, lo in zip(self.upper, self.lower, strict=False)]
        self.rest = READY_Q + [FINGER_OPEN, FINGER_OPEN]
        for j, q in zip(ARM_JOINTS + FINGER_JOINTS, self.rest, strict=False):
            p.resetJointState(self.body, j, q, physicsClientId=cid)
        for j in range(-1, p.getNumJoints(self.body, physicsClientId=cid)):
            p.changeDynamics(self.body, j, linearDamping=0.0, angularDamping=0.0, physicsClientId=cid)
        # couple the fingers so a held object stays centred (they are independent joints in the URDF)
        gear = p.createConstraint(
            self.body, 9, self.body, 10, p.JOINT_GEAR, [1, 0, 0], [0, 0, 0], [0, 0, 0], physicsClientId=cid
        )
        p.changeConstraint(gear, gearRatio=-1, erp=0.1, maxForce=50, physicsClientId=cid)
        for j in FINGER_JOINTS:
            p.changeDynamics(
                self.body,
                j,
                lateralFriction=1.5,
                spinningFriction=0.003,
                frictionAnchor=True,
                physicsClientId=cid,
            )

    def reset_home(self) -> list[float]:
        """Put the arm at the home pose with the gripper pointing straight down at yaw 0."""
        q, _ = self.solve_ik(HOME_TCP, 0.0, HOME_Q, iterations=8)
        for j, v in zip(ARM_JOINTS, q, strict=False):
            p.resetJointState(self.body, j, v, physicsClientId=self.cid)
        return q

    def close(self) -> None:
        """Nothing of its own to free: the arm goes with its world's client, the kinematics are shared."""

    # -- state ------------------------------------------------------------------------------
    def arm_q(self) -> list[float]:
        return [s[0] for s in p.getJointStates(self.body, ARM_JOINTS, physicsClientId=self.cid)]

    def arm_qd(self) -> list[float]:
        return [s[1] for s in p.getJointStates(self.body, ARM_JOINTS, physicsClientId=self.cid)]

    def finger_q(self) -> list[float]:
        return [s[0] for s in p.getJointStates(self.body, FINGER_JOINTS, physicsClientId=self.cid)]

    def joint_states(self) -> list[tuple[float, float]]:
        """(position, velocity) of the arm and finger joints."""
        return [
            (float(s[0]), float(s[1]))
            for s in p.getJointStates(self.body, ARM_JOINTS + FINGER_JOINTS, physicsClientId=self.cid)
        ]

    def set_joint_states(self, states) -> None:
        for j, (q, qd) in zip(ARM_JOINTS + FINGER_JOINTS, states, strict=False):
            p.resetJointState(self.body, j, q, qd, physicsClientId=self.cid)

    def tcp(self) -> np.ndarray:
        s = p.getLinkState(self.body, TCP_LINK, computeForwardKinematics=True, physicsClientId=self.cid)
        return np.array(s[4])

    # -- kinematics -------------------------------------------------------------------------
    def _ik_once(self, xyz, orn, q: list[float], null_space: bool, max_iter: int = 100) -> list[float]:
        with _KINEMATICS_LOCK:
            kin, body = _kinematics()
            for j, v in zip(ARM_JOINTS, q, strict=False):
                p.resetJointState(body, j, v, physicsClientId=kin)
            extra = {}
            if null_space:  # pulls towards READY_Q; less precise, so only used to find a good start
                extra = {
                    "lowerLimits": self.lower,
                    "upperLimits": self.upper,
                    "jointRanges": self.ranges,
                    "restPoses": self.rest,
                }
            sol = p.calculateInverseKinematics(
                body,
                TCP_LINK,
                list(map(float, xyz)),
                orn,
                maxNumIterations=max_iter,
                residualThreshold=1e-5,
                physicsClientId=kin,
                **extra,
            )
        return [min(max(v, lo), hi) for v, lo, hi in zip(sol[:7], self.lower, self.upper, strict=False)]

    def solve_ik(
        self, xyz, yaw: float, seed_q: list[float], iterations: int = 6
    ) -> tuple[list[float], float]:
        """Joint angles putting the TCP at `xyz` pointing down at `yaw`, refined from `seed_q`;
        returns (q, remaining position error in metres)."""
        orn = down_orientation(yaw)
        q, err = list(seed_q), math.inf
        for _ in range(iterations):
            q = self._ik_once(xyz, orn, q, null_space=False, max_iter=100 if iterations > 1 else 15)
            if iterations == 1:
                return q, math.nan  # a waypoint: precision is not checked
            err = float(np.linalg.norm(self.fk_tcp(q) - np.asarray(xyz, dtype=float)))
            if err < 5e-4:
                break
        return q, err

    def solve_goal(self, xyz, yaw: float, current_q: list[float]) -> tuple[list[float], float]:
        """Goal pose IK: start near the current pose, gently pulled towards READY_Q (so the arm
        neither swings through a reconfiguration mid-motion nor drifts to its joint limits over
        many motions), then refine precisely; falls back to starting from READY_Q itself."""
        orn = down_orientation(yaw)
        best = self.solve_ik(xyz, yaw, self._ik_once(xyz, orn, current_q, null_space=True))
        if best[1] > 1e-3:
            for start in (current_q, self._ik_once(xyz, orn, READY_Q, null_space=True)):
                best = min(best, self.solve_ik(xyz, yaw, start), key=lambda r: r[1])
        return best

    def fk_tcp(self, q: list[float]) -> np.ndarray:
        with _KINEMATICS_LOCK:
            kin, body = _kinematics()
            for j, v in zip(ARM_JOINTS, q, strict=False):
                p.resetJointState(body, j, v, physicsClientId=kin)
            s = p.getLinkState(body, TCP_LINK, computeForwardKinematics=True, physicsClientId=kin)
        return np.array(s[4])

    # -- commands ---------------------------------------------------------------------------
    def command_arm(self, q: list[float], qd: list[float] | None = None, gain: float = 0.3) -> None:
        p.setJointMotorControlArray(
            self.body,
            ARM_JOINTS,
            p.POSITION_CONTROL,
            targetPositions=q,
            forces=ARM_FORCES,
            targetVelocities=qd if qd is not None else [0.0] * 7,
            positionGains=[gain] * 7,
            velocityGains=[1.0] * 7,
            physicsClientId=self.cid,
        )

    def command_fingers(self, target: float) -> None:
        p.setJointMotorControlArray(
            self.body,
            FINGER_JOINTS,
            p.POSITION_CONTROL,
            targetPositions=[target, target],
            forces=[FINGER_FORCE, FINGER_FORCE],
            positionGains=[0.2, 0.2],
            physicsClientId=self.cid,
        )
