/* cli_train.h - `hephaestus train`: train a VAE (any preset or spec strings, objective beta /
   capacity / beta-TCVAE with MWS or MSS) on a .hpd file or a folder of pictures.
   Batches are drawn uniformly (with replacement) with the model's own generator, which the
   checkpoint stores, so `--resume` continues the very same run: a run stopped at a checkpoint
   and resumed gives the same bits as one that never stopped. Checkpoints are written to
   DIR/model.hpm.tmp, flushed, fsync'ed and renamed over DIR/model.hpm (atomic).           */
#ifndef HEPH_CLI_TRAIN_H
#define HEPH_CLI_TRAIN_H

#include <unistd.h>
#include "cli_common.h"
#include "cli_data.h"
#include "cli_analysis.h" /* load_model */

typedef struct {
    const char *data, *out, *resume, *preset, *enc, *dec;
    const char *labels, *classifier; /* the conditional VAE: the label factor, the loss's classifier */
    double label_weight, wrong;      /* -1: not given                                               */
    int label_dim;
    heph_vae_config cfg;
    int z, shape[3], have_obj, gamma_end_set, batch, fixed_threads;
    long steps, epochs, ckpt_every, log_every;
    uint64_t seed;
} cli_topts;

static const char *const train_help =
    "usage: hephaestus train --data PATH [options]\n"
    "Trains a VAE on a .hpd dataset or a folder of PNG/JPEG pictures and writes DIR/model.hpm\n"
    "(with the optimiser state, so it can be resumed), DIR/train_log.csv and DIR/loss.png.\n"
    "Model (a preset, spec strings, or a preset with some parts replaced):\n"
    "  --preset NAME       mlp-mnist, mlp-dsprites, cnn-dsprites, cnn-dsprites-tc, cnn-shapes3d,\n"
    "                      cvae-mnist (conditional: z 10, lambda 100; needs --classifier)\n"
    "  --enc SPEC          encoder body, e.g. conv32k4s2p1,relu,flatten,dense256,relu (the\n"
    "                      2*z output layer is added)\n"
    "  --dec SPEC          decoder: z -> C*H*W logits, e.g. dense256,relu,dense784\n"
    "  --z D               latent dimensions\n"
    "  --shape CxHxW       picture shape of a spec model (default: the data's; folder pictures\n"
    "                      are resized to it)\n"
    "Objective:\n"
    "  --objective NAME    beta (recon + beta KL, default), capacity (recon + gamma |KL - C|),\n"
    "                      tcvae (recon + alpha MI + beta TC + gamma DWKL)\n"
    "  --beta B            KL weight (beta) or total-correlation weight (tcvae); default 1\n"
    "  --gamma G           capacity weight, or the tcvae dimension-wise KL weight; default 1\n"
    "  --gamma-end G       capacity: gamma falls linearly to G over the ramp (default: constant)\n"
    "  --c-max C           capacity: C rises from 0 to C nats over the ramp\n"
    "  --ramp-steps N      steps of the capacity ramp, or the tcvae DWKL anneal\n"
    "  --alpha A           tcvae: index-code MI weight (default 1)\n"
    "  --estimator E       tcvae: mws or mss (default mss)\n"
    "  --recon R           bernoulli (default) or gaussian\n"
    "Conditional VAE (a .hpd with a label factor; hephaestus relabel uses the model):\n"
    "  --labels F          condition on factor F (name or index; K = its value count): the label's\n"
    "                      embedding is added to the mu and log-variance layers and joins z at the\n"
    "                      decoder (default for a conditional preset or --resume: the data's\n"
    "                      first factor with the model's K values)\n"
    "  --classifier FILE   the frozen classifier (.hpn from hephaestus classifier, K logits) whose\n"
    "                      NLL of the given label joins the loss; needed when lambda > 0\n"
    "  --label-weight L    lambda, the weight of that NLL (default 100 for cvae-mnist, else 0)\n"
    "  --wrong-labels P    share of pictures given a wrong label while training (default 0.1)\n"
    "  --label-dim E       width of the decoder's label embedding (default K)\n"
    "Optimisation:\n"
    "  --steps N           optimiser steps in total (default 1000; with --resume, the total\n"
    "                      including the steps already taken)\n"
    "  --epochs E          instead of --steps: E passes over the data\n"
    "  --batch-size B      pictures per step (default 64)\n"
    "  --lr X              Adam learning rate (default 1e-3)\n"
    "  --seed S            initialisation, batches and noise (default 1)\n"
    "  --threads T         at most T OpenMP threads (default: OMP_NUM_THREADS or all cores);\n"
    "                      the count adapts: when another busy program makes fewer threads\n"
    "                      faster, fewer are used (the results are the same for any count)\n"
    "  --fixed-threads     always use exactly --threads threads\n"
    "  --checkpoint-every K  steps between checkpoints (default 500)\n"
    "  --log-every K       steps between progress lines and log rows (default: 1/20 of the run)\n"
    "  --resume FILE       continue from a checkpoint (its model and objective are used)\n"
    "  --out DIR           output folder (default out)\n"
    "  -h, --help          this help\n";

