"""Trace databases made before the store's statements were shared still open, read and take writes.

The schemas below are the CREATE statements of that older code, kept here as the definition of
the format on disk; the rows are inserted the way it inserted them.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from capstan.service.config import ConfigError
from capstan.service.store import PostgresStore, SQLiteStore

OLD_SQLITE_SCHEMA = """
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

OLD_POSTGRES_SCHEMA = """
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

RUN_DOC = {"command": "stack", "timings": {"queued_at": 1.0}}
EVENT = {"text": "hi"}
SESSION = {"id": "s1", "created_at": 5.0, "robot": "sim", "turns": []}


def old_sqlite(path) -> None:
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(OLD_SQLITE_SCHEMA)
    db.execute(
        "INSERT INTO runs(id, session_id, kind, status, created_at, doc) VALUES (?,?,?,?,?,?)",
        ("r1", "s1", "command", "running", 10.0, json.dumps(RUN_DOC)),
    )
    db.execute(
        "INSERT INTO events(run_id, seq, type, t, data) VALUES (?,?,?,?,?)",
        ("r1", 0, "say", 11.0, json.dumps(EVENT)),
    )
    db.execute("INSERT INTO sessions(id, created_at, doc) VALUES (?,?,?)", ("s1", 5.0, json.dumps(SESSION)))
    db.close()


def old_postgres(url) -> None:
    import psycopg
    from psycopg.types.json import Jsonb

    with psycopg.connect(url, autocommit=True) as db:
        db.execute(OLD_POSTGRES_SCHEMA)
        db.execute(
            "INSERT INTO runs(id, session_id, kind, status, created_at, doc) VALUES (%s,%s,%s,%s,%s,%s)",
            ("r1", "s1", "command", "running", 10.0, Jsonb(RUN_DOC)),
        )
        db.execute(
            "INSERT INTO events(run_id, seq, type, t, data) VALUES (%s,%s,%s,%s,%s)",
            ("r1", 0, "say", 11.0, Jsonb(EVENT)),
        )
        db.execute("INSERT INTO sessions(id, created_at, doc) VALUES (%s,%s,%s)", ("s1", 5.0, Jsonb(SESSION)))


@pytest.fixture(params=["sqlite", "postgres"])
def old_database(request, tmp_path):
    """(a function that opens the new store on it, a function that reads run r1's doc the old way)."""
    if request.param == "sqlite":
        path = tmp_path / "old.db"
        old_sqlite(path)

        def read_doc_the_old_way():
            with sqlite3.connect(str(path)) as db:
                return json.loads(db.execute("SELECT doc FROM runs WHERE id=?", ("r1",)).fetchone()[0])

        return lambda: SQLiteStore(path), read_doc_the_old_way
    import psycopg

    url = request.getfixturevalue("postgres_url")
    old_postgres(url)

    def read_doc_the_old_way_pg():
        with psycopg.connect(url) as db:
            return db.execute("SELECT doc FROM runs WHERE id=%s", ("r1",)).fetchone()[0]

    return lambda: PostgresStore(url), read_doc_the_old_way_pg


def test_an_old_database_opens_reads_and_takes_writes(old_database):
    open_store, read_doc_the_old_way = old_database
    store = open_store()
    run = store.get_run("r1")
    assert run == {
        **RUN_DOC,
        "id": "r1",
        "session_id": "s1",
        "kind": "command",
        "status": "running",
        "created_at": 10.0,
    }
    assert store.events("r1") == [{"seq": 0, "type": "say", "t": 11.0, "data": EVENT}]
    assert store.list_runs(session_id="s1") == [run]
    assert store.live_sessions() == [SESSION]

    assert store.mark_unfinished() == ["r1"]
    store.append_event("r1", 1, "end", 12.0, {"status": "interrupted"})
    store.save_session("s1", {**SESSION, "turns": [{"command": "x"}]})
    store.close()

    store = open_store()
    assert store.get_run("r1")["status"] == "interrupted"
    assert [e["seq"] for e in store.events("r1")] == [0, 1]
    assert store.live_sessions()[0]["turns"] == [{"command": "x"}]
    store.close()
    # and what the new store wrote is still in the old format
    assert read_doc_the_old_way()["error"]["kind"] == "interrupted"


def _sqlite_schema(path) -> dict:
    with sqlite3.connect(str(path)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        names = db.execute("SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL")
        indexes = {r[0]: [c[2] for c in db.execute(f"PRAGMA index_info({r[0]})")] for r in names}
        return {"indexes": indexes, **{t: db.execute(f"PRAGMA table_info({t})").fetchall() for t in tables}}


def test_a_new_sqlite_database_has_the_old_schema(tmp_path):
    old_sqlite(tmp_path / "old.db")
    SQLiteStore(tmp_path / "new.db").close()
    assert _sqlite_schema(tmp_path / "new.db") == _sqlite_schema(tmp_path / "old.db")


def test_a_new_postgres_database_has_the_old_schema(postgres_server):
    import uuid

    import psycopg

    names = {which: f"{which}_{uuid.uuid4().hex[:8]}" for which in ("old", "new")}
    with psycopg.connect(postgres_server.format(db="postgres"), autocommit=True) as admin:
        for name in names.values():
            admin.execute(f"CREATE DATABASE {name}")
    urls = {which: postgres_server.format(db=name) for which, name in names.items()}
    old_postgres(urls["old"])
    PostgresStore(urls["new"]).close()

    def schema(url):
        with psycopg.connect(url) as db:
            columns = db.execute(
                "SELECT table_name, column_name, ordinal_position, data_type, is_nullable "
                "FROM information_schema.columns WHERE table_schema='public' ORDER BY 1, 3"
            ).fetchall()
            indexes = db.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname='public' ORDER BY 1"
            ).fetchall()
            return columns, indexes

    assert schema(urls["new"]) == schema(urls["old"])


def test_an_unreachable_postgres_is_a_clear_error():
    pytest.importorskip("psycopg")
    with pytest.raises(ConfigError, match="cannot connect to CAPSTAN_DATABASE_URL"):
        PostgresStore("postgresql://capstan@127.0.0.1:1/capstan?connect_timeout=5")


@pytest.mark.parametrize("url", ["mysql://x@y/z", "not a url"])
def test_a_database_url_that_is_not_postgresql_is_a_clear_error(url):
    with pytest.raises(ConfigError, match="must be a postgresql:// URL"):
        PostgresStore(url)
