/* cli_data.h - pictures for the hephaestus CLI: a batch is a .hpd dataset or a folder of
   PNG/JPEG files (read with stb_image), fitted to the model's input: folder pictures are
   converted to gray or RGB and resized with a separable filter (area average when shrinking,
   linear interpolation when enlarging). Also the factor rules of `batch` and `--truth`:
   "name=V,name=A-B,k=V|W" (factors by name or index, values by index).                     */
#ifndef HEPH_CLI_DATA_H
#define HEPH_CLI_DATA_H

#include <dirent.h>
#include <ctype.h>
#include <stb/stb_image.h>
#include "cli_common.h"

typedef struct {
    char path[1024];    /* the .hpd file or the folder                                  */
    size_t n;           /* pictures                                                     */
    int c, h, w;        /* their shape in x                                             */
    float *x;           /* (n, c, h, w) in [0,1]                                        */
    int K;              /* factors (0 for a folder)                                     */
    int32_t *labels;    /* (n, K) factor indices                                        */
    char names[HEPH_MAX_FACTORS][24];
    uint32_t n_values[HEPH_MAX_FACTORS];
    char **files;       /* folder: the file names (n), sorted; NULL for a .hpd           */
} cli_pics;

static void pics_free(cli_pics *p) {
    size_t i;
    if (p->files)
        for (i = 0; i < p->n; i++) free(p->files[i]);
    free(p->files);
    free(p->x);
    free(p->labels);
    memset(p, 0, sizeof *p);
}

/* name of picture i: the file name, or "#i" */
static const char *pics_name(const cli_pics *p, size_t i, char *buf, size_t n) {
    if (p->files) return p->files[i];
    snprintf(buf, n, "#%zu", i);
    return buf;
}

/* ---- resizing ---------------------------------------------------------------------------- */

/* one line of n_in samples (stride si) to n_out samples (stride so). Shrinking: each output
   sample averages the input interval it covers (partial samples weighted by overlap);
   enlarging: linear interpolation between the centres of the input samples.              */
static void resample_line(const float *in, int n_in, int si, float *out, int n_out, int so) {
    double scale = (double)n_in / (double)n_out;
    int o;
    for (o = 0; o < n_out; o++) {
        if (scale > 1.0) { /* area: mean over [o s, (o+1) s) */
            double a = o * scale, b = a + scale, sum = 0.0;
            int i;
            for (i = (int)a; i < n_in && i < b; i++) {
                double lo = i > a ? i : a, hi = i + 1 < b ? i + 1 : b;
                sum += (hi - lo) * (double)in[(size_t)i * (size_t)si];
            }
            out[(size_t)o * (size_t)so] = (float)(sum / scale);
        } else { /* linear at the source position of the output centre */
            double t = (o + 0.5) * scale - 0.5, f;
            int i0;
            if (t < 0.0) t = 0.0;
            if (t > n_in - 1) t = n_in - 1;
            i0 = (int)t;
            f = t - i0;
            out[(size_t)o * (size_t)so] = (float)((1.0 - f) * (double)in[(size_t)i0 * (size_t)si] +
                                                  (i0 + 1 < n_in ? f * (double)in[(size_t)(i0 + 1) * (size_t)si] : 0.0));
        }
    }
}

/* planar picture (c, h, w) -> (c, H, W): rows first, then columns */
static void resize_planes(const float *in, int c, int h, int w, float *out, int H, int W) {
    float *tmp = (float *)cli_alloc((size_t)h * (size_t)W, sizeof(float));
    int ch, y, x;
    for (ch = 0; ch < c; ch++) {
        const float *src = in + (size_t)ch * (size_t)h * (size_t)w;
        float *dst = out + (size_t)ch * (size_t)H * (size_t)W;
        for (y = 0; y < h; y++) resample_line(src + (size_t)y * (size_t)w, w, 1, tmp + (size_t)y * (size_t)W, W, 1);
        for (x = 0; x < W; x++) resample_line(tmp + x, h, W, dst + x, H, W);
    }
    free(tmp);
}

