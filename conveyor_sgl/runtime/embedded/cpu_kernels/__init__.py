"""CPU support for the stock SGLang server: the few sgl_kernel ops its CPU path imports.

The real `sgl_kernel` (wheel `sglang-kernel`) is CUDA-only. `install_shim()` puts a small
stand-in package of that name first on the import path, for this process and every process
SGLang starts from it; call it only when serving on CPU, before importing `sglang.srt`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

# The directory holding the stand-in `sgl_kernel` package (and nothing else importable).
SHIM_DIR = Path(__file__).resolve().parent / "shim"

# Every name SGLang 0.5.23 imports from sgl_kernel under `if _is_cpu:`. Serving a plain
# Llama model imports all but rotate_input_ids_cpu and calls none of them (measured); the
# first two are real ops of the KV pool, the rest belong to speculative decoding.
IMPLEMENTED = ("assign_req_to_token_pool_cpu", "copy_all_layer_kv_cache_cpu")
UNSUPPORTED = (
    "assign_draft_cache_locs_contiguous_cpu",
    "assign_extend_cache_locs_cpu",
    "build_tree_kernel_efficient_cpu",
    "verify_tree_greedy_cpu",
    "fill_accept_out_cache_loc_cpu",
    "fill_bonus_tokens_cpu",
    "rotate_input_ids_cpu",
)


def install_shim(env: MutableMapping[str, str] | None = None) -> None:
    """Make `import sgl_kernel` resolve to the CPU stand-in, here and in child processes.

    multiprocessing's spawn start method copies the parent's sys.path into each child before
    unpickling anything, which covers SGLang's scheduler and detokenizer; PYTHONPATH covers
    processes started with subprocess. The stand-in imports conveyor_sgl, so PYTHONPATH also
    gets, last, the directory this copy of conveyor_sgl is imported from (a source checkout
    is not necessarily installed).
    """
    env = os.environ if env is None else env
    shim = str(SHIM_DIR)
    if shim in sys.path:
        sys.path.remove(shim)
    sys.path.insert(0, shim)
    env["PYTHONPATH"] = build_pythonpath(env.get("PYTHONPATH", ""))
    if "sgl_kernel" in sys.modules and not _is_shim(sys.modules["sgl_kernel"]):
        raise RuntimeError("the real sgl_kernel was imported before the CPU shim was installed")


def build_pythonpath(current: str) -> str:
    # The directory that holds the conveyor_sgl package (shim/ is conveyor_sgl/runtime/
    # embedded/cpu_kernels/shim), so the server's processes import it as the runtime does.
    shim, package_root = str(SHIM_DIR), str(SHIM_DIR.parents[4])
    kept = [p for p in current.split(os.pathsep) if p and p not in (shim, package_root)]
    return os.pathsep.join([shim, *kept, package_root])


def _is_shim(module: object) -> bool:
    return str(getattr(module, "__file__", "")).startswith(str(SHIM_DIR))
