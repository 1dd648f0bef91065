"""The validation tool: checks function-call arguments field by field as each field closes.

The ``json`` parser emits each top-level key/value pair of the arguments object as soon as
its value is finished. Each pair is checked at once against its subschema (types, ranges,
enums, patterns, nested objects: anything JSON Schema says about that one field) with the
``jsonschema`` library; an unknown field is refused at once when ``additionalProperties``
is false. On the first invalid field ``feed`` returns ``Abort``: decoding stops early, which
is the gain here (decode time saved, not tool time), and the result has status ``aborted``
with the reason. At ``finish`` the whole object is checked (``required``, dependencies).

Config:
- ``schema`` (object, required): the JSON Schema of the arguments object;
- ``function`` (str, optional): ``"module:callable"`` called with the validated arguments as
  keyword arguments; its result (``str()``) is the output.

Output: the validated arguments as JSON (or the function's result). Errors: an invalid
field aborts (``"invalid argument 'unit': 'kelvin' is not one of ['c', 'f']"``); a whole-object
failure at finish or a raising function gives status ``error``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

import jsonschema

from conveyor_sgl.runtime.parsers.base import Unit
from conveyor_sgl.tools.base import (
    Abort,
    ConfigReferences,
    Tool,
    ToolOutput,
    check_known_options,
)
from conveyor_sgl.tools.registry import split_import_path


def load_callable(target: str) -> Callable[..., Any]:
    module_name, name = split_import_path(target, "function", "module:callable")
    obj: Any = importlib.import_module(module_name)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"function {target!r} is not callable")
    return obj


class FieldValidator:
    """Checks one field at a time against the part of the schema that governs it."""

    def __init__(self, schema: dict[str, Any]) -> None:
        if not isinstance(schema, dict):
            raise TypeError(f"schema must be a JSON Schema object, got {type(schema).__name__}")
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)  # a bad schema is a config error, said at start
        self._whole = validator_class(schema)
        self._properties: dict[str, Any] = schema.get("properties", {})
        self._additional: Any = schema.get("additionalProperties", True)

    def field_error(self, key: str, value: Any) -> str | None:
        """Why ``key: value`` can never be valid, or None."""
        if key in self._properties:
            subschema = self._properties[key]
        elif self._additional is False:
            allowed = ", ".join(sorted(self._properties)) or "none"
            return f"unexpected argument {key!r} (allowed: {allowed})"
        elif isinstance(self._additional, dict):
            subschema = self._additional
        else:
            return None
        # evolve() keeps the root schema, so a "$ref" inside the subschema still resolves.
        error = jsonschema.exceptions.best_match(
            self._whole.evolve(schema=subschema).iter_errors(value)
        )
        return None if error is None else f"invalid argument {key!r}: {error.message}"

    def whole_error(self, arguments: dict[str, Any]) -> str | None:
        error = jsonschema.exceptions.best_match(self._whole.iter_errors(arguments))
        return None if error is None else f"invalid arguments: {error.message}"


class ValidationTool(Tool):
    parser = "json"
    partial = True

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        """The schema is checked here; the function is imported only in the worker."""
        check_known_options(config, ["schema", "function"])
        _require_schema(config)
        FieldValidator(config["schema"])
        if config.get("function") is not None:
            split_import_path(config["function"], "function", "module:callable")

    @classmethod
    def config_references(cls, config: dict[str, Any]) -> ConfigReferences:
        function = config.get("function")
        return ConfigReferences(callables=(function,) if function else ())

    def start(self, config: dict[str, Any]) -> None:
        _require_schema(config)
        self._validator = FieldValidator(config["schema"])
        function = config.get("function")
        self._function = load_callable(function) if function else None
        self._arguments: dict[str, Any] = {}
        self._aborted: str | None = None  # the reason, once a field was refused
        self._cancelled = False

    def feed(self, unit: Unit) -> Abort | None:
        if self._cancelled or self._aborted is not None:
            return None
        key, value = unit.data["key"], unit.data["value"]
        if key in self._arguments:
            self._aborted = f"duplicate argument {key!r}"
        else:
            self._arguments[key] = value
            self._aborted = self._validator.field_error(key, value)
        return None if self._aborted is None else Abort(self._aborted)

    def finish(self) -> ToolOutput:
        if self._cancelled:
            return ToolOutput("", "aborted", "cancelled")
        if self._aborted is not None:
            # The arguments were cut short on purpose: the field's reason, not "required".
            return ToolOutput("", "aborted", self._aborted)
        reason = self._validator.whole_error(self._arguments)
        if reason is not None:
            return ToolOutput("", "error", reason)
        if self._function is None:
            return ToolOutput(json.dumps(self._arguments, ensure_ascii=False))
        try:
            result = self._function(**self._arguments)
        except Exception as e:  # noqa: BLE001 - the configured function's failure is data
            return ToolOutput("", "error", f"function raised {type(e).__name__}: {e}")
        return ToolOutput(str(result))

    def cancel(self) -> None:
        self._cancelled = True


def _require_schema(config: dict[str, Any]) -> None:
    if "schema" not in config:
        raise ValueError("validation needs config['schema'], the JSON Schema of the arguments")
