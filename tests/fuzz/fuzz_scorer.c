/* fuzz_scorer.c - libFuzzer target: the saved-scorer reader of `hephaestus outliers --scorer`
   (tools/cli_analysis.h scorer_parse). Input: the file's bytes. A lie (size, counts,
   settings, non-finite values, checksum) ends in exit(1), turned into a jump back; a file
   that parses must hold what it claims: counts within the bytes, finite codes and scores,
   members that are combined's and distinct. Each input is parsed twice: as it is (the
   checksum stops most mutations) and sealed (its last 8 bytes replaced by the checksum of
   the rest), so that the checks behind the checksum are reached.                          */
#include "fuzz_common.h"
#include <stdlib.h>
#define exit(c) fuzz_exit(c)
#define main hephaestus_main
#include "../../tools/hephaestus.c"
#undef main

static void parse_one(const uint8_t *data, size_t size) {
    static cli_scorer s;
    size_t i, need;
    int k, j;
    memset(&s, 0, sizeof s);
    fuzz_jmp_armed = 1;
    if (setjmp(fuzz_jmp) == 0) {
        scorer_parse(&s, data, size, "fuzz.hps");
        need = SCORER_HEAD + 12 * (size_t)s.K + 4 * s.nf * (size_t)s.D + 8 * s.nc * (size_t)s.K + 8;
        for (k = 0; k < s.K; k++) need += 8 * s.tail_n[k];
        if (need != size) abort();
        if (s.nf < (size_t)s.D + 2 || s.nc < 20 || s.K < 1 || s.K >= N_SCORES) abort();
        for (k = 0; k < s.K; k++) {
            if (s.members[k] < 0 || s.members[k] >= SCORE_COMBINED) abort();
            for (j = 0; j < k; j++) if (s.members[j] == s.members[k]) abort();
        }
        for (i = 0; i < s.nf * (size_t)s.D; i++) if (!(fabsf(s.fz[i]) <= FLT_MAX)) abort();
        for (i = 0; i < s.nc * (size_t)s.K; i++) if (!(fabs(s.cal[i]) <= DBL_MAX)) abort();
        for (k = 0; k < s.K; k++) {
            if (s.tail_n[k] < 20) abort();
            for (i = 0; i < s.tail_n[k]; i++) if (!(fabs(s.tail[k][i]) <= DBL_MAX)) abort();
            free(s.tail[k]);
        }
        free(s.fz); free(s.cal);
    }
    fuzz_jmp_armed = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *sealed;
    uint64_t h;
    int b;
    cli_set_cmd("fuzz");
    parse_one(data, size);
    if (size < SCORER_HEAD + 8) return 0;
    sealed = (uint8_t *)malloc(size);
    if (!sealed) return 0;
    memcpy(sealed, data, size);
    h = fnv1a(FNV_START, sealed, size - 8);
    for (b = 0; b < 8; b++) sealed[size - 8 + (size_t)b] = (uint8_t)(h >> (8 * b));
    parse_one(sealed, size);
    free(sealed);
    return 0;
}
