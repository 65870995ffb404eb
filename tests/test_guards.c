/* test_guards.c - library guards of issue #20 (reliability round 2) tested through the API:
     - heph_rng_below64: below 2^32 it is heph_rng_below draw for draw (old runs keep their
       bits); for 2^32 and 2^33 + 1 it reaches the top half and the top value's range, and
       2^64 - 1 returns (class 4);
     - a training step whose Adam update would overflow (a dead unit's weight with first
       moment 3e38 and second moment 0) is refused with HEPH_E_NAN and leaves weights, moments and step untouched
       (class 2).
     - with the library's size limit set to 2^32 - 1 (a 32-bit size_t; on i686 under
       make test-cross it is the real one), a model of 3.2e9 parameters and one whose batch
       buffers hold 2^32 floats are refused with HEPH_E_SIZE before any large allocation
       (class 11; the allocator refuses anything above 64 MB and records the largest request);
       so is a conv layer whose GEMM workspace (patch rows) alone is 2^32 floats, and the public
       *_ws_floats say (size_t)-1 for it rather than a wrapped count.
   Prints "PASS name" / "FAIL name: why" lines; exit status 1 when one failed.              */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

static size_t t_max_req;
static void *t_malloc(size_t n) {
    if (n > t_max_req) t_max_req = n;
    return n > ((size_t)64 << 20) ? NULL : malloc(n);
}
#define HEPH_MALLOC(sz) t_malloc(sz)
#define HEPH_FREE(p) free(p)
#define HEPH__SIZE_LIMIT ((uint64_t)0xffffffffu)
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"

static int failed;
static void check(int ok, const char *name, const char *why) {
    if (ok) printf("PASS %s\n", name);
    else { printf("FAIL %s: %s\n", name, why); failed = 1; }
}

static void test_below64(void) {
    heph_rng a, b;
    uint64_t n, x, top = 0;
    int i, same = 1, high = 0;
    heph_rng_seed(&a, 7); heph_rng_seed(&b, 7);
    for (i = 0; i < 1000; i++) {
        n = (uint64_t)1 + (uint64_t)i * 4294967u;
        if (heph_rng_below64(&a, n) != heph_rng_below(&b, (uint32_t)n)) same = 0;
    }
    check(same && a.state == b.state, "rng_below64: below 2^32 the same draws as rng_below", "draws differ");
    for (i = 0; i < 200; i++) {
        x = heph_rng_below64(&a, (uint64_t)1 << 32);
        high |= x >= ((uint64_t)1 << 31);
        if (x >= ((uint64_t)1 << 32)) high = -1000;
    }
    check(high == 1, "rng_below64: 2^32 reaches the upper half and stays below 2^32", "range wrong");
    n = ((uint64_t)1 << 33) + 1;
    for (i = 0; i < 200; i++) {
        x = heph_rng_below64(&a, n);
        if (x >= n) { top = 0; break; }
        if (x > top) top = x;
    }
    check(top >= ((uint64_t)1 << 32), "rng_below64: 2^33 + 1 draws above 2^32", "all draws below 2^32");
    x = heph_rng_below64(&a, UINT64_MAX);
    check(x < UINT64_MAX, "rng_below64: 2^64 - 1 returns", "out of range");
}

