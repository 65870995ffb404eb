/* cli_cvae.h - `hephaestus classifier` (train a classifier on a labelled .hpd, or score one)
   and `hephaestus relabel` (a conditional VAE's pictures with their own label and with every
   other: the grid, the label-swap accuracy judged by a second classifier, SSIM, the loss
   table; several models at once give the sweep chart). Needs cli_analysis.h (load_any_model,
   load_classifier), cli_classify.h and plot.h. */
#ifndef HEPH_CLI_CVAE_H
#define HEPH_CLI_CVAE_H

#include "cli_common.h"
#include "cli_data.h"
#include "cli_classify.h"
#include "plot.h"

/* the label factor of p: F by name or index, else the first factor with K values (K = 0: the
   first factor); fails with the factors it has */
static int pics_label_factor(const cli_pics *p, const char *f, int K) {
    char buf[512];
    int k;
    if (p->K == 0) cli_fail("%s has no labels (a folder, or a .hpd without factors): give a .hpd with a label factor", p->path);
    if (f) {
        k = factor_index(p, f, strlen(f));
        if (k < 0) cli_usage("--labels %s: %s has the factors %s", f, p->path, factor_list(p, buf, sizeof buf));
        if (K && (int)p->n_values[k] != K)
            cli_fail("%s: factor \"%s\" has %u values, the model takes %d labels", p->path, p->names[k], p->n_values[k], K);
        return k;
    }
    for (k = 0; k < p->K; k++)
        if (!K || (int)p->n_values[k] == K) return k;
    cli_fail("%s: no factor has %d values (the model's labels); it has %s", p->path, K, factor_list(p, buf, sizeof buf));
    return -1;
}

/* the labels of factor k of p as ints (n) */
static int *pics_labels_of(const cli_pics *p, int k) {
    int *y = (int *)cli_alloc(p->n ? p->n : 1, sizeof(int));
    size_t i;
    for (i = 0; i < p->n; i++) y[i] = (int)p->labels[i * (size_t)p->K + (size_t)k];
    return y;
}

/* ---- classifier -------------------------------------------------------------------------------- */

/* the 99.5 % MNIST classifier with a K-way head (BatchNorm, max-pooling; any picture of 4x4
   or more) */
#define CLS_DEFAULT_SPEC "conv32k3p1,bn,relu,conv32k3p1,bn,relu,maxpool2,conv64k3p1,bn,relu,conv64k3p1,bn,relu," \
                         "maxpool2,flatten,dense128,bn,relu,dense" /* + K */

static const char *const classifier_help =
    "usage: hephaestus classifier --data TRAIN.hpd [--test TEST.hpd] [options]   (train)\n"
    "       hephaestus classifier --net FILE.hpn --data DATA.hpd [options]        (score)\n"
    "Trains a classifier of a .hpd's label factor (softmax cross-entropy, Adam with the rate\n"
    "falling linearly to 0) and writes DIR/classifier.hpn, DIR/classifier.json and the epochs'\n"
    "losses, accuracies and times in DIR/classifier_log.csv; or scores a\n"
    "trained one: accuracy, per-class accuracy, DIR/confusion.csv and DIR/predictions.csv. The\n"
    "conditional VAE uses one in its loss (train --classifier) and a second, independently\n"
    "trained one to judge its pictures (relabel --judge).\n"
    "  --data PATH         labelled pictures (.hpd with factors), required\n"
    "  --labels F          the label factor (name or index; default the first factor)\n"
    "  --test PATH         training: the held-out pictures scored after each epoch\n"
    "  --net FILE          score this network instead of training one\n"
    "  --spec SPEC         the network, pictures -> K logits (default: conv32k3p1,bn,relu,\n"
    "                      conv32k3p1,bn,relu,maxpool2,conv64k3p1,bn,relu,conv64k3p1,bn,relu,\n"
    "                      maxpool2,flatten,dense128,bn,relu,denseK: 99.5% on MNIST in 3 epochs)\n"
    "  --epochs N          passes over the training pictures (default 3)\n"
    "  --batch-size B      pictures per step (default 64)\n"
    "  --lr X              Adam's learning rate at the start (default 1e-3)\n"
    "  --seed S            initialisation and the epochs' orders (default 1)\n"
    "  --threads T         OpenMP threads (the result does not depend on them)\n"
    "  --out DIR           output folder (default out/classifier)\n"
    "  -h, --help          this help\n";

