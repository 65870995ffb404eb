/* cli_plot.h - the charts of the hephaestus CLI, drawn once and rendered twice: into an RGB
   picture (PNG files) or as SVG text (the HTML report). A canvas has five primitives -
   rectangle, line, dot, ring, text - and each chart is written against them:
     chart_scores  Mahalanobis score of every picture in batch order, the threshold as a
                   dashed line, flagged pictures as red dots, true outliers as rings
     chart_hist    histograms (densities) of the scores of two groups, threshold line
     chart_bars    one bar per latent dimension (per-dimension outlier counts)
   Raster text uses stb_easy_font (Debian libstb-dev), SVG text the browser's sans-serif. */
#ifndef HEPH_CLI_PLOT_H
#define HEPH_CLI_PLOT_H

#include <stb/stb_easy_font.h>

typedef struct { unsigned char r, g, b; } cli_rgb;

static const cli_rgb col_ink = {40, 40, 40}, col_grid = {225, 225, 225}, col_blue = {52, 101, 164},
                     col_red = {204, 40, 40}, col_orange = {235, 140, 0}, col_white = {255, 255, 255};

typedef struct {
    int w, h;
    uint8_t *px;  /* raster: RGB w*h (or NULL) */
    cli_buf *svg; /* SVG text (or NULL)        */
} cli_canvas;

static void cv_hex(char *s, cli_rgb c) { sprintf(s, "#%02x%02x%02x", c.r, c.g, c.b); }

/* blend colour c with opacity a into pixel (x, y) */
static void cv_plot(cli_canvas *cv, int x, int y, cli_rgb c, double a) {
    uint8_t *p;
    if (x < 0 || y < 0 || x >= cv->w || y >= cv->h) return;
    p = cv->px + 3 * ((size_t)y * (size_t)cv->w + (size_t)x);
    p[0] = (uint8_t)(p[0] + a * (c.r - p[0]) + 0.5);
    p[1] = (uint8_t)(p[1] + a * (c.g - p[1]) + 0.5);
    p[2] = (uint8_t)(p[2] + a * (c.b - p[2]) + 0.5);
}

/* fill [x, x+w) x [y, y+h) in the raster, rounded to whole pixels */
static void px_rect(cli_canvas *cv, double x, double y, double w, double h, cli_rgb c, double alpha) {
    int i, j, x0 = (int)floor(x + 0.5), y0 = (int)floor(y + 0.5), x1 = (int)floor(x + w + 0.5), y1 = (int)floor(y + h + 0.5);
    for (j = y0; j < y1; j++)
        for (i = x0; i < x1; i++) cv_plot(cv, i, j, c, alpha);
}

static void cv_rect(cli_canvas *cv, double x, double y, double w, double h, cli_rgb c, double alpha) {
    if (cv->svg) {
        char hex[8];
        cv_hex(hex, c);
        buf_printf(cv->svg, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" fill-opacity=\"%.2f\"/>\n",
                   x, y, w, h, hex, alpha);
    }
    if (cv->px) px_rect(cv, x, y, w, h, c, alpha);
}

/* disc (fill) or ring (outline) of radius r around (x, y) in the raster */
static void cv_disc_px(cli_canvas *cv, double x, double y, double r, cli_rgb c, int ring) {
    int i, j;
    for (j = (int)floor(y - r - 1); j <= (int)ceil(y + r + 1); j++)
        for (i = (int)floor(x - r - 1); i <= (int)ceil(x + r + 1); i++) {
            double d = sqrt((i + 0.5 - x) * (i + 0.5 - x) + (j + 0.5 - y) * (j + 0.5 - y));
            if (ring ? fabs(d - r) <= 0.75 : d <= r) cv_plot(cv, i, j, c, 1.0);
        }
}

