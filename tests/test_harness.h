/* test_harness.h - the one harness of the unit-test programs tests/test_*.c; no framework.

   A test is an int function returning 1 (pass) or 0 (fail, with the reason in t_msg, which
   CHECK and t_failf write). A program includes this header instead of hephaestus.h (after any
   HEPH__ setting it needs), lists its tests in a table and ends with T_MAIN:

       static int test_adam(void) { ...; CHECK(w == want, "w %g, want %g", w, want); return 1; }
       static const t_test tests[] = {{"adam", test_adam}, ...};
       T_MAIN(tests)

   usage: test_X [-d TMPDIR] [-f FIXTURE_DIR] [-v] [name ...]
     TMPDIR       where tests write files (tpath); also from $HEPH_TEST_TMP; default "."
     FIXTURE_DIR  reference values (tfixture); default tests/fixtures
     -v           tests may print details (t_verbose)
     name ...     run only the tests of these names
   Prints one line per test, "PASS name" or "FAIL name: why", then "DONE <passed> <failed>";
   exit status 0 when every test passed.

   Every allocation of the library goes through a counting allocator (HEPH_MALLOC/HEPH_FREE), so
   every test also fails when the library leaks. t_max_req is the largest single request since
   the test started (or a test's own reset): a malformed header must not make a reader
   allocate. t_fail_after = k makes the allocation after k more fail. A program that defines
   T_ALLOC_LIMIT (bytes) before including this header has every larger request refused, so a
   regression fails a test instead of exhausting the machine. Before each test the harness
   zeroes these counters, resets t_fail_after to -1 and the test-data generator to seed 1;
   after it, it frees the test's TALLOC buffers. */
#ifndef TEST_HARNESS_H
#define TEST_HARNESS_H
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdint.h>