static void parse_shape(cli_topts *t, const char *v) {
    char x1, x2, end;
    if (sscanf(v, "%d%c%d%c%d%c", &t->shape[0], &x1, &t->shape[1], &x2, &t->shape[2], &end) != 5 || x1 != 'x' || x2 != 'x' ||
        t->shape[0] < 1 || t->shape[1] < 1 || t->shape[2] < 1 || t->shape[0] > 4096 || t->shape[1] > 65536 || t->shape[2] > 65536)
        cli_usage("--shape takes CxHxW, e.g. 1x28x28, got \"%s\"", v);
}

static void parse_objective(cli_topts *t, const char *v) {
    t->have_obj = 1;
    if (cli_is(v, "beta")) t->cfg.obj.kind = HEPH_OBJ_BETA;
    else if (cli_is(v, "capacity")) t->cfg.obj.kind = HEPH_OBJ_CAPACITY;
    else if (cli_is(v, "tcvae")) t->cfg.obj.kind = HEPH_OBJ_TCVAE;
    else cli_usage("--objective takes beta, capacity or tcvae, got \"%s\"", v);
}

/* objective options; 1 if argv[*i] was one */
static int train_obj_flag(cli_topts *t, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    heph_objective *ob = &t->cfg.obj;
    if (cli_is(a, "--objective")) parse_objective(t, cli_val(argc, argv, i));
    else if (cli_is(a, "--beta")) ob->beta = (float)cli_num(a, cli_val(argc, argv, i), 0.0, 1e6);
    else if (cli_is(a, "--gamma")) ob->gamma = (float)cli_num(a, cli_val(argc, argv, i), 0.0, 1e6);
    else if (cli_is(a, "--gamma-end")) { ob->gamma_end = (float)cli_num(a, cli_val(argc, argv, i), 0.0, 1e6); t->gamma_end_set = 1; }
    else if (cli_is(a, "--c-max")) ob->c_max = (float)cli_num(a, cli_val(argc, argv, i), 0.0, 1e6);
    else if (cli_is(a, "--ramp-steps")) ob->ramp_steps = (uint64_t)cli_long(a, cli_val(argc, argv, i), 0, 2000000000L);
    else if (cli_is(a, "--alpha")) ob->alpha = (float)cli_num(a, cli_val(argc, argv, i), 0.0, 1e6);
    else if (cli_is(a, "--estimator")) {
        const char *v = cli_val(argc, argv, i);
        if (cli_is(v, "mws")) ob->estimator = HEPH_TC_MWS;
        else if (cli_is(v, "mss")) ob->estimator = HEPH_TC_MSS;
        else cli_usage("--estimator takes mws or mss, got \"%s\"", v);
    } else if (cli_is(a, "--recon")) {
        const char *v = cli_val(argc, argv, i);
        if (cli_is(v, "bernoulli")) ob->recon = HEPH_RECON_BERNOULLI;
        else if (cli_is(v, "gaussian")) ob->recon = HEPH_RECON_GAUSSIAN;
        else cli_usage("--recon takes bernoulli or gaussian, got \"%s\"", v);
    } else return 0;
    t->have_obj = 1;
    return 1;
}

