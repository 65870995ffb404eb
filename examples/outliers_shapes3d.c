/* outliers_shapes3d - the seed's Stage 2 and 3 experiments with a Shapes3D beta-TCVAE:
   context-based outlier detection, explanations and counterfactuals.

   semantic   10 random batches of 350 pictures: 325 normals share one shape, one wall hue and
              one object hue (floor hue, scale and orientation free); 25 outliers are drawn
              uniformly from the pictures that break at least one of the three rules.
              Score = squared Mahalanobis distance of the posterior mean to the batch's own
              robust (FastMCD) fit; AUROC per batch, mean and worst (seed: 0.9990).
   cf1        320 pictures, 20 outliers; normals: wall hue 0.3 (green), sphere, orientation 0
              (index 7). Flag by the chi^2 threshold, count per latent dimension how often it is
              the most deviant one, name each dimension by the factor it carries most
              information about, decode counterfactuals (deviant dimensions -> normal mean) and
              the morph from each outlier to its counterfactual.
   cf2        the same with normals: wall hue 0.3, floor hue 0.2 (yellow), orientation 0.

   Pictures are rendered on the fly by tools/shapes3d_render.h, so every batch is new.
   build/outliers_shapes3d --model out/betatcvae_shapes3d/model.hpm --out out/outliers   */
#define HEPHAESTUS_IMPLEMENTATION
#include "../tools/heph_posix.h" /* hephaestus.h with fsync, 64-bit seeks, safe temporaries */
#define CLI_PROG "" /* the examples name themselves in each message */
#include "../tools/cli_common.h" /* messages, folders, PNG files, threads, the clock */
#define HEPH_SHAPES3D_IMPLEMENTATION
#include "../tools/shapes3d_render.h"
#include "../tools/plot.h"

#define NP HEPH_S3D_PIXELS

typedef struct {
    int fixed[6]; /* -1 = free, else the required factor index */
} rules;

static int satisfies(const rules *r, const int f[6]) {
    int k;
    for (k = 0; k < 6; k++)
        if (r->fixed[k] >= 0 && f[k] != r->fixed[k]) return 0;
    return 1;
}

/* a uniformly random factor tuple that satisfies (want = 1) or breaks (want = 0) the rules */
static void draw(heph_rng *rng, const rules *r, int want, int f[6]) {
    int k;
    do {
        for (k = 0; k < 6; k++) f[k] = (int)heph_rng_below(rng, (uint32_t)heph_shapes3d_count(k));
        if (want)
            for (k = 0; k < 6; k++)
                if (r->fixed[k] >= 0) f[k] = r->fixed[k];
    } while (satisfies(r, f) != want);
}

/* n_norm normals then n_out outliers: pictures (floats), factors, truth */
static void make_batch(heph_rng *rng, const rules *r, int n_norm, int n_out, float *x, int32_t *fac, int *truth) {
    uint8_t px[NP];
    int i, k, f[6];
    for (i = 0; i < n_norm + n_out; i++) {
        size_t j;
        draw(rng, r, i < n_norm, f);
        heph_shapes3d_render(px, f);
        for (j = 0; j < NP; j++) x[(size_t)i * NP + j] = (float)px[j] / 255.0f;
        for (k = 0; k < 6; k++) fac[i * 6 + k] = f[k];
        truth[i] = i >= n_norm;
    }
}

/* which factor each latent dimension carries: normalised discrete MI on 5,000 random pictures */
static void name_dims(heph_vae *m, heph_rng *rng, int *dim_factor, double *dim_share) {
    enum { N = 5000 };
    int D = m->cfg.z_dim, i, j, k;
    float *x = (float *)malloc((size_t)256 * NP * sizeof(float)), *mu = (float *)malloc((size_t)N * (size_t)D * sizeof(float));
    int32_t *fac = (int32_t *)malloc((size_t)N * 6 * sizeof(int32_t));
    int truth[256];
    uint32_t nv[6];
    double mig, pf[6], *mi = (double *)malloc((size_t)D * 6 * sizeof(double));
    rules any;
    if (!x || !mu || !fac || !mi) cli_fail("out of memory");
    for (k = 0; k < 6; k++) { any.fixed[k] = -1; nv[k] = (uint32_t)heph_shapes3d_count(k); }
    for (i = 0; i < N; i += 256) {
        int nb = N - i < 256 ? N - i : 256;
        make_batch(rng, &any, nb, 0, x, fac + (size_t)i * 6, truth);
        heph_vae_encode(m, x, (size_t)nb, mu + (size_t)i * (size_t)D, NULL);
    }
    heph_mig_discrete(mu, N, D, fac, 6, nv, 20, &mig, pf, mi);
    for (j = 0; j < D; j++) { /* I(z_j; v_k) / log(n_values): the share of the factor it explains */
        dim_factor[j] = 0;
        dim_share[j] = -1.0;
        for (k = 0; k < 6; k++) {
            double s = mi[j * 6 + k] / log((double)nv[k]);
            if (s > dim_share[j]) { dim_share[j] = s; dim_factor[j] = k; }
        }
    }
    printf("latent dimensions (factor with the largest normalised MI, 5000 random pictures; mig_discrete %.3f):\n  ", mig);
    for (j = 0; j < D; j++) printf("z%d~%s(%.2f)%s", j, heph_shapes3d_name(dim_factor[j]), dim_share[j], j + 1 < D ? "  " : "\n");
    free(x); free(mu); free(fac); free(mi);
}

