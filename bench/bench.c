/* bench.c - speed and memory of Hephaestus on the reference models (DESIGN §10).

   One program, one measurement per process (so the peak memory belongs to one configuration).
   bench/run.sh (what `make bench` calls) runs it many times beside bench/torch_bench.py and
   bench/report.py turns the JSON lines into tables.

     bench [train] --model mlp-mnist --threads 2 --epochs 1 --json    whole epochs on real MNIST
     bench train   --model cnn-shapes3d --threads 1 --seconds 10      steady-state training steps
     bench encode  --model cnn-shapes3d --threads 2                   encoder-only inference
     bench maha    --dim 12 --threads 1                               Mahalanobis fit + scoring
     bench peak    --threads 2                                        FMA peak of the machine
     bench ceiling --model cnn-shapes3d --threads 2                   the encoder's GEMMs alone
     bench info    --model cnn-dsprites                               shapes, FLOPs, memory model

   Build: cc -std=c99 -O3 -march=native -ffp-contract=fast -fno-math-errno -fopenmp -I. \
             -o build/bench bench/bench.c -lm
   FLOPs are counted from the layer shapes (forward, per image): dense 2*I*O, conv
   2*Co*Ho*Wo*C*k*k, transposed conv 2*C*H*W*Co*k*k; activations and biases are not counted;
   a training step counts 3x the forward. Nothing here is ever an assertion: it only reports. */
#define _POSIX_C_SOURCE 200809L
#define HEPHAESTUS_IMPLEMENTATION
#include "../hephaestus.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef BENCH_CFLAGS
#define BENCH_CFLAGS "unknown (define BENCH_CFLAGS when compiling)"
#endif

/* ------------------------------------------------------------------------------------------ */
/* small helpers: dying, clocks, memory                                                       */

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* a field of /proc/self/status in kB ("VmRSS:", "VmHWM:"), or -1 */
static double proc_status_kb(const char *key) {
    char line[256];
    double v = -1.0;
    size_t n = strlen(key);
    FILE *fp = fopen("/proc/self/status", "r");
    if (!fp) return -1.0;
    while (fgets(line, sizeof line, fp))
        if (strncmp(line, key, n) == 0) { v = atof(line + n); break; }
    fclose(fp);
    return v;
}

static double rss_mib(void) { return proc_status_kb("VmRSS:") / 1024.0; }

/* peak RSS of the process so far (MiB): getrusage, which /proc/self/clear_refs cannot reset */
static double maxrss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* Reset the kernel's peak-RSS mark (VmHWM) to the current RSS, so that the peak read after the
   timed work belongs to it alone and not to data loading. Linux >= 4.0; returns 0 if refused. */
static int hwm_reset(void) {
    FILE *fp = fopen("/proc/self/clear_refs", "w");
    int ok;
    if (!fp) return 0;
    ok = fputs("5", fp) >= 0;
    ok = (fclose(fp) == 0) && ok;
    return ok;
}

static double hwm_mib(void) {
    double v = proc_status_kb("VmHWM:");
    return v < 0 ? maxrss_mib() : v / 1024.0;
}

static int threads_now(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ------------------------------------------------------------------------------------------ */
/* JSON output: one object per run, on one line                                               */

static int g_json, g_first;

static void js_begin(void) { g_first = 1; if (g_json) putchar('{'); }
static void js_end(void) { if (g_json) fputs("}\n", stdout); fflush(stdout); }
static void js_key(const char *k) { if (!g_first) putchar(','); g_first = 0; printf("\"%s\":", k); }
static void js_num(const char *k, double v) {
    if (!g_json) return;
    js_key(k);
    if (v != v || v - v != 0.0) fputs("null", stdout);
    else printf("%.6g", v);
}
static void js_int(const char *k, long long v) { if (g_json) { js_key(k); printf("%lld", v); } }
static void js_str(const char *k, const char *s) {
    if (!g_json) return;
    js_key(k);
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", (unsigned)(unsigned char)*s);
        else putchar(*s);
    }
    putchar('"');
}

/* ------------------------------------------------------------------------------------------ */
/* options                                                                                    */

typedef struct {
    const char *mode, *model, *data;
    int threads, batch, epochs, pool, dim, json, adapt;
    double seconds, warmup;
    long n_fit, n_score;
    uint64_t seed;
} opts;

static void usage(void) {
    puts("usage: bench [train|encode|maha|peak|ceiling|info] [options]\n"
         "  --model NAME     mlp-mnist, mlp-dsprites, cnn-dsprites, cnn-shapes3d (default mlp-mnist)\n"
         "  --threads T      OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
         "  --seconds S      timed window (default 10; mlp-mnist times whole epochs instead)\n"
         "  --epochs E       mlp-mnist: timed epochs (default 1)\n"
         "  --warmup S       untimed warm-up seconds before the window (default 1, at least 2 steps)\n"
         "  --batch B        batch (default: 64 for cnn-dsprites, 128 otherwise)\n"
         "  --data FILE      .hpd file: mlp-mnist reads all of it (default data/mnist/train.hpd);\n"
         "                   the others read a pool of --pool batches from it (default: random\n"
         "                   binary pictures for 1 channel, uniform RGB for 3)\n"
         "  --pool N         batches in the data pool (default 8)\n"
         "  --dim D          maha: latent dimensions (default 12)\n"
         "  --fit N          maha: points the fit sees (default 10000)\n"
         "  --score N        maha: points scored, at least (default 1000000)\n"
         "  --seed N         seed (default 1)\n"
         "  --adapt          train: let heph_tuner choose 1..T threads at every step (what\n"
         "                   `hephaestus train` does unless --fixed-threads)\n"
         "  --json           one JSON object per run on stdout instead of a sentence");
}

