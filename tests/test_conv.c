/* test_conv.c - convolution layers: PyTorch reference values (conv_ref.txt in the fixture
   folder, made by tools/make_conv_fixtures.py), finite-difference gradients, spec strings with
   convs, presets, a gradient check of a whole convolutional VAE, the optimised kernels against
   direct loops, and networks against their layers one by one.
   A test per case (per fixture case, per shape, per spec string), named as before the move to
   the harness: the case lists below (X-macros) make each case's function and its table entry
   from the same numbers. Harness and usage: tests/test_harness.h.                            */
#define HEPH__ROWS_FLOATS 2000 /* small chunks of images, so that the chunked paths run */
#include "test_harness.h"

/* ---- fixture reader ---- */
typedef struct { size_t n; float *v; } arr;
static int read_arr(FILE *f, const char *want, arr *a) {
    char name[32];
    size_t i;
    if (fscanf(f, "%31s %zu", name, &a->n) != 2 || strcmp(name, want) != 0) return 0;
    a->v = TALLOC(float, a->n + 1);
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

/* every case of the fixture is read (a malformed one fails the test); the case named want (if
   not NULL) is computed and compared; *cases counts the cases, *found says whether want was one */
static int conv_fixture_in(FILE *f, const char *want, int *cases, int *found) {
    char line[256], name[64], kind[16];
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
        CHECK(ok, "%s: fixture is malformed", name);
        (*cases)++;
        if (!want || strcmp(want, name) != 0) continue;
        *found = 1;
        if (!strcmp(kind, "dense")) wsn = heph_dense_ws_floats(B, C, Co);
        else if (!strcmp(kind, "conv")) { heph_conv2d_geom(&g, C, H, W, Co, k, s, p); wsn = heph_conv2d_ws_floats(&g, B); }
        else { heph_convt2d_geom(&g, C, H, W, Co, k, s, p); wsn = heph_convt2d_ws_floats(&g, B); }
        o = TALLOC(float, out.n);
        gx = TALLOC(float, x.n);
        gW = TALLOC(float, Wt.n);
        gb = TALLOC(float, b.n);
        ws = TALLOC(float, wsn + 1);
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
        CHECK(e1 <= 1.0 && e2 <= 1.0 && e3 <= 1.0 && e4 <= 1.0,
              "worst |a-b|/(1e-4 max(1,|b|)): out %.3g dx %.3g dW %.3g db %.3g", e1, e2, e3, e4);
    }
    return 1;
}
static int conv_fixture(const char *want, int *cases, int *found) {
    const char *path = tfixture("conv_ref.txt");
    FILE *f = fopen(path, "r");
    int ok;
    *cases = 0;
    *found = 0;
    CHECK(f != NULL, "cannot open %s", path);
    ok = conv_fixture_in(f, want, cases, found);
    fclose(f);
    return ok;
}

/* one case of the fixture, by its name there */
static int pytorch_case(const char *name) {
    int cases, found;
    REQUIRE(conv_fixture(name, &cases, &found));
    CHECK(found, "no case %s in %s", name, tfixture("conv_ref.txt"));
    return 1;
}
#define PYTORCH_CASES(X) \
    X(conv_k4s2p1) X(conv_k3s1p1_odd) X(conv_k5s3p2) X(conv_k1) \
    X(convt_k4s2p1) X(convt_k3s1p0_odd) X(convt_k5s3p2) X(dense_odd)
#define PYTORCH_FN(n) static int test_pytorch_##n(void) { return pytorch_case(#n); }
#define PYTORCH_ENTRY(n) {"pytorch_" #n, test_pytorch_##n},
PYTORCH_CASES(PYTORCH_FN)

