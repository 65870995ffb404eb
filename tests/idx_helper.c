/* idx_helper.c - test helper for tools/idx2hpd (driven by tests/run.sh).

   idx_helper write DIR          writes the IDX test files into DIR:
       small-img.idx  7 images 5x3 (magic 0x00000803), small-lab.idx 7 labels (0x00000801),
       big-img.idx    600 images 28x28 with long runs (gzip makes dynamic Huffman blocks with
                      matches), big-lab.idx 600 labels,
       trunc-img.idx  small-img.idx without its last 5 bytes,
       hdr-img.idx    only 10 bytes of a header,
       magic-img.idx  small-img.idx with magic 0x00000903,
       lab6.idx       6 labels (the images are 7),
       trail-img.idx  small-img.idx plus one trailing byte
   idx_helper verify FILE.hpd SET LABELS [SOURCE]
       checks FILE.hpd picture by picture (read by index, in reverse order, and by range) and
       label by label against set SET ("small" or "big"); LABELS is 1 when a label file was
       given; SOURCE, when given, must be the stored source name.
   idx_helper flip IN OUT OFFSET       copy IN to OUT with byte OFFSET xor 0xff ("mid": middle)
   idx_helper trunc IN OUT LENGTH      copy the first LENGTH bytes of IN to OUT
   idx_helper size FILE                print the size of FILE
   Exit status 0 on success; 1 with a message on stderr otherwise.                            */
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pixel (y, x) of image k of a set */
static unsigned char px(int big, unsigned k, unsigned y, unsigned x) {
    if (!big) return (unsigned char)((k * 37u + y * 11u + x * 3u) & 255u);
    /* rows of zeros, rows of a constant, rows of pseudo-random bytes */
    if ((y + k) % 3 == 0) return 0;
    if ((y + k) % 3 == 1) return (unsigned char)(k * 7u);
    return (unsigned char)(((k * 2654435761u) ^ (y * 40503u) ^ (x * 2246822519u)) >> 13);
}
static unsigned char label(int big, unsigned k) { return (unsigned char)(big ? k % 10u : (k * 3u) % 10u); }

static void be32(unsigned char *p, unsigned v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static int put(const char *dir, const char *name, const unsigned char *b, size_t n) {
    char path[1024];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "idx_helper: cannot write %s\n", path);
        return 0;
    }
    return 1;
}

/* IDX images (count, h, w) of a set into b; returns the byte count */
static size_t images(int big, unsigned count, unsigned h, unsigned w, unsigned char *b) {
    unsigned k, y, x;
    size_t at = 16;
    be32(b, 0x00000803u); be32(b + 4, count); be32(b + 8, h); be32(b + 12, w);
    for (k = 0; k < count; k++)
        for (y = 0; y < h; y++)
            for (x = 0; x < w; x++) b[at++] = px(big, k, y, x);
    return at;
}
static size_t labels(int big, unsigned count, unsigned char *b) {
    unsigned k;
    be32(b, 0x00000801u); be32(b + 4, count);
    for (k = 0; k < count; k++) b[8 + k] = label(big, k);
    return 8 + (size_t)count;
}

static int cmd_write(const char *dir) {
    unsigned char *b = (unsigned char *)malloc(16 + 600 * 784 + 16);
    size_t n;
    int ok = 1;
    if (!b) return 1;
    n = images(0, 7, 5, 3, b);
    ok &= put(dir, "small-img.idx", b, n);
    ok &= put(dir, "trunc-img.idx", b, n - 5);
    ok &= put(dir, "hdr-img.idx", b, 10);
    b[n] = 0x42;
    ok &= put(dir, "trail-img.idx", b, n + 1);
    b[2] = 0x09;
    ok &= put(dir, "magic-img.idx", b, n);
    n = labels(0, 7, b);
    ok &= put(dir, "small-lab.idx", b, n);
    n = labels(0, 6, b);
    ok &= put(dir, "lab6.idx", b, n);
    n = images(1, 600, 28, 28, b);
    ok &= put(dir, "big-img.idx", b, n);
    n = labels(1, 600, b);
    ok &= put(dir, "big-lab.idx", b, n);
    free(b);
    return ok ? 0 : 1;
}

#define FAIL(...) do { fprintf(stderr, "idx_helper: %s: ", path); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); goto done; } while (0)

