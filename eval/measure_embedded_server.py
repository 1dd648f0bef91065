"""Figures for the embedded default server: start time, memory, decode speed, idle CPU.

    python -m eval.measure_embedded_server [--runs 5] [--max-tokens 256] [--idle-s 10]
                                           [--concurrency 16] [--extra-args "--dtype float32"]

Starts `python -m conveyor_sgl.launch_server` through EmbeddedServer (so the same defaults
as tests and eval), then measures, on this machine:
- start: launch to the first 200 from /health (SGLang answers 503 until its warm-up is done);
- memory: RSS and PSS summed over the server's process group, idle and after the requests
  (RSS counts shared libraries once per process; PSS splits them, so it is the fairer sum);
- decode: one stream at a time, `max_new_tokens` with ignore_eos, tokens after the first
  divided by the time from first to last token (median over runs), plus time to first token;
- throughput: `--concurrency` such requests at once, total tokens over wall time;
- idle CPU: each process's CPU time over `--idle-s` seconds of no requests, as % of a core.
Prints one JSON object (and the KV pool size SGLang logged).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer

PROMPT = "<|im_start|>user\nWrite some Python.<|im_end|>\n<|im_start|>assistant\n"
CLOCK_TICKS = 100  # os.sysconf("SC_CLK_TCK") on Linux


def main() -> None:
    args = parse_args()
    started = time.monotonic()
    with EmbeddedServer(extra_args=shlex.split(args.extra_args)) as server:
        figures: dict[str, object] = {"start_s": round(time.monotonic() - started, 1)}
        time.sleep(3)  # let the warm-up's garbage settle before the idle snapshot
        figures["memory_idle_mb"] = group_memory_mb(server)
        figures["kv_pool"] = kv_pool_from_log(server.log_path)
        figures["decode"] = measure_decode(server.url, args.runs, args.max_tokens)
        figures["throughput"] = measure_throughput(server.url, args.concurrency, args.max_tokens)
        figures["memory_after_requests_mb"] = group_memory_mb(server)
        time.sleep(5)  # the scheduler only goes to sleep once it has been idle for a while
        figures["idle_cpu_percent"] = idle_cpu_percent(server, args.idle_s)
        figures["extra_args"] = args.extra_args
    print(json.dumps(figures, indent=2))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--extra-args", default="", help="more flags for the launcher")
    return parser.parse_args()


def generate_stream(url: str, max_tokens: int) -> list[float]:
    """Arrival time of every SSE event, counting the tokens each one adds."""
    body = {
        "text": PROMPT,
        "stream": True,
        "sampling_params": {"max_new_tokens": max_tokens, "ignore_eos": True, "temperature": 1.0},
    }
    arrivals: list[float] = []
    seen = 0
    sent = time.perf_counter()
    with requests.post(url + "/generate", json=body, stream=True, timeout=300) as response:
        response.raise_for_status()
        for line in response.iter_lines(chunk_size=1):
            if not line.startswith(b"data:") or line.strip() == b"data: [DONE]":
                continue
            now = time.perf_counter()
            count = len(json.loads(line[5:])["output_ids"])
            arrivals += [now] * (count - seen)
            seen = count
    return [sent, *arrivals]


def measure_decode(url: str, runs: int, max_tokens: int) -> dict[str, float]:
    generate_stream(url, 16)  # warm-up
    rates, ttfts = [], []
    for _ in range(runs):
        sent, *arrivals = generate_stream(url, max_tokens)
        rates.append((len(arrivals) - 1) / (arrivals[-1] - arrivals[0]))
        ttfts.append(arrivals[0] - sent)
    return {
        "tokens_per_s_median": round(statistics.median(rates), 1),
        "tokens_per_s_all": [round(r, 1) for r in rates],
        "ttft_ms_median": round(1000 * statistics.median(ttfts), 1),
        "max_new_tokens": max_tokens,
    }


def measure_throughput(url: str, concurrency: int, max_tokens: int) -> dict[str, float]:
    body = {
        "text": PROMPT,
        "sampling_params": {"max_new_tokens": max_tokens, "ignore_eos": True, "temperature": 1.0},
    }

    def one(_: int) -> int:
        reply = requests.post(url + "/generate", json=body, timeout=600).json()
        return reply["meta_info"]["completion_tokens"]

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        tokens = sum(pool.map(one, range(concurrency)))
    wall = time.perf_counter() - start
    return {"concurrency": concurrency, "tokens": tokens, "tokens_per_s": round(tokens / wall, 1)}


def group_memory_mb(server: EmbeddedServer) -> dict[str, float]:
    rss = pss = 0
    for pid in server.group_pids():
        rss += _status_kb(pid, "VmRSS")
        pss += _smaps_rollup_kb(pid, "Pss")
    return {"rss_sum": round(rss / 1024), "pss_sum": round(pss / 1024)}


def idle_cpu_percent(server: EmbeddedServer, seconds: float) -> dict[str, float]:
    pids = server.group_pids()
    before = {pid: _cpu_ticks(pid) for pid in pids}
    time.sleep(seconds)
    after = {pid: _cpu_ticks(pid) for pid in pids}
    return {
        f"{_name(pid)}[{pid}]": round(100 * (after[pid] - before[pid]) / CLOCK_TICKS / seconds, 1)
        for pid in pids
    }


def kv_pool_from_log(log_path: Path) -> str:
    text = log_path.read_text(errors="replace")
    found = re.search(r"KV Cache is allocated\. (.*)", text)
    return found.group(1).strip() if found else "not found in the log"


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _smaps_rollup_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _cpu_ticks(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _name(pid: int) -> str:
    # SGLang renames its processes (setproctitle) to "sglang::scheduler" and so on.
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    return cmdline.split()[0] if cmdline.startswith("sglang::") else cmdline[-60:]


if __name__ == "__main__":
    main()
