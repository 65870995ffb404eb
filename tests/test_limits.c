/* test_limits.c - absurd and hostile headers are refused with a message before anything of
   their size is allocated (issue #7). Every allocation of the library goes through a counting
   allocator that records the largest single request and refuses anything above 64 MB (so a
   regression fails here instead of exhausting the machine).
     .hpd: 32 factors claiming 10^6 stored values each in a 1.2 kB file; value_max so small that
           255 / value_max overflows (the reader would return Inf/NaN pixels);
     .hpm: (valid checksums) a stored parameter count of 2^40 or one parameter short/long of
           the file; an architecture of 10^9 parameters (dense1000000 on 28x28) in a 1 kB file;
           a checkpoint whose stored count matches neither.
   usage: test_limits [TMPDIR]  (TMPDIR also from $HEPH_TEST_TMP; default ".")
   Prints "PASS name" / "FAIL name: why" lines; exit status 1 when one failed.              */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

static size_t t_max_req;
static long t_live;
static void *t_malloc(size_t n) {
    void *p;
    if (n > t_max_req) t_max_req = n;
    if (n > ((size_t)64 << 20)) return NULL;
    p = malloc(n);
    if (p) t_live++;
    return p;
}
static void t_free(void *p) {
    if (p) { t_live--; free(p); }
}
#define HEPH_MALLOC(sz) t_malloc(sz)
#define HEPH_FREE(p) t_free(p)
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"

static const char *dir = ".";
static int failed;
static char path_buf[1024];

static const char *tpath(const char *name) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", dir, name);
    return path_buf;
}
static void report(int ok, const char *name, const char *why) {
    if (ok) printf("PASS %s\n", name);
    else { printf("FAIL %s: %s\n", name, why); failed++; }
}
static int write_bytes(const char *p, const unsigned char *b, size_t n) {
    FILE *f = fopen(p, "wb");
    int ok = f && fwrite(b, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    return ok;
}
static void le32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}
static void le64(unsigned char *p, uint64_t v) { le32(p, (uint32_t)v); le32(p + 4, (uint32_t)(v >> 32)); }
static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* ---- .hpd ------------------------------------------------------------------------------------ */

/* one 1x1x1 u8 picture, 32 factors of 10^6 values each whose values_offset points into the
   header (which is far too small to hold them) */
static void hpd_factor_values(void) {
    static unsigned char b[1216 + 1 + 128];
    heph_hpd d;
    uint32_t k;
    int rc;
    char why[400];
    memset(b, 0, sizeof b);
    memcpy(b, "HEPHHPD", 8);
    le32(b + 8, 1); le32(b + 12, 1216); le64(b + 16, 1);
    le32(b + 24, 1); le32(b + 28, 1); le32(b + 32, 1); le32(b + 36, HEPH_PX_U8);
    le32(b + 44, f2u(255.0f)); le32(b + 48, 32); le32(b + 52, HEPH_HPD_LABELS);
    le64(b + 64, 1217);
    for (k = 0; k < 32; k++) {
        unsigned char *f = b + 104 + 32 * k;
        snprintf((char *)f, 24, "f%u", k);
        le32(f + 24, 1000000);
        le32(f + 28, 1152); /* inside the header, but 8 MB of values do not fit in it */
    }
    if (!write_bytes(tpath("limits_values.hpd"), b, sizeof b)) { report(0, "hpd: 32 factors x 10^6 stored values", "cannot write"); return; }
    t_max_req = 0;
    rc = heph_hpd_open(&d, tpath("limits_values.hpd"));
    if (rc == HEPH_OK) heph_hpd_close(&d);
    snprintf(why, sizeof why, "rc %d, largest allocation %zu bytes, message \"%s\"", rc, t_max_req, rc ? d.err : "");
    report(rc == HEPH_E_FORMAT && t_max_req <= 65536 && strstr(d.err, "values_offset") && t_live == 0,
           "hpd: 32 factors claiming 10^6 stored values each in a 1.3 kB file: refused before allocating", why);
}

