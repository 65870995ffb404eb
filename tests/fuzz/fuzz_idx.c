/* fuzz_idx.c - libFuzzer target: tools/idx2hpd.c's input parsing (its main() is renamed and
   not used): the gzip member parser with tools/inflate.h's DEFLATE decoder and the CRC-32 /
   length trailer, then the IDX header check as images (3 dimensions) and as labels (1).
   Input: a plain or gzip-compressed IDX file. When the images check passes, the pictures are
   written to a .hpd as idx2hpd does and the result is opened again. Semantic checks (issue
   #20), each an abort: gzip data that inflated to more than DEFLATE can give (1032 bytes a
   byte), an accepted IDX file whose dimensions do not multiply to its data bytes.        */
#include "fuzz_common.h"
#define main idx2hpd_main
#include "../../tools/idx2hpd.c"
#undef main

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned char *plain;
    size_t n = size, k;
    uint32_t dim[3];
    heph_hpd_info info;
    heph_hpd_writer w;
    heph_hpd d;
    const char *out;
    int32_t cls = 0;
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        plain = gunzip("fuzz.gz", data, size, &n, 3); /* images, bounded by their header ... */
        if (!plain) plain = gunzip("fuzz.gz", data, size, &n, 1); /* ... or labels */
        if (!plain) return 0;
        if ((uint64_t)n > (uint64_t)size * 1032u + 64u) abort(); /* more than the input can hold */
    } else {
        plain = (unsigned char *)malloc(size + 1);
        if (!plain) return 0;
        memcpy(plain, data, size);
    }
    if (idx_check("fuzz.idx", plain, n, 1, dim)) {
        for (k = 0; k < dim[0]; k++) cls |= plain[8 + k];
    }
    if (idx_check("fuzz.idx", plain, n, 3, dim) && (uint64_t)dim[0] * dim[1] * dim[2] != (uint64_t)n - 16) abort();
    if (idx_check("fuzz.idx", plain, n, 3, dim) && (uint64_t)dim[0] * dim[1] * dim[2] <= (1u << 22)) {
        memset(&info, 0, sizeof info);
        info.count = dim[0];
        info.c = 1; info.h = dim[1]; info.w = dim[2];
        info.dtype = HEPH_PX_U8;
        info.value_max = 255.0f;
        info.n_factors = 1;
        strcpy(info.factors[0].name, "class");
        info.factors[0].n_values = 256;
        out = fuzz_path("out.hpd");
        if (heph_hpd_create(&w, out, &info) == HEPH_OK) {
            size_t px = (size_t)dim[1] * dim[2];
            for (k = 0; k < dim[0]; k++) {
                cls = (int32_t)(k & 255);
                if (heph_hpd_put_u8(&w, plain + 16 + k * px, &cls) != HEPH_OK) abort();
            }
            if (heph_hpd_finish(&w) != HEPH_OK) abort();
            if (heph_hpd_open(&d, out) != HEPH_OK) abort(); /* what was written must open */
            if (d.info.count != dim[0] || d.info.h != dim[1] || d.info.w != dim[2]) abort();
            heph_hpd_close(&d);
        } else if (dim[1] <= 65536 && dim[2] <= 65536) {
            abort(); /* idx_check accepted what the writer refuses */
        }
    }
    free(plain);
    return 0;
}