static void parse(opts *o, int argc, char **argv) {
    int i = 1;
    memset(o, 0, sizeof *o);
    o->mode = "train"; o->model = "mlp-mnist"; o->seconds = 10.0; o->warmup = 1.0;
    o->epochs = 1; o->pool = 8; o->dim = 12; o->n_fit = 10000; o->n_score = 1000000; o->seed = 1;
    if (argc > 1 && argv[1][0] != '-') o->mode = argv[i++];
    for (; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) { o->json = 1; continue; }
        if (!strcmp(a, "--adapt")) { o->adapt = 1; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(); exit(0); }
        if (!v) die("%s needs a value (--help for the options)", a);
        i++;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--seconds")) o->seconds = atof(v);
        else if (!strcmp(a, "--epochs")) o->epochs = atoi(v);
        else if (!strcmp(a, "--warmup")) o->warmup = atof(v);
        else if (!strcmp(a, "--batch")) o->batch = atoi(v);
        else if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--pool")) o->pool = atoi(v);
        else if (!strcmp(a, "--dim")) o->dim = atoi(v);
        else if (!strcmp(a, "--fit")) o->n_fit = atol(v);
        else if (!strcmp(a, "--score")) o->n_score = (long)atof(v);
        else if (!strcmp(a, "--seed")) o->seed = (uint64_t)atoll(v);
        else die("unknown option %s (--help for the options)", a);
    }
    if (o->seconds <= 0 || o->epochs < 1 || o->pool < 1 || o->dim < 1 || o->n_fit < 2 ||
        o->n_score < 1 || o->threads < 0 || o->batch < 0 || o->warmup < 0)
        die("an option is out of range (--help for the options)");
#ifdef _OPENMP
    if (o->threads > 0) omp_set_num_threads(o->threads);
#else
    if (o->threads > 1) fprintf(stderr, "bench: built without OpenMP; --threads %d ignored\n", o->threads);
#endif
    g_json = o->json;
}

/* ------------------------------------------------------------------------------------------ */
/* model shapes: FLOPs, activations, memory model                                             */

static double layer_fwd_flops(const heph_layer *L) {
    double k2 = (double)L->k * (double)L->k;
    switch (L->kind) {
    case HEPH_DENSE: /* 2 I O */
        return 2.0 * (double)L->in_c * L->in_h * L->in_w * (double)L->out_c;
    case HEPH_CONV: /* 2 Co Ho Wo C k k */
        return 2.0 * (double)L->out_c * L->out_h * L->out_w * (double)L->in_c * k2;
    case HEPH_CONVT: /* 2 C H W Co k k */
        return 2.0 * (double)L->in_c * L->in_h * L->in_w * (double)L->out_c * k2;
    default:
        return 0.0;
    }
}

static double net_fwd_flops(const heph_net *n) {
    double f = 0.0;
    int l;
    for (l = 0; l < n->n_layers; l++) f += layer_fwd_flops(&n->layers[l]);
    return f;
}

/* floats per image kept for backward: the net's input and every layer's output (flatten and
   reshape are views in PyTorch and cost nothing there, so they are not counted) */
static double net_act_floats(const heph_net *n) {
    double a = (double)n->in_n;
    int l;
    for (l = 0; l < n->n_layers; l++) {
        const heph_layer *L = &n->layers[l];
        if (L->kind == HEPH_FLATTEN || L->kind == HEPH_RESHAPE) continue;
        a += (double)L->out_c * L->out_h * L->out_w;
    }
    return a;
}

static int default_batch(const char *model) { return !strcmp(model, "cnn-dsprites") ? 64 : 128; }

static void make_model(heph_vae *m, const opts *o, int batch) {
    heph_vae_config cfg;
    if (heph_vae_config_preset(&cfg, o->model) != HEPH_OK)
        die("unknown model \"%s\" (mlp-mnist, mlp-dsprites, cnn-dsprites, cnn-shapes3d)", o->model);
    cfg.max_batch = batch;
    if (heph_vae_init(m, &cfg, o->seed) != HEPH_OK) die("%s: %s", o->model, m->err);
}

/* the common fields of a model: shapes, FLOPs and the memory model at this batch */
static void model_fields(heph_vae *m, int batch, double *fwd_flops, double *model_mib) {
    double acts = net_act_floats(&m->enc) + net_act_floats(&m->dec);
    char spec[HEPH_SPEC_MAX + 32];
    *fwd_flops = net_fwd_flops(&m->enc) + net_fwd_flops(&m->dec);
    /* 4 x parameters (weights, gradients, Adam m and v) + activations for backward, float32 */
    *model_mib = (4.0 * (double)m->n_params + (double)batch * acts) * 4.0 / 1048576.0;
    snprintf(spec, sizeof spec, "%s%sdense%d", m->cfg.enc_spec, m->cfg.enc_spec[0] ? "," : "",
             2 * m->cfg.z_dim);
    js_str("enc_spec", spec);
    js_str("dec_spec", m->cfg.dec_spec);
    js_int("c", m->cfg.in_c); js_int("h", m->cfg.in_h); js_int("w", m->cfg.in_w);
    js_int("z_dim", m->cfg.z_dim);
    js_int("batch", batch);
    js_int("params", (long long)m->n_params);
    js_num("act_floats_per_image", acts);
    js_num("fwd_gflop_per_image", *fwd_flops * 1e-9);
    js_num("enc_fwd_gflop_per_image", net_fwd_flops(&m->enc) * 1e-9);
    js_num("train_gflop_per_image", 3.0 * *fwd_flops * 1e-9);
    js_num("model_mib", *model_mib);
}

