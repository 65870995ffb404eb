/* sprites_check - checks of tools/sprites_render.h and of .hpd files made by gen_sprites.
   Driven by tests/test_sprites.sh; each subcommand is one check: exit 0 on success, else
   exit 1 with the reason on stdout (one line).

   sprites_check map                  identity <-> attributes and index <-> factors round trips,
                                      counts, names
   sprites_check splits               the identity split is the documented permutation
                                      (splitmix64 Fisher-Yates, seed 23): 500/72/100, disjoint,
                                      every attribute value in every split; the pose split
   sprites_check pictures             sanity of rendered pictures (background, size, centring,
                                      every identity and every pose a different picture, each
                                      attribute visible, same bytes twice, bad factors refused)
   sprites_check fit                  every one of the 32,256 pictures: the character inside
                                      the frame, 40..56 px tall with its weapon
   sprites_check hpd FILE MODE SPLIT POSE IDS RULES COUNT
                                      a generated file: MODE order | random; SPLIT train | val |
                                      test | all; POSE train | test | all; IDS as --identities or
                                      "-"; RULES as --where or "-"; COUNT pictures expected.
                                      Order mode: exactly the selection, in index order
   sprites_check split-files TRAIN VAL TEST
                                      three files (one pose each) of the three splits: 500, 72
                                      and 100 identities, disjoint, together all 672            */
#define HEPHAESTUS_STATIC /* only the .hpd reader is used */
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#define HEPH_SPRITES_IMPLEMENTATION
#include "tools/sprites_render.h"
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>

#define NP (HEPH_SPR_SIZE * HEPH_SPR_SIZE)
#define NID HEPH_SPR_N_IDENTITIES

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
    static const int counts[9] = {3, 4, 7, 4, 2, 672, 3, 4, 4};
    static const char *const names[9] = {"skin", "hair", "top", "bottom", "weapon", "identity", "action", "view", "frame"};
    int id, k, a[5], f[9];
    long idx;
    for (k = 0; k < 9; k++)
        if (heph_spr_count(k) != counts[k] || strcmp(heph_spr_name(k), names[k]))
            return fail("factor %d is %s with %d values, expected %s with %d", k, heph_spr_name(k), heph_spr_count(k), names[k], counts[k]);
    if (3 * 4 * 7 * 4 * 2 != NID || HEPH_SPR_COUNT != 672L * 48L) return fail("counts: 672 identities x 48 poses");
    for (id = 0; id < NID; id++) { /* the documented mixed radix, weapon fastest */
        heph_spr_attributes(id, a);
        if ((((a[0] * 4 + a[1]) * 7 + a[2]) * 4 + a[3]) * 2 + a[4] != id)
            return fail("identity %d is not ((((skin*4+hair)*7+top)*4+bottom)*2+weapon", id);
        if (heph_spr_identity(a) != id) return fail("identity %d maps back to %d", id, heph_spr_identity(a));
    }
    for (idx = 0; idx < HEPH_SPR_COUNT; idx++) {
        heph_spr_factors(idx, f);
        for (k = 0; k < 9; k++)
            if (f[k] < 0 || f[k] >= counts[k]) return fail("index %ld: factor %s out of range", idx, names[k]);
        if (heph_spr_index(f) != idx) return fail("index %ld maps back to %ld", idx, heph_spr_index(f));
        if ((long)f[5] * 48 + (f[6] * 4 + f[7]) * 4 + f[8] != idx) return fail("index %ld is not identity*48 + (action*4+view)*4+frame", idx);
        if (heph_spr_identity(f) != f[5]) return fail("index %ld: identity disagrees with the attributes", idx);
    }
    heph_spr_factors(12345, f);
    f[HEPH_SPR_IDENTITY] = (f[HEPH_SPR_IDENTITY] + 1) % NID;
    if (heph_spr_index(f) != -1) return fail("an identity that disagrees with its attributes is accepted");
    heph_spr_factors(0, f);
    f[HEPH_SPR_VIEW] = 4;
    if (heph_spr_index(f) != -1) return fail("view 4 is accepted");
    a[0] = 3; a[1] = a[2] = a[3] = a[4] = 0;
    if (heph_spr_identity(a) != -1) return fail("skin 3 gives an identity");
    if (strcmp(heph_spr_value_name(HEPH_SPR_TOP, 6), "steel_armour") || strcmp(heph_spr_value_name(HEPH_SPR_VIEW, 3), "right") ||
        strcmp(heph_spr_value_name(HEPH_SPR_WEAPON, 1), "staff") || heph_spr_value_name(HEPH_SPR_WEAPON, 2)[0])
        return fail("value names are wrong");
    return 0;
}

