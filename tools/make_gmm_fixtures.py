#!/usr/bin/python3
"""Reference fits for tests/test_analysis.c: scikit-learn's GaussianMixture on small batches.

Writes tests/fixtures/gmm_sklearn.txt. Each case: n, D, k_max, the points (short decimals,
parsed back to float32 so C and Python fit the same numbers), then for k = 1..k_max the best
mean log-likelihood per point scikit-learn reaches (full covariances, reg_covar 1e-6, tol 1e-8,
20 k-means++ starts), its BIC choice, and -ln p of every point under the chosen fit. The C test
asks for the same choice, a log-likelihood no worse than scikit-learn's by more than 1e-4 per
point, and, where the two reach the same optimum, the same -ln p per point to 1e-4
relative (the library stops EM at 1e-6 per point, scikit-learn here at 1e-8).

Usage: /usr/bin/python3 tools/make_gmm_fixtures.py [output_dir]   (default tests/fixtures)
"""
import os
import sys

import numpy as np
from sklearn.mixture import GaussianMixture

SEED = 20261206


def blobs(g, n, d, k, sep):
    centres = sep * g.standard_normal((k, d))
    lab = g.integers(0, k, n)
    x = centres[lab] + g.standard_normal((n, d)) @ (np.eye(d) + 0.3 * g.standard_normal((d, d)))
    return np.array([[float(f"{v:.6g}") for v in row] for row in x], dtype=np.float32)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    g = np.random.default_rng(SEED)
    lines = ["# scikit-learn GaussianMixture reference fits (tools/make_gmm_fixtures.py); see that file"]
    for n, d, k, sep, kmax in [(200, 2, 2, 6.0, 4), (300, 4, 3, 5.0, 5), (150, 3, 1, 0.0, 3)]:
        x = blobs(g, n, d, k, sep)
        xd = x.astype(np.float64)
        fits = [GaussianMixture(c, covariance_type="full", reg_covar=1e-6, tol=1e-8, max_iter=1000,
                                n_init=20, init_params="k-means++", random_state=0).fit(xd) for c in range(1, kmax + 1)]
        bics = [f.bic(xd) for f in fits]
        best = int(np.argmin(bics))
        lines.append(f"case {n} {d} {kmax}")
        lines.append("points " + " ".join(f"{float(v):.9g}" for v in x.ravel()))
        lines.append("loglik " + " ".join(f"{f.score(xd):.17g}" for f in fits))
        lines.append(f"best {best + 1}")
        lines.append("nlogp " + " ".join(f"{-v:.17g}" for v in fits[best].score_samples(xd)))
        lines.append("end")
    with open(os.path.join(out, "gmm_sklearn.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
