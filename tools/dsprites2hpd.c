/* dsprites2hpd - convert DeepMind's dSprites (.npz, or its .npy members) to a Hephaestus .hpd.

   usage: dsprites2hpd [options] --npz dsprites.npz OUT.hpd
          dsprites2hpd [options] --imgs IMGS.npy|- --classes CLASSES.npy OUT.hpd
          dsprites2hpd --npz dsprites.npz --cat MEMBER > MEMBER.npy

   Reads imgs (uint8 '|u1', shape (N, 64, 64), values 0/1) and latents_classes (int64 '<i8',
   shape (N, 6): color, shape, scale, orientation, posX, posY indices) and writes N 1-bit
   pictures (value_max 1) with the 6 factor indices as labels and the factors' real values in
   the header (tools/dsprites.h). When the classes are exactly the full grid in mixed-radix order
   (the real file), the grid flag is set. metadata.npy and latents_values.npy are not needed.

   Streaming: imgs is 3 GB inflated; it is never held in memory. The labels (N x 6) are read
   first. A .npy may come from a pipe ("-"), e.g. unzip -p dsprites.npz imgs.npy | ...
   The .npz is read directly: its central directory (ZIP64 end records and extra fields 0x0001
   included) lists the members, each member's local header is checked against it (sizes come
   from the central directory when the local header defers them to a data descriptor), stored
   members are copied and deflated ones inflated by tools/inflate_stream.h, and the CRC-32 and
   sizes of every member read are checked.                                                   */
/* the output is written as the CLI writes its files (a temporary unique to the process,
   fsync, rename, folder fsync), and the large blocks count against --mem-budget
   (heph_posix.h, cli_io.h; the fuzz targets bring their own allocator) */
#define HEPHAESTUS_IMPLEMENTATION
#include "heph_posix.h"
#include <sys/stat.h>
#include "dsprites.h"
#include "inflate_stream.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PICTURES 100000000ull  /* 135 times dSprites: anything larger is a corrupt header */
#define MAX_NPY_HEADER (1u << 20)
#define CHUNK (1u << 20)

static void usage(FILE *f) {
    fprintf(f,
        "usage: dsprites2hpd [options] --npz dsprites.npz OUT.hpd\n"
        "       dsprites2hpd [options] --imgs IMGS.npy|- --classes CLASSES.npy OUT.hpd\n"
        "       dsprites2hpd --npz dsprites.npz --cat MEMBER > MEMBER.npy\n"
        "Converts DeepMind's dSprites (dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz) into a\n"
        ".hpd dataset: 1-bit 64x64 pictures (value_max 1) and the 6 factor indices (color, shape,\n"
        "scale, orientation, posX, posY) with their real values.\n"
        "  --npz FILE       read imgs.npy and latents_classes.npy from the .npz (a ZIP, deflated\n"
        "                   or stored, ZIP64 included) without unpacking it\n"
        "  --imgs FILE      imgs.npy: uint8 '|u1', shape (N, 64, 64); \"-\" reads standard input\n"
        "  --classes FILE   latents_classes.npy: int64 '<i8', shape (N, 6)\n"
        "  --cat MEMBER     with --npz: write that member (e.g. imgs.npy) to standard output\n"
        "  --source NAME    name stored in the header (default \"dsprites\")\n"
        "  --mem-budget MB  the large blocks (labels, the writer's buffers) in total may not pass\n"
        "                   MB (default: 3/4 of physical memory); a larger need is refused\n"
        "  -q, --quiet      no progress lines\n"
        "  -h, --help       this help\n"
        "      --version    the version of hephaestus.h\n"
        "Example without unpacking 3 GB:\n"
        "  unzip -p dsprites.npz latents_classes.npy > classes.npy\n"
        "  unzip -p dsprites.npz imgs.npy | dsprites2hpd --imgs - --classes classes.npy dsprites.hpd\n");
}

static int quiet = 0;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint32_t le16(const unsigned char *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32); }

/* ======================================================================================== */
/* .npy, parsed as a stream of bytes pushed into npy_feed                                    */

enum { KIND_IMGS, KIND_CLASSES, KIND_RAW };

typedef struct conv conv;

typedef struct {
    const char *name;       /* for messages: the file, or "FILE.npz: member"                 */
    int kind;
    conv *cv;
    int stage;              /* 0 magic+version+length, 1 header text, 2 data, 3 past the data */
    unsigned char pre[12];
    size_t pre_n, pre_need;
    char *hdr;
    size_t hdr_n, hdr_need;
    uint64_t total;         /* bytes the container says the .npy has (0 = unknown)          */
    uint64_t shape[8];
    int ndim;
    uint64_t data_bytes, data_got;
    unsigned char *buf;     /* classes: all N*48 bytes; imgs: one picture                    */
    size_t buf_n;
} npy_sink;

struct conv {
    const char *out;
    const char *source;
    int32_t *labels;        /* N x 6 factor indices, from latents_classes                   */
    uint64_t n;             /* pictures (rows of latents_classes)                           */
    int grid;               /* the labels are the full grid in mixed-radix order            */
    uint64_t imgs_max;      /* bytes imgs.npy of an .npz can hold at most (0 = unknown): bounds
                               the rows of latents_classes before they are inflated or
                               allocated (a .npy file's labels are bounded by its own size)  */
    heph_hpd_writer w;
    int writing;
    uint64_t done, nonbinary;
    double t0;
    int next_pct;
    double values[DSPR_NF][DSPR_MAXV];
};

/* ---- the header dict: {'descr': '|u1', 'fortran_order': False, 'shape': (737280, 64, 64), } */

