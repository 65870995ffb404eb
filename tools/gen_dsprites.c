/* gen_dsprites - render the dSprites generative process into a Hephaestus .hpd dataset.

   usage: gen_dsprites [options] [OUT.hpd]      (see usage() below or --help)

   The factor grid, its order and its values are those of DeepMind's dSprites (tools/dsprites.h):
   color 1, shape 3 (square, ellipse, heart), scale 6 (0.5..1), orientation 40 (0..2pi),
   posX 32, posY 32 (0..1); picture i of the full grid has the mixed-radix digits of i as its
   factor indices. The shapes are drawn here from their description (shared/DATASETS.md 2.2),
   so the pictures match the original in kind, size and placement, not bit for bit:
     - centre at (16 + 32 posX, 16 + 32 posY) pixels; x to the right, y DOWN the rows
       (posY = 0 is the top of the picture);
     - square of side 20 scale; ellipse 26 x 14 at scale 1 (axes 13 scale, 7 scale), long axis
       horizontal at orientation 0; heart pointing down, 20 scale wide, 17 scale high: two discs
       and the convex hull of each disc with the bottom point;
     - rotation by the orientation about the centre, counter-clockwise as displayed;
     - a pixel is 1 when its centre (x + 0.5, y + 0.5) is inside: no anti-aliasing. The largest
       shape at the edge positions stays at least 1.8 px inside the frame.          */
/* the outputs are written as the CLI writes its files (a temporary unique to the process,
   fsync, rename, folder fsync), and the large blocks count against --mem-budget
   (heph_posix.h, cli_io.h) */
#define HEPHAESTUS_IMPLEMENTATION
#include "heph_posix.h"
#include <sys/stat.h>
#include "dsprites.h"
#include <stb/stb_image_write.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <errno.h>
#include <ctype.h>

#define PICTURE (DSPR_SIDE * DSPR_SIDE)
#define MAX_PICK 100000

static void usage(FILE *f) {
    fprintf(f,
        "usage: gen_dsprites [options] [OUT.hpd]\n"
        "Renders dSprites-like 64x64 black-and-white pictures with their 6 factors (color, shape,\n"
        "scale, orientation, posX, posY; the original's grid, order and values) into a .hpd\n"
        "dataset (1-bit pixels, value_max 1, factor indices as labels).\n"
        "Modes (default: the full grid of 737280 pictures in mixed-radix order, last factor\n"
        "fastest; flagged as a grid so picture i <-> factors is computable):\n"
        "  --random N        N pictures with uniformly random factor indices\n"
        "  --seed S          seed of --random (default 1; stored in the header)\n"
        "  --pick I,J,...    the grid pictures with these indices, in this order\n"
        "  --where SPEC      keep only these factor indices, e.g. \"shape=1,scale=5\",\n"
        "                    \"posX=0-15\" (inclusive range), \"shape=0|2\" (alternatives);\n"
        "                    names color shape scale orientation posX posY, or 0..5;\n"
        "                    with the grid (the sub-grid, in order) or with --random\n"
        "Output:\n"
        "  --png FILE        also write a preview grid of the first pictures (PNG)\n"
        "  --png-count K     how many pictures the preview shows (default 64)\n"
        "  --png-cols C      pictures per preview row (default 8)\n"
        "  --png-zoom Z      enlarge the preview Z times (default 1)\n"
        "  --source NAME     name stored in the header (default dsprites-gen)\n"
        "  --mem-budget MB   the large blocks (preview, the writer's buffers) in total may not\n"
        "                    pass MB (default: 3/4 of physical memory); a larger need is refused\n"
        "  -q, --quiet       no progress lines\n"
        "  -h, --help        this help\n"
        "      --version     the version of hephaestus.h\n"
        "OUT.hpd may be left out when --png is given (preview only).\n"
        "Examples:\n"
        "  gen_dsprites dsprites.hpd                         full grid (395 MB)\n"
        "  gen_dsprites --random 10000 --seed 7 rnd.hpd\n"
        "  gen_dsprites --where \"shape=2,scale=5\" --png hearts.png hearts.hpd\n");
}

