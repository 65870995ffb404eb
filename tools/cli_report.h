/* cli_report.h - `hephaestus report`: one self-contained HTML page (no network, no scripts):
   the run's settings and AUROC, SVG charts drawn by plot.h (scores with the threshold
   and the outliers marked, score histograms, per-dimension outlier counts), PNG grids as
   base64 data: URIs (picture | reconstruction | counterfactual; picture | reconstruction |
   residual | nearest normal pictures), the morph table and the ranked table of every picture.                                                          */
#ifndef HEPH_CLI_REPORT_H
#define HEPH_CLI_REPORT_H

#include "cli_common.h"
#include "cli_analysis.h" /* the run, its pictures and charts (cli_data.h, plot.h) */

static const char *const report_css =
    "body{font-family:sans-serif;margin:24px auto;max-width:1100px;color:#222}"
    "h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}"
    "th{background:#f3f3f3}td.l,th.l{text-align:left}tr.flag td{background:#fdecea}"
    "img.px{image-rendering:pixelated;image-rendering:crisp-edges}.note{color:#666;font-size:13px}";

/* <img> of a grid of n pictures (n, c, h, w), shown `scale` times larger */
static void html_grid(cli_buf *b, const float *imgs, int n, int cols, int c, int h, int w, int scale) {
    int W, H;
    uint8_t *rgb = cli_grid(imgs, n, cols, c, h, w, &W, &H);
    buf_printf(b, "<img class=\"px\" width=\"%d\" height=\"%d\" alt=\"pictures\" src=\"", W * scale, H * scale);
    buf_png_uri(b, rgb, W, H);
    buf_str(b, "\">");
    free(rgb);
}

static void html_row(cli_buf *b, const char *key, const char *value) {
    buf_str(b, "<tr><th class=\"l\">");
    buf_html(b, key);
    buf_str(b, "</th><td class=\"l\">");
    buf_html(b, value);
    buf_str(b, "</td></tr>\n");
}

static void report_settings(cli_buf *b, const cli_run *r, const cli_aopts *o) {
    char s[768];
    buf_str(b, "<table>\n");
    html_row(b, "model", o->model);
    snprintf(s, sizeof s, "%s (%zu pictures, %dx%dx%d)", o->batch, r->n, r->pics.c, r->pics.h, r->pics.w);
    html_row(b, "batch", s);
    snprintf(s, sizeof s, "%s (%zu pictures)", o->reference ? o->reference : "the batch itself", r->n_ctx);
    html_row(b, "context", s);
    snprintf(s, sizeof s, "%d (encoder %s)", r->D, r->m.cfg.enc_spec);
    html_row(b, "latent dimensions", s);
    html_row(b, "covariance", r->cov_text);
    html_row(b, o->score == SCORE_MAHA ? "threshold on D^2" : "threshold on the score", r->thr_text);
    if (o->score != SCORE_MAHA) html_row(b, "score", score_axis(o->score));
    snprintf(s, sizeof s, "%zu of %zu", r->n_flagged, r->n);
    html_row(b, "flagged", s);
    if (r->truth) snprintf(s, sizeof s, "%.4f (truth: %s)", r->auroc, r->truth_text);
    else snprintf(s, sizeof s, "not available (the batch has no ground truth)");
    html_row(b, "AUROC", s);
    buf_str(b, "</table>\n");
}