typedef struct {
    const char *data, *test, *net, *spec, *labels, *out;
    long epochs, batch;
    double lr;
    uint64_t seed;
} cli_copts;

/* score a trained network on the labelled pictures: accuracy, per class, confusion, predictions */
static void classifier_score(const cli_copts *o) {
    heph_net net;
    cli_pics p;
    char err[HEPH_ERRLEN];
    int *y, *pred, K, k, j;
    size_t i;
    double acc;
    long *conf;
    FILE *f;
    cli_path cp = cli_join(o->out, "confusion.csv"), pp = cli_join(o->out, "predictions.csv");
    cli_need_regular(o->net);
    if (heph_net_load(&net, o->net, (int)o->batch, err, sizeof err) != HEPH_OK) cli_fail("%s", err);
    pics_load(&p, o->data, net.in_c, net.in_h, net.in_w);
    k = pics_label_factor(&p, o->labels, 0);
    K = (int)p.n_values[k];
    if (net.out_n != K) cli_fail("%s gives %d logits, factor \"%s\" of %s has %d values", o->net, net.out_n, p.names[k], o->data, K);
    y = pics_labels_of(&p, k);
    pred = (int *)cli_alloc(p.n, sizeof(int));
    acc = cls_accuracy(&net, p.x, y, p.n, pred);
    conf = (long *)cli_alloc((size_t)K * (size_t)K, sizeof(long));
    for (i = 0; i < p.n; i++) conf[(size_t)y[i] * (size_t)K + (size_t)pred[i]]++;
    cli_mkdirs(o->out);
    f = cli_fopen(cp.s, "w");
    fprintf(f, "label\\predicted");
    for (j = 0; j < K; j++) fprintf(f, ",%d", j);
    fputc('\n', f);
    for (k = 0; k < K; k++) {
        fprintf(f, "%d", k);
        for (j = 0; j < K; j++) fprintf(f, ",%ld", conf[(size_t)k * (size_t)K + (size_t)j]);
        fputc('\n', f);
    }
    cli_fclose(f, cp.s);
    f = cli_fopen(pp.s, "w");
    fprintf(f, "index,label,predicted\n");
    for (i = 0; i < p.n; i++) fprintf(f, "%zu,%d,%d\n", i, y[i], pred[i]);
    cli_fclose(f, pp.s);
    printf("%s on %zu pictures of %s: accuracy %.2f%%\nper class:", o->net, p.n, o->data, 100.0 * acc);
    for (k = 0; k < K; k++) {
        long n_k = 0;
        for (j = 0; j < K; j++) n_k += conf[(size_t)k * (size_t)K + (size_t)j];
        printf(" %d: %.1f%%", k, n_k ? 100.0 * (double)conf[(size_t)k * (size_t)K + (size_t)k] / (double)n_k : 0.0);
    }
    printf("\nwrote %s and %s\n", cp.s, pp.s);
    free(y); free(pred); free(conf);
    pics_free(&p);
    heph_net_free(&net);
}

