/* test_layers.c - the layers and the arithmetic under them: finite-difference gradient checks
   (dense layer, activations, reconstruction losses, KL and reparameterisation, the whole VAE
   loss against every parameter), the GEMM-based dense layer against naive loops in double,
   Adam against values computed here in double, and the RNG against PCG32's reference stream.
   Tests that draw test data seed it themselves (tseed), so that their numbers do not depend on
   their place in the table. Harness and usage: tests/test_harness.h. */
#include "test_harness.h"

/* ============================================================================================ */
/* dense layer                                                                                   */

typedef struct {
    float *x, *W, *b, *R, *out, *ws;
    int B, I, O;
} dense_ctx;

/* L = sum_{b,o} R[b][o] * out[b][o] */
static double dense_loss(void *p) {
    dense_ctx *c = (dense_ctx *)p;
    size_t k, n = (size_t)c->B * (size_t)c->O;
    double s = 0.0;
    heph_dense_forward(c->out, c->x, c->W, c->b, c->B, c->I, c->O, c->ws);
    for (k = 0; k < n; k++) s += (double)c->out[k] * (double)c->R[k];
    return s;
}

static int dense_gradcheck(int B, int I, int O) {
    dense_ctx c;
    size_t nx = (size_t)B * (size_t)I, nw = (size_t)O * (size_t)I, i;
    float *dx, *dW, *db, *dW0, *db0, *gW, *gb;
    char what[64];
    c.B = B; c.I = I; c.O = O;
    c.x = TALLOC(float, nx); c.W = TALLOC(float, nw); c.b = TALLOC(float, O);
    c.R = TALLOC(float, (size_t)B * (size_t)O); c.out = TALLOC(float, (size_t)B * (size_t)O);
    c.ws = TALLOC(float, heph_dense_ws_floats(B, I, O));
    dx = TALLOC(float, nx); dW = TALLOC(float, nw); db = TALLOC(float, O);
    dW0 = TALLOC(float, nw); db0 = TALLOC(float, O); gW = TALLOC(float, nw); gb = TALLOC(float, O);
    tfill(c.x, nx, -1.0f, 1.0f); tfill(c.W, nw, -1.0f, 1.0f); tfill(c.b, (size_t)O, -1.0f, 1.0f);
    tfill(c.R, (size_t)B * (size_t)O, -1.0f, 1.0f);
    /* backward ADDS into dW, db (prefilled) and overwrites dinp (prefilled with junk) */
    tfill(dW0, nw, -0.5f, 0.5f); tfill(db0, (size_t)O, -0.5f, 0.5f);
    memcpy(dW, dW0, nw * sizeof(float)); memcpy(db, db0, (size_t)O * sizeof(float));
    for (i = 0; i < nx; i++) dx[i] = 1234.5f;
    heph_dense_backward(dx, dW, db, c.R, c.x, c.W, B, I, O, c.ws);
    for (i = 0; i < nw; i++) gW[i] = dW[i] - dW0[i];
    for (i = 0; i < (size_t)O; i++) gb[i] = db[i] - db0[i];
    /* L is linear in each value: a large step is exact up to float rounding of L */
    snprintf(what, sizeof what, "dense %dx%dx%d dinp", B, I, O);
    REQUIRE(gradcheck(what, dense_loss, &c, c.x, dx, nx, 0.25f, 2e-5, 2e-5));
    snprintf(what, sizeof what, "dense %dx%dx%d dW", B, I, O);
    REQUIRE(gradcheck(what, dense_loss, &c, c.W, gW, nw, 0.25f, 2e-5, 2e-5));
    snprintf(what, sizeof what, "dense %dx%dx%d db", B, I, O);
    REQUIRE(gradcheck(what, dense_loss, &c, c.b, gb, (size_t)O, 0.25f, 2e-5, 2e-5));
    /* dinp may be NULL: the parameter gradients are the same */
    memcpy(dW, dW0, nw * sizeof(float)); memcpy(db, db0, (size_t)O * sizeof(float));
    heph_dense_backward(NULL, dW, db, c.R, c.x, c.W, B, I, O, c.ws);
    for (i = 0; i < nw; i++) CHECK(t_f32(dW[i] - dW0[i]) == gW[i], "dinp=NULL changed dW[%zu]", i);
    for (i = 0; i < (size_t)O; i++) CHECK(t_f32(db[i] - db0[i]) == gb[i], "dinp=NULL changed db[%zu]", i);
    return 1;
}

