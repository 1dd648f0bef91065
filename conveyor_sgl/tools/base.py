"""The tool interface, for tool developers.

A tool runs inside a tool worker process. It names the parser that cuts its input into units
(the parser itself runs centrally, in the runtime); the worker calls ``start`` once, ``feed``
for each finished unit as soon as it is decoded, ``finish`` when decoding ended, and
``cancel`` if the program is abandoned. A tool that cannot use partial input sets
``partial = False`` and receives every unit right before ``finish``.

A tool that works on units in the background (threads: search queries, plan tasks) returns
quickly from ``feed``; it reports when it really worked on each unit, and what each unit
waited for, in ``ToolOutput.work``, so timelines and the latency bound see the real schedule.

Commit or undo. Early execution changes what a cut call leaves: a unit runs when its end is
decoded, so a call cut later (the program abandons it, a validation or ``abort_on_error``
stop ends the generation, its result times out, the client goes away, the session is
cancelled) has already done part of its work, where the sequential baseline (all units at
``finish``) would have run nothing. The contract, for every tool:

- ``finish()`` completes the call: its input ended (decoding finished, or the tool itself
  asked to stop with ``Abort``) and the result is wanted. It commits the call's effects
  (makes durable what the tool held back) and returns the result; a failed unit is a
  completed call with status ``error``.
- ``cancel()`` cuts the call (abandoned, the client gone, the session cancelled or ended
  without ``finish``): it stops work and undoes what can be undone, so that the call leaves
  what the sequential baseline leaves for a cut call: nothing of its units. A tool whose
  effects are lasting and not undoable says so in its docstring (what runs early, what a
  cut call leaves). ``cancel`` may come from another thread while ``feed`` runs (in
  process); in a worker it comes between units, and the worker is ended a moment later.
  The runtime does not call ``finish`` after it.
- A worker killed mid-call (a result timeout, a unit that will not stop, a crash, the
  runtime gone) runs neither: what a tool holds back must be undone without it (an
  uncommitted SQLite transaction is: SQLite rolls it back when the file is next opened),
  and what lives in the session's working directory vanishes with the session.

The built-in tools: python runs each statement early; its effects on its working directory
vanish with the session, and with its default limits (kernel-confined where the kernel
allows, no network, no processes) it can have no other; with limits loosened, effects
outside (files, requests) are not undone. sql runs each statement early inside one
transaction per call: committed by ``finish``, rolled back by ``cancel`` (or by SQLite for a
killed worker); ``transaction: false`` is autocommit. search sends each query early (reads;
a query service sees it); planner runs its tasks early (searches, and python tasks under the
same confinement); validation checks each field early (its ``function`` runs only in
``finish``); calculator evaluates each line early: none of them has a lasting effect, so a
cut call leaves nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.parsers.base import Unit

Status = Literal["ok", "error", "aborted", "timeout"]


@dataclass(frozen=True)
class UnitWork:
    """When the tool worked on one unit (``time.monotonic()``), for a tool that does it
    outside ``feed``. ``unit`` and ``after`` count units in the order they were fed (0 = the
    first); ``after`` lists the units whose work this one waited for (empty: independent).
    A unit not reported is taken as worked on during ``feed``, after the one before it."""

    unit: int
    started_at: float
    finished_at: float
    after: tuple[int, ...] = ()


@dataclass
class ToolOutput:
    """What a tool returns from ``finish``; errors are data, never raised across processes."""

    output: str = ""
    status: Status = "ok"
    error: str | None = None
    work: list[UnitWork] = field(default_factory=list)


@dataclass(frozen=True)
class ConfigReferences:
    """What a config names outside the tool: files it opens, URLs it fetches, callables it
    imports. A server's policy checks these before anything is opened, fetched or imported."""

    paths: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    callables: tuple[str, ...] = ()

    def __add__(self, other: ConfigReferences) -> ConfigReferences:
        return ConfigReferences(
            self.paths + other.paths, self.urls + other.urls, self.callables + other.callables
        )


@dataclass
class Abort:
    """Returned by ``feed`` to ask the runtime to stop decoding early (e.g. invalid argument)."""

    reason: str


