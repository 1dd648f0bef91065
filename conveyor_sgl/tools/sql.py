"""The SQL tool: a real SQLite database; each statement runs the moment its ``;`` is decoded.

A generation typically creates tables and inserts rows first and queries last, so the DDL
and the inserts run while the query is still being decoded. Statements run in stream order,
on one connection, in one transaction per call (below); a query's rows are read the moment
it runs, so its table is ready at once, whatever becomes of the call.

Config:
- ``database`` (str, default ``":memory:"``): the SQLite file to open (created if missing);
- ``setup`` (str, optional): an SQL script run at start, before any decoded statement
  (a schema and rows the program queries). It is the program's, not the call's: it runs in
  autocommit mode, outside the call's transaction, and what it does is kept (a session
  with partial execution off runs it at the same moment);
- ``max_rows`` (int, default and maximum 50): rows shown per query; the rest are counted (a
  config may lower it, never raise it: ``option_limit``);
- ``transaction`` (bool, default true): run the call's statements in one transaction,
  committed when the call completes and rolled back when it is cut (below); false: autocommit,
  each statement durable as soon as it ran, as typed in a shell (a cut call keeps what ran).
  A request may set it in server mode: it bounds no resource and the files stay confined;
- ``files_root`` (str, optional): the database and every file ``ATTACH`` / ``VACUUM INTO``
  names must resolve (symlinks too) inside this directory (a relative ``database`` is taken
  inside it; a relative ATTACH path resolves against the worker's directory, so use absolute
  ones); ``""`` allows no file at all, only ``:memory:``. Absent: any file (client mode: the
  program's author is the user). A server sets it from its policy; a request may not.

Commit or undo (``transaction``, the default). Early execution means a statement has run
before the call is known to complete; so nothing of the call is durable until it does:

- the call's transaction opens (``SAVEPOINT``: a deferred ``BEGIN``, or a savepoint nested in
  a transaction that ``setup`` left open, which stays the setup's) right before its first
  statement (but see ATTACH, VACUUM and the pragmas below), and ``finish`` commits it
  (``RELEASE``): a call that completes leaves what the same statements leave in autocommit
  mode;
- a cut call is rolled back. ``cancel()`` (the program abandoned the call, the client went
  away, the session was cancelled or ended without ``finish``) rolls the transaction back
  and removes a file one of the call's ``ATTACH`` or ``VACUUM INTO`` statements created: the
  call leaves what the sequential baseline leaves (``setup``'s work, nothing of the
  statements'). A worker killed mid-call (a result timeout, a crash) cannot: SQLite does,
  since the journal (or WAL) of a transaction that never committed is undone by the next
  connection that opens the file (files an ATTACH created then stay, without the call's
  rows);
- a statement that fails stops the run (as in autocommit mode); the call still completes, so
  what ran before it is committed, as autocommit would have kept it; SQLite itself undoes
  the failing statement. Where SQLite rolls back the whole transaction on an error (``INSERT
  OR ROLLBACK``, ``RAISE(ROLLBACK)``, a full disk), the error says so and nothing of the call
  is kept;
- ``BEGIN``, ``COMMIT``/``END`` and ``ROLLBACK`` written by the model keep their meaning
  inside the call's transaction: ``BEGIN`` opens a savepoint, ``COMMIT`` releases it into the
  call's transaction (durable when the call completes), ``ROLLBACK`` undoes back to the
  ``BEGIN``; one still open at the end is rolled back, as closing an autocommit connection
  would. ``SAVEPOINT``, ``RELEASE`` and ``ROLLBACK TO`` work on the model's own savepoints;
  naming any other is an error (``no such savepoint``), as is a savepoint named
  ``conveyor_call`` or ``conveyor_model_begin`` (the tool's own). The errors SQLite gives for
  a misplaced one (``cannot commit - no transaction is active``) are kept;
- ``ATTACH`` and ``DETACH`` do not open the call's transaction (they change no content; a
  file an ATTACH created is removed if the call is cut). What SQLite cannot do inside a
  transaction, ``VACUUM`` (``INTO`` too), ``PRAGMA foreign_keys = ...`` (silently ignored
  there) and ``PRAGMA synchronous = ...``, runs before the call's transaction opens, so only
  before its first other statement (``PRAGMA foreign_keys = ON;`` first, as usual); later it
  is an error (``SqlTransactionError``) naming the remedy. None changes what the database
  holds (a VACUUM INTO copy is removed if the call is cut). ``PRAGMA journal_mode = ...`` is
  refused in a call: it changes how the file keeps transactions (``OFF`` would leave nothing
  to roll back with); set it in ``setup``;
- while a call is open it holds SQLite's locks from its first read or write until it
  completes (seconds of decoding): another connection that writes the same file may wait
  for it (SQLite's busy timeout, 5 s), where autocommit let it in between statements.

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
import threading
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


# The call's savepoint, and the one that stands for a transaction the model opened (BEGIN, or
# a SAVEPOINT outside one): names a model's SAVEPOINT may not take.
_CALL = "conveyor_call"
_MODEL_BEGIN = "conveyor_model_begin"
_RESERVED = frozenset({_CALL, _MODEL_BEGIN})
# Settings SQLite refuses (synchronous) or silently ignores (foreign_keys) inside a
# transaction: a call may give them only before its transaction opens.
_OUTSIDE_PRAGMAS = frozenset({"foreign_keys", "synchronous"})
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class SqlTransactionError(ConveyorError, ValueError):
    """A statement that cannot run inside the call's transaction (``transaction: true``);
    the message names the remedy."""


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


def _head(sql: str, count: int = 8) -> list[_Token]:
    """The first ``count`` significant tokens of the first statement in ``sql``: all that
    ``_classify`` and ``_new_file`` look at (a long query is not tokenized to its end)."""
    head: list[_Token] = []
    for match in _TOKENS.finditer(sql):
        kind = match.lastgroup or "other"
        if kind == "semicolon" or len(head) == count:
            break
        if kind not in ("space", "comment"):
            head.append(_Token(kind, match.group(), match.start()))
    return head


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


class _Kind(NamedTuple):
    """What a statement means to the call's transaction."""

    # "plain" (opens the call's transaction), "outside" (only before it opens), "neutral"
    # (ATTACH, DETACH: either way), "journal_mode", or a control: "begin", "commit", ...
    kind: str
    name: str = ""  # a savepoint's name (folded) for a control; what it is for "outside"


