/* cli_cycle.h - the cycle-consistent VAE in the CLI (issue #23):
   `hephaestus cycle-train` trains one on a .hpd whose pictures share a factor in pairs (the
   identity of a sprite, the digit of MNIST) and writes DIR/model.hpc, DIR/cycle_log.csv and
   DIR/loss.png; `hephaestus transfer` writes the style-transfer grid (row pictures give s,
   column pictures give z) and the interpolation grid (s along the rows, z along the columns).
   `hephaestus cycle-eval` measures the split: MLP classifiers on s and on z for each factor.
   Pairs are drawn with the model's own generator: a picture uniformly, then a partner with
   the same value of the pair factor uniformly (itself when it is alone), so `--resume`
   continues the very same run. Needs cli_data.h and plot.h. */
#ifndef HEPH_CLI_CYCLE_H
#define HEPH_CLI_CYCLE_H

#include <sys/stat.h>
#include <unistd.h>
#include "cli_common.h"
#include "cli_data.h"
#include "plot.h"
#include "cli_classify.h"

static const char *const cycle_train_help =
    "usage: hephaestus cycle-train --data FILE.hpd [options]\n"
    "Trains a cycle-consistent VAE (Jha et al. 2018): the latent splits into s, what the pair\n"
    "factor names (deterministic), and z, the rest (variational). Each step takes pairs of\n"
    "pictures with the same pair-factor value, swaps their s and rebuilds both (forward cycle),\n"
    "and decodes random z with the s of two pictures, which must encode back to that z (reverse\n"
    "cycle). Writes DIR/model.hpc (resumable), DIR/cycle_log.csv and DIR/loss.png.\n"
    "  --data FILE.hpd     the pictures and their factors\n"
    "  --pairs F           the factor a pair shares (name or index; default \"identity\" when the\n"
    "                      file has it, else its first factor: the digit of MNIST)\n"
    "  --preset NAME       cyc-mnist (1x28x28, s 16, z 16) or cyc-sprites (3x64x64, s 64, z 32);\n"
    "                      default: the one whose picture shape is the data's\n"
    "  --enc SPEC, --dec SPEC   replace the preset's encoder body / decoder ([s | z] -> C*H*W)\n"
    "  --s-dim S, --z-dim Z     latent sizes\n"
    "  --recon R           gaussian (default: squared error, as the write-up) or bernoulli\n"
    "  --w-recon W, --w-kl W, --w-reverse W   the weights (default 2, 3, 10)\n"
    "  --reverse-grad G    encoder (default, as the authors' code: the reverse term trains the\n"
    "                      encoder alone) or all (every parameter: the decoder too)\n"
    "  --epochs E          passes over the data (a pass: as many pairs as pictures); default 10\n"
    "  --steps N           instead of --epochs: optimiser steps in total (with --resume: the\n"
    "                      total including the steps already taken)\n"
    "  --batch-size B      pairs per step (default 64)\n"
    "  --lr X              Adam learning rate (default 1e-4)\n"
    "  --seed S            initialisation, pairs and noise (default 1)\n"
    "  --threads T         OpenMP threads (default: OMP_NUM_THREADS or all cores; the results\n"
    "                      are the same for any count)\n"
    "  --checkpoint-every K  steps between checkpoints (default 500)\n"
    "  --log-every K       steps between progress lines and log rows (default: 1/20 of the run)\n"
    "  --resume FILE.hpc   continue from a checkpoint (its model and settings are used)\n"
    "  --out DIR           output folder (default out/cycle)\n"
    "  -h, --help          this help\n";

typedef struct {
    const char *data, *pairs, *preset, *enc, *dec, *resume, *out;
    heph_cyc_config cfg;
    long epochs, steps, ckpt_every, log_every;
    int batch, s_dim, z_dim, recon, reverse_grad;
    double w[3], lr; /* -1: not given */
    uint64_t seed;
} cli_cyopts;

