"""outliers_peer.py - `hephaestus outliers --model M.hpm --batch B.hpd --out DIR` with its
defaults, in PyTorch + scikit-learn: the peer of bench/outliers_e2e.sh (issue #19, the whole run).

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread OPENBLAS_NUM_THREADS=1 \
      /usr/bin/python3 bench/outliers_peer.py --model M.safetensors --batch B.hpd --out DIR --threads 1

The model is the same checkpoint exported once for PyTorch (`hephaestus export --format
safetensors M.hpm M.safetensors`; tools/hephaestus_torch.py reads that, not .hpm). The steps,
as the CLI does them by default (tools/cli_analysis.h):
  1. load the model into tools/hephaestus_torch.py's nn.Module; read the .hpd batch with
     bench/torch_bench.py's reader (pixels / value_max) and its factor indices;
  2. encode every picture to its posterior mean (eval mode, no_grad, float32), --chunk pictures
     at a time (the CLI's heph_vae_encode goes max_batch = 128 at a time);
  3. sklearn MinCovDet(support_fraction=0.9) on the means (the CLI's mcd:0.9: the same FastMCD,
     correction and reweighting; only the random search differs, README "Which FastMCD");
     D^2 = its mahalanobis() of every picture;
  4. rank by decreasing D^2, flag D^2 > the 0.975 quantile of chi^2 with D degrees of freedom
     (the CLI's --auto chi2:0.975); AUROC against is_outlier=1 when the batch has that factor;
  5. explain every picture: z_d = (mu_d - m_d) / sqrt(S_dd) and c_d = (mu - m)_d [S^-1 (mu - m)]_d,
     which add up to D^2 (the CLI computes both for every picture too);
  6. print the summary and the 16 highest scores; write outliers.csv and outliers.json (the
     CLI's fields, plus z-scores and contributions of each flagged picture), md_scores.png and
     md_histogram.png (matplotlib, 800x360, the CLI's two charts) and auroc.txt, each to a
     temporary file that is fsynced and renamed, then the folder is fsynced (as cli_fclose).
torch.set_flush_denormal(True) as in bench/torch_bench.py. --stages prints the seconds of each
step to stderr. Timing only: it checks nothing.
"""
import time

T_START = time.perf_counter()
import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import chi2  # noqa: E402
from sklearn.covariance import MinCovDet  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "tools"), HERE]
import hephaestus_torch as ht  # noqa: E402
from torch_bench import hpd_decode, hpd_open  # noqa: E402


def hpd_factors(path, count):
    """{factor name: (count,) int32 indices} of a .hpd (empty without labels)."""
    with open(path, "rb") as f:
        hdr = f.read(104 + 32 * 32)
        K, labels_at = int.from_bytes(hdr[48:52], "little"), int.from_bytes(hdr[64:72], "little")
        names = [hdr[104 + 32 * k:128 + 32 * k].split(b"\0")[0].decode() for k in range(K)]
        f.seek(labels_at)
        lab = np.frombuffer(f.read(4 * count * K), "<i4").reshape(count, K)
    return {name: lab[:, k] for k, name in enumerate(names)}