/* a valid 2-picture u8 file, then value_max patched */
static void hpd_value_max(void) {
    heph_hpd_info info;
    heph_hpd_writer w;
    heph_hpd d;
    uint8_t px[4] = {0, 1, 128, 255};
    unsigned char b[512];
    size_t n;
    FILE *f;
    int rc, fin = 1;
    char why[400];
    memset(&info, 0, sizeof info);
    info.count = 2; info.c = 1; info.h = 2; info.w = 2; info.dtype = HEPH_PX_U8; info.value_max = 255.0f;
    if (heph_hpd_create(&w, tpath("limits_vmax.hpd"), &info) != HEPH_OK || heph_hpd_put_u8(&w, px, NULL) != HEPH_OK ||
        heph_hpd_put_u8(&w, px, NULL) != HEPH_OK || heph_hpd_finish(&w) != HEPH_OK) {
        report(0, "hpd: value_max", w.err);
        return;
    }
    f = fopen(tpath("limits_vmax.hpd"), "rb");
    n = f ? fread(b, 1, sizeof b, f) : 0;
    if (f) fclose(f);
    le32(b + 44, 0x0000656du); /* 3.6e-41, a denormal: 1 / value_max is Inf */
    write_bytes(tpath("limits_vmax.hpd"), b, n);
    rc = heph_hpd_open(&d, tpath("limits_vmax.hpd"));
    if (rc == HEPH_OK) heph_hpd_close(&d);
    snprintf(why, sizeof why, "rc %d, message \"%s\"", rc, rc ? d.err : "");
    report(rc == HEPH_E_FORMAT && strstr(d.err, "value_max"), "hpd: value_max 3.6e-41 (255 / value_max = Inf) refused", why);
    le32(b + 44, f2u(1e-30f)); /* the smallest accepted: 255 / 1e-30 is finite */
    write_bytes(tpath("limits_vmax.hpd"), b, n);
    rc = heph_hpd_open(&d, tpath("limits_vmax.hpd"));
    if (rc == HEPH_OK) {
        /* since issue #20 a stored value above value_max is refused (it would read as 1e30):
           the pixel 0 of picture 0 reads as 0, the pixel 1 after it is refused by name */
        size_t first = 0;
        float one[4];
        rc = heph_hpd_read(&d, &first, 1, one);
        fin = rc == HEPH_E_FORMAT && strstr(d.err, "picture 0, value 1 is 1: pixels must lie in [0, value_max 1e-30]") != NULL;
        heph_hpd_close(&d);
    }
    snprintf(why, sizeof why, "rc %d, refused by name %d, message \"%s\"", rc, fin, rc ? d.err : "");
    report(fin, "hpd: value_max 1e-30 accepted; a pixel above it refused, not read as 1e30", why);
}

/* ---- .hpm ------------------------------------------------------------------------------------ */

/* a checkpoint written field by field: weights only (flags 0), n_stored as the count and
   n_real parameters (zeros) after it, then the FNV-1a checksum */
static size_t hpm_bytes(unsigned char *b, int c, int h, int w, int z, const char *enc, const char *dec,
                        uint64_t n_stored, size_t n_real) {
    size_t at = 0, i;
    uint64_t hsum;
    memcpy(b, "HEPHHPM", 8); at = 8;
    le32(b + at, 1); at += 4; le32(b + at, 0); at += 4;
    le32(b + at, (uint32_t)c); le32(b + at + 4, (uint32_t)h); le32(b + at + 8, (uint32_t)w);
    le32(b + at + 12, (uint32_t)z); le32(b + at + 16, 4); at += 20;
    le32(b + at, (uint32_t)strlen(enc)); memcpy(b + at + 4, enc, strlen(enc)); at += 4 + strlen(enc);
    le32(b + at, (uint32_t)strlen(dec)); memcpy(b + at + 4, dec, strlen(dec)); at += 4 + strlen(dec);
    le32(b + at, HEPH_OBJ_BETA); le32(b + at + 4, HEPH_RECON_BERNOULLI); le32(b + at + 8, f2u(1.0f));
    le32(b + at + 12, f2u(1.0f)); le32(b + at + 16, f2u(1.0f)); le32(b + at + 20, 0); at += 24;
    le64(b + at, 0); at += 8;                                  /* ramp_steps */
    le32(b + at, f2u(1.0f)); le32(b + at + 4, 0); at += 8;     /* alpha, estimator */
    le64(b + at, 0); at += 8;                                  /* dataset_size */
    le32(b + at, f2u(1e-3f)); le32(b + at + 4, f2u(0.9f)); le32(b + at + 8, f2u(0.999f)); le32(b + at + 12, f2u(1e-8f)); at += 16;
    le64(b + at, 0); at += 8;                                  /* step */
    le64(b + at, 1); le64(b + at + 8, 3); le32(b + at + 16, 0); le32(b + at + 20, 0); at += 24;
    le64(b + at, n_stored); at += 8;
    for (i = 0; i < n_real; i++) { le32(b + at, 0); at += 4; }
    hsum = heph__fnv1a(HEPH__FNV_INIT, b, at);
    le64(b + at, hsum);
    return at + 8;
}