static int test_dense_gradcheck(void) {
    tseed(1001);
    REQUIRE(dense_gradcheck(3, 5, 7));
    REQUIRE(dense_gradcheck(1, 1, 1));
    REQUIRE(dense_gradcheck(4, 17, 63));
    REQUIRE(dense_gradcheck(7, 63, 17));
    return 1;
}

/* GEMM-based dense layer against a naive triple loop in double. Each result is a sum of
   products; float rounding bounds its error by about K * 2^-24 * sum |products|, so the check
   is relative to that scale: |got - ref| <= 1e-5 * sum |products| (+ 1e-30).                */
static int dense_vs_naive(int B, int I, int O) {
    size_t nx = (size_t)B * (size_t)I, nw = (size_t)O * (size_t)I, ny = (size_t)B * (size_t)O;
    float *x = TALLOC(float, nx), *W = TALLOC(float, nw), *b = TALLOC(float, O);
    float *y = TALLOC(float, ny), *dy = TALLOC(float, ny), *dx = TALLOC(float, nx);
    float *dW = TALLOC(float, nw), *db = TALLOC(float, O), *dW0 = TALLOC(float, nw), *db0 = TALLOC(float, O);
    float *ws = TALLOC(float, heph_dense_ws_floats(B, I, O));
    int r, i, o;
    tfill(x, nx, -1.0f, 1.0f); tfill(W, nw, -1.0f, 1.0f); tfill(b, (size_t)O, -1.0f, 1.0f);
    tfill(dy, ny, -1.0f, 1.0f); tfill(dW0, nw, -1.0f, 1.0f); tfill(db0, (size_t)O, -1.0f, 1.0f);
    memcpy(dW, dW0, nw * sizeof(float)); memcpy(db, db0, (size_t)O * sizeof(float));
    for (i = 0; i < (int)nx; i++) dx[i] = -77.0f;
    heph_dense_forward(y, x, W, b, B, I, O, ws);
    heph_dense_backward(dx, dW, db, dy, x, W, B, I, O, ws);
    for (r = 0; r < B; r++) /* y[r][o] = b[o] + sum_i x[r][i] W[o][i] */
        for (o = 0; o < O; o++) {
            double s = (double)b[o], a = fabs((double)b[o]);
            for (i = 0; i < I; i++) {
                double t = (double)x[(size_t)r * I + i] * (double)W[(size_t)o * I + i];
                s += t; a += fabs(t);
            }
            CHECK(fabs((double)y[(size_t)r * O + o] - s) <= 1e-5 * a + 1e-30,
                  "%dx%dx%d forward y[%d][%d] = %.9g, naive %.9g", B, I, O, r, o,
                  (double)y[(size_t)r * O + o], s);
        }
    for (r = 0; r < B; r++) /* dx[r][i] = sum_o dy[r][o] W[o][i] */
        for (i = 0; i < I; i++) {
            double s = 0.0, a = 0.0;
            for (o = 0; o < O; o++) {
                double t = (double)dy[(size_t)r * O + o] * (double)W[(size_t)o * I + i];
                s += t; a += fabs(t);
            }
            CHECK(fabs((double)dx[(size_t)r * I + i] - s) <= 1e-5 * a + 1e-30,
                  "%dx%dx%d dinp[%d][%d] = %.9g, naive %.9g", B, I, O, r, i,
                  (double)dx[(size_t)r * I + i], s);
        }
    for (o = 0; o < O; o++) { /* dW[o][i] = dW0 + sum_r dy[r][o] x[r][i];  db[o] = db0 + sum_r dy */
        double sb = (double)db0[o], ab = fabs((double)db0[o]);
        for (i = 0; i < I; i++) {
            double s = (double)dW0[(size_t)o * I + i], a = fabs(s);
            for (r = 0; r < B; r++) {
                double t = (double)dy[(size_t)r * O + o] * (double)x[(size_t)r * I + i];
                s += t; a += fabs(t);
            }
            CHECK(fabs((double)dW[(size_t)o * I + i] - s) <= 1e-5 * a + 1e-30,
                  "%dx%dx%d dW[%d][%d] = %.9g, naive %.9g", B, I, O, o, i,
                  (double)dW[(size_t)o * I + i], s);
        }
        for (r = 0; r < B; r++) {
            sb += (double)dy[(size_t)r * O + o];
            ab += fabs((double)dy[(size_t)r * O + o]);
        }
        CHECK(fabs((double)db[o] - sb) <= 1e-5 * ab + 1e-30, "%dx%dx%d db[%d] = %.9g, naive %.9g",
              B, I, O, o, (double)db[o], sb);
    }
    return 1;
}