static void train_parse(cli_topts *t, int argc, char **argv) {
    int i;
    memset(t, 0, sizeof *t);
    heph_vae_config_default(&t->cfg);
    t->out = "out"; t->steps = 1000; t->batch = 64; t->seed = 1; t->ckpt_every = 500;
    t->label_weight = t->wrong = -1.0;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h") || cli_is(a, "--help")) { fputs(train_help, stdout); exit(0); }
        else if (train_obj_flag(t, argc, argv, &i)) {}
        else if (cli_is(a, "--data")) t->data = cli_val(argc, argv, &i);
        else if (cli_is(a, "--out")) t->out = cli_out_val(argc, argv, &i);
        else if (cli_is(a, "--resume")) t->resume = cli_val(argc, argv, &i);
        else if (cli_is(a, "--preset")) t->preset = cli_val(argc, argv, &i);
        else if (cli_is(a, "--enc")) t->enc = cli_val(argc, argv, &i);
        else if (cli_is(a, "--dec")) t->dec = cli_val(argc, argv, &i);
        else if (cli_is(a, "--z")) t->z = (int)cli_long(a, cli_val(argc, argv, &i), 1, 4096);
        else if (cli_is(a, "--shape")) parse_shape(t, cli_val(argc, argv, &i));
        else if (cli_is(a, "--steps")) t->steps = cli_long(a, cli_val(argc, argv, &i), 1, 2000000000L);
        else if (cli_is(a, "--epochs")) t->epochs = cli_long(a, cli_val(argc, argv, &i), 1, 1000000L);
        else if (cli_is(a, "--batch-size")) t->batch = (int)cli_long(a, cli_val(argc, argv, &i), 1, 65536);
        else if (cli_is(a, "--lr")) t->cfg.lr = (float)cli_num(a, cli_val(argc, argv, &i), 1e-12, 10.0);
        else if (cli_is(a, "--seed")) t->seed = (uint64_t)cli_long(a, cli_val(argc, argv, &i), 0, 0x7fffffffL);
        else if (cli_is(a, "--threads")) cli_threads((int)cli_long(a, cli_val(argc, argv, &i), 1, 1024));
        else if (cli_is(a, "--fixed-threads")) t->fixed_threads = 1;
        else if (cli_is(a, "--checkpoint-every")) t->ckpt_every = cli_long(a, cli_val(argc, argv, &i), 1, 2000000000L);
        else if (cli_is(a, "--log-every")) t->log_every = cli_long(a, cli_val(argc, argv, &i), 1, 2000000000L);
        else if (cli_is(a, "--labels")) t->labels = cli_val(argc, argv, &i);
        else if (cli_is(a, "--classifier")) t->classifier = cli_val(argc, argv, &i);
        else if (cli_is(a, "--label-weight")) t->label_weight = cli_num(a, cli_val(argc, argv, &i), 0.0, 1e6);
        else if (cli_is(a, "--wrong-labels")) t->wrong = cli_num(a, cli_val(argc, argv, &i), 0.0, 1.0);
        else if (cli_is(a, "--label-dim")) t->label_dim = (int)cli_long(a, cli_val(argc, argv, &i), 1, 4096);
        else cli_unknown(a);
    }
    cli_require(t->data, "--data");
    if (t->resume && (t->preset || t->enc || t->dec || t->z || t->have_obj || t->label_weight >= 0 || t->wrong >= 0 ||
                      t->label_dim))
        cli_usage("--resume continues the checkpoint's own model and objective: drop --preset/--enc/--dec/--z, objective "
                  "options and --label-weight/--wrong-labels/--label-dim");
    if (!t->resume && !t->preset && (!t->enc || !t->dec))
        cli_usage("give a model: --preset NAME, or --enc SPEC and --dec SPEC (see --help)");
}

/* ---- the model ---------------------------------------------------------------------------- */

/* the configuration of a new model: preset, then the parts given on the command line */
static void train_config(cli_topts *t, heph_vae_config *cfg) {
    heph_objective ob = t->cfg.obj;
    float lr = t->cfg.lr;
    if (t->preset) {
        if (heph_vae_config_preset(cfg, t->preset) != HEPH_OK)
            cli_usage("unknown preset \"%s\" (mlp-mnist, mlp-dsprites, cnn-dsprites, cnn-dsprites-tc, cnn-shapes3d)", t->preset);
    } else {
        heph_vae_config_default(cfg);
        cfg->in_c = 0; /* from --shape or the data */
    }
    cfg->obj = ob;
    if (!t->gamma_end_set) cfg->obj.gamma_end = ob.gamma; /* no --gamma-end: gamma stays constant */
    cfg->lr = lr;
    /* a longer spec would be cut mid-word (and a cut spec may still parse) */
    if (t->enc && strlen(t->enc) >= sizeof cfg->enc_spec)
        cli_usage("--enc is %zu characters long; a spec has at most %zu", strlen(t->enc), sizeof cfg->enc_spec - 1);
    if (t->dec && strlen(t->dec) >= sizeof cfg->dec_spec)
        cli_usage("--dec is %zu characters long; a spec has at most %zu", strlen(t->dec), sizeof cfg->dec_spec - 1);
    if (t->enc) snprintf(cfg->enc_spec, sizeof cfg->enc_spec, "%s", t->enc);
    if (t->dec) snprintf(cfg->dec_spec, sizeof cfg->dec_spec, "%s", t->dec);
    if (t->z) cfg->z_dim = t->z;
    if (t->shape[0]) { cfg->in_c = t->shape[0]; cfg->in_h = t->shape[1]; cfg->in_w = t->shape[2]; }
    cfg->max_batch = t->batch;
    if (t->label_weight >= 0) cfg->label_weight = (float)t->label_weight;
    if (t->wrong >= 0) cfg->wrong_labels = (float)t->wrong;
    if (t->label_dim) cfg->label_dim = t->label_dim;
    if (!t->labels && !cfg->n_classes && (t->label_weight >= 0 || t->wrong >= 0 || t->label_dim || t->classifier))
        cli_usage("--label-weight, --wrong-labels, --label-dim and --classifier are for a conditional model: add --labels F");
}

