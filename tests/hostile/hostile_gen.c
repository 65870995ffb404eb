/* tests/hostile/hostile_gen.c - writes hostile files for tests/test_hostile.sh and the suite
   tests/hostile/run.sh (issue #20). Deterministic: fixed contents and a fixed-seed generator.
   hostile_gen hpm-set IN OUT FIELD VALUE
       copy checkpoint IN to OUT with one field replaced and the checksum made valid again;
       FIELD: max_batch, beta, gamma, gamma_end, c_max, alpha, lr, beta1, beta2, eps, step,
       param0, adam_m0, adam_v0 (the Adam fields need a checkpoint with optimiser state);
       VALUE: a number as strtod/strtoull read it (inf, nan, -1, 18446744073709551615, ...)
   hostile_gen hpd-sparse OUT COUNT C H W
       a u8 .hpd of COUNT CxHxW pictures without factors: picture 0 is mid-grey (128), every
       other one is black, and the file is sparse (ftruncate), so 2^32 pictures cost no disk
   hostile_gen good DIR
       the good .hpd templates of the suite: DIR/good.hpd (u8 1x8x8, 24 pictures, factors shape
       and scale) and DIR/good_f32.hpd (f32, no factors)
   hostile_gen suite DIR
       from DIR/good/ (good.hpd, good_f32.hpd, good.hpm with Adam state, weights.hpm,
       good.safetensors, good.jpg, and good.h5 when shapes3d2hpd is built) every malformed
       variant of every input format, in DIR/GROUP/, listed in DIR/manifest as
       "group|expect|path|what" (expect: bad = must be refused, read = must be refused by a tool
       that reads every picture, any = refused or read), plus
       command lines of hostile flags as "flags|bad|SUBCOMMAND|what|ARGS". Groups: hpd,
       hpd_huge (sparse), hpm, idx, gzip (with DEFLATE bombs), npy, npz (ZIP64 and bombs),
       pics (folders of PNG/JPEG, FIFOs, links), safetensors, h5, flags. It also writes the
       good IDX, .npy, .npz and PNG files it mutates into DIR/good/.
   hostile_gen rss FILE CMD...
       run CMD and write its peak resident size in KB (getrusage of the one child) to FILE; the
       exit status is CMD's (128 + N for signal N)
   Exit status 0 on success, 1 with a message otherwise. POSIX (ftruncate, fork, mkfifo). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <errno.h>
#include <sys/types.h>
#include <sys/wait.h>
#define HEPHAESTUS_STATIC
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"

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
    long n = 0;
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

/* ==== the suite (tests/hostile/run.sh): good templates, then every malformed variant ========= */
/* A small deterministic generator (xorshift64*, fixed seeds) picks the flipped bytes. Each file is
   listed in DIR/manifest as "group|expect|path|what": expect is "bad" (a tool must refuse it with
   a message), "read" (bad for a tool that reads every picture; train and batch read only the
   pictures they draw) or "any" (a refusal and a success are both right: a flipped pixel byte). */
static FILE *MAN;
static const char *DIR_;
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) { rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27; return rng_state * 0x2545f4914f6cdd1dULL; }
static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }
static void put16be(unsigned char *p, uint32_t v) { p[0] = (unsigned char)(v >> 8); p[1] = (unsigned char)v; }
static void put32be(unsigned char *p, uint32_t v) { p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16); p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v; }

typedef struct { unsigned char *p; size_t n, cap; } buf;
static void bput(buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) { b->cap = (b->n + n) * 2 + 64; b->p = (unsigned char *)realloc(b->p, b->cap); if (!b->p) die("out of memory"); }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}
static void bputc(buf *b, int c) { unsigned char u = (unsigned char)c; bput(b, &u, 1); }
static void bput32(buf *b, uint32_t v) { unsigned char t[4]; put32(t, v); bput(b, t, 4); }
static void bput16(buf *b, uint32_t v) { bputc(b, (int)(v & 255)); bputc(b, (int)(v >> 8 & 255)); }
static buf bdup(const buf *s) { buf b = {0, 0, 0}; bput(&b, s->p, s->n); return b; }

static buf slurp(const char *path) {
    buf b = {0, 0, 0};
    unsigned char t[65536];
    size_t k;
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "hostile_gen: cannot read %s\n", path); exit(1); }
    while ((k = fread(t, 1, sizeof t, f)) > 0) bput(&b, t, k);
    fclose(f);
    return b;
}
static void spill(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) { fprintf(stderr, "hostile_gen: cannot write %s\n", path); exit(1); }
}
/* mkdir of PATH and of its parent (the suite's folders are at most two below DIR) */
static void mkdir_p(const char *path) {
    char parent[1024];
    char *slash;
    snprintf(parent, sizeof parent, "%s", path);
    if ((slash = strrchr(parent, '/'))) { *slash = 0; if (mkdir(parent, 0777) != 0 && errno != EEXIST) die("mkdir"); }
    if (mkdir(path, 0777) != 0 && errno != EEXIST) die("mkdir");
}
/* emit GROUP EXPECT NAME: write DIR/GROUP/NAME and list it */
static void emit(const char *group, const char *expect, const char *name, const void *p, size_t n, const char *what) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", DIR_, group); mkdir_p(path);
    snprintf(path, sizeof path, "%s/%s/%s", DIR_, group, name);
    spill(path, p, n);
    fprintf(MAN, "%s|%s|%s/%s|%s\n", group, expect, group, name, what);
}
static void emitb(const char *group, const char *expect, const char *name, const buf *b, const char *what) { emit(group, expect, name, b->p, b->n, what); }

/* truncations at fixed points and flipped bytes (NFLIP seeded positions from FROM on) */
static void truncs(const char *group, const char *pre, const char *ext, const buf *g, size_t header) {
    size_t cuts[7], i;
    char name[200], what[200];
    cuts[0] = 0; cuts[1] = 1; cuts[2] = header / 2; cuts[3] = header > 0 ? header - 1 : 0; cuts[4] = header + (g->n - header) / 2;
    cuts[5] = g->n - 1; cuts[6] = g->n > 8 ? g->n - 8 : 0;
    for (i = 0; i < 7; i++) {
        if (i > 0 && cuts[i] == cuts[i - 1]) continue;
        snprintf(name, sizeof name, "%strunc%zu.%s", pre, cuts[i], ext);
        snprintf(what, sizeof what, "cut to %zu of %zu bytes", cuts[i], g->n);
        emit(group, "bad", name, g->p, cuts[i], what);
    }
}
static void flips(const char *group, const char *pre, const char *ext, const buf *g, size_t from, int nflip, const char *expect,
                  void (*fix)(buf *)) {
    int i;
    char name[200], what[200];
    for (i = 0; i < nflip; i++) {
        buf b = bdup(g);
        size_t at = from + (size_t)(rnd() % (uint64_t)(g->n - from));
        unsigned char x = (unsigned char)(1u << (rnd() % 8));
        b.p[at] ^= x;
        if (fix) fix(&b);
        snprintf(name, sizeof name, "%sflip%zu_%02x.%s", pre, at, x, ext);
        snprintf(what, sizeof what, "bit 0x%02x of byte %zu flipped%s", x, at, fix ? " (checksum made valid)" : "");
        emitb(group, expect, name, &b, what);
        free(b.p);
    }
}

