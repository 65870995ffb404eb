/* sprites_render.h - procedural "paper-doll" game characters (64x64 RGB) with ground-truth
   factors: a stand-in for the 2D Sprites of Reed et al. 2015 (whose Liberated Pixel Cup art
   may not be redistributed). Our own generic art, drawn in code from anti-aliased shapes.

   672 identities = 3 skin x 4 hair x 7 top x 4 bottom x 2 weapon, each in 48 poses =
   3 actions x 4 views x 4 frames: 32,256 pictures. Nine factors, all stored per picture:
       #  name      n    values
       0  skin      3    0 light, 1 tan, 2 dark
       1  hair      4    0 short brown, 1 long blonde, 2 red ponytail, 3 spiky black
       2  top       7    0 red tunic, 1 blue shirt, 2 green tunic, 3 yellow shirt,
                         4 white shirt, 5 purple robe, 6 steel armour
       3  bottom    4    0 blue trousers, 1 brown trousers, 2 grey trousers, 3 red skirt
       4  weapon    2    0 sword, 1 staff (held in the right hand)
       5  identity  672  ((((skin*4 + hair)*7 + top)*4 + bottom)*2 + weapon   (weapon fastest)
       6  action    3    0 walk, 1 cast (raise the arms), 2 slash (swing the weapon)
       7  view      4    0 front, 1 left, 2 back, 3 right (the way the character faces)
       8  frame     4    0..3 along the action's cycle
   pose  = (action*4 + view)*4 + frame              (0..47)
   index = identity*48 + pose                       (0..32255; the whole set in this order)

   Splits. By identity: the 672 identities in a fixed order, a Fisher-Yates shuffle driven by
   splitmix64 seeded with HEPH_SPR_SPLIT_SEED (23, the issue number): state s = 23; for
   i = 671 down to 1: s += 0x9E3779B97F4A7C15, z = splitmix64 finaliser of s, j = z mod (i+1),
   swap order[i] and order[j]. order[0..499] is train, order[500..571] val, order[572..671]
   test (500 / 72 / 100, as in the papers that used Reed's set). By pose ("seen identity, new
   pose"): for every action and view the frame (action + view) mod 4 is held out: 12 test
   poses, 36 train poses; every action, view and frame value still appears among the train
   poses.

   DO THIS in exactly one C file, before the #include:
       #define HEPH_SPRITES_IMPLEMENTATION
       #include "sprites_render.h"
   then
       uint8_t px[HEPH_SPR_PIXELS];                      // planar CHW: R plane, G plane, B plane
       int f[HEPH_SPR_N_FACTORS];
       heph_spr_factors(index, f);                       // or fill attributes + pose yourself
       heph_spr_render(px, f);                           // ~70 us; thread-safe, no init
   Options: HEPH_SPRITES_STATIC (all functions static), HEPH_SPR_DEF (linkage).

   The drawing: a 3D stick figure (hips, knees, shoulders, elbows, ...) is posed by the action
   and frame, turned about the vertical axis by the view and projected orthographically (model
   units, shown 0.9 times as large). Every body part is a 2D shape (capsule, tapered capsule,
   ellipse, rounded trapezoid, optionally cut by a half-plane) with a signed distance
   function; parts are sorted back to front by their depth after the turn, and each is
   composited with ~1 px coverage anti-aliasing: a dark outline ring (1 px), its fill colour,
   and a darker band along its lower-right edge (light from the upper left). The lowest shoe
   touches the ground line (row 56.5), the body axis is column 32; the figure is about 45 px
   tall, 47..55 px with hair and weapon, always inside the frame. Background: one plain light
   colour, HEPH_SPR_BG_R/G/B. Pure float arithmetic on stack memory, no global mutable state:
   the output is a function of the factors (same bytes every call, on any thread; other
   compiler flags, e.g. FMA contraction, may move a few pixels by one level).               */
#ifndef HEPH_SPRITES_H
#define HEPH_SPRITES_H

#include <stdint.h>

#ifndef HEPH_SPR_DEF
#ifdef HEPH_SPRITES_STATIC
#if defined(__GNUC__)
#define HEPH_SPR_DEF static __attribute__((unused))
#else
#define HEPH_SPR_DEF static
#endif
#else
#define HEPH_SPR_DEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define HEPH_SPR_SIZE 64                                      /* pictures are 64 x 64        */
#define HEPH_SPR_PIXELS (3 * HEPH_SPR_SIZE * HEPH_SPR_SIZE)   /* bytes of one CHW picture    */
#define HEPH_SPR_N_FACTORS 9
#define HEPH_SPR_N_ATTRIBUTES 5                               /* skin, hair, top, bottom, weapon */
#define HEPH_SPR_N_IDENTITIES 672                             /* 3*4*7*4*2                   */
#define HEPH_SPR_N_POSES 48                                   /* 3 actions * 4 views * 4 frames */
#define HEPH_SPR_COUNT (672L * 48L)                           /* 32,256 pictures             */
#define HEPH_SPR_N_TRAIN 500
#define HEPH_SPR_N_VAL 72
#define HEPH_SPR_N_TEST 100
#define HEPH_SPR_SPLIT_SEED 23u
#define HEPH_SPR_BG_R 232                                     /* the background colour       */
#define HEPH_SPR_BG_G 234
#define HEPH_SPR_BG_B 238

enum {
    HEPH_SPR_SKIN = 0, HEPH_SPR_HAIR, HEPH_SPR_TOP, HEPH_SPR_BOTTOM, HEPH_SPR_WEAPON,
    HEPH_SPR_IDENTITY, HEPH_SPR_ACTION, HEPH_SPR_VIEW, HEPH_SPR_FRAME
};
enum { HEPH_SPR_TRAIN = 0, HEPH_SPR_VAL = 1, HEPH_SPR_TEST = 2 };

/* number of values of factor k, its name ("skin", ..., "frame"), and the name of its value v
   ("light", "long_blonde", ...; identity and frame values are numbers: "" here) */
HEPH_SPR_DEF int heph_spr_count(int k);
HEPH_SPR_DEF const char *heph_spr_name(int k);
HEPH_SPR_DEF const char *heph_spr_value_name(int k, int v);
/* identity <-> attributes {skin, hair, top, bottom, weapon} (mixed radix, weapon fastest);
   heph_spr_identity returns -1 when an attribute is out of range */
HEPH_SPR_DEF int heph_spr_identity(const int attributes[5]);
HEPH_SPR_DEF void heph_spr_attributes(int identity, int attributes[5]);
/* the nine factors <-> index (identity*48 + pose); index returns -1 when a factor is out of
   range or the identity disagrees with the attributes */
HEPH_SPR_DEF long heph_spr_index(const int factors[9]);
HEPH_SPR_DEF void heph_spr_factors(long index, int factors[9]);
/* the identity split: order[0..671] (see the top comment), and the split of one identity
   (HEPH_SPR_TRAIN, _VAL or _TEST; -1 out of range) */