static void train_new_model(cli_topts *t, heph_vae *m, heph_vae_config *cfg, uint64_t n_data) {
    if (cfg->obj.kind == HEPH_OBJ_TCVAE) {
        cfg->obj.dataset_size = n_data;
        if (n_data < (uint64_t)cfg->max_batch)
            cli_fail("%s: %llu pictures, fewer than the batch size %d (beta-TCVAE needs N >= batch)", t->data,
                     (unsigned long long)n_data, cfg->max_batch);
    }
    if (heph_vae_init(m, cfg, t->seed) != HEPH_OK) cli_fail("%s", m->err);
}

/* ---- the data ------------------------------------------------------------------------------- */

typedef struct {
    heph_hpd hpd;   /* a .hpd is read batch by batch ...          */
    int is_hpd;
    int label_k;    /* the label factor of a conditional model (-1: none) */
    cli_pics pics;  /* ... a folder is loaded whole               */
    size_t n, np;
} cli_source;

/* open the data; c > 0: the model's shape (folders are fitted to it, a .hpd must match) */
static void source_open(cli_source *s, const char *path, int c, int h, int w) {
    memset(s, 0, sizeof *s);
    s->label_k = -1;
    if (cli_is_dir(path)) {
        pics_load(&s->pics, path, c, h, w);
        s->n = s->pics.n;
        s->np = (size_t)s->pics.c * (size_t)s->pics.h * (size_t)s->pics.w;
        return;
    }
    cli_need_regular(path);
    if (heph_hpd_open(&s->hpd, path) != HEPH_OK) cli_fail("%s", s->hpd.err);
    s->is_hpd = 1;
    if (s->hpd.info.count > (uint64_t)(size_t)-1)
        cli_fail("%s: %llu pictures, more than this build can index (%zu-bit size_t)", path,
                 (unsigned long long)s->hpd.info.count, sizeof(size_t) * 8);
    s->n = (size_t)s->hpd.info.count;
    s->np = heph_hpd_picture_size(&s->hpd.info);
    if (c > 0 && ((int)s->hpd.info.c != c || (int)s->hpd.info.h != h || (int)s->hpd.info.w != w))
        cli_fail("%s holds %ux%ux%u pictures (CxHxW) but the model takes %dx%dx%d", path, s->hpd.info.c, s->hpd.info.h,
                 s->hpd.info.w, c, h, w);
}

static void source_shape(const cli_source *s, int *c, int *h, int *w) {
    if (s->is_hpd) { *c = (int)s->hpd.info.c; *h = (int)s->hpd.info.h; *w = (int)s->hpd.info.w; }
    else { *c = s->pics.c; *h = s->pics.h; *w = s->pics.w; }
}

/* the label factor of a conditional model with K classes: F by name or index, or (NULL) the
   first factor with K values (K = 0: the first factor); its value count must be K (K = 0:
   any, a new model takes it). Returns its value count. */
