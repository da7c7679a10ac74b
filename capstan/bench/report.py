"""Write a suite's results: `<suite>.json` (summary + per-item rows) and `<suite>.md` (tables)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def write_report(out: Path, suite: str, summary: dict, markdown: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{suite}.json", out / f"{suite}.md"
    json_path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown, encoding="utf-8")
    return json_path, md_path


def load_summary(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(
            f"{path}: no such results file (write one with `capstan bench ... --out DIR`)"
        ) from None
    except ValueError as exc:
        raise SystemExit(f"{path}: not a JSON results file ({exc})") from None
    if not isinstance(data, dict) or "suite" not in data:
        raise SystemExit(f"{path}: not a capstan bench summary (no 'suite' key)")
    return data