static void cycle_parse(cli_cyopts *o, int argc, char **argv) {
    int i;
    memset(o, 0, sizeof *o);
    o->out = "out/cycle"; o->epochs = 10; o->batch = 64; o->seed = 1; o->ckpt_every = 500; o->recon = -1; o->reverse_grad = -1;
    o->w[0] = o->w[1] = o->w[2] = o->lr = -1.0;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h") || cli_is(a, "--help")) { fputs(cycle_train_help, stdout); exit(0); }
        else if (cli_is(a, "--data")) o->data = cli_val(argc, argv, &i);
        else if (cli_is(a, "--pairs")) o->pairs = cli_val(argc, argv, &i);
        else if (cli_is(a, "--preset")) o->preset = cli_val(argc, argv, &i);
        else if (cli_is(a, "--enc")) o->enc = cli_val(argc, argv, &i);
        else if (cli_is(a, "--dec")) o->dec = cli_val(argc, argv, &i);
        else if (cli_is(a, "--s-dim")) o->s_dim = (int)cli_long(a, cli_val(argc, argv, &i), 1, 4096);
        else if (cli_is(a, "--z-dim")) o->z_dim = (int)cli_long(a, cli_val(argc, argv, &i), 1, 4096);
        else if (cli_is(a, "--recon")) {
            const char *v = cli_val(argc, argv, &i);
            if (cli_is(v, "gaussian")) o->recon = HEPH_RECON_GAUSSIAN;
            else if (cli_is(v, "bernoulli")) o->recon = HEPH_RECON_BERNOULLI;
            else cli_usage("--recon takes gaussian or bernoulli, got \"%s\"", v);
        } else if (cli_is(a, "--reverse-grad")) {
            const char *v = cli_val(argc, argv, &i);
            if (cli_is(v, "encoder")) o->reverse_grad = HEPH_CYC_REVERSE_ENCODER;
            else if (cli_is(v, "all")) o->reverse_grad = HEPH_CYC_REVERSE_ALL;
            else cli_usage("--reverse-grad takes encoder or all, got \"%s\"", v);
        } else if (cli_is(a, "--w-recon")) o->w[0] = cli_num(a, cli_val(argc, argv, &i), 0.0, (double)HEPH_WEIGHT_MAX);
        else if (cli_is(a, "--w-kl")) o->w[1] = cli_num(a, cli_val(argc, argv, &i), 0.0, (double)HEPH_WEIGHT_MAX);
        else if (cli_is(a, "--w-reverse")) o->w[2] = cli_num(a, cli_val(argc, argv, &i), 0.0, (double)HEPH_WEIGHT_MAX);
        else if (cli_is(a, "--epochs")) { o->epochs = cli_long(a, cli_val(argc, argv, &i), 1, 1000000); o->steps = 0; }
        else if (cli_is(a, "--steps")) { o->steps = cli_long(a, cli_val(argc, argv, &i), 1, 0x7fffffffL); o->epochs = 0; }
        else if (cli_is(a, "--batch-size")) o->batch = (int)cli_long(a, cli_val(argc, argv, &i), 1, 32768);
        else if (cli_is(a, "--lr")) o->lr = cli_num(a, cli_val(argc, argv, &i), 1e-12, (double)HEPH_LR_MAX);
        else if (cli_is(a, "--seed")) o->seed = (uint64_t)cli_long(a, cli_val(argc, argv, &i), 0, 0x7fffffffL);
        else if (cli_is(a, "--threads")) cli_threads((int)cli_long(a, cli_val(argc, argv, &i), 1, 1024));
        else if (cli_is(a, "--checkpoint-every")) o->ckpt_every = cli_long(a, cli_val(argc, argv, &i), 1, 0x7fffffffL);
        else if (cli_is(a, "--log-every")) o->log_every = cli_long(a, cli_val(argc, argv, &i), 1, 0x7fffffffL);
        else if (cli_is(a, "--resume")) o->resume = cli_val(argc, argv, &i);
        else if (cli_is(a, "--out")) o->out = cli_out_val(argc, argv, &i);
        else cli_unknown(a);
    }
    cli_require(o->data, "--data");
    if (o->resume && (o->preset || o->enc || o->dec || o->s_dim || o->z_dim || o->recon >= 0 || o->reverse_grad >= 0 || o->lr > 0 || o->w[0] >= 0 ||
                      o->w[1] >= 0 || o->w[2] >= 0))
        cli_usage("--resume takes the model and its settings from the checkpoint: leave out --preset, --enc, --dec, "
                  "--s-dim, --z-dim, --recon, --reverse-grad, --lr and --w-*");
}

/* the configuration of a new model: the preset (named, or the one of the data's shape), then
   the options that replace parts of it */
static void cycle_config(const cli_cyopts *o, const cli_pics *p, heph_cyc_config *c) {
    const char *pre = o->preset ? o->preset : (p->c == 1 && p->h == 28 && p->w == 28) ? "cyc-mnist"
                                            : (p->c == 3 && p->h == 64 && p->w == 64) ? "cyc-sprites" : NULL;
    if (pre && heph_cyc_config_preset(c, pre) != HEPH_OK) cli_usage("--preset takes cyc-mnist or cyc-sprites, got \"%s\"", pre);
    if (!pre) {
        if (!o->enc || !o->dec)
            cli_usage("%s has %dx%dx%d pictures, which no preset takes: give --enc and --dec", p->path, p->c, p->h, p->w);
        heph_cyc_config_default(c);
    }
    if (c->in_c != p->c || c->in_h != p->h || c->in_w != p->w) {
        if (o->preset && !(o->enc && o->dec))
            cli_fail("%s has %dx%dx%d pictures, preset %s takes %dx%dx%d", p->path, p->c, p->h, p->w, pre, c->in_c, c->in_h, c->in_w);
        c->in_c = p->c; c->in_h = p->h; c->in_w = p->w;
    }
    if (o->enc) snprintf(c->enc_spec, sizeof c->enc_spec, "%s", o->enc);
    if (o->dec) snprintf(c->dec_spec, sizeof c->dec_spec, "%s", o->dec);
    if (o->s_dim) c->s_dim = o->s_dim;
    if (o->z_dim) c->z_dim = o->z_dim;
    if (o->recon >= 0) c->recon = o->recon;
    if (o->reverse_grad >= 0) c->reverse_grad = o->reverse_grad;
    if (o->w[0] >= 0) c->w_recon = (float)o->w[0];
    if (o->w[1] >= 0) c->w_kl = (float)o->w[1];
    if (o->w[2] >= 0) c->w_reverse = (float)o->w[2];
    if (o->lr > 0) c->lr = (float)o->lr;
    c->max_batch = o->batch;
}

