/* test_analysis.c - context-based outlier detection: Mahalanobis fits (empirical, Ledoit-Wolf,
   ridge, FastMCD), scores, explanations, thresholds, ranking, counterfactual helpers and the
   saliency gradient. Fixtures mcd_sklearn.txt and gmm_sklearn.txt from the fixture folder.
   The tests keep the names they had before the move to the harness; where several tests look
   at one computation, a helper makes it and each test checks its part.
   Harness and usage: tests/test_harness.h (-v prints the details of the scikit-learn cases). */
#include "test_harness.h"

static char msg[400]; /* a helper's description of what it computed, for the tests' failures */

/* 40 points in 3-D (numpy default_rng(5), correlated); reference values below from numpy:
   Ledoit-Wolf delta 0.120973849788 and D^2 of (1.5, -2, 0.7) = 23.575398687959 */
static const float lw_data[40][3] = {
    {-0.80193144f, -1.7253247f, -0.52148849f},
    {0.42044523f, 1.3462692f, 0.39566717f},
    {-0.55264729f, -1.0611041f, 0.13893878f},
    {1.634783f, 1.0901603f, -0.53483373f},
    {-0.95826519f, 1.1208864f, 0.58144695f},
    {-1.7321348f, -0.9497636f, -0.60672182f},
    {-0.62928808f, -0.80264986f, -0.50305843f},
    {0.55337846f, 0.21360326f, -0.31364143f},
    {0.40963784f, 1.0346742f, -0.57255507f},
    {-0.25673014f, -1.1091124f, -0.38080183f},
    {-1.2894187f, -0.62401897f, -0.012735752f},
    {-0.30433774f, -1.2000954f, -0.51247311f},
    {-1.0913289f, -1.9008732f, -0.29416975f},
    {-1.1093498f, 0.61562115f, 0.70938265f},
    {-1.9978167f, -0.72677946f, -0.46921965f},
    {0.03305722f, 0.060160603f, -0.9811253f},
    {-0.23342252f, -0.37250128f, 0.40426326f},
    {-1.1814468f, 0.1473185f, -0.3280738f},
    {-0.3312909f, -1.0061187f, 0.4722237f},
    {0.56821311f, 2.7158391f, 1.0504779f},
    {0.84499276f, 1.2631792f, -0.051100906f},
    {-0.070028447f, 1.3153746f, 0.20684128f},
    {0.18879953f, 0.073176302f, 0.2982412f},
    {-0.36490875f, -0.33481625f, 0.075482145f},
    {0.10302314f, -0.81346118f, 0.1883997f},
    {-1.2984812f, -1.8503562f, -1.0015806f},
    {0.96697229f, 0.12287777f, -0.59370071f},
    {-1.1360214f, -0.14687955f, -0.401081f},
    {-1.2720782f, -0.022046043f, -0.41415593f},
    {-0.32243815f, -0.16798063f, -0.22469614f},
    {-0.054093961f, 1.3117265f, 0.14318497f},
    {-1.2593071f, -2.4663992f, -0.6534068f},
    {-0.35225701f, 0.088962398f, -0.15259501f},
    {-0.47863847f, -0.96063501f, -0.47627461f},
    {0.1602267f, -0.30023938f, -0.063884892f},
    {1.9011872f, 1.4297118f, -0.64430946f},
    {1.7335296f, 1.2145752f, -0.36636353f},
    {0.90704894f, 0.47118008f, -0.30231258f},
    {-0.63350892f, -1.3101863f, -0.27397004f},
    {1.0688167f, 0.20935625f, 0.11289643f},
};

/* AUROC by brute force over all (positive, negative) pairs, ties 1/2: an independent check */
static double auroc_pairs(const double *s, const int *pos, int n) {
    double num = 0.0, den = 0.0;
    int i, j;
    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++)
            if (pos[i] && !pos[j]) { num += s[i] > s[j] ? 1.0 : (s[i] == s[j] ? 0.5 : 0.0); den += 1.0; }
    return num / den;
}

static int test_chi2(void) {
    double a = heph_chi2_quantile(0.975, 12), b = heph_chi2_quantile(0.5, 1), c = heph_chi2_quantile(0.95, 2);
    double d = heph_chi2_cdf(2.0, 2);
    /* scipy.stats.chi2.ppf: 23.33666, 0.4549364, 5.991465; cdf(2, 2) = 1 - e^-1 */
    CHECK(fabs(a - 23.33666) < 1e-4 && fabs(b - 0.4549364) < 1e-6 &&
          fabs(c - 5.991465) < 1e-5 && fabs(d - (1.0 - exp(-1.0))) < 1e-12, "%.6f %.7f %.6f %.9f", a, b, c, d);
    return 1;
}

/* 2-D: S = [[4, 2], [2, 3]] from four points; D^2 by hand */
static int empirical_and_explain(double *d2, double zs[2], double c[2], double *want) {
    static const float z[4][2] = {{2.0f, 1.0f}, {-2.0f, -1.0f}, {1.0f, 2.0f}, {-1.0f, -2.0f}};
    /* mean 0; S = 1/4 sum z z^T = [[2.5, 2], [2, 2.5]]; S^-1 = [[2.5, -2], [-2, 2.5]] / 2.25 */
    heph_maha f;
    float p[2] = {1.0f, -1.0f};
    int rc = heph_maha_fit(&f, &z[0][0], 4, 2, HEPH_COV_EMPIRICAL, 0.0, 1);
    *want = (2.5 + 2.0 + 2.0 + 2.5) / 2.25; /* p^T S^-1 p */
    CHECK(rc == HEPH_OK, "%s", f.err);
    heph_maha_score(&f, p, 1, d2);
    heph_maha_explain(&f, p, zs, c);
    heph_maha_free(&f);
    snprintf(msg, sizeof msg, "D^2 %.9f want %.9f; contributions %.6f + %.6f; z %.6f %.6f", *d2, *want, c[0], c[1], zs[0], zs[1]);
    return 1;
}
/* heph_maha_score's tiles (part D: y = L^-1 (z - m) as a product, 32 latents side by side)
   against the plain substitution heph__d2, one latent at a time, on correlated latents: every
   D and n around the tile and block edges, and D past the tile's limit (the plain path) */
static int test_maha_tiles_match_substitution(void) {
    static const int dims[] = {1, 2, 3, 12, 33, 64, 255, 256, 257};
    static const size_t ns[] = {1, 31, 32, 33, 255, 257, 2049};
    size_t di, ni, i;
    for (di = 0; di < sizeof dims / sizeof *dims; di++) {
        int D = dims[di], a, b;
        size_t nf = (size_t)D + (D > 64 ? 20 : 3 * (size_t)D + 50); /* more points than dimensions */
        float *A = TALLOC(float, (size_t)D * (size_t)D), *zf = TALLOC(float, nf * (size_t)D);
        float *z = TALLOC(float, 2049 * (size_t)D);
        double *d2 = TALLOC(double, 2049), *work = TALLOC(double, (size_t)D);
        heph_maha f;
        for (a = 0; a < D; a++)
            for (b = 0; b < D; b++) A[a * D + b] = b < a ? 0.3f * (float)tnormal() : (b == a ? 1.0f : 0.0f);
        for (i = 0; i < nf + (D > 64 ? 33 : 2049); i++) { /* z = 0.5 + A e, e ~ N(0, I) */
            float *zi = i < nf ? zf + i * (size_t)D : z + (i - nf) * (size_t)D;
            for (b = 0; b < D; b++) work[b] = tnormal();
            for (a = 0; a < D; a++) {
                float s = 0.5f;
                for (b = 0; b <= a; b++) s += A[a * D + b] * (float)work[b];
                zi[a] = s;
            }
        }
        CHECK(heph_maha_fit(&f, zf, nf, D, HEPH_COV_EMPIRICAL, 0.0, 1) == HEPH_OK, "D %d: fit: %s", D, f.err);
        for (ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
            if (D > 64 && ns[ni] > 33) continue; /* the tile edges (32 codes) and the OpenMP threshold (2048) do not depend on D */
            heph_maha_score(&f, z, ns[ni], d2);
            for (i = 0; i < ns[ni]; i++) {
                double want = heph__d2(f.mean, f.chol, D, z + i * (size_t)D, work);
                CHECK(fabs(d2[i] - want) <= 1e-10 * (1.0 + want), "D %d, n %zu, latent %zu: %.17g, substitution %.17g",
                      D, ns[ni], i, d2[i], want);
            }
        }
        heph_maha_free(&f);
    }
    return 1;
}

