#!/usr/bin/python3
"""Reference values for tests/test_metrics.c, computed independently with numpy only.

Writes tests/fixtures/metrics_mig.txt, metrics_ssim.txt and metrics_auroc.txt: random inputs
and the values the C library must reproduce. The formulas are re-implemented here from their
definitions (shared REFERENCE.md A.3, A.4), not taken from another project:
  - MIG, disentanglement_lib's estimator: numpy.digitize(x, numpy.histogram(x, bins)[1][:-1])
    per latent dimension, plug-in mutual information in nats arranged as sklearn's
    mutual_info_score does it, empirical label entropy, mean normalised gap (factors with zero
    entropy skipped);
  - Pearson correlation of each latent with each factor index;
  - SSIM with an 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, L 1, population
    statistics, mean over the valid windows and over channels;
  - AUROC as the Mann-Whitney statistic with average ranks.
Inputs are written as short decimals (or u8 pixel values k/255) and parsed back here before
the reference is computed, so C and numpy see the same float32 numbers.

Usage: /usr/bin/python3.11 tools/make_metric_fixtures.py [output_dir]   (default tests/fixtures)
"""
import os
import sys

import numpy as np

SEED = 20260101


# ---------------------------------------------------------------------------------------------
# references

def histogram_discretize(x, bins):
    """bin indices 1..bins: digitize against the first `bins` equal-width histogram edges"""
    edges = np.histogram(x, bins)[1]
    return np.digitize(x, edges[:-1])


def mutual_info(a, b):
    """plug-in MI in nats between two label vectors (sklearn mutual_info_score's arrangement)"""
    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    if len(ua) == 1 or len(ub) == 1:
        return 0.0
    table = np.zeros((len(ua), len(ub)), dtype=np.int64)
    np.add.at(table, (ia, ib), 1)
    nzx, nzy = np.nonzero(table)
    nz = table[nzx, nzy].astype(np.float64)
    total = nz.sum()
    pi = table.sum(axis=1)
    pj = table.sum(axis=0)
    p = nz / total
    outer = pi.take(nzx).astype(np.int64) * pj.take(nzy).astype(np.int64)
    log_outer = -np.log(outer) + np.log(pi.sum()) + np.log(pj.sum())
    mi = p * (np.log(nz) - np.log(total)) + p * log_outer
    return max(float(mi.sum()), 0.0)


