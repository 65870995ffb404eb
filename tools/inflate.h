/* inflate.h - a small raw-DEFLATE (RFC 1951) decoder for the converters.
   Why not stb_image's zlib decoder: Debian's stb (2.27) rejects the real Fashion-MNIST label
   files with "bad huffman code" (their dynamic blocks use a single distance code, which RFC 1951
   allows: "If only one distance code is used, it is encoded using one bit"), while zlib accepts
   them. This decoder follows the RFC, checks every bound, and grows its output as needed.

   int heph_inflate(const unsigned char *in, size_t in_len, unsigned char **out, size_t *out_len,
                    size_t *used, size_t max_out, char *err, size_t errlen);
   returns 0 and a malloc'd *out, or -1 with a message; *used = input bytes consumed.
   heph_inflate_probe(..., max_out, probe, probe_fn, ctx, err, errlen) also asks probe_fn, once
   the first `probe` bytes are out, how large the data says it is, and never inflates more (a
   gzip'd IDX file is bounded by its 16-byte header, not by what its stream would expand to). */
#ifndef HEPH_TOOLS_INFLATE_H
#define HEPH_TOOLS_INFLATE_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const unsigned char *in;
    size_t in_len, pos;      /* byte position of the next unread byte */
    unsigned bitbuf, bitcnt; /* bits not yet consumed, LSB first */
    unsigned char *out;
    size_t out_len, out_cap, max_out;
    const char *error;
    /* optional: once probe bytes are out, probe_fn(out, probe, ctx) returns the size the data
       says it has (its header), which becomes the limit; 0 refuses the data */
    size_t probe;
    size_t (*probe_fn)(const unsigned char *out, size_t n, void *ctx);
    void *probe_ctx;
} heph_infl;

/* a canonical Huffman code: count[len] codes of each length, symbols sorted by code */
typedef struct {
    short count[16];
    short symbol[320];
} heph_huff;

static int heph_infl_bits(heph_infl *s, unsigned need, unsigned *v) {
    while (s->bitcnt < need) {
        if (s->pos >= s->in_len) { s->error = "truncated deflate stream"; return -1; }
        s->bitbuf |= (unsigned)s->in[s->pos++] << s->bitcnt;
        s->bitcnt += 8;
    }
    *v = s->bitbuf & ((1u << need) - 1u);
    s->bitbuf >>= need;
    s->bitcnt -= need;
    return 0;
}

static int heph_infl_put(heph_infl *s, unsigned char c) {
    if (s->probe_fn && !s->probe && s->out_len >= s->max_out) { /* the header's size is reached */
        s->error = "inflated data exceeds the size its header gives";
        return -1;
    }
    if (s->out_len == s->out_cap) {
        size_t cap = s->out_cap ? s->out_cap * 2 : 65536;
        unsigned char *p;
        if (cap > s->max_out) cap = s->max_out;
        if (cap <= s->out_len) { s->error = "inflated data exceeds the size limit"; return -1; }
        p = (unsigned char *)realloc(s->out, cap);
        if (!p) { s->error = "out of memory"; return -1; }
        s->out = p;
        s->out_cap = cap;
    }
    s->out[s->out_len++] = c;
    if (s->probe && s->out_len == s->probe) {
        size_t want = s->probe_fn(s->out, s->out_len, s->probe_ctx);
        s->probe = 0;
        if (want == 0) { s->error = "the data's header is invalid"; return -1; }
        if (want < s->max_out) s->max_out = want;
    }
    return 0;
}

/* build a code from lengths; returns 0 if complete or incomplete (both allowed for the
   single-code cases of RFC 1951), -1 if over-subscribed */