static void classifier_train(const cli_copts *o) {
    cli_pics tr, te;
    cls_trainer t;
    char spec[HEPH_SPEC_MAX + 16], err[HEPH_ERRLEN];
    int *ytr, *yte = NULL, k, K;
    long ep;
    double train_s = 0.0, test_acc = -1.0, back_acc = -1.0;
    cli_path hpn = cli_join(o->out, "classifier.hpn"), js = cli_join(o->out, "classifier.json");
    cli_path lp = cli_join(o->out, "classifier_log.csv");
    FILE *f, *log;
    heph_net back;
    pics_load(&tr, o->data, 0, 0, 0);
    k = pics_label_factor(&tr, o->labels, 0);
    K = (int)tr.n_values[k];
    ytr = pics_labels_of(&tr, k);
    if (o->test) {
        int kt;
        pics_load(&te, o->test, tr.c, tr.h, tr.w);
        kt = pics_label_factor(&te, tr.names[k], K);
        yte = pics_labels_of(&te, kt);
    }
    if (o->spec) snprintf(spec, sizeof spec, "%s", o->spec);
    else snprintf(spec, sizeof spec, "%s%d", CLS_DEFAULT_SPEC, K);
    if (!cls_init(&t, spec, tr.c, tr.h, tr.w, K, (int)o->batch, o->seed, (float)o->lr, tr.n,
                  (uint64_t)o->epochs * (uint64_t)((tr.n + (size_t)o->batch - 1) / (size_t)o->batch), err, sizeof err))
        cli_usage("%s%s", strncmp(err, "--spec", 6) ? "--spec: " : "", err);
    cli_mkdirs(o->out);
    printf("%zu pictures %dx%dx%d from %s, factor \"%s\" (%d classes) | %s | %zu parameters | %d threads\n", tr.n, tr.c,
           tr.h, tr.w, o->data, tr.names[k], K, spec, t.net.n_params, cli_nthreads());
    printf("epoch  train-loss  train-acc  test-acc   seconds  images/s\n");
    /* the log is a progress file, written line by line in place like train_log.csv (its times
       differ from run to run; classifier.json holds only what the run determines) */
    log = fopen(lp.s, "w");
    if (!log) cli_fail("%s: cannot open for writing (%s)", lp.s, strerror(errno));
    fprintf(log, "epoch,train_loss,train_accuracy,test_accuracy,seconds,images_per_s\n");
    for (ep = 0; ep < o->epochs; ep++) {
        double loss, acc, t0 = cli_now(), dt;
        cls_epoch(&t, tr.x, ytr, tr.n, &loss, &acc, 1);
        dt = cli_now() - t0;
        train_s += dt;
        if (o->test) test_acc = cls_accuracy(&t.net, te.x, yte, te.n, NULL);
        printf("%5ld  %10.4f  %8.2f%%  ", ep + 1, loss, 100.0 * acc);
        if (o->test) printf("%7.2f%%", 100.0 * test_acc); else printf("%8s", "-");
        printf("  %8.1f  %8.0f\n", dt, (double)tr.n / dt);
        fflush(stdout);
        fprintf(log, "%ld,%.6g,%.6g,%.6g,%.3f,%.1f\n", ep + 1, loss, acc, o->test ? test_acc : (double)NAN, dt, (double)tr.n / dt);
        if (fflush(log) != 0 || ferror(log)) cli_fail("%s: cannot write (%s)", lp.s, strerror(errno));
    }
    cli_fclose(log, lp.s);
    if (heph_net_save(&t.net, hpn.s, err, sizeof err) != HEPH_OK) cli_fail("%s", err);
    if (o->test) { /* read back: the file gives the same predictions */
        if (heph_net_load(&back, hpn.s, (int)o->batch, err, sizeof err) != HEPH_OK) cli_fail("%s", err);
        back_acc = cls_accuracy(&back, te.x, yte, te.n, NULL);
        heph_net_free(&back);
        if (back_acc != test_acc) cli_fail("%s gives %.4f%% test accuracy, the trained network %.4f%%", hpn.s,
                                           100.0 * back_acc, 100.0 * test_acc);
    }
    f = cli_fopen(js.s, "w");
    fprintf(f, "{\n  \"data\": ");
    json_str(f, o->data);
    fprintf(f, ",\n  \"labels\": ");
    json_str(f, tr.names[k]);
    fprintf(f, ",\n  \"classes\": %d,\n  \"spec\": ", K);
    json_str(f, spec);
    fprintf(f, ",\n  \"parameters\": %zu,\n  \"epochs\": %ld,\n  \"batch\": %ld,\n  \"lr\": ", t.net.n_params, o->epochs, o->batch);
    json_num(f, o->lr);
    fprintf(f, ",\n  \"seed\": %llu,\n  \"threads\": %d,\n  \"train_pictures\": %zu,\n  \"test_accuracy\": ",
            (unsigned long long)o->seed, cli_nthreads(), tr.n);
    if (o->test) json_num(f, test_acc); else fprintf(f, "null");
    fprintf(f, "\n}\n");
    cli_fclose(f, js.s);
    printf("wrote %s and %s", hpn.s, js.s);
    if (o->test) printf(": test accuracy %.2f%% (%zu pictures), %.1f s of training\n", 100.0 * test_acc, te.n, train_s);
    else printf(", %.1f s of training\n", train_s);
    cls_free(&t);
    free(ytr); free(yte);
    pics_free(&tr);
    if (o->test) pics_free(&te);
}

