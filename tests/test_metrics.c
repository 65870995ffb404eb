/* test_metrics.c - the metrics of hephaestus.h: MIG under both estimators, latent-factor
   correlation, SSIM and AUROC (the heatmap picture: test_plot.c).

   Known answers worked out by hand (in the comments of each test), and reference values that
   tools/make_metric_fixtures.py computed independently with numpy (tests/fixtures/metrics_*.txt,
   read from FIXTURE_DIR). Harness and usage: tests/test_harness.h. */
#include "test_harness.h"

/* |a - b| <= rel * max(|a|, |b|) + abs_tol; NaN matches only NaN */
static int t_near(double a, double b, double rel, double abs_tol) {
    double m;
    if (a != a || b != b) return a != a && b != b;
    m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= rel * m + abs_tol;
}

/* ---- fixture reader: whitespace-separated tokens, '#' starts a comment line ---------------- */
typedef struct {
    FILE *f;
    char tok[128];
    int line;
} t_fix;

static int fix_open(t_fix *x, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", t_fixdir, name);
    x->f = fopen(path, "r");
    x->line = 1;
    if (!x->f) return t_failf(__LINE__, "cannot open %s (run from the repo root or pass -f)", path);
    return 1;
}
/* next token into x->tok; 0 at end of file */
static int fix_next(t_fix *x) {
    int ch, n = 0;
    for (;;) {
        ch = fgetc(x->f);
        if (ch == '#') {
            while (ch != EOF && ch != '\n') ch = fgetc(x->f);
        }
        if (ch == EOF) return 0;
        if (ch == '\n') x->line++;
        if (ch != ' ' && ch != '\n' && ch != '\t' && ch != '\r') break;
    }
    while (ch != EOF && ch != ' ' && ch != '\n' && ch != '\t' && ch != '\r' && n < 127) {
        x->tok[n++] = (char)ch;
        ch = fgetc(x->f);
    }
    if (ch == '\n') x->line++;
    x->tok[n] = 0;
    return 1;
}
static int fix_expect(t_fix *x, const char *tag) {
    if (!fix_next(x) || strcmp(x->tok, tag))
        return t_failf(__LINE__, "fixture line %d: expected '%s', got '%s'", x->line, tag, x->tok);
    return 1;
}
static int fix_num(t_fix *x, double *v) {
    char *end;
    if (!fix_next(x)) return t_failf(__LINE__, "fixture: unexpected end");
    *v = strtod(x->tok, &end);
    if (*end) return t_failf(__LINE__, "fixture line %d: bad number '%s'", x->line, x->tok);
    return 1;
}
/* n numbers after a tag; floats are parsed as double then rounded, as the generator does */
static int fix_doubles(t_fix *x, const char *tag, double *v, size_t n) {
    size_t i;
    REQUIRE(fix_expect(x, tag));
    for (i = 0; i < n; i++) REQUIRE(fix_num(x, &v[i]));
    return 1;
}
static int fix_floats(t_fix *x, const char *tag, float *v, size_t n) {
    size_t i;
    double d = 0.0;
    REQUIRE(fix_expect(x, tag));
    for (i = 0; i < n; i++) {
        REQUIRE(fix_num(x, &d));
        v[i] = (float)d;
    }
    return 1;
}
/* u8 pixel values k, stored as the float32 k / 255 */
static int fix_pixels(t_fix *x, const char *tag, float *v, size_t n) {
    size_t i;
    double d = 0.0;
    REQUIRE(fix_expect(x, tag));
    for (i = 0; i < n; i++) {
        REQUIRE(fix_num(x, &d));
        v[i] = (float)d / 255.0f;
    }
    return 1;
}

/* =============================================================================================
   MIG, discrete estimator                                                                     */

/* n = 4, factor v = (0,1,0,1) (H = log 2); z0 = (0,1,0,1) copies it (bins 1 and 20, I = log 2);
   z1 = (0,0,0,1) (bins 1,1,1,20): the table {(0,a):2, (1,a):1, (1,b):1} gives
   I = 1/2 log(4/3) + 1/4 log(2/3) + 1/4 log 2 = 1.5 log 2 - 0.75 log 3, so
   MIG = (log 2 - I1) / log 2 = 0.75 log2(3) - 0.5 = 0.688722... */
static int test_mig_discrete_hand(void) {
    const float mu[8] = {0, 0, 1, 0, 0, 0, 1, 1}, mu1[4] = {0, 1, 0, 1};
    const int32_t f[4] = {0, 1, 0, 1};
    const uint32_t nv[1] = {2};
    double mig, per[1], mi[2], want = 0.75 * log(3.0) / log(2.0) - 0.5;
    CHECK(heph_mig_discrete(mu, 4, 2, f, 1, nv, 20, &mig, per, mi) == HEPH_OK, "status");
    CHECK(t_near(mi[0], log(2.0), 1e-12, 0), "I0 %.17g", mi[0]);
    CHECK(t_near(mi[1], 1.5 * log(2.0) - 0.75 * log(3.0), 1e-12, 0), "I1 %.17g", mi[1]);
    CHECK(t_near(mig, want, 1e-12, 0) && t_near(per[0], want, 1e-12, 0), "MIG %.17g want %.17g",
          mig, want);
    /* D == 1: the second largest is 0, so the gap is I0 / H = 1 */
    CHECK(heph_mig_discrete(mu1, 4, 1, f, 1, nv, 20, &mig, NULL, NULL) == HEPH_OK, "status D=1");
    CHECK(t_near(mig, 1.0, 1e-12, 0), "D=1 MIG %.17g", mig);
    return 1;
}