/* ---- .hpd: header fields (offsets in hephaestus.h's table) ---- */
static void hpd32(const buf *g, const char *name, size_t off, uint32_t v, const char *expect, const char *what) {
    buf b = bdup(g); put32(b.p + off, v); emitb("hpd", expect, name, &b, what); free(b.p);
}
static void hpd64(const buf *g, const char *name, size_t off, uint64_t v, const char *expect, const char *what) {
    buf b = bdup(g); put64(b.p + off, v); emitb("hpd", expect, name, &b, what); free(b.p);
}
static void suite_hpd(void) {
    char path[1024];
    buf g, f;
    size_t hb, lab;
    uint64_t count;
    snprintf(path, sizeof path, "%s/good/good.hpd", DIR_); g = slurp(path);
    snprintf(path, sizeof path, "%s/good/good_f32.hpd", DIR_); f = slurp(path);
    hb = get32(g.p + 12); count = get64(g.p + 16); lab = (size_t)get64(g.p + 64);
    truncs("hpd", "", "hpd", &g, hb);
    flips("hpd", "", "hpd", &g, 0, 10, "any", NULL);
    hpd32(&g, "magic.hpd", 4, 0x58585858u, "bad", "magic HEPHXXXX");
    hpd32(&g, "version2.hpd", 8, 2, "bad", "version 2");
    hpd32(&g, "header0.hpd", 12, 0, "bad", "header_bytes 0");
    hpd32(&g, "header65.hpd", 12, (uint32_t)hb + 1, "bad", "header_bytes not a multiple of 64");
    hpd32(&g, "header2g.hpd", 12, 0x80000000u, "bad", "header_bytes 2^31");
    hpd64(&g, "count0.hpd", 16, 0, "bad", "count 0");
    hpd64(&g, "count_plus1.hpd", 16, count + 1, "bad", "one picture more than the file holds");
    hpd64(&g, "count_minus1.hpd", 16, count - 1, "bad", "one picture less (labels offset then lies)");
    hpd64(&g, "count2p40.hpd", 16, 1ULL << 40, "bad", "count 2^40");
    hpd64(&g, "countmax.hpd", 16, ~0ULL, "bad", "count 2^64-1");
    hpd32(&g, "c0.hpd", 24, 0, "bad", "0 channels");
    hpd32(&g, "c4097.hpd", 24, 4097, "bad", "4097 channels");
    hpd32(&g, "h0.hpd", 28, 0, "bad", "height 0");
    hpd32(&g, "w65537.hpd", 32, 65537, "bad", "width 65537");
    hpd32(&g, "hmax.hpd", 28, 0xffffffffu, "bad", "height 2^32-1");
    hpd32(&g, "dtype0.hpd", 36, 0, "bad", "pixel type 0");
    hpd32(&g, "dtype9.hpd", 36, 9, "bad", "pixel type 9");
    hpd32(&g, "dtype_f32.hpd", 36, 2, "bad", "u8 pixels declared f32");
    hpd32(&g, "layout1.hpd", 40, 1, "bad", "layout 1");
    hpd32(&g, "vmax0.hpd", 44, f2u(0.0f), "bad", "value_max 0");
    hpd32(&g, "vmaxnan.hpd", 44, 0x7fc00000u, "bad", "value_max NaN");
    hpd32(&g, "vmaxinf.hpd", 44, 0x7f800000u, "bad", "value_max Inf");
    hpd32(&g, "vmaxneg.hpd", 44, f2u(-255.0f), "bad", "value_max -255");
    hpd32(&g, "vmaxdenorm.hpd", 44, 0x00010000u, "bad", "value_max denormal");
    hpd32(&g, "nfactors33.hpd", 48, 33, "bad", "33 factors");
    hpd32(&g, "nfactorsmax.hpd", 48, 0xffffffffu, "bad", "2^32-1 factors");
    hpd32(&g, "flags8.hpd", 52, 8 | get32(g.p + 52), "bad", "unknown flag bit 8");
    hpd32(&g, "nolabels.hpd", 52, get32(g.p + 52) & ~1u, "any", "labels flag cleared (labels become trailing bytes)");
    hpd32(&g, "grid.hpd", 52, get32(g.p + 52) | 2u, "any", "grid flag on labels that are not the grid (informational: no reader relies on it)");
    hpd64(&g, "labels0.hpd", 64, 0, "bad", "labels_offset 0");
    hpd64(&g, "labels_plus4.hpd", 64, lab + 4, "bad", "labels_offset 4 too far");
    hpd64(&g, "labelsmax.hpd", 64, ~0ULL, "bad", "labels_offset 2^64-1");
    hpd32(&g, "nvalues0.hpd", 104 + 24, 0, "bad", "factor 0 has 0 values");
    hpd32(&g, "nvaluesmax.hpd", 104 + 24, 0xffffffffu, "bad", "factor 0 has 2^32-1 values");
    hpd32(&g, "valoffmax.hpd", 104 + 28, 0xfffffff0u, "bad", "factor 0 values offset past the header");
    { buf b = bdup(&g); memset(b.p + 104, 'A', 24); emitb("hpd", "any", "factorname_unterminated.hpd", &b, "factor name of 24 letters, no NUL"); free(b.p); }
    { buf b = bdup(&g); put32(b.p + lab, 99); emitb("hpd", "bad", "label99.hpd", &b, "label 99 of a factor of 3 values"); free(b.p); }
    { buf b = bdup(&g); put32(b.p + lab + 4, 0xffffffffu); emitb("hpd", "bad", "labelneg.hpd", &b, "label -1"); free(b.p); }
    { buf b = bdup(&g); bput(&b, "trailing", 8); emitb("hpd", "bad", "trailing.hpd", &b, "8 bytes after the labels"); free(b.p); }
    /* float pictures: NaN, Inf, -1, 2 (value_max 1), a denormal (fine) */
    {
        size_t fhb = get32(f.p + 12);
        static const uint32_t v[5] = {0x7fc00000u, 0x7f800000u, 0xbf800000u, 0x40000000u, 0x00000001u};
        static const char *nm[5] = {"f32_nan.hpd", "f32_inf.hpd", "f32_neg.hpd", "f32_two.hpd", "f32_denormal.hpd"};
        static const char *wh[5] = {"a NaN pixel", "an Inf pixel", "a pixel of -1", "a pixel of 2 (value_max 1)", "a denormal pixel (valid)"};
        int i;
        for (i = 0; i < 5; i++) {
            buf b = bdup(&f);
            size_t at = fhb + 4 * (size_t)(rnd() % (uint64_t)((get64(f.p + 64) - fhb) / 4));
            put32(b.p + at, v[i]);
            emitb("hpd", i == 4 ? "any" : "read", nm[i], &b, wh[i]);
            free(b.p);
        }
    }
    free(g.p); free(f.p);
}

/* huge counts as sparse files: the header is true, the pictures are zeros (no disk) */
static void suite_huge(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/hpd_huge", DIR_); mkdir_p(path);
    snprintf(path, sizeof path, "%s/hpd_huge/sparse_2p32_1x8x8.hpd", DIR_);
    hpd_sparse(path, 1ULL << 32, 1, 8, 8);
    fprintf(MAN, "hpd_huge|any|hpd_huge/sparse_2p32_1x8x8.hpd|2^32 pictures 8x8 (256 GiB, sparse)\n");
    snprintf(path, sizeof path, "%s/hpd_huge/sparse_2p36_1x8x8.hpd", DIR_);
    hpd_sparse(path, 1ULL << 36, 1, 8, 8);
    fprintf(MAN, "hpd_huge|any|hpd_huge/sparse_2p36_1x8x8.hpd|2^36 pictures 8x8 (4 TiB, sparse)\n");
}

/* ---- .hpm: fields by offset; FNV-1a checksum recomputed ---- */
static void hpm_fix(buf *b) {
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i;
    for (i = 0; i + 8 < b->n; i++) { h ^= b->p[i]; h *= 0x100000001b3ULL; }
    put64(b->p + b->n - 8, h);
}
static void hpm_put(const buf *g, const char *name, size_t off, int width, uint64_t v, const char *expect, const char *what) {
    buf b = bdup(g);
    if (width == 4) put32(b.p + off, (uint32_t)v); else put64(b.p + off, v);
    hpm_fix(&b);
    emitb("hpm", expect, name, &b, what);
    free(b.p);
}
/* replace the encoder spec by TEXT (lengths shift; the checksum is made valid) */
static void hpm_spec(const buf *g, const char *name, int which, const char *text, uint32_t lie, const char *expect, const char *what) {
    size_t enc = 36, at = which ? enc + 4 + get32(g->p + enc) : enc, old = get32(g->p + at);
    buf b = {0, 0, 0};
    bput(&b, g->p, at);
    bput32(&b, lie ? lie : (uint32_t)strlen(text));
    bput(&b, text, strlen(text));
    bput(&b, g->p + at + 4 + old, g->n - at - 4 - old);
    hpm_fix(&b);
    emitb("hpm", expect, name, &b, what);
    free(b.p);
}
static void suite_hpm(void) {
    char path[1024];
    buf g, w;
    size_t enc = 36, dec, obj, adam, rng, np;
    int width, isf;
    snprintf(path, sizeof path, "%s/good/good.hpm", DIR_); g = slurp(path);
    snprintf(path, sizeof path, "%s/good/weights.hpm", DIR_); w = slurp(path);
    dec = enc + 4 + get32(g.p + enc); obj = dec + 4 + get32(g.p + dec); adam = obj + 48; rng = adam + 24; np = rng + 24;
    truncs("hpm", "", "hpm", &g, np + 8);
    truncs("hpm", "w_", "hpm", &w, np + 8);
    flips("hpm", "", "hpm", &g, 0, 6, "bad", NULL);
    flips("hpm", "fixed_", "hpm", &g, 8, 8, "any", hpm_fix);
    hpm_put(&g, "version2.hpm", 8, 4, 2, "bad", "version 2");
    hpm_put(&g, "flags6.hpm", 12, 4, 6, "bad", "unknown flag bits");
    hpm_put(&g, "flags0.hpm", 12, 4, 0, "bad", "optimiser flag cleared (the Adam state is then trailing bytes)");
    hpm_put(&w, "w_flags1.hpm", 12, 4, 1, "bad", "weights-only file claiming an optimiser state");
    hpm_put(&g, "in_c0.hpm", 16, 4, 0, "bad", "0 input channels");
    hpm_put(&g, "in_c3.hpm", 16, 4, 3, "bad", "3 input channels (the spec says 1)");
    hpm_put(&g, "in_hmax.hpm", 20, 4, 0xffffffffu, "bad", "input height 2^32-1");
    hpm_put(&g, "in_w65536.hpm", 24, 4, 65536, "bad", "input width 65536");
    hpm_put(&g, "z0.hpm", 28, 4, 0, "bad", "z_dim 0");
    hpm_put(&g, "z3.hpm", 28, 4, 3, "bad", "z_dim 3 (the weights are for 2)");
    hpm_put(&g, "zmax.hpm", 28, 4, 0x80000000u, "bad", "z_dim 2^31");
    hpm_put(&g, "maxbatch0.hpm", 32, 4, 0, "bad", "max_batch 0");
    hpm_put(&g, "maxbatchmax.hpm", 32, 4, 0xffffffffu, "bad", "max_batch 2^32-1");
    hpm_spec(&g, "enc_garbage.hpm", 0, "dense4,relu,@@@", 0, "bad", "encoder spec with a bad token");
    hpm_spec(&g, "enc_other.hpm", 0, "dense5,relu", 0, "bad", "encoder spec of another size (parameter count lies)");
    hpm_spec(&g, "enc_empty.hpm", 0, "", 0, "bad", "empty encoder spec");
    hpm_spec(&g, "enc_lenmax.hpm", 0, "dense4,relu", 0xffffffffu, "bad", "encoder spec length 2^32-1");
    hpm_spec(&g, "dec_len600.hpm", 1, "dense64", 600, "bad", "decoder spec length 600");
    hpm_spec(&g, "dec_nul.hpm", 1, "dense6\0004", 0, "bad", "a NUL inside the decoder spec");
    hpm_spec(&g, "enc_huge_layer.hpm", 0, "dense2000000000,relu", 0, "bad", "encoder of 2e9 units");
    hpm_put(&g, "objective99.hpm", obj, 4, 99, "bad", "objective kind 99");
    hpm_put(&g, "recon99.hpm", obj + 4, 4, 99, "bad", "reconstruction kind 99");
    hpm_put(&g, "beta_nan.hpm", obj + 8, 4, 0x7fc00000u, "bad", "beta NaN");
    hpm_put(&g, "ramp_max.hpm", obj + 24, 8, ~0ULL, "any", "ramp_steps 2^64-1");
    hpm_put(&g, "estimator99.hpm", obj + 36, 4, 99, "any", "estimator 99 (checked for beta-TCVAE only; this objective does not use it)");
    hpm_put(&g, "dataset_max.hpm", obj + 40, 8, ~0ULL, "any", "dataset_size 2^64-1");
    hpm_put(&g, "lr_denormal.hpm", adam, 4, 1, "any", "lr a denormal (inside (0, 10])");
    hpm_put(&g, "beta2_nan.hpm", adam + 8, 4, 0x7fc00000u, "bad", "Adam beta2 NaN");
    hpm_put(&g, "step2p63.hpm", adam + 16, 8, 1ULL << 63, "bad", "step 2^63");
    hpm_put(&g, "rng_inc_even.hpm", rng + 8, 8, 2, "any", "RNG increment even");
    hpm_put(&g, "spare7.hpm", rng + 16, 4, 7, "any", "has_spare 7 (read as true)");
    hpm_put(&g, "spare_nan.hpm", rng + 20, 4, 0x7fc00000u, "any", "spare normal NaN (with has_spare as it is)");
    hpm_put(&g, "nparams_plus1.hpm", np, 8, get64(g.p + np) + 1, "bad", "one parameter more");
    hpm_put(&g, "nparams_minus1.hpm", np, 8, get64(g.p + np) - 1, "bad", "one parameter less");
    hpm_put(&g, "nparams_max.hpm", np, 8, ~0ULL, "bad", "2^64-1 parameters");
    hpm_put(&g, "nparams_2p62.hpm", np, 8, 1ULL << 62, "bad", "2^62 parameters (times 4 bytes wraps)");
    if (hpm_field(g.p, g.n, "param0", &width, &isf)) {
        size_t p0 = hpm_field(g.p, g.n, "param0", &width, &isf), m0 = hpm_field(g.p, g.n, "adam_m0", &width, &isf);
        size_t v0 = hpm_field(g.p, g.n, "adam_v0", &width, &isf), last = v0 + (v0 - m0) - 4;
        hpm_put(&g, "param_last_inf.hpm", m0 - 4, 4, 0xff800000u, "bad", "last parameter -Inf");
        hpm_put(&g, "param0_huge.hpm", p0, 4, f2u(3e38f), "any", "parameter 0 is 3e38 (finite)");
        hpm_put(&g, "adam_v_last_neg.hpm", last, 4, f2u(-1.0f), "bad", "last Adam second moment -1");
        hpm_put(&g, "adam_m_last_nan.hpm", v0 - 4, 4, 0x7fc00000u, "bad", "last Adam first moment NaN");
    }
    { buf b = bdup(&g); memcpy(b.p, "HEPHHPD", 8); hpm_fix(&b); emitb("hpm", "bad", "magic_hpd.hpm", &b, "a .hpd magic"); free(b.p); }
    { buf b = bdup(&g); b.n -= 8; bput(&b, "12345678", 8); bput(&b, "more", 4); hpm_fix(&b); emitb("hpm", "bad", "trailing.hpm", &b, "4 bytes after the checksum"); free(b.p); }
    free(g.p); free(w.p);
}