def entropy(a):
    _, counts = np.unique(a, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def mig_discrete(mu, factors, bins):
    n, D = mu.shape
    K = factors.shape[1]
    disc = np.stack([histogram_discretize(mu[:, j], bins) for j in range(D)], axis=1)
    mi = np.array([[mutual_info(factors[:, k], disc[:, j]) for k in range(K)] for j in range(D)])
    H = np.array([entropy(factors[:, k]) for k in range(K)])
    per = np.full(K, np.nan)
    for k in range(K):
        if H[k] > 0:
            col = np.sort(mi[:, k])[::-1]
            second = col[1] if D > 1 else 0.0
            per[k] = (col[0] - second) / H[k]
    used = per[~np.isnan(per)]
    return mi, per, (float(used.mean()) if used.size else float('nan'))


def correlation(mu, factors):
    D, K = mu.shape[1], factors.shape[1]
    out = np.zeros((D, K))
    for j in range(D):
        for k in range(K):
            a = mu[:, j] - mu[:, j].mean()
            b = factors[:, k] - factors[:, k].mean()
            den = np.sqrt((a * a).sum() * (b * b).sum())
            out[j, k] = (a * b).sum() / den if den > 0 else 0.0
    return out


def ssim(a, b):
    """a, b: (c, h, w) float64"""
    t = np.arange(11) - 5.0
    g = np.exp(-t * t / (2 * 1.5 * 1.5))
    win = np.outer(g, g)
    win /= win.sum()
    C1, C2 = 0.01 ** 2, 0.03 ** 2
    view = np.lib.stride_tricks.sliding_window_view
    scores = []
    for x, y in zip(a, b):
        def filt(z):
            return np.einsum('ijkl,kl->ij', view(z, (11, 11)), win)
        mx, my = filt(x), filt(y)
        vx = filt(x * x) - mx * mx
        vy = filt(y * y) - my * my
        vxy = filt(x * y) - mx * my
        s = ((2 * mx * my + C1) * (2 * vxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2))
        scores.append(s.mean())
    return float(np.mean(scores))


def auroc(scores, pos):
    order = np.argsort(scores, kind='mergesort')
    s = scores[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        ranks[order[i:j]] = (i + 1 + j) / 2.0  # average of ranks i+1 .. j
        i = j
    P = int(pos.sum())
    N = len(s) - P
    return float((ranks[pos].sum() - P * (P + 1) / 2.0) / (P * N))


# ---------------------------------------------------------------------------------------------
# writing

def dec(values, digits):
    """short decimal strings, and the float32 numbers they denote (parsed back as C does)"""
    strs = ['%.*f' % (digits, v) for v in np.asarray(values, dtype=np.float64).ravel()]
    f32 = np.array([float(s) for s in strs], dtype=np.float64).astype(np.float32)
    return strs, f32.reshape(np.shape(values))


def lines(tag, items, per_line=12):
    items = list(items)
    out = []
    for i in range(0, max(len(items), 1), per_line):
        out.append(' '.join([tag] + [str(v) for v in items[i:i + per_line]]) if i == 0 else
                   ' '.join(str(v) for v in items[i:i + per_line]))
    return out


def g17(v):
    return 'nan' if np.isnan(v) else '%.17g' % v


def mig_case(name, rng, n, n_values, bins, make_latents, digits=4, constant=()):
    K = len(n_values)
    factors = np.stack([rng.integers(0, v, size=n) for v in n_values], axis=1).astype(np.int64)
    for k in constant:  # a factor with a single observed value: zero entropy, skipped
        factors[:, k] = 1
    raw = make_latents(rng, factors)
    strs, mu32 = dec(raw, digits)
    mu = mu32.astype(np.float64)
    mi, per, score = mig_discrete(mu, factors, bins)
    corr = correlation(mu, factors.astype(np.float64))
    D = mu.shape[1]
    out = ['case %s %d %d %d %d' % (name, n, D, K, bins)]
    out += lines('n_values', n_values)
    out += lines('mu', strs, D * 2)
    out += lines('factors', factors.ravel(), K * 8)
    out += lines('mi', [g17(v) for v in mi.ravel()], 4)
    out += lines('per_factor', [g17(v) for v in per], 4)
    out += ['mig %s' % g17(score)]
    out += lines('corr', [g17(v) for v in corr.ravel()], 4)
    out += ['end']
    return out


def write_mig(path, rng):
    out = ['# MIG (disentanglement_lib estimator) and latent-factor correlation references',
           '# made by tools/make_metric_fixtures.py (numpy %s, seed %d)' % (np.__version__, SEED),
           '# case name n D K bins / n_values / mu (n*D) / factors (n*K) / mi (D*K, nats) /',
           '# per_factor (K, nan = skipped) / mig / corr (D*K) / end']

    def mixed(rng, f):
        n = f.shape[0]
        return np.stack([f[:, 0] + rng.normal(0, 0.3, n),
                         0.5 * f[:, 1] + 0.2 * f[:, 0] + rng.normal(0, 0.4, n),
                         rng.normal(0, 1, n),
                         f[:, 2] + rng.normal(0, 1.0, n),
                         -f[:, 1] + rng.normal(0, 0.1, n)], axis=1)

    def constant_parts(rng, f):
        n = f.shape[0]
        return np.stack([f[:, 0] * 0.7 + rng.normal(0, 0.2, n),
                         rng.normal(0, 1, n),
                         np.full(n, 0.25)], axis=1)

    def on_edges(rng, f):
        # integer and 0.1-step latents put many values exactly on bin edges
        n = f.shape[0]
        return np.stack([f[:, 0].astype(np.float64), 0.1 * f[:, 1],
                         np.round(rng.normal(0, 1, n), 1)], axis=1)

    out += mig_case('mixed', rng, 400, [4, 6, 3], 20, mixed)
    out += mig_case('constant', rng, 150, [5, 2], 10, constant_parts, constant=(1,))
    out += mig_case('edges', rng, 200, [5, 7], 20, on_edges, digits=1)
    out += mig_case('onebin', rng, 60, [3, 4, 2], 1, mixed)
    return out


def write_ssim(path, rng):
    out = ['# SSIM references (Gaussian 11x11 s1.5, K1 0.01, K2 0.03, L 1, valid, channel mean)',
           '# made by tools/make_metric_fixtures.py (numpy %s, seed %d)' % (np.__version__, SEED),
           '# case name c h w / a (u8, value k/255) / b (u8) / ssim / end',
           '# offset name c h w delta / a (u8) / ssim of (a, a + delta) in float32 / end']

    def u8(x):
        return np.clip(np.round(x * 255), 0, 255).astype(np.int64)

    def f32(k):
        return (k.astype(np.float32) / np.float32(255)).astype(np.float64)

    def case(name, a, b):
        c, h, w = a.shape
        o = ['case %s %d %d %d' % (name, c, h, w)]
        o += lines('a', a.ravel(), w)
        o += lines('b', b.ravel(), w)
        o += ['ssim %s' % g17(ssim(f32(a), f32(b))), 'end']
        return o

    a = u8(rng.random((1, 28, 28)))
    b = u8(np.clip(f32(a) + rng.normal(0, 0.1, a.shape), 0, 1))
    out += case('noise28', a, b)
    yy, xx = np.mgrid[0:16, 0:20]
    smooth = np.stack([0.5 + 0.4 * np.sin(xx / 3.0 + ch) * np.cos(yy / 4.0) for ch in range(3)])
    a = u8(smooth)
    b = u8(np.clip(0.8 * smooth + 0.1 + rng.normal(0, 0.03, smooth.shape), 0, 1))
    out += case('smooth3c', a, b)
    a = u8(rng.random((1, 11, 11)))
    b = u8(rng.random((1, 11, 11)))
    out += case('single11', a, b)
    a = u8(rng.random((2, 12, 30)))
    b = u8(np.clip(f32(a) ** 2, 0, 1))
    out += case('square2c', a, b)
    # constant offset: b = a + delta computed in float32 on both sides
    a = u8(smooth[:1])
    delta = 0.1
    fa = a.astype(np.float32) / np.float32(255)
    fb = fa + np.float32(delta)
    out += ['offset shift %d %d %d %s' % (a.shape[0], a.shape[1], a.shape[2], repr(delta))]
    out += lines('a', a.ravel(), a.shape[2])
    out += ['ssim %s' % g17(ssim(fa.astype(np.float64), fb.astype(np.float64))), 'end']
    return out


def write_auroc(path, rng):
    out = ['# AUROC references (Mann-Whitney with average ranks: ties count one half)',
           '# made by tools/make_metric_fixtures.py (numpy %s, seed %d)' % (np.__version__, SEED),
           '# case name n / scores / labels (1 = positive) / auroc / end']

    def case(name, scores, pos, digits):
        strs, s32 = dec(scores, digits)
        o = ['case %s %d' % (name, len(strs))]
        o += lines('scores', strs, 12)
        o += lines('labels', pos.astype(np.int64), 30)
        o += ['auroc %s' % g17(auroc(s32.astype(np.float64), pos)), 'end']
        return o

    pos = rng.random(200) < 0.3
    out += case('ties', np.round(rng.normal(0, 1, 200) + pos * 0.8, 1), pos, 1)
    pos = rng.random(57) < 0.5
    out += case('continuous', rng.normal(0, 1, 57) + pos * 0.5, pos, 4)
    pos = np.zeros(31, dtype=bool)
    pos[:3] = True
    out += case('few_pos', rng.integers(0, 4, 31) + pos * 1.0, pos, 0)
    return out


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join('tests', 'fixtures')
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(SEED)
    for name, fn in (('metrics_mig.txt', write_mig), ('metrics_ssim.txt', write_ssim),
                     ('metrics_auroc.txt', write_auroc)):
        path = os.path.join(outdir, name)
        text = '\n'.join(fn(path, rng)) + '\n'
        with open(path, 'w') as f:
            f.write(text)
        print('wrote %s (%d bytes)' % (path, len(text)))


if __name__ == '__main__':
    main()