static int test_maha_empirical_by_hand(void) {
    double d2, zs[2], c[2], want;
    REQUIRE(empirical_and_explain(&d2, zs, c, &want));
    CHECK(fabs(d2 - want) < 1e-9, "%s", msg);
    return 1;
}
static int test_contributions_sum_to_d2(void) {
    double d2, zs[2], c[2], want;
    REQUIRE(empirical_and_explain(&d2, zs, c, &want));
    CHECK(fabs(c[0] + c[1] - d2) < 1e-9, "%s", msg);
    return 1;
}
static int test_zscores_by_hand(void) {
    double d2, zs[2], c[2], want;
    REQUIRE(empirical_and_explain(&d2, zs, c, &want));
    CHECK(fabs(zs[0] - 1.0 / sqrt(2.5)) < 1e-9 && fabs(zs[1] + 1.0 / sqrt(2.5)) < 1e-9, "%s", msg);
    return 1;
}

static int test_ledoit_wolf(void) {
    heph_maha f;
    float p[3] = {1.5f, -2.0f, 0.7f};
    double d2, delta;
    int rc = heph_maha_fit(&f, &lw_data[0][0], 40, 3, HEPH_COV_LEDOIT_WOLF, 0.0, 1);
    CHECK(rc == HEPH_OK, "%s", f.err);
    heph_maha_score(&f, p, 1, &d2);
    delta = f.shrinkage;
    heph_maha_free(&f);
    CHECK(fabs(delta - 0.120973849788) < 1e-6 && fabs(d2 - 23.575398688) < 1e-4,
          "delta %.12f (numpy 0.120973849788), D^2 %.9f (numpy 23.575398688)", delta, d2);
    return 1;
}

/* 3 distinct points in 5-D */
static void singular_points(float z[3 * 5]) {
    int i;
    for (i = 0; i < 15; i++) z[i] = sinf(1.3f * (float)i * (float)i);
}
static int test_singular_covariance_is_refused(void) {
    heph_maha f;
    float z[3 * 5];
    int rc;
    singular_points(z);
    rc = heph_maha_fit(&f, z, 3, 5, HEPH_COV_EMPIRICAL, 0.0, 1);
    CHECK(rc == HEPH_E_ARG && strstr(f.err, "singular") && strstr(f.err, "Ledoit"), "%s", f.err);
    return 1;
}
static int test_ledoit_wolf_fits_fewer_points_than_dims(void) {
    heph_maha f;
    float z[3 * 5];
    int rc;
    singular_points(z);
    rc = heph_maha_fit(&f, z, 3, 5, HEPH_COV_LEDOIT_WOLF, 0.0, 1);
    CHECK(rc == HEPH_OK, "%s", f.err);
    heph_maha_free(&f);
    return 1;
}
static int test_ridge_fits_fewer_points_than_dims(void) {
    heph_maha f;
    float z[3 * 5];
    double shrinkage;
    int rc;
    singular_points(z);
    rc = heph_maha_fit(&f, z, 3, 5, HEPH_COV_RIDGE, 0.1, 1);
    CHECK(rc == HEPH_OK, "%s", f.err);
    shrinkage = f.shrinkage;
    heph_maha_free(&f);
    CHECK(fabs(shrinkage - 0.1) < 1e-12, "%s", f.err);
    return 1;
}
static int test_mcd_refuses_too_few_points(void) {
    heph_maha f;
    float z[3 * 5];
    int rc;
    singular_points(z);
    rc = heph_maha_fit(&f, z, 3, 5, HEPH_COV_MCD, 0.0, 1);
    if (rc == HEPH_OK) heph_maha_free(&f);
    CHECK(rc == HEPH_E_ARG, "%s", f.err);
    return 1;
}

/* 325 normals from a correlated Gaussian, 25 shifted outliers: MCD's support excludes them,
   and its scores separate them at least as well as the empirical fit */
enum { MCD_N = 350, MCD_D = 4, MCD_NOUT = 25 };
typedef struct {
    size_t in_support_out, in_support_norm;
    double auc_e, auc_m;
    int same; /* a second MCD fit of the same points: the same covariance */
} mcd_result;
static int mcd_run(mcd_result *res) {
    enum { N = MCD_N, D = MCD_D, NOUT = MCD_NOUT };
    static float z[N * D];
    int isout[N], i, j, rc;
    double d2e[N], d2m[N];
    heph_maha fe, fm, f2;
    heph_rng r;
    res->in_support_out = res->in_support_norm = 0;
    heph_rng_seed(&r, 8);
    for (i = 0; i < N; i++) {
        float g0 = heph_rng_normal(&r);
        isout[i] = i >= N - NOUT;
        for (j = 0; j < D; j++) z[i * D + j] = 0.8f * g0 + 0.6f * heph_rng_normal(&r) + (isout[i] && j == i % D ? 3.5f : 0.0f);
    }
    rc = heph_maha_fit(&fe, z, N, D, HEPH_COV_EMPIRICAL, 0.0, 1);
    CHECK(rc == HEPH_OK, "%s", fe.err);
    rc = heph_maha_fit(&fm, z, N, D, HEPH_COV_MCD, 0.0, 1);
    if (rc != HEPH_OK) heph_maha_free(&fe);
    CHECK(rc == HEPH_OK, "%s", fm.err);
    heph_maha_score(&fe, z, N, d2e);
    heph_maha_score(&fm, z, N, d2m);
    res->auc_e = auroc_pairs(d2e, isout, N);
    res->auc_m = auroc_pairs(d2m, isout, N);
    for (i = 0; i < N; i++) {
        if (isout[i]) res->in_support_out += fm.support[i];
        else res->in_support_norm += fm.support[i];
    }
    snprintf(msg, sizeof msg, "support: %zu/%d outliers, %zu/%d normals; AUROC empirical %.4f, MCD %.4f",
             res->in_support_out, NOUT, res->in_support_norm, N - NOUT, res->auc_e, res->auc_m);
    /* same seed, same fit */
    rc = heph_maha_fit(&f2, z, N, D, HEPH_COV_MCD, 0.0, 1);
    res->same = rc == HEPH_OK && memcmp(f2.cov, fm.cov, sizeof(double) * D * D) == 0;
    if (rc == HEPH_OK) heph_maha_free(&f2);
    heph_maha_free(&fe);
    heph_maha_free(&fm);
    return 1;
}
static int test_mcd_excludes_outliers(void) {
    mcd_result res;
    REQUIRE(mcd_run(&res));
    CHECK(res.in_support_out <= 2 && res.in_support_norm > (MCD_N - MCD_NOUT) * 9 / 10, "%s", msg);
    return 1;
}
static int test_mcd_separates_at_least_as_well(void) {
    mcd_result res;
    REQUIRE(mcd_run(&res));
    CHECK(res.auc_m >= res.auc_e - 1e-12 && res.auc_m > 0.97, "%s", msg);
    return 1;
}
static int test_mcd_deterministic(void) {
    mcd_result res;
    REQUIRE(mcd_run(&res));
    CHECK(res.same, "two fits differ");
    return 1;
}


/* scikit-learn's MinCovDet on the same points (tests/fixtures/mcd_sklearn.txt, made by
   tools/make_mcd_fixtures.py): the same variant searched differently, so the library's raw
   determinant is never larger than scikit-learn's best of 10, and where the two are equal the
   reweighted fits agree to 1e-9 (location, covariance, support)                              */