typedef struct {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* a quoted Python string (optional u/b prefix) into out; 0 on error */
static int parse_str(cursor *c, char *out, size_t cap) {
    char q;
    size_t n = 0;
    if (c->p < c->end && (*c->p == 'u' || *c->p == 'b')) c->p++;
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    q = *c->p++;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap) return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    out[n] = 0;
    return 1;
}

/* a tuple of non-negative integers (optional Python 2 'L' suffix); 0 on error, -1 on overflow */
static int parse_shape(cursor *c, uint64_t *dims, int *ndim) {
    *ndim = 0;
    if (c->p >= c->end || *c->p != '(') return 0;
    c->p++;
    for (;;) {
        uint64_t v = 0;
        int digits = 0;
        skip_ws(c);
        if (c->p < c->end && *c->p == ')') { c->p++; return 1; }
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (UINT64_MAX - 9) / 10) return -1;
            v = v * 10 + (uint64_t)(*c->p++ - '0');
            digits++;
        }
        if (!digits) return 0;
        if (c->p < c->end && *c->p == 'L') c->p++;
        if (*ndim == 8) return -1;
        dims[(*ndim)++] = v;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') { c->p++; continue; }
        if (c->p < c->end && *c->p == ')') { c->p++; return 1; }
        return 0;
    }
}

/* "dsprites2hpd: WHERE: WHAT" on one line; bytes from a damaged file are shown as '?' */
static void report(const char *where, const char *what) {
    const char *parts[2];
    int k;
    parts[0] = where; parts[1] = what;
    fputs("dsprites2hpd: ", stderr);
    for (k = 0; k < 2; k++) {
        const unsigned char *p = (const unsigned char *)parts[k];
        for (; *p; p++) fputc(*p >= 32 && *p < 127 ? *p : '?', stderr);
        fputs(k == 0 ? ": " : "\n", stderr);
    }
}

static int npy_fail(const npy_sink *s, const char *what) {
    report(s->name, what);
    return -1;
}

static int conv_begin(conv *cv, npy_sink *s);