/* MCD's support fraction: 0.9 of the batch (a batch holds at most ~7 % outliers; the default
   (n + D + 1) / 2 throws away half of a multi-modal normal part and scores it as outlying) */
#define MCD_SUPPORT 0.9

static double batch_auroc(heph_vae *m, const float *x, const int *truth, int n, int cov, float *mu, double *d2) {
    heph_maha f;
    float *s = (float *)malloc((size_t)n * sizeof(float));
    double auc = (double)NAN;
    int i;
    heph_vae_encode(m, x, (size_t)n, mu, NULL);
    if (heph_maha_fit(&f, mu, (size_t)n, m->cfg.z_dim, cov, cov == HEPH_COV_MCD ? MCD_SUPPORT : 0.0, 1) != HEPH_OK)
        cli_fail("fit: %s", f.err);
    heph_maha_score(&f, mu, (size_t)n, d2);
    for (i = 0; i < n; i++) s[i] = (float)d2[i];
    heph_auroc(s, truth, (size_t)n, &auc);
    heph_maha_free(&f);
    free(s);
    return auc;
}

static void semantic(heph_vae *m, heph_rng *rng, int n_batches, const char *out) {
    enum { NN = 325, NO = 25, N = NN + NO };
    float *x = (float *)malloc((size_t)N * NP * sizeof(float)), *mu = (float *)malloc((size_t)N * (size_t)m->cfg.z_dim * sizeof(float));
    int32_t fac[N * 6];
    int truth[N], b, c, covs[3] = {HEPH_COV_MCD, HEPH_COV_LEDOIT_WOLF, HEPH_COV_EMPIRICAL};
    const char *cn[3] = {"mcd", "ledoit-wolf", "empirical"};
    double d2[N], sum[3] = {0, 0, 0}, worst[3] = {1, 1, 1};
    FILE *js;
    char path[1024];
    if (!x || !mu) cli_fail("out of memory");
    printf("\nsemantic outliers: %d batches of %d normals + %d outliers\nbatch  shape wall_hue object_hue   AUROC mcd  ledoit-wolf  empirical\n", n_batches, NN, NO);
    for (b = 0; b < n_batches; b++) {
        rules r;
        int k;
        for (k = 0; k < 6; k++) r.fixed[k] = -1;
        r.fixed[4] = (int)heph_rng_below(rng, 4);   /* shape      */
        r.fixed[1] = (int)heph_rng_below(rng, 10);  /* wall hue   */
        r.fixed[2] = (int)heph_rng_below(rng, 10);  /* object hue */
        make_batch(rng, &r, NN, NO, x, fac, truth);
        printf("%5d  %5d %8d %10d  ", b + 1, r.fixed[4], r.fixed[1], r.fixed[2]);
        for (c = 0; c < 3; c++) {
            double a = batch_auroc(m, x, truth, N, covs[c], mu, d2);
            sum[c] += a;
            if (a < worst[c]) worst[c] = a;
            printf("%10.4f ", a);
        }
        printf("\n");
        if (b == 0) { /* the first batch's MD scores: normals first, outliers last */
            float ys[2 * N];
            int i, W = 720, H = 360;
            uint8_t *rgb = (uint8_t *)malloc((size_t)W * H * 3);
            const char *lab[2] = {"D^2 (normals 1-325, outliers 326-350)", "chi^2 97.5% quantile"};
            double thr = heph_chi2_quantile(0.975, m->cfg.z_dim);
            batch_auroc(m, x, truth, N, HEPH_COV_MCD, mu, d2);
            for (i = 0; i < N; i++) { ys[i] = (float)d2[i]; ys[N + i] = (float)thr; }
            plot_lines(rgb, W, H, ys, 2, N, lab, "semantic outliers: MD scores of batch 1 (MCD fit)");
            cli_write_png_in(out, "semantic_md_scores.png", rgb, W, H);
            free(rgb);
        }
    }
    printf("mean   %32s", "");
    for (c = 0; c < 3; c++) printf("%10.4f ", sum[c] / n_batches);
    printf("\nworst  %32s", "");
    for (c = 0; c < 3; c++) printf("%10.4f ", worst[c]);
    printf("\n");
    snprintf(path, sizeof path, "%s/semantic.json", out);
    js = fopen(path, "w");
    if (!js) cli_fail("cannot write %s", path);
    fprintf(js, "{\"batches\": %d, \"normals\": %d, \"outliers\": %d", n_batches, NN, NO);
    for (c = 0; c < 3; c++) fprintf(js, ", \"%s\": {\"mean_auroc\": %.6f, \"worst_auroc\": %.6f}", cn[c], sum[c] / n_batches, worst[c]);
    fprintf(js, "}\n");
    fclose(js);
    free(x); free(mu);
}

