/* determinism.c - trains three small VAEs on synthetic pictures and prints FNV-1a 64 hashes
   of the final parameter bytes (and of the Adam state): an MLP; an MLP whose products have a
   full and a short k block over enough output panels for the GEMM to split them between
   threads (the shape of the issue #17 race); and a conv net whose batch is cut into slices
   (HEPH_CONV_SLICES) and whose dense layers are wide enough for the GEMM to split its panels.
   tests/run.sh builds it without and with OpenMP and runs it with 1, 2 and 3 threads: every
   hash must be the same. tests/check_tsan.sh runs it under ThreadSanitizer.
   usage: determinism     prints "params <hash> adam <hash> loss <last loss>" for each model */
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a64(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* train STEPS steps of the model (enc, dec) on x; print the hashes */
static int run(const char *name, const float *x, const char *enc, const char *dec) {
    enum { N = 512, S = 16, B = 64, STEPS = 30 };
    const size_t pic = (size_t)S * S;
    heph_vae_config cfg;
    heph_vae m;
    heph_losses L;
    heph_rng r;
    float *xb = (float *)malloc(B * pic * sizeof(float));
    size_t order[N], k;
    int t, at = 0;
    memset(&L, 0, sizeof L);
    if (!xb) return 2;
    heph_rng_seed(&r, 99);
    for (k = 0; k < N; k++) order[k] = k;
    heph_vae_config_default(&cfg);
    cfg.in_c = 1; cfg.in_h = S; cfg.in_w = S;
    cfg.z_dim = 8;
    cfg.max_batch = B;
    strcpy(cfg.enc_spec, enc);
    strcpy(cfg.dec_spec, dec);
    cfg.lr = 2e-3f;
    if (heph_vae_init(&m, &cfg, 7) != HEPH_OK) {
        fprintf(stderr, "determinism: %s: %s\n", name, m.err);
        free(xb);
        return 2;
    }
    for (t = 0; t < STEPS; t++) {
        int b;
        if (at + B > N) at = 0;
        if (at == 0) heph_rng_shuffle(&r, order, N);
        for (b = 0; b < B; b++) memcpy(xb + (size_t)b * pic, x + order[at++] * pic, pic * sizeof(float));
        if (heph_vae_train_step(&m, xb, B, &L) != HEPH_OK) {
            fprintf(stderr, "determinism: %s: step %d: %s\n", name, t, m.err);
            heph_vae_free(&m);
            free(xb);
            return 2;
        }
    }
    printf("%s params %016llx adam %016llx loss %.9g\n", name,
           (unsigned long long)fnv1a64(0xcbf29ce484222325ull, m.params, m.n_params * sizeof(float)),
           (unsigned long long)fnv1a64(0xcbf29ce484222325ull, m.adam_m, 2 * m.n_params * sizeof(float)),
           L.loss);
    heph_vae_free(&m);
    free(xb);
    return 0;
}

int main(void) {
    enum { N = 512, S = 16 };
    const size_t pic = (size_t)S * S;
    float *x = (float *)malloc(N * pic * sizeof(float));
    heph_rng r;
    size_t k;
    int i, j, rc;
    if (!x) return 2;
    /* pictures: a soft blob at a random place plus a random bar, values in [0,1] */
    heph_rng_seed(&r, 2024);
    for (k = 0; k < N; k++) {
        float cx = heph_rng_uniform(&r) * S, cy = heph_rng_uniform(&r) * S;
        int bar = (int)heph_rng_below(&r, S), vert = (int)heph_rng_below(&r, 2);
        for (i = 0; i < S; i++)
            for (j = 0; j < S; j++) {
                float dx = (float)j - cx, dy = (float)i - cy, v = 1.0f / (1.0f + 0.2f * (dx * dx + dy * dy));
                if ((vert ? j : i) == bar) v = 1.0f;
                x[k * pic + (size_t)(i * S + j)] = v;
            }
    }
    rc = run("mlp", x, "dense100,relu,dense50,tanh", "dense50,lrelu,dense100,sigmoid,dense256");
    /* (1,16,16) -> (8,8,8) -> (16,4,4) -> 256 -> 512 -> 16; the decoder mirrors it */
    /* K = 300 and 400 (a full k block of 256 and a short one) with >= 12 panels of outputs: the
       GEMM splits panels between threads, which reach the short block at different times */
    if (!rc) rc = run("mlp-wide", x, "dense300,relu,dense400,relu", "dense400,relu,dense300,relu,dense256");
    if (!rc)
        rc = run("cnn", x, "conv8k4s2p1,relu,conv16k4s2p1,relu,flatten,dense512,relu",
                 "dense512,relu,dense256,relu,reshape16x4x4,convt8k4s2p1,relu,convt1k4s2p1");
    free(x);
    return rc;
}