static int cmd_verify(const char *path, const char *set, int with_labels, const char *source) {
    heph_hpd d;
    int big = strcmp(set, "big") == 0, rc = 1;
    unsigned count = big ? 600u : 7u, h = big ? 28u : 5u, w = big ? 28u : 3u, k, y, x;
    float *one = NULL, *all = NULL;
    size_t np = (size_t)h * w;
    if (heph_hpd_open(&d, path) != HEPH_OK) {
        fprintf(stderr, "idx_helper: %s\n", d.err);
        return 1;
    }
    if (d.info.count != count || d.info.c != 1 || d.info.h != h || d.info.w != w)
        FAIL("shape %llu x %ux%ux%u, expected %u x 1x%ux%u", (unsigned long long)d.info.count,
             d.info.c, d.info.h, d.info.w, count, h, w);
    if (d.info.dtype != HEPH_PX_U8 || d.info.value_max != 255.0f)
        FAIL("pixel type %u value_max %g", d.info.dtype, (double)d.info.value_max);
    if (with_labels) {
        if (d.info.n_factors != 1 || strcmp(d.info.factors[0].name, "class") != 0 ||
            d.info.factors[0].n_values != 10 || d.info.flags != HEPH_HPD_LABELS)
            FAIL("factor table: %u factors, flags %u", d.info.n_factors, d.info.flags);
    } else if (d.info.n_factors != 0 || d.info.flags != 0) {
        FAIL("%u factors without a label file", d.info.n_factors);
    }
    if (source && strcmp(d.info.source, source) != 0) FAIL("source \"%s\", expected \"%s\"", d.info.source, source);
    one = (float *)malloc(np * sizeof(float));
    all = (float *)malloc(np * count * sizeof(float));
    if (!one || !all) FAIL("out of memory");
    if (heph_hpd_read_range(&d, 0, count, all) != HEPH_OK) FAIL("%s", d.err);
    for (k = count; k-- > 0;) {
        size_t idx = k;
        if (heph_hpd_read(&d, &idx, 1, one) != HEPH_OK) FAIL("%s", d.err);
        for (y = 0; y < h; y++)
            for (x = 0; x < w; x++) {
                float want = (float)px(big, k, y, x) * (1.0f / 255.0f);
                if (one[y * w + x] != want || all[k * np + y * w + x] != want)
                    FAIL("picture %u pixel (%u,%u) is %g, expected %g", k, y, x,
                         (double)one[y * w + x], (double)want);
            }
        if (with_labels && heph_hpd_label(&d, k, 0) != (int32_t)label(big, k))
            FAIL("label %u is %d, expected %d", k, (int)heph_hpd_label(&d, k, 0), (int)label(big, k));
    }
    rc = 0;
done:
    free(one);
    free(all);
    heph_hpd_close(&d);
    return rc;
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *b;
    long sz;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "idx_helper: cannot read %s\n", path);
        if (f) fclose(f);
        return NULL;
    }
    b = (unsigned char *)malloc((size_t)sz + 1);
    if (!b || fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        fprintf(stderr, "idx_helper: cannot read %s\n", path);
        fclose(f);
        free(b);
        return NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static int cmd_copy(const char *in, const char *out, const char *arg, int flip) {
    size_t n, at;
    unsigned char *b = slurp(in, &n);
    FILE *f;
    int ok;
    if (!b) return 1;
    at = strcmp(arg, "mid") == 0 ? n / 2 : (size_t)strtoul(arg, NULL, 10);
    if (flip) {
        if (at >= n) { fprintf(stderr, "idx_helper: offset %zu beyond %s\n", at, in); free(b); return 1; }
        b[at] ^= 0xff;
    } else if (at < n) {
        n = at;
    }
    f = fopen(out, "wb");
    ok = f && fwrite(b, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    free(b);
    if (!ok) fprintf(stderr, "idx_helper: cannot write %s\n", out);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "write")) return cmd_write(argv[2]);
    if ((argc == 5 || argc == 6) && !strcmp(argv[1], "verify"))
        return cmd_verify(argv[2], argv[3], atoi(argv[4]), argc == 6 ? argv[5] : NULL);
    if (argc == 5 && !strcmp(argv[1], "flip")) return cmd_copy(argv[2], argv[3], argv[4], 1);
    if (argc == 5 && !strcmp(argv[1], "trunc")) return cmd_copy(argv[2], argv[3], argv[4], 0);
    if (argc == 3 && !strcmp(argv[1], "size")) {
        size_t n;
        unsigned char *b = slurp(argv[2], &n);
        if (!b) return 1;
        printf("%zu\n", n);
        free(b);
        return 0;
    }
    fprintf(stderr, "usage: idx_helper write DIR | verify FILE.hpd small|big 0|1 [SOURCE] | "
                    "flip IN OUT OFFSET|mid | trunc IN OUT LENGTH | size FILE\n");
    return 2;
}
