"""Start the stock SGLang HTTP server, with the embedded default model and CPU support.

`python -m conveyor_sgl.launch_server [conveyor flags] [sglang server flags]`

Every flag this launcher does not know goes to SGLang unchanged. It only adds defaults the
user did not give: the embedded model when there is no `--model-path`, host 127.0.0.1,
SGLANG_CACHE_DIR under conveyor_sgl's cache, and, on a machine without a GPU, SGLang's CPU
engine with torch-native attention, a bounded KV pool, an idle scheduler that sleeps, one
torch thread per process (`OMP_NUM_THREADS`: more spin against any other busy process) and
the CPU stand-in for `sgl_kernel` first on PYTHONPATH; `--dry-run` prints all of it. On CPU
SGLang's scheduler and detokenizer are forked, not spawned (`server/fork_start.py`).
`sglang serve --model-type conveyor` (`runtime/embedded/serve_backend.py`) adds the same.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from conveyor_sgl.runtime.embedded.default_model import cache_root, ensure_default_model
from conveyor_sgl.runtime.sandbox.layers import describe_layers
from conveyor_sgl.runtime.server.cli_flags import (
    add_server_mode_flags,
    policy_json,
    prefix_hold_env,
)
from conveyor_sgl.runtime.server.fork_start import FORK_ENV, THREADS_ENV
from conveyor_sgl.runtime.server.plugin import ENABLE_ENV
from conveyor_sgl.runtime.server.policy import POLICY_ENV, PolicyConfigError
from conveyor_sgl.runtime.server.prefix_holds import HoldSettingsError
from conveyor_sgl.runtime.workers.cpu_affinity import TOOL_CPUS_ENV, format_cpus, parse_cpus, pin

DEFAULT_HOST = "127.0.0.1"
SGLANG_HELP_HEADER = (
    "\n" + "=" * 78 + "\nSGLang server flags (passed through unchanged; --model-path defaults to "
    "the embedded model):\n"
)
MODEL_FLAGS = ("--model-path", "--model")
# Upper bound on the KV pool: a few dozen requests of a few thousand tokens. SGLang still
# caps the pool by free memory, so a larger --model-path only gets smaller, never bigger.
CPU_MAX_TOTAL_TOKENS = 131072
# Bounds the request-to-token table (rows x context length x 4 bytes), which SGLang sizes
# for 4096 rows by default: 128 MiB at the default model's 8192-token context.
CPU_MAX_RUNNING_REQUESTS = 64
# torch's intra-op threads on CPU unless OMP_NUM_THREADS or --cpus says: with more, each op's
# threads wait for one another at its end, and while any other process is busy (a tool
# worker, by design at the same time) decoding was 21-36x slower for the default model and
# 50x for the eval model on this 2-core host (eval/decode_beside_load.py); alone, two
# threads were at most 7% faster.
CPU_TORCH_THREADS = "1"
# (flags any of which means the user chose, what to add otherwise), in argv order.
CPU_DEFAULTS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("--device",), ("--device", "cpu")),
    (("--attention-backend",), ("--attention-backend", "torch_native")),
    (("--sleep-on-idle",), ("--sleep-on-idle",)),
    (
        ("--max-total-tokens", "--mem-fraction-static"),
        ("--max-total-tokens", str(CPU_MAX_TOTAL_TOKENS)),
    ),
    (("--max-running-requests",), ("--max-running-requests", str(CPU_MAX_RUNNING_REQUESTS))),
)


@dataclass(frozen=True)
class LaunchPlan:
    """What to hand SGLang: its argv, environment variables to set, and the device path."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cpu: bool = False


def plan_launch(
    argv: Sequence[str],
    *,
    has_gpu: bool,
    environ: Mapping[str, str],
    default_model_path: Callable[[], Path | str] = ensure_default_model,
) -> LaunchPlan:
    """Add the defaults the user did not give; pure apart from `default_model_path()`."""
    args = list(argv)
    given = given_flags(args)
    if not given.intersection(MODEL_FLAGS):
        args += ["--model-path", str(default_model_path())]
    if "--host" not in given:
        args += ["--host", DEFAULT_HOST]
    env: dict[str, str] = {}
    if "SGLANG_CACHE_DIR" not in environ:
        # SGLang writes ~/.cache/sglang otherwise; keep everything this project causes together.
        env["SGLANG_CACHE_DIR"] = str(cache_root(environ) / "sglang")
    cpu = not has_gpu or flag_value(args, "--device") == "cpu"
    if cpu:
        env["SGLANG_USE_CPU_ENGINE"] = "1"
        if FORK_ENV not in environ:
            env[FORK_ENV] = "1"
        if THREADS_ENV not in environ:
            env[THREADS_ENV] = CPU_TORCH_THREADS
        for flags, addition in CPU_DEFAULTS:
            if not given.intersection(flags):
                args += addition
    return LaunchPlan(argv=args, env=env, cpu=cpu)


def launch_environment(plan: LaunchPlan, environ: Mapping[str, str]) -> dict[str, str]:
    """Every environment variable the launch sets: the plan's and, on CPU, PYTHONPATH with the
    `sgl_kernel` stand-in first (as `apply_plan` sets it), so a dry run can print them all and
    a process that has already imported SGLang can start a fresh one with them."""
    env = dict(plan.env)
    if plan.cpu:
        from conveyor_sgl.runtime.embedded.cpu_kernels import build_pythonpath

        env["PYTHONPATH"] = build_pythonpath(environ.get("PYTHONPATH", ""))
    return env


