"""The validation tool: checks function-call arguments field by field as each field closes.

The ``json`` parser emits each top-level key/value pair of the arguments object as soon as
its value is finished. Each pair is checked at once against its subschema (types, ranges,
enums, patterns, nested objects: anything JSON Schema says about that one field) with the
``jsonschema`` library; an unknown field is refused at once when ``additionalProperties``
is false. On the first invalid field ``feed`` returns ``Abort``: decoding stops early, which
is the gain here (decode time saved, not tool time), and the result has status ``aborted``
with the reason. At ``finish`` the whole object is checked (``required``, dependencies).

Config:
- ``schema`` (object, required): the JSON Schema of the arguments object. A ``$ref``
  resolves only inside the schema itself (``#/$defs/...``, ``#/definitions/...``, a
  subschema's ``$id``) or to a JSON Schema meta-schema (they ship with ``jsonschema``): a
  reference to anything else (``http(s)://``, ``file://``, a relative file) is never
  retrieved, and the schema is refused (``SchemaReferenceError``) when the config is checked;
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
import jsonschema_specifications
import referencing
import referencing.exceptions
import referencing.jsonschema

from conveyor_sgl.parsers.base import Unit
from conveyor_sgl.tools.base import (
    Abort,
    ConfigReferences,
    Tool,
    ToolConfigError,
    ToolConfigTypeError,
    ToolOutput,
    check_known_options,
)
from conveyor_sgl.tools.registry import split_import_path

_REF_KEYWORDS = ("$ref", "$dynamicRef")


class SchemaReferenceError(ToolConfigError):
    """A schema ``$ref`` that does not resolve inside the schema; nothing was retrieved."""


def _refuse_retrieval(uri: str) -> referencing.Resource[Any]:
    # jsonschema's default registry fetches any URI it does not hold with urlopen (http(s)
    # and file:// alike); this one fetches nothing.
    raise SchemaReferenceError(
        f"remote and file references are not allowed: {uri} (put that schema under $defs and "
        "refer to it as '#/$defs/<name>')"
    )


# Only what the schema holds (its subschemas, by pointer, anchor or $id) resolves, and the
# meta-schemas jsonschema ships: a lookup of anything else ends in _refuse_retrieval.
_REGISTRY: referencing.Registry[Any] = referencing.Registry(  # type: ignore[call-arg]
    retrieve=_refuse_retrieval
)
_WALK_REGISTRY = jsonschema_specifications.REGISTRY.combine(_REGISTRY)


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
            raise ToolConfigTypeError(
                f"schema must be a JSON Schema object, got {type(schema).__name__}"
            )
        validator_class = jsonschema.validators.validator_for(schema)
        try:
            validator_class.check_schema(schema)  # a bad schema is a config error, said at start
            check_references(schema, validator_class)
        except jsonschema.exceptions.SchemaError as e:
            raise ToolConfigError(f"schema is not a valid JSON Schema: {e.message}") from None
        except RecursionError:
            raise ToolConfigError("schema is nested too deeply to check; flatten it") from None
        self._whole = validator_class(schema, registry=_REGISTRY)
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
        try:
            error = jsonschema.exceptions.best_match(
                self._whole.evolve(schema=subschema).iter_errors(value)
            )
        except referencing.exceptions.Unresolvable as e:
            return f"invalid schema for argument {key!r}: {_unresolvable(e)}"
        except RecursionError:  # a $ref cycle that never reaches a keyword
            return f"invalid schema for argument {key!r}: its references recurse without end"
        return None if error is None else f"invalid argument {key!r}: {error.message}"

    def whole_error(self, arguments: dict[str, Any]) -> str | None:
        try:
            error = jsonschema.exceptions.best_match(self._whole.iter_errors(arguments))
        except referencing.exceptions.Unresolvable as e:
            return f"invalid schema: {_unresolvable(e)}"
        except RecursionError:
            return "invalid schema: its references recurse without end"
        return None if error is None else f"invalid arguments: {error.message}"


def check_references(schema: dict[str, Any], validator_class: Any) -> None:
    """Resolve every ``$ref`` / ``$dynamicRef`` of ``schema`` now, as its validator would
    (each against the base URI of its enclosing ``$id``), retrieving nothing: one that points
    outside the schema, or at nothing in it, is a ``SchemaReferenceError``."""
    dialect = validator_class.ID_OF(validator_class.META_SCHEMA) or "urn:unknown-dialect"
    specification = referencing.jsonschema.specification_with(
        dialect, default=referencing.Specification.OPAQUE
    )
    root = specification.create_resource(schema)
    pending = [(root, _WALK_REGISTRY.resolver_with_root(root))]
    while pending:  # a loop, not recursion: the walk itself never runs out of stack
        resource, resolver = pending.pop()
        resolver = resolver.in_subresource(resource)
        contents = resource.contents
        if isinstance(contents, dict):
            for keyword in _REF_KEYWORDS:
                ref = contents.get(keyword)
                if not isinstance(ref, str):
                    continue
                try:
                    resolver.lookup(ref)
                except referencing.exceptions.Unresolvable as e:
                    raise SchemaReferenceError(
                        f"schema {keyword} {ref!r}: {_unresolvable(e)}"
                    ) from None
        pending.extend((sub, resolver) for sub in resource.subresources())


def _unresolvable(error: referencing.exceptions.Unresolvable) -> str:
    """Why a reference did not resolve, without anything a retrieval could have read."""
    cause: BaseException | None = error
    while cause is not None:  # Unresolvable <- Unretrievable <- our refusal
        if isinstance(cause, SchemaReferenceError):
            return str(cause)
        cause = cause.__cause__
    if isinstance(error, referencing.exceptions.PointerToNowhere):
        return f"{error.ref!r} points to nothing in the schema"
    if isinstance(error, referencing.exceptions.NoSuchAnchor):
        return f"{error.ref!r}: the schema has no anchor {error.anchor!r}"
    return f"{error.ref!r} does not resolve inside the schema"


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
        raise ToolConfigError("validation needs config['schema'], the JSON Schema of the arguments")
