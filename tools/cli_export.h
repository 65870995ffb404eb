/* cli_export.h - models in and out of the safetensors format, for PyTorch (issue #27):
   `hephaestus export --format safetensors MODEL.hpm OUT.safetensors` and
   `hephaestus import IN.safetensors OUT.hpm`. Include after hephaestus.h.

   THE FORMAT (safetensors, as the Hugging Face library writes it): an unsigned 64-bit
   little-endian N, then N bytes of UTF-8 JSON, then the tensor bytes. The JSON is one object:
   each key a tensor name mapping to {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}
   (offsets into the bytes after the header; the tensors cover them exactly, without holes
   or overlaps), plus an optional "__metadata__" object of string values. Values are
   little-endian, row-major (C order). We write F32 only and read F32 only.

   THE nn.Module LAYOUT: one nn.Sequential per network, one module per token of the spec
   string, in order, so layer l of the encoder is `encoder.l` and its parameters are
   `encoder.l.weight` and `encoder.l.bias` (and `decoder.l.*` likewise):
       denseN        nn.Linear(in, N)              weight [N, in]        (an image input is
                                                   flattened first, in (C, H, W) order)
       convNkKsSpP   nn.Conv2d(C, N, K, S, P)      weight [N, C, K, K]
       convtNkKsSpP  nn.ConvTranspose2d(C, N, K, S, P)  weight [C, N, K, K]
       flatten       nn.Flatten()                  reshapeCxHxW  nn.Unflatten(1, (C, H, W))
       maxpool2      nn.MaxPool2d(2)
       bn            nn.BatchNorm2d(C), or nn.BatchNorm1d(C) after dense/flatten: weight, bias,
                     running_mean, running_var [C] each (num_batches_tracked is not stored)
       relu nn.ReLU()  lreluA nn.LeakyReLU(A)  sigmoid nn.Sigmoid()  tanh nn.Tanh()
   every bias [N]. The encoder's last module is the head the VAE appends to its spec,
   nn.Linear(.., 2 z_dim): mu is output[:, :z_dim], log sigma^2 output[:, z_dim:]. The
   decoder maps z (B, z_dim) to logits (B, C*H*W) of the picture (C, H, W); pictures are
   sigmoid(logits). tools/hephaestus_torch.py builds this model from a file's metadata.
   Covered: every spec of today's grammar, so all the presets (mlp-mnist, mlp-dsprites,
   cnn-dsprites, cnn-dsprites-tc, cnn-shapes3d); U-Net skips are not in the grammar yet.

   METADATA (all strings): format "hephaestus-vae/1", hephaestus_version, input_shape "C,H,W",
   z_dim, encoder_spec (without the head), decoder_spec, recon, objective and its settings,
   Adam's settings, max_batch, step. import needs input_shape, z_dim and the two specs
   (or --preset NAME for a file without them); the other keys are optional.

   The parser (st_parse) works on a buffer in memory and checks every size before use; the
   fuzz target tests/fuzz/fuzz_safetensors.c drives it. Define HEPH_ST_CODEC_ONLY to get only
   the codec (no CLI commands, no POSIX calls).                                          */
#ifndef HEPH_CLI_EXPORT_H
#define HEPH_CLI_EXPORT_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* codec functions: static, and not a warning when a program uses only some of them */
#if defined(__GNUC__)
#define ST_STATIC static __attribute__((unused))
#else
#define ST_STATIC static
#endif

#define ST_MAX_TENSORS 512
#define ST_MAX_META 64
#define ST_NAME_MAX 128
#define ST_META_VAL_MAX 1024
#define ST_MAX_RANK 8
#define ST_MAX_HEADER ((uint64_t)100 << 20) /* 100 MB of JSON: the reference reader's limit */
#define ST_MAX_FILE ((uint64_t)1 << 36)     /* as .hpm: 64 GB                                */

typedef struct {
    char name[ST_NAME_MAX];
    char dtype[12];
    unsigned elsize;                 /* bytes per value of dtype                    */
    int rank;
    uint64_t shape[ST_MAX_RANK];
    uint64_t begin, end;             /* byte offsets into the data block             */
} st_tensor;

typedef struct {
    char key[64];
    char val[ST_META_VAL_MAX];
} st_meta;

typedef struct {
    st_tensor t[ST_MAX_TENSORS];
    int n_t;
    st_meta meta[ST_MAX_META];
    int n_meta;
    const unsigned char *data;       /* the data block (a view into the caller's buffer) */
    uint64_t data_size;
    char err[256];
} st_file;

/* ---- errors ----------------------------------------------------------------------------- */

