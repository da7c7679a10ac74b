"""Durable trace storage: one small interface, a SQLite implementation (WAL).

A run is one row (id, session, kind, status, a JSON document with everything else) plus its
events, appended as they happen so that a crash loses nothing already written. The full trace
(docs/CONTRACTS.md "Trace") is assembled from the two by `app.trace.assemble`. Live sessions
are kept too (one JSON document each, rewritten after every run), so a restarted service
brings them back.
"""

from __future__ import annotations

import abc
import json
import sqlite3
import threading
import time
from pathlib import Path

UNFINISHED = ("queued", "running")


class TraceStore(abc.ABC):
    """Thread-safe store of runs and their events."""

    @abc.abstractmethod
    def create_run(self, run_id: str, session_id: str, kind: str, status: str, doc: dict) -> None: ...

    @abc.abstractmethod
    def update_run(self, run_id: str, status: str | None = None, **doc_fields) -> None:
        """Set the status and/or merge `doc_fields` into the run document."""

    @abc.abstractmethod
    def append_event(self, run_id: str, seq: int, type_: str, t: float, data: dict) -> None: ...

    @abc.abstractmethod
    def get_run(self, run_id: str) -> dict | None:
        """{"id", "session_id", "kind", "status", "created_at", **doc} or None."""

    @abc.abstractmethod
    def events(self, run_id: str, after_seq: int = -1) -> list[dict]:
        """[{"seq", "type", "t", "data"}] in order, those with seq > after_seq."""

    @abc.abstractmethod
    def list_runs(self, session_id: str | None = None, limit: int = 50) -> list[dict]:
        """Newest first; same shape as get_run."""

    @abc.abstractmethod
    def mark_unfinished(self, status: str = "interrupted") -> list[str]:
        """Mark every queued/running run as `status` (used at start-up); returns their ids."""

    @abc.abstractmethod
    def save_session(self, session_id: str, doc: dict) -> None:
        """Insert or replace a live session's document (app.sessions.Session.to_doc)."""

    @abc.abstractmethod
    def delete_session(self, session_id: str) -> None: ...

    @abc.abstractmethod
    def live_sessions(self) -> list[dict]:
        """Every saved session document, oldest first."""

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_session ON runs(session_id, created_at);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created_at);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    t REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    doc TEXT NOT NULL
);
"""


class SQLiteStore(TraceStore):
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def _exec(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def create_run(self, run_id, session_id, kind, status, doc):
        self._exec(
            "INSERT INTO runs(id, session_id, kind, status, created_at, doc) VALUES (?,?,?,?,?,?)",
            (run_id, session_id, kind, status, time.time(), json.dumps(doc)),
        )

    def update_run(self, run_id, status=None, **doc_fields):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT doc FROM runs WHERE id=?", (run_id,)).fetchone()
                if row is None:
                    raise KeyError(run_id)
                doc = json.loads(row[0])
                doc.update(doc_fields)
                if status is None:
                    self._db.execute("UPDATE runs SET doc=? WHERE id=?", (json.dumps(doc), run_id))
                else:
                    self._db.execute(
                        "UPDATE runs SET doc=?, status=? WHERE id=?", (json.dumps(doc), status, run_id)
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def append_event(self, run_id, seq, type_, t, data):
        self._exec(
            "INSERT INTO events(run_id, seq, type, t, data) VALUES (?,?,?,?,?)",
            (run_id, seq, type_, t, json.dumps(data)),
        )

    @staticmethod
    def _row(row) -> dict:
        run_id, session_id, kind, status, created_at, doc = row
        return {**json.loads(doc), "id": run_id, "session_id": session_id, "kind": kind,
                "status": status, "created_at": created_at}

    def get_run(self, run_id):
        rows = self._exec("SELECT id, session_id, kind, status, created_at, doc FROM runs WHERE id=?", (run_id,))
        return self._row(rows[0]) if rows else None

    def events(self, run_id, after_seq=-1):
        rows = self._exec(
            "SELECT seq, type, t, data FROM events WHERE run_id=? AND seq>? ORDER BY seq", (run_id, after_seq)
        )
        return [{"seq": s, "type": ty, "t": t, "data": json.loads(d)} for s, ty, t, d in rows]

    def list_runs(self, session_id=None, limit=50):
        cols = "SELECT id, session_id, kind, status, created_at, doc FROM runs"
        if session_id is None:
            rows = self._exec(cols + " ORDER BY created_at DESC LIMIT ?", (limit,))
        else:
            rows = self._exec(cols + " WHERE session_id=? ORDER BY created_at DESC LIMIT ?", (session_id, limit))
        return [self._row(r) for r in rows]

    def mark_unfinished(self, status="interrupted"):
        marks = ",".join("?" * len(UNFINISHED))
        ids = [r[0] for r in self._exec(f"SELECT id FROM runs WHERE status IN ({marks})", UNFINISHED)]
        for run_id in ids:
            self.update_run(run_id, status=status, error={
                "kind": "interrupted", "message": "the service stopped while this run was in progress",
                "line": None})
        return ids

    def save_session(self, session_id, doc):
        self._exec(
            "INSERT INTO sessions(id, created_at, doc) VALUES (?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET doc=excluded.doc",
            (session_id, float(doc.get("created_at", time.time())), json.dumps(doc)),
        )

    def delete_session(self, session_id):
        self._exec("DELETE FROM sessions WHERE id=?", (session_id,))

    def live_sessions(self):
        return [json.loads(d) for (d,) in self._exec("SELECT doc FROM sessions ORDER BY created_at")]

    def close(self):
        with self._lock:
            self._db.close()


def open_store(settings) -> TraceStore:
    """The store the settings ask for: PostgreSQL when CAPSTAN_DATABASE_URL is set, else SQLite."""
    if settings.database_url:
        from capstan.service.store_pg import PostgresStore

        return PostgresStore(settings.database_url)
    return SQLiteStore(settings.db_path)
