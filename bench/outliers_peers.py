"""outliers_peers.py - the usual outlier detectors beside the library's scores: the peers of
issue #21's outlier benchmark (bench/outliers/run.sh).

    /usr/bin/python3 bench/outliers_peers.py --ref-codes REF_MU.npy --batch-codes BATCH_MU.npy \
        --truth TRUTH.txt [--ref-pixels REF.npy --batch-pixels BATCH.npy] [--seed 0] \
        [--out results.jsonl] [--case NAME] [--selftest]

Inputs: REF_MU.npy (n_ref, D) and BATCH_MU.npy (n, D), the latent codes (posterior means) that
`hephaestus encode` writes for the normal reference pictures and for the batch to score;
TRUTH.txt, n lines of 0 or 1 (1 = true outlier) in batch order; optionally REF.npy (n_ref, P)
and BATCH.npy (n, P), the same pictures flattened, in [0, 1], for the pixel-PCA peer.

Every detector is fitted on the reference set only (no outlier label is used anywhere) and
scores the batch, higher = more outlying. All computation in float64. The detectors:
  isolation_forest   sklearn IsolationForest(n_estimators=200, random_state=seed) on the codes;
                     score = -score_samples.
  lof                sklearn LocalOutlierFactor(n_neighbors=20, novelty=True); -score_samples.
  ocsvm              sklearn OneClassSVM(kernel="rbf", gamma="scale", nu=0.05) on codes
                     standardised by a StandardScaler fitted on the reference; -decision_function.
  elliptic_envelope  sklearn EllipticEnvelope(random_state=seed, support_fraction=None);
                     -score_samples, i.e. the squared Mahalanobis distance under the reweighted
                     MinCovDet location and covariance.
  knn                sklearn NearestNeighbors(n_neighbors=5) on the reference; score = distance
                     (Euclidean) to the 5th nearest reference code.
  ecod               ECOD (Li et al. 2022, "ECOD: Unsupervised Outlier Detection Using Empirical
                     Cumulative Distribution Functions"), written here from the paper's formulas.
  copod              COPOD (Li et al. 2020, "COPOD: Copula-Based Outlier Detection"), likewise.
  pixel_pca          (only with --ref-pixels/--batch-pixels) sklearn PCA(svd_solver="full") on
                     the reference pictures, keeping the fewest components that explain 95 % of
                     their variance (at most 100); score = squared reconstruction error.

ECOD and COPOD. For each code dimension j the reference gives a left and a right tail
probability, evaluated at a batch value x:
    F_left_j(x)  = (1 + #{reference values <= x}) / (n_ref + 1)
    F_right_j(x) = (1 + #{reference values >= x}) / (n_ref + 1)
(np.searchsorted on the sorted reference column; ties count on both sides). The papers'
estimators are #{...}/n over the data being scored, which always include x itself. Here the
ECDFs are fitted on the reference set and evaluated at the batch (the setting of every other
peer and of the library: the reference is known to be normal, the batch may be contaminated by
up to all of its outliers, so fitting on the batch would let a cluster of outliers hide
itself). The +1 in numerator and denominator is exactly the papers' estimator on the reference
plus the scored point: it keeps the probability in [1/(n_ref+1), 1], so -log is finite, and it
is the usual conformal p-value. The skewness sign of each dimension is the reference column's
(biased sample skewness; 0 for a constant or symmetric column, which picks the right tail).
  ECOD:  O_left = -sum_j log F_left_j,  O_right = -sum_j log F_right_j,
         O_auto = -sum_j log (F_left_j if skew_j < 0 else F_right_j);  score = max of the three.
  COPOD: the empirical copula observations U_j = F_left_j(x), V_j = F_right_j(x) (the ECDF of
         -X at -x), W_j = U_j if skew_j < 0 else V_j; p_l = -sum_j log U_j, p_r = -sum_j log V_j,
         p_s = -sum_j log W_j;  score = max(p_l, p_r, p_s).
As the two papers write them (ECOD's Algorithm 1, COPOD's Algorithm 1), these are the same
numbers: COPOD's tail probability of the empirical copula is taken as the product of its
marginals, which is ECOD's sum of -log tail ECDFs. Both are kept because issue #21 names both;
expect identical metrics (their seconds differ by the noise only).

Metrics per detector: AUROC (roc_auc_score), AUPRC (average_precision_score), recall at 1 %
FPR (threshold = np.quantile of the true normals' scores at 0.99, numpy's default linear
interpolation; recall = the fraction of true outliers whose score is strictly above it), and
the wall seconds of fit + score (time.perf_counter). A batch whose truth has a single class
gets null for the metrics that need the other class. Output: one JSON line per detector,
appended to --out (default stdout), keys case, detector, auroc, auprc, recall_at_1pct_fpr,
seconds, n_ref, n, n_outliers, D (D = the width the detector saw: code dimensions, or pixels
for pixel_pca). A detector that raises gets a line with null metrics and an "error" key, and a
message on stderr; the others still run (exit status 0). Bad inputs (unreadable file, shape
mismatch, NaN or inf, truth not 0/1 or of the wrong length): a message naming the file, exit 2.
--selftest checks ECOD and COPOD against hand-computed values and that an obvious outlier
ranks first for every detector; one PASS/FAIL line each, exit 0 if all pass, else 1.
Fixed seeds; the output is deterministic except for seconds.
"""
import argparse
import json
import sys
import time