/* a balanced factor with 10 values (100 each), z1 = the factor exactly, other dims constant:
   the copy has I = H (every value has its own bin), the rest I = 0, so MIG = 1; two copies of
   the same factor give MIG = 0; permuting the dimensions changes nothing (bit for bit) */
static int test_mig_discrete_copy(void) {
    size_t n = 1000, i;
    int D = 4, j;
    float *mu = TALLOC(float, n * 4), *mp = TALLOC(float, n * 4);
    int32_t *f = TALLOC(int32_t, n * 2);
    const uint32_t nv[2] = {10, 3};
    const int perm[4] = {2, 0, 3, 1};
    double mig, mig2, per[2], mi[8], mi2[8];
    for (i = 0; i < n; i++) {
        f[i * 2] = (int32_t)(i % 10);
        f[i * 2 + 1] = (int32_t)((i / 10) % 3);
        mu[i * 4 + 0] = 0.5f;
        mu[i * 4 + 1] = (float)f[i * 2];
        mu[i * 4 + 2] = -1.0f;
        mu[i * 4 + 3] = (float)f[i * 2 + 1] * 0.25f; /* copies factor 1 */
    }
    CHECK(heph_mig_discrete(mu, n, D, f, 2, nv, 20, &mig, per, mi) == HEPH_OK, "status");
    CHECK(t_near(per[0], 1.0, 1e-12, 0) && t_near(per[1], 1.0, 1e-12, 0),
          "per factor %.17g %.17g", per[0], per[1]);
    /* a constant dimension has I = 0 up to rounding (x87 leaves 2e-16) */
    CHECK(fabs(mi[0]) < 1e-12 && fabs(mi[4]) < 1e-12 && t_near(mi[2], log(10.0), 1e-12, 0), "MI column 0");
    /* permutation of the dimensions: same MIG, MI rows permuted */
    for (i = 0; i < n; i++)
        for (j = 0; j < D; j++) mp[i * 4 + (size_t)j] = mu[i * 4 + (size_t)perm[j]];
    CHECK(heph_mig_discrete(mp, n, D, f, 2, nv, 20, &mig2, NULL, mi2) == HEPH_OK, "status");
    CHECK(mig2 == mig, "permuted MIG %.17g vs %.17g", mig2, mig);
    for (j = 0; j < D; j++)
        CHECK(mi2[j * 2] == mi[perm[j] * 2] && mi2[j * 2 + 1] == mi[perm[j] * 2 + 1], "row %d", j);
    /* dimension 0 becomes a second copy of factor 0: its gap vanishes */
    for (i = 0; i < n; i++) mu[i * 4 + 0] = (float)f[i * 2] * -3.0f + 1.0f;
    CHECK(heph_mig_discrete(mu, n, D, f, 2, nv, 20, &mig, per, NULL) == HEPH_OK, "status");
    CHECK(fabs(per[0]) < 1e-12 && t_near(per[1], 1.0, 1e-12, 0), "per %.17g %.17g", per[0],
          per[1]);
    CHECK(t_near(mig, 0.5, 1e-12, 0), "MIG %.17g", mig);
    return 1;
}

/* a factor with one observed value has H = 0: skipped (NaN), the mean is over the others */
static int test_mig_discrete_skip(void) {
    const float mu[6] = {0, 1, 1, 1, 0, 0}; /* z0 copies factor 0, z1 = (1,1,0) */
    const int32_t f[6] = {0, 2, 1, 2, 0, 2};
    const uint32_t nv[2] = {2, 3};
    double mig, per[2];
    CHECK(heph_mig_discrete(mu, 3, 2, f, 2, nv, 20, &mig, per, NULL) == HEPH_OK, "status");
    CHECK(per[1] != per[1], "constant factor not skipped: %g", per[1]);
    CHECK(per[0] > 0.0 && per[0] <= 1.0 && mig == per[0], "MIG %g per0 %g", mig, per[0]);
    /* all factors constant: MIG is NaN, status OK */
    {
        const int32_t g[3] = {1, 1, 1};
        CHECK(heph_mig_discrete(mu, 3, 2, g, 1, nv + 1, 20, &mig, NULL, NULL) == HEPH_OK, "st");
        CHECK(mig != mig, "MIG %g, want NaN", mig);
    }
    return 1;
}

