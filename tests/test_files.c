/* test_files.c - the file formats: .hpd datasets and .hpm checkpoints written and read back
   (every field, every pixel type, the weights-only form) and every rejection path of their
   readers (each header field patched, truncations, checksums), with the largest allocation a
   malformed header makes the reader ask for. Harness and usage: tests/test_harness.h. */
#include "test_harness.h"

/* ============================================================================================ */
/* .hpd datasets                                                                                 */

/* byte offsets of the .hpd header (see the layout comment in hephaestus.h) */
enum {
    HPD_VERSION = 8, HPD_HB = 12, HPD_COUNT = 16, HPD_C = 24, HPD_H = 28, HPD_W = 32, HPD_DTYPE = 36,
    HPD_LAYOUT = 40, HPD_VMAX = 44, HPD_NF = 48, HPD_FLAGS = 52, HPD_SEED = 56, HPD_LABOFF = 64,
    HPD_SOURCE = 72, HPD_FACTORS = 104
};

static const double shape_values[3] = {0.5, 1.0, 1.5};

/* test picture k, pixel i of a u8 dataset */
static uint8_t px_u8(size_t k, size_t i) { return (uint8_t)((k * 37u + i * 11u + 5u) & 255u); }

/* write a valid u8 dataset: count pictures 1x3x5, factors "shape" (3 values, real values) and
   "pos" (4 values, none), labels (k % 3, k % 4), flags GRID|GENERATED, seed 77 */
static int make_u8_hpd(const char *path, uint64_t count) {
    heph_hpd_info info;
    heph_hpd_writer w;
    uint8_t px[15];
    int32_t f[2];
    size_t k, i;
    memset(&info, 0, sizeof info);
    info.count = count;
    info.c = 1; info.h = 3; info.w = 5;
    info.dtype = HEPH_PX_U8;
    info.value_max = 255.0f;
    info.flags = HEPH_HPD_GRID | HEPH_HPD_GENERATED;
    info.seed = 77;
    strcpy(info.source, "test/u8-exactly-32-chars-long-xy");
    info.n_factors = 2;
    strcpy(info.factors[0].name, "shape");
    info.factors[0].n_values = 3;
    info.factors[0].values = shape_values;
    strcpy(info.factors[1].name, "pos");
    info.factors[1].n_values = 4;
    CHECK(heph_hpd_create(&w, path, &info) == HEPH_OK, "create %s: %s", path, w.err);
    for (k = 0; k < count; k++) {
        for (i = 0; i < 15; i++) px[i] = px_u8(k, i);
        f[0] = (int32_t)(k % 3);
        f[1] = (int32_t)(k % 4);
        CHECK(heph_hpd_put_u8(&w, px, f) == HEPH_OK, "put %zu: %s", k, w.err);
    }
    CHECK(heph_hpd_finish(&w) == HEPH_OK, "finish: %s", w.err);
    return 1;
}

