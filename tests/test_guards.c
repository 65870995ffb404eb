/* test_guards.c - library guards of issue #20 (reliability round 2) tested through the API:
     - heph_rng_below64: below 2^32 it is heph_rng_below draw for draw (old runs keep their
       bits); for 2^32 and 2^33 + 1 it reaches the top half and the top value's range, and
       2^64 - 1 returns (class 4);
     - a training step whose Adam update would overflow (a dead unit's weight with first
       moment 3e38 and second moment 0) is refused with HEPH_E_NAN and leaves weights, moments and step untouched
       (class 2).
   Prints "PASS name" / "FAIL name: why" lines; exit status 1 when one failed.              */
#include <stdio.h>
#include <string.h>
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

int main(void) {
    test_below64();
    test_update_guard();
    return failed;
}
