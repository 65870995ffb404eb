/* plot.h - the charts of the hephaestus tools and examples, as RGB pictures (and SVG text).
   Two parts, one file:
   1. Pixels only, C99 or C++, no dependency beyond the C library and libm (the examples, the
      CLI's training curve and correlation heatmap):
        plot_lines    line plot of a few series: axes, ticks, legend
        plot_heatmap  heatmap of a matrix: coloured cells with their values, labels, colour bar
      Text in a built-in 5x7 bitmap font. (These were heph_plot_lines and heph_plot_heatmap
      of hephaestus.h: charts are the tools' business, the library keeps heph_image_grid.)
   2. The CLI's outlier charts, drawn once and rendered twice: into an RGB picture (PNG files)
      or as SVG text (the HTML report). Compiled only when tools/cli_common.h was included
      before this file (they use its buffers, allocator and PNG writer). A canvas has five
      primitives - rectangle, line, dot, ring, text - and each chart is written against them:
        PLOT_CHART_SCORES  Mahalanobis score of every picture in batch order, the threshold as
                           a dashed line, flagged pictures as red dots, true outliers as rings
        PLOT_CHART_HIST    histograms (densities) of the scores of two groups, threshold line
        PLOT_CHART_BARS    one bar per latent dimension (per-dimension outlier counts)
        PLOT_CHART_XY      named points joined in order (a sweep: one point per setting)
      plot_chart_png writes one as a PNG file, plot_chart_svg appends it to an SVG buffer.
      Raster text uses stb_easy_font (Debian libstb-dev), SVG text the browser's sans-serif.
   Every name starts with plot_ (plot__ for the helpers); everything is static. */
#ifndef HEPH_PLOT_H
#define HEPH_PLOT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* not every program draws every chart */
#if defined(__GNUC__) || defined(__clang__)
#define PLOT_FN static __attribute__((unused))
#else
#define PLOT_FN static
#endif

/* ============================ 1. line plots and heatmaps ================================= */