/* --adapt: the thread tuner every training step goes through, and the steps it ran on fewer
   threads than it may use */
static heph_tuner g_tune;
static int g_adapt;
static long long g_fewer;

static void common_fields(const opts *o) {
    js_str("impl", "c");
    js_str("mode", o->mode);
    js_int("threads", g_adapt ? g_tune.max_threads : threads_now());
    if (g_adapt) { js_int("adapt", 1); js_int("steps_on_fewer_threads", g_fewer); }
    js_str("cflags", BENCH_CFLAGS);
#ifdef __VERSION__
    js_str("compiler", __VERSION__);
#endif
}

/* ------------------------------------------------------------------------------------------ */
/* data: the same picture indices as torch_bench.py, or generated pictures                    */

static uint64_t pool_index(uint64_t i, uint64_t count) { return (i * 2654435761ull + 12345ull) % count; }

/* n pictures (c,h,w) into x: from an .hpd file when given, otherwise random (binary for one
   channel like dSprites, uniform for RGB like Shapes3D). Returns a description. */
static const char *fill_pool(float *x, size_t n, int c, int h, int w, const char *path,
                             uint64_t seed) {
    size_t i, np = (size_t)c * (size_t)h * (size_t)w;
    if (path) {
        heph_hpd d;
        size_t *idx = (size_t *)xmalloc(n * sizeof *idx);
        if (heph_hpd_open(&d, path) != HEPH_OK) die("%s", d.err);
        if ((int)d.info.c != c || (int)d.info.h != h || (int)d.info.w != w)
            die("%s holds %ux%ux%u pictures, the model wants %dx%dx%d", path, d.info.c, d.info.h,
                d.info.w, c, h, w);
        for (i = 0; i < n; i++) idx[i] = (size_t)pool_index(i, d.info.count);
        if (heph_hpd_read(&d, idx, n, x) != HEPH_OK) die("%s", d.err);
        heph_hpd_close(&d);
        free(idx);
        return path;
    } else {
        heph_rng r;
        heph_rng_seed(&r, seed + 1000);
        for (i = 0; i < n * np; i++)
            x[i] = c == 1 ? (float)(heph_rng_u32(&r) & 1u) : heph_rng_uniform(&r);
        return c == 1 ? "generated: random binary pictures" : "generated: uniform random pictures";
    }
}

/* ------------------------------------------------------------------------------------------ */
/* train                                                                                      */

static double g_loss; /* loss of the last step, per image: shows the steps are real */

static void step_or_die(heph_vae *m, const float *x, int B) {
    heph_losses L;
    double t0 = now();
#ifdef _OPENMP
    if (g_adapt) omp_set_num_threads(g_tune.threads);
#endif
    if (heph_vae_train_step(m, x, B, &L) != HEPH_OK) die("training step failed: %s", m->err);
    if (g_adapt) {
        heph_tuner_next(&g_tune, now() - t0);
        g_fewer += !g_tune.probing && g_tune.best < g_tune.max_threads;
    }
    g_loss = L.loss;
}

