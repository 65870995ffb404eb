/* idx2hpd - convert MNIST-format IDX files (plain or gzip) to a Hephaestus .hpd dataset.

   usage: idx2hpd [--source NAME] IMAGES.idx[.gz] [LABELS.idx[.gz]] OUT.hpd

   IMAGES: magic 0x00000803 (u8, 3 dims: count, rows, cols), e.g. train-images-idx3-ubyte.
   LABELS: magic 0x00000801 (u8, 1 dim: count); stored as the factor "class".
   gzip input is recognised by its first two bytes (1f 8b): the member header is parsed here,
   the deflate stream is inflated by tools/inflate_stream.h (stb_image's zlib decoder rejects
   the real Fashion-MNIST label files: their dynamic blocks use a single distance code, which
   RFC 1951 allows), and the trailer's CRC-32 and length are checked.                          */
/* the output is written as the CLI writes its files (a temporary unique to the process,
   fsync, rename, folder fsync), and the large blocks count against --mem-budget
   (heph_posix.h, cli_io.h; the fuzz target brings its own allocator) */
#define HEPHAESTUS_IMPLEMENTATION
#include "heph_posix.h"
#include "inflate_stream.h"
#include <stdlib.h>
#include <string.h>
#include <limits.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: idx2hpd [--source NAME] [--mem-budget MB] IMAGES.idx[.gz] [LABELS.idx[.gz]] OUT.hpd\n"
            "Converts MNIST-format IDX image (and label) files, plain or gzip-compressed, into a\n"
            ".hpd dataset (u8 pixels, value_max 255, labels as the factor \"class\").\n"
            "  --source NAME   name stored in the header (default: the image file name)\n"
            "  --mem-budget MB the files read, inflated and written may not pass MB in total\n"
            "                  (default: 3/4 of physical memory); a larger need is refused\n"
            "  -h, --help      this help\n"
            "      --version   the version of hephaestus.h\n");
}

/* read a whole file; NULL with a message on failure */
static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    if (!f) { fprintf(stderr, "idx2hpd: %s: cannot open\n", path); return NULL; }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "idx2hpd: %s: cannot tell its size\n", path);
        fclose(f);
        return NULL;
    }
    if (cli_budget_check((uint64_t)n + 1) != 0) {
        fprintf(stderr, "idx2hpd: %s: %ld bytes cannot be read%s\n", path, n, cli_budget_note());
        fclose(f);
        return NULL;
    }
    buf = (unsigned char *)malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "idx2hpd: %s: cannot read %ld bytes\n", path, n);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* the size an IDX file of want_dims dimensions has, from its first 4 + 4 want_dims bytes
   (0 when they are not such a header): the inflater stops there */
static size_t idx_size_from_header(const unsigned char *b, size_t n, void *ctx) {
    int d = *(const int *)ctx, i;
    uint64_t size = 1;
    if (n < 4 + 4 * (size_t)d || b[0] != 0 || b[1] != 0 || b[2] != 0x08 || b[3] != d) return 0;
    for (i = 0; i < d; i++) {
        uint32_t v = ((uint32_t)b[4 + 4 * i] << 24) | ((uint32_t)b[5 + 4 * i] << 16) | ((uint32_t)b[6 + 4 * i] << 8) | b[7 + 4 * i];
        if (v == 0 || v > 0xffffffu || size > ((uint64_t)1 << 40) / v) return 0; /* idx_check words it */
        size *= v;
    }
    size += 4 + 4 * (uint64_t)d;
    if (cli_budget_check(size) != 0) return 0; /* gunzip then names the budget */
    return size > (size_t)-1 ? 0 : (size_t)size;
}

/* the deflate data of a gzip member in memory, handed to the streaming inflater ... */
typedef struct {
    const unsigned char *p;
    size_t n, at;
} gz_in;

static int gz_read(void *ctx, unsigned char *buf, size_t cap, size_t *got) {
    gz_in *r = (gz_in *)ctx;
    size_t k = r->n - r->at < cap ? r->n - r->at : cap;
    memcpy(buf, r->p + r->at, k);
    r->at += k;
    *got = k;
    return 0;
}

