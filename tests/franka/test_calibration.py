"""The table-to-base calibration: its default matches the simulated table, points round-trip,
and bad files are refused with a message that says what to fix."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from capstan.franka import _franky
from capstan.franka.calibration import TABLE_WORKSPACE, Calibration, CalibrationError
from capstan.sim.scene import WORKSPACE


def test_the_franka_table_is_the_simulated_table():
    assert TABLE_WORKSPACE == WORKSPACE


def test_default_puts_the_robot_in_front_of_the_table_looking_along_y():
    cal = Calibration()
    # base_x = table_y, base_y = -table_x, z the same
    np.testing.assert_allclose(cal.to_base([0.2, 0.5, 0.1]), [0.5, -0.2, 0.1], atol=1e-12)
    np.testing.assert_allclose(cal.to_table([0.5, -0.2, 0.1]), [0.2, 0.5, 0.1], atol=1e-12)
    assert cal.table_z == 0.0


@pytest.mark.parametrize("yaw", [0.0, -math.pi / 2, 0.7, 3.0])
def test_points_round_trip_through_any_calibration(yaw):
    cal = Calibration(translation=(0.1, -0.05, 0.02), yaw=yaw)
    rng = np.random.default_rng(3)
    for p in rng.uniform(-1, 1, size=(20, 3)):
        np.testing.assert_allclose(cal.to_table(cal.to_base(p)), p, atol=1e-12)
        np.testing.assert_allclose(cal.to_base(cal.to_table(p)), p, atol=1e-12)
    # distances survive: it is a rigid transform
    a, b = np.array([0.1, 0.4, 0.0]), np.array([-0.2, 0.6, 0.05])
    assert np.linalg.norm(cal.to_base(a) - cal.to_base(b)) == pytest.approx(np.linalg.norm(a - b))
    assert cal.table_z == 0.02


def test_from_file_and_to_dict_agree(tmp_path):
    cal = Calibration(translation=(0.02, 0.01, 0.0), yaw=-1.5)
    path = tmp_path / "table.json"
    path.write_text(json.dumps(cal.to_dict()))
    assert Calibration.from_file(path) == cal
    assert Calibration.from_dict({}) == Calibration()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([], "JSON object"),
        ({"translation": [0, 0]}, "[x, y, z]"),
        ({"translation": [0, 0, "1"]}, "[x, y, z]"),
        ({"yaw": "left"}, "radians"),
        ({"yaw": float("nan")}, "finite"),
        ({"translation": [0, 0, 120]}, "metres"),
        ({"rotation": 1}, "unknown calibration keys"),
    ],
)
def test_bad_calibrations_are_refused_clearly(data, says):
    with pytest.raises(CalibrationError) as info:
        Calibration.from_dict(data)
    assert says in str(info.value)


def test_unreadable_calibration_files_name_the_file(tmp_path):
    with pytest.raises(CalibrationError, match="cannot read"):
        Calibration.from_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{translation")
    with pytest.raises(CalibrationError, match="not valid JSON"):
        Calibration.from_file(bad)


def test_a_missing_franky_says_how_to_install_it():
    with pytest.raises(_franky.FrankyMissingError, match=r"pip install 'capstan\[franka\]'"):
        _franky.load("franky_not_installed_here")


def test_the_public_face_is_sorted_and_importable_without_loading_franky():
    import subprocess
    import sys

    import capstan.franka as franka

    assert franka.__all__ == sorted(franka.__all__)
    code = (
        "import sys, capstan.franka as f\n"
        "for name in f.__all__: getattr(f, name)\n"
        "assert 'franky' not in sys.modules, 'franky was imported eagerly'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-1500:]
