"""The embedded default model: a tiny random-weight Llama with a locally trained tokenizer.

No weights can be downloaded where this project is built and tested, so the default server
serves a model built here, once, into a cache directory. Evaluation forces every output with
a regex, so the weights only have to make decoding cost what a real (small) model costs.

Run ``python -m conveyor_sgl.runtime.embedded.default_model`` to build it and print its path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from conveyor_sgl.cache import cache_root

# Bump when the build recipe changes in a way the config below does not capture.
BUILD_VERSION = 1

# "tinyllama" in the directory name makes sglang's frontend pick its "chatml" template
# (sglang.lang.chat_template.match_chat_ml), which is the template the tokenizer carries too.
MODEL_NAME_PREFIX = "conveyor-tinyllama"

BOS_TOKEN = "<|endoftext|>"  # noqa: S105 - a tokenizer's special token, not a secret
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (BOS_TOKEN, IM_START, IM_END)

# ChatML, the same text sglang's frontend "chatml" template produces for sgl.user/assistant.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyModelConfig:
    vocab_size: int = 4096
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    max_position_embeddings: int = 8192
    dtype: str = "bfloat16"
    seed: int = 0
    # Bytes of the standard library's top-level .py sources to train the tokenizer on:
    # code with docstrings, since the model is forced to write Python.
    corpus_bytes: int = 3_000_000

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if self.vocab_size <= 256 + len(SPECIAL_TOKENS):
            raise ValueError("vocab_size must exceed the byte alphabet plus special tokens")


def config_hash(config: TinyModelConfig) -> str:
    # The corpus is this interpreter's stdlib, so its version is part of what was built.
    key = {
        "build": BUILD_VERSION,
        "config": asdict(config),
        "python": list(sys.version_info[:2]),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def model_dir(config: TinyModelConfig | None = None, root: Path | None = None) -> Path:
    config = config or TinyModelConfig()
    return (root or cache_root()) / "models" / f"{MODEL_NAME_PREFIX}-{config_hash(config)}"


def ensure_default_model(config: TinyModelConfig | None = None, root: Path | None = None) -> Path:
    """Return the model directory, building it first if it is not cached yet."""
    config = config or TinyModelConfig()
    final = model_dir(config, root)
    if (final / "config.json").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        build_model(config, tmp)
        _make_readable(tmp)
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _make_readable(directory: Path) -> None:
    # mkdtemp makes the directory private; a shared cache should be readable like any other.
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)


def _publish(tmp: Path, final: Path) -> None:
    # rename() is atomic; if a concurrent builder won the race, its identical copy stays.
    try:
        os.rename(tmp, final)
    except OSError:
        if not (final / "config.json").exists():
            raise


def build_model(config: TinyModelConfig, out: Path) -> None:
    tokenizer = train_tokenizer(config)
    save_tokenizer(tokenizer, out)
    save_weights(config, tokenizer, out)


def corpus_files(limit_bytes: int) -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    picked: list[Path] = []
    total = 0
    for path in sorted(stdlib.glob("*.py")):
        if total >= limit_bytes:
            break
        picked.append(path)
        total += path.stat().st_size
    if not picked:
        raise RuntimeError(f"no Python sources found under {stdlib} to train the tokenizer on")
    return picked


def _read_corpus(paths: list[Path]) -> list[str]:
    return [p.read_text(encoding="utf-8", errors="replace") for p in paths]


def train_tokenizer(config: TinyModelConfig):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    # Byte-level: every string, including any unicode, round-trips exactly.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_read_corpus(corpus_files(config.corpus_bytes)), trainer)
    return tokenizer


def save_tokenizer(tokenizer, out: Path) -> None:
    # Written by hand rather than by transformers' save_pretrained: v5 puts the chat template
    # in a separate .jinja file and drops special_tokens_map.json, which older loaders need.
    tokenizer.save(str(out / "tokenizer.json"))
    special = {
        "bos_token": BOS_TOKEN,
        "eos_token": IM_END,
        "pad_token": BOS_TOKEN,
        "additional_special_tokens": [IM_START],
    }
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **special,
        "unk_token": None,
        # No BOS is added on encode, so token ids of concatenated texts concatenate.
        "add_bos_token": False,
        "add_eos_token": False,
        "chat_template": CHAT_TEMPLATE,
        "model_max_length": TinyModelConfig.max_position_embeddings,
        "clean_up_tokenization_spaces": False,
    }
    _write_json(out / "special_tokens_map.json", special)
    _write_json(out / "tokenizer_config.json", tokenizer_config)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def save_weights(config: TinyModelConfig, tokenizer, out: Path) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
    from transformers.utils.logging import disable_progress_bar

    eos_id = tokenizer.token_to_id(IM_END)
    bos_id = tokenizer.token_to_id(BOS_TOKEN)
    llama = LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=bos_id,
        tie_word_embeddings=False,
    )
    disable_progress_bar()
    torch.manual_seed(config.seed)
    model = LlamaForCausalLM(llama).to(getattr(torch, config.dtype))
    model.save_pretrained(out, safe_serialization=True)
    generation = GenerationConfig(bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=bos_id)
    generation.save_pretrained(out)


def main() -> None:
    print(ensure_default_model())


if __name__ == "__main__":
    main()