/* ... and its output gathered into one block: never more than max bytes, and once the first
   `probe` bytes are out, never more than the IDX header they hold gives (idx_size_from_header).
   why says what stopped it: 1 the header is invalid, 2 past its size, 3 out of memory */
typedef struct {
    unsigned char *out;
    size_t n, cap, max, probe;
    uint32_t crc;
    int dims, why;
} gz_out;

static int gz_append(gz_out *w, const unsigned char *p, size_t n) {
    if (n > w->max - w->n) { w->why = 2; return 1; }
    if (n > w->cap - w->n) {
        size_t cap = w->cap ? w->cap : 65536;
        unsigned char *q;
        while (cap - w->n < n) cap = cap > w->max / 2 ? w->max : cap * 2;
        if (cap > w->max) cap = w->max;
        q = (unsigned char *)realloc(w->out, cap ? cap : 1);
        if (!q) { w->why = 3; return 1; }
        w->out = q;
        w->cap = cap;
    }
    if (n) memcpy(w->out + w->n, p, n);
    w->n += n;
    w->crc = heph_crc32(w->crc, p, n);
    return 0;
}

static int gz_write(void *ctx, const unsigned char *p, size_t n) {
    gz_out *w = (gz_out *)ctx;
    if (w->probe) { /* the IDX header first: it bounds the rest */
        size_t k = w->probe - w->n < n ? w->probe - w->n : n, want;
        if (gz_append(w, p, k)) return 1;
        p += k;
        n -= k;
        if (w->n < w->probe) return 0;
        w->probe = 0;
        want = idx_size_from_header(w->out, w->n, &w->dims);
        if (want == 0) { w->why = 1; return 1; }
        if (want < w->max) w->max = want;
    }
    return gz_append(w, p, n);
}

/* gzip member (RFC 1952): ID1 ID2 CM FLG MTIME(4) XFL OS [FEXTRA] [FNAME] [FCOMMENT] [FHCRC]
   deflate data, CRC32, ISIZE. Only the first member is read (MNIST files have one). */