static int heph_huff_build(heph_huff *h, const unsigned char *len, int n) {
    short offs[16];
    int sym, l, left = 1;
    memset(h->count, 0, sizeof h->count);
    for (sym = 0; sym < n; sym++) h->count[len[sym]]++;
    if (h->count[0] == n) return 0;
    for (l = 1; l < 16; l++) { /* codes left after each length must stay >= 0 */
        left <<= 1;
        left -= h->count[l];
        if (left < 0) return -1;
    }
    offs[1] = 0;
    for (l = 1; l < 15; l++) offs[l + 1] = (short)(offs[l] + h->count[l]);
    for (sym = 0; sym < n; sym++)
        if (len[sym]) h->symbol[offs[len[sym]]++] = (short)sym;
    return 0;
}

/* decode one symbol, reading the code MSB-first one bit at a time */
static int heph_huff_decode(heph_infl *s, const heph_huff *h) {
    int code = 0, first = 0, index = 0, l;
    unsigned b;
    for (l = 1; l < 16; l++) {
        if (heph_infl_bits(s, 1, &b)) return -1;
        code |= (int)b;
        if (code - h->count[l] < first) return h->symbol[index + (code - first)];
        index += h->count[l];
        first += h->count[l];
        first <<= 1;
        code <<= 1;
    }
    s->error = "invalid Huffman code";
    return -1;
}

static const short heph_len_base[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                                        35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const short heph_len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
                                         3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const unsigned short heph_dist_base[30] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129,
                                                  193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
                                                  4097, 6145, 8193, 12289, 16385, 24577};
static const short heph_dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                          6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

/* literal/length and distance symbols until end-of-block (256) */
static int heph_infl_codes(heph_infl *s, const heph_huff *lit, const heph_huff *dist) {
    for (;;) {
        int sym = heph_huff_decode(s, lit);
        unsigned extra, len, d;
        if (sym < 0) return -1;
        if (sym < 256) {
            if (heph_infl_put(s, (unsigned char)sym)) return -1;
        } else if (sym == 256) {
            return 0;
        } else {
            sym -= 257;
            if (sym >= 29) { s->error = "invalid length code"; return -1; }
            if (heph_infl_bits(s, (unsigned)heph_len_extra[sym], &extra)) return -1;
            len = (unsigned)heph_len_base[sym] + extra;
            sym = heph_huff_decode(s, dist);
            if (sym < 0) return -1;
            if (sym >= 30) { s->error = "invalid distance code"; return -1; }
            if (heph_infl_bits(s, (unsigned)heph_dist_extra[sym], &extra)) return -1;
            d = heph_dist_base[sym] + extra;
            if (d > s->out_len) { s->error = "distance reaches before the start"; return -1; }
            while (len--) /* copy from d bytes back (may overlap) */
                if (heph_infl_put(s, s->out[s->out_len - d])) return -1;
        }
    }
}

static int heph_infl_fixed(heph_infl *s) {
    unsigned char len[320];
    heph_huff lit, dist;
    int i;
    for (i = 0; i < 144; i++) len[i] = 8;
    for (; i < 256; i++) len[i] = 9;
    for (; i < 280; i++) len[i] = 7;
    for (; i < 288; i++) len[i] = 8;
    heph_huff_build(&lit, len, 288);
    for (i = 0; i < 30; i++) len[i] = 5;
    heph_huff_build(&dist, len, 30);
    return heph_infl_codes(s, &lit, &dist);
}

