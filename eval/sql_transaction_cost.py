"""The cost of the sql tool's per-call transaction (``transaction: true``, the default) against
autocommit (``transaction: false``), on the database workload's statements over a file database.

Each of the workload's 37 answers (``eval.datasets.database``: one to four statements over a
table of scikit-learn's bundled datasets) is one call, run on a fresh copy of its table's
database file (the copy is made before the clock starts), with the transaction on and off in
alternating order, ``--reps`` times. Two variants of the statements:

- ``as written``: queries, and the ``CREATE TEMP VIEW`` / ``TABLE`` some answers make first (the
  temporary schema is not the file: nothing is written to it);
- ``persistent``: the same with ``TEMP`` dropped, so those views and tables are written to the
  file: autocommit commits (and syncs) each such statement, the transaction once per call.

A call is timed in process (``SqlTool``: start, which opens the file, each statement's
``feed``, ``finish``, which commits and closes), which isolates the tool's own cost; with
``--worker`` also end to end through a warm worker pool (``run_tool``). Printed: the median and
p90 of a call (ms) per variant and setting, and the ratio on/off of each.

    python -m eval.sql_transaction_cost [--reps 20] [--worker] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

from conveyor_sgl.parsers import SqlStatementParser, Unit, parse_chunks
from conveyor_sgl.tools.sql import SqlTool
from eval.datasets import database
from eval.datasets.database_tables import setup_script

VARIANTS = ("as written", "persistent")
SETTINGS = (True, False)  # transaction on, off


def templates(directory: str) -> dict[str, str]:
    """One database file per table of the workload, built once in ``directory``:
    {table: path}."""
    paths = {}
    for item in database.load():
        table = item.item.split("/")[0]
        path = os.path.join(directory, f"template-{table}.db")
        if not os.path.exists(path):
            with sqlite3.connect(path) as db:
                db.executescript(setup_script(table))
            db.close()
        paths[table] = path
    return paths


def calls(variant: str) -> list[tuple[str, str]]:
    """(table, SQL) of every answer of the workload, in ``variant``."""
    out = []
    for item in database.load():
        sql = item.reference
        if variant == "persistent":
            sql = sql.replace("CREATE TEMP ", "CREATE ")
        out.append((item.item.split("/")[0], sql))
    return out


def in_process(path: str, units: list[Unit], transaction: bool) -> float:
    """One call of the tool in this process on ``path``: its wall time (ms)."""
    start = time.perf_counter()
    tool = SqlTool()
    tool.start({"database": path, "transaction": transaction})
    for unit in units:
        tool.feed(unit)
    out = tool.finish()
    elapsed = (time.perf_counter() - start) * 1000
    assert out.status == "ok", out.error
    return elapsed


def through_worker(pool: object) -> Callable[[str, str, bool], float]:
    from conveyor_sgl.runtime.run_tool import run_tool

    def run(path: str, sql: str, transaction: bool) -> float:
        start = time.perf_counter()
        config = {"database": path, "transaction": transaction}
        result = run_tool("sql", sql, config=config, pool=pool, timeout=30)  # type: ignore[arg-type]
        elapsed = (time.perf_counter() - start) * 1000
        assert result.status == "ok", result.error
        return elapsed

    return run


def measure(
    reps: int, directory: str, worker: object | None
) -> dict[tuple[str, bool], list[float]]:
    """Per (variant, transaction): every call's time (ms)."""
    sources = templates(directory)
    work = os.path.join(directory, "call.db")
    times: dict[tuple[str, bool], list[float]] = {}
    order = random.Random(0)  # noqa: S311 - an order, not a secret
    run_worker = through_worker(worker) if worker is not None else None
    for variant in VARIANTS:
        answers = [(t, sql, parse_chunks(SqlStatementParser(), [sql])) for t, sql in calls(variant)]
        for _ in range(reps):
            for table, sql, units in answers:
                settings = list(SETTINGS)
                order.shuffle(settings)
                for transaction in settings:
                    for suffix in ("", "-journal"):
                        if os.path.exists(work + suffix):
                            os.unlink(work + suffix)
                    shutil.copyfile(sources[table], work)
                    if run_worker is not None:
                        ms = run_worker(work, sql, transaction)
                    else:
                        ms = in_process(work, units, transaction)
                    times.setdefault((variant, transaction), []).append(ms)
    return times


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def report(title: str, times: dict[tuple[str, bool], list[float]], writes: list[bool]) -> None:
    """Median and p90 per variant and setting, over all answers and over those that create
    a view or table (``writes``: per answer, repeated in the order ``measure`` ran them)."""
    print(f"\n{title}")
    header = f"{'variant':<11} {'answers':<9} {'setting':<13} {'calls':>5}"
    print(f"{header} {'median ms':>10} {'p90 ms':>8}")
    for variant in VARIANTS:
        for subset in ("all", "writing"):
            rows = {}
            for transaction in SETTINGS:
                values = times[(variant, transaction)]
                if subset == "writing":
                    values = [v for i, v in enumerate(values) if writes[i % len(writes)]]
                rows[transaction] = values
                setting = "transaction" if transaction else "autocommit"
                print(
                    f"{variant:<11} {subset:<9} {setting:<13} {len(values):>5} "
                    f"{statistics.median(values):>10.3f} {p90(values):>8.3f}"
                )
            on, off = rows[True], rows[False]
            ratio = statistics.median(on) / statistics.median(off)
            print(
                f"{variant:<11} {subset:<9} {'ratio on/off':<13} {'':>5} "
                f"{ratio:>10.3f} {p90(on) / p90(off):>8.3f}"
            )


def filesystem(path: str) -> str:
    try:
        out = subprocess.run(  # noqa: S603 - a fixed command on our own path
            ["df", "-T", path],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[-1]
        return out.split()[1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reps", type=int, default=20, help="repetitions of each answer")
    parser.add_argument("--worker", action="store_true", help="also end to end, via run_tool")
    parser.add_argument("--worker-reps", type=int, default=5, help="repetitions via run_tool")
    parser.add_argument("--dir", default=None, help="where the database files go")
    args = parser.parse_args(argv)
    directory = tempfile.mkdtemp(prefix="conveyor-sql-cost-", dir=args.dir)
    try:
        print(
            f"database workload: {len(database.load())} answers; files in {directory} "
            f"({filesystem(directory)}); SQLite {sqlite3.sqlite_version}, journal_mode delete, "
            "synchronous full"
        )
        writes = ["CREATE " in sql for _, sql in calls("as written")]
        print(f"{sum(writes)} answers create a view or table first")
        report(
            f"in process (SqlTool), {args.reps} reps per answer",
            measure(args.reps, directory, None),
            writes,
        )
        if args.worker:
            from conveyor_sgl.runtime.workers.pool import WorkerPool

            with WorkerPool(size=2) as pool:
                pool.wait_ready(30)
                report(
                    f"through a worker (run_tool, warm pool), {args.worker_reps} reps per answer",
                    measure(args.worker_reps, directory, pool),
                    writes,
                )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