static int mcd_read(FILE *f, const char *tag, double *v, size_t n) {
    char t[32];
    size_t i;
    if (fscanf(f, "%31s", t) != 1 || strcmp(t, tag) != 0) return 0;
    for (i = 0; i < n; i++)
        if (fscanf(f, "%lf", &v[i]) != 1) return 0;
    return 1;
}
/* the cases of the file in turn; a failure names its case. The search bound (the library's raw
   determinant above scikit-learn's) fails this test too, with its own message.               */
static int mcd_sklearn_in(FILE *f) {
    char tag[32];
    int ncase = 0, n_equal = 0, n_lower = 0;
    while (fscanf(f, "%31s", tag) == 1) {
        int n, D, i, a, same = 1, ok, rc;
        double frac, ld = 0.0, *pts, *loc, *cov, *sup;
        float *z;
        heph_maha fit;
        if (tag[0] == '#') { while ((a = fgetc(f)) != EOF && a != '\n') {} continue; }
        CHECK(strcmp(tag, "case") == 0 && fscanf(f, "%d %d %lf", &n, &D, &frac) == 3 && n >= 2 && n <= 10000 && D >= 1 && D <= 16,
              "case %d: fixture is malformed", ncase);
        pts = TALLOC(double, (size_t)n * (size_t)(D + 1) + (size_t)D * (size_t)(D + 1));
        z = TALLOC(float, (size_t)n * (size_t)D);
        loc = pts + (size_t)n * (size_t)D; cov = loc + D; sup = cov + (size_t)D * (size_t)D;
        ok = mcd_read(f, "points", pts, (size_t)n * (size_t)D) && mcd_read(f, "raw_logdet", &ld, 1) &&
             mcd_read(f, "location", loc, (size_t)D) && mcd_read(f, "covariance", cov, (size_t)D * (size_t)D) &&
             mcd_read(f, "support", sup, (size_t)n) && fscanf(f, "%31s", tag) == 1 && strcmp(tag, "end") == 0;
        CHECK(ok, "case %d: fixture is malformed", ncase);
        for (i = 0; i < n * D; i++) z[i] = (float)pts[i];
        rc = heph_maha_fit(&fit, z, (size_t)n, D, HEPH_COV_MCD, frac, 1);
        CHECK(rc == HEPH_OK, "case %d (n %d, D %d): %s", ncase, n, D, fit.err);
        if (fit.raw_logdet > ld + 1e-9) {
            double got = fit.raw_logdet;
            heph_maha_free(&fit);
            CHECK(0, "case %d (n %d, D %d): raw log det %.12g above scikit-learn's %.12g", ncase, n, D, got, ld);
        } else if (fit.raw_logdet < ld - 1e-9) n_lower++;
        else {
            for (a = 0; a < D; a++) same &= fabs(fit.mean[a] - loc[a]) <= 1e-9 * (1.0 + fabs(loc[a]));
            for (a = 0; a < D * D; a++) same &= fabs(fit.cov[a] - cov[a]) <= 1e-9 * (1.0 + fabs(cov[a]));
            for (i = 0; i < n; i++) same &= fit.support[i] == (sup[i] != 0.0);
            if (!same) heph_maha_free(&fit);
            CHECK(same, "case %d (n %d, D %d): equal raw determinants, different reweighted fits", ncase, n, D);
            n_equal++;
        }
        heph_maha_free(&fit);
        ncase++;
    }
    snprintf(msg, sizeof msg, "%d cases: %d with scikit-learn's raw subset and the same fit, %d with a smaller determinant", ncase, n_equal, n_lower);
    CHECK(ncase >= 5 && n_equal >= 2, "%s", msg);
    if (t_verbose) printf("  %s\n", msg);
    return 1;
}
static int test_mcd_sklearn(void) {
    const char *path = tfixture("mcd_sklearn.txt");
    FILE *f = fopen(path, "r");
    int ok;
    CHECK(f != NULL, "cannot open %s", path);
    ok = mcd_sklearn_in(f);
    fclose(f);
    return ok;
}

/* the Gaussian mixture: scikit-learn's GaussianMixture on the same points
   (gmm_sklearn.txt in the fixture folder, from tools/make_gmm_fixtures.py): the same BIC choice, a
   log-likelihood per point no worse by more than 1e-4, and where both reach the same optimum
   (within 1e-7 per point) the same -ln p of every point to 1e-4 relative (EM stops when ln L
   per point moves less than 1e-6, scikit-learn here at 1e-8); errors named                  */
static int gmm_sklearn_in(FILE *f) {
    char tag[32];
    int ncase = 0, n_same = 0;
    while (fscanf(f, "%31s", tag) == 1) {
        int n, D, kmax, best, i, a, ok, k;
        double *pts, ll[16], bestd = 0.0, *want, *got, mine = 0.0, worst = 0.0;
        float *z;
        heph_gmm g;
        if (tag[0] == '#') { while ((a = fgetc(f)) != EOF && a != '\n') {} continue; }
        CHECK(strcmp(tag, "case") == 0 && fscanf(f, "%d %d %d", &n, &D, &kmax) == 3 && n >= 2 && n <= 10000 && D >= 1 && D <= 16 && kmax >= 1 && kmax <= 16,
              "case %d: fixture is malformed", ncase);
        pts = TALLOC(double, (size_t)n * (size_t)D + 3 * (size_t)n);
        z = TALLOC(float, (size_t)n * (size_t)D);
        want = pts + (size_t)n * (size_t)D; got = want + n;
        ok = mcd_read(f, "points", pts, (size_t)n * (size_t)D) && mcd_read(f, "loglik", ll, (size_t)kmax) &&
             mcd_read(f, "best", &bestd, 1) && mcd_read(f, "nlogp", want, (size_t)n) && fscanf(f, "%31s", tag) == 1 && strcmp(tag, "end") == 0;
        best = (int)bestd;
        CHECK(ok && best >= 1 && best <= kmax, "case %d: fixture is malformed", ncase);
        for (i = 0; i < n * D; i++) z[i] = (float)pts[i];
        CHECK(heph_gmm_fit(&g, z, (size_t)n, D, kmax, 1) == HEPH_OK, "case %d: %s", ncase, g.err);
        ok = heph_gmm_score(&g, z, (size_t)n, got) == HEPH_OK;
        k = g.k;
        if (ok) snprintf(msg, sizeof msg, "%s", "");
        else snprintf(msg, sizeof msg, "case %d: %s", ncase, g.err);
        heph_gmm_free(&g);
        CHECK(ok, "%s", msg);
        for (i = 0; i < n; i++) mine -= got[i] / n;
        for (i = 0; i < n; i++) worst = fabs(got[i] - want[i]) / (1.0 + fabs(want[i])) > worst ? fabs(got[i] - want[i]) / (1.0 + fabs(want[i])) : worst;
        snprintf(msg, sizeof msg, "case %d: %d components (scikit-learn %d), ln L per point %.9f (scikit-learn %.9f), -ln p differs by %.2g",
                 ncase, k, best, mine, ll[best - 1], worst);
        CHECK(!(k != best || mine < ll[best - 1] - 1e-4), "%s", msg);
        if (fabs(mine - ll[best - 1]) < 1e-7) {
            CHECK(worst <= 1e-4, "%s", msg); /* EM stops at 1e-6 per point */
            n_same++;
        }
        if (t_verbose) printf("  %s\n", msg);
        ncase++;
    }
    CHECK(ncase >= 3 && n_same >= 2, "%d cases, %d at scikit-learn's optimum", ncase, n_same);
    return 1;
}
static int test_gmm_matches_sklearn(void) {
    const char *path = tfixture("gmm_sklearn.txt");
    FILE *f = fopen(path, "r");
    int ok;
    CHECK(f != NULL, "cannot open %s", path);
    ok = gmm_sklearn_in(f);
    fclose(f);
    return ok;
}
/* too few codes, a NaN code: named errors */
static int test_gmm_refuses_few_and_nan(void) {
    heph_gmm g;
    float bad[8] = {0, 1, 2, 3, 4, 5, 6, 0};
    int rc1 = heph_gmm_fit(&g, bad, 2, 2, 3, 1);
    char m1[HEPH_ERRLEN];
    int rc2;
    snprintf(m1, sizeof m1, "%s", g.err);
    if (rc1 == HEPH_OK) heph_gmm_free(&g);
    bad[5] = (float)NAN;
    rc2 = heph_gmm_fit(&g, bad, 4, 2, 3, 1);
    if (rc2 == HEPH_OK) heph_gmm_free(&g);
    CHECK(rc1 == HEPH_E_ARG && strstr(m1, "need at least") && rc2 == HEPH_E_ARG && strstr(g.err, "code 2 is not finite"), "%s", g.err);
    return 1;
}