/* ---- folders of PNG/JPEG ------------------------------------------------------------------- */

static int is_picture_file(const char *name) {
    const char *dot = strrchr(name, '.');
    char ext[8];
    size_t i;
    if (!dot || name[0] == '.' || strlen(dot) >= sizeof ext) return 0;
    for (i = 0; dot[i]; i++) ext[i] = (char)tolower((unsigned char)dot[i]);
    ext[i] = '\0';
    return cli_is(ext, ".png") || cli_is(ext, ".jpg") || cli_is(ext, ".jpeg");
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* sorted names of the PNG/JPEG files of a folder; an empty folder is an error */
static char **list_pictures(const char *dir, size_t *n) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t cap = 0;
    *n = 0;
    if (!d) cli_fail("%s: cannot open the folder (%s)", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        cli_path f;
        if (!is_picture_file(e->d_name)) continue;
        /* only regular files are pictures: a FIFO named x.png would block open() forever */
        f = cli_join(dir, e->d_name);
        if (stat(f.s, &st) != 0 || !S_ISREG(st.st_mode)) {
            fprintf(stderr, "%s: warning: skipping %s (%s)\n", cli_cmd, f.s,
                    stat(f.s, &st) != 0 ? strerror(errno) : S_ISDIR(st.st_mode) ? "a folder" : S_ISFIFO(st.st_mode) ? "a FIFO" : "not a regular file");
            continue;
        }
        if (*n == cap) {
            char **more;
            cap = cap ? 2 * cap : 64;
            more = (char **)realloc(names, cap * sizeof *names);
            if (!more) cli_fail("out of memory");
            names = more;
        }
        names[*n] = (char *)cli_alloc(strlen(e->d_name) + 1, 1);
        strcpy(names[(*n)++], e->d_name);
    }
    closedir(d);
    if (*n == 0) cli_fail("%s: the folder holds no PNG or JPEG pictures (*.png, *.jpg, *.jpeg)", dir);
    qsort(names, *n, sizeof *names, cmp_names);
    return names;
}

#define CLI_MAX_PIXELS (1L << 26) /* 67 megapixels: a larger picture is refused before decoding */

/* JPEG: stb_image 2.27 (Debian 12's libstb) trusts two things a hostile file can break, so the
   markers are walked first, the way stb reads them, and such a file is refused before stb sees
   it: a DHT segment that declares more than 256 codes (stb writes past its tables; fixed in stb
   2.28), and a scan that uses a Huffman or quantization table the file never defined (stb
   decodes with its uninitialised tables: an assertion or an out-of-bounds read; libjpeg
   refuses such files too). Used means: baseline, both Huffman tables of each scan component;
   progressive, the DC table in a first DC scan, the AC table in an AC scan; and the
   quantization table of each scan component. Returns NULL, or why the file is refused. */
