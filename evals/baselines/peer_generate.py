"""Peer generation speed: llama.cpp (llama-cpp-python) on the same GGUF and prompt.

Prints one JSON object like `switchboard bench generate --json`: prompt_tokens,
prompt_tokens_per_s, ttft_ms, new_tokens, decode_tokens_per_s (plus peak_rss_mb). Greedy,
exactly `--max-tokens` new tokens (end-of-turn does not stop it), after a 4-token warm-up, timed
as Switchboard times itself: time to first token from the call (tokenization, prompt pass, first
sample); prompt speed from the prompt pass; decode speed over the tokens after the first.
"""

import argparse
import json
import resource
import time

import llama_cpp
from llama_cpp import Llama


def generate(llm: Llama, prompt: str, max_tokens: int) -> dict:
    started = time.perf_counter()
    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    llm.reset()
    prompt_started = time.perf_counter()
    llm.eval(tokens)
    token = llm.sample(temp=0.0)
    first = time.perf_counter()
    for _ in range(max_tokens - 1):
        llm.eval([token])
        token = llm.sample(temp=0.0)
    done = time.perf_counter()
    return {
        "prompt_tokens": len(tokens),
        "prompt_tokens_per_s": len(tokens) / (first - prompt_started),
        "ttft_ms": (first - started) * 1000.0,
        "new_tokens": max_tokens,
        "decode_tokens_per_s": (max_tokens - 1) / (done - first) if max_tokens > 1 else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", required=True)
    parser.add_argument("--prompt-file", required=True)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    with open(args.prompt_file, encoding="utf-8") as file:
        prompt = file.read()
    llm = Llama(
        model_path=args.gguf,
        n_ctx=1024,
        n_batch=512,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        verbose=False,
    )
    generate(llm, prompt, 4)
    result = generate(llm, prompt, args.max_tokens)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["llama_cpp_python"] = llama_cpp.__version__
    result["threads"] = args.threads
    print(json.dumps(result))


if __name__ == "__main__":
    main()