/* line plots: axes, ticks, legend, a built-in 5x7 font */
/* characters that have a glyph, in the order of plot__font (a-z have their own) */
static const char plot__font_chars[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcd"
    "efghijklmnopqrstuvwxyz .,-+:()/=_%!?*'[]"
    "<>;\"#";
/* 5x7 glyphs: 7 rows top to bottom, bit 4 = leftmost column */
static const uint8_t plot__font[][7] = {
    {0x0E,0x11,0x13,0x15,0x19,0x11,0x0E}, /* 0 */
    {0x04,0x0C,0x04,0x04,0x04,0x04,0x0E}, /* 1 */
    {0x0E,0x11,0x01,0x02,0x04,0x08,0x1F}, /* 2 */
    {0x1F,0x02,0x04,0x02,0x01,0x11,0x0E}, /* 3 */
    {0x02,0x06,0x0A,0x12,0x1F,0x02,0x02}, /* 4 */
    {0x1F,0x10,0x1E,0x01,0x01,0x11,0x0E}, /* 5 */
    {0x06,0x08,0x10,0x1E,0x11,0x11,0x0E}, /* 6 */
    {0x1F,0x01,0x02,0x04,0x08,0x08,0x08}, /* 7 */
    {0x0E,0x11,0x11,0x0E,0x11,0x11,0x0E}, /* 8 */
    {0x0E,0x11,0x11,0x0F,0x01,0x02,0x0C}, /* 9 */
    {0x0E,0x11,0x11,0x11,0x1F,0x11,0x11}, /* A */
    {0x1E,0x11,0x11,0x1E,0x11,0x11,0x1E}, /* B */
    {0x0E,0x11,0x10,0x10,0x10,0x11,0x0E}, /* C */
    {0x1C,0x12,0x11,0x11,0x11,0x12,0x1C}, /* D */
    {0x1F,0x10,0x10,0x1E,0x10,0x10,0x1F}, /* E */
    {0x1F,0x10,0x10,0x1E,0x10,0x10,0x10}, /* F */
    {0x0E,0x11,0x10,0x17,0x11,0x11,0x0F}, /* G */
    {0x11,0x11,0x11,0x1F,0x11,0x11,0x11}, /* H */
    {0x0E,0x04,0x04,0x04,0x04,0x04,0x0E}, /* I */
    {0x07,0x02,0x02,0x02,0x02,0x12,0x0C}, /* J */
    {0x11,0x12,0x14,0x18,0x14,0x12,0x11}, /* K */
    {0x10,0x10,0x10,0x10,0x10,0x10,0x1F}, /* L */
    {0x11,0x1B,0x15,0x15,0x11,0x11,0x11}, /* M */
    {0x11,0x11,0x19,0x15,0x13,0x11,0x11}, /* N */
    {0x0E,0x11,0x11,0x11,0x11,0x11,0x0E}, /* O */
    {0x1E,0x11,0x11,0x1E,0x10,0x10,0x10}, /* P */
    {0x0E,0x11,0x11,0x11,0x15,0x12,0x0D}, /* Q */
    {0x1E,0x11,0x11,0x1E,0x14,0x12,0x11}, /* R */
    {0x0F,0x10,0x10,0x0E,0x01,0x01,0x1E}, /* S */
    {0x1F,0x04,0x04,0x04,0x04,0x04,0x04}, /* T */
    {0x11,0x11,0x11,0x11,0x11,0x11,0x0E}, /* U */
    {0x11,0x11,0x11,0x11,0x11,0x0A,0x04}, /* V */
    {0x11,0x11,0x11,0x15,0x15,0x15,0x0A}, /* W */
    {0x11,0x11,0x0A,0x04,0x0A,0x11,0x11}, /* X */
    {0x11,0x11,0x11,0x0A,0x04,0x04,0x04}, /* Y */
    {0x1F,0x01,0x02,0x04,0x08,0x10,0x1F}, /* Z */
    {0x00,0x00,0x0E,0x01,0x0F,0x11,0x0F}, /* a */
    {0x10,0x10,0x16,0x19,0x11,0x11,0x1E}, /* b */
    {0x00,0x00,0x0E,0x10,0x10,0x11,0x0E}, /* c */
    {0x01,0x01,0x0D,0x13,0x11,0x11,0x0F}, /* d */
    {0x00,0x00,0x0E,0x11,0x1F,0x10,0x0E}, /* e */
    {0x06,0x09,0x08,0x1C,0x08,0x08,0x08}, /* f */
    {0x00,0x0F,0x11,0x11,0x0F,0x01,0x0E}, /* g */
    {0x10,0x10,0x16,0x19,0x11,0x11,0x11}, /* h */
    {0x04,0x00,0x0C,0x04,0x04,0x04,0x0E}, /* i */
    {0x02,0x00,0x06,0x02,0x02,0x12,0x0C}, /* j */
    {0x10,0x10,0x12,0x14,0x18,0x14,0x12}, /* k */
    {0x0C,0x04,0x04,0x04,0x04,0x04,0x0E}, /* l */
    {0x00,0x00,0x1A,0x15,0x15,0x11,0x11}, /* m */
    {0x00,0x00,0x16,0x19,0x11,0x11,0x11}, /* n */
    {0x00,0x00,0x0E,0x11,0x11,0x11,0x0E}, /* o */
    {0x00,0x00,0x1E,0x11,0x1E,0x10,0x10}, /* p */
    {0x00,0x00,0x0D,0x13,0x0F,0x01,0x01}, /* q */
    {0x00,0x00,0x16,0x19,0x10,0x10,0x10}, /* r */
    {0x00,0x00,0x0E,0x10,0x0E,0x01,0x1E}, /* s */
    {0x08,0x08,0x1C,0x08,0x08,0x09,0x06}, /* t */
    {0x00,0x00,0x11,0x11,0x11,0x13,0x0D}, /* u */
    {0x00,0x00,0x11,0x11,0x11,0x0A,0x04}, /* v */
    {0x00,0x00,0x11,0x11,0x15,0x15,0x0A}, /* w */
    {0x00,0x00,0x11,0x0A,0x04,0x0A,0x11}, /* x */
    {0x00,0x00,0x11,0x11,0x0F,0x01,0x0E}, /* y */
    {0x00,0x00,0x1F,0x02,0x04,0x08,0x1F}, /* z */
    {0x00,0x00,0x00,0x00,0x00,0x00,0x00}, /*   */
    {0x00,0x00,0x00,0x00,0x00,0x0C,0x0C}, /* . */
    {0x00,0x00,0x00,0x00,0x0C,0x04,0x08}, /* , */
    {0x00,0x00,0x00,0x1F,0x00,0x00,0x00}, /* - */
    {0x00,0x04,0x04,0x1F,0x04,0x04,0x00}, /* + */
    {0x00,0x0C,0x0C,0x00,0x0C,0x0C,0x00}, /* : */
    {0x02,0x04,0x08,0x08,0x08,0x04,0x02}, /* ( */
    {0x08,0x04,0x02,0x02,0x02,0x04,0x08}, /* ) */
    {0x00,0x01,0x02,0x04,0x08,0x10,0x00}, /* / */
    {0x00,0x00,0x1F,0x00,0x1F,0x00,0x00}, /* = */
    {0x00,0x00,0x00,0x00,0x00,0x00,0x1F}, /* _ */
    {0x18,0x19,0x02,0x04,0x08,0x13,0x03}, /* % */
    {0x04,0x04,0x04,0x04,0x04,0x00,0x04}, /* ! */
    {0x0E,0x11,0x01,0x02,0x04,0x00,0x04}, /* ? */
    {0x00,0x04,0x15,0x0E,0x15,0x04,0x00}, /* * */
    {0x04,0x04,0x08,0x00,0x00,0x00,0x00}, /* ' */
    {0x0E,0x08,0x08,0x08,0x08,0x08,0x0E}, /* [ */
    {0x0E,0x02,0x02,0x02,0x02,0x02,0x0E}, /* ] */
    {0x02,0x04,0x08,0x10,0x08,0x04,0x02}, /* < */
    {0x08,0x04,0x02,0x01,0x02,0x04,0x08}, /* > */
    {0x00,0x0C,0x0C,0x00,0x0C,0x04,0x08}, /* ; */
    {0x0A,0x0A,0x0A,0x00,0x00,0x00,0x00}, /* " */
    {0x0A,0x0A,0x1F,0x0A,0x1F,0x0A,0x0A}, /* # */
};

/* one canvas: the RGB buffer and the clip rectangle [cx0,cx1] x [cy0,cy1] (inclusive) */
typedef struct {
    uint8_t *rgb;
    int w, h;
    int cx0, cy0, cx1, cy1;
} plot__canvas;

/* value -> pixel mapping of the data area (pixel-centre coordinates) */
typedef struct {
    float x0, x1, ytop, ybot; /* data area: first/last point x, top/bottom y              */
    float lo, hi;             /* value range shown from ybot (lo) to ytop (hi)             */
    int n;                    /* points per series                                        */
} plot__map;

/* fixed series palette (matplotlib "tab10" minus two), cycled for more series */
static const uint8_t plot__palette[8][3] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
    {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};
static const uint8_t plot__white[3] = {255, 255, 255};
static const uint8_t plot__ink[3] = {40, 40, 40};     /* text                  */
static const uint8_t plot__axis[3] = {70, 70, 70};    /* frame and ticks       */
static const uint8_t plot__grid[3] = {232, 232, 232}; /* grid lines            */
static const uint8_t plot__edge[3] = {190, 190, 190}; /* legend border         */
static const uint8_t plot__box[7] = {0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F}; /* unknown */

/* 1 if v is neither NaN nor +-Inf (NaN fails both comparisons; no isfinite macro needed) */
static int plot__finite(float v)
{
    return v >= -3.40282347e38f && v <= 3.40282347e38f;
}

/* set the clip rectangle to [x0,x1] x [y0,y1] intersected with the picture (may be empty) */
static void plot__clip(plot__canvas *cv, int x0, int y0, int x1, int y1)
{
    cv->cx0 = x0 < 0 ? 0 : x0;
    cv->cy0 = y0 < 0 ? 0 : y0;
    cv->cx1 = x1 > cv->w - 1 ? cv->w - 1 : x1;
    cv->cy1 = y1 > cv->h - 1 ? cv->h - 1 : y1;
}

/* blend colour c with weight a in [0,1] into pixel (x,y) if it lies inside the clip rect */
static void plot__blend(plot__canvas *cv, int x, int y, const uint8_t *c, float a)
{
    uint8_t *p;
    int k;
    if (x < cv->cx0 || x > cv->cx1 || y < cv->cy0 || y > cv->cy1 || !(a > 0.0f)) return;
    p = cv->rgb + ((size_t)y * (size_t)cv->w + (size_t)x) * 3;
    if (a >= 1.0f) {
        p[0] = c[0]; p[1] = c[1]; p[2] = c[2];
        return;
    }
    for (k = 0; k < 3; k++) p[k] = (uint8_t)((float)p[k] + ((float)c[k] - (float)p[k]) * a + 0.5f);
}

/* fill the rectangle [x0,x1] x [y0,y1] (inclusive, any order of bounds), clipped */
static void plot__rect(plot__canvas *cv, int x0, int y0, int x1, int y1,
                       const uint8_t *c)
{
    int x, y, t;
    if (x0 > x1) { t = x0; x0 = x1; x1 = t; }
    if (y0 > y1) { t = y0; y0 = y1; y1 = t; }
    if (x0 < cv->cx0) x0 = cv->cx0;
    if (y0 < cv->cy0) y0 = cv->cy0;
    if (x1 > cv->cx1) x1 = cv->cx1;
    if (y1 > cv->cy1) y1 = cv->cy1;
    for (y = y0; y <= y1; y++)
        for (x = x0; x <= x1; x++) plot__blend(cv, x, y, c, 1.0f);
}

/* one-pixel outline of the rectangle [x0,x1] x [y0,y1] */
static void plot__frame(plot__canvas *cv, int x0, int y0, int x1, int y1,
                        const uint8_t *c)
{
    plot__rect(cv, x0, y0, x1, y0, c);
    plot__rect(cv, x0, y1, x1, y1, c);
    plot__rect(cv, x0, y0, x0, y1, c);
    plot__rect(cv, x1, y0, x1, y1, c);
}

/* the 7 glyph rows of character ch; unknown characters get a hollow box */
static const uint8_t *plot__glyph(char ch)
{
    int i;
    for (i = 0; plot__font_chars[i]; i++)
        if (plot__font_chars[i] == ch) return plot__font[i];
    return plot__box;
}

/* width in pixels of the first n characters of s at scale sc (6*sc per char, no trailing gap) */
static int plot__text_w(const char *s, int n, int sc)
{
    size_t sl = strlen(s);
    int len = sl > 100000 ? 100000 : (int)sl;
    if (n >= 0 && n < len) len = n;
    return len > 0 ? (len * 6 - 1) * sc : 0;
}

/* draw at most n characters of s (n < 0: all) with the top-left corner at (x,y), scale sc */
static void plot__text(plot__canvas *cv, int x, int y, const char *s, int n, int sc,
                       const uint8_t *c)
{
    int i, r, b;
    for (i = 0; s[i] && (n < 0 || i < n); i++, x += 6 * sc) {
        const uint8_t *g = plot__glyph(s[i]);
        if (x > cv->cx1) break;
        for (r = 0; r < 7; r++)
            for (b = 0; b < 5; b++)
                if (g[r] & (0x10 >> b))
                    plot__rect(cv, x + b * sc, y + r * sc, x + b * sc + sc - 1,
                               y + r * sc + sc - 1, c);
    }
}

/* anti-aliased segment (a->b) of half-width r: coverage from the distance to the segment */
static void plot__seg(plot__canvas *cv, float ax, float ay, float bx, float by,
                      float r, const uint8_t *c)
{
    float minx = ax < bx ? ax : bx, maxx = ax < bx ? bx : ax;
    float miny = ay < by ? ay : by, maxy = ay < by ? by : ay;
    float dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    int x0, x1, y0, y1, x, y;
    /* bounding box of the thick segment, clipped in float before the int conversion */
    minx = floorf(minx - r - 1.0f); maxx = ceilf(maxx + r + 1.0f);
    miny = floorf(miny - r - 1.0f); maxy = ceilf(maxy + r + 1.0f);
    if (maxx < (float)cv->cx0 || minx > (float)cv->cx1) return;
    if (maxy < (float)cv->cy0 || miny > (float)cv->cy1) return;
    x0 = minx < (float)cv->cx0 ? cv->cx0 : (int)minx;
    x1 = maxx > (float)cv->cx1 ? cv->cx1 : (int)maxx;
    y0 = miny < (float)cv->cy0 ? cv->cy0 : (int)miny;
    y1 = maxy > (float)cv->cy1 ? cv->cy1 : (int)maxy;
    for (y = y0; y <= y1; y++) {
        for (x = x0; x <= x1; x++) {
            /* distance from the pixel centre to the closest point of the segment */
            float px = (float)x + 0.5f - ax, py = (float)y + 0.5f - ay, t = 0.0f, ex, ey, cov;
            if (len2 > 0.0f) {
                t = (px * dx + py * dy) / len2;
                t = t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
            }
            ex = px - t * dx;
            ey = py - t * dy;
            cov = r + 0.5f - sqrtf(ex * ex + ey * ey);
            if (cov > 0.0f) plot__blend(cv, x, y, c, cov > 1.0f ? 1.0f : cov);
        }
    }
}

/* map point i of a series with value v to pixel-centre coordinates */
static void plot__xy(const plot__map *m, int i, float v, float *x, float *y)
{
    float t = 0.5f;
    if (m->n > 1) *x = m->x0 + (m->x1 - m->x0) * ((float)i / (float)(m->n - 1));
    else *x = 0.5f * (m->x0 + m->x1);
    /* halves keep (v - lo) / (hi - lo) finite even for values near +-FLT_MAX */
    if (m->hi > m->lo) t = (v * 0.5f - m->lo * 0.5f) / (m->hi * 0.5f - m->lo * 0.5f);
    *y = m->ybot - (m->ybot - m->ytop) * t;
}

/* format a tick value compactly with p significant digits: "105", "1.5e3", "0.25", "-2e-5" */
static void plot__fmt(char *out, size_t cap, float v, int p)
{
    char tmp[40];
    size_t i = 0, o = 0;
    snprintf(tmp, sizeof tmp, "%.*g", p, (double)v);
    while (tmp[i] && o + 1 < cap) {
        out[o++] = tmp[i];
        if (tmp[i++] == 'e') {
            /* exponent: keep a minus sign, drop '+' and leading zeros */
            if (tmp[i] == '-' && o + 1 < cap) out[o++] = tmp[i];
            if (tmp[i] == '-' || tmp[i] == '+') i++;
            while (tmp[i] == '0' && tmp[i + 1]) i++;
        }
    }
    out[o] = 0;
}

/* nice tick step >= raw from {1, 2, 2.5, 5} x 10^k; *quarter = 1 when the 2.5 mantissa won */
static float plot__nice(float raw, int *quarter)
{
    static const float mant[5] = {1.0f, 2.0f, 2.5f, 5.0f, 10.0f};
    float mag = powf(10.0f, floorf(log10f(raw)));
    int k;
    *quarter = 0;
    if (!(mag > 0.0f) || !plot__finite(mag)) return 0.0f;
    for (k = 0; k < 4; k++)
        if (mant[k] * mag >= raw * 0.999f) break;
    *quarter = (k == 2);
    return mant[k] * mag;
}

/* number of series sample points (every ~3 px along each segment) inside [x0,x1] x [y0,y1] */
static long plot__hits(const plot__map *m, const float *ys, int ns, int x0, int y0,
                       int x1, int y1)
{
    long hits = 0;
    int s, i, k, steps;
    for (s = 0; s < ns; s++) {
        const float *v = ys + (size_t)s * (size_t)m->n;
        for (i = 0; i < m->n; i++) {
            float ax, ay, bx, by;
            if (!plot__finite(v[i])) continue;
            plot__xy(m, i, v[i], &ax, &ay);
            bx = ax; by = ay;
            if (i + 1 < m->n && plot__finite(v[i + 1]))
                plot__xy(m, i + 1, v[i + 1], &bx, &by);
            steps = 1 + (int)((fabsf(bx - ax) + fabsf(by - ay)) / 3.0f);
            if (steps > 4096) steps = 4096;
            for (k = 0; k < steps; k++) {
                float t = (float)k / (float)steps;
                float x = ax + (bx - ax) * t, y = ay + (by - ay) * t;
                if (x >= (float)x0 - 2.0f && x <= (float)x1 + 3.0f && y >= (float)y0 - 2.0f &&
                    y <= (float)y1 + 3.0f)
                    hits++;
            }
        }
    }
    return hits;
}

/* Line plot of n_series curves of n_points each (ys: series-major), RGB u8 of w x h, with
   axes, tick labels and a legend in a built-in 5x7 font. labels may be NULL.
   Drawn: white background, title, framed axes with ticks and labels, one coloured
   polyline per series (non-finite values break the line), and a legend when labels != NULL. */
PLOT_FN void plot_lines(uint8_t *rgb, int w, int h, const float *ys, int n_series,
                        int n_points, const char *const *labels, const char *title)
{
    plot__canvas cv;
    plot__map m;
    float lo = 0.0f, hi = 0.0f, mid, half, step = 0.0f, r, ytick[64];
    char ylab[64][24], xlab[24];
    int nyt = 0, ylab_w = 0, quarter = 0, prec = 3, text, tscale = 0, title_h = 0;
    int left, right, top, bottom, px0, py0, pw, ph, insx, insy, have = 0, s, i, k, markers;
    int xstep = 1, bare;
    if (!rgb || w < 1 || h < 1) return;
    cv.rgb = rgb; cv.w = w; cv.h = h;
    plot__clip(&cv, 0, 0, w - 1, h - 1);
    plot__rect(&cv, 0, 0, w - 1, h - 1, plot__white);
    if (!ys || n_series < 1 || n_points < 1) { n_series = 0; n_points = 1; }

    /* value range over all finite values */
    for (s = 0; s < n_series; s++)
        for (i = 0; i < n_points; i++) {
            float v = ys[(size_t)s * (size_t)n_points + (size_t)i];
            if (!plot__finite(v)) continue;
            if (!have || v < lo) lo = v;
            if (!have || v > hi) hi = v;
            have = 1;
        }
    if (!have) { lo = 0.0f; hi = 1.0f; }
    /* a flat (or numerically flat) range is widened around its middle: +-10%, or +-1 at 0 */
    mid = lo * 0.5f + hi * 0.5f;
    half = hi * 0.5f - lo * 0.5f;
    if (half <= fabsf(mid) * 1e-5f) {
        half = mid != 0.0f ? fabsf(mid) * 0.1f : 1.0f;
        if (plot__finite(mid - half) && plot__finite(mid + half)) {
            lo = mid - half;
            hi = mid + half;
        }
    }

    /* layout: text (title, tick labels, legend) only when the picture is large enough */
    text = (w >= 80 && h >= 60);
    if (text && title && title[0]) {
        tscale = (h >= 160 && plot__text_w(title, -1, 2) <= w - 8) ? 2 : 1;
        title_h = 7 * tscale;
    }
    bare = (w >= 8 && h >= 8) ? 1 : 0; /* margin of the bare plot: none below 8 px */
    top = text ? (title_h ? 8 + title_h + 8 : 8) : bare;
    bottom = text ? 4 + 3 + 7 + 5 : bare;
    ph = h - top - bottom;
    if (text && ph < 30) {
        /* not enough height for text: fall back to the bare plot */
        text = 0; title_h = 0;
        top = bottom = 1;
        ph = h - 2;
    }
    insy = text ? (ph / 20 > 3 ? ph / 20 : 3) : (ph >= 12 ? 2 : (ph >= 5 ? 1 : 0));

    /* y ticks: a nice step giving about one tick per 40 px, labelled with enough digits */
    if (text && hi > lo) {
        int target = ph / 40, n0;
        float k0, k1, span = (hi * 0.5f - lo * 0.5f) * 2.0f, emax;
        if (target < 2) target = 2;
        if (target > 10) target = 10;
        /* retry with more ticks while fewer than two land inside the range */
        for (; target <= 12 && nyt < 2 && plot__finite(span); target++) {
            nyt = 0;
            step = plot__nice(span / (float)target, &quarter);
            if (!(step > 0.0f)) break;
            k0 = ceilf(lo / step);
            k1 = floorf(hi / step);
            n0 = k1 >= k0 ? (int)(k1 - k0 > 62.0f ? 62.0f : k1 - k0) + 1 : 0;
            for (k = 0; k < n0; k++) {
                float v = (k0 + (float)k) * step;
                if (fabsf(v) < step * 1e-3f) v = 0.0f; /* 1e-17 -> 0 */
                if (v >= lo - step * 1e-3f && v <= hi + step * 1e-3f) ytick[nyt++] = v;
            }
        }
        if (nyt > 0) {
            /* significant digits: enough to tell neighbouring ticks apart, at least 3 */
            emax = fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi);
            if (emax < step) emax = step;
            prec = (int)floorf(log10f(emax)) - (int)floorf(log10f(step)) + 1 + quarter;
            if (prec < 3) prec = 3;
            if (prec > 8) prec = 8;
        }
        for (k = 0; k < nyt; k++) {
            int lw;
            plot__fmt(ylab[k], sizeof ylab[k], ytick[k], prec);
            lw = plot__text_w(ylab[k], -1, 1);
            if (lw > ylab_w) ylab_w = lw;
        }
    }
    snprintf(xlab, sizeof xlab, "%d", n_points);
    left = text ? 5 + ylab_w + 4 + 4 : bare;
    right = text ? 12 + plot__text_w(xlab, -1, 1) / 2 : bare;
    pw = w - left - right;
    if (text && pw < 30) {
        /* not enough width for text: bare plot */
        text = 0; title_h = 0; nyt = 0;
        top = bottom = left = right = 1;
        pw = w - 2; ph = h - 2;
        insy = ph >= 12 ? 2 : (ph >= 5 ? 1 : 0);
    }
    if (pw < 1) { left = 0; pw = w; }
    if (ph < 1) { top = 0; ph = h; }
    insx = text ? (pw / 25 > 3 ? pw / 25 : 3) : (pw >= 12 ? 2 : (pw >= 5 ? 1 : 0));
    px0 = left; py0 = top;

    /* data area in pixel-centre coordinates */
    m.x0 = (float)(px0 + insx) + 0.5f;
    m.x1 = (float)(px0 + pw - 1 - insx) + 0.5f;
    m.ytop = (float)(py0 + insy) + 0.5f;
    m.ybot = (float)(py0 + ph - 1 - insy) + 0.5f;
    m.lo = lo; m.hi = hi; m.n = n_points;
    r = text ? (pw >= 300 ? 1.0f : 0.8f) : 0.6f;

    /* title, centred (left-aligned when wider than the picture) */
    if (title_h) {
        int tw = plot__text_w(title, -1, tscale), tx = (w - tw) / 2;
        plot__text(&cv, tx < 2 ? 2 : tx, 8, title, -1, tscale, plot__ink);
    }

    /* y grid, ticks and labels */
    for (k = 0; k < nyt; k++) {
        float fx, fy;
        int yp;
        plot__xy(&m, 0, ytick[k], &fx, &fy);
        yp = (int)floorf(fy);
        plot__rect(&cv, px0 + 1, yp, px0 + pw - 2, yp, plot__grid);
        plot__rect(&cv, px0 - 4, yp, px0 - 1, yp, plot__axis);
        plot__text(&cv, px0 - 7 - plot__text_w(ylab[k], -1, 1), yp - 3, ylab[k], -1,
                   1, plot__ink);
    }

    /* x ticks at point indices 1..n_points: step 1, 2, 5, 10, ... so labels never touch */
    if (text) {
        float per = n_points > 1 ? (m.x1 - m.x0) / (float)(n_points - 1) : 0.0f;
        float need = (float)(plot__text_w(xlab, -1, 1) + 10);
        int base = 1;
        while (n_points > 1 && per * (float)xstep < need) {
            if (xstep == base) xstep = 2 * base;
            else if (xstep == 2 * base) xstep = 5 * base;
            else {
                if (base > 100000000) break;
                base *= 10;
                xstep = base;
            }
        }
        for (i = 0; i < n_points;) {
            float fx, fy;
            int xp;
            /* tick 1 is kept next to tick xstep only if their labels cannot overlap */
            if (i > 0 || xstep == 1 || per * (float)(xstep - 1) >= need) {
                plot__xy(&m, i, lo, &fx, &fy);
                xp = (int)floorf(fx);
                snprintf(xlab, sizeof xlab, "%d", i + 1);
                plot__rect(&cv, xp, py0 + 1, xp, py0 + ph - 2, plot__grid);
                plot__rect(&cv, xp, py0 + ph, xp, py0 + ph + 3, plot__axis);
                plot__text(&cv, xp - plot__text_w(xlab, -1, 1) / 2, py0 + ph + 6,
                           xlab, -1, 1, plot__ink);
            }
            /* next tick index (written to never overflow int) */
            if (i == 0 && xstep > 1) i = xstep - 1;
            else if (n_points - i <= xstep) break;
            else i += xstep;
        }
    }

    /* frame */
    plot__frame(&cv, px0, py0, px0 + pw - 1, py0 + ph - 1, plot__axis);

    /* series: clipped to the inside of the frame; markers when points are >= 12 px apart */
    plot__clip(&cv, pw > 2 ? px0 + 1 : px0, ph > 2 ? py0 + 1 : py0,
                pw > 2 ? px0 + pw - 2 : px0 + pw - 1, ph > 2 ? py0 + ph - 2 : py0 + ph - 1);
    markers = text && n_points > 1 && (m.x1 - m.x0) / (float)(n_points - 1) >= 12.0f;
    for (s = 0; s < n_series; s++) {
        const float *v = ys + (size_t)s * (size_t)n_points;
        const uint8_t *c = plot__palette[s % 8];
        for (i = 0; i < n_points; i++) {
            float ax, ay, bx, by;
            int prev, next;
            if (!plot__finite(v[i])) continue;
            plot__xy(&m, i, v[i], &ax, &ay);
            prev = i > 0 && plot__finite(v[i - 1]);
            next = i + 1 < n_points && plot__finite(v[i + 1]);
            if (next) {
                plot__xy(&m, i + 1, v[i + 1], &bx, &by);
                plot__seg(&cv, ax, ay, bx, by, r, c);
            }
            /* a dot for markers and for isolated points (n_points == 1, or NaN both sides) */
            if (markers || (!prev && !next))
                plot__seg(&cv, ax, ay, ax, ay, markers ? r + 1.5f : r + 1.0f, c);
        }
    }

    /* legend: in the plot corner crossed by the fewest curve samples */
    if (text && labels && n_series > 0) {
        int ne = 0, maxc = 0, bw, bh, nfit, cfit, best = 0, ex, ey, trunc;
        long best_hits = -1;
        for (s = 0; s < n_series; s++)
            if (labels[s]) {
                int l = (int)strlen(labels[s]);
                ne++;
                if (l > maxc) maxc = l;
            }
        /* entries that fit inside the frame; labels get at most ~60% of the plot width */
        nfit = (ph - 12 - 6) / 11;
        cfit = (pw * 3 / 5 - 34) / 6;
        if (ne > nfit) ne = nfit;
        trunc = maxc > cfit;
        if (trunc) maxc = cfit;
        bw = 5 + 18 + 5 + maxc * 6 - 1 + 6;
        bh = ne * 11 + 5;
        /* a legend hiding more than a quarter of the plot is left out */
        if (ne > 0 && maxc >= 3 && (float)bw * (float)bh <= 0.25f * (float)pw * (float)ph) {
            for (k = 0; k < 4; k++) {
                /* corners in order of preference: top-right, top-left, bottom-right, bottom-left */
                int x0 = (k & 1) ? px0 + 6 : px0 + pw - 6 - bw;
                int y0 = (k & 2) ? py0 + ph - 6 - bh : py0 + 6;
                long hits = plot__hits(&m, ys, n_series, x0, y0, x0 + bw - 1, y0 + bh - 1);
                if (best_hits < 0 || hits < best_hits) { best_hits = hits; best = k; }
            }
            ex = (best & 1) ? px0 + 6 : px0 + pw - 6 - bw;
            ey = (best & 2) ? py0 + ph - 6 - bh : py0 + 6;
            plot__rect(&cv, ex, ey, ex + bw - 1, ey + bh - 1, plot__white);
            plot__frame(&cv, ex, ey, ex + bw - 1, ey + bh - 1, plot__edge);
            for (s = 0, k = 0; s < n_series && k < ne; s++) {
                float ly;
                if (!labels[s]) continue;
                ly = (float)(ey + 5 + k * 11 + 3) + 0.5f;
                plot__seg(&cv, (float)(ex + 5) + 0.5f, ly, (float)(ex + 22) + 0.5f, ly, r,
                          plot__palette[s % 8]);
                if (markers)
                    plot__seg(&cv, (float)(ex + 14), ly, (float)(ex + 14), ly, r + 1.5f,
                              plot__palette[s % 8]);
                /* a label longer than the box ends in ".." */
                if (trunc && (int)strlen(labels[s]) > maxc) {
                    plot__text(&cv, ex + 28, ey + 5 + k * 11, labels[s], maxc - 2, 1,
                               plot__ink);
                    plot__text(&cv, ex + 28 + (maxc - 2) * 6, ey + 5 + k * 11, "..", 2, 1,
                               plot__ink);
                } else {
                    plot__text(&cv, ex + 28, ey + 5 + k * 11, labels[s], maxc, 1,
                               plot__ink);
                }
                k++;
            }
        }
    }
}

