"""Commit or undo: the sql tool runs a call's statements in one transaction, committed when the
call completes and rolled back when it is cut (cancel, a timeout, a killed worker), on a real
file database; ``transaction: false`` is autocommit. Reads return their rows at once."""

# ruff: noqa: S608 - the tests write SQL texts, as a model does

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sql_files import contents, make_database
from tool_drive import drive
from worker_fixtures import fresh_pool, no_leaked_workers

from conveyor_sgl.parsers import SqlStatementParser, Unit, parse_chunks
from conveyor_sgl.runtime.run_tool import run_tool
from conveyor_sgl.runtime.sandbox import layers as sandbox_layers
from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.tools.sql import SqlTool

pytestmark = pytest.mark.timeout(60)
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)
_pool = pytest.fixture(name="pool")(fresh_pool)

WRITES = "INSERT INTO t VALUES (2);\nCREATE TABLE u(y);\nINSERT INTO u VALUES ('new');\n"
ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n;\n"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A file database that holds t = [1], written and closed before the call."""
    path = tmp_path / "shop.db"
    return make_database(path)


BEFORE = {"t": [(1,)]}


def units(text: str) -> list[Unit]:
    return parse_chunks(SqlStatementParser(), [text])


def started(path: Path, config: dict | None = None) -> SqlTool:
    tool = SqlTool()
    tool.start({"database": str(path), **(config or {})})
    return tool


def feed_all(tool: SqlTool, text: str) -> None:
    for unit in units(text):
        tool.feed(unit)


# In process: the contract itself.


def test_a_completed_call_commits(db):
    out = drive(SqlTool, WRITES + "SELECT count(*) AS n FROM u;\n", {"database": str(db)}).out
    assert out.status == "ok" and "n\n-\n1\n(1 row)" in out.output
    assert contents(db) == {"t": [(1,), (2,)], "u": [("new",)]}


def test_a_cancelled_call_leaves_the_file_as_it_was(db):
    tool = started(db)
    feed_all(tool, WRITES)
    # The statements ran (the call sees its own rows), nothing is durable yet.
    assert contents(db) == BEFORE
    tool.cancel()
    assert contents(db) == BEFORE
    assert not Path(str(db) + "-journal").exists()
    assert (tool.finish().status, tool.finish().error) == ("aborted", "cancelled")


def test_reads_return_their_rows_at_once_inside_the_transaction(db):
    tool = started(db)
    feed_all(tool, "INSERT INTO t VALUES (2);\nSELECT x FROM t ORDER BY x;\n")
    # The query ran (and its rows were read) during feed, while the call is still open.
    assert tool._tables == ["x\n-\n1\n2\n(2 rows)\n"]
    assert contents(db) == BEFORE
    tool.cancel()
    assert contents(db) == BEFORE


def test_autocommit_keeps_what_ran_before_the_cut(db):
    tool = started(db, {"transaction": False})
    feed_all(tool, WRITES)
    assert contents(db) == {"t": [(1,), (2,)], "u": [("new",)]}  # durable at once
    tool.cancel()
    assert contents(db) == {"t": [(1,), (2,)], "u": [("new",)]}


def test_transaction_must_be_a_bool():
    with pytest.raises(TypeError, match=r"transaction must be true .* or false"):
        SqlTool.check_config({"transaction": "no"})
    SqlTool.check_config({"transaction": False})


def test_a_failed_statement_keeps_what_ran_before_it_as_autocommit_would(db):
    text = "INSERT INTO t VALUES (2);\nINSERT INTO missing VALUES (1);\nINSERT INTO t VALUES (3);\n"
    for transaction in (True, False):
        out = drive(SqlTool, text, {"database": str(db), "transaction": transaction}).out
        assert (out.status, out.error) == (
            "error",
            "statement 2: OperationalError: no such table: missing",
        )
        assert contents(db)["t"] == [(1,), (2,)]
        with sqlite3.connect(db) as fix:
            fix.execute("DELETE FROM t WHERE x = 2")
        fix.close()


