#!/usr/bin/env python3
"""Rewrites the benchmark table in README.md from bench-infill summaries.

    scripts/bench-table.py bench/results/*.json

Each summary is the JSON that `bench-infill --summary FILE` writes (`--raw` summaries are the
bare model on the same tasks: they sit right under the server's row of their set, so the table
shows what shaping adds or costs per set; the server's row says by how many points). The table goes between the
markers `<!-- bench-infill:begin -->` and `<!-- bench-infill:end -->`, with the machine's core
count and the commit, so it is never typed by hand.
"""
import json
import os
import subprocess
import sys

BEGIN, END = "<!-- bench-infill:begin -->", "<!-- bench-infill:end -->"


def main(paths):
    rows = []
    for path in sorted(paths):
        with open(path) as f:
            s = json.load(f)
        rows.append(s)
    rows.sort(key=lambda s: (s["set"], s["model"], s["stride"], s.get("raw", False), not s.get("repo_context", True)))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cores = os.cpu_count()
    lines = [
        BEGIN,
        "| set | model | who | tasks | pass@1 | server − raw | p50 ms | p95 ms | mean generated tokens | hit token cap | commit |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    raw = {(s["set"], s["model"], s["stride"]): s["pass_at_1"] for s in rows if s.get("raw")}
    for s in rows:
        n = s["stride"]
        key = (s["set"], s["model"], s["stride"])
        delta = f"{s['pass_at_1'] - raw[key]:+.1f}" if not s.get("raw") and key in raw else ""
        ordinal = {1: "st", 2: "nd", 3: "rd"}.get(n % 10 if n % 100 not in (11, 12, 13) else 0, "th")
        every = f"every {n}{ordinal}" if n > 1 else "all"
        lines.append(
            f"| {s['set']} ({every}) | {s['model'].replace('-instruct-q4_k_m.gguf', '')} "
            f"| {'raw model' if s.get('raw') else 'server'} | {s['tasks']} "
            f"| **{s['pass_at_1']:.1f}%** | {delta} | {s['p50_ms']:.0f} | {s['p95_ms']:.0f} "
            f"| {s['mean_generated_tokens']:.1f} | {100 * s['hit_token_cap']:.0f}% | `{s.get('commit') or 'unrecorded'}` |"
        )
    lines.append("")
    lines.append(
        f"Through the real server over stdio (Invoked inline completion, greedy; every task is a newly "
        f"opened file, so its latency includes evaluating the whole prompt cold); *raw model* rows run the "
        f"bare engine on the same tasks (PSM prompt of the text around the cursor, no repository context, "
        f"greedy, to the model's own end-of-text with a 128-token cap, inserted as generated); {cores} cores, "
        f"{rows[0]['threads'] if rows else 2} threads; the commit column is what each row measured "
        f"(table written at `{commit}`); regenerate with `make bench-table`."
    )
    lines.append(END)
    readme = open("README.md").read()
    if BEGIN not in readme or END not in readme:
        sys.exit("README.md has no bench-infill markers")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    open("README.md", "w").write(head + "\n".join(lines) + tail)


if __name__ == "__main__":
    main(sys.argv[1:])