/* a usage error (exit 2), or with fail a runtime one (exit 1: memory, a file) */
static void die_code(int code, const char *fmt, const char *a) {
    fprintf(stderr, "gen_dsprites: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    exit(code);
}
static void die(const char *fmt, const char *a) { die_code(2, fmt, a); }
static void fail(const char *fmt, const char *a) { die_code(1, fmt, a); }

/* ---- shapes, in units of the shape's width (20 * scale px), origin at its centre, y up ---- */

/* heart: discs of radius HR at (+-HD, HC), bottom point (0, HP); 1.0 wide, 0.85 high */
#define HR 0.27
#define HD 0.23
#define HC 0.155
#define HP (-0.425)

/* inside the convex hull of the disc (centre (cx, cy), radius HR) and the point (0, HP):
   the disc, or the part of the cone from the point that lies before the tangent chord */
static int in_cone(double qx, double qy, double cx, double cy) {
    double ex = qx - cx, ey = qy - cy, wx = qx, wy = qy - HP, dx = cx, dy = cy - HP;
    double a, b, c;
    if (ex * ex + ey * ey <= HR * HR) return 1;
    a = dx * dx + dy * dy - HR * HR; /* |D|^2 cos^2(half-angle), and the chord's projection */
    b = wx * dx + wy * dy;
    c = wx * wx + wy * wy;
    return b >= 0.0 && b <= a && b * b >= a * c;
}

static int inside(int shape, double u, double v) {
    switch (shape) {
    case 0: return fabs(u) <= 0.5 && fabs(v) <= 0.5;
    case 1: return u * u * (1.0 / (0.65 * 0.65)) + v * v * (1.0 / (0.35 * 0.35)) <= 1.0;
    default: return in_cone(u, v, -HD, HC) || in_cone(u, v, HD, HC);
    }
}

/* farthest point of each shape from its centre, in width units (bounding radius) */
static const double shape_radius[3] = {0.70710678118654757, 0.65, 0.5475};

typedef struct {
    double values[DSPR_NF][DSPR_MAXV];
    double cosv[40], sinv[40];
} geom;

static void geom_init(geom *g) {
    int k;
    dspr_values(g->values);
    for (k = 0; k < 40; k++) {
        g->cosv[k] = cos(g->values[3][k]);
        g->sinv[k] = sin(g->values[3][k]);
    }
    g->cosv[39] = 1.0; g->sinv[39] = 0.0; /* 2 pi: exactly the picture of 0, as in the original */
}

/* one picture (64*64 bytes, 0/1) for factor indices f */
static void render(const geom *g, const int32_t *f, uint8_t *img) {
    int shape = f[1], x, y, x0, x1, y0, y1;
    double L = 20.0 * g->values[2][f[2]];
    double cx = 16.0 + 32.0 * g->values[4][f[4]], cy = 16.0 + 32.0 * g->values[5][f[5]];
    double c = g->cosv[f[3]], s = g->sinv[f[3]], R = L * shape_radius[shape], inv = 1.0 / L;
    memset(img, 0, PICTURE);
    if (cx - R < 0.0 || cx + R > (double)DSPR_SIDE || cy - R < 0.0 || cy + R > (double)DSPR_SIDE) {
        fprintf(stderr, "gen_dsprites: internal error: a shape leaves the frame\n");
        exit(3);
    }
    x0 = (int)floor(cx - R); x1 = (int)ceil(cx + R);
    y0 = (int)floor(cy - R); y1 = (int)ceil(cy + R);
    if (x1 > DSPR_SIDE - 1) x1 = DSPR_SIDE - 1;
    if (y1 > DSPR_SIDE - 1) y1 = DSPR_SIDE - 1;
    for (y = y0; y <= y1; y++) {
        double Y = (cy - ((double)y + 0.5)) * inv; /* up is positive */
        for (x = x0; x <= x1; x++) {
            double X = (((double)x + 0.5) - cx) * inv;
            /* undo the counter-clockwise rotation: local = R(-theta) world */
            double u = c * X + s * Y, v = -s * X + c * Y;
            if (inside(shape, u, v)) img[y * DSPR_SIDE + x] = 1;
        }
    }
}

/* ---- options ---- */

static int factor_by_name(const char *s, size_t n) {
    int k;
    for (k = 0; k < DSPR_NF; k++)
        if (strlen(dspr_names[k]) == n) {
            size_t i;
            for (i = 0; i < n && tolower((unsigned char)s[i]) == tolower((unsigned char)dspr_names[k][i]); i++) {}
            if (i == n) return k;
        }
    return -1;
}

/* non-negative decimal number spanning [s, end); -1 if not */
static long long parse_num(const char *s, const char *end) {
    long long v = 0;
    if (s == end) return -1;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9' || v > 1000000000000LL) return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* the factor values a --where spec allows: vals[k][0 .. nv[k]) in increasing order */
typedef struct {
    int32_t vals[DSPR_NF][DSPR_MAXV];
    int nv[DSPR_NF];
} allowed;

/* "name=V" items, comma-separated; V is i, lo-hi (inclusive) or alternatives a|b|lo-hi;
   a name may also be given as its position 0..5 */
static void parse_where(const char *spec, allowed *al) {
    const char *p = spec;
    int seen[DSPR_NF] = {0}, k, v;
    while (*p) {
        const char *item = p, *eq, *end, *q;
        char buf[200], on[DSPR_MAXV];
        end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        snprintf(buf, sizeof buf, "%.*s", (int)(end - item), item);
        while (*item == ' ') item++;
        eq = memchr(item, '=', (size_t)(end - item));
        if (!eq) die("--where: \"%s\" is not NAME=VALUES (e.g. shape=1, posX=0-15, shape=0|2)", buf);
        {
            const char *ne = eq;
            long long num;
            while (ne > item && ne[-1] == ' ') ne--;
            k = factor_by_name(item, (size_t)(ne - item));
            num = parse_num(item, ne);
            if (k < 0 && num >= 0 && num < DSPR_NF) k = (int)num;
        }
        if (k < 0) die("--where: unknown factor in \"%s\" (names: color shape scale orientation posX posY, or 0..5)", buf);
        if (seen[k]++) die("--where: factor in \"%s\" is given twice", buf);
        memset(on, 0, sizeof on);
        for (q = eq + 1; q <= end;) { /* alternatives separated by '|' */
            const char *alt = q, *ae = q, *dash;
            long long lo, hi;
            while (ae < end && *ae != '|') ae++;
            while (alt < ae && *alt == ' ') alt++;
            { const char *t = ae; while (t > alt && t[-1] == ' ') t--;
              dash = memchr(alt, '-', (size_t)(t - alt));
              lo = parse_num(alt, dash ? dash : t);
              hi = dash ? parse_num(dash + 1, t) : lo; }
            if (lo < 0 || hi < 0) die("--where: \"%s\": each value must be an index or a range LO-HI", buf);
            if (lo > hi || hi >= (long long)dspr_sizes[k]) {
                char msg[300];
                snprintf(msg, sizeof msg, "--where: \"%%s\": %s indices are 0..%u (and LO <= HI)",
                         dspr_names[k], dspr_sizes[k] - 1);
                die(msg, buf);
            }
            for (; lo <= hi; lo++) on[lo] = 1;
            q = ae + 1;
        }
        al->nv[k] = 0;
        for (v = 0; v < (int)dspr_sizes[k]; v++)
            if (on[v]) al->vals[k][al->nv[k]++] = v;
        p = *end ? end + 1 : end;
    }
}

static uint64_t parse_count(const char *s, const char *what) {
    char *end;
    unsigned long long v;
    errno = 0;
    if (!*s || *s == '-') die("%s needs a non-negative number", what);
    v = strtoull(s, &end, 10);
    if (errno || *end) die("%s needs a non-negative number", what);
    return (uint64_t)v;
}

static size_t parse_pick(const char *s, uint64_t **out) {
    size_t n = 0, cap = 0;
    uint64_t *v = NULL;
    const char *p = s;
    while (*p) {
        const char *end = strchr(p, ',');
        long long x;
        if (!end) end = p + strlen(p);
        x = parse_num(p, end);
        if (x < 0 || x >= (long long)DSPR_COUNT) {
            char buf[64];
            snprintf(buf, sizeof buf, "%.*s", (int)(end - p > 40 ? 40 : end - p), p);
            die("--pick: \"%s\" is not a grid index 0..737279", buf);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            if (cap > MAX_PICK) die("--pick: more than %s indices", "100000");
            v = (uint64_t *)realloc(v, cap * sizeof *v);
            if (!v) die("%s", "out of memory");
        }
        v[n++] = (uint64_t)x;
        p = *end ? end + 1 : end;
    }
    if (!n) die("--pick: %s", "no index given");
    *out = v;
    return n;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    const char *out = NULL, *png = NULL, *source = "dsprites-gen", *where = NULL;
    uint64_t n_random = 0, seed = 1, count, i, *pick = NULL;
    int have_random = 0, quiet = 0, png_count = 64, png_cols = 8, png_zoom = 1, k, next_pct = 10;
    size_t n_pick = 0, keep = 0;
    int32_t f[DSPR_NF];
    int at[DSPR_NF];
    /* static: gcc 12 -O3 -march=native (AVX-512 host) vectorised the fill of a stack copy with
       aligned 32-byte stores at a 16-byte-aligned address and crashed */
    static allowed al;
    static geom g;
    heph_rng rng;
    heph_hpd_info info;
    heph_hpd_writer w;
    double values[DSPR_NF][DSPR_MAXV], t0 = now();
    uint8_t img[PICTURE], *kept = NULL;
    int writing = 0;

    cli_budget_default();
    for (k = 0; k < DSPR_NF; k++) { /* every value allowed until --where says otherwise */
        int v;
        for (v = 0; v < (int)dspr_sizes[k]; v++) al.vals[k][v] = v;
        al.nv[k] = (int)dspr_sizes[k];
        at[k] = 0;
    }
    for (k = 1; k < argc; k++) {
        const char *a = argv[k];
        int has_val = !strcmp(a, "--random") || !strcmp(a, "--seed") || !strcmp(a, "--where") ||
                      !strcmp(a, "--png") || !strcmp(a, "--png-count") || !strcmp(a, "--png-cols") || !strcmp(a, "--png-zoom") ||
                      !strcmp(a, "--source") || !strcmp(a, "--pick") || !strcmp(a, "--mem-budget");
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--version")) { printf("gen_dsprites %s (hephaestus.h)\n", HEPH_VERSION_STRING); return 0; }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { quiet = 1; continue; }
        if (has_val && k + 1 >= argc) die("%s needs a value (see --help)", a);
        if (!strcmp(a, "--random")) { n_random = parse_count(argv[++k], "--random"); have_random = 1; }
        else if (!strcmp(a, "--seed")) seed = parse_count(argv[++k], "--seed");
        else if (!strcmp(a, "--where")) where = argv[++k];
        else if (!strcmp(a, "--pick")) n_pick = parse_pick(argv[++k], &pick);
        else if (!strcmp(a, "--png")) png = argv[++k];
        else if (!strcmp(a, "--png-count")) png_count = (int)parse_count(argv[++k], "--png-count");
        else if (!strcmp(a, "--png-cols")) png_cols = (int)parse_count(argv[++k], "--png-cols");
        else if (!strcmp(a, "--png-zoom")) png_zoom = (int)parse_count(argv[++k], "--png-zoom");
        else if (!strcmp(a, "--source")) source = argv[++k];
        else if (!strcmp(a, "--mem-budget")) {
            if (cli_budget_parse(argv[++k]) != 0) die("--mem-budget takes an integer in 1..1073741824 (MB), got \"%s\"", argv[k]);
        }
        else if (a[0] == '-' && a[1]) die("unknown option %s (see --help)", a);
        else if (!out) out = a;
        else die("too many arguments: %s (see --help)", a);
    }
    if (!out && !png) { usage(stderr); return 2; }
    if (have_random && n_random == 0) die("--random needs a count of at least %s", "1");
    if (have_random && n_random > 100000000u) die("--random: at most %s pictures", "100000000");
    if (n_pick && (have_random || where)) die("%s cannot be combined with --random or --where", "--pick");
    if (png_count < 1 || png_count > 10000) die("--png-count must be 1..%s", "10000");
    if (png_cols < 1 || png_cols > 1000) die("--png-cols must be 1..%s", "1000");
    if (png_zoom < 1 || png_zoom > 16) die("--png-zoom must be 1..%s", "16");
    if (strlen(source) > 32) die("--source: \"%s\" is longer than 32 characters", source);
    if (where) parse_where(where, &al);

    if (have_random) {
        count = n_random;
    } else if (n_pick) {
        count = n_pick;
    } else {
        count = 1;
        for (k = 0; k < DSPR_NF; k++) count *= (uint64_t)al.nv[k];
    }
    /* a preview only needs its first pictures */
    if (!out && count > (uint64_t)png_count) count = (uint64_t)png_count;
    if (png) {
        keep = count < (uint64_t)png_count ? (size_t)count : (size_t)png_count;
        kept = (uint8_t *)cli_budget_calloc(keep, PICTURE);
        if (!kept) fail("out of memory for the preview%s", cli_budget_note());
    }

    geom_init(&g);
    dspr_info(&info, count, values);
    info.flags = HEPH_HPD_GENERATED; /* the grid flag only when picture i is grid picture i */
    if (!have_random && !n_pick && count == DSPR_COUNT) info.flags |= HEPH_HPD_GRID;
    info.seed = have_random ? seed : 0;
    snprintf(info.source, sizeof info.source, "%s", source);
    if (out) {
        if (heph_hpd_create(&w, out, &info) != HEPH_OK) { fprintf(stderr, "gen_dsprites: %s\n", w.err); return 1; }
        writing = 1;
    }

    heph_rng_seed(&rng, seed);
    for (k = 0; k < DSPR_NF; k++) f[k] = al.vals[k][0];
    for (i = 0; i < count; i++) {
        if (have_random) {
            for (k = 0; k < DSPR_NF; k++)
                f[k] = al.vals[k][heph_rng_below(&rng, (uint32_t)al.nv[k])];
        } else if (n_pick) {
            dspr_digits(pick[i], f);
        } else if (i > 0) { /* odometer over the (restricted) grid, last factor fastest */
            for (k = DSPR_NF - 1; k >= 0; k--) {
                if (at[k] + 1 < al.nv[k]) { f[k] = al.vals[k][++at[k]]; break; }
                at[k] = 0;
                f[k] = al.vals[k][0];
            }
        }
        render(&g, f, img);
        if (i < keep) memcpy(kept + i * PICTURE, img, PICTURE);
        if (writing && heph_hpd_put_u8(&w, img, f) != HEPH_OK) {
            fprintf(stderr, "gen_dsprites: %s\n", w.err);
            heph_hpd_abort(&w);
            return 1;
        }
        if (!quiet && writing && count >= 100000 && (i + 1) * 100 >= (uint64_t)next_pct * count) {
            fprintf(stderr, "gen_dsprites: %3d%% (%llu of %llu pictures, %.1f s)\n", next_pct,
                    (unsigned long long)(i + 1), (unsigned long long)count, now() - t0);
            next_pct += 10;
        }
    }
    if (writing) {
        if (heph_hpd_finish(&w) != HEPH_OK) { fprintf(stderr, "gen_dsprites: %s\n", w.err); return 1; }
        struct stat st;
        double mb = stat(out, &st) == 0 ? (double)st.st_size / 1e6 : 0.0;
        printf("gen_dsprites: %s: %llu pictures 64x64 1-bit, %s, %.1f MB, %.1f s\n", out,
               (unsigned long long)count,
               have_random ? "random factors" : n_pick ? "picked grid pictures" : where ? "part of the grid" : "full grid",
               mb, now() - t0);
    }
    if (png) {
        int W = heph_grid_width(png_cols, DSPR_SIDE, 2);
        int H = heph_grid_height((int)keep, png_cols, DSPR_SIDE, 2);
        float *fl = (float *)cli_budget_calloc(keep * PICTURE, sizeof(float));
        uint8_t *rgb = fl ? (uint8_t *)cli_budget_calloc((size_t)W * (size_t)H, 3) : NULL;
        size_t j;
        cli_bytes enc = {NULL, 0, 0, 0};
        char err[1300];
        if (!fl || !rgb) fail("out of memory for the preview%s", cli_budget_note());
        for (j = 0; j < keep * PICTURE; j++) fl[j] = kept[j] ? 1.0f : 0.0f;
        heph_image_grid(rgb, fl, (int)keep, png_cols, 1, DSPR_SIDE, DSPR_SIDE, 2);
        if (png_zoom > 1) { /* nearest-neighbour enlargement */
            int Z = png_zoom, x, y;
            uint8_t *big = (uint8_t *)cli_budget_calloc((size_t)W * (size_t)H * (size_t)(Z * Z), 3);
            if (!big) fail("out of memory for the enlarged preview%s", cli_budget_note());
            for (y = 0; y < H * Z; y++)
                for (x = 0; x < W * Z; x++)
                    memcpy(big + ((size_t)y * (size_t)(W * Z) + (size_t)x) * 3,
                           rgb + ((size_t)(y / Z) * (size_t)W + (size_t)(x / Z)) * 3, 3);
            cli_budget_free(rgb);
            rgb = big;
            W *= Z;
            H *= Z;
        }
        if (!stbi_write_png_to_func(cli_bytes_sink, &enc, W, H, 3, rgb, W * 3) || enc.failed)
            fail("%s: cannot encode the PNG (out of memory)", png);
        if (cli_save_bytes(png, enc.p, enc.n, err, sizeof err) != 0) fail("%s", err);
        printf("gen_dsprites: %s: preview of %zu pictures (%dx%d)\n", png, keep, W, H);
        free(enc.p);
        cli_budget_free(fl);
        cli_budget_free(rgb);
    }
    cli_budget_free(kept);
    free(pick);
    return 0;
}