/* the documented permutation, written again from the top comment of sprites_render.h */
static void doc_order(int order[NID]) {
    uint64_t s = 23;
    int i;
    for (i = 0; i < NID; i++) order[i] = i;
    for (i = NID - 1; i > 0; i--) {
        uint64_t z;
        int j, t;
        s += 0x9E3779B97F4A7C15ull;
        z = s;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        j = (int)(z % (uint64_t)(i + 1));
        t = order[i]; order[i] = order[j]; order[j] = t;
    }
}

static int check_splits(void) {
    int order[NID], doc[NID], seen[NID], n[3] = {0, 0, 0}, has[3][5][7], i, k, a[5], s, v;
    heph_spr_split_order(order);
    doc_order(doc);
    memset(seen, 0, sizeof seen);
    memset(has, 0, sizeof has);
    for (i = 0; i < NID; i++) {
        if (order[i] != doc[i]) return fail("split order[%d] = %d, the documented permutation says %d", i, order[i], doc[i]);
        if (order[i] < 0 || order[i] >= NID || seen[order[i]]++) return fail("the split order is no permutation (at %d)", i);
    }
    for (i = 0; i < NID; i++) {
        int want = i < 500 ? HEPH_SPR_TRAIN : (i < 572 ? HEPH_SPR_VAL : HEPH_SPR_TEST);
        s = heph_spr_split(order[i]);
        if (s != want) return fail("identity %d at position %d is in split %d, expected %d", order[i], i, s, want);
        n[s]++;
        heph_spr_attributes(order[i], a);
        for (k = 0; k < 5; k++) has[s][k][a[k]] = 1;
    }
    if (n[0] != 500 || n[1] != 72 || n[2] != 100) return fail("split sizes %d/%d/%d, expected 500/72/100", n[0], n[1], n[2]);
    if (heph_spr_split(-1) != -1 || heph_spr_split(NID) != -1) return fail("out-of-range identities get a split");
    for (s = 0; s < 3; s++)
        for (k = 0; k < 5; k++)
            for (v = 0; v < heph_spr_count(k); v++)
                if (!has[s][k][v]) return fail("split %d has no identity with %s %d", s, heph_spr_name(k), v);
    /* poses: 12 test (one frame per action and view: (action + view) mod 4), 36 train */
    {
        int nt = 0, act, view, fr, tr_val[3][4] = {{0}};
        for (act = 0; act < 3; act++)
            for (view = 0; view < 4; view++) {
                int per = 0;
                for (fr = 0; fr < 4; fr++) {
                    int t = heph_spr_pose_test(act, view, fr);
                    if (t != (fr == (act + view) % 4)) return fail("pose (%d,%d,%d) is in the wrong pose split", act, view, fr);
                    per += t;
                    nt += t;
                    if (!t) { tr_val[0][act] = tr_val[1][view] = tr_val[2][fr] = 1; }
                }
                if (per != 1) return fail("action %d view %d holds out %d frames, not 1", act, view, per);
            }
        if (nt != 12) return fail("%d test poses, expected 12", nt);
        for (i = 0; i < 4; i++)
            if ((i < 3 && !tr_val[0][i]) || !tr_val[1][i] || !tr_val[2][i]) return fail("a factor value is missing from the train poses");
        if (heph_spr_pose_test(3, 0, 0) != -1 || heph_spr_pose_test(0, 0, 4) != -1) return fail("an invalid pose gets a pose split");
    }
    return 0;
}

static void render_id(uint8_t *px, int id, int action, int view, int frame) {
    int f[9];
    heph_spr_factors((long)id * 48 + (action * 4 + view) * 4 + frame, f);
    heph_spr_render(px, f);
}

static int npix_diff(const uint8_t *a, const uint8_t *b) {
    int i, n = 0;
    for (i = 0; i < NP; i++) n += a[i] != b[i] || a[NP + i] != b[NP + i] || a[2 * NP + i] != b[2 * NP + i];
    return n;
}

static int is_bg(const uint8_t *px, int i) {
    return px[i] == HEPH_SPR_BG_R && px[NP + i] == HEPH_SPR_BG_G && px[2 * NP + i] == HEPH_SPR_BG_B;
}

