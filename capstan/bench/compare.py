"""`capstan bench compare A.json B.json`: what got better and what regressed from run A to run B.

Works on any suite's summary JSON (`<out>/<suite>.json`): compares the headline numbers (pass@1
per mode, success rate overall and per family) and every item present in both runs by id.
Exit status 0; with `--fail-on-regression`, 1 when any item went from pass to fail.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.add_argument("a", type=Path, metavar="A.json", help="the earlier (baseline) run")
    parser.add_argument("b", type=Path, metavar="B.json", help="the later run")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument(
        "--fail-on-regression", action="store_true", help="exit 1 when an item passed in A and fails in B"
    )


def run(args: argparse.Namespace) -> int:
    from capstan.bench.report import load_summary

    a, b = load_summary(args.a), load_summary(args.b)
    result = compare(a, b)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result, args.a, args.b), end="")
    return 1 if args.fail_on_regression and result["regressed"] else 0


def item_passed(row: dict) -> bool:
    return bool(row.get("passed", row.get("success", False)))


def headline(summary: dict) -> dict[str, float]:
    """The numbers worth a line each: pass@1 per mode, success rate overall and per family."""
    out: dict[str, float] = {}
    for mode in ("flat", "hierarchical", "canonical"):
        if isinstance(summary.get(mode), dict):
            out[f"{mode} pass@1"] = summary[mode]["pass_at_1"]
    if "success_rate" in summary:
        out["success rate"] = summary["success_rate"]
    for fam, data in (summary.get("per_family") or {}).items():
        out[f"{fam} success rate"] = data["success_rate"]
    return out


def compare(a: dict, b: dict) -> dict:
    if a.get("suite") != b.get("suite"):
        raise SystemExit(f"cannot compare a {a.get('suite')!r} run with a {b.get('suite')!r} run")
    items_a = {r["id"]: r for r in a.get("items", [])}
    items_b = {r["id"]: r for r in b.get("items", [])}
    common = [i for i in items_a if i in items_b]
    ha, hb = headline(a), headline(b)
    return {
        "suite": a["suite"],
        "metrics": {
            k: {
                "a": ha.get(k),
                "b": hb.get(k),
                "delta": None if k not in ha or k not in hb else round(hb[k] - ha[k], 4),
            }
            for k in list(ha) + [k for k in hb if k not in ha]
        },
        "improved": [i for i in common if not item_passed(items_a[i]) and item_passed(items_b[i])],
        "regressed": [i for i in common if item_passed(items_a[i]) and not item_passed(items_b[i])],
        "unchanged": sum(item_passed(items_a[i]) == item_passed(items_b[i]) for i in common),
        "only_in_a": [i for i in items_a if i not in items_b],
        "only_in_b": [i for i in items_b if i not in items_a],
        "models": {"a": a.get("model"), "b": b.get("model")},
    }


def render(result: dict, path_a: Path, path_b: Path) -> str:
    lines = [
        f"{result['suite']}: A = {path_a} ({result['models']['a']}), B = {path_b} ({result['models']['b']})"
    ]
    for name, m in result["metrics"].items():
        fa = "n/a" if m["a"] is None else f"{100 * m['a']:.1f}%"
        fb = "n/a" if m["b"] is None else f"{100 * m['b']:.1f}%"
        delta = "" if m["delta"] is None else f"  ({100 * m['delta']:+.1f} points)"
        lines.append(f"  {name:32s} {fa:>7s} -> {fb:>7s}{delta}")
    lines.append(f"improved ({len(result['improved'])}): {', '.join(result['improved']) or '-'}")
    lines.append(f"regressed ({len(result['regressed'])}): {', '.join(result['regressed']) or '-'}")
    lines.append(f"unchanged: {result['unchanged']}")
    if result["only_in_a"] or result["only_in_b"]:
        lines.append(f"only in A: {len(result['only_in_a'])}, only in B: {len(result['only_in_b'])}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="capstan bench compare")
    build_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