/* the pair factor of p: F by name or index, else "identity", else the first factor */
static int cycle_pair_factor(const cli_pics *p, const char *f) {
    char buf[512];
    int k;
    if (p->K == 0) cli_fail("%s has no factors: cycle-train needs a .hpd whose pictures share a factor in pairs", p->path);
    if (f) {
        k = factor_index(p, f, strlen(f));
        if (k < 0) cli_usage("--pairs %s: %s has the factors %s", f, p->path, factor_list(p, buf, sizeof buf));
        return k;
    }
    k = factor_index(p, "identity", 8);
    return k >= 0 ? k : 0;
}

/* the pictures grouped by the value of factor k: order (n) lists them value by value, start
   (V + 1) where each value's run begins */
typedef struct {
    size_t *order, *start, *pos; /* pos[i]: the value of picture i (its group)               */
    uint32_t V;
} cli_groups;

static void groups_make(cli_groups *g, const cli_pics *p, int k) {
    size_t i, *fill;
    uint32_t v;
    g->V = p->n_values[k];
    g->order = (size_t *)cli_alloc(p->n, sizeof(size_t));
    g->start = (size_t *)cli_alloc((size_t)g->V + 1, sizeof(size_t));
    g->pos = (size_t *)cli_alloc(p->n, sizeof(size_t));
    fill = (size_t *)cli_alloc((size_t)g->V + 1, sizeof(size_t));
    for (i = 0; i < p->n; i++) g->start[(size_t)p->labels[i * (size_t)p->K + (size_t)k] + 1]++;
    for (v = 0; v < g->V; v++) g->start[v + 1] += g->start[v];
    memcpy(fill, g->start, ((size_t)g->V + 1) * sizeof(size_t));
    for (i = 0; i < p->n; i++) { /* counting sort: stable, so the order is the file's */
        size_t val = (size_t)p->labels[i * (size_t)p->K + (size_t)k];
        g->pos[i] = val;
        g->order[fill[val]++] = i;
    }
    free(fill);
}

static void groups_free(cli_groups *g) { free(g->order); free(g->start); free(g->pos); }

/* B pairs: picture i uniform, its partner uniform among the pictures with i's value */
static void cycle_pairs(heph_rng *r, const cli_groups *g, const cli_pics *p, int B, float *x1, float *x2) {
    size_t np = (size_t)p->c * (size_t)p->h * (size_t)p->w;
    int b;
    for (b = 0; b < B; b++) {
        size_t i = (size_t)heph_rng_below64(r, (uint64_t)p->n), v = g->pos[i], a = g->start[v], n = g->start[v + 1] - a;
        size_t j = g->order[a + (size_t)heph_rng_below64(r, (uint64_t)n)];
        memcpy(x1 + (size_t)b * np, p->x + i * np, np * sizeof(float));
        memcpy(x2 + (size_t)b * np, p->x + j * np, np * sizeof(float));
    }
}

/* ---- the log ----------------------------------------------------------------------------------- */

typedef struct {
    double sum[4], t0, t_log; /* loss, recon, KL, reverse since the last line */
    long count;
    uint64_t step0;
    FILE *csv;
    cli_path path;
    float *hist; /* (points, 4): log10 of each term per log line */
    size_t n_hist, cap;
} cli_cylog;

static void cylog_open(cli_cylog *g, const char *out, uint64_t step0) {
    memset(g, 0, sizeof *g);
    g->path = cli_join(out, "cycle_log.csv");
    g->csv = fopen(g->path.s, step0 > 0 ? "a" : "w"); /* a progress file, line by line (as train_log.csv) */
    if (!g->csv) cli_fail("%s: cannot open for writing (%s)", g->path.s, strerror(errno));
    fseek(g->csv, 0, SEEK_END);
    if (ftell(g->csv) == 0) fprintf(g->csv, "step,loss,recon,kl,reverse,images_per_s\n");
    g->t0 = g->t_log = cli_now();
    g->step0 = step0;
}

static void cylog_line(cli_cylog *g, const heph_cyc *m, uint64_t total, int B) {
    double a[4], t = cli_now(), ips = 2.0 * (double)g->count * B / (t - g->t_log > 1e-9 ? t - g->t_log : 1e-9);
    double eta = (double)(total - m->step) * (t - g->t0) / (double)(m->step - g->step0);
    int k, tty = isatty(2);
    char es[32];
    for (k = 0; k < 4; k++) a[k] = g->sum[k] / (double)(g->count ? g->count : 1);
    cli_hms(es, sizeof es, eta);
    fprintf(stderr, "%sstep %llu/%llu  loss %.4g  recon %.4g  KL %.3g  reverse %.3g  %.0f img/s  ETA %s%s", tty ? "\r" : "",
            (unsigned long long)m->step, (unsigned long long)total, a[0], a[1], a[2], a[3], ips, es,
            tty && m->step < total ? "   " : "\n");
    fprintf(g->csv, "%llu,%.6g,%.6g,%.6g,%.6g,%.1f\n", (unsigned long long)m->step, a[0], a[1], a[2], a[3], ips);
    if (fflush(g->csv) != 0 || ferror(g->csv)) cli_fail("%s: cannot write (%s)", g->path.s, strerror(errno));
    if (g->n_hist == g->cap) {
        float *more;
        g->cap = g->cap ? 2 * g->cap : 256;
        if (!(more = (float *)realloc(g->hist, g->cap * 4 * sizeof(float)))) cli_fail("out of memory");
        g->hist = more;
    }
    for (k = 0; k < 4; k++) g->hist[4 * g->n_hist + (size_t)k] = (float)log10(a[k] > 1e-30 ? a[k] : 1e-30);
    g->n_hist++;
    memset(g->sum, 0, sizeof g->sum);
    g->count = 0;
    g->t_log = t;
}

