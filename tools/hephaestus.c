/* hephaestus - the command-line tool of hephaestus.h: train VAEs, find the outliers of a
   batch of pictures in the latent space, explain them, repair them, and report.

   usage: hephaestus SUBCOMMAND [options]      (hephaestus --help; hephaestus SUB --help)

   Subcommands: train, outliers, explain, counterfactual, morph, report, traverse, sample,
   eval, encode, batch, export, import, classifier, relabel, cycle-train, transfer, cycle-eval. A batch is a .hpd file or a folder of PNG/JPEG pictures
   (fitted to the model's input). Outputs go under --out DIR. Exit status: 0 ok, 1 runtime
   error, 2 usage.
   Helpers: cli_common.h (messages, files, buffers), cli_data.h (pictures, factor rules),
   plot.h (charts as PNG and SVG), cli_analysis.h (the outlier pipeline and its files),
   cli_report.h (the HTML report), cli_train.h (training), cli_export.h (safetensors
   export and import, for PyTorch), cli_encode.h (latent codes to .npy and CSV), cli_stream.h
   (outliers --stream: a batch of any size, in chunks), cli_classify.h and cli_cvae.h (the
   classifier and the conditional VAE's relabelling), cli_cycle.h (the cycle-consistent VAE).

   Build: cc -std=c99 -O2 -I. tools/hephaestus.c -o hephaestus -lstb -lm
   (add -fopenmp for threads).                                                              */
/* fsync, 64-bit seeks, temporaries unique per process and call, the folder synced after each
   rename; every allocation of the library counted against a memory budget (heph_posix.h,
   cli_io.h: shared with the converters and the examples) */
#define HEPHAESTUS_IMPLEMENTATION
#include "heph_posix.h"
#include "cli_common.h"
#include "cli_data.h"
#include "plot.h"
#include "cli_analysis.h"
#include "cli_report.h"
#include "cli_train.h"
#include "cli_export.h"
#include "cli_encode.h"
#include "cli_stream.h"
#include "cli_cvae.h"
#include "cli_cycle.h"

static const char *const main_help =
    "usage: hephaestus SUBCOMMAND [options]\n"
    "Variational autoencoders in plain C: train them, and use their latent space to find,\n"
    "explain and repair the outliers of a batch of pictures.\n"
    "Subcommands:\n"
    "  train           train a VAE (preset or spec strings; beta, capacity or beta-TCVAE)\n"
    "  outliers        rank a batch by how unusual each picture is (D^2, combined); flag, AUROC\n"
    "  explain         z-scores and D^2 contributions of the flagged pictures, per-dimension counts\n"
    "  counterfactual  replace the deviant dimensions by the normal mean and decode\n"
    "  morph           decode the way from each outlier to its counterfactual\n"
    "  report          all of the above as one self-contained HTML page\n"
    "  traverse        decode latent traversals, one row per dimension\n"
    "  sample          decode draws from the prior, or walks away from a batch's mean\n"
    "  eval            losses, SSIM, MIG (both estimators) and latent-factor correlations\n"
    "  encode          posterior means and log-variances of every picture, to .npy and CSV\n"
    "  batch           build a context batch (normals + outliers, with the truth) from a .hpd\n"
    "  export          a weights-only copy of a checkpoint, or safetensors for PyTorch\n"
    "  import          a safetensors file (e.g. from PyTorch) to a checkpoint\n"
    "  classifier      train a classifier of a label factor, or score one\n"
    "  relabel         a conditional VAE's pictures with every label: grid, swap accuracy, SSIM\n"
    "  cycle-train     train a cycle-consistent VAE (s: what a pair shares, z: the rest)\n"
    "  transfer        a cycle-consistent VAE's style-transfer and interpolation grids\n"
    "  cycle-eval      what s and z each know: MLP classifiers of every factor on each half\n"
    "A batch is a .hpd file or a folder of PNG/JPEG pictures. `hephaestus SUB --help` for\n"
    "each subcommand's options; `hephaestus --version` prints the version of hephaestus.h.\n"
    "Exit status: 0 ok, 1 runtime error, 2 usage error.\n"
    "--mem-budget MB (any subcommand): the library's allocations in total may not pass MB\n"
    "(default: 3/4 of the machine's physical memory); a larger need is refused with its size.\n"
    "Example:\n"
    "  hephaestus train --preset cnn-shapes3d --objective tcvae --beta 6 --data train.hpd --out run\n"
    "  hephaestus batch --data test.hpd --normal shape=2,wall_hue=3 --n-normal 325 \\\n"
    "      --outlier violate --n-outlier 25 --seed 1 --out batch.hpd\n"
    "  hephaestus report --model run/model.hpm --batch batch.hpd --out run/report\n";

/* ---- outliers, explain, counterfactual, morph, report ----------------------------------- */

enum { A_OUTLIERS, A_EXPLAIN, A_COUNTERFACTUAL, A_MORPH, A_REPORT };

static const char *const analysis_about[5] = {
    "Encodes the batch, fits the context (the batch itself, --reference, or a saved --scorer),\n"
    "and ranks every picture by its score: D^2 (squared Mahalanobis distance) in context mode,\n"
    "combined with a reference. Writes outliers.csv and outliers.json (index, name, D^2, D, rank,\n"
    "flagged, truth, the score; for each flagged picture its top dimensions, its 3 nearest normal\n"
    "pictures and its reconstruction residual), md_scores.png, md_histogram.png, and auroc.txt\n"
    "when the truth is known. --stream: a batch of any size in chunks, the N highest kept.\n",
    "For each flagged picture: per-dimension z-scores (mu_d - m_d)/s_d and the contributions\n"
    "c_d = (mu - m)_d [S^-1 (mu - m)]_d, which add up to D^2 exactly, and the top dimensions.\n"
    "Writes explain.csv, explain.json, dim_counts.csv, dim_counts.json, dim_counts.png and\n"
    "why.png (rows: picture | reconstruction | |residual| | its 3 nearest normal pictures).\n",
    "For each flagged picture (by decreasing score, at most --max): its --top-k most deviant\n"
    "dimensions set to the mean code of the normal pictures, decoded. Writes counterfactuals.png\n"
    "(rows: picture | reconstruction | counterfactual) and counterfactuals.csv.\n",
    "For each flagged picture (at most --max): --steps codes on the line from its code to its\n"
    "counterfactual, decoded. Writes morph.png, one row per picture.\n",
    "Writes report.html: settings, AUROC, SVG charts (scores with the threshold and the outliers\n"
    "marked, score histograms, outliers per dimension), counterfactual grid, morph table and the\n"
    "ranked table; pictures are embedded as data: URIs, so the page needs no network.\n"};