static int test_hpd_roundtrip(void) {
    heph_hpd d;
    const char *p = tpath("rt_u8.hpd");
    float *out = TALLOC(float, 15 * 8), inv = 1.0f / 255.0f;
    size_t idx[5] = {6, 0, 3, 3, 1}, k, i, fsize;
    unsigned char *raw;
    int rc;
    /* u8 with factors */
    REQUIRE(make_u8_hpd(p, 7));
    raw = read_bytes(p, &fsize);
    CHECK(raw && fsize == 192 + 7 * 15 + 7 * 2 * 4, "u8 file size %zu, expected %d", fsize, 192 + 105 + 56);
    rc = heph_hpd_open(&d, p);
    CHECK(rc == HEPH_OK, "open: %s", d.err);
    CHECK(d.info.count == 7 && d.info.c == 1 && d.info.h == 3 && d.info.w == 5 &&
              d.info.dtype == HEPH_PX_U8 && d.info.value_max == 255.0f && d.info.seed == 77,
          "u8 header fields");
    CHECK(d.info.flags == (HEPH_HPD_LABELS | HEPH_HPD_GRID | HEPH_HPD_GENERATED), "flags %u", d.info.flags);
    CHECK(strcmp(d.info.source, "test/u8-exactly-32-chars-long-xy") == 0, "source \"%s\"", d.info.source);
    CHECK(d.info.n_factors == 2 && strcmp(d.info.factors[0].name, "shape") == 0 &&
              strcmp(d.info.factors[1].name, "pos") == 0 && d.info.factors[0].n_values == 3 &&
              d.info.factors[1].n_values == 4,
          "factor table");
    CHECK(d.info.factors[0].values && d.info.factors[1].values == NULL, "factor values presence");
    for (k = 0; k < 3; k++)
        CHECK(d.info.factors[0].values[k] == shape_values[k], "value %zu = %g", k, d.info.factors[0].values[k]);
    CHECK(heph_hpd_picture_size(&d.info) == 15, "picture size");
    for (k = 0; k < 7; k++)
        CHECK(heph_hpd_label(&d, k, 0) == (int32_t)(k % 3) && heph_hpd_label(&d, k, 1) == (int32_t)(k % 4),
              "labels of picture %zu", k);
    CHECK(heph_hpd_read(&d, idx, 5, out) == HEPH_OK, "read: %s", d.err);
    for (k = 0; k < 5; k++)
        for (i = 0; i < 15; i++)
            CHECK(out[k * 15 + i] == t_f32((float)px_u8(idx[k], i) * inv), "read idx %zu pixel %zu", idx[k], i);
    CHECK(heph_hpd_read_range(&d, 2, 5, out) == HEPH_OK, "read_range: %s", d.err);
    for (k = 0; k < 5; k++)
        for (i = 0; i < 15; i++)
            CHECK(out[k * 15 + i] == t_f32((float)px_u8(2 + k, i) * inv), "range picture %zu pixel %zu", 2 + k, i);
    CHECK(heph_hpd_read_range(&d, 7, 0, out) == HEPH_OK, "empty range at the end");
    idx[0] = 7;
    rc = heph_hpd_read(&d, idx, 1, out);
    CHECK(rc == HEPH_E_ARG && strstr(d.err, p), "index 7 of 7: rc %d (%s)", rc, d.err);
    rc = heph_hpd_read_range(&d, 5, 3, out);
    CHECK(rc == HEPH_E_ARG && strstr(d.err, p), "range 5..8 of 7: rc %d (%s)", rc, d.err);
    rc = heph_hpd_read_range(&d, (size_t)-1, 2, out);
    CHECK(rc == HEPH_E_ARG, "range at SIZE_MAX: rc %d", rc);
    heph_hpd_close(&d);

    /* f32, value_max 2, one factor without values; put_u8 also works for f32 */
    {
        heph_hpd_info info;
        heph_hpd_writer w;
        float px[2 * 2 * 3];
        uint8_t pu[12];
        int32_t f;
        const char *pf = tpath("rt_f32.hpd");
        memset(&info, 0, sizeof info);
        info.count = 4; info.c = 2; info.h = 2; info.w = 3;
        info.dtype = HEPH_PX_F32; info.value_max = 2.0f;
        strcpy(info.source, "test/f32");
        info.n_factors = 1;
        strcpy(info.factors[0].name, "twentythree-chars-name");
        info.factors[0].n_values = 1000000;
        CHECK(heph_hpd_create(&w, pf, &info) == HEPH_OK, "create f32: %s", w.err);
        for (k = 0; k < 3; k++) {
            for (i = 0; i < 12; i++) px[i] = (float)(k * 12 + i) * 0.03125f; /* in [0, value_max] (issue #20) */
            f = (int32_t)(k * 499999);
            CHECK(heph_hpd_put_f32(&w, px, &f) == HEPH_OK, "put_f32: %s", w.err);
        }
        for (i = 0; i < 12; i++) pu[i] = (uint8_t)(i % 3);
        f = 999999;
        CHECK(heph_hpd_put_u8(&w, pu, &f) == HEPH_OK, "put_u8 into f32: %s", w.err);
        CHECK(heph_hpd_put_u8(&w, pu, &f) == HEPH_E_ARG, "a fifth picture of four accepted");
        CHECK(heph_hpd_finish(&w) == HEPH_OK, "finish f32: %s", w.err);
        CHECK(heph_hpd_open(&d, pf) == HEPH_OK, "open f32: %s", d.err);
        CHECK(d.info.dtype == HEPH_PX_F32 && d.info.value_max == 2.0f && d.info.flags == HEPH_HPD_LABELS &&
                  d.info.seed == 0 && strcmp(d.info.source, "test/f32") == 0 &&
                  strcmp(d.info.factors[0].name, "twentythree-chars-name") == 0,
              "f32 header");
        CHECK(d.header_bytes == 192 && d.image_bytes == 48, "f32 sizes: header %llu image %llu",
              (unsigned long long)d.header_bytes, (unsigned long long)d.image_bytes);
        CHECK(heph_hpd_read_range(&d, 0, 4, out) == HEPH_OK, "read f32: %s", d.err);
        for (k = 0; k < 3; k++) {
            for (i = 0; i < 12; i++) {
                float want = ((float)(k * 12 + i) * 0.03125f) * (1.0f / 2.0f);
                CHECK(out[k * 12 + i] == want, "f32 picture %zu value %zu: %g vs %g", k, i,
                      (double)out[k * 12 + i], (double)want);
            }
            CHECK(heph_hpd_label(&d, k, 0) == (int32_t)(k * 499999), "f32 label %zu", k);
        }
        for (i = 0; i < 12; i++) CHECK(out[36 + i] == (float)(i % 3) * 0.5f, "f32 from u8, value %zu", i);
        CHECK(heph_hpd_label(&d, 3, 0) == 999999, "f32 label 3");
        heph_hpd_close(&d);
    }
    /* 1-bit, 1x5x5 (25 bits: 4 bytes per picture), no factors */
    {
        heph_hpd_info info;
        heph_hpd_writer w;
        uint8_t px[25];
        float fp[25] = {0};
        const char *pb = tpath("rt_bit.hpd");
        memset(&info, 0, sizeof info);
        info.count = 9; info.c = 1; info.h = 5; info.w = 5;
        info.dtype = HEPH_PX_BIT; info.value_max = 1.0f;
        info.flags = HEPH_HPD_LABELS; /* without factors the writer clears it */
        CHECK(heph_hpd_create(&w, pb, &info) == HEPH_OK, "create bit: %s", w.err);
        CHECK(heph_hpd_put_f32(&w, fp, NULL) == HEPH_E_ARG, "put_f32 into a 1-bit file accepted");
        for (k = 0; k < 9; k++) {
            for (i = 0; i < 25; i++) px[i] = (uint8_t)(((k + i) % 3 == 0) ? (i & 1 ? 7 : 1) : 0);
            CHECK(heph_hpd_put_u8(&w, px, NULL) == HEPH_OK, "put bit: %s", w.err);
        }
        CHECK(heph_hpd_finish(&w) == HEPH_OK, "finish bit: %s", w.err);
        raw = read_bytes(pb, &fsize);
        CHECK(raw && fsize == 128 + 9 * 4, "bit file size %zu", fsize);
        CHECK(raw[128] == 0x92 && raw[129] == 0x49 && raw[130] == 0x24 && raw[131] == 0x80,
              "bit packing of picture 0: %02x %02x %02x %02x (expected 92 49 24 80)", raw[128],
              raw[129], raw[130], raw[131]);
        CHECK(heph_hpd_open(&d, pb) == HEPH_OK, "open bit: %s", d.err);
        CHECK(d.info.flags == 0 && d.info.n_factors == 0 && d.info.dtype == HEPH_PX_BIT, "bit header");
        for (k = 0; k < 9; k++) {
            size_t one = 8 - k;
            CHECK(heph_hpd_read(&d, &one, 1, fp) == HEPH_OK, "read bit: %s", d.err);
            for (i = 0; i < 25; i++)
                CHECK(fp[i] == (((one + i) % 3 == 0) ? 1.0f : 0.0f), "bit picture %zu pixel %zu", one, i);
        }
        heph_hpd_close(&d);
    }
    /* writer refusals: factor index out of range, too few pictures (temporary file removed) */
    {
        heph_hpd_info info;
        heph_hpd_writer w;
        uint8_t px[15] = {0};
        int32_t f[2] = {3, 0};
        const char *pw = tpath("rt_abort.hpd");
        FILE *fp;
        char tmp[220];
        memset(&info, 0, sizeof info);
        info.count = 2; info.c = 1; info.h = 3; info.w = 5; info.dtype = HEPH_PX_U8; info.value_max = 255.0f;
        info.n_factors = 2;
        strcpy(info.factors[0].name, "shape"); info.factors[0].n_values = 3;
        strcpy(info.factors[1].name, "pos"); info.factors[1].n_values = 4;
        CHECK(heph_hpd_create(&w, pw, &info) == HEPH_OK, "create: %s", w.err);
        CHECK(heph_hpd_put_u8(&w, px, f) == HEPH_E_ARG && strstr(w.err, "shape"), "factor index 3 of 3 accepted");
        f[0] = 2;
        CHECK(heph_hpd_put_u8(&w, px, f) == HEPH_OK, "put: %s", w.err);
        CHECK(heph_hpd_finish(&w) == HEPH_E_ARG, "finish with 1 of 2 pictures accepted");
        snprintf(tmp, sizeof tmp, "%s.tmp", pw);
        fp = fopen(tmp, "rb");
        CHECK(fp == NULL, "temporary file %s left behind", tmp);
        fp = fopen(pw, "rb");
        CHECK(fp == NULL, "unfinished dataset %s renamed into place", pw);
        info.count = 0;
        CHECK(heph_hpd_create(&w, pw, &info) == HEPH_E_FORMAT, "count 0 accepted by the writer");
        info.count = 1; info.value_max = 0.0f;
        CHECK(heph_hpd_create(&w, pw, &info) == HEPH_E_FORMAT, "value_max 0 accepted by the writer");
    }
    return 1;
}

