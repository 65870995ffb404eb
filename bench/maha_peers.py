"""maha_peers.py - Mahalanobis scoring in NumPy/SciPy and scikit-learn, beside bench/bench.c maha
and torch_bench.py maha (issue #19: the peers of `make bench` for this step, each at its best).

    OPENBLAS_NUM_THREADS=T /usr/bin/python3 bench/maha_peers.py --dim 12 --way scipy-cholesky --json

Fit mean and covariance (float64) on --fit latents, then score chunks of 100,000 float32 latents
for at least --seconds and --score latents. The ways, all float64 like the C code:
  scipy-cholesky  y = solve_triangular(L, (z - m)^T, lower=True); d2 = sum(y^2)   (BLAS dtrsm)
  numpy-precision d2 = sum(((z - m) @ P) * (z - m), 1), P = S^-1                  (BLAS dgemm)
  sklearn         EmpiricalCovariance().fit(zf).mahalanobis(z)
Prints one JSON object (with --json) or a sentence. Figures only, never a check."""
import argparse
import json
import resource
import sys
import time

import numpy as np


def latents(rng, n, D, A):
    return (0.5 + rng.standard_normal((n, D)) @ A.T).astype(np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dim", type=int, default=12)
    p.add_argument("--fit", type=int, default=10000)
    p.add_argument("--score", type=lambda v: int(float(v)), default=1000000)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--way", default="scipy-cholesky", choices=["scipy-cholesky", "numpy-precision", "sklearn"])
    p.add_argument("--threads", type=int, default=0, help="recorded only: set OPENBLAS_NUM_THREADS")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    D = a.dim
    rng = np.random.default_rng(a.seed)
    A = np.tril(0.3 * rng.standard_normal((D, D)), -1) + np.eye(D)
    chunk = min(a.score, 100000)
    zf, zs = latents(rng, a.fit, D, A), latents(rng, chunk, D, A)

    t0 = time.perf_counter()
    if a.way == "sklearn":
        from sklearn.covariance import EmpiricalCovariance
        est = EmpiricalCovariance().fit(zf.astype(np.float64))
        score = est.mahalanobis
    else:
        import scipy.linalg
        zd = zf.astype(np.float64)
        m = zd.mean(0)
        S = np.cov(zd, rowvar=False)
        if a.way == "scipy-cholesky":
            L = np.linalg.cholesky(S)

            def score(z):
                y = scipy.linalg.solve_triangular(L, (z.astype(np.float64) - m).T, lower=True, check_finite=False)
                return np.einsum("ij,ij->j", y, y)
        else:
            P = np.linalg.inv(S)

            def score(z):
                c = z.astype(np.float64) - m
                return np.einsum("ij,ij->i", c @ P, c)
    tfit = time.perf_counter() - t0

    score(zs)  # warm-up
    scored, s, t0 = 0, 0.0, time.perf_counter()
    while True:
        d2 = score(zs)
        scored += chunk
        s += float(d2[scored % chunk])
        t = time.perf_counter()
        if scored >= a.score and t - t0 >= a.seconds:
            break
    out = {"impl": a.way, "mode": "maha", "threads": a.threads, "dim": D, "n_fit": a.fit,
           "scored": scored, "fit_ms": 1e3 * tfit, "seconds": t - t0, "latents_per_s": scored / (t - t0),
           "checksum": s, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
           "numpy": np.__version__}
    print(json.dumps(out) if a.json else
          f"Mahalanobis D={D} ({a.way}, {a.threads} threads): {out['latents_per_s']:.3g} latents/s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