static const char *const analysis_name[5] = {"outliers", "explain", "counterfactual", "morph", "report"};

static void analysis_usage(int which) {
    printf("usage: hephaestus %s --model FILE --batch PATH [options]\n%s", analysis_name[which], analysis_about[which]);
    printf("Options:\n%s%s", aopts_help[0], aopts_help[1]);
    if (which == A_MORPH || which == A_REPORT) printf("  --steps T           frames of each morph (default 8)\n");
    if (which == A_OUTLIERS) fputs(stream_help, stdout);
    printf("  --threads T         OpenMP threads\n  -h, --help          this help\n");
}

static int cmd_analysis(int which, int argc, char **argv) {
    cli_aopts o;
    cli_run r;
    int i;
    aopts_default(&o);
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h") || cli_is(a, "--help")) { analysis_usage(which); return 0; }
        else if (aopts_flag(&o, argc, argv, &i)) {}
        else if ((which == A_MORPH || which == A_REPORT) && cli_is(a, "--steps")) o.steps = (int)cli_long(a, cli_val(argc, argv, &i), 2, 1000);
        else if (cli_is(a, "--threads")) cli_threads((int)cli_long(a, cli_val(argc, argv, &i), 1, 1024));
        else cli_unknown(a);
    }
    if (o.stream) { /* a batch of any size, in chunks: cli_stream.h */
        if (which != A_OUTLIERS) cli_usage("--stream is an option of outliers (the other subcommands show a batch held in memory)");
        run_stream(&o);
        return 0;
    }
    run_analysis(&r, &o);
    cli_mkdirs(o.out);
    run_summary(&r, &o);
    if (which == A_OUTLIERS) write_outliers(&r, &o);
    else if (which == A_EXPLAIN) write_explain(&r, &o);
    else if (which == A_COUNTERFACTUAL) write_counterfactuals(&r, &o);
    else if (which == A_MORPH) write_morphs(&r, &o);
    else write_report(&r, &o);
    run_free(&r);
    return 0;
}

/* ---- traverse ------------------------------------------------------------------------------ */

static const char *const traverse_help =
    "usage: hephaestus traverse --model FILE [options]\n"
    "Latent traversals: each row changes one dimension of a base code from -R to R (the others\n"
    "stay) and decodes. Writes traverse.png (rows: dimensions, columns: steps).\n"
    "  --model FILE        the trained model (.hpm), required\n"
    "  --batch PATH        pictures (.hpd or folder): the base code is picture --index's mean,\n"
    "                      and the rows are ordered by each dimension's KL on the batch\n"
    "  --index I           base picture (default 0)\n"
    "  --dims LIST         dimensions to show, e.g. 0,3,5 (default: all)\n"
    "  --steps T           columns (default 10)\n"
    "  --range R           values from -R to R (default 3)\n"
    "  --out DIR           output folder (default out)\n"
    "  -h, --help          this help\n";

/* "0,3,5" -> dims; returns their number */
static int parse_dims(const char *v, int D, int *dims) {
    int n = 0;
    const char *s = v;
    while (*s) {
        char *e;
        long d = strtol(s, &e, 10);
        if (e == s || !isdigit((unsigned char)*s) || d < 0 || d >= D || n == D || (*e && *e != ',') || (*e == ',' && !e[1]))
            cli_usage("--dims takes dimensions 0..%d separated by commas, got \"%s\"", D - 1, v);
        dims[n++] = (int)d;
        s = *e ? e + 1 : e;
    }
    return n;
}

/* base code: the mean of picture `index` of the batch; dims ordered by their KL on the batch */
static void traverse_base(heph_vae *m, const char *batch, size_t index, float *z0, int *dims) {
    cli_pics p;
    double *kl = (double *)cli_alloc((size_t)m->cfg.z_dim, sizeof(double));
    size_t np;
    pics_load(&p, batch, m->cfg.in_c, m->cfg.in_h, m->cfg.in_w);
    if (index >= p.n) cli_usage("--index %zu: %s has %zu pictures", index, batch, p.n);
    np = (size_t)p.c * (size_t)p.h * (size_t)p.w;
    heph_vae_encode(m, p.x + index * np, 1, z0, NULL);
    heph_vae_kl_per_dim(m, p.x, p.n, kl);
    {
        size_t *ord = (size_t *)cli_alloc((size_t)m->cfg.z_dim, sizeof(size_t));
        int d;
        if (heph_rank_desc(kl, (size_t)m->cfg.z_dim, ord) != HEPH_OK) cli_fail("out of memory ranking %d dimensions", m->cfg.z_dim);
        for (d = 0; d < m->cfg.z_dim; d++) dims[d] = (int)ord[d];
        free(ord);
    }
    pics_free(&p);
    free(kl);
}

