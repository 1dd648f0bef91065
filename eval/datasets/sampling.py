"""Seeded samples of a dataset's items: the same seed gives the same items, in source order."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def rng(seed: int | str) -> random.Random:
    """A reproducible generator (the same seed draws the same numbers on every machine)."""
    return random.Random(seed)  # noqa: S311 - reproducible samples, not secrets


def sample(items: Sequence[T], limit: int | None, seed: int) -> list[T]:
    """``limit`` items drawn with ``seed`` (all of them if None or more than there are),
    kept in their source order so that a sample reads like the dataset."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    chosen = sorted(rng(seed).sample(range(len(items)), limit))
    return [items[i] for i in chosen]


def sample_strata(strata: Sequence[Sequence[T]], limit: int | None, seed: int) -> list[T]:
    """A sample with an equal share from each stratum (a source of very different size must
    not crowd out the others); the remainder goes to the first strata."""
    if limit is None:
        return [item for stratum in strata for item in stratum]
    share, extra = divmod(limit, len(strata))
    out: list[T] = []
    for i, stratum in enumerate(strata):
        out += sample(stratum, share + (1 if i < extra else 0), seed + i)
    return out
