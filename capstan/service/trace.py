"""Assemble the trace document (docs/CONTRACTS.md "Trace") from a stored run row and its events."""

from __future__ import annotations


def media_links(run_id: str, frames: int, gif: bool, mp4: bool, rehearsals: list | None = None) -> dict:
    return {
        "frames": [f"/v1/runs/{run_id}/frames/{i}.png" for i in range(frames)],
        "gif": f"/v1/runs/{run_id}/video.gif" if gif else None,
        "mp4": f"/v1/runs/{run_id}/video.mp4" if mp4 else None,
        "rehearsals": rehearsals or [],
    }


class _Events:
    """A run's events folded into the trace's lists, one handler per event type."""

    def __init__(self, code: str | None):
        self.attempts: dict[int, dict] = {}
        self.llm_calls: list[dict] = []
        self.primitive_calls: list[dict] = []
        self.nested_calls: list[dict] = []
        self.said: list[str] = []
        self.code = code
        self.frames = 0
        self.rehearsals: list[dict] = []  # the videos of rehearsals on a twin, next to the run's own
        self.approval: dict | None = None  # the latest program put to an operator, and the decision

    def add(self, ev: dict) -> None:
        handler = getattr(self, "_on_" + str(ev["type"]), None)
        if handler is not None:
            handler(ev["data"], ev)

    def _attempt(self, data: dict) -> tuple[int, dict]:
        n = int(data.get("attempt", len(self.attempts) + 1))
        return n, self.attempts.setdefault(n, {"attempt": n})

    def _on_llm_call(self, data: dict, _ev: dict) -> None:
        self.llm_calls.append(data)

    def _on_code(self, data: dict, _ev: dict) -> None:
        self._attempt(data)[1].update(code=data.get("code"), functions=data.get("functions"))
        self.code = data.get("code", self.code)

    def _on_attempt(self, data: dict, _ev: dict) -> None:
        self._attempt(data)[1].update(ok=data.get("ok"), error=data.get("error"))

    def _on_candidate(self, data: dict, _ev: dict) -> None:  # a program rehearsed in a dry run
        n, attempt = self._attempt(data)
        attempt.setdefault("candidates", []).append({k: v for k, v in data.items() if k != "attempt"})
        if isinstance(data.get("video"), dict):
            keys = ("index", "seconds", "rejected")
            self.rehearsals.append({"attempt": n, **{k: data.get(k) for k in keys}, **data["video"]})

    def _on_selection(self, data: dict, _ev: dict) -> None:
        self._attempt(data)[1]["selection"] = {k: v for k, v in data.items() if k != "attempt"}

    def _on_approval(self, data: dict, ev: dict) -> None:  # a program waiting for an operator
        self.approval = {
            "attempt": data.get("attempt"),
            "code": data.get("code", ""),
            "dry_runs": data.get("dry_runs", []),
            "requested_at": ev["t"],
            "decision": None,
        }

    def _on_decision(self, data: dict, _ev: dict) -> None:
        decision = {k: v for k, v in data.items() if k != "attempt"}
        self._attempt(data)[1]["approval"] = decision
        if self.approval is not None:
            self.approval["decision"] = decision

    def _on_primitive_call(self, data: dict, _ev: dict) -> None:
        self.primitive_calls.append(data)

    def _on_nested_lmp(self, data: dict, _ev: dict) -> None:
        self.nested_calls.append(data)

    def _on_say(self, data: dict, _ev: dict) -> None:
        self.said.append(data.get("text", ""))

    def _on_frame(self, data: dict, _ev: dict) -> None:
        self.frames = max(self.frames, int(data.get("index", 0)) + 1)


def assemble(row: dict, events: list[dict]) -> dict:
    run_id = row["id"]
    folded = _Events(row.get("code"))
    for ev in events:
        folded.add(ev)
    llm_calls = folded.llm_calls
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
        "code": folded.code,
        "attempts": [folded.attempts[k] for k in sorted(folded.attempts)],
        "llm_calls": llm_calls,
        "primitive_calls": folded.primitive_calls,
        "nested_lmp_calls": folded.nested_calls,
        "said": folded.said,
        "error": row.get("error"),
        "state_before": row.get("state_before"),
        "state_after": row.get("state_after"),
        "media": media_links(
            run_id, folded.frames, bool(media.get("gif")), bool(media.get("mp4")), folded.rehearsals
        ),
        "timings": timings,
        "scene": row.get("scene"),
        "approval": folded.approval,
        "events_dropped": int(row.get("events_dropped") or 0),
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
