#!/usr/bin/env python3
"""Record llama.cpp's outputs on the real model as test data for the engine.

Writes into ``engine/tests/data/llamacpp/`` (see the README.md there for the format):

* ``reference.json``: provenance, tokenization cases, greedy continuations with their
  top-2 logits per step, and a flash-attention / thread-count cross-check;
* ``first_logits_<name>.f32``: llama.cpp's full-vocab logits at the first generated position
  of some greedy cases (raw little-endian f32).

llama.cpp is driven through llama-cpp-python's low-level ctypes API (no sampler, no Python
per-token logic beyond an argmax over the full logits row), so the numbers are exactly what
``llama_get_logits_ith`` returns. Requirements (see engine/reference/README.md):

    python3 -m venv /work/venvs/llama
    /work/venvs/llama/bin/pip install numpy gguf jinja2 llama-cpp-python
    # or, to use a separately built libllama.so:
    LLAMA_CPP_LIB_PATH=/work/venvs/llama-build/bin /work/venvs/llama/bin/python \
        engine/reference/make_reference.py

The run is deterministic for a given llama.cpp build, thread count and flash-attention mode.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import hashlib
import json
import os
import pathlib
import platform
import sys
from dataclasses import dataclass

import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO_ROOT / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_OUT = REPO_ROOT / "engine/tests/data/llamacpp"
EXPECTED_MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

# Raw prompts: each is tokenized with add_special false and true, parse_special false.
RAW_TEXTS: list[tuple[str, str]] = [
    ("english", "The quick brown fox jumps over the lazy dog. Attestation binds an enclave's "
                "code measurement to the key that signs its answers."),
    ("digits", "In 1984, 3.14159 and 1234567890"),
    ("digits_mixed", "Call +1 (555) 010-9999 before 2026-11-23T02:20:05Z; pay $1,234.56 or 7e-3%."),
    ("unicode", "naïve café — 日本語 🦀"),
    ("unicode_mixed", "Ünïcödé: Ελληνικά, русский, العربية, हिन्दी, 한국어, emoji 👩‍💻🇫🇷 and « guillemets »."),
    ("rust_code", "fn main() {\n    let v: Vec<u32> = (1..=10).filter(|x| x % 2 == 0).collect();\n"
                  "    println!(\"{:?} -> {}\", v, v.iter().sum::<u32>());\n}\n"),
    ("python_code", "def fib(n: int) -> int:\n\tif n < 2:\n\t\treturn n\n\treturn fib(n - 1) + fib(n - 2)\n\n"
                    "print([fib(i) for i in range(10)])  # [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]\n"),
    ("whitespace", "a  b   c    d\n\n\n\tone tab\t\ttwo tabs\r\n    four spaces\n \n  trailing  "),
    ("leading_space", " hello world"),
    ("contractions", "I'm sure they'll say we've done what you'd've done; it's THEIR call, isn't it?"),
    ("url_and_punctuation", "See https://example.com/a/b?c=d&e=f#g -- (really!!!) ... [ok] {x: 'y'}"),
    ("special_text_unparsed", "<|im_start|>user\nhi<|im_end|>"),
    ("empty", ""),
]

# Chat conversations rendered with the GGUF's own chat template (add_generation_prompt true),
# tokenized with add_special true and parse_special true.
CHATS: list[tuple[str, list[dict[str, str]]]] = [
    ("chat_system_user", [
        {"role": "system", "content": "You are a concise assistant. Answer in at most two sentences."},
        {"role": "user", "content": "What does a Nitro Enclave attestation document prove?"},
    ]),
    ("chat_user_default_system", [
        {"role": "user", "content": "Write a haiku about the sea in 2024 🌊."},
    ]),
    ("chat_multi_turn", [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 12 * 7?"},
        {"role": "assistant", "content": "12 * 7 = 84."},
        {"role": "user", "content": "And divided by 3?\nShow the steps."},
    ]),
]

# Greedy continuations: (name, kind, payload). Chat payloads are message lists, raw ones text.
GREEDY_CASES: list[tuple[str, str, object]] = [
    ("chat_story", "chat", [
        {"role": "user", "content": "Write a short story about a robot who learns to paint."},
    ]),
    ("chat_explain", "chat", [
        {"role": "system", "content": "You are a patient teacher."},
        {"role": "user", "content": "Explain what a hash function is, with an example."},
    ]),
    ("raw_story", "raw", "Once upon a time, in a small village by the sea,"),
    ("raw_code", "raw", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
]
# Cases whose first-position logits are written as first_logits_<name>.f32.
FIRST_LOGITS_CASES = ("chat_story", "raw_story")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL)
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--n-batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=64, help="greedy tokens per case")
    parser.add_argument("--llama-cpp-commit", default="0c1e57098",
                        help="llama.cpp commit of the build in use (recorded, not checked)")
    parser.add_argument("--build-flags", default="cmake -G Ninja -DCMAKE_BUILD_TYPE=Release "
                        "-DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=ON -DLLAMA_CURL=OFF "
                        "-DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "
                        "-DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON (gcc, OpenMP found)",
                        help="how the llama.cpp build in use was configured (recorded)")
    return parser.parse_args()


def sha256_of(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gguf_metadata(path: pathlib.Path) -> dict[str, object]:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    wanted = ("tokenizer.chat_template", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.pre",
              "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "llama.vocab_size")
    return {key: reader.fields[key].contents() for key in wanted if key in reader.fields}


def render_chat(template: str, messages: list[dict[str, str]]) -> str:
    """Render like Hugging Face transformers does (trim_blocks, lstrip_blocks, sandboxed)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=True)