static int test_mig_discrete_errors(void) {
    float mu[4] = {0, 1, 2, 3};
    int32_t f[2] = {0, 1};
    uint32_t nv[1] = {2};
    double mig;
    CHECK(heph_mig_discrete(mu, 2, 2, f, 1, nv, 0, &mig, NULL, NULL) == HEPH_E_ARG, "bins 0");
    CHECK(heph_mig_discrete(mu, 0, 2, f, 1, nv, 20, &mig, NULL, NULL) == HEPH_E_ARG, "n 0");
    CHECK(heph_mig_discrete(NULL, 2, 2, f, 1, nv, 20, &mig, NULL, NULL) == HEPH_E_ARG, "NULL");
    f[1] = 2;
    CHECK(heph_mig_discrete(mu, 2, 2, f, 1, nv, 20, &mig, NULL, NULL) == HEPH_E_ARG, "label");
    f[1] = -1;
    CHECK(heph_mig_discrete(mu, 2, 2, f, 1, nv, 20, &mig, NULL, NULL) == HEPH_E_ARG, "neg");
    f[1] = 1;
    mu[3] = (float)NAN;
    CHECK(heph_mig_discrete(mu, 2, 2, f, 1, nv, 20, &mig, NULL, NULL) == HEPH_E_ARG, "NaN mu");
    mu[3] = 3.0f;
    nv[0] = 0;
    CHECK(heph_mig_discrete(mu, 2, 2, f, 1, nv, 20, &mig, NULL, NULL) == HEPH_E_ARG, "nv 0");
    nv[0] = 2;
    /* every allocation failure is reported and leaks nothing */
    {
        long k;
        for (k = 0; k < 12; k++) {
            int rc;
            t_fail_after = k;
            rc = heph_mig_discrete(mu, 2, 2, f, 1, nv, 20, &mig, NULL, NULL);
            t_fail_after = -1;
            CHECK(rc == HEPH_E_NOMEM || rc == HEPH_OK, "alloc %ld: rc %d", k, rc);
            CHECK(t_live == 0, "alloc %ld: leak", k);
        }
    }
    return 1;
}

/* read one MIG case of metrics_mig.txt and check both the discrete MIG and the correlation */
static int check_mig_case(t_fix *x, int *ncase) {
    char name[128];
    double v[5] = {0, 0, 0, 0, 0}, *mi, *mi_c, *per, *per_c, mig = 0.0, mig_c, *corr;
    float *mu, *corr_c;
    int32_t *f;
    uint32_t nv[16];
    size_t n, i;
    int D, K, bins, k;
    for (i = 0; i < 5; i++) {
        if (i == 0) {
            REQUIRE(fix_next(x));
            snprintf(name, sizeof name, "%s", x->tok);
        } else {
            REQUIRE(fix_num(x, &v[i]));
        }
    }
    n = (size_t)v[1]; D = (int)v[2]; K = (int)v[3]; bins = (int)v[4];
    CHECK(K <= 16 && n > 0 && D > 0, "%s: sizes", name);
    mu = TALLOC(float, n * (size_t)D);
    f = TALLOC(int32_t, n * (size_t)K);
    mi = TALLOC(double, (size_t)D * (size_t)K);
    mi_c = TALLOC(double, (size_t)D * (size_t)K);
    corr = TALLOC(double, (size_t)D * (size_t)K);
    corr_c = TALLOC(float, (size_t)D * (size_t)K);
    per = TALLOC(double, (size_t)K);
    per_c = TALLOC(double, (size_t)K);
    {
        double *t = TALLOC(double, (size_t)K > n * (size_t)K ? (size_t)K : n * (size_t)K);
        REQUIRE(fix_doubles(x, "n_values", t, (size_t)K));
        for (k = 0; k < K; k++) nv[k] = (uint32_t)t[k];
        REQUIRE(fix_floats(x, "mu", mu, n * (size_t)D));
        REQUIRE(fix_doubles(x, "factors", t, n * (size_t)K));
        for (i = 0; i < n * (size_t)K; i++) f[i] = (int32_t)t[i];
    }
    REQUIRE(fix_doubles(x, "mi", mi, (size_t)D * (size_t)K));
    REQUIRE(fix_doubles(x, "per_factor", per, (size_t)K));
    REQUIRE(fix_doubles(x, "mig", &mig, 1));
    REQUIRE(fix_doubles(x, "corr", corr, (size_t)D * (size_t)K));
    REQUIRE(fix_expect(x, "end"));
    CHECK(heph_mig_discrete(mu, n, D, f, K, nv, bins, &mig_c, per_c, mi_c) == HEPH_OK,
          "%s: status", name);
    for (i = 0; i < (size_t)D * (size_t)K; i++)
        CHECK(t_near(mi_c[i], mi[i], 1e-6, 1e-12), "%s: MI[%zu] %.17g, numpy %.17g", name, i,
              mi_c[i], mi[i]);
    for (k = 0; k < K; k++)
        CHECK(t_near(per_c[k], per[k], 1e-6, 1e-12), "%s: gap[%d] %.17g, numpy %.17g", name, k,
              per_c[k], per[k]);
    CHECK(t_near(mig_c, mig, 1e-6, 1e-12), "%s: MIG %.17g, numpy %.17g", name, mig_c, mig);
    heph_correlation_matrix(mu, n, D, f, K, corr_c);
    for (i = 0; i < (size_t)D * (size_t)K; i++)
        CHECK(t_near((double)corr_c[i], corr[i], 1e-6, 1e-7), "%s: corr[%zu] %.9g, numpy %.17g",
              name, i, (double)corr_c[i], corr[i]);
    if (t_verbose) printf("  %s: MIG %.12f (numpy %.12f)\n", name, mig_c, mig);
    (*ncase)++;
    return 1;
}

static int test_mig_discrete_fixture(void) {
    t_fix x;
    int ncase = 0, ok = 1;
    REQUIRE(fix_open(&x, "metrics_mig.txt"));
    while (ok && fix_next(&x)) {
        if (strcmp(x.tok, "case")) { ok = t_failf(__LINE__, "fixture: '%s'", x.tok); break; }
        ok = check_mig_case(&x, &ncase);
    }
    fclose(x.f);
    REQUIRE(ok);
    CHECK(ncase >= 3, "only %d cases", ncase);
    return 1;
}

/* =============================================================================================
   MIG, continuous (beta-TCVAE) estimator                                                      */

