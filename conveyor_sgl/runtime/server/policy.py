"""The operator's policy for server mode: what a request to ``/conveyor/partial_tool`` may use.

In server mode every field of a request comes from a client the operator does not trust. The
policy is set at launch (``launch_server`` flags and/or a YAML file, ``--tool-policy``) and
handed to the HTTP process as JSON in ``POLICY_ENV``. Defaults are closed: the registered
built-in tools only, no ``"module:Class"`` targets, no callables in configs, no files but
``:memory:``, no outbound URLs, and no untrusted code without kernel confinement. It also
bounds what one client may hold, with defaults that an ordinary program never meets: a
session's wall time (``max_session_s``: a request whose ``result_timeout`` is above it is
refused, and the server ends a session that passes it, decoding or not), the sessions one
client holds at once (``max_sessions_per_client``; a client is its API key, else its
address: ``fair_share.py``) and the size of a request body (``max_body_bytes``, on
``/conveyor/*`` and on ``/v1/completions`` bodies that carry one: ``carrier.py``).
``admission.py`` applies it to one request.

YAML keys (all optional), with the flag each one mirrors::

    tools: [python, sql]          # --tool-allow python,sql
    allow_import_targets: false   # --tool-allow-import-targets
    allow_callables: false        # --tool-allow-callables
    files_root: /srv/conveyor     # --tool-files-root DIR
    allow_urls: [http://127.0.0.1:8901/]   # --tool-allow-url PREFIX (repeatable)
    allow_unconfined: false       # --tool-allow-unconfined
    max_session_s: 300            # --tool-max-session-s SECONDS
    max_sessions_per_client: 4    # --tool-max-sessions-per-client N
    max_body_bytes: 1 MiB         # --tool-max-body-bytes SIZE (bytes, or 512 KiB, 4 MiB)
    mcp_servers:                  # --tool-mcp-server NAME=COMMAND|URL (repeatable)
      files: {command: [npx, -y, "@modelcontextprotocol/server-filesystem", /srv/data]}
      search: {url: "http://127.0.0.1:8000/mcp"}
      web: {command: [python, /srv/web_server.py], network: true}  # --tool-mcp-network web

MCP servers are named by the operator only: a request may use their tools as
``"mcp/<server>/<tool>"``, never name a server or a command of its own. A server given as a
command is started by this server, confined (``runtime/sandbox/confined_command.py``: its own
network namespace unless ``network``, Landlock, the syscall baseline, no capabilities).
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.tools.limits import parse_size
from conveyor_sgl.tools.registry import builtin_names

POLICY_ENV = "CONVEYOR_SGL_TOOL_POLICY"
_YAML_KEYS = {
    "tools": "tools",
    "allow_import_targets": "allow_import_targets",
    "allow_callables": "allow_callables",
    "files_root": "files_root",
    "allow_urls": "allowed_urls",
    "allow_unconfined": "allow_unconfined",
    "max_session_s": "max_session_s",
    "max_sessions_per_client": "max_sessions_per_client",
    "max_body_bytes": "max_body_bytes",
    "mcp_servers": "mcp_servers",
}
_MCP_NAME = re.compile(r"[A-Za-z0-9_-]+")
_MCP_KEYS = {"command", "url", "network"}
# What one client may hold, unless the operator says otherwise.
DEFAULT_MAX_SESSION_S = 300.0  # as long as the frontend's default wait (its HTTP timeout)
DEFAULT_MAX_SESSIONS_PER_CLIENT = 4  # a quarter of a default pool (16 workers)
DEFAULT_MAX_BODY_BYTES = 1 << 20  # ~250k tokens of text


class PolicyConfigError(ConveyorError, ValueError):
    """A policy file, flag or environment value that is not valid; the message says which."""


@dataclass(frozen=True)
class ServerPolicy:
    tools: tuple[str, ...] | None = None  # None: the registered built-ins
    allow_import_targets: bool = False
    allow_callables: bool = False
    files_root: str | None = None  # an absolute, real directory; None: ":memory:" only
    allowed_urls: tuple[str, ...] = ()  # http(s) URL prefixes
    allow_unconfined: bool = False
    max_session_s: float = DEFAULT_MAX_SESSION_S  # wall time from receipt to the session's end
    max_sessions_per_client: int = DEFAULT_MAX_SESSIONS_PER_CLIENT  # held at once
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # of a /conveyor/ request, or one carried
    # name -> {"command": [argv...], "network": bool} or {"url": "http(s)://..."}
    mcp_servers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mcp_servers", check_mcp_servers(self.mcp_servers))
        if self.tools is not None and not all(isinstance(t, str) and t for t in self.tools):
            raise PolicyConfigError(f"policy tools must be non-empty names, got {self.tools!r}")
        for name in ("allow_import_targets", "allow_callables", "allow_unconfined"):
            if not isinstance(getattr(self, name), bool):
                raise PolicyConfigError(f"policy {name} must be true or false")
        root = self.files_root
        if root is not None and not (
            isinstance(root, str) and os.path.isabs(root) and os.path.realpath(root) == root
        ):
            raise PolicyConfigError(f"policy files_root must be a real absolute path, got {root!r}")
        for prefix in self.allowed_urls:
            _check_prefix(prefix)
        seconds = self.max_session_s
        if not _is_number(seconds) or not math.isfinite(seconds) or seconds <= 0:
            raise PolicyConfigError(
                "policy max_session_s (--tool-max-session-s) must be a positive number of "
                f"seconds, got {seconds!r}"
            )
        for name, flag in (
            ("max_sessions_per_client", "--tool-max-sessions-per-client"),
            ("max_body_bytes", "--tool-max-body-bytes"),
        ):
            value = getattr(self, name)
            if not _is_number(value) or not isinstance(value, int) or value < 1:
                raise PolicyConfigError(
                    f"policy {name} ({flag}) must be a whole number >= 1, got {value!r}"
                )

    def allowed_tools(self) -> tuple[str, ...]:
        return tuple(builtin_names()) if self.tools is None else self.tools

    def url_allowed(self, url: str) -> bool:
        return any(url_matches(url, prefix) for prefix in self.allowed_urls)

    def describe(self) -> dict[str, Any]:
        """What requests may use (``/conveyor/info``)."""
        return {
            "tools": list(self.allowed_tools()),
            "import_targets": self.allow_import_targets,
            "callables": self.allow_callables,
            "files_root": self.files_root,
            "urls": list(self.allowed_urls),
            "unconfined": self.allow_unconfined,
            "max_session_s": self.max_session_s,
            "max_sessions_per_client": self.max_sessions_per_client,
            "max_body_bytes": self.max_body_bytes,
            # Names and transports only: the commands and URLs are the operator's business.
            "mcp_servers": {
                name: {
                    "transport": "stdio" if "command" in spec else "http",
                    "network": bool(spec.get("network")) if "command" in spec else None,
                }
                for name, spec in self.mcp_servers.items()
            },
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerPolicy:
        try:
            data = json.loads(text)
            names = {f.name for f in fields(cls)}
            if not isinstance(data, dict) or not set(data) <= names:
                raise PolicyConfigError(f"expected an object with the keys {sorted(names)}")
            for key in ("tools", "allowed_urls"):
                if isinstance(data.get(key), list):
                    data[key] = tuple(data[key])
            return cls(**data)
        except (ValueError, TypeError) as e:
            raise PolicyConfigError(f"${POLICY_ENV} is not a valid policy: {e}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ServerPolicy:
        text = environ.get(POLICY_ENV)
        return cls() if not text else cls.from_json(text)


def load_policy(path: str | Path | None = None, **flags: Any) -> ServerPolicy:
    """The YAML file's policy (or the defaults), then each flag that was given (not None);
    URLs from flags add to the file's."""
    base = ServerPolicy() if path is None else _from_yaml(Path(path))
    given = {k: v for k, v in flags.items() if v is not None and v is not False}
    unknown = set(given) - {f.name for f in fields(ServerPolicy)}
    if unknown:
        raise PolicyConfigError(f"unknown policy settings: {sorted(unknown)}")
    if "allowed_urls" in given:
        given["allowed_urls"] = base.allowed_urls + tuple(given["allowed_urls"])
    if "tools" in given:
        given["tools"] = tuple(given["tools"])
    if "files_root" in given:
        given["files_root"] = real_directory(given["files_root"], "--tool-files-root")
    if "max_body_bytes" in given:
        given["max_body_bytes"] = size_of(given["max_body_bytes"], "--tool-max-body-bytes")
    if "mcp_servers" in given:  # the flags' servers add to the file's (same name: replaced)
        given["mcp_servers"] = {**base.mcp_servers, **given["mcp_servers"]}
    return replace(base, **given)