static int is_labelled(const char *model);
static void run_train_labelled(const opts *o);
static void run_train(const opts *o) {
    int B = o->batch ? o->batch : default_batch(o->model);
    int mnist = !strcmp(o->model, "mlp-mnist");
    heph_vae m;
    heph_vae_config cfg;
    float *data, *xb = NULL;
    size_t n_data, np, *order = NULL, steps = 0, images = 0, s;
    const char *src;
    double base, t0, t, secs, fwd, model_mib, peak;
    int hwm_ok;
    heph_rng rng;

    if (is_labelled(o->model)) { run_train_labelled(o); return; }
    if (heph_vae_config_preset(&cfg, o->model) != HEPH_OK) die("unknown model \"%s\"", o->model);
    np = (size_t)cfg.in_c * (size_t)cfg.in_h * (size_t)cfg.in_w;
    if (mnist) { /* the whole training set, like a real run */
        heph_hpd d;
        const char *path = o->data ? o->data : "data/mnist/train.hpd";
        if (heph_hpd_open(&d, path) != HEPH_OK) die("%s (make data-mnist makes it)", d.err);
        if (heph_hpd_picture_size(&d.info) != np) die("%s: not 28x28 pictures", path);
        n_data = (size_t)d.info.count;
        data = (float *)xmalloc(n_data * np * sizeof(float));
        if (heph_hpd_read_range(&d, 0, n_data, data) != HEPH_OK) die("%s", d.err);
        heph_hpd_close(&d);
        src = path;
        xb = (float *)xmalloc((size_t)B * np * sizeof(float));
        order = (size_t *)xmalloc(n_data * sizeof *order);
        for (s = 0; s < n_data; s++) order[s] = s;
    } else {
        n_data = (size_t)o->pool * (size_t)B;
        data = (float *)xmalloc(n_data * np * sizeof(float));
        src = fill_pool(data, n_data, cfg.in_c, cfg.in_h, cfg.in_w, o->data, o->seed);
    }
    heph_rng_seed(&rng, o->seed + 7);

    /* memory baseline: data loaded, model not yet made */
    base = rss_mib();
    hwm_ok = hwm_reset();
    make_model(&m, o, B);
    g_adapt = o->adapt;
    heph_tuner_init(&g_tune, threads_now());

    /* warm-up (untimed): at least 2 steps and o->warmup seconds */
    t0 = now();
    for (s = 0; s < 2 || now() - t0 < o->warmup; s++)
        step_or_die(&m, data + (s % (n_data / (size_t)B)) * (size_t)B * np, B);
    g_fewer = 0;

    if (mnist) { /* whole epochs: shuffle, gather each batch, step (last batch may be short) */
        int e;
        t0 = now();
        for (e = 0; e < o->epochs; e++) {
            heph_rng_shuffle(&rng, order, n_data);
            for (s = 0; s < n_data; s += (size_t)B) {
                size_t b, nb = n_data - s < (size_t)B ? n_data - s : (size_t)B;
                for (b = 0; b < nb; b++)
                    memcpy(xb + b * np, data + order[s + b] * np, np * sizeof(float));
                step_or_die(&m, xb, (int)nb);
                steps++;
                images += nb;
            }
        }
        t = now();
    } else { /* steady state: cycle through the pool until the window is over */
        size_t nb = n_data / (size_t)B;
        t0 = now();
        do {
            step_or_die(&m, data + (steps % nb) * (size_t)B * np, B);
            steps++;
            images += (size_t)B;
            t = now();
        } while (t - t0 < o->seconds);
    }
    secs = t - t0;
    peak = hwm_mib();

    js_begin();
    common_fields(o);
    js_str("model", o->model);
    js_str("data", src);
    model_fields(&m, B, &fwd, &model_mib);
    js_int("epochs", mnist ? o->epochs : 0);
    js_int("steps", (long long)steps);
    js_int("images", (long long)images);
    js_num("seconds", secs);
    js_num("images_per_s", (double)images / secs);
    js_num("ms_per_step", 1e3 * secs / (double)steps);
    js_num("gflops", 3.0 * fwd * (double)images / secs * 1e-9);
    js_num("base_rss_mib", base);
    js_num("peak_rss_mib", maxrss_mib());
    js_num("train_mib", peak - base);
    js_int("hwm_reset", hwm_ok);
    js_num("train_over_model", (peak - base) / model_mib);
    js_num("last_loss", g_loss);
    js_end();
    if (!g_json)
        printf("%s train, %d threads, batch %d: %.1f images/s, %.2f ms/step, %.1f GFLOP/s, "
               "training memory %.1f MiB (model: 4 x params + activations = %.1f MiB), "
               "peak RSS %.1f MiB [%s]\n",
               o->model, g_adapt ? g_tune.max_threads : threads_now(), B, (double)images / secs, 1e3 * secs / (double)steps,
               3.0 * fwd * (double)images / secs * 1e-9, peak - base, model_mib, maxrss_mib(), src);
    heph_vae_free(&m);
    free(data); free(xb); free(order);
}

/* ------------------------------------------------------------------------------------------ */
/* train, labelled models (issue #22): the conditional VAE and the classifier                 */

/* the 99.5 % MNIST classifier (hephaestus classifier's default for 10 classes,
   examples/classifier_mnist.c): trained alone (classifier-mnist), and frozen inside the
   conditional VAE's step, its label loss (cvae-mnist) */
#define BENCH_CLS_BN "conv32k3p1,bn,relu,conv32k3p1,bn,relu,maxpool2,conv64k3p1,bn,relu,conv64k3p1,bn,relu,maxpool2," \
                     "flatten,dense128,bn,relu,dense10"

static int is_labelled(const char *model) { return !strcmp(model, "cvae-mnist") || !strcmp(model, "classifier-mnist"); }

/* a network on 1x28x28 pictures with its own block of 4 x parameters, PyTorch-initialised */
static void make_net(heph_net *n, const char *spec, int B, uint64_t seed) {
    char err[HEPH_ERRLEN];
    heph_rng r;
    float *blk;
    if (heph_net_init(n, spec, 1, 28, 28, B, err, sizeof err) != HEPH_OK) die("%s", err);
    blk = (float *)xmalloc(4 * n->n_params * sizeof(float));
    memset(blk, 0, 4 * n->n_params * sizeof(float));
    heph_net_bind(n, blk, blk + n->n_params);
    heph_rng_seed(&r, seed);
    heph_net_init_params(n, &r);
}

/* the fields of a labelled model (as model_fields): the cvae counts its classifier's forward
   in the step's FLOPs (its backward to the picture is part of every step) */