HEPH_SPR_DEF void heph_spr_split_order(int order[672]);
HEPH_SPR_DEF int heph_spr_split(int identity);
/* the pose split: 1 when (action, view, frame) is a held-out test pose, 0 train, -1 invalid */
HEPH_SPR_DEF int heph_spr_pose_test(int action, int view, int frame);
/* render one picture: chw gets HEPH_SPR_PIXELS bytes, planar R, G, B, rows top to bottom.
   Returns 0, or -1 (chw untouched) when heph_spr_index(factors) is -1. */
HEPH_SPR_DEF int heph_spr_render(uint8_t *chw, const int factors[9]);

#ifdef __cplusplus
}
#endif
#endif /* HEPH_SPRITES_H */

#ifdef HEPH_SPRITES_IMPLEMENTATION
#ifndef HEPH_SPRITES_IMPLEMENTED
#define HEPH_SPRITES_IMPLEMENTED
#include <math.h>
#include <string.h>

/* ---- the factors ----------------------------------------------------------------------- */

static const int heph__spr_counts[9] = {3, 4, 7, 4, 2, 672, 3, 4, 4};
static const char *const heph__spr_names[9] = {"skin", "hair", "top", "bottom", "weapon",
                                               "identity", "action", "view", "frame"};
static const char *const heph__spr_values[9][7] = {
    {"light", "tan", "dark"},
    {"short_brown", "long_blonde", "ponytail_red", "spiky_black"},
    {"red_tunic", "blue_shirt", "green_tunic", "yellow_shirt", "white_shirt", "purple_robe", "steel_armour"},
    {"blue_trousers", "brown_trousers", "grey_trousers", "red_skirt"},
    {"sword", "staff"},
    {""},
    {"walk", "cast", "slash"},
    {"front", "left", "back", "right"},
    {""}};

HEPH_SPR_DEF int heph_spr_count(int k) { return (k >= 0 && k < 9) ? heph__spr_counts[k] : 0; }
HEPH_SPR_DEF const char *heph_spr_name(int k) { return (k >= 0 && k < 9) ? heph__spr_names[k] : ""; }
HEPH_SPR_DEF const char *heph_spr_value_name(int k, int v) {
    if (k < 0 || k >= 9 || k == HEPH_SPR_IDENTITY || k == HEPH_SPR_FRAME || v < 0 || v >= heph__spr_counts[k]) return "";
    return heph__spr_values[k][v];
}

HEPH_SPR_DEF int heph_spr_identity(const int a[5]) {
    int id = 0, k;
    for (k = 0; k < 5; k++) { /* mixed radix, weapon fastest */
        if (a[k] < 0 || a[k] >= heph__spr_counts[k]) return -1;
        id = id * heph__spr_counts[k] + a[k];
    }
    return id;
}

HEPH_SPR_DEF void heph_spr_attributes(int identity, int a[5]) {
    int k;
    for (k = 4; k >= 0; k--) {
        a[k] = identity % heph__spr_counts[k];
        identity /= heph__spr_counts[k];
    }
}

HEPH_SPR_DEF long heph_spr_index(const int f[9]) {
    int k;
    for (k = 0; k < 9; k++)
        if (f[k] < 0 || f[k] >= heph__spr_counts[k]) return -1;
    if (heph_spr_identity(f) != f[HEPH_SPR_IDENTITY]) return -1;
    return (long)f[HEPH_SPR_IDENTITY] * HEPH_SPR_N_POSES + (f[HEPH_SPR_ACTION] * 4 + f[HEPH_SPR_VIEW]) * 4 + f[HEPH_SPR_FRAME];
}

HEPH_SPR_DEF void heph_spr_factors(long index, int f[9]) {
    int pose = (int)(index % HEPH_SPR_N_POSES);
    f[HEPH_SPR_IDENTITY] = (int)(index / HEPH_SPR_N_POSES);
    heph_spr_attributes(f[HEPH_SPR_IDENTITY], f);
    f[HEPH_SPR_FRAME] = pose % 4;
    f[HEPH_SPR_VIEW] = pose / 4 % 4;
    f[HEPH_SPR_ACTION] = pose / 16;
}

/* splitmix64: s += golden gamma, then the finaliser (Steele, Lea, Flood 2014) */
static uint64_t heph__spr_splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

