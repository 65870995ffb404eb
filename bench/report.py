#!/usr/bin/env python3
"""Tables of `make bench`: reads the JSON lines of bench/run.sh (one per measurement) and
writes medians with their spread (min..max over the repeats) and the C/PyTorch ratios
measured in the same run, as aligned markdown on stdout, bench.md and bench.json.
Standard library only. Reports figures; never judges them."""

import argparse
import json
import statistics
import sys

MODELS = ["mlp-mnist", "mlp-dsprites", "cnn-dsprites", "cnn-shapes3d", "cvae-mnist", "classifier-mnist"]
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


def best_of(runs_by_cfg, field):
    """the configuration with the highest median of field: (stats, its name) or (None, "")"""
    best, name = None, ""
    for cfg, runs in sorted(runs_by_cfg.items()):
        s = stats([r.get(field) for r in runs])
        if s is not None and (best is None or s["median"] > best["median"]):
            best, name = s, cfg
    return best, name


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

    def group(mode, key, busy=0):
        g = {}
        for r in rows:
            if r.get("mode") == mode and r.get("busy", 0) == busy:
                g.setdefault(key(r), []).append(r)
        return g

    def cfgs(g, prefix):
        """{configuration: runs} of the keys of g that start with prefix (key[-1] = cfg)"""
        return {k[-1]: v for k, v in g.items() if k[:-1] == prefix}

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
    tr = group("train", lambda r: (r["model"], r["threads"], r["impl"], r.get("cfg", "")))
    speed_rows, mem_rows = [], []
    fields = ("images_per_s", "ms_per_step", "gflops", "train_mib", "peak_rss_mib")
    c_ips = {}
    for m in MODELS + sorted({k[0] for k in tr} - set(MODELS)):
        for t in threads:
            c = tr.get((m, t, "c", ""))
            _, pcfg = best_of(cfgs(tr, (m, t, "torch")), "images_per_s")
            pt = tr.get((m, t, "torch", pcfg))
            if not c and not pt:
                continue
            any_run = (c or pt)[0]
            cs = {f: st(c, f) for f in fields}
            ps = {f: st(pt, f) for f in fields}
            c_ips[(m, t)] = cs["images_per_s"]
            gain = ratio(cs["images_per_s"], c_ips.get((m, 1))) if t > 1 else None
            model_mib = any_run.get("model_mib")
            what = "1 epoch" if m == "mlp-mnist" else "steps"
            speed_rows.append([
                f"{m}", any_run.get("batch"), t, spread(cs["images_per_s"]),
                spread(ps["images_per_s"]), pcfg or "–", rtxt(ratio(cs["images_per_s"], ps["images_per_s"])),
                rtxt(gain) if gain else "", spread(cs["ms_per_step"]), spread(ps["ms_per_step"]),
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
                "model_mib": model_mib, "c": cs, "torch": ps, "torch_config": pcfg,
                "c_gain_over_1_thread": gain,
                "ratio_c_over_torch": {f: ratio(cs[f], ps[f]) for f in cs},
                "c_train_over_model": rc, "torch_train_over_model": rp})
    if speed_rows:
        md += ["**Training** (images/s, ms/step and achieved GFLOP/s: median (min–max) over the "
               "repeats; PyTorch at its best: the faster of its configurations, named; "
               "C/PyTorch > 1 means the C code is faster; gain = C on T threads over C on 1; % = "
               "share of the FMA peak on as many threads; FLOPs counted from the layer shapes, "
               "training = 3 × forward)", "",
               table(["model", "batch", "threads", "C images/s", "PyTorch images/s", "PyTorch config",
                      "C/PyTorch", "C gain", "C ms/step", "PyTorch ms/step", "C GFLOP/s",
                      "PyTorch GFLOP/s"], speed_rows), ""]
        md += ["**Memory of a training step** (MiB: peak RSS during training minus RSS before the "
               "model was made, data excluded; estimate = 4 × parameters (weights, gradients, "
               "Adam m, v) + the activations kept for backward, float32)", "",
               table(["model", "threads", "estimate", "C", "C/estimate", "PyTorch",
                      "PyTorch/estimate", "C/PyTorch"], mem_rows), ""]

    # ---- encoder-only inference
    en = group("encode", lambda r: (r["model"], r["threads"], r["impl"], r.get("cfg", "")))
    en_rows = []
    for (m, t) in sorted({(k[0], k[1]) for k in en}):
        c, cg = st(en.get((m, t, "c", "")), "images_per_s"), st(en.get((m, t, "c", "")), "gflops")
        pt, pcfg = best_of(cfgs(en, (m, t, "torch")), "images_per_s")
        pg = st(en.get((m, t, "torch", pcfg)), "gflops")
        ce = st(group("ceiling", lambda r: (r["model"], r["threads"])).get((m, t)), "gflops")
        en_rows.append([m, t, spread(c), spread(pt), pcfg or "–", rtxt(ratio(c, pt)),
                        spread(cg) + pct(cg, t), spread(ce) + pct(ce, t), rtxt(ratio(cg, ce)),
                        spread(pg) + pct(pg, t)])
        result["encode"].append({"model": m, "threads": t, "c": {"images_per_s": c, "gflops": cg},
                                 "torch": {"images_per_s": pt, "gflops": pg}, "torch_config": pcfg,
                                 "c_gemm_ceiling_gflops": ce,
                                 "ratio_c_over_torch": ratio(c, pt)})
    if en_rows:
        md += ["**Encoder-only inference** (posterior means, batches of 128; ceiling = the "
               "library's own GEMM on the encoder's shapes, arranged as the network runs them, "
               "with nothing else: `bench ceiling`)", "",
               table(["model", "threads", "C images/s", "PyTorch images/s", "PyTorch config",
                      "C/PyTorch", "C GFLOP/s", "C GEMM ceiling", "C/ceiling",
                      "PyTorch GFLOP/s"], en_rows), ""]

    # ---- Mahalanobis
    mh = group("maha", lambda r: (r["dim"], r["threads"], r["impl"] if r["impl"] == "c" else
                                  f'{r["impl"]}, {r.get("cfg", "")}'))
    mh_rows = []
    for (d, t) in sorted({(k[0], k[1]) for k in mh}):
        c = st(mh.get((d, t, "c")), "latents_per_s")
        cf = st(mh.get((d, t, "c")), "fit_ms")
        peers = {k[2]: v for k, v in mh.items() if k[:2] == (d, t) and k[2] != "c"}
        pt, pcfg = best_of({k: v for k, v in peers.items() if k.startswith("torch")}, "latents_per_s")
        pb, bcfg = best_of(peers, "latents_per_s")
        mh_rows.append([d, t, spread(c), spread(pt), rtxt(ratio(c, pt)), spread(pb), bcfg or "–",
                        rtxt(ratio(c, pb)), spread(cf)])
        result["maha"].append({"dim": d, "threads": t, "c": {"latents_per_s": c, "fit_ms": cf},
                               "torch": {"latents_per_s": pt, "config": pcfg},
                               "best_peer": {"latents_per_s": pb, "config": bcfg},
                               "ratio_c_over_torch": ratio(c, pt), "ratio_c_over_best_peer": ratio(c, pb)})
    if mh_rows:
        md += ["**Mahalanobis scoring** (empirical covariance fitted once on 10,000 latents, "
               "then 100,000-latent arrays scored for ≥ 1 s; all float64; the peers: PyTorch "
               "(Cholesky, batched triangular solve), SciPy (solve_triangular on the Cholesky "
               "factor), NumPy (the precision matrix through a matrix product), scikit-learn "
               "(EmpiricalCovariance.mahalanobis), each with OpenBLAS on 1 and on T threads)", "",
               table(["D", "threads", "C latents/s", "PyTorch latents/s", "C/PyTorch",
                      "best peer latents/s", "best peer", "C/best peer", "C fit ms"], mh_rows), ""]

    # ---- one core busy
    bz = group("train", lambda r: (r["model"], r["impl"], r.get("cfg", ""), r["threads"]), busy=1)
    bz_rows = []
    for m in MODELS:
        tmax = max([k[3] for k in bz if k[0] == m] or [0])
        if not tmax:
            continue
        idle_c = c_ips.get((m, tmax))
        tuner = st(bz.get((m, "c", "tuner", tmax)), "images_per_s")
        fixed = st(bz.get((m, "c", "fixed", tmax)), "images_per_s")
        one = st(bz.get((m, "c", "fixed", 1)), "images_per_s")
        pt, pcfg = best_of({k[2]: v for k, v in bz.items() if k[0] == m and k[1] == "torch"}, "images_per_s")
        idle_p = next((x["torch"]["images_per_s"] for x in result["train"]
                       if x["model"] == m and x["threads"] == tmax), None)
        bz_rows.append([m, tmax, spread(idle_c), spread(tuner), rtxt(ratio(idle_c, tuner)),
                        spread(fixed), spread(one), rtxt(ratio(tuner, one)), spread(idle_p), spread(pt),
                        pcfg or "–", rtxt(ratio(idle_p, pt)), rtxt(ratio(tuner, pt))])
        result.setdefault("busy", []).append({
            "model": m, "threads": tmax, "c_idle": idle_c, "c_tuner": tuner, "c_fixed": fixed,
            "c_one_thread": one, "torch_idle": idle_p, "torch_busy": pt, "torch_config": pcfg,
            "c_slowdown": ratio(idle_c, tuner), "torch_slowdown": ratio(idle_p, pt)})
    if bz_rows:
        md += ["**One core busy** (images/s of training with a busy process beside it, a shell "
               "loop, in windows twice as long; idle = the training table above. C tuner: `bench train --adapt`, what "
               "`hephaestus train` does by default (heph_tuner chooses 1..T threads); C fixed: "
               "exactly T threads, and 1 thread)", "",
               table(["model", "T", "C idle", "C busy, tuner", "slowdown", "C busy, T fixed",
                      "C busy, 1 thread", "tuner/1 thread", "PyTorch idle", "PyTorch busy",
                      "PyTorch config", "PyTorch slowdown", "C/PyTorch busy"], bz_rows), ""]

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
        f"`{meta.get('torch_env', '')}` (the faster named per row), torch.set_num_threads(T), "
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
