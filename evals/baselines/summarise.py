"""Medians and ratios of evals/baselines/run.sh's results.jsonl, with the targets of issue 9."""

import json
import statistics
import sys


def main() -> None:
    rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]

    # The 2-thread peers' OpenMP threads spin-wait on each other: when another process holds a
    # core they run several times slower. Rounds where the 2-thread peer ran below half its best
    # speed of this run are left out of the medians (for every engine, so both sides keep the
    # same rounds) and listed.
    speed_key = {"embed": "sentences_per_s", "generate": "decode_tokens_per_s"}
    collapsed = {}
    for kind, key in speed_key.items():
        peer_rows = [row for row in rows if row["kind"] == kind and row["engine"] == "peer"]
        best = max((row["result"][key] for row in peer_rows), default=0.0)
        collapsed[kind] = sorted(row["round"] for row in peer_rows if row["result"][key] < 0.5 * best)

    def values(kind: str, engine: str, key: str) -> list:
        return [row["result"][key] for row in rows
                if row["kind"] == kind and row["engine"] == engine and key in row["result"]
                and row["round"] not in collapsed.get(kind, [])]

    def median(kind: str, engine: str, key: str) -> float:
        found = values(kind, engine, key)
        return statistics.median(found) if found else float("nan")

    loads = [row["load"] for row in rows]
    print(f"runs: {len(rows)}; 1-minute load average {min(loads):.1f}-{max(loads):.1f} (2 cores)")
    for kind, rounds in collapsed.items():
        if rounds:
            print(f"left out of the {kind} medians: rounds {', '.join(map(str, rounds))} "
                  f"(the 2-thread peer below half its best speed: a core was busy elsewhere)")
    print()
    print(f"{'measure':<32}{'peer':>12}{'switchboard':>14}{'ratio':>8}  target")
    # (kind, key, label, peer engine, our engine, target check on (ratio, ours), target text)
    lines = [
        ("embed", "sentences_per_s", "embeddings sentences/s", "peer", "switchboard",
         lambda r, o: r >= 1.0, ">= 1.0x (stretch 1.5x)"),
        ("embed", "peak_rss_mb", "embeddings peak RSS MB", "peer", "switchboard",
         lambda r, o: r < 1.0, "below the peer"),
        ("generate", "prompt_tokens_per_s", "prompt tokens/s", "peer", "switchboard",
         lambda r, o: r >= 0.9, ">= 0.9x"),
        ("generate", "decode_tokens_per_s", "decode tokens/s", "peer", "switchboard",
         lambda r, o: r >= 0.9, ">= 0.9x (stretch 1.0x)"),
        ("generate", "ttft_ms", "time to first token ms", "peer", "switchboard",
         lambda r, o: o <= 300.0, "<= 300 ms"),
        ("embed", "sentences_per_s", "embeddings vs 1-thread", "peer-1-thread", "switchboard",
         None, "(PyTorch 1 thread)"),
        ("generate", "peak_rss_mb", "generation peak RSS MB", "peer", "switchboard", None, "(no target)"),
        ("generate", "prompt_tokens_per_s", "prompt tokens/s vs 1-thread", "peer-1-thread", "switchboard",
         None, "(llama.cpp 1 thread)"),
        ("generate", "decode_tokens_per_s", "decode tokens/s vs 1-thread", "peer-1-thread", "switchboard",
         None, "(llama.cpp 1 thread)"),
        ("generate", "decode_tokens_per_s", "decode: int4 kernel vs int8", "switchboard-q8_0",
         "switchboard", lambda r, o: r > 1.0, "default (q4_1) faster than q8_0"),
    ]
    for kind, key, label, peer_engine, our_engine, check, target in lines:
        peer, ours = median(kind, peer_engine, key), median(kind, our_engine, key)
        if peer != peer and ours != ours:  # both NaN: not measured in this run
            continue
        ratio = ours / peer if peer else float("nan")
        verdict = "" if check is None else ("PASS " if check(ratio, ours) else "MISS ")
        print(f"{label:<32}{peer:>12.1f}{ours:>14.1f}{ratio:>7.2f}x  {verdict}{target}")
        print(f"{'':<8}runs: {peer_engine} {', '.join(f'{v:.1f}' for v in values(kind, peer_engine, key))}; "
              f"{our_engine} {', '.join(f'{v:.1f}' for v in values(kind, our_engine, key))}")
    print()
    print("per-round ratios, every round (same round, similar load):")
    rounds = sorted({row["round"] for row in rows if row["kind"] != "turns"})
    for kind, key, label in [("embed", "sentences_per_s", "embed"), ("generate", "prompt_tokens_per_s", "prompt"),
                             ("generate", "decode_tokens_per_s", "decode")]:
        parts = []
        for round_number in rounds:
            def one(engine):
                found = [row for row in rows if row["kind"] == kind and row["engine"] == engine
                         and row["round"] == round_number]
                return found[0] if found else None
            peer, ours = one("peer"), one("switchboard")
            if peer and ours and peer["result"][key]:
                parts.append(f"r{round_number} {ours['result'][key] / peer['result'][key]:.2f}x "
                             f"(load {peer['load']:.1f}/{ours['load']:.1f})")
        print(f"  {label:<8}{'; '.join(parts)}")
    turns_rows = [row for row in rows if row["kind"] == "turns"]
    turns = [row["result"] for row in turns_rows]
    if turns:
        turn = turns[-1]
        flow, knowledge = turn["flow_turns"], turn["knowledge_turns"]
        print()
        verdict = "PASS" if flow["p50_ms"] <= 30.0 else "MISS"
        print(f"non-generative turn p50 {flow['p50_ms']:.1f} ms, p95 {flow['p95_ms']:.1f} ms "
              f"({verdict} target p50 <= 30 ms); load {turns_rows[-1]['load']:.1f}")
        print(f"knowledge turn p50 {knowledge['p50_ms']:.0f} ms, p95 {knowledge['p95_ms']:.0f} ms; first token "
              f"p50 {turn['first_token_ms_p50']:.0f} ms, p95 {turn['first_token_ms_p95']:.0f} ms")
        print(f"  knowledge stages (mean ms): understanding {knowledge['mean_understanding_ms']:.1f}, retrieval "
              f"{knowledge['mean_retrieval_ms']:.1f}, generation {knowledge['mean_generation_ms']:.1f}")
        if "intent_ms_p50" in turn:
            verdict = "PASS" if turn["intent_ms_p50"] <= 5.0 else "MISS"
            print(f"intent prediction p50 {turn['intent_ms_p50']:.2f} ms, p95 {turn['intent_ms_p95']:.2f} ms per "
                  f"message, batch of one ({verdict} target p50 <= 5 ms)")


if __name__ == "__main__":
    main()
