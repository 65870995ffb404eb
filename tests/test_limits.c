/* test_limits.c - absurd and hostile headers are refused with a message before anything of
   their size is allocated (issue #7). Every allocation of the library goes through a counting
   allocator that records the largest single request and refuses anything above 64 MB (so a
   regression fails here instead of exhausting the machine).
     .hpd: 32 factors claiming 10^6 stored values each in a 1.2 kB file; value_max so small that
           255 / value_max overflows (the reader would return Inf/NaN pixels);
     .hpm: (valid checksums) a stored parameter count of 2^40 or one parameter short/long of
           the file; an architecture of 10^9 parameters (dense1000000 on 28x28) in a 1 kB file;
           a checkpoint whose stored count matches neither.
   Files are written into TMPDIR. Harness and usage: tests/test_harness.h.                    */
#define T_ALLOC_LIMIT ((size_t)64 << 20)
#include "test_harness.h"

/* ---- .hpd ------------------------------------------------------------------------------------ */

/* one 1x1x1 u8 picture, 32 factors of 10^6 values each whose values_offset points into the
   header (which is far too small to hold them) */
static int test_hpd_factor_values(void) {
    static unsigned char b[1216 + 1 + 128];
    heph_hpd d;
    uint32_t k;
    int rc;
    memset(b, 0, sizeof b);
    memcpy(b, "HEPHHPD", 8);
    put32(b + 8, 1); put32(b + 12, 1216); put64(b + 16, 1);
    put32(b + 24, 1); put32(b + 28, 1); put32(b + 32, 1); put32(b + 36, HEPH_PX_U8);
    put32(b + 44, f2u(255.0f)); put32(b + 48, 32); put32(b + 52, HEPH_HPD_LABELS);
    put64(b + 64, 1217);
    for (k = 0; k < 32; k++) {
        unsigned char *f = b + 104 + 32 * k;
        snprintf((char *)f, 24, "f%u", k);
        put32(f + 24, 1000000);
        put32(f + 28, 1152); /* inside the header, but 8 MB of values do not fit in it */
    }
    CHECK(write_bytes(tpath("limits_values.hpd"), b, sizeof b), "cannot write");
    t_max_req = 0;
    rc = heph_hpd_open(&d, tpath("limits_values.hpd"));
    if (rc == HEPH_OK) heph_hpd_close(&d);
    CHECK(rc == HEPH_E_FORMAT && t_max_req <= 65536 && strstr(d.err, "values_offset") && t_live == 0,
          "32 factors claiming 10^6 stored values each in a 1.3 kB file: rc %d, largest allocation %zu bytes, "
          "message \"%s\"", rc, t_max_req, rc ? d.err : "");
    return 1;
}

/* a valid 2-picture u8 file, then value_max patched */
static int test_hpd_value_max(void) {
    heph_hpd_info info;
    heph_hpd_writer w;
    heph_hpd d;
    uint8_t px[4] = {0, 1, 128, 255};
    unsigned char b[512];
    size_t n;
    FILE *f;
    int rc, fin = 1;
    memset(&info, 0, sizeof info);
    info.count = 2; info.c = 1; info.h = 2; info.w = 2; info.dtype = HEPH_PX_U8; info.value_max = 255.0f;
    CHECK(heph_hpd_create(&w, tpath("limits_vmax.hpd"), &info) == HEPH_OK && heph_hpd_put_u8(&w, px, NULL) == HEPH_OK &&
              heph_hpd_put_u8(&w, px, NULL) == HEPH_OK && heph_hpd_finish(&w) == HEPH_OK, "writing the file: %s", w.err);
    f = fopen(tpath("limits_vmax.hpd"), "rb");
    n = f ? fread(b, 1, sizeof b, f) : 0;
    if (f) fclose(f);
    put32(b + 44, 0x0000656du); /* 3.6e-41, a denormal: 1 / value_max is Inf */
    write_bytes(tpath("limits_vmax.hpd"), b, n);
    rc = heph_hpd_open(&d, tpath("limits_vmax.hpd"));
    if (rc == HEPH_OK) heph_hpd_close(&d);
    CHECK(rc == HEPH_E_FORMAT && strstr(d.err, "value_max"), "value_max 3.6e-41 (255 / value_max = Inf) not refused: rc %d, "
          "message \"%s\"", rc, rc ? d.err : "");
    put32(b + 44, f2u(1e-30f)); /* the smallest accepted: 255 / 1e-30 is finite */
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
    CHECK(fin, "value_max 1e-30 must be accepted and a pixel above it refused, not read as 1e30: rc %d, refused by name %d, "
          "message \"%s\"", rc, fin, rc ? d.err : "");
    return 1;
}

/* ---- .hpm ------------------------------------------------------------------------------------ */

/* a checkpoint written field by field: weights only (flags 0), n_stored as the count and
   n_real parameters (zeros) after it, then the FNV-1a checksum */
