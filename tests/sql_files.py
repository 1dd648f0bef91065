"""Real SQLite file databases for the sql transaction tests: make one, read one back."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def make_database(path: Path) -> Path:
    """A file database that holds t = [1], written and closed before any call."""
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t(x)")
        setup.execute("INSERT INTO t VALUES (1)")
    setup.close()
    return path


def contents(path: Path) -> dict[str, list[tuple]]:
    """Every table's rows, read by a new connection (which rolls back a hot journal)."""
    with sqlite3.connect(path, timeout=10) as reader:
        names = [r[0] for r in reader.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        query = 'SELECT * FROM "{}"'  # names read from the database itself
        table = {n: sorted(reader.execute(query.format(n)).fetchall()) for n in names}
    reader.close()
    return table