/* parse and check the header text; sets shape and data_bytes */
static int npy_header(npy_sink *s) {
    cursor c;
    char key[64], descr[64], msg[400];
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0, i, r;
    uint64_t itemsize, bytes;
    const char *want_descr = s->kind == KIND_IMGS ? "|u1" : "<i8";
    c.p = s->hdr;
    c.end = s->hdr + s->hdr_n;
    if (s->hdr_n == 0 || s->hdr[s->hdr_n - 1] != '\n')
        return npy_fail(s, "header: does not end with a newline (not a .npy file, or damaged)");
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{') return npy_fail(s, "header: not a Python dict literal ('{' expected)");
    c.p++;
    for (;;) {
        skip_ws(&c);
        if (c.p < c.end && *c.p == '}') { c.p++; break; }
        if (!parse_str(&c, key, sizeof key)) return npy_fail(s, "header: a quoted key was expected");
        skip_ws(&c);
        if (c.p >= c.end || *c.p != ':') return npy_fail(s, "header: ':' expected after a key");
        c.p++;
        skip_ws(&c);
        if (!strcmp(key, "descr")) {
            if (have_descr++) return npy_fail(s, "header: 'descr' given twice");
            if (!parse_str(&c, descr, sizeof descr))
                return npy_fail(s, "header: field 'descr' is not a simple type string (structured dtype?)");
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fortran++) return npy_fail(s, "header: 'fortran_order' given twice");
            if (c.end - c.p >= 4 && !memcmp(c.p, "True", 4)) { fortran = 1; c.p += 4; }
            else if (c.end - c.p >= 5 && !memcmp(c.p, "False", 5)) { fortran = 0; c.p += 5; }
            else return npy_fail(s, "header: field 'fortran_order' is neither True nor False");
        } else if (!strcmp(key, "shape")) {
            if (have_shape++) return npy_fail(s, "header: 'shape' given twice");
            r = parse_shape(&c, s->shape, &s->ndim);
            if (r < 0) return npy_fail(s, "header: field 'shape' has a number too large or too many dimensions");
            if (r == 0) return npy_fail(s, "header: field 'shape' is not a tuple of integers");
        } else {
            snprintf(msg, sizeof msg, "header: unexpected key '%s' (a .npy header has descr, fortran_order, shape)", key);
            return npy_fail(s, msg);
        }
        skip_ws(&c);
        if (c.p < c.end && *c.p == ',') { c.p++; continue; }
        if (c.p < c.end && *c.p == '}') { c.p++; break; }
        return npy_fail(s, "header: ',' or '}' expected");
    }
    skip_ws(&c);
    if (c.p != c.end) return npy_fail(s, "header: text after the closing '}'");
    if (!have_descr || !have_fortran || !have_shape)
        return npy_fail(s, !have_descr ? "header: field 'descr' is missing"
                           : !have_fortran ? "header: field 'fortran_order' is missing" : "header: field 'shape' is missing");
    if (s->kind == KIND_RAW) return 0;
    if (strcmp(descr, want_descr) != 0) {
        snprintf(msg, sizeof msg, "field 'descr' is '%s': %s must be %s ('%s')", descr,
                 s->kind == KIND_IMGS ? "imgs" : "latents_classes",
                 s->kind == KIND_IMGS ? "uint8" : "little-endian int64", want_descr);
        return npy_fail(s, msg);
    }
    if (fortran)
        return npy_fail(s, "field 'fortran_order' is True: only C-ordered arrays are read (save with numpy's default order)");
    if (s->kind == KIND_IMGS) {
        if (s->ndim != 3 || s->shape[1] != DSPR_SIDE || s->shape[2] != DSPR_SIDE) {
            snprintf(msg, sizeof msg, "field 'shape' has %d dimensions (%llu, %llu, ...): imgs must be (N, 64, 64)",
                     s->ndim, s->ndim > 0 ? (unsigned long long)s->shape[0] : 0ull,
                     s->ndim > 1 ? (unsigned long long)s->shape[1] : 0ull);
            return npy_fail(s, msg);
        }
        itemsize = 1;
    } else {
        if (s->ndim != 2 || s->shape[1] != DSPR_NF) {
            snprintf(msg, sizeof msg, "field 'shape' has %d dimensions (%llu, %llu, ...): latents_classes must be (N, 6)",
                     s->ndim, s->ndim > 0 ? (unsigned long long)s->shape[0] : 0ull,
                     s->ndim > 1 ? (unsigned long long)s->shape[1] : 0ull);
            return npy_fail(s, msg);
        }
        itemsize = 8;
    }
    if (s->shape[0] == 0 || s->shape[0] > MAX_PICTURES) {
        snprintf(msg, sizeof msg, "field 'shape': %llu pictures (expected 1..%llu)",
                 (unsigned long long)s->shape[0], MAX_PICTURES);
        return npy_fail(s, msg);
    }
    bytes = itemsize;
    for (i = 0; i < s->ndim; i++) bytes *= s->shape[i]; /* bounded above: no overflow */
    s->data_bytes = bytes;
    if (s->total) {
        uint64_t want = (uint64_t)s->pre_need + s->hdr_n + bytes;
        if (want != s->total) {
            snprintf(msg, sizeof msg, "the file holds %llu bytes but its header promises %llu (%s)",
                     (unsigned long long)s->total, (unsigned long long)want,
                     s->total < want ? "truncated" : "trailing bytes");
            return npy_fail(s, msg);
        }
    }
    if (s->kind == KIND_CLASSES && s->cv->imgs_max && s->shape[0] > s->cv->imgs_max / (DSPR_SIDE * DSPR_SIDE)) {
        snprintf(msg, sizeof msg, "field 'shape': %llu rows of labels, but imgs can hold at most %llu pictures "
                 "(%llu bytes): refused before the labels are read",
                 (unsigned long long)s->shape[0], (unsigned long long)(s->cv->imgs_max / (DSPR_SIDE * DSPR_SIDE)),
                 (unsigned long long)s->cv->imgs_max);
        return npy_fail(s, msg);
    }
    if (s->kind == KIND_CLASSES) {
        s->buf = (unsigned char *)cli_budget_malloc((size_t)bytes);
        if (!s->buf) {
            snprintf(msg, sizeof msg, "out of memory for the labels (%llu bytes)%s", (unsigned long long)bytes, cli_budget_note());
            return npy_fail(s, msg);
        }
    } else {
        s->buf = (unsigned char *)cli_budget_malloc(DSPR_SIDE * DSPR_SIDE);
        if (!s->buf) return npy_fail(s, "out of memory");
        if (conv_begin(s->cv, s) != 0) return -1;
    }
    return 0;
}

static int conv_picture(conv *cv, npy_sink *s);

/* push n bytes of the .npy; 0 on success, -1 after printing the problem */
static int npy_feed(npy_sink *s, const unsigned char *p, size_t n) {
    static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    while (n > 0) {
        if (s->stage == 0) {
            s->pre[s->pre_n++] = *p++;
            n--;
            if (s->pre_n <= 6 && s->pre[s->pre_n - 1] != magic[s->pre_n - 1])
                return npy_fail(s, "not a .npy file (wrong magic: expected \\x93NUMPY)");
            if (s->pre_n == 8) {
                if (s->pre[6] == 1 && s->pre[7] == 0) s->pre_need = 10;
                else if ((s->pre[6] == 2 || s->pre[6] == 3) && s->pre[7] == 0) s->pre_need = 12;
                else {
                    char msg[120];
                    snprintf(msg, sizeof msg, ".npy version %u.%u is not supported (1.0, 2.0 and 3.0 are)", s->pre[6], s->pre[7]);
                    return npy_fail(s, msg);
                }
            }
            if (s->pre_n >= 10 && s->pre_n == s->pre_need) {
                s->hdr_need = s->pre_need == 10 ? le16(s->pre + 8) : le32(s->pre + 8);
                if (s->hdr_need == 0 || s->hdr_need > MAX_NPY_HEADER) {
                    char msg[120];
                    snprintf(msg, sizeof msg, "header length %zu is out of range (1..%u)", s->hdr_need, MAX_NPY_HEADER);
                    return npy_fail(s, msg);
                }
                s->hdr = (char *)malloc(s->hdr_need);
                if (!s->hdr) return npy_fail(s, "out of memory");
                s->stage = 1;
            }
        } else if (s->stage == 1) {
            size_t take = s->hdr_need - s->hdr_n < n ? s->hdr_need - s->hdr_n : n;
            memcpy(s->hdr + s->hdr_n, p, take);
            s->hdr_n += take; p += take; n -= take;
            if (s->hdr_n == s->hdr_need) {
                if (npy_header(s) != 0) return -1;
                s->stage = s->data_bytes ? 2 : 3;
            }
        } else if (s->stage == 2) {
            uint64_t left = s->data_bytes - s->data_got;
            size_t take = (uint64_t)n < left ? n : (size_t)left;
            if (s->kind == KIND_CLASSES) {
                memcpy(s->buf + s->data_got, p, take);
                p += take; n -= take;
            } else {
                size_t t = take;
                while (t > 0) {
                    size_t room = DSPR_SIDE * DSPR_SIDE - s->buf_n, k = t < room ? t : room;
                    memcpy(s->buf + s->buf_n, p, k);
                    s->buf_n += k; p += k; t -= k; n -= k;
                    if (s->buf_n == DSPR_SIDE * DSPR_SIDE) {
                        if (conv_picture(s->cv, s) != 0) return -1;
                        s->buf_n = 0;
                    }
                }
            }
            s->data_got += take;
            if (s->data_got == s->data_bytes) s->stage = 3;
        } else {
            char msg[160];
            snprintf(msg, sizeof msg, "trailing bytes after the %llu data bytes the header promises",
                     (unsigned long long)s->data_bytes);
            return npy_fail(s, msg);
        }
    }
    return 0;
}

/* the input ended: was everything there? */
static int npy_end(npy_sink *s) {
    char msg[200];
    if (s->stage == 0 || s->stage == 1) {
        snprintf(msg, sizeof msg, "truncated in the header (%zu bytes)", s->pre_n + s->hdr_n);
        return npy_fail(s, msg);
    }
    if (s->stage == 2) {
        snprintf(msg, sizeof msg, "truncated: %llu of %llu data bytes (shape (%llu, ...))",
                 (unsigned long long)s->data_got, (unsigned long long)s->data_bytes,
                 (unsigned long long)s->shape[0]);
        return npy_fail(s, msg);
    }
    return 0;
}

static void npy_free(npy_sink *s) {
    free(s->hdr);
    cli_budget_free(s->buf);
    s->hdr = NULL;
    s->buf = NULL;
}

static void npy_init(npy_sink *s, const char *name, int kind, conv *cv, uint64_t total) {
    memset(s, 0, sizeof *s);
    s->name = name;
    s->kind = kind;
    s->cv = cv;
    s->total = total;
}

/* ======================================================================================== */
/* the conversion                                                                            */

/* latents_classes (raw little-endian int64) -> checked int32 labels */
static int conv_labels(conv *cv, npy_sink *s) {
    uint64_t i, n = s->shape[0];
    int k;
    cv->labels = (int32_t *)cli_budget_calloc((size_t)n * DSPR_NF, sizeof(int32_t));
    if (!cv->labels) {
        char msg[300];
        snprintf(msg, sizeof msg, "out of memory for the labels (%llu rows)%s", (unsigned long long)n, cli_budget_note());
        return npy_fail(s, msg);
    }
    cv->grid = n == DSPR_COUNT;
    for (i = 0; i < n; i++) {
        int32_t d[DSPR_NF];
        dspr_digits(i, d);
        for (k = 0; k < DSPR_NF; k++) {
            uint64_t v = le64(s->buf + (i * DSPR_NF + (uint64_t)k) * 8);
            if (v >= dspr_sizes[k]) { /* also catches negative values (as huge unsigned) */
                char msg[200];
                snprintf(msg, sizeof msg, "row %llu, column %d (%s) is %lld: %s indices are 0..%u",
                         (unsigned long long)i, k, dspr_names[k], (long long)v, dspr_names[k], dspr_sizes[k] - 1);
                return npy_fail(s, msg);
            }
            cv->labels[i * DSPR_NF + (uint64_t)k] = (int32_t)v;
            if (d[k] != (int32_t)v) cv->grid = 0;
        }
    }
    cv->n = n;
    return 0;
}

/* imgs header checked: shapes agree? then open the output */
static int conv_begin(conv *cv, npy_sink *s) {
    heph_hpd_info info;
    if (s->shape[0] != cv->n) {
        char msg[200];
        snprintf(msg, sizeof msg, "field 'shape': imgs holds %llu pictures but latents_classes has %llu rows",
                 (unsigned long long)s->shape[0], (unsigned long long)cv->n);
        return npy_fail(s, msg);
    }
    dspr_info(&info, cv->n, cv->values);
    info.flags = cv->grid ? HEPH_HPD_GRID : 0u;
    snprintf(info.source, sizeof info.source, "%s", cv->source);
    if (heph_hpd_create(&cv->w, cv->out, &info) != HEPH_OK) {
        fprintf(stderr, "dsprites2hpd: %s\n", cv->w.err);
        return -1;
    }
    cv->writing = 1;
    cv->t0 = now();
    cv->next_pct = 10;
    return 0;
}

static int conv_picture(conv *cv, npy_sink *s) {
    size_t j;
    for (j = 0; j < DSPR_SIDE * DSPR_SIDE; j++) cv->nonbinary += s->buf[j] > 1;
    if (heph_hpd_put_u8(&cv->w, s->buf, cv->labels + cv->done * DSPR_NF) != HEPH_OK) {
        fprintf(stderr, "dsprites2hpd: %s\n", cv->w.err);
        return -1;
    }
    cv->done++;
    if (!quiet && cv->n >= 100000 && cv->done * 100 >= (uint64_t)cv->next_pct * cv->n) {
        fprintf(stderr, "dsprites2hpd: %3d%% (%llu of %llu pictures, %.1f s)\n", cv->next_pct,
                (unsigned long long)cv->done, (unsigned long long)cv->n, now() - cv->t0);
        cv->next_pct += 10;
    }
    return 0;
}

/* ======================================================================================== */
/* input: a .npy file or standard input                                                     */

static int read_npy_file(const char *path, npy_sink *s) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    unsigned char *buf;
    struct stat st;
    size_t got;
    int rc = 0;
    if (!f) { fprintf(stderr, "dsprites2hpd: %s: cannot open\n", path); return -1; }
    if (f != stdin && fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) s->total = (uint64_t)st.st_size;
    buf = (unsigned char *)malloc(CHUNK);
    if (!buf) { fprintf(stderr, "dsprites2hpd: out of memory\n"); if (f != stdin) fclose(f); return -1; }
    while (rc == 0 && (got = fread(buf, 1, CHUNK, f)) > 0) rc = npy_feed(s, buf, got);
    if (rc == 0 && ferror(f)) { fprintf(stderr, "dsprites2hpd: %s: read error\n", path); rc = -1; }
    if (rc == 0) rc = npy_end(s);
    free(buf);
    if (f != stdin) fclose(f);
    return rc;
}

