"""The embedded default model: built once, deterministic, cached, loadable, consistent."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conveyor_sgl.runtime.embedded.default_model import (
    TinyModelConfig,
    cache_root,
    config_hash,
    ensure_default_model,
    model_dir,
)

SMALL = TinyModelConfig(
    vocab_size=512,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=2,
    corpus_bytes=200_000,
)
TEXTS = [
    "def add(a, b):\n    return a + b\n",
    'class Foo:\n\tx = {"k": [1, 2.5, None]}  # tab and comment\n',
    "naïve café — 日本語のテキスト 🙂 ünïcödé\r\n",
    "    \n\n   trailing spaces   ",
]


# The tests of the full default model build one first: `make unit` leaves them out.
needs_model = pytest.mark.model


@pytest.fixture(scope="module")
def default_model(tmp_path_factory) -> Path:
    return ensure_default_model(root=tmp_path_factory.mktemp("cache"))


@needs_model
def test_second_call_is_cached_and_instant(default_model):
    start = time.perf_counter()
    again = ensure_default_model(root=default_model.parents[1])
    assert again == default_model
    assert time.perf_counter() - start < 0.5


def test_build_is_deterministic(tmp_path):
    first = ensure_default_model(SMALL, root=tmp_path / "a")
    second = ensure_default_model(SMALL, root=tmp_path / "b")
    files = sorted(p.name for p in first.iterdir())
    assert files == sorted(p.name for p in second.iterdir())
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_concurrent_builders_agree_and_leave_no_temp_dirs(tmp_path):
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: ensure_default_model(SMALL, root=tmp_path), range(2)))
    assert paths[0] == paths[1] == model_dir(SMALL, tmp_path)
    assert [p.name for p in (tmp_path / "models").iterdir()] == [paths[0].name]


def test_cache_location_and_key():
    assert cache_root({"CONVEYOR_SGL_CACHE": "/somewhere"}) == Path("/somewhere")
    assert cache_root({}) == Path.home() / ".cache" / "conveyor_sgl"
    assert config_hash(SMALL) != config_hash(TinyModelConfig())


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError, match="multiple"):
        TinyModelConfig(hidden_size=100, num_attention_heads=3)


@needs_model
def test_model_is_a_small_llama(default_model):
    from safetensors.torch import load_file

    config = json.loads((default_model / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["max_position_embeddings"] >= 4096
    weights = load_file(default_model / "model.safetensors")
    params = sum(tensor.numel() for tensor in weights.values())
    assert 1_000_000 <= params <= 2_000_000


@needs_model
def test_model_loads_with_transformers(default_model):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(default_model)
    logits = model(torch.tensor([[1, 2, 3]])).logits
    assert logits.shape == (1, 3, model.config.vocab_size)


@needs_model
@pytest.mark.parametrize("text", TEXTS)
def test_tokenizer_round_trips(default_model, text):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_model)
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert max(ids) < tokenizer.vocab_size or max(ids) < len(tokenizer)


@needs_model
def test_code_is_compressed_by_the_trained_merges(default_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_model)
    code = "for i in range(10):\n    if i % 2 == 0:\n        print(i)\n"
    assert len(tokenizer.encode(code)) < len(code.encode()) / 2


@needs_model
def test_special_tokens(default_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_model)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.bos_token == "<|endoftext|>"
    assert len(tokenizer.encode("<|im_start|>")) == 1
    assert tokenizer.encode("x") == tokenizer.encode("x", add_special_tokens=False)  # no BOS
    special = json.loads((default_model / "special_tokens_map.json").read_text())
    assert special["eos_token"] == "<|im_end|>"


@needs_model
def test_chat_template_matches_sglang_frontend_template(default_model):
    from sglang.lang.chat_template import get_chat_template_by_model_path
    from transformers import AutoTokenizer

    frontend = get_chat_template_by_model_path(str(default_model))
    assert frontend.name == "chatml"
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Write code."},
        {"role": "assistant", "content": "print(1)"},
    ]
    expected = ""
    for message in messages:
        prefix, suffix = frontend.get_prefix_and_suffix(message["role"], [])
        expected += prefix + message["content"] + suffix
    tokenizer = AutoTokenizer.from_pretrained(default_model)
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    assert rendered == expected
    prompt = tokenizer.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith(frontend.get_prefix_and_suffix("assistant", [])[0])
    assert frontend.stop_str == (tokenizer.eos_token,)
