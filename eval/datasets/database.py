"""database: questions answered in SQL over tables of scikit-learn's bundled datasets.

Source: 37 questions with their SQL (``database_questions``) written for this benchmark in
the style of Spider (Yu et al., 2018: a question in English over a known schema), over
SQLite tables of four public datasets that scikit-learn ships (``database_tables``: Fisher's
iris, UCI Wine, Efron et al.'s diabetes, UCI Wisconsin breast cancer). The table is the SQL
tool's ``setup`` (created in memory before any decoded statement runs); the reference is
the SQL. A light tool: each statement takes well under a millisecond.
"""

from __future__ import annotations

from eval.datasets.database_questions import QUESTIONS
from eval.datasets.database_tables import setup_script
from eval.workload import Workload

GROUP = "database"
SOURCE = (
    "questions and SQL written for this benchmark (Spider-style), over SQLite tables of "
    "scikit-learn's bundled datasets: iris (Fisher 1936), wine (UCI), diabetes (Efron et al. "
    "2004), breast cancer (UCI Wisconsin Diagnostic)"
)


def workload(number: int, table: str, question: str, sql: str) -> Workload:
    schema = setup_script(table).split("\n", 1)[0]  # the CREATE TABLE line
    statements = sql.count(";")
    return Workload(
        name=f"{GROUP}:{table}/{number}",
        group=GROUP,
        item=f"{table}/{number}",
        tool="sql",
        prompt=f"The SQLite database has this table:\n{schema}\n\n{question} Answer in SQL.",
        reference=sql + "\n",
        description=f"{question} ({statements} statement{'s' if statements > 1 else ''})",
        source=SOURCE,
        config={"database": ":memory:", "setup": setup_script(table)},
        prefix="```sql\n",
        end="```",
        suffix="```\nResult:\n",
        answer="The tables above answer the question.",
    )


def load() -> list[Workload]:
    return [workload(i + 1, *question) for i, question in enumerate(QUESTIONS)]