/* heatmaps: diverging blue-white-red cells, values, labels and a colour bar */
/* ColorBrewer RdBu anchors from t = -1 (deep blue) through 0 (near white) to +1 (deep red) */
static const uint8_t plot__heat_ramp[9][3] = {
    {5, 48, 97},    {33, 102, 172}, {67, 147, 195}, {146, 197, 222}, {247, 247, 247},
    {244, 165, 130}, {214, 96, 77},  {178, 24, 43},  {103, 0, 31}};
static const uint8_t plot__heat_nan[3] = {190, 190, 190}; /* cells holding NaN */

/* colour of value v on the range [lo, hi] whose white point is wp (lo <= wp <= hi):
   t = (v - wp)/(hi - wp) above wp, -(wp - v)/(wp - lo) below, linear between the anchors */
static void plot__heat_colour(double v, double lo, double hi, double wp, uint8_t *out)
{
    double t = 0.0, u;
    int i, k;
    if (v != v) { memcpy(out, plot__heat_nan, 3); return; }
    v = v < lo ? lo : (v > hi ? hi : v);
    if (v > wp && hi > wp) t = (v - wp) / (hi - wp);
    if (v < wp && wp > lo) t = -(wp - v) / (wp - lo);
    u = (t + 1.0) * 4.0; /* 0..8 along the anchors */
    i = (int)u;
    if (i > 7) i = 7;
    if (i < 0) i = 0;
    u -= (double)i;
    for (k = 0; k < 3; k++) {
        double a = (double)plot__heat_ramp[i][k], b = (double)plot__heat_ramp[i + 1][k];
        out[k] = (uint8_t)(a + (b - a) * u + 0.5);
    }
}