/* ranking, thresholds and code helpers, on hand cases */
static int test_rank_desc_stable(void) {
    double s[7] = {1.0, 5.0, 3.0, 5.0, 0.5, 9.0, 3.0};
    size_t ord[7];
    int ok = heph_rank_desc(s, 7, ord) == HEPH_OK;
    CHECK(ok && ord[0] == 5 && ord[1] == 1 && ord[2] == 3 && ord[3] == 2 && ord[4] == 6 && ord[5] == 0 && ord[6] == 4, "wrong order");
    return 1;
}
static int test_top_dims_by_abs_zscore(void) {
    double zs[5] = {0.1, -3.0, 2.0, -0.5, 3.0};
    int top[3];
    heph_top_dims(zs, 5, 3, top);
    CHECK(top[0] == 1 && top[1] == 4 && top[2] == 2, "wrong dims"); /* |-3| = |3|: lower index first */
    return 1;
}
static int test_dim_counts_topk_and_zmin(void) {
    double zs[5] = {0.1, -3.0, 2.0, -0.5, 3.0};
    int counts[5] = {0};
    heph_dim_counts(zs, 1, 5, 2, 2.5, counts);
    CHECK(counts[1] == 1 && counts[4] == 1 && counts[2] == 0 && counts[0] == 0, "wrong counts");
    return 1;
}
static int test_counterfactual_replaces_topk(void) {
    double zs[5] = {0.1, -3.0, 2.0, -0.5, 3.0}, nm[5] = {1, 2, 3, 4, 5};
    float z[5] = {9, 9, 9, 9, 9}, cf[5];
    heph_counterfactual(z, zs, nm, 5, 2, cf);
    CHECK(cf[1] == 2.0f && cf[4] == 5.0f && cf[0] == 9.0f && cf[2] == 9.0f, "wrong code");
    return 1;
}
static int test_lerp_endpoints_and_middle(void) {
    float a[2] = {0.0f, 10.0f}, b[2] = {4.0f, 2.0f}, l[3 * 2];
    heph_lerp_codes(a, b, 2, 3, l);
    CHECK(l[0] == 0.0f && l[1] == 10.0f && l[2] == 2.0f && l[3] == 6.0f && l[4] == 4.0f && l[5] == 2.0f, "wrong codes");
    return 1;
}
static int test_threshold_median_mad(void) {
    double s[7] = {1.0, 5.0, 3.0, 5.0, 0.5, 9.0, 3.0}, thr = 0.0, thr0;
    int ok = heph_threshold_mad(s, 7, 2.0, &thr) == HEPH_OK; /* median 3, |s - 3| = 2,2,0,2,2.5,6,0 -> MAD 2 */
    ok = ok && fabs(thr - (3.0 + 2.0 * 1.4826 * 2.0)) < 1e-9 && heph_threshold_mad(s, 0, 2.0, &thr0) == HEPH_E_ARG;
    CHECK(ok, "threshold %.6f, want %.6f", thr, 3.0 + 2.0 * 1.4826 * 2.0);
    return 1;
}

static int test_walk(void) {
    heph_maha f;
    static const float dir[3] = {1.0f, -1.0f, 0.5f}; /* static: gcc 12 -O3 took it for uninitialised */
    float out[5 * 3];
    double d2[5];
    int t, rc;
    rc = heph_maha_fit(&f, &lw_data[0][0], 40, 3, HEPH_COV_EMPIRICAL, 0.0, 1);
    CHECK(rc == HEPH_OK, "%s", f.err);
    heph_maha_walk(&f, dir, 4.0, 5, out);
    heph_maha_score(&f, out, 5, d2);
    heph_maha_free(&f);
    for (t = 0; t < 5; t++) CHECK(fabs(sqrt(d2[t]) - (double)t) <= 1e-4, "step %d at distance %.6f", t, sqrt(d2[t]));
    return 1;
}

/* d D^2 / d pixels by central differences on a small VAE */
static int test_saliency(void) {
    heph_vae_config cfg;
    heph_vae m;
    heph_maha f;
    heph_rng r;
    float batch[30 * 16], x[16], g[16], mu[30 * 3], *mup = mu + 29 * 3; /* the last row: encode overwrites it after the fit */
    double maxe = 0.0, d2p, d2m;
    int i, rc;
    heph_vae_config_default(&cfg);
    cfg.in_c = 1; cfg.in_h = 4; cfg.in_w = 4; cfg.z_dim = 3; cfg.max_batch = 30;
    strcpy(cfg.enc_spec, "dense8,tanh");
    strcpy(cfg.dec_spec, "dense8,tanh,dense16");
    rc = heph_vae_init(&m, &cfg, 2);
    CHECK(rc == HEPH_OK, "%s", m.err);
    heph_rng_seed(&r, 4);
    for (i = 0; i < 30 * 16; i++) batch[i] = heph_rng_uniform(&r);
    heph_vae_encode(&m, batch, 30, mu, NULL);
    rc = heph_maha_fit(&f, mu, 30, 3, HEPH_COV_LEDOIT_WOLF, 0.0, 1);
    if (rc != HEPH_OK) heph_vae_free(&m);
    CHECK(rc == HEPH_OK, "%s", f.err);
    memcpy(x, batch, sizeof x);
    heph_vae_saliency(&m, &f, x, g);
    for (i = 0; i < 16; i++) {
        float o = x[i];
        double num, e;
        x[i] = o + 1e-2f; heph_vae_encode(&m, x, 1, mup, NULL); heph_maha_score(&f, mup, 1, &d2p);
        x[i] = o - 1e-2f; heph_vae_encode(&m, x, 1, mup, NULL); heph_maha_score(&f, mup, 1, &d2m);
        x[i] = o;
        num = (d2p - d2m) / 2e-2;
        e = fabs(num - (double)g[i]) / fmax(0.05, fabs(num));
        if (e > maxe) maxe = e;
    }
    heph_maha_free(&f);
    heph_vae_free(&m);
    CHECK(maxe < 1e-2, "worst relative error %.3g (limit 1e-2)", maxe);
    return 1;
}

/* marginal score on a hand case: 5 values in one dimension, the score of a query computed
   here from the formulas in the header (Silverman bandwidth, leave-one-out densities, density
   tail p-value, Sidak over D = 1); *ok: each score within 1e-9 relative and h within 1e-12 */