static int n_chi2(const double *d2, int n, double thr) {
    int i, c = 0;
    for (i = 0; i < n; i++) c += d2[i] > thr;
    return c;
}

/* counterfactual experiment: flag, count the most deviant dimension, morph */
static void counterfactual(heph_vae *m, heph_rng *rng, const rules *r, const char *name, const char *out,
                           const int *dim_factor) {
    enum { NN = 300, NO = 20, N = NN + NO, T = 8, SHOW = 6 };
    int D = m->cfg.z_dim, i, j, k, n_flag = 0, counts[64] = {0}, truth[N], top;
    float *x = (float *)malloc((size_t)N * NP * sizeof(float)), *mu = (float *)malloc((size_t)N * (size_t)D * sizeof(float));
    float *codes = (float *)malloc((size_t)SHOW * (T + 1) * (size_t)D * sizeof(float));
    float *pics = (float *)malloc((size_t)SHOW * (T + 1) * NP * sizeof(float));
    int32_t fac[N * 6];
    double d2[N], thr, mad_thr, *zs = (double *)malloc((size_t)N * (size_t)D * sizeof(double)), normal_mean[64], auc;
    size_t order[N];
    heph_maha f;
    float s[N];
    char file[128];
    if (!x || !mu || !codes || !pics || !zs || D > 64) cli_fail("out of memory");
    make_batch(rng, r, NN, NO, x, fac, truth);
    heph_vae_encode(m, x, N, mu, NULL);
    if (heph_maha_fit(&f, mu, N, D, HEPH_COV_MCD, MCD_SUPPORT, 1) != HEPH_OK) cli_fail("fit: %s", f.err);
    heph_maha_score(&f, mu, N, d2);
    for (i = 0; i < N; i++) s[i] = (float)d2[i];
    heph_auroc(s, truth, N, &auc);
    /* threshold: the chi^2_D 97.5 % quantile (the seed read one off the histogram) */
    thr = heph_chi2_quantile(0.975, D);
    /* the normal part: the mean code of the pictures under the threshold */
    for (j = 0; j < D; j++) normal_mean[j] = 0.0;
    for (i = 0, k = 0; i < N; i++)
        if (d2[i] <= thr) { for (j = 0; j < D; j++) normal_mean[j] += (double)mu[(size_t)i * (size_t)D + (size_t)j]; k++; }
    for (j = 0; j < D; j++) normal_mean[j] /= (double)(k ? k : 1);
    /* flagged pictures: z-scores and the most deviant dimension of each */
    if (heph_rank_desc(d2, N, order) != HEPH_OK || heph_threshold_mad(d2, N, 3.0, &mad_thr) != HEPH_OK)
        cli_fail("outliers_shapes3d: out of memory ranking %zu scores", (size_t)N);
    for (i = 0; i < N; i++) {
        size_t p = order[i];
        if (d2[p] <= thr) break;
        heph_maha_explain(&f, mu + p * (size_t)D, zs + (size_t)n_flag * (size_t)D, NULL);
        n_flag++;
    }
    heph_dim_counts(zs, (size_t)n_flag, D, 1, 0.0, counts);
    printf("\n%s: %d normals + %d outliers, AUROC %.4f; %d flagged above chi^2_%d(0.975) = %.2f "
           "(median + 3 MAD = %.2f would flag %d)\n", name, NN, NO, auc, n_flag, D, thr,
           mad_thr, n_chi2(d2, N, mad_thr));
    printf("most deviant dimension of each flagged picture (count, dimension ~ factor):\n");
    for (top = 0; top < 4; top++) {
        int best = -1;
        for (j = 0; j < D; j++)
            if (counts[j] > 0 && (best < 0 || counts[j] > counts[best])) best = j;
        if (best < 0) break;
        printf("  %3d  z%d ~ %s\n", counts[best], best, heph_shapes3d_name(dim_factor[best]));
        counts[best] = -counts[best] - 1; /* mark as printed */
    }
    for (j = 0; j < D; j++) if (counts[j] < 0) counts[j] = -counts[j] - 1;
    {   /* bar chart of the counts, as a line plot of D points */
        float ys[64];
        int W = 640, H = 320;
        uint8_t *rgb = (uint8_t *)malloc((size_t)W * H * 3);
        const char *lab[1] = {"flagged pictures whose most deviant dimension is z_(x-1)"};
        for (j = 0; j < D; j++) ys[j] = (float)counts[j];
        snprintf(file, sizeof file, "%s: outliers per latent dimension", name);
        plot_lines(rgb, W, H, ys, 1, D, lab, file);
        snprintf(file, sizeof file, "%s_dimension_counts.png", name);
        cli_write_png_in(out, file, rgb, W, H);
        free(rgb);
    }
    /* morphs: original, then T codes from the outlier's to its counterfactual (top-2 -> mean) */
    for (i = 0; i < SHOW && i < n_flag; i++) {
        size_t p = order[i];
        float cf[64];
        heph_counterfactual(mu + p * (size_t)D, zs + (size_t)i * (size_t)D, normal_mean, D, 2, cf);
        heph_lerp_codes(mu + p * (size_t)D, cf, D, T, codes + (size_t)i * (T + 1) * (size_t)D + (size_t)D);
    }
    for (i = 0; i < SHOW && i < n_flag; i++) {
        memcpy(pics + (size_t)i * (T + 1) * NP, x + order[i] * NP, NP * sizeof(float));
        heph_vae_decode(m, codes + (size_t)i * (T + 1) * (size_t)D + (size_t)D, T, pics + ((size_t)i * (T + 1) + 1) * NP);
    }
    snprintf(file, sizeof file, "%s_morphs.png", name);
    if (n_flag) cli_write_grid(cli_join(out, file).s, pics, (n_flag < SHOW ? n_flag : SHOW) * (T + 1), T + 1, 3, 64, 64);
    heph_maha_free(&f);
    free(x); free(mu); free(codes); free(pics); free(zs);
}

