#!/usr/bin/env python3
"""Side-by-side speed and memory of this engine and llama.cpp on the same GGUF and prompt.

Each round runs both programs once per thread count, alternating which goes first, on the same
128-token prompt (``prompt_128.txt``, checked to be exactly 128 tokens by llama.cpp's own
tokenizer and by the engine's report), with 64 greedy tokens decoded and end-of-generation
ignored. It prints the medians over rounds of prompt tok/s, decode tok/s and peak RSS (the
child's ``ru_maxrss`` from ``wait4``), and the ratios engine / llama.cpp.

llama.cpp runs as its native ``llama-completion`` tool (no Python in the loop); its timings are
the ``prompt eval time`` and ``eval time`` lines it prints. The engine runs as
``enclave generate --json``, whose ``timings`` object it reports. See README.md beside this file
for how to build both.

Usage:
    engine/bench/compare_llamacpp.py --llama-completion PATH --enclave PATH [--rounds 5]
    (or LLAMA_COMPLETION=... ENCLAVE_BIN=... engine/bench/compare_llamacpp.py)
    --llama-only runs llama.cpp alone (when the engine binary is not built).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass

HERE = pathlib.Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_MODEL = REPO_ROOT / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_PROMPT = HERE / "prompt_128.txt"
PROMPT_TOKENS = 128

# llama.cpp's perf lines, e.g.
# "llama_perf_context_print: prompt eval time =  650.12 ms /   128 tokens (...,  196.88 tokens per second)"
PROMPT_LINE = re.compile(
    r"prompt eval time\s*=\s*([\d.]+) ms /\s*(\d+) tokens.*?([\d.]+) tokens per second")
# "...:        eval time =  1480.14 ms /    63 runs   (..., 42.56 tokens per second)"
EVAL_LINE = re.compile(r"\beval time\s*=\s*([\d.]+) ms /\s*(\d+) runs.*?([\d.]+) tokens per second")


class BenchError(Exception):
    """A run failed or printed something this script cannot read."""


@dataclass
class Sample:
    prompt_tokens: int
    prompt_tps: float
    decoded_tokens: int
    decode_tps: float
    peak_rss_mib: float


def run_measured(command: list[str], env: dict[str, str] | None = None) -> tuple[str, str, float]:
    """Run `command`; return stdout, stderr and the child's peak RSS in MiB."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                   env=env)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if process.returncode != 0:
        raise BenchError(f"{' '.join(command)} exited with {process.returncode}:\n"
                         f"{stderr[-3000:]}")
    # Linux reports ru_maxrss in KiB.
    return stdout, stderr, usage.ru_maxrss / 1024.0


def run_llama(args: argparse.Namespace, threads: int) -> Sample:
    command = [args.llama_completion, "-m", str(args.model), "-f", str(args.prompt),
               "-n", str(args.decode_tokens), "--ignore-eos", "--temp", "0",
               "-t", str(threads), "-tb", str(threads), "-c", str(args.ctx_size),
               "-b", "512", "-ub", "512", "-fa", args.flash_attn, "-no-cnv",
               "--no-display-prompt"]
    env = None
    if args.omp_wait_policy != "default":
        env = {**os.environ, "OMP_WAIT_POLICY": args.omp_wait_policy.upper()}
    _, stderr, rss = run_measured(command, env)
    prompt = PROMPT_LINE.search(stderr)
    decode = EVAL_LINE.search(stderr)
    if not prompt or not decode:
        raise BenchError(f"no llama.cpp timing lines in its output:\n{stderr[-3000:]}")
    return Sample(int(prompt.group(2)), float(prompt.group(3)), int(decode.group(2)),
                  float(decode.group(3)), rss)


def run_engine(args: argparse.Namespace, threads: int) -> Sample:
    command = [args.enclave, "generate", "--model", str(args.model), "--threads", str(threads),
               "--max-tokens", str(args.decode_tokens), "--ignore-eos", "--json",
               "--ctx-size", str(args.ctx_size), "--prompt-file", str(args.prompt)]
    stdout, _, rss = run_measured(command)
    try:
        report = json.loads(stdout.strip().splitlines()[-1])
        timings = report["timings"]
        return Sample(int(report["prompt_tokens"]), float(timings["prompt_tokens_per_s"]),
                      int(report["completion_tokens"]), float(timings["decode_tokens_per_s"]),
                      rss)
    except (IndexError, KeyError, TypeError, ValueError) as error:
        raise BenchError(f"unreadable engine report ({error}):\n{stdout[-3000:]}") from error


def count_prompt_tokens(args: argparse.Namespace) -> int:
    """llama.cpp's own count of the prompt file's tokens (as llama-completion tokenizes it)."""
    command = [args.llama_tokenize, "-m", str(args.model), "-f", str(args.prompt), "--ids",
               "--log-disable"]
    stdout, _, _ = run_measured(command)
    match = re.search(r"\[[\d, ]*\]", stdout)
    if not match:
        raise BenchError(f"llama-tokenize printed no id list:\n{stdout[-2000:]}")
    return len(json.loads(match.group(0)))


def check_sample(who: str, sample: Sample) -> None:
    if sample.prompt_tokens != PROMPT_TOKENS:
        raise BenchError(f"{who} saw {sample.prompt_tokens} prompt tokens, expected "
                         f"{PROMPT_TOKENS}: the two programs do not run the same workload")