static int cmd_classifier(int argc, char **argv) {
    cli_copts o;
    int i;
    memset(&o, 0, sizeof o);
    o.out = "out/classifier"; o.epochs = 3; o.batch = 64; o.lr = 1e-3; o.seed = 1;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h") || cli_is(a, "--help")) { fputs(classifier_help, stdout); return 0; }
        else if (cli_is(a, "--data")) o.data = cli_val(argc, argv, &i);
        else if (cli_is(a, "--test")) o.test = cli_val(argc, argv, &i);
        else if (cli_is(a, "--net")) o.net = cli_val(argc, argv, &i);
        else if (cli_is(a, "--spec")) o.spec = cli_val(argc, argv, &i);
        else if (cli_is(a, "--labels")) o.labels = cli_val(argc, argv, &i);
        else if (cli_is(a, "--epochs")) o.epochs = cli_long(a, cli_val(argc, argv, &i), 1, 100000);
        else if (cli_is(a, "--batch-size")) o.batch = cli_long(a, cli_val(argc, argv, &i), 1, 65536);
        else if (cli_is(a, "--lr")) o.lr = cli_num(a, cli_val(argc, argv, &i), 1e-12, (double)HEPH_LR_MAX);
        else if (cli_is(a, "--seed")) o.seed = (uint64_t)cli_long(a, cli_val(argc, argv, &i), 0, 0x7fffffffL);
        else if (cli_is(a, "--threads")) cli_threads((int)cli_long(a, cli_val(argc, argv, &i), 1, 1024));
        else if (cli_is(a, "--out")) o.out = cli_out_val(argc, argv, &i);
        else cli_unknown(a);
    }
    cli_require(o.data, "--data");
    if (o.net && (o.spec || o.test)) cli_usage("--net scores a trained network: --spec and --test are for training one");
    if (o.net) classifier_score(&o);
    else classifier_train(&o);
    return 0;
}

/* ---- relabel ----------------------------------------------------------------------------------- */

#define CLI_MAX_MODELS 16

