"""Stand-in for the `sgl_kernel` package on machines without a GPU.

The sglang-kernel wheel is CUDA-only: importing it fails without `libcuda.so.1`. SGLang's
CPU path (SGLANG_USE_CPU_ENGINE=1) imports the names below at module load; this package is
put first on sys.path by conveyor_sgl's launcher only when it serves on CPU.

Every other name is deliberately missing: SGLang probes some optional kernels with
`try: from sgl_kernel import X except ImportError`, and must keep its fallback for those.
"""

from __future__ import annotations

from conveyor_sgl.runtime.embedded.cpu_kernels.ops import (
    assign_req_to_token_pool_cpu,
    copy_all_layer_kv_cache_cpu,
)
from conveyor_sgl.runtime.embedded.cpu_kernels.unsupported import unsupported

__version__ = "0.0.0+conveyor_sgl.cpu_shim"

# Imported at module load by SGLang's speculative-decoding modules on CPU (all but the last
# on the plain-model path too); called only when speculative decoding is on.
assign_draft_cache_locs_contiguous_cpu = unsupported("assign_draft_cache_locs_contiguous_cpu")
assign_extend_cache_locs_cpu = unsupported("assign_extend_cache_locs_cpu")
build_tree_kernel_efficient_cpu = unsupported("build_tree_kernel_efficient_cpu")
verify_tree_greedy_cpu = unsupported("verify_tree_greedy_cpu")
fill_accept_out_cache_loc_cpu = unsupported("fill_accept_out_cache_loc_cpu")
fill_bonus_tokens_cpu = unsupported("fill_bonus_tokens_cpu")
rotate_input_ids_cpu = unsupported("rotate_input_ids_cpu")  # multi-layer EAGLE only

__all__ = [
    "assign_draft_cache_locs_contiguous_cpu",
    "assign_extend_cache_locs_cpu",
    "assign_req_to_token_pool_cpu",
    "build_tree_kernel_efficient_cpu",
    "copy_all_layer_kv_cache_cpu",
    "fill_accept_out_cache_loc_cpu",
    "fill_bonus_tokens_cpu",
    "rotate_input_ids_cpu",
    "verify_tree_greedy_cpu",
]
