"""Service metrics in the Prometheus text exposition format (version 0.0.4), written by hand."""

from __future__ import annotations

import threading

BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.runs_by_status: dict[str, int] = {}
        self.duration_counts = [0] * (len(BUCKETS) + 1)
        self.duration_sum = 0.0
        self.duration_count = 0
        self.tokens = {"prompt": 0, "completion": 0}
        self.llm_calls = 0
        self.rejected = {"queue_full": 0, "sessions_full": 0}
        self.prefills = {"read": 0, "skipped": 0}

    def run_finished(self, status: str, duration_s: float) -> None:
        with self._lock:
            self.runs_by_status[status] = self.runs_by_status.get(status, 0) + 1
            self.duration_sum += duration_s
            self.duration_count += 1
            for i, le in enumerate(BUCKETS):
                if duration_s <= le:
                    self.duration_counts[i] += 1
                    break
            else:
                self.duration_counts[-1] += 1

    def llm_call(self, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            self.llm_calls += 1
            self.tokens["prompt"] += int(prompt_tokens or 0)
            self.tokens["completion"] += int(completion_tokens or 0)

    def prefill(self, read: bool) -> None:
        with self._lock:
            self.prefills["read" if read else "skipped"] += 1

    def rejected_request(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def render(self, sessions: int, running: int, queued: int) -> str:
        with self._lock:
            out = [
                "# HELP capstan_runs_total Runs that ended, by final status.",
                "# TYPE capstan_runs_total counter",
            ]
            for status in sorted(self.runs_by_status):
                out.append(f'capstan_runs_total{{status="{status}"}} {self.runs_by_status[status]}')
            out += [
                "# HELP capstan_run_duration_seconds Wall time from start to end of a run.",
                "# TYPE capstan_run_duration_seconds histogram",
            ]
            cumulative = 0
            for le, n in zip(BUCKETS, self.duration_counts, strict=False):
                cumulative += n
                out.append(f'capstan_run_duration_seconds_bucket{{le="{le}"}} {cumulative}')
            out.append(f'capstan_run_duration_seconds_bucket{{le="+Inf"}} {self.duration_count}')
            out.append(f"capstan_run_duration_seconds_sum {self.duration_sum:.6f}")
            out.append(f"capstan_run_duration_seconds_count {self.duration_count}")
            out += [
                "# HELP capstan_llm_tokens_total LLM tokens used, by kind.",
                "# TYPE capstan_llm_tokens_total counter",
            ]
            for kind in sorted(self.tokens):
                out.append(f'capstan_llm_tokens_total{{kind="{kind}"}} {self.tokens[kind]}')
            out += [
                "# HELP capstan_llm_calls_total LLM completions requested.",
                "# TYPE capstan_llm_calls_total counter",
                f"capstan_llm_calls_total {self.llm_calls}",
            ]
            out += [
                "# HELP capstan_prefills_total Sessions whose next prompt the model read ahead while idle, "
                "by outcome (skipped: the model or the service was busy, or nothing to read).",
                "# TYPE capstan_prefills_total counter",
            ]
            for outcome in sorted(self.prefills):
                out.append(f'capstan_prefills_total{{outcome="{outcome}"}} {self.prefills[outcome]}')
            out += [
                "# HELP capstan_rejected_total Requests refused for capacity (HTTP 429), by reason.",
                "# TYPE capstan_rejected_total counter",
            ]
            for reason in sorted(self.rejected):
                out.append(f'capstan_rejected_total{{reason="{reason}"}} {self.rejected[reason]}')
        out += [
            "# HELP capstan_sessions_active Live sessions.",
            "# TYPE capstan_sessions_active gauge",
            f"capstan_sessions_active {sessions}",
            "# HELP capstan_runs_running Runs executing now.",
            "# TYPE capstan_runs_running gauge",
            f"capstan_runs_running {running}",
            "# HELP capstan_queue_depth Runs waiting to start.",
            "# TYPE capstan_queue_depth gauge",
            f"capstan_queue_depth {queued}",
        ]
        return "\n".join(out) + "\n"