static void hpm_case(const char *name, const unsigned char *b, size_t n, const char *needle) {
    heph_vae m;
    int rc;
    char why[500];
    if (!write_bytes(tpath("limits.hpm"), b, n)) { report(0, name, "cannot write"); return; }
    t_max_req = 0;
    rc = heph_vae_load(&m, tpath("limits.hpm"));
    if (rc == HEPH_OK) heph_vae_free(&m);
    snprintf(why, sizeof why, "rc %d, largest allocation %zu bytes for a %zu-byte file, message \"%s\"", rc, t_max_req, n,
             rc ? m.err : "");
    report(rc == HEPH_E_FORMAT && t_max_req <= 2 * n + 4096 && strstr(m.err, needle) != NULL && t_live == 0, name, why);
}

static void hpm_limits(void) {
    static unsigned char b[8192];
    size_t n, np;
    heph_vae m;
    char why[300];
    int rc;
    /* the valid one: 1x2x2 pictures, dense3 encoder body, z 1: (4*3+3) + (3*2+2) + (1*4+4) = 31 */
    np = 31;
    n = hpm_bytes(b, 1, 2, 2, 1, "dense3", "dense4", np, np);
    write_bytes(tpath("limits.hpm"), b, n);
    rc = heph_vae_load(&m, tpath("limits.hpm"));
    snprintf(why, sizeof why, "rc %d: %s", rc, rc ? m.err : "");
    report(rc == HEPH_OK && m.n_params == np, "hpm: the hand-written checkpoint loads (31 parameters)", why);
    if (rc == HEPH_OK) heph_vae_free(&m);
    n = hpm_bytes(b, 1, 2, 2, 1, "dense3", "dense4", (uint64_t)1 << 40, np);
    hpm_case("hpm: 2^40 parameters stored in a 300-byte file: refused before allocating", b, n, "truncated parameters");
    n = hpm_bytes(b, 1, 2, 2, 1, "dense3", "dense4", np + 1, np);
    hpm_case("hpm: one parameter more stored than the file holds", b, n, "truncated parameters");
    n = hpm_bytes(b, 1, 2, 2, 1, "dense3", "dense4", np - 1, np);
    hpm_case("hpm: one parameter fewer stored than the file holds", b, n, "trailing bytes");
    n = hpm_bytes(b, 1, 28, 28, 1, "dense1000000", "dense784", 31, 31);
    hpm_case("hpm: an architecture of 7.8*10^8 parameters (dense1000000 on 28x28) in a 400-byte file: refused before allocating",
             b, n, "the architecture has");
    n = hpm_bytes(b, 1, 2, 2, 1, "dense3", "dense4", 30, 30);
    hpm_case("hpm: 30 parameters stored, the architecture has 31", b, n, "the architecture has 31");
}

int main(int argc, char **argv) {
    const char *env = getenv("HEPH_TEST_TMP");
    if (argc > 1) dir = argv[1];
    else if (env && *env) dir = env;
    hpd_factor_values();
    hpd_value_max();
    hpm_limits();
    return failed ? 1 : 0;
}
