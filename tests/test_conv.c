/* test_conv.c - convolution layers: PyTorch reference values (tests/fixtures/conv_ref.txt,
   made by tools/make_conv_fixtures.py), finite-difference gradients, spec strings with convs,
   presets, and a gradient check of a whole convolutional VAE.
   Prints "PASS name" or "FAIL name: why" per test; exit status 1 when any failed.          */
#define HEPHAESTUS_IMPLEMENTATION
#define HEPH__ROWS_FLOATS 2000 /* small chunks of images, so that the chunked paths run */
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

/* ---- optimised kernels against the plain loops, on odd sizes ---- */

/* C = op(A) op(B) in double, and the scale sum |a||b| each element is allowed an error of */
static void gemm_double(int M, int N, int K, const float *A, int lda, int ta, const float *B, int ldb,
                        int tb, double *C, double *S) {
    int i, j, k;
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            double s = 0.0, a = 0.0;
            for (k = 0; k < K; k++) {
                double x = (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
                double y = (double)(tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                s += x * y; a += fabs(x * y);
            }
            C[(size_t)i * N + j] = s; S[(size_t)i * N + j] = a;
        }
}

static void test_gemm_vs_reference(void) {
    static const int sz[] = {1, 3, 17, 63};
    /* NR and KC edges; then enough panels for the threads to split them (K over 3 blocks, the
       last not a multiple of 16), and a tall product (row tiles outside)                  */
    static const int extra[][3] = {{7, 65, 300}, {64, 33, 257}, {13, 1, 513}, {37, 300, 700}, {301, 257, 40}};
    int cases = 0, bad = 0, t;
    double worst_ratio = 0.0;
    char msg[160];
    heph_rng r;
    heph_rng_seed(&r, 21);
    for (t = 0; t < 64 + 5; t++) {
        int M, N, K, ta, tb, acc, v;
        if (t < 64) { M = sz[t % 4]; N = sz[(t / 4) % 4]; K = sz[(t / 16) % 4]; }
        else { M = extra[t - 64][0]; N = extra[t - 64][1]; K = extra[t - 64][2]; }
        for (v = 0; v < 8; v++) {
            size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N, i;
            float *A, *B, *C1, *C2, *ws;
            double *D, *S;
            ta = v & 1; tb = (v >> 1) & 1; acc = (v >> 2) & 1;
            A = (float *)malloc(na * 4); B = (float *)malloc(nb * 4);
            C1 = (float *)malloc(nc * 4); C2 = (float *)malloc(nc * 4);
            D = (double *)malloc(nc * 8); S = (double *)malloc(nc * 8);
            ws = (float *)malloc(heph__gemm_ws(K, N) * 4 + 4);
            for (i = 0; i < na; i++) A[i] = heph_rng_normal(&r);
            for (i = 0; i < nb; i++) B[i] = heph_rng_normal(&r);
            for (i = 0; i < nc; i++) C1[i] = C2[i] = heph_rng_normal(&r);
            gemm_double(M, N, K, A, ta ? M : K, ta, B, tb ? K : N, tb, D, S);
            if (acc) for (i = 0; i < nc; i++) { D[i] += (double)C1[i]; S[i] += fabs((double)C1[i]); }
            heph__gemm(M, N, K, A, ta ? M : K, ta, B, tb ? K : N, tb, C1, N, acc, ws);
            heph__gemm_ref(M, N, K, A, ta ? M : K, ta, B, tb ? K : N, tb, C2, N, acc);
            for (i = 0; i < nc; i++) {
                double lim = 1e-6 * (S[i] + 1e-30) * (K + 1);
                double e1 = fabs((double)C1[i] - D[i]) / lim, e2 = fabs((double)C2[i] - D[i]) / lim;
                if (e1 > worst_ratio) worst_ratio = e1;
                if (e2 > worst_ratio) worst_ratio = e2;
                if (!(e1 <= 1.0 && e2 <= 1.0)) bad++;
            }
            cases++;
            free(A); free(B); free(C1); free(C2); free(D); free(S); free(ws);
        }
    }
    snprintf(msg, sizeof msg, "%d products (M, N, K in 1, 3, 17, 63 and NR/KC edges; every transpose "
             "and accumulate), %d elements off; worst error %.3g of the limit", cases, bad, worst_ratio);
    report("gemm_vs_reference_odd_sizes", bad == 0 && cases == 69 * 8, msg);
}

/* the direct loops of a conv (tr = 0) or transposed conv (tr = 1), (C, H, W) pictures:
   every connection y[yi] += x[xi] * W[wi]; with R given, the gradients of sum(y R)         */
static void conv_direct(int tr, const heph_conv_geom *g, int B, const float *x, const float *W,
                        const float *bias, float *y, const float *R, float *dx, float *dW, float *db) {
    int b, c, co, a0, a1, ky, kx;
    size_t ny = (size_t)B * g->Co * g->Ho * g->Wo, i;
    for (i = 0; i < ny; i++) y[i] = bias[(i / ((size_t)g->Ho * g->Wo)) % (size_t)g->Co];
    if (R) for (i = 0; i < ny; i++) db[(i / ((size_t)g->Ho * g->Wo)) % (size_t)g->Co] += R[i];
    for (b = 0; b < B; b++)
        for (c = 0; c < g->C; c++)
            for (co = 0; co < g->Co; co++)
                for (a0 = 0; a0 < (tr ? g->H : g->Ho); a0++)
                    for (a1 = 0; a1 < (tr ? g->W : g->Wo); a1++)
                        for (ky = 0; ky < g->k; ky++)
                            for (kx = 0; kx < g->k; kx++) {
                                int u = a0 * g->s - g->p + ky, v = a1 * g->s - g->p + kx; /* the other side */
                                size_t xi, yi, wi;
                                if (tr) {
                                    if (u < 0 || u >= g->Ho || v < 0 || v >= g->Wo) continue;
                                    xi = (((size_t)b * g->C + c) * g->H + a0) * g->W + a1;
                                    yi = (((size_t)b * g->Co + co) * g->Ho + u) * g->Wo + v;
                                    wi = (((size_t)c * g->Co + co) * g->k + ky) * g->k + kx;
                                } else {
                                    if (u < 0 || u >= g->H || v < 0 || v >= g->W) continue;
                                    xi = (((size_t)b * g->C + c) * g->H + u) * g->W + v;
                                    yi = (((size_t)b * g->Co + co) * g->Ho + a0) * g->Wo + a1;
                                    wi = (((size_t)co * g->C + c) * g->k + ky) * g->k + kx;
                                }
                                y[yi] += x[xi] * W[wi];
                                if (R) { dx[xi] += R[yi] * W[wi]; dW[wi] += x[xi] * R[yi]; }
                            }
}

static void test_conv_vs_direct(int tr, int B, int C, int H, int Wd, int Co, int k, int s, int p) {
    heph_conv_geom g;
    heph_rng r;
    size_t nx, no, nw, i;
    float *x, *W, *b, *R, *ws, *o1, *o2, *dx1, *dx2, *dW1, *dW2, *db1, *db2;
    double e = 0.0;
    char name[96], msg[128];
    if (tr) heph_convt2d_geom(&g, C, H, Wd, Co, k, s, p);
    else heph_conv2d_geom(&g, C, H, Wd, Co, k, s, p);
    nx = (size_t)B * C * H * Wd; no = (size_t)B * Co * g.Ho * g.Wo; nw = (size_t)C * Co * k * k;
    heph_rng_seed(&r, 5);
    x = (float *)malloc(nx * 4); W = (float *)malloc(nw * 4); b = (float *)malloc((size_t)Co * 4);
    R = (float *)malloc(no * 4); o1 = (float *)malloc(no * 4); o2 = (float *)malloc(no * 4);
    dx1 = (float *)calloc(nx, 4); dx2 = (float *)calloc(nx, 4); dW1 = (float *)calloc(nw, 4);
    dW2 = (float *)calloc(nw, 4); db1 = (float *)calloc((size_t)Co, 4); db2 = (float *)calloc((size_t)Co, 4);
    ws = (float *)malloc((tr ? heph_convt2d_ws_floats(&g, B) : heph_conv2d_ws_floats(&g, B)) * 4 + 4);
    for (i = 0; i < nx; i++) x[i] = heph_rng_normal(&r);
    for (i = 0; i < nw; i++) W[i] = heph_rng_normal(&r);
    for (i = 0; i < (size_t)Co; i++) b[i] = heph_rng_normal(&r);
    for (i = 0; i < no; i++) R[i] = heph_rng_normal(&r);
    conv_direct(tr, &g, B, x, W, b, o2, R, dx2, dW2, db2);
    if (tr) { heph_convt2d_forward(o1, x, W, b, &g, B, ws); heph_convt2d_backward(dx1, dW1, db1, R, x, W, &g, B, ws); }
    else { heph_conv2d_forward(o1, x, W, b, &g, B, ws); heph_conv2d_backward(dx1, dW1, db1, R, x, W, &g, B, ws); }
    /* sums of up to a few thousand products of N(0,1) numbers: 1e-4 max(1, |value|) */
    e = worst(o1, o2, no);
    if (worst(dx1, dx2, nx) > e) e = worst(dx1, dx2, nx);
    if (worst(dW1, dW2, nw) > e) e = worst(dW1, dW2, nw);
    if (worst(db1, db2, (size_t)Co) > e) e = worst(db1, db2, (size_t)Co);
    snprintf(name, sizeof name, "%s_vs_direct_loops_B%dC%dH%dW%dCo%dk%ds%dp%d", tr ? "convt" : "conv", B, C, H, Wd, Co, k, s, p);
    snprintf(msg, sizeof msg, "out, dx, dW, db: worst |a-b|/(1e-4 max(1,|b|)) %.3g", e);
    report(name, e <= 1.0, msg);
    free(x); free(W); free(b); free(R); free(o1); free(o2); free(dx1); free(dx2);
    free(dW1); free(dW2); free(db1); free(db2); free(ws);
}

/* ---- a network keeps pictures (H, W, C) inside; it must compute what the (C, H, W) layers
   compute one after the other, forward and backward, where the two orders meet anywhere ---- */
static void test_net_layouts(const char *spec, int c, int h, int w, int B) {
    heph_net net;
    char err[256], name[160], msg[200];
    float *params, *grads, *grads2, *x, *dout, *dinp, *acts[HEPH_MAX_LAYERS + 1], *gbuf[2];
    const float *y;
    heph_rng r;
    size_t i, maxn = (size_t)c * h * w, wsn = 0;
    int l, rc;
    double e = 0.0;
    rc = heph_net_init(&net, spec, c, h, w, B, err, sizeof err);
    snprintf(name, sizeof name, "net_layouts_match_layers_%s", spec);
    if (rc != HEPH_OK) { report(name, 0, err); return; }
    params = (float *)malloc(net.n_params * 4 + 4);
    grads = (float *)malloc(net.n_params * 4 + 4); grads2 = (float *)calloc(net.n_params + 1, 4);
    for (i = 0; i < net.n_params; i++) grads[i] = NAN; /* the backward must write every one */
    heph_rng_seed(&r, 17);
    for (i = 0; i < net.n_params; i++) params[i] = 0.5f * heph_rng_normal(&r);
    x = (float *)malloc(maxn * B * 4); dinp = (float *)malloc(maxn * B * 4);
    for (i = 0; i < maxn * B; i++) x[i] = heph_rng_normal(&r);
    dout = (float *)malloc((size_t)net.out_n * B * 4);
    for (i = 0; i < (size_t)net.out_n * B; i++) dout[i] = heph_rng_normal(&r);
    heph_net_bind(&net, params, grads);
    y = heph_net_forward(&net, x, B);
    heph_net_backward(&net, dout, B, dinp);
    /* the same, layer by layer, through the public (C, H, W) functions */
    for (l = 0; l < net.n_layers; l++) {
        heph_layer *L = &net.layers[l];
        size_t on = (size_t)L->out_c * L->out_h * L->out_w;
        heph_conv_geom g;
        if (on > maxn) maxn = on;
        if (L->kind == HEPH_DENSE) { size_t t = heph_dense_ws_floats(B, L->in_c * L->in_h * L->in_w, L->out_c); if (t > wsn) wsn = t; }
        if (L->kind == HEPH_CONV || L->kind == HEPH_CONVT) {
            size_t t;
            heph__layer_geom(L, &g);
            t = L->kind == HEPH_CONV ? heph_conv2d_ws_floats(&g, B) : heph_convt2d_ws_floats(&g, B);
            if (t > wsn) wsn = t;
        }
    }
    {
        float *ws = (float *)malloc(wsn * 4 + 4);
        const float *in = x;
        gbuf[0] = (float *)malloc(maxn * B * 4); gbuf[1] = (float *)malloc(maxn * B * 4);
        for (l = 0; l < net.n_layers; l++) {
            heph_layer *L = &net.layers[l];
            size_t n = (size_t)L->out_c * L->out_h * L->out_w * B;
            heph_conv_geom g;
            acts[l] = (float *)malloc(n * 4 + 4);
            heph__layer_geom(L, &g);
            switch (L->kind) {
            case HEPH_DENSE: heph_dense_forward(acts[l], in, params + L->w_off, params + L->b_off, B, L->in_c * L->in_h * L->in_w, L->out_c, ws); break;
            case HEPH_CONV: heph_conv2d_forward(acts[l], in, params + L->w_off, params + L->b_off, &g, B, ws); break;
            case HEPH_CONVT: heph_convt2d_forward(acts[l], in, params + L->w_off, params + L->b_off, &g, B, ws); break;
            case HEPH_TANH: heph_tanh_forward(acts[l], in, n); break;
            case HEPH_RELU: heph_relu_forward(acts[l], in, n); break;
            default: memcpy(acts[l], in, n * 4); /* flatten, reshape: (C, H, W) order is kept */
            }
            in = acts[l];
        }
        e = worst(y, in, (size_t)net.out_n * B);
        {
            const float *gin = dout;
            int cur = 0;
            for (l = net.n_layers - 1; l >= 0; l--) {
                heph_layer *L = &net.layers[l];
                const float *li = l ? acts[l - 1] : x;
                size_t n = (size_t)L->out_c * L->out_h * L->out_w * B;
                float *d = gbuf[cur];
                heph_conv_geom g;
                heph__layer_geom(L, &g);
                switch (L->kind) {
                case HEPH_DENSE: heph_dense_backward(d, grads2 + L->w_off, grads2 + L->b_off, gin, li, params + L->w_off, B, L->in_c * L->in_h * L->in_w, L->out_c, ws); break;
                case HEPH_CONV: heph_conv2d_backward(d, grads2 + L->w_off, grads2 + L->b_off, gin, li, params + L->w_off, &g, B, ws); break;
                case HEPH_CONVT: heph_convt2d_backward(d, grads2 + L->w_off, grads2 + L->b_off, gin, li, params + L->w_off, &g, B, ws); break;
                case HEPH_TANH: heph_tanh_backward(d, gin, acts[l], n); break;
                case HEPH_RELU: heph_relu_backward(d, gin, acts[l], n); break;
                default: memcpy(d, gin, n * 4);
                }
                gin = d; cur ^= 1;
            }
            if (worst(dinp, gin, (size_t)c * h * w * B) > e) e = worst(dinp, gin, (size_t)c * h * w * B);
            if (worst(grads, grads2, net.n_params) > e) e = worst(grads, grads2, net.n_params);
        }
        for (l = 0; l < net.n_layers; l++) free(acts[l]);
        free(ws); free(gbuf[0]); free(gbuf[1]);
    }
    snprintf(msg, sizeof msg, "output, input gradient, parameter gradients: worst |a-b|/(1e-4 max(1,|b|)) %.3g", e);
    report(name, e <= 1.0, msg);
    free(params); free(grads); free(grads2); free(x); free(dout); free(dinp);
    heph_net_free(&net);
}

/* a dense layer against direct loops in double, forward and backward, with shapes on both
   sides of the rule that takes the forward product transposed (few rows, many outputs)   */
static void test_dense_vs_direct(int B, int I, int O, int relu_mask) {
    size_t nx = (size_t)B * I, ny = (size_t)B * O, nw = (size_t)I * O, i;
    float *x = (float *)calloc(nx, 4), *W = (float *)calloc(nw, 4), *b = (float *)calloc((size_t)O, 4);
    float *y = (float *)calloc(ny, 4), *dy = (float *)calloc(ny, 4), *dx = (float *)calloc(nx, 4);
    float *dW = (float *)calloc(nw, 4), *db = (float *)calloc((size_t)O, 4);
    float *ws = (float *)calloc(heph_dense_ws_floats(B, I, O) + 1, 4);
    double werr = 0.0;
    int r, o, k, bad = 0;
    char msg[200], name[64];
    heph_rng g;
    heph_rng_seed(&g, (uint64_t)(B * 1000003 + I * 1009 + O));
    for (i = 0; i < nx; i++) x[i] = relu_mask && heph_rng_uniform(&g) < 0.3f ? 0.0f : heph_rng_normal(&g);
    for (i = 0; i < nw; i++) W[i] = heph_rng_normal(&g);
    for (i = 0; i < (size_t)O; i++) b[i] = heph_rng_normal(&g);
    for (i = 0; i < ny; i++) dy[i] = heph_rng_normal(&g);
    heph__dense_forward(y, x, W, b, B, I, O, ws, relu_mask);
    heph__dense_backward(dx, dW, db, dy, x, W, B, I, O, ws, relu_mask, 1);
    for (r = 0; r < B; r++) /* y = x W^T + b (then ReLU) */
        for (o = 0; o < O; o++) {
            double sum = (double)b[o], mag = fabs((double)b[o]), e;
            for (k = 0; k < I; k++) {
                sum += (double)x[(size_t)r * I + k] * (double)W[(size_t)o * I + k];
                mag += fabs((double)x[(size_t)r * I + k] * (double)W[(size_t)o * I + k]);
            }
            if (relu_mask && sum < 0.0) sum = 0.0;
            e = fabs((double)y[(size_t)r * O + o] - sum) / (1e-6 * (mag + 1e-30) * (I + 1));
            if (e > werr) werr = e;
            if (!(e <= 1.0)) bad++;
        }
    for (r = 0; r < B; r++) /* dx = dy W (masked by x > 0) */
        for (k = 0; k < I; k++) {
            double sum = 0.0, mag = 0.0, e;
            for (o = 0; o < O; o++) {
                sum += (double)dy[(size_t)r * O + o] * (double)W[(size_t)o * I + k];
                mag += fabs((double)dy[(size_t)r * O + o] * (double)W[(size_t)o * I + k]);
            }
            if (relu_mask && !(x[(size_t)r * I + k] > 0.0f)) sum = 0.0;
            e = fabs((double)dx[(size_t)r * I + k] - sum) / (1e-6 * (mag + 1e-30) * (O + 1));
            if (e > werr) werr = e;
            if (!(e <= 1.0)) bad++;
        }
    for (o = 0; o < O; o++) { /* dW = dy^T x, db = column sums of dy */
        double sb = 0.0, mb = 0.0, e;
        for (k = 0; k < I; k++) {
            double sum = 0.0, mag = 0.0;
            for (r = 0; r < B; r++) {
                sum += (double)dy[(size_t)r * O + o] * (double)x[(size_t)r * I + k];
                mag += fabs((double)dy[(size_t)r * O + o] * (double)x[(size_t)r * I + k]);
            }
            e = fabs((double)dW[(size_t)o * I + k] - sum) / (1e-6 * (mag + 1e-30) * (B + 1));
            if (e > werr) werr = e;
            if (!(e <= 1.0)) bad++;
        }
        for (r = 0; r < B; r++) { sb += (double)dy[(size_t)r * O + o]; mb += fabs((double)dy[(size_t)r * O + o]); }
        e = fabs((double)db[o] - sb) / (1e-6 * (mb + 1e-30) * (B + 1));
        if (e > werr) werr = e;
        if (!(e <= 1.0)) bad++;
    }
    snprintf(name, sizeof name, "dense_vs_direct_B%d_I%d_O%d%s", B, I, O, relu_mask ? "_relu" : "");
    snprintf(msg, sizeof msg, "%s product; %d values off; worst error %.3g of the limit",
             heph__dense_transposed(B, I, O) ? "transposed" : "direct", bad, werr);
    report(name, bad == 0, msg);
    free(x); free(W); free(b); free(y); free(dy); free(dx); free(dW); free(db); free(ws);
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
    test_gemm_vs_reference();
    test_dense_vs_direct(3, 17, 63, 0);   /* O < 64: the direct product */
    test_dense_vs_direct(3, 65, 130, 1);  /* few rows, many outputs: transposed */
    test_dense_vs_direct(1, 300, 257, 0); /* transposed, K over two blocks */
    test_dense_vs_direct(200, 30, 70, 1); /* many rows: direct */
    test_conv_vs_direct(0, 3, 3, 17, 5, 7, 3, 2, 1);
    test_conv_vs_direct(0, 2, 1, 1, 1, 3, 1, 1, 0);
    test_conv_vs_direct(0, 1, 17, 9, 9, 3, 4, 2, 1);
    test_conv_vs_direct(0, 5, 2, 7, 3, 63, 1, 1, 0);
    test_conv_vs_direct(0, 9, 3, 16, 16, 4, 4, 2, 1); /* several chunks of images */
    test_conv_vs_direct(1, 3, 3, 5, 17, 7, 3, 2, 1);
    test_conv_vs_direct(1, 2, 1, 1, 1, 3, 1, 1, 0);
    test_conv_vs_direct(1, 1, 17, 4, 4, 3, 4, 2, 1);
    test_conv_vs_direct(1, 5, 63, 3, 2, 2, 2, 1, 0);
    test_conv_vs_direct(1, 9, 3, 8, 8, 4, 4, 2, 1);
    test_net_layouts("conv4k4s2p1,relu,conv5k3s2p1,relu,flatten,dense6", 3, 8, 8, 3);
    test_net_layouts("tanh,conv4k3s2p1,tanh,dense7,tanh", 3, 6, 6, 2);
    test_net_layouts("dense36,tanh,reshape4x3x3,convt3k4s2p1,tanh,convt2k3s1p1", 5, 1, 1, 3);
    test_net_layouts("conv3k3s1p1,reshape12x3x1,convt2k2s2p0,flatten,dense4", 2, 4, 3, 2);
    test_net_layouts("conv1k3s1p1,tanh,convt3k3s1p1", 2, 5, 5, 2);
    /* ReLUs computed by the layer before them, their gradients by the layer after */
    test_net_layouts("dense36,relu,reshape4x3x3,convt3k4s2p1,relu,convt2k3s1p1,relu", 5, 1, 1, 3);
    test_net_layouts("relu,conv3k3s1p1,relu,dense5,relu,dense4,relu,relu", 2, 5, 4, 3);
    return n_fail ? 1 : 0;
}
