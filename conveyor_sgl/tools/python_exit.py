"""What Python does after a program's last statement, and how it shows ignored exceptions.

A run of ``python program.py`` does not end at its last statement: ``Py_FinalizeEx`` then
runs the finalizers of what the program left behind (``__del__``, a suspended generator's
``finally``), and what they print is part of the run's output, after the traceback.
``finalize`` does the same steps (CPython 3.11's ``Py_FinalizeEx`` and
``finalize_modules``), inside the program's view so that their output is captured:

1. the exception that ended the program is released (``sys.last_traceback = None``; a
   ``SystemExit`` is cleared before finalizing): the locals of its frames are finalized,
   still writing to the program's own streams;
2. the cycle collector runs while the program is intact (``_PyGC_CollectIfEnabled``);
3. ``sys.stdin``/``stdout``/``stderr`` are set back to ``sys.__stdin__`` (the program's
   originals) and so on, and ``sys.argv`` is None;
4. ``__main__`` is dropped (``sys.modules``' aliases of it too): its globals go, by
   reference count, then at one more collection, with no source lines in the tracebacks
   of ignored exceptions from here on, as Python shows none once it removed the modules.

The collections run only where the program's globals are held by more than their module (a
function or class it defined, a frame, a generator: a reference cycle through them is then
likely): a full collection costs ~50 ms on this 2-core VM after importing scikit-learn
(the worker's own objects are frozen out of it), and most code-interpreter scripts define
nothing, so theirs are finalized by reference count alone.

What differs: ``atexit`` handlers and the wait for non-daemon threads are not run (they
belong to the worker process, which is shared with the runtime); the modules the program
imported are not torn down, so a finalizer can still import; garbage cycles of library
objects alone (none of the program's code in them) are not collected where the program's
globals are not shared; in (1), Python releases an exception other than ``SystemExit``
after the collection in (2), which only matters to garbage the program left earlier; and
the collector's order among objects in reference cycles follows when it last ran, which
the worker's allocations shift as Python's own start-up does (``python -S`` prints such
finalizers in another order than ``python``), so several of them may print in another
order than a bare run.
"""

from __future__ import annotations

import gc
import sys
import traceback
from contextlib import AbstractContextManager
from typing import Protocol


class ProcessView(Protocol):
    """What ``finalize`` needs of the program's process view (``python_exec.ProcessView``)."""

    last_exception: BaseException | None
    unraisable: UnraisableHook

    def installed(self) -> AbstractContextManager[object]: ...

    def globals_shared(self) -> bool: ...

    def release_main(self) -> None: ...


def finalize(view: ProcessView) -> None:
    """Run Python's end of program for the program in ``view`` (see the module docstring).

    Finalizers' exceptions are "ignored" (printed), as in Python; nothing here raises.
    """
    with view.installed():
        view.last_exception = None
        collect = view.globals_shared()  # else no code of the program can be in a cycle
        if collect and gc.isenabled():
            gc.collect()
        for name in ("stdin", "stdout", "stderr"):  # as the program left sys.__stdout__
            setattr(sys, name, getattr(sys, f"__{name}__", None))
        sys.argv = None  # type: ignore[assignment]  # as Python sets it at exit
        view.unraisable.source_lines = False
        view.release_main()
        if collect:
            gc.collect()


class UnraisableHook:
    """CPython's default ``sys.unraisablehook`` ("Exception ignored in: ..."), with source
    lines from ``linecache``: the C one opens files by name, so it cannot show the lines of
    ``<tool>``, which a run of ``program.py`` shows. Once Python's exit has removed the
    modules it shows none, and nor does this hook after ``source_lines`` is cleared."""

    def __init__(self) -> None:
        self.source_lines = True

    def __call__(self, unraisable: sys.UnraisableHookArgs) -> None:
        file = sys.stderr
        if file is None:
            return
        try:
            file.write(self.format(unraisable))
        except Exception:  # noqa: BLE001 - as CPython falls back when a display fails
            sys.__unraisablehook__(unraisable)

    def format(self, u: sys.UnraisableHookArgs) -> str:
        text = ""
        if u.object is not None:
            head = "Exception ignored in" if u.err_msg is None else u.err_msg
            text = f"{head}: {_repr(u.object)}\n"
        elif u.err_msg is not None:
            text = f"{u.err_msg}:\n"
        if u.exc_traceback is not None:
            frames = traceback.extract_tb(u.exc_traceback)
            if not self.source_lines:
                bare = [
                    traceback.FrameSummary(f.filename, f.lineno, f.name, line="") for f in frames
                ]
                frames = traceback.StackSummary.from_list(bare)
            text += "Traceback (most recent call last):\n" + "".join(frames.format())
        if u.exc_type is None:
            return text
        value = ""
        if u.exc_value is not None:  # CPython writes ": " even before an empty message
            try:
                value = ": " + str(u.exc_value)
            except Exception:  # noqa: BLE001 - a broken __str__ is the program's
                value = ": <exception str() failed>"
        return text + type_name(u.exc_type) + value + "\n"


def type_name(cls: type) -> str:
    """How tracebacks name an exception type: ``module.Qualname``, bare for builtins and
    ``__main__``."""
    name = cls.__qualname__
    if cls.__module__ not in ("builtins", "__main__"):
        name = f"{cls.__module__}.{name}"
    return name


def _repr(obj: object) -> str:
    try:
        return repr(obj)
    except Exception:  # noqa: BLE001 - a broken __repr__ is the program's
        return "<object repr() failed>"