static void labelled_fields(const opts *o, heph_vae *m, heph_net *cls, int B, double *fwd) {
    double acts = net_act_floats(cls), model_mib;
    size_t params = cls->n_params;
    char spec[HEPH_SPEC_MAX + 32];
    *fwd = net_fwd_flops(cls);
    if (m) {
        acts += net_act_floats(&m->enc) + net_act_floats(&m->dec);
        *fwd += net_fwd_flops(&m->enc) + net_fwd_flops(&m->dec);
        params = m->n_params;
        snprintf(spec, sizeof spec, "%s,dense%d", m->cfg.enc_spec, 2 * m->cfg.z_dim);
        js_str("enc_spec", spec);
        js_str("dec_spec", m->cfg.dec_spec);
        js_int("z_dim", m->cfg.z_dim);
        js_int("n_classes", m->cfg.n_classes);
        js_int("label_dim", m->cfg.label_dim);
        js_num("label_weight", (double)m->cfg.label_weight);
        js_num("wrong_labels", (double)m->cfg.wrong_labels);
        js_str("classifier_spec", BENCH_CLS_BN);
    } else {
        js_str("enc_spec", BENCH_CLS_BN);
        js_str("dec_spec", "");
        js_int("z_dim", 0);
        js_int("n_classes", 10);
    }
    model_mib = (4.0 * (double)params + (double)B * acts) * 4.0 / 1048576.0;
    js_str("model", o->model);
    js_int("c", 1); js_int("h", 28); js_int("w", 28);
    js_int("batch", B);
    js_int("params", (long long)params);
    js_num("act_floats_per_image", acts);
    js_num("fwd_gflop_per_image", *fwd * 1e-9);
    js_num("train_gflop_per_image", 3.0 * *fwd * 1e-9);
    js_num("model_mib", model_mib);
}

/* one training step of a labelled model on the B pictures x with labels y; the loss per image */
static double labelled_step(heph_vae *m, heph_net *cls, const float *x, const int *y, int B, float *dl, uint64_t t) {
    heph_losses L;
    const float *lg;
    double loss;
    if (m) {
        if (heph_cvae_train_step(m, x, y, B, &L) != HEPH_OK) die("training step failed: %s", m->err);
        return L.loss;
    }
    lg = heph_net_forward(cls, x, B);
    loss = heph_softmax_xent(dl, lg, y, B, 10, 1.0f / (float)B) / B;
    heph_net_backward(cls, dl, B, NULL);
    heph_adam_step(cls->params, cls->grads, cls->params + 2 * cls->n_params, cls->params + 3 * cls->n_params, cls->n_params,
                   1e-3f, 0.9f, 0.999f, 1e-8f, t);
    return loss;
}

/* steady-state training steps of cvae-mnist (with its frozen classifier and 10 % wrong labels)
   or classifier-mnist (softmax cross-entropy, Adam), batch B from a pool of MNIST pictures;
   labels: picture i of the pool has label i mod 10 (the cost does not depend on them) */
static void run_train_labelled(const opts *o) {
    int B = o->batch ? o->batch : 64, cvae = !strcmp(o->model, "cvae-mnist"), *y;
    size_t n_data = (size_t)o->pool * (size_t)B, nb = (size_t)o->pool, steps = 0, s;
    float *data = (float *)xmalloc(n_data * 784 * sizeof(float)), *dl = (float *)xmalloc((size_t)B * 10 * sizeof(float));
    const char *src = fill_pool(data, n_data, 1, 28, 28, o->data, o->seed);
    heph_vae m;
    heph_net cls;
    heph_vae_config cfg;
    double base, t0, t, secs, fwd, peak, loss = 0.0;
    uint64_t adam_t = 0;
    int hwm_ok;
    y = (int *)xmalloc(n_data * sizeof(int));
    for (s = 0; s < n_data; s++) y[s] = (int)(s % 10);
    base = rss_mib();
    hwm_ok = hwm_reset();
    make_net(&cls, BENCH_CLS_BN, B, o->seed + 1);
    if (cvae) {
        if (heph_vae_config_preset(&cfg, "cvae-mnist") != HEPH_OK) die("no cvae-mnist preset");
        cfg.max_batch = B;
        if (heph_vae_init(&m, &cfg, o->seed) != HEPH_OK) die("%s", m.err);
        if (heph_vae_set_classifier(&m, &cls) != HEPH_OK) die("%s", m.err);
    }
    /* warm-up (untimed): at least 2 steps and o->warmup seconds; then the timed window */
    t0 = now();
    for (s = 0; s < 2 || now() - t0 < o->warmup; s++)
        loss = labelled_step(cvae ? &m : NULL, &cls, data + (s % nb) * (size_t)B * 784, y + (s % nb) * (size_t)B, B, dl, ++adam_t);
    t0 = now();
    do {
        loss = labelled_step(cvae ? &m : NULL, &cls, data + (steps % nb) * (size_t)B * 784, y + (steps % nb) * (size_t)B, B, dl,
                             ++adam_t);
        steps++;
        t = now();
    } while (t - t0 < o->seconds);
    secs = t - t0;
    peak = hwm_mib();
    js_begin();
    common_fields(o);
    js_str("data", src);
    labelled_fields(o, cvae ? &m : NULL, &cls, B, &fwd);
    js_int("epochs", 0);
    js_int("steps", (long long)steps);
    js_int("images", (long long)(steps * (size_t)B));
    js_num("seconds", secs);
    js_num("images_per_s", (double)(steps * (size_t)B) / secs);
    js_num("ms_per_step", 1e3 * secs / (double)steps);
    js_num("gflops", 3.0 * fwd * (double)(steps * (size_t)B) / secs * 1e-9);
    js_num("base_rss_mib", base);
    js_num("peak_rss_mib", maxrss_mib());
    js_num("train_mib", peak - base);
    js_int("hwm_reset", hwm_ok);
    js_num("last_loss", loss);
    js_end();
    if (!g_json)
        printf("%s train, %d threads, batch %d: %.1f images/s, %.2f ms/step, %.1f GFLOP/s, peak RSS %.1f MiB [%s]\n", o->model,
               threads_now(), B, (double)(steps * (size_t)B) / secs, 1e3 * secs / (double)steps,
               3.0 * fwd * (double)(steps * (size_t)B) / secs * 1e-9, maxrss_mib(), src);
    if (cvae) heph_vae_free(&m);
    free(cls.params);
    heph_net_free(&cls);
    free(data); free(dl); free(y);
}

