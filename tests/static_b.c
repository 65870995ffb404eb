/* the second translation unit of the HEPHAESTUS_STATIC check (see static_a.c) */
#define HEPHAESTUS_STATIC
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"

unsigned static_b_draw(unsigned long long seed);

unsigned static_b_draw(unsigned long long seed) {
    heph_rng r;
    float u;
    heph_rng_seed(&r, seed);
    u = heph_rng_uniform(&r); /* draws once more: reseed for the compared value */
    (void)u;
    heph_rng_seed(&r, seed);
    return heph_rng_u32(&r);
}
