"""The arithmetic of BFCL's ``exec_simple`` math functions, as calculator lines.

One function per BFCL function name: the call's arguments -> the lines a model writes to
compute the function's result with the calculator tool (assignments, then the formula;
the calculator has numbers, arithmetic and ``math`` functions, no lists, so sums over a
list are written out). The formulas are the textbook ones each function's description
names (population standard deviation, central difference, Mifflin-St Jeor, shoelace...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Lines = list[str]


def _assign(**values: Any) -> Lines:
    return [f"{name} = {value!r}" for name, value in values.items()]


def _sum(terms: list[str]) -> str:
    return " + ".join(terms)


def binomial(n, k, p) -> Lines:
    return [*_assign(n=n, k=k, p=p), "comb(n, k) * p ** k * (1 - p) ** (n - k)"]


def cosine(vectorA, vectorB) -> Lines:
    pairs = list(zip(vectorA, vectorB, strict=True))
    return [
        f"dot = {_sum([f'{a!r} * {b!r}' for a, b in pairs])}",
        f"norm_a = sqrt({_sum([f'{a!r} ** 2' for a in vectorA])})",
        f"norm_b = sqrt({_sum([f'{b!r} ** 2' for b in vectorB])})",
        "dot / (norm_a * norm_b)",
    ]


def mean(numbers) -> Lines:
    return [
        f"total = {_sum([repr(x) for x in numbers])}",
        f"count = {len(numbers)}",
        "total / count",
    ]


def std(numbers) -> Lines:
    return [
        f"mean = ({_sum([repr(x) for x in numbers])}) / {len(numbers)}",
        f"variance = ({_sum([f'({x!r} - mean) ** 2' for x in numbers])}) / {len(numbers)}",
        "sqrt(variance)",
    ]


def derivative(function, x) -> Lines:
    body = function.split(":", 1)[1].strip()
    at = lambda name: re.sub(r"\bx\b", name, body)  # noqa: E731 - one line
    return [
        *_assign(x=x, h=0.0001),
        "x_plus = x + h",
        "x_minus = x - h",
        f"f_plus = {at('x_plus')}",
        f"f_minus = {at('x_minus')}",
        "(f_plus - f_minus) / (2 * h)",
    ]


def distance(pointA, pointB) -> Lines:
    (x1, y1), (x2, y2) = pointA, pointB
    return [*_assign(x1=x1, y1=y1, x2=x2, y2=y2), "sqrt((x2 - x1) ** 2 + (y2 - y1) ** 2)"]


def fibonacci(n) -> Lines:
    lines = ["f0 = 0", "f1 = 1"]
    lines += [f"f{i} = f{i - 2} + f{i - 1}" for i in range(2, n)]
    return lines


def mat_mul(matA, matB) -> Lines:
    rows, inner, cols = len(matA), len(matB), len(matB[0])
    return [
        f"c{i + 1}{j + 1} = {_sum([f'{matA[i][k]!r} * {matB[k][j]!r}' for k in range(inner)])}"
        for i in range(rows)
        for j in range(cols)
    ]


def mortgage(loan_amount, interest_rate, loan_period) -> Lines:
    return [
        *_assign(principal=loan_amount, rate=interest_rate, years=loan_period),
        "monthly_rate = rate / 12",
        "months = years * 12",
        "growth = (1 + monthly_rate) ** months",
        "payment = principal * monthly_rate * growth / (growth - 1)",
        "round(payment, 2)",
    ]


def quadratic(a, b, c) -> Lines:
    return [
        *_assign(a=a, b=b, c=c),
        "discriminant = b ** 2 - 4 * a * c",
        "root1 = (-b + sqrt(discriminant)) / (2 * a)",
        "root2 = (-b - sqrt(discriminant)) / (2 * a)",
    ]


def regression(x, y, point) -> Lines:
    n = len(x)
    pairs = list(zip(x, y, strict=True))
    return [
        f"mean_x = ({_sum([repr(v) for v in x])}) / {n}",
        f"mean_y = ({_sum([repr(v) for v in y])}) / {n}",
        f"sxy = {_sum([f'({a!r} - mean_x) * ({b!r} - mean_y)' for a, b in pairs])}",
        f"sxx = {_sum([f'({a!r} - mean_x) ** 2' for a in x])}",
        "slope = sxy / sxx",
        "intercept = mean_y - slope * mean_x",
        f"slope * {point!r} + intercept",
    ]


def investment(initial_investment, annual_contribution, years, annual_return, inflation_rate):
    lines = [*_assign(value0=initial_investment, rate=annual_return, deflator0=1)]
    for year in range(1, years + 1):
        lines.append(f"value{year} = value{year - 1} * (1 + rate) + {annual_contribution!r}")
        inflation = inflation_rate[year - 1]
        lines.append(f"deflator{year} = deflator{year - 1} * (1 + {inflation!r})")
    return [*lines, f"real_value = value{years} / deflator{years}", "round(real_value, 2)"]


def nutrition(weight, height, age, gender, activity_level, goal) -> Lines:
    offset = 5 if gender == "male" else -161
    factor = (1.2, 1.375, 1.55, 1.725, 1.9)[min(max(activity_level, 1), 5) - 1]
    change = {"lose": -500, "gain": 500}.get(goal, 0)
    return [
        f"bmr = 10 * {weight!r} + 6.25 * {height!r} - 5 * {age!r} + {offset}",
        f"maintenance = bmr * {factor}",
        f"calories = maintenance + {change}",
        "protein_g = calories * 0.3 / 4",
        "fat_g = calories * 0.25 / 9",
        "carbs_g = calories * 0.45 / 4",
    ]


def order(item, quantity, price) -> Lines:
    lines = [
        f"line{i + 1} = {q!r} * {p!r}" for i, (q, p) in enumerate(zip(quantity, price, strict=True))
    ]
    return [*lines, _sum([f"line{i + 1}" for i in range(len(item))])]


def polygon(vertices) -> Lines:
    n = len(vertices)
    corners = [(vertices[i], vertices[(i + 1) % n]) for i in range(n)]
    terms = [f"{x1!r} * {y2!r} - {x2!r} * {y1!r}" for (x1, y1), (x2, y2) in corners]
    return [f"twice_area = {_sum([f'({t})' for t in terms])}", "abs(twice_area) / 2"]


FORMULAS: dict[str, Callable[..., Lines]] = {
    "calc_binomial_probability": binomial,
    "calculate_cosine_similarity": cosine,
    "calculate_density": lambda mass, volume: [*_assign(mass=mass, volume=volume), "mass / volume"],
    "calculate_displacement": lambda initial_velocity, acceleration, time: [
        *_assign(u=initial_velocity, a=acceleration, t=time),
        "u * t + 0.5 * a * t ** 2",
    ],
    "calculate_electrostatic_potential_energy": lambda charge, voltage: [
        *_assign(charge=charge, voltage=voltage),
        "charge * voltage",
    ],
    "calculate_final_velocity": lambda initial_velocity, acceleration, time: [
        *_assign(u=initial_velocity, a=acceleration, t=time),
        "u + a * t",
    ],
    "calculate_future_value": lambda present_value, interest_rate, periods: [
        *_assign(pv=present_value, rate=interest_rate, n=periods),
        "pv * (1 + rate) ** n",
    ],
    "calculate_mean": mean,
    "calculate_permutations": lambda n, k: [*_assign(n=n, k=k), "perm(n, k)"],
    "calculate_standard_deviation": std,
    "calculate_triangle_area": lambda base, height: [
        *_assign(base=base, height=height),
        "0.5 * base * height",
    ],
    "estimate_derivative": derivative,
    "geometry_area_circle": lambda radius: [*_assign(radius=radius), "pi * radius ** 2"],
    "get_distance": distance,
    "get_fibonacci_sequence": fibonacci,
    "mat_mul": mat_mul,
    "math_factorial": lambda n: [*_assign(n=n), "factorial(n)"],
    "math_gcd": lambda a, b: [*_assign(a=a, b=b), "gcd(a, b)"],
    "math_lcm": lambda a, b: [*_assign(a=a, b=b), "lcm(a, b)"],
    "mortgage_calculator": mortgage,
    "quadratic_roots": quadratic,
    "linear_regression": regression,
    "calculate_investment_value": investment,
    "calculate_nutritional_needs": nutrition,
    "order_food": order,
    "polygon_area": polygon,
}