static const char *const relabel_help =
    "usage: hephaestus relabel --model M.hpm --data PATH [options]\n"
    "A conditional VAE's pictures with their own label and with every other: the posterior\n"
    "mean of (picture, k) decoded with label k, for every k. Writes DIR/relabel.png (rows:\n"
    "picture | label 0 .. K-1) and DIR/relabel.json with, over --n pictures:\n"
    "  recon, KL, label loss x lambda and their total (one z each; with --classifier),\n"
    "  SSIM between each picture and its reconstruction with the true label,\n"
    "  label-swap accuracy (with --judge): the share of (picture, wrong label k) whose picture\n"
    "  the judge classifies as k, overall and per k; and the judge's accuracy on the pictures.\n"
    "--label K writes DIR/relabel_K.png instead of the grid: pictures | the same with label K\n"
    "(any pictures, a folder too: \"this picture with label K\"). Several --model: each is\n"
    "measured (relabel_1.png, ...) and DIR/sweep.png/.svg plots swap accuracy against recon.\n"
    "  --model FILE        a conditional VAE (.hpm from train --labels), required; repeatable\n"
    "  --data PATH         the pictures (.hpd with the label factor; a folder with --label)\n"
    "  --labels F          the label factor (default: the first with the model's K values)\n"
    "  --judge FILE.hpn    a classifier trained apart from the loss's (another seed or net)\n"
    "  --classifier FILE   the loss's classifier, for the label loss of the table\n"
    "  --label K           relabel every picture to K (see above)\n"
    "  --n N               pictures, drawn at random from a larger .hpd (default 1000)\n"
    "  --rows R            pictures in the grid (default 10)\n"
    "  --seed S            seed of the draw and of the z samples (default 1)\n"
    "  --threads T         OpenMP threads\n"
    "  --out DIR           output folder (default out/relabel)\n"
    "  -h, --help          this help\n";

typedef struct {
    const char *model[CLI_MAX_MODELS], *data, *labels, *judge, *classifier, *out;
    int n_models, rows, label;
    long n;
    uint64_t seed;
} cli_ropts;

typedef struct {
    heph_losses L;
    double ssim, swap, judge_acc, swap_k[64]; /* swap per given label (K <= 64 shown) */
    int K, have_swap;
} cli_rres;

/* the relabelled pictures of every picture to label k (out: n pictures) */
static void relabel_all(heph_vae *m, const cli_pics *p, int k, int *yk, float *out) {
    size_t i;
    for (i = 0; i < p->n; i++) yk[i] = k;
    heph_cvae_relabel(m, p->x, yk, p->n, out);
}

/* the measures of one model on the pictures p with labels y */
static void relabel_measure(heph_vae *m, const cli_pics *p, const int *y, heph_net *judge, const cli_ropts *o, cli_rres *r) {
    size_t np = (size_t)p->c * (size_t)p->h * (size_t)p->w, i, right = 0, tried = 0;
    float *rec = (float *)cli_alloc(p->n * np, sizeof(float));
    int *yk = (int *)cli_alloc(p->n, sizeof(int)), *pred = (int *)cli_alloc(p->n, sizeof(int)), k;
    memset(r, 0, sizeof *r);
    r->K = m->cfg.n_classes;
    if (heph_cvae_evaluate(m, p->x, y, p->n, o->seed, &r->L) != HEPH_OK) cli_fail("%s: %s", o->data, m->err);
    heph_cvae_relabel(m, p->x, y, p->n, rec);
    for (i = 0; i < p->n; i++) r->ssim += heph_ssim(p->x + i * np, rec + i * np, p->c, p->h, p->w);
    r->ssim /= (double)p->n;
    if (judge) {
        r->have_swap = 1;
        r->judge_acc = cls_accuracy(judge, p->x, y, p->n, NULL);
        for (k = 0; k < r->K; k++) {
            size_t right_k = 0, tried_k = 0;
            relabel_all(m, p, k, yk, rec);
            cls_accuracy(judge, rec, yk, p->n, pred);
            for (i = 0; i < p->n; i++)
                if (y[i] != k) { tried_k++; right_k += pred[i] == k; }
            if (k < 64) r->swap_k[k] = tried_k ? (double)right_k / (double)tried_k : 0.0;
            right += right_k; tried += tried_k;
        }
        r->swap = tried ? (double)right / (double)tried : 0.0;
    }
    free(rec); free(yk); free(pred);
}