static const char *jpeg_tables_bad(const unsigned char *b, size_t n) {
    size_t at = 2;
    int huff[2][4] = {{0}}, quant[4] = {0}, nfc = 0, progressive = 0, i;
    unsigned char fc_id[4] = {0}, fc_tq[4] = {0}; /* frame components (stb takes at most 4) */
    while (at + 1 < n) {
        unsigned m;
        size_t seg;
        if (b[at] != 0xFF) { at++; continue; } /* entropy-coded data */
        m = b[at + 1];
        if (m == 0xFF) { at++; continue; }      /* fill byte */
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) { at += 2; continue; } /* stuffing, TEM, RSTn, SOI */
        if (m == 0xD9 || at + 4 > n) return NULL; /* EOI, or truncated: stb says so */
        seg = ((size_t)b[at + 2] << 8) | b[at + 3];
        if (m == 0xC4) {                         /* DHT: tables until the segment length is used up */
            long L = (long)seg - 2;
            size_t p = at + 4;
            while (L > 0) {
                unsigned q = p < n ? b[p] : 0, sum = 0;
                if ((q >> 4) > 1 || (q & 15) > 3) break; /* stb refuses this header itself */
                for (i = 0; i < 16; i++) sum += p + 1 + (size_t)i < n ? b[p + 1 + (size_t)i] : 0; /* stb reads 0 past the end */
                if (sum > 256) return "a Huffman table declares more than 256 codes";
                huff[q >> 4][q & 15] = 1;
                L -= 17 + (long)sum;
                p += 17 + sum;
            }
        } else if (m == 0xDB) {                  /* DQT: 8-bit (65 bytes) or 16-bit (129) tables */
            long L = (long)seg - 2;
            size_t p = at + 4;
            while (L > 0 && p < n) {
                unsigned q = b[p];
                if ((q >> 4) > 1 || (q & 15) > 3) break; /* stb refuses this itself */
                quant[q & 15] = 1;
                L -= (q >> 4) ? 129 : 65;
                p += (q >> 4) ? 129 : 65;
            }
        } else if (m >= 0xC0 && m <= 0xC2 && at + 10 <= n) { /* SOF0/1/2: the frame's components */
            nfc = b[at + 9] < 4 ? b[at + 9] : 4;
            progressive = m == 0xC2;
            for (i = 0; i < nfc; i++) {
                size_t p = at + 10 + 3 * (size_t)i;
                fc_id[i] = p < n ? b[p] : 0;
                fc_tq[i] = p + 2 < n ? b[p + 2] & 3 : 0;
            }
        } else if (m == 0xDA && at + 5 <= n) {   /* SOS: the tables this scan uses must exist */
            size_t ns = b[at + 4], e = at + 5 + 2 * ns, k;
            unsigned ss = e < n ? b[e] : 0, ah = e + 2 < n ? b[e + 2] >> 4 : 0;
            for (k = 0; k < ns && at + 6 + 2 * k < n; k++) {
                unsigned id = b[at + 5 + 2 * k], td = b[at + 6 + 2 * k] >> 4, ta = b[at + 6 + 2 * k] & 15;
                int dc = !progressive || (ss == 0 && ah == 0), ac = !progressive || ss > 0;
                for (i = 0; i < nfc && fc_id[i] != id; i++) {}
                if (i == nfc || td > 3 || ta > 3) continue; /* stb refuses these itself */
                if ((dc && !huff[0][td]) || (ac && !huff[1][ta]))
                    return "a scan uses a Huffman table the file does not define";
                if (!quant[fc_tq[i]]) return "a scan uses a quantization table the file does not define";
            }
        }
        at += 2 + seg;
    }
    return NULL;
}

/* PNG: stb_image allocates what a chunk's length field claims before it reads the chunk (an
   IDAT "of 1.7 GB" in a 1 kB file), so every chunk up to IEND must lie inside the file. 0: refuse. */
static int png_chunks_ok(const unsigned char *b, size_t n) {
    size_t at = 8;
    while (at + 8 <= n) {
        size_t len = ((size_t)b[at] << 24) | ((size_t)b[at + 1] << 16) | ((size_t)b[at + 2] << 8) | b[at + 3];
        if (len > n - at - 8 || n - at - 8 - len < 4) return 0; /* data and CRC inside the file */
        if (memcmp(b + at + 4, "IEND", 4) == 0) return 1;
        at += 12 + len;
    }
    return 1; /* no IEND: stb reports the truncation */
}

/* decode one file to planar floats with c channels (1 gray, 3 RGB), resized to h x w;
   c == 0: keep its own shape (gray files 1 channel, others 3) and set c, h, w. Only PNG and
   JPEG (by their first bytes) reach stb_image, at most CLI_MAX_PIXELS pixels. */
/* stb_image's reason, never empty */
static const char *cli_stb_reason(void) {
    const char *r = stbi_failure_reason();
    return r && *r ? r : "stb_image gave no reason";
}

