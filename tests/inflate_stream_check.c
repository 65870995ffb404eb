/* inflate_stream_check - gunzip standard input to standard output with tools/inflate_stream.h,
   for tests/test_dsprites.sh (which compares the result with the original file).
   Reads one gzip member without FEXTRA/FNAME/FCOMMENT/FHCRC (what `gzip -n -c < file`
   writes); the input is handed to the decoder in pieces of 1 to 4099 bytes so that refills
   happen everywhere. The trailer must sit exactly where the decoder says the stream ended, and
   its CRC-32 and length must match. Exit 0 on success, 1 with a message on error. */
#include "../tools/inflate_stream.h"

typedef struct {
    const unsigned char *p;
    size_t n, at, step;
} src;

static int rd(void *ctx, unsigned char *buf, size_t cap, size_t *got) {
    src *s = (src *)ctx;
    size_t k = s->step % 4099 + 1;
    s->step = s->step * 1103515245u + 12345u;
    if (k > cap) k = cap;
    if (k > s->n - s->at) k = s->n - s->at;
    memcpy(buf, s->p + s->at, k);
    s->at += k;
    *got = k;
    return 0;
}

static uint32_t crc = 0;
static int wr(void *ctx, const unsigned char *p, size_t n) {
    (void)ctx;
    crc = heph_crc32(crc, p, n);
    return fwrite(p, 1, n, stdout) == n ? 0 : -1;
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

int main(void) {
    unsigned char *all = NULL;
    size_t n = 0, cap = 0, got;
    uint64_t used = 0, total = 0;
    char err[160];
    src s;
    for (;;) { /* all of standard input */
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            all = (unsigned char *)realloc(all, cap);
            if (!all) { fprintf(stderr, "inflate_stream_check: out of memory\n"); return 1; }
        }
        got = fread(all + n, 1, cap - n, stdin);
        if (got == 0) break;
        n += got;
    }
    if (n < 18 || all[0] != 0x1f || all[1] != 0x8b || all[2] != 8 || all[3] != 0) {
        fprintf(stderr, "inflate_stream_check: not a plain gzip member\n");
        free(all);
        return 1;
    }
    s.p = all + 10; s.n = n - 10; s.at = 0; s.step = 7;
    if (heph_sinfl_run(rd, &s, wr, NULL, &used, &total, err, sizeof err) != 0) {
        fprintf(stderr, "inflate_stream_check: %s\n", err);
        free(all);
        return 1;
    }
    if (used + 8 != s.n) {
        fprintf(stderr, "inflate_stream_check: the stream ended after %llu bytes, the trailer is at %llu\n",
                (unsigned long long)used, (unsigned long long)(s.n - 8));
        free(all);
        return 1;
    }
    if (le32(all + 10 + used) != crc || le32(all + 10 + used + 4) != (uint32_t)total) {
        fprintf(stderr, "inflate_stream_check: CRC-32 or length differs from the gzip trailer\n");
        free(all);
        return 1;
    }
    free(all);
    return 0;
}