static unsigned char *gunzip(const char *path, const unsigned char *g, size_t n, size_t *out_len, int dims) {
    size_t at = 10, max_out;
    uint64_t used = 0, outn = 0;
    unsigned flg;
    gz_in in;
    gz_out w;
    char msg[128];
    int rc;
    uint32_t crc, isize;
    if (n < 18) { fprintf(stderr, "idx2hpd: %s: truncated gzip file (%zu bytes)\n", path, n); return NULL; }
    if (g[2] != 8) { fprintf(stderr, "idx2hpd: %s: gzip method %u is not deflate\n", path, g[2]); return NULL; }
    flg = g[3];
    if (flg & 0xe0) { fprintf(stderr, "idx2hpd: %s: reserved gzip flags set (0x%02x)\n", path, flg); return NULL; }
    if (flg & 4) { /* FEXTRA: 2-byte length, then that many bytes */
        size_t xlen;
        if (at + 2 > n) goto trunc;
        xlen = (size_t)g[at] | ((size_t)g[at + 1] << 8);
        at += 2 + xlen;
    }
    if (flg & 8) { while (at < n && g[at]) at++; at++; }  /* FNAME, NUL-terminated */
    if (flg & 16) { while (at < n && g[at]) at++; at++; } /* FCOMMENT */
    if (flg & 2) at += 2;                                 /* FHCRC */
    if (at + 8 > n) goto trunc;
    if (g[0] != 0x1f || g[1] != 0x8b) goto trunc;
    /* bounded by the input: DEFLATE expands at most 1032:1, and once the IDX header is out,
       by the size it gives (a hostile header is refused by idx_check after 16 bytes) */
    { /* in 64 bits: 2^34 does not fit a 32-bit size_t */
        uint64_t most = (uint64_t)(n - at) < ((uint64_t)1 << 34) / 1032 ? (uint64_t)(n - at) * 1032 + 64 : (uint64_t)1 << 34;
        max_out = (size_t)(most < (uint64_t)(size_t)-1 ? most : (uint64_t)(size_t)-1);
    }
    in.p = g + at; in.n = n - at; in.at = 0;
    memset(&w, 0, sizeof w);
    w.max = max_out; w.probe = 4 + 4 * (size_t)dims; w.dims = dims;
    rc = heph_sinfl_run(gz_read, &in, gz_write, &w, &used, &outn, msg, sizeof msg);
    if (rc == -2) snprintf(msg, sizeof msg, "%s", w.why == 1 ? "the data's header is invalid" : w.why == 2 ? "inflated data exceeds the size its header gives"
                                                 : "out of memory");
    if (rc != 0) {
        free(w.out);
        if (strstr(msg, "header is invalid") && cli_mem_refused) {
            fprintf(stderr, "idx2hpd: %s: the IDX header inside the gzip file asks for %llu bytes%s\n", path,
                    (unsigned long long)cli_mem_refused, cli_budget_note());
            return NULL;
        }
        if (strstr(msg, "header is invalid")) {
            fprintf(stderr, "idx2hpd: %s: the data inside the gzip file is not an IDX file of %d dimensions (wrong magic "
                            "or a dimension out of range)\n", path, dims);
            return NULL;
        }
        if (strstr(msg, "its header gives")) {
            fprintf(stderr, "idx2hpd: %s: the gzip data inflates past the size its IDX header gives (corrupt or hostile)\n", path);
            return NULL;
        }
        fprintf(stderr, "idx2hpd: %s: corrupt gzip data (%s)\n", path, msg);
        return NULL;
    }
    at += (size_t)used;
    if (n - at < 8) { free(w.out); goto trunc; }
    /* trailer: CRC-32 and length (mod 2^32) of the inflated data */
    crc = (uint32_t)g[at] | ((uint32_t)g[at + 1] << 8) | ((uint32_t)g[at + 2] << 16) | ((uint32_t)g[at + 3] << 24);
    isize = (uint32_t)g[at + 4] | ((uint32_t)g[at + 5] << 8) | ((uint32_t)g[at + 6] << 16) | ((uint32_t)g[at + 7] << 24);
    if ((uint32_t)w.n != isize || w.crc != crc) {
        fprintf(stderr, "idx2hpd: %s: gzip check failed (length %zu vs %u, or CRC-32): the file is corrupt\n",
                path, w.n, isize);
        free(w.out);
        return NULL;
    }
    *out_len = w.n;
    return w.out ? w.out : (unsigned char *)malloc(1);
trunc:
    fprintf(stderr, "idx2hpd: %s: truncated gzip header\n", path);
    return NULL;
}