/* V values, n/V encodings each (balanced), z0 = the factor value with a tiny variance, z1 and
   z2 the same distribution for every encoding. Worked out: the density of z0 at a sample of
   value v sums to n_v * (the same term), so H(z0) - H(z0|v) = mean log(n / n_v) = log V, while
   z1 and z2 give H(z|v) = H(z): I = 0. So MIG = 1; with z1 another copy of the factor, 0. */
static void t_copy_latents(float *mu, float *lv, int32_t *f, size_t n, int V, int copies) {
    size_t i;
    for (i = 0; i < n; i++) {
        f[i] = (int32_t)(i % (size_t)V);
        mu[i * 3 + 0] = (float)f[i];
        lv[i * 3 + 0] = -20.0f;
        mu[i * 3 + 1] = copies > 1 ? (float)f[i] * 2.0f - 3.0f : 0.0f;
        lv[i * 3 + 1] = copies > 1 ? -18.0f : 0.0f;
        mu[i * 3 + 2] = 0.5f;
        lv[i * 3 + 2] = -1.0f;
    }
}

static int test_mig_continuous_copy(void) {
    size_t n = 400;
    float *mu = TALLOC(float, n * 3), *lv = TALLOC(float, n * 3);
    float *mp = TALLOC(float, n * 3), *lp = TALLOC(float, n * 3);
    int32_t *f = TALLOC(int32_t, n);
    const uint32_t nv[1] = {8};
    const int perm[3] = {2, 0, 1};
    double mig, per[1], mi[3];
    size_t i;
    int j;
    t_copy_latents(mu, lv, f, n, 8, 1);
    CHECK(heph_mig_continuous(mu, lv, n, 3, f, 1, nv, NULL, 10000, 7, &mig, per, mi) == HEPH_OK,
          "status");
    CHECK(t_near(mi[0], log(8.0), 1e-5, 0), "I0 %.9g want log 8", mi[0]);
    CHECK(fabs(mi[1]) < 1e-5 && fabs(mi[2]) < 1e-5, "I1 %.3g I2 %.3g", mi[1], mi[2]);
    CHECK(t_near(mig, 1.0, 1e-5, 0), "MIG %.9g", mig);
    /* permuted dimensions: the same MIG (the z noise lands elsewhere, the answer is exact) */
    for (i = 0; i < n; i++)
        for (j = 0; j < 3; j++) {
            mp[i * 3 + (size_t)j] = mu[i * 3 + (size_t)perm[j]];
            lp[i * 3 + (size_t)j] = lv[i * 3 + (size_t)perm[j]];
        }
    CHECK(heph_mig_continuous(mp, lp, n, 3, f, 1, nv, NULL, 10000, 7, &mig, per, mi) == HEPH_OK,
          "status");
    CHECK(t_near(mig, 1.0, 1e-5, 0) && t_near(mi[1], log(8.0), 1e-5, 0), "permuted MIG %.9g",
          mig);
    /* two copies of the factor: no gap */
    t_copy_latents(mu, lv, f, n, 8, 2);
    CHECK(heph_mig_continuous(mu, lv, n, 3, f, 1, nv, NULL, 10000, 7, &mig, per, mi) == HEPH_OK,
          "status");
    CHECK(fabs(mig) < 1e-5 && t_near(mi[1], log(8.0), 1e-5, 0), "two copies: MIG %.9g", mig);
    return 1;
}

/* a naive double-precision transcription of the documented estimator, with the same
   randomness (z drawn in order (n, j), then a partial Fisher-Yates per oversized set) */
static void t_naive_entropy(const float *mu, const float *lv, const float *z, const size_t *set,
                            size_t g, size_t ns, heph_rng *rng, int D, double *H) {
    size_t *pos = (size_t *)malloc(g * sizeof *pos), S = g < ns ? g : ns, i, m;
    int j;
    for (i = 0; i < g; i++) pos[i] = i;
    if (S < g)
        for (i = 0; i < S; i++) {
            size_t r = i + (size_t)heph_rng_below(rng, (uint32_t)(g - i)), t = pos[i];
            pos[i] = pos[r];
            pos[r] = t;
        }
    for (j = 0; j < D; j++) {
        double acc = 0.0;
        for (i = 0; i < S; i++) {
            double zz = (double)z[set[pos[i]] * (size_t)D + (size_t)j], mx = -1e300, s = 0.0;
            double *l = (double *)malloc(g * sizeof *l);
            for (m = 0; m < g; m++) {
                size_t e = set[m] * (size_t)D + (size_t)j;
                double var = exp((double)lv[e]), d = zz - (double)mu[e];
                l[m] = -0.5 * (log(2.0 * 3.14159265358979323846 * var) + d * d / var);
                if (l[m] > mx) mx = l[m];
            }
            for (m = 0; m < g; m++) s += exp(l[m] - mx);
            acc += log((double)g) - (mx + log(s));
            free(l);
        }
        H[j] = acc / (double)S;
    }
    free(pos);
}