/* ------------------------------------------------------------------------------------------ */
/* encode: encoder-only inference (posterior means) over a pool, in max_batch chunks          */

static void run_encode(const opts *o) {
    int B = o->batch ? o->batch : default_batch(o->model);
    heph_vae m;
    heph_vae_config cfg;
    size_t n, np, images = 0;
    float *data, *mu;
    const char *src;
    double t0, t, enc, fwd, model_mib;

    if (heph_vae_config_preset(&cfg, o->model) != HEPH_OK) die("unknown model \"%s\"", o->model);
    np = (size_t)cfg.in_c * (size_t)cfg.in_h * (size_t)cfg.in_w;
    n = (size_t)o->pool * (size_t)B;
    data = (float *)xmalloc(n * np * sizeof(float));
    mu = (float *)xmalloc(n * (size_t)cfg.z_dim * sizeof(float));
    src = fill_pool(data, n, cfg.in_c, cfg.in_h, cfg.in_w, o->data, o->seed);
    make_model(&m, o, B);
    enc = net_fwd_flops(&m.enc);
    t0 = now();
    do heph_vae_encode(&m, data, (size_t)B, mu, NULL); while (now() - t0 < o->warmup);
    t0 = now();
    do {
        heph_vae_encode(&m, data, n, mu, NULL);
        images += n;
        t = now();
    } while (t - t0 < o->seconds);

    js_begin();
    common_fields(o);
    js_str("model", o->model);
    js_str("data", src);
    model_fields(&m, B, &fwd, &model_mib);
    js_int("images", (long long)images);
    js_num("seconds", t - t0);
    js_num("images_per_s", (double)images / (t - t0));
    js_num("gflops", enc * (double)images / (t - t0) * 1e-9);
    js_num("peak_rss_mib", maxrss_mib());
    js_end();
    if (!g_json)
        printf("%s encode, %d threads, batch %d: %.1f images/s, %.1f GFLOP/s\n", o->model,
               threads_now(), B, (double)images / (t - t0), enc * (double)images / (t - t0) * 1e-9);
    heph_vae_free(&m);
    free(data); free(mu);
}

/* ------------------------------------------------------------------------------------------ */
/* maha: fit once on n_fit latents, then score at least n_score (a 100,000-point array scored
   again and again, so memory stays small) for at least the window                           */

static void latents(float *z, size_t n, int D, const float *A, heph_rng *r) {
    size_t i;
    int a, b;
    float *e = (float *)xmalloc((size_t)D * sizeof(float));
    for (i = 0; i < n; i++) { /* z = 0.5 + A e: correlated Gaussian latents */
        for (a = 0; a < D; a++) e[a] = heph_rng_normal(r);
        for (a = 0; a < D; a++) {
            float s = 0.5f;
            for (b = 0; b <= a; b++) s += A[a * D + b] * e[b];
            z[i * (size_t)D + (size_t)a] = s;
        }
    }
    free(e);
}

static void run_maha(const opts *o) {
    int D = o->dim, a, b;
    size_t chunk = o->n_score < 100000 ? (size_t)o->n_score : 100000, scored = 0;
    float *A = (float *)xmalloc((size_t)D * (size_t)D * sizeof(float));
    float *zf = (float *)xmalloc((size_t)o->n_fit * (size_t)D * sizeof(float));
    float *zs = (float *)xmalloc(chunk * (size_t)D * sizeof(float));
    double *d2 = (double *)xmalloc(chunk * sizeof(double)), t0, t, tfit, sum = 0.0;
    heph_rng r;
    heph_maha f;
    heph_rng_seed(&r, o->seed);
    for (a = 0; a < D; a++)
        for (b = 0; b < D; b++) A[a * D + b] = b < a ? 0.3f * heph_rng_normal(&r) : (b == a ? 1.0f : 0.0f);
    latents(zf, (size_t)o->n_fit, D, A, &r);
    latents(zs, chunk, D, A, &r);
    t0 = now();
    if (heph_maha_fit(&f, zf, (size_t)o->n_fit, D, HEPH_COV_EMPIRICAL, 0.0, o->seed) != HEPH_OK)
        die("fit: %s", f.err);
    tfit = now() - t0;
    heph_maha_score(&f, zs, chunk, d2); /* warm-up */
    t0 = now();
    do {
        heph_maha_score(&f, zs, chunk, d2);
        scored += chunk;
        sum += d2[scored % chunk];
        t = now();
    } while (scored < (size_t)o->n_score || t - t0 < o->seconds);

    js_begin();
    common_fields(o);
    js_int("dim", D);
    js_str("method", "empirical");
    js_int("n_fit", o->n_fit);
    js_int("scored", (long long)scored);
    js_num("fit_ms", 1e3 * tfit);
    js_num("seconds", t - t0);
    js_num("latents_per_s", (double)scored / (t - t0));
    js_num("checksum", sum);
    js_num("peak_rss_mib", maxrss_mib());
    js_end();
    if (!g_json)
        printf("Mahalanobis D=%d, %d threads: fit on %ld points %.2f ms, scoring %.3g latents/s\n",
               D, threads_now(), o->n_fit, 1e3 * tfit, (double)scored / (t - t0));
    heph_maha_free(&f);
    free(A); free(zf); free(zs); free(d2);
}

