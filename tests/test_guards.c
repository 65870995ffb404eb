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
   Harness and usage: tests/test_harness.h.                                                    */
#define T_ALLOC_LIMIT ((size_t)64 << 20)
#define HEPH__SIZE_LIMIT ((uint64_t)0xffffffffu)
#include "test_harness.h"

/* ---- class 4: 64-bit draws ------------------------------------------------------------------ */
static int test_below64(void) {
    heph_rng a, b;
    uint64_t n, x, top = 0;
    int i, same = 1, high = 0;
    heph_rng_seed(&a, 7); heph_rng_seed(&b, 7);
    for (i = 0; i < 1000; i++) {
        n = (uint64_t)1 + (uint64_t)i * 4294967u;
        if (heph_rng_below64(&a, n) != heph_rng_below(&b, (uint32_t)n)) same = 0;
    }
    CHECK(same && a.state == b.state, "below 2^32 the draws differ from rng_below's");
    for (i = 0; i < 200; i++) {
        x = heph_rng_below64(&a, (uint64_t)1 << 32);
        high |= x >= ((uint64_t)1 << 31);
        if (x >= ((uint64_t)1 << 32)) high = -1000;
    }
    CHECK(high == 1, "2^32 does not reach the upper half or does not stay below 2^32");
    n = ((uint64_t)1 << 33) + 1;
    for (i = 0; i < 200; i++) {
        x = heph_rng_below64(&a, n);
        if (x >= n) { top = 0; break; }
        if (x > top) top = x;
    }
    CHECK(top >= ((uint64_t)1 << 32), "2^33 + 1: all draws below 2^32");
    x = heph_rng_below64(&a, UINT64_MAX);
    CHECK(x < UINT64_MAX, "2^64 - 1: out of range");
    return 1;
}

/* ---- class 2: an overflowing Adam update ------------------------------------------------------ */

static int test_update_guard(void) {
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
    CHECK(heph_vae_init(&m, &cfg, 1) == HEPH_OK, "init: %s", m.err);
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
    CHECK(rc == HEPH_E_NAN && strstr(m.err, "Adam update of parameter 3") != NULL,
          "an overflowing Adam update is not refused naming the parameter: %s", m.err);
    same = memcmp(copy, m.params, n * sizeof(float)) == 0 && memcmp(copy + n, m.adam_m, n * sizeof(float)) == 0 &&
           memcmp(copy + 2 * n, m.adam_v, n * sizeof(float)) == 0 && m.step == step;
    free(copy);
    heph_vae_free(&m);
    CHECK(same, "the refused step changed weights, moments or step");
    return 1;
}

/* ---- class 11: 32-bit sizes ------------------------------------------------------------------- */

/* init cfg must fail with HEPH_E_SIZE naming the limit, asking for no block above 64 MB */
static int refused_32bit(int c, int h, int w, const char *enc, const char *dec, int batch) {
    heph_vae m;
    heph_vae_config cfg;
    int rc;
    heph_vae_config_default(&cfg);
    cfg.in_c = c; cfg.in_h = h; cfg.in_w = w; cfg.z_dim = 2; cfg.max_batch = batch;
    strcpy(cfg.enc_spec, enc);
    strcpy(cfg.dec_spec, dec);
    t_max_req = 0;
    rc = heph_vae_init(&m, &cfg, 1);
    if (rc == HEPH_OK) heph_vae_free(&m);
    CHECK(rc == HEPH_E_SIZE && strstr(m.err, "more than this platform can address") != NULL &&
          t_max_req <= ((size_t)64 << 20), "rc %d, largest request %zu bytes: %s", rc, t_max_req, m.err);
    return 1;
}
/* 3.2e9 parameters (51 GB of weights, gradients and moments) refused */
static int test_size32_params(void) {
    return refused_32bit(1, 200, 200, "dense40000,dense40000", "dense40000", 2);
}
/* batch buffers of 65536 x 65536 floats refused */
static int test_size32_batch(void) {
    return refused_32bit(1, 256, 256, "dense2", "dense65536", 65536);
}
/* a GEMM workspace of 2^32 floats refused: conv k64 p63 on 16 x 193 x 193: 256 x 256 positions
   of 16 x 64 x 64 patch values, 2^32 floats of patch rows (a 32-bit size_t wraps them to 0),
   with 65,536 weights */
#ifndef HEPH_REFERENCE_KERNELS
static int test_size32_gemm_ws(void) {
    return refused_32bit(16, 193, 193, "conv1k64s1p63,flatten", "dense595984", 1);
}
#endif

/* the public workspace sizes: (size_t)-1 when size_t cannot hold them, never a wrapped count */
static int test_public_ws(void) {
    heph_conv_geom g;
    size_t c, t;
    heph_conv2d_geom(&g, 16, 193, 193, 1, 64, 1, 63);
    c = heph_conv2d_ws_floats(&g, 1);
    heph_convt2d_geom(&g, 1, 193, 193, 16, 64, 1, 63);
    t = heph_convt2d_ws_floats(&g, 1);
    CHECK(c == (size_t)-1 && t == (size_t)-1 && heph_dense_ws_floats(2, 4, 4) < 4096,
          "conv and conv-transpose workspaces of 2^32 floats: a count size_t cannot hold (wrapped on i686)");
    return 1;
}

static const t_test tests[] = {
    {"rng_below64", test_below64},
    {"update_guard", test_update_guard},
    {"size32_params", test_size32_params},
    {"size32_batch", test_size32_batch},
#ifndef HEPH_REFERENCE_KERNELS /* the reference loops need no workspace: nothing to refuse */
    {"size32_gemm_ws", test_size32_gemm_ws},
#endif
    {"size32_public_ws", test_public_ws},
};
T_MAIN(tests)
