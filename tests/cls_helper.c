/* cls_helper.c - helper of tests/test_classifier.sh: writes a small MNIST-like .hpd.

   cls_helper OUT.hpd N SEED [C H W [NVALUES]]
       N pictures of C x H x W (default 1x28x28), u8, over faint noise, in three easy classes
       taken in turn: 0 a bright bar across, 1 a bright bar down (each at a random place),
       2 a bright square in the middle. One factor "class" with NVALUES values (default 10, as
       MNIST's; only 0, 1, 2 occur); NVALUES 0 writes no factor at all.
   Exit status 0 on success; 1 with a message on stderr otherwise.                            */
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void make_pic(heph_rng *r, int cls, int c, int h, int w, uint8_t *px) {
    int at_y = h / 4 + (int)heph_rng_below(r, (uint32_t)(h / 2)), at_x = w / 4 + (int)heph_rng_below(r, (uint32_t)(w / 2));
    int ch, y, x;
    for (ch = 0; ch < c; ch++)
        for (y = 0; y < h; y++)
            for (x = 0; x < w; x++) {
                int on = (cls == 0 && (y == at_y || y == at_y + 1)) || (cls == 1 && (x == at_x || x == at_x + 1)) ||
                         (cls == 2 && 2 * y >= h - 6 && 2 * y < h + 6 && 2 * x >= w - 6 && 2 * x < w + 6);
                px[((size_t)ch * (size_t)h + (size_t)y) * (size_t)w + (size_t)x] =
                    (uint8_t)(on ? 255 : heph_rng_below(r, 60));
            }
}

int main(int argc, char **argv) {
    heph_hpd_info info;
    heph_hpd_writer w;
    heph_rng r;
    uint8_t *px;
    long n, i;
    int c = 1, h = 28, wd = 28, nv = 10;
    if (argc != 4 && argc != 7 && argc != 8) {
        fprintf(stderr, "usage: cls_helper OUT.hpd N SEED [C H W [NVALUES]]\n");
        return 1;
    }
    n = atol(argv[2]);
    if (argc >= 7) { c = atoi(argv[4]); h = atoi(argv[5]); wd = atoi(argv[6]); }
    if (argc == 8) nv = atoi(argv[7]);
    if (n < 1 || c < 1 || h < 4 || wd < 4 || nv < 0 || (nv > 0 && nv < 3)) {
        fprintf(stderr, "cls_helper: bad arguments\n");
        return 1;
    }
    memset(&info, 0, sizeof info);
    info.count = (uint64_t)n;
    info.c = (uint32_t)c; info.h = (uint32_t)h; info.w = (uint32_t)wd;
    info.dtype = HEPH_PX_U8;
    info.value_max = 255.0f;
    info.flags = nv ? HEPH_HPD_LABELS : 0;
    strcpy(info.source, "cls_helper");
    info.n_factors = nv ? 1 : 0;
    if (nv) { strcpy(info.factors[0].name, "class"); info.factors[0].n_values = (uint32_t)nv; }
    px = (uint8_t *)malloc((size_t)c * (size_t)h * (size_t)wd);
    if (!px) { fprintf(stderr, "cls_helper: out of memory\n"); return 1; }
    heph_rng_seed(&r, (uint64_t)atol(argv[3]));
    if (heph_hpd_create(&w, argv[1], &info) != HEPH_OK) { fprintf(stderr, "cls_helper: %s\n", w.err); return 1; }
    for (i = 0; i < n; i++) {
        int32_t cls = (int32_t)(i % 3);
        make_pic(&r, (int)cls, c, h, wd, px);
        if (heph_hpd_put_u8(&w, px, &cls) != HEPH_OK) { fprintf(stderr, "cls_helper: %s\n", w.err); heph_hpd_abort(&w); return 1; }
    }
    if (heph_hpd_finish(&w) != HEPH_OK) { fprintf(stderr, "cls_helper: %s\n", w.err); return 1; }
    free(px);
    return 0;
}
