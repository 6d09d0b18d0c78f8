#!/usr/bin/env python3
"""Prints the certgate/nginx ratio line from one harness run's results.jsonl.

usage: ratios.py RESULTS_JSONL
certgate/nginx: ka_per_cpu=<x> hs=<x> p50=<x> mem_per_conn=<x>
(ka_per_cpu and hs: higher is better; p50 and mem_per_conn: lower is better.)
"""
import json
import statistics
import sys


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]

    def med(contender, scenario, key):
        vals = [r[key] for r in rows
                if r.get("contender") == contender and r.get("scenario") == scenario
                and r.get(key) is not None and r.get("rc", 0) == 0]
        return statistics.median(vals) if vals else None

    def ka_per_cpu(c):
        rps, cpu = med(c, "ka", "rps"), med(c, "ka", "server_cpu_pct")
        return rps / (cpu / 100.0) if rps and cpu else None

    def ratio(a, b):
        return f"{a / b:.2f}" if a is not None and b else "n/a"

    g, n = "gateway", "nginx"
    print(
        "certgate/nginx: "
        f"ka_per_cpu={ratio(ka_per_cpu(g), ka_per_cpu(n))} "
        f"hs={ratio(med(g, 'hs', 'rps'), med(n, 'hs', 'rps'))} "
        f"p50={ratio(med(g, 'lat', 'p50_ms'), med(n, 'lat', 'p50_ms'))} "
        f"mem_per_conn={ratio(med(g, 'mem', 'kib_per_conn'), med(n, 'mem', 'kib_per_conn'))}"
    )


if __name__ == "__main__":
    main(sys.argv[1])