/* ---- DEFLATE and gzip by hand: stored blocks, and a fixed-Huffman bomb (zeros as runs of 258) */
static uint32_t crc32_of(const unsigned char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    size_t i;
    int k;
    for (i = 0; i < n; i++) { c ^= p[i]; for (k = 0; k < 8; k++) c = c >> 1 ^ (0xedb88320u & (0u - (c & 1))); }
    return ~c;
}
typedef struct { buf *b; uint32_t acc; int nbits; } bitw;
static void bits(bitw *w, uint32_t v, int n) { /* LSB first */
    int i;
    for (i = 0; i < n; i++) { w->acc |= ((v >> i) & 1u) << w->nbits; if (++w->nbits == 8) { bputc(w->b, (int)w->acc); w->acc = 0; w->nbits = 0; } }
}
static void huff(bitw *w, uint32_t code, int n) { int i; for (i = n - 1; i >= 0; i--) bits(w, code >> i & 1u, 1); } /* MSB first */
static void flush_bits(bitw *w) { if (w->nbits) { bputc(w->b, (int)w->acc); w->acc = 0; w->nbits = 0; } }
/* raw DEFLATE of DATA (stored blocks) followed by ZEROS zero bytes (one fixed-Huffman block:
   a literal 0, then matches of length 258 at distance 1: 13 bits per 258 bytes, ~160:1) */
static void deflate_bomb(buf *out, const unsigned char *data, size_t n, uint64_t zeros) {
    bitw w = {out, 0, 0};
    size_t at = 0;
    while (at < n) {
        size_t k = n - at > 65535 ? 65535 : n - at;
        bits(&w, (!zeros && at + k == n) ? 1u : 0u, 1); bits(&w, 0, 2); flush_bits(&w);
        bput16(out, (uint32_t)k); bput16(out, (uint32_t)~k & 0xffffu); bput(out, data + at, k);
        at += k;
    }
    if (zeros || !n) {
        bits(&w, 1, 1); bits(&w, 1, 2); /* last, fixed Huffman */
        if (zeros) { huff(&w, 0x30, 8); zeros--; } /* literal 0: code 00110000 */
        while (zeros >= 258) { huff(&w, 0xc5, 8); huff(&w, 0, 5); zeros -= 258; } /* length 258 (285), distance 1 */
        while (zeros--) huff(&w, 0x30, 8);
        huff(&w, 0, 7); /* end of block (256) */
        flush_bits(&w);
    }
}
/* a gzip member of DATA + ZEROS zero bytes; the trailer's CRC and size are of that content */
static buf gzip_of(const unsigned char *data, size_t n, uint64_t zeros) {
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    buf b = {0, 0, 0};
    uint32_t c = 0xffffffffu;
    uint64_t z;
    size_t i;
    int k;
    bput(&b, hdr, 10);
    deflate_bomb(&b, data, n, zeros);
    for (i = 0; i < n; i++) { c ^= data[i]; for (k = 0; k < 8; k++) c = c >> 1 ^ (0xedb88320u & (0u - (c & 1))); }
    for (z = 0; z < zeros; z++) { for (k = 0; k < 8; k++) c = c >> 1 ^ (0xedb88320u & (0u - (c & 1))); }
    bput32(&b, ~c); bput32(&b, (uint32_t)(n + zeros));
    return b;
}
static buf idx_of(uint32_t magic, int ndim, const uint32_t *dims, const unsigned char *data, size_t n) {
    buf b = {0, 0, 0};
    unsigned char t[4];
    int i;
    put32be(t, magic); bput(&b, t, 4);
    for (i = 0; i < ndim; i++) { put32be(t, dims[i]); bput(&b, t, 4); }
    bput(&b, data, n);
    return b;
}
static void suite_idx(void) {
    unsigned char px[10 * 28 * 28], lb[10];
    uint32_t d[3] = {10, 28, 28};
    char path[1024];
    size_t i;
    buf img, lab, gz, b;
    for (i = 0; i < sizeof px; i++) px[i] = (unsigned char)(i * 7);
    for (i = 0; i < 10; i++) lb[i] = (unsigned char)i;
    img = idx_of(0x803, 3, d, px, sizeof px); lab = idx_of(0x801, 1, d, lb, 10);
    snprintf(path, sizeof path, "%s/good/img.idx", DIR_); spill(path, img.p, img.n);
    snprintf(path, sizeof path, "%s/good/lab.idx", DIR_); spill(path, lab.p, lab.n);
    truncs("idx", "img_", "idx", &img, 16);
    truncs("idx", "lab_", "idx", &lab, 8);
    flips("idx", "img_", "idx", &img, 0, 4, "any", NULL);
    { uint32_t e[3] = {11, 28, 28}; b = idx_of(0x803, 3, e, px, sizeof px); emitb("idx", "bad", "img_count11.idx", &b, "11 pictures declared, 10 present"); free(b.p); }
    { uint32_t e[3] = {9, 28, 28}; b = idx_of(0x803, 3, e, px, sizeof px); emitb("idx", "bad", "img_count9.idx", &b, "9 pictures declared, 10 present (trailing bytes)"); free(b.p); }
    { uint32_t e[3] = {0xffffffffu, 28, 28}; b = idx_of(0x803, 3, e, px, sizeof px); emitb("idx", "bad", "img_countmax.idx", &b, "2^32-1 pictures declared"); free(b.p); }
    { uint32_t e[3] = {10, 0, 28}; b = idx_of(0x803, 3, e, px, sizeof px); emitb("idx", "bad", "img_rows0.idx", &b, "0 rows"); free(b.p); }
    { uint32_t e[3] = {1, 65536, 65536}; b = idx_of(0x803, 3, e, px, sizeof px); emitb("idx", "bad", "img_65536sq.idx", &b, "one 65536x65536 picture declared"); free(b.p); }
    { uint32_t e[3] = {10, 28, 28}; b = idx_of(0x80d, 3, e, px, sizeof px); emitb("idx", "bad", "img_float.idx", &b, "type float (0x0d)"); free(b.p); }
    { uint32_t e[4] = {10, 28, 28, 1}; b = idx_of(0x804, 4, e, px, sizeof px); emitb("idx", "bad", "img_4dims.idx", &b, "4 dimensions"); free(b.p); }
    { uint32_t e[1] = {11}; b = idx_of(0x801, 1, e, lb, 10); emitb("idx", "bad", "lab_count11.idx", &b, "11 labels declared, 10 present"); free(b.p); }
    { uint32_t e[1] = {9}; b = idx_of(0x801, 1, e, lb, 9); emitb("idx", "bad", "lab_count9.idx", &b, "9 labels for 10 pictures"); free(b.p); }
    { unsigned char l2[10]; memcpy(l2, lb, 10); l2[3] = 255; b = idx_of(0x801, 1, d, l2, 10); emitb("idx", "any", "lab_255.idx", &b, "a label of 255"); free(b.p); }
    /* gzip */
    gz = gzip_of(img.p, img.n, 0);
    emitb("gzip", "any", "img_good.idx.gz", &gz, "a valid gzip'd IDX (stored blocks; control)");
    truncs("gzip", "img_", "idx.gz", &gz, 10);
    flips("gzip", "img_", "idx.gz", &gz, 10, 6, "bad", NULL);
    { b = bdup(&gz); b.p[b.n - 8] ^= 1; emitb("gzip", "bad", "img_crc.idx.gz", &b, "CRC-32 off by a bit"); free(b.p); }
    { b = bdup(&gz); b.p[b.n - 4] ^= 1; emitb("gzip", "bad", "img_isize.idx.gz", &b, "ISIZE off by one"); free(b.p); }
    { b = bdup(&gz); b.p[2] = 7; emitb("gzip", "bad", "img_cm7.idx.gz", &b, "compression method 7"); free(b.p); }
    { b = bdup(&gz); b.p[3] = 0xe0; emitb("gzip", "bad", "img_flg_reserved.idx.gz", &b, "reserved FLG bits"); free(b.p); }
    { b = bdup(&gz); b.p[3] = 4; emitb("gzip", "bad", "img_fextra_lie.idx.gz", &b, "FEXTRA set: the next bytes are taken as a lying length"); free(b.p); }
    { b = bdup(&gz); b.p[3] = 8; b.n = 10; { unsigned char z = 'x'; size_t k; for (k = 0; k < 5000; k++) bput(&b, &z, 1); } emitb("gzip", "bad", "img_fname_unterminated.idx.gz", &b, "FNAME of 5000 bytes without NUL"); free(b.p); }
    { b = bdup(&gz); bput(&b, gz.p, gz.n); emitb("gzip", "any", "img_two_members.idx.gz", &b, "two gzip members (the second repeats the first)"); free(b.p); }
    /* bombs: 200 MB of zeros behind a header of 10 pictures; and behind one that claims 2^31-1 */
    b = gzip_of(img.p, 16, 200000000ULL); emitb("gzip", "bad", "img_bomb200M_hdr10.idx.gz", &b, "IDX header of 10 pictures, then 200 MB of zeros (1.2 MB of gzip)"); free(b.p);
    { uint32_t e[3] = {0x7fffffffu, 28, 28}; buf h = idx_of(0x803, 3, e, px, 0); b = gzip_of(h.p, h.n, 200000000ULL);
      emitb("gzip", "bad", "img_bomb200M_hdrmax.idx.gz", &b, "IDX header of 2^31-1 pictures, 200 MB of zeros"); free(b.p); free(h.p); }
    { uint32_t e[1] = {10}; buf h = idx_of(0x801, 1, e, lb, 0); b = gzip_of(h.p, h.n, 100000000ULL);
      emitb("gzip", "bad", "lab_bomb100M.idx.gz", &b, "label header of 10, 100 MB of zeros"); free(b.p); free(h.p); }
    free(gz.p); free(img.p); free(lab.p);
}

