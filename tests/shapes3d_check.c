/* shapes3d_check - checks of tools/shapes3d_render.h and of .hpd files made by gen_shapes3d.
   Driven by tests/test_shapes3d.sh; each subcommand is one check: exit 0 on success, else
   exit 1 with the reason on stdout (one line).

   shapes3d_check map                         index <-> factors round trip, factor values
   shapes3d_check pictures                    sanity of rendered pictures
   shapes3d_check hpd FILE MODE RULES COUNT   a generated file: MODE grid | random | violate;
                                             RULES as --where (index sets per factor)
   shapes3d_check violate-stats FILE          --violate "shape=2,wall_hue=3" is uniform over
                                             the tuples that break a rule                     */
#define HEPHAESTUS_STATIC /* only the .hpd reader and the RNG are used */
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#define HEPH_SHAPES3D_IMPLEMENTATION
#include "tools/shapes3d_render.h"
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdarg.h>

#define NP (HEPH_S3D_SIZE * HEPH_S3D_SIZE)

/* print the reason (one line) and return 1 */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    return 1;
}

static int check_map(void) {
    long idx;
    int f[6], g[6], k;
    for (idx = 0; idx < HEPH_S3D_COUNT; idx++) {
        heph_shapes3d_factors(idx, f);
        for (k = 0; k < 6; k++)
            if (f[k] < 0 || f[k] >= heph_shapes3d_count(k)) return fail("index %ld: factor %d out of range", idx, k);
        if (heph_shapes3d_index(f) != idx) return fail("index %ld maps back to %ld", idx, heph_shapes3d_index(f));
        /* the published formula, orientation fastest */
        if (((((f[0] * 10 + f[1]) * 10 + f[2]) * 8 + f[3]) * 4 + f[4]) * 15 + f[5] != idx)
            return fail("index %ld disagrees with ((((f*10+w)*10+o)*8+s)*4+sh)*15+or", idx);
    }
    heph_shapes3d_factors(HEPH_S3D_COUNT - 1, f);
    if (f[0] != 9 || f[1] != 9 || f[2] != 9 || f[3] != 7 || f[4] != 3 || f[5] != 14)
        return fail("last index has wrong factors");
    g[0] = 1; g[1] = 2; g[2] = 3; g[3] = 4; g[4] = 1; g[5] = 5;
    if (heph_shapes3d_index(g) != ((((1L * 10 + 2) * 10 + 3) * 8 + 4) * 4 + 1) * 15 + 5)
        return fail("index(1,2,3,4,1,5) = %ld", heph_shapes3d_index(g));
    g[3] = 8;
    if (heph_shapes3d_index(g) != -1) return fail("out-of-range scale 8 gives index %ld", heph_shapes3d_index(g));
    if (heph_shapes3d_count(0) != 10 || heph_shapes3d_count(3) != 8 || heph_shapes3d_count(4) != 4 ||
        heph_shapes3d_count(5) != 15)
        return fail("factor counts are wrong");
    if (strcmp(heph_shapes3d_name(0), "floor_hue") || strcmp(heph_shapes3d_name(5), "orientation"))
        return fail("factor names are wrong");
    if (heph_shapes3d_value(3, 0) != 0.75 || heph_shapes3d_value(3, 7) != 1.25 ||
        fabs(heph_shapes3d_value(3, 1) - (0.75 + 0.5 / 7.0)) > 1e-12 ||
        heph_shapes3d_value(5, 0) != -30.0 || heph_shapes3d_value(5, 14) != 30.0 ||
        fabs(heph_shapes3d_value(5, 7)) > 1e-12 || fabs(heph_shapes3d_value(0, 3) - 0.3) > 1e-12 ||
        heph_shapes3d_value(2, 9) != 0.9 || heph_shapes3d_value(4, 3) != 3.0)
        return fail("factor values differ from the 3dshapes.h5 ones");
    return 0;
}

static void render(uint8_t *px, int fl, int wa, int ob, int sc, int sh, int orr) {
    int f[6];
    f[0] = fl; f[1] = wa; f[2] = ob; f[3] = sc; f[4] = sh; f[5] = orr;
    heph_shapes3d_render(px, f);
}

/* mask[i] = 1 where pictures a and b differ at pixel i; returns the count */
static int diff_mask(const uint8_t *a, const uint8_t *b, unsigned char *mask) {
    int i, n = 0;
    for (i = 0; i < NP; i++) {
        mask[i] = a[i] != b[i] || a[NP + i] != b[NP + i] || a[2 * NP + i] != b[2 * NP + i];
        n += mask[i];
    }
    return n;
}