/* ------------------------------------------------------------------------------------------ */
/* peak: independent multiply-add chains, plain C that gcc keeps in vector registers          */

#define PEAK_ACC 12 /* independent accumulators: more than FMA latency x FMA units */
#if defined(__AVX512F__)
#define PEAK_W 16   /* floats per accumulator: one vector register */
#elif defined(__AVX__)
#define PEAK_W 8
#else
#define PEAK_W 4
#endif

static float peak_kernel(long iters, float a, float b) {
    float acc[PEAK_ACC][PEAK_W], s = 0.0f;
    long it;
    int r, j;
    for (r = 0; r < PEAK_ACC; r++)
        for (j = 0; j < PEAK_W; j++) acc[r][j] = (float)(r * PEAK_W + j) * 1e-3f;
    for (it = 0; it < iters; it++)
        for (r = 0; r < PEAK_ACC; r++)
            for (j = 0; j < PEAK_W; j++) acc[r][j] = acc[r][j] * a + b; /* one FMA */
    for (r = 0; r < PEAK_ACC; r++)
        for (j = 0; j < PEAK_W; j++) s += acc[r][j];
    return s;
}

/* every thread runs the kernel; returns wall seconds */
static double peak_parallel(long iters, volatile float *sink) {
    double t0 = now();
#ifdef _OPENMP
#pragma omp parallel
#endif
    {
        float s = peak_kernel(iters, 0.9999f, 1e-4f); /* converges to 1.0: no denormals */
        if (s == 12345.0f) *sink = s;
    }
    return now() - t0;
}

static void run_peak(const opts *o) {
    volatile float sink = 0.0f;
    long iters = 100000;
    double t, flops;
    int T = threads_now();
    peak_parallel(iters, &sink); /* wake the threads */
    while ((t = peak_parallel(iters, &sink)) < 0.05) iters *= 4;
    iters = (long)((double)iters * (o->seconds / t)) + 1;
    t = peak_parallel(iters, &sink);
    flops = 2.0 * PEAK_ACC * PEAK_W * (double)iters * (double)T;
    js_begin();
    common_fields(o);
    js_int("vector_floats", PEAK_W);
    js_int("accumulators", PEAK_ACC);
    js_num("seconds", t);
    js_num("gflops", flops / t * 1e-9);
    js_end();
    if (!g_json)
        printf("FMA peak, %d threads: %.1f GFLOP/s (%d accumulators x %d floats)\n", T,
               flops / t * 1e-9, PEAK_ACC, PEAK_W);
}

/* ------------------------------------------------------------------------------------------ */
/* ceiling: the library's own GEMM on the shapes of the model's encoder forward, arranged as
   the network runs them (a conv layer: the batch in HEPH_CONV_SLICES slices that threads take
   whole, each in chunks of images whose patch rows fit HEPH__ROWS_FLOATS, bias and ReLU in the
   store; a dense layer: one product with the GEMM's own threads), on random data. Everything
   else the encoder does (patch rows, layout changes, weight permutations) is left out: this
   is the rate the encoder would reach if only its matrix products took time.                */
static double ceiling_layers(const heph_net *net, int B, float **rows, float **out, float **pack,
                             float *W, float *bias) {
    double t0 = now();
    int l, S = heph__n_slices(B);
    for (l = 0; l < net->n_layers; l++) {
        const heph_layer *L = &net->layers[l];
        if (L->kind == HEPH_CONV) {
            int HWo = L->out_h * L->out_w, K = L->in_c * L->k * L->k, Co = L->out_c, s;
            HEPH__OMP_FOR_IF(S > 1)
            for (s = 0; s < S; s++) {
                int n = heph__slice_start(B, S, s + 1) - heph__slice_start(B, S, s), b0;
                int nb = heph__chunk_images((size_t)HWo * (size_t)K, n);
                for (b0 = 0; b0 < n; b0 += nb) {
                    int m = n - b0 < nb ? n - b0 : nb;
                    heph__gemm_ex(m * HWo, Co, K, rows[s], K, 0, W, Co, 0, out[s], Co, 0, pack[s], bias, 1);
                }
            }
        } else if (L->kind == HEPH_DENSE) {
            int I = L->in_c * L->in_h * L->in_w, O = L->out_c;
            heph__gemm_ex(B, O, I, rows[0], I, 0, W, O, 0, out[0], O, 0, pack[0], bias, 0);
        }
    }
    return now() - t0;
}