/* ---- .npy and .npz (dSprites layout: imgs |u1 (N,64,64) 0/1; latents_classes <i8 (N,6)) ---- */
#define NPY_N 8
static buf npy_of(const char *dict, const void *data, size_t n) {
    buf b = {0, 0, 0};
    size_t hl = strlen(dict) + 1, pad = (64 - (10 + hl) % 64) % 64, i;
    bput(&b, "\x93NUMPY\x01\x00", 8);
    bput16(&b, (uint32_t)(hl + pad));
    bput(&b, dict, strlen(dict));
    for (i = 0; i < pad; i++) bputc(&b, ' ');
    bputc(&b, '\n');
    bput(&b, data, n);
    return b;
}
static unsigned char npy_img[NPY_N * 64 * 64];
static int64_t npy_cls[NPY_N * 6];
static void npy_data(void) {
    size_t i;
    for (i = 0; i < sizeof npy_img; i++) npy_img[i] = (unsigned char)((i / 64 + i % 64) % 3 == 0);
    for (i = 0; i < NPY_N; i++) {
        npy_cls[i * 6] = 0; npy_cls[i * 6 + 1] = (int64_t)(i % 3); npy_cls[i * 6 + 2] = (int64_t)(i % 6);
        npy_cls[i * 6 + 3] = (int64_t)(i * 5 % 40); npy_cls[i * 6 + 4] = (int64_t)(i * 3 % 32); npy_cls[i * 6 + 5] = (int64_t)(i * 7 % 32);
    }
}
#define IMG_DICT "{'descr': '|u1', 'fortran_order': False, 'shape': (8, 64, 64), }"
#define CLS_DICT "{'descr': '<i8', 'fortran_order': False, 'shape': (8, 6), }"
static void npy_case(const char *name, const char *dict, int classes, const char *expect, const char *what) {
    buf b = classes ? npy_of(dict, npy_cls, sizeof npy_cls) : npy_of(dict, npy_img, sizeof npy_img);
    emitb("npy", expect, name, &b, what);
    free(b.p);
}

typedef struct {
    const char *name; const unsigned char *data; size_t n; /* member content */
    int deflate; uint64_t zeros;                              /* deflated, with ZEROS appended */
    uint64_t cd_usize, cd_csize, cd_offset;                   /* non-zero: the central directory lies */
    uint32_t crc_xor; const char *local_name;
} zmember;
/* a ZIP of members; zip64: sizes and offsets in ZIP64 extra fields and end records;
   entries_lie / cd_offset_lie (non-zero) replace the end record's values */