static int cmd_traverse(int argc, char **argv) {
    const char *model = NULL, *batch = NULL, *out = "out", *dims_text = NULL;
    long pic = 0;
    int i, steps = 10, n_dims, *dims, D;
    double range = 3.0;
    heph_vae m;
    float *z0, *lo, *hi, *g;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h") || cli_is(a, "--help")) { fputs(traverse_help, stdout); return 0; }
        else if (cli_is(a, "--model")) model = cli_val(argc, argv, &i);
        else if (cli_is(a, "--batch")) batch = cli_val(argc, argv, &i);
        else if (cli_is(a, "--index")) pic = cli_long(a, cli_val(argc, argv, &i), 0, 2000000000L);
        else if (cli_is(a, "--dims")) dims_text = cli_val(argc, argv, &i);
        else if (cli_is(a, "--steps")) steps = (int)cli_long(a, cli_val(argc, argv, &i), 2, 1000);
        else if (cli_is(a, "--range")) range = cli_num(a, cli_val(argc, argv, &i), 1e-6, 1e6);
        else if (cli_is(a, "--out")) out = cli_out_val(argc, argv, &i);
        else cli_unknown(a);
    }
    cli_require(model, "--model");
    load_model(&m, model);
    D = m.cfg.z_dim;
    dims = (int *)cli_alloc((size_t)D, sizeof(int));
    z0 = (float *)cli_alloc((size_t)D, sizeof(float));
    lo = (float *)cli_alloc((size_t)D, sizeof(float));
    hi = (float *)cli_alloc((size_t)D, sizeof(float));
    for (i = 0; i < D; i++) { dims[i] = i; lo[i] = (float)-range; hi[i] = (float)range; }
    n_dims = D;
    if (batch) traverse_base(&m, batch, (size_t)pic, z0, dims);
    if (dims_text) n_dims = parse_dims(dims_text, D, dims);
    g = (float *)cli_alloc((size_t)n_dims * (size_t)steps * (size_t)m.enc.in_n, sizeof(float));
    heph_vae_traverse(&m, z0, dims, n_dims, lo, hi, steps, g);
    cli_mkdirs(out);
    cli_write_grid(cli_join(out, "traverse.png").s, g, n_dims * steps, steps, m.cfg.in_c, m.cfg.in_h, m.cfg.in_w);
    printf("rows: dimensions");
    for (i = 0; i < n_dims; i++) printf(" z%d", dims[i]);
    printf(", each from %g to %g\n", -range, range);
    free(dims); free(z0); free(lo); free(hi); free(g);
    heph_vae_free(&m);
    return 0;
}

/* ---- sample -------------------------------------------------------------------------------- */

static const char *const sample_help =
    "usage: hephaestus sample --model FILE [options]\n"
    "Decodes draws z ~ N(0, I) from the prior. Writes samples.png (a grid), or with --each one\n"
    "PNG per picture (sample_000.png, ...). With --walk: decodes codes at increasing Mahalanobis\n"
    "distance from the mean of --batch (0 to --r-max) along --n random directions, one row per\n"
    "direction: from \"most like the group\" to \"most different\" (walk.png).\n"
    "  --model FILE        the trained model (.hpm), required\n"
    "  --n N               pictures, or walk directions (default 64, walk 8)\n"
    "  --cols C            grid columns (default 8)\n"
    "  --seed S            seed of the draws (default 1)\n"
    "  --each              one PNG file per picture instead of a grid\n"
    "  --walk              walk away from the batch mean (needs --batch)\n"
    "  --batch PATH        pictures for --walk (.hpd or folder)\n"
    "  --cov METHOD        covariance of the walk: empirical, ledoit-wolf, ridge[:EPS], mcd (default)\n"
    "  --steps T           walk: columns (default 8)\n"
    "  --r-max R           walk: the largest distance D (default 2 sqrt(chi^2_D 0.975 quantile))\n"
    "  --out DIR           output folder (default out)\n"
    "  -h, --help          this help\n";

typedef struct {
    cli_aopts a;       /* model, batch, cov, seed, out */
    int n, cols, each, walk, steps;
    double r_max;
} cli_sopts;

static void sample_each(heph_vae *m, const float *x, int n, const char *out) {
    int i, c = m->cfg.in_c, h = m->cfg.in_h, w = m->cfg.in_w;
    size_t np = (size_t)c * (size_t)h * (size_t)w, k;
    uint8_t *px = (uint8_t *)cli_alloc(np, 1);
    char name[32];
    if (c != 1 && c != 3) cli_fail("--each writes gray or RGB PNGs; the model has %d channels", c);
    for (i = 0; i < n; i++) { /* planar CHW floats -> interleaved u8 */
        for (k = 0; k < np; k++) {
            float v = x[(size_t)i * np + k];
            px[(k % ((size_t)h * (size_t)w)) * (size_t)c + k / ((size_t)h * (size_t)w)] = (uint8_t)(v <= 0.0f ? 0 : v >= 1.0f ? 255 : (int)(255.0f * v + 0.5f));
        }
        snprintf(name, sizeof name, "sample_%03d.png", i);
        if (!stbi_write_png(cli_join(out, name).s, w, h, c, px, w * c)) cli_fail("%s: cannot write the PNG", cli_join(out, name).s);
    }
    printf("wrote %d pictures %s/sample_000.png ... (%dx%d)\n", n, out, w, h);
    free(px);
}

static void sample_walk(heph_vae *m, const cli_sopts *o) {
    cli_run r;
    heph_rng rng;
    int D = m->cfg.z_dim, i, d;
    float *codes = (float *)cli_alloc((size_t)o->n * (size_t)o->steps * (size_t)D, sizeof(float)), *dir = (float *)cli_alloc((size_t)D, sizeof(float)), *g;
    double r_max = o->r_max > 0.0 ? o->r_max : 2.0 * sqrt(heph_chi2_quantile(0.975, D));
    memset(&r, 0, sizeof r);
    r.D = D;
    r.mu = encode_pictures(m, &r.pics, o->a.batch);
    fit_context(&r, &o->a, r.mu, r.pics.n, o->a.batch);
    heph_rng_seed(&rng, o->a.seed);
    for (i = 0; i < o->n; i++) { /* a random direction, then codes at distance 0 .. r_max along it */
        for (d = 0; d < D; d++) dir[d] = heph_rng_normal(&rng);
        heph_maha_walk(&r.fit, dir, r_max, o->steps, codes + (size_t)i * (size_t)o->steps * (size_t)D);
    }
    g = (float *)cli_alloc((size_t)o->n * (size_t)o->steps * (size_t)m->enc.in_n, sizeof(float));
    heph_vae_decode(m, codes, (size_t)o->n * (size_t)o->steps, g);
    cli_write_grid(cli_join(o->a.out, "walk.png").s, g, o->n * o->steps, o->steps, m->cfg.in_c, m->cfg.in_h, m->cfg.in_w);
    printf("rows: %d random directions from the mean of %s (covariance %s); columns: D = 0 .. %.3g\n", o->n, o->a.batch, r.cov_text, r_max);
    heph_maha_free(&r.fit);
    pics_free(&r.pics);
    free(r.mu); free(codes); free(dir); free(g);
}

