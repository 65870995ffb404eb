/* compile_check.c - the header as a C user sees it: built by tests/run.sh with gcc -std=c99,
   gcc -std=c11 and clang -std=c99, with and without -fopenmp, -Wall -Wextra -Wpedantic -Werror,
   then run (a few calls, each checked).                                                        */
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#include <string.h>

int main(void) {
    heph_vae_config cfg;
    heph_vae m;
    heph_layer layers[HEPH_MAX_LAYERS];
    heph_rng r;
    float x[2 * 16], out[2 * 16];
    char err[HEPH_ERRLEN];
    int n, i;
    heph_rng_seed(&r, 1);
    for (i = 0; i < 32; i++) x[i] = heph_rng_uniform(&r);
    if (heph_spec_parse("dense8,relu", 1, 4, 4, layers, HEPH_MAX_LAYERS, &n, err, sizeof err) != HEPH_OK || n != 2)
        return 1;
    heph_vae_config_default(&cfg);
    cfg.in_h = cfg.in_w = 4;
    cfg.z_dim = 2;
    cfg.max_batch = 2;
    strcpy(cfg.enc_spec, "dense8,relu");
    strcpy(cfg.dec_spec, "dense8,relu,dense16");
    if (heph_vae_init(&m, &cfg, 3) != HEPH_OK) return 2;
    if (heph_vae_train_step(&m, x, 2, NULL) != HEPH_OK) return 3;
    heph_vae_sample(&m, &r, 2, out);
    heph_vae_free(&m);
    return out[0] >= 0.0f && out[0] <= 1.0f ? 0 : 4;
}
