/* inflate_stream.h - a streaming raw-DEFLATE (RFC 1951) decoder for the converters
   (dsprites2hpd's .npz members, idx2hpd's gzip files).

   It reads its input through a callback and hands its output to another callback in pieces of
   up to 1 MiB, keeping only the 32 KiB window in memory, so a 3 GB member of a ZIP file
   (dSprites' imgs.npy) never needs to be held. Codes of up to HEPH_SINFL_FAST bits are decoded by one table look-up, longer ones
   bit by bit; every bound is checked. Also: CRC-32 (slicing by 8) for ZIP and gzip checks.

   typedef int (*heph_sinfl_read)(void *ctx, unsigned char *buf, size_t cap, size_t *got);
       fill buf with up to cap bytes, *got = 0 at the end of the input; return 0, or -1 on a
       read error (then the decoder stops with "read error").
   typedef int (*heph_sinfl_write)(void *ctx, const unsigned char *p, size_t n);
       take n bytes of output; return 0 to go on, nonzero to stop (the decoder returns -2).
   int heph_sinfl_run(heph_sinfl_read rd, void *rctx, heph_sinfl_write wr, void *wctx,
                      uint64_t *in_used, uint64_t *out_total, char *err, size_t errlen);
       0 at the end of the last block (*in_used = input bytes the stream took, the last one
       counted whole), -1 with a message in err on a corrupt or truncated stream, -2 when the
       writer stopped it.
   uint32_t heph_crc32(uint32_t crc, const unsigned char *p, size_t n);
       CRC-32 (IEEE, as ZIP and gzip store it); start with crc = 0.                          */
#ifndef HEPH_TOOLS_INFLATE_STREAM_H
#define HEPH_TOOLS_INFLATE_STREAM_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

typedef int (*heph_sinfl_read)(void *ctx, unsigned char *buf, size_t cap, size_t *got);
typedef int (*heph_sinfl_write)(void *ctx, const unsigned char *p, size_t n);

#define HEPH_SINFL_FAST 10              /* bits resolved by one table look-up            */
#define HEPH_SINFL_INBUF (1u << 16)     /* input read per callback                       */
#define HEPH_SINFL_WINDOW 32768u        /* farthest back-reference (RFC 1951)           */
#define HEPH_SINFL_OUTBUF (1u << 20)    /* output handed over per callback, plus window  */

/* canonical Huffman code: count[len] codes of each length, symbols in code order, and a
   table for codes up to FAST bits: entry = len << 9 | symbol, 0 = longer code (slow path) */
typedef struct {
    short count[16];
    short symbol[320];
    uint16_t fast[1u << HEPH_SINFL_FAST];
} heph_sinfl_huff;

typedef struct {
    heph_sinfl_read rd;
    void *rctx;
    heph_sinfl_write wr;
    void *wctx;
    unsigned char *in;        /* HEPH_SINFL_INBUF bytes                                  */
    size_t in_pos, in_len;
    int in_eof;
    uint64_t in_loaded;       /* bytes moved into the bit buffer                          */
    uint64_t bits;            /* unread bits, LSB first                                   */
    unsigned nbits;
    unsigned char *out;       /* window + output not yet handed over                      */
    size_t pos, handed;       /* write position; bytes before `handed` went to the writer */
    uint64_t total;           /* bytes produced                                           */
    const char *error;
    int stopped;
    heph_sinfl_huff lit, dist, lens;
} heph_sinfl;

/* ---- CRC-32 ---- */
static uint32_t heph_crc_table[8][256];
static int heph_crc_ready = 0;