/* ======================================================================================== */
/* input: a ZIP (.npz)                                                                      */

typedef struct {
    char name[256];
    uint32_t method, flags, crc;
    uint64_t csize, usize, offset;
} zip_entry;

typedef struct {
    const char *path;
    FILE *f;
    uint64_t size;
    zip_entry *e;
    size_t n;
} zip_file;

static int zip_fail(const zip_file *z, const char *what) {
    report(z->path, what);
    return -1;
}

static int zip_read_at(zip_file *z, uint64_t off, unsigned char *buf, size_t n) {
    if (off > z->size || n > z->size - off) return -1;
    if (HEPH_FSEEK(z->f, off, SEEK_SET) != 0) return -1;
    return fread(buf, 1, n, z->f) == n ? 0 : -1;
}

/* ZIP64 extended information (header id 0x0001): the 64-bit values of the fields that are
   all ones in the fixed part, in the order uncompressed, compressed, local offset */
static int zip64_extra(const unsigned char *x, size_t xlen, uint64_t *usize, uint64_t *csize, uint64_t *off) {
    size_t at = 0;
    while (at + 4 <= xlen) {
        uint32_t id = le16(x + at), len = le16(x + at + 2);
        if (at + 4 + len > xlen) return -1;
        if (id == 1) {
            const unsigned char *d = x + at + 4;
            size_t k = 0;
            if (usize && *usize == 0xffffffffu) { if (k + 8 > len) return -1; *usize = le64(d + k); k += 8; }
            if (csize && *csize == 0xffffffffu) { if (k + 8 > len) return -1; *csize = le64(d + k); k += 8; }
            if (off && *off == 0xffffffffu) { if (k + 8 > len) return -1; *off = le64(d + k); k += 8; }
            return 0;
        }
        at += 4 + len;
    }
    return 0;
}

