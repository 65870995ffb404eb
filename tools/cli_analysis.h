/* cli_analysis.h - the outlier pipeline behind `outliers`, `explain`, `counterfactual`,
   `morph` and `report` (DESIGN §5):
     1. encode every picture of the batch to its posterior mean mu_i;
     2. fit mean m and covariance S on the context: the batch itself, or --reference;
     3. score D^2_i = (mu_i - m)^T S^-1 (mu_i - m), rank, threshold, AUROC against the truth;
     4. explain every picture: z-scores and the contributions that add up to D^2;
     5. the normal mean: mean code of the context pictures under the threshold.
   The writers of each subcommand's files follow.                                          */
#ifndef HEPH_CLI_ANALYSIS_H
#define HEPH_CLI_ANALYSIS_H

#include <limits.h>
#include "cli_common.h"
#include "cli_data.h"
#include "plot.h"

enum { THR_FIXED, THR_CHI2, THR_MAD, THR_QUANTILE };
/* what ranks the pictures (--score): D^2, or the library's other scores (issue #21) */
enum { SCORE_MAHA, SCORE_MARGINAL, SCORE_KNN, SCORE_GMM, SCORE_RECON, SCORE_ELBO, SCORE_IWAE, SCORE_COMPLEXITY, SCORE_COMBINED, N_SCORES };
static const char *const score_names[N_SCORES] = {"mahalanobis", "marginal", "knn", "gmm", "recon", "elbo", "iwae", "complexity", "combined"};
/* combined's members when --score combined names none: one score per kind of outlier (far off,
   one odd factor or a gap, off the normal manifold, between modes, foreign, simple foreign)  */
static const int combined_default[6] = {SCORE_MAHA, SCORE_MARGINAL, SCORE_KNN, SCORE_GMM, SCORE_RECON, SCORE_COMPLEXITY};

typedef struct {
    const char *model, *batch, *reference, *out, *truth;
    int cov;            /* HEPH_COV_*                                            */
    double cov_param;   /* ridge epsilon or MCD support fraction (0: default)    */
    int thr_mode;       /* THR_*                                                 */
    double thr_value;   /* the threshold, chi^2 probability p, or MAD factor k   */
    uint64_t seed;      /* MCD random starts                                     */
    int top_k;          /* deviant dimensions per picture                        */
    double zmin;        /* |z| a dimension needs to count as a reason            */
    int max_show;       /* pictures in grids and tables                          */
    int steps;          /* morph frames                                          */
    int want_auroc;     /* --auroc: fail when there is no truth                  */
    int take_top;       /* > 0: show the take_top highest scores, flagged or not */
    int score;          /* SCORE_*                                               */
    int knn_k;          /* knn: the k-th neighbour                               */
    int samples;        /* elbo, iwae: z samples per picture                     */
    int gmm_k;          /* gmm: the most components BIC may choose               */
    int thr_given;      /* --threshold or --auto was given                       */
    int score_given;    /* --score was given (else: combined with --reference)   */
    int members[N_SCORES], n_members; /* combined: the scores it combines        */
    double fpr;         /* --fpr: the requested false-positive rate (0: not set) */
    double calib;       /* combined with --reference: share held out to calibrate */
    const char *save_scorer, *scorer; /* --save-scorer FILE, --scorer FILE         */
    int stream;         /* --stream: score in chunks with --scorer (cli_stream.h) */
    int chunk;          /* --chunk: pictures per chunk of --stream (0: its default) */
} cli_aopts;

static void aopts_default(cli_aopts *o) {
    memset(o, 0, sizeof *o);
    o->out = "out";
    o->cov = HEPH_COV_MCD;
    o->cov_param = 0.9; /* support 90 %: see parse_cov */
    o->thr_mode = THR_CHI2;
    o->thr_value = 0.975;
    o->seed = 1;
    o->top_k = 3;
    o->zmin = 2.0;
    o->max_show = 16;
    o->steps = 8;
    o->score = SCORE_MAHA;
    o->knn_k = 5;
    o->samples = 16;
    o->gmm_k = 5;
    o->n_members = 6;
    memcpy(o->members, combined_default, sizeof combined_default);
    o->calib = 0.3;
}

/* outliers only (the other subcommands show a batch held in memory) */
static const char *const stream_help =
    "  --stream            score a batch of any size with --scorer FILE in chunks (memory\n"
    "                      does not grow with it), a progress line on stderr; keeps the\n"
    "                      --top N highest (default 100) for outliers.csv/.json, counts the\n"
    "                      flagged, and with the truth measures recall, the false-positive\n"
    "                      rate and AUROC (from a histogram, with its bound)\n"
    "  --chunk N           --stream: pictures per chunk (default 2048; rounded up to whole\n"
    "                      batches of the model, which keeps the in-memory run's scores)\n";

/* two strings: C99 promises string literals up to 4095 characters */
static const char *const aopts_help[2] = {
    "  --model FILE        the trained model (.hpm), required\n"
    "  --batch PATH        the pictures: a .hpd file or a folder of PNG/JPEG (fitted to the\n"
    "                      model's input size and channels), required\n"
    "  --reference PATH    fit mean and covariance on these pictures and score --batch\n"
    "                      against them (default: the batch is its own context)\n"
    "  --cov METHOD        empirical | ledoit-wolf | ridge[:EPS] | mcd[:FRACTION] (default\n"
    "                      mcd:0.9: robust FastMCD on the 90 % most central pictures, so that\n"
    "                      outliers do not shape their own reference; mcd:0.5 is the classic\n"
    "                      maximum-breakdown fit, which on a multi-modal normal part scores\n"
    "                      half of it as outlying)\n"
    "  --score S           what ranks the pictures: mahalanobis (D^2 of the means; the\n"
    "                      default without --reference), combined[:S+S+...] (the default\n"
    "                      with --reference: each member's tail probability on held-out\n"
    "                      normal pictures, the smallest Sidak-corrected, -ln P; members\n"
    "                      mahalanobis+marginal+knn+gmm+recon+complexity unless named),\n"
    "                      marginal (each latent dimension alone: kernel-density tail\n"
    "                      p-values, Sidak-combined, -ln P; catches one odd factor and values\n"
    "                      in a gap), knn[:K] (distance to the K-th nearest context code,\n"
    "                      default 5), gmm[:K] (-ln p(z) under a Gaussian mixture of the context\n"
    "                      codes, 1..K components chosen by BIC, default 5: normal sets with\n"
    "                      several modes), recon (-ln p(x | z = mean): pictures the model cannot\n"
    "                      draw, e.g. foreign data), elbo[:K] (the negative ELBO, mean of K\n"
    "                      samples, default 16), iwae[:K] (the importance-weighted bound on\n"
    "                      -ln p(x) with K samples, default 16; the noise comes from --seed),\n"
    "                      complexity[:K] (iwae in bits minus the picture's PNG length in bits,\n"
    "                      Serra et al. 2020: simple foreign pictures stop looking likely).\n"
    "                      Explanations stay z-scores and D^2 parts; outliers.json names\n"
    "                      the member that decided each combined score\n"
    "  --calibrate F       combined with --reference: the share of the reference pictures\n"
    "                      held out to calibrate the members (default 0.3; at least 20);\n"
    "                      recon, elbo, iwae, complexity calibrate on every one\n"
    "  --fpr A             flag at a requested false-positive rate: the 1 - A quantile of the\n"
    "                      calibration pictures' scores (combined's default: 0.01)\n"
    "  --save-scorer FILE  combined with --reference: also write the fitted scorer (the fit\n"
    "                      part's codes, the calibration scores, the settings) to FILE\n"
    "  --scorer FILE       score the batch with a saved scorer instead of --reference: no\n"
    "                      reference pictures are read or encoded (the same model needed)\n"
    ,
    "  --threshold X       flag pictures with a score > X\n"
    "  --auto RULE         chi2[:P]: the P quantile of chi^2 with D degrees of freedom\n"
    "                      (mahalanobis only; its default chi2:0.975); mad[:K]: median + K *\n"
    "                      1.4826 MAD of the context's scores (default K 3); quantile[:P]: the\n"
    "                      P quantile of the context's own scores, each scored without itself\n"
    "                      (default P 0.975; the default of the scores but D^2 and combined)\n"
    "  --truth RULES       which pictures are true outliers, e.g. is_outlier=1 (the default\n"
    "                      when the batch has that factor) or class=8\n"
    "  --auroc             require the truth (error when the batch has no labels)\n"
    "  --top-k K           deviant dimensions per picture (default 3)\n"
    "  --zmin Z            |z-score| a dimension needs to count as a reason (default 2)\n"
    "  --max N             pictures shown in grids and printed tables (default 16)\n"
    "  --top N             take the N highest scores instead of the flagged pictures\n"
    "  --seed S            seed of MCD's random starts, the mixture's starts, the samples of\n"
    "                      elbo/iwae/complexity and combined's split (default 1)\n"
    "  --out DIR           output folder (default out; created when missing)\n"};

/* "mcd", "ridge:0.1", ... */
static void parse_cov(cli_aopts *o, const char *v) {
    const char *colon = strchr(v, ':');
    size_t len = colon ? (size_t)(colon - v) : strlen(v);
    o->cov_param = 0.0; /* mcd without a fraction: the library's default (n + D + 1) / 2 */
    if (len == 9 && !strncmp(v, "empirical", len)) o->cov = HEPH_COV_EMPIRICAL;
    else if (len == 11 && !strncmp(v, "ledoit-wolf", len)) o->cov = HEPH_COV_LEDOIT_WOLF;
    else if (len == 5 && !strncmp(v, "ridge", len)) o->cov = HEPH_COV_RIDGE;
    else if (len == 3 && !strncmp(v, "mcd", len)) o->cov = HEPH_COV_MCD;
    else cli_usage("--cov takes empirical, ledoit-wolf, ridge[:EPS] or mcd[:FRACTION], got \"%s\"", v);
    if (colon && (o->cov == HEPH_COV_EMPIRICAL || o->cov == HEPH_COV_LEDOIT_WOLF)) cli_usage("--cov %.*s takes no parameter", (int)len, v);
    if (colon) o->cov_param = o->cov == HEPH_COV_RIDGE ? cli_num("--cov ridge:EPS", colon + 1, 1e-300, 1e300)
                                                       : cli_num("--cov mcd:FRACTION", colon + 1, 0.5, 1.0);
}

static void parse_auto(cli_aopts *o, const char *v) {
    const char *colon = strchr(v, ':');
    if (!strncmp(v, "chi2", 4) && (v[4] == '\0' || v[4] == ':')) {
        o->thr_mode = THR_CHI2;
        o->thr_value = colon ? cli_num("--auto chi2:P", colon + 1, 1e-9, 1.0 - 1e-12) : 0.975;
    } else if (!strncmp(v, "mad", 3) && (v[3] == '\0' || v[3] == ':')) {
        o->thr_mode = THR_MAD;
        o->thr_value = colon ? cli_num("--auto mad:K", colon + 1, 0.0, 1e6) : 3.0;
    } else if (!strncmp(v, "quantile", 8) && (v[8] == '\0' || v[8] == ':')) {
        o->thr_mode = THR_QUANTILE;
        o->thr_value = colon ? cli_num("--auto quantile:P", colon + 1, 0.0, 1.0) : 0.975;
    } else {
        cli_usage("--auto takes chi2[:P], mad[:K] or quantile[:P], got \"%s\"", v);
    }
    o->thr_given = 1;
}