static int t_naive_mig(const float *mu, const float *lv, size_t n, int D, const int32_t *f, int K,
                       const uint32_t *nv, size_t ns, uint64_t seed, double *mi) {
    heph_rng rng;
    float *z = (float *)malloc(n * (size_t)D * sizeof *z);
    size_t *set = (size_t *)malloc(n * sizeof *set), i, g;
    double Hm[16], Hc[16], Hg[16];
    int j, k;
    uint32_t v;
    heph_rng_seed(&rng, seed);
    for (i = 0; i < n * (size_t)D; i++) z[i] = mu[i] + expf(0.5f * lv[i]) * heph_rng_normal(&rng);
    for (i = 0; i < n; i++) set[i] = i;
    t_naive_entropy(mu, lv, z, set, n, ns, &rng, D, Hm);
    for (k = 0; k < K; k++) {
        int nobs = 0;
        for (j = 0; j < D; j++) Hc[j] = 0.0;
        for (v = 0; v < nv[k]; v++) {
            for (g = 0, i = 0; i < n; i++)
                if (f[i * (size_t)K + (size_t)k] == (int32_t)v) set[g++] = i;
            if (!g) continue;
            t_naive_entropy(mu, lv, z, set, g, ns, &rng, D, Hg);
            for (j = 0; j < D; j++) Hc[j] += Hg[j];
            nobs++;
        }
        for (j = 0; j < D; j++) {
            double d = Hm[j] - Hc[j] / nobs;
            mi[j * K + k] = d > 0.0 ? d : 0.0;
        }
    }
    free(z);
    free(set);
    return 1;
}

/* random encodings partly driven by two factors; against the naive transcription, with all
   samples (n_samples >= n) and with random subsets (n_samples < set sizes) */
static int test_mig_continuous_naive(void) {
    size_t n = 300, i, ns_list[2] = {100000, 23};
    int D = 4, K = 2, j, t, k;
    float *mu = TALLOC(float, n * 4), *lv = TALLOC(float, n * 4);
    int32_t *f = TALLOC(int32_t, n * 2);
    const uint32_t nv[2] = {5, 4};
    double mi[8], mi_ref[8], per[2], mig;
    heph_rng r;
    heph_rng_seed(&r, 99);
    for (i = 0; i < n; i++) {
        f[i * 2] = (int32_t)heph_rng_below(&r, 5);
        f[i * 2 + 1] = (int32_t)heph_rng_below(&r, 3); /* value 3 never occurs */
        mu[i * 4 + 0] = 0.8f * (float)f[i * 2] + 0.3f * heph_rng_normal(&r);
        mu[i * 4 + 1] = heph_rng_normal(&r);
        mu[i * 4 + 2] = (float)f[i * 2 + 1] - 0.5f * (float)f[i * 2];
        mu[i * 4 + 3] = 0.1f * heph_rng_normal(&r) + 0.2f * (float)f[i * 2 + 1];
        for (j = 0; j < D; j++) lv[i * 4 + (size_t)j] = -2.0f + heph_rng_uniform(&r) * 2.0f;
    }
    for (t = 0; t < 2; t++) {
        CHECK(heph_mig_continuous(mu, lv, n, D, f, K, nv, NULL, ns_list[t], 5, &mig, per, mi) ==
                  HEPH_OK, "status");
        t_naive_mig(mu, lv, n, D, f, K, nv, ns_list[t], 5, mi_ref);
        for (i = 0; i < 8; i++)
            CHECK(t_near(mi[i], mi_ref[i], 1e-4, 2e-5), "n_samples %zu: I[%zu] %.9g naive %.9g",
                  ns_list[t], i, mi[i], mi_ref[i]);
        {
            double want = 0.0;
            for (k = 0; k < K; k++) {
                double c[4], a, b;
                for (j = 0; j < D; j++) c[j] = mi_ref[j * K + k];
                heph__top2(c, D, &a, &b);
                want += (a - b) / log((double)nv[k]) / K;
            }
            CHECK(t_near(mig, want, 1e-4, 1e-5), "MIG %.9g naive %.9g", mig, want);
        }
        if (t_verbose) printf("  n_samples %zu: MIG %.6f\n", ns_list[t], mig);
    }
    /* use_factor: factor 0 skipped -> NaN column, MIG = factor 1's gap */
    {
        const int use[2] = {0, 1};
        CHECK(heph_mig_continuous(mu, lv, n, D, f, K, nv, use, 23, 5, &mig, per, mi) == HEPH_OK,
              "status");
        CHECK(per[0] != per[0] && mi[0] != mi[0] && t_near(mig, per[1], 0, 0), "use_factor");
    }
    return 1;
}

/* same bits for 1 and 4 threads; a different seed moves the subset estimate a little */
static int test_mig_continuous_determinism(void) {
    size_t n = 500, i;
    float *mu = TALLOC(float, n * 3), *lv = TALLOC(float, n * 3);
    int32_t *f = TALLOC(int32_t, n);
    const uint32_t nv[1] = {5};
    double a, b, c;
    heph_rng r;
    heph_rng_seed(&r, 3);
    for (i = 0; i < n; i++) {
        f[i] = (int32_t)(i % 5);
        mu[i * 3 + 0] = (float)f[i] + 0.2f * heph_rng_normal(&r);
        mu[i * 3 + 1] = heph_rng_normal(&r);
        mu[i * 3 + 2] = heph_rng_normal(&r);
        lv[i * 3 + 0] = lv[i * 3 + 1] = lv[i * 3 + 2] = -1.0f;
    }
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    CHECK(heph_mig_continuous(mu, lv, n, 3, f, 1, nv, NULL, 50, 11, &a, NULL, NULL) == HEPH_OK,
          "status");
#ifdef _OPENMP
    omp_set_num_threads(4);
#endif
    CHECK(heph_mig_continuous(mu, lv, n, 3, f, 1, nv, NULL, 50, 11, &b, NULL, NULL) == HEPH_OK,
          "status");
    CHECK(heph_mig_continuous(mu, lv, n, 3, f, 1, nv, NULL, 50, 12, &c, NULL, NULL) == HEPH_OK,
          "status");
    CHECK(memcmp(&a, &b, sizeof a) == 0, "threads: %.17g vs %.17g", a, b);
    CHECK(a != c && fabs(a - c) < 0.2, "seeds: %.17g vs %.17g", a, c);
    return 1;
}