static int cmd_sample(int argc, char **argv) {
    cli_sopts o;
    heph_vae m;
    heph_rng rng;
    float *x;
    int i;
    memset(&o, 0, sizeof o);
    aopts_default(&o.a);
    o.cols = 8; o.steps = 8;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h") || cli_is(a, "--help")) { fputs(sample_help, stdout); return 0; }
        else if (cli_is(a, "--model") || cli_is(a, "--batch") || cli_is(a, "--cov") || cli_is(a, "--seed") || cli_is(a, "--out")) aopts_flag(&o.a, argc, argv, &i);
        else if (cli_is(a, "--n")) o.n = (int)cli_long(a, cli_val(argc, argv, &i), 1, 100000);
        else if (cli_is(a, "--cols")) o.cols = (int)cli_long(a, cli_val(argc, argv, &i), 1, 10000);
        else if (cli_is(a, "--steps")) o.steps = (int)cli_long(a, cli_val(argc, argv, &i), 2, 1000);
        else if (cli_is(a, "--r-max")) o.r_max = cli_num(a, cli_val(argc, argv, &i), 1e-9, 1e9);
        else if (cli_is(a, "--each")) o.each = 1;
        else if (cli_is(a, "--walk")) o.walk = 1;
        else cli_unknown(a);
    }
    cli_require(o.a.model, "--model");
    if (o.walk) cli_require(o.a.batch, "--batch (for --walk)");
    if (!o.n) o.n = o.walk ? 8 : 64;
    load_model(&m, o.a.model);
    cli_mkdirs(o.a.out);
    if (o.walk) sample_walk(&m, &o);
    else {
        x = (float *)cli_alloc((size_t)o.n * (size_t)m.enc.in_n, sizeof(float));
        heph_rng_seed(&rng, o.a.seed);
        heph_vae_sample(&m, &rng, (size_t)o.n, x);
        if (o.each) sample_each(&m, x, o.n, o.a.out);
        else cli_write_grid(cli_join(o.a.out, "samples.png").s, x, o.n, o.cols, m.cfg.in_c, m.cfg.in_h, m.cfg.in_w);
        free(x);
    }
    heph_vae_free(&m);
    return 0;
}

/* ---- eval ----------------------------------------------------------------------------------- */

static const char *const eval_help =
    "usage: hephaestus eval --model FILE --data PATH [options]\n"
    "Evaluates a model on pictures (.hpd or folder): negative ELBO, reconstruction and KL in nats\n"
    "per image (one z sample each), SSIM(11, sigma 1.5, K 0.01/0.03, L=1, valid, per-channel\n"
    "mean) of the reconstructions from the posterior means, and, when the data has factors,\n"
    "mig_discrete (encoder means, 20 bins), mig_continuous (the beta-TCVAE estimator, every\n"
    "factor), mig_continuous_ordinal (the same estimator without the categorical factors) and\n"
    "the latent-factor correlation matrix. Writes eval.json, reconstructions.png, correlation.png.\n"
    "  --model FILE        the trained model (.hpm), required\n"
    "  --data PATH         the pictures, required\n"
    "  --n N               at most N pictures, drawn at random from a larger .hpd (default 5000)\n"
    "  --mig-samples S     entropy samples of mig_continuous (default 1000; 0 skips it)\n"
    "  --seed S            seed of the subset, the z samples and mig_continuous (default 1)\n"
    "  --categorical LIST  factor names left out of mig_continuous_ordinal, comma-separated\n"
    "                      (default shape,class; \"\" for none)\n"
    "  --threads T         OpenMP threads\n"
    "  --out DIR           output folder (default out)\n"
    "  -h, --help          this help\n";

typedef struct {
    double recon, kl, elbo, ssim, mig_d, mig_c, mig_co;
    double pf_d[HEPH_MAX_FACTORS], pf_c[HEPH_MAX_FACTORS], pf_co[HEPH_MAX_FACTORS];
    int ordinal[HEPH_MAX_FACTORS]; /* 1: the factor counts in mig_continuous_ordinal */
} cli_eval;

/* which factors are ordinal: those whose name is not in the comma-separated list cat */
static void eval_ordinal(const cli_pics *p, const char *cat, int *ordinal) {
    int k;
    for (k = 0; k < p->K; k++) {
        const char *s = cat;
        size_t len = strlen(p->names[k]);
        ordinal[k] = 1;
        while (*s) {
            size_t n = strcspn(s, ",");
            if (n == len && strncmp(s, p->names[k], n) == 0) ordinal[k] = 0;
            s += n + (s[n] == ',');
        }
    }
}

/* mean SSIM of the pictures against their reconstructions from the posterior means */
static double eval_ssim(heph_vae *m, const cli_pics *p, const float *mu) {
    size_t np = (size_t)p->c * (size_t)p->h * (size_t)p->w, i;
    float *rec = (float *)cli_alloc(np, sizeof(float));
    double s = 0.0;
    for (i = 0; i < p->n; i++) {
        heph_vae_decode(m, mu + i * (size_t)m->cfg.z_dim, 1, rec);
        s += heph_ssim(p->x + i * np, rec, p->c, p->h, p->w);
    }
    free(rec);
    return s / (double)p->n;
}