class Llama:
    """The handful of llama.cpp C calls this script needs, with errors turned into exceptions."""

    def __init__(self, model_path: pathlib.Path, n_ctx: int, n_batch: int, threads: int,
                 flash_attn: bool, kv_f32: bool = False) -> None:
        import llama_cpp as lc

        self.lc = lc
        lc.llama_backend_init()
        model_params = lc.llama_model_default_params()
        self.model = lc.llama_model_load_from_file(str(model_path).encode(), model_params)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {model_path}")
        self.vocab = lc.llama_model_get_vocab(self.model)
        self.n_vocab = lc.llama_vocab_n_tokens(self.vocab)
        params = lc.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_threads = threads
        params.n_threads_batch = threads
        params.flash_attn_type = (lc.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn
                                  else lc.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        if kv_f32:
            params.type_k = lc.GGML_TYPE_F32
            params.type_v = lc.GGML_TYPE_F32
        self.ctx = lc.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a context")
        self.n_batch = n_batch

    def close(self) -> None:
        self.lc.llama_free(self.ctx)
        self.lc.llama_model_free(self.model)

    def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buffer = (self.lc.llama_token * capacity)()
        count = self.lc.llama_tokenize(self.vocab, data, len(data), buffer, capacity,
                                       add_special, parse_special)
        if count < 0:
            raise RuntimeError(f"tokenization needs {-count} slots, had {capacity}")
        return list(buffer[:count])

    def piece(self, token: int) -> str:
        buffer = ctypes.create_string_buffer(256)
        length = self.lc.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, True)
        if length < 0:
            raise RuntimeError(f"piece of token {token} longer than 256 bytes")
        return buffer.raw[:length].decode("utf-8", errors="backslashreplace")

    def builtin_chat_render(self, template: str, messages: list[dict[str, str]]) -> str:
        """llama.cpp's own (non-jinja) rendering: it recognizes the template as ChatML."""
        array = (self.lc.llama_chat_message * len(messages))(
            *[self.lc.llama_chat_message(m["role"].encode(), m["content"].encode())
              for m in messages])
        capacity = 4096
        while True:
            buffer = ctypes.create_string_buffer(capacity)
            length = self.lc.llama_chat_apply_template(template.encode(), array, len(messages),
                                                       True, buffer, capacity)
            if length < 0:
                raise RuntimeError("llama.cpp does not recognize the chat template")
            if length <= capacity:
                return buffer.raw[:length].decode("utf-8")
            capacity = length

    def add_bos(self) -> bool:
        return bool(self.lc.llama_vocab_get_add_bos(self.vocab))

    def eos(self) -> int:
        return int(self.lc.llama_vocab_eos(self.vocab))

    def reset(self) -> None:
        self.lc.llama_memory_clear(self.lc.llama_get_memory(self.ctx), True)

    def decode(self, tokens: list[int]) -> np.ndarray:
        """Feed tokens (in n_batch chunks); return the logits row of the last one."""
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start:start + self.n_batch]
            array = (self.lc.llama_token * len(chunk))(*chunk)
            status = self.lc.llama_decode(self.ctx, self.lc.llama_batch_get_one(array, len(chunk)))
            if status != 0:
                raise RuntimeError(f"llama_decode returned {status}")
        pointer = self.lc.llama_get_logits_ith(self.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).astype(np.float32).copy()


