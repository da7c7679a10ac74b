"""The trace store on PostgreSQL (CAPSTAN_DATABASE_URL=postgresql://...), same interface as SQLiteStore.

Needs the optional dependency: pip install 'capstan[postgres]' (psycopg 3). Run documents and event
data are JSONB; `update_run` merges fields server-side (doc || patch), so concurrent updates of
different fields of one run never lose each other.
"""

from __future__ import annotations

import threading
import time

from capstan.service.store import UNFINISHED, TraceStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    doc JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_session ON runs(session_id, created_at);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created_at);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    t DOUBLE PRECISION NOT NULL,
    data JSONB NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    created_at DOUBLE PRECISION NOT NULL,
    doc JSONB NOT NULL
);
"""
_COLS = "SELECT id, session_id, kind, status, created_at, doc FROM runs"


class PostgresStore(TraceStore):
    def __init__(self, url: str):
        try:
            import psycopg
            from psycopg.types.json import Jsonb
        except ImportError:
            from capstan.service.config import ConfigError

            raise ConfigError("CAPSTAN_DATABASE_URL needs psycopg: pip install 'capstan[postgres]' "
                              "(or unset it to use SQLite)") from None
        self._Jsonb = Jsonb
        try:
            self._db = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            from capstan.service.config import ConfigError

            raise ConfigError(f"cannot connect to CAPSTAN_DATABASE_URL: {exc}".strip()) from None
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute(_SCHEMA)

    def _exec(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            cur = self._db.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def create_run(self, run_id, session_id, kind, status, doc):
        self._exec("INSERT INTO runs(id, session_id, kind, status, created_at, doc) VALUES (%s,%s,%s,%s,%s,%s)",
                   (run_id, session_id, kind, status, time.time(), self._Jsonb(doc)))

    def update_run(self, run_id, status=None, **doc_fields):
        rows = self._exec("UPDATE runs SET doc = doc || %s, status = COALESCE(%s, status) WHERE id=%s RETURNING id",
                          (self._Jsonb(doc_fields), status, run_id))
        if not rows:
            raise KeyError(run_id)

    def append_event(self, run_id, seq, type_, t, data):
        self._exec("INSERT INTO events(run_id, seq, type, t, data) VALUES (%s,%s,%s,%s,%s)",
                   (run_id, seq, type_, t, self._Jsonb(data)))

    @staticmethod
    def _row(row) -> dict:
        run_id, session_id, kind, status, created_at, doc = row
        return {**doc, "id": run_id, "session_id": session_id, "kind": kind, "status": status,
                "created_at": created_at}

    def get_run(self, run_id):
        rows = self._exec(_COLS + " WHERE id=%s", (run_id,))
        return self._row(rows[0]) if rows else None

    def events(self, run_id, after_seq=-1):
        rows = self._exec("SELECT seq, type, t, data FROM events WHERE run_id=%s AND seq>%s ORDER BY seq",
                          (run_id, after_seq))
        return [{"seq": s, "type": ty, "t": t, "data": d} for s, ty, t, d in rows]

    def list_runs(self, session_id=None, limit=50):
        if session_id is None:
            rows = self._exec(_COLS + " ORDER BY created_at DESC LIMIT %s", (limit,))
        else:
            rows = self._exec(_COLS + " WHERE session_id=%s ORDER BY created_at DESC LIMIT %s", (session_id, limit))
        return [self._row(r) for r in rows]

    def mark_unfinished(self, status="interrupted"):
        error = {"error": {"kind": "interrupted", "line": None,
                           "message": "the service stopped while this run was in progress"}}
        rows = self._exec("UPDATE runs SET status=%s, doc = doc || %s WHERE status = ANY(%s) RETURNING id",
                          (status, self._Jsonb(error), list(UNFINISHED)))
        return [r[0] for r in rows]

    def save_session(self, session_id, doc):
        self._exec(
            "INSERT INTO sessions(id, created_at, doc) VALUES (%s,%s,%s) "
            "ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc",
            (session_id, float(doc.get("created_at", time.time())), self._Jsonb(doc)),
        )

    def delete_session(self, session_id):
        self._exec("DELETE FROM sessions WHERE id=%s", (session_id,))

    def live_sessions(self):
        return [d for (d,) in self._exec("SELECT doc FROM sessions ORDER BY created_at")]

    def close(self):
        with self._lock:
            self._db.close()