def with_mcp_network(policy: ServerPolicy, names: list[str]) -> ServerPolicy:
    """``policy`` whose MCP servers ``names`` (commands) keep the network."""
    if not names:
        return policy
    servers = {name: dict(spec) for name, spec in policy.mcp_servers.items()}
    for name in names:
        if name not in servers or "command" not in servers[name]:
            known = ", ".join(n for n, s in servers.items() if "command" in s) or "none"
            raise PolicyConfigError(
                f"--tool-mcp-network {name!r}: no MCP server of that name is a command "
                f"(the commands: {known})"
            )
        servers[name]["network"] = True
    return replace(policy, mcp_servers=servers)


def check_mcp_servers(servers: object) -> dict[str, dict[str, Any]]:
    """The operator's MCP servers, each checked: a name of letters, digits, '-' and '_', and
    either a command (argv list, or one string split like a shell does) with an optional
    ``network``, or an http(s) URL."""
    if not isinstance(servers, Mapping):
        raise PolicyConfigError(f"policy mcp_servers must be a mapping, got {servers!r}")
    out = {}
    for name, spec in servers.items():
        if not isinstance(name, str) or not _MCP_NAME.fullmatch(name):
            raise PolicyConfigError(
                f"policy MCP server name {name!r}: use letters, digits, '-' and '_'"
            )
        if isinstance(spec, str):  # the flag's form: a command line or a URL
            spec = {"url": spec} if spec.startswith(("http://", "https://")) else {"command": spec}
        if not isinstance(spec, Mapping) or not set(spec) <= _MCP_KEYS:
            raise PolicyConfigError(
                f"policy MCP server {name!r}: expected command or url (and network), got {spec!r}"
            )
        command, url = spec.get("command"), spec.get("url")
        if (command is None) == (url is None):
            raise PolicyConfigError(f"policy MCP server {name!r}: give a command or a url")
        network = spec.get("network", False)
        if not isinstance(network, bool):
            raise PolicyConfigError(f"policy MCP server {name!r}: network must be true or false")
        if url is not None:
            if network:
                raise PolicyConfigError(
                    f"policy MCP server {name!r}: network is for a command we start, not a URL"
                )
            _check_prefix(url)
            out[name] = {"url": url}
            continue
        if isinstance(command, str):
            command = shlex.split(command)
        if not isinstance(command, list | tuple) or not command:
            raise PolicyConfigError(f"policy MCP server {name!r}: command must be an argv list")
        if not all(isinstance(arg, str) and arg for arg in command):
            raise PolicyConfigError(f"policy MCP server {name!r}: command must be strings")
        out[name] = {"command": list(command), "network": network}
    return out