int main(int argc, char **argv) {
    const char *model = NULL, *out = "out/outliers_shapes3d", *exp = "all";
    long batches = 10, seed = 1;
    heph_vae m;
    heph_rng rng;
    int a, dim_factor[64];
    double dim_share[64];
    for (a = 1; a < argc; a += 2) { /* flag, value */
        const char *f = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            printf("usage: outliers_shapes3d --model MODEL.hpm [--out DIR] [--experiment semantic|cf1|cf2|all]\n"
                   "        [--batches N (default 10)] [--seed S]\n"
                   "The seed's outlier and counterfactual experiments on Shapes3D-like batches rendered on the fly.\n");
            return 0;
        }
        if (!v) cli_fail("outliers_shapes3d: %s needs a value", f);
        if (!strcmp(f, "--model")) model = v;
        else if (!strcmp(f, "--out")) out = v;
        else if (!strcmp(f, "--experiment")) exp = v;
        else if (!strcmp(f, "--batches")) batches = strtol(v, NULL, 10);
        else if (!strcmp(f, "--seed")) seed = strtol(v, NULL, 10);
        else cli_fail("outliers_shapes3d: unknown option %s (see --help)", f);
    }
    if (!model) cli_fail("outliers_shapes3d: --model is required (see --help)");
    if (batches < 1) cli_fail("outliers_shapes3d: --batches must be >= 1");
    if (heph_vae_load(&m, model) != HEPH_OK) cli_fail("outliers_shapes3d: %s", m.err);
    if (m.enc.in_n != NP) cli_fail("outliers_shapes3d: %s takes %d values per picture, Shapes3D has %d", model, m.enc.in_n, NP);
    if (m.cfg.z_dim > 64) cli_fail("outliers_shapes3d: at most 64 latent dimensions");
    cli_mkdirs(out);
    heph_shapes3d_init();
    heph_rng_seed(&rng, (uint64_t)seed);
    printf("model %s: z %d, step %llu\n", model, m.cfg.z_dim, (unsigned long long)m.step);
    name_dims(&m, &rng, dim_factor, dim_share);
    if (!strcmp(exp, "all") || !strcmp(exp, "semantic")) semantic(&m, &rng, (int)batches, out);
    if (!strcmp(exp, "all") || !strcmp(exp, "cf1")) {
        rules r = {{-1, 3, -1, -1, 2, 7}}; /* wall hue 0.3, sphere, orientation 0 */
        counterfactual(&m, &rng, &r, "cf1", out, dim_factor);
    }
    if (!strcmp(exp, "all") || !strcmp(exp, "cf2")) {
        rules r = {{2, 3, -1, -1, -1, 7}}; /* floor hue 0.2, wall hue 0.3, orientation 0 */
        counterfactual(&m, &rng, &r, "cf2", out, dim_factor);
    }
    heph_vae_free(&m);
    return 0;
}