static float *load_picture(const char *path, int *c, int *h, int *w) {
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    int fw, fh, fc, want, i, ch, is_png, is_jpg;
    const char *why;
    unsigned char *px, *file;
    float *planar, *out;
    long len = 0; /* clang: maybe unset when fseek fails first */
    FILE *f = cli_fopen(path, "rb");
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 || len > 0x7fffffffL) {
        fclose(f);
        cli_fail("%s: cannot read the picture (size unknown or above 2 GB)", path);
    }
    file = (unsigned char *)cli_alloc((size_t)len + 1, 1);
    if (fread(file, 1, (size_t)len, f) != (size_t)len) { fclose(f); free(file); cli_fail("%s: read error", path); }
    fclose(f);
    is_png = len >= 8 && memcmp(file, png_sig, 8) == 0;
    is_jpg = len >= 3 && file[0] == 0xFF && file[1] == 0xD8 && file[2] == 0xFF;
    if (!is_png && !is_jpg) { free(file); cli_fail("%s: not a PNG or JPEG file (by its first bytes)", path); }
    if (is_jpg && (why = jpeg_tables_bad(file, (size_t)len)) != NULL) {
        free(file);
        cli_fail("%s: corrupt JPEG (%s)", path, why);
    }
    if (is_png && !png_chunks_ok(file, (size_t)len)) {
        free(file);
        cli_fail("%s: corrupt PNG (a chunk runs past the end of the file)", path);
    }
    if (!stbi_info_from_memory(file, (int)len, &fw, &fh, &fc)) {
        free(file);
        cli_fail("%s: cannot decode the picture (%s)", path, cli_stb_reason());
    }
    if (fw < 1 || fh < 1 || (long)fw * (long)fh > CLI_MAX_PIXELS) {
        free(file);
        cli_fail("%s: %dx%d pixels: pictures of 1 to %ld pixels are read", path, fw, fh, CLI_MAX_PIXELS);
    }
    want = *c ? *c : (fc <= 2 ? 1 : 3);
    px = stbi_load_from_memory(file, (int)len, &fw, &fh, &fc, want); /* stb converts: RGB -> gray by luma, gray -> RGB */
    free(file);
    if (!px) cli_fail("%s: cannot decode the picture (%s)", path, cli_stb_reason());
    if (!*c) { *c = want; *h = fh; *w = fw; }
    planar = (float *)cli_alloc((size_t)fw * (size_t)fh * (size_t)want, sizeof(float));
    for (i = 0; i < fw * fh; i++)
        for (ch = 0; ch < want; ch++) planar[(size_t)ch * (size_t)fw * (size_t)fh + (size_t)i] = (float)px[(size_t)i * (size_t)want + (size_t)ch] / 255.0f;
    stbi_image_free(px);
    if (fw == *w && fh == *h) return planar;
    out = (float *)cli_alloc((size_t)*c * (size_t)*h * (size_t)*w, sizeof(float));
    resize_planes(planar, *c, fh, fw, out, *h, *w);
    free(planar);
    return out;
}

static void pics_load_folder(cli_pics *p, const char *dir) {
    size_t i, np;
    if (p->c != 0 && p->c != 1 && p->c != 3)
        cli_fail("%s: PNG/JPEG pictures can feed gray (1 channel) or RGB (3) models, this one takes %d channels", dir, p->c);
    p->files = list_pictures(dir, &p->n);
    for (i = 0; i < p->n; i++) {
        cli_path f = cli_join(dir, p->files[i]);
        float *one = load_picture(f.s, &p->c, &p->h, &p->w);
        np = (size_t)p->c * (size_t)p->h * (size_t)p->w;
        if (!p->x) p->x = (float *)cli_alloc(p->n * np, sizeof(float));
        memcpy(p->x + i * np, one, np * sizeof(float));
        free(one);
    }
}

/* ---- .hpd ------------------------------------------------------------------------------------ */

/* take the factor table of an open .hpd */
static void pics_take_factors(cli_pics *p, const heph_hpd *d) {
    int k;
    p->K = (int)d->info.n_factors;
    for (k = 0; k < p->K; k++) {
        snprintf(p->names[k], sizeof p->names[k], "%s", d->info.factors[k].name);
        p->n_values[k] = d->info.factors[k].n_values;
    }
}