def test_a_statement_that_rolls_back_the_transaction_says_nothing_was_kept(db):
    text = (
        "CREATE TABLE u(y UNIQUE);\nINSERT INTO u VALUES (1);\n"
        "INSERT OR ROLLBACK INTO u VALUES (1);\nINSERT INTO t VALUES (9);\n"
    )
    out = drive(SqlTool, text, {"database": str(db)}).out
    assert out.status == "error"
    assert out.error.startswith("statement 3: IntegrityError: UNIQUE constraint failed: u.y")
    assert out.error.endswith(
        "(SQLite rolled back the call's transaction: nothing of this call was kept)"
    )
    assert contents(db) == BEFORE


def test_cancel_interrupts_a_running_query_and_rolls_back(db):
    tool = started(db)
    feed_all(tool, "INSERT INTO t VALUES (2);\n")
    feeding = threading.Thread(target=tool.feed, args=(units(ENDLESS)[0],))
    feeding.start()
    time.sleep(0.2)
    tool.cancel()
    feeding.join(10)
    assert not feeding.is_alive()
    assert contents(db) == BEFORE


# Transaction control the model writes: the same meaning, inside the call's transaction.


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        # COMMIT: kept when the call completes.
        ("BEGIN;\nINSERT INTO t VALUES (2);\nCOMMIT;\nINSERT INTO t VALUES (3);\n", [1, 2, 3]),
        ("BEGIN IMMEDIATE TRANSACTION;\nINSERT INTO t VALUES (2);\nEND;\n", [1, 2]),
        # ROLLBACK undoes back to the model's BEGIN only.
        ("INSERT INTO t VALUES (2);\nBEGIN;\nINSERT INTO t VALUES (3);\nROLLBACK;\n", [1, 2]),
        # A BEGIN still open at the end is rolled back, as closing the connection does.
        ("INSERT INTO t VALUES (2);\nBEGIN;\nINSERT INTO t VALUES (3);\n", [1, 2]),
        # Savepoints: ROLLBACK TO keeps the savepoint, RELEASE of the outermost commits.
        (
            "SAVEPOINT a;\nINSERT INTO t VALUES (2);\nSAVEPOINT b;\nINSERT INTO t VALUES (3);\n"
            "ROLLBACK TO b;\nINSERT INTO t VALUES (4);\nRELEASE a;\nINSERT INTO t VALUES (5);\n",
            [1, 2, 4, 5],
        ),
        ('SAVEPOINT "A";\nINSERT INTO t VALUES (2);\nrelease savepoint a;\n', [1, 2]),
        # A savepoint inside BEGIN: releasing it leaves the BEGIN open (rolled back at the end).
        ("BEGIN;\nSAVEPOINT s;\nINSERT INTO t VALUES (2);\nRELEASE s;\n", [1]),
        ("SAVEPOINT s;\nINSERT INTO t VALUES (2);\nSAVEPOINT s;\nCOMMIT;\n", [1, 2]),
        ("SAVEPOINT s;\nINSERT INTO t VALUES (2);\nROLLBACK TRANSACTION;\n", [1]),
    ],
)
def test_the_models_transactions_keep_their_meaning(db, text, kept):
    out = drive(SqlTool, text, {"database": str(db)}).out
    assert out.status == "ok", out.error
    assert contents(db)["t"] == [(x,) for x in kept]
    # And autocommit gives the same (SQLite's own transactions).
    drive(SqlTool, "DELETE FROM t WHERE x > 1;\n", {"database": str(db)})
    out = drive(SqlTool, text, {"database": str(db), "transaction": False}).out
    assert out.status == "ok", out.error
    assert contents(db)["t"] == [(x,) for x in kept]


def test_a_committed_model_transaction_is_still_undone_when_the_call_is_cut(db):
    tool = started(db)
    feed_all(tool, "BEGIN;\nINSERT INTO t VALUES (2);\nCOMMIT;\n")
    tool.cancel()
    assert contents(db) == BEFORE


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("COMMIT;\n", "statement 2: OperationalError: cannot commit - no transaction is active"),
        ("ROLLBACK;\n", "statement 2: OperationalError: cannot rollback - no transaction is"),
        ("BEGIN;\nBEGIN;\n", "statement 3: OperationalError: cannot start a transaction within"),
        ("RELEASE x;\n", "statement 2: OperationalError: no such savepoint: x"),
        ("ROLLBACK TO x;\n", "statement 2: OperationalError: no such savepoint: x"),
        # The tool's own savepoints are not the model's to name.
        ("RELEASE conveyor_call;\n", "statement 2: OperationalError: no such savepoint: conve"),
        ("SAVEPOINT Conveyor_Call;\n", "statement 2: SqlTransactionError: savepoint name 'conv"),
    ],
)
def test_misplaced_transaction_control_is_an_error_as_in_sqlite(db, text, error):
    out = drive(SqlTool, "INSERT INTO t VALUES (2);\n" + text, {"database": str(db)}).out
    assert out.status == "error" and out.error.startswith(error), out.error
    assert contents(db)["t"] == [(1,), (2,)]  # what ran before it is kept, as autocommit would