/* cell value text: dec >= 0 fixed decimals, else 3 significant digits; "-0.00" -> "0.00" */
static void plot__heat_fmt(char *out, size_t cap, float v, int dec)
{
    size_t i, len;
    int zero = 1;
    if (dec >= 0) snprintf(out, cap, "%.*f", dec, (double)v);
    else plot__fmt(out, cap, v, 3);
    len = strlen(out);
    for (i = 1; i < len; i++)
        if (out[i] != '0' && out[i] != '.') zero = 0;
    if (out[0] == '-' && len > 1 && zero) memmove(out, out + 1, len);
}

/* label i of a label list, or its index when the list or the entry is NULL (buf: storage) */
static const char *plot__heat_label(const char *const *labels, int i, char *buf, size_t cap)
{
    if (labels && labels[i]) return labels[i];
    snprintf(buf, cap, "%d", i);
    return buf;
}

/* draw s shortened to at most maxc characters ("abcdefgh" -> "abc.." when maxc = 5, a plain
   cut "abc" below 5, where ".." would leave too little of the label), with its
   left edge at x when align < 0, centred on x when align == 0, right edge at x when align > 0 */
static void plot__heat_text(plot__canvas *cv, int x, int y, const char *s, int maxc,
                            int align, const uint8_t *c)
{
    int len = (int)(strlen(s) > 1000 ? 1000 : strlen(s)), tw;
    if (maxc < 1) return;
    if (len > maxc && maxc >= 5) {
        tw = plot__text_w(s, maxc, 1);
        x = align < 0 ? x : (align == 0 ? x - tw / 2 : x - tw + 1);
        plot__text(cv, x, y, s, maxc - 2, 1, c);
        plot__text(cv, x + (maxc - 2) * 6, y, "..", 2, 1, c);
        return;
    }
    if (len > maxc) len = maxc;
    tw = plot__text_w(s, len, 1);
    x = align < 0 ? x : (align == 0 ? x - tw / 2 : x - tw + 1);
    plot__text(cv, x, y, s, len, 1, c);
}