static int marginal_hand(double got[3], int *ok) {
    const float ref[5] = {0.0f, 0.2f, 0.5f, 1.0f, 1.1f};
    const float q[3] = {0.6f, 3.0f, 0.2f};
    double xs[5], mean = 0.0, var = 0.0, sd, iqr, h, lf[5], want[3];
    heph_marginal f;
    int i, j;
    for (i = 0; i < 5; i++) { xs[i] = (double)ref[i]; mean += xs[i] / 5.0; }
    for (i = 0; i < 5; i++) var += (xs[i] - mean) * (xs[i] - mean) / 4.0;
    sd = sqrt(var);
    iqr = xs[3] - xs[1]; /* sorted: quartiles at (n-1)/4 = 1 and 3(n-1)/4 = 3 */
    h = 0.9 * (iqr / 1.34 < sd ? iqr / 1.34 : sd) * pow(5.0, -0.2);
    for (i = 0; i < 5; i++) { /* leave-one-out density of each reference value */
        double t = 0.0;
        for (j = 0; j < 5; j++) if (j != i) t += exp(-(xs[i] - xs[j]) * (xs[i] - xs[j]) / (2 * h * h));
        lf[i] = log(t / (4.0 * h * sqrt(2.0 * 3.14159265358979)));
    }
    for (i = 0; i < 3; i++) {
        double t = 0.0, l, fmin = HUGE_VAL;
        int cnt = 0;
        for (j = 0; j < 5; j++) t += exp(-((double)q[i] - xs[j]) * ((double)q[i] - xs[j]) / (2 * h * h));
        l = log(t / (5.0 * h * sqrt(2.0 * 3.14159265358979)));
        for (j = 0; j < 5; j++) { cnt += lf[j] <= l; if (lf[j] < fmin) fmin = lf[j]; }
        want[i] = cnt ? log(6.0) - log(1.0 + cnt) : log(6.0) - (l - fmin); /* D = 1: -ln P = -ln p */
    }
    CHECK(heph_marginal_fit(&f, ref, 5, 1) == HEPH_OK, "%s", f.err);
    heph_marginal_score(&f, q, 3, 0, got, NULL);
    *ok = 1;
    for (i = 0; i < 3; i++) *ok &= fabs(got[i] - want[i]) <= 1e-9 * fmax(1.0, fabs(want[i]));
    *ok &= fabs(f.h[0] - h) <= 1e-12;
    snprintf(msg, sizeof msg, "h %.6g (library %.6g); scores %.9g %.9g %.9g, by hand %.9g %.9g %.9g", h, f.h[0], got[0], got[1], got[2],
             want[0], want[1], want[2]);
    heph_marginal_free(&f);
    return 1;
}
static int test_marginal_hand_case(void) {
    double got[3];
    int ok;
    REQUIRE(marginal_hand(got, &ok));
    CHECK(ok, "%s", msg);
    return 1;
}
static int test_marginal_far_value_scores_highest(void) {
    double got[3];
    int ok;
    REQUIRE(marginal_hand(got, &ok));
    CHECK(got[1] > got[0] && got[1] > got[2], "%s", msg);
    return 1;
}

/* one odd factor among many: 8 dimensions N(0,1); outliers differ in dimension 3 only, by a
   value in an empty gap (the reference has dimension 3 in two clusters, -2 and +2). Marginal
   must rank the gap values above the normals; D^2 over all 8 dimensions does not. */
static int test_marginal_gap(void) {
    enum { N = 600, M = 40, D = 8 };
    static float ref[N * D], bat[M * D];
    double ms[M], d2[M];
    float sc[M];
    int truth[M], i, j, rc1, rc2;
    double auc_m = 0, auc_d = 0;
    heph_marginal f;
    heph_maha mf;
    heph_rng r;
    heph_rng_seed(&r, 11);
    for (i = 0; i < N; i++)
        for (j = 0; j < D; j++)
            ref[i * D + j] = j == 3 ? (i % 2 ? 2.0f : -2.0f) + 0.3f * heph_rng_normal(&r) : heph_rng_normal(&r);
    for (i = 0; i < M; i++) { /* the first 10: the gap (0 +- 0.2), the rest drawn like the reference */
        truth[i] = i < 10;
        for (j = 0; j < D; j++)
            bat[i * D + j] = j == 3 ? (truth[i] ? 0.2f * heph_rng_normal(&r) : (i % 2 ? 2.0f : -2.0f) + 0.3f * heph_rng_normal(&r))
                                    : heph_rng_normal(&r);
    }
    rc1 = heph_marginal_fit(&f, ref, N, D);
    rc2 = rc1 == HEPH_OK ? heph_maha_fit(&mf, ref, N, D, HEPH_COV_EMPIRICAL, 0, 1) : HEPH_E_ARG;
    if (rc1 == HEPH_OK && rc2 != HEPH_OK) heph_marginal_free(&f);
    CHECK(rc1 == HEPH_OK && rc2 == HEPH_OK, "fit failed");
    heph_marginal_score(&f, bat, M, 0, ms, NULL);
    heph_maha_score(&mf, bat, M, d2);
    heph_marginal_free(&f);
    heph_maha_free(&mf);
    for (i = 0; i < M; i++) sc[i] = (float)ms[i];
    heph_auroc(sc, truth, M, &auc_m);
    for (i = 0; i < M; i++) sc[i] = (float)d2[i];
    heph_auroc(sc, truth, M, &auc_d);
    CHECK(auc_m >= 0.95 && auc_m > auc_d, "AUROC marginal %.3f, Mahalanobis %.3f", auc_m, auc_d);
    return 1;
}

/* the table that scores new values: within 1e-3 (1 + |ln f|) of the exact log density, on a
   two-cluster dimension with one far code (the widest table) and a plain normal one; off the
   table the density is exact */
static int test_marginal_table_matches_exact(void) {
    enum { N = 600, D = 2 }; /* small: the emulated cross builds and valgrind run it too */
    static float z[N * D];
    double worst = 0.0;
    int i, j;
    heph_marginal f;
    heph_rng r;
    heph_rng_seed(&r, 5);
    for (i = 0; i < N; i++) {
        z[i * D] = (i % 2 ? 2.0f : -2.0f) + 0.3f * heph_rng_normal(&r);
        z[i * D + 1] = heph_rng_normal(&r);
    }
    z[0] = 40.0f;
    CHECK(heph_marginal_fit(&f, z, N, D) == HEPH_OK, "%s", f.err);
    for (j = 0; j < D; j++)
        for (i = 0; i < 3000; i++) { /* from below the table to above it */
            double v = f.g0[j] - 1.0 + (f.gdx[j] * (HEPH_KDE_GRID - 1) + 2.0) * (double)heph_rng_uniform(&r);
            double ex = heph__kde_log(f.x + (size_t)j * f.n, f.n, f.h[j], v, f.n);
            double e = fabs(heph__kde_table(&f, j, v) - ex) / (1.0 + fabs(ex));
            if (e > worst) worst = e;
        }
    heph_marginal_free(&f);
    CHECK(worst < 1e-3, "table off the exact log density by %.3g of 1 + |ln f|", worst);
    return 1;
}

/* knn against every distance sorted here: the blocked path of part D (n >= 64, m >= 16)
   and the plain loops give the k-th smallest, with and without self */
static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static int test_knn_matches_sorted_distances(void) {
    enum { N = 700, M = 40, D = 7, K = 5 };
    static float ref[N * D];
    static double all[N];
    double got[N], worst = 0.0;
    char err[HEPH_ERRLEN];
    int i, j, a, self, rc = HEPH_OK;
    heph_rng r;
    heph_rng_seed(&r, 9);
    for (i = 0; i < N * D; i++) ref[i] = heph_rng_normal(&r);
    for (self = 0; self < 2; self++) {
        size_t m = self ? N : M; /* self: the bank against itself; else its first M codes shifted */
        static float q[N * D];
        for (i = 0; i < (int)m * D; i++) q[i] = ref[i] + (self ? 0.0f : 0.5f);
        rc |= heph_knn_score(ref, N, D, q, m, K, self, got, err, sizeof err);
        for (i = 0; i < (int)m; i++) {
            int c = 0;
            for (j = 0; j < N; j++) {
                double d2 = 0.0;
                if (self && j == i) continue;
                for (a = 0; a < D; a++) d2 += ((double)q[i * D + a] - (double)ref[j * D + a]) * ((double)q[i * D + a] - (double)ref[j * D + a]);
                all[c++] = d2;
            }
            qsort(all, (size_t)c, sizeof(double), cmp_dbl);
            if (fabs(got[i] - sqrt(all[K - 1])) > worst) worst = fabs(got[i] - sqrt(all[K - 1]));
        }
    }
    CHECK(rc == HEPH_OK && worst < 1e-12, "knn off the sorted distances by %.3g (%s)", worst, err);
    return 1;
}

