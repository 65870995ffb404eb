/* shapes3d_render.h - a look-alike of DeepMind's 3D Shapes pictures (64x64 RGB), ray cast in C

   Same six factors, same values and same index order as 3dshapes.h5 (480,000 pictures):
       #  name         n   values
       0  floor_hue   10   0.0, 0.1, ..., 0.9        colour HSV(h*360deg, 1, 1)
       1  wall_hue    10   0.0, 0.1, ..., 0.9
       2  object_hue  10   0.0, 0.1, ..., 0.9        colour HSV(h*360deg, 1, 0.93)
       3  scale        8   linspace(0.75, 1.25, 8)   multiplies the object's size
       4  shape        4   0 cube, 1 cylinder, 2 sphere, 3 capsule
       5  orientation 15   linspace(-30, 30, 15) degrees: the camera turns about the vertical
                           axis through the object, so the room and the object turn together
   index = ((((floor*10 + wall)*10 + object)*8 + scale)*4 + shape)*15 + orientation

   DO THIS in exactly one C file, before the #include:
       #define HEPH_SHAPES3D_IMPLEMENTATION
       #include "shapes3d_render.h"
   then
       uint8_t px[HEPH_S3D_PIXELS];                 // planar CHW: R plane, G plane, B plane
       int f[6] = {0, 3, 6, 4, 0, 7};               // red floor, green wall, blue cube, 0 deg
       heph_shapes3d_init();                        // once, before threads render
       heph_shapes3d_render(px, f);                 // ~0.2 ms; thread-safe after init
   Options: HEPH_SHAPES3D_STATIC (all functions static), HEPH_S3D_DEF (linkage).

   The scene: sky band on top (constant light blue), an open-topped room whose back wall faces
   the camera at 0 deg (a corner with a darker side wall comes in at +-30 deg), a floor that
   darkens toward the back, and the object standing in the centre: Lambertian shading under
   one directional light from front-left above, with a soft shadow on the floor (shadow rays,
   the light jittered across the sub-samples). Every pixel averages 9 rays at fixed jittered
   3x3 offsets, so the output is a pure function of the factors (same bytes every call).
   Speed: the sky/wall/floor weights of every pixel are tabled per orientation at init; only
   the screen rectangle that can hold the object or its shadow is ray cast per picture.
   Built with the same compiler flags, pictures match the .hpd files that tools/gen_shapes3d.c
   writes byte for byte, so a training program can render batches on the fly instead of
   reading them (other flags, e.g. FMA contraction, may move a few pixels by one level).     */
#ifndef HEPH_SHAPES3D_H
#define HEPH_SHAPES3D_H

#include <stdint.h>

#ifndef HEPH_S3D_DEF
#ifdef HEPH_SHAPES3D_STATIC
#if defined(__GNUC__)
#define HEPH_S3D_DEF static __attribute__((unused))
#else
#define HEPH_S3D_DEF static
#endif
#else
#define HEPH_S3D_DEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define HEPH_S3D_SIZE 64                                     /* pictures are 64 x 64      */
#define HEPH_S3D_PIXELS (3 * HEPH_S3D_SIZE * HEPH_S3D_SIZE)  /* bytes of one CHW picture  */
#define HEPH_S3D_N_FACTORS 6
#define HEPH_S3D_COUNT 480000L                               /* 10*10*10*8*4*15           */

enum {
    HEPH_S3D_FLOOR_HUE = 0, HEPH_S3D_WALL_HUE, HEPH_S3D_OBJECT_HUE,
    HEPH_S3D_SCALE, HEPH_S3D_SHAPE, HEPH_S3D_ORIENTATION
};
enum { HEPH_S3D_CUBE = 0, HEPH_S3D_CYLINDER, HEPH_S3D_SPHERE, HEPH_S3D_CAPSULE };

/* number of values of factor k, and its name ("floor_hue", ..., "orientation") */
HEPH_S3D_DEF int heph_shapes3d_count(int k);
HEPH_S3D_DEF const char *heph_shapes3d_name(int k);
/* real value of factor k at index i, as 3dshapes.h5 stores it (numpy linspace arithmetic) */
HEPH_S3D_DEF double heph_shapes3d_value(int k, int i);
/* factor indices <-> position in the grid (0..479999); index returns -1 if a factor is out of
   range */