/* MIG under both estimators and the correlation heatmap (data with factors) */
static void eval_factors(heph_vae *m, const cli_pics *p, const float *mu, const float *lv, cli_eval *e, long samples, uint64_t seed, const char *out) {
    int D = m->cfg.z_dim, K = p->K, W = 140 + 70 * K, H = 110 + 30 * D, j;
    float *corr = (float *)cli_alloc((size_t)D * (size_t)K, sizeof(float));
    uint8_t *rgb = (uint8_t *)cli_alloc((size_t)W * (size_t)H, 3);
    const char *rl[4096], *cl[HEPH_MAX_FACTORS];
    char (*rb)[16] = (char (*)[16])cli_alloc((size_t)D, 16);
    e->mig_c = e->mig_co = (double)NAN;
    if (heph_mig_discrete(mu, p->n, D, p->labels, K, p->n_values, 20, &e->mig_d, e->pf_d, NULL) != HEPH_OK)
        cli_fail("%s: mig_discrete: invalid encodings or labels", p->path);
    if (samples > 0 && heph_mig_continuous(mu, lv, p->n, D, p->labels, K, p->n_values, NULL, (size_t)samples, seed, &e->mig_c, e->pf_c, NULL) != HEPH_OK)
        cli_fail("%s: mig_continuous: invalid encodings or labels", p->path);
    /* mig_continuous_ordinal: the mean gap of the ordinal factors of the same estimate (a
       factor's gap does not depend on which other factors are used) */
    if (samples > 0) {
        double sum = 0.0;
        int n_used = 0;
        for (j = 0; j < K; j++) {
            e->pf_co[j] = e->ordinal[j] ? e->pf_c[j] : (double)NAN;
            if (e->ordinal[j] && e->pf_c[j] == e->pf_c[j]) { sum += e->pf_c[j]; n_used++; }
        }
        e->mig_co = n_used ? sum / n_used : (double)NAN;
    }
    heph_correlation_matrix(mu, p->n, D, p->labels, K, corr);
    for (j = 0; j < D && j < 4096; j++) { snprintf(rb[j], 16, "z%d", j); rl[j] = rb[j]; }
    for (j = 0; j < K; j++) cl[j] = p->names[j];
    plot_heatmap(rgb, W, H, corr, D, K, -1.0f, 1.0f, rl, cl, "correlation: latent mean vs factor index");
    cli_write_png(cli_join(out, "correlation.png").s, rgb, W, H);
    printf("wrote %s (%dx%d)\n", cli_join(out, "correlation.png").s, W, H);
    free(corr); free(rgb); free(rb);
}

static void eval_json(const char *path, const char *model, const cli_pics *p, const cli_eval *e, long samples) {
    FILE *f = cli_fopen(path, "w");
    int k;
    fprintf(f, "{\n  \"model\": "); json_str(f, model);
    fprintf(f, ",\n  \"data\": "); json_str(f, p->path);
    fprintf(f, ",\n  \"pictures\": %zu,\n  \"recon\": ", p->n); json_num(f, e->recon);
    fprintf(f, ",\n  \"kl\": "); json_num(f, e->kl);
    fprintf(f, ",\n  \"elbo\": "); json_num(f, e->elbo);
    fprintf(f, ",\n  \"ssim\": "); json_num(f, e->ssim);
    fprintf(f, ",\n  \"ssim_settings\": \"SSIM(11, sigma 1.5, K 0.01/0.03, L=1, valid, per-channel mean)\"");
    if (p->K) {
        fprintf(f, ",\n  \"mig_discrete\": "); json_num(f, e->mig_d);
        fprintf(f, ",\n  \"mig_continuous\": "); json_num(f, samples > 0 ? e->mig_c : (double)NAN);
        fprintf(f, ",\n  \"mig_continuous_ordinal\": "); json_num(f, samples > 0 ? e->mig_co : (double)NAN);
        fprintf(f, ",\n  \"factors\": [");
        for (k = 0; k < p->K; k++) {
            fprintf(f, "%s\n    {\"name\": ", k ? "," : ""); json_str(f, p->names[k]);
            fprintf(f, ", \"ordinal\": %s", e->ordinal[k] ? "true" : "false");
            fprintf(f, ", \"mig_discrete\": "); json_num(f, e->pf_d[k]);
            fprintf(f, ", \"mig_continuous\": "); json_num(f, samples > 0 ? e->pf_c[k] : (double)NAN);
            fprintf(f, ", \"mig_continuous_ordinal\": "); json_num(f, samples > 0 ? e->pf_co[k] : (double)NAN);
            fputc('}', f);
        }
        fprintf(f, "\n  ]");
    }
    fprintf(f, "\n}\n");
    cli_fclose(f, path);
    printf("wrote %s\n", path);
}

static void eval_print(const cli_pics *p, const cli_eval *e, long samples) {
    int k;
    printf("%zu pictures: -ELBO %.4f = recon %.4f + KL %.4f (nats per image)\n", p->n, -e->elbo, e->recon, e->kl);
    if (e->ssim == e->ssim) printf("SSIM(11, sigma 1.5, K 0.01/0.03, L=1, valid, per-channel mean) %.4f\n", e->ssim);
    else printf("SSIM: not defined for pictures smaller than 11x11\n");
    if (!p->K) { printf("no factors in %s: no MIG and no correlation matrix\n", p->path); return; }
    printf("mig_discrete %.4f (20 bins, encoder means):", e->mig_d);
    for (k = 0; k < p->K; k++) printf(" %s %.3f", p->names[k], e->pf_d[k]);
    if (samples > 0) {
        printf("\nmig_continuous %.4f (%ld samples, every factor):", e->mig_c, samples);
        for (k = 0; k < p->K; k++) printf(" %s %.3f", p->names[k], e->pf_c[k]);
        printf("\nmig_continuous_ordinal %.4f (%ld samples, without", e->mig_co, samples);
        for (k = 0; k < p->K; k++)
            if (!e->ordinal[k]) printf(" %s", p->names[k]);
        printf("):");
        for (k = 0; k < p->K; k++)
            if (e->ordinal[k]) printf(" %s %.3f", p->names[k], e->pf_co[k]);
    }
    putchar('\n');
}

/* up to 16 pictures (top row) above their reconstructions from the posterior means */
static void eval_reconstructions(heph_vae *m, const cli_pics *p, const float *mu, const char *out) {
    size_t np = (size_t)p->c * (size_t)p->h * (size_t)p->w, k = p->n < 16 ? p->n : 16;
    float *g = (float *)cli_alloc(2 * k * np, sizeof(float));
    memcpy(g, p->x, k * np * sizeof(float));
    heph_vae_decode(m, mu, k, g + k * np);
    cli_write_grid(cli_join(out, "reconstructions.png").s, g, 2 * (int)k, (int)k, p->c, p->h, p->w);
    free(g);
}

