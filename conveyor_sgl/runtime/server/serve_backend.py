"""``sglang serve --model-type conveyor``: SGLang's LLM server with server mode on, and a
``--help`` that lists our flags.

``sglang serve --help`` prints SGLang's help before it loads any plugin, so the flags our
plugin adds to its parser cannot show there; SGLang's serve-backend extension point
(entry point group ``sglang.serve_backends``) is the way in: ``sglang serve --help`` lists
this backend under ``--model-type``, and ``sglang serve --model-type conveyor --help``
shows SGLang's flags with ours. A launch is SGLang's own LLM backend with
``--tool-partial-execution`` added (the plugin does the rest, as for ``sglang serve
--tool-partial-execution``).
"""

from __future__ import annotations

from typing import Any

from conveyor_sgl.runtime.server.cli_flags import ADD_CLI_ARGS, FLAG, register_cli_hooks


def backend() -> Any:
    """The entry point: SGLang calls this factory when ``--model-type conveyor`` is asked."""
    from sglang.cli.serve_backends import SERVE_BACKEND_API_VERSION, ServeBackend

    return ServeBackend(api_version=SERVE_BACKEND_API_VERSION, run=run)


def run(request: Any) -> None:
    from dataclasses import replace

    from sglang.cli.serve import _run_llm
    from sglang.srt.plugins.hook_registry import HookRegistry

    # For --help, SGLang has not loaded plugins yet: our flags join its parser here.
    if not HookRegistry._hooks.get(ADD_CLI_ARGS):
        register_cli_hooks()
        HookRegistry.apply_hooks()
    argv = list(request.argv)
    if FLAG not in argv and not {"-h", "--help"} & set(argv):
        argv.append(FLAG)
    _run_llm(replace(request, argv=tuple(argv)))
