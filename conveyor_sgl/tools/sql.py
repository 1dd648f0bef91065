"""The SQL tool: a real SQLite database; each statement runs the moment its ``;`` is decoded.

A generation typically creates tables and inserts rows first and queries last, so the DDL
and the inserts run while the query is still being decoded. Statements run in autocommit
mode, in stream order, on one connection.

Config:
- ``database`` (str, default ``":memory:"``): the SQLite file to open (created if missing);
- ``setup`` (str, optional): an SQL script run at start, before any decoded statement
  (a schema and rows the program queries);
- ``max_rows`` (int, default and maximum 50): rows shown per query; the rest are counted (a
  config may lower it, never raise it: ``option_limit``);
- ``files_root`` (str, optional): the database and every file ``ATTACH`` / ``VACUUM INTO``
  names must resolve (symlinks too) inside this directory (a relative ``database`` is taken
  inside it; a relative ATTACH path resolves against the worker's directory, so use absolute
  ones); ``""`` allows no file at all, only ``:memory:``. Absent: any file (client mode: the
  program's author is the user). A server sets it from its policy; a request may not.

With ``files_root`` set, the file of an ``ATTACH`` or ``VACUUM INTO`` (decoded statements and
``setup`` alike) must be one plain string literal, ``ATTACH 'name.db' AS n``: an expression
(``'a' || 'b'``, ``char(...)``, a subquery), a parameter, NULL, ``''`` (a temporary file) or
a URI filename (``file:...``) is refused (``SqlFileError``), since SQLite only evaluates those
as the statement runs. Two checks hold it: the statement's tokens (``check_file_statements``,
before SQLite sees it) and an SQLite authorizer (``attach_guard``: it refuses an ATTACH whose
file it cannot see, and ``PRAGMA temp_store_directory``). ``load_extension()`` is off in
every mode.

Output: for each query (a statement that returns rows), a text table of its rows; when no
statement returned rows, one line saying how many statements ran. The first statement that
fails stops the run: status ``error``, error ``"statement 2: OperationalError: no such
table: t"``, output the tables before it. ``cancel()`` interrupts a running query.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.parsers.base import Unit
from conveyor_sgl.tools.base import (
    ConfigReferences,
    Tool,
    ToolConfigError,
    ToolConfigTypeError,
    ToolOutput,
    check_known_options,
    option_limit,
)

_MAX_CELL = 60  # characters shown per cell: a long text column must not flood the prompt
_MEMORY = ("", ":memory:")  # SQLite's private databases: no file
MAX_ROWS = 50  # the default, and the most a config may ask for
# SQL functions no session may call: loading native code; fts3_tokenizer() hands out (and,
# where enabled, takes) raw pointers.
_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})
# Pragmas that move where SQLite writes its temporary files.
_DENIED_PRAGMAS = frozenset({"temp_store_directory", "data_store_directory"})


class SqlFileError(ConveyorError, ValueError):
    """A database, ATTACH or VACUUM INTO file the tool may not open; the message names the
    rule (a plain string literal, inside files_root)."""


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
    max_rows = option_limit(config, "max_rows", MAX_ROWS, integer=True, zero_ok=True)
    database = config.get("database", ":memory:")
    if not isinstance(database, str) or not database:
        raise ToolConfigError(f"database must be a path or ':memory:', got {database!r}")
    root = config.get("files_root")
    if root is not None and not (isinstance(root, str) and (root == "" or os.path.isabs(root))):
        raise ToolConfigError(f"files_root must be an absolute directory or '', got {root!r}")
    if root and database not in _MEMORY:
        database = os.path.join(root, database)
    if root is not None and not file_allowed(database, root):
        where = f"outside files_root {root!r}" if root else "a file (files_root '': memory only)"
        raise SqlFileError(f"database {config['database']!r} is {where}")
    return max_rows, database, root


def file_allowed(path: str, root: str) -> bool:
    """``path`` is SQLite's private memory, or resolves inside ``root`` ("" : no files)."""
    if path in _MEMORY:
        return True
    if not root or path[:5].lower() == "file:":  # URI filenames could name anything
        return False
    real, top = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, top]) == top