def write_atomic(folder, name, data):
    """data (bytes, str, or a function of a binary file) to folder/name via temp + fsync + rename"""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=name + ".")
    with os.fdopen(fd, "wb") as f:
        if callable(data):
            data(f)
        else:
            f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, os.path.join(folder, name))
    dfd = os.open(folder, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
    print("wrote %s" % os.path.join(folder, name))


def charts(d2, thr, flag, truth):
    """the CLI's md_scores.png and md_histogram.png as two PNG writers"""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def scores(f):
        fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
        i = np.arange(len(d2))
        ax.plot(i, d2, lw=1.2, label="score D^2")
        ax.axhline(thr, color="r", ls="--", label="threshold")
        ax.plot(i[flag], d2[flag], "r.", label="flagged")
        if truth is not None:
            ax.plot(i[truth == 1], d2[truth == 1], "o", mfc="none", color="orange", label="true outlier")
        ax.set(title="Mahalanobis score of every picture", xlabel="picture (batch order)", ylabel="D^2")
        ax.legend()
        fig.savefig(f, format="png")
        plt.close(fig)

    def histogram(f):
        fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
        group = truth if truth is not None else flag.astype(int)
        names = ("normal (truth)", "outlier (truth)") if truth is not None else ("under threshold", "flagged")
        bins = np.linspace(0, 1.02 * max(d2.max(), thr), 31)
        for g, c in ((0, "tab:blue"), (1, "r")):
            if (group == g).any():
                ax.hist(d2[group == g], bins=bins, density=True, alpha=0.55, color=c, label=names[g])
        ax.axvline(thr, color="k", ls="--", label="threshold")
        ax.set(title="distribution of the scores", xlabel="score D^2", ylabel="density")
        ax.legend()
        fig.savefig(f, format="png")
        plt.close(fig)

    return scores, histogram


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="the model as .safetensors (hephaestus export --format safetensors)")
    p.add_argument("--batch", required=True, help="the pictures, a .hpd file")
    p.add_argument("--out", default="out", help="output folder (default out)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (OpenBLAS: its env)")
    p.add_argument("--chunk", type=int, default=128, help="pictures per encoder call (default 128)")
    p.add_argument("--support", type=float, default=0.9, help="MinCovDet support_fraction (CLI default 0.9)")
    p.add_argument("--seed", type=int, default=1, help="MinCovDet random_state")
    p.add_argument("--stages", action="store_true", help="seconds of each step to stderr")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    marks = [("imports", time.perf_counter())]

    model = ht.HephVAE.load(a.model).eval()
    raw, shape, dtype, vmax = hpd_open(a.batch)
    if tuple(shape) != model.input_shape:
        raise SystemExit("%s holds %s pictures, the model wants %s" % (a.batch, shape, model.input_shape))
    x = hpd_decode(np.asarray(raw), shape, dtype, vmax)
    factors = hpd_factors(a.batch, len(x))
    marks.append(("load model and batch", time.perf_counter()))

    with torch.no_grad():
        mu = torch.cat([model.encode(x[i:i + a.chunk])[0] for i in range(0, len(x), a.chunk)]).numpy()
    n, D = mu.shape
    marks.append(("encode", time.perf_counter()))

    mcd = MinCovDet(support_fraction=a.support, random_state=a.seed).fit(mu)
    d2 = mcd.mahalanobis(mu)
    marks.append(("MinCovDet fit and D^2", time.perf_counter()))

    order = np.argsort(-d2, kind="stable")
    rank = np.empty(n, int)
    rank[order] = np.arange(1, n + 1)
    thr = float(chi2.ppf(0.975, D))
    flag = d2 > thr
    truth = factors["is_outlier"].astype(int) if "is_outlier" in factors else None
    auroc = float(roc_auc_score(truth, d2)) if truth is not None and 0 < truth.sum() < n else float("nan")
    v = mu.astype(np.float64) - mcd.location_
    zs = v / np.sqrt(np.diag(mcd.covariance_))
    contrib = v * (v @ mcd.precision_)
    marks.append(("rank, threshold, AUROC, explain", time.perf_counter()))

    print("%d pictures from %s, %d latent dimensions; context: the batch itself (%d pictures)" % (n, a.batch, D, n))
    print("covariance mcd (reweighted support %d of %d); threshold on D^2 %.6g (chi^2 quantile p 0.975, %d degrees of "
          "freedom); %d flagged" % (mcd.support_.sum(), n, thr, D, flag.sum()))
    if truth is not None:
        print("AUROC %.4f (truth is_outlier=1: %d outliers of %d)" % (auroc, truth.sum(), n))
    print("rank  index  name                 D^2         D      flagged%s" % ("  truth" if truth is not None else ""))
    for r, i in enumerate(order[:16]):
        print("%4d  %5d  %-18.18s %10.3f %8.3f  %s%s" % (r + 1, i, "#%d" % i, d2[i], np.sqrt(d2[i]), "yes    " if flag[i] else "no     ",
                                                       "  %d" % truth[i] if truth is not None else ""))
    os.makedirs(a.out, exist_ok=True)
    t = truth is not None
    rows = ["index,name,score_d2,distance_d,rank,flagged%s,score" % (",truth" if t else "")]
    rows += ["%d,#%d,%.17g,%.17g,%d,%d%s,%.17g" % (i, i, d2[i], np.sqrt(d2[i]), rank[i], flag[i], ",%d" % truth[i] if t else "", d2[i])
             for i in order]
    write_atomic(a.out, "outliers.csv", "\n".join(rows) + "\n")
    ranked = [dict(index=int(i), name="#%d" % i, score_d2=float(d2[i]), distance_d=float(np.sqrt(d2[i])), rank=int(rank[i]),
                   flagged=bool(flag[i]), **({"truth": int(truth[i])} if t else {}), score=float(d2[i])) for i in order]
    explained = [dict(index=int(i), rank=int(rank[i]), score_d2=float(d2[i]), top_dims=np.argsort(-abs(zs[i]), kind="stable")[:3].tolist(),
                      zscores=zs[i].tolist(), contributions=contrib[i].tolist()) for i in order if flag[i]]
    doc = dict(model=a.model, batch=a.batch, reference=None, pictures=n, latent_dims=D,
               covariance=dict(method="mcd", shrinkage=0), score="mahalanobis", score_parameter=0,
               threshold=dict(mode="chi2", parameter=0.975, d2=thr), flagged=int(flag.sum()),
               truth="is_outlier=1" if t else None, auroc=auroc if t else None, ranked=ranked, explained=explained)
    write_atomic(a.out, "outliers.json", json.dumps(doc, indent=1) + "\n")
    marks.append(("print, CSV, JSON", time.perf_counter()))
    scores, histogram = charts(d2, thr, flag, truth)
    write_atomic(a.out, "md_scores.png", scores)
    write_atomic(a.out, "md_histogram.png", histogram)
    if t:
        write_atomic(a.out, "auroc.txt", "%.6f\n" % auroc)
    marks.append(("charts (matplotlib) and auroc.txt", time.perf_counter()))
    if a.stages:
        prev = T_START
        for name, at in marks:
            sys.stderr.write("stage %-34s %.3f s\n" % (name, at - prev))
            prev = at


if __name__ == "__main__":
    main()