static void test_update_guard(void) {
    heph_vae m;
    heph_vae_config cfg;
    heph_losses L;
    float x[2 * 4], *copy;
    size_t n, i;
    int rc, same = 1;
    uint64_t step;
    heph_vae_config_default(&cfg);
    cfg.in_c = 1; cfg.in_h = 2; cfg.in_w = 2; cfg.z_dim = 2; cfg.max_batch = 2;
    strcpy(cfg.enc_spec, "dense4,relu");
    strcpy(cfg.dec_spec, "dense4");
    if (heph_vae_init(&m, &cfg, 1) != HEPH_OK) { check(0, "update guard: init", m.err); return; }
    for (i = 0; i < 8; i++) x[i] = 0.5f;
    rc = heph_vae_train_step(&m, x, 2, &L);
    n = m.n_params;
    /* finite values a checkpoint may hold: weight 3 (of hidden unit 0) -1e30 makes the unit
       dead (ReLU of about -5e29), so its gradient is 0; first moment 3e38 and second moment 0
       then make the update 3e38 lr / eps: Inf */
    m.params[3] = -1e30f;
    m.adam_m[3] = 3e38f;
    m.adam_v[3] = 0.0f;
    copy = (float *)malloc(3 * n * sizeof(float));
    memcpy(copy, m.params, n * sizeof(float));
    memcpy(copy + n, m.adam_m, n * sizeof(float));
    memcpy(copy + 2 * n, m.adam_v, n * sizeof(float));
    step = m.step;
    rc = heph_vae_train_step(&m, x, 2, &L);
    check(rc == HEPH_E_NAN && strstr(m.err, "Adam update of parameter 3") != NULL,
          "update guard: an overflowing Adam update is refused, naming the parameter", m.err);
    same = memcmp(copy, m.params, n * sizeof(float)) == 0 && memcmp(copy + n, m.adam_m, n * sizeof(float)) == 0 &&
           memcmp(copy + 2 * n, m.adam_v, n * sizeof(float)) == 0 && m.step == step;
    check(same, "update guard: weights, moments and step untouched", "the refused step changed the state");
    free(copy);
    heph_vae_free(&m);
}

/* init cfg must fail with HEPH_E_SIZE naming the limit, asking for no block above 64 MB */
static void refused_32bit(const char *name, int c, int h, int w, const char *enc, const char *dec, int batch) {
    heph_vae m;
    heph_vae_config cfg;
    int rc;
    char why[400];
    heph_vae_config_default(&cfg);
    cfg.in_c = c; cfg.in_h = h; cfg.in_w = w; cfg.z_dim = 2; cfg.max_batch = batch;
    strcpy(cfg.enc_spec, enc);
    strcpy(cfg.dec_spec, dec);
    t_max_req = 0;
    rc = heph_vae_init(&m, &cfg, 1);
    snprintf(why, sizeof why, "rc %d, largest request %zu bytes: %s", rc, t_max_req, m.err);
    check(rc == HEPH_E_SIZE && strstr(m.err, "more than this platform can address") != NULL &&
          t_max_req <= ((size_t)64 << 20), name, why);
    if (rc == HEPH_OK) heph_vae_free(&m);
}

/* the public workspace sizes: (size_t)-1 when size_t cannot hold them, never a wrapped count */
static void test_public_ws(void) {
    heph_conv_geom g;
    size_t c, t;
    heph_conv2d_geom(&g, 16, 193, 193, 1, 64, 1, 63);
    c = heph_conv2d_ws_floats(&g, 1);
    heph_convt2d_geom(&g, 1, 193, 193, 16, 64, 1, 63);
    t = heph_convt2d_ws_floats(&g, 1);
    check(c == (size_t)-1 && t == (size_t)-1 && heph_dense_ws_floats(2, 4, 4) < 4096,
          "32-bit sizes: conv and conv-transpose workspaces of 2^32 floats are (size_t)-1", "a count size_t cannot hold (wrapped on i686)");
}

int main(void) {
    test_below64();
    test_update_guard();
    refused_32bit("32-bit sizes: 3.2e9 parameters (51 GB of weights, gradients and moments) refused", 1, 200, 200,
                  "dense40000,dense40000", "dense40000", 2);
    refused_32bit("32-bit sizes: batch buffers of 65536 x 65536 floats refused", 1, 256, 256, "dense2", "dense65536", 65536);
    /* conv k64 p63 on 16 x 193 x 193: 256 x 256 positions of 16 x 64 x 64 patch values, 2^32
       floats of patch rows (a 32-bit size_t wraps them to 0), with 65,536 weights */
    refused_32bit("32-bit sizes: a GEMM workspace of 2^32 floats (conv k64 p63 patch rows) refused", 16, 193, 193,
                  "conv1k64s1p63,flatten", "dense595984", 1);
    test_public_ws();
    return failed;
}
