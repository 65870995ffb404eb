/* test_conv.c - convolution layers: PyTorch reference values (tests/fixtures/conv_ref.txt,
   made by tools/make_conv_fixtures.py), finite-difference gradients, spec strings with convs,
   presets, and a gradient check of a whole convolutional VAE.
   Prints "PASS name" or "FAIL name: why" per test; exit status 1 when any failed.          */
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static int n_fail = 0;
static void report(const char *name, int ok, const char *why) {
    if (ok) printf("PASS %s\n", name);
    else { printf("FAIL %s: %s\n", name, why); n_fail++; }
}

/* ---- fixture reader ---- */
typedef struct { size_t n; float *v; } arr;
static int read_arr(FILE *f, const char *want, arr *a) {
    char name[32];
    size_t i;
    if (fscanf(f, "%31s %zu", name, &a->n) != 2 || strcmp(name, want) != 0) return 0;
    a->v = (float *)malloc(a->n * sizeof(float) + 4);
    for (i = 0; i < a->n; i++) {
        double d;
        if (fscanf(f, "%lf", &d) != 1) return 0;
        a->v[i] = (float)d;
    }
    return 1;
}
/* |a - b| <= 1e-4 max(1, |b|) for every element; returns the worst ratio */
static double worst(const float *a, const float *b, size_t n) {
    double w = 0.0;
    size_t i;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / (1e-4 * fmax(1.0, fabs((double)b[i])));
        if (!(d <= w)) w = d;
    }
    return w;
}

static void test_fixtures(const char *path) {
    FILE *f = fopen(path, "r");
    char line[256], name[64], kind[16], msg[256];
    int cases = 0;
    if (!f) { report("pytorch_fixture_open", 0, path); return; }
    while (fgets(line, sizeof line, f)) {
        int B, C, H, W, Co, k, s, p, ok = 1;
        arr x, Wt, b, R, out, dx, dW, db;
        float *o, *gx, *gW, *gb, *ws;
        heph_conv_geom g;
        size_t wsn;
        double e1, e2, e3, e4;
        if (strncmp(line, "case ", 5) != 0) continue;
        if (sscanf(line, "case %63s %15s %d %d %d %d %d %d %d %d", name, kind, &B, &C, &H, &W, &Co, &k, &s, &p) != 10) break;
        ok = read_arr(f, "x", &x) && read_arr(f, "W", &Wt) && read_arr(f, "b", &b) && read_arr(f, "R", &R) &&
             read_arr(f, "out", &out) && read_arr(f, "dx", &dx) && read_arr(f, "dW", &dW) && read_arr(f, "db", &db);
        if (!ok) { report(name, 0, "fixture is malformed"); break; }
        cases++;
        if (!strcmp(kind, "dense")) wsn = heph_dense_ws_floats(B, C, Co);
        else if (!strcmp(kind, "conv")) { heph_conv2d_geom(&g, C, H, W, Co, k, s, p); wsn = heph_conv2d_ws_floats(&g, B); }
        else { heph_convt2d_geom(&g, C, H, W, Co, k, s, p); wsn = heph_convt2d_ws_floats(&g, B); }
        o = (float *)calloc(out.n, sizeof(float));
        gx = (float *)calloc(x.n, sizeof(float));
        gW = (float *)calloc(Wt.n, sizeof(float));
        gb = (float *)calloc(b.n, sizeof(float));
        ws = (float *)calloc(wsn + 1, sizeof(float));
        if (!strcmp(kind, "dense")) {
            heph_dense_forward(o, x.v, Wt.v, b.v, B, C, Co, ws);
            heph_dense_backward(gx, gW, gb, R.v, x.v, Wt.v, B, C, Co, ws);
        } else if (!strcmp(kind, "conv")) {
            heph_conv2d_forward(o, x.v, Wt.v, b.v, &g, B, ws);
            heph_conv2d_backward(gx, gW, gb, R.v, x.v, Wt.v, &g, B, ws);
        } else {
            heph_convt2d_forward(o, x.v, Wt.v, b.v, &g, B, ws);
            heph_convt2d_backward(gx, gW, gb, R.v, x.v, Wt.v, &g, B, ws);
        }
        e1 = worst(o, out.v, out.n); e2 = worst(gx, dx.v, dx.n);
        e3 = worst(gW, dW.v, dW.n); e4 = worst(gb, db.v, db.n);
        snprintf(msg, sizeof msg, "worst |a-b|/(1e-4 max(1,|b|)): out %.3g dx %.3g dW %.3g db %.3g", e1, e2, e3, e4);
        {
            char tn[96];
            snprintf(tn, sizeof tn, "pytorch_%s", name);
            report(tn, e1 <= 1.0 && e2 <= 1.0 && e3 <= 1.0 && e4 <= 1.0, msg);
        }
        free(o); free(gx); free(gW); free(gb); free(ws);
        free(x.v); free(Wt.v); free(b.v); free(R.v); free(out.v); free(dx.v); free(dW.v); free(db.v);
    }
    fclose(f);
    report("pytorch_fixture_cases", cases == 8, "expected 8 cases in the fixture");
}