/* bounding box of the non-background pixels {x0, x1, y0, y1}; mean column of rows 30..44 */
static void figure_box(const uint8_t *px, int *bx, double *mid) {
    int x, y, n = 0;
    long sx = 0;
    bx[0] = bx[2] = 64; bx[1] = bx[3] = -1;
    for (y = 0; y < 64; y++)
        for (x = 0; x < 64; x++)
            if (!is_bg(px, y * 64 + x)) {
                if (x < bx[0]) bx[0] = x;
                if (x > bx[1]) bx[1] = x;
                if (y < bx[2]) bx[2] = y;
                if (y > bx[3]) bx[3] = y;
                if (y >= 30 && y < 45) { sx += x; n++; }
            }
    *mid = n ? (double)sx / (double)n : -1.0;
}

/* FNV-1a of a picture */
static uint64_t hash_px(const uint8_t *px) {
    uint64_t h = 1469598103934665603ull;
    int i;
    for (i = 0; i < HEPH_SPR_PIXELS; i++) h = (h ^ px[i]) * 1099511628211ull;
    return h;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int check_pictures(void) {
    static uint8_t a[HEPH_SPR_PIXELS], b[HEPH_SPR_PIXELS], poses[48][HEPH_SPR_PIXELS];
    static uint64_t h[NID];
    int id, k, v, p, q, f[9], bx[4], attr[5];
    double mid;

    /* bad factors: -1, buffer untouched */
    heph_spr_factors(100, f);
    f[HEPH_SPR_FRAME] = 4;
    memset(a, 7, sizeof a);
    if (heph_spr_render(a, f) != -1 || a[0] != 7 || a[HEPH_SPR_PIXELS - 1] != 7) return fail("render accepted frame 4 or wrote the buffer");
    heph_spr_factors(100, f);
    f[HEPH_SPR_IDENTITY] = 101;
    if (heph_spr_render(a, f) != -1) return fail("render accepted an identity that disagrees with the attributes");

    /* every identity, three poses: background corners, size, centring; all 672 differ */
    for (id = 0; id < NID; id++) {
        for (p = 0; p < 3; p++) {
            static const int pose[3][3] = {{0, 0, 0}, {2, 1, 2}, {1, 2, 3}};
            render_id(a, id, pose[p][0], pose[p][1], pose[p][2]);
            if (!is_bg(a, 0) || !is_bg(a, 63) || !is_bg(a, 63 * 64) || !is_bg(a, 63 * 64 + 63))
                return fail("identity %d pose %d: a corner is not the background colour", id, p);
            figure_box(a, bx, &mid);
            if (bx[3] - bx[2] + 1 < 40 || bx[3] - bx[2] + 1 > 56)
                return fail("identity %d pose %d: the figure is %d px tall (40..56 expected)", id, p, bx[3] - bx[2] + 1);
            if (p == 0 && (mid < 29.0 || mid > 35.0)) /* facing the viewer, standing: centred */
                return fail("identity %d walking, front view: the torso's mean column is %.1f (32 +- 3)", id, mid);
            if (bx[0] < 1 || bx[1] > 62 || bx[2] < 1 || bx[3] > 62) return fail("identity %d pose %d touches the border", id, p);
            if (p == 0) {
                render_id(b, id, 0, 0, 0);
                if (memcmp(a, b, sizeof a)) return fail("two renders of identity %d differ", id);
                h[id] = hash_px(a);
            }
        }
    }
    qsort(h, NID, sizeof h[0], cmp_u64);
    for (id = 1; id < NID; id++)
        if (h[id] == h[id - 1]) return fail("two identities give the same picture (walk, front, frame 0)");

    /* each attribute is visible in every view: changing it alone changes many pixels */
    for (k = 0; k < 5; k++)
        for (v = 1; v < heph_spr_count(k); v++)
            for (p = 0; p < 4; p++) {
                int lo, n;
                attr[0] = 1; attr[1] = 0; attr[2] = 2; attr[3] = 1; attr[4] = 0;
                attr[k] = v - 1;
                render_id(a, heph_spr_identity(attr), 0, p, 1);
                attr[k] = v;
                render_id(b, heph_spr_identity(attr), 0, p, 1);
                n = npix_diff(a, b);
                lo = k == HEPH_SPR_SKIN && p == 2 ? 8 : 25; /* from behind only the hands show the skin */
                if (n < lo) return fail("%s %d -> %d changes only %d pixels in view %d", heph_spr_name(k), v - 1, v, n, p);
            }

    /* the 48 poses of a few identities are 48 different pictures; front and back differ a lot */
    for (id = 0; id < NID; id += 97) {
        for (p = 0; p < 48; p++) render_id(poses[p], id, p / 16, p / 4 % 4, p % 4);
        for (p = 0; p < 48; p++)
            for (q = p + 1; q < 48; q++)
                if (npix_diff(poses[p], poses[q]) < 12)
                    return fail("identity %d: poses %d and %d differ in only %d pixels", id, p, q, npix_diff(poses[p], poses[q]));
        for (p = 0; p < 3; p++)
            if (npix_diff(poses[p * 16], poses[p * 16 + 8]) < 60) return fail("identity %d action %d: front and back look alike", id, p);
    }
    return 0;
}

static int check_fit(void) {
    static uint8_t a[HEPH_SPR_PIXELS];
    long idx;
    int f[9], bx[4], lo = 64, hi = 0;
    double mid;
    for (idx = 0; idx < HEPH_SPR_COUNT; idx++) {
        heph_spr_factors(idx, f);
        if (heph_spr_render(a, f) != 0) return fail("picture %ld: render failed", idx);
        figure_box(a, bx, &mid);
        if (bx[0] < 1 || bx[1] > 62 || bx[2] < 1 || bx[3] > 62) return fail("picture %ld touches the border", idx);
        if (bx[3] - bx[2] + 1 < lo) lo = bx[3] - bx[2] + 1;
        if (bx[3] - bx[2] + 1 > hi) hi = bx[3] - bx[2] + 1;
    }
    if (lo < 40 || hi > 56) return fail("figures are %d..%d px tall, expected within 40..56", lo, hi);
    printf("32256 pictures inside the frame, %d..%d px tall\n", lo, hi);
    return 0;
}

/* test-side parsers: rules "k=v|v,..." (names or numbers), identities "I,J,K-L" */
static int parse_rules(const char *spec, uint32_t allowed[9]) {
    char buf[256], *tok, *save = NULL;
    int k;
    for (k = 0; k < 9; k++) allowed[k] = ~0u;
    if (!strcmp(spec, "-")) return 1;
    snprintf(buf, sizeof buf, "%s", spec);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '='), *v;
        uint32_t set = 0;
        if (!eq) return 0;
        *eq = 0;
        for (k = 0; k < 9 && strcmp(tok, heph_spr_name(k)); k++) {}
        if (k == 9) k = atoi(tok);
        for (v = eq + 1; *v; v++) {
            set |= 1u << atoi(v);
            while (v[1] && v[1] != '|') v++;
            if (v[1] == '|') v++;
        }
        allowed[k] &= set;
    }
    return 1;
}

