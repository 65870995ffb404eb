/* tests/hostile/hostile_gen.c - writes hostile files for tests/test_hostile.sh (issue #20).
   hostile_gen hpm-set IN OUT FIELD VALUE
       copy checkpoint IN to OUT with one field replaced and the checksum made valid again;
       FIELD: max_batch, beta, gamma, gamma_end, c_max, alpha, lr, beta1, beta2, eps, step,
       param0, adam_m0, adam_v0 (the Adam fields need a checkpoint with optimiser state);
       VALUE: a number as strtod/strtoull read it (inf, nan, -1, 18446744073709551615, ...)
   hostile_gen hpd-sparse OUT COUNT C H W
       a u8 .hpd of COUNT CxHxW pictures without factors: picture 0 is mid-grey (128), every
       other one is black, and the file is sparse (ftruncate), so 2^32 pictures cost no disk
   Exit status 0 on success, 1 with a message otherwise. POSIX (ftruncate). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char *what) { fprintf(stderr, "hostile_gen: %s\n", what); exit(1); }
static uint32_t get32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void put32(unsigned char *p, uint32_t v) { int i; for (i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put64(unsigned char *p, uint64_t v) { int i; for (i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* offset and width (4 = f32 or u32, 8 = u64) of a checkpoint field */
static size_t hpm_field(const unsigned char *b, size_t n, const char *field, int *width, int *is_float) {
    size_t enc = 36, dec, obj, adam, np, npar;
    uint64_t count;
    *width = 4; *is_float = 1;
    if (n < 48) die("checkpoint too short");
    dec = enc + 4 + get32(b + enc);
    if (dec + 4 > n) die("bad encoder spec length");
    obj = dec + 4 + get32(b + dec);
    adam = obj + 48;
    np = adam + 16 + 8 + 24;
    if (np + 8 > n) die("checkpoint too short");
    count = 0;
    { int i; for (i = 7; i >= 0; i--) count = count << 8 | b[np + (size_t)i]; }
    npar = np + 8;
    if (!strcmp(field, "max_batch")) { *is_float = 0; return 32; }
    if (!strcmp(field, "beta")) return obj + 8;
    if (!strcmp(field, "gamma")) return obj + 12;
    if (!strcmp(field, "gamma_end")) return obj + 16;
    if (!strcmp(field, "c_max")) return obj + 20;
    if (!strcmp(field, "alpha")) return obj + 32;
    if (!strcmp(field, "lr")) return adam;
    if (!strcmp(field, "beta1")) return adam + 4;
    if (!strcmp(field, "beta2")) return adam + 8;
    if (!strcmp(field, "eps")) return adam + 12;
    if (!strcmp(field, "step")) { *width = 8; *is_float = 0; return adam + 16; }
    if (!strcmp(field, "param0")) return npar;
    if (!strcmp(field, "adam_m0")) return npar + 4 * (size_t)count;
    if (!strcmp(field, "adam_v0")) return npar + 8 * (size_t)count;
    die("unknown field");
    return 0;
}

static int hpm_set(const char *in, const char *out, const char *field, const char *value) {
    FILE *f = fopen(in, "rb");
    unsigned char *b;
    long n;
    size_t off, i;
    int width, is_float;
    uint64_t h = 0xcbf29ce484222325ULL;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 16 || fseek(f, 0, SEEK_SET) != 0) die("cannot read IN");
    b = (unsigned char *)malloc((size_t)n);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) die("cannot read IN");
    fclose(f);
    off = hpm_field(b, (size_t)n, field, &width, &is_float);
    if (off + (size_t)width > (size_t)n - 8) die("field outside the file");
    if (is_float) put32(b + off, f2u(strtof(value, NULL)));
    else if (width == 4) put32(b + off, (uint32_t)strtoul(value, NULL, 0));
    else put64(b + off, (uint64_t)strtoull(value, NULL, 0));
    for (i = 0; i + 8 < (size_t)n; i++) { h ^= b[i]; h *= 0x100000001b3ULL; } /* FNV-1a 64 */
    put64(b + n - 8, h);
    f = fopen(out, "wb");
    if (!f || fwrite(b, 1, (size_t)n, f) != (size_t)n || fclose(f) != 0) die("cannot write OUT");
    free(b);
    return 0;
}

static int hpd_sparse(const char *out, uint64_t count, uint32_t c, uint32_t h, uint32_t w) {
    unsigned char hdr[128];
    uint64_t np = (uint64_t)c * h * w, i;
    FILE *f = fopen(out, "wb");
    if (!f) die("cannot create OUT");
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, "HEPHHPD", 8);
    put32(hdr + 8, 1); put32(hdr + 12, 128); put64(hdr + 16, count);
    put32(hdr + 24, c); put32(hdr + 28, h); put32(hdr + 32, w);
    put32(hdr + 36, 1 /* u8 */); put32(hdr + 44, f2u(255.0f));
    put64(hdr + 64, 128 + count * np);
    memcpy(hdr + 72, "hostile/sparse", 14);
    if (fwrite(hdr, 1, 128, f) != 128) die("write failed");
    for (i = 0; i < np; i++) fputc(128, f);
    if (fflush(f) != 0 || ftruncate(fileno(f), (off_t)(128 + count * np)) != 0 || fclose(f) != 0) die("cannot size OUT");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 6 && !strcmp(argv[1], "hpm-set")) return hpm_set(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 7 && !strcmp(argv[1], "hpd-sparse"))
        return hpd_sparse(argv[2], strtoull(argv[3], NULL, 0), (uint32_t)atoi(argv[4]), (uint32_t)atoi(argv[5]),
                          (uint32_t)atoi(argv[6]));
    fprintf(stderr, "usage: hostile_gen hpm-set IN OUT FIELD VALUE | hpd-sparse OUT COUNT C H W\n");
    return 2;
}
