/* test_core.c - unit tests of hephaestus.h: gradient checks, GEMM, Adam, RNG, spec parsing,
   .hpd and .hpm formats (round trips and every rejection path), exact resume, evaluation,
   NaN guard, a short end-to-end training, image grids (the plots: test_plot.c).

   usage: test_core [-d TMPDIR] [-v] [name ...]     (TMPDIR also from $HEPH_TEST_TMP)
   Prints one line per test, "PASS name" or "FAIL name: reason", then "DONE <passed> <failed>".
   Exit status 0 when every test passed. Files are written into TMPDIR (default ".").

   A tiny table-driven harness, no framework: a test is an int function returning 1 (pass) or
   0 (fail, with the reason in t_msg). Every allocation of the library goes through a counting
   allocator (HEPH_MALLOC/HEPH_FREE), so every test also fails when the library leaks, and the
   largest single request is known (a malformed header must not make the reader allocate). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdint.h>

/* ---- counting allocator for the library --------------------------------------------------- */
static long t_live;        /* library blocks currently allocated */
static size_t t_max_req;   /* largest single request since the last reset */
static void *t_malloc(size_t n) {
    void *p = malloc(n);
    if (n > t_max_req) t_max_req = n;
    if (p) t_live++;
    return p;
}
static void t_free(void *p) {
    if (p) {
        t_live--;
        free(p);
    }
}
#define HEPH_MALLOC(sz) t_malloc(sz)
#define HEPH_FREE(p) t_free(p)
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- harness -------------------------------------------------------------------------------- */
static char t_msg[1024];
static int t_verbose;
static const char *t_dir = ".";

static int t_failf(int line, const char *fmt, ...) {
    va_list ap;
    int n = snprintf(t_msg, sizeof t_msg, "line %d: ", line);
    va_start(ap, fmt);
    vsnprintf(t_msg + n, sizeof t_msg - (size_t)n, fmt, ap);
    va_end(ap);
    return 0;
}
/* CHECK(cond, printf-args): fail the current test with a message when cond is false */
#define CHECK(cond, ...) do { if (!(cond)) return t_failf(__LINE__, __VA_ARGS__); } while (0)
/* REQUIRE(expr): expr is a helper that already wrote t_msg when it returns 0 */
#define REQUIRE(expr) do { if (!(expr)) return 0; } while (0)

/* test-owned buffers, zeroed, all freed by the harness after each test */
#define T_MAXBUF 512
static void *t_bufs[T_MAXBUF];
static int t_nbufs;
static void *talloc(size_t n) {
    void *p = calloc(n ? n : 1, 1);
    if (!p || t_nbufs == T_MAXBUF) {
        fprintf(stderr, "test_core: out of test buffers\n");
        exit(2);
    }
    t_bufs[t_nbufs++] = p;
    return p;
}
static void tfree_all(void) {
    while (t_nbufs) free(t_bufs[--t_nbufs]);
}
#define TALLOC(T, n) ((T *)talloc((size_t)(n) * sizeof(T)))

/* a path inside the temporary folder (four rotating buffers) */
static const char *tpath(const char *name) {
    static char buf[4][200];
    static int k;
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/%s", t_dir, name);
    return buf[k];
}