static void run_ceiling(const opts *o) {
    int B = o->batch ? o->batch : default_batch(o->model), S = heph__n_slices(B), s;
    heph_vae m;
    float *rows[HEPH_CONV_SLICES], *out[HEPH_CONV_SLICES], *pack[HEPH_CONV_SLICES], *W, *bias;
    size_t nrow = HEPH__ROWS_FLOATS, nout = 0, nW = 0, npack = 0, i;
    double enc, t, tsum = 0.0;
    long long batches = 0;
    heph_rng r;
    int l;
    make_model(&m, o, B);
    enc = net_fwd_flops(&m.enc);
    for (l = 0; l < m.enc.n_layers; l++) { /* the largest operands of any layer */
        const heph_layer *L = &m.enc.layers[l];
        size_t K = (size_t)L->in_c * (size_t)(L->kind == HEPH_CONV ? L->k * L->k : L->in_h * L->in_w);
        size_t o_ = (size_t)L->out_c * (size_t)L->out_h * (size_t)L->out_w * (size_t)B;
        if (L->kind != HEPH_CONV && L->kind != HEPH_DENSE) continue;
        if (K * (size_t)B > nrow) nrow = K * (size_t)B;
        if (o_ > nout) nout = o_;
        if (K * (size_t)L->out_c > nW) nW = K * (size_t)L->out_c;
        if ((size_t)heph__gemm_ws(K, (uint64_t)L->out_c) > npack) npack = (size_t)heph__gemm_ws(K, (uint64_t)L->out_c);
    }
    heph_rng_seed(&r, o->seed);
    W = (float *)xmalloc(nW * sizeof(float));
    bias = (float *)xmalloc(4096 * sizeof(float));
    for (i = 0; i < nW; i++) W[i] = heph_rng_normal(&r) * 0.05f;
    for (i = 0; i < 4096; i++) bias[i] = 0.01f;
    for (s = 0; s < S; s++) {
        rows[s] = (float *)xmalloc(nrow * sizeof(float));
        out[s] = (float *)xmalloc(nout * sizeof(float));
        pack[s] = (float *)xmalloc(npack * sizeof(float));
        for (i = 0; i < nrow; i++) rows[s][i] = heph_rng_uniform(&r);
    }
    t = now();
    do ceiling_layers(&m.enc, B, rows, out, pack, W, bias); while (now() - t < o->warmup);
    do { tsum += ceiling_layers(&m.enc, B, rows, out, pack, W, bias); batches++; } while (tsum < o->seconds);
    js_begin();
    common_fields(o);
    js_str("model", o->model);
    js_int("batch", B);
    js_num("images_per_s", (double)batches * B / tsum);
    js_num("gflops", enc * (double)batches * B / tsum * 1e-9);
    js_end();
    if (!g_json)
        printf("%s encoder GEMMs only, %d threads, batch %d: %.1f images/s, %.1f GFLOP/s\n", o->model,
               threads_now(), B, (double)batches * B / tsum, enc * (double)batches * B / tsum * 1e-9);
    for (s = 0; s < S; s++) { free(rows[s]); free(out[s]); free(pack[s]); }
    free(W); free(bias);
    heph_vae_free(&m);
}

/* ------------------------------------------------------------------------------------------ */

static void run_info(const opts *o) {
    int B = o->batch ? o->batch : default_batch(o->model);
    heph_vae m;
    double fwd, model_mib;
    int json = g_json;
    g_json = 1; /* info is always JSON */
    if (is_labelled(o->model)) { /* the cvae with its classifier, or the classifier alone */
        heph_net cls;
        heph_vae_config cfg;
        int cvae = !strcmp(o->model, "cvae-mnist");
        B = o->batch ? o->batch : 64;
        make_net(&cls, BENCH_CLS_BN, B, o->seed + 1);
        if (cvae) {
            heph_vae_config_preset(&cfg, "cvae-mnist");
            cfg.max_batch = B;
            if (heph_vae_init(&m, &cfg, o->seed) != HEPH_OK) die("%s", m.err);
        }
        js_begin();
        js_str("impl", "c");
        js_str("mode", "info");
        labelled_fields(o, cvae ? &m : NULL, &cls, B, &fwd);
        js_end();
        g_json = json;
        if (cvae) heph_vae_free(&m);
        free(cls.params);
        heph_net_free(&cls);
        return;
    }
    make_model(&m, o, B);
    js_begin();
    js_str("impl", "c");
    js_str("mode", "info");
    js_str("model", o->model);
    model_fields(&m, B, &fwd, &model_mib);
    js_end();
    g_json = json;
    heph_vae_free(&m);
}

int main(int argc, char **argv) {
    opts o;
    parse(&o, argc, argv);
    if (!strcmp(o.mode, "train")) run_train(&o);
    else if (!strcmp(o.mode, "encode")) run_encode(&o);
    else if (!strcmp(o.mode, "maha")) run_maha(&o);
    else if (!strcmp(o.mode, "peak")) run_peak(&o);
    else if (!strcmp(o.mode, "info")) run_info(&o);
    else if (!strcmp(o.mode, "ceiling")) run_ceiling(&o);
    else die("unknown command \"%s\" (train, encode, maha, peak, ceiling, info)", o.mode);
    return 0;
}
