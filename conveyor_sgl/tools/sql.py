"""The SQL tool: a real SQLite database; each statement runs the moment its ``;`` is decoded.

A generation typically creates tables and inserts rows first and queries last, so the DDL
and the inserts run while the query is still being decoded. Statements run in autocommit
mode, in stream order, on one connection.

Config:
- ``database`` (str, default ``":memory:"``): the SQLite file to open (created if missing);
- ``setup`` (str, optional): an SQL script run at start, before any decoded statement
  (a schema and rows the program queries);
- ``max_rows`` (int, default 50): rows shown per query; the rest are counted;
- ``files_root`` (str, optional): the database and every file ``ATTACH`` / ``VACUUM INTO``
  names must resolve (symlinks too) inside this directory (a relative ``database`` is taken
  inside it; a relative ATTACH path resolves against the worker's directory, so use absolute
  ones); ``""`` allows no file at all, only ``:memory:``. Absent: any file (client mode: the
  program's author is the user). A server sets it from its policy; a request may not.

Output: for each query (a statement that returns rows), a text table of its rows; when no
statement returned rows, one line saying how many statements ran. The first statement that
fails stops the run: status ``error``, error ``"statement 2: OperationalError: no such
table: t"``, output the tables before it. ``cancel()`` interrupts a running query.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from conveyor_sgl.runtime.parsers.base import Unit
from conveyor_sgl.tools.base import (
    ConfigReferences,
    Tool,
    ToolOutput,
    check_known_options,
    option_number,
)

_MAX_CELL = 60  # characters shown per cell: a long text column must not flood the prompt
_MEMORY = ("", ":memory:")  # SQLite's private databases: no file


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], more: int = 0) -> str:
    """Rows as an aligned text table, a header rule, and ``(N rows)``."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(name) for name in columns]
    for row in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = [" | ".join(name.ljust(w) for name, w in zip(columns, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    total = len(rows) + more
    count = f"({total} row{'s' if total != 1 else ''}"
    lines.append(count + (f", {more} not shown)" if more else ")"))
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _settings(config: dict[str, Any]) -> tuple[int, str, str | None]:
    """(max_rows, database, files_root), checked; a relative database is inside the root."""
    max_rows = option_number(config, "max_rows", 50, integer=True, zero_ok=True)
    database = config.get("database", ":memory:")
    if not isinstance(database, str) or not database:
        raise ValueError(f"database must be a path or ':memory:', got {database!r}")
    root = config.get("files_root")
    if root is not None and not (isinstance(root, str) and (root == "" or os.path.isabs(root))):
        raise ValueError(f"files_root must be an absolute directory or '', got {root!r}")
    if root and database not in _MEMORY:
        database = os.path.join(root, database)
    if root is not None and not file_allowed(database, root):
        where = f"outside files_root {root!r}" if root else "a file (files_root '': memory only)"
        raise ValueError(f"database {config['database']!r} is {where}")
    return max_rows, database, root


def file_allowed(path: str, root: str) -> bool:
    """``path`` is SQLite's private memory, or resolves inside ``root`` ("" : no files)."""
    if path in _MEMORY:
        return True
    if not root or path.startswith("file:"):  # URI filenames could name anything
        return False
    real, top = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, top]) == top


def attach_guard(root: str) -> Callable[..., int]:
    """An SQLite authorizer: ATTACH and VACUUM INTO (both SQLITE_ATTACH, the filename first)
    only of files inside ``root``; everything else as without it."""

    def authorize(action: int, arg1: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_ATTACH and not file_allowed(arg1 or "", root):
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    return authorize


def _cell(value: Any) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 3] + "..."


class SqlTool(Tool):
    parser = "sql"
    partial = True
    files_root_option = "files_root"  # a server confines its files through this option

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        check_known_options(config, ["database", "max_rows", "setup", "files_root"])
        _settings(config)
        setup = config.get("setup")
        if setup is not None and not isinstance(setup, str):
            raise TypeError(f"setup must be an SQL script (a string), got {setup!r}")

    @classmethod
    def config_references(cls, config: dict[str, Any]) -> ConfigReferences:
        # ATTACH paths appear only in the SQL: the authorizer checks those as they run.
        return ConfigReferences(paths=(config.get("database", ":memory:"),))

    def start(self, config: dict[str, Any]) -> None:
        self._max_rows, database, root = _settings(config)
        # Autocommit: each statement is durable as soon as it ran, as if typed in a shell.
        self._db = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        if root is not None:  # before setup: its script may ATTACH too
            self._db.set_authorizer(attach_guard(root))
        self._tables: list[str] = []
        self._ran = 0
        self._error: str | None = None
        self._cancelled = False
        setup = config.get("setup")
        if setup:
            try:
                self._db.executescript(setup)
            except sqlite3.Error as e:
                self._db.close()
                raise ValueError(f"setup script failed: {type(e).__name__}: {e}") from None

    def feed(self, unit: Unit) -> None:
        if self._error is not None or self._cancelled:
            return
        number = unit.data.get("index", self._ran) + 1
        try:
            cursor = self._db.execute(unit.text)
            if cursor.description is not None:
                self._tables.append(self._table(cursor))
        except (sqlite3.Error, sqlite3.Warning, ValueError) as e:
            self._error = f"statement {number}: {type(e).__name__}: {e}"
            return
        self._ran += 1

    def finish(self) -> ToolOutput:
        self._db.close()
        output = "\n".join(self._tables)
        if self._cancelled:
            return ToolOutput(output, "aborted", "cancelled")
        if self._error is not None:
            return ToolOutput(output, "error", self._error)
        if not self._tables:
            output = f"{self._ran} statement{'s' if self._ran != 1 else ''} ran, no rows returned\n"
        return ToolOutput(output)

    def cancel(self) -> None:
        self._cancelled = True
        try:
            self._db.interrupt()  # thread-safe: stops a query running on another thread
        except sqlite3.ProgrammingError:
            pass  # already closed: nothing runs

    def _table(self, cursor: sqlite3.Cursor) -> str:
        columns = [column[0] for column in cursor.description]
        rows = cursor.fetchmany(self._max_rows) if self._max_rows > 0 else []
        more = sum(1 for _ in cursor)
        return render_table(columns, rows, more)