static int source_labels(cli_source *s, const char *path, const char *f, int K) {
    const heph_hpd_info *in = &s->hpd.info;
    int k = -1, j;
    char *e;
    long v;
    if (!s->is_hpd) cli_fail("%s: a folder of pictures has no labels; a conditional model trains on a .hpd with a label factor", path);
    if (in->n_factors == 0) cli_fail("%s has no factors: a conditional model needs a label factor (idx2hpd with the label file)", path);
    if (!f) {
        for (j = 0; j < (int)in->n_factors && k < 0; j++)
            if (!K || (int)in->factors[j].n_values == K) k = j;
        if (k < 0) cli_fail("%s: no factor has %d values (the model's labels); give the label factor: --labels F", path, K);
    } else {
        v = strtol(f, &e, 10);
        if (*f && !*e && v >= 0 && v < (long)in->n_factors) k = (int)v;
        for (j = 0; k < 0 && j < (int)in->n_factors; j++)
            if (cli_is(in->factors[j].name, f)) k = j;
        if (k < 0) cli_usage("--labels %s: %s has no such factor (it has %u; give a name or an index)", f, path, in->n_factors);
    }
    if (in->factors[k].n_values < 2 || in->factors[k].n_values > 65536)
        cli_fail("%s: factor \"%s\" has %u values; labels need 2..65536", path, in->factors[k].name, in->factors[k].n_values);
    if (K && (int)in->factors[k].n_values != K)
        cli_fail("%s: factor \"%s\" has %u values, the model takes %d labels", path, in->factors[k].name,
                 in->factors[k].n_values, K);
    s->label_k = k;
    return (int)in->factors[k].n_values;
}

/* a batch; NULL, or what is wrong with it (a picture the .hpd reader refuses); y (n) gets the
   labels of a conditional model */
static const char *source_read(cli_source *s, const size_t *idx, size_t n, float *x, int *y) {
    size_t i;
    if (s->label_k >= 0)
        for (i = 0; i < n; i++) y[i] = (int)heph_hpd_label(&s->hpd, idx[i], s->label_k);
    if (s->is_hpd) return heph_hpd_read(&s->hpd, idx, n, x) != HEPH_OK ? s->hpd.err : NULL;
    for (i = 0; i < n; i++) memcpy(x + i * s->np, s->pics.x + idx[i] * s->np, s->np * sizeof(float));
    return NULL;
}

/* training stopped before step m->step + 1: why, and whether a checkpoint is there to resume */
static void train_stopped(const heph_vae *m, const char *why, const char *ck) {
    struct stat st;
    if (stat(ck, &st) == 0)
        cli_fail("training stopped at step %llu: %s (the last checkpoint %s is intact)", (unsigned long long)m->step, why, ck);
    cli_fail("training stopped at step %llu: %s (no checkpoint was written to %s)", (unsigned long long)m->step, why, ck);
}

static void source_close(cli_source *s) {
    if (s->is_hpd) heph_hpd_close(&s->hpd);
    else pics_free(&s->pics);
}

/* ---- the loop --------------------------------------------------------------------------------- */

enum { T_LOSS, T_RECON, T_KL, T_MI, T_TC, T_DWKL, T_C, T_GAMMA, T_LABEL, T_LACC, T_N };
#define T_CSV_N T_LABEL /* the columns every log has; a conditional model's log adds label, label_acc */

typedef struct {
    double sum[T_N];     /* sums since the last log line */
    long count;          /* steps in them                */
    double t_log, t0;    /* clock at the last line, at the start */
    uint64_t step0;
    FILE *csv;
    const char *out;     /* the output folder */
    double *hist;        /* (points, 3): loss, recon, KL per log line */
    size_t n_hist, cap_hist;
} cli_tlog;

static void tlog_add(cli_tlog *g, const heph_losses *L) {
    g->sum[T_LOSS] += L->loss; g->sum[T_RECON] += L->recon; g->sum[T_KL] += L->kl;
    g->sum[T_MI] += L->mi; g->sum[T_TC] += L->tc; g->sum[T_DWKL] += L->dwkl;
    g->sum[T_C] += L->c; g->sum[T_GAMMA] += L->gamma;
    g->sum[T_LABEL] += L->label; g->sum[T_LACC] += L->label_acc;
    g->count++;
}

