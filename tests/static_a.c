/* static_a.c, static_b.c - HEPHAESTUS_STATIC: each translation unit has its own private copy
   of the library; both link into one program without clashes or unused-function warnings.    */
#define HEPHAESTUS_STATIC
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#include <stdio.h>

unsigned static_b_draw(unsigned long long seed); /* from static_b.c */

static unsigned static_a_draw(unsigned long long seed) {
    heph_rng r;
    heph_rng_seed(&r, seed);
    return heph_rng_u32(&r);
}

int main(void) {
    char err[HEPH_ERRLEN];
    heph_layer L[4];
    int n;
    if (heph_spec_parse("dense3", 1, 2, 2, L, 4, &n, err, sizeof err) != HEPH_OK || L[0].n_params != 15) return 1;
    if (static_a_draw(42) != static_b_draw(42)) {
        printf("the two private copies disagree\n");
        return 1;
    }
    return 0;
}