def _from_yaml(path: Path) -> ServerPolicy:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise PolicyConfigError(f"cannot read policy file {path}: {e}") from None
    if not isinstance(data, dict) or not set(data) <= set(_YAML_KEYS):
        raise PolicyConfigError(
            f"policy file {path}: expected a mapping with the keys {sorted(_YAML_KEYS)}"
        )
    values = {_YAML_KEYS[k]: v for k, v in data.items() if v is not None}
    for key in ("tools", "allowed_urls"):
        if key in values:
            if not isinstance(values[key], list):
                raise PolicyConfigError(f"policy file {path}: {key} must be a list")
            values[key] = tuple(values[key])
    if "files_root" in values:
        values["files_root"] = real_directory(values["files_root"], f"policy file {path}")
    if "max_body_bytes" in values:
        values["max_body_bytes"] = size_of(values["max_body_bytes"], f"policy file {path}")
    try:
        return ServerPolicy(**values)
    except PolicyConfigError as e:
        raise PolicyConfigError(f"policy file {path}: {e}") from None


def real_directory(path: object, where: str) -> str:
    """``path`` resolved (symlinks too) and checked to be a directory."""
    if not isinstance(path, str) or not path:
        raise PolicyConfigError(f"{where}: files root must be a directory path, got {path!r}")
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        raise PolicyConfigError(f"{where}: files root {path!r} is not a directory")
    return real


def size_of(value: object, where: str) -> object:
    """A size as bytes: ``1048576``, ``"1048576"``, ``"512 KiB"``, ``"4 MiB"``; anything
    else is left for ``ServerPolicy`` to refuse with its message."""
    if isinstance(value, str):
        try:
            return parse_size(value)
        except ValueError as e:
            raise PolicyConfigError(f"{where}: max_body_bytes: {e}") from None
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def url_matches(url: str, prefix: str) -> bool:
    """Same scheme, host and port, and the path under the prefix's path (whole segments)."""
    try:
        u, p = urlsplit(url), urlsplit(prefix)
        if (
            u.username
            or u.password
            or (u.scheme, u.hostname, u.port)
            != (
                p.scheme,
                p.hostname,
                p.port,
            )
        ):
            return False
    except ValueError:
        return False  # an unparsable URL (a bad port) matches nothing
    base = p.path.rstrip("/")
    return u.path == base or u.path.startswith(base + "/") or (not base and not u.path)


def _check_prefix(prefix: object) -> None:
    if not isinstance(prefix, str):
        raise PolicyConfigError(f"policy URL prefix must be a string, got {prefix!r}")
    parts = urlsplit(prefix)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PolicyConfigError(
            f"policy URL prefix must be http(s)://host[:port][/path], got {prefix!r}"
        )
