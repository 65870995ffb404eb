/* fuzz_npz.c - libFuzzer target: tools/dsprites2hpd.c's .npz (ZIP) reader: end of central
   directory search, ZIP64 records and extra fields, central directory entries, local headers,
   stored and deflated members (tools/inflate_stream.h), CRC-32 and size checks, and the .npy
   members behind them (its main(), renamed, run as "dsprites2hpd -q --npz IN OUT.hpd").
   A conversion that succeeds must give a .hpd that opens and passes check_converted.                                  */
#include "fuzz_common.h"
#define main dsprites2hpd_main
#include "../../tools/dsprites2hpd.c"
#undef main

/* semantic checks of a conversion that succeeded (issue #20): no more pictures than the input
   can hold (DEFLATE gives at most 1032 bytes a byte), 64x64 1-bit pictures of 0/1, every label inside its dSprites factor       */
static void check_converted(heph_hpd *d, uint64_t most_bytes) {
    static float x[DSPR_SIDE * DSPR_SIDE];
    size_t i, j, last;
    int k;
    if (d->info.count == 0 || d->info.count > most_bytes / (DSPR_SIDE * DSPR_SIDE)) abort();
    if (d->info.c != 1 || d->info.h != DSPR_SIDE || d->info.w != DSPR_SIDE || d->info.n_factors != DSPR_NF) abort();
    for (i = 0; i < (size_t)d->info.count && i < 64; i++)
        for (k = 0; k < DSPR_NF; k++) {
            int32_t v = heph_hpd_label(d, i, k);
            if (v < 0 || (uint32_t)v >= dspr_sizes[k]) abort();
        }
    last = (size_t)d->info.count - 1;
    if (heph_hpd_read(d, &last, 1, x) != HEPH_OK) abort();
    for (j = 0; j < DSPR_SIDE * DSPR_SIDE; j++)
        if (x[j] != 0.0f && x[j] != 1.0f) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *in = fuzz_file("in.npz", data, size), *out = fuzz_path("out.hpd");
    char *argv[6];
    heph_hpd d;
    if (!in) return 0;
    remove(out);
    argv[0] = (char *)"dsprites2hpd"; argv[1] = (char *)"-q";
    argv[2] = (char *)"--npz"; argv[3] = (char *)in;
    argv[4] = (char *)out; argv[5] = NULL;
    if (dsprites2hpd_main(5, argv) == 0) {
        if (heph_hpd_open(&d, out) != HEPH_OK) abort();
        check_converted(&d, (uint64_t)size * 1033u);
        heph_hpd_close(&d);
    }
    return 0;
}
