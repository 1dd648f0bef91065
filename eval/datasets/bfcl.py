"""BFCL's data, read from the ``bfcl-eval`` wheel without installing it.

Source: the Berkeley Function Calling Leaderboard (Patil et al., Gorilla; Apache-2.0),
PyPI ``bfcl-eval==2026.3.23``, whose wheel ships ``bfcl_eval/data/BFCL_v4_<category>.json``
(one JSON object per line: id, question, function) and ``possible_answer/`` (the ground
truth: per argument, the list of accepted values). The package pins numpy 1.26.4 and many
clients, so it is never installed: the wheel is downloaded once (``pip download --no-deps``
from PyPI) into the project's cache (``conveyor_sgl.cache``, ``bfcl/``) and read with
``zipfile``. ``CONVEYOR_SGL_BFCL_WHEEL`` names a wheel already on disk instead.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from conveyor_sgl.cache import cache_root

VERSION = "2026.3.23"
WHEEL = f"bfcl_eval-{VERSION}-py3-none-any.whl"
WHEEL_ENV = "CONVEYOR_SGL_BFCL_WHEEL"
CITATION = (
    f"BFCL v4 (Berkeley Function Calling Leaderboard, Gorilla project; Apache-2.0), "
    f"PyPI bfcl-eval=={VERSION}, bfcl_eval/data"
)
EMPTY = ""  # BFCL's mark of an optional argument that may be left out


def wheel_path() -> Path:
    """The wheel on disk, downloaded into the cache the first time."""
    named = os.environ.get(WHEEL_ENV)
    if named:
        return Path(named)
    path = cache_root() / "bfcl" / WHEEL
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            subprocess.run(  # noqa: S603 - our own interpreter's pip, fixed arguments
                [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                 f"bfcl-eval=={VERSION}", "-d", tmp],
                check=True,
                timeout=600,
            )  # fmt: skip
            os.replace(Path(tmp) / WHEEL, path)  # atomic: a reader never sees half a wheel
    return path


@functools.cache
def _read(member: str) -> tuple[dict[str, Any], ...]:
    with zipfile.ZipFile(wheel_path()) as wheel:
        text = wheel.read(member).decode("utf-8")
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


def category(name: str, unused: bool = False) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(question item, answer item) pairs of ``BFCL_v4_<name>.json``, in file order;
    ``unused``: from ``data/unused_datasets`` (e.g. ``exec_simple``)."""
    base = "bfcl_eval/data/unused_datasets/" if unused else "bfcl_eval/data/"
    questions = _read(f"{base}{'question/' if unused else ''}BFCL_v4_{name}.json")
    answers = {a["id"]: a for a in _read(f"{base}possible_answer/BFCL_v4_{name}.json")}
    return [(q, answers[q["id"]]) for q in questions if q["id"] in answers]


def user_message(question: dict[str, Any]) -> str:
    """The user's request (the first user turn of the item's first conversation)."""
    turns = question["question"]
    turns = turns[0] if turns and isinstance(turns[0], list) else turns
    return next(t["content"] for t in turns if t["role"] == "user")


def pick(options: list[Any]) -> Any:
    """The first accepted value of an argument (EMPTY if it may only be left out); a dict
    value holds the accepted values of each of its keys in turn."""
    for option in options:
        if option == EMPTY:
            continue
        if isinstance(option, dict):
            picked = {key: pick(values) for key, values in option.items()}
            return {key: value for key, value in picked.items() if value != EMPTY}
        return option
    return EMPTY


_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": None}


def json_schema(parameters: dict[str, Any], top: bool = True) -> dict[str, Any]:
    """BFCL's parameter description as JSON Schema (``dict`` -> object, ``float`` -> number,
    ``tuple`` -> array, ``any`` -> no type); the arguments object takes no unknown keys, as
    strict function calling does."""
    kind = parameters.get("type")
    schema: dict[str, Any] = {}
    if _TYPES.get(kind, kind):
        schema["type"] = _TYPES.get(kind, kind)
    if "enum" in parameters:
        schema["enum"] = list(parameters["enum"])
    if "items" in parameters and isinstance(parameters["items"], dict):
        schema["items"] = json_schema(parameters["items"], top=False)
    if isinstance(parameters.get("properties"), dict):
        props = parameters["properties"]
        schema["properties"] = {k: json_schema(v, top=False) for k, v in props.items()}
        schema["required"] = [k for k in parameters.get("required", []) if k in props]
        if top:
            schema["additionalProperties"] = False
    return schema