/* every term's curve (log10: they differ by orders of magnitude) */
static void cylog_plot(const cli_cylog *g, const char *out) {
    static const char *const names[4] = {"loss", "recon", "KL", "reverse"};
    int W = 800, H = 400, s;
    size_t i;
    float *ys;
    uint8_t *rgb;
    cli_path p = cli_join(out, "loss.png");
    if (g->n_hist < 2) return;
    ys = (float *)cli_alloc(4 * g->n_hist, sizeof(float));
    rgb = (uint8_t *)cli_alloc((size_t)W * (size_t)H, 3);
    for (s = 0; s < 4; s++)
        for (i = 0; i < g->n_hist; i++) ys[(size_t)s * g->n_hist + i] = g->hist[4 * i + (size_t)s];
    plot_lines(rgb, W, H, ys, 4, (int)g->n_hist, names, "cycle-consistent VAE: log10 of each term per element");
    cli_write_png(p.s, rgb, W, H);
    printf("wrote %s\n", p.s);
    free(ys); free(rgb);
}

/* ---- cycle-train ---------------------------------------------------------------------------------- */

static void cycle_loop(heph_cyc *m, const cli_pics *p, const cli_groups *gr, const cli_cyopts *o, uint64_t total, int B) {
    cli_path ck = cli_join(o->out, "model.hpc");
    size_t np = (size_t)p->c * (size_t)p->h * (size_t)p->w;
    float *x1 = (float *)cli_alloc((size_t)B * np, sizeof(float)), *x2 = (float *)cli_alloc((size_t)B * np, sizeof(float));
    uint64_t log_every = o->log_every ? (uint64_t)o->log_every : (total - m->step + 19) / 20;
    heph_cyc_losses L;
    cli_cylog g;
    struct stat st;
    cylog_open(&g, o->out, m->step);
    while (m->step < total) {
        cycle_pairs(&m->rng, gr, p, B, x1, x2);
        if (heph_cyc_train_step(m, x1, x2, B, &L) != HEPH_OK)
            cli_fail("training stopped at step %llu: %s (%s)", (unsigned long long)m->step, m->err,
                     stat(ck.s, &st) == 0 ? "the last checkpoint is intact" : "no checkpoint was written");
        g.sum[0] += L.loss; g.sum[1] += L.recon; g.sum[2] += L.kl; g.sum[3] += L.reverse;
        g.count++;
        if (m->step % log_every == 0 || m->step == total) cylog_line(&g, m, total, B);
        if ((m->step % (uint64_t)o->ckpt_every == 0 || m->step == total) && heph_cyc_save(m, ck.s, 0) != HEPH_OK)
            cli_fail("%s", m->err);
    }
    printf("trained to step %llu in %.1f s; wrote %s\n", (unsigned long long)m->step, cli_now() - g.t0, ck.s);
    cylog_plot(&g, o->out);
    cli_fclose(g.csv, g.path.s);
    free(g.hist); free(x1); free(x2);
}

static int cmd_cycle_train(int argc, char **argv) {
    cli_cyopts o;
    cli_pics p;
    cli_groups gr;
    heph_cyc m;
    uint64_t total, per_epoch;
    int k, B;
    cycle_parse(&o, argc, argv);
    if (o.resume) {
        cli_need_regular(o.resume);
        if (heph_cyc_load(&m, o.resume) != HEPH_OK) cli_fail("%s", m.err);
        pics_load(&p, o.data, m.cfg.in_c, m.cfg.in_h, m.cfg.in_w);
    } else {
        pics_load(&p, o.data, 0, 0, 0);
        cycle_config(&o, &p, &o.cfg);
        if (heph_cyc_init(&m, &o.cfg, o.seed) != HEPH_OK) cli_usage("%s", m.err);
    }
    if (p.n == 0) cli_fail("%s has no pictures", o.data);
    k = cycle_pair_factor(&p, o.pairs);
    groups_make(&gr, &p, k);
    B = o.batch < m.cfg.max_batch ? o.batch : m.cfg.max_batch;
    per_epoch = ((uint64_t)p.n + (uint64_t)B - 1) / (uint64_t)B;
    total = o.steps ? (uint64_t)o.steps : (uint64_t)o.epochs * per_epoch;
    cli_mkdirs(o.out);
    printf("%zu pictures %dx%dx%d from %s | pairs share \"%s\" (%u values) | s %d, z %d | %zu parameters | %d pairs "
           "per step | weights %g/%g/%g, reverse term trains %s | step %llu -> %llu | %d threads\n", p.n, p.c, p.h, p.w, o.data, p.names[k],
           gr.V, m.cfg.s_dim, m.cfg.z_dim, m.n_params, B, (double)m.cfg.w_recon, (double)m.cfg.w_kl,
           (double)m.cfg.w_reverse, m.cfg.reverse_grad == HEPH_CYC_REVERSE_ALL ? "everything" : "the encoder", (unsigned long long)m.step, (unsigned long long)total, cli_nthreads());
    if (m.step >= total) printf("the checkpoint is already at step %llu: nothing to do\n", (unsigned long long)m.step);
    else cycle_loop(&m, &p, &gr, &o, total, B);
    groups_free(&gr);
    pics_free(&p);
    heph_cyc_free(&m);
    return 0;
}

