"""Commit or undo in server mode: a sql call run by the server (``/conveyor/partial_tool``, a
forced output) on a real file database under ``--tool-files-root`` commits when it completes
and leaves the file as it was when it is cut (a short ``result_timeout``, the client gone);
a request may ask for autocommit (``transaction: false``)."""

# ruff: noqa: S608 - the tests write SQL texts, as a model does

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import POLICED_AUTH
from sql_files import contents, make_database

from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer
from conveyor_sgl.runtime.server.protocol import EVENT_KEY, PARTIAL_TOOL_PATH, RESULT, TEXT_KEY
from programs.code_solver import forced

pytestmark = [pytest.mark.server, pytest.mark.timeout(300)]

WRITES = "INSERT INTO t VALUES (2);\nCREATE TABLE u(y);\nINSERT INTO u VALUES ('new');\n"
ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n;\n"
BEFORE = {"t": [(1,)]}
AFTER = {"t": [(1,), (2,)], "u": [("new",)]}


@pytest.fixture(scope="module")
def served(policed_server):
    """The session's server with a files root (tests/conftest.py), sql allowed."""
    return policed_server.server, policed_server.root


@pytest.fixture
def db(served, request) -> Path:
    """A fresh file database under the files root, holding t = [1]."""
    _, root = served
    path = root / f"{request.node.name}.db"
    return make_database(path)


def _post(
    server: EmbeddedServer, db: Path, text: str, tokens: int = 512, **extra: Any
) -> requests.Response:
    config = {"database": db.name, **extra.pop("config", {})}
    sampling = {"max_new_tokens": tokens, "regex": forced(text), "temperature": 0}
    body = {
        "tool": "sql",
        "config": config,
        "generate": {"text": "SQL:\n", "sampling_params": sampling},
        **extra,
    }
    answer = requests.post(
        server.url + PARTIAL_TOOL_PATH, json=body, headers=POLICED_AUTH, stream=True, timeout=120
    )
    assert answer.status_code == 200, answer.text
    return answer


def _events(answer: requests.Response):
    for line in answer.iter_lines():
        if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
            yield json.loads(line[5:])


def _result(answer: requests.Response) -> dict[str, Any]:
    with answer:
        results = [e["tool"] for e in _events(answer) if e.get(EVENT_KEY) == RESULT]
    assert len(results) == 1
    return results[0]


def _write_locked(path: Path) -> bool:
    """Another connection cannot start writing: a transaction holds the file's write lock."""
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as e:
        assert "locked" in str(e)
        return True
    finally:
        probe.close()


def _until(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_completed_call_commits(served, db):
    server, _ = served
    tool = _result(_post(server, db, WRITES + "SELECT count(*) AS n FROM t;\n"))
    assert (tool["status"], tool["mode"]) == ("ok", "server"), tool
    assert "n\n-\n2\n(1 row)" in tool["output"]
    assert "landlock" in tool["sandbox"]  # the journal is written beside the database
    assert contents(db) == AFTER


def test_a_timed_out_call_leaves_the_file_as_it_was(served, db):
    server, _ = served
    tool = _result(_post(server, db, WRITES + ENDLESS, result_timeout=3))
    assert tool["status"] == "timeout", tool
    assert all(unit["finished_at"] is not None for unit in tool["units"][:3])  # the writes ran
    assert contents(db) == BEFORE


def test_a_request_may_ask_for_autocommit(served, db):
    server, _ = served
    answer = _post(server, db, WRITES + ENDLESS, result_timeout=3, config={"transaction": False})
    tool = _result(answer)
    assert tool["status"] == "timeout", tool
    assert contents(db) == AFTER  # each statement was durable as it ran


def test_a_call_whose_client_went_away_leaves_the_file_as_it_was(served, db):
    server, _ = served
    # The insert runs at once; a long comment keeps the model decoding after it.
    tail = " ".join(["and then some more words"] * 150)
    answer = _post(server, db, f"INSERT INTO t VALUES (2);\n-- {tail}\n", tokens=2048)
    events = _events(answer)  # kept: dropping the iterator would close the connection
    seen = ""
    while ";" not in seen:
        seen += next(events).get(TEXT_KEY) or ""
    # The insert ran inside the call's open transaction: it holds the write lock.
    _until(lambda: _write_locked(db), 30)
    assert contents(db) == BEFORE
    answer.close()  # the client goes away mid-decoding: the server cancels the call
    _until(lambda: not _write_locked(db), 60)
    assert contents(db) == BEFORE