static int test_dense_vs_naive(void) {
    static const int sizes[][3] = {{1, 1, 1},    {1, 3, 17},   {3, 17, 63},  {17, 130, 3},
                                   {63, 3, 130}, {130, 63, 17}, {130, 130, 130}, {17, 1, 63},
                                   {63, 130, 1}, {3, 63, 130}};
    size_t k;
    tseed(1002);
    for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        REQUIRE(dense_vs_naive(sizes[k][0], sizes[k][1], sizes[k][2]));
    return 1;
}

/* ============================================================================================ */
/* activations                                                                                   */

enum { ACT_RELU, ACT_LRELU, ACT_SIGMOID, ACT_TANH };
typedef struct {
    int kind;
    float slope, *x, *y, *R;
    size_t n;
} act_ctx;

static void act_forward(act_ctx *c) {
    switch (c->kind) {
    case ACT_RELU: heph_relu_forward(c->y, c->x, c->n); break;
    case ACT_LRELU: heph_lrelu_forward(c->y, c->x, c->n, c->slope); break;
    case ACT_SIGMOID: heph_sigmoid_forward(c->y, c->x, c->n); break;
    default: heph_tanh_forward(c->y, c->x, c->n); break;
    }
}
static double act_loss(void *p) {
    act_ctx *c = (act_ctx *)p;
    size_t i;
    double s = 0.0;
    act_forward(c);
    for (i = 0; i < c->n; i++) s += (double)c->y[i] * (double)c->R[i];
    return s;
}

static int act_check(int kind, const char *name, float slope) {
    act_ctx c;
    size_t i, n = 64;
    float *dx = TALLOC(float, n);
    c.kind = kind; c.slope = slope; c.n = n;
    c.x = TALLOC(float, n); c.y = TALLOC(float, n); c.R = TALLOC(float, n);
    tfill_away(c.x, n, -4.0f, 4.0f, 0.05f);
    c.x[0] = 12.0f; c.x[1] = -12.0f; /* saturated sigmoid/tanh: derivative ~0 */
    tfill(c.R, n, -1.0f, 1.0f);
    act_forward(&c);
    /* forward against double libm */
    for (i = 0; i < n; i++) {
        double x = (double)c.x[i], ref;
        switch (kind) {
        case ACT_RELU: ref = x > 0.0 ? x : 0.0; break;
        case ACT_LRELU: ref = x > 0.0 ? x : (double)slope * x; break;
        case ACT_SIGMOID: ref = 1.0 / (1.0 + exp(-x)); break;
        default: ref = tanh(x); break;
        }
        CHECK(t_close((double)c.y[i], ref, 1e-7, 1e-6), "%s(%g) = %.9g, expected %.9g", name, x,
              (double)c.y[i], ref);
    }
    switch (kind) {
    case ACT_RELU: heph_relu_backward(dx, c.R, c.y, n); break;
    case ACT_LRELU: heph_lrelu_backward(dx, c.R, c.y, n, slope); break;
    case ACT_SIGMOID: heph_sigmoid_backward(dx, c.R, c.y, n); break;
    default: heph_tanh_backward(dx, c.R, c.y, n); break;
    }
    /* step 1e-3 (kinks are >= 0.05 away); float rounding of y/h ~ 1e-4 relative */
    REQUIRE(gradcheck(name, act_loss, &c, c.x, dx, n, 1e-3f, 2e-4, 2e-3));
    return 1;
}

static int test_activations(void) {
    float in[4] = {-100.0f, 100.0f, -1e30f, 0.0f}, out[4];
    tseed(1003);
    REQUIRE(act_check(ACT_RELU, "relu", 0.0f));
    REQUIRE(act_check(ACT_LRELU, "lrelu", 0.01f));
    REQUIRE(act_check(ACT_LRELU, "lrelu0.3", 0.3f));
    REQUIRE(act_check(ACT_SIGMOID, "sigmoid", 0.0f));
    REQUIRE(act_check(ACT_TANH, "tanh", 0.0f));
    /* sigmoid never overflows */
    heph_sigmoid_forward(out, in, 4);
    CHECK(out[0] >= 0.0f && out[0] < 1e-40f, "sigmoid(-100) = %g", (double)out[0]);
    CHECK(out[1] == 1.0f, "sigmoid(100) = %g", (double)out[1]);
    CHECK(out[2] == 0.0f, "sigmoid(-1e30) = %g", (double)out[2]);
    CHECK(out[3] == 0.5f, "sigmoid(0) = %g", (double)out[3]);
    return 1;
}

/* ============================================================================================ */
/* reconstruction losses, KL, reparameterisation                                                 */