static int test_mig_continuous_errors(void) {
    float mu[4] = {0, 1, 2, 3}, lv[4] = {0, 0, 0, 0};
    int32_t f[2] = {0, 1};
    uint32_t nv[1] = {2};
    double mig;
    long k;
    CHECK(heph_mig_continuous(mu, NULL, 2, 2, f, 1, nv, NULL, 10, 1, &mig, NULL, NULL) ==
              HEPH_E_ARG, "NULL logvar");
    CHECK(heph_mig_continuous(mu, lv, 2, 2, f, 1, nv, NULL, 0, 1, &mig, NULL, NULL) == HEPH_E_ARG,
          "n_samples 0");
    lv[1] = (float)NAN;
    CHECK(heph_mig_continuous(mu, lv, 2, 2, f, 1, nv, NULL, 10, 1, &mig, NULL, NULL) == HEPH_E_ARG,
          "NaN logvar");
    lv[1] = 0.0f;
    f[0] = 5;
    CHECK(heph_mig_continuous(mu, lv, 2, 2, f, 1, nv, NULL, 10, 1, &mig, NULL, NULL) == HEPH_E_ARG,
          "label");
    f[0] = 0;
    for (k = 0; k < 16; k++) {
        int rc;
        t_fail_after = k;
        rc = heph_mig_continuous(mu, lv, 2, 2, f, 1, nv, NULL, 10, 1, &mig, NULL, NULL);
        t_fail_after = -1;
        CHECK(rc == HEPH_E_NOMEM || rc == HEPH_OK, "alloc %ld: rc %d", k, rc);
        CHECK(t_live == 0, "alloc %ld: leak", k);
    }
    return 1;
}

/* the float exp of the continuous estimator: relative error against exp in double over
   [-87, 0], and the ends: exp(0) = 1, anything below -87 (even -inf) gives exp(-87) */
static int test_exp_neg(void) {
    double worst = 0.0, wx = 0.0;
    long i;
    for (i = 0; i <= 870000; i++) {
        volatile float xv = -(float)i * 1e-4f; /* x87 + clang: round x to float for exp() too */
        float x = xv;
        double e = exp((double)x), r = fabs((double)heph__exp_neg(x) - e) / e;
        if (r > worst) { worst = r; wx = (double)x; }
    }
    CHECK(worst < 3e-7, "relative error %.3g at x = %g", worst, wx);
    CHECK(heph__exp_neg(0.0f) == 1.0f && heph__exp_neg(-0.0f) == 1.0f, "exp(0)");
    CHECK(heph__exp_neg(-(float)INFINITY) == heph__exp_neg(-87.0f) &&
              heph__exp_neg(-1e30f) == heph__exp_neg(-87.0f) && heph__exp_neg(-87.0f) > 0.0f,
          "exp(-inf) %g", (double)heph__exp_neg(-(float)INFINITY));
    return 1;
}

/* =============================================================================================
   correlation                                                                                 */

/* z0 = f0 (r = 1), z1 = 3 - 2 f0 (r = -1), z2 constant (0), z3 = (1,3,2,4) against
   f0 = (1,2,3,4): deviations (-1.5,-.5,.5,1.5) and (-1.5,.5,-.5,1.5), r = 4 / 5 = 0.8;
   factor 1 is constant: column 0 */
static int test_correlation(void) {
    const float mu[16] = {1, 1, 7, 1, 2, -1, 7, 3, 3, -3, 7, 2, 4, -5, 7, 4};
    const int32_t f[8] = {1, 6, 2, 6, 3, 6, 4, 6};
    const float want[8] = {1, 0, -1, 0, 0, 0, 0.8f, 0};
    float out[8];
    int i;
    heph_correlation_matrix(mu, 4, 4, f, 2, out);
    for (i = 0; i < 8; i++)
        CHECK(fabsf(out[i] - want[i]) < 1e-6f, "out[%d] = %.9g, want %.9g", i, (double)out[i],
              (double)want[i]);
    heph_correlation_matrix(mu, 1, 4, f, 2, out); /* n < 2: zeros */
    for (i = 0; i < 8; i++) CHECK(out[i] == 0.0f, "n=1 out[%d] = %g", i, (double)out[i]);
    return 1;
}

/* =============================================================================================
   SSIM                                                                                        */