# What SQLite cannot do inside a transaction.


def test_leading_settings_and_vacuum_run_before_the_transaction(db):
    text = (
        "PRAGMA foreign_keys = ON;\nVACUUM;\n"
        "CREATE TABLE p(id INTEGER PRIMARY KEY);\n"
        "CREATE TABLE c(p REFERENCES p(id));\nINSERT INTO c VALUES (7);\n"
    )
    out = drive(SqlTool, text, {"database": str(db)}).out
    # foreign_keys took effect (inside a transaction SQLite would have ignored it).
    assert out.error == "statement 5: IntegrityError: FOREIGN KEY constraint failed"
    assert set(contents(db)) == {"t", "p", "c"}


@pytest.mark.parametrize(
    "statement",
    ["VACUUM", "PRAGMA foreign_keys = ON", "PRAGMA main.synchronous = OFF", "VACUUM INTO 'x.db'"],
)
def test_after_the_first_write_they_are_refused_naming_the_remedy(db, statement):
    out = drive(SqlTool, f"INSERT INTO t VALUES (2);\n{statement};\n", {"database": str(db)}).out
    assert out.status == "error"
    assert out.error.startswith("statement 2: SqlTransactionError: ")
    assert "cannot run inside a transaction" in out.error and "transaction: false" in out.error
    autocommit = {"database": str(db), "transaction": False}
    out = drive(
        SqlTool,
        f"INSERT INTO t VALUES (3);\n{statement.replace('x.db', str(db.parent / 'y.db'))};\n",
        autocommit,
    ).out
    assert out.status == "ok", out.error


def test_journal_mode_belongs_to_setup(db):
    out = drive(SqlTool, "PRAGMA journal_mode = OFF;\n", {"database": str(db)}).out
    assert out.status == "error" and "set it in setup" in out.error
    out = drive(
        SqlTool,
        "PRAGMA journal_mode;\nINSERT INTO t VALUES (2);\n",
        {"database": str(db), "setup": "PRAGMA journal_mode = WAL;"},
    ).out
    assert (out.status, out.output) == ("ok", "journal_mode\n------------\nwal\n(1 row)\n")
    assert contents(db)["t"] == [(1,), (2,)]


def test_files_a_cut_call_created_are_removed(db, tmp_path):
    other, copy = tmp_path / "other.db", tmp_path / "copy.db"
    text = f"VACUUM INTO '{copy}';\nATTACH '{other}' AS o;\nCREATE TABLE o.v(z);\n"
    tool = started(db)
    feed_all(tool, text)
    assert copy.exists() and other.exists()
    tool.cancel()
    assert not copy.exists() and not other.exists()
    assert sorted(os.listdir(tmp_path)) == ["shop.db"]
    # Completed, they stay.
    out = drive(SqlTool, text, {"database": str(db)}).out
    assert out.status == "ok", out.error
    assert copy.exists() and contents(other) == {"v": []}


def test_setup_is_the_programs_and_is_kept(db):
    tool = started(db, {"setup": "INSERT INTO t VALUES (5);"})
    feed_all(tool, "INSERT INTO t VALUES (6);\n")
    tool.cancel()
    assert contents(db)["t"] == [(1,), (5,)]


def test_a_transaction_the_setup_left_open_stays_the_setups(db):
    # The call's statements run in a savepoint inside it; closing the connection with the
    # setup's transaction open rolls everything back, as it did in autocommit mode.
    config = {"setup": "BEGIN; INSERT INTO t VALUES (5);"}
    out = drive(
        SqlTool,
        "INSERT INTO t VALUES (6);\nSELECT count(*) AS n FROM t;\n",
        {"database": str(db), **config},
    ).out
    assert out.status == "ok" and "3" in out.output
    assert contents(db) == BEFORE