/* ---- transfer ---------------------------------------------------------------------------------- */

static const char *const transfer_help =
    "usage: hephaestus transfer --model FILE.hpc --data PATH [options]\n"
    "Writes DIR/transfer.png: an (N+1) x (N+1) grid whose first row holds N pictures that give z\n"
    "(the style: pose, stroke), whose first column holds N pictures that give s (the identity,\n"
    "the digit), and whose cell (r, c) decodes [s of row r | z of column c]; and\n"
    "DIR/interpolate.png: two pictures a (top left) and b, s going from a's to b's down the rows\n"
    "and z from a's to b's along the columns.\n"
    "  --model FILE.hpc    a cycle-consistent VAE (hephaestus cycle-train)\n"
    "  --data PATH         a .hpd or a folder of pictures\n"
    "  --n N               pictures per side (default 8)\n"
    "  --steps K           interpolation steps per side (default 8)\n"
    "  --seed S            which pictures: drawn with this seed (default 1)\n"
    "  --judge F=FILE.hpn  a classifier of factor F (hephaestus classifier) reads every transfer of\n"
    "                      --judge-n row pictures x --judge-n column pictures: F should be the\n"
    "                      row's value when F is the --s-factor, else the column's; the shares go\n"
    "                      to DIR/transfer.json (repeatable, up to 8)\n"
    "  --s-factor F        the factor s carries (default \"identity\" when the data has it, else\n"
    "                      the first factor)\n"
    "  --judge-n M         pictures per side for the judges (default 40: 1,600 transfers)\n"
    "  --out DIR           output folder (default out/transfer)\n"
    "  -h, --help          this help\n";

static void transfer_grid(heph_cyc *m, const cli_pics *p, int n, const char *path) {
    size_t np = (size_t)p->c * (size_t)p->h * (size_t)p->w, r, c, cols = (size_t)n + 1;
    float *g = (float *)cli_alloc(cols * cols * np, sizeof(float)), *xs = (float *)cli_alloc((size_t)n * np, sizeof(float));
    float *xz = (float *)cli_alloc((size_t)n * np, sizeof(float)), *out = (float *)cli_alloc((size_t)n * np, sizeof(float));
    for (r = 0; r < np; r++) g[r] = 1.0f; /* the corner: white */
    for (c = 0; c < (size_t)n; c++) memcpy(g + (1 + c) * np, p->x + ((size_t)n + c) * np, np * sizeof(float));
    for (r = 0; r < (size_t)n; r++) {
        memcpy(g + (r + 1) * cols * np, p->x + r * np, np * sizeof(float));
        for (c = 0; c < (size_t)n; c++) {
            memcpy(xs + c * np, p->x + r * np, np * sizeof(float));
            memcpy(xz + c * np, p->x + ((size_t)n + c) * np, np * sizeof(float));
        }
        heph_cyc_transfer(m, xs, xz, (size_t)n, out);
        memcpy(g + ((r + 1) * cols + 1) * np, out, (size_t)n * np * sizeof(float));
    }
    cli_write_grid(path, g, (int)(cols * cols), (int)cols, p->c, p->h, p->w);
    free(g); free(xs); free(xz); free(out);
}

static void transfer_interpolate(heph_cyc *m, const cli_pics *p, int steps, const char *path) {
    size_t np = (size_t)p->c * (size_t)p->h * (size_t)p->w, S = (size_t)m->cfg.s_dim, Z = (size_t)m->cfg.z_dim, i, j, d;
    size_t K = (size_t)steps;
    float s[2 * 4096], z[2 * 4096];
    float *ss = (float *)cli_alloc(K * K * S, sizeof(float)), *zz = (float *)cli_alloc(K * K * Z, sizeof(float));
    float *g = (float *)cli_alloc(K * K * np, sizeof(float));
    heph_cyc_encode(m, p->x, 2, s, z, NULL); /* pictures 0 (a) and 1 (b) */
    for (i = 0; i < K; i++)
        for (j = 0; j < K; j++) {
            float u = (float)i / (float)(K - 1), v = (float)j / (float)(K - 1);
            for (d = 0; d < S; d++) ss[(i * K + j) * S + d] = (1.0f - u) * s[d] + u * s[S + d];
            for (d = 0; d < Z; d++) zz[(i * K + j) * Z + d] = (1.0f - v) * z[d] + v * z[Z + d];
        }
    heph_cyc_decode(m, ss, zz, K * K, g);
    cli_write_grid(path, g, (int)(K * K), (int)K, p->c, p->h, p->w);
    free(ss); free(zz); free(g);
}

/* judge j reads the M x M transfers of rows p->x[0..M) and columns p->x[M..2M): the share
   whose factor k is the row's value (by_row) or the column's */
static double transfer_judge(heph_cyc *m, const cli_pics *p, heph_net *judge, int k, int by_row, size_t M) {
    size_t np = (size_t)p->c * (size_t)p->h * (size_t)p->w, r, c, right = 0;
    float *xs = (float *)cli_alloc(M * np, sizeof(float)), *out = (float *)cli_alloc(M * np, sizeof(float));
    int *y = (int *)cli_alloc(M, sizeof(int)), *pred = (int *)cli_alloc(M, sizeof(int));
    for (r = 0; r < M; r++) {
        for (c = 0; c < M; c++) {
            memcpy(xs + c * np, p->x + r * np, np * sizeof(float));
            y[c] = (int)p->labels[(by_row ? r : M + c) * (size_t)p->K + (size_t)k];
        }
        heph_cyc_transfer(m, xs, p->x + M * np, M, out);
        cls_accuracy(judge, out, y, M, pred);
        for (c = 0; c < M; c++) right += pred[c] == y[c];
    }
    free(xs); free(out); free(y); free(pred);
    return (double)right / (double)(M * M);
}