HEPH_S3D_DEF long heph_shapes3d_index(const int factors[6]);
HEPH_S3D_DEF void heph_shapes3d_factors(long index, int factors[6]);
/* build the per-orientation background tables (idempotent; call before rendering from
   several threads, otherwise the first render calls it) */
HEPH_S3D_DEF void heph_shapes3d_init(void);
/* render one picture: chw gets HEPH_S3D_PIXELS bytes, planar R, G, B, rows top to bottom.
   Returns 0, or -1 (chw untouched) when a factor index is out of range. */
HEPH_S3D_DEF int heph_shapes3d_render(uint8_t *chw, const int factors[6]);

#ifdef __cplusplus
}
#endif
#endif /* HEPH_SHAPES3D_H */

#ifdef HEPH_SHAPES3D_IMPLEMENTATION
#ifndef HEPH_SHAPES3D_IMPLEMENTED
#define HEPH_SHAPES3D_IMPLEMENTED
#include <math.h>

/* ---- the factor grid ------------------------------------------------------------------- */

static const int heph__s3d_counts[6] = {10, 10, 10, 8, 4, 15};
static const char *const heph__s3d_names[6] = {"floor_hue", "wall_hue", "object_hue",
                                               "scale", "shape", "orientation"};

HEPH_S3D_DEF int heph_shapes3d_count(int k) { return (k >= 0 && k < 6) ? heph__s3d_counts[k] : 0; }
HEPH_S3D_DEF const char *heph_shapes3d_name(int k) { return (k >= 0 && k < 6) ? heph__s3d_names[k] : ""; }

/* numpy.linspace(a, b, n)[i]: a + i*step with step = (b - a)/(n - 1), the last one exactly b */
/* numpy.linspace: i * step + start, rounded twice as numpy does (volatile: no fused multiply-add
   under -ffp-contract=fast, which would change the last bits of some values)               */
static double heph__s3d_linspace(double a, double b, int n, int i) {
    volatile double t = (double)i * ((b - a) / (double)(n - 1));
    return i == n - 1 ? b : t + a;
}

HEPH_S3D_DEF double heph_shapes3d_value(int k, int i) {
    if (k < 0 || k >= 6 || i < 0 || i >= heph__s3d_counts[k]) return 0.0;
    switch (k) {
    case HEPH_S3D_SCALE: return heph__s3d_linspace(0.75, 1.25, 8, i);
    case HEPH_S3D_SHAPE: return (double)i;
    case HEPH_S3D_ORIENTATION: return heph__s3d_linspace(-30.0, 30.0, 15, i);
    default: return heph__s3d_linspace(0.0, 0.9, 10, i); /* the three hues */
    }
}

HEPH_S3D_DEF long heph_shapes3d_index(const int factors[6]) {
    long idx = 0;
    int k;
    for (k = 0; k < 6; k++) { /* mixed radix, orientation fastest */
        if (factors[k] < 0 || factors[k] >= heph__s3d_counts[k]) return -1;
        idx = idx * heph__s3d_counts[k] + factors[k];
    }
    return idx;
}

HEPH_S3D_DEF void heph_shapes3d_factors(long index, int factors[6]) {
    int k;
    for (k = 5; k >= 0; k--) {
        factors[k] = (int)(index % heph__s3d_counts[k]);
        index /= heph__s3d_counts[k];
    }
}

/* ---- the scene (world: y up, object standing on the floor y = 0 at the origin) --------- */

#define HEPH__S3D_N 64             /* picture side                                          */
#define HEPH__S3D_SS 9             /* rays per pixel                                        */
#define HEPH__S3D_FOCAL 90.0f      /* focal length in pixels: 39 deg field of view          */
#define HEPH__S3D_CAM_DIST 6.0f    /* camera: horizontal distance from the object ...       */
#define HEPH__S3D_CAM_H 2.3f       /* ... height above the floor ...                        */
#define HEPH__S3D_PITCH 9.0f       /* ... and downward tilt in degrees                      */
#define HEPH__S3D_ROOM_X 4.2f      /* side walls at x = +-ROOM_X                            */
#define HEPH__S3D_ROOM_Z 3.1f      /* back wall at z = -ROOM_Z (camera at +z at 0 deg)      */
#define HEPH__S3D_WALL_H 2.3f      /* wall height = camera height: the wall top is the horizon */
#define HEPH__S3D_SHADOW 0.45f     /* floor brightness factor inside the shadow             */
#define HEPH__S3D_AMBIENT 0.40f    /* object: ambient + diffuse * max(0, n.l)               */
#define HEPH__S3D_DIFFUSE 0.70f
#define HEPH__S3D_OBJ_V 0.93f      /* object colour HSV(h, 1, 0.93)                         */
#define HEPH__S3D_JITTER 0.07f     /* light direction spread across sub-samples (soft edge) */

