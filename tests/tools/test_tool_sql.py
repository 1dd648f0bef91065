"""The SQL statement parser and the SQLite tool: statements run as they are decoded."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tool_drive import drive, first_started_before_last_decoded
from worker_fixtures import fresh_pool, no_leaked_workers

from conveyor_sgl.parsers import ParseError, SqlStatementParser, Unit, parse_chunks
from conveyor_sgl.runtime.run_tool import run_tool
from conveyor_sgl.tools.sql import SqlTool, render_table

pytestmark = pytest.mark.timeout(60)
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)
_pool = pytest.fixture(name="pool")(fresh_pool)

SCRIPT = """-- a small shop
CREATE TABLE items(name TEXT, price REAL, note TEXT);
INSERT INTO items VALUES ('tea', 3.5, 'a;b'), ('coffee', 4.0, NULL);
CREATE TRIGGER cheap AFTER INSERT ON items WHEN new.price < 1 BEGIN
  UPDATE items SET note = 'cheap; very' WHERE name = new.name;
END;
INSERT INTO items VALUES ("gum", 0.5, '');
/* the question */ SELECT name, price, note FROM items ORDER BY price;
"""
STATEMENTS = [
    "CREATE TABLE items(name TEXT, price REAL, note TEXT);",
    "INSERT INTO items VALUES ('tea', 3.5, 'a;b'), ('coffee', 4.0, NULL);",
    (
        "CREATE TRIGGER cheap AFTER INSERT ON items WHEN new.price < 1 BEGIN\n"
        "  UPDATE items SET note = 'cheap; very' WHERE name = new.name;\nEND;"
    ),
    "INSERT INTO items VALUES (\"gum\", 0.5, '');",
    "SELECT name, price, note FROM items ORDER BY price;",
]
TABLE = """name   | price | note
-------+-------+------------
gum    | 0.5   | cheap; very
tea    | 3.5   | a;b
coffee | 4.0   | NULL
(3 rows)
"""


def units_of(chunks: list[str]) -> list[Unit]:
    return parse_chunks(SqlStatementParser(), chunks)


def test_statements_are_cut_where_sqlite_says_they_end():
    units = units_of([SCRIPT])
    assert [u.text for u in units] == STATEMENTS
    assert all(SCRIPT[u.start : u.end] == u.text for u in units)
    assert [u.data["index"] for u in units] == list(range(5))


def test_a_statement_is_a_unit_as_soon_as_its_semicolon_arrives():
    parser = SqlStatementParser()
    assert parser.feed("SELECT 'a;") == []  # inside a string: not the end
    assert [u.text for u in parser.feed("b';")] == ["SELECT 'a;b';"]
    assert parser.feed("  ;  -- nothing\n") == []  # empty statements are skipped
    assert parser.close() == []


def test_close_emits_a_last_statement_without_semicolon():
    assert [u.text for u in units_of(["SELECT 1;\nSELECT 2 -- last\n  "])] == [
        "SELECT 1;",
        "SELECT 2 -- last",
    ]


@pytest.mark.parametrize(
    "tail", ["SELECT 'open", "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1;"]
)
def test_a_statement_that_can_never_complete_is_a_parse_error(tail):
    parser = SqlStatementParser()
    parser.feed("SELECT 1;\n" + tail)
    with pytest.raises(ParseError, match="unterminated SQL statement at offset 9"):
        parser.close()


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_chunking_never_changes_the_units(data):
    text = data.draw(
        st.sampled_from([SCRIPT, "SELECT ';';;'x'; -- c;\n/* ; */ SELECT 2", "a;b;;c"])
    )
    cuts = sorted(data.draw(st.sets(st.integers(1, len(text) - 1), max_size=12)))
    chunks = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    assert units_of(chunks) == units_of([text])


def test_render_table_aligns_and_counts():
    assert render_table(["a", "bb"], [(1, None), ("xyz", 2.5)], more=3) == (
        "a   | bb\n----+-----\n1   | NULL\nxyz | 2.5\n(5 rows, 3 not shown)\n"
    )


def test_tool_runs_ddl_inserts_and_shows_the_query():
    out = drive(SqlTool, SCRIPT).out
    assert (out.status, out.error, out.output) == ("ok", None, TABLE)


def test_without_a_query_the_output_counts_statements():
    out = drive(SqlTool, "CREATE TABLE t(x);INSERT INTO t VALUES (1);").out
    assert out.output == "2 statements ran, no rows returned\n"


def test_setup_and_max_rows_come_from_config():
    config = {"setup": "CREATE TABLE n(i); INSERT INTO n VALUES (1),(2),(3);", "max_rows": 2}
    out = drive(SqlTool, "SELECT i FROM n ORDER BY i;", config).out
    assert out.output == "i\n-\n1\n2\n(3 rows, 1 not shown)\n"


def test_the_database_file_keeps_what_the_statements_did(tmp_path):
    path = tmp_path / "shop.db"
    drive(SqlTool, SCRIPT, {"database": str(path)})
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM items").fetchone() == (3,)


def test_the_first_failing_statement_stops_the_run_and_is_named():
    out = drive(SqlTool, "SELECT 1 AS one;\nSELECT * FROM missing;\nCREATE TABLE later(x);").out
    assert out.status == "error"
    assert out.error == "statement 2: OperationalError: no such table: missing"
    assert out.output == "one\n---\n1\n(1 row)\n"


@pytest.mark.parametrize(
    ("config", "message"),
    [({"setup": "CREATE TABLE"}, "setup script failed"), ({"max_rows": "ten"}, "max_rows")],
)
def test_bad_config_is_an_error_at_start(config, message):
    with pytest.raises((ValueError, TypeError), match=message):
        SqlTool().start(config)


def test_cancel_interrupts_a_running_query():
    tool = SqlTool()
    tool.start({})
    endless = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n;"
    )
    unit = units_of([endless])[0]
    feeding = threading.Thread(target=tool.feed, args=(unit,))
    feeding.start()
    time.sleep(0.2)
    tool.cancel()
    feeding.join(10)
    assert not feeding.is_alive()
    out = tool.finish()
    assert (out.status, out.error) == ("aborted", "cancelled")


@pytest.mark.timing
def test_in_a_worker_statements_run_while_the_query_is_decoded(pool):
    chunks = [SCRIPT[i : i + 24] for i in range(0, len(SCRIPT), 24)]
    result = run_tool("sql", chunks, pool=pool, chunk_interval=0.03)
    assert (result.status, result.output) == ("ok", TABLE)
    assert [u["text"] for u in result.units] == STATEMENTS
    assert first_started_before_last_decoded(result.units)
    # DDL and inserts were done before the query's text was complete.
    assert result.units[1]["finished_at"] < result.units[-1]["decoded_at"]


def test_in_a_worker_errors_are_data(pool):
    result = run_tool("sql", "SELEC 1;", pool=pool)
    assert result.status == "error" and result.error.startswith("statement 1: OperationalError")
    unterminated = run_tool("sql", "SELECT 'x", pool=pool)
    assert unterminated.status == "error" and "unterminated SQL statement" in unterminated.error