static int zip_open(zip_file *z, const char *path) {
    unsigned char *tail = NULL, *cd = NULL, rec[56];
    size_t tail_n, i, at;
    uint64_t eocd = 0, entries, cd_size, cd_off;
    int found = 0;
    struct stat st;
    char msg[300];
    memset(z, 0, sizeof *z);
    z->path = path;
    if (!strcmp(path, "-")) {
        fprintf(stderr, "dsprites2hpd: --npz needs a file, not a pipe (its directory is at the end); "
                        "for a pipe use: unzip -p FILE.npz imgs.npy | dsprites2hpd --imgs - ...\n");
        return -1;
    }
    z->f = fopen(path, "rb");
    if (!z->f) { fprintf(stderr, "dsprites2hpd: %s: cannot open\n", path); return -1; }
    if (fstat(fileno(z->f), &st) != 0 || !S_ISREG(st.st_mode)) return zip_fail(z, "not a regular file");
    z->size = (uint64_t)st.st_size;
    if (z->size < 22) return zip_fail(z, "not a ZIP/.npz file (too short for an end-of-central-directory record)");
    /* end of central directory: in the last 22 + 65535 bytes */
    tail_n = (size_t)(z->size < 22 + 65535 ? z->size : 22 + 65535);
    tail = (unsigned char *)malloc(tail_n);
    if (!tail || zip_read_at(z, z->size - tail_n, tail, tail_n) != 0) { free(tail); return zip_fail(z, "read error"); }
    for (i = tail_n - 22 + 1; i-- > 0;) {
        if (le32(tail + i) == 0x06054b50u && i + 22 + le16(tail + i + 20) == tail_n) {
            eocd = z->size - tail_n + i;
            found = 1;
            break;
        }
    }
    if (!found) {
        free(tail);
        if (z->size >= 4) {
            unsigned char head[4];
            if (zip_read_at(z, 0, head, 4) == 0 && le32(head) == 0x04034b50u)
                return zip_fail(z, "truncated ZIP file: no end-of-central-directory record");
        }
        return zip_fail(z, "not a ZIP/.npz file (no end-of-central-directory record)");
    }
    at = (size_t)(eocd - (z->size - tail_n));
    if (le16(tail + at + 4) != 0 && le16(tail + at + 4) != 0xffffu) { free(tail); return zip_fail(z, "multi-disk ZIP files are not supported"); }
    entries = le16(tail + at + 10);
    cd_size = le32(tail + at + 12);
    cd_off = le32(tail + at + 16);
    free(tail);
    if (entries == 0xffffu || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
        /* ZIP64: locator (20 bytes) just before, pointing at the ZIP64 end record */
        uint64_t rec_off;
        if (eocd < 20 || zip_read_at(z, eocd - 20, rec, 20) != 0 || le32(rec) != 0x07064b50u)
            return zip_fail(z, "ZIP64 end-of-central-directory locator missing");
        rec_off = le64(rec + 8);
        if (zip_read_at(z, rec_off, rec, 56) != 0 || le32(rec) != 0x06064b50u)
            return zip_fail(z, "ZIP64 end-of-central-directory record missing or damaged");
        entries = le64(rec + 32);
        cd_size = le64(rec + 40);
        cd_off = le64(rec + 48);
    }
    if (entries == 0 || entries > 100000 || entries > cd_size / 46 || cd_size > (64u << 20) || cd_off > z->size ||
        cd_size > z->size - cd_off) { /* an entry takes at least 46 bytes: checked before allocating the table */
        snprintf(msg, sizeof msg, "central directory out of range (%llu entries, %llu bytes at %llu, file %llu bytes)",
                 (unsigned long long)entries, (unsigned long long)cd_size, (unsigned long long)cd_off,
                 (unsigned long long)z->size);
        return zip_fail(z, msg);
    }
    cd = (unsigned char *)malloc((size_t)cd_size + 1);
    z->e = (zip_entry *)calloc((size_t)entries, sizeof *z->e);
    if (!cd || !z->e) { free(cd); return zip_fail(z, "out of memory"); }
    if (zip_read_at(z, cd_off, cd, (size_t)cd_size) != 0) { free(cd); return zip_fail(z, "read error in the central directory"); }
    for (at = 0, i = 0; i < entries; i++) {
        zip_entry *e = &z->e[i];
        uint32_t nl, xl, cl;
        if (at + 46 > cd_size || le32(cd + at) != 0x02014b50u) { free(cd); return zip_fail(z, "damaged central directory"); }
        nl = le16(cd + at + 28); xl = le16(cd + at + 30); cl = le16(cd + at + 32);
        if (at + 46 + nl + xl + cl > cd_size) { free(cd); return zip_fail(z, "damaged central directory (entry too long)"); }
        e->flags = le16(cd + at + 8);
        e->method = le16(cd + at + 10);
        e->crc = le32(cd + at + 16);
        e->csize = le32(cd + at + 20);
        e->usize = le32(cd + at + 24);
        e->offset = le32(cd + at + 42);
        snprintf(e->name, sizeof e->name, "%.*s", (int)(nl < 255 ? nl : 255), (const char *)cd + at + 46);
        if (zip64_extra(cd + at + 46 + nl, xl, &e->usize, &e->csize, &e->offset) != 0) {
            free(cd);
            snprintf(msg, sizeof msg, "%.100s: damaged ZIP64 extra field in the central directory", e->name);
            return zip_fail(z, msg);
        }
        at += 46 + nl + xl + cl;
    }
    free(cd);
    z->n = (size_t)entries;
    return 0;
}