static int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *out = "out", *cat = "shape,class";
    long n = 5000, samples = 1000;
    uint64_t seed = 1;
    int i, D;
    heph_vae m;
    cli_pics p;
    cli_eval e;
    heph_losses L;
    float *mu, *lv;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h") || cli_is(a, "--help")) { fputs(eval_help, stdout); return 0; }
        else if (cli_is(a, "--model")) model = cli_val(argc, argv, &i);
        else if (cli_is(a, "--data")) data = cli_val(argc, argv, &i);
        else if (cli_is(a, "--n")) n = cli_long(a, cli_val(argc, argv, &i), 1, 100000000L);
        else if (cli_is(a, "--categorical")) cat = cli_val(argc, argv, &i);
        else if (cli_is(a, "--mig-samples")) samples = cli_long(a, cli_val(argc, argv, &i), 0, 100000000L);
        else if (cli_is(a, "--seed")) seed = (uint64_t)cli_long(a, cli_val(argc, argv, &i), 0, 0x7fffffffL);
        else if (cli_is(a, "--threads")) cli_threads((int)cli_long(a, cli_val(argc, argv, &i), 1, 1024));
        else if (cli_is(a, "--out")) out = cli_out_val(argc, argv, &i);
        else cli_unknown(a);
    }
    cli_require(model, "--model");
    cli_require(data, "--data");
    load_model(&m, model);
    pics_load_some(&p, data, m.cfg.in_c, m.cfg.in_h, m.cfg.in_w, (size_t)n, seed);
    D = m.cfg.z_dim;
    memset(&e, 0, sizeof e);
    eval_ordinal(&p, cat, e.ordinal);
    if (heph_vae_evaluate(&m, p.x, p.n, seed, &L) != HEPH_OK) cli_fail("%s: %s", data, m.err);
    e.recon = L.recon; e.kl = L.kl; e.elbo = L.elbo;
    mu = (float *)cli_alloc(p.n * (size_t)D, sizeof(float));
    lv = (float *)cli_alloc(p.n * (size_t)D, sizeof(float));
    heph_vae_encode(&m, p.x, p.n, mu, lv);
    e.ssim = eval_ssim(&m, &p, mu);
    cli_mkdirs(out);
    if (p.K) eval_factors(&m, &p, mu, lv, &e, samples, seed, out);
    eval_print(&p, &e, samples);
    eval_json(cli_join(out, "eval.json").s, model, &p, &e, samples);
    eval_reconstructions(&m, &p, mu, out);
    free(mu); free(lv);
    pics_free(&p);
    heph_vae_free(&m);
    return 0;
}

/* ---- batch ----------------------------------------------------------------------------------- */

static const char *const batch_help =
    "usage: hephaestus batch --data SRC.hpd --normal RULES --n-normal N --outlier violate|RULES\n"
    "                        --n-outlier M --out BATCH.hpd [--seed S] [--shuffle]\n"
    "Builds a context batch from a .hpd with factors: N normal pictures (satisfying every\n"
    "--normal rule) and M outliers, each drawn uniformly without replacement. --outlier violate\n"
    "takes pictures that break at least one normal rule; --outlier RULES takes pictures that\n"
    "satisfy RULES (and not all normal rules). The output keeps the source's pixels and factors\n"
    "and adds a last factor \"is_outlier\" (0 normal, 1 outlier): the truth for AUROC.\n"
    "RULES: factor=VALUES joined by commas; factors by name or index, values by index as V, A-B\n"
    "or V|W, e.g. \"shape=0,wall_hue=2\", \"4=2,1=0-3\", \"class=7\".\n"
    "  --data SRC.hpd      the source, with factors (e.g. gen_shapes3d, idx2hpd with labels)\n"
    "  --normal RULES      what a normal picture is\n"
    "  --n-normal N        normal pictures (default 325)\n"
    "  --outlier WHAT      violate (default) or RULES\n"
    "  --n-outlier M       outliers (default 25)\n"
    "  --seed S            seed of the draws (default 1)\n"
    "  --shuffle           mix normals and outliers (default: normals first)\n"
    "  --out BATCH.hpd     the output file, required\n"
    "  -h, --help          this help\n";

typedef struct {
    const char *data, *normal, *outlier, *out;
    long n_normal, n_outlier;
    uint64_t seed;
    int shuffle;
} cli_bopts;

/* k of the n candidates, uniformly without replacement (partial Fisher-Yates) */
static void draw_k(heph_rng *rng, size_t *cand, size_t n, size_t k) {
    size_t i;
    for (i = 0; i < k; i++) {
        size_t j = i + (size_t)heph_rng_below64(rng, (uint64_t)(n - i)), t = cand[i];
        cand[i] = cand[j]; cand[j] = t;
    }
}

/* candidates of the source: normals match every normal rule; outliers break one of them
   (violate) or match the outlier rules without being normal */
static void batch_candidates(const heph_hpd *d, const cli_pics *f, const cli_bopts *o, size_t *nor, size_t *n_nor, size_t *out, size_t *n_out) {
    cli_rules rn, ro;
    size_t i, K = (size_t)d->info.n_factors;
    int violate = cli_is(o->outlier, "violate");
    rules_parse(&rn, o->normal, f, "--normal");
    if (!violate) rules_parse(&ro, o->outlier, f, "--outlier");
    *n_nor = *n_out = 0;
    for (i = 0; i < (size_t)d->info.count; i++) {
        const int32_t *lab = d->labels + i * K;
        int is_normal = rules_match(&rn, lab);
        if (is_normal) nor[(*n_nor)++] = i;
        else if (violate || rules_match(&ro, lab)) out[(*n_out)++] = i;
    }
    if (*n_nor < (size_t)o->n_normal)
        cli_fail("%s: only %zu pictures satisfy --normal %s, --n-normal asks for %ld", o->data, *n_nor, o->normal, o->n_normal);
    if (*n_out < (size_t)o->n_outlier)
        cli_fail("%s: only %zu pictures qualify as outliers (--outlier %s), --n-outlier asks for %ld", o->data, *n_out, o->outlier, o->n_outlier);
}

/* one picture of the source back into stored values of the output; NULL, or the message of
   what failed (the caller removes the temporary before it exits) */
