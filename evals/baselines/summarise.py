"""Medians and ratios of evals/baselines/run.sh's results.jsonl, with the targets of issue 9."""

import json
import statistics
import sys


def main() -> None:
    rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]

    def values(kind: str, engine: str, key: str) -> list:
        return [row["result"][key] for row in rows if row["kind"] == kind and row["engine"] == engine]

    def median(kind: str, engine: str, key: str) -> float:
        found = values(kind, engine, key)
        return statistics.median(found) if found else float("nan")

    loads = [row["load"] for row in rows]
    print(f"runs: {len(rows)}; 1-minute load average {min(loads):.1f}-{max(loads):.1f} (2 cores)")
    print()
    print(f"{'measure':<32}{'peer':>12}{'switchboard':>14}{'ratio':>8}  target")
    lines = [
        ("embed", "sentences_per_s", "embeddings sentences/s", True, ">= 1.0x (stretch 1.5x)"),
        ("embed", "peak_rss_mb", "embeddings peak RSS MB", False, "below the peer"),
        ("generate", "prompt_tokens_per_s", "prompt tokens/s", True, ">= 0.9x"),
        ("generate", "decode_tokens_per_s", "decode tokens/s", True, ">= 0.9x (stretch 1.0x)"),
        ("generate", "ttft_ms", "time to first token ms", False, "<= 300 ms"),
    ]
    for kind, key, label, higher_is_better, target in lines:
        peer, ours = median(kind, "peer", key), median(kind, "switchboard", key)
        ratio = ours / peer if peer else float("nan")
        spread = values(kind, "switchboard", key)
        peer_spread = values(kind, "peer", key)
        print(f"{label:<32}{peer:>12.1f}{ours:>14.1f}{ratio:>7.2f}x  {target}")
        print(f"{'':<8}runs: peer {', '.join(f'{v:.1f}' for v in peer_spread)}; "
              f"switchboard {', '.join(f'{v:.1f}' for v in spread)}")
    turns = [row["result"] for row in rows if row["kind"] == "turns"]
    if turns:
        turn = turns[-1]
        flow, knowledge = turn["flow_turns"], turn["knowledge_turns"]
        print()
        print(f"non-generative turn p50 {flow['p50_ms']:.1f} ms, p95 {flow['p95_ms']:.1f} ms (target p50 <= 30 ms)")
        print(f"knowledge turn p50 {knowledge['p50_ms']:.0f} ms, p95 {knowledge['p95_ms']:.0f} ms; first token "
              f"p50 {turn['first_token_ms_p50']:.0f} ms, p95 {turn['first_token_ms_p95']:.0f} ms")
        print(f"  knowledge stages (mean ms): understanding {knowledge['mean_understanding_ms']:.1f}, retrieval "
              f"{knowledge['mean_retrieval_ms']:.1f}, generation {knowledge['mean_generation_ms']:.1f}")
        if "intent_ms_p50" in turn:
            print(f"intent prediction p50 {turn['intent_ms_p50']:.2f} ms, p95 {turn['intent_ms_p95']:.2f} ms per "
                  f"message, batch of one (target p50 <= 5 ms)")


if __name__ == "__main__":
    main()
