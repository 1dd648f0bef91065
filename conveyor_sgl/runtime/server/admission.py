"""Applying the operator's ``ServerPolicy`` to one ``/conveyor/partial_tool`` request.

Before ``admit``, the route refuses what is over the operator's caps: a body over
``max_body_bytes`` (413, in ``carrier.py``, before it is parsed), a ``result_timeout`` over
``max_session_s`` (``check_session_time``) and a client that holds its
``max_sessions_per_client`` already (429, ``fair_share.py``).

``admit`` checks, in this order, and refuses with a ``PolicyError`` (a 4xx, its message naming
the rule and the flag that changes it) before the step it guards:
1. the tool string, before anything is imported: an allowed registered name (a target string
   of a registered tool counts as its name), or a ``"module:Class"`` target only where the
   operator allows targets;
2. options the server owns (a tool's ``files_root_option``) are refused;
3. what the config names (``Tool.config_references``), before anything is opened or fetched:
   callables, file paths under the files root, URLs under an allowed prefix; then the
   server sets the options it owns from the policy, and the tool class checks the config the
   worker will get (once: ``Admitted.checked``), e.g. sql's ``setup`` against the files root;
4. the request's ``limits``, which may only tighten the tool's own;
5. a tool that runs untrusted code needs the kernel's Landlock layer (else 503) unless the
   operator opted out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import msgspec

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.runtime.sandbox.layers import kernel_layers
from conveyor_sgl.runtime.server.policy import ServerPolicy
from conveyor_sgl.tools.base import ConfigReferences
from conveyor_sgl.tools.limits import Limits, LimitsError, limits_for, parse_size
from conveyor_sgl.tools.registry import (
    CheckedTool,
    ResolvedTool,
    registered_names_of,
    resolve,
    target_of_name,
)

_MEMORY = ("", ":memory:")  # SQLite's private databases: no file


class PolicyError(ConveyorError, ValueError):
    """A request the policy refuses; ``status`` is the HTTP answer (4xx, or 503), ``rule`` a
    short label of the rule that refused it (the ``rule`` label of the refusals metric)."""

    def __init__(self, message: str, status: int = 403, rule: str = "policy") -> None:
        super().__init__(message)
        self.status = status
        self.rule = rule


@dataclass(frozen=True)
class Admitted:
    """What a session may be started with: both checked against the policy (the config by
    its tool class too, once: the session takes the ``CheckedTool`` as it is)."""

    checked: CheckedTool
    limits: Limits


def admit(
    policy: ServerPolicy, tool: str, config: dict[str, Any], limits: Mapping[str, Any] | None
) -> Admitted:
    resolved = _resolve_allowed(policy, tool)
    option = resolved.cls.files_root_option
    if option is not None and option in config:
        raise PolicyError(
            f"policy: option {option!r} of tool {resolved.name!r} is set by the server "
            "(--tool-files-root)",
            rule="files_root",
        )
    try:  # what the config names, refused before anything is opened or fetched (403)
        references = resolved.cls.config_references(config)
    except (TypeError, ValueError, AttributeError):
        references = None  # a config too malformed to read: the check below says why (400)
    if references is not None:
        check_references(policy, references)
    if option is not None:  # the server's own setting: "" allows no file, ":memory:" only
        config = {**config, option: policy.files_root or ""}
    try:  # the config the worker gets, the server's settings included: checked once, here
        resolved.cls.check_config(dict(config))
    except (TypeError, ValueError) as e:
        raise PolicyError(f"tool {resolved.name!r}: bad config: {e}", 400, "bad_request") from None
    checked = CheckedTool(resolved, MappingProxyType(dict(config)))
    admitted = Admitted(checked, tightened(limits_for(resolved), limits))
    check_confinement(policy, resolved)
    return admitted


def check_session_time(policy: ServerPolicy, result_timeout: float) -> None:
    """A request may not ask the server to wait for its result longer than a session may
    last at all: refused (not shortened), so that the client learns the cap at once."""
    if result_timeout > policy.max_session_s:
        raise PolicyError(
            f"policy: result_timeout {result_timeout:g}s is above this server's cap on a "
            f"session's wall time, {policy.max_session_s:g}s (--tool-max-session-s); ask for "
            "at most that",
            rule="session_time",
        )


def _resolve_allowed(policy: ServerPolicy, tool: str) -> ResolvedTool:
    name = tool
    if ":" in tool:
        names = registered_names_of(tool)
        if names:
            permitted = [n for n in names if n in policy.allowed_tools()]
            name = permitted[0] if permitted else names[0]
        elif not policy.allow_import_targets:
            raise PolicyError(
                f"policy: tool {tool!r}: 'module:Class' targets from requests are not allowed "
                "(--tool-allow-import-targets)",
                rule="import_target",
            )
        else:
            try:
                return resolve(tool)
            except (ValueError, TypeError, ImportError) as e:
                raise PolicyError(
                    f"tool {tool!r} could not start: {e}", 400, "bad_request"
                ) from None
    allowed = policy.allowed_tools()
    if target_of_name(name) is None:
        raise PolicyError(
            f"unknown tool {name!r}; this server allows: {', '.join(allowed)}", 400, "unknown_tool"
        )
    if name not in allowed:
        raise PolicyError(
            f"policy: tool {name!r} is not allowed (--tool-allow); allowed: {', '.join(allowed)}",
            rule="tool_not_allowed",
        )
    return resolve(name)


def check_references(policy: ServerPolicy, refs: ConfigReferences) -> None:
    if refs.callables and not policy.allow_callables:
        raise PolicyError(
            f"policy: the config names the callable {refs.callables[0]!r}; callables in "
            "configs are not allowed (--tool-allow-callables)",
            rule="callable",
        )
    for path in refs.paths:
        check_path(policy, path)
    for url in refs.urls:
        if not policy.url_allowed(url):
            allowed = ", ".join(policy.allowed_urls) or "none"
            raise PolicyError(
                f"policy: URL {url!r} is not allowed (--tool-allow-url); allowed: {allowed}",
                rule="url",
            )


def check_path(policy: ServerPolicy, path: str) -> None:
    """A file path must resolve (symlinks too) inside the files root; ':memory:' always may."""
    if path in _MEMORY:
        return
    root = policy.files_root
    if root is None:
        raise PolicyError(
            f"policy: file path {path!r} is not allowed: no files root is set, only "
            "':memory:' (--tool-files-root)",
            rule="files_root",
        )
    real = os.path.realpath(os.path.join(root, path))
    if os.path.commonpath([real, root]) != root:
        raise PolicyError(
            f"policy: file path {path!r} is outside the files root (--tool-files-root)",
            rule="files_root",
        )


def tightened(base: Limits, requested: Mapping[str, Any] | None) -> Limits:
    """``base`` with the request's limits, each of which may only be tighter."""
    if not requested:
        return base
    if not isinstance(requested, Mapping):
        raise PolicyError(f"'limits' must be a JSON object, got {requested!r}", 400, "limits")
    values = msgspec.structs.asdict(base)
    unknown = sorted(set(requested) - set(values))
    if unknown:
        raise PolicyError(f"unknown limits {unknown}; known: {sorted(values)}", 400, "limits")
    for key, value in requested.items():
        if not isinstance(values[key], bool):  # a number, or None: no bound yet
            value = _number(key, value)
            if values[key] is not None and value > values[key]:
                raise PolicyError(
                    f"policy: limits may only tighten: {key} {value} is above the tool's "
                    f"{values[key]}",
                    rule="limits",
                )
        elif not isinstance(value, bool):
            raise PolicyError(f"limit {key} must be true or false, got {value!r}", 400, "limits")
        elif value != values[key] and value == (key == "network"):  # network on, confine off
            raise PolicyError(
                f"policy: limits may only tighten: {key} {str(value).lower()} is looser than "
                f"the tool's {str(values[key]).lower()}",
                rule="limits",
            )
        values[key] = value
    try:
        return msgspec.convert(values, Limits)
    except (msgspec.ValidationError, ValueError, LimitsError) as e:
        raise PolicyError(f"bad limits: {e}", 400, "limits") from None


def _number(key: str, value: Any) -> float:
    if isinstance(value, str) and key.endswith("_bytes"):
        try:
            return parse_size(value)
        except ValueError as e:
            raise PolicyError(f"limit {key}: {e}", 400, "limits") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(f"limit {key} must be a number, got {value!r}", 400, "limits")
    return value


def check_confinement(policy: ServerPolicy, resolved: ResolvedTool) -> None:
    """Untrusted code runs in server mode only under the kernel's Landlock layer, unless the
    operator opted out (a 503: the server, not the request, lacks something)."""
    if not resolved.untrusted_code or policy.allow_unconfined:
        return
    layers = kernel_layers()
    if "landlock" not in layers:
        raise PolicyError(
            f"tool {resolved.name!r} runs untrusted code and needs kernel confinement, but "
            f"this host lacks the landlock layer (kernel layers here: {', '.join(layers) or 'none'}"
            "); the operator may run it unconfined with --tool-allow-unconfined",
            503,
            "unconfined",
        )