/* file contents, inflated when gzip */
static unsigned char *load(const char *path, size_t *len, int dims) {
    unsigned char *raw = read_file(path, len), *plain;
    if (!raw) return NULL;
    if (*len >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
        plain = gunzip(path, raw, *len, len, dims);
        free(raw);
        return plain;
    }
    return raw;
}

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* check an IDX header: u8 data with `dims` dimensions; fills dim[]; 0 on error */
static int idx_check(const char *path, const unsigned char *b, size_t n, int want_dims, uint32_t *dim) {
    size_t expect = 1;
    int i;
    if (n < 4 + 4 * (size_t)want_dims) {
        fprintf(stderr, "idx2hpd: %s: truncated IDX header (%zu bytes)\n", path, n);
        return 0;
    }
    if (b[0] != 0 || b[1] != 0 || b[2] != 0x08 || b[3] != want_dims) {
        fprintf(stderr, "idx2hpd: %s: wrong IDX magic %02x %02x %02x %02x (expected 00 00 08 %02x: "
                        "unsigned bytes, %d dimensions)\n", path, b[0], b[1], b[2], b[3], want_dims, want_dims);
        return 0;
    }
    for (i = 0; i < want_dims; i++) {
        dim[i] = be32(b + 4 + 4 * i);
        if (dim[i] == 0 || (i > 0 && dim[i] > 65536) || expect > ((size_t)-1) / dim[i]) {
            fprintf(stderr, "idx2hpd: %s: dimension %d is %u (out of range)\n", path, i, dim[i]);
            return 0;
        }
        expect *= dim[i];
    }
    if (n - 4 - 4 * (size_t)want_dims != expect) {
        fprintf(stderr, "idx2hpd: %s: %zu data bytes, the header says %zu (%s)\n", path,
                n - 4 - 4 * (size_t)want_dims, expect, n - 4 - 4 * (size_t)want_dims < expect ? "truncated" : "trailing bytes");
        return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    const char *source = NULL, *files[3];
    int nf = 0, i, rc = 1;
    unsigned char *img = NULL, *lab = NULL;
    size_t img_len = 0, lab_len = 0, k, px;
    uint32_t idim[3], ldim[1];
    heph_hpd_info info;
    heph_hpd_writer w;
    int32_t cls = 0, max_label = 0;

    cli_budget_default();
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        if (!strcmp(argv[i], "--version")) { printf("idx2hpd %s (hephaestus.h)\n", HEPH_VERSION_STRING); return 0; }
        if (!strcmp(argv[i], "--source")) {
            if (++i >= argc) { fprintf(stderr, "idx2hpd: --source needs a value\n"); return 2; }
            source = argv[i];
        } else if (!strcmp(argv[i], "--mem-budget")) {
            if (++i >= argc || cli_budget_parse(argv[i]) != 0) {
                fprintf(stderr, "idx2hpd: --mem-budget takes an integer in 1..1073741824 (MB)\n");
                return 2;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "idx2hpd: unknown option %s (see --help)\n", argv[i]);
            return 2;
        } else if (nf < 3) {
            files[nf++] = argv[i];
        } else {
            fprintf(stderr, "idx2hpd: too many arguments (see --help)\n");
            return 2;
        }
    }
    if (nf < 2) { usage(stderr); return 2; }

    img = load(files[0], &img_len, 3);
    if (!img || !idx_check(files[0], img, img_len, 3, idim)) goto done;
    if (nf == 3) {
        lab = load(files[1], &lab_len, 1);
        if (!lab || !idx_check(files[1], lab, lab_len, 1, ldim)) goto done;
        if (ldim[0] != idim[0]) {
            fprintf(stderr, "idx2hpd: %s has %u labels but %s has %u images\n", files[1], ldim[0], files[0], idim[0]);
            goto done;
        }
        for (k = 0; k < ldim[0]; k++)
            if (lab[8 + k] > max_label) max_label = lab[8 + k];
    }

    memset(&info, 0, sizeof info);
    info.count = idim[0];
    info.c = 1; info.h = idim[1]; info.w = idim[2];
    info.dtype = HEPH_PX_U8;
    info.value_max = 255.0f;
    snprintf(info.source, sizeof info.source, "%s", source ? source : files[0]);
    if (lab) {
        info.n_factors = 1;
        strcpy(info.factors[0].name, "class");
        info.factors[0].n_values = (uint32_t)max_label + 1;
    }
    if (heph_hpd_create(&w, files[nf - 1], &info) != HEPH_OK) {
        fprintf(stderr, "idx2hpd: %s\n", w.err);
        goto done;
    }
    px = (size_t)idim[1] * idim[2];
    for (k = 0; k < idim[0]; k++) {
        if (lab) cls = lab[8 + k];
        if (heph_hpd_put_u8(&w, img + 16 + k * px, &cls) != HEPH_OK) {
            fprintf(stderr, "idx2hpd: %s\n", w.err);
            heph_hpd_abort(&w);
            goto done;
        }
    }
    if (heph_hpd_finish(&w) != HEPH_OK) {
        fprintf(stderr, "idx2hpd: %s\n", w.err);
        goto done;
    }
    printf("idx2hpd: %s: %u pictures %ux%u%s\n", files[nf - 1], idim[0], idim[1], idim[2],
           lab ? ", labels as factor \"class\"" : "");
    rc = 0;
done:
    free(img);
    free(lab);
    return rc;
}