ST_STATIC int st_errf(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- the JSON header: a cursor over [p, end) ------------------------------------------------ */

typedef struct {
    const unsigned char *p, *end, *start;
    char *err;
    size_t errlen;
} st_json;

ST_STATIC int st_jfail(st_json *j, const char *what) {
    return st_errf(j->err, j->errlen, "header byte %ld: %s", (long)(j->p - j->start), what);
}

ST_STATIC void st_ws(st_json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

/* the next non-blank byte must be c */
ST_STATIC int st_expect(st_json *j, char c, const char *what) {
    st_ws(j);
    if (j->p >= j->end || *j->p != (unsigned char)c) return st_jfail(j, what);
    j->p++;
    return 0;
}

ST_STATIC int st_hex4(const unsigned char *p, unsigned *v) {
    int i;
    *v = 0;
    for (i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        *v = *v * 16 + d;
    }
    return 1;
}

/* append code point u as UTF-8 to out[*n], keeping room for the NUL */
ST_STATIC int st_utf8(char *out, size_t cap, size_t *n, unsigned u) {
    unsigned char b[4];
    size_t k, len;
    if (u < 0x80) { b[0] = (unsigned char)u; len = 1; }
    else if (u < 0x800) { b[0] = (unsigned char)(0xC0 | (u >> 6)); b[1] = (unsigned char)(0x80 | (u & 63)); len = 2; }
    else if (u < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (u >> 12)); b[1] = (unsigned char)(0x80 | ((u >> 6) & 63));
        b[2] = (unsigned char)(0x80 | (u & 63)); len = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | (u >> 18)); b[1] = (unsigned char)(0x80 | ((u >> 12) & 63));
        b[2] = (unsigned char)(0x80 | ((u >> 6) & 63)); b[3] = (unsigned char)(0x80 | (u & 63)); len = 4;
    }
    if (*n + len >= cap) return 0;
    for (k = 0; k < len; k++) out[(*n)++] = (char)b[k];
    return 1;
}

/* a JSON string into out (cap bytes with the NUL); escapes decoded; no NUL inside allowed */
ST_STATIC int st_string(st_json *j, char *out, size_t cap, const char *what) {
    size_t n = 0;
    char msg[96];
    if (st_expect(j, '"', "expected a string") != 0) return -1;
    while (j->p < j->end && *j->p != '"') {
        unsigned c = *j->p++;
        if (c < 0x20) return st_jfail(j, "control character inside a string");
        if (c == '\\') {
            unsigned u;
            if (j->p >= j->end) break;
            c = *j->p++;
            switch (c) {
            case '"': case '\\': case '/': u = c; break;
            case 'b': u = 8; break;
            case 'f': u = 12; break;
            case 'n': u = 10; break;
            case 'r': u = 13; break;
            case 't': u = 9; break;
            case 'u':
                if (j->end - j->p < 4 || !st_hex4(j->p, &u)) return st_jfail(j, "bad \\u escape");
                j->p += 4;
                if (u >= 0xD800 && u < 0xDC00) { /* a surrogate pair */
                    unsigned lo;
                    if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || !st_hex4(j->p + 2, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return st_jfail(j, "unpaired surrogate in a \\u escape");
                    j->p += 6;
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                } else if (u >= 0xDC00 && u < 0xE000) return st_jfail(j, "unpaired surrogate in a \\u escape");
                if (u == 0) return st_jfail(j, "\\u0000 inside a string");
                break;
            default: return st_jfail(j, "unknown escape in a string");
            }
            if (!st_utf8(out, cap, &n, u)) goto long_str;
        } else {
            if (n + 1 >= cap) goto long_str;
            out[n++] = (char)c;
        }
    }
    if (j->p >= j->end) return st_jfail(j, "unterminated string");
    j->p++;
    out[n] = '\0';
    return 0;
long_str:
    snprintf(msg, sizeof msg, "%s longer than %zu bytes", what, cap - 1);
    return st_jfail(j, msg);
}

/* a non-negative JSON integer (no sign, fraction or exponent) */
ST_STATIC int st_uint(st_json *j, uint64_t *v) {
    uint64_t x = 0;
    const unsigned char *s;
    st_ws(j);
    s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        unsigned d = (unsigned)(*j->p - '0');
        if (x > (UINT64_MAX - d) / 10) return st_jfail(j, "integer too large");
        x = x * 10 + d;
        j->p++;
    }
    if (j->p == s) return st_jfail(j, "expected a non-negative integer");
    if (j->p - s > 1 && *s == '0') return st_jfail(j, "integer with a leading zero");
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E' || *j->p == '-'))
        return st_jfail(j, "expected an integer, not a fraction");
    *v = x;
    return 0;
}

/* [a, b, ...] of at most max integers */
ST_STATIC int st_uint_array(st_json *j, uint64_t *v, int max, int *n, const char *what) {
    char msg[80];
    *n = 0;
    if (st_expect(j, '[', "expected [") != 0) return -1;
    st_ws(j);
    if (j->p < j->end && *j->p == ']') { j->p++; return 0; }
    for (;;) {
        if (*n == max) { snprintf(msg, sizeof msg, "%s has more than %d entries", what, max); return st_jfail(j, msg); }
        if (st_uint(j, &v[(*n)++]) != 0) return -1;
        st_ws(j);
        if (j->p < j->end && *j->p == ',') { j->p++; continue; }
        return st_expect(j, ']', "expected , or ] in an array");
    }
}

static const struct { const char *name; unsigned size; } st_dtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
    {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};