/* one progress line (stderr) and one row of train_log.csv; then start new sums */
static void tlog_line(cli_tlog *g, const heph_vae *m, uint64_t total, int batch) {
    double a[T_N], t = cli_now(), ips = (double)g->count * batch / (t - g->t_log > 1e-9 ? t - g->t_log : 1e-9);
    double eta = (double)(total - m->step) * (t - g->t0) / (double)(m->step - g->step0);
    int k, tty = isatty(2), kind = m->cfg.obj.kind;
    char es[32];
    for (k = 0; k < T_N; k++) a[k] = g->sum[k] / (double)(g->count ? g->count : 1);
    cli_hms(es, sizeof es, eta);
    fprintf(stderr, "%sstep %llu/%llu  loss %.3f  recon %.3f  KL %.3f", tty ? "\r" : "", (unsigned long long)m->step,
            (unsigned long long)total, a[T_LOSS], a[T_RECON], a[T_KL]);
    if (kind == HEPH_OBJ_TCVAE) fprintf(stderr, "  MI %.3f  TC %.3f  DWKL %.3f", a[T_MI], a[T_TC], a[T_DWKL]);
    if (kind != HEPH_OBJ_BETA) fprintf(stderr, "  C %.2f  gamma %.3g", a[T_C], a[T_GAMMA]);
    if (m->cls && m->cfg.label_weight > 0.0f) fprintf(stderr, "  label %.4f (x%g)  acc %.1f%%", a[T_LABEL], (double)m->cfg.label_weight, 100.0 * a[T_LACC]);
    fprintf(stderr, "  %.0f img/s  ETA %s%s", ips, es, tty && m->step < total ? "   " : "\n");
    fprintf(g->csv, "%llu", (unsigned long long)m->step);
    for (k = 0; k < T_CSV_N; k++) fprintf(g->csv, ",%.6g", a[k]);
    fprintf(g->csv, ",%.1f", ips);
    if (m->cfg.n_classes) fprintf(g->csv, ",%.6g,%.6g", a[T_LABEL], a[T_LACC]);
    fputc('\n', g->csv);
    if (fflush(g->csv) != 0 || ferror(g->csv)) cli_fail("%s/train_log.csv: cannot write (%s)", g->out, strerror(errno));
    if (g->n_hist == g->cap_hist) {
        double *more;
        g->cap_hist = g->cap_hist ? 2 * g->cap_hist : 256;
        more = (double *)realloc(g->hist, g->cap_hist * 3 * sizeof(double));
        if (!more) cli_fail("out of memory");
        g->hist = more;
    }
    g->hist[3 * g->n_hist] = a[T_LOSS]; g->hist[3 * g->n_hist + 1] = a[T_RECON]; g->hist[3 * g->n_hist + 2] = a[T_KL];
    g->n_hist++;
    memset(g->sum, 0, sizeof g->sum);
    g->count = 0;
    g->t_log = t;
}

/* the log is a progress file, written line by line in place (each line checked), not atomically */
static void tlog_open(cli_tlog *g, const char *out, uint64_t step0, int cond) {
    cli_path p = cli_join(out, "train_log.csv");
    memset(g, 0, sizeof *g);
    g->out = out;
    g->csv = fopen(p.s, step0 > 0 ? "a" : "w");
    if (!g->csv) cli_fail("%s: cannot open for writing (%s)", p.s, strerror(errno));
    fseek(g->csv, 0, SEEK_END);
    if (ftell(g->csv) == 0)
        fprintf(g->csv, "step,loss,recon,kl,mi,tc,dwkl,c,gamma,images_per_s%s\n", cond ? ",label,label_acc" : "");
    g->t0 = g->t_log = cli_now();
    g->step0 = step0;
}

/* loss curves of this session: objective, reconstruction and KL per log line */
static void tlog_plot(const cli_tlog *g, const char *out) {
    static const char *const names[3] = {"loss", "recon", "KL"};
    float *ys;
    uint8_t *rgb;
    size_t i;
    int s, W = 800, H = 400;
    cli_path p = cli_join(out, "loss.png");
    if (g->n_hist < 2) return;
    ys = (float *)cli_alloc(3 * g->n_hist, sizeof(float));
    rgb = (uint8_t *)cli_alloc((size_t)W * (size_t)H, 3);
    for (s = 0; s < 3; s++)
        for (i = 0; i < g->n_hist; i++) ys[(size_t)s * g->n_hist + i] = (float)g->hist[3 * i + (size_t)s];
    plot_lines(rgb, W, H, ys, 3, (int)g->n_hist, names, "training (nats per image, one point per log line)");
    cli_write_png(p.s, rgb, W, H);
    printf("wrote %s\n", p.s);
    free(ys); free(rgb);
}

/* steps in unsigned 64-bit arithmetic: the checkpoint's step is at most HEPH_STEP_MAX (the
   loader refuses more) and total at most 2^63, so nothing here can overflow */
/* one training per folder: an advisory lock (fcntl) on DIR/train.lock, held until exit, so a
   second training started in the same folder refuses instead of writing the same files */