import numpy as np
from sklearn.covariance import EllipticEnvelope
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

PROG = "outliers_peers"
LOF_NEIGHBOURS = 20
KNN_NEIGHBOURS = 5


class InputError(Exception):
    """Bad input; main() prints it and exits 2."""


# ---------------------------------------------------------------- ECDF tails (ECOD, COPOD)

def ecdf_fit(ref):
    """The reference's sorted columns and the sign of each column's skewness."""
    ref = np.asarray(ref, np.float64)
    c = ref - ref.mean(axis=0)
    m2, m3 = (c ** 2).mean(axis=0), (c ** 3).mean(axis=0)
    skew = np.where(m2 > 0, m3 / np.where(m2 > 0, m2, 1.0) ** 1.5, 0.0)
    return np.sort(ref, axis=0), skew


def ecdf_tails(sorted_ref, x):
    """(F_left, F_right), each (n, D): (1 + #{ref <= x}) / (n_ref + 1), (1 + #{ref >= x}) / (n_ref + 1)."""
    n_ref, D = sorted_ref.shape
    x = np.asarray(x, np.float64)
    le = np.empty(x.shape)
    ge = np.empty(x.shape)
    for j in range(D):
        le[:, j] = np.searchsorted(sorted_ref[:, j], x[:, j], side="right")
        ge[:, j] = n_ref - np.searchsorted(sorted_ref[:, j], x[:, j], side="left")
    return (le + 1.0) / (n_ref + 1.0), (ge + 1.0) / (n_ref + 1.0)


def ecod_scores(ref, x):
    """ECOD fitted on ref, evaluated at x: max(O_left, O_right, O_auto)."""
    sorted_ref, skew = ecdf_fit(ref)
    f_left, f_right = ecdf_tails(sorted_ref, x)
    o_left = -np.log(f_left).sum(axis=1)
    o_right = -np.log(f_right).sum(axis=1)
    o_auto = -np.log(np.where(skew < 0, f_left, f_right)).sum(axis=1)
    return np.maximum(np.maximum(o_left, o_right), o_auto)


def copod_scores(ref, x):
    """COPOD fitted on ref, evaluated at x: max(p_l, p_r, p_s) of the empirical copula observations."""
    sorted_ref, skew = ecdf_fit(ref)
    u, v = ecdf_tails(sorted_ref, x)      # U = F(x), V = F_{-X}(-x)
    w = np.where(skew < 0, u, v)          # skewness-corrected
    p_l, p_r, p_s = (-np.log(c).sum(axis=1) for c in (u, v, w))
    return np.maximum(np.maximum(p_l, p_r), p_s)


# ---------------------------------------------------------------- the other detectors

def isolation_forest_scores(ref, x, seed):
    return -IsolationForest(n_estimators=200, random_state=seed).fit(ref).score_samples(x)


def lof_scores(ref, x, seed):
    return -LocalOutlierFactor(n_neighbors=LOF_NEIGHBOURS, novelty=True).fit(ref).score_samples(x)


def ocsvm_scores(ref, x, seed):
    scaler = StandardScaler().fit(ref)
    svm = OneClassSVM(kernel="rbf", gamma="scale", nu=0.05).fit(scaler.transform(ref))
    return -svm.decision_function(scaler.transform(x))


