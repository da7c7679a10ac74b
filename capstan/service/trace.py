"""Assemble the trace document (docs/CONTRACTS.md "Trace") from a stored run row and its events."""

from __future__ import annotations


def media_links(run_id: str, frames: int, gif: bool, mp4: bool, rehearsals: list | None = None) -> dict:
    return {
        "frames": [f"/v1/runs/{run_id}/frames/{i}.png" for i in range(frames)],
        "gif": f"/v1/runs/{run_id}/video.gif" if gif else None,
        "mp4": f"/v1/runs/{run_id}/video.mp4" if mp4 else None,
        "rehearsals": rehearsals or [],
    }


def assemble(row: dict, events: list[dict]) -> dict:
    run_id = row["id"]
    attempts: dict[int, dict] = {}
    llm_calls, primitive_calls, nested_calls, said = [], [], [], []
    code = row.get("code")
    frames = 0
    rehearsals = []  # the videos of rehearsals on a twin, next to the run's own
    approval: dict | None = None  # the latest program put to an operator, and the decision
    for ev in events:
        kind, data = ev["type"], ev["data"]
        if kind == "llm_call":
            llm_calls.append(data)
        elif kind == "code":
            n = int(data.get("attempt", len(attempts) + 1))
            attempts.setdefault(n, {"attempt": n}).update(
                code=data.get("code"), functions=data.get("functions")
            )
            code = data.get("code", code)
        elif kind == "attempt":
            n = int(data.get("attempt", len(attempts) + 1))
            attempts.setdefault(n, {"attempt": n}).update(ok=data.get("ok"), error=data.get("error"))
        elif kind == "candidate":  # a program rehearsed in a dry run, and how it went
            n = int(data.get("attempt", len(attempts) + 1))
            candidate = {k: v for k, v in data.items() if k != "attempt"}
            attempts.setdefault(n, {"attempt": n}).setdefault("candidates", []).append(candidate)
            if isinstance(data.get("video"), dict):
                rehearsals.append(
                    {
                        "attempt": n,
                        "index": data.get("index"),
                        "seconds": data.get("seconds"),
                        "rejected": data.get("rejected"),
                        **data["video"],
                    }
                )
        elif kind == "selection":
            n = int(data.get("attempt", len(attempts) + 1))
            attempts.setdefault(n, {"attempt": n})["selection"] = {
                k: v for k, v in data.items() if k != "attempt"
            }
        elif kind == "approval":  # a program waiting for an operator before it moves the robot
            approval = {
                "attempt": data.get("attempt"),
                "code": data.get("code", ""),
                "dry_runs": data.get("dry_runs", []),
                "requested_at": ev["t"],
                "decision": None,
            }
        elif kind == "decision":
            n = int(data.get("attempt", len(attempts) + 1))
            decision = {k: v for k, v in data.items() if k != "attempt"}
            attempts.setdefault(n, {"attempt": n})["approval"] = decision
            if approval is not None:
                approval["decision"] = decision
        elif kind == "primitive_call":
            primitive_calls.append(data)
        elif kind == "nested_lmp":
            nested_calls.append(data)
        elif kind == "say":
            said.append(data.get("text", ""))
        elif kind == "frame":
            frames = max(frames, int(data.get("index", 0)) + 1)
    media = row.get("media") or {}
    timings = dict(row.get("timings") or {})
    timings.setdefault("queued_at", row.get("created_at"))
    timings.setdefault("llm_s", round(sum(float(c.get("latency_s") or 0.0) for c in llm_calls), 4))
    if timings.get("engine_s") is not None:  # time spent generating, checking and executing code
        timings.setdefault("exec_s", round(max(0.0, timings["engine_s"] - timings["llm_s"]), 4))
    return {
        "id": run_id,
        "session_id": row["session_id"],
        "status": row["status"],
        "kind": row["kind"],
        "command": row.get("command"),
        "code": code,
        "attempts": [attempts[k] for k in sorted(attempts)],
        "llm_calls": llm_calls,
        "primitive_calls": primitive_calls,
        "nested_lmp_calls": nested_calls,
        "said": said,
        "error": row.get("error"),
        "state_before": row.get("state_before"),
        "state_after": row.get("state_after"),
        "media": media_links(run_id, frames, bool(media.get("gif")), bool(media.get("mp4")), rehearsals),
        "timings": timings,
        "scene": row.get("scene"),
        "approval": approval,
    }


def summary(row: dict) -> dict:
    """The short form used in run lists."""
    timings = row.get("timings") or {}
    return {
        "id": row["id"],
        "session_id": row["session_id"],
        "kind": row["kind"],
        "status": row["status"],
        "command": row.get("command"),
        "created_at": row.get("created_at"),
        "ended_at": timings.get("ended_at"),
        "error": row.get("error"),
    }
