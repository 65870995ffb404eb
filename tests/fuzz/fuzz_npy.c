/* fuzz_npy.c - libFuzzer target: tools/dsprites2hpd.c's .npy reader and the conversion
   behind it (its main(), renamed, run as "dsprites2hpd -q --imgs A --classes B OUT.hpd").
   Input: latents_classes.npy followed by imgs.npy; it is cut before the second "\x93NUMPY"
   (no second one: the classes file is the whole input and imgs is empty). The .npy header
   parser, the shape and type checks, the label range checks and the streaming into a .hpd
   all run; a conversion that succeeds must give a .hpd that opens and passes check_converted.                        */
#include "fuzz_common.h"
#define main dsprites2hpd_main
#include "../../tools/dsprites2hpd.c"
#undef main

#include "fuzz_dsprites_check.h" /* check_converted: what the input can hold: the input holds the pictures as they are */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    size_t cut = size, i;
    const char *cls, *img, *out = fuzz_path("out.hpd");
    char *argv[9];
    heph_hpd d;
    for (i = 1; i + 6 <= size; i++)
        if (memcmp(data + i, magic, 6) == 0) { cut = i; break; }
    cls = fuzz_file("classes.npy", data, cut);
    img = fuzz_file("imgs.npy", data + cut, size - cut);
    if (!cls || !img) return 0;
    remove(out);
    argv[0] = (char *)"dsprites2hpd"; argv[1] = (char *)"-q";
    argv[2] = (char *)"--imgs"; argv[3] = (char *)img;
    argv[4] = (char *)"--classes"; argv[5] = (char *)cls;
    argv[6] = (char *)out; argv[7] = NULL;
    if (dsprites2hpd_main(7, argv) == 0) {
        if (heph_hpd_open(&d, out) != HEPH_OK) abort();
        check_converted(&d, (uint64_t)size);
        heph_hpd_close(&d);
    }
    return 0;
}