/* pixel offset of cell boundary i of n cells spread over `total` pixels: i * total / n */
static int plot__heat_edge(int i, int total, int n)
{
    return (int)((long long)i * total / n);
}

/* width in pixels of the label after shortening to maxc characters */
static int plot__heat_label_w(const char *s, int maxc)
{
    return plot__text_w(s, maxc, 1);
}

/* Heatmap of the (rows, cols) row-major matrix m as an RGB u8 picture of w x h: one cell per
   value, coloured blue (below) - white - red (above) around 0 (or around vmin when vmin >= 0,
   around vmax when vmax <= 0); values outside [vmin, vmax] get the end colours, NaN cells are
   gray. When vmin >= vmax (or either is not finite) the range is taken from the data
   (symmetric around 0 if the data has both signs). Values are printed in the cells that are
   large enough, row labels on the left, column labels below, a colour bar on the right and the
   title on top, in the built-in 5x7 font; labels that do not fit are shortened ("..") or
   thinned out. row_labels (rows entries) / col_labels (cols entries) may be NULL (indices
   0.. are printed), as may any entry; title may be NULL. Below 80x60 (or when the cells
   would get less than 20 px) the picture holds the cells only. Writes exactly w*h*3 bytes,
   for any w, h >= 1 (nothing when rgb is NULL or w, h < 1).                               */
PLOT_FN void plot_heatmap(uint8_t *rgb, int w, int h, const float *m, int rows, int cols,
                          float vmin, float vmax, const char *const *row_labels,
                          const char *const *col_labels, const char *title)
{
    plot__canvas cv;
    double lo, hi, wp, amax = 0.0;
    char buf[48], lab[3][24];
    const char *s;
    int text, tscale = 0, title_h = 0, top, bottom, left, right, gx0, gy0, gw, gh, r, c, y, k;
    int rstep = 1, cstep = 1, rmaxc, cmaxc = 0, lab_w = 0, nlab, dec, sc, sep;
    size_t i, nm;
    if (!rgb || w < 1 || h < 1) return;
    cv.rgb = rgb; cv.w = w; cv.h = h;
    plot__clip(&cv, 0, 0, w - 1, h - 1);
    plot__rect(&cv, 0, 0, w - 1, h - 1, plot__white);
    if (!m || rows < 1 || cols < 1) return;
    nm = (size_t)rows * (size_t)cols;

    /* colour range: the caller's, or the data's (symmetric around 0 when it has both signs) */
    for (i = 0; i < nm; i++)
        if (plot__finite(m[i]) && fabs((double)m[i]) > amax) amax = fabs((double)m[i]);
    lo = (double)vmin; hi = (double)vmax;
    if (!(plot__finite(vmin) && plot__finite(vmax) && vmin < vmax)) {
        double dlo = 0.0, dhi = 0.0;
        int seen = 0;
        for (i = 0; i < nm; i++) {
            double v = (double)m[i];
            if (!plot__finite(m[i])) continue;
            if (!seen || v < dlo) dlo = v;
            if (!seen || v > dhi) dhi = v;
            seen = 1;
        }
        if (dlo < 0.0 && dhi > 0.0) { lo = -amax; hi = amax; }
        else if (dlo == dhi) {
            lo = dlo > 0.0 ? 0.0 : (dlo < 0.0 ? dlo : -1.0);
            hi = dlo > 0.0 ? dlo : (dlo < 0.0 ? 0.0 : 1.0);
        } else { lo = dlo; hi = dhi; }
    }
    wp = 0.0 < lo ? lo : (0.0 > hi ? hi : 0.0); /* the white point: 0 clamped into the range */
    dec = amax < 9.995 ? 2 : (amax < 99.95 ? 1 : -1);

    /* layout: title on top, column labels below, row labels left, colour bar right */
    text = (w >= 80 && h >= 60);
    if (text && title && title[0]) {
        tscale = (h >= 160 && plot__text_w(title, -1, 2) <= w - 8) ? 2 : 1;
        title_h = 7 * tscale;
    }
    top = text ? (title_h ? 6 + title_h + 8 : 6) : 0;
    bottom = text ? 4 + 7 + 6 : 0;
    gh = h - top - bottom;
    /* colour bar tick labels: hi, lo and the white point when it lies inside */
    nlab = 0;
    plot__fmt(lab[nlab++], sizeof lab[0], (float)hi, 3);
    plot__fmt(lab[nlab++], sizeof lab[0], (float)lo, 3);
    if (wp > lo && wp < hi) plot__fmt(lab[nlab++], sizeof lab[0], (float)wp, 3);
    right = 0;
    for (k = 0; k < nlab; k++)
        if (plot__text_w(lab[k], -1, 1) > right) right = plot__text_w(lab[k], -1, 1);
    right = text ? 8 + 12 + 4 + right + 6 : 0;
    /* row labels: one every rstep rows so that they are >= 9 px apart, at most w/4 wide */
    if (text && gh > 0) {
        double cellh = (double)gh / (double)rows;
        while ((double)rstep * cellh < 9.0 && rstep < rows) rstep++;
    }
    rmaxc = (w / 4 + 1) / 6;
    for (r = 0; text && r < rows; r += rstep) {
        int lw = plot__heat_label_w(plot__heat_label(row_labels, r, buf, sizeof buf), rmaxc);
        if (lw > lab_w) lab_w = lw;
    }
    left = text ? 6 + lab_w + 5 : 0;
    gw = w - left - right;
    if (text && (gw < 20 || gh < 20)) {
        text = 0; title_h = 0;
        top = bottom = left = right = 0;
    }
    if (!text) { gw = w; gh = h; }
    gx0 = left; gy0 = top;

    /* title, centred (left-aligned when wider than the picture) */
    if (title_h) {
        int tw = plot__text_w(title, -1, tscale), tx = (w - tw) / 2;
        plot__text(&cv, tx < 2 ? 2 : tx, 6, title, -1, tscale, plot__ink);
    }

    /* cells: pixel column x belongs to cell (x - gx0) * cols / gw; 1 px white gaps when big */
    sep = (gw / cols >= 10 && gh / rows >= 10);
    for (y = 0; y < gh; y++) {
        int rr = (int)((long long)y * rows / gh);
        for (c = 0; c < cols; c++) {
            int xa = plot__heat_edge(c, gw, cols), xb = plot__heat_edge(c + 1, gw, cols) - 1;
            int yb = plot__heat_edge(rr + 1, gh, rows) - 1;
            uint8_t col[3];
            if (xb < xa || (sep && y == yb)) continue; /* no pixel of its own; the gap row */
            if (sep) xb--;
            plot__heat_colour((double)m[(size_t)rr * (size_t)cols + (size_t)c], lo, hi, wp, col);
            plot__rect(&cv, gx0 + xa, gy0 + y, gx0 + xb, gy0 + y, col);
        }
    }

    /* values in the cells, when every cell can hold its text (scale 2 in big cells) */
    if (text) {
        int cw = gw / cols - (sep ? 1 : 0), chh = gh / rows - (sep ? 1 : 0), maxw = 0;
        for (i = 0; i < nm; i++) {
            int tw;
            if (m[i] != m[i]) continue;
            plot__heat_fmt(buf, sizeof buf, m[i], dec);
            tw = plot__text_w(buf, -1, 1);
            if (tw > maxw) maxw = tw;
        }
        sc = (2 * maxw + 8 <= cw && 14 + 8 <= chh) ? 2 : ((maxw + 4 <= cw && 7 + 4 <= chh) ? 1 : 0);
        for (r = 0; sc && r < rows; r++)
            for (c = 0; c < cols; c++) {
                float v = m[(size_t)r * (size_t)cols + (size_t)c];
                int xa = plot__heat_edge(c, gw, cols), xb = plot__heat_edge(c + 1, gw, cols) - 1;
                int ya = plot__heat_edge(r, gh, rows), yb = plot__heat_edge(r + 1, gh, rows) - 1;
                uint8_t col[3];
                const uint8_t *ink;
                float luma;
                int tw;
                if (v != v) continue;
                if (sep) { xb--; yb--; }
                plot__heat_colour((double)v, lo, hi, wp, col);
                /* light text on dark cells: luma 0.299 R + 0.587 G + 0.114 B */
                luma = 0.299f * (float)col[0] + 0.587f * (float)col[1] + 0.114f * (float)col[2];
                ink = luma < 140.0f ? plot__white : plot__ink;
                plot__heat_fmt(buf, sizeof buf, v, dec);
                tw = plot__text_w(buf, -1, sc);
                plot__text(&cv, gx0 + (xa + xb + 1 - tw) / 2, gy0 + (ya + yb + 1 - 7 * sc) / 2,
                           buf, -1, sc, ink);
            }
    }
    if (!text) return;

    /* row labels, right-aligned against the grid and centred on their rows */
    for (r = 0; r < rows; r += rstep) {
        int yc = gy0 + (int)((2LL * r + 1) * gh / (2LL * rows)); /* centre of row r */
        s = plot__heat_label(row_labels, r, buf, sizeof buf);
        plot__heat_text(&cv, gx0 - 6, yc - 3, s, rmaxc, 1, plot__ink);
    }

    /* column labels below the grid: one every cstep columns, with room for >= 3 characters
       (or for the longest label when that is shorter), 5 px apart */
    {
        int need = 0;
        double cellw = (double)gw / (double)cols;
        for (c = 0; c < cols; c++) {
            int l = (int)strlen(plot__heat_label(col_labels, c, buf, sizeof buf));
            if (l > need) need = l;
        }
        if (need > 3) need = 3;
        /* characters that fit in cstep cells with a 5 px gap: (room + 1) / 6 */
        while (cstep < cols && (int)(((double)cstep * cellw - 5.0 + 1.0) / 6.0) < need) cstep++;
        cmaxc = (int)(((double)cstep * cellw - 5.0 + 1.0) / 6.0);
        plot__clip(&cv, 0, 0, gx0 + gw + 5, h - 1);
        for (c = 0; c < cols; c += cstep) {
            int xc = gx0 + (int)((2LL * c + 1) * gw / (2LL * cols));
            s = plot__heat_label(col_labels, c, buf, sizeof buf);
            plot__heat_text(&cv, xc, gy0 + gh + 4, s, cmaxc, 0, plot__ink);
        }
        plot__clip(&cv, 0, 0, w - 1, h - 1);
    }

    /* colour bar: hi at the top, lo at the bottom, ticks at hi, lo and the white point */
    {
        int bx0 = gx0 + gw + 8, bx1 = bx0 + 11, tk;
        for (y = 0; y < gh; y++) {
            uint8_t col[3];
            double f = gh > 1 ? (double)y / (double)(gh - 1) : 0.0;
            plot__heat_colour(hi - (hi - lo) * f, lo, hi, wp, col);
            plot__rect(&cv, bx0, gy0 + y, bx1, gy0 + y, col);
        }
        plot__frame(&cv, bx0, gy0, bx1, gy0 + gh - 1, plot__axis);
        for (tk = 0; tk < nlab; tk++) {
            double val = tk == 0 ? hi : (tk == 1 ? lo : wp);
            int yt = gy0 + (int)((hi - val) / (hi - lo) * (double)(gh - 1) + 0.5);
            int ty = yt - 3;
            plot__rect(&cv, bx1 + 1, yt, bx1 + 3, yt, plot__axis);
            /* keep the end labels inside the bar's height */
            if (tk == 0 && ty < gy0) ty = gy0;
            if (tk == 1 && ty + 6 > gy0 + gh - 1) ty = gy0 + gh - 7;
            plot__text(&cv, bx1 + 6, ty, lab[tk], -1, 1, plot__ink);
        }
    }
}