/* sub-pixel offsets: a 3x3 grid jittered by fixed amounts, so renders are deterministic */
static const float heph__s3d_ss[HEPH__S3D_SS][2] = {
    {0.19f, 0.13f}, {0.52f, 0.20f}, {0.81f, 0.15f},
    {0.14f, 0.47f}, {0.47f, 0.53f}, {0.86f, 0.48f},
    {0.21f, 0.84f}, {0.55f, 0.81f}, {0.83f, 0.87f}};
static const float heph__s3d_sky[3] = {153.0f / 255.0f, 226.0f / 255.0f, 249.0f / 255.0f};

typedef struct {
    float cam[3], fw[3], rt[3], up[3]; /* camera position and basis (forward, right, up) */
} heph__s3d_view;

/* background weights of each pixel per orientation: sky, wall (x shade), floor (x shade),
   each already divided by the number of rays */
static float heph__s3d_bg[15][HEPH__S3D_N * HEPH__S3D_N][3];
static heph__s3d_view heph__s3d_views[15];
static float heph__s3d_light[HEPH__S3D_SS][3]; /* unit vectors toward the light, jittered */
static int heph__s3d_ready = 0;

static float heph__s3d_dot(const float *a, const float *b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

/* HSV(h*360deg, 1, v) to RGB */
static void heph__s3d_hsv(double h, float v, float *rgb) {
    double h6 = h * 6.0, f;
    int i = (int)floor(h6);
    float q, t;
    f = h6 - (double)i;
    q = v * (float)(1.0 - f); /* falling channel */
    t = v * (float)f;         /* rising channel  */
    switch (((i % 6) + 6) % 6) {
    case 0: rgb[0] = v; rgb[1] = t; rgb[2] = 0.0f; break;
    case 1: rgb[0] = q; rgb[1] = v; rgb[2] = 0.0f; break;
    case 2: rgb[0] = 0.0f; rgb[1] = v; rgb[2] = t; break;
    case 3: rgb[0] = 0.0f; rgb[1] = q; rgb[2] = v; break;
    case 4: rgb[0] = t; rgb[1] = 0.0f; rgb[2] = v; break;
    default: rgb[0] = v; rgb[1] = 0.0f; rgb[2] = q; break;
    }
}

/* direction of the ray through sub-sample s of pixel (x, y) (not normalised) */
static void heph__s3d_ray(const heph__s3d_view *v, int x, int y, int s, float *d) {
    float a = ((float)x + heph__s3d_ss[s][0] - 0.5f * HEPH__S3D_N) / HEPH__S3D_FOCAL;
    float b = (0.5f * HEPH__S3D_N - (float)y - heph__s3d_ss[s][1]) / HEPH__S3D_FOCAL;
    int k;
    for (k = 0; k < 3; k++) d[k] = v->fw[k] + a * v->rt[k] + b * v->up[k];
}

enum { HEPH__S3D_SKY = 0, HEPH__S3D_WALL = 1, HEPH__S3D_FLOOR = 2 };

/* what a ray from o sees without the object: sky, a wall or the floor; *shade is the
   surface's brightness, hit the floor point */
static int heph__s3d_background(const float *o, const float *d, float *shade, float *hit) {
    float tf = 1e30f, tw = 1e30f, t, wshade = 1.0f, dx, dz;
    if (d[1] < 0.0f) tf = -o[1] / d[1];          /* floor y = 0 */
    if (d[2] < 0.0f) {                           /* back wall z = -ROOM_Z: faces the camera */
        t = (-HEPH__S3D_ROOM_Z - o[2]) / d[2];
        if (t < tw) { tw = t; wshade = 1.0f; }
    }
    if (d[0] < 0.0f) {                           /* left wall x = -ROOM_X                   */
        t = (-HEPH__S3D_ROOM_X - o[0]) / d[0];
        if (t < tw) { tw = t; wshade = 0.66f; }
    }
    if (d[0] > 0.0f) {                           /* right wall x = +ROOM_X                  */
        t = (HEPH__S3D_ROOM_X - o[0]) / d[0];
        if (t < tw) { tw = t; wshade = 0.74f; }
    }
    if (tf < tw) {
        hit[0] = o[0] + tf * d[0];
        hit[1] = 0.0f;
        hit[2] = o[2] + tf * d[2];
        dx = hit[0] - o[0];
        dz = hit[2] - o[2];
        t = sqrtf(dx * dx + dz * dz);            /* horizontal distance from the camera     */
        t = 1.27f - 0.068f * t;                  /* darker toward the back: 1 near, ~.6 far */
        *shade = t > 1.0f ? 1.0f : (t < 0.45f ? 0.45f : t);
        return HEPH__S3D_FLOOR;
    }
    if (tw < 1e30f && o[1] + tw * d[1] <= HEPH__S3D_WALL_H) { *shade = wshade; return HEPH__S3D_WALL; }
    *shade = 1.0f;
    return HEPH__S3D_SKY;
}

/* the object: r = half width (cube, cylinder, sphere) or capsule radius; h = cylinder
   height or capsule segment length */
typedef struct { int shape; float r, h, top; } heph__s3d_obj;

/* nearest hit of the ray o + t d (t > tmin) with a sphere of radius r at height cy;
   returns t or -1 */
static float heph__s3d_sphere(const float *o, const float *d, float cy, float r, float tmin) {
    float oc[3], a, b, c, disc, t;
    oc[0] = o[0]; oc[1] = o[1] - cy; oc[2] = o[2];
    a = heph__s3d_dot(d, d);
    b = heph__s3d_dot(oc, d);
    c = heph__s3d_dot(oc, oc) - r * r;
    disc = b * b - a * c;                        /* |o + t d - c|^2 = r^2 */
    if (disc < 0.0f) return -1.0f;
    t = (-b - sqrtf(disc)) / a;
    return t > tmin ? t : -1.0f;
}

/* nearest hit of the ray with the side of the upright infinite cylinder x^2 + z^2 = r^2,
   restricted to y0 <= y <= y1; returns t or -1 */
static float heph__s3d_tube(const float *o, const float *d, float r, float y0, float y1, float tmin) {
    float a = d[0] * d[0] + d[2] * d[2], b = o[0] * d[0] + o[2] * d[2];
    float c = o[0] * o[0] + o[2] * o[2] - r * r, disc = b * b - a * c, t, y;
    if (a <= 0.0f || disc < 0.0f) return -1.0f;
    t = (-b - sqrtf(disc)) / a;
    y = o[1] + t * d[1];
    return (t > tmin && y >= y0 && y <= y1) ? t : -1.0f;
}

/* nearest hit with the object (t > tmin), its outward normal in n; returns t or -1 */
static float heph__s3d_hit(const heph__s3d_obj *ob, const float *o, const float *d, float tmin, float *n) {
    float t = -1.0f, t2, p[3], r = ob->r;
    int k;
    if (ob->shape == HEPH_S3D_CUBE) { /* slabs |x| <= r, 0 <= y <= 2r, |z| <= r */
        float lo[3], hi[3], tn = -1e30f, tf = 1e30f;
        int axis = 0;
        lo[0] = -r; hi[0] = r; lo[1] = 0.0f; hi[1] = 2.0f * r; lo[2] = -r; hi[2] = r;
        for (k = 0; k < 3; k++) {
            float inv = 1.0f / d[k], t0 = (lo[k] - o[k]) * inv, t1 = (hi[k] - o[k]) * inv;
            if (t0 > t1) { float s = t0; t0 = t1; t1 = s; }
            if (t0 > tn) { tn = t0; axis = k; }
            if (t1 < tf) tf = t1;
        }
        if (tn > tf || tn <= tmin) return -1.0f;
        n[0] = n[1] = n[2] = 0.0f;
        n[axis] = d[axis] > 0.0f ? -1.0f : 1.0f;
        return tn;
    }
    if (ob->shape == HEPH_S3D_SPHERE) {
        t = heph__s3d_sphere(o, d, r, r, tmin);
        if (t < 0.0f) return -1.0f;
        for (k = 0; k < 3; k++) p[k] = o[k] + t * d[k];
        n[0] = p[0] / r; n[1] = (p[1] - r) / r; n[2] = p[2] / r;
        return t;
    }
    if (ob->shape == HEPH_S3D_CYLINDER) { /* side 0 <= y <= h, flat top cap at y = h */
        t = heph__s3d_tube(o, d, r, 0.0f, ob->h, tmin);
        if (d[1] < 0.0f) {
            t2 = (ob->h - o[1]) / d[1];
            if (t2 > tmin && (t < 0.0f || t2 < t)) {
                float x = o[0] + t2 * d[0], z = o[2] + t2 * d[2];
                if (x * x + z * z <= r * r) { n[0] = 0.0f; n[1] = 1.0f; n[2] = 0.0f; return t2; }
            }
        }
        if (t < 0.0f) return -1.0f;
        n[0] = (o[0] + t * d[0]) / r; n[1] = 0.0f; n[2] = (o[2] + t * d[2]) / r;
        return t;
    }
    { /* capsule: tube r <= y <= r + h, half spheres at both ends */
        float ts;
        t = heph__s3d_tube(o, d, r, r, r + ob->h, tmin);
        ts = heph__s3d_sphere(o, d, r, r, tmin);                 /* bottom half sphere */
        if (ts > 0.0f && (t < 0.0f || ts < t) && o[1] + ts * d[1] <= r) t = ts;
        ts = heph__s3d_sphere(o, d, r + ob->h, r, tmin);         /* top half sphere    */
        if (ts > 0.0f && (t < 0.0f || ts < t) && o[1] + ts * d[1] >= r + ob->h) t = ts;
        if (t < 0.0f) return -1.0f;
        for (k = 0; k < 3; k++) p[k] = o[k] + t * d[k];
        n[0] = p[0] / r; n[2] = p[2] / r;
        if (p[1] < r) n[1] = (p[1] - r) / r;
        else if (p[1] > r + ob->h) n[1] = (p[1] - r - ob->h) / r;
        else n[1] = 0.0f;
        return t;
    }
}

HEPH_S3D_DEF void heph_shapes3d_init(void) {
    int o, s, x, y, k;
    float base[3] = {-0.5f, 0.75f, 0.4f}; /* toward the light: front-left, above */
    if (heph__s3d_ready) return;
    for (s = 0; s < HEPH__S3D_SS; s++) {   /* soft shadow: one light direction per ray */
        float l[3], len;
        l[0] = base[0] + HEPH__S3D_JITTER * (2.0f * heph__s3d_ss[s][0] - 1.0f);
        l[1] = base[1];
        l[2] = base[2] + HEPH__S3D_JITTER * (2.0f * heph__s3d_ss[s][1] - 1.0f);
        len = sqrtf(heph__s3d_dot(l, l));
        for (k = 0; k < 3; k++) heph__s3d_light[s][k] = l[k] / len;
    }
    for (o = 0; o < 15; o++) {
        heph__s3d_view *v = &heph__s3d_views[o];
        double th = heph_shapes3d_value(HEPH_S3D_ORIENTATION, o) * 3.14159265358979323846 / 180.0;
        float st = (float)sin(th), ct = (float)cos(th);
        float sp = (float)sin((double)HEPH__S3D_PITCH * 3.14159265358979323846 / 180.0);
        float cp = (float)cos((double)HEPH__S3D_PITCH * 3.14159265358979323846 / 180.0);
        /* the camera orbits the object: position, then forward/right/up = right x forward */
        v->cam[0] = HEPH__S3D_CAM_DIST * st; v->cam[1] = HEPH__S3D_CAM_H; v->cam[2] = HEPH__S3D_CAM_DIST * ct;
        v->fw[0] = -st * cp; v->fw[1] = -sp; v->fw[2] = -ct * cp;
        v->rt[0] = ct; v->rt[1] = 0.0f; v->rt[2] = -st;
        v->up[0] = v->rt[1] * v->fw[2] - v->rt[2] * v->fw[1];
        v->up[1] = v->rt[2] * v->fw[0] - v->rt[0] * v->fw[2];
        v->up[2] = v->rt[0] * v->fw[1] - v->rt[1] * v->fw[0];
        for (y = 0; y < HEPH__S3D_N; y++)
            for (x = 0; x < HEPH__S3D_N; x++) {
                float w[3] = {0.0f, 0.0f, 0.0f}, d[3], shade, hit[3];
                for (s = 0; s < HEPH__S3D_SS; s++) {
                    heph__s3d_ray(v, x, y, s, d);
                    k = heph__s3d_background(v->cam, d, &shade, hit);
                    w[k] += shade;
                }
                for (k = 0; k < 3; k++) heph__s3d_bg[o][y * HEPH__S3D_N + x][k] = w[k] * (1.0f / HEPH__S3D_SS);
            }
    }
    heph__s3d_ready = 1;
}

/* screen position of world point p (x right, y down, in pixels) */
static void heph__s3d_project(const heph__s3d_view *v, const float *p, float *sx, float *sy) {
    float q[3], z;
    q[0] = p[0] - v->cam[0]; q[1] = p[1] - v->cam[1]; q[2] = p[2] - v->cam[2];
    z = heph__s3d_dot(q, v->fw);
    *sx = 0.5f * HEPH__S3D_N + HEPH__S3D_FOCAL * heph__s3d_dot(q, v->rt) / z;
    *sy = 0.5f * HEPH__S3D_N - HEPH__S3D_FOCAL * heph__s3d_dot(q, v->up) / z;
}

/* grow the screen box {x0, x1, y0, y1} to hold (x, y) */
static void heph__s3d_grow(float *b, float x, float y) {
    if (x < b[0]) b[0] = x;
    if (x > b[1]) b[1] = x;
    if (y < b[2]) b[2] = y;
    if (y > b[3]) b[3] = y;
}

static uint8_t heph__s3d_u8(float v) {
    v = v * 255.0f + 0.5f;
    return (uint8_t)(v >= 255.0f ? 255 : (v <= 0.0f ? 0 : (int)v));
}

HEPH_S3D_DEF int heph_shapes3d_render(uint8_t *chw, const int factors[6]) {
    const int NP = HEPH__S3D_N * HEPH__S3D_N;
    const heph__s3d_view *v;
    float (*bg)[3];
    heph__s3d_obj ob;
    float floor_c[3], wall_c[3], obj_c[3], scale, rb2;
    float box[2][4] = {{1e30f, -1e30f, 1e30f, -1e30f}, {1e30f, -1e30f, 1e30f, -1e30f}};
    int i, j, k, x, y, s, bi[2][4];
    if (heph_shapes3d_index(factors) < 0) return -1;
    if (!heph__s3d_ready) heph_shapes3d_init();
    v = &heph__s3d_views[factors[HEPH_S3D_ORIENTATION]];
    bg = heph__s3d_bg[factors[HEPH_S3D_ORIENTATION]];
    heph__s3d_hsv(heph_shapes3d_value(0, factors[0]), 1.0f, floor_c);
    heph__s3d_hsv(heph_shapes3d_value(1, factors[1]), 1.0f, wall_c);
    heph__s3d_hsv(heph_shapes3d_value(2, factors[2]), HEPH__S3D_OBJ_V, obj_c);
    scale = (float)heph_shapes3d_value(HEPH_S3D_SCALE, factors[HEPH_S3D_SCALE]);

    /* object sizes at scale 1: cube side 1.3, cylinder 1.3 wide and tall, sphere diameter 1.3,
       capsule 1 wide and 1.9 tall (camera 2.3 above the floor, 6 away) */
    ob.shape = factors[HEPH_S3D_SHAPE];
    ob.r = 0.65f * scale;
    ob.h = 0.0f;
    ob.top = 2.0f * ob.r;
    if (ob.shape == HEPH_S3D_CYLINDER) ob.h = ob.top;
    if (ob.shape == HEPH_S3D_CAPSULE) { ob.r = 0.5f * scale; ob.h = 0.9f * scale; ob.top = 2.0f * ob.r + ob.h; }

    /* 1. sky, walls and floor from the table */
    for (i = 0; i < NP; i++) {
        const float *w = bg[i];
        for (k = 0; k < 3; k++)
            chw[k * NP + i] = heph__s3d_u8(w[0] * heph__s3d_sky[k] + w[1] * wall_c[k] + w[2] * floor_c[k]);
    }

    /* 2. screen rectangles that can see the object (box 0) and its shadow (box 1): the
          corners of the object's bounding box and their shadows on the floor, projected */
    for (i = 0; i < 8; i++) {
        float p[3], q[3], sx, sy;
        int j;
        p[0] = (i & 1) ? ob.r : -ob.r;
        p[1] = (i & 2) ? ob.top : 0.0f;
        p[2] = (i & 4) ? ob.r : -ob.r;
        for (j = 0; j <= HEPH__S3D_SS; j++) {
            if (j == 0) { q[0] = p[0]; q[1] = p[1]; q[2] = p[2]; }
            else {        /* its shadow under light j-1: q = p - (p.y / l.y) l */
                const float *l = heph__s3d_light[j - 1];
                for (k = 0; k < 3; k++) q[k] = p[k] - p[1] / l[1] * l[k];
            }
            heph__s3d_project(v, q, &sx, &sy);
            if (j == 0) heph__s3d_grow(box[0], sx, sy);
            if (j > 0 || p[1] == 0.0f) heph__s3d_grow(box[1], sx, sy); /* shadows start at the foot */
        }
    }
    for (j = 0; j < 2; j++) { /* whole pixels, one pixel of margin, inside the picture */
        bi[j][0] = (int)floorf(box[j][0]) - 1; bi[j][1] = (int)ceilf(box[j][1]) + 1;
        bi[j][2] = (int)floorf(box[j][2]) - 1; bi[j][3] = (int)ceilf(box[j][3]) + 1;
        for (k = 0; k < 4; k++) bi[j][k] = bi[j][k] < 0 ? 0 : (bi[j][k] > HEPH__S3D_N - 1 ? HEPH__S3D_N - 1 : bi[j][k]);
    }

    /* 3. ray cast the two rectangles: object (shaded) or background (floor tested for shadow) */
    rb2 = ob.shape == HEPH_S3D_CUBE ? 2.0f * ob.r * ob.r : ob.r * ob.r; /* footprint radius^2 */
    for (y = 0; y < HEPH__S3D_N; y++)
        for (x = 0; x < HEPH__S3D_N; x++) {
            float w[3] = {0.0f, 0.0f, 0.0f}, lit = 0.0f, d[3], n[3], shade, hit[3];
            int kind, in_obj = x >= bi[0][0] && x <= bi[0][1] && y >= bi[0][2] && y <= bi[0][3];
            int in_sh = x >= bi[1][0] && x <= bi[1][1] && y >= bi[1][2] && y <= bi[1][3];
            if (!in_obj && !in_sh) continue;
            i = y * HEPH__S3D_N + x;
            for (s = 0; s < HEPH__S3D_SS; s++) {
                const float *l = heph__s3d_light[s];
                heph__s3d_ray(v, x, y, s, d);
                if (in_obj && heph__s3d_hit(&ob, v->cam, d, 0.0f, n) > 0.0f) {
                    float nl = heph__s3d_dot(n, l);            /* Lambert: n . l */
                    nl = HEPH__S3D_AMBIENT + HEPH__S3D_DIFFUSE * (nl > 0.0f ? nl : 0.0f);
                    lit += nl < 1.0f ? nl : 1.0f;
                    continue;
                }
                kind = heph__s3d_background(v->cam, d, &shade, hit);
                if (kind == HEPH__S3D_FLOOR && in_sh) {
                    /* shadow ray hit + u l: skip it when its horizontal path (u up to the
                       object's top) stays outside the object's footprint circle */
                    float u = -(hit[0] * l[0] + hit[2] * l[2]) / (l[0] * l[0] + l[2] * l[2]), cx, cz;
                    float umax = ob.top / l[1];
                    u = u < 0.0f ? 0.0f : (u > umax ? umax : u);
                    cx = hit[0] + u * l[0];
                    cz = hit[2] + u * l[2];
                    if (cx * cx + cz * cz <= rb2 && heph__s3d_hit(&ob, hit, l, 1e-4f, n) > 0.0f)
                        shade *= HEPH__S3D_SHADOW;             /* the object blocks the light */
                }
                w[kind] += shade;
            }
            for (k = 0; k < 3; k++) w[k] *= 1.0f / HEPH__S3D_SS;
            lit *= 1.0f / HEPH__S3D_SS;
            for (k = 0; k < 3; k++)
                chw[k * NP + i] = heph__s3d_u8(w[0] * heph__s3d_sky[k] + w[1] * wall_c[k] + w[2] * floor_c[k] + lit * obj_c[k]);
        }
    return 0;
}
#endif /* HEPH_SHAPES3D_IMPLEMENTED */
#endif /* HEPH_SHAPES3D_IMPLEMENTATION */