static void report_charts(cli_buf *b, const cli_run *r, const cli_aopts *o) {
    plot_chart line, hist, bars;
    int *groups = (int *)cli_alloc(r->n, sizeof(int)), *counts;
    size_t *sel = (size_t *)cli_alloc(r->n, sizeof(size_t)), ns = run_select(r, o, sel, 0);
    score_charts(r, o->score, &line, &hist, groups);
    if (o->score == SCORE_MAHA)
        buf_str(b, "<h2>Scores</h2>\n<p class=\"note\">Squared Mahalanobis distance D^2 of each picture's latent mean to the "
                   "context, in batch order. Dashed line: the threshold; red dots: flagged; orange rings: true outliers.</p>\n");
    else
        buf_printf(b, "<h2>Scores</h2>\n<p class=\"note\">The score %s of each picture, in batch order. Dashed line: the "
                      "threshold; red dots: flagged; orange rings: true outliers.</p>\n", score_axis(o->score));
    plot_chart_svg(&line, b, 900, 380);
    plot_chart_svg(&hist, b, 900, 340);
    counts = dim_counts(r, o, sel, ns);
    memset(&bars, 0, sizeof bars);
    bars.kind = PLOT_CHART_BARS; bars.counts = counts; bars.D = r->D; bars.title = "outliers per latent dimension";
    buf_printf(b, "<h2>Why: outliers per latent dimension</h2>\n<p class=\"note\">For each of the %zu selected pictures, "
                  "its %d most deviant dimensions by |z-score| that reach |z| &ge; %g.</p>\n", ns, o->top_k, o->zmin);
    plot_chart_svg(&bars, b, 900, 340);
    free(groups); free(counts); free(sel);
}

/* morph table: one row per picture: name, D^2, replaced dimensions, the T frames */
static void report_morphs(cli_buf *b, cli_run *r, const cli_aopts *o, const size_t *sel, size_t ns, const float *cf, int scale) {
    size_t i, np = (size_t)r->pics.c * (size_t)r->pics.h * (size_t)r->pics.w;
    float *g = morph_grid(r, sel, ns, cf, o->steps);
    char nb[32], top[2048];
    while (scale > 1 && o->steps * (r->pics.w + 2) * scale > 760) scale--; /* keep the rows on the page */
    buf_printf(b, "<h2>Morph: from the outlier's code to its counterfactual (%d steps)</h2>\n<table>\n"
                  "<tr><th>rank</th><th class=\"l\">picture</th><th>D^2</th><th class=\"l\">replaced</th><th class=\"l\">morph</th></tr>\n", o->steps);
    for (i = 0; i < ns; i++) {
        top_text(r, o, sel[i], top, sizeof top);
        buf_printf(b, "<tr><td>%zu</td><td class=\"l\">", r->rank[sel[i]]);
        buf_html(b, pics_name(&r->pics, sel[i], nb, sizeof nb));
        buf_printf(b, "</td><td>%.3f</td><td class=\"l\">%s</td><td class=\"l\">", r->d2[sel[i]], top);
        html_grid(b, g + i * (size_t)o->steps * np, o->steps, o->steps, r->pics.c, r->pics.h, r->pics.w, scale);
        buf_str(b, "</td></tr>\n");
    }
    buf_str(b, "</table>\n");
    free(g);
}

static void report_why(cli_buf *b, cli_run *r, const cli_aopts *o, const size_t *sel, size_t ns, int scale) {
    float *g = why_grid(r, o, sel, ns);
    size_t i, j;
    char nb[32];
    const char *from = o->scorer ? "codes of the scorer's fit part, decoded (a scorer keeps codes, not pictures)"
                                 : o->reference ? "the reference pictures" : "the other pictures of the batch";
    buf_printf(b, "<h2>Why: pixels and the nearest normal pictures</h2>\n<p class=\"note\">Each row: the picture, its "
                  "reconstruction, their absolute difference (bright: what the model could not draw), and its %d nearest "
                  "neighbours in latent space among %s.</p>\n", CLI_NN, from);
    html_grid(b, g, (int)ns * (3 + CLI_NN), 3 + CLI_NN, r->pics.c, r->pics.h, r->pics.w, scale);
    buf_str(b, "<table>\n<tr><th>rank</th><th class=\"l\">picture</th><th>mean |residual|</th><th>largest</th>"
               "<th class=\"l\">nearest (index: distance)</th></tr>\n");
    for (i = 0; i < ns; i++) {
        size_t p = sel[i];
        buf_printf(b, "<tr><td>%zu</td><td class=\"l\">", r->rank[p]);
        buf_html(b, pics_name(&r->pics, p, nb, sizeof nb));
        buf_printf(b, "</td><td>%.4f</td><td>%.3f</td><td class=\"l\">",
                   r->res_sum[p] / (double)((size_t)r->pics.c * (size_t)r->pics.h * (size_t)r->pics.w), r->res_max[p]);
        for (j = 0; j < CLI_NN && r->nn[p * CLI_NN + j] != (size_t)-1; j++)
            buf_printf(b, "%s%zu: %.3f", j ? ", " : "", nn_index(r, o, r->nn[p * CLI_NN + j]), r->nn_d[p * CLI_NN + j]);
        buf_str(b, "</td></tr>\n");
    }
    buf_str(b, "</table>\n");
    free(g);
}

