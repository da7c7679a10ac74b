"""Durable trace storage: one small interface over SQLite (WAL, the default) or PostgreSQL.

The tables and every statement are written once, in SQLAlchemy Core; the two databases differ
only in how a connection is made. A run is one row (id, session, kind, status, a JSON document
with everything else) plus its events, appended as they happen so that a crash loses nothing
already written. The full trace (docs/CONTRACTS.md "Trace") is assembled from the two by
`capstan.service.trace.assemble`. Live sessions are kept too (one JSON document each, rewritten
after every run), so a restarted service brings them back.
"""

from __future__ import annotations

import abc
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from capstan.service.config import ConfigError

UNFINISHED = ("queued", "running", "awaiting_approval")


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
    def list_runs(
        self, session_id: str | None = None, limit: int = 50, before: str | None = None
    ) -> list[dict]:
        """Newest first (ties by id); with `before`, those listed after that run. Same shape as get_run."""

    @abc.abstractmethod
    def mark_unfinished(self, status: str = "interrupted") -> list[str]:
        """Mark every unfinished run (UNFINISHED) as `status` (used at start-up); returns their ids."""

    @abc.abstractmethod
    def save_session(self, session_id: str, doc: dict) -> None:
        """Insert or replace a live session's document (app.sessions.Session.to_doc)."""

    @abc.abstractmethod
    def delete_session(self, session_id: str) -> None: ...

    @abc.abstractmethod
    def live_sessions(self) -> list[dict]:
        """Every saved session document, oldest first."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the database connections."""


# The schema is the one existing trace databases have (tests/service/test_service_store_old_format.py
# keeps its CREATE statements): TEXT documents and REAL times on SQLite, JSONB documents and DOUBLE
# PRECISION times on PostgreSQL, created IF NOT EXISTS, so those databases open as they are. The
# text ids are not declared NOT NULL: PostgreSQL implies it for a primary key, SQLite does not
# (and never gets a NULL id from this store).
_TIME = sa.Double().with_variant(sa.REAL(), "sqlite")