/* the grid: rows pictures, each row the picture and its K relabellings (or, with --label,
   the picture and its relabelling to that label) */
static void relabel_grid(heph_vae *m, const cli_pics *p, const cli_ropts *o, const char *path) {
    size_t np = (size_t)p->c * (size_t)p->h * (size_t)p->w, R = p->n < (size_t)o->rows ? p->n : (size_t)o->rows, i;
    int K = m->cfg.n_classes, cols = o->label >= 0 ? 2 : K + 1, k;
    float *g = (float *)cli_alloc(R * (size_t)cols * np, sizeof(float)), *rec = (float *)cli_alloc(R * np, sizeof(float));
    int *yk = (int *)cli_alloc(R, sizeof(int));
    for (i = 0; i < R; i++) memcpy(g + i * (size_t)cols * np, p->x + i * np, np * sizeof(float));
    for (k = 0; k < cols - 1; k++) {
        int lab = o->label >= 0 ? o->label : k;
        for (i = 0; i < R; i++) yk[i] = lab;
        heph_cvae_relabel(m, p->x, yk, R, rec);
        for (i = 0; i < R; i++) memcpy(g + (i * (size_t)cols + 1 + (size_t)k) * np, rec + i * np, np * sizeof(float));
    }
    cli_write_grid(path, g, (int)R * cols, cols, p->c, p->h, p->w);
    printf("  (%zu rows: picture | %s)\n", R, o->label >= 0 ? "relabelled" : "label 0 .. K-1");
    free(g); free(rec); free(yk);
}

static void relabel_json(FILE *f, const heph_vae *m, const char *model, const cli_rres *r, size_t n) {
    int k;
    fprintf(f, "    {\"model\": ");
    json_str(f, model);
    fprintf(f, ", \"pictures\": %zu, \"labels\": %d, \"lambda\": ", n, r->K);
    json_num(f, (double)m->cfg.label_weight);
    fprintf(f, ", \"z_dim\": %d, \"steps\": %llu,\n     \"recon\": ", m->cfg.z_dim, (unsigned long long)m->step);
    json_num(f, r->L.recon);
    fprintf(f, ", \"kl\": ");
    json_num(f, r->L.kl);
    fprintf(f, ", \"label_loss\": ");
    if (m->cls) json_num(f, r->L.label); else fprintf(f, "null");
    fprintf(f, ", \"label_loss_x_lambda\": ");
    if (m->cls) json_num(f, (double)m->cfg.label_weight * r->L.label); else fprintf(f, "null");
    fprintf(f, ", \"total\": ");
    if (m->cls) json_num(f, r->L.loss); else fprintf(f, "null");
    fprintf(f, ", \"ssim_true_label\": ");
    json_num(f, r->ssim);
    fprintf(f, ",\n     \"swap_accuracy\": ");
    if (r->have_swap) json_num(f, r->swap); else fprintf(f, "null");
    fprintf(f, ", \"judge_accuracy_on_pictures\": ");
    if (r->have_swap) json_num(f, r->judge_acc); else fprintf(f, "null");
    fprintf(f, ", \"swap_accuracy_per_label\": [");
    for (k = 0; r->have_swap && k < r->K && k < 64; k++) {
        if (k) fprintf(f, ", ");
        json_num(f, r->swap_k[k]);
    }
    fprintf(f, "]}");
}

static void relabel_print(const heph_vae *m, const char *model, const cli_rres *r) {
    printf("%s (lambda %g, %llu steps): recon %.2f  KL %.2f", model, (double)m->cfg.label_weight, (unsigned long long)m->step,
           r->L.recon, r->L.kl);
    if (m->cls) printf("  label %.4f x %g = %.3f  total %.2f", r->L.label, (double)m->cfg.label_weight,
                       (double)m->cfg.label_weight * r->L.label, r->L.loss);
    printf("  SSIM %.4f", r->ssim);
    if (r->have_swap) printf("  swap accuracy %.4f (judge on the pictures %.4f)", r->swap, r->judge_acc);
    printf("\n");
}

