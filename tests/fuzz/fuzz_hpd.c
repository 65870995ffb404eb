/* fuzz_hpd.c - libFuzzer target: the .hpd dataset reader (heph_hpd_open, heph_hpd_read,
   heph_hpd_read_range, heph_hpd_label). The input is written to a file and opened; when it
   opens, a few pictures are read (first, last, a range) and every label is looked at.
   Semantic checks after a successful open (issue #20), each an abort, i.e. a finding: a count
   of pictures or labels the file cannot hold, a value_max or factor value that is not finite
   (or value_max <= 0), a decoded value outside [0, 1] or not finite (any pixel type: the
   reader divides by value_max and refuses f32 values outside [0, value_max]), a label outside
   0..n_values-1 of its factor.                                                              */
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
    int rc;
    if (!path) return 0;
    if (heph_hpd_open(&d, path) != HEPH_OK) {
        if (!memchr(d.err, 0, sizeof d.err) || d.err[0] == '\0') abort(); /* a message, always */
        return 0;
    }
    np = heph_hpd_picture_size(&d.info);
    if (np == 0 || d.fp == NULL || d.raw == NULL) abort();
    /* lying counts: the pixels and the labels the header promises must lie in the file */
    if (d.info.count == 0 || d.info.count > (uint64_t)size / d.image_bytes) abort();
    if ((uint64_t)d.info.n_factors * 4u > (uint64_t)size / d.info.count) abort();
    if (!(d.info.value_max > 0.0f) || d.info.value_max - d.info.value_max != 0.0f) abort();
    for (k = 0; k < d.info.n_factors; k++) {
        uint32_t v;
        if (d.info.factors[k].n_values == 0) abort();
        if (d.info.factors[k].values && d.info.factors[k].n_values <= 4096)
            for (v = 0; v < d.info.factors[k].n_values; v++)
                if (d.info.factors[k].values[v] - d.info.factors[k].values[v] != 0.0) abort(); /* NaN or Inf */
    }
    n = d.info.count < 3 ? (size_t)d.info.count : 3;
    x = (float *)malloc(3 * np * sizeof(float));
    if (x) {
        idx[0] = (size_t)d.info.count - 1; idx[1] = 0; idx[2] = (size_t)(d.info.count / 2);
        /* the size checks passed: a read fails only on a stored value outside [0, value_max] */
        rc = heph_hpd_read(&d, idx, n, x);
        if (rc == HEPH_OK) rc = heph_hpd_read_range(&d, (size_t)d.info.count - n, n, x);
        if (rc != HEPH_OK && (rc != HEPH_E_FORMAT || !strstr(d.err, "value_max"))) abort();
        for (i = 0; rc == HEPH_OK && i < n * np; i++) /* every pixel type: [0, 1], so finite */
            if (!(x[i] >= 0.0f && x[i] <= 1.0f)) abort();
        /* out of range requests fail cleanly */
        idx[0] = (size_t)d.info.count;
        if (heph_hpd_read(&d, idx, 1, x) == HEPH_OK) abort();
        if (heph_hpd_read_range(&d, (size_t)d.info.count, 1, x) == HEPH_OK) abort();
        free(x);
    }
    for (i = 0; i < (size_t)d.info.count && i < 1000; i++)
        for (k = 0; k < d.info.n_factors; k++) {
            int32_t v = heph_hpd_label(&d, i, (int)k);
            if (v < 0 || (uint32_t)v >= d.info.factors[k].n_values) abort(); /* a label outside its factor */
            sum += v;
        }
    for (k = 0; k < d.info.n_factors; k++)
        if (d.info.factors[k].values) sum += (long)(d.info.factors[k].values[0] == 0.0);
    heph_hpd_close(&d);
    return (int)(sum & 0);
}
