/* dsprites_check - checks on the .hpd files written by gen_dsprites and dsprites2hpd, for
   tests/test_dsprites.sh. Reads them with the library's reader; prints one "PASS name" or
   "FAIL name: why" line per check and exits 1 if any failed.

   dsprites_check grid FILE             the full grid: header, labels = mixed-radix digits,
                                        picture 1 vs 0, frame, orientation 2pi = 0
   dsprites_check geometry FILE         sizes, centroids, rotation, on the full grid
   dsprites_check where FILE N SPEC...  N pictures, every label allowed by SPEC (name=i, name=lo-hi,
                                        name=a|b-c); "--grid" first: exactly the sub-grid in order
   dsprites_check match FILE GRID       every picture equals the grid picture of its labels
   dsprites_check random FILE N SEED    header of a --random set, labels spread over all values
   dsprites_check indices FILE I,J,..   the labels are the digits of these grid indices
   dsprites_check same A B              same header fields, pixels and labels
   dsprites_check fixture FILE          the 40 pictures of tools/make_dsprites_fixture.py

   The expected values are computed here on their own (not with tools/dsprites.h). */
#define HEPH_FSEEK(fp, off, whence) fseeko((fp), (off_t)(off), (whence))
#define HEPH_FTELL(fp) ((uint64_t)ftello(fp))
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#include <stdlib.h>
#include <string.h>
#include <math.h>

#define S 64
#define P (S * S)
#define NGRID 737280u
#define TWO_PI 6.283185307179586

static const char *names[6] = {"color", "shape", "scale", "orientation", "posX", "posY"};
static const int32_t sizes[6] = {1, 3, 6, 40, 32, 32};
static int fails = 0;