static buf zip_of(zmember *m, int nm, int zip64, uint64_t entries_lie, uint64_t cd_offset_lie) {
    buf b = {0, 0, 0}, cd = {0, 0, 0}, *comp = (buf *)calloc((size_t)nm, sizeof(buf));
    uint64_t *off = (uint64_t *)calloc((size_t)nm, 8), cdoff;
    uint32_t *crc = (uint32_t *)calloc((size_t)nm, 4);
    int i;
    for (i = 0; i < nm; i++) {
        uint32_t c = 0xffffffffu; uint64_t z; size_t k; int t;
        const char *ln = m[i].local_name ? m[i].local_name : m[i].name;
        if (m[i].deflate) deflate_bomb(&comp[i], m[i].data, m[i].n, m[i].zeros); else bput(&comp[i], m[i].data, m[i].n);
        for (k = 0; k < m[i].n; k++) { c ^= m[i].data[k]; for (t = 0; t < 8; t++) c = c >> 1 ^ (0xedb88320u & (0u - (c & 1))); }
        for (z = 0; z < m[i].zeros; z++) for (t = 0; t < 8; t++) c = c >> 1 ^ (0xedb88320u & (0u - (c & 1)));
        crc[i] = ~c ^ m[i].crc_xor;
        off[i] = b.n;
        bput32(&b, 0x04034b50u); bput16(&b, zip64 ? 45 : 20); bput16(&b, 0); bput16(&b, m[i].deflate ? 8 : 0);
        bput16(&b, 0); bput16(&b, 0x21); bput32(&b, crc[i]);
        if (zip64) { bput32(&b, 0xffffffffu); bput32(&b, 0xffffffffu); } else { bput32(&b, (uint32_t)comp[i].n); bput32(&b, (uint32_t)(m[i].n + m[i].zeros)); }
        bput16(&b, (uint32_t)strlen(ln)); bput16(&b, zip64 ? 20 : 0); bput(&b, ln, strlen(ln));
        if (zip64) { unsigned char e[8]; bput16(&b, 1); bput16(&b, 16); put64(e, m[i].n + m[i].zeros); bput(&b, e, 8); put64(e, comp[i].n); bput(&b, e, 8); }
        bput(&b, comp[i].p, comp[i].n);
    }
    cdoff = b.n;
    for (i = 0; i < nm; i++) {
        uint64_t us = m[i].cd_usize ? m[i].cd_usize : m[i].n + m[i].zeros, cs = m[i].cd_csize ? m[i].cd_csize : comp[i].n;
        uint64_t lo = m[i].cd_offset ? m[i].cd_offset : off[i];
        unsigned char e[8];
        bput32(&cd, 0x02014b50u); bput16(&cd, zip64 ? 45 : 20); bput16(&cd, zip64 ? 45 : 20); bput16(&cd, 0); bput16(&cd, m[i].deflate ? 8 : 0);
        bput16(&cd, 0); bput16(&cd, 0x21); bput32(&cd, crc[i]);
        if (zip64) { bput32(&cd, 0xffffffffu); bput32(&cd, 0xffffffffu); } else { bput32(&cd, (uint32_t)cs); bput32(&cd, (uint32_t)us); }
        bput16(&cd, (uint32_t)strlen(m[i].name)); bput16(&cd, zip64 ? 28 : 0); bput16(&cd, 0); bput16(&cd, 0); bput16(&cd, 0); bput32(&cd, 0);
        bput32(&cd, zip64 ? 0xffffffffu : (uint32_t)lo);
        bput(&cd, m[i].name, strlen(m[i].name));
        if (zip64) { bput16(&cd, 1); bput16(&cd, 24); put64(e, us); bput(&cd, e, 8); put64(e, cs); bput(&cd, e, 8); put64(e, lo); bput(&cd, e, 8); }
    }
    bput(&b, cd.p, cd.n);
    if (zip64) {
        uint64_t rec = b.n; unsigned char e[8];
        bput32(&b, 0x06064b50u); put64(e, 44); bput(&b, e, 8); bput16(&b, 45); bput16(&b, 45); bput32(&b, 0); bput32(&b, 0);
        put64(e, entries_lie ? entries_lie : (uint64_t)nm); bput(&b, e, 8); bput(&b, e, 8);
        put64(e, cd.n); bput(&b, e, 8); put64(e, cd_offset_lie ? cd_offset_lie : cdoff); bput(&b, e, 8);
        bput32(&b, 0x07064b50u); bput32(&b, 0); put64(e, rec); bput(&b, e, 8); bput32(&b, 1);
        bput32(&b, 0x06054b50u); bput16(&b, 0xffff); bput16(&b, 0xffff); bput16(&b, 0xffff); bput16(&b, 0xffff);
        bput32(&b, 0xffffffffu); bput32(&b, 0xffffffffu); bput16(&b, 0);
    } else {
        bput32(&b, 0x06054b50u); bput16(&b, 0); bput16(&b, 0);
        bput16(&b, (uint32_t)(entries_lie ? entries_lie : (uint64_t)nm)); bput16(&b, (uint32_t)(entries_lie ? entries_lie : (uint64_t)nm));
        bput32(&b, (uint32_t)cd.n); bput32(&b, (uint32_t)(cd_offset_lie ? cd_offset_lie : cdoff)); bput16(&b, 0);
    }
    for (i = 0; i < nm; i++) free(comp[i].p);
    free(comp); free(off); free(crc); free(cd.p);
    return b;
}
static void suite_npy(void) {
    char path[1024];
    buf img, cls, z;
    zmember m[2];
    npy_data();
    img = npy_of(IMG_DICT, npy_img, sizeof npy_img); cls = npy_of(CLS_DICT, npy_cls, sizeof npy_cls);
    snprintf(path, sizeof path, "%s/good/imgs.npy", DIR_); spill(path, img.p, img.n);
    snprintf(path, sizeof path, "%s/good/classes.npy", DIR_); spill(path, cls.p, cls.n);
    truncs("npy", "imgs_", "npy", &img, 128);
    truncs("npy", "classes_", "npy", &cls, 64);
    flips("npy", "imgs_", "npy", &img, 0, 3, "any", NULL);
    npy_case("imgs_shape16.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (16, 64, 64), }", 0, "bad", "16 pictures declared, 8 present");
    npy_case("imgs_shape65.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (8, 64, 65), }", 0, "bad", "pictures 64x65");
    npy_case("imgs_shape1e15.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000000000, 64, 64), }", 0, "bad", "10^15 pictures declared");
    npy_case("imgs_shape_overflow.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999999, 64, 64), }", 0, "bad", "a shape number beyond 64 bits");
    npy_case("imgs_shape_neg.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (-8, 64, 64), }", 0, "bad", "a negative shape");
    npy_case("imgs_f4.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (8, 64, 64), }", 0, "bad", "descr <f4");
    npy_case("imgs_fortran.npy", "{'descr': '|u1', 'fortran_order': True, 'shape': (8, 64, 64), }", 0, "bad", "fortran_order True");
    npy_case("imgs_dict_open.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (8, 64, 64), ", 0, "bad", "header dict not closed");
    npy_case("imgs_deep.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': ((((((((((((((((8)))))))))))))))), 64, 64), }", 0, "bad", "nested tuples");
    npy_case("classes_shape7.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (8, 7), }", 1, "bad", "classes (8, 7)");
    npy_case("classes_shape9.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (9, 6), }", 1, "bad", "9 rows declared, 8 present");
    npy_case("classes_be.npy", "{'descr': '>i8', 'fortran_order': False, 'shape': (8, 6), }", 1, "bad", "big-endian classes");
    { buf b = bdup(&img); put32(b.p + 8, 0xffff); b.p[6] = 2; emitb("npy", "bad", "imgs_hlen_lie.npy", &b, "version 2 with a header length of 65535 (past the file)"); free(b.p); }
    { buf b = bdup(&img); b.p[6] = 3; b.p[7] = 7; emitb("npy", "bad", "imgs_version37.npy", &b, "version 3.7"); free(b.p); }
    { buf b = bdup(&img); b.p[128] = 7; emitb("npy", "any", "imgs_pixel7.npy", &b, "a pixel of 7 (0/1 expected: stored as 1 with a note)"); free(b.p); }
    { buf b = bdup(&cls); put64(b.p + 64 + 8, 99); emitb("npy", "bad", "classes_99.npy", &b, "shape index 99 (3 values)"); free(b.p); }
    { buf b = bdup(&cls); put64(b.p + 64 + 16, ~0ULL); emitb("npy", "bad", "classes_neg.npy", &b, "scale index -1"); free(b.p); }
    /* .npz */
    memset(m, 0, sizeof m);
    m[0].name = "imgs.npy"; m[0].data = img.p; m[0].n = img.n;
    m[1].name = "latents_classes.npy"; m[1].data = cls.p; m[1].n = cls.n;
    z = zip_of(m, 2, 0, 0, 0); snprintf(path, sizeof path, "%s/good/good.npz", DIR_); spill(path, z.p, z.n);
    emitb("npz", "any", "good_stored.npz", &z, "valid, stored members (control)");
    truncs("npz", "", "npz", &z, 30);
    flips("npz", "", "npz", &z, 0, 6, "any", NULL);
    free(z.p);
#define NPZ(file, zip64, ent, cdo, exp, what) do { z = zip_of(m, 2, zip64, ent, cdo); emitb("npz", exp, file, &z, what); free(z.p); } while (0)
    m[0].deflate = m[1].deflate = 1; NPZ("good_deflate_zip64.npz", 1, 0, 0, "any", "valid, deflated, ZIP64 records (control)"); m[0].deflate = m[1].deflate = 0;
    NPZ("entries60000.npz", 0, 60000, 0, "bad", "end record claims 60000 entries");
    NPZ("zip64_entries2p60.npz", 1, 1ULL << 60, 0, "bad", "ZIP64 end record claims 2^60 entries");
    NPZ("cd_offset_lie.npz", 0, 0, 5, "bad", "central directory offset 5");
    NPZ("zip64_cd_offset_2p62.npz", 1, 0, 1ULL << 62, "bad", "ZIP64 central directory offset 2^62");
    m[0].cd_usize = 1ULL << 40; NPZ("zip64_usize_2p40.npz", 1, 0, 0, "bad", "ZIP64 size of imgs.npy 2^40 (stored: the sizes differ)"); m[0].cd_usize = 0;
    m[1].cd_usize = 1ULL << 40; m[1].deflate = 1; NPZ("zip64_classes_usize_2p40.npz", 1, 0, 0, "bad", "ZIP64 size of latents_classes.npy 2^40 (deflated)"); m[1].cd_usize = 0; m[1].deflate = 0;
    m[1].cd_csize = 1ULL << 50; NPZ("zip64_csize_2p50.npz", 1, 0, 0, "bad", "ZIP64 compressed size 2^50"); m[1].cd_csize = 0;
    m[0].cd_offset = 1ULL << 33; NPZ("zip64_local_offset_2p33.npz", 1, 0, 0, "bad", "ZIP64 local header offset 2^33"); m[0].cd_offset = 0;
    m[0].crc_xor = 1; NPZ("crc_imgs.npz", 0, 0, 0, "bad", "CRC of imgs.npy off by a bit"); m[0].crc_xor = 0;
    m[1].local_name = "latents_classez.npy"; NPZ("local_name.npz", 0, 0, 0, "bad", "local header names another file"); m[1].local_name = NULL;
    m[1].name = "other.npy"; NPZ("no_classes.npz", 0, 0, 0, "bad", "no latents_classes.npy"); m[1].name = "latents_classes.npy";
    /* bombs: the member inflates past what its .npy header says; the central directory lies or tells */
    m[0].deflate = 1; m[0].zeros = 200000000ULL;
    NPZ("bomb_imgs_200M.npz", 0, 0, 0, "bad", "imgs.npy of 8 pictures followed by 200 MB of zeros (1.2 MB deflated)");
    m[0].cd_usize = img.n; NPZ("bomb_imgs_200M_cdlie.npz", 0, 0, 0, "bad", "the same, the central directory claims the true size");
    m[0].cd_usize = 0; m[0].zeros = 0; m[0].deflate = 0;
    { buf h = npy_of("{'descr': '<i8', 'fortran_order': False, 'shape': (20000000, 6), }", NULL, 0);
      zmember b2[2]; memset(b2, 0, sizeof b2); b2[0] = m[0]; b2[1].name = "latents_classes.npy"; b2[1].data = h.p; b2[1].n = h.n; b2[1].deflate = 1; b2[1].zeros = 960000000ULL;
      z = zip_of(b2, 2, 1, 0, 0); emitb("npz", "bad", "bomb_classes_960M.npz", &z, "latents_classes of 20,000,000 rows of zeros: 960 MB of labels for 8 pictures (6 MB deflated)"); free(z.p); free(h.p); }
    free(img.p); free(cls.p);
}

