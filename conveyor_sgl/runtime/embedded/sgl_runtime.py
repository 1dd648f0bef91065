"""`sgl.Runtime` with this project's defaults, and server mode when asked for.

    from conveyor_sgl.runtime.embedded.sgl_runtime import start_runtime
    runtime = start_runtime(tool_partial_execution=True)   # sgl.Runtime(...) underneath
    sgl.set_default_backend(runtime)
    ...
    runtime.shutdown()

`sgl.Runtime` starts the server in a child process it spawns. That child inherits this
process's environment at spawn time, so server mode travels the same way as for every
other launch: ``CONVEYOR_SGL_TOOL_PARTIAL_EXECUTION=1`` and the policy as JSON in
``CONVEYOR_SGL_TOOL_POLICY``. `start_runtime` sets them only while the runtime starts, so
a later runtime of the same program is not switched on by accident. Like the launcher it
adds the defaults the caller did not give: the embedded model without `model_path`, and on
a host without a GPU the CPU engine, torch-native attention and a bounded KV pool (which
need SGLANG_USE_CPU_ENGINE and the sgl_kernel shim in *this* process too: `sgl.Runtime`
imports `sglang.srt` here before it spawns the server).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from conveyor_sgl.runtime.embedded import launcher
from conveyor_sgl.runtime.server.plugin import ENABLE_ENV
from conveyor_sgl.runtime.server.policy import POLICY_ENV, ServerPolicy

if TYPE_CHECKING:
    import sglang as sgl


def start_runtime(
    *,
    tool_partial_execution: bool | None = None,
    policy: ServerPolicy | None = None,
    **server_args: Any,
) -> sgl.Runtime:
    """`sgl.Runtime(**server_args)` plus our defaults; `tool_partial_execution` True/False
    turns server mode on/off (None: as the environment says), under `policy` (default: the
    closed default policy)."""
    import sglang as sgl

    kwargs = runtime_kwargs(**server_args)
    with scoped_environ(server_mode_env(tool_partial_execution, policy)):
        return sgl.Runtime(**kwargs)


def runtime_kwargs(**server_args: Any) -> dict[str, Any]:
    """The keyword arguments for `sgl.Runtime`: the caller's plus the launcher's defaults.

    Sets the launch environment (CPU engine, shim, SGLang cache dir) in this process, as the
    launcher does, because `sgl.Runtime` imports `sglang.srt` here."""
    given = _as_argv(server_args)
    plan = launcher.plan_launch(given, has_gpu=launcher.has_gpu(), environ=os.environ)
    launcher.apply_plan(plan)  # before the first sglang.srt import below
    return {**_as_kwargs(plan.argv[len(given) :]), **server_args}


def server_mode_env(on: bool | None, policy: ServerPolicy | None = None) -> dict[str, str]:
    if on is None:
        return {} if policy is None else {POLICY_ENV: policy.to_json()}
    if not on:
        return {ENABLE_ENV: "0"}
    return {ENABLE_ENV: "1", POLICY_ENV: (policy or ServerPolicy()).to_json()}


@contextmanager
def scoped_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set `values` in os.environ for the block, then put back what was there."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _as_argv(server_args: Mapping[str, Any]) -> list[str]:
    # Only which flags are given (and --device's value) matters to plan_launch.
    argv: list[str] = []
    for name, value in server_args.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def _as_kwargs(argv: list[str]) -> dict[str, Any]:
    """SGLang flags (as plan_launch adds them) back into ServerArgs keyword arguments, typed
    by SGLang's own parser."""
    import argparse

    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser(add_help=False)
    ServerArgs.add_cli_args(parser)
    actions = parser._option_string_actions
    kwargs: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        action = actions.get(argv[i])
        if action is None:
            raise ValueError(f"not an SGLang server flag: {argv[i]!r}")
        if action.nargs == 0:
            kwargs[action.dest], i = True, i + 1
        else:
            value = argv[i + 1]
            convert = action.type if callable(action.type) else None  # not a registry name
            kwargs[action.dest], i = (convert(value) if convert else value), i + 2
    return kwargs
