"""The evaluation model and its measured decode speed.

Two decode speeds bracket a GPU deployment: the tiny default model decodes a token in 4-6 ms
on this CPU, near the floor of an 8B model on an H100 (5.7 ms: its weights read once per
token); the eval model is a bigger random-weight Llama, 1.6-3x as slow per token (the
shared host's load moves it), the range of a 7-8B model on a busier or smaller GPU.
``ms_per_token`` measures it on the server; every result records what was measured.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import requests

from conveyor_sgl.runtime.embedded.default_model import TinyModelConfig, ensure_default_model

# float32: this CPU has no bf16 instructions (no AVX-512), so bf16 matmuls are emulated and
# slower than float32 ones.
# The benchmark's slower model. With 4 layers it measured 12.8 ms/token (the retired
# per-workload runner, an earlier session) and 7.0 (eval.benchmark, 2026-11-26): the shared
# host's load moves it; 8 layers keep it near twice the tiny model's 4.2-4.3 ms.
EVAL_MODEL = TinyModelConfig(
    hidden_size=256,
    intermediate_size=768,
    num_hidden_layers=8,
    num_attention_heads=4,
    num_key_value_heads=4,
    dtype="float32",
)
# Any chat-formatted prompt: only the decode speed is measured.
_PROMPT = "<|im_start|>user\nWrite some Python.<|im_end|>\n<|im_start|>assistant\n"


def eval_model(quick: bool) -> tuple[Path, TinyModelConfig]:
    """The model directory (built once, then cached) and its config."""
    config = TinyModelConfig() if quick else EVAL_MODEL
    return ensure_default_model(config), config


def describe(config: TinyModelConfig, path: Path) -> dict[str, Any]:
    return {
        "path": str(path),
        "parameters": parameter_count(config),
        "config": asdict(config),
        "weights": "random (regex-forced outputs: the timing is real decoding, the text is not)",
    }


def parameter_count(config: TinyModelConfig) -> int:
    """Counted from the checkpoint's own config, so it matches what SGLang loads."""
    path = ensure_default_model(config)
    llama = json.loads((path / "config.json").read_text())
    h, i, v = llama["hidden_size"], llama["intermediate_size"], llama["vocab_size"]
    kv = h * llama["num_key_value_heads"] // llama["num_attention_heads"]
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * i + 2 * h
    return llama["num_hidden_layers"] * per_layer + 2 * v * h + h


def ms_per_token(url: str, tokens: int = 128, runs: int = 3) -> float:
    """Median over runs of (last token - first token) / (tokens - 1), one stream at a time."""
    samples = [_stream_ms_per_token(url, tokens) for _ in range(runs + 1)][1:]  # 1st: warm-up
    return round(statistics.median(samples), 2)


def _stream_ms_per_token(url: str, tokens: int) -> float:
    body = {
        "text": _PROMPT,
        "stream": True,
        "sampling_params": {"max_new_tokens": tokens, "ignore_eos": True, "temperature": 1.0},
    }
    arrivals: list[float] = []
    with requests.post(url + "/generate", json=body, stream=True, timeout=300) as response:
        response.raise_for_status()
        for line in response.iter_lines(chunk_size=1):
            if line.startswith(b"data:") and line.strip() != b"data: [DONE]":
                arrivals.append(time.perf_counter())
    if len(arrivals) < 2:
        raise RuntimeError(f"the server streamed {len(arrivals)} events for {tokens} tokens")
    return 1000 * (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1)
