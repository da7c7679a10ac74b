"""The architecture is a contract the tools check, not a convention: `lint-imports` with the
contracts in pyproject.toml (one-way layers, lmp free of the sandbox and the simulator, LLM
providers free of everything else, engines assembled only by the service)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    env = {"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(root)}
    return subprocess.run([lint, "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300,
                          check=False, env=env)  # fmt: skip


def test_the_import_contracts_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "5 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("capstan/primitives/scratch.py", "import capstan.service.api", "One-way layers"),
        ("capstan/lmp/scratch.py", "from capstan.sandbox import policy", "lmp imports neither"),
        ("capstan/llm/scratch.py", "import capstan.primitives.errors", "LLM providers know nothing"),
        ("capstan/bench/scratch.py", "from capstan.lmp.engine import Engine", "Only the service assembles"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, line, contract):
    shutil.copytree(ROOT / "capstan", tmp_path / "capstan", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / module).write_text(f'"""A scratch module with one forbidden import."""\n\n{line}\n')
    done = lint_imports(tmp_path)
    assert done.returncode != 0, done.stdout[-3000:]
    verdict = re.search(re.escape(contract) + r".*?(KEPT|BROKEN)", " ".join(done.stdout.split()))
    assert verdict and verdict.group(1) == "BROKEN", done.stdout[-3000:]
