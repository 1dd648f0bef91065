"""The calculator tool: one arithmetic expression per line, evaluated as soon as it is decoded.

Never ``eval``: each line is parsed with ``ast`` and walked over a whitelist of number
literals, arithmetic and comparison operators, a few ``math`` functions and constants, and
names assigned by earlier lines (``x = 2 * pi``), so model-written text cannot run code.
Integer results are capped (``max_int_bits``) *before* an operation that could exceed the
cap runs, so ``9 ** 9 ** 9`` is refused at once rather than hanging the worker.

Config (both bound a resource, so a config may lower them, never raise them above their
maximum: ``option_limit``):
- ``precision`` (int, default 12, at most 17): significant digits of float results (17 is
  every digit a float has);
- ``max_int_bits`` (int, default and maximum 4096): the largest integer an operation may
  produce.

Output: one line per expression, ``<expression> = <value>``. The first line that fails
stops the run (later lines are not evaluated): status ``error``, error
``"line 3: ZeroDivisionError: division by zero"``, output the results before it.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.parsers.base import Unit
from conveyor_sgl.tools.base import Tool, ToolOutput, check_known_options, option_limit

Number = int | float

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    **{
        name: getattr(math, name)
        for name in (
            *("sqrt", "exp", "log", "log2", "log10", "hypot", "floor", "ceil", "isqrt"),
            *("sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh"),
            *("degrees", "radians", "gcd", "lcm", "comb", "perm"),
        )
    },
    "factorial": math.factorial,
}
_CONSTANTS: dict[str, Number] = {"pi": math.pi, "e": math.e, "tau": math.tau}
# factorial/comb/perm cost grows with n before the result cap can look at the result.
_COMBINATORIAL = frozenset({"factorial", "comb", "perm"})
_MAX_COMBINATORIAL_N = 2000
MAX_INT_BITS = 4096  # the default, and the most a config may ask for
PRECISION, MAX_PRECISION = 12, 17  # 17 significant digits tell every float apart


class CalculatorError(ConveyorError, ValueError):
    """The expression is outside the calculator's language or its limits."""


class Evaluator:
    """Evaluates whitelisted expression trees; names persist between lines."""

    def __init__(self, max_int_bits: int = MAX_INT_BITS) -> None:
        self.max_int_bits = max_int_bits
        self.names: dict[str, Number] = {}

    def run_line(self, line: str) -> tuple[str | None, Number]:
        """Evaluate one line: ``(assigned name or None, value)``."""
        try:
            tree = ast.parse(line.strip(), mode="exec")
        except SyntaxError as e:
            raise CalculatorError(f"not an expression: {e.msg}") from None
        if len(tree.body) != 1:
            raise CalculatorError("one expression per line")
        statement = tree.body[0]
        if isinstance(statement, ast.Expr):
            return None, self.eval(statement.value)
        if (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            value = self.eval(statement.value)
            self.names[statement.targets[0].id] = value
            return statement.targets[0].id, value
        raise CalculatorError(f"unsupported statement {type(statement).__name__}")

    def eval(self, node: ast.AST) -> Number:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise CalculatorError(f"unsupported literal {node.value!r}")
            return node.value
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self.eval(node.left), self.eval(node.right)
            self._check_binary(node.op, left, right)
            return self._capped(_BINARY[type(node.op)](left, right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self.eval(node.operand))
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise CalculatorError(f"unsupported syntax {type(node).__name__}")

    def _name(self, name: str) -> Number:
        if name in self.names:
            return self.names[name]
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        raise CalculatorError(f"unknown name {name!r}")

    def _compare(self, node: ast.Compare) -> int:
        left = self.eval(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if type(op) not in _COMPARE:
                raise CalculatorError(f"unsupported comparison {type(op).__name__}")
            right = self.eval(comparator)
            if not _COMPARE[type(op)](left, right):
                return 0
            left = right
        return 1

    def _call(self, node: ast.Call) -> Number:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _FUNCTIONS or node.keywords:
            raise CalculatorError(f"unsupported function call {ast.unparse(node.func)!r}")
        args = [self.eval(arg) for arg in node.args]
        big = args and isinstance(args[0], int) and args[0] > _MAX_COMBINATORIAL_N
        if name in _COMBINATORIAL and big:
            raise CalculatorError(f"{name} argument above {_MAX_COMBINATORIAL_N}")
        return self._capped(_FUNCTIONS[name](*args))

    def _check_binary(self, op: ast.operator, left: Number, right: Number) -> None:
        # Refuse before computing: a huge power or product would hang the worker.
        if not (isinstance(left, int) and isinstance(right, int)):
            return
        if isinstance(op, ast.Pow) and right > 0 and abs(left) > 1:
            bits = right * (abs(left).bit_length() - 1)
        elif isinstance(op, ast.Mult):
            bits = abs(left).bit_length() + abs(right).bit_length() - 1
        else:
            return
        if bits > self.max_int_bits:
            raise CalculatorError(f"result too large (over {self.max_int_bits} bits)")

    def _capped(self, value: Any) -> Number:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int) and value.bit_length() > self.max_int_bits:
            raise CalculatorError(f"result too large (over {self.max_int_bits} bits)")
        if not isinstance(value, int | float):
            raise CalculatorError(f"unsupported result type {type(value).__name__}")
        return value


def format_number(value: Number, precision: int = PRECISION) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.{precision}g}"
    return str(value)


def describe(exc: BaseException) -> str:
    """``"ZeroDivisionError: division by zero"``; the calculator's own refusals say only why."""
    return str(exc) if isinstance(exc, CalculatorError) else f"{type(exc).__name__}: {exc}"


class CalculatorTool(Tool):
    parser = "line"
    partial = True

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        check_known_options(config, ["precision", "max_int_bits"])
        _settings(config)

    def start(self, config: dict[str, Any]) -> None:
        self._precision, max_int_bits = _settings(config)
        self._evaluator = Evaluator(max_int_bits)
        self._lines: list[str] = []
        self._error: str | None = None
        self._cancelled = False

    def feed(self, unit: Unit) -> None:
        if self._error is not None or self._cancelled:
            return
        expression = unit.text.strip()
        try:
            name, value = self._evaluator.run_line(expression)
        except (CalculatorError, ArithmeticError, ValueError, TypeError, RecursionError) as e:
            self._error = f"line {unit.data.get('lineno', '?')}: {describe(e)}"
            return
        shown = expression if name is None else name
        self._lines.append(f"{shown} = {format_number(value, self._precision)}")

    def finish(self) -> ToolOutput:
        output = "".join(line + "\n" for line in self._lines)
        if self._cancelled:
            return ToolOutput(output, "aborted", "cancelled")
        if self._error is not None:
            return ToolOutput(output, "error", self._error)
        return ToolOutput(output)

    def cancel(self) -> None:
        self._cancelled = True


def _settings(config: dict[str, Any]) -> tuple[int, int]:
    """(precision, max_int_bits), checked: each may only be tightened."""
    return (
        option_limit(config, "precision", PRECISION, maximum=MAX_PRECISION, integer=True),
        option_limit(config, "max_int_bits", MAX_INT_BITS, integer=True),
    )