class _Json(sa.TypeDecorator):
    """A JSON document: JSONB on PostgreSQL, its text in a TEXT column on SQLite. JSONB cannot hold
    the character NUL, which a command or a program's say() may carry: there it is stored as U+FFFD,
    as the sandbox already reports it in error messages, rather than losing the whole document."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(postgresql.JSONB() if dialect.name == "postgresql" else sa.Text())

    def process_bind_param(self, value, dialect):
        return _without_nul(value) if dialect.name == "postgresql" else json.dumps(value)

    def process_result_value(self, value, dialect):
        return value if dialect.name == "postgresql" or value is None else json.loads(value)


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_nul(v) for v in value]
    return value


_META = sa.MetaData()
_RUNS = sa.Table(
    "runs",
    _META,
    sa.Column("id", sa.Text, primary_key=True, nullable=True),
    sa.Column("session_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created_at", _TIME, nullable=False),
    sa.Column("doc", _Json, nullable=False),
    sa.Index("runs_session", "session_id", "created_at"),
    sa.Index("runs_created", "created_at"),
)
_EVENTS = sa.Table(
    "events",
    _META,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("t", _TIME, nullable=False),
    sa.Column("data", _Json, nullable=False),
)
_SESSIONS = sa.Table(
    "sessions",
    _META,
    sa.Column("id", sa.Text, primary_key=True, nullable=True),
    sa.Column("created_at", _TIME, nullable=False),
    sa.Column("doc", _Json, nullable=False),
)
_INTERRUPTED = {
    "kind": "interrupted",
    "message": "the service stopped while this run was in progress",
    "line": None,
}

# Every statement, built once (SQLAlchemy compiles each once per dialect and caches it). The
# parameters are named after what they carry: a column's own name is kept for its VALUES.
_RUN, _SESSION = sa.bindparam("run"), sa.bindparam("session")
_RUN_ROW = sa.select(
    _RUNS.c.id, _RUNS.c.session_id, _RUNS.c.kind, _RUNS.c.status, _RUNS.c.created_at, _RUNS.c.doc
)
_NEWEST_RUNS = _RUN_ROW.order_by(_RUNS.c.created_at.desc(), _RUNS.c.id.desc()).limit(sa.bindparam("limit"))
_BEFORE_T = sa.select(_RUNS.c.created_at).where(_RUNS.c.id == sa.bindparam("before")).scalar_subquery()
_LISTED_AFTER = sa.or_(  # the runs a listing shows after run `before`: older, or as old with a lower id
    _RUNS.c.created_at < _BEFORE_T,
    sa.and_(_RUNS.c.created_at == _BEFORE_T, _RUNS.c.id < sa.bindparam("before")),
)
_CREATE_RUN = _RUNS.insert()
# update_run writes first, so SQLite holds its write lock and PostgreSQL the row lock through the merge
_SET_STATUS = (
    _RUNS.update()
    .where(_RUNS.c.id == _RUN)
    .values(status=sa.func.coalesce(sa.bindparam("new_status", type_=sa.Text), _RUNS.c.status))
)
_RUN_DOC = sa.select(_RUNS.c.doc).where(_RUNS.c.id == _RUN)
_SET_DOC = _RUNS.update().where(_RUNS.c.id == _RUN).values(doc=sa.bindparam("new_doc", type_=_Json))
_APPEND_EVENT = _EVENTS.insert()
_GET_RUN = _RUN_ROW.where(_RUNS.c.id == _RUN)
_EVENTS_AFTER = (
    sa.select(_EVENTS.c.seq, _EVENTS.c.type, _EVENTS.c.t, _EVENTS.c.data)
    .where(_EVENTS.c.run_id == _RUN, _EVENTS.c.seq > sa.bindparam("after_seq"))
    .order_by(_EVENTS.c.seq)
)
_NEWEST_RUNS_OF = _NEWEST_RUNS.where(_RUNS.c.session_id == _SESSION)
_LISTINGS = {  # (of one session?, after a given run?)
    (False, False): _NEWEST_RUNS,
    (True, False): _NEWEST_RUNS_OF,
    (False, True): _NEWEST_RUNS.where(_LISTED_AFTER),
    (True, True): _NEWEST_RUNS_OF.where(_LISTED_AFTER),
}
_UNFINISHED = sa.select(_RUNS.c.id).where(_RUNS.c.status.in_(UNFINISHED))
_INTERRUPT = (  # only while the run is still unfinished: a run that ended meanwhile keeps its status
    _RUNS.update()
    .where(_RUNS.c.id == _RUN, _RUNS.c.status.in_(UNFINISHED))
    .values(status=sa.bindparam("new_status", type_=sa.Text))
)
_DELETE_SESSION = _SESSIONS.delete().where(_SESSIONS.c.id == _SESSION)
_LIVE_SESSIONS = sa.select(_SESSIONS.c.doc).order_by(_SESSIONS.c.created_at)
_UPSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}  # the two spell an upsert alike


def _save_session(dialect: str) -> sa.Insert:
    insert = _UPSERT[dialect](_SESSIONS)
    return insert.on_conflict_do_update(index_elements=[_SESSIONS.c.id], set_={"doc": insert.excluded.doc})


class SQLStore(TraceStore):
    """The store on a SQLAlchemy engine of a dialect in _UPSERT. Every method is one short
    transaction on a connection from the engine's pool; with `serialize`, one at a time (a lock
    hands the connection from thread to thread at once, where waiting on SQLite's own write lock
    polls with sleeps)."""

    def __init__(self, engine: sa.Engine, serialize: bool = False):
        self._engine = engine
        self._turn = threading.Lock() if serialize else contextlib.nullcontext()
        self._save_session = _save_session(engine.dialect.name)
        with self._opening(), engine.begin() as db:
            for table in _META.sorted_tables:
                db.execute(sa.schema.CreateTable(table, if_not_exists=True))
                for index in sorted(table.indexes, key=lambda i: i.name):
                    db.execute(sa.schema.CreateIndex(index, if_not_exists=True))

    def _opening(self) -> contextlib.AbstractContextManager:
        """Around start-up's reads: what a database that cannot be read becomes (as is, here)."""
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sa.Connection]:
        with self._turn, self._engine.begin() as db:
            yield db

    def _write(self, statement, **params) -> None:
        with self._transaction() as db:
            db.execute(statement, params)

    def _read(self, statement, **params) -> list[sa.Row]:
        with self._turn, self._engine.connect() as db:
            return list(db.execute(statement, params))

    def create_run(self, run_id, session_id, kind, status, doc):
        self._write(
            _CREATE_RUN,
            id=run_id,
            session_id=session_id,
            kind=kind,
            status=status,
            created_at=time.time(),
            doc=doc,
        )

    def update_run(self, run_id, status=None, **doc_fields):
        with self._transaction() as db:
            if db.execute(_SET_STATUS, {"run": run_id, "new_status": status}).rowcount == 0:
                raise KeyError(run_id)
            if doc_fields:
                doc = db.execute(_RUN_DOC, {"run": run_id}).scalar_one()
                db.execute(_SET_DOC, {"run": run_id, "new_doc": {**doc, **doc_fields}})

    def append_event(self, run_id, seq, type_, t, data):
        self._write(_APPEND_EVENT, run_id=run_id, seq=seq, type=type_, t=t, data=data)

    @staticmethod
    def _row(row: sa.Row) -> dict:
        run_id, session_id, kind, status, created_at, doc = row
        return {
            **doc,
            "id": run_id,
            "session_id": session_id,
            "kind": kind,
            "status": status,
            "created_at": created_at,
        }

    def get_run(self, run_id):
        rows = self._read(_GET_RUN, run=run_id)
        return self._row(rows[0]) if rows else None

    def events(self, run_id, after_seq=-1):
        rows = self._read(_EVENTS_AFTER, run=run_id, after_seq=after_seq)
        return [{"seq": s, "type": ty, "t": t, "data": d} for s, ty, t, d in rows]

    def list_runs(self, session_id=None, limit=50, before=None):
        query = _LISTINGS[session_id is not None, before is not None]
        given = {"session": session_id, "before": before}
        return [
            self._row(r)
            for r in self._read(query, limit=limit, **{k: v for k, v in given.items() if v is not None})
        ]

    def mark_unfinished(self, status="interrupted"):
        marked = []
        with self._opening():
            unfinished = self._read(_UNFINISHED)
        for (run_id,) in unfinished:
            with self._transaction() as db:  # status and error together, or neither
                if db.execute(_INTERRUPT, {"run": run_id, "new_status": status}).rowcount == 1:
                    doc = db.execute(_RUN_DOC, {"run": run_id}).scalar_one()
                    db.execute(_SET_DOC, {"run": run_id, "new_doc": {**doc, "error": _INTERRUPTED}})
                    marked.append(run_id)
        return marked

    def save_session(self, session_id, doc):
        self._write(
            self._save_session, id=session_id, created_at=float(doc.get("created_at", time.time())), doc=doc
        )

    def delete_session(self, session_id):
        self._write(_DELETE_SESSION, session=session_id)

    def live_sessions(self):
        with self._opening():
            return [d for (d,) in self._read(_LIVE_SESSIONS)]

    def close(self):
        self._engine.dispose()