static void parse_ids(const char *spec, unsigned char want[NID]) {
    char buf[4096], *tok, *save = NULL;
    memset(want, !strcmp(spec, "-"), NID);
    if (!strcmp(spec, "-")) return;
    snprintf(buf, sizeof buf, "%s", spec);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        int x = atoi(tok), y = dash ? atoi(dash + 1) : x;
        for (; x <= y; x++) want[x] = 1;
    }
}

static int split_code(const char *s) {
    return !strcmp(s, "train") ? 0 : !strcmp(s, "val") ? 1 : !strcmp(s, "test") ? 2 : 3;
}

static int check_hpd(const char *path, const char *mode, const char *split_s, const char *pose_s, const char *ids_s,
                     const char *rules, long expect) {
    heph_hpd d;
    uint32_t allowed[9];
    unsigned char want[NID];
    static float px[HEPH_SPR_PIXELS];
    static uint8_t ref[HEPH_SPR_PIXELS];
    static int seen[NID];
    long i, prev = -1, n_sel = 0, n_seen = 0;
    int k, f[9], order = !strcmp(mode, "order"), split = split_code(split_s);
    int pose_split = !strcmp(pose_s, "train") ? 0 : (!strcmp(pose_s, "test") ? 1 : 2);
    if (!parse_rules(rules, allowed)) return fail("bad rules");
    parse_ids(ids_s, want);
    if (heph_hpd_open(&d, path) != HEPH_OK) { printf("%s\n", d.err); return 1; }
    if ((long)d.info.count != expect) return fail("%ld pictures, expected %ld", (long)d.info.count, expect);
    if (d.info.c != 3 || d.info.h != 64 || d.info.w != 64 || d.info.dtype != HEPH_PX_U8 || d.info.value_max != 255.0f)
        return fail("picture format is not u8 3x64x64 value_max 255");
    if (d.info.flags != (uint32_t)(HEPH_HPD_GENERATED | HEPH_HPD_LABELS))
        return fail("flags 0x%x (want GENERATED|LABELS, never GRID)", (unsigned)d.info.flags);
    if (d.info.n_factors != 9) return fail("%u factors", (unsigned)d.info.n_factors);
    for (k = 0; k < 9; k++) {
        int v;
        if (strcmp(d.info.factors[k].name, heph_spr_name(k)) || (int)d.info.factors[k].n_values != heph_spr_count(k))
            return fail("factor %d is not %s", k, heph_spr_name(k));
        for (v = 0; v < heph_spr_count(k); v++)
            if (!d.info.factors[k].values || d.info.factors[k].values[v] != (double)v)
                return fail("factor %d value %d is not %d", k, v, v);
    }
    memset(seen, 0, sizeof seen);
    for (i = 0; i < expect; i++) {
        long idx;
        for (k = 0; k < 9; k++) f[k] = heph_hpd_label(&d, (size_t)i, k);
        idx = heph_spr_index(f);
        if (idx < 0) return fail("picture %ld has out-of-range or inconsistent factors (identity %d)", i, f[5]);
        for (k = 0; k < 9; k++)
            if (k != HEPH_SPR_IDENTITY && !((allowed[k] >> f[k]) & 1u)) return fail("picture %ld breaks the rule on %s", i, heph_spr_name(k));
        if (!want[f[5]]) return fail("picture %ld has identity %d, not listed", i, f[5]);
        if (split < 3 && heph_spr_split(f[5]) != split) return fail("picture %ld: identity %d is not in split %s", i, f[5], split_s);
        if (pose_split < 2 && heph_spr_pose_test(f[6], f[7], f[8]) != pose_split)
            return fail("picture %ld: pose (%d,%d,%d) is not a %s pose", i, f[6], f[7], f[8], pose_s);
        if (order && idx <= prev) return fail("order: picture %ld has index %ld, not after the one before", i, idx);
        prev = idx;
        if (!seen[f[5]]++) n_seen++;
        if (i < 40 || i % 89 == 0 || i == expect - 1) { /* pixels are the renderer's */
            size_t j = (size_t)i;
            heph_hpd_read(&d, &j, 1, px);
            heph_spr_render(ref, f);
            for (k = 0; k < HEPH_SPR_PIXELS; k++)
                if ((int)(px[k] * 255.0f + 0.5f) != ref[k]) return fail("picture %ld pixel %d differs from a fresh render", i, k);
        }
    }
    heph_hpd_close(&d);
    if (order) { /* every selected identity appears */
        int id, a[5];
        for (id = 0; id < NID; id++) {
            int ok = want[id] && (split == 3 || heph_spr_split(id) == split);
            heph_spr_attributes(id, a);
            for (k = 0; k < 5; k++) ok = ok && ((allowed[k] >> a[k]) & 1u);
            n_sel += ok;
            if (ok && !seen[id]) return fail("identity %d is selected but never appears", id);
        }
        if (n_seen != n_sel) return fail("%ld identities appear, %ld selected", n_seen, n_sel);
    }
    return 0;
}