static void parse_members(cli_aopts *o, const char *list);
/* "marginal", "knn:10", ... */
static void parse_score(cli_aopts *o, const char *v) {
    int k;
    o->score_given = 1;
    if (!strncmp(v, "combined:", 9)) { parse_members(o, v + 9); return; }
    for (k = 0; k < N_SCORES; k++)
        if (cli_is(v, score_names[k])) { o->score = k; return; }
    if (!strncmp(v, "knn:", 4)) { o->score = SCORE_KNN; o->knn_k = (int)cli_long("--score knn:K", v + 4, 1, 100000); return; }
    if (!strncmp(v, "gmm:", 4)) { o->score = SCORE_GMM; o->gmm_k = (int)cli_long("--score gmm:K", v + 4, 1, 16); return; }
    if (!strncmp(v, "elbo:", 5)) { o->score = SCORE_ELBO; o->samples = (int)cli_long("--score elbo:K", v + 5, 1, 100000); return; }
    if (!strncmp(v, "iwae:", 5)) { o->score = SCORE_IWAE; o->samples = (int)cli_long("--score iwae:K", v + 5, 1, 100000); return; }
    if (!strncmp(v, "complexity:", 11)) { o->score = SCORE_COMPLEXITY; o->samples = (int)cli_long("--score complexity:K", v + 11, 1, 100000); return; }
    cli_usage("--score takes mahalanobis, marginal, knn[:K], gmm[:K], recon, elbo[:K], iwae[:K], complexity[:K] or "
              "combined[:S+S+...], got \"%s\"", v);
}

/* "marginal+knn:3+recon": the members of combined, each parsed as a --score of its own */
static void parse_members(cli_aopts *o, const char *list) {
    char tok[64];
    const char *p = list;
    o->n_members = 0;
    while (*p) {
        size_t len = strcspn(p, "+");
        cli_aopts t = *o;
        int k;
        if (len == 0 || len >= sizeof tok) cli_usage("--score combined:S+S+...: an empty or too long member in \"%s\"", list);
        memcpy(tok, p, len); tok[len] = '\0';
        parse_score(&t, tok);
        if (t.score == SCORE_COMBINED) cli_usage("--score combined: \"%s\" cannot be one of its own members", tok);
        for (k = 0; k < o->n_members; k++)
            if (o->members[k] == t.score) cli_usage("--score combined: %s is named twice in \"%s\"", score_names[t.score], list);
        o->members[o->n_members++] = t.score;
        o->knn_k = t.knn_k; o->gmm_k = t.gmm_k;
        if (t.score >= SCORE_ELBO) o->samples = t.samples;
        p += len + (p[len] == '+');
    }
    if (o->n_members == 0) cli_usage("--score combined:S+S+...: name at least one member, e.g. combined:marginal+knn");
    o->score = SCORE_COMBINED;
}

/* one of the shared options at argv[*i]? (consumes its value) */
static int aopts_flag(cli_aopts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (cli_is(a, "--model")) o->model = cli_val(argc, argv, i);
    else if (cli_is(a, "--batch")) o->batch = cli_val(argc, argv, i);
    else if (cli_is(a, "--reference")) o->reference = cli_val(argc, argv, i);
    else if (cli_is(a, "--cov")) parse_cov(o, cli_val(argc, argv, i));
    else if (cli_is(a, "--threshold")) { o->thr_mode = THR_FIXED; o->thr_given = 1; o->thr_value = cli_num(a, cli_val(argc, argv, i), -1e300, 1e300); }
    else if (cli_is(a, "--score")) parse_score(o, cli_val(argc, argv, i));
    else if (cli_is(a, "--auto")) parse_auto(o, cli_val(argc, argv, i));
    else if (cli_is(a, "--fpr")) {
        o->fpr = cli_num(a, cli_val(argc, argv, i), 1e-9, 0.5);
        o->thr_mode = THR_QUANTILE; o->thr_value = 1.0 - o->fpr; o->thr_given = 1;
    } else if (cli_is(a, "--calibrate")) o->calib = cli_num(a, cli_val(argc, argv, i), 0.05, 0.95);
    else if (cli_is(a, "--save-scorer")) o->save_scorer = cli_out_val(argc, argv, i);
    else if (cli_is(a, "--scorer")) o->scorer = cli_val(argc, argv, i);
    else if (cli_is(a, "--stream")) o->stream = 1;
    else if (cli_is(a, "--chunk")) o->chunk = (int)cli_long(a, cli_val(argc, argv, i), 1, 1 << 20);
    else if (cli_is(a, "--truth")) o->truth = cli_val(argc, argv, i);
    else if (cli_is(a, "--auroc")) o->want_auroc = 1;
    else if (cli_is(a, "--top-k")) o->top_k = (int)cli_long(a, cli_val(argc, argv, i), 1, 256);
    else if (cli_is(a, "--zmin")) o->zmin = cli_num(a, cli_val(argc, argv, i), 0.0, 1e6);
    else if (cli_is(a, "--max")) o->max_show = (int)cli_long(a, cli_val(argc, argv, i), 1, 100000);
    else if (cli_is(a, "--top")) o->take_top = (int)cli_long(a, cli_val(argc, argv, i), 1, 100000000);
    else if (cli_is(a, "--seed")) o->seed = (uint64_t)cli_long(a, cli_val(argc, argv, i), 0, 0x7fffffffL);
    else if (cli_is(a, "--out")) o->out = cli_out_val(argc, argv, i);
    else return 0;
    return 1;
}

/* ---- the run ------------------------------------------------------------------------------- */

typedef struct {
    heph_vae m;
    cli_pics pics;        /* the batch, fitted to the model                              */
    size_t n;
    int D;
    float *mu;            /* (n, D) posterior means                                      */
    heph_maha fit;        /* mean and covariance of the context                          */
    size_t n_ctx;         /* pictures in the context                                     */
    double *d2;           /* (n) squared Mahalanobis distances                           */
    double *score;        /* (n) the --score: d2 itself, or its own array                */
    double *pdim;         /* (n, D) marginal: -ln p per dimension, else NULL             */
    size_t *order;        /* (n) picture indices by decreasing score                     */
    size_t *rank;         /* (n) rank of picture i (1 = largest score)                   */
    unsigned char *flag;  /* (n) score > threshold                                       */
    size_t n_flagged;
    int *truth;           /* (n) 1 = true outlier, or NULL when unknown                  */
    double thr, auroc;    /* auroc NaN without truth                                     */
    int thr_mode;         /* the rule that set thr (THR_*) and its parameter             */
    double thr_param;
    char thr_text[160], cov_text[96], truth_text[128];
    double *normal_mean;  /* (D) mean code of the context pictures under the threshold   */
    double *zs, *contrib; /* (n, D) z-scores and contributions                           */
    int K;                /* combined: members, their tail ln p (n, K), the deciding one */
    double *mlogp;
    int *mwhich;
    size_t n_fit, n_cal;  /* combined with --reference: the split of the reference set   */
    double *cal;          /* (n_cal, K) the calibration pictures' member scores (kept)    */
    double *tail[N_SCORES]; /* combined: the scores each member's tail is fitted on: the    */
    size_t tail_n[N_SCORES]; /* calibration pictures', or every reference picture's for the
                                scores of the pictures themselves (they fit nothing)          */
    size_t *ref_idx;      /* reference mode: the split (fit part first, then calibration)  */
    const float *fitz;    /* (n_fitz, D) the codes the fits saw: the batch (context mode), */
    size_t n_fitz;        /* the reference or its fit part, or the scorer's codes          */
    float *own_fitz;      /* fitz when the run owns it (not the batch's own mu)            */
    cli_pics ref;         /* --reference: its pictures, kept for the nearest normal ones   */
    size_t *nn;           /* (n, CLI_NN) the selected pictures' nearest fit codes, nearest  */
    double *nn_d;         /*   first ((size_t)-1 for the others); their distances          */
    double *res_sum, *res_max; /* (n) the selected pictures' |x - decode(mu)|: sum, largest */
    size_t *res_at;       /* (n) where the largest is, as c H W + y W + x                  */
} cli_run;
enum { CLI_NN = 3 };      /* nearest normal pictures shown per outlier                      */

static void load_any_model(heph_vae *m, const char *path) {
    cli_need_regular(path);
    if (heph_vae_load(m, path) != HEPH_OK) cli_fail("%s", m->err);
}

/* a plain VAE: a conditional one needs a label with every picture, which these subcommands
   do not take */
static void load_model(heph_vae *m, const char *path) {
    load_any_model(m, path);
    if (m->cfg.n_classes)
        cli_fail("%s is a conditional VAE (%d labels): `hephaestus relabel` uses it with labels; `%s` takes a plain VAE",
                 path, m->cfg.n_classes, cli_cmd);
}

/* a network file (.hpn) that classifies the pictures of model m into its labels, frozen */
static void load_classifier(heph_net *cls, const char *path, heph_vae *m) {
    char err[HEPH_ERRLEN];
    cli_need_regular(path);
    if (heph_net_load(cls, path, m->cfg.max_batch, err, sizeof err) != HEPH_OK) cli_fail("%s", err);
    if (heph_vae_set_classifier(m, cls) != HEPH_OK) cli_fail("%s: %s", path, m->err);
}

/* pictures of path fitted to the model, and their posterior means */
static float *encode_pictures(heph_vae *m, cli_pics *p, const char *path) {
    float *mu;
    pics_load(p, path, m->cfg.in_c, m->cfg.in_h, m->cfg.in_w);
    mu = (float *)cli_alloc(p->n * (size_t)m->cfg.z_dim, sizeof(float));
    heph_vae_encode(m, p->x, p->n, mu, NULL);
    return mu;
}

static const char *cov_name(int cov) {
    return cov == HEPH_COV_EMPIRICAL ? "empirical" : cov == HEPH_COV_LEDOIT_WOLF ? "ledoit-wolf" : cov == HEPH_COV_RIDGE ? "ridge" : "mcd";
}

/* fit the context codes (n, D); the too-few-pictures cases get their own messages */
static void fit_context(cli_run *r, const cli_aopts *o, const float *ctx, size_t n, const char *path) {
    int D = r->D;
    if (o->cov == HEPH_COV_EMPIRICAL && n <= (size_t)D)
        cli_fail("%s: %zu pictures for %d latent dimensions: the empirical covariance is singular; use --cov ledoit-wolf "
                 "(always invertible) or --cov mcd (needs more than %d pictures)", path, n, D, D + 1);
    if (o->cov == HEPH_COV_MCD && n <= (size_t)D + 1)
        cli_fail("%s: %zu pictures for %d latent dimensions: MCD needs more than %d; use --cov ledoit-wolf or --cov ridge, "
                 "or a larger batch", path, n, D, D + 1);
    if (heph_maha_fit(&r->fit, ctx, n, D, o->cov, o->cov_param, o->seed) != HEPH_OK)
        cli_fail("%s: %s%s", path, r->fit.err, o->cov == HEPH_COV_LEDOIT_WOLF || strstr(r->fit.err, "identical")
                                                   ? " (try --cov ridge)" : " (try --cov ledoit-wolf or --cov ridge)");
    if (o->cov == HEPH_COV_LEDOIT_WOLF) snprintf(r->cov_text, sizeof r->cov_text, "ledoit-wolf (shrinkage %.4f)", r->fit.shrinkage);
    else if (o->cov == HEPH_COV_RIDGE) snprintf(r->cov_text, sizeof r->cov_text, "ridge (+%g I)", r->fit.shrinkage);
    else if (o->cov == HEPH_COV_MCD) {
        size_t i, s = 0;
        for (i = 0; i < n; i++) s += r->fit.support[i];
        snprintf(r->cov_text, sizeof r->cov_text, "mcd (reweighted support %zu of %zu)", s, n);
    } else snprintf(r->cov_text, sizeof r->cov_text, "empirical");
}