class Tool:
    """Base class for tool plugins. Subclasses set ``parser`` and override the methods.

    A tool's effects follow the module's contract (commit or undo): ``finish`` commits the
    call's effects, ``cancel`` undoes what can be undone; a tool whose units have lasting
    effects it cannot undo documents what a cut call leaves."""

    parser: ClassVar[str] = "line"
    partial: ClassVar[bool] = True
    # True for a tool that runs model-written code: whatever name it is registered under (or
    # none), its worker gets no network, no processes and confinement unless its own
    # limits section says otherwise; server mode also needs kernel confinement for it.
    untrusted_code: ClassVar[bool] = False
    # The option through which a server confines the files the tool may open (the tool
    # enforces it at run time); a request may not set it. None: the tool opens no files.
    files_root_option: ClassVar[str | None] = None
    # True: the tool writes the files its config names (sql's database and its journal), so
    # its sandbox lets it write beneath the files root (else the named files' directories).
    writes_files: ClassVar[bool] = False

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        """Raise ``ValueError``/``TypeError`` naming what is wrong with ``config``.

        Called in the runtime when the program is built (``partial_tool``) and when a session
        is created, so a bad option fails before any decoding; ``start`` may rely on it.
        """

    @classmethod
    def config_references(cls, config: dict[str, Any]) -> ConfigReferences:
        """The files, URLs and callables ``config`` names (after ``check_config`` passed);
        nested configs (a planner's search options) are included. Nothing is opened."""
        return ConfigReferences()

    @classmethod
    def preload(cls) -> None:
        """Import heavy dependencies and load read-only data before any session, so that
        ``start`` is quick. A warm worker calls it (outside the sandbox) for the tools the pool
        served recently; it must run no program-supplied code."""

    def start(self, config: dict[str, Any]) -> None:
        """Prepare a session. ``config`` comes from the program (``partial_tool(..., config=)``)."""

    def feed(self, unit: Unit) -> Abort | None:
        """Act on one finished unit. Return ``Abort(reason)`` to stop decoding early."""
        return None

    @classmethod
    def may_abort(cls, config: dict[str, Any]) -> bool:
        """Whether a session with ``config`` may return ``Abort`` from ``feed`` (callers wait
        for its verdict before running what comes after). Only a tool that overrides ``feed``
        can; override this to say more precisely."""
        return cls.feed is not Tool.feed

    def finish(self) -> ToolOutput:
        """All input has arrived and the call was not cut: commit the call's effects (what
        the tool held back, e.g. sql's transaction) and return the result. The runtime
        calls it at most once, never after ``cancel``; errors are returned
        (``status="error"``), not raised: a failed unit still completes the call."""
        raise NotImplementedError

    def cancel(self) -> None:
        """The call was cut (abandoned, aborted, timed out, its client gone): stop work,
        undo what can be undone of what the units did (e.g. roll back sql's transaction),
        and release resources. It may run on another thread while ``feed`` runs; ``finish``
        does not follow. What cannot be undone (a request sent) is documented by the tool."""


class ToolConfigError(ConveyorError, ValueError):
    """A tool option that is not valid; the message names the option and what to change."""


class ToolConfigTypeError(ToolConfigError, TypeError):
    """A tool option of the wrong type (a ``TypeError`` too, for code that catches those)."""


def check_known_options(config: dict[str, Any], known: Iterable[str]) -> None:
    """For ``check_config``: a misspelt option is an error, not silently ignored."""
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ToolConfigError(f"unknown option(s) {unknown}; known: {sorted(known)}")


def option_number(
    config: dict[str, Any],
    key: str,
    default: float,
    *,
    integer: bool = False,
    zero_ok: bool = False,
) -> Any:
    """``config[key]`` (or ``default``), checked: a finite number (an ``int`` where
    ``integer``), positive (``>= 0`` where ``zero_ok``); the error names the option and the
    value."""
    value = config.get(key, default)
    kind = "an integer" if integer else "a number"
    expected = f"{kind} >= 0" if zero_ok else f"a positive {kind.split()[-1]}"
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise ToolConfigTypeError(f"{key} must be {expected}, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise ToolConfigError(f"{key} must be {expected}, got {value!r}")
    return value


def option_limit(
    config: dict[str, Any],
    key: str,
    default: float,
    *,
    maximum: float | None = None,
    integer: bool = False,
    zero_ok: bool = False,
) -> Any:
    """An option that bounds a resource (rows, digits, bits, results, threads, seconds): as
    ``option_number``, and at most ``maximum`` (by default ``default``, the packaged value).
    A config, which in server mode is a request's, may only tighten the bound, never loosen
    it; the error names the option and its maximum."""
    value = option_number(config, key, default, integer=integer, zero_ok=zero_ok)
    ceiling = default if maximum is None else maximum
    if not value <= ceiling:
        raise ToolConfigError(
            f"{key} {value!r} is above its maximum {ceiling!r}: this option bounds a resource "
            f"and a config may only tighten it (give {key} <= {ceiling!r}, or leave it out)"
        )
    return value