static int check_pictures(void) {
    static uint8_t a[HEPH_S3D_PIXELS], b[HEPH_S3D_PIXELS];
    static unsigned char mask[NP];
    heph_rng rng;
    int i, k, sh, sc, o, n, prev, top[4];
    int bad[6] = {0, 0, 0, 0, 0, 0};

    heph_shapes3d_init();
    bad[3] = 8;
    if (heph_shapes3d_render(a, bad) != -1) return fail("render accepted scale index 8");

    /* sky: rows 0..7 are the constant light blue in any picture (largest objects included) */
    heph_rng_seed(&rng, 5);
    for (n = 0; n < 600; n++) {
        int f[6];
        for (k = 0; k < 6; k++) f[k] = (int)heph_rng_below(&rng, (uint32_t)heph_shapes3d_count(k));
        if (n < 60) { f[3] = 7; f[4] = 3; f[5] = n % 15; } /* tallest object, every view */
        heph_shapes3d_render(a, f);
        for (i = 0; i < 8 * 64; i++)
            if (abs(a[i] - 153) > 2 || abs(a[NP + i] - 226) > 2 || abs(a[2 * NP + i] - 249) > 2)
                return fail("sky pixel %d of picture %d is not light blue (153,226,249)", i, n);
        heph_shapes3d_render(b, f);
        if (memcmp(a, b, sizeof a)) return fail("two renders of picture %d differ", n);
    }

    /* floor hue changes only the bottom part, wall hue only the middle band */
    for (o = 0; o < 15; o += 7) {
        render(a, 0, 3, 6, 4, 0, o);
        render(b, 5, 3, 6, 4, 0, o);
        n = diff_mask(a, b, mask);
        if (n < 64 * 16) return fail("floor hue changes only %d pixels (orientation %d)", n, o);
        for (i = 0; i < NP; i++)
            if (mask[i] && i / 64 < 34) return fail("floor hue changes pixel row %d (orientation %d)", i / 64, o);
        render(b, 0, 8, 6, 4, 0, o);
        n = diff_mask(a, b, mask);
        if (n < 64 * 15) return fail("wall hue changes only %d pixels (orientation %d)", n, o);
        for (i = 0; i < NP; i++)
            if (mask[i] && (i / 64 < 14 || i / 64 > 44)) return fail("wall hue changes pixel row %d (orientation %d)", i / 64, o);
    }

    /* object pixels (where the object hue matters) grow with scale, for every shape; the
       capsule is the tallest shape */
    for (sh = 0; sh < 4; sh++) {
        prev = 0;
        for (sc = 0; sc < 8; sc++) {
            render(a, 1, 5, 0, sc, sh, 7);
            render(b, 1, 5, 6, sc, sh, 7);
            n = diff_mask(a, b, mask);
            if (n <= prev) return fail("shape %d: object pixels do not grow with scale (scale %d)", sh, sc);
            if (sc == 4) {
                for (i = 0; i < NP && !mask[i]; i++) {}
                top[sh] = i / 64;
            }
            prev = n;
        }
        if (prev < 200 || prev > 1400) return fail("shape %d at the largest scale covers %d pixels", sh, prev);
    }
    if (!(top[3] < top[0] && top[3] < top[1] && top[3] < top[2]))
        return fail("the capsule is not the tallest shape (top row %d vs cube %d)", top[3], top[0]);

    /* the four shapes differ; every orientation step changes the picture */
    for (sh = 1; sh < 4; sh++) {
        render(a, 1, 5, 0, 4, sh - 1, 7);
        render(b, 1, 5, 0, 4, sh, 7);
        if (diff_mask(a, b, mask) < 40) return fail("shapes %d and %d look alike", sh - 1, sh);
    }
    for (sh = 0; sh < 4; sh++)
        for (o = 1; o < 15; o++) {
            render(a, 1, 5, 0, 4, sh, o - 1);
            render(b, 1, 5, 0, 4, sh, o);
            if (diff_mask(a, b, mask) < 64) return fail("orientation %d looks like the one before (shape %d)", o, sh);
        }

    /* shadow: at 0 degrees the scene is left-right symmetric but for the object's light, so
       the floor right of the sphere is darker than its mirror image on the left */
    render(a, 1, 5, 0, 4, 2, 7);
    render(b, 1, 5, 6, 4, 2, 7);
    diff_mask(a, b, mask);
    {
        int x, y, darkest = 1000;
        for (y = 40; y < 64; y++)
            for (x = 33; x < 64; x++) {
                int j = y * 64 + x, m = y * 64 + 63 - x, sum, msum;
                if (mask[j] || mask[m]) continue; /* object pixels */
                sum = a[j] + a[NP + j] + a[2 * NP + j];
                msum = a[m] + a[NP + m] + a[2 * NP + m];
                if (msum > 0 && 100 * sum / msum < darkest) darkest = 100 * sum / msum;
            }
        if (darkest > 70) return fail("no shadow right of the sphere (darkest floor pixel %d%% of its mirror)", darkest);
    }
    return 0;
}

/* parse "k=v|v,..." into allowed bit sets (test-side parser: names or numbers) */
static int parse_rules(const char *spec, uint32_t allowed[6]) {
    char buf[256], *tok, *save = NULL;
    int k;
    for (k = 0; k < 6; k++) allowed[k] = ~0u;
    if (!strcmp(spec, "-")) return 1;
    snprintf(buf, sizeof buf, "%s", spec);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '='), *v;
        uint32_t set = 0;
        if (!eq) return 0;
        *eq = 0;
        for (k = 0; k < 6 && strcmp(tok, heph_shapes3d_name(k)); k++) {}
        if (k == 6) k = atoi(tok);
        for (v = eq + 1; *v; v++) {
            set |= 1u << atoi(v);
            while (v[1] && v[1] != '|') v++;
            if (v[1] == '|') v++;
        }
        allowed[k] &= set;
    }
    return 1;
}

