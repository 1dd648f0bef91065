"""code-heavy: code-interpreter sessions doing real work with numpy, pandas and scikit-learn.

Each program is a file in ``data/code_heavy/``, written for this benchmark after a named
public example (its ``# Source:`` header: the scikit-learn example gallery and user guide,
the pandas user guide, the NumPy tutorials; all BSD-3-Clause) and run on a dataset that
scikit-learn ships (iris, digits, wine, diabetes, breast cancer, Linnerud): imports,
loading, fitting, printing. The ``# Task:`` header is the request; the reference is the
program below the header. Each runs in about 1-3 s in the confined Python worker (most of
it importing scikit-learn: the first statements are the expensive ones).
"""

from __future__ import annotations

from pathlib import Path

from eval.workload import Workload

GROUP = "code-heavy"
PROGRAM_DIR = Path(__file__).resolve().parent / "data" / "code_heavy"
SOURCE = (
    "programs written for this benchmark after named public examples (scikit-learn example "
    "gallery and user guide, pandas user guide, NumPy tutorials; BSD-3-Clause), on datasets "
    "scikit-learn ships"
)


def parse(text: str) -> tuple[dict[str, str], str]:
    """(header fields, program): the leading ``# Field: ...`` comment block and the rest."""
    fields: dict[str, str] = {}
    lines = text.splitlines(keepends=True)
    key = None
    i = 0
    while i < len(lines) and lines[i].startswith("#"):
        line = lines[i][1:].strip()
        head, sep, rest = line.partition(": ")
        if sep and head.isalpha() and not lines[i].startswith("#   "):
            key = head.lower()
            fields[key] = rest
        elif key is not None:
            fields[key] += " " + line
        i += 1
    return fields, "".join(lines[i:]).lstrip("\n")


def workload(path: Path) -> Workload:
    fields, program = parse(path.read_text(encoding="utf-8"))
    missing = {"source", "task"} - set(fields)
    assert not missing, f"{path.name}: header lacks {sorted(missing)}"
    return Workload(
        name=f"{GROUP}:{path.stem}",
        group=GROUP,
        item=path.stem,
        tool="python",
        prompt=f"{fields['task']} Use the Python tool.",
        reference=program,
        description=f"{fields['task']}",
        source=fields["source"],
        config={},
        prefix="```python\n",
        end="```",
        suffix="```\nOutput:\n",
        answer="The results are printed above.",
    )


def load() -> list[Workload]:
    """Every program, by file name."""
    return [workload(path) for path in sorted(PROGRAM_DIR.glob("*.py"))]