/* ============================ 2. the CLI's charts (PNG and SVG) ========================== */
#ifdef HEPH_CLI_COMMON_H

#include <stb/stb_easy_font.h>

typedef struct { unsigned char r, g, b; } plot__rgb;

static const plot__rgb plot__col_ink = {40, 40, 40}, plot__col_grid = {225, 225, 225}, plot__col_blue = {52, 101, 164},
                       plot__col_red = {204, 40, 40}, plot__col_orange = {235, 140, 0}, plot__col_white = {255, 255, 255};

typedef struct {
    int w, h;
    uint8_t *px;  /* raster: RGB w*h (or NULL) */
    cli_buf *svg; /* SVG text (or NULL)        */
} plot__cv;

static void plot__cv_hex(char *s, plot__rgb c) { sprintf(s, "#%02x%02x%02x", c.r, c.g, c.b); }

/* blend colour c with opacity a into pixel (x, y) */
static void plot__cv_plot(plot__cv *cv, int x, int y, plot__rgb c, double a) {
    uint8_t *p;
    if (x < 0 || y < 0 || x >= cv->w || y >= cv->h) return;
    p = cv->px + 3 * ((size_t)y * (size_t)cv->w + (size_t)x);
    p[0] = (uint8_t)(p[0] + a * (c.r - p[0]) + 0.5);
    p[1] = (uint8_t)(p[1] + a * (c.g - p[1]) + 0.5);
    p[2] = (uint8_t)(p[2] + a * (c.b - p[2]) + 0.5);
}

/* fill [x, x+w) x [y, y+h) in the raster, rounded to whole pixels */
static void plot__px_rect(plot__cv *cv, double x, double y, double w, double h, plot__rgb c, double alpha) {
    int i, j, x0 = (int)floor(x + 0.5), y0 = (int)floor(y + 0.5), x1 = (int)floor(x + w + 0.5), y1 = (int)floor(y + h + 0.5);
    for (j = y0; j < y1; j++)
        for (i = x0; i < x1; i++) plot__cv_plot(cv, i, j, c, alpha);
}

static void plot__cv_rect(plot__cv *cv, double x, double y, double w, double h, plot__rgb c, double alpha) {
    if (cv->svg) {
        char hex[8];
        plot__cv_hex(hex, c);
        buf_printf(cv->svg, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" fill-opacity=\"%.2f\"/>\n",
                   x, y, w, h, hex, alpha);
    }
    if (cv->px) plot__px_rect(cv, x, y, w, h, c, alpha);
}

/* disc (fill) or ring (outline) of radius r around (x, y) in the raster */
static void plot__cv_disc_px(plot__cv *cv, double x, double y, double r, plot__rgb c, int ring) {
    int i, j;
    for (j = (int)floor(y - r - 1); j <= (int)ceil(y + r + 1); j++)
        for (i = (int)floor(x - r - 1); i <= (int)ceil(x + r + 1); i++) {
            double d = sqrt((i + 0.5 - x) * (i + 0.5 - x) + (j + 0.5 - y) * (j + 0.5 - y));
            if (ring ? fabs(d - r) <= 0.75 : d <= r) plot__cv_plot(cv, i, j, c, 1.0);
        }
}

static void plot__cv_line(plot__cv *cv, double x0, double y0, double x1, double y1, plot__rgb c, double width, int dashed) {
    if (cv->svg) {
        char hex[8];
        plot__cv_hex(hex, c);
        buf_printf(cv->svg, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.1f\"%s/>\n",
                   x0, y0, x1, y1, hex, width, dashed ? " stroke-dasharray=\"6 4\"" : "");
    }
    if (cv->px) { /* stamp discs every half pixel; dashes: 6 on, 4 off */
        double len = sqrt((x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0)), t;
        for (t = 0.0; t <= len; t += 0.5) {
            double f = len > 0.0 ? t / len : 0.0;
            if (dashed && fmod(t, 10.0) >= 6.0) continue;
            if (width <= 1.0) plot__cv_plot(cv, (int)floor(x0 + f * (x1 - x0)), (int)floor(y0 + f * (y1 - y0)), c, 1.0);
            else plot__cv_disc_px(cv, x0 + f * (x1 - x0), y0 + f * (y1 - y0), 0.5 * width, c, 0);
        }
    }
}