typedef struct {
    float *a, *x, *mu, *lv, *eps, *z, *R;
    size_t n;
    int which; /* 0 bce, 1 sqerr, 2 kl, 3 reparam */
} loss_ctx;

static double loss_eval(void *p) {
    loss_ctx *c = (loss_ctx *)p;
    size_t i;
    double s = 0.0;
    switch (c->which) {
    case 0: return heph_bce_logits(NULL, c->a, c->x, c->n, 0.0f);
    case 1: return heph_sqerr_logits(NULL, c->a, c->x, c->n, 0.0f);
    case 2: return heph_kl_normal(NULL, NULL, c->mu, c->lv, c->n, 0.0f);
    default:
        heph_reparam_forward(c->z, c->mu, c->lv, c->eps, c->n);
        for (i = 0; i < c->n; i++) s += (double)c->z[i] * (double)c->R[i];
        return s;
    }
}

static int test_bce_sqerr(void) {
    loss_ctx c;
    size_t n = 40, i;
    float *d = TALLOC(float, n), *ds = TALLOC(float, n);
    double v, ref;
    const float scale = 0.7f;
    tseed(1004);
    memset(&c, 0, sizeof c);
    c.n = n;
    c.a = TALLOC(float, n); c.x = TALLOC(float, n);
    tfill(c.a, n, -6.0f, 6.0f);
    tfill(c.x, n, 0.0f, 1.0f);
    c.x[0] = 0.0f; c.x[1] = 1.0f; c.a[2] = 30.0f; c.x[2] = 1.0f; c.a[3] = -30.0f; c.x[3] = 1.0f;
    /* value against the double formula -[x log s + (1-x) log(1-s)] */
    v = heph_bce_logits(d, c.a, c.x, n, scale);
    ref = 0.0;
    for (i = 0; i < n; i++) {
        double a = (double)c.a[i], x = (double)c.x[i];
        ref += (a > 0 ? a : 0.0) - a * x + log1p(exp(-fabs(a)));
    }
    CHECK(t_close(v, ref, 1e-5, 1e-6), "bce sum %.9g, expected %.9g", v, ref);
    {   /* hand values: a=0 -> log 2 for any x; a=30,x=1 -> ~e^-30; a=-30,x=1 -> ~30 */
        float a1[3] = {0.0f, 30.0f, -30.0f}, x1[3] = {0.25f, 1.0f, 1.0f};
        double s0 = heph_bce_logits(NULL, a1, x1, 1, 1.0f);
        double s1 = heph_bce_logits(NULL, a1 + 1, x1 + 1, 1, 1.0f);
        double s2 = heph_bce_logits(NULL, a1 + 2, x1 + 2, 1, 1.0f);
        CHECK(t_close(s0, log(2.0), 1e-7, 1e-6), "bce(0, .25) = %.9g", s0);
        CHECK(s1 >= 0.0 && s1 < 1e-12, "bce(30, 1) = %.9g", s1);
        CHECK(t_close(s2, 30.0, 1e-5, 1e-6), "bce(-30, 1) = %.9g", s2);
    }
    for (i = 0; i < n; i++) ds[i] = d[i] / scale; /* dlogits carries the scale */
    c.which = 0;
    REQUIRE(gradcheck("bce dlogits", loss_eval, &c, c.a, ds, n, 1e-3f, 1e-4, 2e-3));
    /* squared error through a sigmoid */
    v = heph_sqerr_logits(d, c.a, c.x, n, scale);
    ref = 0.0;
    for (i = 0; i < n; i++) {
        double y = 1.0 / (1.0 + exp(-(double)c.a[i])) - (double)c.x[i];
        ref += y * y;
    }
    CHECK(t_close(v, ref, 1e-6, 1e-5), "sqerr sum %.9g, expected %.9g", v, ref);
    for (i = 0; i < n; i++) ds[i] = d[i] / scale;
    c.which = 1;
    REQUIRE(gradcheck("sqerr dlogits", loss_eval, &c, c.a, ds, n, 1e-3f, 1e-4, 2e-3));
    /* dlogits may be NULL */
    {   /* the value does not depend on dlogits (up to float contraction in native builds) */
        double v0 = heph_bce_logits(NULL, c.a, c.x, n, 1.0f), v1 = heph_bce_logits(d, c.a, c.x, n, 1.0f);
        CHECK(t_close(v0, v1, 1e-9, 1e-7), "bce value %.17g without dlogits, %.17g with", v0, v1);
    }
    return 1;
}