HEPH_SPR_DEF void heph_spr_split_order(int order[672]) {
    uint64_t s = HEPH_SPR_SPLIT_SEED;
    int i;
    for (i = 0; i < HEPH_SPR_N_IDENTITIES; i++) order[i] = i;
    for (i = HEPH_SPR_N_IDENTITIES - 1; i > 0; i--) { /* Fisher-Yates, from the top */
        int j = (int)(heph__spr_splitmix(&s) % (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

HEPH_SPR_DEF int heph_spr_split(int identity) {
    int order[HEPH_SPR_N_IDENTITIES], i;
    if (identity < 0 || identity >= HEPH_SPR_N_IDENTITIES) return -1;
    heph_spr_split_order(order);
    for (i = 0; order[i] != identity; i++) {}
    return i < HEPH_SPR_N_TRAIN ? HEPH_SPR_TRAIN : (i < HEPH_SPR_N_TRAIN + HEPH_SPR_N_VAL ? HEPH_SPR_VAL : HEPH_SPR_TEST);
}

HEPH_SPR_DEF int heph_spr_pose_test(int action, int view, int frame) {
    if (action < 0 || action >= 3 || view < 0 || view >= 4 || frame < 0 || frame >= 4) return -1;
    return frame == (action + view) % 4;
}

/* ---- colours (sRGB / 255) ---------------------------------------------------------------- */

typedef struct { float r, g, b; } heph__spr_rgb;

#define HEPH__SPR_C(r, g, b) {(float)(r) / 255.0f, (float)(g) / 255.0f, (float)(b) / 255.0f}
static const heph__spr_rgb heph__spr_skin[3] = {HEPH__SPR_C(250, 214, 178), HEPH__SPR_C(206, 148, 98),
                                                HEPH__SPR_C(138, 90, 60)};
static const heph__spr_rgb heph__spr_hair[4] = {HEPH__SPR_C(112, 66, 32), HEPH__SPR_C(238, 200, 92),
                                                HEPH__SPR_C(196, 66, 34), HEPH__SPR_C(44, 40, 52)};
static const heph__spr_rgb heph__spr_top[7] = {HEPH__SPR_C(200, 48, 44), HEPH__SPR_C(58, 108, 204),
                                               HEPH__SPR_C(62, 150, 72), HEPH__SPR_C(234, 192, 58),
                                               HEPH__SPR_C(238, 238, 232), HEPH__SPR_C(130, 70, 168),
                                               HEPH__SPR_C(168, 174, 186)};
static const heph__spr_rgb heph__spr_bottom[4] = {HEPH__SPR_C(52, 76, 150), HEPH__SPR_C(118, 78, 44),
                                                  HEPH__SPR_C(110, 112, 120), HEPH__SPR_C(170, 36, 70)};
static const heph__spr_rgb heph__spr_outline = HEPH__SPR_C(34, 26, 32);
static const heph__spr_rgb heph__spr_eye = HEPH__SPR_C(30, 24, 40);
static const heph__spr_rgb heph__spr_shoe = HEPH__SPR_C(84, 54, 36);
static const heph__spr_rgb heph__spr_belt = HEPH__SPR_C(92, 58, 30);
static const heph__spr_rgb heph__spr_gold = HEPH__SPR_C(222, 178, 64);
static const heph__spr_rgb heph__spr_mail = HEPH__SPR_C(120, 126, 138);
static const heph__spr_rgb heph__spr_blade = HEPH__SPR_C(214, 222, 234);
static const heph__spr_rgb heph__spr_wood = HEPH__SPR_C(132, 88, 46);
static const heph__spr_rgb heph__spr_gem = HEPH__SPR_C(70, 196, 246);
static const heph__spr_rgb heph__spr_tie = HEPH__SPR_C(60, 150, 200);

/* top styles: short sleeves, belt, long hem (robe), pauldrons (armour) */
static const unsigned char heph__spr_top_style[7][4] = {
    {1, 1, 0, 0}, {0, 0, 0, 0}, {1, 1, 0, 0}, {1, 0, 0, 0}, {0, 0, 0, 0}, {0, 1, 1, 0}, {0, 1, 0, 1}};

/* ---- the 2D shapes ------------------------------------------------------------------------ */

enum { HEPH__SPR_CAPSULE = 0, HEPH__SPR_ELLIPSE, HEPH__SPR_TRAPEZOID };

typedef struct {
    int kind;
    float a[2], b[2];   /* capsule: segment a-b; ellipse: centre a, radii b; trapezoid: bottom
                           centre a, top centre b                                           */
    float r0, r1;       /* capsule radius at a and at b; trapezoid half-widths at a and at b */
    float round;        /* trapezoid corner radius                                          */
    int clip;           /* cut by the half-plane n.p <= c: hp = {nx, ny, c}                  */
    float hp[3];
    heph__spr_rgb fill;
    float outline;      /* width of the dark ring around the shape (0: none)                */
    float shade;        /* darkening of the band along the lower-right edge                 */
    float depth;        /* larger = nearer the viewer = drawn later                          */
    int order;          /* tie-break: the order the parts were added                        */
} heph__spr_shape;

#define HEPH__SPR_MAX_SHAPES 80

typedef struct {
    heph__spr_shape s[HEPH__SPR_MAX_SHAPES];
    int n;
} heph__spr_list;

static float heph__spr_clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }
static float heph__spr_len(float x, float y) { return sqrtf(x * x + y * y); }

/* distance to the segment a-b with a radius that goes linearly from r0 to r1 (exact for
   r0 = r1, close enough near the edge for a mild taper) */
static float heph__spr_sd_capsule(const heph__spr_shape *s, float px, float py) {
    float pax = px - s->a[0], pay = py - s->a[1], bax = s->b[0] - s->a[0], bay = s->b[1] - s->a[1];
    float bb = bax * bax + bay * bay;
    float h = bb > 0.0f ? heph__spr_clampf((pax * bax + pay * bay) / bb, 0.0f, 1.0f) : 0.0f;
    return heph__spr_len(pax - bax * h, pay - bay * h) - (s->r0 + (s->r1 - s->r0) * h);
}

/* ellipse: |p/r| scaled by |p/r| / |p/r^2| (Quilez's first-order distance estimate) */
static float heph__spr_sd_ellipse(const heph__spr_shape *s, float px, float py) {
    float x = px - s->a[0], y = py - s->a[1], rx = s->b[0], ry = s->b[1];
    float k0 = heph__spr_len(x / rx, y / ry), k1 = heph__spr_len(x / (rx * rx), y / (ry * ry));
    return k1 > 1e-6f ? k0 * (k0 - 1.0f) / k1 : -(rx < ry ? rx : ry);
}

/* isosceles trapezoid from bottom centre a (half-width r0) to top centre b (half-width r1),
   corners rounded by `round` (Quilez's sdTrapezoid in the frame of the axis a-b) */
static float heph__spr_sd_trapezoid(const heph__spr_shape *s, float px, float py) {
    float ux = s->b[0] - s->a[0], uy = s->b[1] - s->a[1], len = heph__spr_len(ux, uy);
    float he, r1, r2, x, y, k1x, k1y, k2x, k2y, cax, cay, cbx, cby, t, d2a, d2b, sg, rr = s->round;
    float cx = 0.5f * (s->a[0] + s->b[0]), cy = 0.5f * (s->a[1] + s->b[1]);
    ux /= len; uy /= len;                                        /* axis, bottom to top    */
    y = (px - cx) * ux + (py - cy) * uy;                         /* along the axis         */
    x = fabsf((px - cx) * uy - (py - cy) * ux);                  /* across it (symmetric)  */
    he = 0.5f * len - rr; r1 = s->r0 - rr; r2 = s->r1 - rr;
    k1x = r2; k1y = he;
    k2x = r2 - r1; k2y = 2.0f * he;
    cax = x - (x < (y < 0.0f ? r1 : r2) ? x : (y < 0.0f ? r1 : r2));
    cay = fabsf(y) - he;
    t = heph__spr_clampf(((k1x - x) * k2x + (k1y - y) * k2y) / (k2x * k2x + k2y * k2y), 0.0f, 1.0f);
    cbx = x - k1x + k2x * t;
    cby = y - k1y + k2y * t;
    sg = (cbx < 0.0f && cay < 0.0f) ? -1.0f : 1.0f;
    d2a = cax * cax + cay * cay;
    d2b = cbx * cbx + cby * cby;
    return sg * sqrtf(d2a < d2b ? d2a : d2b) - rr;
}

static float heph__spr_sd(const heph__spr_shape *s, float px, float py) {
    float d;
    switch (s->kind) {
    case HEPH__SPR_ELLIPSE: d = heph__spr_sd_ellipse(s, px, py); break;
    case HEPH__SPR_TRAPEZOID: d = heph__spr_sd_trapezoid(s, px, py); break;
    default: d = heph__spr_sd_capsule(s, px, py); break;
    }
    if (s->clip) { /* intersection with the half-plane n.p <= c */
        float h = s->hp[0] * px + s->hp[1] * py - s->hp[2];
        if (h > d) d = h;
    }
    return d;
}

/* a conservative box {x0, x1, y0, y1} around the shape and its outline */
static void heph__spr_box(const heph__spr_shape *s, float *bx) {
    float m = s->outline + 1.5f, r;
    if (s->kind == HEPH__SPR_ELLIPSE) {
        bx[0] = s->a[0] - s->b[0] - m; bx[1] = s->a[0] + s->b[0] + m;
        bx[2] = s->a[1] - s->b[1] - m; bx[3] = s->a[1] + s->b[1] + m;
        return;
    }
    r = (s->r0 > s->r1 ? s->r0 : s->r1) + m;
    bx[0] = (s->a[0] < s->b[0] ? s->a[0] : s->b[0]) - r; bx[1] = (s->a[0] > s->b[0] ? s->a[0] : s->b[0]) + r;
    bx[2] = (s->a[1] < s->b[1] ? s->a[1] : s->b[1]) - r; bx[3] = (s->a[1] > s->b[1] ? s->a[1] : s->b[1]) + r;
}

/* composite one shape onto the float picture (3 planes of 64x64). Shapes are laid out in
   model units; the picture shows them HEPH__SPR_SCALE times as large about the point where
   the body axis meets the ground (outline and shading widths are in pixels). */
#define HEPH__SPR_SCALE 0.9f
#define HEPH__SPR_GROUND 56.5f       /* screen row of the ground line                        */
static void heph__spr_draw(float *img, const heph__spr_shape *s) {
    const int N = HEPH_SPR_SIZE, NP = N * N;
    const float S = HEPH__SPR_SCALE, G = HEPH__SPR_GROUND, inv = 1.0f / HEPH__SPR_SCALE;
    const float lx = 0.6f, ly = 0.8f, band = 1.5f; /* toward the lower right: the shaded side */
    float bx[4];
    int x, y, x0, x1, y0, y1;
    heph__spr_box(s, bx);
    x0 = (int)floorf(32.0f + (bx[0] - 32.0f) * S); x1 = (int)ceilf(32.0f + (bx[1] - 32.0f) * S);
    y0 = (int)floorf(G + (bx[2] - G) * S); y1 = (int)ceilf(G + (bx[3] - G) * S);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > N - 1) x1 = N - 1;
    if (y1 > N - 1) y1 = N - 1;
    for (y = y0; y <= y1; y++)
        for (x = x0; x <= x1; x++) {
            /* the pixel centre in model units, and its distance to the shape in pixels */
            float mx = 32.0f + ((float)x + 0.5f - 32.0f) * inv, my = G + ((float)y + 0.5f - G) * inv;
            float d = S * heph__spr_sd(s, mx, my), a_out, a_in, a_sh, k;
            heph__spr_rgb c = s->fill;
            int i = y * N + x;
            if (d - s->outline >= 0.5f) continue;                            /* outside */
            a_out = heph__spr_clampf(0.5f - (d - s->outline), 0.0f, 1.0f);   /* ring coverage */
            a_in = heph__spr_clampf(0.5f - d, 0.0f, 1.0f);                   /* fill coverage */
            if (s->shade > 0.0f && a_in > 0.0f) {   /* shaded band: the point band px down-right is outside */
                a_sh = heph__spr_clampf(0.5f + S * heph__spr_sd(s, mx + band * inv * lx, my + band * inv * ly), 0.0f, 1.0f);
                k = 1.0f - s->shade * a_sh;
                c.r *= k; c.g *= k; c.b *= k;
            }
            if (s->outline > 0.0f) {                  /* c = mix(c, outline, a_out) */
                img[i] += (heph__spr_outline.r - img[i]) * a_out;
                img[NP + i] += (heph__spr_outline.g - img[NP + i]) * a_out;
                img[2 * NP + i] += (heph__spr_outline.b - img[2 * NP + i]) * a_out;
            }
            img[i] += (c.r - img[i]) * a_in;          /* c = mix(c, fill, a_in) */
            img[NP + i] += (c.g - img[NP + i]) * a_in;
            img[2 * NP + i] += (c.b - img[2 * NP + i]) * a_in;
        }
}

/* ---- the figure in 3D (units: pixels; x = the character's left, y up, z forward) ---------- */

typedef struct { float x, y, z; } heph__spr_v3;

#define HEPH__SPR_DEG 0.017453292519943295f
#define HEPH__SPR_HIP_Y 17.0f        /* hip joints above the ground (legs straight)          */
#define HEPH__SPR_HIP_X 3.6f
#define HEPH__SPR_THIGH 8.0f
#define HEPH__SPR_SHIN 7.5f
#define HEPH__SPR_SHOULDER_X 7.6f
#define HEPH__SPR_SHOULDER_Y 30.0f
#define HEPH__SPR_UPPER_ARM 6.5f
#define HEPH__SPR_FOREARM 6.0f
#define HEPH__SPR_HEAD_Y 41.0f       /* centre of the head                                   */
#define HEPH__SPR_HEAD_R 7.6f

/* a pose: per arm (upper pitch, upper abduction, forearm pitch, forearm abduction), per leg
   (thigh pitch, shin pitch), the weapon's (pitch, abduction), the upper body's lean. Angles in
   degrees; pitch 0 points down, 90 forward, 180 up; abduction turns outward (negative: across
   the body). Index 0 = left (x > 0), 1 = right (the weapon hand). */
typedef struct {
    float arm[2][4], leg[2][2], weapon[2], lean;
} heph__spr_pose;

static void heph__spr_pose_of(int action, int frame, int weapon, heph__spr_pose *p) {
    static const float swing[4] = {1.0f, 0.0f, -1.0f, 0.0f}, speed[4] = {0.0f, -1.0f, 0.0f, 1.0f};
    int k;
    memset(p, 0, sizeof *p);
    if (action == 0) { /* walk: contact, passing, contact (mirrored), passing (mirrored) */
        for (k = 0; k < 2; k++) {
            float s = k == 0 ? swing[frame] : -swing[frame];   /* +1: this leg forward     */
            float v = k == 0 ? speed[frame] : -speed[frame];   /* +1: swinging forward     */
            float lift = v > 0.0f ? v : 0.0f;
            p->leg[k][0] = 26.0f * s + 24.0f * lift;
            p->leg[k][1] = p->leg[k][0] - 58.0f * lift - (s < 0.0f ? 6.0f : 0.0f);
        }
        /* the free arm swings against its leg; the weapon arm holds the weapon forward */
        p->arm[0][0] = -26.0f * swing[frame]; p->arm[0][1] = 8.0f;
        p->arm[0][2] = p->arm[0][0] + 22.0f; p->arm[0][3] = 4.0f;
        p->arm[1][0] = 12.0f + 12.0f * swing[frame]; p->arm[1][1] = 8.0f;
        p->arm[1][2] = 78.0f + 8.0f * swing[frame]; p->arm[1][3] = -4.0f;
        p->weapon[0] = weapon == 0 ? 145.0f : 176.0f; p->weapon[1] = weapon == 0 ? 28.0f : 0.0f;
        p->lean = 4.0f;
    } else if (action == 1) { /* cast: both arms rise from the sides to overhead */
        float t = (float)frame;
        for (k = 0; k < 2; k++) {
            p->arm[k][0] = 30.0f + 38.0f * t; p->arm[k][1] = 14.0f + 8.0f * t;
            p->arm[k][2] = 62.0f + 33.0f * t; p->arm[k][3] = 10.0f + 8.0f * t;
        }
        p->leg[0][0] = 10.0f; p->leg[0][1] = 4.0f;
        p->leg[1][0] = -8.0f; p->leg[1][1] = -12.0f;
        p->weapon[0] = weapon == 0 ? p->arm[1][2] + 20.0f : (p->arm[1][2] + 12.0f < 174.0f ? p->arm[1][2] + 12.0f : 174.0f);
        p->weapon[1] = 0.5f * p->arm[1][3];
        p->lean = -2.0f * t;
    } else { /* slash: wind up behind the head, strike forward, follow through across the body */
        static const float wa[4][6] = {{196, 24, 232, 16, 238, 12}, {158, 14, 150, 4, 140, 0},
                                       {100, -4, 95, -20, 88, -32}, {50, -14, 34, -26, 18, -36}};
        static const float lg[4][4] = {{14, 4, -12, -12}, {20, 4, -16, -16}, {30, 2, -22, -22}, {32, 0, -24, -24}};
        static const float ln[4] = {0.0f, 4.0f, 10.0f, 12.0f};
        p->arm[1][0] = wa[frame][0]; p->arm[1][1] = wa[frame][1];
        p->arm[1][2] = wa[frame][2]; p->arm[1][3] = wa[frame][3];
        p->weapon[0] = wa[frame][4]; p->weapon[1] = wa[frame][5];
        p->arm[0][0] = frame < 2 ? 30.0f : 18.0f; p->arm[0][1] = 16.0f;
        p->arm[0][2] = frame < 2 ? 75.0f : 55.0f; p->arm[0][3] = 6.0f;
        p->leg[0][0] = lg[frame][0]; p->leg[0][1] = lg[frame][1];
        p->leg[1][0] = lg[frame][2]; p->leg[1][1] = lg[frame][3];
        p->lean = ln[frame];
    }
}

/* unit direction from (pitch, abduction) in degrees; side +1 left limb, -1 right limb */
static heph__spr_v3 heph__spr_dir(float pitch, float abduct, float side) {
    heph__spr_v3 d;
    float p = pitch * HEPH__SPR_DEG, b = abduct * HEPH__SPR_DEG;
    d.x = side * sinf(b);
    d.y = -cosf(b) * cosf(p);
    d.z = cosf(b) * sinf(p);
    return d;
}

static heph__spr_v3 heph__spr_add(heph__spr_v3 a, heph__spr_v3 d, float t) {
    a.x += d.x * t; a.y += d.y * t; a.z += d.z * t;
    return a;
}

/* the view: a turn about the vertical axis, then the orthographic projection to the screen */
typedef struct {
    float sn, cs;     /* sin and cos of the turn: front 0, left -90, back 180, right 90 degrees */
    float lean_s, lean_c, lift;
} heph__spr_cam;

/* lean the upper body (points above the hips) forward about the hip line */
static heph__spr_v3 heph__spr_lean(const heph__spr_cam *c, heph__spr_v3 p) {
    float y = p.y - HEPH__SPR_HIP_Y, z = p.z;
    if (p.y <= HEPH__SPR_HIP_Y) return p;
    p.y = HEPH__SPR_HIP_Y + y * c->lean_c - z * c->lean_s;
    p.z = y * c->lean_s + z * c->lean_c;
    return p;
}

/* screen point (x right, y down) and depth (larger = nearer) of a posed point */
static void heph__spr_project(const heph__spr_cam *c, heph__spr_v3 p, float *s, float *depth) {
    s[0] = 32.0f + p.x * c->cs + p.z * c->sn;
    s[1] = HEPH__SPR_GROUND - (p.y + c->lift);
    if (depth) *depth = -p.x * c->sn + p.z * c->cs;
}

static heph__spr_shape *heph__spr_add_shape(heph__spr_list *L, int kind, heph__spr_rgb fill, float outline, float depth) {
    heph__spr_shape *s = &L->s[L->n < HEPH__SPR_MAX_SHAPES ? L->n : HEPH__SPR_MAX_SHAPES - 1];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->fill = fill;
    s->outline = outline;
    s->shade = 0.22f;
    s->depth = depth;
    s->order = L->n;
    if (L->n < HEPH__SPR_MAX_SHAPES) L->n++;
    return s;
}

/* a capsule between two posed points, radii r0 and r1 */
static heph__spr_shape *heph__spr_limb(heph__spr_list *L, const heph__spr_cam *c, heph__spr_v3 a, heph__spr_v3 b,
                                       float r0, float r1, heph__spr_rgb fill, float depth) {
    heph__spr_shape *s = heph__spr_add_shape(L, HEPH__SPR_CAPSULE, fill, 1.0f, depth);
    heph__spr_project(c, a, s->a, NULL);
    heph__spr_project(c, b, s->b, NULL);
    s->r0 = r0;
    s->r1 = r1;
    return s;
}

/* a trapezoid between two posed axis points, with half-widths seen from the view: front width
   w and side depth d mix as w |cos| + d |sin| */
static heph__spr_shape *heph__spr_trap(heph__spr_list *L, const heph__spr_cam *c, heph__spr_v3 a, heph__spr_v3 b,
                                       const float wa[2], const float wb[2], float round, heph__spr_rgb fill, float depth) {
    heph__spr_shape *s = heph__spr_add_shape(L, HEPH__SPR_TRAPEZOID, fill, 1.0f, depth);
    float ac = fabsf(c->cs), as = fabsf(c->sn);
    heph__spr_project(c, a, s->a, NULL);
    heph__spr_project(c, b, s->b, NULL);
    s->r0 = wa[0] * ac + wa[1] * as;
    s->r1 = wb[0] * ac + wb[1] * as;
    s->round = round;
    return s;
}

/* ---- one arm (with the weapon in the right hand) ----------------------------------------- */

typedef struct {
    heph__spr_rgb skin, top, hair;
    int short_sleeves, belt, robe, pauldrons, weapon, hair_style, skirt;
    heph__spr_rgb bottom;
} heph__spr_look;

static void heph__spr_arm(heph__spr_list *L, const heph__spr_cam *c, const heph__spr_pose *p,
                          const heph__spr_look *lk, int k) {
    float side = k == 0 ? 1.0f : -1.0f, depth, dz, scr[2];
    heph__spr_v3 shoulder = {0.0f, HEPH__SPR_SHOULDER_Y, 0.0f}, elbow, wrist, hand, sleeve, plate, d1, d2;
    heph__spr_rgb fore_c = lk->short_sleeves ? lk->skin : (lk->pauldrons ? heph__spr_mail : lk->top);
    heph__spr_rgb upper_c = lk->pauldrons ? heph__spr_mail : lk->top;
    /* joints: shoulder -> elbow -> wrist -> hand centre, then the upper body's lean */
    shoulder.x = side * HEPH__SPR_SHOULDER_X;
    d1 = heph__spr_dir(p->arm[k][0], p->arm[k][1], side);
    d2 = heph__spr_dir(p->arm[k][2], p->arm[k][3], side);
    elbow = heph__spr_add(shoulder, d1, HEPH__SPR_UPPER_ARM);
    wrist = heph__spr_add(elbow, d2, HEPH__SPR_FOREARM);
    hand = heph__spr_add(wrist, d2, 1.2f);
    sleeve = heph__spr_lean(c, heph__spr_add(shoulder, d1, 0.55f * HEPH__SPR_UPPER_ARM)); /* end of a short sleeve */
    plate = heph__spr_lean(c, heph__spr_add(shoulder, d1, 0.6f));                         /* centre of a pauldron  */
    shoulder = heph__spr_lean(c, shoulder);
    elbow = heph__spr_lean(c, elbow);
    wrist = heph__spr_lean(c, wrist);
    hand = heph__spr_lean(c, hand);
    heph__spr_project(c, elbow, scr, &depth); /* the whole arm sorts by its elbow's depth */
    if (lk->short_sleeves) {
        heph__spr_limb(L, c, shoulder, elbow, 2.4f, 2.2f, lk->skin, depth);
        heph__spr_limb(L, c, shoulder, sleeve, 2.8f, 2.7f, lk->top, depth + 0.0005f);
    } else {
        heph__spr_limb(L, c, shoulder, elbow, 2.5f, 2.3f, upper_c, depth);
    }
    heph__spr_limb(L, c, elbow, wrist, 2.2f, 2.0f, fore_c, depth + 0.001f);
    if (k == 1) { /* the weapon: behind the hand, over the forearm */
        heph__spr_v3 w = heph__spr_dir(p->weapon[0], p->weapon[1], -1.0f), wl;
        float a[2], b[2], px, py, n;
        wl.x = w.x; /* turned with the upper body's lean, as the arm */
        wl.y = w.y * c->lean_c - w.z * c->lean_s;
        wl.z = w.y * c->lean_s + w.z * c->lean_c;
        if (lk->weapon == 0) { /* sword: grip, blade, cross guard across the blade on screen */
            heph__spr_shape *s;
            heph__spr_limb(L, c, heph__spr_add(hand, wl, -2.4f), heph__spr_add(hand, wl, 1.6f), 0.9f, 0.9f, heph__spr_belt, depth + 0.0012f);
            heph__spr_limb(L, c, heph__spr_add(hand, wl, 2.6f), heph__spr_add(hand, wl, 15.5f), 1.25f, 0.55f, heph__spr_blade, depth + 0.0013f)->shade = 0.18f;
            heph__spr_project(c, heph__spr_add(hand, wl, 2.2f), a, NULL);
            heph__spr_project(c, heph__spr_add(hand, wl, 3.2f), b, NULL);
            px = b[0] - a[0]; py = b[1] - a[1]; n = heph__spr_len(px, py);
            if (n < 0.3f) { px = 1.0f; py = 0.0f; n = 1.0f; } /* blade toward the viewer: guard level */
            s = heph__spr_add_shape(L, HEPH__SPR_CAPSULE, heph__spr_gold, 1.0f, depth + 0.0014f);
            s->a[0] = a[0] - 2.6f * py / n; s->a[1] = a[1] + 2.6f * px / n;
            s->b[0] = a[0] + 2.6f * py / n; s->b[1] = a[1] - 2.6f * px / n;
            s->r0 = s->r1 = 0.95f;
        } else { /* staff: wooden rod with a gem on top */
            heph__spr_limb(L, c, heph__spr_add(hand, wl, -11.0f), heph__spr_add(hand, wl, 12.5f), 1.1f, 1.2f, heph__spr_wood, depth + 0.0012f);
            heph__spr_limb(L, c, heph__spr_add(hand, wl, 14.6f), heph__spr_add(hand, wl, 14.6f), 2.6f, 2.6f, heph__spr_gem, depth + 0.0013f);
        }
    }
    heph__spr_limb(L, c, hand, hand, 2.5f, 2.5f, lk->skin, depth + 0.002f);
    if (lk->pauldrons) { /* a round steel plate over the shoulder, over the torso unless far */
        heph__spr_project(c, shoulder, scr, &dz);
        heph__spr_limb(L, c, plate, plate, 3.4f, 3.4f, lk->top, (dz + 0.5f > depth ? dz + 0.5f : depth) + 0.003f);
    }
}

/* ---- one leg ------------------------------------------------------------------------------- */

static void heph__spr_leg(heph__spr_list *L, const heph__spr_cam *c, const heph__spr_pose *p,
                          const heph__spr_look *lk, int k) {
    float side = k == 0 ? 1.0f : -1.0f, depth, s[2];
    heph__spr_v3 hip = {0.0f, HEPH__SPR_HIP_Y, 0.0f}, knee, ankle, fwd = {0.0f, 0.0f, 1.0f};
    heph__spr_rgb leg_c = lk->skirt ? lk->skin : lk->bottom;
    hip.x = side * HEPH__SPR_HIP_X;
    knee = heph__spr_add(hip, heph__spr_dir(p->leg[k][0], 0.0f, side), HEPH__SPR_THIGH);
    ankle = heph__spr_add(knee, heph__spr_dir(p->leg[k][1], 0.0f, side), HEPH__SPR_SHIN);
    heph__spr_project(c, hip, s, &depth);
    depth -= 4.5f; /* behind the torso */
    heph__spr_limb(L, c, hip, knee, lk->skirt ? 2.4f : 3.0f, lk->skirt ? 2.2f : 2.7f, leg_c, depth);
    heph__spr_limb(L, c, knee, ankle, lk->skirt ? 2.2f : 2.7f, lk->skirt ? 2.0f : 2.5f, leg_c, depth + 0.001f);
    ankle.y -= 0.4f;
    heph__spr_limb(L, c, heph__spr_add(ankle, fwd, -0.8f), heph__spr_add(ankle, fwd, 2.8f), 2.2f, 2.1f, heph__spr_shoe, depth + 0.002f);
}

/* the lowest point of leg k's shoe: ankle height - 0.4 - 2.2 (the lift puts it on the ground) */
static float heph__spr_foot_y(const heph__spr_pose *p, int k) {
    float y = HEPH__SPR_HIP_Y;
    y += heph__spr_dir(p->leg[k][0], 0.0f, 1.0f).y * HEPH__SPR_THIGH;
    y += heph__spr_dir(p->leg[k][1], 0.0f, 1.0f).y * HEPH__SPR_SHIN;
    return y - 2.6f;
}

/* ---- the head and hair --------------------------------------------------------------------- */

static void heph__spr_head(heph__spr_list *L, const heph__spr_cam *c, const heph__spr_look *lk, int view) {
    heph__spr_v3 hc = {0.0f, HEPH__SPR_HEAD_Y, 0.0f}, neck0 = {0.0f, 31.0f, 0.0f}, neck1 = {0.0f, 34.5f, 0.0f};
    float h[2], fx, R = HEPH__SPR_HEAD_R, hd = 0.3f; /* head depth: over the torso */
    heph__spr_shape *s;
    int k, style = lk->hair_style;
    heph__spr_rgb hair = lk->hair;
    hc = heph__spr_lean(c, hc);
    heph__spr_project(c, hc, h, NULL);
    fx = c->sn; /* screen direction the face looks to: -1 left, +1 right, 0 front or back */
    /* neck */
    heph__spr_limb(L, c, heph__spr_lean(c, neck0), heph__spr_lean(c, neck1), 2.3f, 2.3f, lk->skin, -0.2f);
    /* behind the head: long hair's curtains and spikes */
    if (style == 1) {
        if (view == 0) {        /* front: hair falls behind the shoulders, framing the face */
            s = heph__spr_add_shape(L, HEPH__SPR_TRAPEZOID, hair, 1.0f, -0.4f);
            s->a[0] = h[0]; s->a[1] = h[1] + 10.0f; s->b[0] = h[0]; s->b[1] = h[1] - 3.0f;
            s->r0 = R + 1.6f; s->r1 = R + 1.2f; s->round = 2.5f;
        } else if (view != 2) { /* side: behind the head, down the back */
            s = heph__spr_add_shape(L, HEPH__SPR_TRAPEZOID, hair, 1.0f, hd + 0.02f);
            s->a[0] = h[0] - fx * 3.6f; s->a[1] = h[1] + 9.5f; s->b[0] = h[0] - fx * 2.8f; s->b[1] = h[1] - 4.0f;
            s->r0 = 4.6f; s->r1 = 4.6f; s->round = 2.5f;
        }
    }
    if (style == 2 && view != 2) { /* ponytail seen from the front (behind the neck) or side */
        s = heph__spr_add_shape(L, HEPH__SPR_CAPSULE, hair, 1.0f, hd - 0.01f);
        s->a[0] = h[0] - fx * 6.6f; s->a[1] = h[1] - 1.5f;
        s->b[0] = h[0] - fx * 9.4f; s->b[1] = h[1] + 10.0f;
        s->r0 = 3.0f; s->r1 = 1.5f;
        if (view == 0) { s->b[0] = h[0]; s->a[0] = h[0]; s->depth = -0.4f; }
    }
    if (style == 3) { /* spikes fanning out of the top of the head, longest in the middle */
        static const float front[5] = {-64.0f, -32.0f, 0.0f, 30.0f, 60.0f}, sidea[5] = {-28.0f, 6.0f, 38.0f, 70.0f, 102.0f};
        static const float len_f[5] = {2.2f, 3.6f, 4.4f, 3.4f, 2.0f}, len_s[5] = {2.6f, 3.8f, 4.4f, 3.8f, 2.8f};
        for (k = 0; k < 5; k++) {
            int side_view = view == 1 || view == 3;
            float a = (side_view ? sidea[k] * -fx : front[k]) * HEPH__SPR_DEG;
            float ux = sinf(a), uy = -cosf(a), len = R + (side_view ? len_s[k] : len_f[k]);
            s = heph__spr_add_shape(L, HEPH__SPR_CAPSULE, hair, 1.0f, hd - 0.005f);
            s->a[0] = h[0] + ux * 3.0f; s->a[1] = h[1] - 1.0f + uy * 3.0f;
            s->b[0] = h[0] + ux * len + uy * 0.8f; s->b[1] = h[1] - 1.0f + uy * len - ux * 0.8f;
            s->r0 = 3.0f; s->r1 = 0.45f;
        }
    }
    /* nose: a bump on the profile, drawn behind the head */
    if (view == 1 || view == 3) {
        s = heph__spr_add_shape(L, HEPH__SPR_ELLIPSE, lk->skin, 1.0f, hd - 0.001f);
        s->a[0] = h[0] + fx * (R - 0.2f); s->a[1] = h[1] + 1.2f; s->b[0] = 1.5f; s->b[1] = 1.3f;
    }
    /* the head */
    s = heph__spr_add_shape(L, HEPH__SPR_ELLIPSE, lk->skin, 1.0f, hd);
    s->a[0] = h[0]; s->a[1] = h[1]; s->b[0] = R; s->b[1] = R - 0.2f;
    /* eyes on the side that faces the viewer */
    if (view == 0) {
        for (k = -1; k <= 1; k += 2) {
            s = heph__spr_add_shape(L, HEPH__SPR_ELLIPSE, heph__spr_eye, 0.0f, hd + 0.02f);
            s->a[0] = h[0] + 2.9f * (float)k; s->a[1] = h[1] + 0.8f; s->b[0] = 0.85f; s->b[1] = 1.35f;
            s->shade = 0.0f;
        }
    } else if (view != 2) {
        s = heph__spr_add_shape(L, HEPH__SPR_ELLIPSE, heph__spr_eye, 0.0f, hd + 0.02f);
        s->a[0] = h[0] + fx * 4.7f; s->a[1] = h[1] + 0.6f; s->b[0] = 0.8f; s->b[1] = 1.35f;
        s->shade = 0.0f;
    }
    /* the hair's cap: a circle a little larger than the head, cut by a line (y down: the
       half-plane n.p <= c keeps the part above/behind the line) */
    s = heph__spr_add_shape(L, HEPH__SPR_ELLIPSE, hair, 1.0f, hd + 0.01f);
    s->a[0] = h[0] - fx * 0.6f; s->a[1] = h[1] - 0.8f;
    s->b[0] = R + (style == 0 || style == 2 ? 0.7f : 1.0f); s->b[1] = R + 0.6f;
    s->clip = 1;
    if (view == 0) {           /* front: a fringe above the eyes */
        s->hp[0] = 0.0f; s->hp[1] = 1.0f; s->hp[2] = h[1] - (style == 1 ? 1.2f : 2.0f);
        if (style == 1) { s->hp[0] = 0.12f; s->hp[1] = 0.993f; s->hp[2] = s->hp[0] * h[0] + s->hp[1] * (h[1] - 1.2f); }
    } else if (view == 2) {    /* back: hair down to the nape */
        s->hp[0] = 0.0f; s->hp[1] = 1.0f; s->hp[2] = h[1] + (style == 0 || style == 3 ? 3.5f : 4.5f);
    } else {                   /* side: the back half and the top of the head */
        float nx = fx * 0.78f, ny = 0.63f; /* the normal points down toward the face */
        s->hp[0] = nx; s->hp[1] = ny; s->hp[2] = nx * h[0] + ny * h[1] + 0.6f;
    }
    /* over the head from behind: long hair down the back, the ponytail with its band */
    if (view == 2 && style == 1) {
        s = heph__spr_add_shape(L, HEPH__SPR_TRAPEZOID, hair, 1.0f, hd + 0.02f);
        s->a[0] = h[0]; s->a[1] = h[1] + 10.0f; s->b[0] = h[0]; s->b[1] = h[1] - 2.0f;
        s->r0 = R + 1.4f; s->r1 = R + 1.0f; s->round = 3.0f;
    }
    if (view == 2 && style == 2) {
        s = heph__spr_add_shape(L, HEPH__SPR_CAPSULE, hair, 1.0f, hd + 0.02f);
        s->a[0] = h[0]; s->a[1] = h[1] + 0.5f; s->b[0] = h[0]; s->b[1] = h[1] + 12.5f;
        s->r0 = 3.0f; s->r1 = 1.5f;
    }
    if (style == 2 && view != 0) { /* the hair band at the root of the tail */
        s = heph__spr_add_shape(L, HEPH__SPR_CAPSULE, heph__spr_tie, 0.8f, hd + 0.03f);
        if (view == 2) { s->a[0] = h[0] - 2.4f; s->b[0] = h[0] + 2.4f; s->a[1] = s->b[1] = h[1] + 1.8f; }
        else {
            s->a[0] = h[0] - fx * 5.2f; s->a[1] = h[1] - 0.6f;
            s->b[0] = h[0] - fx * 8.6f; s->b[1] = h[1] + 0.4f;
        }
        s->r0 = s->r1 = 0.9f;
    }
}

/* ---- the torso, skirt and robe ----------------------------------------------------------- */

static void heph__spr_body(heph__spr_list *L, const heph__spr_cam *c, const heph__spr_look *lk) {
    static const float waist[2] = {5.9f, 4.1f}, chest[2] = {7.5f, 4.4f};
    static const float pelvis_t[2] = {6.1f, 4.1f}, pelvis_b[2] = {5.9f, 3.9f};
    static const float skirt_t[2] = {6.3f, 4.5f}, skirt_b[2] = {8.9f, 6.8f};
    static const float robe_t[2] = {6.1f, 4.3f}, robe_b[2] = {8.6f, 6.6f};
    static const float belt_w[2] = {6.3f, 4.5f};
    heph__spr_v3 a = {0.0f, 0.0f, 0.0f}, b = {0.0f, 0.0f, 0.0f};
    float bottom_y = lk->belt && !lk->robe ? HEPH__SPR_HIP_Y - 1.5f : HEPH__SPR_HIP_Y + 0.5f;
    /* trousers' seat between the legs' tops (behind the legs in front view) */
    a.y = HEPH__SPR_HIP_Y - 2.5f; b.y = HEPH__SPR_HIP_Y + 2.5f;
    if (!lk->skirt) heph__spr_trap(L, c, a, b, pelvis_b, pelvis_t, 1.5f, lk->bottom, -5.0f);
    if (lk->skirt) {
        a.y = HEPH__SPR_HIP_Y - 8.0f; b.y = HEPH__SPR_HIP_Y + 2.0f;
        heph__spr_trap(L, c, a, b, skirt_b, skirt_t, 1.5f, lk->bottom, -0.6f);
    }
    if (lk->robe) {
        a.y = HEPH__SPR_HIP_Y - 9.0f; b.y = HEPH__SPR_HIP_Y + 3.0f;
        heph__spr_trap(L, c, a, b, robe_b, robe_t, 1.5f, lk->top, -0.5f);
    }
    /* the torso, leaning with the upper body */
    a.y = bottom_y; b.y = 32.5f;
    heph__spr_trap(L, c, heph__spr_lean(c, a), heph__spr_lean(c, b), waist, chest, 2.0f, lk->top, 0.0f);
    if (lk->belt) {
        a.y = HEPH__SPR_HIP_Y + 0.2f; b.y = HEPH__SPR_HIP_Y + 2.2f;
        heph__spr_trap(L, c, heph__spr_lean(c, a), heph__spr_lean(c, b), belt_w, belt_w, 0.6f,
                       lk->robe ? heph__spr_gold : heph__spr_belt, 0.001f)->outline = 0.8f;
    }
}

HEPH_SPR_DEF int heph_spr_render(uint8_t *chw, const int f[9]) {
    const int NP = HEPH_SPR_SIZE * HEPH_SPR_SIZE;
    static const float turn[4][2] = {{0.0f, 1.0f}, {-1.0f, 0.0f}, {0.0f, -1.0f}, {1.0f, 0.0f}}; /* sin, cos */
    float img[3 * HEPH_SPR_SIZE * HEPH_SPR_SIZE];
    heph__spr_list L;
    heph__spr_pose p;
    heph__spr_cam c;
    heph__spr_look lk;
    float low;
    int i, j, view = f[HEPH_SPR_VIEW];
    if (heph_spr_index(f) < 0) return -1;
    memset(&lk, 0, sizeof lk);
    lk.skin = heph__spr_skin[f[HEPH_SPR_SKIN]];
    lk.hair = heph__spr_hair[f[HEPH_SPR_HAIR]];
    lk.hair_style = f[HEPH_SPR_HAIR];
    lk.top = heph__spr_top[f[HEPH_SPR_TOP]];
    lk.short_sleeves = heph__spr_top_style[f[HEPH_SPR_TOP]][0];
    lk.belt = heph__spr_top_style[f[HEPH_SPR_TOP]][1];
    lk.robe = heph__spr_top_style[f[HEPH_SPR_TOP]][2];
    lk.pauldrons = heph__spr_top_style[f[HEPH_SPR_TOP]][3];
    lk.bottom = heph__spr_bottom[f[HEPH_SPR_BOTTOM]];
    lk.skirt = f[HEPH_SPR_BOTTOM] == 3;
    lk.weapon = f[HEPH_SPR_WEAPON];
    heph__spr_pose_of(f[HEPH_SPR_ACTION], f[HEPH_SPR_FRAME], lk.weapon, &p);

    c.sn = turn[view][0];
    c.cs = turn[view][1];
    c.lean_s = sinf(p.lean * HEPH__SPR_DEG);
    c.lean_c = cosf(p.lean * HEPH__SPR_DEG);
    low = heph__spr_foot_y(&p, 0);
    if (heph__spr_foot_y(&p, 1) < low) low = heph__spr_foot_y(&p, 1);
    c.lift = -low; /* the lowest shoe stands on the ground */

    L.n = 0;
    heph__spr_leg(&L, &c, &p, &lk, 0);
    heph__spr_leg(&L, &c, &p, &lk, 1);
    heph__spr_body(&L, &c, &lk);
    heph__spr_arm(&L, &c, &p, &lk, 0);
    heph__spr_arm(&L, &c, &p, &lk, 1);
    heph__spr_head(&L, &c, &lk, view);

    /* back to front: insertion sort by depth, ties in the order the parts were added */
    for (i = 1; i < L.n; i++) {
        heph__spr_shape t = L.s[i];
        for (j = i - 1; j >= 0 && (L.s[j].depth > t.depth || (L.s[j].depth == t.depth && L.s[j].order > t.order)); j--)
            L.s[j + 1] = L.s[j];
        L.s[j + 1] = t;
    }
    for (i = 0; i < NP; i++) {
        img[i] = (float)HEPH_SPR_BG_R / 255.0f;
        img[NP + i] = (float)HEPH_SPR_BG_G / 255.0f;
        img[2 * NP + i] = (float)HEPH_SPR_BG_B / 255.0f;
    }
    for (i = 0; i < L.n; i++) heph__spr_draw(img, &L.s[i]);
    for (i = 0; i < 3 * NP; i++) {
        float v = img[i] * 255.0f + 0.5f;
        chw[i] = (uint8_t)(v >= 255.0f ? 255 : (v <= 0.0f ? 0 : (int)v));
    }
    return 0;
}
#endif /* HEPH_SPRITES_IMPLEMENTED */
#endif /* HEPH_SPRITES_IMPLEMENTATION */