def elliptic_envelope_scores(ref, x, seed):
    return -EllipticEnvelope(random_state=seed, support_fraction=None).fit(ref).score_samples(x)


def knn_scores(ref, x, seed):
    dist, _ = NearestNeighbors(n_neighbors=KNN_NEIGHBOURS).fit(ref).kneighbors(x)
    return dist[:, KNN_NEIGHBOURS - 1]


def pixel_pca_scores(ref, x, seed):
    """Squared reconstruction error with the fewest components explaining 95 % (at most 100)."""
    pca = PCA(svd_solver="full").fit(ref)
    ratio = np.cumsum(pca.explained_variance_ratio_)
    k = min(int(np.searchsorted(ratio, 0.95)) + 1, 100, len(ratio))
    comp = pca.components_[:k]
    xc = x - pca.mean_
    r = xc - (xc @ comp.T) @ comp
    return np.einsum("ij,ij->i", r, r)


CODE_DETECTORS = [
    ("isolation_forest", isolation_forest_scores),
    ("lof", lof_scores),
    ("ocsvm", ocsvm_scores),
    ("elliptic_envelope", elliptic_envelope_scores),
    ("knn", knn_scores),
    ("ecod", lambda ref, x, seed: ecod_scores(ref, x)),
    ("copod", lambda ref, x, seed: copod_scores(ref, x)),
]
PIXEL_DETECTORS = [("pixel_pca", pixel_pca_scores)]


# ---------------------------------------------------------------- metrics

def metrics(truth, scores):
    """auroc, auprc, recall_at_1pct_fpr (None where a class is missing)."""
    out = {"auroc": None, "auprc": None, "recall_at_1pct_fpr": None}
    if not np.all(np.isfinite(scores)):
        raise ValueError("the detector returned NaN or infinite scores")
    pos, neg = scores[truth == 1], scores[truth == 0]
    if len(pos) and len(neg):
        out["auroc"] = float(roc_auc_score(truth, scores))
        out["auprc"] = float(average_precision_score(truth, scores))
        out["recall_at_1pct_fpr"] = float(np.mean(pos > np.quantile(neg, 0.99)))
    return out


def run_detector(name, fn, ref, x, truth, seed, case):
    """One JSON record: fit on ref, score x, time both, compare with truth."""
    rec = {"case": case, "detector": name, "auroc": None, "auprc": None,
           "recall_at_1pct_fpr": None, "seconds": None, "n_ref": int(ref.shape[0]),
           "n": int(x.shape[0]), "n_outliers": int(truth.sum()), "D": int(x.shape[1])}
    try:
        t0 = time.perf_counter()
        scores = np.asarray(fn(ref, x, seed), np.float64)
        rec["seconds"] = round(time.perf_counter() - t0, 4)
        rec.update(metrics(truth, scores))
    except Exception as e:  # one failing peer must not hide the others
        rec["error"] = f"{type(e).__name__}: {e}"
        print(f"{PROG}: {case}: {name} failed: {rec['error']}", file=sys.stderr)
    return rec


# ---------------------------------------------------------------- inputs

def load_matrix(path, what):
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"{path} ({what}): cannot read as .npy: {e}")
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"{path} ({what}): expected a 2-D (rows, columns) array, got shape {a.shape}")
    if a.dtype.kind not in "fiu":
        raise InputError(f"{path} ({what}): expected numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputError(f"{path} ({what}): {int(bad.sum())} NaN or infinite values "
                         f"(first at row {r}, column {c})")
    return a


def load_truth(path, n):
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise InputError(f"{path} (truth): cannot read: {e}")
    while lines and not lines[-1].strip():
        lines.pop()
    for i, s in enumerate(lines):
        if s.strip() not in ("0", "1"):
            raise InputError(f"{path} (truth): line {i + 1} is {s!r}, expected 0 or 1")
    if len(lines) != n:
        raise InputError(f"{path} (truth): {len(lines)} lines, but the batch codes have {n} rows")
    return np.array([int(s) for s in lines], np.int64)