/* knn search by hand: codes 0, 1, 3, 6 on a line, query 2: the nearest are 1 and 3 (a tie:
   the lower index first), then 0; leaving out code 1 gives 3, 0; k past the set is refused */
static int test_knn_search_hand_case(void) {
    float ref[4] = {0.0f, 1.0f, 3.0f, 6.0f}, q[1] = {2.0f};
    size_t idx[3], skip[1] = {1};
    double d[3];
    char err[HEPH_ERRLEN];
    int rc = heph_knn_search(ref, 4, 1, q, 1, 3, NULL, idx, d, err, sizeof err);
    CHECK(rc == HEPH_OK && idx[0] == 1 && idx[1] == 2 && idx[2] == 0 && d[0] == 1.0 && d[1] == 1.0 && d[2] == 2.0,
          "got %zu %zu %zu at %g %g %g", idx[0], idx[1], idx[2], d[0], d[1], d[2]);
    rc = heph_knn_search(ref, 4, 1, q, 1, 2, skip, idx, d, err, sizeof err);
    CHECK(rc == HEPH_OK && idx[0] == 2 && idx[1] == 0 && d[1] == 2.0, "with code 1 left out: %zu %zu", idx[0], idx[1]);
    rc = heph_knn_search(ref, 4, 1, q, 1, 4, skip, idx, d, err, sizeof err);
    CHECK(rc == HEPH_E_ARG && strstr(err, "k = 4") != NULL, "%s", err);
    return 1;
}