static int test_ssim_basic(void) {
    int c = 2, h = 20, w = 17, i, n = c * h * w;
    float *a = TALLOC(float, n), *b = TALLOC(float, n);
    double s, s2, want, m0 = 0.5, m1 = 0.6, C1 = 1e-4;
    heph_rng r;
    heph_rng_seed(&r, 1);
    for (i = 0; i < n; i++) {
        a[i] = heph_rng_uniform(&r);
        b[i] = 0.7f * a[i] + 0.3f * heph_rng_uniform(&r);
    }
    s = heph_ssim(a, a, c, h, w);
    CHECK(fabs(s - 1.0) < 1e-12, "identical: %.17g", s);
    s = heph_ssim(a, b, c, h, w);
    s2 = heph_ssim(b, a, c, h, w);
    CHECK(s < 0.99 && s > 0.0 && fabs(s - s2) < 1e-14, "symmetry: %.17g vs %.17g", s, s2);
    /* flat pictures 0.5 and 0.6: sigmas are 0, SSIM = (2 m0 m1 + C1) / (m0^2 + m1^2 + C1) */
    for (i = 0; i < n; i++) { a[i] = 0.5f; b[i] = 0.6f; }
    want = (2.0 * m0 * (double)b[0] + C1) / (m0 * m0 + (double)b[0] * (double)b[0] + C1); /* b[0]: 0.6 in float (x87: 0.6f alone is 0.6) */
    (void)m1;
    s = heph_ssim(a, b, c, h, w);
    CHECK(fabs(s - want) < 1e-12, "flat: %.17g want %.17g", s, want);
    /* smaller than the window: NaN */
    s = heph_ssim(a, b, 1, 10, 20);
    CHECK(s != s, "10x20: %g", s);
    s = heph_ssim(a, b, 1, 20, 10);
    CHECK(s != s, "20x10: %g", s);
    s = heph_ssim(a, b, 0, 20, 20);
    CHECK(s != s, "c=0: %g", s);
    /* wider than one pass of columns (the 64-column chunks join seamlessly): a picture with a
       vertical stripe; the SSIM of the whole equals the mean of its halves' window scores */
    {
        int W = 150, H = 12, x, y;
        float *p = TALLOC(float, W * H), *q = TALLOC(float, W * H);
        double whole;
        for (y = 0; y < H; y++)
            for (x = 0; x < W; x++) {
                p[y * W + x] = (float)((x * 7 + y * 3) % 11) / 10.0f;
                q[y * W + x] = (float)((x * 5 + y * 2) % 13) / 12.0f;
            }
        whole = heph_ssim(p, q, 1, H, W);
        {
            /* per window, via 11-wide crops: crop x0..x0+10 has exactly one window */
            double acc = 0.0;
            float *pc = TALLOC(float, 11 * H), *qc = TALLOC(float, 11 * H);
            int x0;
            for (x0 = 0; x0 + 11 <= W; x0++) {
                for (y = 0; y < H; y++)
                    for (x = 0; x < 11; x++) {
                        pc[y * 11 + x] = p[y * W + x0 + x];
                        qc[y * 11 + x] = q[y * W + x0 + x];
                    }
                acc += heph_ssim(pc, qc, 1, H, 11);
            }
            acc /= (double)(W - 10);
            CHECK(fabs(acc - whole) < 1e-12, "chunks: %.17g vs %.17g", whole, acc);
        }
    }
    return 1;
}

static int test_ssim_fixture(void) {
    t_fix x;
    int ncase = 0;
    while (1) {
        char kind[128], name[128];
        double d[4] = {0, 0, 0, 0}, want = 0.0, got, delta = 0.0;
        float *a, *b;
        size_t n, i;
        if (ncase == 0) REQUIRE(fix_open(&x, "metrics_ssim.txt"));
        if (!fix_next(&x)) break;
        snprintf(kind, sizeof kind, "%s", x.tok);
        CHECK(!strcmp(kind, "case") || !strcmp(kind, "offset"), "fixture: '%s'", kind);
        REQUIRE(fix_next(&x));
        snprintf(name, sizeof name, "%s", x.tok);
        for (i = 0; i < 3; i++) REQUIRE(fix_num(&x, &d[i]));
        if (!strcmp(kind, "offset")) REQUIRE(fix_num(&x, &delta));
        n = (size_t)d[0] * (size_t)d[1] * (size_t)d[2];
        a = TALLOC(float, n);
        b = TALLOC(float, n);
        REQUIRE(fix_pixels(&x, "a", a, n));
        if (!strcmp(kind, "case")) REQUIRE(fix_pixels(&x, "b", b, n));
        else
            for (i = 0; i < n; i++) b[i] = a[i] + (float)delta; /* known change: + delta */
        REQUIRE(fix_doubles(&x, "ssim", &want, 1));
        REQUIRE(fix_expect(&x, "end"));
        got = heph_ssim(a, b, (int)d[0], (int)d[1], (int)d[2]);
        CHECK(t_near(got, want, 1e-5, 1e-9), "%s: %.17g, numpy %.17g", name, got, want);
        if (t_verbose) printf("  %s: %.12f (numpy %.12f)\n", name, got, want);
        ncase++;
    }
    fclose(x.f);
    CHECK(ncase >= 4, "only %d cases", ncase);
    return 1;
}

/* =============================================================================================
   AUROC                                                                                       */

static int t_auc(const float *s, const int *p, size_t n, double *auc) {
    int rc = heph_auroc(s, p, n, auc);
    if (rc != HEPH_OK) return t_failf(__LINE__, "heph_auroc returned %d", rc);
    return 1;
}