/* ---- PNG by hand (zlib of stored or bomb DEFLATE), and picture folders ---- */
static void chunk(buf *b, const char *type, const unsigned char *d, size_t n) {
    unsigned char t[4];
    size_t at;
    put32be(t, (uint32_t)n); bput(b, t, 4);
    at = b->n; bput(b, type, 4); bput(b, d, n);
    put32be(t, crc32_of(b->p + at, n + 4)); bput(b, t, 4);
}
/* a gray 8-bit PNG W x H: rows of PX (filter 0) then ZEROS more zero bytes in the stream */
static buf png_of(uint32_t w, uint32_t h, int depth, int ctype, const unsigned char *raw, size_t n, uint64_t zeros) {
    buf b = {0, 0, 0}, z = {0, 0, 0};
    unsigned char ih[13];
    uint32_t a = 1, bb = 0;
    uint64_t k;
    size_t i;
    bput(&b, "\x89PNG\r\n\x1a\n", 8);
    put32be(ih, w); put32be(ih + 4, h); ih[8] = (unsigned char)depth; ih[9] = (unsigned char)ctype; ih[10] = ih[11] = ih[12] = 0;
    chunk(&b, "IHDR", ih, 13);
    bputc(&z, 0x78); bputc(&z, 0x01);
    deflate_bomb(&z, raw, n, zeros);
    for (i = 0; i < n; i++) { a = (a + raw[i]) % 65521u; bb = (bb + a) % 65521u; }
    for (k = 0; k < zeros; k++) bb = (bb + a) % 65521u;
    { unsigned char t[4]; put32be(t, bb << 16 | a); bput(&z, t, 4); }
    chunk(&b, "IDAT", z.p, z.n);
    chunk(&b, "IEND", NULL, 0);
    free(z.p);
    return b;
}
/* a folder DIR/pics/NAME holding good.png and the file BAD (may be NULL) as x.EXT */
static void pic_case(const char *name, const buf *good, const buf *bad, const char *ext, const char *expect, const char *what) {
    char path[1200];
    snprintf(path, sizeof path, "%s/pics/%s", DIR_, name); mkdir_p(path);
    if (good) { snprintf(path, sizeof path, "%s/pics/%s/good.png", DIR_, name); spill(path, good->p, good->n); }
    if (bad) { snprintf(path, sizeof path, "%s/pics/%s/x.%s", DIR_, name, ext); spill(path, bad->p, bad->n); }
    fprintf(MAN, "pics|%s|pics/%s|%s\n", expect, name, what);
}
static void suite_pics(void) {
    unsigned char raw[8 * 9];
    char path[1200], name[200], what[200];
    size_t i, cuts[5];
    buf g, j, b;
    for (i = 0; i < sizeof raw; i++) raw[i] = i % 9 == 0 ? 0 : (unsigned char)(i * 13);
    g = png_of(8, 8, 8, 0, raw, sizeof raw, 0);
    snprintf(path, sizeof path, "%s/good/good.png", DIR_); spill(path, g.p, g.n);
    snprintf(path, sizeof path, "%s/good/good.jpg", DIR_); j = slurp(path);
    pic_case("control", &g, NULL, "png", "any", "one valid 8x8 PNG (control)");
    cuts[0] = 0; cuts[1] = 8; cuts[2] = 20; cuts[3] = g.n / 2; cuts[4] = g.n - 12;
    for (i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "png_trunc%zu", cuts[i]); snprintf(what, sizeof what, "a PNG cut to %zu of %zu bytes", cuts[i], g.n);
        b = g; b.n = cuts[i]; pic_case(name, &g, &b, "png", "bad", what);
    }
    cuts[0] = 2; cuts[1] = 100; cuts[2] = j.n / 2; cuts[3] = j.n - 2;
    for (i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "jpg_trunc%zu", cuts[i]); snprintf(what, sizeof what, "a JPEG cut to %zu of %zu bytes", cuts[i], j.n);
        b = j; b.n = cuts[i]; pic_case(name, &g, &b, "jpg", i == 3 ? "any" : "bad", what);
    }
    for (i = 0; i < 4; i++) {
        size_t at = 8 + (size_t)(rnd() % (uint64_t)(g.n - 8));
        b = bdup(&g); b.p[at] ^= 0x10;
        snprintf(name, sizeof name, "png_flip%zu", at); snprintf(what, sizeof what, "a PNG with byte %zu flipped", at);
        pic_case(name, &g, &b, "png", "any", what); free(b.p);
    }
    for (i = 0; i < 4; i++) {
        size_t at = 2 + (size_t)(rnd() % (uint64_t)(j.n - 2));
        b = bdup(&j); b.p[at] ^= 0x10;
        snprintf(name, sizeof name, "jpg_flip%zu", at); snprintf(what, sizeof what, "a JPEG with byte %zu flipped", at);
        pic_case(name, &g, &b, "jpg", "any", what); free(b.p);
    }
    b = png_of(100000, 100000, 8, 0, raw, sizeof raw, 0); pic_case("png_100000sq", &g, &b, "png", "bad", "IHDR 100000x100000 (10^10 pixels) over 72 bytes of data"); free(b.p);
    b = png_of(0, 8, 8, 0, raw, sizeof raw, 0); pic_case("png_width0", &g, &b, "png", "bad", "IHDR width 0"); free(b.p);
    b = png_of(8, 8, 8, 9, raw, sizeof raw, 0); pic_case("png_ctype9", &g, &b, "png", "bad", "colour type 9"); free(b.p);
    b = png_of(8, 8, 7, 0, raw, sizeof raw, 0); pic_case("png_depth7", &g, &b, "png", "bad", "bit depth 7"); free(b.p);
    b = png_of(8, 8, 8, 0, raw, 30, 0); pic_case("png_short_idat", &g, &b, "png", "bad", "IDAT inflates to 30 of 72 bytes"); free(b.p);
    b = png_of(8, 8, 8, 0, raw, sizeof raw, 100000000ULL); pic_case("png_idat_bomb", &g, &b, "png", "any", "8x8 PNG whose IDAT inflates 100 MB past the picture (600 kB)"); free(b.p);
    b = png_of(8192, 8192, 8, 0, NULL, 0, 8192ULL * 8193ULL); pic_case("png_8192sq_zeros", &g, &b, "png", "any", "a valid 8192x8192 gray PNG of zeros (67 megapixels, the limit; 400 kB)"); free(b.p);
    b = png_of(8192, 8193, 8, 6, NULL, 0, 8192ULL * 4 * 8193ULL + 8193ULL); pic_case("png_8192x8193_rgba", &g, &b, "png", "bad", "8192x8193 RGBA: one row over the pixel limit"); free(b.p);
    { unsigned char big[4]; b = bdup(&g); put32be(big, 0x6fffffffu); memcpy(b.p + 33, big, 4); pic_case("png_idat_len_lie", &g, &b, "png", "bad", "IDAT length 1.9 GB in a 150-byte file"); free(b.p); }
    { b = bdup(&j); for (i = 2; i + 8 < b.n; i++) if (b.p[i] == 0xff && (b.p[i + 1] == 0xc0 || b.p[i + 1] == 0xc2)) { put16be(b.p + i + 5, 65535); put16be(b.p + i + 7, 65535); break; }
      pic_case("jpg_65535sq", &g, &b, "jpg", "bad", "SOF of 65535x65535 pixels"); free(b.p); }
    b = g; b.n = 0; pic_case("empty_png", &g, &b, "png", "bad", "a 0-byte x.png");
    { buf t = {0, 0, 0}; bput(&t, "GIF89a", 6); bput(&t, raw, 40); pic_case("gif_as_png", &g, &t, "png", "bad", "a GIF named x.png"); free(t.p); }
    pic_case("empty_folder", NULL, NULL, "png", "bad", "a folder without pictures");
    /* non-regular files: made here with mkfifo/ln -s through the shell (POSIX tools) */
    pic_case("fifo", &g, NULL, "png", "any", "good.png and a FIFO x.png");
    pic_case("fifo_only", NULL, NULL, "png", "bad", "only a FIFO x.png");
    pic_case("subfolder", &g, NULL, "png", "any", "good.png and a folder x.png");
    pic_case("dangling", &g, NULL, "png", "any", "good.png and a dangling link x.png");
    pic_case("loop", &g, NULL, "png", "any", "good.png and links a.png -> b.png -> a.png");
    pic_case("devzero", &g, NULL, "png", "any", "good.png and a link x.png -> /dev/zero");
    snprintf(path, sizeof path, "cd '%s/pics' && mkfifo fifo/x.png fifo_only/x.png && mkdir subfolder/x.png && ln -s nowhere.png dangling/x.png"
             " && ln -s b.png loop/a.png && ln -s a.png loop/b.png && ln -s /dev/zero devzero/x.png", DIR_);
    if (system(path) != 0) die("cannot make the FIFOs and links");
    free(g.p); free(j.p);
}