/* one tensor entry {"dtype": .., "shape": [..], "data_offsets": [b, e]} (any order, each once) */
ST_STATIC int st_tensor_entry(st_json *j, st_tensor *t) {
    char key[32];
    int seen = 0, n;
    uint64_t off[3];
    if (st_expect(j, '{', "expected { after a tensor name") != 0) return -1;
    st_ws(j);
    if (j->p < j->end && *j->p == '}') return st_jfail(j, "empty tensor entry");
    for (;;) {
        if (st_string(j, key, sizeof key, "key") != 0) return -1;
        if (st_expect(j, ':', "expected :") != 0) return -1;
        if (strcmp(key, "dtype") == 0 && !(seen & 1)) {
            size_t d;
            if (st_string(j, t->dtype, sizeof t->dtype, "dtype") != 0) return -1;
            for (d = 0; d < sizeof st_dtypes / sizeof st_dtypes[0]; d++)
                if (strcmp(t->dtype, st_dtypes[d].name) == 0) t->elsize = st_dtypes[d].size;
            if (!t->elsize) return st_jfail(j, "unknown dtype");
            seen |= 1;
        } else if (strcmp(key, "shape") == 0 && !(seen & 2)) {
            if (st_uint_array(j, t->shape, ST_MAX_RANK, &t->rank, "shape") != 0) return -1;
            seen |= 2;
        } else if (strcmp(key, "data_offsets") == 0 && !(seen & 4)) {
            if (st_uint_array(j, off, 3, &n, "data_offsets") != 0) return -1;
            if (n != 2) return st_jfail(j, "data_offsets needs two integers [begin, end]");
            t->begin = off[0]; t->end = off[1];
            seen |= 4;
        } else {
            return st_jfail(j, (seen & 1 && !strcmp(key, "dtype")) || (seen & 2 && !strcmp(key, "shape")) ||
                                       (seen & 4 && !strcmp(key, "data_offsets"))
                                   ? "a tensor field given twice"
                                   : "unknown tensor field (expected dtype, shape, data_offsets)");
        }
        st_ws(j);
        if (j->p < j->end && *j->p == ',') { j->p++; continue; }
        if (st_expect(j, '}', "expected , or } in a tensor entry") != 0) return -1;
        break;
    }
    if (seen != 7) return st_jfail(j, "a tensor entry needs dtype, shape and data_offsets");
    return 0;
}

/* "__metadata__": {"key": "value", ...} */
ST_STATIC int st_metadata(st_json *j, st_file *f) {
    if (st_expect(j, '{', "__metadata__ must be an object") != 0) return -1;
    st_ws(j);
    if (j->p < j->end && *j->p == '}') { j->p++; return 0; }
    for (;;) {
        st_meta *m;
        int i;
        if (f->n_meta == ST_MAX_META) return st_jfail(j, "more than 64 metadata entries");
        m = &f->meta[f->n_meta];
        if (st_string(j, m->key, sizeof m->key, "metadata key") != 0) return -1;
        if (st_expect(j, ':', "expected :") != 0) return -1;
        st_ws(j);
        if (j->p < j->end && *j->p != '"') return st_jfail(j, "metadata values must be strings");
        if (st_string(j, m->val, sizeof m->val, "metadata value") != 0) return -1;
        for (i = 0; i < f->n_meta; i++)
            if (strcmp(f->meta[i].key, m->key) == 0) return st_jfail(j, "metadata key given twice");
        f->n_meta++;
        st_ws(j);
        if (j->p < j->end && *j->p == ',') { j->p++; continue; }
        return st_expect(j, '}', "expected , or } in __metadata__");
    }
}