static int test_kl_reparam(void) {
    loss_ctx c;
    size_t n = 24, i;
    float *dmu = TALLOC(float, n), *dlv = TALLOC(float, n), *p0 = TALLOC(float, n),
          *p1 = TALLOC(float, n);
    const float scale = 1.5f;
    double v;
    tseed(1005);
    memset(&c, 0, sizeof c);
    c.n = n;
    c.mu = TALLOC(float, n); c.lv = TALLOC(float, n); c.eps = TALLOC(float, n);
    c.z = TALLOC(float, n); c.R = TALLOC(float, n);
    tfill(c.mu, n, -2.0f, 2.0f); tfill(c.lv, n, -3.0f, 2.0f);
    for (i = 0; i < n; i++) c.eps[i] = (float)tnormal();
    tfill(c.R, n, -1.0f, 1.0f);
    {   /* hand values: N(0,1) -> 0; mu=1 -> 1/2; lv = log 2 -> (1 - log 2)/2 */
        float m0[3] = {0.0f, 1.0f, 0.0f}, l0[3] = {0.0f, 0.0f, 0.69314718f};
        CHECK(heph_kl_normal(NULL, NULL, m0, l0, 1, 0.0f) == 0.0, "KL(N(0,1)) != 0");
        v = heph_kl_normal(NULL, NULL, m0 + 1, l0 + 1, 1, 0.0f);
        CHECK(t_close(v, 0.5, 1e-7, 1e-6), "KL(mu=1) = %.9g", v);
        v = heph_kl_normal(NULL, NULL, m0 + 2, l0 + 2, 1, 0.0f);
        CHECK(t_close(v, 0.5 * (1.0 - log(2.0)), 1e-7, 1e-5), "KL(lv=log 2) = %.9g", v);
        v = heph_kl_normal(NULL, NULL, m0, l0, 3, 0.0f);
        CHECK(t_close(v, 0.5 + 0.5 * (1.0 - log(2.0)), 1e-7, 1e-5), "KL sum = %.9g", v);
    }
    /* KL gradients accumulate (+=) scaled */
    tfill(p0, n, -1.0f, 1.0f); tfill(p1, n, -1.0f, 1.0f);
    memcpy(dmu, p0, n * sizeof(float)); memcpy(dlv, p1, n * sizeof(float));
    heph_kl_normal(dmu, dlv, c.mu, c.lv, n, scale);
    for (i = 0; i < n; i++) {
        dmu[i] = (dmu[i] - p0[i]) / scale;
        dlv[i] = (dlv[i] - p1[i]) / scale;
    }
    c.which = 2;
    REQUIRE(gradcheck("kl dmu", loss_eval, &c, c.mu, dmu, n, 1e-3f, 1e-4, 2e-3));
    REQUIRE(gradcheck("kl dlogvar", loss_eval, &c, c.lv, dlv, n, 1e-3f, 1e-4, 2e-3));
    /* reparameterisation with fixed eps: z = mu + exp(lv/2) eps, gradients accumulate */
    heph_reparam_forward(c.z, c.mu, c.lv, c.eps, n);
    for (i = 0; i < n; i++) {
        double ref = (double)c.mu[i] + exp(0.5 * (double)c.lv[i]) * (double)c.eps[i];
        CHECK(t_close((double)c.z[i], ref, 1e-6, 1e-5), "z[%zu] = %.9g, expected %.9g", i,
              (double)c.z[i], ref);
    }
    memcpy(dmu, p0, n * sizeof(float)); memcpy(dlv, p1, n * sizeof(float));
    heph_reparam_backward(dmu, dlv, c.R, c.lv, c.eps, n);
    for (i = 0; i < n; i++) {
        dmu[i] -= p0[i];
        dlv[i] -= p1[i];
    }
    c.which = 3;
    REQUIRE(gradcheck("reparam dmu", loss_eval, &c, c.mu, dmu, n, 1e-3f, 1e-4, 2e-3));
    REQUIRE(gradcheck("reparam dlogvar", loss_eval, &c, c.lv, dlv, n, 1e-3f, 1e-4, 2e-3));
    return 1;
}

/* ============================================================================================ */
/* the whole VAE loss against every parameter                                                    */

typedef struct {
    heph_vae *m;
    const float *x, *eps;
    int B;
} vae_ctx;

static double vae_loss(void *p) {
    vae_ctx *c = (vae_ctx *)p;
    heph_losses L;
    int rc = heph_vae_loss_grad(c->m, c->x, c->B, c->eps, &L);
    return rc == HEPH_OK ? L.loss : (double)NAN;
}

