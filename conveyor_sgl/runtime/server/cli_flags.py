"""Server mode's command-line flags, shared by our launcher and SGLang's own CLI.

`python -m conveyor_sgl.launch_server` adds them to its parser (`add_server_mode_flags`).
For `sglang serve` (and `python -m sglang.launch_server`) the plugin registers two hooks,
applied by SGLang's `load_plugins()`, which those CLIs run before they parse argv:

- AFTER ``ServerArgs.add_cli_args``: the same argument group in SGLang's parser, so the
  flags parse there instead of being rejected;
- BEFORE ``ServerArgs.from_cli_args``: read the parsed values and turn them into the
  environment the plugin reads (``ENABLE_ENV``, ``POLICY_ENV``), before SGLang starts any
  child process (they inherit it); with the flag, activate server mode in this process.

`ServerArgs` has no field for them, so `from_cli_args` drops them from there on.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

ADD_CLI_ARGS = "sglang.srt.server_args.ServerArgs.add_cli_args"
FROM_CLI_ARGS = "sglang.srt.server_args.ServerArgs.from_cli_args"
FLAG = "--tool-partial-execution"
ENABLE_ENV = "CONVEYOR_SGL_TOOL_PARTIAL_EXECUTION"  # "1": server mode on (the plugin reads it)
GROUP_TITLE = "conveyor_sgl: tool partial execution (server mode)"
# Parsed names of the policy flags and their "not given" values.
POLICY_DESTS = {
    "tool_policy": None,
    "tool_allow": None,
    "tool_allow_import_targets": False,
    "tool_allow_callables": False,
    "tool_files_root": None,
    "tool_allow_url": None,
    "tool_allow_unconfined": False,
    "tool_max_session_s": None,
    "tool_max_sessions_per_client": None,
    "tool_max_body_bytes": None,
    "tool_mcp_server": None,
    "tool_mcp_network": None,
}


def add_server_mode_flags(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The flag and the policy flags, as one argument group of `parser`."""
    group = parser.add_argument_group(
        GROUP_TITLE,
        "Run parsers, tool sessions and tool workers inside this server (routes under "
        "/conveyor/). The policy flags say what requests to /conveyor/partial_tool may use "
        "(closed by default) and how much one client may hold (bounded by default); anything "
        "else is refused with a 4xx naming the rule and its flag. Same as "
        "setting CONVEYOR_SGL_TOOL_PARTIAL_EXECUTION=1 (and CONVEYOR_SGL_TOOL_POLICY, JSON).",
    )
    group.add_argument(
        FLAG,
        action="store_true",
        help="run partial tools inside the server: parse decoded tokens where they are "
        "produced and append tool output to the request's own tokens (the frontend "
        "discovers it by itself)",
    )
    _add_policy_flags(group)
    return group


def _add_policy_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--tool-policy",
        metavar="FILE",
        help="a YAML policy (keys: tools, allow_import_targets, allow_callables, files_root, "
        "allow_urls, allow_unconfined, max_session_s, max_sessions_per_client, "
        "max_body_bytes, mcp_servers); the flags below override it",
    )
    group.add_argument(
        "--tool-allow",
        metavar="NAMES",
        action="append",
        help="comma-separated registered tools requests may use (default: the built-ins)",
    )
    group.add_argument(
        "--tool-allow-import-targets",
        action="store_true",
        help="let requests name any 'module:Class' tool target (imported in the server)",
    )
    group.add_argument(
        "--tool-allow-callables",
        action="store_true",
        help="let configs name callables to import and call (validation's 'function')",
    )
    group.add_argument(
        "--tool-files-root",
        metavar="DIR",
        help="files tools may open (sql 'database', ATTACH) must be inside DIR "
        "(default: none, ':memory:' only)",
    )
    group.add_argument(
        "--tool-allow-url",
        metavar="PREFIX",
        action="append",
        help="an http(s) URL prefix tools may fetch from (search 'service_url', also "
        "inside planner's search config); repeatable (default: none)",
    )
    group.add_argument(
        "--tool-allow-unconfined",
        action="store_true",
        help="run tools marked untrusted_code (python) even where the kernel cannot confine "
        "them (no Landlock); without it such requests get 503",
    )
    group.add_argument(
        "--tool-mcp-server",
        metavar="NAME=COMMAND|URL",
        action="append",
        help="an MCP server whose tools requests may call as 'mcp/NAME/TOOL': a command line "
        "this server starts (confined: its own network namespace, Landlock, the syscall "
        "baseline, no capabilities) and talks to over stdio, or an http(s) URL of a running "
        "one (streamable HTTP); repeatable. Requests can never name a server of their own",
    )
    group.add_argument(
        "--tool-mcp-network",
        metavar="NAME",
        action="append",
        help="the MCP server NAME (a command) keeps the network (default: none)",
    )
    _add_cap_flags(group)
    _add_prefix_hold_flags(group)