/* write the patched copy, open it, expect rc and a message naming the file */
static int hpd_expect(const unsigned char *b, size_t n, int want, const char *what) {
    heph_hpd d;
    const char *p = tpath("bad.hpd");
    int rc;
    CHECK(write_bytes(p, b, n), "cannot write %s", p);
    t_max_req = 0;
    rc = heph_hpd_open(&d, p);
    if (rc == HEPH_OK) heph_hpd_close(&d);
    CHECK(rc == want, "%s: rc %d (%s), expected %d (%s); message \"%s\"", what, rc,
          heph_result_string(rc), want, heph_result_string(want), rc ? d.err : "");
    CHECK(strstr(d.err, p) != NULL, "%s: message \"%s\" does not name %s", what, d.err, p);
    CHECK(t_live == 0, "%s: %ld blocks leaked", what, t_live);
    CHECK(t_max_req <= 4096, "%s: a malformed header made the reader allocate %zu bytes", what, t_max_req);
    return 1;
}

static int test_hpd_reject(void) {
    const char *p = tpath("good.hpd");
    unsigned char *good, *b;
    size_t n, len;
    heph_hpd d;
    REQUIRE(make_u8_hpd(p, 4));
    good = read_bytes(p, &n);
    CHECK(good && n == 192 + 4 * 15 + 4 * 8, "good file is %zu bytes", n);
    CHECK(heph_hpd_open(&d, p) == HEPH_OK, "good file: %s", d.err);
    heph_hpd_close(&d);
    b = TALLOC(unsigned char, n + 64);
#define PATCH(stmt, want, what) do { memcpy(b, good, n); stmt; REQUIRE(hpd_expect(b, n, want, what)); } while (0)
    PATCH(b[0] = 'X', HEPH_E_FORMAT, "wrong magic");
    PATCH(b[7] = 1, HEPH_E_FORMAT, "magic without its NUL");
    PATCH(put32(b + HPD_VERSION, 2), HEPH_E_VERSION, "version 2");
    PATCH(put32(b + HPD_VERSION, 0), HEPH_E_VERSION, "version 0");
    PATCH(put32(b + HPD_HB, 200), HEPH_E_FORMAT, "header_bytes 200 (not a multiple of 64)");
    PATCH(put32(b + HPD_HB, 128), HEPH_E_FORMAT, "header_bytes 128 (smaller than the factor table)");
    PATCH(put32(b + HPD_HB, 0), HEPH_E_FORMAT, "header_bytes 0");
    PATCH(put32(b + HPD_HB, 320), HEPH_E_FORMAT, "header_bytes 320 (beyond the file)");
    PATCH(put32(b + HPD_HB, 0xffffffc0u), HEPH_E_FORMAT, "header_bytes 4 GB");
    PATCH(put32(b + HPD_HB, 256), HEPH_E_SIZE, "header_bytes 256 (labels_offset disagrees)");
    PATCH(put64(b + HPD_COUNT, 0), HEPH_E_FORMAT, "count 0");
    PATCH(put64(b + HPD_COUNT, 5), HEPH_E_SIZE, "count 5 of 4");
    PATCH(put64(b + HPD_COUNT, (uint64_t)1 << 40), HEPH_E_SIZE, "count 2^40");
    PATCH((put64(b + HPD_COUNT, (uint64_t)1 << 40), put64(b + HPD_LABOFF, 192 + ((uint64_t)1 << 40) * 15)),
          HEPH_E_FORMAT, "count 2^40 with a consistent labels_offset");
    PATCH(put64(b + HPD_COUNT, (uint64_t)1 << 63), HEPH_E_SIZE, "count 2^63 (overflow)");
    PATCH(put64(b + HPD_COUNT, UINT64_MAX), HEPH_E_SIZE, "count 2^64-1 (overflow)");
    PATCH(put32(b + HPD_C, 0), HEPH_E_SIZE, "0 channels");
    PATCH(put32(b + HPD_H, 0), HEPH_E_SIZE, "height 0");
    PATCH(put32(b + HPD_W, 0), HEPH_E_SIZE, "width 0");
    PATCH(put32(b + HPD_C, 1000000), HEPH_E_SIZE, "10^6 channels");
    PATCH(put32(b + HPD_H, 0x80000000u), HEPH_E_SIZE, "height 2^31");
    PATCH((put32(b + HPD_C, 4096), put32(b + HPD_H, 65536), put32(b + HPD_W, 65536)), HEPH_E_SIZE,
          "4096x65536x65536 pictures");
    PATCH(put32(b + HPD_C, 3), HEPH_E_SIZE, "3 channels (sizes disagree)");
    PATCH(put32(b + HPD_DTYPE, 7), HEPH_E_FORMAT, "dtype 7");
    PATCH(put32(b + HPD_DTYPE, 0), HEPH_E_FORMAT, "dtype 0");
    PATCH(put32(b + HPD_DTYPE, HEPH_PX_F32), HEPH_E_SIZE, "dtype f32 (sizes disagree)");
    PATCH(put32(b + HPD_LAYOUT, 1), HEPH_E_FORMAT, "layout 1");
    PATCH(put32(b + HPD_VMAX, f2u(0.0f)), HEPH_E_FORMAT, "value_max 0");
    PATCH(put32(b + HPD_VMAX, 0x7fc00000u), HEPH_E_FORMAT, "value_max NaN");
    PATCH(put32(b + HPD_VMAX, 0x7f800000u), HEPH_E_FORMAT, "value_max +Inf");
    PATCH(put32(b + HPD_VMAX, f2u(-255.0f)), HEPH_E_FORMAT, "value_max -255");
    PATCH(put32(b + HPD_NF, 33), HEPH_E_SIZE, "33 factors");
    PATCH(put32(b + HPD_NF, 0xffffffffu), HEPH_E_SIZE, "2^32-1 factors");
    PATCH(put32(b + HPD_NF, 1), HEPH_E_FORMAT, "1 factor (label block shorter than the file)");
    PATCH(put32(b + HPD_NF, 0), HEPH_E_FORMAT, "0 factors with the labels flag");
    PATCH(put32(b + HPD_FLAGS, HEPH_HPD_GRID), HEPH_E_FORMAT, "labels flag cleared with 2 factors");
    PATCH(put32(b + HPD_FACTORS + 24, 0), HEPH_E_SIZE, "factor 0 with 0 values");
    PATCH(put32(b + HPD_FACTORS + 32 + 24, 0), HEPH_E_SIZE, "factor 1 with 0 values");
    PATCH(put32(b + HPD_FACTORS + 24, 1000001), HEPH_E_SIZE, "factor with 1000001 values");
    PATCH(put32(b + HPD_FACTORS + 24, 0xffffffffu), HEPH_E_SIZE, "factor with 2^32-1 values");
    PATCH(memset(b + HPD_FACTORS, 'a', 24), HEPH_E_FORMAT, "factor name without NUL");
    PATCH(put32(b + HPD_FACTORS + 28, 184), HEPH_E_FORMAT, "values_offset 184 (runs past the header)");
    PATCH(put32(b + HPD_FACTORS + 28, 100), HEPH_E_FORMAT, "values_offset 100 (inside the fixed part)");
    PATCH(put32(b + HPD_FACTORS + 28, 0xfffffff8u), HEPH_E_FORMAT, "values_offset 2^32-8");
    PATCH(put32(b + HPD_FACTORS + 24, 100), HEPH_E_FORMAT, "100 values at values_offset (past the header)");
    PATCH(put64(b + HPD_LABOFF, 193), HEPH_E_SIZE, "labels_offset 193");
    PATCH(put64(b + HPD_LABOFF, UINT64_MAX), HEPH_E_SIZE, "labels_offset 2^64-1");
    PATCH(put32(b + 252 + 8 * 2, 3), HEPH_E_FORMAT, "label index 3 of 3 values");
    PATCH(put32(b + 252 + 8 * 3 + 4, 4), HEPH_E_FORMAT, "label index 4 of 4 values");
    PATCH(put32(b + 252, 0xffffffffu), HEPH_E_FORMAT, "label index -1");
    PATCH(put32(b + 252 + 4, 0x80000000u), HEPH_E_FORMAT, "label index INT_MIN");
    /* one trailing byte */
    memcpy(b, good, n);
    b[n] = 0;
    REQUIRE(hpd_expect(b, n + 1, HEPH_E_FORMAT, "one trailing byte"));
    /* truncated at every prefix length */
    for (len = 0; len < n; len++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", len, n);
        REQUIRE(hpd_expect(good, len, HEPH_E_FORMAT, what));
    }
    /* a file that does not exist, a folder */
    CHECK(heph_hpd_open(&d, tpath("missing.hpd")) == HEPH_E_IO && strstr(d.err, "missing.hpd"),
          "missing file: %s", d.err);
    CHECK(t_live == 0, "missing file leaked");
    CHECK(heph_hpd_open(&d, t_dir) != HEPH_OK && strstr(d.err, t_dir) && t_live == 0,
          "a folder opened as a dataset: %s", d.err);
    /* a valid file of 1 picture with 32 factors of 10^6 values each, none stored: the reader
       must not allocate room for 32 * 10^6 values that the file does not hold */
    {
        heph_hpd_info info;
        heph_hpd_writer w;
        uint8_t px = 7;
        int32_t f[32] = {0};
        uint32_t k;
        const char *pv = tpath("many-factors.hpd");
        memset(&info, 0, sizeof info);
        info.count = 1; info.c = 1; info.h = 1; info.w = 1; info.dtype = HEPH_PX_U8; info.value_max = 255.0f;
        info.n_factors = 32;
        for (k = 0; k < 32; k++) {
            snprintf(info.factors[k].name, sizeof info.factors[k].name, "f%u", k);
            info.factors[k].n_values = 1000000;
            f[k] = (int32_t)(k * 31111u);
        }
        CHECK(heph_hpd_create(&w, pv, &info) == HEPH_OK && heph_hpd_put_u8(&w, &px, f) == HEPH_OK &&
                  heph_hpd_finish(&w) == HEPH_OK,
              "writing 32 factors: %s", w.err);
        t_max_req = 0;
        CHECK(heph_hpd_open(&d, pv) == HEPH_OK, "32 factors: %s", d.err);
        CHECK(t_max_req <= 65536, "a %d-byte file made the reader allocate %zu bytes", 1152 + 1 + 128, t_max_req);
        for (k = 0; k < 32; k++)
            CHECK(d.info.factors[k].values == NULL && heph_hpd_label(&d, 0, (int)k) == (int32_t)(k * 31111u),
                  "factor %u", k);
        heph_hpd_close(&d);
    }
#undef PATCH
    return 1;
}