typedef struct {
    const char *model, *data, *out, *judge[8], *sfac;
    long n, steps, judge_n;
    int n_judges;
    uint64_t seed;
} cli_tropts;

static void transfer_parse(cli_tropts *o, int argc, char **argv) {
    int i;
    memset(o, 0, sizeof *o);
    o->out = "out/transfer"; o->n = 8; o->steps = 8; o->seed = 1; o->judge_n = 40;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h") || cli_is(a, "--help")) { fputs(transfer_help, stdout); exit(0); }
        else if (cli_is(a, "--model")) o->model = cli_val(argc, argv, &i);
        else if (cli_is(a, "--data")) o->data = cli_val(argc, argv, &i);
        else if (cli_is(a, "--n")) o->n = cli_long(a, cli_val(argc, argv, &i), 1, 64);
        else if (cli_is(a, "--steps")) o->steps = cli_long(a, cli_val(argc, argv, &i), 2, 64);
        else if (cli_is(a, "--seed")) o->seed = (uint64_t)cli_long(a, cli_val(argc, argv, &i), 0, 0x7fffffffL);
        else if (cli_is(a, "--judge")) {
            if (o->n_judges == 8) cli_usage("at most 8 --judge");
            o->judge[o->n_judges++] = cli_val(argc, argv, &i);
            if (!strchr(o->judge[o->n_judges - 1], '=')) cli_usage("--judge takes FACTOR=FILE.hpn, got \"%s\"", o->judge[o->n_judges - 1]);
        } else if (cli_is(a, "--s-factor")) o->sfac = cli_val(argc, argv, &i);
        else if (cli_is(a, "--judge-n")) o->judge_n = cli_long(a, cli_val(argc, argv, &i), 2, 4096);
        else if (cli_is(a, "--out")) o->out = cli_out_val(argc, argv, &i);
        else cli_unknown(a);
    }
    cli_require(o->model, "--model");
    cli_require(o->data, "--data");
}

/* every --judge on its own draw of 2 M pictures: transfer.json */
static void transfer_judges(heph_cyc *m, const cli_tropts *o) {
    cli_pics p;
    size_t M = (size_t)o->judge_n;
    int j, ks;
    char buf[512], err[HEPH_ERRLEN];
    cli_path jp = cli_join(o->out, "transfer.json");
    FILE *f;
    pics_load_some(&p, o->data, m->cfg.in_c, m->cfg.in_h, m->cfg.in_w, 2 * M, o->seed + 1);
    if (p.K == 0) cli_fail("%s has no factors: --judge needs a .hpd with the judged factors", o->data);
    if (p.n < 2 * M) cli_fail("%s has %zu pictures; --judge-n %zu needs %zu", o->data, p.n, M, 2 * M);
    ks = o->sfac ? factor_index(&p, o->sfac, strlen(o->sfac)) : factor_index(&p, "identity", 8);
    if (o->sfac && ks < 0) cli_usage("--s-factor %s: %s has the factors %s", o->sfac, o->data, factor_list(&p, buf, sizeof buf));
    if (ks < 0) ks = 0;
    f = cli_fopen(jp.s, "w");
    fprintf(f, "{\n  \"model\": ");
    json_str(f, o->model);
    fprintf(f, ",\n  \"data\": ");
    json_str(f, o->data);
    fprintf(f, ",\n  \"s_factor\": ");
    json_str(f, p.names[ks]);
    fprintf(f, ",\n  \"transfers\": %zu,\n  \"judges\": [", M * M);
    for (j = 0; j < o->n_judges; j++) {
        const char *eq = strchr(o->judge[j], '='), *file = eq + 1;
        int k = factor_index(&p, o->judge[j], (size_t)(eq - o->judge[j])), *y;
        heph_net net;
        double acc, own;
        if (k < 0) cli_usage("--judge %s: %s has the factors %s", o->judge[j], o->data, factor_list(&p, buf, sizeof buf));
        cli_need_regular(file);
        if (heph_net_load(&net, file, (int)M, err, sizeof err) != HEPH_OK) cli_fail("%s", err);
        if (net.in_n != m->enc.in_n || net.out_n != (int)p.n_values[k])
            cli_fail("%s takes %d values to %d logits; the pictures have %d values and factor \"%s\" %u", file, net.in_n,
                     net.out_n, m->enc.in_n, p.names[k], p.n_values[k]);
        y = pics_labels_of(&p, k);
        own = cls_accuracy(&net, p.x, y, 2 * M, NULL);
        acc = transfer_judge(m, &p, &net, k, k == ks, M);
        printf("judge %s: %.2f%% of %zu transfers show the %s's %s (the judge reads %.2f%% of the pictures themselves)\n",
               file, 100.0 * acc, M * M, k == ks ? "row" : "column", p.names[k], 100.0 * own);
        fprintf(f, "%s\n    {\"factor\": ", j ? "," : "");
        json_str(f, p.names[k]);
        fprintf(f, ", \"judge\": ");
        json_str(f, file);
        fprintf(f, ", \"from\": \"%s\", \"accuracy\": %.6f, \"judge_on_pictures\": %.6f}", k == ks ? "row" : "column", acc, own);
        free(y);
        heph_net_free(&net);
    }
    fprintf(f, "\n  ]\n}\n");
    cli_fclose(f, jp.s);
    printf("wrote %s\n", jp.s);
    pics_free(&p);
}