/* ---- counting allocator for the library --------------------------------------------------- */
static long t_live;            /* library blocks currently allocated */
static size_t t_max_req;       /* largest single request since the last reset */
static long t_fail_after = -1; /* >= 0: the allocation after that many more fails */
static void *t_malloc(size_t n) {
    void *p;
    if (n > t_max_req) t_max_req = n;
#ifdef T_ALLOC_LIMIT
    if (n > (size_t)(T_ALLOC_LIMIT)) return NULL;
#endif
    if (t_fail_after == 0) return NULL;
    if (t_fail_after > 0) t_fail_after--;
    p = malloc(n);
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

/* ---- failing with a reason ------------------------------------------------------------------- */
static char t_msg[1024];
static int t_verbose;
/* printed before each test's name: "test_X/" when several programs share one (tests/run.sh) */
static const char *t_prefix = "";
static const char *t_dir = ".";
static const char *t_fixdir = "tests/fixtures";

/* t_msg = "line LINE: " + the printf message; returns 0 (the test's failure) */
static inline int t_failf(int line, const char *fmt, ...) {
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

/* ---- test-owned buffers, zeroed, all freed by the harness after each test -------------------- */
#define T_MAXBUF 512
static void *t_bufs[T_MAXBUF];
static int t_nbufs;
static inline void *talloc(size_t n) {
    void *p = calloc(n ? n : 1, 1);
    if (!p || t_nbufs == T_MAXBUF) {
        fprintf(stderr, "test harness: out of test buffers\n");
        exit(2);
    }
    t_bufs[t_nbufs++] = p;
    return p;
}
#define TALLOC(T, n) ((T *)talloc((size_t)(n) * sizeof(T)))

/* a path inside the temporary folder, or inside the fixture folder (four rotating buffers) */
static inline const char *t_join(const char *dir, const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}
static inline const char *tpath(const char *name) { return t_join(t_dir, name); }
static inline const char *tfixture(const char *name) { return t_join(t_fixdir, name); }

/* ---- test data: splitmix64, independent of the library's RNG ---------------------------------- */
static uint64_t t_state = 1;
static inline void tseed(uint64_t s) { t_state = s; }
static inline uint64_t trand64(void) {
    uint64_t z = (t_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline float tunif(float lo, float hi) {
    return lo + (hi - lo) * ((float)(trand64() >> 40) * (1.0f / 16777216.0f));
}
static inline double tnormal(void) {
    double u1 = ((double)(trand64() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double u2 = (double)(trand64() >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
static inline void tfill(float *p, size_t n, float lo, float hi) {
    size_t i;
    for (i = 0; i < n; i++) p[i] = tunif(lo, hi);
}
/* uniform values with |v| >= gap: keeps kinks (relu at 0) out of a finite difference */
static inline void tfill_away(float *p, size_t n, float lo, float hi, float gap) {
    size_t i;
    for (i = 0; i < n; i++) {
        do { p[i] = tunif(lo, hi); } while (fabsf(p[i]) < gap);
    }
}

/* ---- numbers -------------------------------------------------------------------------------- */
/* x rounded to float: on x87 (i686) a float expression may carry more precision, and clang
   does not round it at a cast; a volatile store does */
static inline float t_f32(float x) {
    volatile float v = x;
    return v;
}
/* |a - b| <= atol + rtol * max(|a|, |b|)   (NaN never passes) */
static inline int t_close(double a, double b, double atol, double rtol) {
    double d = fabs(a - b), s = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return d <= atol + rtol * s;
}

/* ---- bytes and files ------------------------------------------------------------------------ */
static inline void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}
static inline void put64(unsigned char *p, uint64_t v) {
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t get64(const unsigned char *p) {
    return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}
static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* FNV-1a 64 (written here again, independent of the library's copy) */
static inline uint64_t fnv1a64(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static inline int write_bytes(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok;
    if (!f) return 0;
    ok = fwrite(b, 1, n, f) == n;
    return (fclose(f) == 0) && ok;
}
/* whole file into a test buffer (with 64 spare bytes), NULL (and *n 0) if it cannot be read */
static inline unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *b;
    long sz;
    *n = 0;
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

/* ---- a small model ---------------------------------------------------------------------------- */
/* defaults, then c x h x w pictures, z latents, the two network specs and the batch size */
static inline void small_config(heph_vae_config *cfg, int c, int h, int w, int z, const char *enc,
                                const char *dec, int batch) {
    heph_vae_config_default(cfg);
    cfg->in_c = c; cfg->in_h = h; cfg->in_w = w; cfg->z_dim = z;
    strcpy(cfg->enc_spec, enc);
    strcpy(cfg->dec_spec, dec);
    cfg->max_batch = batch;
}
/* the same generator state (the spare normal included) */
static inline int same_rng(const heph_rng *a, const heph_rng *b) {
    return a->state == b->state && a->inc == b->inc && a->has_spare == b->has_spare &&
           memcmp(&a->spare, &b->spare, sizeof a->spare) == 0;
}

/* a scalar loss of the current contents of the buffers behind ctx */
typedef double (*t_lossfn)(void *ctx);

/* central differences: d f / d p[i] = (f(p+h) - f(p-h)) / (p+h - p-h), with the step taken
   from the float values actually stored; compared with ana[i] for every i < n.              */
static inline int gradcheck(const char *what, t_lossfn f, void *ctx, float *p, const float *ana, size_t n,
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

/* ---- the runner ------------------------------------------------------------------------------- */
typedef struct {
    const char *name;
    int (*fn)(void);
} t_test;

static int t_main(int argc, char **argv, const t_test *tests, int n) {
    int i, k, passed = 0, failed = 0, nsel = 0;
    const char *sel[64];
    const char *env = getenv("HEPH_TEST_TMP");
    if (env && *env) t_dir = env;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-d") && i + 1 < argc) t_dir = argv[++i];
        else if (!strcmp(argv[i], "-f") && i + 1 < argc) t_fixdir = argv[++i];
        else if (!strcmp(argv[i], "-v")) t_verbose = 1;
        else if (nsel < 64) sel[nsel++] = argv[i];
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (k = 0; k < n; k++) {
        int ok, j, want = nsel == 0;
        for (j = 0; j < nsel; j++) want |= strcmp(sel[j], tests[k].name) == 0;
        if (!want) continue;
        t_msg[0] = '\0';
        t_live = 0;
        t_max_req = 0;
        t_fail_after = -1;
        tseed(1);
        ok = tests[k].fn();
        if (ok && t_live != 0) {
            snprintf(t_msg, sizeof t_msg, "the library leaked %ld blocks", t_live);
            ok = 0;
        }
        while (t_nbufs) free(t_bufs[--t_nbufs]);
        if (ok) {
            printf("PASS %s%s\n", t_prefix, tests[k].name);
            passed++;
        } else {
            printf("FAIL %s%s: %s\n", t_prefix, tests[k].name, t_msg);
            failed++;
        }
    }
    printf("DONE %d %d\n", passed, failed);
    return failed ? 1 : 0;
}
/* the program's main: run the table TESTS */
#define T_MAIN(tests) \
    int main(int argc, char **argv) { return t_main(argc, argv, tests, (int)(sizeof tests / sizeof tests[0])); }

#endif