static void cv_line(cli_canvas *cv, double x0, double y0, double x1, double y1, cli_rgb c, double width, int dashed) {
    if (cv->svg) {
        char hex[8];
        cv_hex(hex, c);
        buf_printf(cv->svg, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.1f\"%s/>\n",
                   x0, y0, x1, y1, hex, width, dashed ? " stroke-dasharray=\"6 4\"" : "");
    }
    if (cv->px) { /* stamp discs every half pixel; dashes: 6 on, 4 off */
        double len = sqrt((x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0)), t;
        for (t = 0.0; t <= len; t += 0.5) {
            double f = len > 0.0 ? t / len : 0.0;
            if (dashed && fmod(t, 10.0) >= 6.0) continue;
            if (width <= 1.0) cv_plot(cv, (int)floor(x0 + f * (x1 - x0)), (int)floor(y0 + f * (y1 - y0)), c, 1.0);
            else cv_disc_px(cv, x0 + f * (x1 - x0), y0 + f * (y1 - y0), 0.5 * width, c, 0);
        }
    }
}

static void cv_dot(cli_canvas *cv, double x, double y, double r, cli_rgb c, int ring) {
    if (cv->svg) {
        char hex[8];
        cv_hex(hex, c);
        if (ring) buf_printf(cv->svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"/>\n", x, y, r, hex);
        else buf_printf(cv->svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", x, y, r, hex);
    }
    if (cv->px) cv_disc_px(cv, x, y, r, c, ring);
}

/* text centred vertically on y; anchor 0 left, 1 centre, 2 right; size 1 or 2 */
static void cv_text(cli_canvas *cv, double x, double y, const char *s, int anchor, cli_rgb c, int size) {
    char text[256];
    snprintf(text, sizeof text, "%s", s);
    if (cv->svg) {
        static const char *const anchors[3] = {"start", "middle", "end"};
        char hex[8];
        cv_hex(hex, c);
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
            px_rect(cv, x0 + size * (double)v0[0], y0 + size * (double)v0[1] - 0.5, size * (double)(v2[0] - v0[0]),
                    size * (double)(v2[1] - v0[1]), c, 1.0);
        }
    }
}

/* ---- canvases ---------------------------------------------------------------------------------- */

static void cv_begin(cli_canvas *cv, int w, int h, uint8_t *px, cli_buf *svg) {
    cv->w = w; cv->h = h; cv->px = px; cv->svg = svg;
    if (svg) buf_printf(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                             "font-family=\"sans-serif\">\n", w, h, w, h);
    if (px) memset(px, 255, (size_t)w * (size_t)h * 3);
    if (svg) cv_rect(cv, 0, 0, w, h, col_white, 1.0);
}

static void cv_end(cli_canvas *cv) {
    if (cv->svg) buf_str(cv->svg, "</svg>\n");
}

/* ---- axes -------------------------------------------------------------------------------------- */

typedef struct {
    double x0, x1, y0, y1;  /* data ranges              */
    double L, T, R, B;      /* plot box in pixels        */
} cli_axes;

static double ax_x(const cli_axes *a, double x) { return a->L + (x - a->x0) / (a->x1 - a->x0) * (a->R - a->L); }
static double ax_y(const cli_axes *a, double y) { return a->B - (y - a->y0) / (a->y1 - a->y0) * (a->B - a->T); }

/* a "nice" tick step (1, 2 or 5 times a power of ten) for about n ticks over range */
static double nice_step(double range, int n) {
    double raw = range / n, p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * p;
}

static void tick_label(char *s, size_t n, double v, double step) {
    if (fabs(v) < 1e-9 * step) v = 0.0;
    if (fabs(v) >= 1e5 || (step < 1e-3 && v != 0.0)) snprintf(s, n, "%.2g", v);
    else snprintf(s, n, "%.*f", step >= 1.0 ? 0 : step >= 0.1 ? 1 : step >= 0.01 ? 2 : 3, v);
}