static void plot__cv_dot(plot__cv *cv, double x, double y, double r, plot__rgb c, int ring) {
    if (cv->svg) {
        char hex[8];
        plot__cv_hex(hex, c);
        if (ring) buf_printf(cv->svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"/>\n", x, y, r, hex);
        else buf_printf(cv->svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", x, y, r, hex);
    }
    if (cv->px) plot__cv_disc_px(cv, x, y, r, c, ring);
}

/* text centred vertically on y; anchor 0 left, 1 centre, 2 right; size 1 or 2 */
static void plot__cv_text(plot__cv *cv, double x, double y, const char *s, int anchor, plot__rgb c, int size) {
    char text[256];
    snprintf(text, sizeof text, "%s", s);
    if (cv->svg) {
        static const char *const anchors[3] = {"start", "middle", "end"};
        char hex[8];
        plot__cv_hex(hex, c);
        buf_printf(cv->svg, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" fill=\"%s\" text-anchor=\"%s\" dominant-baseline=\"middle\">",
                   x, y, size > 1 ? 15 : 11, hex, anchors[anchor]);
        buf_html(cv->svg, text);
        buf_str(cv->svg, "</text>\n");
    }
    if (cv->px) {
        char quads[256 * 280]; /* stb_easy_font: about 270 bytes per character */
        int n, q, w = stb_easy_font_width(text) * size;
        double x0 = x - (anchor == 1 ? 0.5 * w : anchor == 2 ? w : 0), y0 = y - 3.5 * size;
        n = stb_easy_font_print(0.0f, 0.0f, text, NULL, quads, (int)sizeof quads);
        for (q = 0; q < n; q++) { /* quad: 4 vertices of 16 bytes, x and y floats first */
            float v0[2], v2[2];
            memcpy(v0, quads + 64 * q, sizeof v0);
            memcpy(v2, quads + 64 * q + 32, sizeof v2);
            plot__px_rect(cv, x0 + size * (double)v0[0], y0 + size * (double)v0[1] - 0.5, size * (double)(v2[0] - v0[0]),
                    size * (double)(v2[1] - v0[1]), c, 1.0);
        }
    }
}

/* ---- canvases ---------------------------------------------------------------------------------- */

static void plot__cv_begin(plot__cv *cv, int w, int h, uint8_t *px, cli_buf *svg) {
    cv->w = w; cv->h = h; cv->px = px; cv->svg = svg;
    if (svg) buf_printf(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                             "font-family=\"sans-serif\">\n", w, h, w, h);
    if (px) memset(px, 255, (size_t)w * (size_t)h * 3);
    if (svg) plot__cv_rect(cv, 0, 0, w, h, plot__col_white, 1.0);
}

static void plot__cv_end(plot__cv *cv) {
    if (cv->svg) buf_str(cv->svg, "</svg>\n");
}

/* ---- axes -------------------------------------------------------------------------------------- */

typedef struct {
    double x0, x1, y0, y1;  /* data ranges              */
    double L, T, R, B;      /* plot box in pixels        */
} plot__axes;

static double plot__ax_x(const plot__axes *a, double x) { return a->L + (x - a->x0) / (a->x1 - a->x0) * (a->R - a->L); }
static double plot__ax_y(const plot__axes *a, double y) { return a->B - (y - a->y0) / (a->y1 - a->y0) * (a->B - a->T); }

/* a "nice" tick step (1, 2 or 5 times a power of ten) for about n ticks over range */
static double plot__nice_step(double range, int n) {
    double raw = range / n, p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * p;
}

static void plot__tick_label(char *s, size_t n, double v, double step) {
    if (fabs(v) < 1e-9 * step) v = 0.0;
    if (fabs(v) >= 1e5 || (step < 1e-3 && v != 0.0)) snprintf(s, n, "%.2g", v);
    else snprintf(s, n, "%.*f", step >= 1.0 ? 0 : step >= 0.1 ? 1 : step >= 0.01 ? 2 : 3, v);
}

/* frame, grid lines, ticks and labels on both axes, title and axis names */
static void plot__draw_axes(plot__cv *cv, const plot__axes *a, const char *title, const char *xname, const char *yname, int x_ticks) {
    double step, v;
    char s[32];
    step = plot__nice_step(a->y1 - a->y0, 5);
    for (v = ceil(a->y0 / step) * step; v <= a->y1 + 1e-9 * step; v += step) {
        plot__cv_line(cv, a->L, plot__ax_y(a, v), a->R, plot__ax_y(a, v), plot__col_grid, 1.0, 0);
        plot__tick_label(s, sizeof s, v, step);
        plot__cv_text(cv, a->L - 5, plot__ax_y(a, v), s, 2, plot__col_ink, 1);
    }
    if (x_ticks) {
        step = plot__nice_step(a->x1 - a->x0, 8);
        if (x_ticks == 2 && step < 1.0) step = 1.0;
        for (v = ceil(a->x0 / step) * step; v <= a->x1 + 1e-9 * step; v += step) {
            plot__cv_line(cv, plot__ax_x(a, v), a->B, plot__ax_x(a, v), a->B + 4, plot__col_ink, 1.0, 0);
            plot__tick_label(s, sizeof s, v, step);
            plot__cv_text(cv, plot__ax_x(a, v), a->B + 12, s, 1, plot__col_ink, 1);
        }
    }
    plot__cv_line(cv, a->L, a->B, a->R, a->B, plot__col_ink, 1.0, 0);
    plot__cv_line(cv, a->L, a->T, a->L, a->B, plot__col_ink, 1.0, 0);
    plot__cv_text(cv, 0.5 * cv->w, 14, title, 1, plot__col_ink, 2);
    plot__cv_text(cv, 0.5 * (a->L + a->R), cv->h - 10, xname, 1, plot__col_ink, 1);
    plot__cv_text(cv, 8, a->T - 14, yname, 0, plot__col_ink, 1);
}

/* legend entries at the top right of the plot box: kind 0 line, 1 dot, 2 ring, 3 box */
static void plot__draw_legend(plot__cv *cv, const plot__axes *a, int n, const char *const *text, const int *kind, const plot__rgb *col) {
    int i;
    size_t w = 0;
    for (i = 0; i < n; i++) w = strlen(text[i]) > w ? strlen(text[i]) : w;
    plot__cv_rect(cv, a->R - 156, a->T + 1, 34 + 6.5 * (double)w, 15 * n + 6, plot__col_white, 0.85);
    for (i = 0; i < n; i++) {
        double y = a->T + 10 + 15 * i, x = a->R - 150;
        if (kind[i] == 0) plot__cv_line(cv, x, y, x + 18, y, col[i], 2.0, 0);
        else if (kind[i] == 3) plot__cv_rect(cv, x + 3, y - 5, 12, 10, col[i], 0.6);
        else plot__cv_dot(cv, x + 9, y, 3.5, col[i], kind[i] == 2);
        plot__cv_text(cv, x + 24, y, text[i], 0, plot__col_ink, 1);
    }
}

static void plot__axes_box(plot__axes *a, const plot__cv *cv) {
    a->L = 62; a->R = cv->w - 20; a->T = 44; a->B = cv->h - 40;
}

/* ---- the charts ---------------------------------------------------------------------------------- */

/* scores (n) in batch order; thr the threshold; flag (n) flagged; truth (n) or NULL */
static void plot__chart_scores(plot__cv *cv, const double *d2, size_t n, double thr, const unsigned char *flag,
                               const int *truth, const char *title, const char *axis) {
    plot__axes a;
    size_t i;
    double top = thr == thr && thr < HUGE_VAL ? thr : 0.0;
    char score_text[64];
    const char *lt[4];
    static const int lk[4] = {0, 0, 1, 2};
    plot__rgb lc[4];
    lc[0] = plot__col_blue; lc[1] = plot__col_red; lc[2] = plot__col_red; lc[3] = plot__col_orange;
    snprintf(score_text, sizeof score_text, "score %s", axis);
    lt[0] = score_text; lt[1] = "threshold"; lt[2] = "flagged"; lt[3] = "true outlier";
    double low = thr == thr && thr > -HUGE_VAL && thr < 0.0 ? thr : 0.0; /* scores may be negative (complexity) */
    for (i = 0; i < n; i++) {
        if (d2[i] > top) top = d2[i];
        if (d2[i] < low) low = d2[i];
    }
    plot__axes_box(&a, cv);
    a.x0 = 0.0; a.x1 = n > 1 ? (double)(n - 1) : 1.0;
    a.y0 = low < 0.0 ? low - 0.04 * (top - low) : 0.0;
    a.y1 = top > a.y0 ? top + 0.08 * (top - a.y0) : a.y0 + 1.0;
    plot__draw_axes(cv, &a, title, "picture (batch order)", axis, 2);
    for (i = 0; i + 1 < n; i++) plot__cv_line(cv, plot__ax_x(&a, (double)i), plot__ax_y(&a, d2[i]), plot__ax_x(&a, (double)i + 1), plot__ax_y(&a, d2[i + 1]), plot__col_blue, 1.2, 0);
    if (thr == thr && thr < HUGE_VAL) plot__cv_line(cv, a.L, plot__ax_y(&a, thr), a.R, plot__ax_y(&a, thr), plot__col_red, 1.5, 1);
    for (i = 0; i < n; i++) {
        if (flag[i]) plot__cv_dot(cv, plot__ax_x(&a, (double)i), plot__ax_y(&a, d2[i]), 2.8, plot__col_red, 0);
        if (truth && truth[i]) plot__cv_dot(cv, plot__ax_x(&a, (double)i), plot__ax_y(&a, d2[i]), 5.0, plot__col_orange, 1);
    }
    plot__draw_legend(cv, &a, truth ? 4 : 3, lt, lk, lc);
}

/* density histograms of the scores of group 0 and group 1 (group[i]), 30 bins over [0, max] */
static void plot__chart_hist(plot__cv *cv, const double *d2, size_t n, const int *group, double thr,
                             const char *const names[2], const char *title, const char *axis) {
    enum { NB = 30 };
    double cnt[2][NB] = {{0}}, tot[2] = {0, 0}, top = 0.0, hi = thr == thr && thr < HUGE_VAL ? thr : 0.0, bw;
    size_t i;
    int b, g;
    plot__axes a;
    static const int lk[3] = {3, 3, 0};
    const char *lt[3];
    plot__rgb lc[3];
    lt[0] = names[0]; lt[1] = names[1]; lt[2] = "threshold";
    lc[0] = plot__col_blue; lc[1] = plot__col_red; lc[2] = plot__col_ink;
    double lo = thr == thr && thr > -HUGE_VAL && thr < 0.0 ? thr : 0.0; /* bins over [lo, hi]: lo < 0 for negative scores */
    for (i = 0; i < n; i++) {
        if (d2[i] > hi) hi = d2[i];
        if (d2[i] < lo) lo = d2[i];
    }
    if (!(hi > lo)) hi = lo + 1.0;
    bw = 1.02 * (hi - lo) / NB;
    for (i = 0; i < n; i++) {
        b = (int)((d2[i] - lo) / bw);
        cnt[group[i] != 0][b < 0 ? 0 : b >= NB ? NB - 1 : b] += 1.0;
        tot[group[i] != 0] += 1.0;
    }
    for (g = 0; g < 2; g++)
        for (b = 0; b < NB; b++) {
            cnt[g][b] = tot[g] > 0.0 ? cnt[g][b] / (tot[g] * bw) : 0.0; /* density: count / (n_group * width) */
            if (cnt[g][b] > top) top = cnt[g][b];
        }
    plot__axes_box(&a, cv);
    a.x0 = lo; a.x1 = lo + bw * NB; a.y0 = 0.0; a.y1 = top > 0.0 ? 1.1 * top : 1.0;
    char score_text[64];
    snprintf(score_text, sizeof score_text, "score %s", axis);
    plot__draw_axes(cv, &a, title, score_text, "density", 1);
    for (g = 0; g < 2; g++)
        for (b = 0; b < NB; b++)
            if (cnt[g][b] > 0.0)
                plot__cv_rect(cv, plot__ax_x(&a, lo + b * bw) + 1, plot__ax_y(&a, cnt[g][b]), plot__ax_x(&a, lo + (b + 1) * bw) - plot__ax_x(&a, lo + b * bw) - 1,
                        a.B - plot__ax_y(&a, cnt[g][b]), g ? plot__col_red : plot__col_blue, 0.55);
    if (thr == thr && thr < HUGE_VAL) plot__cv_line(cv, plot__ax_x(&a, thr), a.T, plot__ax_x(&a, thr), a.B, plot__col_ink, 1.5, 1);
    plot__draw_legend(cv, &a, 3, lt, lk, lc);
}

/* one bar per dimension d with height counts[d], labelled z0, z1, ... */
static void plot__chart_bars(plot__cv *cv, const int *counts, int D, const char *title) {
    plot__axes a;
    int d, top = 1;
    char s[16];
    for (d = 0; d < D; d++) if (counts[d] > top) top = counts[d];
    plot__axes_box(&a, cv);
    a.x0 = -0.5; a.x1 = D - 0.5; a.y0 = 0.0; a.y1 = top * 1.1;
    plot__draw_axes(cv, &a, title, "latent dimension", "outliers", 0);
    for (d = 0; d < D; d++) {
        double x0 = plot__ax_x(&a, d - 0.35), x1 = plot__ax_x(&a, d + 0.35);
        plot__cv_rect(cv, x0, plot__ax_y(&a, counts[d]), x1 - x0, a.B - plot__ax_y(&a, counts[d]), plot__col_blue, 0.85);
        if (D <= 40 || d % ((D + 39) / 40) == 0) {
            snprintf(s, sizeof s, "z%d", d);
            plot__cv_text(cv, plot__ax_x(&a, d), a.B + 12, s, 1, plot__col_ink, 1);
        }
    }
}

/* ---- output --------------------------------------------------------------------------------------- */

enum { PLOT_CHART_SCORES, PLOT_CHART_HIST, PLOT_CHART_BARS, PLOT_CHART_XY };

typedef struct {       /* what a chart shows; only the fields of its kind are used */
    int kind;
    const double *d2;
    size_t n;
    double thr;
    const unsigned char *flag;
    const int *group;  /* scores: truth (or NULL); hist: the two groups */
    const char *names[2];
    const int *counts;
    int D;
    const char *title;
    const char *axis;  /* scores, hist: the score's name on the axes (NULL: D^2); xy: the y axis */
    const double *x;   /* xy: n points (x[i], d2[i]) joined in order, each named by point[i] */
    const char *const *point;
    const char *x_axis;
} plot_chart;

/* n named points (x_i, y_i) joined in their order, the axes around them with a margin */
static void plot__chart_xy(plot__cv *cv, const plot_chart *c) {
    plot__axes a;
    size_t i;
    double x0 = HUGE_VAL, x1 = -HUGE_VAL, y0 = HUGE_VAL, y1 = -HUGE_VAL;
    for (i = 0; i < c->n; i++) {
        if (c->x[i] < x0) x0 = c->x[i];
        if (c->x[i] > x1) x1 = c->x[i];
        if (c->d2[i] < y0) y0 = c->d2[i];
        if (c->d2[i] > y1) y1 = c->d2[i];
    }
    if (!(x1 > x0)) { x0 -= 1.0; x1 += 1.0; }
    if (!(y1 > y0)) { y0 -= 0.5; y1 += 0.5; }
    plot__axes_box(&a, cv);
    a.x0 = x0 - 0.08 * (x1 - x0); a.x1 = x1 + 0.08 * (x1 - x0);
    a.y0 = y0 - 0.08 * (y1 - y0); a.y1 = y1 + 0.12 * (y1 - y0);
    plot__draw_axes(cv, &a, c->title, c->x_axis, c->axis, 5);
    for (i = 0; i + 1 < c->n; i++)
        plot__cv_line(cv, plot__ax_x(&a, c->x[i]), plot__ax_y(&a, c->d2[i]), plot__ax_x(&a, c->x[i + 1]),
                      plot__ax_y(&a, c->d2[i + 1]), plot__col_blue, 1.2, 1);
    for (i = 0; i < c->n; i++) {
        plot__cv_dot(cv, plot__ax_x(&a, c->x[i]), plot__ax_y(&a, c->d2[i]), 4.0, plot__col_red, 0);
        if (c->point && c->point[i])
            plot__cv_text(cv, plot__ax_x(&a, c->x[i]), plot__ax_y(&a, c->d2[i]) - 10, c->point[i], 1, plot__col_ink, 1);
    }
}

static void plot__chart_draw(plot__cv *cv, const plot_chart *c) {
    const char *axis = c->axis ? c->axis : "D^2";
    if (c->kind == PLOT_CHART_SCORES) plot__chart_scores(cv, c->d2, c->n, c->thr, c->flag, c->group, c->title, axis);
    else if (c->kind == PLOT_CHART_HIST) plot__chart_hist(cv, c->d2, c->n, c->group, c->thr, c->names, c->title, axis);
    else if (c->kind == PLOT_CHART_XY) plot__chart_xy(cv, c);
    else plot__chart_bars(cv, c->counts, c->D, c->title);
}

PLOT_FN void plot_chart_png(const plot_chart *c, const char *path, int w, int h) {
    plot__cv cv;
    uint8_t *px = (uint8_t *)cli_alloc((size_t)w * (size_t)h, 3);
    plot__cv_begin(&cv, w, h, px, NULL);
    plot__chart_draw(&cv, c);
    cli_write_png(path, px, w, h);
    printf("wrote %s (%dx%d)\n", path, w, h);
    free(px);
}

PLOT_FN void plot_chart_svg(const plot_chart *c, cli_buf *svg, int w, int h) {
    plot__cv cv;
    plot__cv_begin(&cv, w, h, NULL, svg);
    plot__chart_draw(&cv, c);
    plot__cv_end(&cv);
}

#endif /* HEPH_CLI_COMMON_H */
#endif /* HEPH_PLOT_H */