/* ---- safetensors: u64 header length, JSON header, data; the header is edited as text ---- */
static buf st_make(const char *json, size_t jn, const unsigned char *data, size_t dn) {
    buf b = {0, 0, 0};
    unsigned char t[8];
    put64(t, jn); bput(&b, t, 8); bput(&b, json, jn); bput(&b, data, dn);
    return b;
}
/* the template with the first FROM in its header replaced by TO (skipped when FROM is absent) */
static void st_sub(const buf *g, const char *name, const char *from, const char *to, const char *expect, const char *what) {
    size_t hl = (size_t)get64(g->p), fl = strlen(from);
    const char *h = (const char *)g->p + 8, *at = NULL;
    size_t i;
    buf j = {0, 0, 0}, b;
    for (i = 0; i + fl <= hl; i++) if (!memcmp(h + i, from, fl)) { at = h + i; break; }
    if (!at) { fprintf(stderr, "hostile_gen: safetensors template lacks %s (%s skipped)\n", from, name); return; }
    bput(&j, h, (size_t)(at - h)); bput(&j, to, strlen(to)); bput(&j, at + fl, hl - (size_t)(at - h) - fl);
    b = st_make((const char *)j.p, j.n, g->p + 8 + hl, g->n - 8 - hl);
    emitb("safetensors", expect, name, &b, what);
    free(b.p); free(j.p);
}
static void st_json(const buf *g, const char *name, const char *json, size_t jn, const char *expect, const char *what) {
    size_t hl = (size_t)get64(g->p);
    buf b = st_make(json, jn, g->p + 8 + hl, g->n - 8 - hl);
    emitb("safetensors", expect, name, &b, what);
    free(b.p);
}
static void suite_safetensors(void) {
    char path[1024];
    buf g, b, j = {0, 0, 0};
    size_t hl, i;
    snprintf(path, sizeof path, "%s/good/good.safetensors", DIR_); g = slurp(path);
    hl = (size_t)get64(g.p);
    emitb("safetensors", "any", "good.safetensors", &g, "the exported model (control)");
    truncs("safetensors", "", "safetensors", &g, 8 + hl);
    flips("safetensors", "hdr_", "safetensors", &g, 8, 6, "any", NULL);
    { b = bdup(&g); put64(b.p, 1ULL << 63); emitb("safetensors", "bad", "hlen2p63.safetensors", &b, "header length 2^63"); free(b.p); }
    { b = bdup(&g); put64(b.p, g.n - 7); emitb("safetensors", "bad", "hlen_past.safetensors", &b, "header length one past the file"); free(b.p); }
    { b = bdup(&g); put64(b.p, 0); emitb("safetensors", "bad", "hlen0.safetensors", &b, "header length 0"); free(b.p); }
    { b = bdup(&g); put64(b.p, hl - 1); emitb("safetensors", "bad", "hlen_short.safetensors", &b, "header length one short (the JSON is cut)"); free(b.p); }
    st_sub(&g, "dtype_f64.safetensors", "\"F32\"", "\"F64\"", "bad", "first tensor F64");
    st_sub(&g, "dtype_bf16.safetensors", "\"F32\"", "\"BF16\"", "bad", "first tensor BF16");
    st_sub(&g, "dtype_junk.safetensors", "\"F32\"", "\"F32\\u0000\"", "bad", "dtype with a \\u0000 escape");
    st_sub(&g, "shape_huge.safetensors", "\"shape\":[", "\"shape\":[99999999999999,", "bad", "a dimension of 10^14 in front");
    st_sub(&g, "shape_overflow.safetensors", "\"shape\":[", "\"shape\":[4294967296,4294967296,4294967296,", "bad", "dimensions whose product overflows 64 bits");
    st_sub(&g, "shape_neg.safetensors", "\"shape\":[", "\"shape\":[-1,", "bad", "a dimension of -1");
    st_sub(&g, "shape_float.safetensors", "\"shape\":[", "\"shape\":[1.5,", "bad", "a dimension of 1.5");
    st_sub(&g, "offsets_shift.safetensors", "\"data_offsets\":[0,", "\"data_offsets\":[4,", "bad", "first tensor's offsets start at 4");
    st_sub(&g, "offsets_huge.safetensors", "\"data_offsets\":[0,", "\"data_offsets\":[0,18446744073709551615,", "bad", "an end offset of 2^64-1 (three numbers)");
    st_sub(&g, "offsets_big.safetensors", "\"data_offsets\":[0,", "\"data_offsets\":[18446744073709551600,", "bad", "a begin offset near 2^64");
    st_sub(&g, "offsets_nan.safetensors", "\"data_offsets\":[0,", "\"data_offsets\":[NaN,", "bad", "a NaN offset");
    st_sub(&g, "zdim_huge.safetensors", "\"z_dim\":\"", "\"z_dim\":\"99999999999", "bad", "metadata z_dim 99999999999...");
    st_sub(&g, "zdim_nan.safetensors", "\"z_dim\":\"", "\"z_dim\":\"nan", "bad", "metadata z_dim nan...");
    st_sub(&g, "enc_spec_huge.safetensors", "\"encoder_spec\":\"", "\"encoder_spec\":\"dense2000000000,", "bad", "metadata encoder spec of 2e9 units in front");
    st_sub(&g, "shape_meta_huge.safetensors", "\"input_shape\":\"", "\"input_shape\":\"65536,65536,", "bad", "metadata input shape 65536x65536x...");
    st_sub(&g, "dup_metadata.safetensors", "\"__metadata__\":{", "\"__metadata__\":{\"z_dim\":\"2\",", "bad", "metadata z_dim given twice");
    st_sub(&g, "unterminated.safetensors", "\"dtype\":\"F32\"", "\"dtype\":\"F32", "bad", "an unterminated string");
    st_sub(&g, "meta_not_string.safetensors", "\"z_dim\":\"", "\"z_dim\":[\"", "bad", "a metadata value that is an array");
    st_json(&g, "json_empty_obj.safetensors", "{}", 2, "bad", "header {}");
    st_json(&g, "json_array.safetensors", "[]      ", 8, "bad", "header []");
    st_json(&g, "json_spaces.safetensors", "        ", 8, "bad", "header of spaces");
    for (i = 0; i < 100000; i++) bputc(&j, '[');
    { buf k = {0, 0, 0}; bput(&k, "{\"a\":", 5); bput(&k, j.p, j.n); bputc(&k, '}');
      st_json(&g, "json_deep.safetensors", (const char *)k.p, k.n, "bad", "100,000 nested ["); free(k.p); }
    free(j.p); j.p = NULL; j.n = j.cap = 0;
    /* every weight finite is required: a NaN and an Inf in the data block */
    { b = bdup(&g); put32(b.p + 8 + hl, 0x7fc00000u); emitb("safetensors", "bad", "data_nan.safetensors", &b, "first weight NaN"); free(b.p); }
    { b = bdup(&g); put32(b.p + b.n - 4, 0xff800000u); emitb("safetensors", "bad", "data_inf.safetensors", &b, "last weight -Inf"); free(b.p); }
    { b = bdup(&g); bput(&b, "tail", 4); emitb("safetensors", "bad", "data_trailing.safetensors", &b, "4 bytes after the last tensor"); free(b.p); }
    free(g.p);
}

/* ---- HDF5 (3dshapes.h5 for shapes3d2hpd): the good file from tests/shapes3d_h5.c, cut and flipped */
static void suite_h5(void) {
    char path[1024];
    FILE *f;
    buf g;
    snprintf(path, sizeof path, "%s/good/good.h5", DIR_);
    if (!(f = fopen(path, "rb"))) return; /* libhdf5-dev not installed: no shapes3d2hpd */
    fclose(f);
    g = slurp(path);
    emitb("h5", "any", "good.h5", &g, "a valid file of 16 pictures (control)");
    truncs("h5", "", "h5", &g, 2048);
    flips("h5", "", "h5", &g, 0, 10, "any", NULL);
    { buf b = bdup(&g); memset(b.p + g.n / 2, 0xff, 512); emitb("h5", "any", "smash_middle.h5", &b, "512 bytes of 0xff in the middle"); free(b.p); }
    { buf b = bdup(&g); memset(b.p + 8, 0xff, 64); emitb("h5", "bad", "smash_superblock.h5", &b, "the superblock overwritten"); free(b.p); }
    free(g.p);
}

