"""bench/mcd/compare.py - the library's FastMCD beside scikit-learn's MinCovDet on the same codes.

usage: /usr/bin/python3 bench/mcd/compare.py MCD_FIT CASE.npy:TRUTH.txt ...

Each CASE.npy is a float32 (n, D) array of latent codes, TRUTH.txt n 0/1 outlier flags. Both
sides are the same variant: raw FastMCD (smallest determinant of h points found by C-steps from
random starts), the consistency correction S *= median(D^2) / chi2_D(0.5), and one reweighting
on D^2 < chi2_D(0.975), covariances with the divisor n (MLE). They differ in the random search
only: hephaestus takes 500 starts from random (D+1)-subsets (Rousseeuw & Van Driessen 1999);
scikit-learn 1.2 takes 30 starts from random h-subsets, two C-steps each, and iterates the best
10. So each side is run as is, scikit-learn with five random_state values to show its own
spread, and the table says how far apart the fits are and which raw subset has the smaller
determinant (the MCD objective). Needs Debian's python3-sklearn; not part of make test.
"""
import subprocess
import sys

import numpy as np
from sklearn.covariance import MinCovDet
from sklearn.metrics import roc_auc_score


def ours(prog, path, frac, seed=1):
    out = subprocess.run([prog, path, str(frac), str(seed)], check=True, capture_output=True, text=True).stdout
    lines = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines()[1:]}
    return {"raw_logdet": float(lines["raw_logdet"][0]),
            "support": np.array(lines["support"], dtype=int).astype(bool),
            "d2": np.array(lines["d2"], dtype=float)}


def sk(x, frac, r):
    m = MinCovDet(support_fraction=frac if frac > 0 else None, random_state=r).fit(x.astype(np.float64))
    raw = x[m.raw_support_].astype(np.float64)
    return {"raw_logdet": np.linalg.slogdet(np.cov(raw, rowvar=False, bias=True))[1],
            "support": m.support_, "d2": m.mahalanobis(x.astype(np.float64))}


def compare(prog, cases, frac):
    rows = []
    for case in cases:
        npy, truth = case.split(":")
        x, y = np.load(npy), np.loadtxt(truth)
        h = ours(prog, npy, frac)
        s = [sk(x, frac, r) for r in range(5)]
        rel = np.abs(h["d2"] - s[0]["d2"]) / np.maximum(s[0]["d2"], 1e-12)
        own = max(np.max(np.abs(t["d2"] - s[0]["d2"]) / np.maximum(s[0]["d2"], 1e-12)) for t in s[1:])
        rows.append({
            "dlogdet": h["raw_logdet"] - min(t["raw_logdet"] for t in s),
            "dlogdet0": h["raw_logdet"] - s[0]["raw_logdet"],
            "same_support": np.mean(h["support"] == s[0]["support"]),
            "sk_same_support": min(np.mean(t["support"] == s[0]["support"]) for t in s[1:]),
            "d2_rel_max": np.max(rel), "d2_rel_median": np.median(rel), "sk_d2_rel_max": own,
            "auroc_ours": roc_auc_score(y, h["d2"]), "auroc_sk": roc_auc_score(y, s[0]["d2"]),
            "identical": np.array_equal(h["support"], s[0]["support"]) and np.max(rel) < 1e-9,
        })
    return rows


def main():
    prog, cases = sys.argv[1], sys.argv[2:]
    n, d = np.load(cases[0].split(":")[0]).shape
    print(f"{len(cases)} batches of {n} codes, D = {d}; hephaestus seed 1, scikit-learn random_state 0..4")
    print("| h | raw det: ours lower / equal / higher than sklearn (random_state 0) | ours <= best of 5 sklearn |"
          " same fit as sklearn (D^2 within 1e-9): all / where the raw dets are equal | support agreement "
          "(sklearn vs itself) | D^2 rel. diff, median / max (sklearn vs itself, max) | AUROC ours / sklearn |")
    print("|---|---|---|---|---|---|---|")
    for frac in (0.9, 0.0):
        r = compare(prog, cases, frac)
        f = lambda k: np.array([q[k] for q in r])
        d0, eq = f('dlogdet0'), np.abs(f('dlogdet0')) <= 1e-9
        print(f"| {'0.9 n' if frac else '(n + D + 1) / 2'} | {np.sum(d0 < -1e-9)} / {np.sum(eq)} / {np.sum(d0 > 1e-9)} |"
              f" {np.sum(f('dlogdet') <= 1e-9)} of {len(r)} |"
              f" {int(f('identical').sum())} of {len(r)} / {int(f('identical')[eq].sum())} of {int(eq.sum())} |"
              f" {f('same_support').mean():.4f} ({f('sk_same_support').mean():.4f}) |"
              f" {np.median(f('d2_rel_median')):.1e} / {f('d2_rel_max').max():.1e} ({f('sk_d2_rel_max').max():.1e}) |"
              f" {f('auroc_ours').mean():.4f} / {f('auroc_sk').mean():.4f} |")


if __name__ == "__main__":
    main()