def given_flags(argv: Sequence[str]) -> set[str]:
    """Long flags present in argv (`--x v` or `--x=v`), including keys of a `--config` file."""
    flags = {arg.split("=", 1)[0] for arg in argv if arg.startswith("--")}
    config = flag_value(argv, "--config")
    if config:
        flags |= _config_file_flags(Path(config))
    return flags


def flag_value(argv: Sequence[str], name: str) -> str | None:
    value = None
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value  # the last occurrence wins, as in argparse


def _config_file_flags(path: Path) -> set[str]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return set()  # SGLang reports a broken config file itself, with its own message
    return {"--" + str(key).replace("_", "-") for key in data} if isinstance(data, dict) else set()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conveyor_sgl.launch_server",
        usage="%(prog)s [conveyor_sgl flags] [SGLang server flags]",
        description="Start the stock SGLang server (embedded model by default; CPU engine "
        "and a bounded KV pool on a host without a GPU). Every flag not listed here goes to "
        "SGLang unchanged; SGLang's own flags are listed after these.",
        add_help=False,
        allow_abbrev=False,  # an abbreviation of an SGLang flag must reach SGLang
    )
    add_server_mode_flags(parser)
    launcher = parser.add_argument_group("launcher")
    launcher.add_argument("-h", "--help", action="store_true", help="show this help and SGLang's")
    launcher.add_argument(
        "--cpus",
        metavar="LIST",
        help="serve on these CPUs only, e.g. 0 or 0-3 (every server process, and as many "
        "torch threads); with --tool-cpus, tools cannot slow decoding on a CPU-only host",
    )
    launcher.add_argument(
        "--tool-cpus",
        metavar="LIST",
        help=f"run the server's tool workers on these CPUs (sets ${TOOL_CPUS_ENV})",
    )
    launcher.add_argument(
        "--dry-run",
        action="store_true",
        help="print the SGLang argv and environment this launcher would use, then exit",
    )
    return parser


def policy_env(parser: argparse.ArgumentParser, ours: argparse.Namespace) -> dict[str, str]:
    """The policy from --tool-policy and the flags, as the env var the plugin reads."""
    try:
        policy = policy_json(ours)  # checked even without server mode: a typo is an error
    except PolicyConfigError as e:
        parser.error(str(e))
    return {POLICY_ENV: policy} if ours.tool_partial_execution else {}


def hold_env(parser: argparse.ArgumentParser, ours: argparse.Namespace) -> dict[str, str]:
    """The prefix-hold flags as the env var the scheduler reads (both modes)."""
    try:
        return prefix_hold_env(ours)
    except HoldSettingsError as e:
        parser.error(str(e))


def has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    ours, rest = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    if ours.help:
        parser.print_help()
        print(SGLANG_HELP_HEADER, flush=True)
        _print_sglang_help()
        return
    # Before torch is imported (has_gpu): its thread pool is sized from the affinity mask.
    cpu_env = _cpu_split(parser, ours)
    plan = plan_launch(rest, has_gpu=has_gpu(), environ=os.environ)
    # The plugin reads this in every SGLang process (they inherit it); never leak it in.
    server_mode = {ENABLE_ENV: "1" if ours.tool_partial_execution else "0"}
    env = {**server_mode, **policy_env(parser, ours), **hold_env(parser, ours), **cpu_env}
    plan = replace(plan, env={**plan.env, **env})
    if ours.dry_run:
        env = launch_environment(plan, os.environ)
        print(json.dumps({"argv": plan.argv, "env": env, "cpu": plan.cpu}, indent=2))
        return
    if POLICY_ENV in plan.env:
        print(f"conveyor_sgl server-mode policy: {plan.env[POLICY_ENV]}", flush=True)
        print(f"conveyor_sgl tool sandbox: {describe_layers()}", flush=True)
    apply_plan(plan)
    _run_sglang(plan.argv)


def _cpu_split(parser: argparse.ArgumentParser, ours: argparse.Namespace) -> dict[str, str]:
    """Pin this process (and so every server process) to --cpus; the env the split needs."""
    env: dict[str, str] = {}
    try:
        if ours.tool_cpus:
            env[TOOL_CPUS_ENV] = format_cpus(parse_cpus(ours.tool_cpus))
        if ours.cpus:
            cpus = parse_cpus(ours.cpus)
            env["OMP_NUM_THREADS"] = str(len(cpus))
            if not ours.dry_run:
                pin(cpus)
                os.environ["OMP_NUM_THREADS"] = env["OMP_NUM_THREADS"]  # read at torch import
    except ValueError as e:
        parser.error(str(e))
    return env


def apply_plan(plan: LaunchPlan) -> None:
    """Set what `launch_environment` lists in this process (and so its children).

    Before any sglang.srt import: SGLang reads SGLANG_USE_CPU_ENGINE at module load."""
    os.environ.update(plan.env)
    if plan.cpu:
        from conveyor_sgl.runtime.embedded.cpu_kernels import install_shim

        install_shim()


def _print_sglang_help() -> None:
    """SGLang's own flag list, without its usage line (which names `sglang serve`)."""
    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser(prog="", usage=argparse.SUPPRESS, add_help=False)
    ServerArgs.add_cli_args(parser)
    print(parser.format_help().strip(), flush=True)


def _run_sglang(argv: list[str]) -> None:
    # The same steps as `python -m sglang.launch_server`, minus its deprecation warning.
    from sglang.launch_server import run_server
    from sglang.srt.plugins import load_plugins
    from sglang.srt.server_args import prepare_server_args
    from sglang.srt.utils import kill_process_tree

    load_plugins()
    server_args = prepare_server_args(argv)
    try:
        run_server(server_args)
    finally:
        kill_process_tree(os.getpid(), include_parent=False)