def load_inputs(a):
    ref = load_matrix(a.ref_codes, "reference codes")
    bat = load_matrix(a.batch_codes, "batch codes")
    if bat.shape[1] != ref.shape[1]:
        raise InputError(f"{a.batch_codes} (batch codes): {bat.shape[1]} dimensions, "
                         f"but {a.ref_codes} has {ref.shape[1]}")
    if ref.shape[0] <= LOF_NEIGHBOURS:
        raise InputError(f"{a.ref_codes} (reference codes): {ref.shape[0]} rows, "
                         f"need more than {LOF_NEIGHBOURS} (LOF's neighbours)")
    truth = load_truth(a.truth, bat.shape[0])
    pix = None
    if (a.ref_pixels is None) != (a.batch_pixels is None):
        raise InputError("--ref-pixels and --batch-pixels go together")
    if a.ref_pixels is not None:
        rp = load_matrix(a.ref_pixels, "reference pixels")
        bp = load_matrix(a.batch_pixels, "batch pixels")
        if rp.shape[0] != ref.shape[0]:
            raise InputError(f"{a.ref_pixels} (reference pixels): {rp.shape[0]} rows, "
                             f"but {a.ref_codes} has {ref.shape[0]}")
        if bp.shape[0] != bat.shape[0]:
            raise InputError(f"{a.batch_pixels} (batch pixels): {bp.shape[0]} rows, "
                             f"but {a.batch_codes} has {bat.shape[0]}")
        if bp.shape[1] != rp.shape[1]:
            raise InputError(f"{a.batch_pixels} (batch pixels): {bp.shape[1]} pixels, "
                             f"but {a.ref_pixels} has {rp.shape[1]}")
        for path, p in ((a.ref_pixels, rp), (a.batch_pixels, bp)):
            if p.min() < 0 or p.max() > 1:
                print(f"{PROG}: warning: {path}: values in [{p.min():g}, {p.max():g}], "
                      f"expected [0, 1]", file=sys.stderr)
        pix = (rp, bp)
    return ref, bat, truth, pix


# ---------------------------------------------------------------- selftest

def selftest():
    """One PASS/FAIL line per check; True when all pass."""
    ok = True

    def check(name, cond):
        nonlocal ok
        ok &= bool(cond)
        print(f"{'PASS' if cond else 'FAIL'} {name}")

    # Hand case 1: reference [0, 1, 2, 3] (n_ref = 4, so probabilities are in fifths); its
    # skewness is exactly 0, so the automatic term takes the right tail.
    #   x = 10:  #<= 4 -> F_left = 5/5 = 1;  #>= 0 -> F_right = 1/5.
    #            O_left = 0, O_right = ln 5, O_auto = ln 5             -> ln 5
    #   x = 1.5: #<= 2 -> 3/5;  #>= 2 -> 3/5; all three are ln(5/3)   -> ln(5/3)
    #   x = -10: F_left = 1/5, F_right = 1; O_left = ln 5, O_right = O_auto = 0 -> ln 5
    #   x = 2 (a tie): #<= 3 -> 4/5;  #>= 2 -> 3/5; O_auto = O_right    -> ln(5/3)
    # Hand case 2: two columns, [0, 1, 2, 3] (skew 0: right tail) and [0, 9, 9, 9] (skew < 0:
    # left tail).
    #   x = (10, -1): column 1 F_left = 1, F_right = 1/5; column 2 #<= 0 -> F_left = 1/5,
    #                 #>= 4 -> F_right = 1. O_left = ln 5, O_right = ln 5,
    #                 O_auto = ln 5 (col 1 right) + ln 5 (col 2 left)          -> 2 ln 5
    #   x = (1.5, 9): column 1 3/5 and 3/5; column 2 #<= 4 -> F_left = 1, #>= 3 -> F_right = 4/5.
    #                 O_left = ln(5/3), O_right = ln(5/3) + ln(5/4), O_auto = ln(5/3) + 0
    #                                                                       -> ln(25/12)
    cases = [
        (np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([[10.0], [1.5], [-10.0], [2.0]]),
         np.log([5.0, 5.0 / 3.0, 5.0, 5.0 / 3.0])),
        (np.array([[0.0, 0.0], [1.0, 9.0], [2.0, 9.0], [3.0, 9.0]]),
         np.array([[10.0, -1.0], [1.5, 9.0]]), np.array([2.0 * np.log(5.0), np.log(25.0 / 12.0)])),
    ]
    for name, fn in (("ecod", ecod_scores), ("copod", copod_scores)):
        good = all(np.max(np.abs(fn(ref, x) - want)) <= 1e-12 for ref, x, want in cases)
        check(f"{name} hand cases (ln 5, ln 5/3, ln 5, ln 5/3; 2 ln 5, ln 25/12)", good)

    # An obvious outlier ranks first (strictly) for every detector. Codes: 2-D Gaussian
    # reference (200) and batch (50 normals + (6, 6)). Pixels: 16 pixels near a 3-D subspace,
    # the outlier off it. (6, 6), not (6, -6): ECOD and COPOD add one-sided tails, so a point in
    # opposite tails of two dimensions counts in one only when both skews pick the same side
    # (with this seed (6, -6) scores ln 201 = 5.30 and ranks below normals at up to 7.83).
    # That is the method, not a bug.
    rng = np.random.default_rng(21)
    ref = rng.standard_normal((200, 2))
    bat = np.vstack([rng.standard_normal((50, 2)), [[6.0, 6.0]]])
    load = rng.standard_normal((3, 16)) * 0.1
    rpix = np.clip(0.5 + rng.standard_normal((200, 3)) @ load + 0.005 * rng.standard_normal((200, 16)), 0, 1)
    bpix = np.clip(0.5 + rng.standard_normal((50, 3)) @ load + 0.005 * rng.standard_normal((50, 16)), 0, 1)
    bpix = np.vstack([bpix, rng.uniform(0, 1, (1, 16))])
    for name, fn, r, b in ([(n, f, ref, bat) for n, f in CODE_DETECTORS] +
                           [(n, f, rpix, bpix) for n, f in PIXEL_DETECTORS]):
        s = np.asarray(fn(r, b, 0), np.float64)
        order = np.argsort(-s, kind="stable")
        check(f"{name} ranks the obvious outlier first", order[0] == len(b) - 1 and s[order[0]] > s[order[1]])
    return ok


