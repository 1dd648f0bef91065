"""validation: BFCL's single-call function-calling items, their ground truth as the call.

Items: every item of BFCL v4 ``simple_python`` (400), ``multiple`` (200) and ``live_simple``
(258) whose ground truth validates against its function's schema (see ``bfcl``). The tool's
config is the called function's schema as JSON Schema; the reference is its ground-truth
arguments as JSON (the first accepted value of each argument; arguments BFCL only allows to
be left out are left out). A fixed share (``INVALID_SHARE``, drawn per item with a fixed
seed, so an item is the same in every sample) is made invalid by one perturbation at a
drawn field position: a wrong type (``10`` -> ``"10"``, ``"x"`` -> ``["x"]``), a value
outside the enum, or an unknown key inserted there. The tool then aborts at that field and
the rest of the call is never decoded: that saving is what this workload measures. The
description says which perturbation and where; ``expect`` is ``aborted``.
"""

from __future__ import annotations

import json
from typing import Any

from conveyor_sgl.tools.validation import FieldValidator
from eval.datasets import bfcl
from eval.datasets.sampling import rng
from eval.workload import Workload

GROUP = "validation"
CATEGORIES = ("simple_python", "multiple", "live_simple")
INVALID_SHARE = 0.3
_SEED = "bfcl-perturbation-v1"
_EXTRA_KEYS = ("verbose", "format", "timeout", "language", "limit", "units")


def wrong_type(value: Any) -> Any:
    """The slip of writing a value in the wrong JSON type (quoting a number...)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return json.dumps(value)


def bad_enum(value: Any, enum: list[Any]) -> Any:
    for candidate in (str(value).upper(), str(value).capitalize(), f"{value}s", f"{value}_other"):
        if candidate not in enum:
            return candidate
    raise AssertionError("unreachable: four distinct strings cannot all be in the enum")


def perturb(item_id: str, args: dict[str, Any], schema: dict[str, Any]):
    """(arguments, note, field) made invalid at a drawn field, or None to stay valid."""
    r = rng(f"{_SEED}:{item_id}")
    if r.random() >= INVALID_SHARE:
        return None
    keys = list(args)
    position = r.randrange(len(keys))
    key = keys[position]
    field = schema["properties"][key]
    kinds = ["wrong type"] * ("type" in field) + ["bad enum"] * ("enum" in field)
    kind = r.choice([*kinds, "unknown key"])
    out = dict(args)
    if kind == "wrong type":
        out[key] = wrong_type(args[key])
    elif kind == "bad enum":
        out[key] = bad_enum(args[key], field["enum"])
    else:
        extra = next(k for k in r.sample(_EXTRA_KEYS, len(_EXTRA_KEYS)) if k not in args)
        items = list(args.items())
        items.insert(position, (extra, True))
        out, key = dict(items), extra
    note = f"{kind} at field {position + 1} of {len(args)}: {key!r} = {json.dumps(out[key])}"
    return out, note, key


def workload(category: str, question: dict[str, Any], answer: dict[str, Any]):
    """The item, or None if its ground truth does not fit its own schema."""
    (name, options), = answer["ground_truth"][0].items()  # fmt: skip
    function = next((f for f in question["function"] if f["name"] == name), None)
    if function is None:
        return None
    schema = bfcl.json_schema(function["parameters"])
    args = {k: v for k, v in ((k, bfcl.pick(o)) for k, o in options.items()) if v != bfcl.EMPTY}
    checker = FieldValidator(schema)
    if (
        not args
        or checker.whole_error(args)
        or any(checker.field_error(k, v) for k, v in args.items())
    ):
        return None
    perturbed = perturb(question["id"], args, schema)
    if perturbed is not None:
        args, note, key = perturbed
        assert checker.field_error(key, args[key]), (question["id"], note)
    reference = json.dumps(args, ensure_ascii=False)
    if ")</tool_call>" in reference:
        return None
    return Workload(
        name=f"{GROUP}:{question['id']}",
        group=GROUP,
        item=question["id"],
        tool="validation",
        prompt=(
            f"{bfcl.user_message(question)}\n\nCall {name}: {function.get('description', '')}\n"
            f"Its parameters: {json.dumps(function['parameters'], ensure_ascii=False)}"
        ),
        reference=reference,
        description=f"BFCL {category}: {'invalid, ' + note if perturbed else 'valid call'}",
        source=bfcl.CITATION + f"/BFCL_v4_{category}.json and possible_answer/",
        config={"schema": schema},
        prefix=f"<tool_call>{name}(",
        end=")</tool_call>",
        suffix=")</tool_call>\nResult:\n",
        answer="The call was rejected; I will fix it." if perturbed else "The call is valid.",
        expect="aborted" if perturbed else "ok",
    )


def load() -> list[Workload]:
    items = []
    for category in CATEGORIES:
        for question, answer in bfcl.category(category):
            item = workload(category, question, answer)
            if item is not None:
                items.append(item)
    return items