static size_t hpm_bytes(unsigned char *b, int c, int h, int w, int z, const char *enc, const char *dec,
                        uint64_t n_stored, size_t n_real) {
    size_t at = 0, i;
    uint64_t hsum;
    memcpy(b, "HEPHHPM", 8); at = 8;
    put32(b + at, 1); at += 4; put32(b + at, 0); at += 4;
    put32(b + at, (uint32_t)c); put32(b + at + 4, (uint32_t)h); put32(b + at + 8, (uint32_t)w);
    put32(b + at + 12, (uint32_t)z); put32(b + at + 16, 4); at += 20;
    put32(b + at, (uint32_t)strlen(enc)); memcpy(b + at + 4, enc, strlen(enc)); at += 4 + strlen(enc);
    put32(b + at, (uint32_t)strlen(dec)); memcpy(b + at + 4, dec, strlen(dec)); at += 4 + strlen(dec);
    put32(b + at, HEPH_OBJ_BETA); put32(b + at + 4, HEPH_RECON_BERNOULLI); put32(b + at + 8, f2u(1.0f));
    put32(b + at + 12, f2u(1.0f)); put32(b + at + 16, f2u(1.0f)); put32(b + at + 20, 0); at += 24;
    put64(b + at, 0); at += 8;                                  /* ramp_steps */
    put32(b + at, f2u(1.0f)); put32(b + at + 4, 0); at += 8;     /* alpha, estimator */
    put64(b + at, 0); at += 8;                                  /* dataset_size */
    put32(b + at, f2u(1e-3f)); put32(b + at + 4, f2u(0.9f)); put32(b + at + 8, f2u(0.999f)); put32(b + at + 12, f2u(1e-8f)); at += 16;
    put64(b + at, 0); at += 8;                                  /* step */
    put64(b + at, 1); put64(b + at + 8, 3); put32(b + at + 16, 0); put32(b + at + 20, 0); at += 24;
    put64(b + at, n_stored); at += 8;
    for (i = 0; i < n_real; i++) { put32(b + at, 0); at += 4; }
    hsum = heph__fnv1a(HEPH__FNV_INIT, b, at);
    put64(b + at, hsum);
    return at + 8;
}

static int hpm_case(const unsigned char *b, size_t n, const char *needle) {
    heph_vae m;
    int rc;
    CHECK(write_bytes(tpath("limits.hpm"), b, n), "cannot write");
    t_max_req = 0;
    rc = heph_vae_load(&m, tpath("limits.hpm"));
    if (rc == HEPH_OK) heph_vae_free(&m);
    CHECK(rc == HEPH_E_FORMAT && t_max_req <= 2 * n + 4096 && strstr(m.err, needle) != NULL && t_live == 0,
          "rc %d, largest allocation %zu bytes for a %zu-byte file, message \"%s\"", rc, t_max_req, n, rc ? m.err : "");
    return 1;
}

static unsigned char hpm_buf[8192];
#define NP 31 /* 1x2x2 pictures, dense3 encoder body, z 1: (4*3+3) + (3*2+2) + (1*4+4) = 31 */

/* the hand-written checkpoint loads (31 parameters) */
static int test_hpm_valid(void) {
    heph_vae m;
    size_t n = hpm_bytes(hpm_buf, 1, 2, 2, 1, "dense3", "dense4", NP, NP);
    int rc;
    write_bytes(tpath("limits.hpm"), hpm_buf, n);
    rc = heph_vae_load(&m, tpath("limits.hpm"));
    if (rc == HEPH_OK) heph_vae_free(&m);
    CHECK(rc == HEPH_OK && m.n_params == NP, "rc %d: %s", rc, rc ? m.err : "");
    return 1;
}
/* 2^40 parameters stored in a 300-byte file: refused before allocating */
static int test_hpm_2e40(void) {
    size_t n = hpm_bytes(hpm_buf, 1, 2, 2, 1, "dense3", "dense4", (uint64_t)1 << 40, NP);
    return hpm_case(hpm_buf, n, "truncated parameters");
}
/* one parameter more stored than the file holds */
static int test_hpm_one_more(void) {
    size_t n = hpm_bytes(hpm_buf, 1, 2, 2, 1, "dense3", "dense4", NP + 1, NP);
    return hpm_case(hpm_buf, n, "truncated parameters");
}
/* one parameter fewer stored than the file holds */
static int test_hpm_one_fewer(void) {
    size_t n = hpm_bytes(hpm_buf, 1, 2, 2, 1, "dense3", "dense4", NP - 1, NP);
    return hpm_case(hpm_buf, n, "trailing bytes");
}
/* an architecture of 7.8*10^8 parameters (dense1000000 on 28x28) in a 400-byte file: refused
   before allocating */
static int test_hpm_huge_arch(void) {
    size_t n = hpm_bytes(hpm_buf, 1, 28, 28, 1, "dense1000000", "dense784", 31, 31);
    return hpm_case(hpm_buf, n, "the architecture has");
}
/* 30 parameters stored, the architecture has 31 */
static int test_hpm_30_of_31(void) {
    size_t n = hpm_bytes(hpm_buf, 1, 2, 2, 1, "dense3", "dense4", 30, 30);
    return hpm_case(hpm_buf, n, "the architecture has 31");
}

static const t_test tests[] = {
    {"hpd_factor_values", test_hpd_factor_values},
    {"hpd_value_max", test_hpd_value_max},
    {"hpm_valid", test_hpm_valid},
    {"hpm_2e40_params", test_hpm_2e40},
    {"hpm_one_more", test_hpm_one_more},
    {"hpm_one_fewer", test_hpm_one_fewer},
    {"hpm_huge_arch", test_hpm_huge_arch},
    {"hpm_30_of_31", test_hpm_30_of_31},
};
T_MAIN(tests)
