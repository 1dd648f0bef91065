"""Placeholders for sgl_kernel names SGLang imports on CPU but never calls on our path."""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn


def unsupported(name: str) -> Callable[..., NoReturn]:
    def kernel(*args: object, **kwargs: object) -> NoReturn:
        raise NotImplementedError(
            f"sgl_kernel.{name} is not provided by conveyor_sgl's CPU shim: SGLang calls it "
            "only for speculative decoding, which the embedded CPU server does not support. "
            "Run without --speculative-* flags, or on a GPU with the real sglang-kernel."
        )

    kernel.__name__ = name
    kernel.__qualname__ = name
    return kernel