static int test_marginal_refuses_nonfinite_codes(void) {
    float bad[6] = {0, 1, 2, 0, 0, 0};
    heph_marginal f;
    int rc;
    bad[4] = (float)NAN;
    rc = heph_marginal_fit(&f, bad, 6, 1);
    if (rc == HEPH_OK) heph_marginal_free(&f);
    CHECK(rc == HEPH_E_NAN && strstr(f.err, "code 4"), "%s", f.err);
    return 1;
}
static int test_marginal_refuses_two_codes(void) {
    float z[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    heph_marginal f;
    int rc = heph_marginal_fit(&f, z, 2, 1);
    if (rc == HEPH_OK) heph_marginal_free(&f);
    CHECK(rc == HEPH_E_ARG, "%s", f.err);
    return 1;
}
static int test_marginal_self_leaves_itself_out(void) {
    float z[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    double s_self[12], s_out[12], pd[12];
    heph_marginal f;
    int ok, k;
    CHECK(heph_marginal_fit(&f, z, 12, 1) == HEPH_OK, "%s", f.err);
    heph_marginal_score(&f, z, 12, 1, s_self, pd);
    heph_marginal_score(&f, z, 12, 0, s_out, NULL);
    heph_marginal_free(&f);
    /* leaving itself out makes each code less dense: its score rises */
    ok = fabs(pd[5] - s_self[5]) < 1e-12 && s_self[1] > s_out[1] && s_self[10] > s_out[10];
    for (k = 0; k < 12; k++) ok &= s_self[k] >= s_out[k] && s_out[k] >= 0.0;
    CHECK(ok, "self scores not at or above the plain ones");
    return 1;
}
static int test_marginal_self_needs_the_fit_codes(void) {
    float z[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    double s_self[12];
    heph_marginal f;
    int rc;
    CHECK(heph_marginal_fit(&f, z, 12, 1) == HEPH_OK, "%s", f.err);
    rc = heph_marginal_score(&f, z, 11, 1, s_self, NULL);
    heph_marginal_free(&f);
    CHECK(rc == HEPH_E_ARG, "%s", f.err);
    return 1;
}

static int test_knn_hand_case(void) {
    const float ref[4] = {0.0f, 1.0f, 3.0f, 7.0f}, q[1] = {2.0f};
    double d[4];
    char err[HEPH_ERRLEN];
    int ok;
    heph_knn_score(ref, 4, 1, q, 1, 1, 0, d, err, sizeof err);
    ok = fabs(d[0] - 1.0) < 1e-12;
    heph_knn_score(ref, 4, 1, q, 1, 3, 0, d, err, sizeof err);
    ok &= fabs(d[0] - 2.0) < 1e-12;
    heph_knn_score(ref, 4, 1, ref, 4, 1, 1, d, err, sizeof err); /* self: nearest other code */
    ok &= fabs(d[0] - 1.0) < 1e-12 && fabs(d[1] - 1.0) < 1e-12 && fabs(d[2] - 2.0) < 1e-12 && fabs(d[3] - 4.0) < 1e-12;
    CHECK(ok, "distances differ from 1, 2 and (1, 1, 2, 4)");
    return 1;
}
static int test_knn_refuses_k_larger_than_the_set(void) {
    const float ref[4] = {0.0f, 1.0f, 3.0f, 7.0f};
    double d[4];
    char err[HEPH_ERRLEN] = "";
    int ok = heph_knn_score(ref, 4, 1, ref, 4, 4, 1, d, err, sizeof err) == HEPH_E_ARG && strstr(err, "k = 4");
    CHECK(ok, "%s", err);
    return 1;
}

/* a small VAE of 4x4 pictures, 3 latents, max_batch pictures a chunk */
static int small_vae(heph_vae *m, int max_batch, uint64_t seed) {
    heph_vae_config cfg;
    heph_vae_config_default(&cfg);
    cfg.in_c = 1; cfg.in_h = 4; cfg.in_w = 4; cfg.z_dim = 3; cfg.max_batch = max_batch;
    strcpy(cfg.enc_spec, "dense8,tanh");
    strcpy(cfg.dec_spec, "dense8,tanh,dense16");
    CHECK(heph_vae_init(m, &cfg, seed) == HEPH_OK, "%s", m->err);
    return 1;
}

/* recon score = binary cross-entropy of the picture against its decoded posterior mean */
static int test_recon_score(void) {
    heph_vae m;
    heph_rng r;
    float x[5 * 16], mu[5 * 3], y[5 * 16];
    double rs[5], worst = 0.0;
    int i, k;
    REQUIRE(small_vae(&m, 2, 3)); /* 3 chunks */
    heph_rng_seed(&r, 5);
    for (i = 0; i < 5 * 16; i++) x[i] = heph_rng_uniform(&r);
    heph_vae_recon_score(&m, x, 5, rs);
    heph_vae_encode(&m, x, 5, mu, NULL);
    heph_vae_decode(&m, mu, 5, y);
    heph_vae_free(&m);
    for (i = 0; i < 5; i++) {
        double b = 0.0;
        for (k = 0; k < 16; k++) b -= (double)x[i * 16 + k] * log((double)y[i * 16 + k]) + (1.0 - (double)x[i * 16 + k]) * log(1.0 - (double)y[i * 16 + k]);
        if (fabs(b - rs[i]) / b > worst) worst = fabs(b - rs[i]) / b;
    }
    CHECK(worst < 1e-5, "worst relative difference %.3g (limit 1e-5)", worst);
    return 1;
}

/* IWAE and ELBO scores against the definition computed here from encode, the library's RNG
   and decode (in double): log w = ln p(x|z) + ln N(z; 0, I) - ln q(z|x), picture i drawing
   its k samples of D normals from the stream seed ^ i * 0x9E3779B97F4A7C15 */
typedef struct {
    int rc, rc_b, rc_k0;                /* the scores with max_batch 2, 128; k = 0 */
    double worst, jensen, batchdiff, partdiff; /* partdiff: scored in two parts (_from) */
    char err_k0[HEPH_ERRLEN];
} iwae_result;
static int iwae_run(iwae_result *res) {
    enum { N = 5, P = 16, Z = 3, K = 7 };
    heph_vae m;
    heph_rng r;
    float x[N * P], mu[N * Z], lv[N * Z], z[Z], y[P];
    double iw[N], el[N], iw1[N], el1[N], iwb[N];
    int i, t, j;
    res->worst = 0.0; res->jensen = 1.0; res->batchdiff = 0.0;
    REQUIRE(small_vae(&m, 2, 3)); /* 3 chunks */
    heph_rng_seed(&r, 5);
    for (i = 0; i < N * P; i++) x[i] = heph_rng_uniform(&r);
    res->rc = heph_vae_iwae_score(&m, x, N, K, 11, iw, el);
    res->rc |= heph_vae_iwae_score(&m, x, N, 1, 11, iw1, el1);
    heph_vae_encode(&m, x, N, mu, lv);
    for (i = 0; i < N; i++) {
        double lw[K], mx = -HUGE_VAL, sum = 0.0, mean = 0.0, want_iw, want_el;
        heph_rng_seed(&r, 11 ^ ((uint64_t)i * 0x9E3779B97F4A7C15ULL));
        for (t = 0; t < K; t++) {
            double lp = 0.0, lq = 0.0, lx = 0.0;
            for (j = 0; j < Z; j++) {
                double e = (double)heph_rng_normal(&r), s = exp(0.5 * (double)lv[i * Z + j]);
                z[j] = (float)((double)mu[i * Z + j] + s * e);
                lp += -0.5 * (double)z[j] * (double)z[j];
                lq += -0.5 * (e * e + (double)lv[i * Z + j]);
            }
            heph_vae_decode(&m, z, 1, y);
            for (j = 0; j < P; j++) lx += (double)x[i * P + j] * log((double)y[j]) + (1.0 - (double)x[i * P + j]) * log(1.0 - (double)y[j]);
            lw[t] = lx + lp - lq;
            mx = lw[t] > mx ? lw[t] : mx;
            mean += lw[t] / K;
        }
        for (t = 0; t < K; t++) sum += exp(lw[t] - mx);
        want_iw = -(mx + log(sum) - log((double)K));
        want_el = -mean;
        if (fabs(want_iw - iw[i]) / fabs(want_iw) > res->worst) res->worst = fabs(want_iw - iw[i]) / fabs(want_iw);
        if (fabs(want_el - el[i]) / fabs(want_el) > res->worst) res->worst = fabs(want_el - el[i]) / fabs(want_el);
        if (iw[i] > el[i] + 1e-12) res->jensen = 0.0;                 /* iwae <= elbo always */
        if (iw1[i] != el1[i]) res->jensen = 0.0;                      /* one sample: the same */
    }
    heph_vae_free(&m);
    REQUIRE(small_vae(&m, 128, 3)); /* one chunk: the same scores (each picture has its own noise) */
    res->rc_b = heph_vae_iwae_score(&m, x, N, K, 11, iwb, NULL);
    for (i = 0; i < N; i++) res->batchdiff = fabs(iwb[i] - iw[i]) > res->batchdiff ? fabs(iwb[i] - iw[i]) : res->batchdiff;
    res->partdiff = 0.0; /* pictures 0..1, then 2..4 as a set of their own starting at 2 */
    res->rc_b |= heph_vae_iwae_score_from(&m, x, 2, 0, K, 11, iwb, NULL);
    res->rc_b |= heph_vae_iwae_score_from(&m, x + 2 * P, N - 2, 2, K, 11, iwb + 2, NULL);
    for (i = 0; i < N; i++) res->partdiff = fabs(iwb[i] - iw[i]) > res->partdiff ? fabs(iwb[i] - iw[i]) : res->partdiff;
    res->rc_k0 = heph_vae_iwae_score(&m, x, N, 0, 11, iwb, NULL);
    snprintf(res->err_k0, sizeof res->err_k0, "%s", m.err);
    heph_vae_free(&m);
    return 1;
}
static int test_iwae_elbo_scores_are_their_definition(void) {
    iwae_result res;
    REQUIRE(iwae_run(&res));
    CHECK(res.rc == HEPH_OK && res.worst < 1e-5, "worst relative difference from the definition %.3g (limit 1e-5)", res.worst);
    return 1;
}
static int test_iwae_at_most_elbo_equal_for_one_sample(void) {
    iwae_result res;
    REQUIRE(iwae_run(&res));
    CHECK(res.rc == HEPH_OK && res.jensen == 1.0, "iwae > elbo, or k = 1 differs");
    return 1;
}
static int test_iwae_score_independent_of_chunks(void) {
    iwae_result res;
    REQUIRE(iwae_run(&res));
    CHECK(res.rc_b == HEPH_OK && res.batchdiff < 1e-4, "max_batch 2 and 128 differ by %.3g nats", res.batchdiff);
    CHECK(res.partdiff < 1e-4, "scored in two parts (heph_vae_iwae_score_from): off by %.3g nats", res.partdiff);
    return 1;
}
static int test_iwae_score_refuses_k0(void) {
    iwae_result res;
    REQUIRE(iwae_run(&res));
    CHECK(res.rc_k0 == HEPH_E_ARG && strstr(res.err_k0, "k = 0") != NULL, "%s", res.err_k0);
    return 1;
}

/* complexity: the Sub-filter entropy code length on hand cases, and the score's formula */
static int test_complexity_bits_hand(void) {
    float flat[4] = {0.5f, 0.5f, 0.5f, 0.5f}, ramp[2 * 3] = {0.0f, 0.2f, 0.4f, 1.0f, 1.0f, 1.0f};
    double want_flat = 2.0 + 3.0 * log2(4.0 / 3.0); /* residuals 128, 0, 0, 0 */
    /* two planes of 3: q = 0, 51, 102 -> 0, 51, 51; 255, 255, 255 -> 255, 0, 0: counts 0:3, 51:2, 255:1 */
    double want_ramp = 3.0 * log2(2.0) + 2.0 * log2(3.0) + log2(6.0);
    double a = heph_complexity_bits(flat, 1, 1, 4), b = heph_complexity_bits(ramp, 2, 1, 3);
    CHECK(fabs(a - want_flat) < 1e-12 && fabs(b - want_ramp) < 1e-12,
          "flat %.12g (want %.12g), two planes %.12g (want %.12g)", a, want_flat, b, want_ramp);
    return 1;
}
static int test_complexity_score_is_nll_bits_minus_length(void) {
    double nll[2] = {10.0, 3.0}, bits[2] = {4.0, 1.0}, sc[2];
    heph_complexity_score(nll, bits, 2, sc);
    CHECK(fabs(sc[0] - (10.0 / log(2.0) - 4.0)) < 1e-12 && fabs(sc[1] - (3.0 / log(2.0) - 1.0)) < 1e-12, "not -log2 p(x) - L(x)");
    return 1;
}

/* cal = 0..99: n(s) = 100 - j + (j - s) between j - 1 and j; the tail: excesses 1..10 over
   u = 89 (mean 5.5, variance 8.25 < 5.5^2: xi = 0, sigma = 5.5) */
static int test_tail_by_hand(void) {
    double cal[100], lp[5], want[5];
    heph_tail t;
    int i;
    for (i = 0; i < 100; i++) cal[99 - i] = (double)i; /* any order */
    CHECK(heph_tail_fit(&t, cal, 100) == HEPH_OK, "%s", t.err);
    lp[0] = heph_tail_logp(&t, -5.0); want[0] = 0.0;                       /* every c >= s */
    lp[1] = heph_tail_logp(&t, 50.0); want[1] = log(51.0 / 101.0);         /* 50..99 */
    lp[2] = heph_tail_logp(&t, 49.5); want[2] = log(51.5 / 101.0);         /* halfway to 49..99 */
    lp[3] = heph_tail_logp(&t, 99.0); want[3] = log(2.0 / 101.0);
    lp[4] = heph_tail_logp(&t, 100.0); want[4] = log(1.0 / 101.0) - 1.0 / 5.5;
    heph_tail_free(&t);
    for (i = 0; i < 5; i++) CHECK(fabs(lp[i] - want[i]) < 1e-12, "case %d: ln p %.15g, want %.15g", i, lp[i], want[i]);
    return 1;
}
/* fitted on 20,000 normal draws, the rate of 100,000 fresh draws with p <= alpha is alpha
   (3 sigma of both samples: 0.0025 at 0.01, 0.005 at 0.05), and p never increases with the
   score, across the ranks and the tail */
static int test_tail_calibrates(void) {
    size_t m = 20000, n = 100000, i, hit1 = 0, hit5 = 0;
    double *cal = TALLOC(double, m), prev = 1.0, s;
    heph_tail t;
    tseed(11);
    for (i = 0; i < m; i++) cal[i] = tnormal();
    CHECK(heph_tail_fit(&t, cal, m) == HEPH_OK, "%s", t.err);
    for (i = 0; i < n; i++) {
        double lp = heph_tail_logp(&t, tnormal());
        hit1 += lp <= log(0.01);
        hit5 += lp <= log(0.05);
    }
    for (s = -6.0; s < 8.0; s += 0.01) {
        double lp = heph_tail_logp(&t, s);
        if (lp > prev) { heph_tail_free(&t); CHECK(0, "ln p rises at s = %g: %g after %g", s, lp, prev); }
        prev = lp;
    }
    heph_tail_free(&t);
    CHECK(fabs((double)hit1 / (double)n - 0.01) < 0.0025 && fabs((double)hit5 / (double)n - 0.05) < 0.005,
          "measured rates %.4f at 0.01 and %.4f at 0.05", (double)hit1 / (double)n, (double)hit5 / (double)n);
    return 1;
}
/* a heavy tail (Pareto, P(S > s) = s^-2): past the 2,000 calibration scores the fitted tail
   still gives fresh draws the rate they ask for: p <= 1e-4 for 20 of 200,000 draws, 8 to 32
   allowed (2.7 sigma; 16 here; an exponential tail on the same excesses gives 47) */
static double tpareto2(void) { /* P(S > s) = s^-2, s >= 1, from a double uniform in (0, 1] */
    return 1.0 / sqrt(((double)(trand64() >> 11) + 0.5) * (1.0 / 9007199254740992.0));
}
static int test_tail_heavy(void) {
    size_t m = 2000, n = 200000, i, hit = 0;
    double *cal = TALLOC(double, m);
    heph_tail t;
    tseed(12);
    for (i = 0; i < m; i++) cal[i] = tpareto2();
    CHECK(heph_tail_fit(&t, cal, m) == HEPH_OK, "%s", t.err);
    for (i = 0; i < n; i++) hit += heph_tail_logp(&t, tpareto2()) <= log(1e-4);
    heph_tail_free(&t);
    CHECK(t.xi > 0.0 && hit >= 8 && hit <= 32, "xi %g: %zu of 200,000 with p <= 1e-4 (want ~20)", t.xi, hit);
    return 1;
}
static int test_tail_refuses_few_and_nan(void) {
    double cal[30];
    heph_tail t;
    int i;
    for (i = 0; i < 30; i++) cal[i] = i;
    CHECK(heph_tail_fit(&t, cal, 19) == HEPH_E_ARG && strstr(t.err, "at least 20"), "19 scores: %s", t.err);
    cal[7] = (double)NAN;
    CHECK(heph_tail_fit(&t, cal, 30) == HEPH_E_ARG && strstr(t.err, "score 7"), "NaN: %s", t.err);
    return 1;
}
static int test_combine_sidak_by_hand(void) {
    double lp[3] = {log(0.5), log(0.01), log(0.2)}, one = log(0.3), tiny[2] = {-100.0, -1.0};
    int which = -1, w2 = -1;
    double c = heph_combine_sidak(lp, 3, &which), c1 = heph_combine_sidak(&one, 1, NULL);
    double ct = heph_combine_sidak(tiny, 2, &w2);
    CHECK(which == 1 && fabs(c + log(1.0 - pow(0.99, 3.0))) < 1e-12, "K 3: %.15g (which %d)", c, which);
    CHECK(fabs(c1 + log(0.3)) < 1e-12, "K 1 is -ln p: %.15g", c1);
    CHECK(w2 == 0 && fabs(ct - (100.0 - log(2.0))) < 1e-9, "p = e^-100: %.15g", ct);
    return 1;
}

/* in the order of the program before the harness */
static const t_test tests[] = {
    {"maha_tiles_match_substitution", test_maha_tiles_match_substitution},
    {"chi2_quantiles", test_chi2},
    {"maha_empirical_by_hand", test_maha_empirical_by_hand},
    {"contributions_sum_to_d2", test_contributions_sum_to_d2},
    {"zscores_by_hand", test_zscores_by_hand},
    {"ledoit_wolf_vs_numpy", test_ledoit_wolf},
    {"singular_covariance_is_refused", test_singular_covariance_is_refused},
    {"ledoit_wolf_fits_fewer_points_than_dims", test_ledoit_wolf_fits_fewer_points_than_dims},
    {"ridge_fits_fewer_points_than_dims", test_ridge_fits_fewer_points_than_dims},
    {"mcd_refuses_too_few_points", test_mcd_refuses_too_few_points},
    {"mcd_excludes_outliers", test_mcd_excludes_outliers},
    {"mcd_separates_at_least_as_well", test_mcd_separates_at_least_as_well},
    {"mcd_deterministic", test_mcd_deterministic},
    {"mcd_matches_sklearn", test_mcd_sklearn},
    {"gmm_matches_sklearn", test_gmm_matches_sklearn},
    {"gmm_refuses_few_and_nan", test_gmm_refuses_few_and_nan},
    {"rank_desc_stable", test_rank_desc_stable},
    {"top_dims_by_abs_zscore", test_top_dims_by_abs_zscore},
    {"dim_counts_topk_and_zmin", test_dim_counts_topk_and_zmin},
    {"counterfactual_replaces_topk", test_counterfactual_replaces_topk},
    {"lerp_endpoints_and_middle", test_lerp_endpoints_and_middle},
    {"threshold_median_mad", test_threshold_median_mad},
    {"walk_distances_are_exact", test_walk},
    {"saliency_matches_finite_differences", test_saliency},
    {"marginal_hand_case", test_marginal_hand_case},
    {"marginal_far_value_scores_highest", test_marginal_far_value_scores_highest},
    {"marginal_catches_a_gap", test_marginal_gap},
    {"marginal_table_matches_exact", test_marginal_table_matches_exact},
    {"knn_matches_sorted_distances", test_knn_matches_sorted_distances},
    {"knn_search_hand_case", test_knn_search_hand_case},
    {"marginal_refuses_nonfinite_codes", test_marginal_refuses_nonfinite_codes},
    {"marginal_refuses_two_codes", test_marginal_refuses_two_codes},
    {"marginal_self_leaves_itself_out", test_marginal_self_leaves_itself_out},
    {"marginal_self_needs_the_fit_codes", test_marginal_self_needs_the_fit_codes},
    {"knn_hand_case", test_knn_hand_case},
    {"knn_refuses_k_larger_than_the_set", test_knn_refuses_k_larger_than_the_set},
    {"recon_score_is_bce_at_the_mean", test_recon_score},
    {"iwae_elbo_scores_are_their_definition", test_iwae_elbo_scores_are_their_definition},
    {"iwae_at_most_elbo_equal_for_one_sample", test_iwae_at_most_elbo_equal_for_one_sample},
    {"iwae_score_independent_of_chunks", test_iwae_score_independent_of_chunks},
    {"iwae_score_refuses_k0", test_iwae_score_refuses_k0},
    {"complexity_bits_hand", test_complexity_bits_hand},
    {"complexity_score_is_nll_bits_minus_length", test_complexity_score_is_nll_bits_minus_length},
    {"tail_by_hand", test_tail_by_hand},
    {"tail_calibrates", test_tail_calibrates},
    {"tail_heavy", test_tail_heavy},
    {"tail_refuses_few_and_nan", test_tail_refuses_few_and_nan},
    {"combine_sidak_by_hand", test_combine_sidak_by_hand},
};
T_MAIN(tests)