# ---------------------------------------------------------------- main

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ref-codes", help="(n_ref, D) .npy: latent codes of the normal reference pictures")
    p.add_argument("--batch-codes", help="(n, D) .npy: latent codes of the batch to score")
    p.add_argument("--truth", help="n lines of 0 or 1 (1 = true outlier), batch order")
    p.add_argument("--ref-pixels", help="(n_ref, P) .npy: reference pictures in [0, 1] (pixel PCA)")
    p.add_argument("--batch-pixels", help="(n, P) .npy: batch pictures in [0, 1] (pixel PCA)")
    p.add_argument("--seed", type=int, default=0, help="IsolationForest's and EllipticEnvelope's seed")
    p.add_argument("--out", help="append JSON lines to this file (default: stdout)")
    p.add_argument("--case", help="the case name in each line (default: the batch codes' path)")
    p.add_argument("--selftest", action="store_true", help="check ECOD, COPOD and every detector; exit")
    a = p.parse_args(argv)
    if a.selftest:
        return 0 if selftest() else 1
    missing = [o for o, v in (("--ref-codes", a.ref_codes), ("--batch-codes", a.batch_codes),
                              ("--truth", a.truth)) if v is None]
    if missing:
        p.error("missing " + ", ".join(missing))
    try:
        ref, bat, truth, pix = load_inputs(a)
    except InputError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    case = a.case if a.case is not None else a.batch_codes
    if truth.min() == truth.max():
        print(f"{PROG}: {case}: the truth has only {'outliers' if truth[0] else 'normals'}; "
              "AUROC, AUPRC and recall are null", file=sys.stderr)
    jobs = [(n, f, ref, bat) for n, f in CODE_DETECTORS]
    if pix is not None:
        jobs += [(n, f, pix[0], pix[1]) for n, f in PIXEL_DETECTORS]
    try:
        out = open(a.out, "a") if a.out else sys.stdout
    except OSError as e:
        print(f"{PROG}: error: {a.out}: cannot open for appending: {e}", file=sys.stderr)
        return 2
    try:
        for name, fn, r, b in jobs:
            rec = run_detector(name, fn, r, b, truth, a.seed, case)
            out.write(json.dumps(rec) + "\n")
            out.flush()
            if a.out:
                print(f"{PROG}: {case}: {name} AUROC {rec['auroc']} in {rec['seconds']} s", file=sys.stderr)
    finally:
        if a.out:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