static void pass(const char *name) { printf("PASS %s\n", name); }
static void fail(const char *name, const char *fmt, ...) {
    va_list ap;
    printf("FAIL %s: ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fails++;
}

static void open_or_die(heph_hpd *d, const char *path) {
    if (heph_hpd_open(d, path) != HEPH_OK) {
        printf("FAIL open %s: %s\n", path, d->err);
        exit(1);
    }
}

static uint64_t grid_index(const int32_t *f) {
    uint64_t i = 0;
    int k;
    for (k = 0; k < 6; k++) i = i * (uint64_t)sizes[k] + (uint64_t)f[k];
    return i;
}

static void labels_of(const heph_hpd *d, size_t i, int32_t *f) {
    int k;
    for (k = 0; k < 6; k++) f[k] = heph_hpd_label(d, i, k);
}

/* grid index of factor indices given as (shape, scale, orientation, posX, posY) */
static size_t gi(int shape, int scale, int orient, int px, int py) {
    int32_t f[6];
    f[0] = 0; f[1] = shape; f[2] = scale; f[3] = orient; f[4] = px; f[5] = py;
    return (size_t)grid_index(f);
}

typedef struct {
    int count, x0, x1, y0, y1; /* pixels on; bounding box (inclusive) */
    double cx, cy;             /* centroid of the pixel centres       */
} stats;

static stats picture_stats(const float *img) {
    stats s;
    int x, y;
    double sx = 0, sy = 0;
    memset(&s, 0, sizeof s);
    s.x0 = s.y0 = S; s.x1 = s.y1 = -1;
    for (y = 0; y < S; y++)
        for (x = 0; x < S; x++)
            if (img[y * S + x] > 0.5f) {
                s.count++;
                sx += x + 0.5; sy += y + 0.5;
                if (x < s.x0) s.x0 = x;
                if (x > s.x1) s.x1 = x;
                if (y < s.y0) s.y0 = y;
                if (y > s.y1) s.y1 = y;
            }
    if (s.count) { s.cx = sx / s.count; s.cy = sy / s.count; }
    return s;
}

static stats stats_at(heph_hpd *d, size_t i, float *buf) {
    if (heph_hpd_read_range(d, i, 1, buf) != HEPH_OK) {
        printf("FAIL read: %s\n", d->err);
        exit(1);
    }
    return picture_stats(buf);
}

static int header_is(const char *name, const heph_hpd *d, uint64_t count, uint32_t flags) {
    const heph_hpd_info *in = &d->info;
    int k;
    if (in->count != count) { fail(name, "count %llu, expected %llu", (unsigned long long)in->count, (unsigned long long)count); return 0; }
    if (in->c != 1 || in->h != S || in->w != S || in->dtype != HEPH_PX_BIT || in->value_max != 1.0f) {
        fail(name, "pictures %ux%ux%u type %u value_max %g, expected 1x64x64 1-bit value_max 1", in->c, in->h, in->w,
             in->dtype, (double)in->value_max);
        return 0;
    }
    if (in->flags != flags) { fail(name, "flags %u, expected %u", in->flags, flags); return 0; }
    if (in->n_factors != 6) { fail(name, "%u factors, expected 6", in->n_factors); return 0; }
    for (k = 0; k < 6; k++)
        if (strcmp(in->factors[k].name, names[k]) != 0 || (int32_t)in->factors[k].n_values != sizes[k] || !in->factors[k].values) {
            fail(name, "factor %d is %s with %u values, expected %s with %d values and their real values", k,
                 in->factors[k].name, in->factors[k].n_values, names[k], sizes[k]);
            return 0;
        }
    {   /* real values, as in dSprites' metadata */
        const double *sc = in->factors[2].values, *o = in->factors[3].values, *px = in->factors[4].values;
        const double *sh = in->factors[1].values;
        if (in->factors[0].values[0] != 1.0 || sh[0] != 1.0 || sh[2] != 3.0 || sc[0] != 0.5 ||
            fabs(sc[3] - 0.8) > 1e-12 || sc[5] != 1.0 || o[0] != 0.0 || fabs(o[1] - TWO_PI / 39) > 1e-12 ||
            fabs(o[39] - TWO_PI) > 1e-12 || px[0] != 0.0 || fabs(px[1] - 1.0 / 31) > 1e-12 || px[31] != 1.0 ||
            in->factors[5].values[31] != 1.0) {
            fail(name, "factor values differ from dSprites' (scale %g..%g, orientation %g..%g, pos %g..%g)", sc[0], sc[5],
                 o[0], o[39], px[0], px[31]);
            return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------- */

static void check_grid(const char *path) {
    heph_hpd d;
    size_t i, chunk = 4096, bad_label = (size_t)-1, empty = (size_t)-1, edge = (size_t)-1;
    float *buf;
    int k, ok;
    open_or_die(&d, path);
    if (header_is("grid header", &d, NGRID, HEPH_HPD_LABELS | HEPH_HPD_GRID | HEPH_HPD_GENERATED)) {
        if (d.info.seed != 0) fail("grid header", "seed %llu, expected 0", (unsigned long long)d.info.seed);
        else pass("grid header (737280 pictures, 1-bit, grid flag, 6 factors with dSprites' values)");
    }
    if (d.info.count != NGRID) { heph_hpd_close(&d); return; }
    /* labels: mixed-radix digits of the index, last factor fastest */
    for (i = 0; i < NGRID && bad_label == (size_t)-1; i++) {
        size_t r = i;
        for (k = 5; k >= 0; k--) {
            if (heph_hpd_label(&d, i, k) != (int32_t)(r % (size_t)sizes[k])) bad_label = i;
            r /= (size_t)sizes[k];
        }
    }
    if (bad_label == (size_t)-1) pass("grid labels are the mixed-radix digits of the index");
    else fail("grid labels", "picture %zu has labels that are not the digits of its index", bad_label);
    {
        int32_t a[6], b[6], c[6];
        labels_of(&d, 0, a); labels_of(&d, 1, b); labels_of(&d, 32, c);
        ok = 1;
        for (k = 0; k < 5; k++) ok &= a[k] == b[k];
        ok &= a[5] == 0 && b[5] == 1 && c[4] == 1 && c[5] == 0;
        if (ok) pass("grid order: picture 1 differs from 0 only in posY, picture 32 is posX 1");
        else fail("grid order", "labels of pictures 0, 1, 32 are not (.., 0, 0), (.., 0, 1), (.., 1, 0)");
    }
    buf = (float *)malloc(chunk * P * sizeof(float));
    if (!buf) { fail("grid", "out of memory"); heph_hpd_close(&d); return; }
    {   /* picture 1 is picture 0 moved down by one posY step (32/31 px) */
        stats s0 = stats_at(&d, 0, buf), s1 = stats_at(&d, 1, buf);
        double dy = s1.cy - s0.cy, dx = s1.cx - s0.cx;
        if (dy > 0.5 && dy < 1.6 && fabs(dx) < 0.35 && abs(s1.count - s0.count) <= 12)
            pass("grid: picture 1 is picture 0 one posY step lower");
        else fail("grid picture 1", "centroid moved by (%.2f, %.2f) px, count %d -> %d", dx, dy, s0.count, s1.count);
    }
    {   /* orientation 39 (2 pi) draws the same picture as orientation 0 */
        float *b2 = (float *)malloc(P * sizeof(float));
        size_t bad = (size_t)-1;
        for (i = 0; i < NGRID && b2; i += 1237) {
            int32_t f[6];
            labels_of(&d, i, f);
            f[3] = 39;
            heph_hpd_read_range(&d, i - (size_t)heph_hpd_label(&d, i, 3) * 1024, 1, buf);
            heph_hpd_read_range(&d, (size_t)grid_index(f), 1, b2);
            if (memcmp(buf, b2, P * sizeof(float)) != 0) { bad = i; break; }
        }
        free(b2);
        if (bad == (size_t)-1) pass("grid: orientation 2pi draws the same picture as 0");
        else fail("grid orientation", "picture %zu: orientation 39 differs from 0", bad);
    }
    /* every picture: something drawn, nothing on the outermost rows and columns */
    for (i = 0; i < NGRID; i += chunk) {
        size_t n = NGRID - i < chunk ? NGRID - i : chunk, j;
        int x;
        if (heph_hpd_read_range(&d, i, n, buf) != HEPH_OK) { fail("grid read", "%s", d.err); break; }
        for (j = 0; j < n; j++) {
            const float *img = buf + j * P;
            float on = 0.0f, rim = 0.0f;
            for (x = 0; x < P; x++) on += img[x];
            for (x = 0; x < S; x++) rim += img[x] + img[(S - 1) * S + x] + img[x * S] + img[x * S + S - 1];
            if (on == 0.0f && empty == (size_t)-1) empty = i + j;
            if (rim != 0.0f && edge == (size_t)-1) edge = i + j;
        }
    }
    if (empty == (size_t)-1) pass("grid: every picture has pixels on");
    else fail("grid empty picture", "picture %zu is black", empty);
    if (edge == (size_t)-1) pass("grid: no shape touches the frame");
    else fail("grid frame", "picture %zu has pixels on the outermost rows or columns", edge);
    free(buf);
    heph_hpd_close(&d);
}

/* ---------------------------------------------------------------------------------------- */

static void check_geometry(const char *path) {
    heph_hpd d;
    float *buf = (float *)malloc(3 * P * sizeof(float));
    int s, k, ok;
    static const char *shape_names[3] = {"square", "ellipse", "heart"};
    open_or_die(&d, path);
    if (d.info.count != NGRID || !buf) { fail("geometry", "needs the full grid"); heph_hpd_close(&d); free(buf); return; }
    /* 1. pixel count grows with scale, for each shape (orientation 0, centre) */
    for (s = 0; s < 3; s++) {
        int prev = 0;
        char name[80];
        ok = 1;
        snprintf(name, sizeof name, "geometry: %s pixel count grows with scale", shape_names[s]);
        for (k = 0; k < 6; k++) {
            stats st = stats_at(&d, gi(s, k, 0, 16, 16), buf);
            if (st.count <= prev) { fail(name, "scale %d: %d pixels, scale %d: %d", k - 1, prev, k, st.count); ok = 0; break; }
            prev = st.count;
        }
        if (ok) pass(name);
    }
    /* 2. sizes: square side 20 scale (10..20 px), ellipse 26x14 at scale 1, heart 20 wide */
    ok = 1;
    for (k = 0; k < 6 && ok; k++) {
        stats st = stats_at(&d, gi(0, k, 0, 7, 22), buf);
        int side = 10 + 2 * k, w = st.x1 - st.x0 + 1, h = st.y1 - st.y0 + 1;
        if (abs(w - side) > 1 || abs(h - side) > 1 || abs(st.count - side * side) > 2 * side + 1) {
            fail("geometry: square side is 20*scale", "scale %d: %dx%d box, %d pixels (expected %d px side)", k, w, h, st.count, side);
            ok = 0;
        }
    }
    if (ok) pass("geometry: square side is 20*scale (10..20 px)");
    {
        stats e1 = stats_at(&d, gi(1, 5, 0, 16, 16), buf), e0 = stats_at(&d, gi(1, 0, 0, 16, 16), buf);
        int w1 = e1.x1 - e1.x0 + 1, h1 = e1.y1 - e1.y0 + 1, w0 = e0.x1 - e0.x0 + 1, h0 = e0.y1 - e0.y0 + 1;
        if (abs(w1 - 26) <= 1 && abs(h1 - 14) <= 1 && abs(w0 - 13) <= 1 && abs(h0 - 7) <= 1)
            pass("geometry: ellipse 26x14 at scale 1, 13x7 at 0.5, long axis horizontal");
        else fail("geometry: ellipse size", "scale 1: %dx%d, scale 0.5: %dx%d (expected 26x14, 13x7)", w1, h1, w0, h0);
    }
    {
        stats hs = stats_at(&d, gi(2, 5, 0, 16, 16), buf);
        int w = hs.x1 - hs.x0 + 1, h = hs.y1 - hs.y0 + 1, x, top = 0, bottom = 0;
        for (x = 0; x < S; x++) { top += buf[hs.y0 * S + x] > 0.5f; bottom += buf[hs.y1 * S + x] > 0.5f; }
        if (abs(w - 20) <= 1 && abs(h - 17) <= 1 && bottom <= 2 && top >= 4 && hs.cy < 0.5 * (hs.y0 + hs.y1 + 1))
            pass("geometry: heart 20x17 at scale 1, pointing down");
        else fail("geometry: heart", "%dx%d box, top row %d px, bottom row %d px, centroid y %.2f in rows %d..%d", w, h, top, bottom, hs.cy, hs.y0, hs.y1);
    }
    /* 3. the three shapes differ */
    {
        int a, b, diff_min = P;
        for (s = 0; s < 3; s++) heph_hpd_read_range(&d, gi(s, 3, 7, 10, 20), 1, buf + (size_t)s * P);
        for (a = 0; a < 3; a++)
            for (b = a + 1; b < 3; b++) {
                int x, n = 0;
                for (x = 0; x < P; x++) n += buf[(size_t)a * P + (size_t)x] != buf[(size_t)b * P + (size_t)x];
                if (n < diff_min) diff_min = n;
            }
        if (diff_min >= 20) pass("geometry: square, ellipse and heart differ (>= 20 pixels each pair)");
        else fail("geometry: shapes differ", "two shapes differ in only %d pixels", diff_min);
    }
    /* 4. the centroid follows posX (to the right) and posY (down), 32/31 px per step */
    for (s = 0; s < 2; s++) {
        const char *name = s == 0 ? "geometry: posX moves the shape right, 16..48 px" : "geometry: posY moves the shape down, 16..48 px";
        double first = 0, prev = -1, other0 = 0;
        ok = 1;
        for (k = 0; k < 32 && ok; k++) {
            stats st = stats_at(&d, s == 0 ? gi(0, 2, 0, k, 9) : gi(0, 2, 0, 9, k), buf);
            double along = s == 0 ? st.cx : st.cy, other = s == 0 ? st.cy : st.cx;
            if (k == 0) { first = along; other0 = other; }
            /* 32 px in 31 steps, snapped to whole pixels: steps of 1 px and one of 2 px */
            if (k > 0 && (along - prev < 0.5 || along - prev > 2.1)) { fail(name, "step %d moves by %.2f px", k, along - prev); ok = 0; }
            if (fabs(other - other0) > 0.35) { fail(name, "step %d moves the other coordinate by %.2f px", k, other - other0); ok = 0; }
            prev = along;
        }
        if (ok && (fabs(first - 16.0) > 0.6 || fabs(prev - 48.0) > 0.6)) { fail(name, "centre runs %.2f..%.2f", first, prev); ok = 0; }
        if (ok) pass(name);
    }
    /* 5. rotation about the centre, counter-clockwise as displayed */
    {
        stats e = stats_at(&d, gi(1, 5, 10, 16, 16), buf), e0 = stats_at(&d, gi(1, 5, 0, 16, 16), buf);
        stats q = stats_at(&d, gi(0, 5, 5, 16, 16), buf), q0 = stats_at(&d, gi(0, 5, 0, 16, 16), buf);
        stats h = stats_at(&d, gi(2, 5, 10, 16, 16), buf);
        int ew = e.x1 - e.x0 + 1, eh = e.y1 - e.y0 + 1, qw = q.x1 - q.x0 + 1, q0w = q0.x1 - q0.x0 + 1;
        double hmid = 0.5 * (h.x0 + h.x1 + 1);
        if (eh > ew + 8 && qw > q0w + 5 && abs(e.count - e0.count) < e0.count / 10 && abs(q.count - q0.count) < q0.count / 10 &&
            fabs(e.cx - e0.cx) < 0.5 && fabs(e.cy - e0.cy) < 0.5)
            pass("geometry: rotation about the centre keeps the area (ellipse upright at 92 deg, square a diamond at 46 deg)");
        else fail("geometry: rotation", "ellipse at 92 deg %dx%d (%d vs %d px), square at 46 deg %d wide (vs %d)", ew, eh, e.count, e0.count, qw, q0w);
        if (h.cx < hmid - 0.3) pass("geometry: positive orientation turns counter-clockwise (heart at 92 deg points right)");
        else fail("geometry: rotation direction", "heart at 92 deg: centroid x %.2f, box middle %.2f (expected the point on the right)", h.cx, hmid);
    }
    free(buf);
    heph_hpd_close(&d);
}

/* ---------------------------------------------------------------------------------------- */

static int factor_index(const char *s, size_t n) {
    int k;
    for (k = 0; k < 6; k++)
        if (strlen(names[k]) == n && !strncmp(names[k], s, n)) return k;
    return -1;
}

static void check_where(int argc, char **argv) {
    int grid = 0, a = 0, k, v;
    /* static: gcc 12.2 -O3 -march=native on an AVX-512 host stored to a stack copy of these
       with aligned 32-byte moves at a 16-byte-aligned address (SIGSEGV); see gen_dsprites.c */
    static int nv[6], at[6];
    static int32_t vals[6][40];
    int32_t f[6];
    const char *path;
    unsigned long long n;
    heph_hpd d;
    size_t i;
    char name[300];
    if (argc > 0 && !strcmp(argv[0], "--grid")) { grid = 1; a = 1; }
    if (argc - a < 2) { fail("where", "usage: where [--grid] FILE N SPEC..."); return; }
    path = argv[a];
    n = strtoull(argv[a + 1], NULL, 10);
    for (k = 0; k < 6; k++) { for (v = 0; v < sizes[k]; v++) vals[k][v] = v; nv[k] = sizes[k]; at[k] = 0; }
    snprintf(name, sizeof name, "%s:", grid ? "where on the grid" : "where with --random");
    for (i = (size_t)a + 2; i < (size_t)argc; i++) { /* name=a|b-c */
        const char *eq = strchr(argv[i], '='), *q;
        char on[40];
        if (!eq || (k = factor_index(argv[i], (size_t)(eq - argv[i]))) < 0) { fail("where", "bad spec %s", argv[i]); return; }
        memset(on, 0, sizeof on);
        for (q = eq + 1; *q;) {
            int lo = atoi(q), hi = lo;
            while (*q >= '0' && *q <= '9') q++;
            if (*q == '-') { hi = atoi(++q); while (*q >= '0' && *q <= '9') q++; }
            for (v = lo; v <= hi && v < sizes[k]; v++) on[v] = 1;
            if (*q == '|') q++;
            else if (*q) { fail("where", "bad spec %s", argv[i]); return; }
        }
        for (nv[k] = 0, v = 0; v < sizes[k]; v++)
            if (on[v]) vals[k][nv[k]++] = v;
        snprintf(name + strlen(name), sizeof name - strlen(name), " %s", argv[i]);
    }
    snprintf(name + strlen(name), sizeof name - strlen(name), ", %llu pictures", n);
    open_or_die(&d, path);
    if (!header_is(name, &d, n, HEPH_HPD_LABELS | HEPH_HPD_GENERATED)) { heph_hpd_close(&d); return; }
    for (i = 0; i < d.info.count; i++) {
        labels_of(&d, i, f);
        for (k = 0; k < 6; k++) {
            int okv = 0;
            for (v = 0; v < nv[k]; v++) okv |= vals[k][v] == f[k];
            if (!okv || (grid && f[k] != vals[k][at[k]])) {
                fail(name, "picture %zu: %s index %d is %s", i, names[k], f[k], grid ? "not the next one of the sub-grid" : "not allowed");
                heph_hpd_close(&d);
                return;
            }
        }
        for (k = 5; k >= 0; k--) { /* next tuple of the sub-grid */
            if (at[k] + 1 < nv[k]) { at[k]++; break; }
            at[k] = 0;
        }
    }
    pass(name);
    heph_hpd_close(&d);
}

static void check_match(const char *path, const char *grid_path) {
    heph_hpd d, g;
    float *a = (float *)malloc(P * sizeof(float)), *b = (float *)malloc(P * sizeof(float));
    size_t i;
    char name[300];
    snprintf(name, sizeof name, "%s: each picture is the grid picture of its factors", path);
    open_or_die(&d, path);
    open_or_die(&g, grid_path);
    for (i = 0; i < d.info.count; i++) {
        int32_t f[6];
        labels_of(&d, i, f);
        if (heph_hpd_read_range(&d, i, 1, a) != HEPH_OK || heph_hpd_read_range(&g, (size_t)grid_index(f), 1, b) != HEPH_OK ||
            memcmp(a, b, P * sizeof(float)) != 0) {
            fail(name, "picture %zu differs from grid picture %llu", i, (unsigned long long)grid_index(f));
            break;
        }
    }
    if (i == d.info.count) pass(name);
    free(a); free(b);
    heph_hpd_close(&d);
    heph_hpd_close(&g);
}

static void check_random(const char *path, unsigned long long n, unsigned long long seed) {
    heph_hpd d;
    int seen[6][40], k, v, ok = 1;
    uint64_t prev = 0, descents = 0;
    size_t i;
    char name[200];
    snprintf(name, sizeof name, "random: %llu pictures, seed %llu stored, every factor value drawn", n, seed);
    memset(seen, 0, sizeof seen);
    open_or_die(&d, path);
    if (!header_is(name, &d, n, HEPH_HPD_LABELS | HEPH_HPD_GENERATED)) { heph_hpd_close(&d); return; }
    if (d.info.seed != seed) { fail(name, "seed %llu stored", (unsigned long long)d.info.seed); heph_hpd_close(&d); return; }
    for (i = 0; i < d.info.count; i++) {
        int32_t f[6];
        labels_of(&d, i, f);
        for (k = 0; k < 6; k++) seen[k][f[k]]++;
        if (i > 0 && grid_index(f) < prev) descents++;
        prev = grid_index(f);
    }
    for (k = 0; k < 6; k++)
        for (v = 0; v < sizes[k]; v++)
            if (!seen[k][v]) { if (ok) fail(name, "%s value %d never drawn", names[k], v); ok = 0; }
    if (ok && n > 10 && descents < n / 4) { fail(name, "the factors look ordered, not random"); ok = 0; }
    if (ok) pass(name);
    heph_hpd_close(&d);
}

static void check_same(const char *pa, const char *pb) {
    heph_hpd a, b;
    float *x = (float *)malloc(P * sizeof(float)), *y = (float *)malloc(P * sizeof(float));
    size_t i;
    int k;
    char name[600];
    snprintf(name, sizeof name, "same pictures and labels: %s and %s", pa, pb);
    open_or_die(&a, pa);
    open_or_die(&b, pb);
    if (a.info.count != b.info.count || a.info.n_factors != b.info.n_factors) { fail(name, "counts differ"); goto out; }
    for (i = 0; i < a.info.count; i++) {
        for (k = 0; k < (int)a.info.n_factors; k++)
            if (heph_hpd_label(&a, i, k) != heph_hpd_label(&b, i, k)) { fail(name, "picture %zu: labels differ", i); goto out; }
        heph_hpd_read_range(&a, i, 1, x);
        heph_hpd_read_range(&b, i, 1, y);
        if (memcmp(x, y, P * sizeof(float)) != 0) { fail(name, "picture %zu: pixels differ", i); goto out; }
    }
    pass(name);
out:
    free(x); free(y);
    heph_hpd_close(&a);
    heph_hpd_close(&b);
}

/* the labels of picture j are the digits of grid index list[j] */
static void check_indices(const char *path, const char *list) {
    heph_hpd d;
    size_t i = 0;
    const char *p = list;
    char name[300];
    snprintf(name, sizeof name, "pick: labels are the digits of %s", list);
    open_or_die(&d, path);
    while (*p) {
        int32_t f[6];
        unsigned long long want = strtoull(p, NULL, 10);
        if (i >= d.info.count) { fail(name, "only %llu pictures", (unsigned long long)d.info.count); heph_hpd_close(&d); return; }
        labels_of(&d, i, f);
        if (grid_index(f) != want) { fail(name, "picture %zu has grid index %llu", i, (unsigned long long)grid_index(f)); heph_hpd_close(&d); return; }
        i++;
        while (*p && *p != ',') p++;
        if (*p) p++;
    }
    if (i != d.info.count) fail(name, "%llu pictures, %zu indices", (unsigned long long)d.info.count, i);
    else pass(name);
    heph_hpd_close(&d);
}

/* the formula of tools/make_dsprites_fixture.py */
static void check_fixture(const char *path) {
    heph_hpd d;
    float *img = (float *)malloc(P * sizeof(float));
    int i, x, y, k;
    char name[300];
    snprintf(name, sizeof name, "fixture pixels and classes: %s", path);
    open_or_die(&d, path);
    if (!header_is(name, &d, 40, HEPH_HPD_LABELS)) { heph_hpd_close(&d); free(img); return; }
    for (i = 0; i < 40; i++) {
        int x0 = (5 * i) % 44 + 2, y0 = (3 * i + 1) % 44 + 2, w = 6 + i % 11, h = 4 + (7 * i) % 13;
        int32_t want[6];
        want[0] = 0; want[1] = i % 3; want[2] = (5 * i) % 6; want[3] = (7 * i) % 40; want[4] = (11 * i) % 32; want[5] = (13 * i) % 32;
        for (k = 0; k < 6; k++)
            if (heph_hpd_label(&d, (size_t)i, k) != want[k]) { fail(name, "picture %d: %s is %d, expected %d", i, names[k], heph_hpd_label(&d, (size_t)i, k), want[k]); goto out; }
        heph_hpd_read_range(&d, (size_t)i, 1, img);
        for (y = 0; y < S; y++)
            for (x = 0; x < S; x++) {
                float v = (x >= x0 && x < x0 + w && y >= y0 && y < y0 + h) ? 1.0f : 0.0f;
                if (img[y * S + x] != v) { fail(name, "picture %d pixel (%d, %d) is %g, expected %g", i, x, y, (double)img[y * S + x], (double)v); goto out; }
            }
    }
    pass(name);
out:
    free(img);
    heph_hpd_close(&d);
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "grid")) check_grid(argv[2]);
    else if (argc >= 3 && !strcmp(argv[1], "geometry")) check_geometry(argv[2]);
    else if (argc >= 4 && !strcmp(argv[1], "where")) check_where(argc - 2, argv + 2);
    else if (argc >= 4 && !strcmp(argv[1], "match")) check_match(argv[2], argv[3]);
    else if (argc >= 5 && !strcmp(argv[1], "random")) check_random(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
    else if (argc >= 4 && !strcmp(argv[1], "same")) check_same(argv[2], argv[3]);
    else if (argc >= 4 && !strcmp(argv[1], "indices")) check_indices(argv[2], argv[3]);
    else if (argc >= 3 && !strcmp(argv[1], "fixture")) check_fixture(argv[2]);
    else { fprintf(stderr, "usage: see the top of tests/dsprites_check.c\n"); return 2; }
    return fails ? 1 : 0;
}
