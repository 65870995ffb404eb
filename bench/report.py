#!/usr/bin/env python3
"""Tables of `make bench`: reads the JSON lines of bench/run.sh (one per measurement) and
writes medians with their spread (min..max over the repeats) and the C/PyTorch ratios
measured in the same run, as aligned markdown on stdout, bench.md and bench.json.
Standard library only. Reports figures; never judges them."""

import argparse
import json
import statistics
import sys

MODELS = ["mlp-mnist", "mlp-dsprites", "cnn-dsprites", "cnn-shapes3d"]
TITLES = {"mlp-mnist": "MLP MNIST 784-400-20", "mlp-dsprites": "MLP dSprites 4096-1024-256-64-10",
          "cnn-dsprites": "CNN dSprites 32 ch", "cnn-shapes3d": "CNN Shapes3D 32-64-128-256"}


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    print(f"report.py: skipping a bad line of {path}", file=sys.stderr)
    return rows


def stats(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def num(v, digits=3):
    """a readable number: 3 significant figures, thousands separated"""
    if v is None:
        return "–"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.{max(digits - 1 - (a >= 1e7) - (a >= 1e8), 0)}f} M"
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def spread(s):
    if s is None:
        return "–"
    if s["n"] == 1 or s["min"] == s["max"]:
        return num(s["median"])
    return f"{num(s['median'])} ({num(s['min'])}–{num(s['max'])})"


def ratio(a, b):
    if a is None or b is None or not b["median"]:
        return None
    return a["median"] / b["median"]


def rtxt(r):
    return "–" if r is None else f"{r:.2f}×"