static void relabel_sweep(const cli_ropts *o, const double *recon, const double *swap, char (*names)[32]) {
    plot_chart c;
    const char *pn[CLI_MAX_MODELS];
    cli_buf svg;
    int i;
    memset(&c, 0, sizeof c);
    memset(&svg, 0, sizeof svg);
    for (i = 0; i < o->n_models; i++) pn[i] = names[i];
    c.kind = PLOT_CHART_XY; c.n = (size_t)o->n_models; c.x = recon; c.d2 = swap; c.point = pn;
    c.title = "label-swap accuracy against reconstruction loss";
    c.x_axis = "reconstruction loss (nats per picture, true label)";
    c.axis = "label-swap accuracy";
    plot_chart_png(&c, cli_join(o->out, "sweep.png").s, 720, 420);
    plot_chart_svg(&c, &svg, 720, 420);
    buf_save(&svg, cli_join(o->out, "sweep.svg").s);
    buf_free(&svg);
}

static void relabel_parse(cli_ropts *o, int argc, char **argv) {
    int i;
    memset(o, 0, sizeof *o);
    o->out = "out/relabel"; o->n = 1000; o->rows = 10; o->seed = 1; o->label = -1;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h") || cli_is(a, "--help")) { fputs(relabel_help, stdout); exit(0); }
        else if (cli_is(a, "--model")) {
            if (o->n_models == CLI_MAX_MODELS) cli_usage("at most %d --model", CLI_MAX_MODELS);
            o->model[o->n_models++] = cli_val(argc, argv, &i);
        } else if (cli_is(a, "--data")) o->data = cli_val(argc, argv, &i);
        else if (cli_is(a, "--labels")) o->labels = cli_val(argc, argv, &i);
        else if (cli_is(a, "--judge")) o->judge = cli_val(argc, argv, &i);
        else if (cli_is(a, "--classifier")) o->classifier = cli_val(argc, argv, &i);
        else if (cli_is(a, "--label")) o->label = (int)cli_long(a, cli_val(argc, argv, &i), 0, 65535);
        else if (cli_is(a, "--n")) o->n = cli_long(a, cli_val(argc, argv, &i), 1, 100000000L);
        else if (cli_is(a, "--rows")) o->rows = (int)cli_long(a, cli_val(argc, argv, &i), 1, 1000);
        else if (cli_is(a, "--seed")) o->seed = (uint64_t)cli_long(a, cli_val(argc, argv, &i), 0, 0x7fffffffL);
        else if (cli_is(a, "--threads")) cli_threads((int)cli_long(a, cli_val(argc, argv, &i), 1, 1024));
        else if (cli_is(a, "--out")) o->out = cli_out_val(argc, argv, &i);
        else cli_unknown(a);
    }
    if (!o->n_models) cli_require(NULL, "--model");
    cli_require(o->data, "--data");
}

/* the pictures, once, shaped by the first model m, with their labels (y: NULL for a folder
   with --label), and relabel.json opened with its header (NULL with --label) */
static FILE *relabel_begin(const cli_ropts *o, const heph_vae *m, cli_pics *p, int **y, cli_path *js) {
    FILE *f;
    int k = -1;
    pics_load_some(p, o->data, m->cfg.in_c, m->cfg.in_h, m->cfg.in_w, (size_t)o->n, o->seed);
    *y = NULL;
    if (o->label < 0 || p->K) {
        k = pics_label_factor(p, o->labels, m->cfg.n_classes);
        *y = pics_labels_of(p, k);
    }
    cli_mkdirs(o->out);
    *js = cli_join(o->out, "relabel.json");
    if (o->label >= 0) return NULL;
    f = cli_fopen(js->s, "w");
    fprintf(f, "{\n  \"data\": ");
    json_str(f, o->data);
    fprintf(f, ",\n  \"labels\": ");
    json_str(f, p->names[k]);
    fprintf(f, ",\n  \"judge\": ");
    if (o->judge) json_str(f, o->judge); else fprintf(f, "null");
    fprintf(f, ",\n  \"models\": [\n");
    return f;
}