ST_STATIC int st_cmp_begin(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* every tensor's byte count matches dtype x shape, and together they tile the data block */
ST_STATIC int st_check_layout(st_file *f) {
    const st_tensor **order;
    uint64_t at = 0;
    int i, k;
    for (i = 0; i < f->n_t; i++) {
        st_tensor *t = &f->t[i];
        uint64_t bytes = t->elsize;
        for (k = 0; k < t->rank; k++) {
            if (t->shape[k] && bytes > UINT64_MAX / t->shape[k])
                return st_errf(f->err, sizeof f->err, "tensor \"%s\": its shape overflows", t->name);
            bytes *= t->shape[k];
        }
        if (t->begin > t->end || t->end > f->data_size)
            return st_errf(f->err, sizeof f->err, "tensor \"%s\": data_offsets [%llu, %llu] outside the %llu data bytes",
                           t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                           (unsigned long long)f->data_size);
        if (t->end - t->begin != bytes)
            return st_errf(f->err, sizeof f->err, "tensor \"%s\": %s x shape is %llu bytes, data_offsets give %llu",
                           t->name, t->dtype, (unsigned long long)bytes, (unsigned long long)(t->end - t->begin));
    }
    order = (const st_tensor **)malloc((size_t)(f->n_t ? f->n_t : 1) * sizeof *order);
    if (!order) return st_errf(f->err, sizeof f->err, "out of memory");
    for (i = 0; i < f->n_t; i++) order[i] = &f->t[i];
    qsort(order, (size_t)f->n_t, sizeof *order, st_cmp_begin);
    for (i = 0; i < f->n_t; i++) {
        if (order[i]->begin != at) {
            int r = st_errf(f->err, sizeof f->err, "tensor \"%s\" starts at byte %llu of the data, expected %llu (%s)",
                            order[i]->name, (unsigned long long)order[i]->begin, (unsigned long long)at,
                            order[i]->begin < at ? "overlapping tensors" : "a hole between tensors");
            free(order);
            return r;
        }
        at = order[i]->end;
    }
    free(order);
    if (at != f->data_size)
        return st_errf(f->err, sizeof f->err, "the tensors cover %llu of the %llu data bytes (trailing bytes)",
                       (unsigned long long)at, (unsigned long long)f->data_size);
    return 0;
}

/* Parse a whole safetensors file held in buf (size bytes). f keeps views into buf.
   Returns 0, or -1 with f->err saying what is wrong. */
ST_STATIC int st_parse(st_file *f, const unsigned char *buf, size_t size) {
    st_json j;
    uint64_t hn = 0;
    int i, seen_meta = 0;
    memset(f, 0, sizeof *f);
    if (size < 8) return st_errf(f->err, sizeof f->err, "truncated: %zu bytes, a safetensors file starts with an 8-byte header length", size);
    for (i = 7; i >= 0; i--) hn = (hn << 8) | buf[i];
    if (hn > size - 8)
        return st_errf(f->err, sizeof f->err, "header length %llu exceeds the %zu bytes after it (truncated, or not safetensors)",
                       (unsigned long long)hn, size - 8);
    if (hn > ST_MAX_HEADER) return st_errf(f->err, sizeof f->err, "header length %llu is above the 100 MB limit", (unsigned long long)hn);
    if (hn < 2 || buf[8] != '{') return st_errf(f->err, sizeof f->err, "the header is not a JSON object (it must start with '{')");
    f->data = buf + 8 + hn;
    f->data_size = (uint64_t)(size - 8 - hn);
    j.start = j.p = buf + 8;
    j.end = buf + 8 + hn;
    j.err = f->err;
    j.errlen = sizeof f->err;
    if (st_expect(&j, '{', "expected {") != 0) return -1;
    st_ws(&j);
    if (j.p < j.end && *j.p == '}') j.p++;
    else
        for (;;) {
            char name[ST_NAME_MAX];
            if (st_string(&j, name, sizeof name, "tensor name") != 0) return -1;
            if (st_expect(&j, ':', "expected : after a name") != 0) return -1;
            if (strcmp(name, "__metadata__") == 0) {
                if (seen_meta++) return st_jfail(&j, "__metadata__ given twice");
                if (st_metadata(&j, f) != 0) return -1;
            } else {
                st_tensor *t;
                if (f->n_t == ST_MAX_TENSORS) return st_jfail(&j, "more than 512 tensors");
                for (i = 0; i < f->n_t; i++)
                    if (strcmp(f->t[i].name, name) == 0)
                        return st_errf(f->err, sizeof f->err, "tensor \"%s\" is given twice", name);
                t = &f->t[f->n_t];
                memset(t, 0, sizeof *t);
                memcpy(t->name, name, sizeof name);
                if (st_tensor_entry(&j, t) != 0) return -1;
                f->n_t++;
            }
            st_ws(&j);
            if (j.p < j.end && *j.p == ',') { j.p++; continue; }
            if (st_expect(&j, '}', "expected , or } after an entry") != 0) return -1;
            break;
        }
    st_ws(&j);
    if (j.p != j.end) return st_jfail(&j, "bytes after the JSON object (only blanks may pad the header)");
    return st_check_layout(f);
}

ST_STATIC const char *st_meta_get(const st_file *f, const char *key) {
    int i;
    for (i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].val;
    return NULL;
}

ST_STATIC const st_tensor *st_find(const st_file *f, const char *name) {
    int i;
    for (i = 0; i < f->n_t; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

/* tensor t as floats (F32 only) into out (its element count) */
ST_STATIC void st_read_f32(const st_file *f, const st_tensor *t, float *out) {
    const unsigned char *p = f->data + t->begin;
    uint64_t i, n = (t->end - t->begin) / 4;
    for (i = 0; i < n; i++) {
        uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                     (uint32_t)p[4 * i + 3] << 24;
        memcpy(&out[i], &u, 4);
    }
}

/* ---- writing: header text and data in one memory block ------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;
} st_buf;

ST_STATIC void st_put(st_buf *b, const void *s, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        unsigned char *q;
        while (cap < b->n + n) {
            if (cap > ((size_t)-1) / 2) { b->oom = 1; return; }
            cap *= 2;
        }
        q = (unsigned char *)realloc(b->p, cap);
        if (!q) { b->oom = 1; return; }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
ST_STATIC void st_puts(st_buf *b, const char *s) { st_put(b, s, strlen(s)); }

/* a JSON string (quotes, backslashes and control characters escaped) */
ST_STATIC void st_put_jstr(st_buf *b, const char *s) {
    st_puts(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[8];
        if (c == '"' || c == '\\') { e[0] = '\\'; e[1] = (char)c; st_put(b, e, 2); }
        else if (c < 0x20) { snprintf(e, sizeof e, "\\u%04x", c); st_puts(b, e); }
        else st_put(b, s, 1);
    }
    st_puts(b, "\"");
}

/* one tensor to write: name, shape, values (F32) */
typedef struct {
    char name[ST_NAME_MAX];
    int rank;
    uint64_t shape[ST_MAX_RANK];
    const float *v;
    uint64_t n;
} st_out;

/* the whole file in memory: length, JSON (padded with blanks to a multiple of 8), data.
   meta: n_meta key/value pairs. Returns 0, -1 when out of memory. */
ST_STATIC int st_serialize(st_buf *b, const st_out *t, int n_t, const st_meta *meta, int n_meta) {
    st_buf h = {0};
    uint64_t off = 0, hn;
    unsigned char len[8];
    int i, k;
    char num[64];
    memset(b, 0, sizeof *b);
    st_puts(&h, "{");
    if (n_meta) {
        st_puts(&h, "\"__metadata__\":{");
        for (i = 0; i < n_meta; i++) {
            if (i) st_puts(&h, ",");
            st_put_jstr(&h, meta[i].key);
            st_puts(&h, ":");
            st_put_jstr(&h, meta[i].val);
        }
        st_puts(&h, "}");
    }
    for (i = 0; i < n_t; i++) {
        if (i || n_meta) st_puts(&h, ",");
        st_put_jstr(&h, t[i].name);
        st_puts(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (k = 0; k < t[i].rank; k++) {
            snprintf(num, sizeof num, "%s%llu", k ? "," : "", (unsigned long long)t[i].shape[k]);
            st_puts(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + 4 * t[i].n));
        st_puts(&h, num);
        off += 4 * t[i].n;
    }
    st_puts(&h, "}");
    while (h.n % 8) st_puts(&h, " ");
    hn = h.n;
    for (i = 0; i < 8; i++) len[i] = (unsigned char)(hn >> (8 * i));
    st_put(b, len, 8);
    if (h.p) st_put(b, h.p, h.n);
    free(h.p);
    for (i = 0; i < n_t; i++) {
        uint64_t e;
        for (e = 0; e < t[i].n; e++) {
            uint32_t u;
            unsigned char q[4];
            memcpy(&u, &t[i].v[e], 4);
            q[0] = (unsigned char)u; q[1] = (unsigned char)(u >> 8); q[2] = (unsigned char)(u >> 16);
            q[3] = (unsigned char)(u >> 24);
            st_put(b, q, 4);
        }
    }
    if (h.oom || b->oom) { free(b->p); memset(b, 0, sizeof *b); return -1; }
    return 0;
}

/* ---- the model <-> tensor names ----------------------------------------------------------- */

/* the weight and bias tensors of net (prefix "encoder" or "decoder"), appended to t[*n] */
ST_STATIC void st_net_tensors(const heph_net *net, const float *params, const char *prefix, st_out *t, int *n) {
    int l;
    for (l = 0; l < net->n_layers; l++) {
        const heph_layer *L = &net->layers[l];
        st_out *w, *b;
        if (!L->n_params) continue;
        if (L->kind == HEPH_BN) { /* nn.BatchNorm: weight, bias, running_mean, running_var, [C] each */
            static const char *const names[4] = {"weight", "bias", "running_mean", "running_var"};
            int j;
            for (j = 0; j < 4; j++) {
                w = &t[(*n)++];
                memset(w, 0, sizeof *w);
                snprintf(w->name, sizeof w->name, "%s.%d.%s", prefix, l, names[j]);
                w->rank = 1;
                w->shape[0] = (uint64_t)L->in_c;
                w->v = params + L->w_off + (size_t)j * (size_t)L->in_c;
                w->n = (uint64_t)L->in_c;
            }
            continue;
        }
        w = &t[(*n)++];
        b = &t[(*n)++];
        memset(w, 0, sizeof *w);
        memset(b, 0, sizeof *b);
        snprintf(w->name, sizeof w->name, "%s.%d.weight", prefix, l);
        snprintf(b->name, sizeof b->name, "%s.%d.bias", prefix, l);
        if (L->kind == HEPH_DENSE) { /* [out][in] */
            w->rank = 2;
            w->shape[0] = (uint64_t)L->out_c;
            w->shape[1] = (uint64_t)L->in_c * (uint64_t)L->in_h * (uint64_t)L->in_w;
        } else { /* conv [out][in][k][k]; transposed conv [in][out][k][k] */
            w->rank = 4;
            w->shape[0] = (uint64_t)(L->kind == HEPH_CONV ? L->out_c : L->in_c);
            w->shape[1] = (uint64_t)(L->kind == HEPH_CONV ? L->in_c : L->out_c);
            w->shape[2] = w->shape[3] = (uint64_t)L->k;
        }
        w->v = params + L->w_off;
        w->n = (uint64_t)(L->b_off - L->w_off);
        b->rank = 1;
        b->shape[0] = (uint64_t)L->out_c;
        b->v = params + L->b_off;
        b->n = (uint64_t)L->out_c;
    }
}

ST_STATIC const char *st_obj_name(int k) { return k == HEPH_OBJ_CAPACITY ? "capacity" : k == HEPH_OBJ_TCVAE ? "tcvae" : "beta"; }

ST_STATIC void st_meta_add(st_meta *m, int *n, const char *key, const char *fmt, ...) {
    va_list ap;
    snprintf(m[*n].key, sizeof m[*n].key, "%s", key);
    va_start(ap, fmt);
    vsnprintf(m[*n].val, sizeof m[*n].val, fmt, ap);
    va_end(ap);
    (*n)++;
}

/* metadata describing m (floats with 9 significant digits: they read back to the same bits) */
ST_STATIC int st_model_meta(const heph_vae *m, st_meta *meta) {
    const heph_vae_config *c = &m->cfg;
    int n = 0;
    st_meta_add(meta, &n, "format", "hephaestus-vae/1");
    st_meta_add(meta, &n, "hephaestus_version", "%s", HEPH_VERSION_STRING);
    st_meta_add(meta, &n, "input_shape", "%d,%d,%d", c->in_c, c->in_h, c->in_w);
    st_meta_add(meta, &n, "z_dim", "%d", c->z_dim);
    st_meta_add(meta, &n, "encoder_spec", "%s", c->enc_spec);
    st_meta_add(meta, &n, "decoder_spec", "%s", c->dec_spec);
    st_meta_add(meta, &n, "encoder_output", "mu = out[:, :%d], logvar = out[:, %d:]", c->z_dim, c->z_dim);
    st_meta_add(meta, &n, "recon", "%s", c->obj.recon == HEPH_RECON_GAUSSIAN ? "gaussian" : "bernoulli");
    st_meta_add(meta, &n, "objective", "%s", st_obj_name(c->obj.kind));
    st_meta_add(meta, &n, "beta", "%.9g", (double)c->obj.beta);
    st_meta_add(meta, &n, "gamma", "%.9g", (double)c->obj.gamma);
    st_meta_add(meta, &n, "gamma_end", "%.9g", (double)c->obj.gamma_end);
    st_meta_add(meta, &n, "c_max", "%.9g", (double)c->obj.c_max);
    st_meta_add(meta, &n, "ramp_steps", "%llu", (unsigned long long)c->obj.ramp_steps);
    st_meta_add(meta, &n, "alpha", "%.9g", (double)c->obj.alpha);
    st_meta_add(meta, &n, "estimator", "%s", c->obj.estimator == HEPH_TC_MWS ? "mws" : "mss");
    st_meta_add(meta, &n, "dataset_size", "%llu", (unsigned long long)c->obj.dataset_size);
    st_meta_add(meta, &n, "lr", "%.9g", (double)c->lr);
    st_meta_add(meta, &n, "adam_beta1", "%.9g", (double)c->beta1);
    st_meta_add(meta, &n, "adam_beta2", "%.9g", (double)c->beta2);
    st_meta_add(meta, &n, "adam_eps", "%.9g", (double)c->eps);
    st_meta_add(meta, &n, "max_batch", "%d", c->max_batch);
    st_meta_add(meta, &n, "step", "%llu", (unsigned long long)m->step);
    return n;
}

/* the whole model as a safetensors file in memory */
ST_STATIC int st_from_vae(const heph_vae *m, st_buf *b) {
    static st_out t[2 * 4 * HEPH_MAX_LAYERS]; /* up to 4 tensors a layer (BatchNorm) */
    static st_meta meta[ST_MAX_META];
    int n = 0, nm = st_model_meta(m, meta);
    st_net_tensors(&m->enc, m->enc.params, "encoder", t, &n);
    st_net_tensors(&m->dec, m->dec.params, "decoder", t, &n);
    return st_serialize(b, t, n, meta, nm);
}

/* metadata value key as a number in [lo, hi]; absent: keep *v */
ST_STATIC int st_meta_num(const st_file *f, const char *key, double lo, double hi, double *v, char *err, size_t errlen) {
    const char *s = st_meta_get(f, key);
    char *e;
    double x;
    if (!s) return 0;
    x = strtod(s, &e);
    if (*s == '\0' || *e != '\0' || !(x >= lo && x <= hi))
        return st_errf(err, errlen, "metadata \"%s\" = \"%.40s\" is not a number in %g..%g", key, s, lo, hi);
    *v = x;
    return 0;
}

/* the configuration the metadata describes (defaults for the optional keys) */
ST_STATIC int st_config(const st_file *f, heph_vae_config *cfg, char *err, size_t errlen) {
    static const char *need[4] = {"input_shape", "z_dim", "encoder_spec", "decoder_spec"};
    const char *s;
    double v;
    int i, c, h, w, used;
    heph_vae_config_default(cfg);
    for (i = 0; i < 4; i++)
        if (!st_meta_get(f, need[i]))
            return st_errf(err, errlen, "no metadata \"%s\" (not written by hephaestus export or "
                           "hephaestus_torch.py): give --preset NAME", need[i]);
    s = st_meta_get(f, "format");
    if (s && strcmp(s, "hephaestus-vae/1") != 0)
        return st_errf(err, errlen, "metadata format \"%.60s\", this version reads \"hephaestus-vae/1\"", s);
    s = st_meta_get(f, "input_shape");
    if (sscanf(s, "%d,%d,%d%n", &c, &h, &w, &used) != 3 || s[used] != '\0' || c < 1 || h < 1 || w < 1 ||
        c > 4096 || h > 65536 || w > 65536)
        return st_errf(err, errlen, "metadata input_shape \"%.40s\" is not C,H,W", s);
    cfg->in_c = c; cfg->in_h = h; cfg->in_w = w;
    v = 0;
    if (st_meta_num(f, "z_dim", 1, 4096, &v, err, errlen) != 0) return -1;
    if (v != (int)v) return st_errf(err, errlen, "metadata z_dim is not an integer");
    cfg->z_dim = (int)v;
    s = st_meta_get(f, "encoder_spec");
    if (strlen(s) >= HEPH_SPEC_MAX) return st_errf(err, errlen, "metadata encoder_spec is longer than %d bytes", HEPH_SPEC_MAX - 1);
    strcpy(cfg->enc_spec, s);
    s = st_meta_get(f, "decoder_spec");
    if (strlen(s) >= HEPH_SPEC_MAX) return st_errf(err, errlen, "metadata decoder_spec is longer than %d bytes", HEPH_SPEC_MAX - 1);
    strcpy(cfg->dec_spec, s);
    if ((s = st_meta_get(f, "recon")) != NULL) {
        if (strcmp(s, "bernoulli") && strcmp(s, "gaussian")) return st_errf(err, errlen, "metadata recon \"%.40s\": bernoulli or gaussian", s);
        cfg->obj.recon = strcmp(s, "gaussian") == 0 ? HEPH_RECON_GAUSSIAN : HEPH_RECON_BERNOULLI;
    }
    if ((s = st_meta_get(f, "objective")) != NULL) {
        if (strcmp(s, "beta") && strcmp(s, "capacity") && strcmp(s, "tcvae"))
            return st_errf(err, errlen, "metadata objective \"%.40s\": beta, capacity or tcvae", s);
        cfg->obj.kind = !strcmp(s, "capacity") ? HEPH_OBJ_CAPACITY : !strcmp(s, "tcvae") ? HEPH_OBJ_TCVAE : HEPH_OBJ_BETA;
    }
    if ((s = st_meta_get(f, "estimator")) != NULL) {
        if (strcmp(s, "mws") && strcmp(s, "mss")) return st_errf(err, errlen, "metadata estimator \"%.40s\": mws or mss", s);
        cfg->obj.estimator = strcmp(s, "mws") == 0 ? HEPH_TC_MWS : HEPH_TC_MSS;
    }
#define ST_F(key, field, lo, hi) do { v = (double)(field); if (st_meta_num(f, key, lo, hi, &v, err, errlen) != 0) return -1; field = (float)v; } while (0)
    ST_F("beta", cfg->obj.beta, -1e30, 1e30);
    ST_F("gamma", cfg->obj.gamma, -1e30, 1e30);
    ST_F("gamma_end", cfg->obj.gamma_end, -1e30, 1e30);
    ST_F("c_max", cfg->obj.c_max, -1e30, 1e30);
    ST_F("alpha", cfg->obj.alpha, -1e30, 1e30);
    ST_F("lr", cfg->lr, 0, 1e30);
    ST_F("adam_beta1", cfg->beta1, 0, 1);
    ST_F("adam_beta2", cfg->beta2, 0, 1);
    ST_F("adam_eps", cfg->eps, 0, 1e30);
#undef ST_F
    v = (double)cfg->obj.ramp_steps;
    if (st_meta_num(f, "ramp_steps", 0, 9007199254740992.0, &v, err, errlen) != 0) return -1;
    cfg->obj.ramp_steps = (uint64_t)v;
    v = (double)cfg->obj.dataset_size;
    if (st_meta_num(f, "dataset_size", 0, 9007199254740992.0, &v, err, errlen) != 0) return -1;
    cfg->obj.dataset_size = (uint64_t)v;
    v = cfg->max_batch;
    if (st_meta_num(f, "max_batch", 1, 65536, &v, err, errlen) != 0) return -1;
    cfg->max_batch = (int)v;
    return 0;
}

/* Build m (uninitialised) from cfg and fill its parameters from f: every tensor the layout
   names must be there, F32, with the right shape; no other tensor may be. 0 or -1 + err. */
ST_STATIC int st_to_vae(const st_file *f, const heph_vae_config *cfg, heph_vae *m, char *err, size_t errlen) {
    static st_out want[2 * 4 * HEPH_MAX_LAYERS];
    int n = 0, i, k;
    uint64_t e;
    if (heph_vae_init(m, cfg, 0) != HEPH_OK) {
        st_errf(err, errlen, "the model the metadata describes cannot be built: %s", m->err);
        return -1;
    }
    st_net_tensors(&m->enc, m->enc.params, "encoder", want, &n);
    st_net_tensors(&m->dec, m->dec.params, "decoder", want, &n);
    for (i = 0; i < n; i++) {
        const st_tensor *t = st_find(f, want[i].name);
        char ws[96] = "", fs[96] = "";
        int same = t && t->rank == want[i].rank;
        for (k = 0; same && k < t->rank; k++) same = t->shape[k] == want[i].shape[k];
        if (!t) { st_errf(err, errlen, "no tensor \"%s\" (the model has %d tensors)", want[i].name, n); goto fail; }
        if (strcmp(t->dtype, "F32") != 0) {
            st_errf(err, errlen, "tensor \"%s\" is %s; import reads F32 (in PyTorch: model.float())", t->name, t->dtype);
            goto fail;
        }
        if (!same) {
            for (k = 0; k < want[i].rank; k++)
                snprintf(ws + strlen(ws), sizeof ws - strlen(ws), "%s%llu", k ? "," : "", (unsigned long long)want[i].shape[k]);
            for (k = 0; k < t->rank && k < ST_MAX_RANK; k++)
                snprintf(fs + strlen(fs), sizeof fs - strlen(fs), "%s%llu", k ? "," : "", (unsigned long long)t->shape[k]);
            st_errf(err, errlen, "tensor \"%s\" has shape [%s], the model needs [%s]", t->name, fs, ws);
            goto fail;
        }
        st_read_f32(f, t, m->params + (want[i].v - m->params));
        /* the checkpoint loader refuses a NaN or Inf weight (issue #20 class 2): so does import,
           instead of writing a checkpoint that no subcommand can load */
        for (e = 0; e < (t->end - t->begin) / 4; e++) {
            float v = want[i].v[e];
            if (!isfinite(v)) {
                st_errf(err, errlen, "tensor \"%s\": element %llu is %s; a model's weights must be finite", t->name, (unsigned long long)e,
                        isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
                goto fail;
            }
        }
    }
    if (f->n_t != n) {
        for (i = 0; i < f->n_t; i++) {
            int used = 0;
            for (k = 0; k < n && !used; k++) used = strcmp(f->t[i].name, want[k].name) == 0;
            if (!used) { st_errf(err, errlen, "tensor \"%s\" is not part of the model the metadata describes", f->t[i].name); goto fail; }
        }
    }
    return 0;
fail:
    heph_vae_free(m);
    return -1;
}

/* read a whole file (at most ST_MAX_FILE bytes) into memory; NULL + err */
ST_STATIC unsigned char *st_slurp(const char *path, size_t *size, char *err, size_t errlen) {
    FILE *fp = fopen(path, "rb");
    unsigned char *buf;
    long n;
    if (!fp) { st_errf(err, errlen, "%s: cannot open for reading", path); return NULL; }
    if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        st_errf(err, errlen, "%s: cannot find the file size", path);
        return NULL;
    }
    if ((uint64_t)n > ST_MAX_FILE) { fclose(fp); st_errf(err, errlen, "%s: %ld bytes is above the 64 GB limit", path, n); return NULL; }
    buf = (unsigned char *)malloc((size_t)n + 1);
    if (!buf) { fclose(fp); st_errf(err, errlen, "%s: out of memory (%ld bytes)", path, n); return NULL; }
    if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        fclose(fp); free(buf);
        st_errf(err, errlen, "%s: read failed", path);
        return NULL;
    }
    fclose(fp);
    *size = (size_t)n;
    return buf;
}

#ifndef HEPH_ST_CODEC_ONLY
/* ---- the CLI: atomic files, export and import ------------------------------------------------ */
#include <sys/stat.h>
#include <unistd.h>
#include "cli_common.h"

/* write n bytes to path atomically, as every output of the CLI (cli_io.h: PATH.PID.N.tmp,
   checked writes, fsync, rename, folder fsync). Exits with a message on error. */
static void cli_write_atomic(const char *path, const void *p, size_t n) {
    char err[1300];
    if (cli_save_bytes(path, p, n, err, sizeof err) != 0) cli_fail("%s", err);
}

/* a .hpm checkpoint through the library's writer, whose hooks give it the CLI's temporary
   name (HEPH_TMP_PATH), fsync and folder sync */
static void cli_save_hpm_atomic(heph_vae *m, const char *path, int flags) {
    if (heph_vae_save(m, path, flags) != HEPH_OK) cli_fail("%s", m->err);
}

static void export_safetensors(heph_vae *m, const char *out) {
    st_buf b;
    if (st_from_vae(m, &b) != 0) cli_fail("%s: out of memory", out);
    cli_write_atomic(out, b.p, b.n);
    printf("wrote %s: %zu parameters as F32 tensors encoder.L.weight/bias, decoder.L.weight/bias (safetensors, %zu bytes)\n",
           out, m->n_params, b.n);
    free(b.p);
}

static const char *const import_help =
    "usage: hephaestus import [--preset NAME] IN.safetensors OUT.hpm\n"
    "       hephaestus import --model IN.safetensors --out OUT.hpm [--preset NAME]\n"
    "Reads a safetensors file (F32 tensors named as `hephaestus export --format safetensors`\n"
    "writes them: encoder.L.weight, encoder.L.bias, decoder.L.weight, ... for layer L of the\n"
    "spec; the layout is in tools/cli_export.h and the README) and writes a weights-only .hpm\n"
    "checkpoint, atomically. The architecture comes from the file's __metadata__ (input_shape,\n"
    "z_dim, encoder_spec, decoder_spec; tools/hephaestus_torch.py writes them), or from\n"
    "--preset for a file without it. Every tensor of the model must be present with its shape,\n"
    "and no other.\n"
    "  --model FILE        the safetensors file to read (or the first argument)\n"
    "  --out FILE          the checkpoint to write (or the second argument)\n"
    "  --preset NAME       the architecture, when the file has no metadata\n"
    "  -h, --help          this help\n";

static int cmd_import(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *preset = NULL;
    int i;
    st_file *f;
    unsigned char *buf;
    size_t size = 0;
    char err[300];
    heph_vae_config cfg;
    heph_vae m;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h") || cli_is(a, "--help")) { fputs(import_help, stdout); exit(0); }
        else if (cli_is(a, "--model")) in = cli_val(argc, argv, &i);
        else if (cli_is(a, "--out")) out = cli_val(argc, argv, &i);
        else if (cli_is(a, "--preset")) preset = cli_val(argc, argv, &i);
        else if (a[0] != '-' && !in) in = a;
        else if (a[0] != '-' && !out) out = a;
        else cli_unknown(a);
    }
    cli_require(in, "IN.safetensors (or --model)");
    cli_require(out, "OUT.hpm (or --out)");
    f = (st_file *)cli_alloc(1, sizeof *f);
    buf = st_slurp(in, &size, err, sizeof err);
    if (!buf) cli_fail("%s", err);
    if (st_parse(f, buf, size) != 0) cli_fail("%s: not a valid safetensors file: %s", in, f->err);
    if (preset) {
        if (heph_vae_config_preset(&cfg, preset) != HEPH_OK) cli_usage("unknown --preset \"%s\"", preset);
    } else if (st_config(f, &cfg, err, sizeof err) != 0) {
        cli_fail("%s: %s", in, err);
    }
    if (st_to_vae(f, &cfg, &m, err, sizeof err) != 0) cli_fail("%s: %s", in, err);
    {
        double step = 0;
        if (st_meta_num(f, "step", 0, 9007199254740992.0, &step, err, sizeof err) != 0) cli_fail("%s: %s", in, err);
        m.step = (uint64_t)step;
    }
    cli_save_hpm_atomic(&m, out, HEPH_SAVE_WEIGHTS_ONLY);
    printf("wrote %s: %zu parameters from %d tensors of %s, weights only\n", out, m.n_params, f->n_t, in);
    heph_vae_free(&m);
    free(buf);
    free(f);
    return 0;
}
#endif /* HEPH_ST_CODEC_ONLY */

#endif