static const char *batch_put(heph_hpd *d, heph_hpd_writer *w, size_t i, int is_outlier, float *x, uint8_t *u8, int32_t *fac) {
    size_t np = heph_hpd_picture_size(&d->info), k;
    uint32_t K = d->info.n_factors;
    if (heph_hpd_read(d, &i, 1, x) != HEPH_OK) return d->err;
    for (k = 0; k < K; k++) fac[k] = heph_hpd_label(d, i, (int)k);
    fac[K] = is_outlier;
    if (d->info.dtype == HEPH_PX_F32) {
        return heph_hpd_put_f32(w, x, fac) != HEPH_OK ? w->err : NULL;
    }
    for (k = 0; k < np; k++) { /* stored = value * value_max (u8), or the bit */
        float v = d->info.dtype == HEPH_PX_BIT ? (x[k] > 0.5f ? 1.0f : 0.0f) : x[k] * d->info.value_max;
        u8[k] = (uint8_t)(v <= 0.0f ? 0 : v >= 255.0f ? 255 : (int)(v + 0.5f));
    }
    return heph_hpd_put_u8(w, u8, fac) != HEPH_OK ? w->err : NULL;
}

static void batch_write(heph_hpd *d, const cli_bopts *o, const size_t *pick, const int *is_out, size_t n) {
    heph_hpd_info info = d->info;
    heph_hpd_writer w;
    size_t np = heph_hpd_picture_size(&d->info), i;
    float *x = (float *)cli_alloc(np, sizeof(float));
    uint8_t *u8 = (uint8_t *)cli_alloc(np, 1);
    int32_t fac[HEPH_MAX_FACTORS + 1];
    if (info.n_factors >= HEPH_MAX_FACTORS) cli_fail("%s: %u factors, no room for is_outlier (at most %d)", o->data, info.n_factors, HEPH_MAX_FACTORS);
    info.count = n;
    if (info.dtype == HEPH_PX_F32) info.value_max = 1.0f;
    info.flags &= ~(uint32_t)HEPH_HPD_GRID;
    info.seed = o->seed;
    snprintf(info.source, sizeof info.source, "batch");
    memset(&info.factors[info.n_factors], 0, sizeof info.factors[0]);
    snprintf(info.factors[info.n_factors].name, sizeof info.factors[0].name, "is_outlier");
    info.factors[info.n_factors].n_values = 2;
    info.n_factors++;
    cli_mkdirs_parent(o->out);
    if (heph_hpd_create(&w, o->out, &info) != HEPH_OK) cli_fail("%s", w.err);
    for (i = 0; i < n; i++) {
        const char *why = batch_put(d, &w, pick[i], is_out[i], x, u8, fac);
        if (why) {
            char msg[HEPH_ERRLEN];
            snprintf(msg, sizeof msg, "%s", why);
            heph_hpd_abort(&w); /* removes the temporary */
            cli_fail("%s", msg);
        }
    }
    if (heph_hpd_finish(&w) != HEPH_OK) cli_fail("%s", w.err);
    free(x); free(u8);
}

static void batch_parse(cli_bopts *o, int argc, char **argv) {
    int i;
    memset(o, 0, sizeof *o);
    o->n_normal = 325; o->n_outlier = 25; o->seed = 1; o->outlier = "violate";
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h") || cli_is(a, "--help")) { fputs(batch_help, stdout); exit(0); }
        else if (cli_is(a, "--data")) o->data = cli_val(argc, argv, &i);
        else if (cli_is(a, "--normal")) o->normal = cli_val(argc, argv, &i);
        else if (cli_is(a, "--outlier")) o->outlier = cli_val(argc, argv, &i);
        else if (cli_is(a, "--n-normal")) o->n_normal = cli_long(a, cli_val(argc, argv, &i), 0, 100000000L);
        else if (cli_is(a, "--n-outlier")) o->n_outlier = cli_long(a, cli_val(argc, argv, &i), 0, 100000000L);
        else if (cli_is(a, "--seed")) o->seed = (uint64_t)cli_long(a, cli_val(argc, argv, &i), 0, 0x7fffffffL);
        else if (cli_is(a, "--shuffle")) o->shuffle = 1;
        else if (cli_is(a, "--out")) o->out = cli_out_val(argc, argv, &i);
        else cli_unknown(a);
    }
    cli_require(o->data, "--data");
    cli_require(o->normal, "--normal");
    cli_require(o->out, "--out");
    if (o->n_normal + o->n_outlier == 0) cli_usage("--n-normal and --n-outlier are both 0: nothing to write");
}

/* Fisher-Yates over two parallel arrays */
static void shuffle_pairs(heph_rng *rng, size_t *a, int *b, size_t n) {
    size_t i;
    for (i = n; i > 1; i--) {
        size_t j = (size_t)heph_rng_below64(rng, (uint64_t)i), t = a[i - 1];
        int u = b[i - 1];
        a[i - 1] = a[j]; a[j] = t;
        b[i - 1] = b[j]; b[j] = u;
    }
}

static int cmd_batch(int argc, char **argv) {
    cli_bopts o;
    heph_hpd d;
    cli_pics f;
    heph_rng rng;
    size_t *nor, *out, *pick, n_nor, n_out, n, i;
    int *is_out;
    batch_parse(&o, argc, argv);
    cli_need_regular(o.data);
    if (heph_hpd_open(&d, o.data) != HEPH_OK) cli_fail("%s", d.err);
    if (d.info.n_factors == 0) cli_fail("%s has no factor labels: a batch is built from labelled pictures", o.data);
    if (d.info.count > (uint64_t)(size_t)-1) cli_fail("%s: %llu pictures, more than this build can index", o.data, (unsigned long long)d.info.count);
    memset(&f, 0, sizeof f);
    snprintf(f.path, sizeof f.path, "%s", o.data);
    pics_take_factors(&f, &d);
    nor = (size_t *)cli_alloc((size_t)d.info.count, sizeof(size_t));
    out = (size_t *)cli_alloc((size_t)d.info.count, sizeof(size_t));
    batch_candidates(&d, &f, &o, nor, &n_nor, out, &n_out);
    heph_rng_seed(&rng, o.seed);
    draw_k(&rng, nor, n_nor, (size_t)o.n_normal);
    draw_k(&rng, out, n_out, (size_t)o.n_outlier);
    n = (size_t)(o.n_normal + o.n_outlier);
    pick = (size_t *)cli_alloc(n, sizeof(size_t));
    is_out = (int *)cli_alloc(n, sizeof(int));
    for (i = 0; i < n; i++) { /* normals first ... */
        pick[i] = i < (size_t)o.n_normal ? nor[i] : out[i - (size_t)o.n_normal];
        is_out[i] = i >= (size_t)o.n_normal;
    }
    if (o.shuffle) shuffle_pairs(&rng, pick, is_out, n); /* ... or mixed */
    batch_write(&d, &o, pick, is_out, n);
    printf("wrote %s: %ld normal + %ld outlier pictures (%s), factor is_outlier; from %s (%zu normal and %zu outlier candidates)\n",
           o.out, o.n_normal, o.n_outlier, o.shuffle ? "shuffled" : "normals first", o.data, n_nor, n_out);
    free(nor); free(out); free(pick); free(is_out);
    heph_hpd_close(&d);
    return 0;
}