/* the judge of --judge, checked against model m's pictures and labels */
static void relabel_judge(heph_net *judge, const char *path, const heph_vae *m) {
    char err[HEPH_ERRLEN];
    cli_need_regular(path);
    if (heph_net_load(judge, path, m->cfg.max_batch, err, sizeof err) != HEPH_OK) cli_fail("%s", err);
    if (judge->in_n != m->enc.in_n || judge->out_n != m->cfg.n_classes)
        cli_fail("%s takes %d values to %d logits; the model's pictures have %d values and %d labels", path, judge->in_n,
                 judge->out_n, m->enc.in_n, m->cfg.n_classes);
}

/* the grid's file name: relabel.png, relabel_I.png of several models, relabel_K(_I).png */
static cli_path relabel_grid_path(const cli_ropts *o, int i) {
    char g[48];
    if (o->label >= 0 && o->n_models > 1) snprintf(g, sizeof g, "relabel_%d_%d.png", o->label, i + 1);
    else if (o->label >= 0) snprintf(g, sizeof g, "relabel_%d.png", o->label);
    else if (o->n_models > 1) snprintf(g, sizeof g, "relabel_%d.png", i + 1);
    else snprintf(g, sizeof g, "relabel.png");
    return cli_join(o->out, g);
}

static int cmd_relabel(int argc, char **argv) {
    cli_ropts o;
    cli_pics p;
    heph_vae m;
    heph_net judge, cls;
    cli_rres r;
    double recon[CLI_MAX_MODELS], swap[CLI_MAX_MODELS];
    char names[CLI_MAX_MODELS][32];
    int i, *y = NULL;
    FILE *f = NULL;
    cli_path js;
    relabel_parse(&o, argc, argv);
    for (i = 0; i < o.n_models; i++) {
        load_any_model(&m, o.model[i]);
        if (!m.cfg.n_classes)
            cli_fail("%s is a plain VAE: relabel needs a conditional one (hephaestus train --labels F)", o.model[i]);
        if (o.label >= m.cfg.n_classes) cli_usage("--label %d: %s has labels 0..%d", o.label, o.model[i], m.cfg.n_classes - 1);
        if (i == 0) f = relabel_begin(&o, &m, &p, &y, &js);
        if (i == 0 && o.judge) relabel_judge(&judge, o.judge, &m);
        if (o.classifier) load_classifier(&cls, o.classifier, &m);
        relabel_grid(&m, &p, &o, relabel_grid_path(&o, i).s);
        if (o.label < 0) {
            relabel_measure(&m, &p, y, o.judge ? &judge : NULL, &o, &r);
            relabel_print(&m, o.model[i], &r);
            relabel_json(f, &m, o.model[i], &r, p.n);
            fprintf(f, i + 1 < o.n_models ? ",\n" : "\n");
            recon[i] = r.L.recon; swap[i] = r.swap;
            snprintf(names[i], sizeof names[i], "lambda %g", (double)m.cfg.label_weight);
        }
        if (o.classifier) heph_net_free(&cls);
        heph_vae_free(&m);
    }
    if (f) {
        fprintf(f, "  ]\n}\n");
        cli_fclose(f, js.s);
        printf("wrote %s\n", js.s);
    }
    if (o.label < 0 && o.n_models > 1) {
        if (!o.judge) printf("sweep.png needs the swap accuracy: give --judge\n");
        else relabel_sweep(&o, recon, swap, names);
    }
    if (o.judge) heph_net_free(&judge);
    free(y);
    pics_free(&p);
    return 0;
}

#endif
