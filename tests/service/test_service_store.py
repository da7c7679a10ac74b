"""The trace stores (SQLite, and PostgreSQL on a throwaway local cluster) and trace assembly."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from capstan.service.store import PostgresStore, SQLiteStore
from capstan.service.trace import assemble, summary


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request, tmp_path):
    """A function that opens (or reopens) one store of the given kind."""
    if request.param == "sqlite":
        return lambda: SQLiteStore(tmp_path / "t.db")
    url = request.getfixturevalue("postgres_url")
    return lambda: PostgresStore(url)


def test_runs_and_events_survive_reopen(open_store):
    store = open_store()
    store.create_run("a1", "s1", "command", "queued", {"command": "stack", "timings": {"queued_at": 1.0}})
    store.update_run("a1", status="running", state_before={"objects": {}})
    store.append_event("a1", 0, "code", 1.0, {"attempt": 1, "code": "say('hi')", "functions": {}})
    store.append_event("a1", 1, "primitive_call", 1.1, {"name": "say", "args": ["hi"], "result": None})
    store.append_event("a1", 2, "say", 1.2, {"text": "hi"})
    store.append_event("a1", 3, "attempt", 1.3, {"attempt": 1, "ok": True, "error": None})
    store.append_event("a1", 4, "frame", 1.4, {"index": 2})
    store.update_run("a1", status="succeeded", media={"gif": True, "mp4": False})
    store.close()

    store = open_store()
    row = store.get_run("a1")
    assert (
        row["status"] == "succeeded" and row["command"] == "stack" and row["state_before"] == {"objects": {}}
    )
    assert [e["seq"] for e in store.events("a1", after_seq=1)] == [2, 3, 4]
    trace = assemble(row, store.events("a1"))
    assert trace["code"] == "say('hi')"
    assert trace["attempts"] == [
        {"attempt": 1, "code": "say('hi')", "functions": {}, "ok": True, "error": None}
    ]
    assert trace["said"] == ["hi"] and trace["primitive_calls"][0]["name"] == "say"
    assert trace["media"]["frames"] == [f"/v1/runs/a1/frames/{i}.png" for i in range(3)]
    assert trace["media"]["gif"] == "/v1/runs/a1/video.gif" and trace["media"]["mp4"] is None
    assert summary(row)["status"] == "succeeded"
    store.close()


def test_sqlite_uses_wal(tmp_path):
    SQLiteStore(tmp_path / "t.db").close()
    # WAL mode: readers in other processes (capstan trace) don't block the service's writes
    assert sqlite3.connect(tmp_path / "t.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_in_memory_sqlite_store_is_refused_with_a_clear_error():
    from capstan.service.config import ConfigError

    with pytest.raises(ConfigError, match="needs a file"):
        SQLiteStore(":memory:")


def test_mark_unfinished_and_listing(open_store, monkeypatch):
    import capstan.service.store as store_module

    store = open_store()
    for i, status in enumerate(["succeeded", "running", "queued", "failed"]):
        store.create_run(f"r{i}", "s1" if i < 2 else "s2", "program", status, {})
        time.sleep(0.002)  # distinct creation times for the ordering check
    assert sorted(store.mark_unfinished()) == ["r1", "r2"]
    assert store.get_run("r1")["status"] == "interrupted"
    assert store.get_run("r1")["error"]["kind"] == "interrupted"
    assert store.get_run("r0")["status"] == "succeeded"
    assert [r["id"] for r in store.list_runs(session_id="s1")] == ["r1", "r0"]
    assert len(store.list_runs(limit=3)) == 3
    assert [r["id"] for r in store.list_runs(limit=2, before="r2")] == ["r1", "r0"]
    assert [r["id"] for r in store.list_runs(session_id="s2", before="r3")] == ["r2"]
    with monkeypatch.context() as same_instant:  # created in one instant: the id decides, none skipped
        same_instant.setattr(store_module.time, "time", lambda: 100.0)
        for i in range(3):
            store.create_run(f"t{i}", "s3", "program", "succeeded", {})
    assert [r["id"] for r in store.list_runs(session_id="s3", limit=1, before="t2")] == ["t1"]
    assert store.get_run("nope") is None
    store.close()


def test_concurrent_writers(open_store):
    store = open_store()
    store.create_run("r", "s", "program", "running", {})

    def write(base):
        for i in range(50):
            store.append_event("r", base + i, "say", 0.0, {"text": str(base + i)})
            store.update_run("r", **{f"k{base}": i})

    threads = [threading.Thread(target=write, args=(b,)) for b in (0, 100, 200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.events("r")) == 150
    row = store.get_run("r")
    assert (row["k0"], row["k100"], row["k200"]) == (49, 49, 49)
    store.close()


def test_sessions_are_saved_replaced_listed_and_deleted(open_store):
    store = open_store()
    store.save_session("s1", {"id": "s1", "created_at": 2.0, "robot": "sim", "turns": []})
    store.save_session("s0", {"id": "s0", "created_at": 1.0, "robot": "sim", "turns": []})
    store.save_session("s1", {"id": "s1", "created_at": 2.0, "robot": "sim", "turns": [{"command": "x"}]})
    store.close()
    store = open_store()
    docs = store.live_sessions()
    assert [d["id"] for d in docs] == ["s0", "s1"]  # oldest first
    assert docs[1]["turns"] == [{"command": "x"}]  # the later save replaced the earlier
    store.delete_session("s0")
    store.delete_session("missing")  # deleting twice or never saved is fine
    assert [d["id"] for d in store.live_sessions()] == ["s1"]
    store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_nul_character_is_stored_not_lost(kind, request, tmp_path):
    """JSONB cannot hold NUL: PostgreSQL keeps the document with U+FFFD in its place, SQLite as it is."""
    if kind == "sqlite":
        store = SQLiteStore(tmp_path / "t.db")
    else:
        store = PostgresStore(request.getfixturevalue("postgres_url"))
    try:
        store.create_run("n1", "s1", "program", "queued", {"code": "say('a')\n#\x00"})
        store.append_event("n1", 0, "say", 1.0, {"text": "a\x00b"})
        store.update_run("n1", status="succeeded", said=["a\x00b"])
        kept = "\x00" if kind == "sqlite" else "\ufffd"
        assert store.get_run("n1")["code"] == f"say('a')\n#{kept}"
        assert store.get_run("n1")["said"] == [f"a{kept}b"]
        assert store.events("n1")[0]["data"] == {"text": f"a{kept}b"}
    finally:
        store.close()


@pytest.mark.parametrize("damage", ["not a database", "half of one", "a folder"])
def test_a_trace_database_that_cannot_be_read_is_a_clear_error_and_left_as_it_is(tmp_path, damage):
    from capstan.service.config import ConfigError

    path = tmp_path / "capstan.db"
    if damage == "a folder":
        path.mkdir()
    else:
        good = SQLiteStore(path)
        good.create_run("r1", "s1", "program", "succeeded", {"code": "say('kept')"})
        good.close()
        whole = path.read_bytes()
        path.write_bytes(b"not a database at all " * 400 if damage == "not a database" else whole[:4096])
    before = path.read_bytes() if path.is_file() else None
    with pytest.raises(ConfigError, match=r"database .*capstan\.db cannot be read .*move it aside"):
        store = SQLiteStore(path)
        store.mark_unfinished()
        store.live_sessions()
    assert (path.read_bytes() if path.is_file() else None) == before
