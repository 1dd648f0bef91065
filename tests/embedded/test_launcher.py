"""Launcher flag assembly: defaults only where the user gave nothing, GPU path untouched."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest

from conveyor_sgl.runtime.embedded.launcher import (
    CPU_MAX_RUNNING_REQUESTS,
    CPU_MAX_TOTAL_TOKENS,
    flag_value,
    given_flags,
    main,
    plan_launch,
)

MODEL = "/cache/models/conveyor-tinyllama-x"
ENV = {"CONVEYOR_SGL_CACHE": "/cache"}


def _plan(argv, *, has_gpu, environ=ENV):
    return plan_launch(argv, has_gpu=has_gpu, environ=environ, default_model_path=lambda: MODEL)


def _no_default_model():
    raise AssertionError("the default model must not be built when --model-path is given")


def test_cpu_defaults():
    plan = _plan(["--port", "4000"], has_gpu=False)
    assert plan.cpu
    assert plan.argv == [
        "--port",
        "4000",
        "--model-path",
        MODEL,
        "--host",
        "127.0.0.1",
        "--device",
        "cpu",
        "--attention-backend",
        "torch_native",
        "--sleep-on-idle",
        "--max-total-tokens",
        str(CPU_MAX_TOTAL_TOKENS),
        "--max-running-requests",
        str(CPU_MAX_RUNNING_REQUESTS),
    ]
    assert plan.env == {
        "SGLANG_USE_CPU_ENGINE": "1",
        "SGLANG_CACHE_DIR": "/cache/sglang",
        "CONVEYOR_SGL_FORK_SERVER": "1",  # SGLang's processes forked (tests/server/test_fork_start)
        "OMP_NUM_THREADS": "1",  # one torch thread (eval/decode_beside_load.py says why)
    }


def test_gpu_path_is_left_to_sglang():
    plan = _plan(["--port", "4000"], has_gpu=True)
    assert not plan.cpu
    assert plan.argv == ["--port", "4000", "--model-path", MODEL, "--host", "127.0.0.1"]
    assert plan.env == {"SGLANG_CACHE_DIR": "/cache/sglang"}


@pytest.mark.parametrize("has_gpu", [False, True])
@pytest.mark.parametrize("model_flag", [["--model-path", "/m"], ["--model=/m"], ["--model", "/m"]])
def test_user_model_wins_and_nothing_is_built(has_gpu, model_flag):
    plan = plan_launch(
        model_flag, has_gpu=has_gpu, environ=ENV, default_model_path=_no_default_model
    )
    assert plan.argv[: len(model_flag)] == model_flag
    assert "--model-path" not in plan.argv[len(model_flag) :]


def test_user_flags_win_on_cpu():
    user = [
        "--host=0.0.0.0",
        "--attention-backend",
        "triton",
        "--mem-fraction-static",
        "0.2",
        "--sleep-on-idle",
        "--max-running-requests=8",
    ]
    plan = _plan(user, has_gpu=False)
    assert plan.argv[: len(user)] == user  # passed through first and unchanged
    added = plan.argv[len(user) :]
    assert added == ["--model-path", MODEL, "--device", "cpu"]


def test_user_max_total_tokens_is_kept():
    plan = _plan(["--max-total-tokens", "999"], has_gpu=False)
    assert flag_value(plan.argv, "--max-total-tokens") == "999"
    assert plan.argv.count("--max-total-tokens") == 1


def test_cpu_device_on_a_gpu_machine_takes_the_cpu_path():
    plan = _plan(["--device", "cpu"], has_gpu=True)
    assert plan.cpu and plan.env["SGLANG_USE_CPU_ENGINE"] == "1"
    assert "torch_native" in plan.argv


def test_the_users_torch_threads_are_kept():
    plan = _plan([], has_gpu=False, environ={**ENV, "OMP_NUM_THREADS": "4"})
    assert "OMP_NUM_THREADS" not in plan.env  # torch reads the user's 4 itself


def test_existing_sglang_cache_dir_is_respected():
    plan = _plan([], has_gpu=False, environ={"SGLANG_CACHE_DIR": "/mine"})
    assert "SGLANG_CACHE_DIR" not in plan.env


def test_config_file_keys_count_as_given(tmp_path):
    config = tmp_path / "server.yaml"
    config.write_text("model_path: /from/config\ndevice: cpu\nhost: 0.0.0.0\n")
    assert {"--model-path", "--device", "--host", "--config"} <= given_flags(
        ["--config", str(config)]
    )
    plan = plan_launch(
        ["--config", str(config)], has_gpu=False, environ=ENV, default_model_path=_no_default_model
    )
    assert "--model-path" not in plan.argv and "--host" not in plan.argv


def test_flag_value_forms():
    assert flag_value(["--device", "cpu"], "--device") == "cpu"
    assert flag_value(["--device=cuda", "--device", "cpu"], "--device") == "cpu"
    assert flag_value(["--device-id", "3"], "--device") is None
    assert flag_value(["--device"], "--device") is None


def test_assembled_argv_is_valid_for_sglang():
    from sglang.srt.server_args import prepare_server_args

    args = prepare_server_args(_plan(["--port", "4000"], has_gpu=False).argv)
    assert (args.device, args.attention_backend, args.sleep_on_idle) == (
        "cpu",
        "torch_native",
        True,
    )
    assert (args.model_path, args.host, args.port) == (MODEL, "127.0.0.1", 4000)
    assert args.max_total_tokens == CPU_MAX_TOTAL_TOKENS


def test_dry_run_prints_the_plan_and_passes_unknown_flags(capsys, monkeypatch):
    monkeypatch.setattr("conveyor_sgl.runtime.embedded.launcher.has_gpu", lambda: False)
    main(["--dry-run", "--model-path", "/m", "--stream-interval", "2"])
    plan = json.loads(capsys.readouterr().out)
    assert plan["cpu"] is True
    assert plan["argv"][:4] == ["--model-path", "/m", "--stream-interval", "2"]
    assert "--dry-run" not in plan["argv"]


def test_help_shows_ours_and_sglangs(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    assert "--dry-run" in out
    assert "--model-path" in out and "--attention-backend" in out


SNIPPET = "def add(a, b):\n    return a + b\n"
PROMPT = "<|im_start|>user\nWrite add.<|im_end|>\n<|im_start|>assistant\n"


def literal_regex(text: str) -> str:
    escapes = {"\n": "\\n", "\t": "\\t"}
    return "".join(escapes.get(c, "\\" + c if c in r".^$*+?{}[]\|()" else c) for c in text)


def _sse_events(response) -> list[dict]:
    events = []
    for line in response.iter_lines():
        if line.startswith(b"data:") and line.strip() != b"data: [DONE]":
            events.append(json.loads(line[len(b"data:") :]))
    return events


@pytest.mark.server
def test_embedded_server_forces_text_and_streams_per_token(flagged_server):
    # The shared session server is an EmbeddedServer; that stopping it leaves no process
    # of its group is checked in its fixture's teardown (tests/conftest.py).
    import requests

    body = {
        "text": PROMPT,
        "sampling_params": {
            "max_new_tokens": 64,
            "temperature": 0,
            "regex": literal_regex(SNIPPET),
        },
    }
    server = flagged_server
    assert len(server.group_pids()) >= 3  # HTTP server, scheduler, detokenizer
    reply = requests.post(server.url + "/generate", json=body, timeout=60).json()
    assert reply["text"] == SNIPPET
    with requests.post(
        server.url + "/generate", json={**body, "stream": True}, stream=True, timeout=60
    ) as response:
        events = _sse_events(response)
    assert events[-1]["text"] == SNIPPET
    tokens = events[-1]["meta_info"]["completion_tokens"]
    counts = [len(e["output_ids"]) for e in events]  # cumulative, like the text
    assert counts[-1] == tokens and all(b > a for a, b in pairwise(counts))
    # One event per decoded token (--stream-interval 1), except that SGLang's tokenizer
    # manager sends only the latest state when it falls behind the scheduler (a busy CPU).
    assert len(events) >= 0.8 * tokens
