#!/usr/bin/env python3
"""bench/run's markdown report from OUT_DIR/header.txt and OUT_DIR/results.jsonl (stdlib only).

usage: bench/report.py OUT_DIR     (rerun it on a finished OUT_DIR to reprint the tables)
"""
import json
import os
import sys
from collections import defaultdict

# The conv layers of each model in order: (output H, W, input channels, filters, kernel).
CONVS = {
    "reference": [(24, 24, 1, 32, 5), (8, 8, 32, 64, 5)],
    "mnist_convnet": [(26, 26, 1, 32, 3), (11, 11, 32, 64, 3)],
    "cifar_convnet": [(32, 32, 3, 32, 3), (32, 32, 32, 32, 3), (16, 16, 32, 64, 3), (16, 16, 64, 64, 3),
                      (8, 8, 64, 128, 3)],
}
PEER = {"avx512": "PyTorch", "avx2": "PyTorch, AVX2 only", "bf16": "PyTorch autocast BF16"}


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def fmt(v, spec=",.0f", none="–"):
    return none if v is None else format(v, spec)


def main(out_dir):
    header = dict(l.rstrip("\n").split("=", 1) for l in open(os.path.join(out_dir, "header.txt")) if "=" in l)
    rows = []
    for line in open(os.path.join(out_dir, "results.jsonl")):
        r = json.loads(line)
        if r["fw"] != "pytorch":
            rows.append(r)
            continue
        # One PyTorch process measured every thread count and precision: a row for each.
        for x in (r["out"] or {}).get("results", []):
            path = "avx2" if r["isa"] == "avx2" else "bf16" if x["precision"] == "bf16" else "avx512"
            rows.append({**r, "path": path, "threads": x["threads"], "out": x})
    cases = defaultdict(list)
    for r in rows:
        cases[(r["fw"], r["model"], r["path"], r["threads"])].append(r)
    rounds = max((r["round"] for r in rows), default=0)

    def ok(rs):
        return [r for r in rs if r["ok"]]

    def ips(rs):
        return median([r["out"].get("imagesPerSecond", r["out"].get("images_per_second")) for r in ok(rs)])

    def median_run(rs):
        """The run whose images/s is the median (the lower middle for an even count)."""
        good = sorted(ok(rs), key=lambda r: r["out"].get("imagesPerSecond", r["out"].get("images_per_second")))
        return good[(len(good) - 1) // 2] if good else None

    def peak(rs):
        return max((r["peak_mb"] for r in rs), default=None)

    # The limit of one thread on each path: the best rate of dptrain's 0.3 s loop over every run of
    # this bench/run (a run's own loop reads low when another process takes the core meanwhile). The
    # loop is the path's own: AVX2's FMAs (half AVX-512's rate on Intel cores), bf16's vdpbf16ps.
    limit = {}
    for r in rows:
        if r["fw"].startswith("dptrain") and r["ok"]:
            o = r["out"]
            limit[r["path"]] = max(limit.get(r["path"], 0), o["peakGFLOPS"] / (o["ranks"] * o["threadsPerRank"]))

    def share_of(r):
        o = r["out"]
        return o["gflops"] / (limit[r["path"]] * o["ranks"] * o["threadsPerRank"]) if limit else None

    def other(rs):
        return max((r["other_cpu"] for r in rs if r["other_cpu"] is not None), default=None)

    print(f"Measured {header.get('date')} on {header.get('cpu')}; flags: {header.get('flags')}")
    print(f"load average before/after: {header.get('load_before')} / {header.get('load_after', '?')}; "
          f"PyTorch {header.get('torch')} (OMP_WAIT_POLICY={header.get('torch_wait_policy')}); "
          f"dptrain {header.get('dptrain')}; {header.get('settings')}")
    print()
    print(f"- PyTorch as it comes: {header.get('pytorch_isa_default')}")
    print(f"- PyTorch limited to AVX2: {header.get('pytorch_isa_avx2')}")
    print()
    print(f"Images/s in steady state, batch 100, median of {rounds} interleaved rounds. Share = dptrain's "
          "GFLOP/s by wall clock over the path's FMA limit (the best rate per thread of the loop `dptrain bench` runs "
          "after its warm-up with the path's vectors, over all runs here: " +
          ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in limit.items()) + "; bf16: its BF16 dot-product loop), and (after the /) `dptrain bench`'s own share per CPU-second of "
          "the process; per CPU-s = the ratio of images per CPU-second of each process, "
          "which other load stretches less than the wall clock (a thread spinning while it waits counts); "
          "peak = max RSS of the process; others = the largest share of the CPU that other processes took "
          "during a run of that row.")
    print()
    print("| model | dptrain path | threads | dptrain images/s | share of FMA limit | peer | peer images/s "
          "| dptrain / peer | per CPU-s | peak MB dptrain / peer | others' CPU |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    keys = sorted({k[1:] for k in cases if k[0] in ("dptrain", "pytorch")},
                  key=lambda k: (list(CONVS).index(k[0]) if k[0] in CONVS else 9, list(PEER).index(k[1]), k[2]))

    def pct(v):
        return "–" if v is None else f"{100 * v:.0f}%"

    for model, path, t in keys:
        d, p = cases.get(("dptrain", model, path, t), []), cases.get(("pytorch", model, path, t), [])
        di, pi = ips(d), ips(p)
        share = median([share_of(r) for r in ok(d)])
        share_cpu = median([r["out"].get("shareOfPeakPerCPUSecond") for r in ok(d)])
        d_cpu = median([r["out"]["batchSize"] / r["out"]["cpuSecondsPerStep"] for r in ok(d)
                        if r["out"].get("cpuSecondsPerStep")])
        p_cpu = median([r["out"].get("images_per_cpu_second") for r in ok(p)])
        formats = sorted({r["out"]["memory_format"] for r in ok(p)})
        peer = PEER[path] + (f" ({'/'.join(f.replace('contiguous', 'NCHW').replace('channels_last', 'NHWC') for f in formats)})" if formats else "")
        ratio = f"{di / pi:.2f}×" if di and pi else "–"
        ratio_cpu = f"{d_cpu / p_cpu:.2f}×" if d_cpu and p_cpu else "–"
        print(f"| {model} | `{path}` | {t} | {fmt(di)} | {pct(share)} / {pct(share_cpu)} | {peer} | {fmt(pi)} "
              f"| {ratio} | {ratio_cpu} | {fmt(peak(d))} / {fmt(peak(p))} | {fmt((other(d + p) or 0) * 100, '.0f')}% |")
    print()

    # The same, one row per model and thread count (the README's table).
    paths = [p for p in PEER if any(k[2] == p for k in cases)]
    print("In short (images/s; dptrain's share of the FMA limit by wall clock; dptrain / peer):")
    print()
    print("| model | threads | " + " | ".join(f"dptrain `{p}` | {PEER[p]} | ×" for p in paths) + " |")
    print("|---|---:|" + "---:|---:|---:|" * len(paths))
    for model, t in sorted({(k[0], k[2]) for k in keys}, key=lambda k: (list(CONVS).index(k[0]) if k[0] in CONVS else 9, k[1])):
        cells = []
        for path in paths:
            d, p = cases.get(("dptrain", model, path, t), []), cases.get(("pytorch", model, path, t), [])
            di, pi = ips(d), ips(p)
            share = median([share_of(r) for r in ok(d)])
            cells += [fmt(di) + (f" ({100 * share:.0f}%)" if share else ""), fmt(pi), f"{di / pi:.2f}" if di and pi else "–"]
        print(f"| {model} | {t} | " + " | ".join(cells) + " |")
    print()

    # Data parallelism: np ranks x 1 thread against one process with np threads.
    mpi = [r for r in rows if r["fw"] == "dptrain-mpi"]
    if mpi:
        np_, path = mpi[0]["ranks"], mpi[0]["path"]
        one = cases.get(("dptrain", "reference", path, np_), [])
        mi, oi = ips(mpi), ips(one)
        per_round = []
        for rnd in range(1, rounds + 1):
            a = [r for r in mpi if r["round"] == rnd and r["ok"]]
            b = [r for r in ok(one) if r["round"] == rnd]
            if a and b:
                per_round.append(f"{a[0]['out']['imagesPerSecond'] / b[0]['out']['imagesPerSecond']:.3f}")
        print(f"Data parallelism, reference model, `{path}`: `mpirun -np {np_} --bind-to core` × 1 thread "
              f"{fmt(mi)} images/s against one process × {np_} threads {fmt(oi)}: "
              f"{fmt(mi and oi and mi / oi, '.3f')} (per round: {', '.join(per_round) or '–'}; target ≥ 0.95); "
              f"peak {fmt(peak(mpi))} MB per rank.")
        print()

    # Memory.
    mem = {m: max((r["peak_mb"] for r in rows if r["fw"] == "dptrain" and r["model"] == m), default=None) for m in CONVS}
    target = "" if mem.get("reference") is None else \
        f" (reference target ≤ 150 MB: {'met' if mem['reference'] <= 150 else 'NOT met'})"
    print("Peak RSS per rank, dptrain, largest over paths and threads: " +
          "; ".join(f"{m} {fmt(v)} MB" for m, v in mem.items() if v is not None) + target + ".")
    print()

    # Where a step goes: per layer, the median run at 1 thread (or the fewest threads measured).
    for model in [m for m in CONVS if any(k[1] == m for k in cases)]:
        t = min(k[3] for k in cases if k[0] == "dptrain")
        paths = [p for p in PEER if ("dptrain", model, p, t) in cases]
        runs = {p: median_run(cases[("dptrain", model, p, t)]) for p in paths}
        runs = {p: r for p, r in runs.items() if r}
        if not runs:
            continue
        print(f"Per layer, {model}, {t} thread(s), ms per step and, for a conv, its GFLOP/s' share of the FMA limit "
              f"(forward; backward = weight + input gradient, weight only for the first conv):")
        print()
        print("| layer | " + " | ".join(f"`{p}` forward | `{p}` backward" for p in runs) + " |")
        print("|---|" + "---:|---:|" * len(runs))
        first = next(iter(runs.values()))["out"]
        convs = iter(enumerate(CONVS[model]))
        for li, layer in enumerate(first["layers"]):
            spec = next(convs, None) if layer["name"].startswith("conv2d") else None
            cells = []
            for p, r in runs.items():
                o = r["out"]
                lay = o["layers"][li]
                per_thread_peak = limit[p]
                images = o["batchSize"] / (o["ranks"] * o["threadsPerRank"])
                for pass_, secs in (("forward", lay["forward"]), ("backward", lay["backward"])):
                    cell = f"{secs * 1000:.2f}"
                    if spec and secs > 0:
                        i, (h, w, c, f, k) = spec
                        flop = 2 * h * w * c * f * k * k * images * (1 if pass_ == "forward" else 1 if i == 0 else 2)
                        cell += f" ({100 * flop / secs / 1e9 / per_thread_peak:.0f}%)"
                    cells.append(cell)
            print(f"| {layer['name']} | " + " | ".join(cells) + " |")
        tot = [f"{r['out']['times']['step'] * 1000:.2f}" for r in runs.values()]
        print("| whole step | " + " | ".join(f"{s} | " for s in tot) + "|\n")

    print("Commands (one round; every case runs once per round, each in its own process):")
    print()
    print("```")
    seen, tmax = set(), max(k[3] for k in cases if k[0] == "dptrain")
    for r in rows:
        if r["round"] == 1 and r["command"] not in seen and (r["fw"] != "dptrain" or r["threads"] == tmax):
            seen.add(r["command"])
            print(r["command"].replace(out_dir, "$OUT_DIR").replace(os.getcwd() + "/", ""))
    print("```")


if __name__ == "__main__":
    main(sys.argv[1])
