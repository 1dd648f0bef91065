"""``sglang serve --model-type conveyor``: SGLang's LLM server with server mode on, and a
``--help`` that lists our flags.

``sglang serve --help`` prints SGLang's help before it loads any plugin, so the flags our
plugin adds to its parser cannot show there; SGLang's serve-backend extension point
(entry point group ``sglang.serve_backends``) is the way in: ``sglang serve --help`` lists
this backend under ``--model-type``, and ``sglang serve --model-type conveyor --help``
shows SGLang's flags with ours. A launch is SGLang's own LLM backend with
``--tool-partial-execution`` added (the plugin does the rest, as for ``sglang serve
--tool-partial-execution``) and whatever else our launcher adds (``launcher.plan_launch``,
one piece of code for both): on a host without a GPU, the CPU engine flags and a bounded
KV pool, ``SGLANG_USE_CPU_ENGINE=1`` and the CPU stand-in for ``sgl_kernel`` first on
``PYTHONPATH``. SGLang reads the CPU switch when ``sglang serve`` imports it, before any
backend runs, so where the environment lacks something this process starts SGLang's CLI
again with it (``exec``, same pid), saying what it added. ``--dry-run`` prints the argv and
environment SGLang would get, then exits.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from conveyor_sgl.runtime.server import plugin
from conveyor_sgl.runtime.server.cli_flags import ADD_CLI_ARGS, FLAG, register_cli_hooks

if TYPE_CHECKING:
    from conveyor_sgl.runtime.embedded.launcher import LaunchPlan

DRY_RUN = "--dry-run"
BACKEND_NAME = "conveyor"
# Set in the process this backend re-executes: its environment is complete, never go again.
SETUP_DONE_ENV = "CONVEYOR_SGL_SERVE_SETUP_DONE"
# What the re-executed interpreter runs: SGLang's CLI, as its `sglang` script does.
SGLANG_CLI = "import sys; from sglang.cli.main import main; sys.exit(main())"


def backend() -> Any:
    """The entry point: SGLang calls this factory when ``--model-type conveyor`` is asked."""
    from sglang.cli.serve_backends import SERVE_BACKEND_API_VERSION, ServeBackend

    return ServeBackend(api_version=SERVE_BACKEND_API_VERSION, run=run)


def run(request: Any) -> None:
    from dataclasses import replace

    from sglang.cli.serve import _run_llm
    from sglang.srt.plugins.hook_registry import HookRegistry

    argv = list(request.argv)
    if {"-h", "--help"} & set(argv):
        # SGLang has not loaded plugins yet: our flags join its parser here.
        if not HookRegistry._hooks.get(ADD_CLI_ARGS):
            register_cli_hooks(on_server_mode=plugin.activate)
            HookRegistry.apply_hooks()
        _run_llm(request)
        return
    from conveyor_sgl.runtime.embedded import launcher

    dry_run = DRY_RUN in argv
    plan, env = launch_plan([a for a in argv if a != DRY_RUN], has_gpu=launcher.has_gpu())
    if dry_run:
        print(json.dumps({"argv": plan.argv, "env": env, "cpu": plan.cpu}, indent=2))
        return
    missing = {key: value for key, value in env.items() if os.environ.get(key) != value}
    if missing and plan.cpu:
        if os.environ.get(SETUP_DONE_ENV) == "1":
            raise RuntimeError(f"sglang serve --model-type conveyor: still missing {missing}")
        print(
            f"conveyor_sgl: no GPU: serving on SGLang's CPU engine; starting SGLang again "
            f"with the environment {json.dumps(missing)}; SGLang flags: {' '.join(plan.argv)}",
            file=sys.stderr,
            flush=True,
        )
        command = [sys.executable, "-c", SGLANG_CLI, "serve", "--model-type", BACKEND_NAME]
        os.execve(  # noqa: S606 - this interpreter with SGLang's CLI and the user's own argv
            sys.executable,
            [*command, *plan.argv],
            {**os.environ, **env, SETUP_DONE_ENV: "1"},
        )
    launcher.apply_plan(plan)  # on CPU: the environment already has it all
    _run_llm(replace(request, argv=tuple(plan.argv)))


def launch_plan(
    argv: Sequence[str], *, has_gpu: bool, environ: Mapping[str, str] = os.environ
) -> tuple[LaunchPlan, dict[str, str]]:
    """SGLang's argv (ours with ``--tool-partial-execution`` and the launcher's defaults) and
    every environment variable the launch sets (``launcher.launch_environment``)."""
    from conveyor_sgl.runtime.embedded import launcher

    argv = list(argv)
    if FLAG not in argv:
        argv.append(FLAG)
    plan = launcher.plan_launch(argv, has_gpu=has_gpu, environ=environ)
    return plan, launcher.launch_environment(plan, environ)
