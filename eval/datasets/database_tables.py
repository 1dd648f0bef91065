"""SQLite tables built from the datasets scikit-learn ships, as the SQL tool's setup script.

- ``iris``: Fisher's iris (1936; UCI), 150 flowers: four measurements in cm and the species;
- ``wine``: the UCI Wine data, 178 wines of three cultivars, 13 chemical measurements;
- ``diabetes``: Efron et al. (2004), 442 patients, unscaled: age, sex, BMI, blood pressure,
  six serum measurements and the disease progression a year later;
- ``breast_cancer``: the Wisconsin Diagnostic Breast Cancer data (UCI), 569 tumours: eight of
  its 30 features and the diagnosis.

Each table gets an ``id`` (the row's position in scikit-learn's array, from 1). The script is
deterministic: scikit-learn's copies of these datasets are fixed files.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

_CANCER_COLUMNS = (
    *("mean radius", "mean texture", "mean perimeter", "mean area", "mean smoothness"),
    *("mean concavity", "worst radius", "worst area"),
)


def _column(name: str) -> str:
    return re.sub(r"\W+", "_", name.replace("(cm)", "").strip().lower()).strip("_")


def _value(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    number = float(value)  # numpy scalars included
    return str(int(number)) if number.is_integer() else repr(round(number, 6))


def _table(name: str, columns: Sequence[str], types: Sequence[str], rows) -> str:
    cols = ", ".join(f"{c} {t}" for c, t in zip(columns, types, strict=True))
    values = ",\n".join(
        "(" + ", ".join([str(i + 1), *map(_value, row)]) + ")" for i, row in enumerate(rows)
    )
    create = f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, {cols});"
    return f"{create}\nINSERT INTO {name} VALUES\n{values};\n"


def _frame(name: str):
    from sklearn import datasets  # imported on first use: the other groups do not need it

    if name == "iris":
        bunch = datasets.load_iris(as_frame=True)
        frame = bunch.data.assign(species=bunch.target.map(dict(enumerate(bunch.target_names))))
    elif name == "wine":
        frame = datasets.load_wine(as_frame=True).frame.rename(
            columns={"target": "cultivar", "od280/od315_of_diluted_wines": "od280_od315"}
        )
    elif name == "diabetes":
        frame = datasets.load_diabetes(as_frame=True, scaled=False).frame
        frame = frame.rename(columns={"target": "progression"})
    elif name == "breast_cancer":
        bunch = datasets.load_breast_cancer(as_frame=True)
        frame = bunch.data[list(_CANCER_COLUMNS)].assign(
            diagnosis=bunch.target.map({0: "malignant", 1: "benign"})
        )
    else:
        raise ValueError(f"no table {name!r}")
    return frame.rename(columns=_column)


def _sql_type(column) -> str:
    from pandas.api import types

    if types.is_integer_dtype(column):
        return "INTEGER"
    return "REAL" if types.is_numeric_dtype(column) else "TEXT"


@functools.cache
def setup_script(name: str) -> str:
    """``CREATE TABLE`` and one ``INSERT`` of every row, for the table ``name``."""
    frame = _frame(name)
    types = [_sql_type(frame[column]) for column in frame.columns]
    return _table(name, list(frame.columns), types, frame.itertuples(index=False))


TABLES = ("iris", "wine", "diabetes", "breast_cancer")