# In a worker: cancel, a timeout, a killed worker.


def _ran(session: ToolSession, count: int, timeout_s: float = 20.0) -> None:
    """Wait until the worker reported the first ``count`` units done."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        session.abort_reason  # noqa: B018 - drains the worker's messages
        if all(u.finished_at is not None for u in session.timeline.units[:count]):
            return
        time.sleep(0.02)
    raise AssertionError(f"units not done: {session.timeline.units}")


def test_in_a_worker_a_cancelled_session_leaves_the_file_as_it_was(db, pool):
    with ToolSession("sql", pool=pool, config={"database": str(db)}) as session:
        session.feed_text(WRITES)
        _ran(session, 3)
        assert contents(db) == BEFORE  # ran, not committed
        session.cancel()
        assert session.result().status == "aborted"
    assert contents(db) == BEFORE


def test_in_a_worker_a_completed_call_commits(db, pool):
    result = run_tool(
        "sql", [WRITES, "SELECT y FROM u;\n"], config={"database": str(db)}, pool=pool
    )
    assert result.status == "ok" and "new" in result.output
    if "landlock" not in sandbox_layers.report()["missing"]:  # type: ignore[operator]
        # Confined as in server mode: writes only beside the database, its journal included.
        assert "landlock" in (result.sandbox or []), result.sandbox
    assert contents(db) == {"t": [(1,), (2,)], "u": [("new",)]}


def test_in_a_worker_a_timed_out_call_leaves_the_file_as_it_was(db, pool):
    result = run_tool("sql", [WRITES, ENDLESS], config={"database": str(db)}, pool=pool, timeout=2)
    assert result.status == "timeout"
    assert all(u["finished_at"] is not None for u in result.units[:3])  # the writes ran
    assert contents(db) == BEFORE


def test_in_a_worker_a_killed_worker_leaves_the_file_as_it_was(db, pool):
    # Enough rows that SQLite spills the transaction into the file before the commit: the
    # kill leaves a hot journal, which the next connection rolls back.
    big = (
        "INSERT INTO t SELECT randomblob(2000) FROM "
        "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
        "SELECT i FROM n);\n"
    )
    size = db.stat().st_size
    with ToolSession("sql", pool=pool, config={"database": str(db)}) as session:
        session.feed_text(WRITES + big)
        _ran(session, 4)
        journal = Path(str(db) + "-journal")
        assert journal.exists() and db.stat().st_size > size  # written, not committed
        os.kill(session._handle.pid, signal.SIGKILL)
        result = session.result(20)
        assert result.status == "error" and "SIGKILL" in result.error, result.error
    assert contents(db) == BEFORE
    assert not journal.exists()


def test_in_a_worker_autocommit_keeps_what_ran(db, pool):
    config = {"database": str(db), "transaction": False}
    with ToolSession("sql", pool=pool, config=config) as session:
        session.feed_text(WRITES)
        _ran(session, 3)
        session.cancel()
    assert contents(db) == {"t": [(1,), (2,)], "u": [("new",)]}


def test_bad_transaction_option_fails_before_any_worker_starts():
    with pytest.raises(ValueError, match="transaction must be true"):
        ToolSession("sql", config={"transaction": 1})


def test_in_a_worker_a_cut_call_removes_the_file_its_attach_created(db, pool):
    other = db.parent / "other.db"
    with ToolSession("sql", pool=pool, config={"database": str(db)}) as session:
        session.feed_text(f"ATTACH '{other}' AS o;\nCREATE TABLE o.v(z);\n")
        _ran(session, 2)
        assert other.exists()
        session.cancel()
        assert session.result().status == "aborted"
    assert not other.exists() and contents(db) == BEFORE


def test_a_commit_that_cannot_take_the_lock_rolls_back_and_says_so(db):
    tool = started(db)
    feed_all(tool, "INSERT INTO t VALUES (2);\n")
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()  # a shared lock: the commit cannot write
    tool._db.execute("PRAGMA busy_timeout = 100")
    out = tool.finish()
    reader.execute("ROLLBACK")
    reader.close()
    assert out.status == "error"
    assert out.error == (
        "commit failed: OperationalError: database is locked; "
        "the call's statements were rolled back"
    )
    assert contents(db) == BEFORE