static int cmd_transfer(int argc, char **argv) {
    cli_tropts o;
    heph_cyc m;
    cli_pics p;
    transfer_parse(&o, argc, argv);
    cli_need_regular(o.model);
    if (heph_cyc_load(&m, o.model) != HEPH_OK) cli_fail("%s", m.err);
    pics_load_some(&p, o.data, m.cfg.in_c, m.cfg.in_h, m.cfg.in_w, (size_t)(2 * o.n), o.seed);
    if (p.n < (size_t)(2 * o.n)) cli_fail("%s has %zu pictures; --n %ld needs %ld", o.data, p.n, o.n, 2 * o.n);
    cli_mkdirs(o.out);
    transfer_grid(&m, &p, (int)o.n, cli_join(o.out, "transfer.png").s);
    transfer_interpolate(&m, &p, (int)o.steps, cli_join(o.out, "interpolate.png").s);
    pics_free(&p);
    if (o.n_judges) transfer_judges(&m, &o);
    heph_cyc_free(&m);
    return 0;
}

/* ---- cycle-eval: what each half of the latent knows ---------------------------------------- */

static const char *const cycle_eval_help =
    "usage: hephaestus cycle-eval --model FILE.hpc --data FILE.hpd [options]\n"
    "Encodes every picture to s and to the mean of z and, for each factor, trains an MLP\n"
    "classifier on each half (the write-up's: dense256, BatchNorm, LeakyReLU 0.2, twice, then one\n"
    "logit per value) on 80 % of each value's pictures and reports its accuracy on the other\n"
    "20 % (and on the 80 %). A disentangled model reads the pair factor (identity) from s and\n"
    "not from z, and the pose from z and not from s. Writes DIR/cycle_eval.json.\n"
    "  --model FILE.hpc    a cycle-consistent VAE (hephaestus cycle-train)\n"
    "  --data FILE.hpd     pictures with factors\n"
    "  --factors LIST      comma-separated factor names or indices (default: every factor)\n"
    "  --epochs E          classifier epochs (default 10)\n"
    "  --seed S            the split, the classifiers' initialisation and order (default 1)\n"
    "  --threads T         OpenMP threads\n"
    "  --out DIR           output folder (default out/cycle-eval)\n"
    "  -h, --help          this help\n";

#define CYC_EVAL_SPEC "dense256,bn,lrelu0.2,dense256,bn,lrelu0.2,dense" /* + K */

/* 80 / 20 of every value of factor k: in_val[i] = 1 for the held-out fifth of each value's
   pictures (in an order shuffled by g) */
static void cycle_split(const cli_pics *p, int k, heph_rng *g, unsigned char *in_val) {
    cli_groups gr;
    uint32_t v;
    groups_make(&gr, p, k);
    memset(in_val, 0, p->n);
    for (v = 0; v < gr.V; v++) {
        size_t a = gr.start[v], n = gr.start[v + 1] - a, j;
        heph_rng_shuffle(g, gr.order + a, n);
        for (j = 0; j < n / 5; j++) in_val[gr.order[a + j]] = 1;
    }
    groups_free(&gr);
}

/* a classifier of labels y from codes (n, D): accuracy on the 80 % and the 20 % */
static void cycle_probe(const float *codes, int D, const int *y, int K, const unsigned char *in_val, size_t n, long epochs,
                        uint64_t seed, double *acc_train, double *acc_val) {
    size_t i, nt = 0, nv = 0;
    float *xt = (float *)cli_alloc(n * (size_t)D, sizeof(float)), *xv = (float *)cli_alloc(n * (size_t)D, sizeof(float));
    int *yt = (int *)cli_alloc(n, sizeof(int)), *yv = (int *)cli_alloc(n, sizeof(int));
    char spec[64], err[HEPH_ERRLEN];
    cls_trainer t;
    long e;
    double loss, acc;
    for (i = 0; i < n; i++) {
        if (in_val[i]) { memcpy(xv + nv * (size_t)D, codes + i * (size_t)D, (size_t)D * sizeof(float)); yv[nv++] = y[i]; }
        else { memcpy(xt + nt * (size_t)D, codes + i * (size_t)D, (size_t)D * sizeof(float)); yt[nt++] = y[i]; }
    }
    snprintf(spec, sizeof spec, "%s%d", CYC_EVAL_SPEC, K);
    if (!cls_init(&t, spec, 1, 1, D, K, 64, seed, 1e-3f, nt, (uint64_t)epochs * ((nt + 63) / 64), err, sizeof err))
        cli_fail("the probe classifier: %s", err);
    for (e = 0; e < epochs; e++) cls_epoch(&t, xt, yt, nt, &loss, &acc, 0);
    *acc_train = cls_accuracy(&t.net, xt, yt, nt, NULL);
    *acc_val = cls_accuracy(&t.net, xv, yv, nv, NULL);
    cls_free(&t);
    free(xt); free(xv); free(yt); free(yv);
}

