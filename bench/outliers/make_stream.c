/* make_stream.c - a batch far larger than memory for `outliers --stream` (issue #21 item 6):
   N pictures, each a copy of a picture drawn at random from NORMAL.hpd or, with probability
   RATE, from FOREIGN.hpd; factor is_outlier (0/1) says which. The pictures are not altered:
   the point is the size (10 M MNIST-size pictures are 7.8 GB), not new content. Both sets
   are held in memory as bytes; the output is written through the library's .hpd writer
   (a temporary file renamed into place at the end).
     make_stream NORMAL.hpd FOREIGN.hpd N RATE SEED OUT.hpd
   Build: cc -std=c99 -O2 -I. bench/outliers/make_stream.c -o build/make_stream -lm       */
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#include <stdio.h>
#include <stdlib.h>

/* every picture of path as bytes (n, np); the shape into info */
static uint8_t *load_bytes(const char *path, heph_hpd_info *info, size_t *n) {
    heph_hpd d;
    size_t np, i, j;
    float *x;
    uint8_t *b;
    if (heph_hpd_open(&d, path) != HEPH_OK) { fprintf(stderr, "make_stream: %s\n", d.err); exit(1); }
    *info = d.info;
    np = heph_hpd_picture_size(&d.info);
    *n = (size_t)d.info.count;
    x = (float *)malloc(*n * np * sizeof(float));
    b = (uint8_t *)malloc(*n * np);
    if (!x || !b) { fprintf(stderr, "make_stream: %s: out of memory\n", path); exit(1); }
    if (heph_hpd_read_range(&d, 0, *n, x) != HEPH_OK) { fprintf(stderr, "make_stream: %s\n", d.err); exit(1); }
    for (i = 0; i < *n; i++)
        for (j = 0; j < np; j++) b[i * np + j] = (uint8_t)(x[i * np + j] * 255.0f + 0.5f);
    free(x);
    heph_hpd_close(&d);
    return b;
}

int main(int argc, char **argv) {
    heph_hpd_info ni, fi, oi;
    heph_hpd_writer w;
    heph_rng rng;
    size_t nn, nf, np, i;
    uint8_t *normal, *foreign;
    double rate;
    long long n;
    if (argc != 7) {
        fprintf(stderr, "usage: make_stream NORMAL.hpd FOREIGN.hpd N RATE SEED OUT.hpd\n");
        return 2;
    }
    n = atoll(argv[3]);
    rate = atof(argv[4]);
    if (n < 1 || !(rate >= 0.0 && rate <= 1.0)) { fprintf(stderr, "make_stream: N >= 1 and 0 <= RATE <= 1\n"); return 2; }
    normal = load_bytes(argv[1], &ni, &nn);
    foreign = load_bytes(argv[2], &fi, &nf);
    if (ni.c != fi.c || ni.h != fi.h || ni.w != fi.w) { fprintf(stderr, "make_stream: the two sets differ in shape\n"); return 1; }
    np = heph_hpd_picture_size(&ni);
    memset(&oi, 0, sizeof oi);
    oi.count = (uint64_t)n; oi.c = ni.c; oi.h = ni.h; oi.w = ni.w;
    oi.dtype = HEPH_PX_U8; oi.value_max = 255.0f; oi.flags = HEPH_HPD_LABELS | HEPH_HPD_GENERATED;
    oi.seed = (uint64_t)atoll(argv[5]);
    snprintf(oi.source, sizeof oi.source, "stream");
    oi.n_factors = 1;
    snprintf(oi.factors[0].name, sizeof oi.factors[0].name, "is_outlier");
    oi.factors[0].n_values = 2;
    if (heph_hpd_create(&w, argv[6], &oi) != HEPH_OK) { fprintf(stderr, "make_stream: %s\n", w.err); return 1; }
    heph_rng_seed(&rng, oi.seed);
    for (i = 0; i < (size_t)n; i++) {
        int32_t out = heph_rng_uniform(&rng) < rate;
        size_t j = (size_t)(heph_rng_u32(&rng) % (uint32_t)(out ? nf : nn));
        if (heph_hpd_put_u8(&w, (out ? foreign : normal) + j * np, &out) != HEPH_OK) {
            fprintf(stderr, "make_stream: %s\n", w.err);
            heph_hpd_abort(&w);
            return 1;
        }
        if ((i + 1) % 1000000 == 0) fprintf(stderr, "make_stream: %zu of %lld pictures\n", i + 1, n);
    }
    if (heph_hpd_finish(&w) != HEPH_OK) { fprintf(stderr, "make_stream: %s\n", w.err); return 1; }
    printf("wrote %s: %lld pictures (%.2f GB of pixels)\n", argv[6], n, (double)n * (double)np / 1e9);
    free(normal); free(foreign);
    return 0;
}