/* the P quantile of n scores (linear between order statistics, numpy's default) */
static double quantile_of(const double *v, size_t n, double P) {
    double *c = (double *)cli_alloc(n, sizeof(double)), pos, q;
    size_t i, lo;
    memcpy(c, v, n * sizeof(double));
    for (i = 1; i < n; i++) { /* insertion sort: n is a context, a few thousand at most here */
        double t = c[i];
        size_t j = i;
        while (j > 0 && c[j - 1] > t) { c[j] = c[j - 1]; j--; }
        c[j] = t;
    }
    pos = P * (double)(n - 1);
    lo = (size_t)pos;
    q = lo + 1 < n ? c[lo] + (pos - (double)lo) * (c[lo + 1] - c[lo]) : c[n - 1];
    free(c);
    return q;
}

/* the threshold on the score from the context's scores (ctx_s: each scored without itself) */
static void set_threshold(cli_run *r, const cli_aopts *o, const double *ctx_d2, size_t n) {
    r->thr_mode = o->thr_mode;
    r->thr_param = o->thr_value;
    if (o->thr_mode == THR_QUANTILE) {
        const char *whose = o->score == SCORE_COMBINED && (o->reference || o->scorer) ? "calibration pictures'" : "context's own";
        r->thr = quantile_of(ctx_d2, n, o->thr_value);
        if (o->fpr > 0.0)
            snprintf(r->thr_text, sizeof r->thr_text, "%.6g (false-positive rate %g requested: the %g quantile of the %s scores)",
                     r->thr, o->fpr, o->thr_value, whose);
        else snprintf(r->thr_text, sizeof r->thr_text, "%.6g (the %g quantile of the %s scores)", r->thr, o->thr_value, whose);
    } else if (o->thr_mode == THR_FIXED) {
        r->thr = o->thr_value;
        snprintf(r->thr_text, sizeof r->thr_text, "%.6g (given)", r->thr);
    } else if (o->thr_mode == THR_CHI2) {
        r->thr = heph_chi2_quantile(o->thr_value, r->D);
        snprintf(r->thr_text, sizeof r->thr_text, "%.6g (chi^2 quantile p %g, %d degrees of freedom)", r->thr, o->thr_value, r->D);
    } else {
        if (heph_threshold_mad(ctx_d2, n, o->thr_value, &r->thr) != HEPH_OK) cli_fail("out of memory for the MAD threshold of %zu scores", n);
        snprintf(r->thr_text, sizeof r->thr_text, "%.6g (median + %g * 1.4826 MAD)", r->thr, o->thr_value);
    }
}

/* truth from --truth (or the factor is_outlier when present); AUROC when known */
static void set_truth(cli_run *r, const cli_aopts *o) {
    cli_rules rs;
    const char *text = o->truth;
    float *s;
    int k;
    size_t i;
    r->auroc = (double)NAN;
    for (k = 0; !text && k < r->pics.K; k++)
        if (cli_is(r->pics.names[k], "is_outlier")) text = "is_outlier=1";
    if (!text) {
        if (o->want_auroc)
            cli_fail("%s has %s, so there is no AUROC (--auroc): give a .hpd with the factor is_outlier (made by `hephaestus "
                     "batch`) or name the truth with --truth RULES", r->pics.path,
                     r->pics.K ? "no ground truth (no factor is_outlier)" : "no labels at all");
        return;
    }
    if (r->pics.K == 0)
        cli_fail("%s has no factor labels, so --truth %s (and AUROC) cannot be evaluated", r->pics.path, text);
    rules_parse(&rs, text, &r->pics, "--truth");
    snprintf(r->truth_text, sizeof r->truth_text, "%s", text);
    r->truth = (int *)cli_alloc(r->n, sizeof(int));
    s = (float *)cli_alloc(r->n, sizeof(float));
    for (i = 0; i < r->n; i++) {
        r->truth[i] = rules_match(&rs, r->pics.labels + i * (size_t)r->pics.K);
        s[i] = (float)r->score[i];
    }
    if (heph_auroc(s, r->truth, r->n, &r->auroc) != HEPH_OK) cli_fail("AUROC: the scores are not finite");
    free(s);
}

/* mean code of the context pictures with D^2 <= thr (all of them when none is) */
static void set_normal_mean(cli_run *r, const float *ctx, const double *ctx_d2, size_t n, double thr) {
    size_t i, cnt = 0;
    int d;
    r->normal_mean = (double *)cli_alloc((size_t)r->D, sizeof(double));
    for (i = 0; i < n; i++) {
        if (ctx_d2[i] > thr) continue;
        cnt++;
        for (d = 0; d < r->D; d++) r->normal_mean[d] += (double)ctx[i * (size_t)r->D + (size_t)d];
    }
    for (d = 0; d < r->D; d++) r->normal_mean[d] = cnt ? r->normal_mean[d] / (double)cnt : r->fit.mean[d];
}

static void run_scores(cli_run *r) {
    size_t i;
    r->order = (size_t *)cli_alloc(r->n, sizeof(size_t));
    r->rank = (size_t *)cli_alloc(r->n, sizeof(size_t));
    r->flag = (unsigned char *)cli_alloc(r->n, 1);
    r->zs = (double *)cli_alloc(r->n * (size_t)r->D, sizeof(double));
    r->contrib = (double *)cli_alloc(r->n * (size_t)r->D, sizeof(double));
    if (heph_rank_desc(r->score, r->n, r->order) != HEPH_OK) cli_fail("out of memory ranking %zu scores", r->n);
    for (i = 0; i < r->n; i++) {
        r->rank[r->order[i]] = i + 1;
        r->flag[i] = r->score[i] > r->thr;
        r->n_flagged += r->flag[i];
        heph_maha_explain(&r->fit, r->mu + i * (size_t)r->D, r->zs + i * (size_t)r->D, r->contrib + i * (size_t)r->D);
    }
}

/* L(x) in bits: 8 times the length of the picture's PNG (8 bits per value, stb's compressor) */
static double png_bits(const float *x, int c, int h, int w) {
    size_t np = (size_t)h * (size_t)w, i;
    uint8_t *px = (uint8_t *)cli_alloc(np * (size_t)c, 1);
    cli_buf png = {0, 0, 0};
    double bits;
    int ch;
    for (i = 0; i < np; i++) /* planar floats to interleaved bytes */
        for (ch = 0; ch < c; ch++) {
            float v = x[(size_t)ch * np + i];
            px[i * (size_t)c + (size_t)ch] = (uint8_t)(v > 0.0f ? (v < 1.0f ? v * 255.0f + 0.5f : 255.0f) : 0.0f);
        }
    if (!stbi_write_png_to_func(cli_png_sink, &png, w, h, c, px, w * c)) cli_fail("cannot encode a PNG for --score complexity");
    bits = 8.0 * (double)png.n;
    buf_free(&png);
    free(px);
    return bits;
}

/* one set of pictures to score: codes z (n, D) and pictures x (n, C, H, W); self: z is the
   fit set itself, in order (each code leaves itself out where the score can); s (n): the
   scores; pdim (n, D): marginal's -ln p per dimension, or NULL                           */
typedef struct {
    const float *z, *x;
    size_t n, first;      /* first: the index of x's first picture in its set (iwae's noise) */
    int self;
    double *s, *pdim;
    const char *path;
} cli_tgt;

/* the scores of the pictures themselves (no fit): recon, elbo, iwae, complexity */
static void picture_scores(cli_run *r, const cli_aopts *o, int sc, cli_tgt *t) {
    heph_vae *m = &r->m;
    if (sc == SCORE_RECON) {
        if (heph_vae_recon_score(m, t->x, t->n, t->s) != HEPH_OK) cli_fail("%s: %s", t->path, m->err);
    } else if (sc == SCORE_COMPLEXITY) { /* iwae's -ln p(x) in bits minus the PNG length in bits */
        double *nll = (double *)cli_alloc(t->n, sizeof(double)), *bits = (double *)cli_alloc(t->n, sizeof(double));
        size_t np = (size_t)r->pics.c * (size_t)r->pics.h * (size_t)r->pics.w;
        if (heph_vae_iwae_score_from(m, t->x, t->n, t->first, o->samples, o->seed, nll, NULL) != HEPH_OK) cli_fail("%s: %s", t->path, m->err);
        long long j;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 16)
#endif
        for (j = 0; j < (long long)t->n; j++) bits[j] = png_bits(t->x + (size_t)j * np, r->pics.c, r->pics.h, r->pics.w);
        heph_complexity_score(nll, bits, t->n, t->s);
        free(nll); free(bits);
    } else { /* elbo, iwae */
        int iw = sc == SCORE_IWAE;
        if (heph_vae_iwae_score_from(m, t->x, t->n, t->first, o->samples, o->seed, iw ? t->s : NULL, iw ? NULL : t->s) != HEPH_OK)
            cli_fail("%s: %s", t->path, m->err);
    }
}

/* the fits a member score needs, made once on the nf codes fz (named fpath): marginal's
   densities, gmm's mixture; knn keeps fz itself; mahalanobis is r->fit (fit_context)       */
typedef struct {
    heph_marginal marg;
    heph_gmm gmm;
    int has_marg, has_gmm;
    const float *fz;
    size_t nf;
    const char *fpath;
} cli_fits;

static void fits_make(cli_fits *F, cli_run *r, const cli_aopts *o, const int *members, int K, const float *fz, size_t nf, const char *fpath) {
    int k;
    memset(F, 0, sizeof *F);
    F->fz = fz; F->nf = nf; F->fpath = fpath;
    for (k = 0; k < K; k++) {
        if (members[k] == SCORE_MARGINAL) {
            if (heph_marginal_fit(&F->marg, fz, nf, r->D) != HEPH_OK) cli_fail("%s: %s", fpath, F->marg.err);
            F->has_marg = 1;
        } else if (members[k] == SCORE_GMM) { /* a fit set that is also a target is scored in-sample (it shaped the fit) */
            if (heph_gmm_fit(&F->gmm, fz, nf, r->D, o->gmm_k, o->seed) != HEPH_OK) cli_fail("%s: %s", fpath, F->gmm.err);
            F->has_gmm = 1;
            printf("gmm: %d components (BIC)\n", F->gmm.k);
        }
    }
}

static void fits_free(cli_fits *F) {
    if (F->has_marg) heph_marginal_free(&F->marg);
    if (F->has_gmm) heph_gmm_free(&F->gmm);
    F->has_marg = F->has_gmm = 0;
}

/* score sc of one target set t with the fits F */
static void member_score(cli_run *r, const cli_aopts *o, cli_fits *F, int sc, cli_tgt *t) {
    char err[HEPH_ERRLEN];
    if (sc == SCORE_MAHA) { /* r->fit: fitted on fz by fit_context */
        heph_maha_score(&r->fit, t->z, t->n, t->s);
    } else if (sc == SCORE_MARGINAL) {
        if (heph_marginal_score(&F->marg, t->z, t->n, t->self, t->s, t->pdim) != HEPH_OK) cli_fail("%s: %s", t->path, F->marg.err);
    } else if (sc == SCORE_KNN) {
        if (heph_knn_score(F->fz, F->nf, r->D, t->z, t->n, o->knn_k, t->self, t->s, err, sizeof err) != HEPH_OK)
            cli_fail("%s: --score knn:%d: %s", F->fpath, o->knn_k, err);
    } else if (sc == SCORE_GMM) {
        if (heph_gmm_score(&F->gmm, t->z, t->n, t->s) != HEPH_OK) cli_fail("%s: %s", t->path, F->gmm.err);
    } else {
        picture_scores(r, o, sc, t);
    }
}

