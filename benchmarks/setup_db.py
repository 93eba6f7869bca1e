"""Configure Django for the benchmark and open raw driver connections to the same database.

SQLite: ``benchmarks/bench.sqlite3`` (git-ignored), WAL with synchronous=NORMAL for
Django and for the raw sqlite3 baseline alike. PostgreSQL: the ``bench_tx`` database on
127.0.0.1:5432 (user postgres), created when missing; never the test databases.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django
from django.conf import settings

HERE = Path(__file__).resolve().parent
SQLITE_FILE = HERE / "bench.sqlite3"
PG = {
    "NAME": os.environ.get("TRANSMISSIONS_BENCH_DB_NAME", "bench_tx"),
    "USER": os.environ.get("PGUSER", "postgres"),
    "HOST": os.environ.get("PGHOST", "127.0.0.1"),
    "PORT": os.environ.get("PGPORT", "5432"),
}
# Email to locmem: MAILERS on Django 6.1+, which deprecates EMAIL_BACKEND.
_LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
LOCMEM_EMAIL: dict[str, Any] = (
    {"MAILERS": {"default": {"BACKEND": _LOCMEM}}} if django.VERSION >= (6, 1) else {"EMAIL_BACKEND": _LOCMEM}
)
SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")
# Django's PostgreSQL OPTIONS that make its connections bind parameters on the server and
# prepare a statement run five times, as psycopg does by default (Django turns both off by
# default, for connection poolers that do not carry prepared statements).
PREPARED: dict[str, Any] = {"server_side_binding": True, "prepare_threshold": 5}


@contextlib.contextmanager
def suite_database(name: str) -> Iterator[None]:
    """Django set up on the test suite's settings (``tests.settings``) against a fresh
    PostgreSQL database (``TRANSMISSIONS_TEST_DB_NAME``, else ``TRANSMISSIONS_BENCH_DB_NAME``,
    else ``name``), for benchmarks that start the suite's worker processes; dropped after."""
    os.environ["TRANSMISSIONS_TEST_DB"] = "postgres"
    os.environ.setdefault("TRANSMISSIONS_TEST_DB_NAME", os.environ.get("TRANSMISSIONS_BENCH_DB_NAME", name))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    django.setup()
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def parse_and_configure(doc: str | None, n: int, rounds: int, extra: Any = None) -> argparse.Namespace:
    """The side benchmarks' command line (``--db``, ``--n``, ``--rounds``, and what ``extra``
    adds to the parser), parsed; then the chosen database configured (``configure()``)."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=doc, formatter_class=formatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--n", type=int, default=n)
    parser.add_argument("--rounds", type=int, default=rounds)
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    configure(args.db, pg_options=PREPARED if getattr(args, "prepared", False) else None)
    return args


def configure(
    db: str, fresh: bool = True, pg_port: int | None = None, pg_options: dict[str, Any] | None = None
) -> None:
    """Point Django at the benchmark database, set it up and migrate it.

    ``pg_port``: reach PostgreSQL through that port on 127.0.0.1 instead (``wire.py``'s
    round-trip counter), without SSL or GSS negotiation, which it does not read.
    ``pg_options``: the PostgreSQL connection's ``OPTIONS`` (``PREPARED``, say).
    """
    if db == "sqlite":
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{SQLITE_FILE}{suffix}").unlink(missing_ok=True)
        database: dict[str, Any] = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(SQLITE_FILE),
            "OPTIONS": {"init_command": ";".join(SQLITE_PRAGMAS), "timeout": 60},
        }
    elif db == "postgres":
        if fresh:
            _recreate_pg_database()
        database = {"ENGINE": "django.db.backends.postgresql", **PG, "OPTIONS": dict(pg_options or {})}
        if pg_port is not None:
            database.update(HOST="127.0.0.1", PORT=str(pg_port))
            database["OPTIONS"].update(sslmode="disable", gssencmode="disable")
    else:
        raise SystemExit(f"--db {db!r}: use sqlite or postgres.")
    settings.configure(
        SECRET_KEY="benchmark-only",
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEBUG=False,
        DATABASES={"default": database},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "transmissions",
            "post_office",
        ],
        **LOCMEM_EMAIL,
        DEFAULT_FROM_EMAIL="bench@example.com",
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
        # post-office's own defaults, except: deliver to locmem, and log only failures
        # (its default also writes one Log row per sent email; this is the cheaper setup).
        POST_OFFICE={
            "BACKENDS": {"default": "django.core.mail.backends.locmem.EmailBackend"},
            "LOG_LEVEL": 1,
            "BATCH_SIZE": 100,
        },
    )
    django.setup()
    # post-office logs every batch at INFO; keep the benchmark's output readable.
    logging.getLogger("post_office").setLevel(logging.WARNING)
    if fresh:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def _recreate_pg_database() -> None:
    import psycopg

    admin = {**PG, "NAME": "postgres"}
    with psycopg.connect(_dsn(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG["NAME"]}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PG["NAME"]}"')


def _dsn(params: dict[str, str]) -> str:
    return f"dbname={params['NAME']} user={params['USER']} host={params['HOST']} port={params['PORT']}"


def raw_connection(db: str, pg_port: int | None = None, prepared: bool = True) -> Any:
    """A driver connection (psycopg / sqlite3) in autocommit: one transaction per statement.

    psycopg prepares a statement on the server once it ran it five times; ``prepared=False``
    turns that off (``prepare_threshold=None``), as Django does on its own connections unless
    ``OPTIONS`` says otherwise (for connection poolers), so the server parses and plans each one.
    """
    if db == "sqlite":
        conn = sqlite3.connect(str(SQLITE_FILE), isolation_level=None, timeout=60)
        # Django turns foreign key checks on for its SQLite connections: the same work here.
        for pragma in (*SQLITE_PRAGMAS, "PRAGMA foreign_keys = ON"):
            conn.execute(pragma)
        return conn
    import psycopg

    threshold = {} if prepared else {"prepare_threshold": None}
    if pg_port is not None:
        dsn = _dsn({**PG, "HOST": "127.0.0.1", "PORT": str(pg_port)})
        return psycopg.connect(f"{dsn} sslmode=disable gssencmode=disable", autocommit=True, **threshold)
    return psycopg.connect(_dsn(PG), autocommit=True, **threshold)