static int test_pytorch_fixture_cases(void) {
    int cases, found;
    REQUIRE(conv_fixture(NULL, &cases, &found));
    CHECK(cases == 8, "expected 8 cases in the fixture");
    return 1;
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

static int conv_fd(int tr, int B, int C, int H, int Wd, int Co, int k, int s, int p) {
    heph_conv_geom g;
    heph_rng r;
    size_t nx, no, nw, i;
    float *x, *W, *b, *out, *R, *ws, *dx, *dW, *db;
    double maxe = 0.0;
    memset(&g, 0, sizeof g); /* (gcc -O3 cannot tell that the geometry functions set it) */
    if (tr) heph_convt2d_geom(&g, C, H, Wd, Co, k, s, p);
    else heph_conv2d_geom(&g, C, H, Wd, Co, k, s, p);
    nx = (size_t)B * C * H * Wd; no = (size_t)B * Co * g.Ho * g.Wo; nw = (size_t)C * Co * k * k;
    heph_rng_seed(&r, 3);
    x = TALLOC(float, nx); W = TALLOC(float, nw); b = TALLOC(float, Co);
    out = TALLOC(float, no); R = TALLOC(float, no);
    dx = TALLOC(float, nx); dW = TALLOC(float, nw); db = TALLOC(float, Co);
    ws = TALLOC(float, (tr ? heph_convt2d_ws_floats(&g, B) : heph_conv2d_ws_floats(&g, B)) + 1);
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
    CHECK(maxe < 2e-3, "worst relative error %.3g (limit 2e-3)", maxe);
    return 1;
}

/* a case list entry X(id, kind, B, C, H, W, Co, k, s, p) of a conv (kind conv) or a transposed
   conv (kind convt) names its test KIND_..._B#C#H#W#Co#k#s#p from the same numbers            */
#define TR_conv 0
#define TR_convt 1
#define SHAPE_NAME(kind, what, b, c, h, w, co, k, s, p) \
    #kind what "_B" #b "C" #c "H" #h "W" #w "Co" #co "k" #k "s" #s "p" #p
#define FD_CASES(X)                    \
    X(1, conv, 2, 3, 5, 6, 4, 3, 2, 1)  \
    X(2, conv, 1, 1, 1, 1, 1, 1, 1, 0)  \
    X(3, conv, 3, 2, 9, 7, 3, 4, 2, 1)  \
    X(4, convt, 2, 3, 5, 6, 4, 3, 2, 1) \
    X(5, convt, 1, 1, 1, 1, 1, 1, 1, 0) \
    X(6, convt, 2, 4, 3, 4, 2, 4, 2, 1)
#define FD_FN(id, kind, b, c, h, w, co, k, s, p) \
    static int test_fd_##id(void) { return conv_fd(TR_##kind, b, c, h, w, co, k, s, p); }
#define FD_ENTRY(id, kind, b, c, h, w, co, k, s, p) {SHAPE_NAME(kind, "_fd", b, c, h, w, co, k, s, p), test_fd_##id},
FD_CASES(FD_FN)

/* ---- spec strings with convs ---- */
static int test_spec_conv_shapes(void) {
    heph_layer L[HEPH_MAX_LAYERS];
    int n = 0, rc;
    char err[256] = "";
    rc = heph_spec_parse("conv32k4s2p1,relu,conv32k4s2p1,relu,flatten,dense256,relu", 1, 64, 64,
                         L, HEPH_MAX_LAYERS, &n, err, sizeof err);
    CHECK(rc == HEPH_OK && n == 7 && L[0].out_c == 32 && L[0].out_h == 32 &&
          L[2].out_h == 16 && L[4].out_c == 32 * 16 * 16 && L[5].out_c == 256 &&
          L[0].n_params == 32 * 16 + 32 && L[2].n_params == 32 * 32 * 16 + 32, "%s", err);
    return 1;
}
static int test_spec_convt_shapes(void) {
    heph_layer L[HEPH_MAX_LAYERS];
    int n = 0, rc;
    char err[256] = "";
    rc = heph_spec_parse("reshape32x4x4,convt32k4s2p1,relu,convt1k4s2p1", 512, 1, 1, L,
                         HEPH_MAX_LAYERS, &n, err, sizeof err);
    CHECK(rc == HEPH_OK && n == 4 && L[1].out_h == 8 && L[3].out_c == 1 &&
          L[3].out_h == 16 && L[3].out_w == 16 && L[1].n_params == 32 * 32 * 16 + 32, "%s", err);
    return 1;
}
static int spec_rejects(const char *bad) {
    heph_layer L[HEPH_MAX_LAYERS];
    int n = 0, rc;
    char err[256] = "";
    rc = heph_spec_parse(bad, 1, 8, 8, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
    CHECK(rc == HEPH_E_SPEC && strstr(err, "token") != NULL, "%s", err[0] ? err : "accepted");
    return 1;
}
#define BAD_SPECS(X)                                                                          \
    X(1, "conv") X(2, "conv32") X(3, "conv32k") X(4, "conv0k4") X(5, "conv32k0")              \
    X(6, "conv32k4s0") X(7, "conv32k4s2p4") X(8, "conv32k4x") X(9, "conv32k99") X(10, "convt32") \
    X(11, "reshape") X(12, "reshape4x4") X(13, "reshape2x2x2") X(14, "conv32k80s2p1")          \
    X(15, "dense8,conv4k3")
#define BAD_FN(id, spec) static int test_spec_rejects_##id(void) { return spec_rejects(spec); }
#define BAD_ENTRY(id, spec) {"spec_conv_rejects_" spec, test_spec_rejects_##id},
BAD_SPECS(BAD_FN)

/* ---- presets: parameter counts as PyTorch counts them for the seed's models ---- */
static int preset_count(const char *name, size_t want) {
    heph_vae_config cfg;
    heph_vae m;
    char err[HEPH_ERRLEN];
    int rc;
    size_t got;
    heph_vae_config_preset(&cfg, name);
    cfg.max_batch = 2;
    rc = heph_vae_init(&m, &cfg, 1);
    snprintf(err, sizeof err, "%s", rc ? m.err : "");
    got = rc ? (size_t)0 : m.n_params;
    if (rc == HEPH_OK) heph_vae_free(&m);
    CHECK(rc == HEPH_OK && got == want, "rc %d (%s), %zu parameters, expected %zu", rc, err, got, want);
    return 1;
}
#define PRESETS(X)                                                                                          \
    /* enc convs 1->32 then 3x 32->32 (k4), 512->256->64->20; dec 10->64->256->512, 3x convt 32->32, 32->1 */ \
    X(1, "cnn-dsprites", (32 * 16 + 32) + 3 * (32 * 32 * 16 + 32) + (512 * 256 + 256) + (256 * 64 + 64) + (64 * 20 + 20) + \
                         (10 * 64 + 64) + (64 * 256 + 256) + (256 * 512 + 512) + 3 * (32 * 32 * 16 + 32) + (32 * 16 + 1)) \
    X(2, "cnn-dsprites-tc", (32 * 16 + 32) + 3 * (32 * 32 * 16 + 32) + (512 * 256 + 256) + (256 * 20 + 20) + \
                            (10 * 256 + 256) + (256 * 512 + 512) + 3 * (32 * 32 * 16 + 32) + (32 * 16 + 1)) \
    X(3, "cnn-shapes3d", (3 * 32 * 16 + 32) + (32 * 64 * 16 + 64) + (64 * 128 * 16 + 128) + (128 * 256 * 16 + 256) + \
                         (4096 * 256 + 256) + (256 * 24 + 24) + (12 * 256 + 256) + (256 * 4096 + 4096) + \
                         (256 * 128 * 16 + 128) + (128 * 64 * 16 + 64) + (64 * 32 * 16 + 32) + (32 * 3 * 16 + 3)) \
    X(4, "mlp-dsprites", (4096 * 1024 + 1024) + (1024 * 256 + 256) + (256 * 64 + 64) + (64 * 20 + 20) + \
                         (10 * 64 + 64) + (64 * 256 + 256) + (256 * 1024 + 1024) + (1024 * 4096 + 4096))
#define PRESET_FN(id, name, n) static int test_preset_##id(void) { return preset_count(name, (size_t)(n)); }
#define PRESET_ENTRY(id, name, n) {"preset_" name, test_preset_##id},
PRESETS(PRESET_FN)

/* ---- whole conv VAE: analytic gradient of the loss wrt every parameter ---- */
static int test_conv_vae_grad(void) {
    heph_vae_config cfg;
    heph_vae m;
    heph_rng r;
    float x[2 * 1 * 8 * 8], eps[2 * 3];
    size_t i, np;
    double maxe = 0.0;
    heph_losses L;
    int rc;
    float *g;
    heph_vae_config_default(&cfg);
    cfg.in_c = 1; cfg.in_h = 8; cfg.in_w = 8; cfg.z_dim = 3; cfg.max_batch = 2;
    strcpy(cfg.enc_spec, "conv3k4s2p1,tanh,conv4k3s2p1,tanh,flatten,dense5,tanh");
    strcpy(cfg.dec_spec, "dense16,tanh,reshape4x2x2,convt3k4s2p1,tanh,convt1k4s2p1");
    rc = heph_vae_init(&m, &cfg, 5);
    CHECK(rc == HEPH_OK, "%s", m.err);
    heph_rng_seed(&r, 9);
    for (i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = heph_rng_uniform(&r);
    for (i = 0; i < 6; i++) eps[i] = heph_rng_normal(&r);
    heph_vae_loss_grad(&m, x, 2, eps, &L);
    g = TALLOC(float, m.n_params);
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
    np = m.n_params;
    heph_vae_free(&m);
    CHECK(maxe < 2e-2, "%zu parameters, worst relative error %.3g (limit 2e-2)", np, maxe);
    return 1;
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

/* buffers malloc'ed and freed in the loop: 552 products are more than the harness's buffers */
static int test_gemm_vs_reference(void) {
    static const int sz[] = {1, 3, 17, 63};
    /* NR and KC edges; then enough panels for the threads to split them (K over 3 blocks, the
       last not a multiple of 16), and a tall product (row tiles outside)                  */
    static const int extra[][3] = {{7, 65, 300}, {64, 33, 257}, {13, 1, 513}, {37, 300, 700}, {301, 257, 40}};
    int cases = 0, bad = 0, t;
    double worst_ratio = 0.0;
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
            CHECK(A && B && C1 && C2 && D && S && ws, "out of memory");
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
    CHECK(bad == 0 && cases == 69 * 8,
          "%d products (M, N, K in 1, 3, 17, 63 and NR/KC edges; every transpose "
          "and accumulate), %d elements off; worst error %.3g of the limit", cases, bad, worst_ratio);
    return 1;
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

static int conv_vs_direct(int tr, int B, int C, int H, int Wd, int Co, int k, int s, int p) {
    heph_conv_geom g;
    heph_rng r;
    size_t nx, no, nw, i;
    float *x, *W, *b, *R, *ws, *o1, *o2, *dx1, *dx2, *dW1, *dW2, *db1, *db2;
    double e = 0.0;
    memset(&g, 0, sizeof g); /* (gcc -O3 cannot tell that the geometry functions set it) */
    if (tr) heph_convt2d_geom(&g, C, H, Wd, Co, k, s, p);
    else heph_conv2d_geom(&g, C, H, Wd, Co, k, s, p);
    nx = (size_t)B * C * H * Wd; no = (size_t)B * Co * g.Ho * g.Wo; nw = (size_t)C * Co * k * k;
    heph_rng_seed(&r, 5);
    x = TALLOC(float, nx); W = TALLOC(float, nw); b = TALLOC(float, Co);
    R = TALLOC(float, no); o1 = TALLOC(float, no); o2 = TALLOC(float, no);
    dx1 = TALLOC(float, nx); dx2 = TALLOC(float, nx); dW1 = TALLOC(float, nw);
    dW2 = TALLOC(float, nw); db1 = TALLOC(float, Co); db2 = TALLOC(float, Co);
    ws = TALLOC(float, (tr ? heph_convt2d_ws_floats(&g, B) : heph_conv2d_ws_floats(&g, B)) + 1);
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
    CHECK(e <= 1.0, "out, dx, dW, db: worst |a-b|/(1e-4 max(1,|b|)) %.3g", e);
    return 1;
}
#define DIRECT_CASES(X)                       \
    X(1, conv, 3, 3, 17, 5, 7, 3, 2, 1)       \
    X(2, conv, 2, 1, 1, 1, 3, 1, 1, 0)        \
    X(3, conv, 1, 17, 9, 9, 3, 4, 2, 1)       \
    X(4, conv, 5, 2, 7, 3, 63, 1, 1, 0)       \
    X(5, conv, 9, 3, 16, 16, 4, 4, 2, 1) /* several chunks of images */ \
    X(6, convt, 3, 3, 5, 17, 7, 3, 2, 1)      \
    X(7, convt, 2, 1, 1, 1, 3, 1, 1, 0)       \
    X(8, convt, 1, 17, 4, 4, 3, 4, 2, 1)      \
    X(9, convt, 5, 63, 3, 2, 2, 2, 1, 0)      \
    X(10, convt, 9, 3, 8, 8, 4, 4, 2, 1)
#define DIRECT_FN(id, kind, b, c, h, w, co, k, s, p) \
    static int test_vs_direct_##id(void) { return conv_vs_direct(TR_##kind, b, c, h, w, co, k, s, p); }
#define DIRECT_ENTRY(id, kind, b, c, h, w, co, k, s, p) \
    {SHAPE_NAME(kind, "_vs_direct_loops", b, c, h, w, co, k, s, p), test_vs_direct_##id},
DIRECT_CASES(DIRECT_FN)

/* ---- a network keeps pictures (H, W, C) inside; it must compute what the (C, H, W) layers
   compute one after the other, forward and backward, where the two orders meet anywhere ---- */
static int net_layouts(const char *spec, int c, int h, int w, int B) {
    heph_net net;
    char err[256];
    float *params, *grads, *grads2, *x, *dout, *dinp, *acts[HEPH_MAX_LAYERS + 1], *gbuf[2];
    const float *y;
    heph_rng r;
    size_t i, maxn = (size_t)c * h * w, wsn = 0;
    int l, rc;
    double e = 0.0;
    rc = heph_net_init(&net, spec, c, h, w, B, err, sizeof err);
    CHECK(rc == HEPH_OK, "%s", err);
    params = TALLOC(float, net.n_params + 1);
    grads = TALLOC(float, net.n_params + 1); grads2 = TALLOC(float, net.n_params + 1);
    for (i = 0; i < net.n_params; i++) grads[i] = NAN; /* the backward must write every one */
    heph_rng_seed(&r, 17);
    for (i = 0; i < net.n_params; i++) params[i] = 0.5f * heph_rng_normal(&r);
    x = TALLOC(float, maxn * B); dinp = TALLOC(float, maxn * B);
    for (i = 0; i < maxn * B; i++) x[i] = heph_rng_normal(&r);
    dout = TALLOC(float, (size_t)net.out_n * B);
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
        float *ws = TALLOC(float, wsn + 1);
        const float *in = x;
        gbuf[0] = TALLOC(float, maxn * B); gbuf[1] = TALLOC(float, maxn * B);
        for (l = 0; l < net.n_layers; l++) {
            heph_layer *L = &net.layers[l];
            size_t n = (size_t)L->out_c * L->out_h * L->out_w * B;
            heph_conv_geom g;
            acts[l] = TALLOC(float, n + 1);
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
    }
    heph_net_free(&net);
    CHECK(e <= 1.0, "output, input gradient, parameter gradients: worst |a-b|/(1e-4 max(1,|b|)) %.3g", e);
    return 1;
}
#define LAYOUT_CASES(X)                                                                        \
    X(1, "conv4k4s2p1,relu,conv5k3s2p1,relu,flatten,dense6", 3, 8, 8, 3)                       \
    X(2, "tanh,conv4k3s2p1,tanh,dense7,tanh", 3, 6, 6, 2)                                       \
    X(3, "dense36,tanh,reshape4x3x3,convt3k4s2p1,tanh,convt2k3s1p1", 5, 1, 1, 3)                \
    X(4, "conv3k3s1p1,reshape12x3x1,convt2k2s2p0,flatten,dense4", 2, 4, 3, 2)                   \
    X(5, "conv1k3s1p1,tanh,convt3k3s1p1", 2, 5, 5, 2)                                           \
    /* ReLUs computed by the layer before them, their gradients by the layer after */          \
    X(6, "dense36,relu,reshape4x3x3,convt3k4s2p1,relu,convt2k3s1p1,relu", 5, 1, 1, 3)           \
    X(7, "relu,conv3k3s1p1,relu,dense5,relu,dense4,relu,relu", 2, 5, 4, 3)
#define LAYOUT_FN(id, spec, c, h, w, b) static int test_layouts_##id(void) { return net_layouts(spec, c, h, w, b); }
#define LAYOUT_ENTRY(id, spec, c, h, w, b) {"net_layouts_match_layers_" spec, test_layouts_##id},
LAYOUT_CASES(LAYOUT_FN)

/* a dense layer against direct loops in double, forward and backward, with shapes on both
   sides of the rule that takes the forward product transposed (few rows, many outputs)   */
static int dense_vs_direct(int B, int I, int O, int relu_mask) {
    size_t nx = (size_t)B * I, ny = (size_t)B * O, nw = (size_t)I * O, i;
    float *x = TALLOC(float, nx), *W = TALLOC(float, nw), *b = TALLOC(float, O);
    float *y = TALLOC(float, ny), *dy = TALLOC(float, ny), *dx = TALLOC(float, nx);
    float *dW = TALLOC(float, nw), *db = TALLOC(float, O);
    float *ws = TALLOC(float, heph_dense_ws_floats(B, I, O) + 1);
    double werr = 0.0;
    int r, o, k, bad = 0;
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
    CHECK(bad == 0, "%s product; %d values off; worst error %.3g of the limit",
          heph__dense_transposed(B, I, O) ? "transposed" : "direct", bad, werr);
    return 1;
}
#define DENSE_CASES(X)                                                       \
    X(1, 3, 17, 63, 0, "")      /* O < 64: the direct product */             \
    X(2, 3, 65, 130, 1, "_relu") /* few rows, many outputs: transposed */    \
    X(3, 1, 300, 257, 0, "")    /* transposed, K over two blocks */          \
    X(4, 200, 30, 70, 1, "_relu") /* many rows: direct */
#define DENSE_FN(id, b, i, o, relu, sfx) static int test_dense_##id(void) { return dense_vs_direct(b, i, o, relu); }
#define DENSE_ENTRY(id, b, i, o, relu, sfx) {"dense_vs_direct_B" #b "_I" #i "_O" #o sfx, test_dense_##id},
DENSE_CASES(DENSE_FN)

/* in the order of the program before the harness */
static const t_test tests[] = {
    PYTORCH_CASES(PYTORCH_ENTRY)
    {"pytorch_fixture_cases", test_pytorch_fixture_cases},
    FD_CASES(FD_ENTRY)
    {"spec_conv_shapes", test_spec_conv_shapes},
    {"spec_convt_shapes", test_spec_convt_shapes},
    BAD_SPECS(BAD_ENTRY)
    PRESETS(PRESET_ENTRY)
    {"conv_vae_grad_all_params", test_conv_vae_grad},
    {"gemm_vs_reference_odd_sizes", test_gemm_vs_reference},
    DENSE_CASES(DENSE_ENTRY)
    DIRECT_CASES(DIRECT_ENTRY)
    LAYOUT_CASES(LAYOUT_ENTRY)
};
T_MAIN(tests)
