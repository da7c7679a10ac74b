"""The seams' types are a contract the tools check: pyright in standard mode over the packages and
files [tool.pyright] in pyproject.toml names, with no errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pyright() -> str:
    beside = Path(sys.executable).with_name("pyright")
    return str(beside) if beside.exists() else (shutil.which("pyright") or "pyright")


def test_pyright_finds_no_type_errors():
    done = subprocess.run(
        [_pyright(), "--outputjson", "--pythonpath", sys.executable],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(done.stdout)
    errors = [
        f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']} ({d.get('rule', '')})"
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]
    assert report["summary"]["errorCount"] == 0, "\n".join(errors[:50]) + done.stderr[-2000:]
    assert report["summary"]["filesAnalyzed"] >= 50, "pyright checked fewer files than [tool.pyright] names"


def test_the_http_contract_names_every_run_status():
    from typing import get_args

    from capstan.primitives.outcome import RunStatus
    from capstan.service import schemas

    assert list(get_args(schemas.RunStatus)) == [s.value for s in RunStatus]