static int file_ids(const char *path, int *owner, int code) {
    heph_hpd d;
    size_t i;
    if (heph_hpd_open(&d, path) != HEPH_OK) { printf("%s\n", d.err); return -1; }
    for (i = 0; i < d.info.count; i++) {
        int id = heph_hpd_label(&d, i, HEPH_SPR_IDENTITY);
        if (owner[id] >= 0 && owner[id] != code) { heph_hpd_close(&d); fail("identity %d is in two splits", id); return -1; }
        owner[id] = code;
    }
    heph_hpd_close(&d);
    return 0;
}

static int check_split_files(char **paths) {
    int owner[NID], n[3] = {0, 0, 0}, s, id;
    for (id = 0; id < NID; id++) owner[id] = -1;
    for (s = 0; s < 3; s++)
        if (file_ids(paths[s], owner, s) != 0) return 1;
    for (id = 0; id < NID; id++) {
        if (owner[id] < 0) return fail("identity %d is in no split file", id);
        n[owner[id]]++;
    }
    if (n[0] != 500 || n[1] != 72 || n[2] != 100) return fail("the files hold %d/%d/%d identities, expected 500/72/100", n[0], n[1], n[2]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "map")) return check_map();
    if (argc == 2 && !strcmp(argv[1], "splits")) return check_splits();
    if (argc == 2 && !strcmp(argv[1], "pictures")) return check_pictures();
    if (argc == 2 && !strcmp(argv[1], "fit")) return check_fit();
    if (argc == 9 && !strcmp(argv[1], "hpd")) return check_hpd(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], atol(argv[8]));
    if (argc == 5 && !strcmp(argv[1], "split-files")) return check_split_files(argv + 2);
    fprintf(stderr, "usage: sprites_check map | splits | pictures | fit | hpd FILE order|random SPLIT POSE IDS RULES COUNT |\n"
                    "       split-files TRAIN VAL TEST\n");
    return 2;
}