static void train_lock(const char *out) {
    cli_path p = cli_join(out, "train.lock");
    struct flock fl;
    int fd = open(p.s, O_RDWR | O_CREAT, 0666);
    if (fd < 0) cli_fail("%s: cannot create the lock file (%s)", p.s, strerror(errno));
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        if (errno == EACCES || errno == EAGAIN)
            cli_fail("%s: another training is running in this folder (it holds %s); wait for it or give another --out", out, p.s);
        cli_fail("%s: cannot lock (%s)", p.s, strerror(errno));
    }
    /* fd stays open: the lock goes with the process */
}

static void train_loop(heph_vae *m, cli_source *src, const cli_topts *t, uint64_t total, int B) {
    cli_path ck = cli_join(t->out, "model.hpm");
    size_t *idx = (size_t *)cli_alloc((size_t)B, sizeof(size_t)), k;
    float *x = (float *)cli_alloc((size_t)B * src->np, sizeof(float));
    int *y = (int *)cli_alloc((size_t)B, sizeof(int)), rc;
    uint64_t log_every = t->log_every ? (uint64_t)t->log_every : (total - m->step + 19) / 20;
    cli_tlog g;
    heph_losses L;
    const char *why;
    heph_tuner tune;
    double t0;
    uint64_t fewer = 0; /* steps the tuner ran with fewer threads than it may use, by choice */
    heph_tuner_init(&tune, t->fixed_threads ? 1 : cli_nthreads()); /* 1: nothing to choose */
    tlog_open(&g, t->out, m->step, m->cfg.n_classes > 0);
    while (m->step < total) {
        if (!t->fixed_threads) cli_threads(tune.threads);
        t0 = cli_now();
        for (k = 0; k < (size_t)B; k++) idx[k] = (size_t)heph_rng_below64(&m->rng, (uint64_t)src->n); /* uniform draw */
        if ((why = source_read(src, idx, (size_t)B, x, y)) != NULL) train_stopped(m, why, ck.s);
        rc = m->cfg.n_classes ? heph_cvae_train_step(m, x, y, B, &L) : heph_vae_train_step(m, x, B, &L);
        if (rc != HEPH_OK) train_stopped(m, m->err, ck.s);
        heph_tuner_next(&tune, cli_now() - t0);
        fewer += !tune.probing && tune.best < tune.max_threads;
        tlog_add(&g, &L);
        if (m->step % log_every == 0 || m->step == total) tlog_line(&g, m, total, B);
        if (m->step % (uint64_t)t->ckpt_every == 0 || m->step == total)
            if (heph_vae_save(m, ck.s, 0) != HEPH_OK) cli_fail("%s", m->err);
    }
    printf("trained to step %llu in %.1f s; wrote %s\n", (unsigned long long)m->step, cli_now() - g.t0, ck.s);
    if (fewer)
        printf("threads: %llu steps ran on fewer than %d threads, which were faster then (another program "
               "was busy on the cores; the results do not depend on it)\n", (unsigned long long)fewer, tune.max_threads);
    tlog_plot(&g, t->out);
    cli_fclose(g.csv, cli_join(t->out, "train_log.csv").s);
    free(g.hist); free(idx); free(x); free(y);
}

/* multiply-adds of one picture through a network spec on input (c, h, w), forward; 0 when the
   spec does not parse (the model's own build then says why) */
static double spec_macs(const char *spec, int c, int h, int w) {
    heph_layer ly[HEPH_MAX_LAYERS];
    char err[8];
    double macs = 0.0;
    int l, nl;
    if (heph_spec_parse(spec, c, h, w, ly, HEPH_MAX_LAYERS, &nl, err, sizeof err) != HEPH_OK) return 0.0;
    for (l = 0; l < nl; l++) {
        const heph_layer *L = &ly[l];
        double kk = (double)L->k * (double)L->k;
        if (L->kind == HEPH_DENSE) macs += (double)L->in_c * L->in_h * L->in_w * (double)L->out_c;
        else if (L->kind == HEPH_CONV) macs += (double)L->out_c * L->out_h * L->out_w * (double)L->in_c * kk;
        else if (L->kind == HEPH_CONVT) macs += (double)L->in_c * L->in_h * L->in_w * (double)L->out_c * kk;
    }
    return macs;
}

/* a warning when one step would take seconds or more: forward and backward are about 3 x 2 x the
   multiply-adds, and 1e11 FLOP/s is about what this machine's kernels sustain */