def attach_guard(root: str | None) -> Callable[..., int]:
    """An SQLite authorizer, the second check behind ``check_file_statements``: no
    ``load_extension()`` (nor ``fts3_tokenizer()``) in any mode; with a ``root``, ATTACH and
    VACUUM INTO (both SQLITE_ATTACH, the filename first) only of files inside it, and no
    pragma that moves SQLite's temporary files. Everything else as without it.

    SQLite passes the filename only when it is a literal: for an expression (``'a' || 'b'``,
    a subquery, a parameter, NULL) it passes None, refused here. ``''`` (a private temporary
    database) passes: plain VACUUM attaches one itself; a statement's ``ATTACH ''`` was
    refused by its tokens."""

    def authorize(action: int, arg1: str | None, arg2: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
            return sqlite3.SQLITE_DENY
        if root is None:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_ATTACH and (arg1 is None or not file_allowed(arg1, root)):
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _DENIED_PRAGMAS:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    return authorize


class _Token(NamedTuple):
    kind: str  # "word", "string", "name" (quoted), "blob", "variable" or "other"
    text: str
    start: int  # where it starts in the SQL text

    def is_word(self, keyword: str) -> bool:
        # SQLite folds only ASCII letters ("A\u017f".upper() == "AS", yet SQLite's AS it is not).
        return self.kind == "word" and self.text.isascii() and self.text.upper() == keyword


# SQLite's tokens as its tokenizer (tokenize.c) cuts them, as far as the check below needs:
# every token that can hold a quote, a ';' or a comment opener is cut whole (strings, quoted
# names, blobs, comments, TCL-style variables such as $a(x'y)); the rest may be cut finer.
# Text SQLite cannot tokenize fails to prepare, so nothing after it runs.
_ID = "A-Za-z0-9_$\u0080-\U0010ffff"
_TOKENS = re.compile(
    rf"""
    (?P<space>[ \t\n\f\r]+)
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<string>'(?:[^']|'')*+')
  | (?P<blob>[xX]'[^']*')
  | (?P<name>"(?:[^"]|"")*+"|`(?:[^`]|``)*+`|\[[^\]]*\])
  | (?P<variable>\?[0-9]*|[$@:\#](?:(?:::)*[{_ID}](?:[{_ID}]|::)*(?:\([^ \t\n\v\f\r)]*\)?)?)?)
  | (?P<word>[A-Za-z_\u0080-\U0010ffff][{_ID}]*)
  | (?P<semicolon>;)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _statements(sql: str) -> Iterator[list[_Token]]:
    """The significant tokens of each statement in ``sql``, cut at every ``;`` (inside a
    trigger body too: its statements never start with ATTACH or VACUUM)."""
    statement: list[_Token] = []
    for match in _TOKENS.finditer(sql):
        kind = match.lastgroup or "other"
        if kind in ("space", "comment"):
            continue
        if kind == "semicolon":
            yield statement
            statement = []
        else:
            statement.append(_Token(kind, match.group(), match.start()))
    yield statement


def _is(tokens: Sequence[_Token], index: int, keyword: str) -> bool:
    return index < len(tokens) and tokens[index].is_word(keyword)


def check_file_statements(sql: str, root: str) -> None:
    """Refuse (``SqlFileError``) an ATTACH or VACUUM INTO in ``sql`` (one statement or a
    script) whose file is not one plain string literal that ``file_allowed`` under ``root``.

    SQLite evaluates any other file expression only as the statement runs, so nothing before
    that (the authorizer included) can see which file it names."""
    for tokens in _statements(sql):
        if _is(tokens, 0, "EXPLAIN"):  # EXPLAIN [QUERY PLAN] <statement>
            plan = _is(tokens, 1, "QUERY") and _is(tokens, 2, "PLAN")
            tokens = tokens[3:] if plan else tokens[1:]
        if _is(tokens, 0, "ATTACH"):
            rest = tokens[2:] if _is(tokens, 1, "DATABASE") else tokens[1:]
            if not (rest and rest[0].kind == "string" and _is(rest, 1, "AS")):
                raise SqlFileError(
                    "ATTACH takes its file only as one plain string literal inside files_root "
                    f"(ATTACH 'name.db' AS n), not {_shown(sql, rest)}: an expression, a parameter "
                    "or NULL names a file only as it runs"
                )
            _check_literal("ATTACH", rest[0].text, root)
        elif _is(tokens, 0, "VACUUM"):
            # VACUUM [schema] [INTO 'file']
            tail = tokens[2:] if len(tokens) > 1 and not _is(tokens, 1, "INTO") else tokens[1:]
            if not tail:
                continue
            if not (len(tail) == 2 and _is(tail, 0, "INTO") and tail[1].kind == "string"):
                raise SqlFileError(
                    "VACUUM INTO takes its file only as one plain string literal inside "
                    f"files_root (VACUUM INTO 'copy.db'), not {_shown(sql, tail[1:])}: an "
                    "expression, a parameter or NULL names a file only as it runs"
                )
            _check_literal("VACUUM INTO", tail[1].text, root)


def _check_literal(verb: str, literal: str, root: str) -> None:
    name = literal[1:-1].replace("''", "'")
    if name == ":memory:":
        return
    if name == "":
        raise SqlFileError(
            f"{verb} '' (a temporary database file) is not allowed: name a file inside "
            "files_root, or ':memory:'"
        )
    if name[:5].lower() == "file:":
        raise SqlFileError(
            f"{verb} {name!r}: URI filenames are not allowed; name a plain path inside files_root"
        )
    if not file_allowed(name, root):
        where = f"outside files_root {root!r}" if root else "a file (files_root '': memory only)"
        raise SqlFileError(f"{verb} {name!r} is {where}")


def _shown(sql: str, tokens: Sequence[_Token]) -> str:
    """The statement's text from ``tokens[0]`` on, cut short: what stands where the file
    literal should."""
    if not tokens:
        return "nothing"
    text = sql[tokens[0].start : tokens[-1].start + len(tokens[-1].text)]
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _cell(value: Any) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 3] + "..."


class SqlTool(Tool):
    parser = "sql"
    partial = True
    files_root_option = "files_root"  # a server confines its files through this option
    writes_files = True

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        check_known_options(config, ["database", "max_rows", "setup", "files_root"])
        _, _, root = _settings(config)
        setup = config.get("setup")
        if setup is not None and not isinstance(setup, str):
            raise ToolConfigTypeError(f"setup must be an SQL script (a string), got {setup!r}")
        if setup and root is not None:  # a server sets the root later: start checks again
            _check_setup(setup, root)

    @classmethod
    def config_references(cls, config: dict[str, Any]) -> ConfigReferences:
        # ATTACH paths appear only in the SQL: check_file_statements and the authorizer check
        # those in the worker, against the files_root the server set.
        return ConfigReferences(paths=(config.get("database", ":memory:"),))

    def start(self, config: dict[str, Any]) -> None:
        self._max_rows, database, root = _settings(config)
        self._root = root
        setup = config.get("setup")
        if setup and root is not None:
            _check_setup(setup, root)
        # Autocommit: each statement is durable as soon as it ran, as if typed in a shell.
        self._db = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        if hasattr(self._db, "enable_load_extension"):  # absent where SQLite lacks it
            self._db.enable_load_extension(False)
        self._db.set_authorizer(attach_guard(root))  # before setup: its script may ATTACH too
        self._tables: list[str] = []
        self._ran = 0
        self._error: str | None = None
        self._cancelled = False
        if setup:
            try:
                self._db.executescript(setup)
            except sqlite3.Error as e:
                self._db.close()
                raise ToolConfigError(f"setup script failed: {type(e).__name__}: {e}") from None

    def feed(self, unit: Unit) -> None:
        if self._error is not None or self._cancelled:
            return
        number = unit.data.get("index", self._ran) + 1
        try:
            if self._root is not None:
                check_file_statements(unit.text, self._root)
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


def _check_setup(setup: str, root: str) -> None:
    try:
        check_file_statements(setup, root)
    except SqlFileError as e:
        raise SqlFileError(f"setup script: {e}") from None
