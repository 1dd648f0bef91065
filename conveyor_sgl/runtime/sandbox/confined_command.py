"""Run an operator's command (an MCP server) under the kernel layers our tool executors use.

``python -m conveyor_sgl.runtime.sandbox.confined_command [--network] [--read DIR]...
--report FILE -- COMMAND...`` confines itself, writes the names of the layers that hold to
FILE (JSON), then ``exec``s COMMAND, which inherits every layer (its stdin and stdout are
ours: the MCP client talks to it as to the command itself). Server mode starts the MCP
servers the operator named (``--tool-mcp-server NAME=COMMAND``) through it.

Layers, each named only where the kernel applied it (as for the executors):
- ``disk``: a private mount namespace with a tmpfs of 256 MiB on a fresh working directory,
  which is the cwd, ``HOME`` and ``TMPDIR``;
- ``netns``: without ``--network``, a new, empty network namespace (no route anywhere,
  loopback down): the server reaches nothing over the network;
- ``landlock``: files readable only beneath the interpreter's installation, site-packages,
  /usr and a few /etc files, the directories of the command's own files (its executable,
  any argument that is an existing path) and ``--read`` roots, never the runtime's cwd or the
  home directory; writable only in the working directory; without ``--network`` no TCP bind
  or connect; no signals or ptrace outside its domain;
- ``syscalls``: the seccomp baseline (no namespaces, mounts, ptrace, bpf, io_uring...);
- ``caps``: every capability dropped, for good (uid 0 means nothing more).
Not applied: a PID namespace (an MCP server is a long-lived process that the client ends
with signals, which PID 1 of a namespace ignores), the socket-family filter (asyncio needs
unix socket pairs; the network namespace and Landlock cover the network) and the rlimits
(an operator's server may need what it needs). The environment is scrubbed
(``confine.scrub_env``), and the command is killed when the thread that started it ends
(``PR_SET_PDEATHSIG``): a server process that dies hard takes its MCP servers with it.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import sys
import tempfile

from conveyor_sgl.runtime.sandbox import landlock, namespaces, privileges, syscalls
from conveyor_sgl.runtime.sandbox import layers as switches
from conveyor_sgl.runtime.sandbox.confine import scrub_env

DISK_BYTES = 256 << 20
_PR_SET_PDEATHSIG = 1


def command_roots(command: list[str]) -> list[str]:
    """The directories holding the command's own files: its executable (found on PATH) and
    each argument that names an existing file (its directory) or directory."""
    roots = []
    executable = shutil.which(command[0])
    if executable:
        roots.append(os.path.dirname(os.path.realpath(executable)))
    for arg in command[1:]:
        if os.path.isabs(arg) and os.path.exists(arg):
            real = os.path.realpath(arg)
            roots.append(real if os.path.isdir(real) else os.path.dirname(real))
    return roots


def confine(network: bool, read: list[str], workdir: str) -> list[str]:
    """Confine this process (single-threaded: a fresh interpreter); the layers that held."""
    off = switches.disabled()
    held = namespaces.private_mounts(workdir, DISK_BYTES, own_pid_namespace=False)
    os.chdir(workdir)
    env = scrub_env(dict(os.environ))
    os.environ.clear()
    os.environ.update(env, HOME=workdir, TMPDIR=workdir)
    if not network and "netns" not in off and namespaces.private_network():
        held.append("netns")
    last_cap = privileges.last_cap()  # /proc/sys is out of reach once in Landlock
    if "landlock" not in off and landlock.restrict(workdir, network, read=read):
        held.append("landlock")
    if "seccomp" not in off and syscalls.refuse_dangerous():
        held.append("syscalls")
    if "caps" not in off and privileges.drop_all(last_cap):
        held.append("caps")
    return held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", action="store_true")
    parser.add_argument("--read", action="append", default=[])
    parser.add_argument("--report", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the death signal was set
        return 125
    report = open(args.report, "w")
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="conveyor-mcp-"))
    read = [*command_roots(command), *args.read]
    try:
        held = confine(args.network, read, workdir)
    except OSError as e:
        print(f"confined_command: could not confine {command[0]}: {e}", file=sys.stderr)
        return 126
    json.dump({"layers": held, "workdir": workdir}, report)
    report.close()
    try:
        os.execvp(command[0], command)  # noqa: S606 - the operator's own command
    except OSError as e:
        print(f"confined_command: cannot run {command[0]}: {e}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    raise SystemExit(main())