static uint32_t heph_crc32(uint32_t crc, const unsigned char *p, size_t n) {
    uint32_t c;
    if (!heph_crc_ready) {
        uint32_t i, k;
        for (i = 0; i < 256; i++) {
            c = i;
            for (k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
            heph_crc_table[0][i] = c;
        }
        for (i = 0; i < 256; i++)
            for (k = 1; k < 8; k++)
                heph_crc_table[k][i] = (heph_crc_table[k - 1][i] >> 8) ^ heph_crc_table[0][heph_crc_table[k - 1][i] & 0xffu];
        heph_crc_ready = 1;
    }
    c = ~crc;
    while (n >= 8) { /* eight bytes per step, one table per byte position */
        uint32_t lo = c ^ ((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24));
        uint32_t hi = (uint32_t)p[4] | ((uint32_t)p[5] << 8) | ((uint32_t)p[6] << 16) | ((uint32_t)p[7] << 24);
        c = heph_crc_table[7][lo & 0xffu] ^ heph_crc_table[6][(lo >> 8) & 0xffu] ^
            heph_crc_table[5][(lo >> 16) & 0xffu] ^ heph_crc_table[4][lo >> 24] ^
            heph_crc_table[3][hi & 0xffu] ^ heph_crc_table[2][(hi >> 8) & 0xffu] ^
            heph_crc_table[1][(hi >> 16) & 0xffu] ^ heph_crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = (c >> 8) ^ heph_crc_table[0][(c ^ *p++) & 0xffu];
    return ~c;
}

/* ---- bits ---- */

/* top the bit buffer up to at least 57 bits, or to what the input still has */
static void heph_sinfl_refill(heph_sinfl *s) {
    while (s->nbits <= 56) {
        if (s->in_pos == s->in_len) {
            size_t got = 0;
            if (s->in_eof) return;
            if (s->rd(s->rctx, s->in, HEPH_SINFL_INBUF, &got) != 0) {
                s->error = "read error";
                s->in_eof = 1;
                return;
            }
            s->in_pos = 0;
            s->in_len = got;
            if (got == 0) { s->in_eof = 1; return; }
        }
        s->bits |= (uint64_t)s->in[s->in_pos++] << s->nbits;
        s->nbits += 8;
        s->in_loaded++;
    }
}

static int heph_sinfl_get(heph_sinfl *s, unsigned need, unsigned *v) {
    if (s->nbits < need) {
        heph_sinfl_refill(s);
        if (s->nbits < need) {
            if (!s->error) s->error = "truncated deflate stream";
            return -1;
        }
    }
    *v = (unsigned)(s->bits & ((1u << need) - 1u));
    s->bits >>= need;
    s->nbits -= need;
    return 0;
}

/* ---- Huffman codes ---- */

/* from code lengths; -1 if over-subscribed (incomplete codes are allowed: RFC 1951 uses a
   one-code distance tree; an unassigned code then fails when it is met) */
static int heph_sinfl_build(heph_sinfl_huff *h, const unsigned char *len, int n) {
    short offs[16];
    unsigned next[16], code = 0;
    int sym, l, left = 1;
    memset(h->count, 0, sizeof h->count);
    memset(h->fast, 0, sizeof h->fast);
    for (sym = 0; sym < n; sym++) h->count[len[sym]]++;
    if (h->count[0] == n) return 0;
    for (l = 1; l < 16; l++) {
        left <<= 1;
        left -= h->count[l];
        if (left < 0) return -1;
    }
    offs[1] = 0;
    for (l = 1; l < 15; l++) offs[l + 1] = (short)(offs[l] + h->count[l]);
    for (sym = 0; sym < n; sym++)
        if (len[sym]) h->symbol[offs[len[sym]]++] = (short)sym;
    /* first canonical code of each length; codes are sent MSB first, read LSB first */
    h->count[0] = 0;
    for (l = 1; l < 16; l++) {
        code = (code + (unsigned)h->count[l - 1]) << 1;
        next[l] = code;
    }
    for (sym = 0; sym < n; sym++) {
        unsigned L = len[sym], c, rev = 0, i;
        if (L == 0 || L > HEPH_SINFL_FAST) { if (L) next[L]++; continue; }
        c = next[L]++;
        for (i = 0; i < L; i++) rev |= ((c >> i) & 1u) << (L - 1 - i);
        for (i = rev; i < (1u << HEPH_SINFL_FAST); i += 1u << L)
            h->fast[i] = (uint16_t)((L << 9) | (unsigned)sym);
    }
    return 0;
}

static int heph_sinfl_decode(heph_sinfl *s, const heph_sinfl_huff *h) {
    int code = 0, first = 0, index = 0;
    unsigned l, e;
    if (s->nbits < 15) heph_sinfl_refill(s);
    e = h->fast[s->bits & ((1u << HEPH_SINFL_FAST) - 1u)];
    if (e && (e >> 9) <= s->nbits) {
        s->bits >>= e >> 9;
        s->nbits -= e >> 9;
        return (int)(e & 511u);
    }
    for (l = 1; l < 16; l++) { /* canonical decoding, one bit at a time */
        if (l > s->nbits) { if (!s->error) s->error = "truncated deflate stream"; return -1; }
        code |= (int)((s->bits >> (l - 1)) & 1u);
        if (code - h->count[l] < first) {
            s->bits >>= l;
            s->nbits -= l;
            return h->symbol[index + (code - first)];
        }
        index += h->count[l];
        first += h->count[l];
        first <<= 1;
        code <<= 1;
    }
    s->error = "invalid Huffman code";
    return -1;
}

/* ---- output ---- */

/* hand the new output to the writer and keep the last WINDOW bytes */
static int heph_sinfl_flush(heph_sinfl *s, int slide) {
    if (s->pos > s->handed) {
        if (s->wr(s->wctx, s->out + s->handed, s->pos - s->handed) != 0) { s->stopped = 1; return -1; }
        s->handed = s->pos;
    }
    if (slide && s->pos > HEPH_SINFL_WINDOW) {
        memmove(s->out, s->out + s->pos - HEPH_SINFL_WINDOW, HEPH_SINFL_WINDOW);
        s->pos = s->handed = HEPH_SINFL_WINDOW;
    }
    return 0;
}

static const short heph_sinfl_lbase[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                                           35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const short heph_sinfl_lext[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
                                          3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const unsigned short heph_sinfl_dbase[30] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129,
                                                    193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
                                                    4097, 6145, 8193, 12289, 16385, 24577};
static const short heph_sinfl_dext[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                          6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static int heph_sinfl_codes(heph_sinfl *s) {
    for (;;) {
        int sym;
        unsigned extra, len, d;
        if (s->pos + 258 > HEPH_SINFL_OUTBUF + HEPH_SINFL_WINDOW && heph_sinfl_flush(s, 1)) return -1;
        sym = heph_sinfl_decode(s, &s->lit);
        if (sym < 0) return -1;
        if (sym < 256) {
            s->out[s->pos++] = (unsigned char)sym;
            s->total++;
            continue;
        }
        if (sym == 256) return 0;
        sym -= 257;
        if (sym >= 29) { s->error = "invalid length code"; return -1; }
        if (heph_sinfl_get(s, (unsigned)heph_sinfl_lext[sym], &extra)) return -1;
        len = (unsigned)heph_sinfl_lbase[sym] + extra;
        sym = heph_sinfl_decode(s, &s->dist);
        if (sym < 0) return -1;
        if (sym >= 30) { s->error = "invalid distance code"; return -1; }
        if (heph_sinfl_get(s, (unsigned)heph_sinfl_dext[sym], &extra)) return -1;
        d = heph_sinfl_dbase[sym] + extra;
        if ((uint64_t)d > s->total) { s->error = "distance reaches before the start"; return -1; }
        {
            unsigned char *dst = s->out + s->pos;
            const unsigned char *src = dst - d;
            if (d == 1) memset(dst, *src, len);
            else if (d >= len) memcpy(dst, src, len);
            else { unsigned i; for (i = 0; i < len; i++) dst[i] = src[i]; } /* overlapping */
        }
        s->pos += len;
        s->total += len;
    }
}

static int heph_sinfl_fixed(heph_sinfl *s) {
    unsigned char len[320];
    int i;
    for (i = 0; i < 144; i++) len[i] = 8;
    for (; i < 256; i++) len[i] = 9;
    for (; i < 280; i++) len[i] = 7;
    for (; i < 288; i++) len[i] = 8;
    heph_sinfl_build(&s->lit, len, 288);
    for (i = 0; i < 30; i++) len[i] = 5;
    heph_sinfl_build(&s->dist, len, 30);
    return heph_sinfl_codes(s);
}

static int heph_sinfl_dynamic(heph_sinfl *s) {
    static const unsigned char order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    unsigned char len[320];
    unsigned nlen, ndist, ncode, v, i;
    if (heph_sinfl_get(s, 5, &nlen) || heph_sinfl_get(s, 5, &ndist) || heph_sinfl_get(s, 4, &ncode)) return -1;
    nlen += 257; ndist += 1; ncode += 4;
    if (nlen > 286 || ndist > 30) { s->error = "bad dynamic block counts"; return -1; }
    memset(len, 0, sizeof len);
    for (i = 0; i < ncode; i++) {
        if (heph_sinfl_get(s, 3, &v)) return -1;
        len[order[i]] = (unsigned char)v;
    }
    if (heph_sinfl_build(&s->lens, len, 19)) { s->error = "bad code-length code"; return -1; }
    memset(len, 0, sizeof len);
    i = 0;
    while (i < nlen + ndist) {
        int sym = heph_sinfl_decode(s, &s->lens);
        unsigned rep, val = 0;
        if (sym < 0) return -1;
        if (sym < 16) { len[i++] = (unsigned char)sym; continue; }
        if (sym == 16) {
            if (i == 0) { s->error = "repeat with no previous length"; return -1; }
            val = len[i - 1];
            if (heph_sinfl_get(s, 2, &rep)) return -1;
            rep += 3;
        } else if (sym == 17) {
            if (heph_sinfl_get(s, 3, &rep)) return -1;
            rep += 3;
        } else {
            if (heph_sinfl_get(s, 7, &rep)) return -1;
            rep += 11;
        }
        if (i + rep > nlen + ndist) { s->error = "too many code lengths"; return -1; }
        while (rep--) len[i++] = (unsigned char)val;
    }
    if (len[256] == 0) { s->error = "no end-of-block code"; return -1; }
    if (heph_sinfl_build(&s->lit, len, (int)nlen) || heph_sinfl_build(&s->dist, len + nlen, (int)ndist)) {
        s->error = "over-subscribed Huffman code";
        return -1;
    }
    return heph_sinfl_codes(s);
}

static int heph_sinfl_stored(heph_sinfl *s) {
    unsigned n, nc, b;
    if (heph_sinfl_get(s, s->nbits & 7u, &b)) return -1; /* to a byte boundary */
    if (heph_sinfl_get(s, 16, &n) || heph_sinfl_get(s, 16, &nc)) return -1;
    if (n != (~nc & 0xffffu)) { s->error = "stored block length check failed"; return -1; }
    while (n--) {
        if (s->pos + 1 > HEPH_SINFL_OUTBUF + HEPH_SINFL_WINDOW && heph_sinfl_flush(s, 1)) return -1;
        if (heph_sinfl_get(s, 8, &b)) return -1;
        s->out[s->pos++] = (unsigned char)b;
        s->total++;
    }
    return 0;
}

static int heph_sinfl_run(heph_sinfl_read rd, void *rctx, heph_sinfl_write wr, void *wctx,
                          uint64_t *in_used, uint64_t *out_total, char *err, size_t errlen) {
    heph_sinfl *s = (heph_sinfl *)calloc(1, sizeof *s);
    unsigned last = 0, type;
    int rc = 0;
    if (!s) { snprintf(err, errlen, "out of memory"); return -1; }
    s->rd = rd; s->rctx = rctx; s->wr = wr; s->wctx = wctx;
    s->in = (unsigned char *)malloc(HEPH_SINFL_INBUF);
    s->out = (unsigned char *)malloc(HEPH_SINFL_OUTBUF + HEPH_SINFL_WINDOW);
    if (!s->in || !s->out) { s->error = "out of memory"; rc = -1; }
    while (rc == 0 && !last) {
        if (heph_sinfl_get(s, 1, &last) || heph_sinfl_get(s, 2, &type)) { rc = -1; break; }
        if (type == 0) rc = heph_sinfl_stored(s);
        else if (type == 1) rc = heph_sinfl_fixed(s);
        else if (type == 2) rc = heph_sinfl_dynamic(s);
        else { s->error = "invalid block type 3"; rc = -1; }
    }
    if (rc == 0 && heph_sinfl_flush(s, 0)) rc = -1;
    if (rc != 0) {
        if (s->stopped) rc = -2;
        else snprintf(err, errlen, "%s", s->error ? s->error : "corrupt deflate stream");
    } else {
        if (in_used) *in_used = s->in_loaded - s->nbits / 8; /* whole bytes still unread */
        if (out_total) *out_total = s->total;
    }
    free(s->in);
    free(s->out);
    free(s);
    return rc;
}
#endif