/* kind: 0 beta (beta), 1 gaussian, 2 capacity with KL < C, 3 capacity with KL > C mid-ramp */
static int vae_gradcheck(int kind, const char *name) {
    heph_vae_config cfg;
    heph_vae m;
    vae_ctx c;
    heph_losses L;
    const int B = 3, D = 3;
    size_t n_in = 16, i;
    float *x = TALLOC(float, B * n_in), *eps = TALLOC(float, B * D), *ga;
    int rc;
    memset(&L, 0, sizeof L); /* gcc -O2 inlines the library's loss here and cannot see that rc == HEPH_OK sets L */
    small_config(&cfg, 1, 4, 4, D, "dense6,tanh", "dense6,tanh,dense16", B);
    if (kind == 0) cfg.obj.beta = 2.5f;
    if (kind == 1) cfg.obj.recon = HEPH_RECON_GAUSSIAN;
    if (kind >= 2) {
        cfg.obj.kind = HEPH_OBJ_CAPACITY;
        cfg.obj.gamma = 3.0f;
        cfg.obj.gamma_end = kind == 3 ? 7.0f : 3.0f;
        cfg.obj.c_max = kind == 2 ? 25.0f : 0.02f;
        cfg.obj.ramp_steps = kind == 2 ? 0 : 10;
    }
    rc = heph_vae_init(&m, &cfg, 11);
    CHECK(rc == HEPH_OK, "%s: init: %s", name, m.err);
    if (kind == 3) m.step = 5; /* mid-ramp: C = c_max / 2, gamma = (3 + 7) / 2 */
    /* a larger initial scale so that tanh is well inside its non-linear range */
    for (i = 0; i < m.n_params; i++) m.params[i] *= 2.0f;
    tfill(x, B * n_in, 0.0f, 1.0f);
    for (i = 0; i < (size_t)(B * D); i++) eps[i] = (float)tnormal();
    rc = heph_vae_loss_grad(&m, x, B, eps, &L);
    CHECK(rc == HEPH_OK, "%s: loss_grad: %s", name, m.err);
    /* the terms add up, and the capacity check is away from the |KL - C| kink */
    CHECK(t_close(L.elbo, -(L.recon + L.kl), 1e-12, 1e-12), "%s: elbo != -(recon + kl)", name);
    if (kind == 0)
        CHECK(t_close(L.loss, L.recon + 2.5 * L.kl, 1e-9, 1e-9), "%s: loss %.9g != recon + 2.5 KL", name, L.loss);
    if (kind == 1)
        CHECK(t_close(L.loss, L.recon + L.kl, 1e-9, 1e-9), "%s: loss != recon + KL", name);
    if (kind == 2) {
        CHECK(L.c == 25.0 && L.gamma == 3.0, "%s: C %g gamma %g", name, L.c, L.gamma);
        CHECK(L.kl < L.c - 1.0, "%s: KL %.4g not below C %.4g", name, L.kl, L.c);
        CHECK(t_close(L.loss, L.recon + 3.0 * (L.c - L.kl), 1e-9, 1e-9), "%s: loss", name);
    }
    if (kind == 3) {
        CHECK(t_close(L.c, 0.01, 1e-7, 1e-6) && t_close(L.gamma, 5.0, 1e-9, 1e-9),
              "%s: mid-ramp C %g gamma %g (expected 0.01, 5)", name, L.c, L.gamma);
        CHECK(L.kl > L.c + 0.05, "%s: KL %.4g not above C %.4g", name, L.kl, L.c);
        CHECK(t_close(L.loss, L.recon + 5.0 * (L.kl - L.c), 1e-9, 1e-9), "%s: loss", name);
    }
    ga = TALLOC(float, m.n_params);
    memcpy(ga, m.grads, m.n_params * sizeof(float));
    c.m = &m; c.x = x; c.eps = eps; c.B = B;
    /* step 1e-2: truncation ~h^2 f'''/6 ~ 1e-5, rounding of the loss ~1e-6 / h ~ 1e-4 */
    if (!gradcheck(name, vae_loss, &c, m.params, ga, m.n_params, 1e-2f, 5e-4, 5e-3)) {
        heph_vae_free(&m);
        return 0;
    }
    heph_vae_free(&m);
    return 1;
}

static int test_vae_gradcheck(void) {
    tseed(1006);
    REQUIRE(vae_gradcheck(0, "vae bernoulli beta=2.5"));
    REQUIRE(vae_gradcheck(1, "vae gaussian"));
    REQUIRE(vae_gradcheck(2, "vae capacity KL<C"));
    REQUIRE(vae_gradcheck(3, "vae capacity KL>C mid-ramp"));
    return 1;
}