class SQLiteStore(SQLStore):
    """SQLite in WAL mode: readers in other processes (`capstan trace`) never block the service's writes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot make the folder of the trace database, {self.path.parent} ({exc.strerror}); "
                "point CAPSTAN_DATA_DIR at a folder this user can write"
            ) from None
        if str(path) == ":memory:":  # each connection would get its own empty database
            raise ConfigError("the SQLite trace store needs a file: an in-memory database would not last")
        engine = sa.create_engine(
            sa.URL.create("sqlite", database=str(self.path)),
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        super().__init__(engine, serialize=True)  # SQLite has one writer at a time anyway

    @contextlib.contextmanager
    def _opening(self) -> Iterator[None]:
        """Start-up's reads: a file that cannot be read as a database (not one, damaged, a folder) is
        a ConfigError that names it, and nothing in it is touched."""
        try:
            yield
        except sa.exc.DatabaseError as exc:
            self._engine.dispose()
            raise ConfigError(
                f"the trace database {self.path} cannot be read ({exc.orig or exc}); restore it from a "
                "backup or move it aside, then start again"
            ) from None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class PostgresStore(SQLStore):
    """PostgreSQL (CAPSTAN_DATABASE_URL=postgresql://...) through psycopg 3 (the postgres extra)."""

    def __init__(self, url: str):
        try:
            target = sa.make_url(url)
        except sa.exc.ArgumentError:
            target = None
        if target is None or target.get_backend_name() not in ("postgresql", "postgres"):
            raise ConfigError("CAPSTAN_DATABASE_URL must be a postgresql:// URL (or unset, for SQLite)")
        if target.drivername in ("postgresql", "postgres"):  # libpq's own schemes; psycopg 3 is the driver
            target = target.set(drivername="postgresql+psycopg")
        try:
            engine = sa.create_engine(target, pool_pre_ping=True)
        except ImportError:
            raise ConfigError(
                "CAPSTAN_DATABASE_URL needs psycopg: pip install 'capstan[postgres]' "
                "(or unset it to use SQLite)"
            ) from None
        try:
            super().__init__(engine)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise ConfigError(f"cannot connect to CAPSTAN_DATABASE_URL: {exc.orig}".strip()) from None


def open_store(settings) -> TraceStore:
    """The store the settings ask for: PostgreSQL when CAPSTAN_DATABASE_URL is set, else SQLite."""
    if settings.database_url:
        return PostgresStore(settings.database_url)
    return SQLiteStore(settings.db_path)