/* score sc of the nt target sets t, the fits made on the nf codes fz (named fpath); a target
   that is the first one again (same codes, pictures and self) is copied, not scored twice  */
static void member_scores(cli_run *r, const cli_aopts *o, int sc, const float *fz, size_t nf, const char *fpath, cli_tgt *t, int nt) {
    cli_fits F;
    int j;
    fits_make(&F, r, o, &sc, 1, fz, nf, fpath);
    for (j = 0; j < nt; j++) {
        if (j > 0 && t[j].z == t[0].z && t[j].x == t[0].x && t[j].n == t[0].n && t[j].self == t[0].self && !t[j].pdim)
            memcpy(t[j].s, t[0].s, t[j].n * sizeof(double));
        else member_score(r, o, &F, sc, &t[j]);
    }
    fits_free(&F);
}

/* the --score of the batch (r->score) and of the context, each context picture scored
   without itself (ctx_s, n_ctx): what --auto quantile and mad read                         */
static double *other_scores(cli_run *r, const cli_aopts *o, const float *ctx, size_t n_ctx, const cli_pics *ref) {
    double *ctx_s = (double *)cli_alloc(n_ctx, sizeof(double));
    const char *cpath = o->reference ? o->reference : o->batch;
    cli_tgt t[2];
    memset(t, 0, sizeof t);
    r->score = (double *)cli_alloc(r->n, sizeof(double));
    if (o->score == SCORE_MARGINAL) r->pdim = (double *)cli_alloc(r->n * (size_t)r->D, sizeof(double));
    t[0].z = r->mu; t[0].x = r->pics.x; t[0].n = r->n; t[0].self = !o->reference; t[0].s = r->score; t[0].pdim = r->pdim;
    t[0].path = o->batch;
    t[1].z = ctx; t[1].x = o->reference ? ref->x : r->pics.x; t[1].n = n_ctx; t[1].self = 1; t[1].s = ctx_s; t[1].pdim = NULL;
    t[1].path = cpath;
    if (o->score >= SCORE_RECON) t[1].self = t[0].self; /* no fit: the same pictures, the same scores */
    member_scores(r, o, o->score, ctx, n_ctx, cpath, t, 2);
    return ctx_s;
}

/* "knn:5", "complexity:16", ...: a member's name with its parameter */
static const char *member_label(const cli_aopts *o, int sc, char *b, size_t n) {
    if (sc == SCORE_KNN) snprintf(b, n, "knn:%d", o->knn_k);
    else if (sc == SCORE_GMM) snprintf(b, n, "gmm:%d", o->gmm_k);
    else if (sc >= SCORE_ELBO && sc <= SCORE_COMPLEXITY) snprintf(b, n, "%s:%d", score_names[sc], o->samples);
    else snprintf(b, n, "%s", score_names[sc]);
    return b;
}

/* --score combined: every member scores the batch. Its tail (heph_tail_fit) is fitted on
   r->tail[k], which is either loaded (a saved scorer: r->cal holds the calibration columns),
   or the member's scores of the nc calibration pictures (codes cz, pictures cx; self: they
   are the fit set itself, in context mode), or, for the scores of the pictures themselves
   (recon, elbo, iwae, complexity: they fit nothing), every reference picture's (ref, whose
   calibration pictures are r->ref_idx[nf..]). The batch's tail log-probabilities are
   combined by Sidak's rule (heph_combine_sidak). Returns the calibration pictures' own
   combined scores (nc), for the threshold; r->cal keeps their member scores (nc, K).      */
static double *combined_scores(cli_run *r, const cli_aopts *o, const float *fz, size_t nf, const char *fpath,
                               const float *cz, const float *cx, size_t nc, int self, const char *cpath, const cli_pics *ref) {
    int K = o->n_members, k, given = r->cal != NULL;
    size_t i;
    double *cal_lp = (double *)cli_alloc(nc * (size_t)K, sizeof(double)), *cal_c = (double *)cli_alloc(nc, sizeof(double));
    double *bs = (double *)cli_alloc(r->n, sizeof(double));
    char lb[32];
    r->K = K;
    r->mlogp = (double *)cli_alloc(r->n * (size_t)K, sizeof(double));
    r->mwhich = (int *)cli_alloc(r->n, sizeof(int));
    r->score = (double *)cli_alloc(r->n, sizeof(double));
    if (!given) r->cal = (double *)cli_alloc(nc * (size_t)K, sizeof(double));
    for (k = 0; k < K; k++) {
        int sc = o->members[k], whole = !given && ref && sc >= SCORE_RECON;
        heph_tail tl;
        cli_tgt t[2];
        memset(t, 0, sizeof t);
        t[0].z = r->mu; t[0].x = r->pics.x; t[0].n = r->n; t[0].self = self; t[0].s = bs; t[0].pdim = NULL; t[0].path = o->batch;
        if (sc == SCORE_MARGINAL) /* outliers.json names the dimension that made it */
            t[0].pdim = r->pdim = (double *)cli_alloc(r->n * (size_t)r->D, sizeof(double));
        if (!given) {
            r->tail_n[k] = whole ? ref->n : nc;
            r->tail[k] = (double *)cli_alloc(r->tail_n[k], sizeof(double));
        }
        t[1].z = whole ? NULL : cz; t[1].x = whole ? ref->x : cx; t[1].n = r->tail_n[k]; t[1].self = self; t[1].s = r->tail[k];
        t[1].pdim = NULL; t[1].path = cpath;
        member_scores(r, o, sc, fz, nf, fpath, t, given ? 1 : 2);
        for (i = 0; i < nc && !given; i++) /* the calibration pictures' column */
            r->cal[i * (size_t)K + (size_t)k] = whole ? r->tail[k][r->ref_idx[nf + i]] : r->tail[k][i];
        if (heph_tail_fit(&tl, r->tail[k], r->tail_n[k]) != HEPH_OK)
            cli_fail("%s: calibrating %s: %s", cpath, member_label(o, sc, lb, sizeof lb), tl.err);
        for (i = 0; i < r->n; i++) r->mlogp[i * (size_t)K + (size_t)k] = heph_tail_logp(&tl, bs[i]);
        for (i = 0; i < nc; i++) cal_lp[i * (size_t)K + (size_t)k] = heph_tail_logp(&tl, r->cal[i * (size_t)K + (size_t)k]);
        heph_tail_free(&tl);
    }
    for (i = 0; i < r->n; i++) r->score[i] = heph_combine_sidak(r->mlogp + i * (size_t)K, K, &r->mwhich[i]);
    for (i = 0; i < nc; i++) cal_c[i] = heph_combine_sidak(cal_lp + i * (size_t)K, K, NULL);
    free(cal_lp); free(bs);
    return cal_c;
}

/* ---- a saved scorer (--save-scorer / --scorer) ----------------------------------------------
   What combined needs to score later batches without the reference pictures: the settings,
   the fit part's codes (every member refits on them exactly as before: the fits are
   deterministic for a seed) and the calibration pictures' member scores. Little-endian:
     "HEPHSCR1", u32 version 1, D, K, knn_k, gmm_k, samples, cov, 0, u64 seed, f64 cov_param,
     u64 model (FNV-1a of the model's parameters), u64 nf, u64 nc, u32 members[K], u64
     tail_n[K], f32 codes (nf, D), f64 calibration scores (nc, K), f64 each member's tail
     scores (tail_n[k]), u64 FNV-1a of every byte before.                                 */
#define SCORER_HEAD 80
typedef struct {
    int D, K, members[N_SCORES], knn_k, gmm_k, samples, cov;
    uint64_t seed, model;
    double cov_param;
    size_t nf, nc;
    float *fz;    /* (nf, D) the fit part's codes                  */
    double *cal;  /* (nc, K) the calibration pictures' member scores */
    size_t tail_n[N_SCORES];
    double *tail[N_SCORES]; /* what each member's tail is fitted on   */
} cli_scorer;

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_START 0xcbf29ce484222325ull

/* FNV-1a of the model's parameters, as little-endian bytes on any machine */
static uint64_t model_sum(const heph_vae *m) {
    uint64_t h = FNV_START;
    size_t i;
    for (i = 0; i < m->n_params; i++) {
        uint32_t u;
        uint8_t b[4];
        memcpy(&u, &m->params[i], 4);
        b[0] = (uint8_t)u; b[1] = (uint8_t)(u >> 8); b[2] = (uint8_t)(u >> 16); b[3] = (uint8_t)(u >> 24);
        h = fnv1a(h, b, 4);
    }
    return h;
}

