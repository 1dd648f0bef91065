"""A database program: the model writes SQL; each statement runs in SQLite when decoded.

    python -m programs.sql_agent [--url URL]

The schema and rows come first and run while the query is still being decoded. A light
tool: the gain is near zero, and must never be a loss. Output forced with a regex.
"""

from __future__ import annotations

import sglang as sgl
from sglang.lang.interpreter import ProgramState

from conveyor_sgl import partial_tool, tool_result
from programs.code_solver import forced
from programs.runner import checked, demo

TASK = "Record three orders and report the revenue per customer, largest first."
REFERENCE_SQL = """CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, amount REAL);
INSERT INTO orders(customer, amount) VALUES ('ada', 12.5), ('bob', 7.0), ('ada', 30.0);
SELECT customer, sum(amount) AS revenue, count(*) AS orders
FROM orders GROUP BY customer ORDER BY revenue DESC;
"""
CONFIG = {"database": ":memory:", "max_rows": 20}


@sgl.function
def query(s, task, sql_regex=None, partial=True):
    s += sgl.user(task)
    s += sgl.assistant_begin()
    s += "```sql\n" + partial_tool(
        "sql",
        tool="sql",
        partial=partial,
        config=CONFIG,
        stop="```",
        max_tokens=256,
        regex=sql_regex,
    )
    s += "```\nResult:\n" + tool_result("sql", timeout=60)
    s += sgl.gen("answer", max_tokens=24)
    s += sgl.assistant_end()


def run_once(partial: bool) -> ProgramState:
    return checked(query.run(TASK, sql_regex=forced(REFERENCE_SQL, "```"), partial=partial))


if __name__ == "__main__":
    demo(__doc__.splitlines()[0], run_once, "sql")