@dataclass
class Step:
    id: int
    logit: float
    second_id: int
    second_logit: float


def top_two(logits: np.ndarray) -> Step:
    order = np.argsort(-logits, kind="stable")
    best, second = int(order[0]), int(order[1])
    return Step(best, float(logits[best]), second, float(logits[second]))


def greedy(llama: Llama, prompt: list[int], steps: int) -> tuple[list[Step], np.ndarray]:
    """Free-running greedy decoding through EOS; also return the first position's logits."""
    llama.reset()
    logits = llama.decode(prompt)
    first_logits = logits.copy()
    out: list[Step] = []
    for _ in range(steps):
        step = top_two(logits)
        out.append(step)
        logits = llama.decode([step.id])
    return out, first_logits


def teacher_forced(llama: Llama, prompt: list[int], forced: list[int]) -> list[Step]:
    """Top-2 at every position when fed `forced` one token at a time after the prompt."""
    llama.reset()
    logits = llama.decode(prompt)
    out = [top_two(logits)]
    for token in forced[:-1]:
        logits = llama.decode([token])
        out.append(top_two(logits))
    return out


def logits_diff(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return {"max_abs": float(diff.max()), "rms": float(np.sqrt((diff ** 2).mean()))}


def main() -> int:
    args = parse_args()
    model_sha256 = sha256_of(args.model)
    if model_sha256 != EXPECTED_MODEL_SHA256:
        print(f"error: {args.model} has SHA-256 {model_sha256}, expected {EXPECTED_MODEL_SHA256}",
              file=sys.stderr)
        return 1
    metadata = gguf_metadata(args.model)
    template = str(metadata["tokenizer.chat_template"])

    import llama_cpp

    llama = Llama(args.model, args.n_ctx, args.n_batch, args.threads, flash_attn=True)

    tokenization = []
    for name, text in RAW_TEXTS:
        for add_special in (False, True):
            tokenization.append({
                "name": f"{name}_{'with' if add_special else 'no'}_special",
                "text": text, "add_special": add_special, "parse_special": False,
                "ids": llama.tokenize(text, add_special, False),
            })
    special_text = dict(RAW_TEXTS)["special_text_unparsed"]
    tokenization.append({
        "name": "special_text_parsed", "text": special_text,
        "add_special": False, "parse_special": True,
        "ids": llama.tokenize(special_text, False, True),
    })
    for name, messages in CHATS:
        text = render_chat(template, messages)
        # llama.cpp's built-in ChatML has no default system prompt, so it can only match the
        # jinja rendering when the conversation brings its own system message.
        builtin = llama.builtin_chat_render(template, messages)
        tokenization.append({
            "name": name, "text": text, "messages": messages, "add_generation_prompt": True,
            "llama_cpp_builtin_render_equal": builtin == text,
            "add_special": True, "parse_special": True,
            "ids": llama.tokenize(text, True, True),
        })

    args.out.mkdir(parents=True, exist_ok=True)
    greedy_cases = []
    first_logits: dict[str, np.ndarray] = {}
    for name, kind, payload in GREEDY_CASES:
        if kind == "chat":
            messages = payload
            text = render_chat(template, messages)  # type: ignore[arg-type]
        else:
            messages = None
            text = str(payload)
        prompt = llama.tokenize(text, True, True)
        steps, logits = greedy(llama, prompt, args.steps)
        first_logits[name] = logits
        eos_steps = [i for i, s in enumerate(steps) if s.id == llama.eos()]
        case = {
            "name": name, "kind": kind, "prompt_text": text,
            "add_special": True, "parse_special": True,
            "prompt_ids": prompt,
            "eos_appeared": bool(eos_steps), "eos_steps": eos_steps,
            "generated_text": "".join(llama.piece(s.id) for s in steps),
            "tokens": [{"id": s.id, "piece": llama.piece(s.id), "logit": s.logit,
                        "second_id": s.second_id, "second_logit": s.second_logit}
                       for s in steps],
        }
        if messages is not None:
            case["messages"] = messages
        if name in FIRST_LOGITS_CASES:
            path = args.out / f"first_logits_{name}.f32"
            path.write_bytes(logits.astype("<f4").tobytes())
            case["first_logits_file"] = path.name
        greedy_cases.append(case)
    llama.close()

    # The same cases with flash attention off: how often, and at which margins, the top token
    # changes when only the attention kernel changes.
    no_fa = Llama(args.model, args.n_ctx, args.n_batch, args.threads, flash_attn=False)
    flash_attn_check = []
    for case in greedy_cases:
        forced = [t["id"] for t in case["tokens"]]
        free, logits_off = greedy(no_fa, case["prompt_ids"], args.steps)
        forced_steps = teacher_forced(no_fa, case["prompt_ids"], forced)
        flips = []
        for i, (on, off) in enumerate(zip(case["tokens"], forced_steps)):
            if on["id"] != off.id:
                flips.append({"step": i, "fa_on_id": on["id"], "fa_off_id": off.id,
                              "fa_on_margin": on["logit"] - on["second_logit"],
                              "fa_off_margin": off.logit - off.second_logit})
        first_divergence = next((i for i, (s, t) in enumerate(zip(free, forced)) if s.id != t),
                                None)
        flash_attn_check.append({
            "name": case["name"],
            "teacher_forced_top_token_flips": flips,
            "free_running_first_divergence_step": first_divergence,
            "free_running_ids_fa_off": [s.id for s in free],
            "first_logits_diff_fa_on_vs_off": logits_diff(first_logits[case["name"]], logits_off),
        })
    no_fa.close()

    # Thread count changes the reduction split; record how much the first logits move.
    one_thread = Llama(args.model, args.n_ctx, args.n_batch, 1, flash_attn=True)
    thread_check = []
    for case in greedy_cases:
        _, logits_1t = greedy(one_thread, case["prompt_ids"], 1)
        thread_check.append({"name": case["name"],
                             "first_logits_diff_threads_1_vs_%d" % args.threads:
                                 logits_diff(first_logits[case["name"]], logits_1t)})
    one_thread.close()

    # Attention precision: flash attention off with an f32 KV cache is llama.cpp's closest to an
    # all-f32 computation (weights and the q8_1 activation rounding of the Q4_1 dot products
    # unchanged). How far the reference sits from it bounds what an f32 engine can be held to.
    precise = Llama(args.model, args.n_ctx, args.n_batch, args.threads, flash_attn=False,
                    kv_f32=True)
    precision_check = []
    for case in greedy_cases:
        _, logits_precise = greedy(precise, case["prompt_ids"], 1)
        entry = {"name": case["name"],
                 "first_logits_diff_reference_vs_fa_off_kv_f32":
                     logits_diff(first_logits[case["name"]], logits_precise)}
        if case["name"] in FIRST_LOGITS_CASES:
            path = args.out / f"first_logits_{case['name']}_fa_off_kv_f32.f32"
            path.write_bytes(logits_precise.astype("<f4").tobytes())
            entry["first_logits_file"] = path.name
        precision_check.append(entry)
    precise.close()

    reference = {
        "format_version": 1,
        "producer": {
            "tool": "llama.cpp (libllama) driven through llama-cpp-python's low-level ctypes API",
            "version": f"llama-cpp-python {llama_cpp.__version__}",
            "llama_cpp_commit": args.llama_cpp_commit,
            "build": args.build_flags,
            "system_info": llama_cpp.llama_print_system_info().decode().strip(),
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "model_file": args.model.name,
            "model_sha256": model_sha256,
            "n_ctx": args.n_ctx, "n_batch": args.n_batch, "n_ubatch": args.n_batch,
            "n_threads": args.threads,
            "flash_attn": True,
            "kv_cache_type": "f16",
            "sampling": "argmax over the full-vocabulary logits of llama_get_logits_ith(ctx, -1); "
                        "ties go to the lower id",
            "command": " ".join([f"LLAMA_CPP_LIB_PATH={os.environ.get('LLAMA_CPP_LIB_PATH', '')}",
                                 sys.executable, "engine/reference/make_reference.py",
                                 *sys.argv[1:]]),
            "generated_at": datetime.datetime.now(datetime.timezone.utc)
                            .strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "model": {
            "vocab_size": int(metadata.get("llama.vocab_size", 0)) or None,
            "n_vocab_llama_cpp": None,
            "add_bos_token": bool(metadata.get("tokenizer.ggml.add_bos_token", False)),
            "bos_token_id": int(metadata["tokenizer.ggml.bos_token_id"]),
            "eos_token_id": int(metadata["tokenizer.ggml.eos_token_id"]),
            "pre_tokenizer": str(metadata.get("tokenizer.ggml.pre")),
            "chat_template": template,
            "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest(),
            "chat_rendering": "jinja2 ImmutableSandboxedEnvironment(trim_blocks=True, "
                              "lstrip_blocks=True), variables messages and add_generation_prompt=true",
        },
        "tokenization": tokenization,
        "greedy": greedy_cases,
        "flash_attn_check": flash_attn_check,
        "thread_check": thread_check,
        "precision_check": precision_check,
    }
    reference["model"]["n_vocab_llama_cpp"] = int(first_logits[GREEDY_CASES[0][0]].shape[0])
    (args.out / "reference.json").write_text(json.dumps(reference, indent=1, ensure_ascii=False)
                                             + "\n", encoding="utf-8")
    summarize(reference)
    return 0


def summarize(reference: dict) -> None:
    for case in reference["greedy"]:
        margins = [t["logit"] - t["second_logit"] for t in case["tokens"]]
        near = [i for i, m in enumerate(margins) if m <= 0.25]
        print(f"{case['name']}: {len(case['prompt_ids'])} prompt tokens, {len(margins)} steps, "
              f"eos {case['eos_steps']}, near-ties (<=0.25) at {near}, "
              f"min margin {min(margins):.4f}")
    for check in reference["flash_attn_check"]:
        print(f"fa off {check['name']}: flips {check['teacher_forced_top_token_flips']}, "
              f"free-running divergence at {check['free_running_first_divergence_step']}, "
              f"first logits {check['first_logits_diff_fa_on_vs_off']}")
    for check in reference["thread_check"] + reference["precision_check"]:
        print(check)


if __name__ == "__main__":
    sys.exit(main())