def _classify(tokens: Sequence[_Token]) -> _Kind:
    """The statement's kind: transaction control (BEGIN, COMMIT/END, ROLLBACK [TO],
    SAVEPOINT, RELEASE), a statement SQLite runs only outside a transaction (VACUUM, the
    settings in ``_OUTSIDE_PRAGMAS``), ATTACH / DETACH, a ``journal_mode`` setting, or plain.
    Malformed control statements are plain: SQLite reports them."""
    if not tokens or tokens[0].kind != "word":
        return _Kind("plain")
    first = tokens[0].text.upper()
    if first == "BEGIN":
        return _Kind("begin")
    if first in ("COMMIT", "END"):
        return _Kind("commit")
    if first == "VACUUM":
        return _Kind("outside", "VACUUM")
    if first in ("ATTACH", "DETACH"):  # allowed in a transaction, and change no content
        return _Kind("neutral")
    if first == "PRAGMA":
        return _pragma(tokens)
    if first == "ROLLBACK":
        rest = tokens[2:] if _is(tokens, 1, "TRANSACTION") else tokens[1:]
        if not _is(rest, 0, "TO"):
            return _Kind("rollback")
        return _named("rollback_to", rest[2:] if _is(rest, 1, "SAVEPOINT") else rest[1:])
    if first == "SAVEPOINT":
        return _named("savepoint", tokens[1:])
    if first == "RELEASE":
        return _named("release", tokens[2:] if _is(tokens, 1, "SAVEPOINT") else tokens[1:])
    return _Kind("plain")