static int heph_infl_dynamic(heph_infl *s) {
    static const unsigned char order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    unsigned char len[320];
    unsigned nlen, ndist, ncode, v, i = 0;
    heph_huff lencode, lit, dist;
    if (heph_infl_bits(s, 5, &nlen) || heph_infl_bits(s, 5, &ndist) || heph_infl_bits(s, 4, &ncode)) return -1;
    nlen += 257; ndist += 1; ncode += 4;
    if (nlen > 286 || ndist > 30) { s->error = "bad dynamic block counts"; return -1; }
    memset(len, 0, sizeof len);
    for (i = 0; i < ncode; i++) {
        if (heph_infl_bits(s, 3, &v)) return -1;
        len[order[i]] = (unsigned char)v;
    }
    if (heph_huff_build(&lencode, len, 19)) { s->error = "bad code-length code"; return -1; }
    memset(len, 0, sizeof len);
    i = 0;
    while (i < nlen + ndist) {
        int sym = heph_huff_decode(s, &lencode);
        unsigned rep, val = 0;
        if (sym < 0) return -1;
        if (sym < 16) { len[i++] = (unsigned char)sym; continue; }
        if (sym == 16) {
            if (i == 0) { s->error = "repeat with no previous length"; return -1; }
            val = len[i - 1];
            if (heph_infl_bits(s, 2, &rep)) return -1;
            rep += 3;
        } else if (sym == 17) {
            if (heph_infl_bits(s, 3, &rep)) return -1;
            rep += 3;
        } else {
            if (heph_infl_bits(s, 7, &rep)) return -1;
            rep += 11;
        }
        if (i + rep > nlen + ndist) { s->error = "too many code lengths"; return -1; }
        while (rep--) len[i++] = (unsigned char)val;
    }
    if (len[256] == 0) { s->error = "no end-of-block code"; return -1; }
    if (heph_huff_build(&lit, len, (int)nlen) || heph_huff_build(&dist, len + nlen, (int)ndist)) {
        s->error = "over-subscribed Huffman code";
        return -1;
    }
    return heph_infl_codes(s, &lit, &dist);
}

static int heph_infl_stored(heph_infl *s) {
    unsigned n, nc;
    s->bitbuf = 0; s->bitcnt = 0; /* skip to a byte boundary */
    if (s->pos + 4 > s->in_len) { s->error = "truncated stored block"; return -1; }
    n = s->in[s->pos] | ((unsigned)s->in[s->pos + 1] << 8);
    nc = s->in[s->pos + 2] | ((unsigned)s->in[s->pos + 3] << 8);
    s->pos += 4;
    if (n != (~nc & 0xffffu)) { s->error = "stored block length check failed"; return -1; }
    if (s->pos + n > s->in_len) { s->error = "truncated stored block"; return -1; }
    while (n--) if (heph_infl_put(s, s->in[s->pos++])) return -1;
    return 0;
}

/* heph_inflate with a header probe (see heph_infl): the output never grows past what the first
   probe bytes say; probe 0 is plain heph_inflate */
static int heph_inflate_probe(const unsigned char *in, size_t in_len, unsigned char **out, size_t *out_len,
                              size_t *used, size_t max_out, size_t probe,
                              size_t (*probe_fn)(const unsigned char *, size_t, void *), void *ctx,
                              char *err, size_t errlen) {
    heph_infl s;
    unsigned last = 0, type;
    int rc = 0;
    memset(&s, 0, sizeof s);
    s.in = in; s.in_len = in_len; s.max_out = max_out;
    s.probe = probe; s.probe_fn = probe_fn; s.probe_ctx = ctx;
    while (!last && rc == 0) {
        if (heph_infl_bits(&s, 1, &last) || heph_infl_bits(&s, 2, &type)) { rc = -1; break; }
        if (type == 0) rc = heph_infl_stored(&s);
        else if (type == 1) rc = heph_infl_fixed(&s);
        else if (type == 2) rc = heph_infl_dynamic(&s);
        else { s.error = "invalid block type 3"; rc = -1; }
    }
    if (rc) {
        snprintf(err, errlen, "%s", s.error ? s.error : "corrupt deflate stream");
        free(s.out);
        return -1;
    }
    *out = s.out ? s.out : (unsigned char *)malloc(1);
    *out_len = s.out_len;
    *used = s.pos; /* unused bits of the last byte are padding */
    return 0;
}

#define heph_inflate(in, in_len, out, out_len, used, max_out, err, errlen) \
    heph_inflate_probe((in), (in_len), (out), (out_len), (used), (max_out), 0, NULL, NULL, (err), (errlen))
#endif