/* ---- finite differences on odd shapes: loss = sum(out * R) ---- */
static double conv_loss(int tr, float *out, const float *x, const float *W, const float *b,
                        const heph_conv_geom *g, int B, float *ws, const float *R, size_t no) {
    size_t i;
    double s = 0.0;
    if (tr) heph_convt2d_forward(out, x, W, b, g, B, ws);
    else heph_conv2d_forward(out, x, W, b, g, B, ws);
    for (i = 0; i < no; i++) s += (double)out[i] * (double)R[i];
    return s;
}

static void test_conv_fd(int tr, int B, int C, int H, int Wd, int Co, int k, int s, int p) {
    heph_conv_geom g;
    heph_rng r;
    size_t nx, no, nw, i;
    float *x, *W, *b, *out, *R, *ws, *dx, *dW, *db;
    double maxe = 0.0;
    char name[96], msg[128];
    if (tr) heph_convt2d_geom(&g, C, H, Wd, Co, k, s, p);
    else heph_conv2d_geom(&g, C, H, Wd, Co, k, s, p);
    nx = (size_t)B * C * H * Wd; no = (size_t)B * Co * g.Ho * g.Wo; nw = (size_t)C * Co * k * k;
    heph_rng_seed(&r, 3);
    x = (float *)malloc(nx * 4); W = (float *)malloc(nw * 4); b = (float *)malloc((size_t)Co * 4);
    out = (float *)malloc(no * 4); R = (float *)malloc(no * 4);
    dx = (float *)calloc(nx, 4); dW = (float *)calloc(nw, 4); db = (float *)calloc((size_t)Co, 4);
    ws = (float *)malloc((tr ? heph_convt2d_ws_floats(&g, B) : heph_conv2d_ws_floats(&g, B)) * 4 + 4);
    for (i = 0; i < nx; i++) x[i] = heph_rng_normal(&r);
    for (i = 0; i < nw; i++) W[i] = heph_rng_normal(&r);
    for (i = 0; i < (size_t)Co; i++) b[i] = heph_rng_normal(&r);
    for (i = 0; i < no; i++) R[i] = heph_rng_normal(&r);
    conv_loss(tr, out, x, W, b, &g, B, ws, R, no);
    if (tr) heph_convt2d_backward(dx, dW, db, R, x, W, &g, B, ws);
    else heph_conv2d_backward(dx, dW, db, R, x, W, &g, B, ws);
#define FD_CHECK(arrp, n, grad)                                                              \
    for (i = 0; i < (n); i++) {                                                              \
        float o0 = arrp[i];                                                                  \
        double lp, lm, num, e;                                                               \
        arrp[i] = o0 + 1e-2f; lp = conv_loss(tr, out, x, W, b, &g, B, ws, R, no);            \
        arrp[i] = o0 - 1e-2f; lm = conv_loss(tr, out, x, W, b, &g, B, ws, R, no);            \
        arrp[i] = o0;                                                                        \
        num = (lp - lm) / 2e-2;                                                              \
        e = fabs(num - (double)grad[i]) / fmax(1.0, fabs(num));                              \
        if (e > maxe) maxe = e;                                                              \
    }
    FD_CHECK(x, nx, dx)
    FD_CHECK(W, nw, dW)
    FD_CHECK(b, (size_t)Co, db)
    snprintf(name, sizeof name, "%s_fd_B%dC%dH%dW%dCo%dk%ds%dp%d", tr ? "convt" : "conv", B, C, H, Wd, Co, k, s, p);
    snprintf(msg, sizeof msg, "worst relative error %.3g (limit 2e-3)", maxe);
    report(name, maxe < 2e-3, msg);
    free(x); free(W); free(b); free(out); free(R); free(ws); free(dx); free(dW); free(db);
}