/* ============================================================================================ */
/* Adam against values computed here in double                                                   */

static int test_adam(void) {
    enum { N = 5 };
    float w[N] = {0.5f, -1.2f, 3.0f, 0.0f, 1e-3f}, m[N] = {0}, v[N] = {0};
    double wd[N], md[N] = {0}, vd[N] = {0};
    const float g[3][N] = {{0.1f, -2.0f, 0.0f, 1e-4f, 5.0f},
                           {-0.3f, -1.0f, 0.0f, 2e-4f, -5.0f},
                           {0.2f, 0.5f, 1.0f, -1e-4f, 4.0f}};
    const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, e = 1e-8f;
    int t, i;
    for (i = 0; i < N; i++) wd[i] = (double)w[i];
    for (t = 1; t <= 3; t++) {
        heph_adam_step(w, g[t - 1], m, v, N, lr, b1, b2, e, (uint64_t)t);
        for (i = 0; i < N; i++) {
            double gg = (double)g[t - 1][i];
            md[i] = (double)b1 * md[i] + (1.0 - (double)b1) * gg;
            vd[i] = (double)b2 * vd[i] + (1.0 - (double)b2) * gg * gg;
            wd[i] -= (double)lr * (md[i] / (1.0 - pow((double)b1, t))) /
                     (sqrt(vd[i] / (1.0 - pow((double)b2, t))) + (double)e);
            CHECK(t_close((double)m[i], md[i], 1e-12, 1e-5), "step %d m[%d] = %.9g, expected %.9g", t, i,
                  (double)m[i], md[i]);
            CHECK(t_close((double)v[i], vd[i], 1e-15, 1e-5), "step %d v[%d] = %.9g, expected %.9g", t, i,
                  (double)v[i], vd[i]);
            CHECK(t_close((double)w[i], wd[i], 1e-7, 1e-5), "step %d w[%d] = %.9g, expected %.9g", t, i,
                  (double)w[i], wd[i]);
        }
    }
    return 1;
}

/* ============================================================================================ */
/* RNG                                                                                            */