/* pictures idx[0..n) of a .hpd (idx NULL: the first n) */
static void pics_load_hpd(cli_pics *p, const char *path, const size_t *idx, size_t n) {
    heph_hpd d;
    size_t i, np;
    int k, rc;
    cli_need_regular(path);
    if (heph_hpd_open(&d, path) != HEPH_OK) cli_fail("%s", d.err);
    p->c = (int)d.info.c; p->h = (int)d.info.h; p->w = (int)d.info.w;
    if (n == 0 || n > d.info.count) n = (size_t)d.info.count;
    np = heph_hpd_picture_size(&d.info);
    p->n = n;
    if (np && n > (size_t)-1 / np) cli_fail("%s: %zu pictures of %zu values do not fit this machine's size_t", path, n, np);
    p->x = (float *)cli_alloc_for(path, "its pictures", n * np, sizeof(float));
    rc = idx ? heph_hpd_read(&d, idx, n, p->x) : heph_hpd_read_range(&d, 0, n, p->x);
    if (rc != HEPH_OK) cli_fail("%s", d.err);
    pics_take_factors(p, &d);
    p->labels = (int32_t *)cli_alloc_for(path, "its labels", n * (size_t)(p->K ? p->K : 1), sizeof(int32_t));
    for (i = 0; i < n; i++)
        for (k = 0; k < p->K; k++) p->labels[i * (size_t)p->K + (size_t)k] = heph_hpd_label(&d, idx ? idx[i] : i, k);
    heph_hpd_close(&d);
}

static void pics_check_shape(const cli_pics *p, int c, int h, int w) {
    if (c > 0 && (p->c != c || p->h != h || p->w != w))
        cli_fail("%s holds %dx%dx%d pictures (CxHxW) but the model takes %dx%dx%d", p->path, p->c, p->h, p->w, c, h, w);
}

/* Load a batch (a .hpd or a folder). c > 0: the model's input shape (c, h, w): folder
   pictures are fitted to it, a .hpd must match it. c == 0: take the data's own shape.     */
static void pics_load(cli_pics *p, const char *path, int c, int h, int w) {
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s", path);
    if (cli_is_dir(path)) {
        p->c = c; p->h = h; p->w = w;
        pics_load_folder(p, path);
        return;
    }
    pics_load_hpd(p, path, NULL, 0);
    pics_check_shape(p, c, h, w);
}

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* as pics_load, but a .hpd with more than max_n pictures gives a random subset of max_n
   (drawn with the seed, kept in file order) */
static void pics_load_some(cli_pics *p, const char *path, int c, int h, int w, size_t max_n, uint64_t seed) {
    heph_hpd d;
    heph_rng rng;
    size_t *idx, i, count;
    if (cli_is_dir(path) || max_n == 0) { pics_load(p, path, c, h, w); return; }
    cli_need_regular(path);
    if (heph_hpd_open(&d, path) != HEPH_OK) cli_fail("%s", d.err);
    if (d.info.count > (uint64_t)(size_t)-1) cli_fail("%s: %llu pictures, more than this build can index", path, (unsigned long long)d.info.count);
    count = (size_t)d.info.count;
    heph_hpd_close(&d);
    if (count <= max_n) { pics_load(p, path, c, h, w); return; }
    idx = (size_t *)cli_alloc_for(path, "the index of its pictures", count, sizeof(size_t));
    for (i = 0; i < count; i++) idx[i] = i;
    heph_rng_seed(&rng, seed);
    for (i = 0; i < max_n; i++) { /* partial Fisher-Yates: idx[0..max_n) uniform without replacement */
        size_t j = i + (size_t)heph_rng_below64(&rng, (uint64_t)(count - i)), t = idx[i];
        idx[i] = idx[j]; idx[j] = t;
    }
    qsort(idx, max_n, sizeof *idx, cmp_size);
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s", path);
    pics_load_hpd(p, path, idx, max_n);
    pics_check_shape(p, c, h, w);
    free(idx);
}

/* ---- factor rules ---------------------------------------------------------------------------- */

#define CLI_MAX_RANGES 32

typedef struct {
    int factor, n;                  /* factor index; number of value ranges */
    int lo[CLI_MAX_RANGES], hi[CLI_MAX_RANGES];
} cli_rule;

