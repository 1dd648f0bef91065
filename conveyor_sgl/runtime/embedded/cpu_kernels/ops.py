"""Plain-torch versions of the sgl_kernel CPU ops that SGLang's CPU path imports.

Signatures and semantics follow the wrappers in the sglang-kernel wheel
(`sgl_kernel/speculative.py`, `sgl_kernel/kvcacheio.py`) and the Triton kernels SGLang uses
on GPU for the same job (`srt/mem_cache/allocation.py`, `kernels/ops/kvcache/cache_move.py`).
"""

from __future__ import annotations

import ctypes

import torch


def assign_req_to_token_pool_cpu(
    req_pool_indices: torch.Tensor,
    req_to_token: torch.Tensor,
    start_offset: torch.Tensor,
    end_offset: torch.Tensor,
    out_cache_loc: torch.Tensor,
    pool_len: int,
) -> None:
    """Write each request's new KV slots into its row of the request-to-token table.

    Request i owns `req_to_token[req_pool_indices[i], start_offset[i]:end_offset[i]]`; the
    slots for all requests lie back to back in `out_cache_loc`, in batch order.
    """
    if req_to_token.dim() != 2 or req_to_token.shape[1] != pool_len:
        raise ValueError(f"req_to_token must be [rows, {pool_len}], got {req_to_token.shape}")
    lengths = (end_offset - start_offset).long()
    total = int(lengths.sum())
    if total == 0:
        return
    # One scatter instead of a Python loop: expand every request to its slots' (row, col).
    rows = torch.repeat_interleave(req_pool_indices.long(), lengths)
    first_slot = torch.cumsum(lengths, 0) - lengths
    col_base = torch.repeat_interleave(start_offset.long() - first_slot, lengths)
    cols = col_base + torch.arange(total, dtype=torch.long)
    req_to_token[rows, cols] = out_cache_loc[:total].to(req_to_token.dtype)


def copy_all_layer_kv_cache_cpu(
    data_ptrs: torch.Tensor,
    strides: torch.Tensor,
    tgt_loc: torch.Tensor,
    src_loc: torch.Tensor,
) -> None:
    """In every KV buffer, copy the rows at `src_loc` over the rows at `tgt_loc`.

    SGLang passes raw buffer addresses (`data_ptrs`, uint64) and row sizes in bytes
    (`strides`), one per K/V buffer of every layer, so the buffers are viewed through their
    addresses. All sources are read before any target is written, as in the Triton kernel,
    so overlapping source and target sets are safe.
    """
    if tgt_loc.numel() != src_loc.numel():
        raise ValueError("tgt_loc and src_loc must have the same length")
    if tgt_loc.numel() == 0:
        return
    tgt = tgt_loc.long()
    src = src_loc.long()
    rows = int(torch.maximum(tgt.max(), src.max())) + 1
    for ptr, stride in zip(data_ptrs.tolist(), strides.tolist(), strict=True):
        buffer = _byte_rows(int(ptr), rows, int(stride))
        buffer[tgt] = buffer[src]


def _byte_rows(address: int, rows: int, row_bytes: int) -> torch.Tensor:
    # A writable uint8 view of memory SGLang owns; only the rows the copy touches are mapped.
    raw = (ctypes.c_uint8 * (rows * row_bytes)).from_address(address)
    return torch.frombuffer(raw, dtype=torch.uint8).view(rows, row_bytes)