def _add_prefix_hold_flags(group: argparse._ArgumentGroup) -> None:
    from conveyor_sgl.runtime.server.prefix_holds import DEFAULT_HOLD_S, DEFAULT_SHARE, POLICIES

    group.add_argument(
        "--tool-prefix-hold-s",
        metavar="SECONDS",
        type=float,
        help="keep a program's prefix in the KV cache while its tool runs (client and server "
        "mode, no other flag needed), for at most SECONDS; given up when the program comes "
        "back, ends or fails, or when the scheduler would otherwise stall; 0 turns it off "
        f"(default: {DEFAULT_HOLD_S:g})",
    )
    group.add_argument(
        "--tool-prefix-hold-share",
        metavar="FRACTION",
        type=float,
        help="the share of the KV pool prefix holds may take at once; a hold that would pass "
        f"it is not taken (default: {DEFAULT_SHARE:g})",
    )
    group.add_argument(
        "--tool-prefix-hold-policy",
        choices=POLICIES,
        help="start-first: a hold never delays a request's start (it gives way when the "
        "first request in line cannot start); hold-first: new requests wait for running ones "
        "to end, and holds give way only when nothing could run, which keeps more prefixes "
        "where a re-prefill costs more than that wait (long contexts) (default: start-first)",
    )


def _add_cap_flags(group: argparse._ArgumentGroup) -> None:
    # The defaults live with the policy; imported here, not at the top: the plugin imports
    # this module in every SGLang process, and only a CLI builds a parser.
    from conveyor_sgl.runtime.server.policy import (
        DEFAULT_MAX_BODY_BYTES,
        DEFAULT_MAX_SESSION_S,
        DEFAULT_MAX_SESSIONS_PER_CLIENT,
    )

    group.add_argument(
        "--tool-max-session-s",
        metavar="SECONDS",
        type=float,
        help="the longest a tool session may last, from the request's arrival: a request "
        "asking for a longer 'result_timeout' is refused (403), and the server ends a "
        "session that passes it (stops decoding, cancels the tool, frees its worker) "
        f"(default: {DEFAULT_MAX_SESSION_S:g})",
    )
    group.add_argument(
        "--tool-max-sessions-per-client",
        metavar="N",
        type=int,
        help="tool sessions one client may hold at once; one more is refused with 429 until "
        "one ends. A client is its API key (Authorization: Bearer), else its address: behind "
        "a proxy or sglang-router without keys, all its clients are one "
        f"(default: {DEFAULT_MAX_SESSIONS_PER_CLIENT})",
    )
    group.add_argument(
        "--tool-max-body-bytes",
        metavar="SIZE",
        help="the largest request body on /conveyor/* and on /v1/completions requests that "
        "carry one (bytes, or e.g. 512KiB, 4MiB); a larger one is refused with 413 before it "
        f"is read in full or parsed (default: {DEFAULT_MAX_BODY_BYTES >> 20}MiB)",
    )


def policy_given(args: argparse.Namespace) -> bool:
    return any(getattr(args, dest, unset) != unset for dest, unset in POLICY_DESTS.items())