static int test_auroc_basic(void) {
    const float s[6] = {0.1f, 0.4f, 0.35f, 0.8f, 0.9f, 0.2f};
    const int up[6] = {0, 1, 0, 1, 1, 0}, down[6] = {1, 0, 1, 0, 0, 1};
    const float tie[6] = {3, 3, 3, 3, 3, 3};
    /* positives {0.9, 0.5}, negatives {0.5, 0.1}: pairs 1 + 1 + 1/2 + 1 = 3.5 of 4 */
    const float hs[4] = {0.5f, 0.9f, 0.1f, 0.5f};
    const int hp[4] = {0, 1, 0, 1};
    const int none[6] = {0, 0, 0, 0, 0, 0};
    double auc;
    float bad[2] = {0.0f, (float)NAN};
    int bp[2] = {0, 1};
    REQUIRE(t_auc(s, up, 6, &auc));
    CHECK(auc == 1.0, "perfect: %.17g", auc);
    REQUIRE(t_auc(s, down, 6, &auc));
    CHECK(auc == 0.0, "reversed: %.17g", auc);
    REQUIRE(t_auc(tie, up, 6, &auc));
    CHECK(auc == 0.5, "ties: %.17g", auc);
    REQUIRE(t_auc(hs, hp, 4, &auc));
    CHECK(auc == 0.875, "hand example: %.17g", auc);
    REQUIRE(t_auc(s, none, 6, &auc));
    CHECK(auc != auc, "one class: %g", auc);
    REQUIRE(t_auc(s, up, 0, &auc));
    CHECK(auc != auc, "empty: %g", auc);
    CHECK(heph_auroc(bad, bp, 2, &auc) == HEPH_E_ARG, "NaN score accepted");
    CHECK(heph_auroc(s, up, 6, NULL) == HEPH_E_ARG, "NULL out");
    t_fail_after = 0;
    CHECK(heph_auroc(s, up, 6, &auc) == HEPH_E_NOMEM, "no memory");
    t_fail_after = 1;
    CHECK(heph_auroc(s, up, 6, &auc) == HEPH_E_NOMEM && t_live == 0, "no memory 2");
    t_fail_after = -1;
    return 1;
}

/* against the O(n^2) pair count, with many ties and +-0, +-inf */
static int test_auroc_pairs(void) {
    size_t n = 1500, i, j;
    float *s = TALLOC(float, n);
    int *p = TALLOC(int, n);
    double auc, pairs = 0.0, np = 0.0, nn = 0.0;
    heph_rng r;
    heph_rng_seed(&r, 17);
    for (i = 0; i < n; i++) {
        p[i] = heph_rng_uniform(&r) < 0.2f;
        s[i] = (float)(int)(heph_rng_normal(&r) * 3.0f + (p[i] ? 2.0f : 0.0f)) * 0.5f;
    }
    s[3] = -0.0f; s[4] = 0.0f; s[5] = (float)INFINITY; s[6] = -(float)INFINITY;
    for (i = 0; i < n; i++) {
        if (!p[i]) { nn += 1.0; continue; }
        np += 1.0;
        for (j = 0; j < n; j++)
            if (!p[j]) pairs += s[i] > s[j] ? 1.0 : (s[i] == s[j] ? 0.5 : 0.0);
    }
    REQUIRE(t_auc(s, p, n, &auc));
    CHECK(fabs(auc - pairs / (np * nn)) < 1e-12, "%.17g vs pairs %.17g", auc, pairs / (np * nn));
    return 1;
}

static int test_auroc_fixture(void) {
    t_fix x;
    int ncase = 0, ok = 1;
    REQUIRE(fix_open(&x, "metrics_auroc.txt"));
    while (ok && fix_next(&x)) {
        char name[128];
        double nd = 0.0, want = 0.0, got, *lab;
        float *s;
        int *p;
        size_t n, i;
        if (strcmp(x.tok, "case")) { ok = t_failf(__LINE__, "fixture: '%s'", x.tok); break; }
        if (!(ok = fix_next(&x))) break;
        snprintf(name, sizeof name, "%s", x.tok);
        if (!(ok = fix_num(&x, &nd))) break;
        n = (size_t)nd;
        s = TALLOC(float, n);
        p = TALLOC(int, n);
        lab = TALLOC(double, n);
        ok = fix_floats(&x, "scores", s, n) && fix_doubles(&x, "labels", lab, n) &&
             fix_doubles(&x, "auroc", &want, 1) && fix_expect(&x, "end");
        if (!ok) break;
        for (i = 0; i < n; i++) p[i] = lab[i] != 0.0;
        if (!(ok = t_auc(s, p, n, &got))) break;
        if (!t_near(got, want, 1e-12, 0)) {
            ok = t_failf(__LINE__, "%s: %.17g, numpy %.17g", name, got, want);
            break;
        }
        ncase++;
    }
    fclose(x.f);
    REQUIRE(ok);
    CHECK(ncase >= 3, "only %d cases", ncase);
    return 1;
}

/* =============================================================================================
   main                                                                                        */

static const t_test t_cases[] = {
    {"mig_discrete_hand", test_mig_discrete_hand},
    {"mig_discrete_copy", test_mig_discrete_copy},
    {"mig_discrete_skip", test_mig_discrete_skip},
    {"mig_discrete_errors", test_mig_discrete_errors},
    {"mig_discrete_fixture", test_mig_discrete_fixture},
    {"mig_continuous_copy", test_mig_continuous_copy},
    {"mig_continuous_naive", test_mig_continuous_naive},
    {"mig_continuous_determinism", test_mig_continuous_determinism},
    {"mig_continuous_errors", test_mig_continuous_errors},
    {"exp_neg", test_exp_neg},
    {"correlation", test_correlation},
    {"ssim_basic", test_ssim_basic},
    {"ssim_fixture", test_ssim_fixture},
    {"auroc_basic", test_auroc_basic},
    {"auroc_pairs", test_auroc_pairs},
    {"auroc_fixture", test_auroc_fixture},
};

T_MAIN(t_cases)