def _named(kind: str, rest: Sequence[_Token]) -> _Kind:
    if len(rest) != 1 or rest[0].kind not in ("word", "name", "string"):
        return _Kind("plain")
    return _Kind(kind, _folded(rest[0]))


def _pragma(tokens: Sequence[_Token]) -> _Kind:
    # PRAGMA [schema.]name [= value | (value)]; only a setting matters here.
    rest = tokens[3:] if len(tokens) > 3 and tokens[2].text == "." else tokens[1:]
    if len(rest) < 2 or rest[0].kind not in ("word", "name", "string"):
        return _Kind("plain")
    name = _folded(rest[0])
    if name == "journal_mode":
        return _Kind("journal_mode")
    return _Kind("outside", f"PRAGMA {name}") if name in _OUTSIDE_PRAGMAS else _Kind("plain")


def _folded(token: _Token) -> str:
    """A name as SQLite compares savepoint and pragma names: unquoted, ASCII case folded."""
    text = token.text
    if token.kind == "string" or text[0] in '"`':
        text = text[1:-1].replace(text[0] * 2, text[0])
    elif token.kind == "name":  # [name]
        text = text[1:-1]
    return text.translate(_ASCII_LOWER)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _new_file(tokens: Sequence[_Token]) -> str | None:
    """The file an ATTACH or VACUUM INTO names as a plain literal, absolute, where no such
    file exists yet (the statement would create it); None otherwise."""
    if _is(tokens, 0, "ATTACH"):
        rest = tokens[2:] if _is(tokens, 1, "DATABASE") else tokens[1:]
    elif _is(tokens, 0, "VACUUM"):
        into = 2 if _is(tokens, 2, "INTO") else 1 if _is(tokens, 1, "INTO") else None
        rest = tokens[into + 1 :] if into is not None else []
    else:
        return None
    if not rest or rest[0].kind != "string":
        return None
    name = rest[0].text[1:-1].replace("''", "'")
    if name in _MEMORY or name[:5].lower() == "file:":
        return None
    path = os.path.abspath(name)
    return None if os.path.lexists(path) else path


