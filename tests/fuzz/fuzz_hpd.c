/* fuzz_hpd.c - libFuzzer target: the .hpd dataset reader (heph_hpd_open, heph_hpd_read,
   heph_hpd_read_range, heph_hpd_label). The input is written to a file and opened; when it
   opens, a few pictures are read (first, last, a range) and every label is looked at, and the
   decoded values must be finite for the integer pixel types.                              */
#include "fuzz_common.h"
#define HEPH_FSEEK(fp, off, whence) fseeko((fp), (off_t)(off), (whence))
#define HEPH_FTELL(fp) ((uint64_t)ftello(fp))
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    heph_hpd d;
    const char *path = fuzz_file("in.hpd", data, size);
    size_t np, n, i, idx[3];
    float *x;
    uint32_t k;
    long sum = 0;
    if (!path) return 0;
    if (heph_hpd_open(&d, path) != HEPH_OK) {
        if (!memchr(d.err, 0, sizeof d.err) || d.err[0] == '\0') abort(); /* a message, always */
        return 0;
    }
    np = heph_hpd_picture_size(&d.info);
    if (np == 0 || d.fp == NULL || d.raw == NULL) abort();
    n = d.info.count < 3 ? (size_t)d.info.count : 3;
    x = (float *)malloc(3 * np * sizeof(float));
    if (x) {
        idx[0] = (size_t)d.info.count - 1; idx[1] = 0; idx[2] = (size_t)(d.info.count / 2);
        if (heph_hpd_read(&d, idx, n, x) != HEPH_OK) abort(); /* the size checks passed */
        if (heph_hpd_read_range(&d, (size_t)d.info.count - n, n, x) != HEPH_OK) abort();
        if (d.info.dtype != HEPH_PX_F32)
            for (i = 0; i < n * np; i++)
                if (!(x[i] == x[i]) || x[i] - x[i] != 0.0f) abort();
        /* out of range requests fail cleanly */
        idx[0] = (size_t)d.info.count;
        if (heph_hpd_read(&d, idx, 1, x) == HEPH_OK) abort();
        if (heph_hpd_read_range(&d, (size_t)d.info.count, 1, x) == HEPH_OK) abort();
        free(x);
    }
    for (i = 0; i < (size_t)d.info.count && i < 1000; i++)
        for (k = 0; k < d.info.n_factors; k++) sum += heph_hpd_label(&d, i, (int)k);
    for (k = 0; k < d.info.n_factors; k++)
        if (d.info.factors[k].values) sum += (long)(d.info.factors[k].values[0] == 0.0);
    heph_hpd_close(&d);
    return (int)(sum & 0);
}