static void report_pictures(cli_buf *b, cli_run *r, const cli_aopts *o, int scale) {
    size_t *sel = (size_t *)cli_alloc(r->n, sizeof(size_t)), ns = run_select(r, o, sel, 1), i;
    float *cf, *g;
    int none = ns == 0;
    if (none) { /* nothing above the threshold: show the highest scores all the same */
        for (i = 0; i < r->n && i < (size_t)o->max_show && i < 3; i++) sel[i] = r->order[i];
        ns = i;
    }
    cf = counterfactual_codes(r, o, sel, ns);
    g = counterfactual_grid(r, sel, ns, cf);
    buf_printf(b, "<h2>Counterfactuals</h2>\n<p class=\"note\">%sEach row: the picture, its reconstruction, and the "
                  "counterfactual (its %d most deviant dimensions set to the mean of the normal pictures), by decreasing "
                  "score; %zu shown.</p>\n", none ? "No picture is above the threshold; these are the highest scores. " : "",
               o->top_k, ns);
    html_grid(b, g, 3 * (int)ns, 3, r->pics.c, r->pics.h, r->pics.w, scale);
    report_why(b, r, o, sel, ns, scale);
    report_morphs(b, r, o, sel, ns, cf, scale);
    free(cf); free(g); free(sel);
}

static void report_ranked(cli_buf *b, const cli_run *r, const cli_aopts *o) {
    size_t i, n = r->n < 5000 ? r->n : 5000;
    char nb[32], top[2048];
    buf_printf(b, "<h2>Ranked pictures</h2>\n<table>\n<tr><th>rank</th><th>index</th><th class=\"l\">name</th><th>D^2</th>"
                  "<th>D</th><th>flagged</th>%s<th class=\"l\">top dimensions</th></tr>\n", r->truth ? "<th>truth</th>" : "");
    for (i = 0; i < n; i++) {
        size_t p = r->order[i];
        top_text(r, o, p, top, sizeof top);
        buf_printf(b, "<tr%s><td>%zu</td><td>%zu</td><td class=\"l\">", r->flag[p] ? " class=\"flag\"" : "", i + 1, p);
        buf_html(b, pics_name(&r->pics, p, nb, sizeof nb));
        buf_printf(b, "</td><td>%.4f</td><td>%.4f</td><td>%s</td>", r->d2[p], sqrt(r->d2[p]), r->flag[p] ? "yes" : "no");
        if (r->truth) buf_printf(b, "<td>%d</td>", r->truth[p]);
        buf_printf(b, "<td class=\"l\">%s</td></tr>\n", top);
    }
    buf_str(b, "</table>\n");
    if (n < r->n) buf_printf(b, "<p class=\"note\">First %zu of %zu pictures; all are in outliers.csv.</p>\n", n, r->n);
}

static void write_report(cli_run *r, const cli_aopts *o) {
    cli_buf b = {0};
    cli_path path = cli_join(o->out, "report.html");
    int scale = r->pics.h >= 128 ? 1 : (r->pics.h >= 48 ? 2 : 3);
    buf_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Hephaestus outlier report</title>\n"
                   "<style>%s</style>\n</head>\n<body>\n<h1>Hephaestus outlier report</h1>\n", report_css);
    report_settings(&b, r, o);
    report_charts(&b, r, o);
    report_pictures(&b, r, o, scale);
    report_ranked(&b, r, o);
    buf_printf(&b, "<p class=\"note\">hephaestus %s</p>\n</body>\n</html>\n", HEPH_VERSION_STRING);
    buf_save(&b, path.s);
    printf("wrote %s (%.1f kB)\n", path.s, (double)b.n / 1000.0);
    buf_free(&b);
}

#endif