static int test_rng(void) {
    heph_rng a, b;
    int i, same = 0;
    uint32_t x0[64];
    /* PCG32 reference stream (pcg32-demo: initstate 42, initseq 54) through heph_rng_u32 */
    {
        static const uint32_t ref[6] = {0xa15c02b7u, 0x7b47f409u, 0xba1d3330u,
                                        0x83d2f293u, 0xbfa4784bu, 0xcbed606eu};
        a.state = 0; a.inc = (54u << 1) | 1u; a.has_spare = 0; a.spare = 0.0f;
        heph_rng_u32(&a);
        a.state += 42u;
        heph_rng_u32(&a);
        for (i = 0; i < 6; i++) {
            uint32_t u = heph_rng_u32(&a);
            CHECK(u == ref[i], "PCG32 output %d is 0x%08lx, reference 0x%08lx", i, (unsigned long)u,
                  (unsigned long)ref[i]);
        }
    }
    /* same seed, same sequence (including normals and the spare) */
    heph_rng_seed(&a, 12345);
    heph_rng_seed(&b, 12345);
    for (i = 0; i < 1000; i++) {
        float na = heph_rng_normal(&a), nb = heph_rng_normal(&b);
        uint32_t ua = heph_rng_u32(&a), ub = heph_rng_u32(&b);
        CHECK(ua == ub && memcmp(&na, &nb, sizeof na) == 0, "seed 12345 diverged at %d", i);
    }
    /* different seeds differ (0 vs 1, 1 vs 2, 1 vs 2^32+1) */
    {
        static const uint64_t pairs[3][2] = {{0, 1}, {1, 2}, {1, 0x100000001ull}};
        int p;
        for (p = 0; p < 3; p++) {
            heph_rng_seed(&a, pairs[p][0]);
            heph_rng_seed(&b, pairs[p][1]);
            same = 0;
            for (i = 0; i < 64; i++) {
                x0[i] = heph_rng_u32(&a);
                same += x0[i] == heph_rng_u32(&b);
            }
            CHECK(same <= 1, "seeds %llu and %llu give %d equal outputs of 64",
                  (unsigned long long)pairs[p][0], (unsigned long long)pairs[p][1], same);
        }
    }
    /* uniform in [0,1): range, and mean 1/2 within 5 sigma (sigma = sqrt(1/12/n)) */
    {
        const int n = 200000;
        double s = 0.0;
        float lo = 1.0f, hi = 0.0f;
        heph_rng_seed(&a, 7);
        for (i = 0; i < n; i++) {
            float u = heph_rng_uniform(&a);
            CHECK(u >= 0.0f && u < 1.0f, "uniform draw %d = %.9g outside [0,1)", i, (double)u);
            if (u < lo) lo = u;
            if (u > hi) hi = u;
            s += (double)u;
        }
        s /= n;
        CHECK(fabs(s - 0.5) < 5.0 * sqrt(1.0 / 12.0 / n), "uniform mean %.6f", s);
        CHECK(lo < 1e-4f && hi > 0.9999f, "uniform range [%g, %g] too narrow", (double)lo, (double)hi);
    }
    /* normal: 100k draws; mean within 5 sigma = 5/sqrt(n) = 0.0158; variance within 5 sigma of
       its sampling error sqrt(2/n) = 0.0045 -> 0.0224; every draw finite; |z| > 3 about 0.27% */
    {
        const int n = 100000;
        double s = 0.0, s2 = 0.0, mean, var;
        int tails = 0;
        heph_rng_seed(&a, 99);
        for (i = 0; i < n; i++) {
            double z = (double)heph_rng_normal(&a);
            CHECK(z == z && fabs(z) < 10.0, "normal draw %d = %g", i, z);
            s += z; s2 += z * z;
            tails += fabs(z) > 3.0;
        }
        mean = s / n;
        var = s2 / n - mean * mean;
        CHECK(fabs(mean) < 5.0 / sqrt((double)n), "normal mean %.5f", mean);
        CHECK(fabs(var - 1.0) < 5.0 * sqrt(2.0 / n), "normal variance %.5f", var);
        /* expected 270 with sd ~16.4: accept 150..400 */
        CHECK(tails > 150 && tails < 400, "%d of %d normals beyond 3 sigma (expected ~270)", tails, n);
    }
    /* below(n): in range, and each of 7 values about n/7 (5 sigma of the binomial) */
    {
        static const uint32_t ns[6] = {1u, 2u, 3u, 1000u, 0x80000001u, 0xffffffffu};
        int counts[7] = {0}, k;
        heph_rng_seed(&a, 5);
        CHECK(heph_rng_below(&a, 0) == 0 && heph_rng_below(&a, 1) == 0, "below(0 or 1) != 0");
        for (k = 0; k < 6; k++)
            for (i = 0; i < 2000; i++) CHECK(heph_rng_below(&a, ns[k]) < ns[k], "below(%lu) out of range", (unsigned long)ns[k]);
        for (i = 0; i < 70000; i++) counts[heph_rng_below(&a, 7)]++;
        for (k = 0; k < 7; k++)
            CHECK(abs(counts[k] - 10000) < 5 * 93, "below(7): value %d drawn %d times of 70000", k,
                  counts[k]);
        {   /* n = 3 * 2^30: a plain u32 % n would give values < 2^30 half the time instead of
               a third (the rejection step removes that bias); 5 sigma of 30000 draws = 408 */
            int low = 0;
            for (i = 0; i < 30000; i++) low += heph_rng_below(&a, 0xC0000000u) < 0x40000000u;
            CHECK(abs(low - 10000) < 408, "below(3*2^30): %d of 30000 below 2^30 (expected 10000)", low);
        }
    }
    /* shuffle is a permutation, and not the identity */
    {
        size_t n = 1000, k, moved = 0, *idx = TALLOC(size_t, n);
        unsigned char *seen = TALLOC(unsigned char, n);
        for (k = 0; k < n; k++) idx[k] = k;
        heph_rng_seed(&a, 3);
        heph_rng_shuffle(&a, idx, n);
        for (k = 0; k < n; k++) {
            CHECK(idx[k] < n && !seen[idx[k]], "shuffle: %zu repeated or out of range", idx[k]);
            seen[idx[k]] = 1;
            moved += idx[k] != k;
        }
        CHECK(moved > 900, "shuffle moved only %zu of 1000", moved);
        heph_rng_shuffle(&a, idx, 0);
        idx[0] = 42;
        heph_rng_shuffle(&a, idx, 1);
        CHECK(idx[0] == 42, "shuffle of one element changed it");
    }
    return 1;
}

/* ============================================================================================ */

static const t_test tests[] = {
    {"dense_gradcheck", test_dense_gradcheck},
    {"dense_vs_naive", test_dense_vs_naive},
    {"activations_gradcheck", test_activations},
    {"bce_sqerr_gradcheck", test_bce_sqerr},
    {"kl_reparam_gradcheck", test_kl_reparam},
    {"vae_gradcheck", test_vae_gradcheck},
    {"adam", test_adam},
    {"rng", test_rng},
};
T_MAIN(tests)
