"""bench/outliers/report.py - the tables of bench/outliers/run.sh.

  report.py ours OUTLIERS_JSON CASE SECONDS   one JSON line per score of a `hephaestus outliers
                                              --score combined` run: combined and each member
                                              (from its tail -ln p, a monotone map of its score)
  report.py table RESULTS.jsonl               markdown tables: AUROC per case and detector (mean
                                              over the case's batches), AUPRC and recall at 1 %
                                              FPR per protocol, seconds per batch, calibration

Metrics: AUROC and AUPRC (average precision) from scikit-learn; recall at 1 % FPR = the share
of true outliers whose score is above the 0.99 quantile of the true normals' scores.
"""
import json
import sys
from collections import OrderedDict, defaultdict

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def metrics(score, truth):
    score, truth = np.asarray(score, float), np.asarray(truth, int)
    thr = np.quantile(score[truth == 0], 0.99)
    return {"auroc": roc_auc_score(truth, score), "auprc": average_precision_score(truth, score),
            "recall_at_1pct_fpr": float(np.mean(score[truth == 1] > thr))}


def ours(path, case, seconds):
    run = json.load(open(path))
    rows = run["ranked"]
    truth = [r["truth"] for r in rows]
    n, nout = len(rows), int(sum(truth))
    common = {"case": case, "n_ref": run.get("fit_pictures", 0) + run.get("calibration_pictures", 0),
              "n": n, "n_outliers": nout, "D": run["latent_dims"]}
    out = [dict(common, detector="combined", seconds=float(seconds), **metrics([r["score"] for r in rows], truth))]
    for m in run["members"]:
        out.append(dict(common, detector=m, seconds=None,
                        **metrics([r["members_neg_log_p"][m] for r in rows], truth)))
    for o in out:
        print(json.dumps(o))


def table(path):
    res = [json.loads(line) for line in open(path) if line.strip()]
    calib = [r for r in res if r["case"].startswith("calib/")]
    fits = [r for r in res if r["case"].startswith("fit/")]
    res = [r for r in res if not r["case"].startswith(("calib/", "fit/"))]
    dets = list(OrderedDict.fromkeys(r["detector"] for r in res))
    by = defaultdict(list)
    for r in res:
        by[(r["case"], r["detector"])].append(r)
    cases = list(OrderedDict.fromkeys(r["case"] for r in res))
    short = {"mahalanobis": "maha", "IsolationForest": "IForest", "LocalOutlierFactor": "LOF",
             "OneClassSVM": "OCSVM", "EllipticEnvelope": "EllEnv"}
    head = [short.get(d, d) for d in dets]
    print("AUROC, mean over each case's batches (best in bold):\n")
    print("| case | batches | " + " | ".join(head) + " |")
    print("|---|---|" + "---|" * len(dets))
    groups = defaultdict(lambda: defaultdict(list))
    for c in cases:
        vals = [np.mean([r["auroc"] for r in by[(c, d)]]) if by[(c, d)] else np.nan for d in dets]
        best = np.nanmax(vals)
        cells = [("**%.3f**" if v == best else "%.3f") % v if v == v else "–" for v in vals]
        nb = max(len(by[(c, d)]) for d in dets)
        print(f"| {c} | {nb} | " + " | ".join(cells) + " |")
        for d in dets:
            for r in by[(c, d)]:
                groups[c.split("/")[0]][d].append(r)
    print("\nPer protocol, mean over all its batches: AUROC / AUPRC / recall at 1 % FPR; seconds per batch:\n")
    print("| protocol | " + " | ".join(head) + " |")
    print("|---|" + "---|" * len(dets))
    for g, per in groups.items():
        cells = []
        for d in dets:
            rs = per.get(d, [])
            cells.append("%.3f / %.3f / %.2f" % tuple(np.mean([r[k] for r in rs]) for k in
                                                     ("auroc", "auprc", "recall_at_1pct_fpr")) if rs else "–")
        print(f"| {g} | " + " | ".join(cells) + " |")
        secs = [np.mean([r["seconds"] for r in per.get(d, []) if r.get("seconds") is not None] or [np.nan]) for d in dets]
        print(f"| {g}: seconds | " + " | ".join("%.2f" % s if s == s else "(in combined)" for s in secs) + " |")
    if fits:
        print("\nFitting and calibrating combined once per reference set (then saved with --save-scorer), seconds:\n")
        per = defaultdict(list)
        for r in fits:
            per[r["case"][4:].split("/")[0]].append(r["seconds"])
        for g, v in per.items():
            print(f"- {g}: {np.mean(v):.1f} s per reference set ({len(v)} sets)")
    if calib:
        print("\nCalibration (combined, reference mode): requested vs measured false-positive rate on fresh normals:\n")
        print("| set | requested | flagged | measured | relative error |")
        print("|---|---|---|---|---|")
        for r in calib:
            m = r["flagged"] / r["n"]
            print(f"| {r['case'][6:]} | {r['fpr_requested']} | {r['flagged']} of {r['n']} | {m:.4f} | "
                  f"{(m - r['fpr_requested']) / r['fpr_requested']:+.0%} |")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "ours":
        ours(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 3 and sys.argv[1] == "table":
        table(sys.argv[2])
    else:
        sys.exit(__doc__)
