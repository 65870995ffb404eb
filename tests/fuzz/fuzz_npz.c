/* fuzz_npz.c - libFuzzer target: tools/dsprites2hpd.c's .npz (ZIP) reader: end of central
   directory search, ZIP64 records and extra fields, central directory entries, local headers,
   stored and deflated members (tools/inflate_stream.h), CRC-32 and size checks, and the .npy
   members behind them (its main(), renamed, run as "dsprites2hpd -q --npz IN OUT.hpd").
   A conversion that succeeds must give a .hpd that opens and passes check_converted.                                  */
#include "fuzz_common.h"
#define main dsprites2hpd_main
#include "../../tools/dsprites2hpd.c"
#undef main

#include "fuzz_dsprites_check.h" /* check_converted: what the input can hold: DEFLATE gives at most 1032 bytes a byte */

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