static void zip_close(zip_file *z) {
    if (z->f) fclose(z->f);
    free(z->e);
    z->f = NULL;
    z->e = NULL;
}

/* bytes of one member, handed to a sink */
typedef int (*byte_sink)(void *ctx, const unsigned char *p, size_t n);

typedef struct {
    zip_file *z;
    uint64_t left;          /* compressed bytes not yet read */
    uint64_t produced;
    uint32_t crc;
    byte_sink sink;
    void *sctx;
    const char *label;      /* "FILE: member" */
} member_reader;

static int member_read(void *ctx, unsigned char *buf, size_t cap, size_t *got) {
    member_reader *m = (member_reader *)ctx;
    size_t want = (uint64_t)cap < m->left ? cap : (size_t)m->left;
    *got = 0;
    if (want == 0) return 0;
    *got = fread(buf, 1, want, m->z->f);
    m->left -= *got;
    return *got == want ? 0 : -1;
}

static int member_write(void *ctx, const unsigned char *p, size_t n) {
    member_reader *m = (member_reader *)ctx;
    m->crc = heph_crc32(m->crc, p, n);
    m->produced += n;
    return m->sink(m->sctx, p, n);
}

static const zip_entry *zip_find(const zip_file *z, const char *name) {
    size_t i;
    for (i = 0; i < z->n; i++)
        if (!strcmp(z->e[i].name, name)) return &z->e[i];
    return NULL;
}