/* frame, grid lines, ticks and labels on both axes, title and axis names */
static void draw_axes(cli_canvas *cv, const cli_axes *a, const char *title, const char *xname, const char *yname, int x_ticks) {
    double step, v;
    char s[32];
    step = nice_step(a->y1 - a->y0, 5);
    for (v = ceil(a->y0 / step) * step; v <= a->y1 + 1e-9 * step; v += step) {
        cv_line(cv, a->L, ax_y(a, v), a->R, ax_y(a, v), col_grid, 1.0, 0);
        tick_label(s, sizeof s, v, step);
        cv_text(cv, a->L - 5, ax_y(a, v), s, 2, col_ink, 1);
    }
    if (x_ticks) {
        step = nice_step(a->x1 - a->x0, 8);
        if (x_ticks == 2 && step < 1.0) step = 1.0;
        for (v = ceil(a->x0 / step) * step; v <= a->x1 + 1e-9 * step; v += step) {
            cv_line(cv, ax_x(a, v), a->B, ax_x(a, v), a->B + 4, col_ink, 1.0, 0);
            tick_label(s, sizeof s, v, step);
            cv_text(cv, ax_x(a, v), a->B + 12, s, 1, col_ink, 1);
        }
    }
    cv_line(cv, a->L, a->B, a->R, a->B, col_ink, 1.0, 0);
    cv_line(cv, a->L, a->T, a->L, a->B, col_ink, 1.0, 0);
    cv_text(cv, 0.5 * cv->w, 14, title, 1, col_ink, 2);
    cv_text(cv, 0.5 * (a->L + a->R), cv->h - 10, xname, 1, col_ink, 1);
    cv_text(cv, 8, a->T - 14, yname, 0, col_ink, 1);
}

/* legend entries at the top right of the plot box: kind 0 line, 1 dot, 2 ring, 3 box */
static void draw_legend(cli_canvas *cv, const cli_axes *a, int n, const char *const *text, const int *kind, const cli_rgb *col) {
    int i;
    size_t w = 0;
    for (i = 0; i < n; i++) w = strlen(text[i]) > w ? strlen(text[i]) : w;
    cv_rect(cv, a->R - 156, a->T + 1, 34 + 6.5 * (double)w, 15 * n + 6, col_white, 0.85);
    for (i = 0; i < n; i++) {
        double y = a->T + 10 + 15 * i, x = a->R - 150;
        if (kind[i] == 0) cv_line(cv, x, y, x + 18, y, col[i], 2.0, 0);
        else if (kind[i] == 3) cv_rect(cv, x + 3, y - 5, 12, 10, col[i], 0.6);
        else cv_dot(cv, x + 9, y, 3.5, col[i], kind[i] == 2);
        cv_text(cv, x + 24, y, text[i], 0, col_ink, 1);
    }
}

static void axes_box(cli_axes *a, const cli_canvas *cv) {
    a->L = 62; a->R = cv->w - 20; a->T = 44; a->B = cv->h - 40;
}

/* ---- the charts ---------------------------------------------------------------------------------- */

/* scores (n) in batch order; thr the threshold; flag (n) flagged; truth (n) or NULL */
static void chart_scores(cli_canvas *cv, const double *d2, size_t n, double thr, const unsigned char *flag,
                         const int *truth, const char *title) {
    cli_axes a;
    size_t i;
    double top = thr == thr && thr < HUGE_VAL ? thr : 0.0;
    static const char *const lt[4] = {"score D^2", "threshold", "flagged", "true outlier"};
    static const int lk[4] = {0, 0, 1, 2};
    cli_rgb lc[4];
    lc[0] = col_blue; lc[1] = col_red; lc[2] = col_red; lc[3] = col_orange;
    double low = thr == thr && thr > -HUGE_VAL && thr < 0.0 ? thr : 0.0; /* scores may be negative (complexity) */
    for (i = 0; i < n; i++) {
        if (d2[i] > top) top = d2[i];
        if (d2[i] < low) low = d2[i];
    }
    axes_box(&a, cv);
    a.x0 = 0.0; a.x1 = n > 1 ? (double)(n - 1) : 1.0;
    a.y0 = low < 0.0 ? low - 0.04 * (top - low) : 0.0;
    a.y1 = top > a.y0 ? top + 0.08 * (top - a.y0) : a.y0 + 1.0;
    draw_axes(cv, &a, title, "picture (batch order)", "D^2", 2);
    for (i = 0; i + 1 < n; i++) cv_line(cv, ax_x(&a, (double)i), ax_y(&a, d2[i]), ax_x(&a, (double)i + 1), ax_y(&a, d2[i + 1]), col_blue, 1.2, 0);
    if (thr == thr && thr < HUGE_VAL) cv_line(cv, a.L, ax_y(&a, thr), a.R, ax_y(&a, thr), col_red, 1.5, 1);
    for (i = 0; i < n; i++) {
        if (flag[i]) cv_dot(cv, ax_x(&a, (double)i), ax_y(&a, d2[i]), 2.8, col_red, 0);
        if (truth && truth[i]) cv_dot(cv, ax_x(&a, (double)i), ax_y(&a, d2[i]), 5.0, col_orange, 1);
    }
    draw_legend(cv, &a, truth ? 4 : 3, lt, lk, lc);
}