/* ---- spec strings with convs ---- */
static void test_specs(void) {
    heph_layer L[HEPH_MAX_LAYERS];
    int n = 0, rc;
    char err[256];
    size_t i;
    static const char *bad[] = {"conv", "conv32", "conv32k", "conv0k4", "conv32k0", "conv32k4s0",
                                "conv32k4s2p4", "conv32k4x", "conv32k99", "convt32", "reshape",
                                "reshape4x4", "reshape2x2x2", "conv32k80s2p1", "dense8,conv4k3"};
    rc = heph_spec_parse("conv32k4s2p1,relu,conv32k4s2p1,relu,flatten,dense256,relu", 1, 64, 64,
                         L, HEPH_MAX_LAYERS, &n, err, sizeof err);
    report("spec_conv_shapes", rc == HEPH_OK && n == 7 && L[0].out_c == 32 && L[0].out_h == 32 &&
           L[2].out_h == 16 && L[4].out_c == 32 * 16 * 16 && L[5].out_c == 256 &&
           L[0].n_params == 32 * 16 + 32 && L[2].n_params == 32 * 32 * 16 + 32, err);
    rc = heph_spec_parse("reshape32x4x4,convt32k4s2p1,relu,convt1k4s2p1", 512, 1, 1, L,
                         HEPH_MAX_LAYERS, &n, err, sizeof err);
    report("spec_convt_shapes", rc == HEPH_OK && n == 4 && L[1].out_h == 8 && L[3].out_c == 1 &&
           L[3].out_h == 16 && L[3].out_w == 16 && L[1].n_params == 32 * 32 * 16 + 32, err);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[64];
        err[0] = '\0';
        rc = heph_spec_parse(bad[i], 1, 8, 8, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
        snprintf(name, sizeof name, "spec_conv_rejects_%s", bad[i]);
        report(name, rc == HEPH_E_SPEC && strstr(err, "token") != NULL, err[0] ? err : "accepted");
    }
}

/* ---- presets: parameter counts as PyTorch counts them for the seed's models ---- */
static void test_presets(void) {
    static const struct { const char *name; size_t n; } want[] = {
        /* enc convs 1->32 then 3x 32->32 (k4), 512->256->64->20; dec 10->64->256->512, 3x convt 32->32, 32->1 */
        {"cnn-dsprites", (32 * 16 + 32) + 3 * (32 * 32 * 16 + 32) + (512 * 256 + 256) + (256 * 64 + 64) + (64 * 20 + 20) +
                         (10 * 64 + 64) + (64 * 256 + 256) + (256 * 512 + 512) + 3 * (32 * 32 * 16 + 32) + (32 * 16 + 1)},
        {"cnn-dsprites-tc", (32 * 16 + 32) + 3 * (32 * 32 * 16 + 32) + (512 * 256 + 256) + (256 * 20 + 20) +
                            (10 * 256 + 256) + (256 * 512 + 512) + 3 * (32 * 32 * 16 + 32) + (32 * 16 + 1)},
        {"cnn-shapes3d", (3 * 32 * 16 + 32) + (32 * 64 * 16 + 64) + (64 * 128 * 16 + 128) + (128 * 256 * 16 + 256) +
                         (4096 * 256 + 256) + (256 * 24 + 24) + (12 * 256 + 256) + (256 * 4096 + 4096) +
                         (256 * 128 * 16 + 128) + (128 * 64 * 16 + 64) + (64 * 32 * 16 + 32) + (32 * 3 * 16 + 3)},
        {"mlp-dsprites", (4096 * 1024 + 1024) + (1024 * 256 + 256) + (256 * 64 + 64) + (64 * 20 + 20) +
                         (10 * 64 + 64) + (64 * 256 + 256) + (256 * 1024 + 1024) + (1024 * 4096 + 4096)},
    };
    size_t i;
    for (i = 0; i < sizeof want / sizeof want[0]; i++) {
        heph_vae_config cfg;
        heph_vae m;
        char name[64], msg[320];
        int rc;
        heph_vae_config_preset(&cfg, want[i].name);
        cfg.max_batch = 2;
        rc = heph_vae_init(&m, &cfg, 1);
        snprintf(name, sizeof name, "preset_%s", want[i].name);
        snprintf(msg, sizeof msg, "rc %d (%s), %zu parameters, expected %zu", rc, rc ? m.err : "",
                 rc ? (size_t)0 : m.n_params, want[i].n);
        report(name, rc == HEPH_OK && m.n_params == want[i].n, msg);
        if (rc == HEPH_OK) heph_vae_free(&m);
    }
}