static void train_warn_work(const heph_vae_config *cfg, int B) {
    char enc[HEPH_SPEC_MAX + 32];
    double flop;
    snprintf(enc, sizeof enc, "%s%sdense%d", cfg->enc_spec, cfg->enc_spec[0] ? "," : "", 2 * cfg->z_dim);
    flop = 6.0 * (spec_macs(enc, cfg->in_c, cfg->in_h, cfg->in_w) + spec_macs(cfg->dec_spec, cfg->z_dim, 1, 1)) * (double)B;
    if (flop > 2e11) /* the presets stay below (cnn-shapes3d at batch 128: 5e10) */
        fprintf(stderr, "%s: warning: one step of this model is about %.3g GFLOP (batch %d): roughly %.0f s per step "
                        "at 100 GFLOP/s\n", cli_cmd, flop * 1e-9, B, flop * 1e-11);
}

static int cmd_train(int argc, char **argv) {
    cli_topts t;
    heph_vae m;
    heph_vae_config cfg;
    cli_source src;
    uint64_t total, batches;
    int B;
    heph_net cls;
    int have_cls = 0;
    train_parse(&t, argc, argv);
    if (t.resume) { load_any_model(&m, t.resume); train_warn_work(&m.cfg, t.batch < m.cfg.max_batch ? t.batch : m.cfg.max_batch); }
    else train_config(&t, &cfg);
    if (t.resume) source_open(&src, t.data, m.cfg.in_c, m.cfg.in_h, m.cfg.in_w);
    else source_open(&src, t.data, cfg.in_c, cfg.in_h, cfg.in_w);
    if (t.resume && !m.cfg.n_classes && (t.labels || t.classifier))
        cli_usage("%s is a plain VAE: --labels and --classifier are for a conditional one", t.resume);
    if (t.resume && m.cfg.n_classes) source_labels(&src, t.data, t.labels, m.cfg.n_classes);
    if (!t.resume) {
        if (cfg.in_c == 0) source_shape(&src, &cfg.in_c, &cfg.in_h, &cfg.in_w);
        if (t.labels || cfg.n_classes) cfg.n_classes = source_labels(&src, t.data, t.labels, cfg.n_classes);
        train_warn_work(&cfg, t.batch); /* before the build, which may itself take long */
        train_new_model(&t, &m, &cfg, (uint64_t)src.n);
    }
    if (m.cfg.n_classes && m.cfg.label_weight > 0.0f && !t.classifier)
        cli_usage("the label loss (lambda %g) needs its classifier: --classifier FILE.hpn (hephaestus classifier trains "
                  "one), or --label-weight 0", (double)m.cfg.label_weight);
    if (t.classifier) {
        load_classifier(&cls, t.classifier, &m);
        have_cls = 1;
    }
    B = t.resume && t.batch > m.cfg.max_batch ? m.cfg.max_batch : t.batch;
    batches = ((uint64_t)src.n + (uint64_t)B - 1) / (uint64_t)B;
    if (t.epochs && batches > HEPH_STEP_MAX / (uint64_t)t.epochs)
        cli_usage("--epochs %ld of %llu batches is more than 2^53 steps", t.epochs, (unsigned long long)batches);
    total = t.epochs ? (uint64_t)t.epochs * batches : (uint64_t)t.steps;
    cli_mkdirs(t.out);
    train_lock(t.out);
    printf("%zu pictures %dx%dx%d from %s | encoder %s | decoder %s | z %d | %zu parameters | batch %d | step %llu -> %llu\n",
           src.n, m.cfg.in_c, m.cfg.in_h, m.cfg.in_w, t.data, m.cfg.enc_spec, m.cfg.dec_spec, m.cfg.z_dim, m.n_params, B,
           (unsigned long long)m.step, (unsigned long long)total);
    if (m.cfg.n_classes)
        printf("conditional on factor \"%s\" (%d labels, embedding %d) | wrong labels %g | label loss x%g%s%s\n",
               src.hpd.info.factors[src.label_k].name, m.cfg.n_classes, m.cfg.label_dim, (double)m.cfg.wrong_labels,
               (double)m.cfg.label_weight, have_cls ? " through " : "", have_cls ? t.classifier : "");
    if (m.step >= total) printf("the checkpoint is already at step %llu: nothing to do\n", (unsigned long long)m.step);
    else train_loop(&m, &src, &t, total, B);
    source_close(&src);
    heph_vae_free(&m);
    if (have_cls) heph_net_free(&cls);
    return 0;
}

#endif
