"""The wheel installs one import package, `capstan`, with its data and without development files."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

READ_RECORD = """
import json
from importlib import metadata
dist = metadata.distribution("capstan")
files = [str(f) for f in dist.files]
print(json.dumps({"files": files, "entry_points": [ep.value for ep in dist.entry_points]}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(REPO),
        ],
        check=True,
        cwd=tmp,
    )
    wheel = next((tmp / "dist").glob("capstan-*.whl"))
    venv.create(tmp / "venv", with_pip=False)
    py = tmp / "venv" / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        check=True,
    )
    out = subprocess.run([str(py), "-c", READ_RECORD], check=True, capture_output=True, text=True, cwd=tmp)
    return json.loads(out.stdout)


def test_exactly_one_top_level_package(installed):
    tops = {f.split("/")[0] for f in installed["files"] if not f.startswith("..")}
    packages = {t for t in tops if not t.endswith((".dist-info", ".data"))}
    assert packages == {"capstan"}, sorted(tops)


def test_package_data_ships_and_development_files_do_not(installed):
    files = set(installed["files"])
    for needed in (
        "capstan/prompts/tabletop_ui.yaml",
        "capstan/service/web/index.html",
        "capstan/sim/assets/bowl.obj",
        "capstan/bench/data/robocode.jsonl",
    ):
        assert needed in files, needed
    shipped_dev = [
        f for f in files if "cassettes" in f or "/results/" in f or f.endswith(".jsonl") and "data/" not in f
    ]
    assert not shipped_dev, shipped_dev


def test_the_cli_entry_point_names_the_package(installed):
    assert "capstan.service.cli:main" in installed["entry_points"]
