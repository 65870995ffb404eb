/* fuzz_cifar.c - libFuzzer target: tools/cifar2hpd.c (its main() is renamed and not used).
   The input is written to a file and converted twice, as CIFAR-10 and as CIFAR-100 records.
   Semantic checks when a conversion succeeds (each an abort, i.e. a finding): the .hpd must
   open with as many pictures as the file has whole records, labels in 0..9 (or 0..19 and
   0..99), and every picture's bytes and labels equal to the record's. A failed conversion
   must leave no output behind.                                                           */
#include "fuzz_common.h"
#define main cifar2hpd_main
#include "../../tools/cifar2hpd.c"
#undef main

static void check(const uint8_t *data, size_t size, int c100, const char *out) {
    size_t L = c100 ? 2 : 1, rec = L + CIFAR_PX, n = size / rec, i, j;
    heph_hpd d;
    float *x;
    if (heph_hpd_open(&d, out) != HEPH_OK) abort();
    if (d.info.count != n || d.info.n_factors != (c100 ? 2u : 1u)) abort();
    x = (float *)malloc(CIFAR_PX * sizeof(float));
    if (!x) abort();
    for (i = 0; i < n; i++) {
        const uint8_t *r = data + i * rec;
        if (heph_hpd_read_range(&d, i, 1, x) != HEPH_OK) abort();
        for (j = 0; j < CIFAR_PX; j++)
            if ((int)(x[j] * 255.0f + 0.5f) != r[L + j]) abort();
        if (heph_hpd_label(&d, i, 0) != r[0] || (c100 && heph_hpd_label(&d, i, 1) != r[1])) abort();
        if (r[0] > (c100 ? 19 : 9) || (c100 && r[1] > 99)) abort();
    }
    free(x);
    heph_hpd_close(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *in = fuzz_file("in.bin", data, size);
    char out[512];
    int c100;
    if (!in || size > (size_t)64 * 3074) return 0; /* 64 records are plenty for the checks */
    for (c100 = 0; c100 < 2; c100++) {
        const char *files[1];
        struct stat st;
        files[0] = in;
        snprintf(out, sizeof out, "%s", fuzz_path(c100 ? "o100.hpd" : "o10.hpd"));
        remove(out);
        if (cifar_convert(files, 1, c100, NULL, out)) check(data, size, c100, out);
        else if (stat(out, &st) == 0) abort(); /* a failed conversion wrote its output */
    }
    return 0;
}
