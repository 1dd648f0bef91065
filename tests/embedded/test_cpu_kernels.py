"""The plain-torch sgl_kernel CPU ops against reference computations, and the shim package."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conveyor_sgl.runtime.embedded.cpu_kernels import IMPLEMENTED, SHIM_DIR, UNSUPPORTED
from conveyor_sgl.runtime.embedded.cpu_kernels.ops import (
    assign_req_to_token_pool_cpu,
    copy_all_layer_kv_cache_cpu,
)


def _assign_reference(rows, req_to_token, starts, ends, out_cache_loc):
    # SGLang's own Python fallback (allocation.write_cache_indices): one slice per request.
    expected = req_to_token.clone()
    offset = 0
    for row, start, end in zip(rows.tolist(), starts.tolist(), ends.tolist(), strict=True):
        expected[row, start:end] = out_cache_loc[offset : offset + end - start]
        offset += end - start
    return expected


@pytest.mark.parametrize("seed", range(5))
def test_assign_req_to_token_pool_matches_reference(seed):
    gen = torch.Generator().manual_seed(seed)
    pool_rows, pool_len, batch = 16, 64, 6
    req_to_token = torch.randint(0, 1000, (pool_rows, pool_len), dtype=torch.int32, generator=gen)
    rows = torch.randperm(pool_rows, generator=gen)[:batch]
    starts = torch.randint(0, 40, (batch,), generator=gen)
    ends = starts + torch.randint(0, 20, (batch,), generator=gen)  # some requests add nothing
    total = int((ends - starts).sum())
    # SGLang may hand over a longer buffer than the batch needs; only the prefix counts.
    out_cache_loc = torch.randint(0, 10_000, (total + 3,), dtype=torch.int64, generator=gen)
    expected = _assign_reference(rows, req_to_token, starts, ends, out_cache_loc)

    assign_req_to_token_pool_cpu(rows, req_to_token, starts, ends, out_cache_loc, pool_len)

    assert torch.equal(req_to_token, expected)


def test_assign_req_to_token_pool_empty_batch_and_bad_pool_len():
    table = torch.zeros((2, 8), dtype=torch.int32)
    empty = torch.zeros(0, dtype=torch.int64)
    assign_req_to_token_pool_cpu(empty, table, empty, empty, empty, 8)
    assert not table.any()
    with pytest.raises(ValueError, match="req_to_token"):
        assign_req_to_token_pool_cpu(empty, table, empty, empty, empty, 16)


def _kv_buffers(gen):
    # Two layers of K and V as SGLang lays them out: [slots, heads, head_dim], plus a
    # float32 buffer with another row size, since each buffer has its own stride.
    shapes = [((40, 4, 32), torch.bfloat16)] * 4 + [((40, 3, 5), torch.float32)]
    return [torch.randn(shape, generator=gen).to(dtype) for shape, dtype in shapes]


def _pointers_and_strides(buffers):
    ptrs = torch.tensor([b.data_ptr() for b in buffers], dtype=torch.uint64)
    strides = torch.tensor([b.stride(0) * b.element_size() for b in buffers])
    return ptrs, strides


@pytest.mark.parametrize(
    ("tgt", "src"),
    [
        ([5, 9, 30], [1, 2, 3]),
        ([2, 3, 4], [1, 2, 3]),  # overlapping: every source is read before any write
        ([39], [0]),
        ([], []),
    ],
)
def test_copy_all_layer_kv_cache_matches_reference(tgt, src):
    gen = torch.Generator().manual_seed(0)
    buffers = _kv_buffers(gen)
    tgt_loc, src_loc = torch.tensor(tgt, dtype=torch.int64), torch.tensor(src, dtype=torch.int64)
    expected = [b.clone() for b in buffers]
    for b in expected:
        b[tgt_loc] = b[src_loc].clone()
    ptrs, strides = _pointers_and_strides(buffers)

    copy_all_layer_kv_cache_cpu(ptrs, strides, tgt_loc, src_loc)

    for got, want in zip(buffers, expected, strict=True):
        assert torch.equal(got, want)


def test_copy_all_layer_kv_cache_rejects_mismatched_locations():
    with pytest.raises(ValueError, match="same length"):
        copy_all_layer_kv_cache_cpu(
            torch.zeros(0, dtype=torch.uint64),
            torch.zeros(0, dtype=torch.int64),
            torch.tensor([1]),
            torch.tensor([1, 2]),
        )


def _names_sglang_imports_on_cpu() -> set[str]:
    import sglang

    names: set[str] = set()
    for path in Path(sglang.__file__).parent.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "_is_cpu" not in text or "sgl_kernel" not in text:
            continue  # parsing all ~4,700 files takes 40 s
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "_is_cpu":
                names |= _sgl_kernel_imports(node.body)
    return names


def _sgl_kernel_imports(body: list[ast.stmt]) -> set[str]:
    return {
        alias.name
        for stmt in body
        if isinstance(stmt, ast.ImportFrom) and (stmt.module or "").startswith("sgl_kernel")
        for alias in stmt.names
    }


def test_shim_covers_every_name_sglang_imports_on_cpu():
    assert _names_sglang_imports_on_cpu() == set(IMPLEMENTED) | set(UNSUPPORTED)


SHIM_PROBE = textwrap.dedent(
    """
    import multiprocessing as mp
    from conveyor_sgl.runtime.embedded.cpu_kernels import install_shim

    def where(queue):
        import sgl_kernel
        queue.put(sgl_kernel.__file__)

    if __name__ == "__main__":
        install_shim()
        import sgl_kernel
        from sgl_kernel import assign_req_to_token_pool_cpu, copy_all_layer_kv_cache_cpu
        try:
            sgl_kernel.verify_tree_greedy_cpu()
        except NotImplementedError as error:
            print("unsupported:", error)
        try:
            from sgl_kernel import rmsnorm  # probed by SGLang with try/except ImportError
        except ImportError:
            print("rmsnorm: ImportError")
        ctx = mp.get_context("spawn")  # how SGLang starts its scheduler and detokenizer
        queue = ctx.Queue()
        child = ctx.Process(target=where, args=(queue,))
        child.start()
        print("child:", queue.get(timeout=60))
        child.join()
    """
)


def test_shim_is_what_sgl_kernel_resolves_to_here_and_in_spawned_children(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(SHIM_PROBE)
    # Only the package root: the shim must come from install_shim() itself.
    env = {"PYTHONPATH": str(SHIM_DIR.parents[4]), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "unsupported: sgl_kernel.verify_tree_greedy_cpu is not provided" in out.stdout
    assert "rmsnorm: ImportError" in out.stdout
    assert f"child: {SHIM_DIR / 'sgl_kernel' / '__init__.py'}" in out.stdout