/* ---- spec strings and flags: one command line per entry, @HPD@ @HPM@ @OUT@ filled in by run.sh */
static void flag(const char *sub, const char *args, const char *what) { fprintf(MAN, "flags|bad|%s|%s|%s\n", sub, what, args); }
static void suite_flags(void) {
    char big[700];
    int i;
    const char *T = "--data @HPD@ --z 2 --batch-size 2 --steps 1 --out @OUT@";
    char a[1200];
#define TR(spec, what) do { snprintf(a, sizeof a, "%s --enc %s --dec dense64", T, spec); flag("train", a, what); } while (0)
    TR("dense0", "a dense layer of 0 units");
    TR("dense99999999999999999999", "units beyond 64 bits");
    TR("dense2147483648", "2^31 units");
    TR("dense-1", "negative units");
    TR("densenan", "NaN units");
    TR("conv0k4s2p1", "0 conv channels");
    TR("conv8k0s1p0", "a 0 kernel");
    TR("conv8k4s0p1", "stride 0");
    TR("conv8k99s1p0", "a kernel larger than the picture");
    TR("conv8k4s2p9", "padding above the kernel");
    TR("conv2147483648k3s1p1,flatten", "2^31 channels");
    TR("lrelunan", "leaky ReLU slope NaN");
    TR("lrelu1e400", "leaky ReLU slope 1e400");
    TR("dense4,,relu", "an empty token");
    TR("dense4,relu,", "a trailing comma");
    TR("reshape99x99x99", "a reshape of the wrong size");
    TR("flatten,flatten,dense4,unknownlayer", "an unknown layer");
    for (i = 0; i < 600; i++) big[i] = i % 2 ? ',' : 'x';
    big[600] = 0;
    TR(big, "600 characters of junk");
#define FL(sub, extra, what) do { snprintf(a, sizeof a, "%s", extra); flag(sub, a, what); } while (0)
    FL("train", "--data @HPD@ --enc dense4 --dec dense64 --z nan --out @OUT@", "--z nan");
    FL("train", "--data @HPD@ --enc dense4 --dec dense64 --z 0 --out @OUT@", "--z 0");
    FL("train", "--data @HPD@ --enc dense4 --dec dense64 --z 99999999999999999999 --out @OUT@", "--z beyond 64 bits");
    FL("train", "--data @HPD@ --enc dense4 --dec dense64 --z 2 --batch-size 18446744073709551616 --out @OUT@", "--batch-size 2^64");
    FL("train", "--data @HPD@ --enc dense4 --dec dense64 --z 2 --batch-size -1 --out @OUT@", "--batch-size -1");
    FL("train", "--data @HPD@ --enc dense4 --dec dense64 --z 2 --lr nan --out @OUT@", "--lr nan");
    FL("train", "--data @HPD@ --enc dense4 --dec dense64 --z 2 --lr 1e400 --out @OUT@", "--lr 1e400");
    FL("train", "--data @HPD@ --enc dense4 --dec dense64 --z 2 --lr -0 --out @OUT@", "--lr -0");
    FL("train", "--data @HPD@ --enc dense4 --dec dense64 --z 2 --beta inf --out @OUT@", "--beta inf");
    FL("train", "--data @HPD@ --enc dense4 --dec dense64 --z 2 --steps -5 --out @OUT@", "--steps -5");
    FL("train", "--data @HPD@ --enc dense4 --dec dense64 --z 2 --epochs 1e9 --out @OUT@", "--epochs 1e9");
    FL("train", "--data @HPD@ --enc dense4 --dec dense64 --z 2 --seed 0x --out @OUT@", "--seed 0x");
    FL("train", "--data @HPD@ --enc dense4 --dec dense64 --z 2 --mem-budget nan --out @OUT@", "--mem-budget nan");
    FL("train", "--data @HPD@ --enc dense4 --dec dense64 --z 2 --mem-budget -1 --out @OUT@", "--mem-budget -1");
    FL("train", "--data @HPD@ --preset no-such-preset --out @OUT@", "an unknown preset");
    FL("train", "--data @HPD@ --enc dense4 --dec dense64 --z 2 --objective tcvae --estimator nope --out @OUT@", "an unknown estimator");
    FL("sample", "--model @HPM@ --n 0 --out @OUT@", "--n 0");
    FL("sample", "--model @HPM@ --n 99999999999999 --out @OUT@", "--n 10^14");
    FL("sample", "--model @HPM@ --n nan --out @OUT@", "--n nan");
    FL("traverse", "--model @HPM@ --dims 99 --out @OUT@", "--dims 99 of 2");
    FL("traverse", "--model @HPM@ --dims 4294967296 --out @OUT@", "--dims 2^32");
    FL("traverse", "--model @HPM@ --range nan --out @OUT@", "--range nan");
    FL("traverse", "--model @HPM@ --steps 99999999999 --out @OUT@", "--steps 10^11");
    FL("outliers", "--model @HPM@ --batch @HPD@ --threshold nan --out @OUT@", "--threshold nan");
    FL("outliers", "--model @HPM@ --batch @HPD@ --cov nope --out @OUT@", "--cov nope");
    FL("outliers", "--model @HPM@ --batch @HPD@ --score knn:0 --out @OUT@", "--score knn:0");
    FL("outliers", "--model @HPM@ --batch @HPD@ --score knn:99999999999999999999 --out @OUT@", "--score knn beyond 64 bits");
    FL("outliers", "--model @HPM@ --batch @HPD@ --auto quantile:1.5 --out @OUT@", "--auto quantile:1.5");
    FL("outliers", "--model @HPM@ --batch @HPD@ --fpr nan --out @OUT@", "--fpr nan");
    FL("outliers", "--model @HPM@ --batch @HPD@ --calibrate 7 --out @OUT@", "--calibrate 7");
    FL("outliers", "--model @HPM@ --batch @HPD@ --score combined: --out @OUT@", "--score combined: without members");
    FL("outliers", "--model @HPM@ --batch @HPD@ --score combined:knn+knn:3 --out @OUT@", "a combined member twice");
    FL("outliers", "--model @HPM@ --batch @HPD@ --score combined:+ --out @OUT@", "an empty combined member");
    FL("outliers", "--model @HPM@ --batch @HPD@ --scorer @HPD@ --out @OUT@", "a .hpd as --scorer");
    FL("outliers", "--model @HPM@ --batch @HPD@ --scorer @HPM@ --out @OUT@", "a .hpm as --scorer");
    FL("explain", "--model @HPM@ --batch @HPD@ --top -1 --out @OUT@", "--top -1");
    FL("counterfactual", "--model @HPM@ --batch @HPD@ --top-k 4294967297 --out @OUT@", "--top-k 2^32+1");
    FL("morph", "--model @HPM@ --batch @HPD@ --steps 0 --out @OUT@", "--steps 0");
    FL("batch", "--data @HPD@ --normal shape=99 --n-normal 2 --out @OUT@.hpd", "a factor value past the factor");
    FL("batch", "--data @HPD@ --normal nosuch=0 --n-normal 2 --out @OUT@.hpd", "an unknown factor");
    FL("batch", "--data @HPD@ --normal shape=0 --n-normal 99999999999999999999 --out @OUT@.hpd", "--n-normal beyond 64 bits");
    FL("eval", "--model @HPM@ --data @HPD@ --mig-samples -3 --out @OUT@", "--mig-samples -3");
    FL("export", "--model @HPM@ --format nope --out @OUT@.x", "--format nope");
    FL("import", "--preset nope @HPM@ @OUT@.hpm", "an unknown preset for import");
}

static int suite(const char *dir) {
    char path[1024];
    DIR_ = dir;
    snprintf(path, sizeof path, "%s/manifest", dir);
    if (!(MAN = fopen(path, "w"))) die("cannot write the manifest");
    suite_hpd(); suite_huge(); suite_hpm(); suite_idx(); suite_npy(); suite_pics(); suite_safetensors(); suite_h5(); suite_flags();
    if (fclose(MAN) != 0) die("cannot write the manifest");
    return 0;
}

/* the good .hpd templates: u8 1x8x8 with factors shape (3) and scale (4), and f32 without */
static int good(const char *dir) {
    heph_hpd_info info;
    heph_hpd_writer wr;
    char path[1024];
    uint8_t px[64];
    float fx[64];
    int32_t fac[2];
    int i, j, f;
    for (f = 0; f < 2; f++) {
        memset(&info, 0, sizeof info);
        info.count = 24; info.c = 1; info.h = 8; info.w = 8; info.dtype = f ? HEPH_PX_F32 : HEPH_PX_U8;
        info.value_max = f ? 1.0f : 255.0f;
        info.n_factors = f ? 0 : 2;
        strcpy(info.source, "hostile/good");
        strcpy(info.factors[0].name, "shape"); info.factors[0].n_values = 3;
        strcpy(info.factors[1].name, "scale"); info.factors[1].n_values = 4;
        snprintf(path, sizeof path, "%s/%s", dir, f ? "good_f32.hpd" : "good.hpd");
        if (heph_hpd_create(&wr, path, &info) != HEPH_OK) { fprintf(stderr, "hostile_gen: %s\n", wr.err); return 1; }
        for (i = 0; i < 24; i++) {
            for (j = 0; j < 64; j++) { px[j] = (uint8_t)(((j / 8) * (i % 3 + 1) + j % 8 * (i % 4)) * 9 % 256); fx[j] = (float)px[j] / 255.0f; }
            fac[0] = i % 3; fac[1] = i % 4;
            if ((f ? heph_hpd_put_f32(&wr, fx, NULL) : heph_hpd_put_u8(&wr, px, fac)) != HEPH_OK) { fprintf(stderr, "hostile_gen: %s\n", wr.err); return 1; }
        }
        if (heph_hpd_finish(&wr) != HEPH_OK) { fprintf(stderr, "hostile_gen: cannot finish %s\n", path); return 1; }
    }
    return 0;
}

/* rss FILE CMD...: run CMD (the only child), write its peak resident size in KB to FILE */
static int rss(char **argv) {
    pid_t pid = fork();
    int st;
    struct rusage ru;
    FILE *f;
    if (pid < 0) die("fork");
    if (pid == 0) { execvp(argv[1], argv + 1); _exit(127); }
    if (waitpid(pid, &st, 0) < 0 || getrusage(RUSAGE_CHILDREN, &ru) != 0) die("waitpid");
    if ((f = fopen(argv[0], "w"))) { fprintf(f, "%ld\n", ru.ru_maxrss); fclose(f); }
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

int main(int argc, char **argv) {
    if (argc == 6 && !strcmp(argv[1], "hpm-set")) return hpm_set(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 7 && !strcmp(argv[1], "hpd-sparse"))
        return hpd_sparse(argv[2], strtoull(argv[3], NULL, 0), (uint32_t)atoi(argv[4]), (uint32_t)atoi(argv[5]),
                          (uint32_t)atoi(argv[6]));
    if (argc == 3 && !strcmp(argv[1], "good")) return good(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "suite")) return suite(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "rss")) return rss(argv + 2);
    fprintf(stderr, "usage: hostile_gen hpm-set IN OUT FIELD VALUE | hpd-sparse OUT COUNT C H W | good DIR | suite DIR | rss FILE CMD...\n");
    return 2;
}