/* ============================================================================================ */
/* .hpm checkpoints                                                                              */

/* a small model trained a few steps (Adam state non-zero, a spare normal waiting) */
static int trained_model(heph_vae *m, int steps) {
    heph_vae_config cfg;
    float x[3 * 6];
    int s;
    small_config(&cfg, 1, 2, 3, 3, "dense3,tanh", "dense4,relu,dense6", 3);
    cfg.obj.beta = 1.5f;
    cfg.lr = 0.01f;
    CHECK(heph_vae_init(m, &cfg, 2024) == HEPH_OK, "init: %s", m->err);
    for (s = 0; s < steps; s++) {
        tfill(x, 18, 0.0f, 1.0f);
        CHECK(heph_vae_train_step(m, x, 3, NULL) == HEPH_OK, "train step %d: %s", s, m->err);
    }
    return 1;
}

static int test_hpm_roundtrip(void) {
    heph_vae a, b;
    const char *p = tpath("rt.hpm"), *pw = tpath("rt_w.hpm");
    size_t n_full, n_w, i;
    unsigned char *full, *wo;
    tseed(1013);
    REQUIRE(trained_model(&a, 3));
    CHECK(a.rng.has_spare == 1, "test set-up: expected a spare normal after 27 draws");
    CHECK(heph_vae_save(&a, p, 0) == HEPH_OK, "save: %s", a.err);
    CHECK(heph_vae_load(&b, p) == HEPH_OK, "load: %s", b.err);
    CHECK(b.n_params == a.n_params && b.step == 3 && a.step == 3, "n_params or step differ");
    CHECK(memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0, "parameters differ");
    CHECK(memcmp(a.adam_m, b.adam_m, a.n_params * sizeof(float)) == 0, "Adam m differs");
    CHECK(memcmp(a.adam_v, b.adam_v, a.n_params * sizeof(float)) == 0, "Adam v differs");
    CHECK(same_rng(&a.rng, &b.rng), "rng state differs");
    CHECK(b.cfg.in_c == 1 && b.cfg.in_h == 2 && b.cfg.in_w == 3 && b.cfg.z_dim == 3 &&
              b.cfg.max_batch == 3 && strcmp(b.cfg.enc_spec, "dense3,tanh") == 0 &&
              strcmp(b.cfg.dec_spec, "dense4,relu,dense6") == 0 && b.cfg.obj.beta == 1.5f &&
              b.cfg.lr == (float)0.01f && b.cfg.beta1 == a.cfg.beta1 && b.cfg.beta2 == a.cfg.beta2 &&
              b.cfg.eps == a.cfg.eps && b.cfg.obj.kind == a.cfg.obj.kind &&
              b.cfg.obj.recon == a.cfg.obj.recon,
          "configuration differs after load");
    heph_vae_free(&b);
    /* weights only: parameters, no optimiser state; the file is 2 n_params floats shorter */
    CHECK(heph_vae_save(&a, pw, HEPH_SAVE_WEIGHTS_ONLY) == HEPH_OK, "save weights: %s", a.err);
    CHECK(heph_vae_load(&b, pw) == HEPH_OK, "load weights: %s", b.err);
    CHECK(memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0, "weights-only: parameters differ");
    for (i = 0; i < b.n_params; i++)
        CHECK(b.adam_m[i] == 0.0f && b.adam_v[i] == 0.0f, "weights-only: Adam state %zu not zero", i);
    full = read_bytes(p, &n_full);
    wo = read_bytes(pw, &n_w);
    CHECK(full && wo && n_full == n_w + 8 * a.n_params, "sizes %zu and %zu", n_full, n_w);
    CHECK(get32(full + 12) == 1 && get32(wo + 12) == 0, "flags field");
    heph_vae_free(&b);
    /* a save over an existing file replaces it (rename) and leaves no temporary file */
    CHECK(heph_vae_save(&a, p, HEPH_SAVE_WEIGHTS_ONLY) == HEPH_OK, "save over: %s", a.err);
    {
        char tmp[220];
        FILE *f;
        snprintf(tmp, sizeof tmp, "%s.tmp", p);
        f = fopen(tmp, "rb");
        CHECK(f == NULL, "temporary file %s left behind", tmp);
        full = read_bytes(p, &n_full);
        CHECK(full && n_full == n_w, "overwritten checkpoint is %zu bytes, expected %zu", n_full, n_w);
    }
    CHECK(heph_vae_save(&a, tpath("no-such-dir/x.hpm"), 0) == HEPH_E_IO, "save into a missing folder");
    heph_vae_free(&a);
    return 1;
}

