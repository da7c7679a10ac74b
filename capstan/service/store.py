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
import json
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from capstan.service.config import ConfigError

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

    @abc.abstractmethod
    def close(self) -> None:
        """Release the database connections."""


# The column types of databases made before the statements were shared: TEXT documents and
# REAL times on SQLite, JSONB documents and DOUBLE PRECISION times on PostgreSQL. Those
# databases open as they are: the schema is created with IF NOT EXISTS, as it always was. A new
# database gets the same schema, down to the text ids not being declared NOT NULL (PostgreSQL
# implies it for a primary key; SQLite does not, and never gets a NULL id from this store).
_TIME = sa.Double().with_variant(sa.REAL(), "sqlite")


class _Json(sa.TypeDecorator):
    """A JSON document: JSONB on PostgreSQL, its text in a TEXT column on SQLite."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(postgresql.JSONB() if dialect.name == "postgresql" else sa.Text())

    def process_bind_param(self, value, dialect):
        return value if dialect.name == "postgresql" else json.dumps(value)

    def process_result_value(self, value, dialect):
        return value if dialect.name == "postgresql" or value is None else json.loads(value)


_META = sa.MetaData()
_RUNS = sa.Table(
    "runs", _META,
    sa.Column("id", sa.Text, primary_key=True, nullable=True),
    sa.Column("session_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created_at", _TIME, nullable=False),
    sa.Column("doc", _Json, nullable=False),
    sa.Index("runs_session", "session_id", "created_at"),
    sa.Index("runs_created", "created_at"),
)  # fmt: skip
_EVENTS = sa.Table(
    "events", _META,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("t", _TIME, nullable=False),
    sa.Column("data", _Json, nullable=False),
)  # fmt: skip
_SESSIONS = sa.Table(
    "sessions", _META,
    sa.Column("id", sa.Text, primary_key=True, nullable=True),
    sa.Column("created_at", _TIME, nullable=False),
    sa.Column("doc", _Json, nullable=False),
)  # fmt: skip
_RUN_COLUMNS = (_RUNS.c.id, _RUNS.c.session_id, _RUNS.c.kind, _RUNS.c.status, _RUNS.c.created_at, _RUNS.c.doc)
_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}  # the two spell an upsert alike
_INTERRUPTED = {"kind": "interrupted", "message": "the service stopped while this run was in progress",
                "line": None}


class SQLStore(TraceStore):
    """The store on any SQLAlchemy engine of a dialect in _INSERT. Connections come from the engine's
    pool, one per calling thread at a time; every method is one short transaction, and each one
    that writes starts with a write, so SQLite takes its write lock (waiting for it, up to the
    busy timeout) before reading, and PostgreSQL locks the row an update_run merges into."""

    def __init__(self, engine: sa.Engine):
        self._engine = engine
        with engine.begin() as db:
            for table in _META.sorted_tables:
                db.execute(sa.schema.CreateTable(table, if_not_exists=True))
                for index in sorted(table.indexes, key=lambda i: i.name):
                    db.execute(sa.schema.CreateIndex(index, if_not_exists=True))

    def create_run(self, run_id, session_id, kind, status, doc):
        with self._engine.begin() as db:
            db.execute(_RUNS.insert().values(id=run_id, session_id=session_id, kind=kind, status=status,
                                             created_at=time.time(), doc=doc))

    def update_run(self, run_id, status=None, **doc_fields):
        row = _RUNS.c.id == run_id
        with self._engine.begin() as db:
            new_status = _RUNS.c.status if status is None else status
            if db.execute(_RUNS.update().where(row).values(status=new_status)).rowcount == 0:
                raise KeyError(run_id)
            if doc_fields:
                doc = db.execute(sa.select(_RUNS.c.doc).where(row)).scalar_one()
                db.execute(_RUNS.update().where(row).values(doc={**doc, **doc_fields}))

    def append_event(self, run_id, seq, type_, t, data):
        with self._engine.begin() as db:
            db.execute(_EVENTS.insert().values(run_id=run_id, seq=seq, type=type_, t=t, data=data))

    def _read(self, query) -> list[sa.Row]:
        with self._engine.connect() as db:
            return list(db.execute(query))

    @staticmethod
    def _row(row: sa.Row) -> dict:
        run_id, session_id, kind, status, created_at, doc = row
        return {**doc, "id": run_id, "session_id": session_id, "kind": kind, "status": status,
                "created_at": created_at}

    def get_run(self, run_id):
        rows = self._read(sa.select(*_RUN_COLUMNS).where(_RUNS.c.id == run_id))
        return self._row(rows[0]) if rows else None

    def events(self, run_id, after_seq=-1):
        e = _EVENTS.c
        rows = self._read(sa.select(e.seq, e.type, e.t, e.data).where(e.run_id == run_id, e.seq > after_seq)
                          .order_by(e.seq))
        return [{"seq": s, "type": ty, "t": t, "data": d} for s, ty, t, d in rows]

    def list_runs(self, session_id=None, limit=50):
        query = sa.select(*_RUN_COLUMNS).order_by(_RUNS.c.created_at.desc()).limit(limit)
        if session_id is not None:
            query = query.where(_RUNS.c.session_id == session_id)
        return [self._row(r) for r in self._read(query)]

    def mark_unfinished(self, status="interrupted"):
        ids = [r[0] for r in self._read(sa.select(_RUNS.c.id).where(_RUNS.c.status.in_(UNFINISHED)))]
        for run_id in ids:
            self.update_run(run_id, status=status, error=_INTERRUPTED)
        return ids

    def save_session(self, session_id, doc):
        insert = _INSERT[self._engine.dialect.name](_SESSIONS).values(
            id=session_id, created_at=float(doc.get("created_at", time.time())), doc=doc)
        with self._engine.begin() as db:
            db.execute(insert.on_conflict_do_update(index_elements=[_SESSIONS.c.id],
                                                    set_={"doc": insert.excluded.doc}))

    def delete_session(self, session_id):
        with self._engine.begin() as db:
            db.execute(_SESSIONS.delete().where(_SESSIONS.c.id == session_id))

    def live_sessions(self):
        return [d for (d,) in self._read(sa.select(_SESSIONS.c.doc).order_by(_SESSIONS.c.created_at))]

    def close(self):
        self._engine.dispose()


class SQLiteStore(SQLStore):
    """SQLite in WAL mode: readers in other processes (`capstan trace`) never block the service's writes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(sa.URL.create("sqlite", database=str(self.path)),
                                  connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        super().__init__(engine)


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
            raise ConfigError("CAPSTAN_DATABASE_URL needs psycopg: pip install 'capstan[postgres]' "
                              "(or unset it to use SQLite)") from None
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