def policy_json(args: argparse.Namespace) -> str:
    """The policy from --tool-policy and the flags, as JSON; PolicyConfigError if invalid."""
    from conveyor_sgl.runtime.server.policy import load_policy, with_mcp_network

    names = [n.strip() for arg in args.tool_allow or [] for n in arg.split(",") if n.strip()]
    policy = load_policy(
        args.tool_policy,
        tools=names or None,
        allow_import_targets=args.tool_allow_import_targets,
        allow_callables=args.tool_allow_callables,
        files_root=args.tool_files_root,
        allowed_urls=args.tool_allow_url,
        allow_unconfined=args.tool_allow_unconfined,
        max_session_s=args.tool_max_session_s,
        max_sessions_per_client=args.tool_max_sessions_per_client,
        max_body_bytes=args.tool_max_body_bytes,
        mcp_servers=mcp_server_flags(getattr(args, "tool_mcp_server", None)),
    )
    policy = with_mcp_network(policy, getattr(args, "tool_mcp_network", None) or [])
    return policy.to_json()


def mcp_server_flags(values: list[str] | None) -> dict[str, str] | None:
    """``--tool-mcp-server NAME=COMMAND|URL`` flags as the policy's ``mcp_servers``."""
    from conveyor_sgl.runtime.server.policy import PolicyConfigError

    if not values:
        return None
    servers = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest.strip():
            raise PolicyConfigError(
                f"--tool-mcp-server {value!r}: expected NAME=COMMAND or NAME=URL"
            )
        servers[name.strip()] = rest.strip()
    return servers


def prefix_hold_env(args: argparse.Namespace, environ: Any = os.environ) -> dict[str, str]:
    """The hold flags as the environment the scheduler reads (it inherits it), checked
    together with what ``environ`` already says; HoldSettingsError if out of range."""
    from conveyor_sgl.runtime.server.prefix_holds import (
        HOLD_S_ENV,
        POLICY_ENV,
        SHARE_ENV,
        HoldSettings,
    )

    env = {}
    for dest, name in (("tool_prefix_hold_s", HOLD_S_ENV), ("tool_prefix_hold_share", SHARE_ENV)):
        value = getattr(args, dest, None)
        if value is not None:
            env[name] = repr(value)
    if getattr(args, "tool_prefix_hold_policy", None):
        env[POLICY_ENV] = args.tool_prefix_hold_policy
    HoldSettings.from_env({**environ, **env})
    return env


def register_cli_hooks(on_server_mode: Callable[[], None]) -> None:
    """Our flags in SGLang's parser; once parsed, into the environment, and
    ``on_server_mode()`` (the plugin's activation) when they turn server mode on."""
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    def before_from_cli_args(*args: Any, **kwargs: Any) -> None:
        namespace = next((a for a in args if isinstance(a, argparse.Namespace)), None)
        namespace = kwargs.get("args", namespace)
        if isinstance(namespace, argparse.Namespace) and apply_parsed(namespace):
            on_server_mode()

    HookRegistry.register(ADD_CLI_ARGS, _after_add_cli_args, HookType.AFTER)
    HookRegistry.register(FROM_CLI_ARGS, before_from_cli_args, HookType.BEFORE)


def _after_add_cli_args(result: Any, parser: argparse.ArgumentParser, *_: Any) -> None:
    # A parser that has them already (a second call, another launcher's) keeps its own.
    if FLAG not in parser._option_string_actions:
        add_server_mode_flags(parser)


def apply_parsed(args: argparse.Namespace, environ: Any = os.environ) -> bool:
    """The parsed flags into the plugin's environment; whether server mode is on.

    Without the flag the environment decides (CONVEYOR_SGL_TOOL_PARTIAL_EXECUTION=1); policy
    flags then still replace CONVEYOR_SGL_TOOL_POLICY, so both routes take them."""
    from conveyor_sgl.runtime.server.policy import POLICY_ENV, PolicyConfigError

    if getattr(args, "tool_partial_execution", False):
        environ[ENABLE_ENV] = "1"
    from conveyor_sgl.runtime.server.prefix_holds import HoldSettingsError

    try:
        environ.update(prefix_hold_env(args, environ))
    except HoldSettingsError as e:
        print(f"error: conveyor_sgl prefix holds: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    if policy_given(args):
        try:
            environ[POLICY_ENV] = policy_json(args)
        except PolicyConfigError as e:
            print(f"error: conveyor_sgl server-mode policy: {e}", file=sys.stderr)
            raise SystemExit(2) from None
    return environ.get(ENABLE_ENV) == "1"