/* stream member `name` into sink; label is used in messages */
static int zip_member(zip_file *z, const char *name, const char *label, byte_sink sink, void *sctx) {
    const zip_entry *e = zip_find(z, name);
    unsigned char lh[30], *x;
    uint64_t usize, csize, start;
    uint32_t nl, xl, flags, method;
    member_reader m;
    char msg[400];
    if (!e) {
        size_t i, len = 0;
        len += (size_t)snprintf(msg, sizeof msg, "no member %.100s (members:", name);
        for (i = 0; i < z->n && len < sizeof msg - 40; i++)
            len += (size_t)snprintf(msg + len, sizeof msg - len, " %.100s", z->e[i].name);
        snprintf(msg + len, sizeof msg - len, ")");
        return zip_fail(z, msg);
    }
    if (zip_read_at(z, e->offset, lh, 30) != 0 || le32(lh) != 0x04034b50u) {
        snprintf(msg, sizeof msg, "%.100s: local header missing at offset %llu (truncated or damaged file)", name, (unsigned long long)e->offset);
        return zip_fail(z, msg);
    }
    flags = le16(lh + 6);
    method = le16(lh + 8);
    csize = le32(lh + 18);
    usize = le32(lh + 22);
    nl = le16(lh + 26);
    xl = le16(lh + 28);
    if (flags & 1u) { snprintf(msg, sizeof msg, "%.100s: encrypted members are not supported", name); return zip_fail(z, msg); }
    if (method != 0 && method != 8) {
        snprintf(msg, sizeof msg, "%.100s: compression method %u is not supported (0 stored and 8 deflate are)", name, method);
        return zip_fail(z, msg);
    }
    if (method != e->method) { snprintf(msg, sizeof msg, "%.100s: local header and central directory disagree on the method", name); return zip_fail(z, msg); }
    x = (unsigned char *)malloc(nl + xl + 1u);
    if (!x || zip_read_at(z, e->offset + 30, x, nl + xl) != 0) {
        free(x);
        snprintf(msg, sizeof msg, "%.100s: truncated local header", name);
        return zip_fail(z, msg);
    }
    if (nl != strlen(name) || memcmp(x, name, nl) != 0) {
        free(x);
        snprintf(msg, sizeof msg, "%.100s: local header names a different member", name);
        return zip_fail(z, msg);
    }
    if (zip64_extra(x + nl, xl, &usize, &csize, NULL) != 0) {
        free(x);
        snprintf(msg, sizeof msg, "%.100s: damaged ZIP64 extra field in the local header", name);
        return zip_fail(z, msg);
    }
    free(x);
    if (flags & 8u) { /* sizes and CRC follow the data (data descriptor): trust the directory */
        usize = e->usize;
        csize = e->csize;
    } else if (usize != e->usize || csize != e->csize) {
        snprintf(msg, sizeof msg, "%.100s: local header sizes (%llu/%llu) disagree with the central directory (%llu/%llu)",
                 name, (unsigned long long)csize, (unsigned long long)usize, (unsigned long long)e->csize, (unsigned long long)e->usize);
        return zip_fail(z, msg);
    }
    start = e->offset + 30 + nl + xl;
    if (start > z->size || csize > z->size - start) {
        snprintf(msg, sizeof msg, "%.100s: truncated: %llu compressed bytes at offset %llu, the file has %llu",
                 name, (unsigned long long)csize, (unsigned long long)start, (unsigned long long)z->size);
        return zip_fail(z, msg);
    }
    if (method == 8 && usize / 1033 > csize) { /* DEFLATE expands at most 1032:1: a damaged size */
        snprintf(msg, sizeof msg, "%.100s: %llu bytes from %llu compressed bytes is more than DEFLATE can give (damaged directory)",
                 name, (unsigned long long)usize, (unsigned long long)csize);
        return zip_fail(z, msg);
    }
    if (method == 0 && csize != usize) {
        snprintf(msg, sizeof msg, "%.100s: stored member with different sizes (%llu vs %llu)", name, (unsigned long long)csize, (unsigned long long)usize);
        return zip_fail(z, msg);
    }
    if (HEPH_FSEEK(z->f, start, SEEK_SET) != 0) return zip_fail(z, "seek failed");
    memset(&m, 0, sizeof m);
    m.z = z; m.left = csize; m.sink = sink; m.sctx = sctx; m.label = label;
    if (method == 0) {
        unsigned char *buf = (unsigned char *)malloc(CHUNK);
        size_t got;
        if (!buf) return zip_fail(z, "out of memory");
        while (m.left > 0) {
            if (member_read(&m, buf, CHUNK, &got) != 0) {
                free(buf);
                snprintf(msg, sizeof msg, "%.100s: read error", name);
                return zip_fail(z, msg);
            }
            if (member_write(&m, buf, got) != 0) { free(buf); return -1; }
        }
        free(buf);
    } else {
        uint64_t used = 0, total = 0;
        char err[160];
        int rc = heph_sinfl_run(member_read, &m, member_write, &m, &used, &total, err, sizeof err);
        if (rc == -2) return -1;
        if (rc != 0) {
            snprintf(msg, sizeof msg, "%.100s: corrupt deflate data (%s)", name, err);
            return zip_fail(z, msg);
        }
        if (used != csize) {
            snprintf(msg, sizeof msg, "%.100s: the deflate stream takes %llu of the member's %llu compressed bytes",
                     name, (unsigned long long)used, (unsigned long long)csize);
            return zip_fail(z, msg);
        }
    }
    if (m.produced != usize) {
        snprintf(msg, sizeof msg, "%.100s: %llu bytes inflated, the directory says %llu", name,
                 (unsigned long long)m.produced, (unsigned long long)usize);
        return zip_fail(z, msg);
    }
    if (m.crc != e->crc) {
        snprintf(msg, sizeof msg, "%.100s: CRC-32 mismatch (%08x, the directory says %08x): the file is corrupt",
                 name, m.crc, e->crc);
        return zip_fail(z, msg);
    }
    return 0;
}

/* the most bytes a member can give: its declared size, and no more than its compressed bytes
   inside this file can inflate to (DEFLATE: at most 1032:1) */
static uint64_t zip_bound(const zip_file *z, const zip_entry *e) {
    uint64_t c = e->csize < z->size ? e->csize : z->size;
    uint64_t most = e->method == 0 ? c : c > UINT64_MAX / 1033 ? UINT64_MAX : c * 1033;
    return e->usize < most ? e->usize : most;
}

static int sink_npy(void *ctx, const unsigned char *p, size_t n) { return npy_feed((npy_sink *)ctx, p, n); }
static int sink_stdout(void *ctx, const unsigned char *p, size_t n) {
    (void)ctx;
    if (fwrite(p, 1, n, stdout) != n) { fprintf(stderr, "dsprites2hpd: write error on standard output\n"); return -1; }
    return 0;
}

static int npz_member_npy(zip_file *z, const char *member, int kind, conv *cv, npy_sink *s, char *label, size_t cap) {
    const zip_entry *e = zip_find(z, member);
    snprintf(label, cap, "%s: %s", z->path, member);
    npy_init(s, label, kind, cv, e ? e->usize : 0);
    if (zip_member(z, member, label, sink_npy, s) != 0) return -1;
    return npy_end(s);
}

/* ======================================================================================== */