typedef struct {
    int n;
    cli_rule r[HEPH_MAX_FACTORS];
} cli_rules;

/* factor by name or number; -1 when unknown */
static int factor_index(const cli_pics *p, const char *s, size_t len) {
    int k;
    char *e;
    long v = strtol(s, &e, 10);
    if (len > 0 && e == s + len && v >= 0 && v < p->K) return (int)v;
    for (k = 0; k < p->K; k++)
        if (strlen(p->names[k]) == len && strncmp(p->names[k], s, len) == 0) return k;
    return -1;
}

/* the factor names, for messages */
static const char *factor_list(const cli_pics *p, char *buf, size_t n) {
    int k;
    buf[0] = '\0';
    for (k = 0; k < p->K; k++) {
        size_t at = strlen(buf);
        snprintf(buf + at, n - at, "%s%s (%u)", k ? ", " : "", p->names[k], p->n_values[k]);
    }
    return buf;
}

/* values "A", "A-B", joined by '|': fill rule ranges; 0 when malformed or out of range */
static int parse_values(cli_rule *r, const char *s, const char *end, uint32_t n_values) {
    while (s < end) {
        char *e;
        long a = strtol(s, &e, 10), b = a;
        if (e == s || !isdigit((unsigned char)*s)) return 0;
        s = e;
        if (s < end && *s == '-') {
            b = strtol(s + 1, &e, 10);
            if (e == s + 1 || !isdigit((unsigned char)s[1])) return 0;
            s = e;
        }
        if (a > b || b >= (long)n_values || r->n == CLI_MAX_RANGES) return 0;
        r->lo[r->n] = (int)a; r->hi[r->n] = (int)b; r->n++;
        if (s < end && *s++ != '|') return 0;
        if (s == end && s[-1] == '|') return 0; /* "0|": a value missing after the bar */
    }
    return r->n > 0;
}

/* "name=V,..." against the factors of p. A malformed rule is a usage error; a factor or value
   the data does not have is a runtime error (exit 1); both name the option.               */
static void rules_parse(cli_rules *rs, const char *text, const cli_pics *p, const char *opt) {
    const char *s = text;
    char names[1024];
    memset(rs, 0, sizeof *rs);
    if (!*text) cli_usage("%s: empty rule list", opt);
    while (*s) {
        const char *end = strchr(s, ','), *eq;
        cli_rule *r = &rs->r[rs->n];
        if (!end) end = s + strlen(s);
        eq = memchr(s, '=', (size_t)(end - s));
        if (!eq || eq == s) cli_usage("%s: rule \"%.*s\" is not factor=values", opt, (int)(end - s), s);
        if (rs->n == HEPH_MAX_FACTORS) cli_usage("%s: too many rules", opt);
        r->factor = factor_index(p, s, (size_t)(eq - s));
        if (r->factor < 0)
            cli_fail("%s: %s has no factor \"%.*s\" (factors: %s)", opt, p->path, (int)(eq - s), s,
                      p->K ? factor_list(p, names, sizeof names) : "none");
        if (!parse_values(r, eq + 1, end, p->n_values[r->factor]))
            cli_fail("%s: factor %s takes value indices 0..%u as V, A-B or V|W, got \"%.*s\"", opt,
                      p->names[r->factor], p->n_values[r->factor] - 1, (int)(end - eq - 1), eq + 1);
        rs->n++;
        if (*end && !end[1]) cli_usage("%s: a rule is missing after the last comma in \"%s\"", opt, text);
        s = *end ? end + 1 : end;
    }
}

/* does a picture with these factor indices satisfy every rule? */
static int rules_match(const cli_rules *rs, const int32_t *labels) {
    int i, j, ok;
    for (i = 0; i < rs->n; i++) {
        int32_t v = labels[rs->r[i].factor];
        for (ok = 0, j = 0; j < rs->r[i].n && !ok; j++) ok = v >= rs->r[i].lo[j] && v <= rs->r[i].hi[j];
        if (!ok) return 0;
    }
    return 1;
}

#endif