/* ---- test data: splitmix64, independent of the library's RNG ---------------------------------- */
static uint64_t t_state = 1;
static void tseed(uint64_t s) { t_state = s; }
static uint64_t trand64(void) {
    uint64_t z = (t_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float tunif(float lo, float hi) {
    return lo + (hi - lo) * ((float)(trand64() >> 40) * (1.0f / 16777216.0f));
}
static double tnormal(void) {
    double u1 = ((double)(trand64() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double u2 = (double)(trand64() >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
/* x rounded to float: on x87 (i686) a float expression may carry more precision, and clang
   does not round it at a cast; a volatile store does */
static float t_f32(float x) {
    volatile float v = x;
    return v;
}
static void tfill(float *p, size_t n, float lo, float hi) {
    size_t i;
    for (i = 0; i < n; i++) p[i] = tunif(lo, hi);
}
/* uniform values with |v| >= gap: keeps kinks (relu at 0) out of a finite difference */
static void tfill_away(float *p, size_t n, float lo, float hi, float gap) {
    size_t i;
    for (i = 0; i < n; i++) {
        do { p[i] = tunif(lo, hi); } while (fabsf(p[i]) < gap);
    }
}

/* ---- numeric helpers -------------------------------------------------------------------------- */
/* |a - b| <= atol + rtol * max(|a|, |b|)   (NaN never passes) */
static int t_close(double a, double b, double atol, double rtol) {
    double d = fabs(a - b), s = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return d <= atol + rtol * s;
}

/* a scalar loss of the current contents of the buffers behind ctx */
typedef double (*t_lossfn)(void *ctx);

/* central differences: d f / d p[i] = (f(p+h) - f(p-h)) / (p+h - p-h), with the step taken
   from the float values actually stored; compared with ana[i] for every i < n.              */
static int gradcheck(const char *what, t_lossfn f, void *ctx, float *p, const float *ana, size_t n,
                     float h, double atol, double rtol) {
    size_t i;
    double worst = 0.0;
    for (i = 0; i < n; i++) {
        float v = p[i], vp, vm;
        double lp, lm, num, err;
        p[i] = v + h; vp = p[i]; lp = f(ctx);
        p[i] = v - h; vm = p[i]; lm = f(ctx);
        p[i] = v;
        num = (lp - lm) / ((double)vp - (double)vm);
        err = fabs(num - (double)ana[i]) /
              (atol + rtol * (fabs(num) > fabs((double)ana[i]) ? fabs(num) : fabs((double)ana[i])));
        if (err > worst || err != err) worst = err;
        if (!t_close((double)ana[i], num, atol, rtol))
            return t_failf(__LINE__, "%s[%zu]: analytic %.9g, numeric %.9g (atol %g, rtol %g)", what,
                           i, (double)ana[i], num, atol, rtol);
    }
    if (t_verbose) printf("  %s: %zu values, worst error / tolerance = %.3f\n", what, n, worst);
    return 1;
}

/* ---- byte helpers for patching files ---------------------------------------------------------- */
static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}
static void put64(unsigned char *p, uint64_t v) {
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}
static uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t get64(const unsigned char *p) {
    return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}
static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* FNV-1a 64 (written here again, independent of the library's copy) */
static uint64_t fnv1a64(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int write_bytes(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok;
    if (!f) return 0;
    ok = fwrite(b, 1, n, f) == n;
    return (fclose(f) == 0) && ok;
}
/* whole file into a test buffer (with 64 spare bytes), NULL if it cannot be read */
static unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *b;
    long sz;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    b = TALLOC(unsigned char, (size_t)sz + 64);
    if (fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        return NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

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

static void small_config(heph_vae_config *cfg, int c, int h, int w, int z, const char *enc,
                         const char *dec, int max_batch) {
    heph_vae_config_default(cfg);
    cfg->in_c = c; cfg->in_h = h; cfg->in_w = w;
    cfg->z_dim = z;
    cfg->max_batch = max_batch;
    strcpy(cfg->enc_spec, enc);
    strcpy(cfg->dec_spec, dec);
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
/* spec parsing                                                                                  */

static int test_spec_valid(void) {
    heph_layer L[HEPH_MAX_LAYERS];
    char err[HEPH_ERRLEN];
    int n = -1, rc;
    rc = heph_spec_parse("dense400,relu", 1, 28, 28, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
    CHECK(rc == HEPH_OK && n == 2, "dense400,relu: rc %d n %d (%s)", rc, n, err);
    CHECK(L[0].kind == HEPH_DENSE && L[0].in_c == 1 && L[0].in_h == 28 && L[0].in_w == 28 &&
              L[0].out_c == 400 && L[0].out_h == 1 && L[0].out_w == 1,
          "dense400 shapes");
    CHECK(L[0].n_params == 784u * 400u + 400u && L[0].w_off == 0 && L[0].b_off == 784u * 400u,
          "dense400: n_params %zu w_off %zu b_off %zu", L[0].n_params, L[0].w_off, L[0].b_off);
    CHECK(L[1].kind == HEPH_RELU && L[1].in_c == 400 && L[1].out_c == 400 && L[1].n_params == 0,
          "relu after dense400");
    rc = heph_spec_parse(" dense8 , lrelu,lrelu0.2,  sigmoid,tanh ,dense3", 3, 2, 5, L,
                         HEPH_MAX_LAYERS, &n, err, sizeof err);
    CHECK(rc == HEPH_OK && n == 6, "spaced spec: rc %d n %d (%s)", rc, n, err);
    CHECK(L[0].n_params == 30u * 8u + 8u && L[0].in_c == 3 && L[0].in_h == 2 && L[0].in_w == 5,
          "dense8 on 3x2x5: %zu params", L[0].n_params);
    CHECK(L[1].kind == HEPH_LRELU && L[1].slope == (float)0.01f, "lrelu default slope %g", (double)L[1].slope);
    CHECK(L[2].kind == HEPH_LRELU && L[2].slope == (float)0.2f, "lrelu0.2 slope %g", (double)L[2].slope);
    CHECK(L[3].kind == HEPH_SIGMOID && L[4].kind == HEPH_TANH && L[4].out_c == 8, "sigmoid, tanh");
    CHECK(L[5].kind == HEPH_DENSE && L[5].n_params == 8u * 3u + 3u && L[5].out_c == 3, "dense3");
    rc = heph_spec_parse("", 1, 1, 1, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
    CHECK(rc == HEPH_OK && n == 0, "empty spec: rc %d n %d", rc, n);
    rc = heph_spec_parse("dense1000000", 1, 1, 1, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
    CHECK(rc == HEPH_OK && n == 1 && L[0].n_params == 2000000u, "dense1000000: rc %d (%s)", rc, err);
    {   /* exactly HEPH_MAX_LAYERS layers is fine */
        char spec[HEPH_MAX_LAYERS * 5 + 1];
        int k;
        spec[0] = '\0';
        for (k = 0; k < HEPH_MAX_LAYERS; k++) strcat(spec, k ? ",relu" : "relu");
        rc = heph_spec_parse(spec, 1, 1, 4, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
        CHECK(rc == HEPH_OK && n == HEPH_MAX_LAYERS, "%d layers: rc %d (%s)", HEPH_MAX_LAYERS, rc, err);
    }
    {   /* presets build, and the model sizes are the known ones */
        heph_vae_config cfg;
        heph_vae m;
        CHECK(heph_vae_config_preset(&cfg, "mlp-mnist") == HEPH_OK, "preset mlp-mnist");
        cfg.max_batch = 2;
        CHECK(heph_vae_init(&m, &cfg, 1) == HEPH_OK, "mlp-mnist init: %s", m.err);
        /* 784*400+400 + 400*40+40 + 20*400+400 + 400*784+784 */
        CHECK(m.n_params == 314000u + 16040u + 8400u + 314384u, "mlp-mnist has %zu params", m.n_params);
        heph_vae_free(&m);
        CHECK(heph_vae_config_preset(&cfg, "mlp-dsprites") == HEPH_OK && cfg.in_h == 64 && cfg.z_dim == 10,
              "preset mlp-dsprites");
        CHECK(heph_vae_config_preset(&cfg, "nope") == HEPH_E_ARG, "unknown preset accepted");
        /* decoder output must match the picture */
        small_config(&cfg, 1, 4, 4, 2, "dense5", "dense15", 2);
        rc = heph_vae_init(&m, &cfg, 1);
        CHECK(rc == HEPH_E_SPEC && strstr(m.err, "dense15") != NULL, "mismatched decoder: rc %d (%s)", rc, m.err);
        small_config(&cfg, 1, 4, 4, 2, "dense5,bogus", "dense16", 2);
        rc = heph_vae_init(&m, &cfg, 1);
        CHECK(rc == HEPH_E_SPEC && strstr(m.err, "bogus") != NULL, "bad encoder: rc %d (%s)", rc, m.err);
        small_config(&cfg, 1, 4, 4, 0, "dense5", "dense16", 2);
        CHECK(heph_vae_init(&m, &cfg, 1) == HEPH_E_ARG, "z_dim 0 accepted");
    }
    return 1;
}

static int test_spec_errors(void) {
    static const struct {
        const char *spec;
        const char *needle; /* the message must contain this (the token, or its number) */
    } bad[] = {
        {",,", "token 1"},           {"dense4,", "token 2"},         {"dense4,,relu", "token 2"},
        {",dense4", "token 1"},      {"dense4, ,relu", "token 2"},   {"conv3", "conv3"},
        {"dense", "\"dense\""},      {"dense0", "dense0"},           {"dense12x", "dense12x"},
        {"dense99999999999", "dense99999999999"},                    {"dense-3", "dense-3"},
        {"dense1000001", "dense1000001"},                            {"lrelu2", "lrelu2"},
        {"lrelu0.x", "lrelu0.x"},    {"lrelu0", "lrelu0"},           {"lrelu-0.5", "lrelu-0.5"},
        {"lrelu1", "lrelu1"},        {"relu2", "relu2"},             {"Relu", "Relu"},
        {"dense4,tanhh", "tanhh"},   {"sigmoid,dense", "token 2"},
        {"dense1000000,dense1000000", "dense1000000"},
    };
    heph_layer L[HEPH_MAX_LAYERS];
    char err[HEPH_ERRLEN];
    int n, rc;
    size_t k;
    for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        err[0] = '\0';
        n = 99;
        rc = heph_spec_parse(bad[k].spec, 1, 1, 1, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
        CHECK(rc == HEPH_E_SPEC, "\"%s\": rc %d, expected HEPH_E_SPEC", bad[k].spec, rc);
        CHECK(strstr(err, bad[k].needle) != NULL, "\"%s\": message \"%s\" does not name \"%s\"",
              bad[k].spec, err, bad[k].needle);
        CHECK(n == 0, "\"%s\": n_layers %d after an error", bad[k].spec, n);
    }
    rc = heph_spec_parse(NULL, 1, 1, 1, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
    CHECK(rc == HEPH_E_SPEC && strstr(err, "NULL"), "NULL spec: rc %d (%s)", rc, err);
    {   /* one layer too many: the message gives the token number */
        char spec[(HEPH_MAX_LAYERS + 1) * 5 + 1];
        int i;
        spec[0] = '\0';
        for (i = 0; i <= HEPH_MAX_LAYERS; i++) strcat(spec, i ? ",relu" : "relu");
        rc = heph_spec_parse(spec, 1, 1, 1, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
        CHECK(rc == HEPH_E_SPEC && strstr(err, "token 65"), "65 layers: rc %d (%s)", rc, err);
        rc = heph_spec_parse("relu,relu,relu,relu", 1, 1, 1, L, 3, &n, err, sizeof err);
        CHECK(rc == HEPH_E_SPEC && strstr(err, "token 4"), "4 layers, max 3: rc %d (%s)", rc, err);
    }
    /* invalid input shapes */
    {
        static const int shapes[][3] = {{0, 1, 1}, {1, 0, 1}, {1, 1, 0}, {-1, 2, 2}, {1000001, 1, 1}, {2000, 2000, 1000}};
        for (k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            char want[64];
            rc = heph_spec_parse("relu", shapes[k][0], shapes[k][1], shapes[k][2], L, HEPH_MAX_LAYERS,
                                 &n, err, sizeof err);
            snprintf(want, sizeof want, "%dx%dx%d", shapes[k][0], shapes[k][1], shapes[k][2]);
            CHECK(rc == HEPH_E_SPEC && strstr(err, want), "shape %s: rc %d (%s)", want, rc, err);
        }
    }
    /* a tiny error buffer is never overrun and stays terminated */
    {
        char small[8];
        memset(small, 'x', sizeof small);
        rc = heph_spec_parse("bogus", 1, 1, 1, L, HEPH_MAX_LAYERS, &n, small, 5);
        CHECK(rc == HEPH_E_SPEC && small[4] == '\0' && small[5] == 'x', "errlen 5 not respected");
        rc = heph_spec_parse("bogus", 1, 1, 1, L, HEPH_MAX_LAYERS, &n, NULL, 0);
        CHECK(rc == HEPH_E_SPEC, "NULL err buffer");
    }
    return 1;
}

/* ============================================================================================ */
/* .hpd datasets                                                                                 */

/* byte offsets of the .hpd header (see the layout comment in hephaestus.h) */
enum {
    HPD_VERSION = 8, HPD_HB = 12, HPD_COUNT = 16, HPD_C = 24, HPD_H = 28, HPD_W = 32, HPD_DTYPE = 36,
    HPD_LAYOUT = 40, HPD_VMAX = 44, HPD_NF = 48, HPD_FLAGS = 52, HPD_SEED = 56, HPD_LABOFF = 64,
    HPD_SOURCE = 72, HPD_FACTORS = 104
};

static const double shape_values[3] = {0.5, 1.0, 1.5};

/* test picture k, pixel i of a u8 dataset */
static uint8_t px_u8(size_t k, size_t i) { return (uint8_t)((k * 37u + i * 11u + 5u) & 255u); }

/* write a valid u8 dataset: count pictures 1x3x5, factors "shape" (3 values, real values) and
   "pos" (4 values, none), labels (k % 3, k % 4), flags GRID|GENERATED, seed 77 */
static int make_u8_hpd(const char *path, uint64_t count) {
    heph_hpd_info info;
    heph_hpd_writer w;
    uint8_t px[15];
    int32_t f[2];
    size_t k, i;
    memset(&info, 0, sizeof info);
    info.count = count;
    info.c = 1; info.h = 3; info.w = 5;
    info.dtype = HEPH_PX_U8;
    info.value_max = 255.0f;
    info.flags = HEPH_HPD_GRID | HEPH_HPD_GENERATED;
    info.seed = 77;
    strcpy(info.source, "test/u8-exactly-32-chars-long-xy");
    info.n_factors = 2;
    strcpy(info.factors[0].name, "shape");
    info.factors[0].n_values = 3;
    info.factors[0].values = shape_values;
    strcpy(info.factors[1].name, "pos");
    info.factors[1].n_values = 4;
    CHECK(heph_hpd_create(&w, path, &info) == HEPH_OK, "create %s: %s", path, w.err);
    for (k = 0; k < count; k++) {
        for (i = 0; i < 15; i++) px[i] = px_u8(k, i);
        f[0] = (int32_t)(k % 3);
        f[1] = (int32_t)(k % 4);
        CHECK(heph_hpd_put_u8(&w, px, f) == HEPH_OK, "put %zu: %s", k, w.err);
    }
    CHECK(heph_hpd_finish(&w) == HEPH_OK, "finish: %s", w.err);
    return 1;
}

static int test_hpd_roundtrip(void) {
    heph_hpd d;
    const char *p = tpath("rt_u8.hpd");
    float *out = TALLOC(float, 15 * 8), inv = 1.0f / 255.0f;
    size_t idx[5] = {6, 0, 3, 3, 1}, k, i, fsize;
    unsigned char *raw;
    int rc;
    /* u8 with factors */
    REQUIRE(make_u8_hpd(p, 7));
    raw = read_bytes(p, &fsize);
    CHECK(raw && fsize == 192 + 7 * 15 + 7 * 2 * 4, "u8 file size %zu, expected %d", fsize, 192 + 105 + 56);
    rc = heph_hpd_open(&d, p);
    CHECK(rc == HEPH_OK, "open: %s", d.err);
    CHECK(d.info.count == 7 && d.info.c == 1 && d.info.h == 3 && d.info.w == 5 &&
              d.info.dtype == HEPH_PX_U8 && d.info.value_max == 255.0f && d.info.seed == 77,
          "u8 header fields");
    CHECK(d.info.flags == (HEPH_HPD_LABELS | HEPH_HPD_GRID | HEPH_HPD_GENERATED), "flags %u", d.info.flags);
    CHECK(strcmp(d.info.source, "test/u8-exactly-32-chars-long-xy") == 0, "source \"%s\"", d.info.source);
    CHECK(d.info.n_factors == 2 && strcmp(d.info.factors[0].name, "shape") == 0 &&
              strcmp(d.info.factors[1].name, "pos") == 0 && d.info.factors[0].n_values == 3 &&
              d.info.factors[1].n_values == 4,
          "factor table");
    CHECK(d.info.factors[0].values && d.info.factors[1].values == NULL, "factor values presence");
    for (k = 0; k < 3; k++)
        CHECK(d.info.factors[0].values[k] == shape_values[k], "value %zu = %g", k, d.info.factors[0].values[k]);
    CHECK(heph_hpd_picture_size(&d.info) == 15, "picture size");
    for (k = 0; k < 7; k++)
        CHECK(heph_hpd_label(&d, k, 0) == (int32_t)(k % 3) && heph_hpd_label(&d, k, 1) == (int32_t)(k % 4),
              "labels of picture %zu", k);
    CHECK(heph_hpd_read(&d, idx, 5, out) == HEPH_OK, "read: %s", d.err);
    for (k = 0; k < 5; k++)
        for (i = 0; i < 15; i++)
            CHECK(out[k * 15 + i] == t_f32((float)px_u8(idx[k], i) * inv), "read idx %zu pixel %zu", idx[k], i);
    CHECK(heph_hpd_read_range(&d, 2, 5, out) == HEPH_OK, "read_range: %s", d.err);
    for (k = 0; k < 5; k++)
        for (i = 0; i < 15; i++)
            CHECK(out[k * 15 + i] == t_f32((float)px_u8(2 + k, i) * inv), "range picture %zu pixel %zu", 2 + k, i);
    CHECK(heph_hpd_read_range(&d, 7, 0, out) == HEPH_OK, "empty range at the end");
    idx[0] = 7;
    rc = heph_hpd_read(&d, idx, 1, out);
    CHECK(rc == HEPH_E_ARG && strstr(d.err, p), "index 7 of 7: rc %d (%s)", rc, d.err);
    rc = heph_hpd_read_range(&d, 5, 3, out);
    CHECK(rc == HEPH_E_ARG && strstr(d.err, p), "range 5..8 of 7: rc %d (%s)", rc, d.err);
    rc = heph_hpd_read_range(&d, (size_t)-1, 2, out);
    CHECK(rc == HEPH_E_ARG, "range at SIZE_MAX: rc %d", rc);
    heph_hpd_close(&d);

    /* f32, value_max 2, one factor without values; put_u8 also works for f32 */
    {
        heph_hpd_info info;
        heph_hpd_writer w;
        float px[2 * 2 * 3];
        uint8_t pu[12];
        int32_t f;
        const char *pf = tpath("rt_f32.hpd");
        memset(&info, 0, sizeof info);
        info.count = 4; info.c = 2; info.h = 2; info.w = 3;
        info.dtype = HEPH_PX_F32; info.value_max = 2.0f;
        strcpy(info.source, "test/f32");
        info.n_factors = 1;
        strcpy(info.factors[0].name, "twentythree-chars-name");
        info.factors[0].n_values = 1000000;
        CHECK(heph_hpd_create(&w, pf, &info) == HEPH_OK, "create f32: %s", w.err);
        for (k = 0; k < 3; k++) {
            for (i = 0; i < 12; i++) px[i] = (float)(k * 12 + i) * 0.03125f; /* in [0, value_max] (issue #20) */
            f = (int32_t)(k * 499999);
            CHECK(heph_hpd_put_f32(&w, px, &f) == HEPH_OK, "put_f32: %s", w.err);
        }
        for (i = 0; i < 12; i++) pu[i] = (uint8_t)(i % 3);
        f = 999999;
        CHECK(heph_hpd_put_u8(&w, pu, &f) == HEPH_OK, "put_u8 into f32: %s", w.err);
        CHECK(heph_hpd_put_u8(&w, pu, &f) == HEPH_E_ARG, "a fifth picture of four accepted");
        CHECK(heph_hpd_finish(&w) == HEPH_OK, "finish f32: %s", w.err);
        CHECK(heph_hpd_open(&d, pf) == HEPH_OK, "open f32: %s", d.err);
        CHECK(d.info.dtype == HEPH_PX_F32 && d.info.value_max == 2.0f && d.info.flags == HEPH_HPD_LABELS &&
                  d.info.seed == 0 && strcmp(d.info.source, "test/f32") == 0 &&
                  strcmp(d.info.factors[0].name, "twentythree-chars-name") == 0,
              "f32 header");
        CHECK(d.header_bytes == 192 && d.image_bytes == 48, "f32 sizes: header %llu image %llu",
              (unsigned long long)d.header_bytes, (unsigned long long)d.image_bytes);
        CHECK(heph_hpd_read_range(&d, 0, 4, out) == HEPH_OK, "read f32: %s", d.err);
        for (k = 0; k < 3; k++) {
            for (i = 0; i < 12; i++) {
                float want = ((float)(k * 12 + i) * 0.03125f) * (1.0f / 2.0f);
                CHECK(out[k * 12 + i] == want, "f32 picture %zu value %zu: %g vs %g", k, i,
                      (double)out[k * 12 + i], (double)want);
            }
            CHECK(heph_hpd_label(&d, k, 0) == (int32_t)(k * 499999), "f32 label %zu", k);
        }
        for (i = 0; i < 12; i++) CHECK(out[36 + i] == (float)(i % 3) * 0.5f, "f32 from u8, value %zu", i);
        CHECK(heph_hpd_label(&d, 3, 0) == 999999, "f32 label 3");
        heph_hpd_close(&d);
    }
    /* 1-bit, 1x5x5 (25 bits: 4 bytes per picture), no factors */
    {
        heph_hpd_info info;
        heph_hpd_writer w;
        uint8_t px[25];
        float fp[25] = {0};
        const char *pb = tpath("rt_bit.hpd");
        memset(&info, 0, sizeof info);
        info.count = 9; info.c = 1; info.h = 5; info.w = 5;
        info.dtype = HEPH_PX_BIT; info.value_max = 1.0f;
        info.flags = HEPH_HPD_LABELS; /* without factors the writer clears it */
        CHECK(heph_hpd_create(&w, pb, &info) == HEPH_OK, "create bit: %s", w.err);
        CHECK(heph_hpd_put_f32(&w, fp, NULL) == HEPH_E_ARG, "put_f32 into a 1-bit file accepted");
        for (k = 0; k < 9; k++) {
            for (i = 0; i < 25; i++) px[i] = (uint8_t)(((k + i) % 3 == 0) ? (i & 1 ? 7 : 1) : 0);
            CHECK(heph_hpd_put_u8(&w, px, NULL) == HEPH_OK, "put bit: %s", w.err);
        }
        CHECK(heph_hpd_finish(&w) == HEPH_OK, "finish bit: %s", w.err);
        raw = read_bytes(pb, &fsize);
        CHECK(raw && fsize == 128 + 9 * 4, "bit file size %zu", fsize);
        CHECK(raw[128] == 0x92 && raw[129] == 0x49 && raw[130] == 0x24 && raw[131] == 0x80,
              "bit packing of picture 0: %02x %02x %02x %02x (expected 92 49 24 80)", raw[128],
              raw[129], raw[130], raw[131]);
        CHECK(heph_hpd_open(&d, pb) == HEPH_OK, "open bit: %s", d.err);
        CHECK(d.info.flags == 0 && d.info.n_factors == 0 && d.info.dtype == HEPH_PX_BIT, "bit header");
        for (k = 0; k < 9; k++) {
            size_t one = 8 - k;
            CHECK(heph_hpd_read(&d, &one, 1, fp) == HEPH_OK, "read bit: %s", d.err);
            for (i = 0; i < 25; i++)
                CHECK(fp[i] == (((one + i) % 3 == 0) ? 1.0f : 0.0f), "bit picture %zu pixel %zu", one, i);
        }
        heph_hpd_close(&d);
    }
    /* writer refusals: factor index out of range, too few pictures (temporary file removed) */
    {
        heph_hpd_info info;
        heph_hpd_writer w;
        uint8_t px[15] = {0};
        int32_t f[2] = {3, 0};
        const char *pw = tpath("rt_abort.hpd");
        FILE *fp;
        char tmp[220];
        memset(&info, 0, sizeof info);
        info.count = 2; info.c = 1; info.h = 3; info.w = 5; info.dtype = HEPH_PX_U8; info.value_max = 255.0f;
        info.n_factors = 2;
        strcpy(info.factors[0].name, "shape"); info.factors[0].n_values = 3;
        strcpy(info.factors[1].name, "pos"); info.factors[1].n_values = 4;
        CHECK(heph_hpd_create(&w, pw, &info) == HEPH_OK, "create: %s", w.err);
        CHECK(heph_hpd_put_u8(&w, px, f) == HEPH_E_ARG && strstr(w.err, "shape"), "factor index 3 of 3 accepted");
        f[0] = 2;
        CHECK(heph_hpd_put_u8(&w, px, f) == HEPH_OK, "put: %s", w.err);
        CHECK(heph_hpd_finish(&w) == HEPH_E_ARG, "finish with 1 of 2 pictures accepted");
        snprintf(tmp, sizeof tmp, "%s.tmp", pw);
        fp = fopen(tmp, "rb");
        CHECK(fp == NULL, "temporary file %s left behind", tmp);
        fp = fopen(pw, "rb");
        CHECK(fp == NULL, "unfinished dataset %s renamed into place", pw);
        info.count = 0;
        CHECK(heph_hpd_create(&w, pw, &info) == HEPH_E_FORMAT, "count 0 accepted by the writer");
        info.count = 1; info.value_max = 0.0f;
        CHECK(heph_hpd_create(&w, pw, &info) == HEPH_E_FORMAT, "value_max 0 accepted by the writer");
    }
    return 1;
}

/* write the patched copy, open it, expect rc and a message naming the file */
static int hpd_expect(const unsigned char *b, size_t n, int want, const char *what) {
    heph_hpd d;
    const char *p = tpath("bad.hpd");
    int rc;
    CHECK(write_bytes(p, b, n), "cannot write %s", p);
    t_max_req = 0;
    rc = heph_hpd_open(&d, p);
    if (rc == HEPH_OK) heph_hpd_close(&d);
    CHECK(rc == want, "%s: rc %d (%s), expected %d (%s); message \"%s\"", what, rc,
          heph_result_string(rc), want, heph_result_string(want), rc ? d.err : "");
    CHECK(strstr(d.err, p) != NULL, "%s: message \"%s\" does not name %s", what, d.err, p);
    CHECK(t_live == 0, "%s: %ld blocks leaked", what, t_live);
    CHECK(t_max_req <= 4096, "%s: a malformed header made the reader allocate %zu bytes", what, t_max_req);
    return 1;
}

static int test_hpd_reject(void) {
    const char *p = tpath("good.hpd");
    unsigned char *good, *b;
    size_t n, len;
    heph_hpd d;
    REQUIRE(make_u8_hpd(p, 4));
    good = read_bytes(p, &n);
    CHECK(good && n == 192 + 4 * 15 + 4 * 8, "good file is %zu bytes", n);
    CHECK(heph_hpd_open(&d, p) == HEPH_OK, "good file: %s", d.err);
    heph_hpd_close(&d);
    b = TALLOC(unsigned char, n + 64);
#define PATCH(stmt, want, what) do { memcpy(b, good, n); stmt; REQUIRE(hpd_expect(b, n, want, what)); } while (0)
    PATCH(b[0] = 'X', HEPH_E_FORMAT, "wrong magic");
    PATCH(b[7] = 1, HEPH_E_FORMAT, "magic without its NUL");
    PATCH(put32(b + HPD_VERSION, 2), HEPH_E_VERSION, "version 2");
    PATCH(put32(b + HPD_VERSION, 0), HEPH_E_VERSION, "version 0");
    PATCH(put32(b + HPD_HB, 200), HEPH_E_FORMAT, "header_bytes 200 (not a multiple of 64)");
    PATCH(put32(b + HPD_HB, 128), HEPH_E_FORMAT, "header_bytes 128 (smaller than the factor table)");
    PATCH(put32(b + HPD_HB, 0), HEPH_E_FORMAT, "header_bytes 0");
    PATCH(put32(b + HPD_HB, 320), HEPH_E_FORMAT, "header_bytes 320 (beyond the file)");
    PATCH(put32(b + HPD_HB, 0xffffffc0u), HEPH_E_FORMAT, "header_bytes 4 GB");
    PATCH(put32(b + HPD_HB, 256), HEPH_E_SIZE, "header_bytes 256 (labels_offset disagrees)");
    PATCH(put64(b + HPD_COUNT, 0), HEPH_E_FORMAT, "count 0");
    PATCH(put64(b + HPD_COUNT, 5), HEPH_E_SIZE, "count 5 of 4");
    PATCH(put64(b + HPD_COUNT, (uint64_t)1 << 40), HEPH_E_SIZE, "count 2^40");
    PATCH((put64(b + HPD_COUNT, (uint64_t)1 << 40), put64(b + HPD_LABOFF, 192 + ((uint64_t)1 << 40) * 15)),
          HEPH_E_FORMAT, "count 2^40 with a consistent labels_offset");
    PATCH(put64(b + HPD_COUNT, (uint64_t)1 << 63), HEPH_E_SIZE, "count 2^63 (overflow)");
    PATCH(put64(b + HPD_COUNT, UINT64_MAX), HEPH_E_SIZE, "count 2^64-1 (overflow)");
    PATCH(put32(b + HPD_C, 0), HEPH_E_SIZE, "0 channels");
    PATCH(put32(b + HPD_H, 0), HEPH_E_SIZE, "height 0");
    PATCH(put32(b + HPD_W, 0), HEPH_E_SIZE, "width 0");
    PATCH(put32(b + HPD_C, 1000000), HEPH_E_SIZE, "10^6 channels");
    PATCH(put32(b + HPD_H, 0x80000000u), HEPH_E_SIZE, "height 2^31");
    PATCH((put32(b + HPD_C, 4096), put32(b + HPD_H, 65536), put32(b + HPD_W, 65536)), HEPH_E_SIZE,
          "4096x65536x65536 pictures");
    PATCH(put32(b + HPD_C, 3), HEPH_E_SIZE, "3 channels (sizes disagree)");
    PATCH(put32(b + HPD_DTYPE, 7), HEPH_E_FORMAT, "dtype 7");
    PATCH(put32(b + HPD_DTYPE, 0), HEPH_E_FORMAT, "dtype 0");
    PATCH(put32(b + HPD_DTYPE, HEPH_PX_F32), HEPH_E_SIZE, "dtype f32 (sizes disagree)");
    PATCH(put32(b + HPD_LAYOUT, 1), HEPH_E_FORMAT, "layout 1");
    PATCH(put32(b + HPD_VMAX, f2u(0.0f)), HEPH_E_FORMAT, "value_max 0");
    PATCH(put32(b + HPD_VMAX, 0x7fc00000u), HEPH_E_FORMAT, "value_max NaN");
    PATCH(put32(b + HPD_VMAX, 0x7f800000u), HEPH_E_FORMAT, "value_max +Inf");
    PATCH(put32(b + HPD_VMAX, f2u(-255.0f)), HEPH_E_FORMAT, "value_max -255");
    PATCH(put32(b + HPD_NF, 33), HEPH_E_SIZE, "33 factors");
    PATCH(put32(b + HPD_NF, 0xffffffffu), HEPH_E_SIZE, "2^32-1 factors");
    PATCH(put32(b + HPD_NF, 1), HEPH_E_FORMAT, "1 factor (label block shorter than the file)");
    PATCH(put32(b + HPD_NF, 0), HEPH_E_FORMAT, "0 factors with the labels flag");
    PATCH(put32(b + HPD_FLAGS, HEPH_HPD_GRID), HEPH_E_FORMAT, "labels flag cleared with 2 factors");
    PATCH(put32(b + HPD_FACTORS + 24, 0), HEPH_E_SIZE, "factor 0 with 0 values");
    PATCH(put32(b + HPD_FACTORS + 32 + 24, 0), HEPH_E_SIZE, "factor 1 with 0 values");
    PATCH(put32(b + HPD_FACTORS + 24, 1000001), HEPH_E_SIZE, "factor with 1000001 values");
    PATCH(put32(b + HPD_FACTORS + 24, 0xffffffffu), HEPH_E_SIZE, "factor with 2^32-1 values");
    PATCH(memset(b + HPD_FACTORS, 'a', 24), HEPH_E_FORMAT, "factor name without NUL");
    PATCH(put32(b + HPD_FACTORS + 28, 184), HEPH_E_FORMAT, "values_offset 184 (runs past the header)");
    PATCH(put32(b + HPD_FACTORS + 28, 100), HEPH_E_FORMAT, "values_offset 100 (inside the fixed part)");
    PATCH(put32(b + HPD_FACTORS + 28, 0xfffffff8u), HEPH_E_FORMAT, "values_offset 2^32-8");
    PATCH(put32(b + HPD_FACTORS + 24, 100), HEPH_E_FORMAT, "100 values at values_offset (past the header)");
    PATCH(put64(b + HPD_LABOFF, 193), HEPH_E_SIZE, "labels_offset 193");
    PATCH(put64(b + HPD_LABOFF, UINT64_MAX), HEPH_E_SIZE, "labels_offset 2^64-1");
    PATCH(put32(b + 252 + 8 * 2, 3), HEPH_E_FORMAT, "label index 3 of 3 values");
    PATCH(put32(b + 252 + 8 * 3 + 4, 4), HEPH_E_FORMAT, "label index 4 of 4 values");
    PATCH(put32(b + 252, 0xffffffffu), HEPH_E_FORMAT, "label index -1");
    PATCH(put32(b + 252 + 4, 0x80000000u), HEPH_E_FORMAT, "label index INT_MIN");
    /* one trailing byte */
    memcpy(b, good, n);
    b[n] = 0;
    REQUIRE(hpd_expect(b, n + 1, HEPH_E_FORMAT, "one trailing byte"));
    /* truncated at every prefix length */
    for (len = 0; len < n; len++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", len, n);
        REQUIRE(hpd_expect(good, len, HEPH_E_FORMAT, what));
    }
    /* a file that does not exist, a folder */
    CHECK(heph_hpd_open(&d, tpath("missing.hpd")) == HEPH_E_IO && strstr(d.err, "missing.hpd"),
          "missing file: %s", d.err);
    CHECK(t_live == 0, "missing file leaked");
    CHECK(heph_hpd_open(&d, t_dir) != HEPH_OK && strstr(d.err, t_dir) && t_live == 0,
          "a folder opened as a dataset: %s", d.err);
    /* a valid file of 1 picture with 32 factors of 10^6 values each, none stored: the reader
       must not allocate room for 32 * 10^6 values that the file does not hold */
    {
        heph_hpd_info info;
        heph_hpd_writer w;
        uint8_t px = 7;
        int32_t f[32] = {0};
        uint32_t k;
        const char *pv = tpath("many-factors.hpd");
        memset(&info, 0, sizeof info);
        info.count = 1; info.c = 1; info.h = 1; info.w = 1; info.dtype = HEPH_PX_U8; info.value_max = 255.0f;
        info.n_factors = 32;
        for (k = 0; k < 32; k++) {
            snprintf(info.factors[k].name, sizeof info.factors[k].name, "f%u", k);
            info.factors[k].n_values = 1000000;
            f[k] = (int32_t)(k * 31111u);
        }
        CHECK(heph_hpd_create(&w, pv, &info) == HEPH_OK && heph_hpd_put_u8(&w, &px, f) == HEPH_OK &&
                  heph_hpd_finish(&w) == HEPH_OK,
              "writing 32 factors: %s", w.err);
        t_max_req = 0;
        CHECK(heph_hpd_open(&d, pv) == HEPH_OK, "32 factors: %s", d.err);
        CHECK(t_max_req <= 65536, "a %d-byte file made the reader allocate %zu bytes", 1152 + 1 + 128, t_max_req);
        for (k = 0; k < 32; k++)
            CHECK(d.info.factors[k].values == NULL && heph_hpd_label(&d, 0, (int)k) == (int32_t)(k * 31111u),
                  "factor %u", k);
        heph_hpd_close(&d);
    }
#undef PATCH
    return 1;
}

/* ============================================================================================ */
/* .hpm checkpoints                                                                              */

/* a small model trained a few steps (Adam state non-zero, a spare normal waiting) */
static int trained_model(heph_vae *m, int steps) {
    heph_vae_config cfg;
    float x[3 * 6];
    int s;
    small_config(&cfg, 1, 2, 3, 3, "dense3,tanh", "dense4,relu,dense6", 3);
    cfg.obj.beta = 1.5f;
    cfg.lr = 0.01f;
    CHECK(heph_vae_init(m, &cfg, 2024) == HEPH_OK, "init: %s", m->err);
    for (s = 0; s < steps; s++) {
        tfill(x, 18, 0.0f, 1.0f);
        CHECK(heph_vae_train_step(m, x, 3, NULL) == HEPH_OK, "train step %d: %s", s, m->err);
    }
    return 1;
}

static int same_rng(const heph_rng *a, const heph_rng *b) {
    return a->state == b->state && a->inc == b->inc && a->has_spare == b->has_spare &&
           memcmp(&a->spare, &b->spare, sizeof a->spare) == 0;
}

static int test_hpm_roundtrip(void) {
    heph_vae a, b;
    const char *p = tpath("rt.hpm"), *pw = tpath("rt_w.hpm");
    size_t n_full, n_w, i;
    unsigned char *full, *wo;
    REQUIRE(trained_model(&a, 3));
    CHECK(a.rng.has_spare == 1, "test set-up: expected a spare normal after 27 draws");
    CHECK(heph_vae_save(&a, p, 0) == HEPH_OK, "save: %s", a.err);
    CHECK(heph_vae_load(&b, p) == HEPH_OK, "load: %s", b.err);
    CHECK(b.n_params == a.n_params && b.step == 3 && a.step == 3, "n_params or step differ");
    CHECK(memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0, "parameters differ");
    CHECK(memcmp(a.adam_m, b.adam_m, a.n_params * sizeof(float)) == 0, "Adam m differs");
    CHECK(memcmp(a.adam_v, b.adam_v, a.n_params * sizeof(float)) == 0, "Adam v differs");
    CHECK(same_rng(&a.rng, &b.rng), "rng state differs");
    CHECK(b.cfg.in_c == 1 && b.cfg.in_h == 2 && b.cfg.in_w == 3 && b.cfg.z_dim == 3 &&
              b.cfg.max_batch == 3 && strcmp(b.cfg.enc_spec, "dense3,tanh") == 0 &&
              strcmp(b.cfg.dec_spec, "dense4,relu,dense6") == 0 && b.cfg.obj.beta == 1.5f &&
              b.cfg.lr == (float)0.01f && b.cfg.beta1 == a.cfg.beta1 && b.cfg.beta2 == a.cfg.beta2 &&
              b.cfg.eps == a.cfg.eps && b.cfg.obj.kind == a.cfg.obj.kind &&
              b.cfg.obj.recon == a.cfg.obj.recon,
          "configuration differs after load");
    heph_vae_free(&b);
    /* weights only: parameters, no optimiser state; the file is 2 n_params floats shorter */
    CHECK(heph_vae_save(&a, pw, HEPH_SAVE_WEIGHTS_ONLY) == HEPH_OK, "save weights: %s", a.err);
    CHECK(heph_vae_load(&b, pw) == HEPH_OK, "load weights: %s", b.err);
    CHECK(memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0, "weights-only: parameters differ");
    for (i = 0; i < b.n_params; i++)
        CHECK(b.adam_m[i] == 0.0f && b.adam_v[i] == 0.0f, "weights-only: Adam state %zu not zero", i);
    full = read_bytes(p, &n_full);
    wo = read_bytes(pw, &n_w);
    CHECK(full && wo && n_full == n_w + 8 * a.n_params, "sizes %zu and %zu", n_full, n_w);
    CHECK(get32(full + 12) == 1 && get32(wo + 12) == 0, "flags field");
    heph_vae_free(&b);
    /* a save over an existing file replaces it (rename) and leaves no temporary file */
    CHECK(heph_vae_save(&a, p, HEPH_SAVE_WEIGHTS_ONLY) == HEPH_OK, "save over: %s", a.err);
    {
        char tmp[220];
        FILE *f;
        snprintf(tmp, sizeof tmp, "%s.tmp", p);
        f = fopen(tmp, "rb");
        CHECK(f == NULL, "temporary file %s left behind", tmp);
        full = read_bytes(p, &n_full);
        CHECK(full && n_full == n_w, "overwritten checkpoint is %zu bytes, expected %zu", n_full, n_w);
    }
    CHECK(heph_vae_save(&a, tpath("no-such-dir/x.hpm"), 0) == HEPH_E_IO, "save into a missing folder");
    heph_vae_free(&a);
    return 1;
}

/* write b, load it, expect rc (and a message naming the file, and no leak) */
static int hpm_expect(const unsigned char *b, size_t n, int want, const char *what) {
    heph_vae m;
    const char *p = tpath("bad.hpm");
    long live0 = t_live;
    int rc;
    CHECK(write_bytes(p, b, n), "cannot write %s", p);
    rc = heph_vae_load(&m, p);
    if (rc == HEPH_OK) heph_vae_free(&m);
    CHECK(rc == want, "%s: rc %d (%s), expected %d (%s); message \"%s\"", what, rc,
          heph_result_string(rc), want, heph_result_string(want), rc ? m.err : "");
    CHECK(strstr(m.err, p) != NULL, "%s: message \"%s\" does not name %s", what, m.err, p);
    CHECK(t_live == live0, "%s: %ld blocks leaked", what, t_live - live0);
    return 1;
}

/* store a new FNV-1a checksum over the first n-8 bytes */
static void rechecksum(unsigned char *b, size_t n) { put64(b + n - 8, fnv1a64(b, n - 8)); }

static int test_hpm_reject(void) {
    heph_vae a;
    const char *p = tpath("good.hpm");
    unsigned char *good, *b;
    size_t n, i, enc_len, dec_len, off_np, off_enc, off_obj, off_lr;
    REQUIRE(trained_model(&a, 2));
    CHECK(heph_vae_save(&a, p, 0) == HEPH_OK, "save: %s", a.err);
    good = read_bytes(p, &n);
    CHECK(good != NULL, "read %s", p);
    b = TALLOC(unsigned char, n + 64);
    /* layout (see hephaestus.h): magic 8, version 4, flags 4, 5 u32, encoder spec, decoder
       spec, objective (kind first), ..., Adam 16, step 8, rng 24, n_params 8, 3 n floats, sum 8 */
    off_enc = 36;
    enc_len = get32(good + off_enc);
    dec_len = get32(good + off_enc + 4 + enc_len);
    CHECK(enc_len == strlen("dense3,tanh") && dec_len == strlen("dense4,relu,dense6"), "spec lengths");
    off_obj = off_enc + 4 + enc_len + 4 + dec_len;
    off_np = n - 8 - 12 * a.n_params - 8;
    off_lr = off_np - 24 - 8 - 16;
    CHECK(get64(good + off_np) == a.n_params, "n_params field at %zu", off_np);
    CHECK(get32(good + off_obj) == HEPH_OBJ_BETA && get32(good + off_lr) == f2u(0.01f) &&
              get64(good + off_np - 24 - 8) == 2,
          "objective kind, learning rate or step not where expected");
    CHECK(get64(good + n - 8) == fnv1a64(good, n - 8), "checksum is not FNV-1a 64 of the bytes before it");
    /* a flipped byte anywhere: magic -> FORMAT, version -> VERSION, everything else CHECKSUM */
    for (i = 0; i < n; i++) {
        char what[64];
        int want = i < 8 ? HEPH_E_FORMAT : (i < 12 ? HEPH_E_VERSION : HEPH_E_CHECKSUM);
        memcpy(b, good, n);
        b[i] ^= 0xff;
        snprintf(what, sizeof what, "byte %zu of %zu flipped", i, n);
        REQUIRE(hpm_expect(b, n, want, what));
        b[i] ^= 0xfe; /* now a single-bit flip */
        snprintf(what, sizeof what, "bit 0 of byte %zu flipped", i);
        REQUIRE(hpm_expect(b, n, want, what));
    }
    /* truncated at every length: too short for a header, or the checksum does not match */
    for (i = 0; i < n; i++) {
        char what[64];
        heph_vae m;
        long live0 = t_live;
        int rc;
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", i, n);
        CHECK(write_bytes(tpath("bad.hpm"), good, i), "write");
        rc = heph_vae_load(&m, tpath("bad.hpm"));
        CHECK(rc == (i < 16 ? HEPH_E_FORMAT : HEPH_E_CHECKSUM), "%s: rc %d (%s)", what, rc, m.err);
        CHECK(strstr(m.err, "bad.hpm") != NULL && t_live == live0, "%s: message or leak", what);
    }
    /* fields with a valid checksum */
#define PATCH(stmt, len, want, what) do { memcpy(b, good, n); stmt; rechecksum(b, len); REQUIRE(hpm_expect(b, len, want, what)); } while (0)
    PATCH(b[1] = 'X', n, HEPH_E_FORMAT, "wrong magic");
    PATCH(put32(b + 8, 2), n, HEPH_E_VERSION, "version 2");
    PATCH(put32(b + 12, 2), n, HEPH_E_FORMAT, "flags 2");
    PATCH(put64(b + off_np, a.n_params + 1), n, HEPH_E_FORMAT, "n_params + 1");
    PATCH(put64(b + off_np, a.n_params - 1), n, HEPH_E_FORMAT, "n_params - 1");
    PATCH(put64(b + off_np, UINT64_MAX), n, HEPH_E_FORMAT, "n_params 2^64-1");
    PATCH(b[off_enc + 4] = 'X', n, HEPH_E_SPEC, "encoder spec \"Xense3,tanh\"");
    PATCH(b[off_enc + 4 + enc_len + 4 + 5] = '0', n, HEPH_E_SPEC, "decoder spec \"dense0,...\"");
    PATCH(b[off_enc + 4 + enc_len + 4 + 7] = ',', n, HEPH_E_SPEC, "decoder spec \"dense4,,elu,...\"");
    PATCH(b[off_enc + 4 + 2] = 0, n, HEPH_E_FORMAT, "NUL inside the encoder spec");
    PATCH(put32(b + off_enc, 100000), n, HEPH_E_FORMAT, "encoder spec length 100000");
    PATCH(put32(b + off_enc, 0xffffffffu), n, HEPH_E_FORMAT, "encoder spec length 2^32-1");
    PATCH(put32(b + off_enc, (uint32_t)enc_len + 1), n, HEPH_E_FORMAT, "encoder spec one byte longer");
    PATCH(put32(b + 16, 0), n, HEPH_E_FORMAT, "0 channels");
    PATCH(put32(b + 16, 0x80000000u), n, HEPH_E_FORMAT, "2^31 channels");
    PATCH(put32(b + 20, 3), n, HEPH_E_SPEC, "height 3 (decoder output disagrees)");
    PATCH(put32(b + 28, 0), n, HEPH_E_ARG, "z_dim 0");
    PATCH(put32(b + 32, 0), n, HEPH_E_ARG, "max_batch 0");
    PATCH(put32(b + off_obj, 9), n, HEPH_E_ARG, "objective kind 9");
    PATCH(put32(b + off_lr, f2u(-1.0f)), n, HEPH_E_ARG, "learning rate -1");
    PATCH((void)0, n - 4, HEPH_E_FORMAT, "parameters cut by 4 bytes (checksum valid)");
    PATCH(put32(b + 12, 0), n, HEPH_E_FORMAT, "optimiser state present but flag cleared (trailing bytes)");
    PATCH((memcpy(b + n, good + n - 8, 8), memset(b + n - 8, 0, 8)), n + 8, HEPH_E_FORMAT, "8 trailing bytes");
    PATCH((void)0, off_np + 16, HEPH_E_FORMAT, "cut right after n_params");
#undef PATCH
    {
        heph_vae m;
        long live0 = t_live;
        CHECK(heph_vae_load(&m, tpath("missing.hpm")) == HEPH_E_IO && strstr(m.err, "missing.hpm"),
              "missing file: %s", m.err);
        CHECK(heph_vae_load(&m, t_dir) != HEPH_OK && strstr(m.err, t_dir) && t_live == live0,
              "a folder loaded as a checkpoint: %s", m.err);
    }
    heph_vae_free(&a);
    return 1;
}

/* ============================================================================================ */
/* training: exact resume, evaluate, NaN guard, end-to-end                                       */

/* n pictures (1, s, s) of random horizontal or vertical bars (each line lit with p = 1/4) */
static float *bars_dataset(size_t n, int s, uint64_t seed) {
    float *x = TALLOC(float, n * (size_t)(s * s));
    size_t k;
    int i, j, any;
    tseed(seed);
    for (k = 0; k < n; k++) {
        float *p = x + k * (size_t)(s * s);
        int vertical = (int)(trand64() & 1);
        do {
            any = 0;
            for (i = 0; i < s; i++) {
                int on = (trand64() & 3) == 0;
                any |= on;
                for (j = 0; j < s; j++) p[vertical ? j * s + i : i * s + j] = on ? 1.0f : 0.0f;
            }
        } while (!any);
    }
    return x;
}

/* copy the pictures of batch number t (a fixed shuffle of the data set) into xb */
static void batch_of(float *xb, const float *data, size_t n, size_t pic, int B, int t) {
    int b;
    for (b = 0; b < B; b++) {
        size_t k = ((size_t)t * 7919u + (size_t)b * 104729u) % n;
        memcpy(xb + (size_t)b * pic, data + k * pic, pic * sizeof(float));
    }
}

static int test_exact_resume(void) {
    heph_vae_config cfg;
    heph_vae a, b;
    const int B = 16, k = 5, nsteps = 12;
    const size_t n = 128, pic = 64;
    float *data = bars_dataset(n, 8, 5), *xb = TALLOC(float, (size_t)B * pic), *pa;
    const char *p = tpath("resume.hpm");
    int t;
    small_config(&cfg, 1, 8, 8, 4, "dense32,lrelu0.1", "dense32,relu,dense64", B);
    cfg.lr = 3e-3f;
    CHECK(heph_vae_init(&a, &cfg, 9) == HEPH_OK, "init: %s", a.err);
    for (t = 0; t < k; t++) {
        batch_of(xb, data, n, pic, B, t);
        CHECK(heph_vae_train_step(&a, xb, B, NULL) == HEPH_OK, "step %d: %s", t, a.err);
    }
    CHECK(heph_vae_save(&a, p, 0) == HEPH_OK, "save: %s", a.err);
    for (t = k; t < k + nsteps; t++) {
        batch_of(xb, data, n, pic, B, t);
        CHECK(heph_vae_train_step(&a, xb, B, NULL) == HEPH_OK, "step %d: %s", t, a.err);
    }
    pa = TALLOC(float, a.n_params);
    memcpy(pa, a.params, a.n_params * sizeof(float));
    CHECK(heph_vae_load(&b, p) == HEPH_OK, "load: %s", b.err);
    CHECK(b.step == (uint64_t)k, "loaded step %llu", (unsigned long long)b.step);
    for (t = k; t < k + nsteps; t++) {
        batch_of(xb, data, n, pic, B, t);
        CHECK(heph_vae_train_step(&b, xb, B, NULL) == HEPH_OK, "resumed step %d: %s", t, b.err);
    }
    CHECK(memcmp(pa, b.params, a.n_params * sizeof(float)) == 0, "resumed parameters differ");
    CHECK(memcmp(a.adam_m, b.adam_m, a.n_params * sizeof(float)) == 0 &&
              memcmp(a.adam_v, b.adam_v, a.n_params * sizeof(float)) == 0,
          "resumed Adam state differs");
    CHECK(same_rng(&a.rng, &b.rng) && a.step == b.step, "resumed rng or step differs");
    heph_vae_free(&a);
    heph_vae_free(&b);
    return 1;
}

static int test_evaluate(void) {
    heph_vae_config cfg;
    heph_vae m;
    heph_losses L1, L2, L3, L4;
    heph_rng r0;
    const size_t n = 37, pic = 64;
    float *data = bars_dataset(n, 8, 6), *p0, *x2 = TALLOC(float, 2 * pic);
    float *mu = TALLOC(float, n * 3), *lv = TALLOC(float, n * 3), *mu1 = TALLOC(float, 3),
          *lv1 = TALLOC(float, 3), *dec = TALLOC(float, n * pic);
    size_t i;
    small_config(&cfg, 1, 8, 8, 3, "dense16,tanh", "dense16,tanh,dense64", 8);
    CHECK(heph_vae_init(&m, &cfg, 4) == HEPH_OK, "init: %s", m.err);
    memcpy(x2, data, 2 * pic * sizeof(float));
    CHECK(heph_vae_train_step(&m, x2, 2, NULL) == HEPH_OK, "train: %s", m.err);
    p0 = TALLOC(float, 4 * m.n_params);
    memcpy(p0, m.params, 4 * m.n_params * sizeof(float)); /* params, grads, m, v */
    r0 = m.rng;
    /* n = 37 is not a multiple of max_batch 8: evaluate works in chunks */
    CHECK(heph_vae_evaluate(&m, data, n, 123, &L1) == HEPH_OK, "evaluate: %s", m.err);
    CHECK(heph_vae_evaluate(&m, data, n, 123, &L2) == HEPH_OK, "evaluate again: %s", m.err);
    CHECK(heph_vae_evaluate(&m, data, n, 124, &L3) == HEPH_OK, "evaluate seed 124: %s", m.err);
    CHECK(same_rng(&r0, &m.rng), "evaluate changed the model's rng");
    CHECK(memcmp(p0, m.params, m.n_params * sizeof(float)) == 0, "evaluate changed the parameters");
    CHECK(memcmp(p0 + 2 * m.n_params, m.adam_m, 2 * m.n_params * sizeof(float)) == 0,
          "evaluate changed the Adam state");
    CHECK(memcmp(&L1, &L2, sizeof L1) == 0, "evaluate with the same seed differs");
    CHECK(L1.recon != L3.recon, "evaluate with another seed gives the same recon %.9g", L1.recon);
    CHECK(L1.kl == L3.kl, "KL depends on the noise seed");
    CHECK(t_close(L1.elbo, -(L1.recon + L1.kl), 1e-12, 1e-12) && L1.recon > 0.0 && L1.kl >= 0.0,
          "evaluate terms: recon %g kl %g elbo %g", L1.recon, L1.kl, L1.elbo);
    CHECK(heph_vae_evaluate(&m, data, 0, 1, &L4) == HEPH_E_ARG, "evaluate of 0 pictures");
    /* evaluate of the first 8 (one chunk) == the average of its own terms: chunking consistent */
    {
        heph_losses La, Lb;
        CHECK(heph_vae_evaluate(&m, data, 8, 5, &La) == HEPH_OK, "evaluate 8");
        CHECK(heph_vae_evaluate(&m, data, 8, 5, &Lb) == HEPH_OK && memcmp(&La, &Lb, sizeof La) == 0,
              "evaluate 8 twice");
    }
    /* encode in chunks equals encode of one picture at a time; KL of evaluate matches */
    heph_vae_encode(&m, data, n, mu, lv);
    {
        double kl = 0.0;
        for (i = 0; i < n; i++) {
            heph_vae_encode(&m, data + i * pic, 1, mu1, lv1);
            CHECK(memcmp(mu1, mu + i * 3, 3 * sizeof(float)) == 0 &&
                      memcmp(lv1, lv + i * 3, 3 * sizeof(float)) == 0,
                  "encode of picture %zu alone differs from the chunked encode", i);
            kl += heph_kl_normal(NULL, NULL, mu + i * 3, lv + i * 3, 3, 0.0f);
        }
        CHECK(t_close(kl / (double)n, L1.kl, 1e-9, 1e-9), "evaluate KL %.9g, from encode %.9g", L1.kl, kl / (double)n);
    }
    heph_vae_encode(&m, data, n, mu, NULL);
    heph_vae_decode(&m, mu, n, dec);
    for (i = 0; i < n * pic; i++) CHECK(dec[i] >= 0.0f && dec[i] <= 1.0f, "decoded value %g", (double)dec[i]);
    {
        heph_rng r;
        heph_rng_seed(&r, 1);
        heph_vae_sample(&m, &r, n, dec);
        for (i = 0; i < n * pic; i++) CHECK(dec[i] >= 0.0f && dec[i] <= 1.0f, "sampled value %g", (double)dec[i]);
        CHECK(same_rng(&r0, &m.rng), "sample changed the model's rng");
    }
    heph_vae_free(&m);
    return 1;
}

static int test_nan_guard(void) {
    heph_vae_config cfg;
    heph_vae m;
    const int B = 4;
    float *x = bars_dataset((size_t)B, 4, 8), *p0;
    heph_losses L;
    int s, rc;
    small_config(&cfg, 1, 4, 4, 2, "dense8,relu", "dense8,relu,dense16", B);
    CHECK(heph_vae_init(&m, &cfg, 3) == HEPH_OK, "init: %s", m.err);
    for (s = 0; s < 3; s++) CHECK(heph_vae_train_step(&m, x, B, NULL) == HEPH_OK, "step %d", s);
    p0 = TALLOC(float, 4 * m.n_params);
    memcpy(p0, m.params, 4 * m.n_params * sizeof(float));
    x[21] = NAN;
    rc = heph_vae_train_step(&m, x, B, &L);
    CHECK(rc == HEPH_E_NAN, "NaN pixel: rc %d", rc);
    CHECK(strstr(m.err, "step 3") != NULL, "message \"%s\" does not name step 3", m.err);
    CHECK(memcmp(p0, m.params, m.n_params * sizeof(float)) == 0, "parameters changed by a NaN step");
    CHECK(memcmp(p0 + 2 * m.n_params, m.adam_m, 2 * m.n_params * sizeof(float)) == 0,
          "Adam state changed by a NaN step");
    CHECK(m.step == 3, "step counter moved to %llu", (unsigned long long)m.step);
    x[21] = INFINITY;
    CHECK(heph_vae_train_step(&m, x, B, &L) == HEPH_E_NAN, "Inf pixel accepted");
    /* a non-finite parameter is caught too (in the loss or the gradient) */
    x[21] = 0.0f;
    m.params[m.n_params - 1] = NAN;
    memcpy(p0, m.params, m.n_params * sizeof(float));
    rc = heph_vae_train_step(&m, x, B, &L);
    CHECK(rc == HEPH_E_NAN && strstr(m.err, "step 3"), "NaN parameter: rc %d (%s)", rc, m.err);
    CHECK(memcmp(p0, m.params, m.n_params * sizeof(float)) == 0, "parameters changed by a NaN step");
    m.params[m.n_params - 1] = 0.0f;
    /* a bad batch size is refused */
    CHECK(heph_vae_train_step(&m, x, 0, &L) == HEPH_E_ARG && heph_vae_train_step(&m, x, B + 1, &L) == HEPH_E_ARG,
          "batch 0 or max_batch + 1 accepted");
    /* training goes on afterwards */
    CHECK(heph_vae_train_step(&m, x, B, &L) == HEPH_OK && m.step == 4, "step after the NaN: %s", m.err);
    heph_vae_free(&m);
    return 1;
}

static int test_end_to_end(void) {
    heph_vae_config cfg;
    heph_vae m;
    heph_losses L, E0, E1;
    const size_t n = 512, pic = 64;
    const int B = 32, steps = 300;
    float *data = bars_dataset(n, 8, 1), *xb = TALLOC(float, (size_t)B * pic);
    double first = 0.0, last = 0.0;
    size_t *order = TALLOC(size_t, n), k;
    heph_rng r;
    int t, at = 0;
    small_config(&cfg, 1, 8, 8, 4, "dense64,relu", "dense64,relu,dense64", B);
    cfg.lr = 5e-3f;
    CHECK(heph_vae_init(&m, &cfg, 2) == HEPH_OK, "init: %s", m.err);
    CHECK(heph_vae_evaluate(&m, data, n, 77, &E0) == HEPH_OK, "evaluate: %s", m.err);
    for (k = 0; k < n; k++) order[k] = k;
    heph_rng_seed(&r, 31);
    for (t = 0; t < steps; t++) {
        int b;
        if (t % (int)(n / (size_t)B) == 0) { heph_rng_shuffle(&r, order, n); at = 0; }
        for (b = 0; b < B; b++) memcpy(xb + (size_t)b * pic, data + order[at++] * pic, pic * sizeof(float));
        CHECK(heph_vae_train_step(&m, xb, B, &L) == HEPH_OK, "step %d: %s", t, m.err);
        if (t < 20) first += L.loss / 20.0;
        if (t >= steps - 20) last += L.loss / 20.0;
    }
    CHECK(heph_vae_evaluate(&m, data, n, 77, &E1) == HEPH_OK, "evaluate: %s", m.err);
    if (t_verbose)
        printf("  end-to-end: loss %.3f -> %.3f, -ELBO %.3f -> %.3f\n", first, last, -E0.elbo, -E1.elbo);
    CHECK(last < 0.8 * first, "loss fell only from %.3f to %.3f", first, last);
    CHECK(-E1.elbo < 0.8 * -E0.elbo, "negative ELBO fell only from %.3f to %.3f", -E0.elbo, -E1.elbo);
    CHECK(m.step == (uint64_t)steps, "step %llu", (unsigned long long)m.step);
    heph_vae_free(&m);
    return 1;
}

#ifdef _OPENMP
/* 1 and 2 threads give the same bits (the OpenMP builds only) */
static int test_threads_bitwise(void) {
    heph_vae_config cfg;
    heph_vae a, b;
    const size_t n = 64;
    const int B = 64;
    float *data = bars_dataset(n, 16, 12);
    int t, old = omp_get_max_threads();
    small_config(&cfg, 1, 16, 16, 6, "dense70,relu", "dense70,relu,dense256", B);
    CHECK(heph_vae_init(&a, &cfg, 5) == HEPH_OK && heph_vae_init(&b, &cfg, 5) == HEPH_OK, "init");
    omp_set_num_threads(1);
    for (t = 0; t < 4; t++) heph_vae_train_step(&a, data, B, NULL);
    omp_set_num_threads(2);
    for (t = 0; t < 4; t++) heph_vae_train_step(&b, data, B, NULL);
    omp_set_num_threads(old);
    CHECK(memcmp(a.params, b.params, 4 * a.n_params * sizeof(float)) == 0, "1 and 2 threads differ");
    heph_vae_free(&a);
    heph_vae_free(&b);
    return 1;
}
#endif

/* ============================================================================================ */
/* pictures                                                                                      */

static int test_image_grid(void) {
    /* 5 gray pictures 2x3 in 3 columns, pad 1: width 3*4+1 = 13, height 2*3+1 = 7 */
    const int n = 5, cols = 3, h = 2, w = 3, pad = 1, G = 16;
    float imgs[5 * 6];
    int W = heph_grid_width(cols, w, pad), H = heph_grid_height(n, cols, h, pad), i, y, x, ch;
    uint8_t *buf, *dst;
    size_t bytes;
    CHECK(W == 13 && H == 7, "grid %dx%d, expected 13x7", W, H);
    CHECK(heph_grid_height(6, 3, 2, 1) == 7 && heph_grid_height(7, 3, 2, 1) == 10 &&
              heph_grid_width(1, 28, 0) == 28 && heph_grid_height(1, 1, 28, 0) == 28,
          "grid sizes");
    for (i = 0; i < n * 6; i++) imgs[i] = (float)i / 29.0f;
    imgs[0] = -0.5f; imgs[1] = 1.5f;
    bytes = (size_t)W * (size_t)H * 3;
    buf = TALLOC(uint8_t, bytes + 2 * G);
    memset(buf, 0xA5, bytes + 2 * G);
    dst = buf + G;
    heph_image_grid(dst, imgs, n, cols, 1, h, w, pad);
    for (i = 0; i < G; i++) CHECK(buf[i] == 0xA5 && dst[bytes + (size_t)i] == 0xA5, "guard byte %d overwritten", i);
    for (y = 0; y < H; y++)
        for (x = 0; x < W; x++) {
            int cell = -1, iy = (y - pad) % (h + pad), ix = (x - pad) % (w + pad);
            int want = 96;
            if (y >= pad && x >= pad && iy < h && ix < w) cell = ((y - pad) / (h + pad)) * cols + (x - pad) / (w + pad);
            if (cell >= 0 && cell < n) {
                float v = imgs[cell * 6 + iy * w + ix];
                v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
                want = (int)(v * 255.0f + 0.5f);
            }
            for (ch = 0; ch < 3; ch++)
                CHECK(dst[((size_t)y * (size_t)W + (size_t)x) * 3 + (size_t)ch] == want,
                      "pixel (%d,%d) channel %d = %d, expected %d", x, y, ch,
                      dst[((size_t)y * (size_t)W + (size_t)x) * 3 + (size_t)ch], want);
        }
    CHECK(dst[(1 * (size_t)W + 1) * 3] == 0 && dst[(1 * (size_t)W + 2) * 3] == 255, "clamping");
    /* picture 4 (row 1, column 1) pixel (y 1, x 2) = 29/29 = 1 -> 255 at grid (1+4+2, 1+3+1) */
    CHECK(dst[((size_t)5 * (size_t)W + 7) * 3 + 1] == 255, "last pixel of picture 4");
    /* colour: channel planes go to R, G, B */
    {
        float rgb[3 * 2 * 2] = {1.0f, 0.0f, 0.0f, 0.0f, /* R */ 0.0f, 1.0f, 0.0f, 0.0f, /* G */
                                0.0f, 0.0f, 0.5f, 0.0f /* B */};
        uint8_t out[3 * 2 * 3 + 2 * G], *o = out + G; /* 1 picture 2x2, pad 0: 2x2 pixels */
        memset(out, 0xA5, sizeof out);
        heph_image_grid(o, rgb, 1, 1, 3, 2, 2, 0);
        CHECK(o[0] == 255 && o[1] == 0 && o[2] == 0, "RGB pixel 0");
        CHECK(o[3] == 0 && o[4] == 255 && o[5] == 0, "RGB pixel 1");
        CHECK(o[6] == 0 && o[7] == 0 && o[8] == 128, "RGB pixel 2");
        CHECK(o[9] == 0 && o[10] == 0 && o[11] == 0, "RGB pixel 3");
        CHECK(out[G - 1] == 0xA5 && o[12] == 0xA5, "RGB grid guard bytes");
    }
    return 1;
}

static int test_result_strings(void) {
    int c;
    for (c = HEPH_E_MISMATCH; c <= HEPH_OK; c++)
        CHECK(strcmp(heph_result_string(c), "unknown error") != 0, "code %d has no name", c);
    CHECK(strcmp(heph_result_string(-99), "unknown error") == 0, "code -99");
    CHECK(strcmp(HEPH_VERSION_STRING, "0.1.0") >= 0, "version string");
    return 1;
}

/* ============================================================================================ */

static const struct {
    const char *name;
    int (*fn)(void);
} tests[] = {
    {"result_strings", test_result_strings},
    {"dense_gradcheck", test_dense_gradcheck},
    {"dense_vs_naive", test_dense_vs_naive},
    {"activations_gradcheck", test_activations},
    {"bce_sqerr_gradcheck", test_bce_sqerr},
    {"kl_reparam_gradcheck", test_kl_reparam},
    {"vae_gradcheck", test_vae_gradcheck},
    {"adam", test_adam},
    {"rng", test_rng},
    {"spec_valid", test_spec_valid},
    {"spec_errors", test_spec_errors},
    {"hpd_roundtrip", test_hpd_roundtrip},
    {"hpd_reject", test_hpd_reject},
    {"hpm_roundtrip", test_hpm_roundtrip},
    {"hpm_reject", test_hpm_reject},
    {"exact_resume", test_exact_resume},
    {"evaluate", test_evaluate},
    {"nan_guard", test_nan_guard},
    {"end_to_end", test_end_to_end},
#ifdef _OPENMP
    {"threads_bitwise", test_threads_bitwise},
#endif
    {"image_grid", test_image_grid},
};

int main(int argc, char **argv) {
    int i, k, passed = 0, failed = 0, nsel = 0;
    const char *sel[64];
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-d") && i + 1 < argc) t_dir = argv[++i];
        else if (!strcmp(argv[i], "-v")) t_verbose = 1;
        else if (nsel < 64) sel[nsel++] = argv[i];
    }
    if (getenv("HEPH_TEST_TMP") && t_dir[0] == '.' && t_dir[1] == '\0') t_dir = getenv("HEPH_TEST_TMP");
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (k = 0; k < (int)(sizeof tests / sizeof tests[0]); k++) {
        int ok, j, want = nsel == 0;
        for (j = 0; j < nsel; j++) want |= strcmp(sel[j], tests[k].name) == 0;
        if (!want) continue;
        t_msg[0] = '\0';
        t_live = 0;
        tseed(1000u + (uint64_t)k);
        ok = tests[k].fn();
        if (ok && t_live != 0) {
            snprintf(t_msg, sizeof t_msg, "the library leaked %ld blocks", t_live);
            ok = 0;
        }
        tfree_all();
        if (ok) {
            printf("PASS %s\n", tests[k].name);
            passed++;
        } else {
            printf("FAIL %s: %s\n", tests[k].name, t_msg);
            failed++;
        }
    }
    printf("DONE %d %d\n", passed, failed);
    return failed ? 1 : 0;
}