def table(head, rows):
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows)] if rows else [len(h) for h in head]
    line = lambda cells: "| " + " | ".join(str(c).ljust(n) for c, n in zip(cells, w)) + " |"
    out = [line(head), "|" + "|".join("-" * (n + 2) for n in w) + "|"]
    return "\n".join(out + [line(r) for r in rows])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--raw", required=True)
    p.add_argument("--meta")
    p.add_argument("--commands")
    p.add_argument("--out", default="bench/results")
    a = p.parse_args()
    rows = load(a.raw)
    meta = {}
    if a.meta:
        with open(a.meta) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                meta[k] = v
    cmds = []
    if a.commands:
        with open(a.commands) as f:
            cmds = [c.rstrip("\n") for c in f if c.strip()]

    def group(mode, key):
        g = {}
        for r in rows:
            if r.get("mode") == mode:
                g.setdefault(key(r), []).append(r)
        return g

    def st(runs, field):
        return stats([r.get(field) for r in runs]) if runs else None

    threads = sorted({r["threads"] for r in rows if "threads" in r})
    peak = {t: st(group("peak", lambda r: r["threads"]).get(t), "gflops") for t in threads}

    def pct(s, t):
        pk = peak.get(t)
        if s is None or pk is None or not pk["median"]:
            return ""
        return f" ({100 * s['median'] / pk['median']:.0f}%)"

    result = {"meta": meta, "peak": {}, "train": [], "encode": [], "maha": [], "commands": cmds}
    md = []

    # ---- peak
    pk_rows = []
    for t in threads:
        if peak[t]:
            pk_rows.append([t, spread(peak[t])])
            result["peak"][str(t)] = peak[t]
    if pk_rows:
        md += ["**Machine peak** (FMA loop in plain C: independent accumulator vectors, "
               "`#pragma omp parallel`)", "", table(["threads", "GFLOP/s"], pk_rows), ""]

    # ---- training: speed, then memory
    tr = group("train", lambda r: (r["model"], r["threads"], r["impl"]))
    speed_rows, mem_rows = [], []
    for m in MODELS + sorted({k[0] for k in tr} - set(MODELS)):
        for t in threads:
            c, pt = tr.get((m, t, "c")), tr.get((m, t, "torch"))
            if not c and not pt:
                continue
            any_run = (c or pt)[0]
            cs = {f: st(c, f) for f in ("images_per_s", "ms_per_step", "gflops", "train_mib", "peak_rss_mib")}
            ps = {f: st(pt, f) for f in ("images_per_s", "ms_per_step", "gflops", "train_mib", "peak_rss_mib")}
            model_mib = any_run.get("model_mib")
            what = "1 epoch" if m == "mlp-mnist" else "steps"
            speed_rows.append([
                f"{m}", any_run.get("batch"), t, spread(cs["images_per_s"]),
                spread(ps["images_per_s"]), rtxt(ratio(cs["images_per_s"], ps["images_per_s"])),
                spread(cs["ms_per_step"]), spread(ps["ms_per_step"]),
                spread(cs["gflops"]) + pct(cs["gflops"], t), spread(ps["gflops"]) + pct(ps["gflops"], t)])
            rc = None if not cs["train_mib"] or not model_mib else cs["train_mib"]["median"] / model_mib
            rp = None if not ps["train_mib"] or not model_mib else ps["train_mib"]["median"] / model_mib
            mem_rows.append([
                m, t, num(model_mib), spread(cs["train_mib"]), rtxt(rc), spread(ps["train_mib"]),
                rtxt(rp), rtxt(ratio(cs["train_mib"], ps["train_mib"]))])
            result["train"].append({
                "model": m, "threads": t, "batch": any_run.get("batch"), "timed": what,
                "data": any_run.get("data"), "params": any_run.get("params"),
                "train_gflop_per_image": any_run.get("train_gflop_per_image"),
                "model_mib": model_mib, "c": cs, "torch": ps,
                "ratio_c_over_torch": {f: ratio(cs[f], ps[f]) for f in cs},
                "c_train_over_model": rc, "torch_train_over_model": rp})
    if speed_rows:
        md += ["**Training** (images/s, ms/step and achieved GFLOP/s: median (min–max) over the "
               "repeats; C/PyTorch > 1 means the C code is faster; % = share of the FMA peak on "
               "as many threads; FLOPs counted from the layer shapes, training = 3 × forward)", "",
               table(["model", "batch", "threads", "C images/s", "PyTorch images/s", "C/PyTorch",
                      "C ms/step", "PyTorch ms/step", "C GFLOP/s", "PyTorch GFLOP/s"], speed_rows), ""]
        md += ["**Memory of a training step** (MiB: peak RSS during training minus RSS before the "
               "model was made, data excluded; estimate = 4 × parameters (weights, gradients, "
               "Adam m, v) + the activations kept for backward, float32)", "",
               table(["model", "threads", "estimate", "C", "C/estimate", "PyTorch",
                      "PyTorch/estimate", "C/PyTorch"], mem_rows), ""]

    # ---- encoder-only inference
    en = group("encode", lambda r: (r["model"], r["threads"], r["impl"]))
    en_rows = []
    for (m, t) in sorted({(k[0], k[1]) for k in en}):
        c, pt = st(en.get((m, t, "c")), "images_per_s"), st(en.get((m, t, "torch")), "images_per_s")
        cg, pg = st(en.get((m, t, "c")), "gflops"), st(en.get((m, t, "torch")), "gflops")
        en_rows.append([m, t, spread(c), spread(pt), rtxt(ratio(c, pt)), spread(cg) + pct(cg, t),
                        spread(pg) + pct(pg, t)])
        result["encode"].append({"model": m, "threads": t, "c": {"images_per_s": c, "gflops": cg},
                                 "torch": {"images_per_s": pt, "gflops": pg},
                                 "ratio_c_over_torch": ratio(c, pt)})
    if en_rows:
        md += ["**Encoder-only inference** (posterior means, batches of 128)", "",
               table(["model", "threads", "C images/s", "PyTorch images/s", "C/PyTorch",
                      "C GFLOP/s", "PyTorch GFLOP/s"], en_rows), ""]

    # ---- Mahalanobis
    mh = group("maha", lambda r: (r["dim"], r["threads"], r["impl"]))
    mh_rows = []
    for (d, t) in sorted({(k[0], k[1]) for k in mh}):
        c, pt = st(mh.get((d, t, "c")), "latents_per_s"), st(mh.get((d, t, "torch")), "latents_per_s")
        cf, pf = st(mh.get((d, t, "c")), "fit_ms"), st(mh.get((d, t, "torch")), "fit_ms")
        mh_rows.append([d, t, spread(c), spread(pt), rtxt(ratio(c, pt)), spread(cf), spread(pf)])
        result["maha"].append({"dim": d, "threads": t, "c": {"latents_per_s": c, "fit_ms": cf},
                               "torch": {"latents_per_s": pt, "fit_ms": pf},
                               "ratio_c_over_torch": ratio(c, pt)})
    if mh_rows:
        md += ["**Mahalanobis scoring** (empirical covariance fitted once on 10,000 latents, "
               "then ≥ 1,000,000 latents scored; PyTorch: float64 Cholesky and a batched "
               "triangular solve)", "",
               table(["D", "threads", "C latents/s", "PyTorch latents/s", "C/PyTorch",
                      "C fit ms", "PyTorch fit ms"], mh_rows), ""]

    # ---- header and set-up
    head = []
    load0 = float(meta.get("load_start", "0") or 0)
    if load0 > 0.5:
        head += [f"> **Taken under load** (load average {meta.get('load_start')} at the start, "
                 f"{meta.get('load_end')} at the end): other work shared the cores; these "
                 "figures mean little.", ""]
    head += [f"{meta.get('cpu', '?')}, {meta.get('cores', '?')} cores, {meta.get('date', '')}; "
             f"repeats: {meta.get('repeats', '?')}, timed windows of {meta.get('seconds', '?')} s "
             f"(mlp-mnist: {meta.get('epochs', '?')} whole epoch(s) of real MNIST per run); "
             f"{meta.get('elapsed_s', '?')} s in all.", ""]
    torch_v = sorted({r.get("torch") for r in rows if r.get("impl") == "torch"})
    repro = meta.get("command", "sh bench/run.sh").strip()
    if repro == "sh bench/run.sh":
        repro = "make bench"  # (= sh bench/run.sh)
    setup = [
        f"- C: `{meta.get('cc', 'cc')}`, `{meta.get('cflags', '')}`, one process per "
        "configuration, OpenMP threads = the thread count.",
        f"- PyTorch {', '.join(torch_v) if torch_v else '(not run)'}: Debian python3-torch, "
        f"`{meta.get('torch_env', '')}`, torch.set_num_threads(T), "
        "torch.set_flush_denormal(True); same layers (Conv2d k4 s2 p1 + ReLU, ConvTranspose2d, "
        "Linear), BCE-with-logits summed over pixels + analytic KL, Adam lr 1e-3.",
        f"- Both: GLIBC_TUNABLES={meta.get('glibc_tunables', 'unset')}, "
        f"OMP_WAIT_POLICY={meta.get('omp_wait_policy', 'unset')}. Data: real MNIST for "
        "mlp-mnist; the others cycle through 8 batches read from data/*/.hpd when present, "
        "otherwise random pictures.",
        f"- Reproduce: `{repro}`; every command is in {a.out}/commands.txt and bench.json.",
    ]
    examples = []
    for kind in ("peak", "train", "encode", "maha"):
        for who in ("build/bench", "torch_bench.py"):
            for c in cmds:
                if f" {kind} " in c and who in c:
                    examples.append(c.split(" --info ")[0])
                    break
    text = "\n".join(head + md + setup + ["", "```"] + examples + ["```", ""])
    if meta.get("failed_runs", "0") not in ("0", ""):
        text += f"\n{meta['failed_runs']} run(s) failed; see the log of run.sh.\n"
    print(text)
    with open(f"{a.out}/bench.md", "w") as f:
        f.write(text)
    with open(f"{a.out}/bench.json", "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"wrote {a.out}/bench.md and {a.out}/bench.json", file=sys.stderr)


if __name__ == "__main__":
    main()