static void put_le(cli_buf *b, uint64_t v, int n) {
    uint8_t t[8];
    int i;
    for (i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
    buf_put(b, (const char *)t, (size_t)n);
}
static uint64_t get_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    int i;
    for (i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static void put_f64(cli_buf *b, double d) { uint64_t u; memcpy(&u, &d, 8); put_le(b, u, 8); }
static double get_f64(const uint8_t *p) { uint64_t u = get_le(p, 8); double d; memcpy(&d, &u, 8); return d; }

static void scorer_save(const cli_run *r, const cli_aopts *o, const float *fz, const char *path) {
    cli_buf b = {0, 0, 0};
    size_t i;
    int k;
    buf_put(&b, "HEPHSCR1", 8);
    put_le(&b, 1, 4); put_le(&b, (uint64_t)r->D, 4); put_le(&b, (uint64_t)r->K, 4); put_le(&b, (uint64_t)o->knn_k, 4);
    put_le(&b, (uint64_t)o->gmm_k, 4); put_le(&b, (uint64_t)o->samples, 4); put_le(&b, (uint64_t)o->cov, 4); put_le(&b, 0, 4);
    put_le(&b, o->seed, 8); put_f64(&b, o->cov_param); put_le(&b, model_sum(&r->m), 8);
    put_le(&b, r->n_fit, 8); put_le(&b, r->n_cal, 8);
    for (k = 0; k < r->K; k++) put_le(&b, (uint64_t)o->members[k], 4);
    for (k = 0; k < r->K; k++) put_le(&b, r->tail_n[k], 8);
    for (i = 0; i < r->n_fit * (size_t)r->D; i++) { uint32_t u; memcpy(&u, &fz[i], 4); put_le(&b, u, 4); }
    for (i = 0; i < r->n_cal * (size_t)r->K; i++) put_f64(&b, r->cal[i]);
    for (k = 0; k < r->K; k++)
        for (i = 0; i < r->tail_n[k]; i++) put_f64(&b, r->tail[k][i]);
    put_le(&b, fnv1a(FNV_START, (const uint8_t *)b.s, b.n), 8);
    buf_save(&b, path);
    buf_free(&b);
    printf("wrote %s (scorer: %zu codes, %zu x %d calibration scores)\n", path, r->n_fit, r->n_cal, r->K);
}

/* parse a scorer file's bytes; any lie (size, counts, values, checksum) names path and exits 1 */
static void scorer_parse(cli_scorer *s, const uint8_t *p, size_t n, const char *path) {
    const uint8_t *p0 = p;
    size_t i, need;
    int k, j;
    memset(s, 0, sizeof *s);
    if (n < SCORER_HEAD + 8 || memcmp(p, "HEPHSCR1", 8) != 0) cli_fail("%s: not a scorer file of hephaestus (--save-scorer)", path);
    if (get_le(p + 8, 4) != 1) cli_fail("%s: scorer version %u, this build reads version 1", path, (unsigned)get_le(p + 8, 4));
    if (get_le(p + n - 8, 8) != fnv1a(FNV_START, p, n - 8)) cli_fail("%s: the checksum does not match: the file is damaged or cut", path);
    s->D = (int)get_le(p + 12, 4); s->K = (int)get_le(p + 16, 4); s->knn_k = (int)get_le(p + 20, 4);
    s->gmm_k = (int)get_le(p + 24, 4); s->samples = (int)get_le(p + 28, 4); s->cov = (int)get_le(p + 32, 4);
    s->seed = get_le(p + 40, 8); s->cov_param = get_f64(p + 48); s->model = get_le(p + 56, 8);
    if (get_le(p + 12, 4) > 4096 || s->D < 1 || get_le(p + 16, 4) >= N_SCORES || s->K < 1 || get_le(p + 20, 4) > 100000 || s->knn_k < 1 ||
        get_le(p + 24, 4) > 16 || s->gmm_k < 1 || get_le(p + 28, 4) > 100000 || s->samples < 1 || get_le(p + 32, 4) > HEPH_COV_MCD ||
        get_le(p + 36, 4) != 0 || !(s->cov_param >= 0.0 && s->cov_param <= 1e300))
        cli_fail("%s: the scorer's settings are out of range (D %u, %u members, knn %u, gmm %u, samples %u, covariance %u)", path,
                 (unsigned)get_le(p + 12, 4), (unsigned)get_le(p + 16, 4), (unsigned)get_le(p + 20, 4), (unsigned)get_le(p + 24, 4),
                 (unsigned)get_le(p + 28, 4), (unsigned)get_le(p + 32, 4));
    if (get_le(p + 64, 8) > ((uint64_t)1 << 40) || get_le(p + 72, 8) > ((uint64_t)1 << 40))
        cli_fail("%s: the scorer claims %llu codes and %llu calibration pictures", path, (unsigned long long)get_le(p + 64, 8),
                 (unsigned long long)get_le(p + 72, 8));
    s->nf = (size_t)get_le(p + 64, 8); s->nc = (size_t)get_le(p + 72, 8);
    if (s->nf < (size_t)s->D + 2 || s->nc < 20 || (size_t)s->knn_k >= s->nf)
        cli_fail("%s: %zu codes and %zu calibration pictures are too few for %d dimensions (k %d)", path, s->nf, s->nc, s->D, s->knn_k);
    need = SCORER_HEAD + 12 * (size_t)s->K + 4 * s->nf * (size_t)s->D + 8 * s->nc * (size_t)s->K + 8; /* < 2^56 */
    if (n < need) cli_fail("%s: %zu bytes where its counts need at least %zu", path, n, need);
    for (k = 0; k < s->K; k++) {
        uint64_t m = get_le(p + SCORER_HEAD + 4 * (size_t)k, 4), t = get_le(p + SCORER_HEAD + 4 * (size_t)s->K + 8 * (size_t)k, 8);
        if (m >= SCORE_COMBINED) cli_fail("%s: member %d is score %llu, not one of combined's", path, k, (unsigned long long)m);
        s->members[k] = (int)m;
        for (j = 0; j < k; j++) if (s->members[j] == s->members[k]) cli_fail("%s: member %s twice", path, score_names[m]);
        if (t < 20 || t > ((uint64_t)1 << 40)) cli_fail("%s: member %s claims %llu calibration scores", path, score_names[m], (unsigned long long)t);
        s->tail_n[k] = (size_t)t;
        need += 8 * (size_t)t;
    }
    if (n != need) cli_fail("%s: %zu bytes where its counts need %zu", path, n, need);
    p += SCORER_HEAD + 12 * (size_t)s->K;
    for (i = 0; i < s->nf * (size_t)s->D; i++) { /* every value checked before anything is allocated */
        uint32_t u = (uint32_t)get_le(p + 4 * i, 4);
        float v;
        memcpy(&v, &u, 4);
        if (!(fabsf(v) <= FLT_MAX)) cli_fail("%s: code %zu is not finite", path, i / (size_t)s->D);
    }
    for (i = 0; i < (size_t)(p0 + n - 8 - (p + 4 * s->nf * (size_t)s->D)) / 8; i++) /* the scores, up to the checksum */
        if (!(fabs(get_f64(p + 4 * s->nf * (size_t)s->D + 8 * i)) <= DBL_MAX)) cli_fail("%s: calibration score %zu is not finite", path, i);
    s->fz = (float *)cli_alloc_for(path, "scorer codes", s->nf * (size_t)s->D, sizeof(float));
    for (i = 0; i < s->nf * (size_t)s->D; i++) {
        uint32_t u = (uint32_t)get_le(p + 4 * i, 4);
        memcpy(&s->fz[i], &u, 4);
    }
    p += 4 * s->nf * (size_t)s->D;
    s->cal = (double *)cli_alloc_for(path, "calibration scores", s->nc * (size_t)s->K, sizeof(double));
    for (i = 0; i < s->nc * (size_t)s->K; i++) s->cal[i] = get_f64(p + 8 * i);
    p += 8 * s->nc * (size_t)s->K;
    for (k = 0; k < s->K; k++) {
        s->tail[k] = (double *)cli_alloc_for(path, "calibration scores", s->tail_n[k], sizeof(double));
        for (i = 0; i < s->tail_n[k]; i++) s->tail[k][i] = get_f64(p + 8 * i);
        p += 8 * s->tail_n[k];
    }
}

static void scorer_load(cli_scorer *s, const char *path) {
    FILE *f = cli_fopen(path, "rb");
    long len = -1; /* clang cannot see that cli_fail does not return */
    uint8_t *b;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) cli_fail("%s: cannot read its size", path);
    if ((unsigned long)len > ((unsigned long)1 << 31)) cli_fail("%s: %ld bytes is too large for a scorer", path, len);
    b = (uint8_t *)cli_alloc_for(path, "the scorer", (size_t)len + 1, 1);
    if (fread(b, 1, (size_t)len, f) != (size_t)len) { fclose(f); cli_fail("%s: read error", path); }
    fclose(f);
    scorer_parse(s, b, (size_t)len, path);
    free(b);
}

/* the loaded scorer's settings become the run's (they shaped its fits and calibration) */
static void scorer_apply(const cli_scorer *s, cli_aopts *o, const heph_vae *m) {
    if (s->D != m->cfg.z_dim) cli_fail("%s: fitted on %d latent dimensions, but %s has %d", o->scorer, s->D, o->model, m->cfg.z_dim);
    if (s->model != model_sum(m)) cli_fail("%s: fitted with another model than %s (its parameters differ)", o->scorer, o->model);
    o->score = SCORE_COMBINED; o->n_members = s->K;
    memcpy(o->members, s->members, sizeof o->members);
    o->knn_k = s->knn_k; o->gmm_k = s->gmm_k; o->samples = s->samples; o->cov = s->cov; o->cov_param = s->cov_param;
    o->seed = s->seed;
}

/* combined with --reference: the reference set split at random (--seed) into the fit part
   (nf codes, first) and the calibration part (its codes and pictures); np values a picture */
static void split_reference(const cli_aopts *o, const float *z, const cli_pics *ref, int D, float **fz, size_t *nf,
                            float **cz, float **cx, size_t *nc, size_t **idx_out) {
    size_t n = ref->n, i, np = (size_t)ref->c * (size_t)ref->h * (size_t)ref->w;
    size_t *idx = (size_t *)cli_alloc(n, sizeof(size_t));
    heph_rng rng;
    *nc = (size_t)(o->calib * (double)n + 0.5);
    if (*nc < 20) *nc = 20; /* heph_tail_fit's least */
    if (n < *nc + (size_t)D + 2)
        cli_fail("%s: %zu reference pictures are too few for --score combined with %d latent dimensions: it calibrates "
                 "on %zu (--calibrate %g, at least 20) and fits on the rest (at least %d); give a larger reference set or "
                 "choose one score (e.g. --score mahalanobis)", o->reference, n, D, *nc, o->calib, D + 2);
    *nf = n - *nc;
    for (i = 0; i < n; i++) idx[i] = i;
    heph_rng_seed(&rng, o->seed);
    heph_rng_shuffle(&rng, idx, n);
    *fz = (float *)cli_alloc(*nf * (size_t)D, sizeof(float));
    *cz = (float *)cli_alloc(*nc * (size_t)D, sizeof(float));
    *cx = (float *)cli_alloc(*nc * np, sizeof(float));
    for (i = 0; i < n; i++) {
        size_t j = idx[i];
        if (i < *nf) memcpy(*fz + i * (size_t)D, z + j * (size_t)D, (size_t)D * sizeof(float));
        else {
            memcpy(*cz + (i - *nf) * (size_t)D, z + j * (size_t)D, (size_t)D * sizeof(float));
            memcpy(*cx + (i - *nf) * np, ref->x + j * np, np * sizeof(float));
        }
    }
    *idx_out = idx;
}

static size_t run_select(const cli_run *r, const cli_aopts *o, size_t *sel, int cap);
static size_t select_or_say(const cli_run *r, const cli_aopts *o, size_t *sel);

/* where the selected pictures' nearest normal codes come from, for outliers.json */
static const char *nn_source(const cli_aopts *o) {
    return o->scorer ? "scorer_codes" : o->reference ? "reference" : "batch";
}

/* the picture of fit code j: in the batch (context mode), in the reference (its fit part
   through the split), or NULL (a scorer holds codes only: decode them)                     */
static const float *nn_picture(const cli_run *r, const cli_aopts *o, size_t j) {
    size_t np = (size_t)r->pics.c * (size_t)r->pics.h * (size_t)r->pics.w;
    if (o->scorer) return NULL;
    if (!o->reference) return r->pics.x + j * np;
    return r->ref.x + (r->ref_idx ? r->ref_idx[j] : j) * np;
}

/* the index users know fit code j by: in the batch, the reference file, or the scorer */
static size_t nn_index(const cli_run *r, const cli_aopts *o, size_t j) {
    return o->reference && r->ref_idx ? r->ref_idx[j] : j;
}

/* explanations of the selected pictures (flagged, or --top N; the three highest scores when
   none is flagged) beyond their latent z-scores:
   the CLI_NN nearest codes of the fit set (knn's neighbours; a picture is not its own) and
   the residual |x - decode(mu)| of the picture, summed and at its largest                  */
static void run_neighbours(cli_run *r, const cli_aopts *o) {
    size_t *sel = (size_t *)cli_alloc(r->n, sizeof(size_t)), ns = run_select(r, o, sel, 0), i, j, c0;
    size_t np = (size_t)r->pics.c * (size_t)r->pics.h * (size_t)r->pics.w, *skip = NULL, *idx;
    int k = CLI_NN < (int)r->n_fitz - 1 ? CLI_NN : (int)r->n_fitz - 1, D = r->D;
    float *q, *xr;
    double *dd;
    char err[HEPH_ERRLEN];
    r->nn = (size_t *)cli_alloc(r->n * CLI_NN, sizeof(size_t));
    r->nn_d = (double *)cli_alloc(r->n * CLI_NN, sizeof(double));
    r->res_sum = (double *)cli_alloc(r->n, sizeof(double));
    r->res_max = (double *)cli_alloc(r->n, sizeof(double));
    r->res_at = (size_t *)cli_alloc(r->n, sizeof(size_t));
    for (i = 0; i < r->n * CLI_NN; i++) r->nn[i] = (size_t)-1;
    if (ns == 0) /* none flagged: the report shows the three highest scores all the same */
        for (; ns < r->n && ns < 3; ns++) sel[ns] = r->order[ns];
    if (ns == 0 || k < 1) { free(sel); return; }
    q = (float *)cli_alloc(ns * (size_t)D, sizeof(float));
    idx = (size_t *)cli_alloc(ns * (size_t)k, sizeof(size_t));
    dd = (double *)cli_alloc(ns * (size_t)k, sizeof(double));
    if (!o->reference && !o->scorer) skip = (size_t *)cli_alloc(ns, sizeof(size_t));
    for (i = 0; i < ns; i++) {
        memcpy(q + i * (size_t)D, r->mu + sel[i] * (size_t)D, (size_t)D * sizeof(float));
        if (skip) skip[i] = sel[i]; /* context mode: the batch is the fit set */
    }
    if (heph_knn_search(r->fitz, r->n_fitz, D, q, ns, k, skip, idx, dd, err, sizeof err) != HEPH_OK) cli_fail("nearest normal pictures: %s", err);
    for (i = 0; i < ns; i++)
        for (j = 0; j < (size_t)k; j++) {
            r->nn[sel[i] * CLI_NN + j] = idx[i * (size_t)k + j];
            r->nn_d[sel[i] * CLI_NN + j] = dd[i * (size_t)k + j];
        }
    xr = (float *)cli_alloc(256 * np, sizeof(float));
    for (c0 = 0; c0 < ns; c0 += 256) { /* reconstructions, 256 at a time */
        size_t B = ns - c0 < 256 ? ns - c0 : 256, b;
        heph_vae_decode(&r->m, q + c0 * (size_t)D, B, xr);
        for (b = 0; b < B; b++) {
            size_t p = sel[c0 + b];
            const float *x = r->pics.x + p * np, *y = xr + b * np;
            for (j = 0; j < np; j++) {
                double e = fabs((double)x[j] - (double)y[j]);
                r->res_sum[p] += e;
                if (e > r->res_max[p]) { r->res_max[p] = e; r->res_at[p] = j; }
            }
        }
    }
    free(xr); free(q); free(idx); free(dd); free(skip); free(sel);
}

static void run_analysis(cli_run *r, cli_aopts *o) {
    cli_pics ref;
    float *ctx, *fz = NULL, *cz = NULL, *cx = NULL;
    double *ctx_d2, *ctx_s;
    size_t n_ctx;
    cli_aopts oo;
    cli_require(o->model, "--model");
    cli_require(o->batch, "--batch");
    if (o->scorer && o->reference) cli_usage("--scorer replaces --reference: give one of them");
    if (o->scorer && o->score_given && o->score != SCORE_COMBINED)
        cli_usage("--scorer holds a combined score; --score %s needs --reference", score_names[o->score]);
    if (o->save_scorer && !(o->reference && (o->score == SCORE_COMBINED || !o->score_given)))
        cli_usage("--save-scorer saves a combined score fitted on --reference: give --reference (and no other --score)");
    if (!o->score_given && (o->reference || o->scorer)) o->score = SCORE_COMBINED; /* reference mode's default */
    if (o->score != SCORE_MAHA && o->thr_mode == THR_CHI2 && o->thr_given)
        cli_usage("--auto chi2 is a threshold on D^2: with --score %s use --fpr A, quantile[:P], mad[:K] or --threshold",
                  score_names[o->score]);
    oo = *o;
    memset(r, 0, sizeof *r);
    load_model(&r->m, o->model);
    r->D = r->m.cfg.z_dim;
    r->mu = encode_pictures(&r->m, &r->pics, o->batch);
    r->n = r->pics.n;
    ctx = r->mu;
    n_ctx = r->n;
    memset(&ref, 0, sizeof ref);
    if (o->scorer) { /* the fit part's codes and the calibration scores from the file */
        cli_scorer sc;
        scorer_load(&sc, o->scorer);
        scorer_apply(&sc, o, &r->m);
        ctx = sc.fz; n_ctx = r->n_fit = sc.nf; r->n_cal = sc.nc; r->cal = sc.cal;
        memcpy(r->tail, sc.tail, sizeof r->tail); memcpy(r->tail_n, sc.tail_n, sizeof r->tail_n);
        oo = *o;
    } else if (o->reference) { ctx = encode_pictures(&r->m, &ref, o->reference); n_ctx = ref.n; }
    if (o->score == SCORE_COMBINED && o->reference) { /* fit on one part, calibrate on the other */
        split_reference(o, ctx, &ref, r->D, &fz, &r->n_fit, &cz, &cx, &r->n_cal, &r->ref_idx);
        free(ctx);
        ctx = fz; n_ctx = r->n_fit;
    }
    fit_context(r, o, ctx, n_ctx, o->scorer ? o->scorer : o->reference ? o->reference : o->batch);
    r->n_ctx = o->reference ? ref.n : o->scorer ? r->n_fit + r->n_cal : n_ctx;
    r->d2 = (double *)cli_alloc(r->n, sizeof(double));
    heph_maha_score(&r->fit, r->mu, r->n, r->d2);
    ctx_d2 = r->d2;
    if (o->reference || o->scorer) { ctx_d2 = (double *)cli_alloc(n_ctx, sizeof(double)); heph_maha_score(&r->fit, ctx, n_ctx, ctx_d2); }
    if (o->score == SCORE_MAHA) {
        r->score = r->d2;
        set_threshold(r, o, ctx_d2, n_ctx);
        set_normal_mean(r, ctx, ctx_d2, n_ctx, r->thr);
        ctx_s = NULL;
    } else {
        if (!o->thr_given) { oo.thr_mode = THR_QUANTILE; oo.thr_value = o->score == SCORE_COMBINED ? 0.99 : 0.975; }
        if (o->score == SCORE_COMBINED && (o->reference || o->scorer))
            ctx_s = combined_scores(r, o, ctx, n_ctx, o->scorer ? o->scorer : o->reference, cz, cx, r->n_cal, 0,
                                    o->scorer ? o->scorer : o->reference, o->reference ? &ref : NULL);
        else if (o->score == SCORE_COMBINED)
            ctx_s = combined_scores(r, o, ctx, n_ctx, o->batch, r->mu, r->pics.x, r->n, 1, o->batch, NULL);
        else ctx_s = other_scores(r, o, ctx, n_ctx, &ref);
        set_threshold(r, &oo, ctx_s, o->score == SCORE_COMBINED && (o->reference || o->scorer) ? r->n_cal : n_ctx);
        set_normal_mean(r, ctx, ctx_d2, n_ctx, heph_chi2_quantile(0.975, r->D)); /* the counterfactuals' target */
    }
    run_scores(r);
    set_truth(r, o);
    if (o->save_scorer) scorer_save(r, o, ctx, o->save_scorer);
    free(ctx_s); free(cz); free(cx);
    r->fitz = ctx; r->n_fitz = n_ctx; /* kept: the nearest normal pictures come from them */
    if (o->reference || o->scorer) { r->own_fitz = ctx; r->ref = ref; free(ctx_d2); }
    run_neighbours(r, o);
}

static void run_free(cli_run *r) {
    int k;
    heph_vae_free(&r->m);
    heph_maha_free(&r->fit);
    pics_free(&r->pics);
    if (r->score != r->d2) free(r->score);
    free(r->mu); free(r->d2); free(r->pdim); free(r->order); free(r->rank); free(r->flag); free(r->truth);
    free(r->normal_mean); free(r->zs); free(r->contrib); free(r->mlogp); free(r->mwhich); free(r->cal); free(r->ref_idx);
    free(r->own_fitz); pics_free(&r->ref); free(r->nn); free(r->nn_d); free(r->res_sum); free(r->res_max); free(r->res_at);
    for (k = 0; k < N_SCORES; k++) free(r->tail[k]);
}

/* the pictures to show: flagged ones (or the --top N) by decreasing score, at most max_show
   (all when cap is 0); returns how many, indices in sel */
static size_t run_select(const cli_run *r, const cli_aopts *o, size_t *sel, int cap) {
    size_t i, k = 0, lim = cap ? (size_t)o->max_show : r->n;
    for (i = 0; i < r->n && k < lim; i++) {
        size_t p = r->order[i];
        if (o->take_top ? i < (size_t)o->take_top : r->flag[p]) sel[k++] = p;
    }
    return k;
}

static void run_summary(const cli_run *r, const cli_aopts *o) {
    printf("%zu pictures from %s, %d latent dimensions; context: %s (%zu pictures)\n", r->n, o->batch, r->D,
           o->scorer ? o->scorer : o->reference ? o->reference : "the batch itself", r->n_ctx);
    if (o->score == SCORE_COMBINED) {
        int k;
        char lb[32];
        size_t i, *by = (size_t *)cli_alloc((size_t)r->K, sizeof(size_t));
        printf("score combined of");
        for (k = 0; k < r->K; k++) printf("%s %s", k ? "," : "", member_label(o, o->members[k], lb, sizeof lb));
        if (o->scorer) printf("; from %s: fitted on %zu codes, calibrated on %zu pictures\n", o->scorer, r->n_fit, r->n_cal);
        else if (o->reference) printf("; fitted on %zu reference pictures, calibrated on the other %zu\n", r->n_fit, r->n_cal);
        else printf("; fitted and calibrated on the batch itself\n");
        printf("threshold %s; %zu flagged", r->thr_text, r->n_flagged);
        for (i = 0; i < r->n; i++) by[r->mwhich[i]] += r->flag[i];
        for (k = 0, i = 0; k < r->K; k++) /* i: members named so far */
            if (by[k]) printf("%s%zu by %s", i++ ? ", " : " (", by[k], member_label(o, o->members[k], lb, sizeof lb));
        printf("%s\n", i ? ")" : "");
        free(by);
    } else if (o->score == SCORE_MAHA) printf("covariance %s; threshold on D^2 %s; %zu flagged\n", r->cov_text, r->thr_text, r->n_flagged);
    else printf("score %s; threshold %s; %zu flagged (explanations: D^2 with covariance %s)\n", score_names[o->score], r->thr_text,
                r->n_flagged, r->cov_text);
    if (r->truth) {
        size_t i, t = 0;
        for (i = 0; i < r->n; i++) t += (size_t)r->truth[i];
        printf("AUROC %.4f (truth %s: %zu outliers of %zu)\n", r->auroc, r->truth_text, t, r->n);
    }
}

/* ---- outliers: ranked table, plots --------------------------------------------------------- */

static void write_outliers_csv(const cli_run *r, const char *path) {
    FILE *f = cli_fopen(path, "w");
    size_t i;
    char nb[32];
    fprintf(f, "index,name,score_d2,distance_d,rank,flagged%s,score\n", r->truth ? ",truth" : "");
    for (i = 0; i < r->n; i++) {
        size_t p = r->order[i];
        fprintf(f, "%zu,", p);
        csv_field(f, pics_name(&r->pics, p, nb, sizeof nb));
        fprintf(f, ",%.17g,%.17g,%zu,%d", r->d2[p], sqrt(r->d2[p]), r->rank[p], r->flag[p]);
        if (r->truth) fprintf(f, ",%d", r->truth[p]);
        fprintf(f, ",%.17g\n", r->score[p]);
    }
    cli_fclose(f, path);
    printf("wrote %s\n", path);
}

static void json_header(FILE *f, const cli_run *r, const cli_aopts *o) {
    fprintf(f, "{\n  \"model\": "); json_str(f, o->model);
    fprintf(f, ",\n  \"batch\": "); json_str(f, o->batch);
    fprintf(f, ",\n  \"reference\": ");
    if (o->reference) json_str(f, o->reference); else fputs("null", f);
    fprintf(f, ",\n  \"pictures\": %zu,\n  \"latent_dims\": %d,\n  \"covariance\": {\"method\": \"%s\", \"shrinkage\": ", r->n, r->D, cov_name(o->cov));
    json_num(f, r->fit.shrinkage);
    fprintf(f, "},\n  \"score\": \"%s\",\n  \"score_parameter\": %d,\n  \"threshold\": {\"mode\": \"%s\", \"parameter\": ", score_names[o->score],
            o->score == SCORE_KNN ? o->knn_k : o->score == SCORE_GMM ? o->gmm_k : o->score >= SCORE_ELBO ? o->samples : 0,
            r->thr_mode == THR_QUANTILE ? "quantile" : r->thr_mode == THR_FIXED ? "given" : r->thr_mode == THR_CHI2 ? "chi2" : "mad");
    json_num(f, r->thr_param);
    fprintf(f, ", \"%s\": ", o->score == SCORE_MAHA ? "d2" : "value"); json_num(f, r->thr);
    fprintf(f, "},\n  \"false_positive_rate_requested\": ");
    json_num(f, o->fpr > 0.0 ? o->fpr : (double)NAN);
    if (o->score == SCORE_COMBINED) {
        int k;
        char lb[32];
        fprintf(f, ",\n  \"members\": [");
        for (k = 0; k < r->K; k++) {
            fprintf(f, "%s", k ? ", " : "");
            json_str(f, member_label(o, o->members[k], lb, sizeof lb));
        }
        fprintf(f, "],\n  \"fit_pictures\": %zu,\n  \"calibration_pictures\": %zu,\n  \"scorer\": ",
                o->reference || o->scorer ? r->n_fit : r->n, o->reference || o->scorer ? r->n_cal : r->n);
        if (o->scorer) json_str(f, o->scorer); else fputs("null", f);
    }
    fprintf(f, ",\n  \"flagged\": %zu,\n  \"truth\": ", r->n_flagged);
    if (r->truth) json_str(f, r->truth_text); else fputs("null", f);
    fprintf(f, ",\n  \"auroc\": "); json_num(f, r->auroc);
}

/* a selected picture's explanation: top dimensions, the nearest normal codes (by their
   index in the batch, the reference or the scorer: nearest_from), the reconstruction residual */
static void json_why(FILE *f, const cli_run *r, const cli_aopts *o, size_t p) {
    int t, top[256], k = o->top_k < r->D ? o->top_k : r->D;
    size_t j, hw = (size_t)r->pics.h * (size_t)r->pics.w, at = r->res_at[p];
    heph_top_dims(r->zs + p * (size_t)r->D, r->D, k, top);
    fprintf(f, ",\n     \"why\": {\"top_dims\": [");
    for (t = 0; t < k; t++) fprintf(f, "%s{\"dim\": %d, \"z\": %.6g}", t ? ", " : "", top[t], r->zs[p * (size_t)r->D + (size_t)top[t]]);
    fprintf(f, "], \"nearest_from\": \"%s\", \"nearest\": [", nn_source(o));
    for (j = 0; j < CLI_NN && r->nn[p * CLI_NN + j] != (size_t)-1; j++)
        fprintf(f, "%s{\"index\": %zu, \"distance\": %.6g}", j ? ", " : "", nn_index(r, o, r->nn[p * CLI_NN + j]), r->nn_d[p * CLI_NN + j]);
    fprintf(f, "],\n             \"residual\": {\"mean_abs\": %.6g, \"max_abs\": %.6g, \"max_at\": {\"channel\": %zu, \"y\": %zu, \"x\": %zu}}}",
            r->res_sum[p] / (double)(hw * (size_t)r->pics.c), r->res_max[p], at / hw, at % hw / (size_t)r->pics.w, at % (size_t)r->pics.w);
}

static void write_outliers_json(const cli_run *r, const cli_aopts *o, const char *path) {
    FILE *f = cli_fopen(path, "w");
    size_t i;
    char nb[32];
    json_header(f, r, o);
    fprintf(f, ",\n  \"ranked\": [\n");
    for (i = 0; i < r->n; i++) {
        size_t p = r->order[i];
        fprintf(f, "    {\"index\": %zu, \"name\": ", p);
        json_str(f, pics_name(&r->pics, p, nb, sizeof nb));
        fprintf(f, ", \"score_d2\": %.17g, \"distance_d\": %.17g, \"rank\": %zu, \"flagged\": %s", r->d2[p], sqrt(r->d2[p]),
                r->rank[p], r->flag[p] ? "true" : "false");
        if (r->truth) fprintf(f, ", \"truth\": %d", r->truth[p]);
        fprintf(f, ", \"score\": %.17g", r->score[p]);
        if (r->pdim) { /* marginal: the dimension with the smallest p, and -ln p */
            int d, best = 0;
            for (d = 1; d < r->D; d++) if (r->pdim[p * (size_t)r->D + (size_t)d] > r->pdim[p * (size_t)r->D + (size_t)best]) best = d;
            fprintf(f, ", \"marginal_dim\": %d, \"marginal_neg_log_p\": %.17g", best, r->pdim[p * (size_t)r->D + (size_t)best]);
        }
        if (r->mlogp) { /* combined: the member with the smallest tail p decided; -ln p of each */
            int k;
            char lb[32];
            fprintf(f, ", \"decided_by\": ");
            json_str(f, member_label(o, o->members[r->mwhich[p]], lb, sizeof lb));
            fprintf(f, ", \"members_neg_log_p\": {");
            for (k = 0; k < r->K; k++) {
                fprintf(f, "%s", k ? ", " : "");
                json_str(f, member_label(o, o->members[k], lb, sizeof lb));
                fprintf(f, ": %.17g", -r->mlogp[p * (size_t)r->K + (size_t)k]);
            }
            fputc('}', f);
        }
        if (r->nn && r->nn[p * CLI_NN] != (size_t)-1) json_why(f, r, o, p);
        fprintf(f, "}%s\n", i + 1 < r->n ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    cli_fclose(f, path);
    printf("wrote %s\n", path);
}

/* what the score is called on a chart's axes */
static const char *score_axis(int score) {
    static const char *const ax[N_SCORES] = {"D^2", "marginal -ln P", "knn distance", "gmm -ln p(z)", "recon -ln p(x|z)",
                                             "elbo (nats)", "iwae (nats)", "complexity (bits)", "combined -ln P"};
    return ax[score];
}

/* the two score charts: line plot and histogram (groups: truth if known, else flagged) */
static void score_charts(const cli_run *r, int score, plot_chart *line, plot_chart *hist, int *groups) {
    size_t i;
    memset(line, 0, sizeof *line);
    line->kind = PLOT_CHART_SCORES; line->d2 = r->score; line->n = r->n; line->thr = r->thr; line->flag = r->flag;
    line->group = r->truth;
    line->axis = score_axis(score);
    line->title = r->score == r->d2 ? "Mahalanobis score of every picture" : "score of every picture";
    *hist = *line;
    hist->kind = PLOT_CHART_HIST;
    for (i = 0; i < r->n; i++) groups[i] = r->truth ? r->truth[i] : r->flag[i];
    hist->group = groups;
    hist->names[0] = r->truth ? "normal (truth)" : "under threshold";
    hist->names[1] = r->truth ? "outlier (truth)" : "flagged";
    hist->title = "distribution of the scores";
}

static void print_ranked(const cli_run *r, const cli_aopts *o) {
    size_t i;
    char nb[32];
    int other = o->score != SCORE_MAHA; /* the score that ranks, then D^2 beside it */
    printf("rank  index  name                %s D^2         D      flagged%s\n", other ? "    score " : "", r->truth ? "  truth" : "");
    for (i = 0; i < r->n && i < (size_t)o->max_show; i++) {
        size_t p = r->order[i];
        printf("%4zu  %5zu  %-18.18s ", i + 1, p, pics_name(&r->pics, p, nb, sizeof nb));
        if (other) printf("%10.3f ", r->score[p]);
        printf("%10.3f %8.3f  %s", r->d2[p], sqrt(r->d2[p]), r->flag[p] ? "yes    " : "no     ");
        if (r->truth) printf("  %d", r->truth[p]);
        putchar('\n');
    }
}

static void write_outliers(const cli_run *r, const cli_aopts *o) {
    plot_chart line, hist;
    int *groups = (int *)cli_alloc(r->n, sizeof(int));
    print_ranked(r, o);
    write_outliers_csv(r, cli_join(o->out, "outliers.csv").s);
    write_outliers_json(r, o, cli_join(o->out, "outliers.json").s);
    score_charts(r, o->score, &line, &hist, groups);
    plot_chart_png(&line, cli_join(o->out, "md_scores.png").s, 800, 360);
    plot_chart_png(&hist, cli_join(o->out, "md_histogram.png").s, 800, 360);
    if (r->truth) {
        FILE *f = cli_fopen(cli_join(o->out, "auroc.txt").s, "w");
        fprintf(f, "%.6f\n", r->auroc);
        cli_fclose(f, cli_join(o->out, "auroc.txt").s);
    }
    free(groups);
}

/* ---- explain: z-scores, contributions, per-dimension counts -------------------------------- */

/* the top-k dimensions of picture p by |z| as "z4 z0 z7" */
static void top_text(const cli_run *r, const cli_aopts *o, size_t p, char *s, size_t n) {
    int top[256], t, k = o->top_k < r->D ? o->top_k : r->D;
    heph_top_dims(r->zs + p * (size_t)r->D, r->D, k, top);
    s[0] = '\0';
    for (t = 0; t < k; t++) {
        size_t at = strlen(s);
        snprintf(s + at, n - at, "%sz%d", t ? " " : "", top[t]);
    }
}

/* counts[d]: selected pictures whose top-k dimensions include d with |z| >= zmin */
static int *dim_counts(const cli_run *r, const cli_aopts *o, const size_t *sel, size_t ns) {
    int *counts = (int *)cli_alloc((size_t)r->D, sizeof(int));
    size_t i;
    for (i = 0; i < ns; i++) heph_dim_counts(r->zs + sel[i] * (size_t)r->D, 1, r->D, o->top_k, o->zmin, counts);
    return counts;
}

static void write_explain_csv(const cli_run *r, const cli_aopts *o, const size_t *sel, size_t ns, const char *path) {
    FILE *f = cli_fopen(path, "w");
    size_t i;
    int d;
    char nb[32], top[2048];
    fprintf(f, "index,name,rank,score_d2,sum_contrib,top_dims");
    for (d = 0; d < r->D; d++) fprintf(f, ",z%d", d);
    for (d = 0; d < r->D; d++) fprintf(f, ",c%d", d);
    fputc('\n', f);
    for (i = 0; i < ns; i++) {
        size_t p = sel[i];
        const double *c = r->contrib + p * (size_t)r->D, *z = r->zs + p * (size_t)r->D;
        double s = 0.0;
        for (d = 0; d < r->D; d++) s += c[d];
        top_text(r, o, p, top, sizeof top);
        fprintf(f, "%zu,", p);
        csv_field(f, pics_name(&r->pics, p, nb, sizeof nb));
        fprintf(f, ",%zu,%.17g,%.17g,%s", r->rank[p], r->d2[p], s, top);
        for (d = 0; d < r->D; d++) fprintf(f, ",%.17g", z[d]);
        for (d = 0; d < r->D; d++) fprintf(f, ",%.17g", c[d]);
        fputc('\n', f);
    }
    cli_fclose(f, path);
    printf("wrote %s\n", path);
}

static void json_doubles(FILE *f, const double *v, int n) {
    int d;
    fputc('[', f);
    for (d = 0; d < n; d++) { if (d) fputs(", ", f); json_num(f, v[d]); }
    fputc(']', f);
}

static void write_explain_json(const cli_run *r, const cli_aopts *o, const size_t *sel, size_t ns, const int *counts, const char *path) {
    FILE *f = cli_fopen(path, "w");
    size_t i;
    int d, top[256], k = o->top_k < r->D ? o->top_k : r->D;
    char nb[32];
    json_header(f, r, o);
    fprintf(f, ",\n  \"top_k\": %d,\n  \"zmin\": %g,\n  \"dim_counts\": [", k, o->zmin);
    for (d = 0; d < r->D; d++) fprintf(f, "%s%d", d ? ", " : "", counts[d]);
    fprintf(f, "],\n  \"explained\": [\n");
    for (i = 0; i < ns; i++) {
        size_t p = sel[i];
        heph_top_dims(r->zs + p * (size_t)r->D, r->D, k, top);
        fprintf(f, "    {\"index\": %zu, \"name\": ", p);
        json_str(f, pics_name(&r->pics, p, nb, sizeof nb));
        fprintf(f, ", \"rank\": %zu, \"score_d2\": %.17g, \"top_dims\": [", r->rank[p], r->d2[p]);
        for (d = 0; d < k; d++) fprintf(f, "%s%d", d ? ", " : "", top[d]);
        fprintf(f, "],\n     \"zscores\": ");
        json_doubles(f, r->zs + p * (size_t)r->D, r->D);
        fprintf(f, ",\n     \"contributions\": ");
        json_doubles(f, r->contrib + p * (size_t)r->D, r->D);
        fprintf(f, "}%s\n", i + 1 < ns ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    cli_fclose(f, path);
    printf("wrote %s\n", path);
}

static void write_dim_counts(const cli_run *r, const int *counts, const cli_aopts *o) {
    cli_path p = cli_join(o->out, "dim_counts.csv");
    FILE *f = cli_fopen(p.s, "w");
    int d;
    plot_chart c;
    fprintf(f, "dim,count\n");
    for (d = 0; d < r->D; d++) fprintf(f, "%d,%d\n", d, counts[d]);
    cli_fclose(f, p.s);
    printf("wrote %s\n", p.s);
    p = cli_join(o->out, "dim_counts.json");
    f = cli_fopen(p.s, "w");
    fprintf(f, "{\"top_k\": %d, \"zmin\": %g, \"counts\": [", o->top_k, o->zmin);
    for (d = 0; d < r->D; d++) fprintf(f, "%s%d", d ? ", " : "", counts[d]);
    fprintf(f, "]}\n");
    cli_fclose(f, p.s);
    printf("wrote %s\n", p.s);
    memset(&c, 0, sizeof c);
    c.kind = PLOT_CHART_BARS; c.counts = counts; c.D = r->D; c.title = "outliers per latent dimension";
    plot_chart_png(&c, cli_join(o->out, "dim_counts.png").s, 800, 360);
}

static void print_explained(const cli_run *r, const cli_aopts *o, const size_t *sel, size_t ns) {
    size_t i;
    int t, top[256], k = o->top_k < r->D ? o->top_k : r->D;
    char nb[32];
    for (i = 0; i < ns && i < (size_t)o->max_show; i++) {
        size_t p = sel[i];
        heph_top_dims(r->zs + p * (size_t)r->D, r->D, k, top);
        printf("%-12.12s D^2 %9.3f:", pics_name(&r->pics, p, nb, sizeof nb), r->d2[p]);
        for (t = 0; t < k; t++)
            printf(" z%d (z %+.2f, contribution %.2f)", top[t], r->zs[p * (size_t)r->D + (size_t)top[t]], r->contrib[p * (size_t)r->D + (size_t)top[t]]);
        putchar('\n');
    }
}

/* rows of [picture | reconstruction | |picture - reconstruction| | its CLI_NN nearest normal
   pictures] ((ns (3 + CLI_NN), C, H, W)); a scorer holds codes, not pictures: those decoded */
static float *why_grid(cli_run *r, const cli_aopts *o, const size_t *sel, size_t ns) {
    size_t np = (size_t)r->pics.c * (size_t)r->pics.h * (size_t)r->pics.w, i, t, C = 3 + CLI_NN, j;
    float *g = (float *)cli_alloc(ns * C * np, sizeof(float));
    for (i = 0; i < ns; i++) {
        size_t p = sel[i];
        float *row = g + i * C * np;
        memcpy(row, r->pics.x + p * np, np * sizeof(float));
        heph_vae_decode(&r->m, r->mu + p * (size_t)r->D, 1, row + np);
        for (t = 0; t < np; t++) row[2 * np + t] = fabsf(row[t] - row[np + t]);
        for (j = 0; j < CLI_NN; j++) { /* black where there is none */
            size_t c = r->nn[p * CLI_NN + j];
            const float *pic = c == (size_t)-1 ? NULL : nn_picture(r, o, c);
            if (pic) memcpy(row + (3 + j) * np, pic, np * sizeof(float));
            else if (c != (size_t)-1) heph_vae_decode(&r->m, r->fitz + c * (size_t)r->D, 1, row + (3 + j) * np);
        }
    }
    return g;
}

static void write_explain(cli_run *r, const cli_aopts *o) {
    size_t *sel = (size_t *)cli_alloc(r->n, sizeof(size_t)), ns = run_select(r, o, sel, 0);
    int *counts = dim_counts(r, o, sel, ns);
    print_explained(r, o, sel, ns);
    write_explain_csv(r, o, sel, ns, cli_join(o->out, "explain.csv").s);
    write_explain_json(r, o, sel, ns, counts, cli_join(o->out, "explain.json").s);
    write_dim_counts(r, counts, o);
    ns = select_or_say(r, o, sel);
    if (ns) { /* why.png: the pixels and the nearest normal pictures of the shown ones */
        float *g = why_grid(r, o, sel, ns);
        cli_write_grid(cli_join(o->out, "why.png").s, g, (int)ns * (3 + CLI_NN), 3 + CLI_NN, r->pics.c, r->pics.h, r->pics.w);
        free(g);
    }
    free(counts);
    free(sel);
}

/* ---- counterfactuals and morphs ------------------------------------------------------------- */

/* counterfactual codes (ns, D) of the selected pictures: top-k deviant dims -> normal mean */
static float *counterfactual_codes(const cli_run *r, const cli_aopts *o, const size_t *sel, size_t ns) {
    float *cf = (float *)cli_alloc(ns * (size_t)r->D, sizeof(float));
    size_t i;
    for (i = 0; i < ns; i++)
        heph_counterfactual(r->mu + sel[i] * (size_t)r->D, r->zs + sel[i] * (size_t)r->D, r->normal_mean, r->D, o->top_k, cf + i * (size_t)r->D);
    return cf;
}

/* rows of [picture | reconstruction | counterfactual]: (3 ns, C, H, W) */
static float *counterfactual_grid(cli_run *r, const size_t *sel, size_t ns, const float *cf) {
    size_t np = (size_t)r->pics.c * (size_t)r->pics.h * (size_t)r->pics.w, i;
    float *g = (float *)cli_alloc(3 * ns * np, sizeof(float));
    for (i = 0; i < ns; i++) {
        memcpy(g + 3 * i * np, r->pics.x + sel[i] * np, np * sizeof(float));
        heph_vae_decode(&r->m, r->mu + sel[i] * (size_t)r->D, 1, g + (3 * i + 1) * np);
        heph_vae_decode(&r->m, cf + i * (size_t)r->D, 1, g + (3 * i + 2) * np);
    }
    return g;
}

/* rows of T decoded codes from the picture's code to its counterfactual: (ns T, C, H, W) */
static float *morph_grid(cli_run *r, const size_t *sel, size_t ns, const float *cf, int T) {
    size_t np = (size_t)r->pics.c * (size_t)r->pics.h * (size_t)r->pics.w, i;
    float *g = (float *)cli_alloc(ns * (size_t)T * np, sizeof(float));
    float *codes = (float *)cli_alloc((size_t)T * (size_t)r->D, sizeof(float));
    for (i = 0; i < ns; i++) {
        heph_lerp_codes(r->mu + sel[i] * (size_t)r->D, cf + i * (size_t)r->D, r->D, T, codes);
        heph_vae_decode(&r->m, codes, (size_t)T, g + i * (size_t)T * np);
    }
    free(codes);
    return g;
}

static void write_counterfactual_csv(cli_run *r, const cli_aopts *o, const size_t *sel, size_t ns, const float *cf, const char *path) {
    FILE *f = cli_fopen(path, "w");
    size_t i;
    char nb[32], top[2048];
    fprintf(f, "index,name,score_d2,counterfactual_d2,replaced_dims\n");
    for (i = 0; i < ns; i++) {
        double d2;
        heph_maha_score(&r->fit, cf + i * (size_t)r->D, 1, &d2);
        top_text(r, o, sel[i], top, sizeof top);
        fprintf(f, "%zu,", sel[i]);
        csv_field(f, pics_name(&r->pics, sel[i], nb, sizeof nb));
        fprintf(f, ",%.17g,%.17g,%s\n", r->d2[sel[i]], d2, top);
    }
    cli_fclose(f, path);
    printf("wrote %s\n", path);
}

static size_t select_or_say(const cli_run *r, const cli_aopts *o, size_t *sel) {
    size_t ns = run_select(r, o, sel, 1);
    if (ns == 0) printf("no picture is above the threshold %s: nothing to show (lower it, or use --top N)\n", r->thr_text);
    return ns;
}

static void write_counterfactuals(cli_run *r, const cli_aopts *o) {
    size_t *sel = (size_t *)cli_alloc(r->n, sizeof(size_t)), ns = select_or_say(r, o, sel);
    float *cf, *g;
    if (ns) {
        cf = counterfactual_codes(r, o, sel, ns);
        g = counterfactual_grid(r, sel, ns, cf);
        cli_write_grid(cli_join(o->out, "counterfactuals.png").s, g, 3 * (int)ns, 3, r->pics.c, r->pics.h, r->pics.w);
        write_counterfactual_csv(r, o, sel, ns, cf, cli_join(o->out, "counterfactuals.csv").s);
        free(cf); free(g);
    }
    free(sel);
}

static void write_morphs(cli_run *r, const cli_aopts *o) {
    size_t *sel = (size_t *)cli_alloc(r->n, sizeof(size_t)), ns = select_or_say(r, o, sel);
    float *cf, *g;
    if (ns) {
        cf = counterfactual_codes(r, o, sel, ns);
        g = morph_grid(r, sel, ns, cf, o->steps);
        cli_write_grid(cli_join(o->out, "morph.png").s, g, (int)ns * o->steps, o->steps, r->pics.c, r->pics.h, r->pics.w);
        free(cf); free(g);
    }
    free(sel);
}

#endif