class SqlTool(Tool):
    parser = "sql"
    partial = True
    files_root_option = "files_root"  # a server confines its files through this option
    writes_files = True

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        known = ["database", "max_rows", "setup", "files_root", "transaction"]
        check_known_options(config, known)
        _, _, root = _settings(config)
        setup = config.get("setup")
        if setup is not None and not isinstance(setup, str):
            raise ToolConfigTypeError(f"setup must be an SQL script (a string), got {setup!r}")
        if setup and root is not None:  # a server sets the root later: start checks again
            _check_setup(setup, root)
        transaction = config.get("transaction", True)
        if not isinstance(transaction, bool):
            raise ToolConfigTypeError(
                f"transaction must be true (one transaction per call, the default) or false "
                f"(autocommit), got {transaction!r}"
            )

    @classmethod
    def config_references(cls, config: dict[str, Any]) -> ConfigReferences:
        # ATTACH paths appear only in the SQL: check_file_statements and the authorizer check
        # those in the worker, against the files_root the server set.
        return ConfigReferences(paths=(config.get("database", ":memory:"),))

    def start(self, config: dict[str, Any]) -> None:
        self._max_rows, database, root = _settings(config)
        self._root = root
        self._transaction = bool(config.get("transaction", True))
        setup = config.get("setup")
        if setup and root is not None:
            _check_setup(setup, root)
        # Autocommit connection: the call's transaction is opened and ended explicitly.
        self._db = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        if hasattr(self._db, "enable_load_extension"):  # absent where SQLite lacks it
            self._db.enable_load_extension(False)
        self._db.set_authorizer(attach_guard(root))  # before setup: its script may ATTACH too
        self._tables: list[str] = []
        self._ran = 0
        self._error: str | None = None
        self._cancelled = False
        self._lock = threading.Lock()  # one of feed, finish, cancel on the connection at once
        self._open = False  # the call's savepoint is open
        self._model: list[str] = []  # the model's open savepoints; [0] is _MODEL_BEGIN
        self._model_began = False  # the model's transaction began with BEGIN (else SAVEPOINT)
        self._created: list[str] = []  # files the call's ATTACH / VACUUM INTO created
        if setup:
            try:
                self._db.executescript(setup)
            except sqlite3.Error as e:
                self._db.close()
                raise ToolConfigError(f"setup script failed: {type(e).__name__}: {e}") from None

    @classmethod
    def may_abort(cls, config: dict[str, Any]) -> bool:
        return False  # a failed statement is reported in the result; decoding goes on

    def feed(self, unit: Unit) -> None:
        with self._lock:
            if self._error is not None or self._cancelled:
                return
            number = unit.data.get("index", self._ran) + 1
            try:
                if self._root is not None:
                    check_file_statements(unit.text, self._root)
                cursor = self._run(unit.text) if self._transaction else self._db.execute(unit.text)
                if cursor is not None and cursor.description is not None:
                    self._tables.append(self._table(cursor))
            except (sqlite3.Error, sqlite3.Warning, ValueError) as e:
                self._error = f"statement {number}: {type(e).__name__}: {e}"
                if self._lost():
                    self._error += (
                        " (SQLite rolled back the call's transaction: nothing of this call "
                        "was kept)"
                    )
                return
            if self._lost():
                self._error = f"statement {number}: it ended the call's transaction"
                return
            self._ran += 1

    def finish(self) -> ToolOutput:
        commit_error = None
        with self._lock:
            if not self._cancelled:
                try:
                    self._commit()
                except sqlite3.Error as e:
                    commit_error = f"commit failed: {type(e).__name__}: {e}; "
                    commit_error += "the call's statements were rolled back"
                    self._rollback()
            self._db.close()
        output = "\n".join(self._tables)
        if self._cancelled:
            return ToolOutput(output, "aborted", "cancelled")
        if self._error is not None or commit_error is not None:
            errors = [e for e in (self._error, commit_error) if e is not None]
            return ToolOutput(output, "error", "; ".join(errors))
        if not self._tables:
            output = f"{self._ran} statement{'s' if self._ran != 1 else ''} ran, no rows returned\n"
        return ToolOutput(output)

    def cancel(self) -> None:
        """Stop a running query and undo the call: roll its transaction back, remove the
        files it created, close the database."""
        self._cancelled = True
        # A query running on another thread holds the lock: interrupt it until it lets go
        # (thread-safe; a statement about to start is caught by the next round).
        while not self._lock.acquire(timeout=0.05):
            try:
                self._db.interrupt()
            except sqlite3.ProgrammingError:
                pass  # already closed: nothing runs
        try:
            self._rollback()
            self._db.close()
            for path in self._created:  # only once the database let go of them
                for suffix in ("", "-journal", "-wal", "-shm"):
                    try:
                        os.unlink(path + suffix)
                    except OSError:
                        pass
            self._created.clear()
        finally:
            self._lock.release()

    def _run(self, sql: str) -> sqlite3.Cursor | None:
        """One statement inside the call's transaction (``transaction`` on)."""
        tokens = _head(sql)  # a unit is one statement; its first tokens say what it is
        kind = _classify(tokens)
        if kind.kind == "journal_mode":
            raise SqlTransactionError(
                "PRAGMA journal_mode cannot be set in a call (transaction: true): it changes "
                "how the file keeps the transaction the call runs in; set it in setup, or "
                "give transaction: false"
            )
        if kind.kind == "outside" and self._open:
            raise SqlTransactionError(
                f"{kind.name} cannot run inside a transaction, and the call's transaction "
                "(transaction: true) opened at its first statement other than VACUUM, ATTACH, "
                "DETACH or PRAGMA foreign_keys/synchronous: give it before those (or in "
                "setup), or set transaction: false"
            )
        new_file = _new_file(tokens)
        if kind.kind not in ("outside", "neutral"):
            self._open_call()
        try:
            if kind.kind in ("plain", "outside", "neutral"):
                return self._db.execute(sql)
            self._model_control(kind, sql)
            return None
        finally:
            if new_file is not None and os.path.lexists(new_file):
                self._created.append(new_file)

    def _open_call(self) -> None:
        if not self._open:
            self._db.execute(f"SAVEPOINT {_CALL}")
            self._open = True

    def _model_control(self, kind: _Kind, sql: str) -> None:
        """BEGIN / COMMIT / ROLLBACK / SAVEPOINT / RELEASE / ROLLBACK TO the model wrote, as
        savepoints inside the call's transaction (the errors are SQLite's own)."""
        model, db = self._model, self._db
        if kind.kind == "begin":
            if model:
                raise sqlite3.OperationalError("cannot start a transaction within a transaction")
            db.execute(f"SAVEPOINT {_MODEL_BEGIN}")
            self._model, self._model_began = [_MODEL_BEGIN], True
        elif kind.kind in ("commit", "rollback"):
            if not model:
                verb = "commit" if kind.kind == "commit" else "rollback"
                raise sqlite3.OperationalError(f"cannot {verb} - no transaction is active")
            if kind.kind == "rollback":
                db.execute(f"ROLLBACK TO {_MODEL_BEGIN}")
            db.execute(f"RELEASE {_MODEL_BEGIN}")
            model.clear()
        elif kind.kind == "savepoint":
            if kind.name in _RESERVED:
                raise SqlTransactionError(f"savepoint name {kind.name!r} is the sql tool's own")
            if not model:  # SQLite: a SAVEPOINT outside a transaction begins one
                db.execute(f"SAVEPOINT {_MODEL_BEGIN}")
                self._model, self._model_began = [_MODEL_BEGIN], False
            db.execute(sql)
            self._model.append(kind.name)
        else:  # release, rollback_to: only the model's own savepoints
            if kind.name not in model[1:]:
                raise sqlite3.OperationalError(f"no such savepoint: {kind.name}")
            db.execute(sql)
            at = len(model) - 1 - model[::-1].index(kind.name)
            del model[at + (kind.kind == "rollback_to") :]
            if model == [_MODEL_BEGIN] and not self._model_began:
                db.execute(f"RELEASE {_MODEL_BEGIN}")  # the model's outermost SAVEPOINT: done
                model.clear()

    def _commit(self) -> None:
        if not self._open:
            return
        if self._model:  # a transaction the model left open: closing would roll it back
            self._db.execute(f"ROLLBACK TO {_MODEL_BEGIN}")
            self._db.execute(f"RELEASE {_MODEL_BEGIN}")
            self._model.clear()
        self._db.execute(f"RELEASE {_CALL}")
        self._open = False

    def _rollback(self) -> None:
        if not self._open:
            return
        self._open = False
        self._model.clear()
        try:
            self._db.execute(f"ROLLBACK TO {_CALL}")
            self._db.execute(f"RELEASE {_CALL}")
        except sqlite3.Error:
            pass  # closing the connection rolls back what is still open

    def _lost(self) -> bool:
        """SQLite ended the call's transaction itself (``OR ROLLBACK``, ``RAISE(ROLLBACK)``,
        an interrupt, a full disk): nothing is left to commit or roll back."""
        if self._open and not self._db.in_transaction:
            self._open = False
            self._model.clear()
            return True
        return False

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