/* density histograms of the scores of group 0 and group 1 (group[i]), 30 bins over [0, max] */
static void chart_hist(cli_canvas *cv, const double *d2, size_t n, const int *group, double thr,
                       const char *const names[2], const char *title) {
    enum { NB = 30 };
    double cnt[2][NB] = {{0}}, tot[2] = {0, 0}, top = 0.0, hi = thr == thr && thr < HUGE_VAL ? thr : 0.0, bw;
    size_t i;
    int b, g;
    cli_axes a;
    static const int lk[3] = {3, 3, 0};
    const char *lt[3];
    cli_rgb lc[3];
    lt[0] = names[0]; lt[1] = names[1]; lt[2] = "threshold";
    lc[0] = col_blue; lc[1] = col_red; lc[2] = col_ink;
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
    axes_box(&a, cv);
    a.x0 = lo; a.x1 = lo + bw * NB; a.y0 = 0.0; a.y1 = top > 0.0 ? 1.1 * top : 1.0;
    draw_axes(cv, &a, title, "score D^2", "density", 1);
    for (g = 0; g < 2; g++)
        for (b = 0; b < NB; b++)
            if (cnt[g][b] > 0.0)
                cv_rect(cv, ax_x(&a, lo + b * bw) + 1, ax_y(&a, cnt[g][b]), ax_x(&a, lo + (b + 1) * bw) - ax_x(&a, lo + b * bw) - 1,
                        a.B - ax_y(&a, cnt[g][b]), g ? col_red : col_blue, 0.55);
    if (thr == thr && thr < HUGE_VAL) cv_line(cv, ax_x(&a, thr), a.T, ax_x(&a, thr), a.B, col_ink, 1.5, 1);
    draw_legend(cv, &a, 3, lt, lk, lc);
}

/* one bar per dimension d with height counts[d], labelled z0, z1, ... */
static void chart_bars(cli_canvas *cv, const int *counts, int D, const char *title) {
    cli_axes a;
    int d, top = 1;
    char s[16];
    for (d = 0; d < D; d++) if (counts[d] > top) top = counts[d];
    axes_box(&a, cv);
    a.x0 = -0.5; a.x1 = D - 0.5; a.y0 = 0.0; a.y1 = top * 1.1;
    draw_axes(cv, &a, title, "latent dimension", "outliers", 0);
    for (d = 0; d < D; d++) {
        double x0 = ax_x(&a, d - 0.35), x1 = ax_x(&a, d + 0.35);
        cv_rect(cv, x0, ax_y(&a, counts[d]), x1 - x0, a.B - ax_y(&a, counts[d]), col_blue, 0.85);
        if (D <= 40 || d % ((D + 39) / 40) == 0) {
            snprintf(s, sizeof s, "z%d", d);
            cv_text(cv, ax_x(&a, d), a.B + 12, s, 1, col_ink, 1);
        }
    }
}

/* ---- output --------------------------------------------------------------------------------------- */

enum { CHART_SCORES, CHART_HIST, CHART_BARS };

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
} cli_chart;

static void chart_draw(cli_canvas *cv, const cli_chart *c) {
    if (c->kind == CHART_SCORES) chart_scores(cv, c->d2, c->n, c->thr, c->flag, c->group, c->title);
    else if (c->kind == CHART_HIST) chart_hist(cv, c->d2, c->n, c->group, c->thr, c->names, c->title);
    else chart_bars(cv, c->counts, c->D, c->title);
}

static void chart_png(const cli_chart *c, const char *path, int w, int h) {
    cli_canvas cv;
    uint8_t *px = (uint8_t *)cli_alloc((size_t)w * (size_t)h, 3);
    cv_begin(&cv, w, h, px, NULL);
    chart_draw(&cv, c);
    cli_write_png(path, px, w, h);
    printf("wrote %s (%dx%d)\n", path, w, h);
    free(px);
}

static void chart_svg(const cli_chart *c, cli_buf *svg, int w, int h) {
    cli_canvas cv;
    cv_begin(&cv, w, h, NULL, svg);
    chart_draw(&cv, c);
    cv_end(&cv);
}

#endif