/* ---- export: a weights-only copy of a checkpoint, for shipping ---------------------------------- */

static const char *const export_help =
    "usage: hephaestus export [--format hpm|safetensors] [--keep-optimiser] MODEL.hpm OUT\n"
    "       hephaestus export --model FILE --out FILE [options]\n"
    "--format hpm (the default) writes a copy of a checkpoint without the Adam state (a third\n"
    "of the size), for shipping a trained model; training cannot resume exactly from it.\n"
    "--format safetensors writes the weights as F32 tensors that PyTorch can load into the\n"
    "equivalent nn.Module (encoder.L.weight, encoder.L.bias, decoder.L.*: layer L of the spec;\n"
    "tools/hephaestus_torch.py builds it), with the architecture in the file's metadata;\n"
    "`hephaestus import` reads it back. Written atomically.\n"
    "  --model FILE        the checkpoint to read (or the first argument)\n"
    "  --out FILE          the file to write (or the second argument)\n"
    "  --format F          hpm (default) or safetensors\n"
    "  --keep-optimiser    hpm: keep the Adam state (a plain, verified copy)\n"
    "  -h, --help          this help\n";

static int cmd_export(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *format = "hpm";
    int i, keep = 0;
    heph_vae m;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h") || cli_is(a, "--help")) { fputs(export_help, stdout); exit(0); }
        else if (cli_is(a, "--model")) model = cli_val(argc, argv, &i);
        else if (cli_is(a, "--out")) out = cli_out_val(argc, argv, &i);
        else if (cli_is(a, "--format")) format = cli_val(argc, argv, &i);
        else if (cli_is(a, "--keep-optimiser")) keep = 1;
        else if (a[0] != '-' && !model) model = a;
        else if (a[0] != '-' && !out) out = a;
        else cli_unknown(a);
    }
    cli_require(model, "--model");
    cli_require(out, "--out");
    if (!cli_is(format, "hpm") && !cli_is(format, "safetensors"))
        cli_usage("--format takes hpm or safetensors, got \"%s\"", format);
    if (keep && cli_is(format, "safetensors")) cli_usage("--keep-optimiser is for --format hpm");
    cli_need_regular(model);
    if (heph_vae_load(&m, model) != HEPH_OK) cli_fail("%s", m.err);
    if (m.cfg.n_classes && cli_is(format, "safetensors"))
        cli_fail("%s is a conditional VAE: safetensors export covers plain models only (its label tables have no "
                 "PyTorch module here yet); --format hpm copies it", model);
    if (cli_is(format, "safetensors")) {
        export_safetensors(&m, out);
    } else {
        cli_save_hpm_atomic(&m, out, keep ? 0 : HEPH_SAVE_WEIGHTS_ONLY);
        printf("wrote %s: %zu parameters, step %llu%s\n", out, m.n_params, (unsigned long long)m.step,
               keep ? "" : ", weights only");
    }
    heph_vae_free(&m);
    return 0;
}

/* ---- main ------------------------------------------------------------------------------------- */

static int dispatch(const char *sub, int argc, char **argv) {
    int i;
    cli_set_cmd(sub);
    for (i = 0; i < 5; i++)
        if (cli_is(sub, analysis_name[i])) return cmd_analysis(i, argc, argv);
    if (cli_is(sub, "train")) return cmd_train(argc, argv);
    if (cli_is(sub, "traverse")) return cmd_traverse(argc, argv);
    if (cli_is(sub, "sample")) return cmd_sample(argc, argv);
    if (cli_is(sub, "eval")) return cmd_eval(argc, argv);
    if (cli_is(sub, "batch")) return cmd_batch(argc, argv);
    if (cli_is(sub, "export")) return cmd_export(argc, argv);
    if (cli_is(sub, "import")) return cmd_import(argc, argv);
    if (cli_is(sub, "encode")) return cmd_encode(argc, argv);
    if (cli_is(sub, "classifier")) return cmd_classifier(argc, argv);
    if (cli_is(sub, "relabel")) return cmd_relabel(argc, argv);
    if (cli_is(sub, "cycle-train")) return cmd_cycle_train(argc, argv);
    if (cli_is(sub, "transfer")) return cmd_transfer(argc, argv);
    if (cli_is(sub, "cycle-eval")) return cmd_cycle_eval(argc, argv);
    snprintf(cli_cmd, sizeof cli_cmd, "hephaestus");
    cli_usage("unknown subcommand \"%s\" (see hephaestus --help)", sub);
    return CLI_USAGE;
}

int main(int argc, char **argv) {
    const char *sub;
    char help[] = "--help", *hv[1];
    int i, j;
    hv[0] = help;
    cli_budget_default();
    for (i = j = 1; i < argc; i++) { /* --mem-budget MB: any subcommand, taken out of argv */
        if (cli_is(argv[i], "--mem-budget")) {
            const char *v = cli_val(argc, argv, &i);
            if (cli_budget_parse(v) != 0) cli_usage("--mem-budget takes an integer in 1..%ld (MB), got \"%s\"", 1L << 30, v);
            continue;
        }
        argv[j++] = argv[i];
    }
    argc = j;
    argv[argc] = NULL;
    sub = argc > 1 ? argv[1] : NULL;
    if (!sub) { fputs(main_help, stderr); return CLI_USAGE; }
    if (cli_is(sub, "-h") || cli_is(sub, "--help") || (cli_is(sub, "help") && argc == 2)) { fputs(main_help, stdout); return 0; }
    if (cli_is(sub, "--version")) { printf("hephaestus %s\n", HEPH_VERSION_STRING); return 0; }
    if (cli_is(sub, "help")) return dispatch(argv[2], 1, hv); /* hephaestus help SUB */
    return dispatch(sub, argc - 2, argv + 2);
}