/* write b, load it, expect rc (and a message naming the file, and no leak) */
static int hpm_expect(const unsigned char *b, size_t n, int want, const char *what) {
    heph_vae m;
    const char *p = tpath("bad.hpm");
    long live0 = t_live;
    int rc;
    CHECK(write_bytes(p, b, n), "cannot write %s", p);
    rc = heph_vae_load(&m, p);
    if (rc == HEPH_OK) heph_vae_free(&m);
    CHECK(rc == want, "%s: rc %d (%s), expected %d (%s); message \"%s\"", what, rc,
          heph_result_string(rc), want, heph_result_string(want), rc ? m.err : "");
    CHECK(strstr(m.err, p) != NULL, "%s: message \"%s\" does not name %s", what, m.err, p);
    CHECK(t_live == live0, "%s: %ld blocks leaked", what, t_live - live0);
    return 1;
}

/* store a new FNV-1a checksum over the first n-8 bytes */
static void rechecksum(unsigned char *b, size_t n) { put64(b + n - 8, fnv1a64(b, n - 8)); }

static int test_hpm_reject(void) {
    heph_vae a;
    const char *p = tpath("good.hpm");
    unsigned char *good, *b;
    size_t n, i, enc_len, dec_len, off_np, off_enc, off_obj, off_lr;
    tseed(1014);
    REQUIRE(trained_model(&a, 2));
    CHECK(heph_vae_save(&a, p, 0) == HEPH_OK, "save: %s", a.err);
    good = read_bytes(p, &n);
    CHECK(good != NULL, "read %s", p);
    b = TALLOC(unsigned char, n + 64);
    /* layout (see hephaestus.h): magic 8, version 4, flags 4, 5 u32, encoder spec, decoder
       spec, objective (kind first), ..., Adam 16, step 8, rng 24, n_params 8, 3 n floats, sum 8 */
    off_enc = 36;
    enc_len = get32(good + off_enc);
    dec_len = get32(good + off_enc + 4 + enc_len);
    CHECK(enc_len == strlen("dense3,tanh") && dec_len == strlen("dense4,relu,dense6"), "spec lengths");
    off_obj = off_enc + 4 + enc_len + 4 + dec_len;
    off_np = n - 8 - 12 * a.n_params - 8;
    off_lr = off_np - 24 - 8 - 16;
    CHECK(get64(good + off_np) == a.n_params, "n_params field at %zu", off_np);
    CHECK(get32(good + off_obj) == HEPH_OBJ_BETA && get32(good + off_lr) == f2u(0.01f) &&
              get64(good + off_np - 24 - 8) == 2,
          "objective kind, learning rate or step not where expected");
    CHECK(get64(good + n - 8) == fnv1a64(good, n - 8), "checksum is not FNV-1a 64 of the bytes before it");
    /* a flipped byte anywhere: magic -> FORMAT, version -> VERSION, everything else CHECKSUM */
    for (i = 0; i < n; i++) {
        char what[64];
        int want = i < 8 ? HEPH_E_FORMAT : (i < 12 ? HEPH_E_VERSION : HEPH_E_CHECKSUM);
        memcpy(b, good, n);
        b[i] ^= 0xff;
        snprintf(what, sizeof what, "byte %zu of %zu flipped", i, n);
        REQUIRE(hpm_expect(b, n, want, what));
        b[i] ^= 0xfe; /* now a single-bit flip */
        snprintf(what, sizeof what, "bit 0 of byte %zu flipped", i);
        REQUIRE(hpm_expect(b, n, want, what));
    }
    /* truncated at every length: too short for a header, or the checksum does not match */
    for (i = 0; i < n; i++) {
        char what[64];
        heph_vae m;
        long live0 = t_live;
        int rc;
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", i, n);
        CHECK(write_bytes(tpath("bad.hpm"), good, i), "write");
        rc = heph_vae_load(&m, tpath("bad.hpm"));
        CHECK(rc == (i < 16 ? HEPH_E_FORMAT : HEPH_E_CHECKSUM), "%s: rc %d (%s)", what, rc, m.err);
        CHECK(strstr(m.err, "bad.hpm") != NULL && t_live == live0, "%s: message or leak", what);
    }
    /* fields with a valid checksum */
#define PATCH(stmt, len, want, what) do { memcpy(b, good, n); stmt; rechecksum(b, len); REQUIRE(hpm_expect(b, len, want, what)); } while (0)
    PATCH(b[1] = 'X', n, HEPH_E_FORMAT, "wrong magic");
    PATCH(put32(b + 8, 3), n, HEPH_E_VERSION, "version 3");
    /* a plain model's file called version 2 reads its parameter count as the conditional settings */
    PATCH(put32(b + 8, 2), n, HEPH_E_FORMAT, "a version-1 file marked version 2");
    PATCH(put32(b + 12, 2), n, HEPH_E_FORMAT, "flags 2");
    PATCH(put64(b + off_np, a.n_params + 1), n, HEPH_E_FORMAT, "n_params + 1");
    PATCH(put64(b + off_np, a.n_params - 1), n, HEPH_E_FORMAT, "n_params - 1");
    PATCH(put64(b + off_np, UINT64_MAX), n, HEPH_E_FORMAT, "n_params 2^64-1");
    PATCH(b[off_enc + 4] = 'X', n, HEPH_E_SPEC, "encoder spec \"Xense3,tanh\"");
    PATCH(b[off_enc + 4 + enc_len + 4 + 5] = '0', n, HEPH_E_SPEC, "decoder spec \"dense0,...\"");
    PATCH(b[off_enc + 4 + enc_len + 4 + 7] = ',', n, HEPH_E_SPEC, "decoder spec \"dense4,,elu,...\"");
    PATCH(b[off_enc + 4 + 2] = 0, n, HEPH_E_FORMAT, "NUL inside the encoder spec");
    PATCH(put32(b + off_enc, 100000), n, HEPH_E_FORMAT, "encoder spec length 100000");
    PATCH(put32(b + off_enc, 0xffffffffu), n, HEPH_E_FORMAT, "encoder spec length 2^32-1");
    PATCH(put32(b + off_enc, (uint32_t)enc_len + 1), n, HEPH_E_FORMAT, "encoder spec one byte longer");
    PATCH(put32(b + 16, 0), n, HEPH_E_FORMAT, "0 channels");
    PATCH(put32(b + 16, 0x80000000u), n, HEPH_E_FORMAT, "2^31 channels");
    PATCH(put32(b + 20, 3), n, HEPH_E_SPEC, "height 3 (decoder output disagrees)");
    PATCH(put32(b + 28, 0), n, HEPH_E_ARG, "z_dim 0");
    PATCH(put32(b + 32, 0), n, HEPH_E_ARG, "max_batch 0");
    PATCH(put32(b + off_obj, 9), n, HEPH_E_ARG, "objective kind 9");
    PATCH(put32(b + off_lr, f2u(-1.0f)), n, HEPH_E_ARG, "learning rate -1");
    PATCH((void)0, n - 4, HEPH_E_FORMAT, "parameters cut by 4 bytes (checksum valid)");
    PATCH(put32(b + 12, 0), n, HEPH_E_FORMAT, "optimiser state present but flag cleared (trailing bytes)");
    PATCH((memcpy(b + n, good + n - 8, 8), memset(b + n - 8, 0, 8)), n + 8, HEPH_E_FORMAT, "8 trailing bytes");
    PATCH((void)0, off_np + 16, HEPH_E_FORMAT, "cut right after n_params");
#undef PATCH
    {
        heph_vae m;
        long live0 = t_live;
        CHECK(heph_vae_load(&m, tpath("missing.hpm")) == HEPH_E_IO && strstr(m.err, "missing.hpm"),
              "missing file: %s", m.err);
        CHECK(heph_vae_load(&m, t_dir) != HEPH_OK && strstr(m.err, t_dir) && t_live == live0,
              "a folder loaded as a checkpoint: %s", m.err);
    }
    heph_vae_free(&a);
    return 1;
}

/* ============================================================================================ */

static const t_test tests[] = {
    {"hpd_roundtrip", test_hpd_roundtrip},
    {"hpd_reject", test_hpd_reject},
    {"hpm_roundtrip", test_hpm_roundtrip},
    {"hpm_reject", test_hpm_reject},
};
T_MAIN(tests)
