/* fuzz_dsprites_check.h - the semantic checks fuzz_npy.c and fuzz_npz.c make of a dSprites
   conversion that succeeded (issue #20): no more pictures than most_bytes of input can hold
   (each target says what its input can hold), 64x64 1-bit pictures of 0/1, every label inside
   its dSprites factor. Include after tools/dsprites2hpd.c.                                   */
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