def median(samples: list[Sample], field: str) -> float:
    return statistics.median(getattr(s, field) for s in samples)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llama-completion", default=os.environ.get("LLAMA_COMPLETION"),
                        help="llama.cpp's llama-completion binary (env LLAMA_COMPLETION)")
    parser.add_argument("--llama-tokenize", default=os.environ.get("LLAMA_TOKENIZE"),
                        help="llama-tokenize (env LLAMA_TOKENIZE; default: beside "
                             "llama-completion)")
    parser.add_argument("--enclave", default=os.environ.get("ENCLAVE_BIN"),
                        help="the engine's `enclave` binary (env ENCLAVE_BIN)")
    parser.add_argument("--llama-only", action="store_true",
                        help="measure llama.cpp alone (engine binary not available)")
    parser.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL)
    parser.add_argument("--prompt", type=pathlib.Path, default=DEFAULT_PROMPT)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--decode-tokens", type=int, default=64)
    parser.add_argument("--ctx-size", type=int, default=4096,
                        help="context window given to both (llama.cpp sizes its KV cache by it)")
    parser.add_argument("--flash-attn", default="on", choices=("on", "off", "auto"),
                        help="llama.cpp's -fa setting")
    parser.add_argument("--omp-wait-policy", default="default",
                        choices=("default", "passive", "active"),
                        help="OMP_WAIT_POLICY for llama.cpp (OpenMP build). Its default spinning "
                             "is fastest on an idle machine but collapses when other processes "
                             "compete for the cores; passive is fairer on a loaded machine")
    parser.add_argument("--json-out", type=pathlib.Path,
                        help="also write every sample and the medians here")
    args = parser.parse_args()
    if not args.llama_completion:
        parser.error("give --llama-completion or LLAMA_COMPLETION")
    if not args.llama_only and not args.enclave:
        parser.error("give --enclave or ENCLAVE_BIN (or --llama-only)")
    if not args.llama_tokenize:
        args.llama_tokenize = str(pathlib.Path(args.llama_completion).with_name("llama-tokenize"))
    for path in [args.llama_completion, args.llama_tokenize, args.model, args.prompt] + (
            [] if args.llama_only else [args.enclave]):
        if not pathlib.Path(path).is_file():
            parser.error(f"not a file: {path}")
    args.thread_counts = [int(t) for t in args.threads.split(",")]
    return args


def main() -> int:
    args = parse_args()
    count = count_prompt_tokens(args)
    if count != PROMPT_TOKENS:
        print(f"error: {args.prompt} is {count} tokens for llama.cpp, expected {PROMPT_TOKENS}",
              file=sys.stderr)
        return 1
    programs = [("llama.cpp", run_llama)] + ([] if args.llama_only else [("engine", run_engine)])
    samples: dict[tuple[str, int], list[Sample]] = {
        (name, t): [] for name, _ in programs for t in args.thread_counts}
    for round_index in range(args.rounds):
        # Alternate who goes first so drift on a shared machine hits both alike.
        order = programs if round_index % 2 == 0 else list(reversed(programs))
        for threads in args.thread_counts:
            for name, runner in order:
                sample = runner(args, threads)
                check_sample(name, sample)
                samples[(name, threads)].append(sample)
                print(f"round {round_index + 1}/{args.rounds} {name:9} t={threads}: "
                      f"prompt {sample.prompt_tps:8.1f} tok/s, decode {sample.decode_tps:7.1f} "
                      f"tok/s ({sample.decoded_tokens} runs), peak RSS {sample.peak_rss_mib:6.1f} "
                      f"MiB", file=sys.stderr, flush=True)

    fields = [("prompt tok/s", "prompt_tps"), ("decode tok/s", "decode_tps"),
              ("peak RSS MiB", "peak_rss_mib")]
    summary = {}
    print(f"\nmodel {args.model.name}, prompt {PROMPT_TOKENS} tokens, {args.decode_tokens} decoded, "
          f"ctx {args.ctx_size}, llama.cpp -fa {args.flash_attn} OMP_WAIT_POLICY "
          f"{args.omp_wait_policy}, medians of {args.rounds} "
          f"alternated rounds")
    print(f"{'threads':>7} | {'metric':<13} | {'llama.cpp':>10} | {'engine':>10} | "
          f"{'engine/llama.cpp':>16}")
    print("-" * 70)
    for threads in args.thread_counts:
        for label, field in fields:
            llama = median(samples[("llama.cpp", threads)], field)
            row = {"llama.cpp": llama}
            if args.llama_only:
                engine_text, ratio_text = "-", "-"
            else:
                engine = median(samples[("engine", threads)], field)
                row["engine"] = engine
                row["ratio"] = engine / llama
                engine_text, ratio_text = f"{engine:10.1f}", f"{engine / llama:15.2f}x"
            summary[f"t{threads} {label}"] = row
            print(f"{threads:>7} | {label:<13} | {llama:10.1f} | {engine_text:>10} | "
                  f"{ratio_text:>16}")
    if args.json_out:
        args.json_out.write_text(json.dumps({
            "settings": {k: str(v) for k, v in vars(args).items()},
            "samples": {f"{name} t{t}": [vars(s) for s in v] for (name, t), v in samples.items()},
            "medians": summary,
        }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