static int satisfies(const uint32_t allowed[6], const int f[6]) {
    int k;
    for (k = 0; k < 6; k++)
        if (!((allowed[k] >> f[k]) & 1u)) return 0;
    return 1;
}

static int check_hpd(const char *path, const char *mode, const char *rules, long expect) {
    heph_hpd d;
    uint32_t allowed[6];
    static float px[HEPH_S3D_PIXELS];
    static uint8_t ref[HEPH_S3D_PIXELS];
    long i, prev = -1;
    int k, f[6], grid = !strcmp(mode, "grid"), violate = !strcmp(mode, "violate");
    uint32_t flags;
    if (!parse_rules(rules, allowed)) return fail("bad rules");
    if (heph_hpd_open(&d, path) != HEPH_OK) { printf("%s\n", d.err); return 1; }
    flags = d.info.flags;
    if ((long)d.info.count != expect) return fail("%ld pictures, expected %ld", (long)d.info.count, expect);
    if (d.info.c != 3 || d.info.h != 64 || d.info.w != 64 || d.info.dtype != HEPH_PX_U8 || d.info.value_max != 255.0f)
        return fail("picture format is not u8 3x64x64 value_max 255");
    if (!(flags & HEPH_HPD_GENERATED) || !(flags & HEPH_HPD_LABELS) || (flags & HEPH_HPD_GRID))
        return fail("flags 0x%x (want GENERATED|LABELS, no GRID for a subset)", (unsigned)flags);
    if (d.info.n_factors != 6) return fail("%u factors", (unsigned)d.info.n_factors);
    for (k = 0; k < 6; k++) {
        int v;
        if (strcmp(d.info.factors[k].name, heph_shapes3d_name(k)) || (int)d.info.factors[k].n_values != heph_shapes3d_count(k))
            return fail("factor %d is not %s", k, heph_shapes3d_name(k));
        for (v = 0; v < heph_shapes3d_count(k); v++)
            if (!d.info.factors[k].values || d.info.factors[k].values[v] != heph_shapes3d_value(k, v))
                return fail("factor %d value %d differs from the table", k, v);
    }
    for (i = 0; i < expect; i++) {
        long idx;
        for (k = 0; k < 6; k++) f[k] = heph_hpd_label(&d, (size_t)i, k);
        idx = heph_shapes3d_index(f);
        if (idx < 0) return fail("picture %ld has out-of-range factors", i);
        if (satisfies(allowed, f) == violate)
            return fail(violate ? "picture %ld (index %ld) satisfies the rules" : "picture %ld (index %ld) breaks the rules", i, idx);
        if (grid && idx <= prev) return fail("grid order: picture %ld has index %ld, not after the one before", i, idx);
        prev = idx;
        if (i < 64 || i % 97 == 0 || i == expect - 1) { /* pixels are the renderer's */
            size_t j = (size_t)i;
            heph_hpd_read(&d, &j, 1, px);
            heph_shapes3d_render(ref, f);
            for (k = 0; k < HEPH_S3D_PIXELS; k++)
                if ((int)(px[k] * 255.0f + 0.5f) != ref[k]) return fail("picture %ld pixel %d differs from a fresh render", i, k);
        }
    }
    heph_hpd_close(&d);
    return 0;
}

static int check_violate_stats(const char *path) {
    heph_hpd d;
    long i, n, n_shape2 = 0, n_wall3 = 0;
    if (heph_hpd_open(&d, path) != HEPH_OK) { printf("%s\n", d.err); return 1; }
    n = (long)d.info.count;
    for (i = 0; i < n; i++) {
        n_shape2 += heph_hpd_label(&d, (size_t)i, 4) == 2;
        n_wall3 += heph_hpd_label(&d, (size_t)i, 1) == 3;
    }
    heph_hpd_close(&d);
    /* uniform over the 468,000 breaking tuples: P(shape=2) = 108000/468000 = 0.231,
       P(wall=3) = 36000/468000 = 0.077 */
    if (fabs((double)n_shape2 / (double)n - 0.2308) > 0.05)
        return fail("shape=2 in %ld of %ld violating pictures (expected 23%%)", n_shape2, n);
    if (fabs((double)n_wall3 / (double)n - 0.0769) > 0.03)
        return fail("wall_hue=3 in %ld of %ld violating pictures (expected 7.7%%)", n_wall3, n);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "map")) return check_map();
    if (argc == 2 && !strcmp(argv[1], "pictures")) return check_pictures();
    if (argc == 6 && !strcmp(argv[1], "hpd")) return check_hpd(argv[2], argv[3], argv[4], atol(argv[5]));
    if (argc == 3 && !strcmp(argv[1], "violate-stats")) return check_violate_stats(argv[2]);
    fprintf(stderr, "usage: shapes3d_check map | pictures | hpd FILE grid|random|violate RULES COUNT | violate-stats FILE\n");
    return 2;
}