int main(int argc, char **argv) {
    const char *npz = NULL, *imgs = NULL, *classes = NULL, *out = NULL, *cat = NULL;
    conv cv;
    npy_sink cs, is;
    zip_file z;
    char lab_c[600], lab_i[600];
    int i, rc = 1;
    double t0 = now();

    memset(&cv, 0, sizeof cv);
    memset(&z, 0, sizeof z);
    cli_budget_default();
    npy_init(&cs, "", KIND_CLASSES, &cv, 0);
    npy_init(&is, "", KIND_IMGS, &cv, 0);
    cv.source = "dsprites";
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int val = !strcmp(a, "--npz") || !strcmp(a, "--imgs") || !strcmp(a, "--classes") ||
                  !strcmp(a, "--cat") || !strcmp(a, "--source") || !strcmp(a, "--mem-budget");
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--version")) { printf("dsprites2hpd %s (hephaestus.h)\n", HEPH_VERSION_STRING); return 0; }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { quiet = 1; continue; }
        if (val && i + 1 >= argc) { fprintf(stderr, "dsprites2hpd: %s needs a value (see --help)\n", a); return 2; }
        if (!strcmp(a, "--npz")) npz = argv[++i];
        else if (!strcmp(a, "--imgs")) imgs = argv[++i];
        else if (!strcmp(a, "--classes")) classes = argv[++i];
        else if (!strcmp(a, "--cat")) cat = argv[++i];
        else if (!strcmp(a, "--source")) cv.source = argv[++i];
        else if (!strcmp(a, "--mem-budget")) {
            if (cli_budget_parse(argv[++i]) != 0) {
                fprintf(stderr, "dsprites2hpd: --mem-budget takes an integer in 1..%ld (MB), got \"%s\"\n", 1L << 30, argv[i]);
                return 2;
            }
        }
        else if (a[0] == '-' && a[1]) { fprintf(stderr, "dsprites2hpd: unknown option %s (see --help)\n", a); return 2; }
        else if (!out) out = a;
        else { fprintf(stderr, "dsprites2hpd: too many arguments: %s (see --help)\n", a); return 2; }
    }
    if (cat) {
        if (!npz || imgs || classes || out) { fprintf(stderr, "dsprites2hpd: --cat goes with --npz only (see --help)\n"); return 2; }
        if (zip_open(&z, npz) != 0) { zip_close(&z); return 1; }
        rc = zip_member(&z, cat, cat, sink_stdout, NULL) == 0 && fflush(stdout) == 0 ? 0 : 1;
        zip_close(&z);
        return rc;
    }
    if (npz ? (imgs || classes) : (!imgs || !classes)) {
        fprintf(stderr, "dsprites2hpd: give either --npz FILE, or --imgs and --classes (see --help)\n");
        return 2;
    }
    if (!out) { fprintf(stderr, "dsprites2hpd: no output file given (see --help)\n"); return 2; }
    if (strlen(cv.source) > 32) { fprintf(stderr, "dsprites2hpd: --source: longer than 32 characters\n"); return 2; }
    if (classes && !strcmp(classes, "-")) {
        fprintf(stderr, "dsprites2hpd: --classes must be a file (the labels are read before the pictures)\n");
        return 2;
    }
    cv.out = out;

    /* 1. the labels */
    if (npz) {
        const zip_entry *ie;
        if (zip_open(&z, npz) != 0) goto done;
        /* the pictures bound the labels: N rows need N x 4096 bytes of imgs.npy */
        if (!(ie = zip_find(&z, "imgs.npy"))) { zip_member(&z, "imgs.npy", "imgs.npy", sink_npy, &is); goto done; }
        cv.imgs_max = zip_bound(&z, ie);
        if (npz_member_npy(&z, "latents_classes.npy", KIND_CLASSES, &cv, &cs, lab_c, sizeof lab_c) != 0) goto done;
    } else {
        snprintf(lab_c, sizeof lab_c, "%s", classes);
        cs.name = lab_c;
        if (read_npy_file(classes, &cs) != 0) goto done;
    }
    if (conv_labels(&cv, &cs) != 0) goto done;
    cli_budget_free(cs.buf);
    cs.buf = NULL;

    /* 2. the pictures, streamed into the .hpd */
    if (npz) {
        if (npz_member_npy(&z, "imgs.npy", KIND_IMGS, &cv, &is, lab_i, sizeof lab_i) != 0) goto done;
    } else {
        snprintf(lab_i, sizeof lab_i, "%s", strcmp(imgs, "-") ? imgs : "standard input (imgs)");
        is.name = lab_i;
        if (read_npy_file(imgs, &is) != 0) goto done;
    }
    if (cv.done != cv.n) { /* cannot happen after npy_end; kept as a guard */
        fprintf(stderr, "dsprites2hpd: %s: %llu of %llu pictures\n", lab_i, (unsigned long long)cv.done, (unsigned long long)cv.n);
        goto done;
    }
    cv.writing = 0;
    if (heph_hpd_finish(&cv.w) != HEPH_OK) { fprintf(stderr, "dsprites2hpd: %s\n", cv.w.err); goto done; }
    if (cv.nonbinary)
        fprintf(stderr, "dsprites2hpd: note: %llu pixel values were neither 0 nor 1; stored as 1\n",
                (unsigned long long)cv.nonbinary);
    printf("dsprites2hpd: %s: %llu pictures 64x64 1-bit, 6 factors%s, %.1f s\n", out,
           (unsigned long long)cv.n, cv.grid ? ", full grid in mixed-radix order" : "", now() - t0);
    rc = 0;
done:
    if (cv.writing) heph_hpd_abort(&cv.w);
    npy_free(&cs);
    npy_free(&is);
    cli_budget_free(cv.labels);
    zip_close(&z);
    return rc;
}