static int cmd_cycle_eval(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *factors = NULL, *out = "out/cycle-eval";
    long epochs = 10;
    uint64_t seed = 1;
    heph_cyc m;
    cli_pics p;
    float *s, *z;
    unsigned char *in_val;
    int i, ks[HEPH_MAX_FACTORS], nk = 0, f;
    heph_rng g;
    FILE *js;
    cli_path jp;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h") || cli_is(a, "--help")) { fputs(cycle_eval_help, stdout); return 0; }
        else if (cli_is(a, "--model")) model = cli_val(argc, argv, &i);
        else if (cli_is(a, "--data")) data = cli_val(argc, argv, &i);
        else if (cli_is(a, "--factors")) factors = cli_val(argc, argv, &i);
        else if (cli_is(a, "--epochs")) epochs = cli_long(a, cli_val(argc, argv, &i), 1, 10000);
        else if (cli_is(a, "--seed")) seed = (uint64_t)cli_long(a, cli_val(argc, argv, &i), 0, 0x7fffffffL);
        else if (cli_is(a, "--threads")) cli_threads((int)cli_long(a, cli_val(argc, argv, &i), 1, 1024));
        else if (cli_is(a, "--out")) out = cli_out_val(argc, argv, &i);
        else cli_unknown(a);
    }
    cli_require(model, "--model");
    cli_require(data, "--data");
    cli_need_regular(model);
    if (heph_cyc_load(&m, model) != HEPH_OK) cli_fail("%s", m.err);
    pics_load(&p, data, m.cfg.in_c, m.cfg.in_h, m.cfg.in_w);
    if (p.K == 0) cli_fail("%s has no factors: cycle-eval needs a .hpd with factors", data);
    if (p.n < 10) cli_fail("%s has %zu pictures: too few for an 80 / 20 split", data, p.n);
    if (!factors) for (nk = 0; nk < p.K; nk++) ks[nk] = nk;
    else {
        const char *t = factors;
        char buf[512];
        while (*t && nk < HEPH_MAX_FACTORS) {
            size_t len = strcspn(t, ",");
            if ((ks[nk] = factor_index(&p, t, len)) < 0)
                cli_usage("--factors: no factor \"%.*s\" in %s (it has %s)", (int)len, t, data, factor_list(&p, buf, sizeof buf));
            nk++;
            t += len + (t[len] == ',');
        }
    }
    s = (float *)cli_alloc(p.n * (size_t)m.cfg.s_dim, sizeof(float));
    z = (float *)cli_alloc(p.n * (size_t)m.cfg.z_dim, sizeof(float));
    in_val = (unsigned char *)cli_alloc(p.n, 1);
    heph_cyc_encode(&m, p.x, p.n, s, z, NULL);
    cli_mkdirs(out);
    jp = cli_join(out, "cycle_eval.json");
    js = cli_fopen(jp.s, "w");
    fprintf(js, "{\n  \"model\": ");
    json_str(js, model);
    fprintf(js, ",\n  \"data\": ");
    json_str(js, data);
    fprintf(js, ",\n  \"pictures\": %zu,\n  \"epochs\": %ld,\n  \"classifier\": \"%sK\",\n  \"factors\": [", p.n, epochs, CYC_EVAL_SPEC);
    printf("%zu pictures of %s; classifiers %sK, %ld epochs, 80 / 20 of each value\n", p.n, data, CYC_EVAL_SPEC, epochs);
    printf("%-12s %6s  %9s %9s  %9s %9s  %8s\n", "factor", "values", "s train", "s val", "z train", "z val", "chance");
    heph_rng_seed(&g, seed);
    for (f = 0; f < nk; f++) {
        int k = ks[f], K = (int)p.n_values[k], *y = pics_labels_of(&p, k);
        double st, sv, zt, zv, chance;
        size_t present = 0, v;
        cycle_split(&p, k, &g, in_val);
        cycle_probe(s, m.cfg.s_dim, y, K, in_val, p.n, epochs, seed + 2 * (uint64_t)f, &st, &sv);
        cycle_probe(z, m.cfg.z_dim, y, K, in_val, p.n, epochs, seed + 2 * (uint64_t)f + 1, &zt, &zv);
        { /* chance: the values the data has */
            unsigned char *seen = (unsigned char *)cli_alloc((size_t)K, 1);
            for (v = 0; v < p.n; v++) seen[y[v]] = 1;
            for (v = 0; v < (size_t)K; v++) present += seen[v];
            free(seen);
        }
        chance = 1.0 / (double)(present ? present : 1);
        printf("%-12s %6zu  %8.3f%% %8.3f%%  %8.3f%% %8.3f%%  %7.3f%%\n", p.names[k], present, 100 * st, 100 * sv, 100 * zt,
               100 * zv, 100 * chance);
        fflush(stdout);
        fprintf(js, "%s\n    {\"factor\": ", f ? "," : "");
        json_str(js, p.names[k]);
        fprintf(js, ", \"values\": %zu, \"s_train\": %.6f, \"s_val\": %.6f, \"z_train\": %.6f, \"z_val\": %.6f, "
                    "\"chance\": %.6f}", present, st, sv, zt, zv, chance);
        free(y);
    }
    fprintf(js, "\n  ]\n}\n");
    cli_fclose(js, jp.s);
    printf("wrote %s\n", jp.s);
    free(s); free(z); free(in_val);
    pics_free(&p);
    heph_cyc_free(&m);
    return 0;
}

#endif