/* ---- whole conv VAE: analytic gradient of the loss wrt every parameter ---- */
static void test_conv_vae_grad(void) {
    heph_vae_config cfg;
    heph_vae m;
    heph_rng r;
    float x[2 * 1 * 8 * 8], eps[2 * 3];
    size_t i;
    double maxe = 0.0;
    heph_losses L;
    int rc;
    char msg[256];
    float *g;
    heph_vae_config_default(&cfg);
    cfg.in_c = 1; cfg.in_h = 8; cfg.in_w = 8; cfg.z_dim = 3; cfg.max_batch = 2;
    strcpy(cfg.enc_spec, "conv3k4s2p1,tanh,conv4k3s2p1,tanh,flatten,dense5,tanh");
    strcpy(cfg.dec_spec, "dense16,tanh,reshape4x2x2,convt3k4s2p1,tanh,convt1k4s2p1");
    rc = heph_vae_init(&m, &cfg, 5);
    if (rc != HEPH_OK) { report("conv_vae_grad_all_params", 0, m.err); return; }
    heph_rng_seed(&r, 9);
    for (i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = heph_rng_uniform(&r);
    for (i = 0; i < 6; i++) eps[i] = heph_rng_normal(&r);
    heph_vae_loss_grad(&m, x, 2, eps, &L);
    g = (float *)malloc(m.n_params * sizeof(float));
    memcpy(g, m.grads, m.n_params * sizeof(float));
    for (i = 0; i < m.n_params; i++) {
        float o = m.params[i];
        double lp, lm, num, e;
        m.params[i] = o + 1e-2f; heph_vae_loss_grad(&m, x, 2, eps, &L); lp = L.loss;
        m.params[i] = o - 1e-2f; heph_vae_loss_grad(&m, x, 2, eps, &L); lm = L.loss;
        m.params[i] = o;
        num = (lp - lm) / 2e-2;
        e = fabs(num - (double)g[i]) / fmax(0.05, fabs(num));
        if (e > maxe) maxe = e;
    }
    snprintf(msg, sizeof msg, "%zu parameters, worst relative error %.3g (limit 2e-2)", m.n_params, maxe);
    report("conv_vae_grad_all_params", maxe < 2e-2, msg);
    free(g);
    heph_vae_free(&m);
}

int main(int argc, char **argv) {
    test_fixtures(argc > 1 ? argv[1] : "tests/fixtures/conv_ref.txt");
    test_conv_fd(0, 2, 3, 5, 6, 4, 3, 2, 1);
    test_conv_fd(0, 1, 1, 1, 1, 1, 1, 1, 0);
    test_conv_fd(0, 3, 2, 9, 7, 3, 4, 2, 1);
    test_conv_fd(1, 2, 3, 5, 6, 4, 3, 2, 1);
    test_conv_fd(1, 1, 1, 1, 1, 1, 1, 1, 0);
    test_conv_fd(1, 2, 4, 3, 4, 2, 4, 2, 1);
    test_specs();
    test_presets();
    test_conv_vae_grad();
    return n_fail ? 1 : 0;
}
