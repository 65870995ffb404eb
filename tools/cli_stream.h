/* cli_stream.h - `outliers --stream` (issue #21): a batch far larger than memory, scored by a
   saved scorer (--scorer FILE, made once with --save-scorer) in chunks of --chunk pictures
   (STREAM_CHUNK by default). Memory holds the model, the scorer and its fits, one chunk, the N highest scores
   (--top N, a min-heap) and two histograms of the scores; a .hpd's factor labels add 4 bytes
   a picture per factor (heph_hpd keeps them). Every picture gets the score the in-memory
   `outliers --scorer FILE` gives it, bit for bit: each member scores a picture on its own,
   iwae's noise follows the picture's index in the whole batch, and a chunk is a whole number
   of the model's batches (max_batch), so the networks see the rows in the same blocks. With the truth (is_outlier,
   or --truth), the recall and the false-positive rate at the threshold are exact counts, and
   AUROC comes from the histograms with the bound its ties leave.                            */
#ifndef HEPH_CLI_STREAM_H
#define HEPH_CLI_STREAM_H

#include "cli_common.h"
#include "cli_data.h"
#include "cli_analysis.h"
#include "cli_encode.h" /* enc_read_chunk */

enum { STREAM_CHUNK = 2048, STREAM_BINS = 65536, STREAM_TOP = 100 };
#define STREAM_BIN_WIDTH (1.0 / 4096.0) /* in ln(1 + score): 0.025 % of the score */

typedef struct {
    double s;             /* the combined score                 */
    size_t i;             /* the picture's index in the batch   */
    int which;            /* the member that decided            */
    int truth;            /* 1 outlier, 0 normal, -1 unknown    */
    double lp[N_SCORES];  /* each member's tail ln p            */
} stream_item;

/* a below b: the lower score, or the later picture at equal scores (the earlier one stays) */
static int item_below(const stream_item *a, const stream_item *b) {
    return a->s < b->s || (a->s == b->s && a->i > b->i);
}

/* keep the cap highest in h (a min-heap of n items: the lowest kept at h[0]) */
static void heap_offer(stream_item *h, size_t *n, size_t cap, const stream_item *it) {
    size_t at;
    if (*n < cap) { /* sift up */
        at = (*n)++;
        while (at > 0 && item_below(it, &h[(at - 1) / 2])) { h[at] = h[(at - 1) / 2]; at = (at - 1) / 2; }
        h[at] = *it;
        return;
    }
    if (!item_below(&h[0], it)) return;
    at = 0; /* replace the lowest, sift down */
    for (;;) {
        size_t c = 2 * at + 1;
        if (c >= *n) break;
        if (c + 1 < *n && item_below(&h[c + 1], &h[c])) c++;
        if (!item_below(&h[c], it)) break;
        h[at] = h[c];
        at = c;
    }
    h[at] = *it;
}

static int item_cmp_desc(const void *a, const void *b) {
    const stream_item *x = (const stream_item *)a, *y = (const stream_item *)b;
    return item_below(y, x) ? -1 : item_below(x, y) ? 1 : 0;
}

static size_t score_bin(double s) {
    double u = log1p(s > 0.0 ? s : 0.0) / STREAM_BIN_WIDTH;
    return u < (double)(STREAM_BINS - 1) ? (size_t)u : STREAM_BINS - 1;
}

/* AUROC from the outliers' and normals' histograms (ascending bins): pairs in the same bin
   count one half, and *bound is half their share (the exact value is within it)            */
static double hist_auroc(const uint64_t *pos, const uint64_t *neg, double *bound) {
    double below = 0.0, win = 0.0, tie = 0.0, np = 0.0, nn = 0.0;
    size_t b;
    for (b = 0; b < STREAM_BINS; b++) { np += (double)pos[b]; nn += (double)neg[b]; }
    for (b = 0; b < STREAM_BINS; b++) {
        win += (double)pos[b] * below;
        tie += (double)pos[b] * (double)neg[b];
        below += (double)neg[b];
    }
    *bound = 0.5 * tie / (np * nn);
    return (win + 0.5 * tie) / (np * nn);
}

typedef struct {
    cli_run r;            /* the model, the Mahalanobis fit, the threshold; pics: the shape */
    cli_scorer sc;
    cli_fits F;
    heph_tail tl[N_SCORES];
    heph_hpd d, *dp;      /* the batch: a .hpd (dp = &d) or a folder (dp NULL)             */
    cli_rules rs;
    int has_truth;
    size_t n, flagged, pos, tp, fp, by[N_SCORES];
    uint64_t *hist;       /* (2, STREAM_BINS): normals, then outliers                      */
    stream_item *top;
    size_t n_top, cap;
    double seconds;
} cli_stream;

/* the scorer, its fits and tails, the threshold from its calibration pictures */
static void stream_setup(cli_stream *S, cli_aopts *o) {
    cli_run *r = &S->r;
    cli_aopts oo;
    double *cal;
    int k, K;
    size_t i;
    char lb[32];
    if (!o->scorer) cli_usage("--stream scores with a saved scorer: fit one first with --reference R --save-scorer FILE, then give --scorer FILE");
    if (o->reference || o->save_scorer) cli_usage("--stream takes --scorer FILE (fit on --reference with --save-scorer in a run before)");
    if (o->score_given && o->score != SCORE_COMBINED) cli_usage("--stream scores with the scorer's combined score, not --score %s", score_names[o->score]);
    if (o->thr_mode == THR_CHI2 && o->thr_given)
        cli_usage("--auto chi2 is a threshold on D^2: with --stream use --fpr A, quantile[:P], mad[:K] or --threshold");
    cli_require(o->model, "--model");
    cli_require(o->batch, "--batch");
    load_model(&r->m, o->model);
    r->D = r->m.cfg.z_dim;
    scorer_load(&S->sc, o->scorer);
    scorer_apply(&S->sc, o, &r->m);
    K = r->K = o->n_members;
    fit_context(r, o, S->sc.fz, S->sc.nf, o->scorer);
    fits_make(&S->F, r, o, o->members, K, S->sc.fz, S->sc.nf, o->scorer);
    for (k = 0; k < K; k++)
        if (heph_tail_fit(&S->tl[k], S->sc.tail[k], S->sc.tail_n[k]) != HEPH_OK)
            cli_fail("%s: calibrating %s: %s", o->scorer, member_label(o, o->members[k], lb, sizeof lb), S->tl[k].err);
    cal = (double *)cli_alloc(S->sc.nc, sizeof(double));
    for (i = 0; i < S->sc.nc; i++) {
        double lp[N_SCORES];
        for (k = 0; k < K; k++) lp[k] = heph_tail_logp(&S->tl[k], S->sc.cal[i * (size_t)K + (size_t)k]);
        cal[i] = heph_combine_sidak(lp, K, NULL);
    }
    oo = *o;
    if (!o->thr_given) { oo.thr_mode = THR_QUANTILE; oo.thr_value = 0.99; }
    set_threshold(r, &oo, cal, S->sc.nc);
    free(cal);
}

/* the batch's shape and names (no pictures yet), and its truth when it has one */
static void stream_open(cli_stream *S, const cli_aopts *o) {
    cli_pics *p = &S->r.pics;
    const char *text = o->truth;
    int k;
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s", o->batch);
    if (cli_is_dir(o->batch)) {
        p->c = S->r.m.cfg.in_c; p->h = S->r.m.cfg.in_h; p->w = S->r.m.cfg.in_w;
        p->files = list_pictures(o->batch, &p->n);
    } else {
        cli_need_regular(o->batch);
        if (heph_hpd_open(&S->d, o->batch) != HEPH_OK) cli_fail("%s", S->d.err);
        S->dp = &S->d;
        p->c = (int)S->d.info.c; p->h = (int)S->d.info.h; p->w = (int)S->d.info.w;
        if (S->d.info.count > (uint64_t)SIZE_MAX) cli_fail("%s: %llu pictures do not fit this machine's size_t", o->batch, (unsigned long long)S->d.info.count);
        p->n = (size_t)S->d.info.count;
        pics_check_shape(p, S->r.m.cfg.in_c, S->r.m.cfg.in_h, S->r.m.cfg.in_w);
        pics_take_factors(p, &S->d);
    }
    for (k = 0; !text && k < p->K; k++)
        if (cli_is(p->names[k], "is_outlier")) text = "is_outlier=1";
    if (!text && o->want_auroc) cli_fail("%s has no ground truth (no factor is_outlier), so there is no AUROC (--auroc)", o->batch);
    if (text) {
        if (p->K == 0) cli_fail("%s has no factor labels, so --truth %s (and AUROC) cannot be evaluated", o->batch, text);
        rules_parse(&S->rs, text, p, "--truth");
        snprintf(S->r.truth_text, sizeof S->r.truth_text, "%s", text);
        S->has_truth = 1;
    }
    S->n = p->n;
    S->cap = o->take_top ? (size_t)o->take_top : STREAM_TOP;
    S->top = (stream_item *)cli_alloc(S->cap, sizeof(stream_item));
    S->hist = (uint64_t *)cli_alloc(2 * (size_t)STREAM_BINS, sizeof(uint64_t));
}

/* the B pictures from s on: x (B, C, H, W), codes mu (B, D); bs, lp: scratch (B), (B, K) */
static void stream_chunk(cli_stream *S, const cli_aopts *o, size_t s, int B, float *x, float *mu, double *bs, double *lp) {
    cli_run *r = &S->r;
    int k, K = r->K, b, j;
    enc_read_chunk(&r->m, &r->pics, S->dp, s, B, x);
    heph_vae_encode(&r->m, x, (size_t)B, mu, NULL);
    for (k = 0; k < K; k++) {
        cli_tgt t;
        memset(&t, 0, sizeof t);
        t.z = mu; t.x = x; t.n = (size_t)B; t.first = s; t.s = bs; t.path = o->batch;
        member_score(r, o, &S->F, o->members[k], &t);
        for (b = 0; b < B; b++) lp[(size_t)b * (size_t)K + (size_t)k] = heph_tail_logp(&S->tl[k], bs[b]);
    }
    for (b = 0; b < B; b++) {
        stream_item it;
        size_t i = s + (size_t)b;
        int32_t lab[HEPH_MAX_FACTORS];
        it.s = heph_combine_sidak(lp + (size_t)b * (size_t)K, K, &it.which);
        it.i = i;
        memcpy(it.lp, lp + (size_t)b * (size_t)K, (size_t)K * sizeof(double));
        it.truth = -1;
        if (S->has_truth) {
            for (j = 0; j < r->pics.K; j++) lab[j] = heph_hpd_label(S->dp, i, j);
            it.truth = rules_match(&S->rs, lab);
            S->pos += (size_t)it.truth;
            S->hist[(size_t)it.truth * STREAM_BINS + score_bin(it.s)]++;
        }
        if (it.s > r->thr) {
            S->flagged++;
            S->by[it.which]++;
            if (it.truth == 1) S->tp++;
            if (it.truth == 0) S->fp++;
        }
        heap_offer(S->top, &S->n_top, S->cap, &it);
    }
}

/* every chunk, with a progress line on stderr every second (\r on a terminal) */
static void stream_all(cli_stream *S, const cli_aopts *o) {
    size_t MB = (size_t)S->r.m.cfg.max_batch, C = o->chunk ? (size_t)o->chunk : STREAM_CHUNK;
    C = (C + MB - 1) / MB * MB; /* whole model batches: the in-memory run's blocks, so its bits */
    float *x = (float *)cli_alloc(C * (size_t)S->r.m.enc.in_n, sizeof(float));
    float *mu = (float *)cli_alloc(C * (size_t)S->r.D, sizeof(float));
    double *bs = (double *)cli_alloc(C, sizeof(double));
    double *lp = (double *)cli_alloc(C * (size_t)S->r.K, sizeof(double));
    double t0 = cli_now(), t_last = t0;
    int tty = isatty(2);
    size_t s;
    for (s = 0; s < S->n; s += C) {
        int B = (int)(S->n - s < C ? S->n - s : C);
        stream_chunk(S, o, s, B, x, mu, bs, lp);
        if (cli_now() - t_last >= 1.0 || (s + (size_t)B == S->n && t_last > t0)) {
            double el, rate;
            size_t done = s + (size_t)B;
            t_last = cli_now();
            el = t_last - t0;
            rate = (double)done / el;
            fprintf(stderr, "%soutliers --stream: %zu/%zu pictures (%.1f %%), %.0f pictures/s, %zu flagged, %.0f s left   %s",
                    tty ? "\r" : "", done, S->n, 100.0 * (double)done / (double)S->n, rate, S->flagged,
                    (double)(S->n - done) / rate, tty && done < S->n ? "" : "\n");
        }
    }
    S->seconds = cli_now() - t0;
    free(x); free(mu); free(bs); free(lp);
    qsort(S->top, S->n_top, sizeof(stream_item), item_cmp_desc);
}

static void stream_print(const cli_stream *S, const cli_aopts *o) {
    const cli_run *r = &S->r;
    int k;
    size_t i, shown = 0;
    char lb[32], nb[32];
    printf("%zu pictures streamed from %s in %.1f s (%.0f pictures/s); scorer %s (fitted on %zu codes, calibrated on %zu pictures)\n",
           S->n, o->batch, S->seconds, (double)S->n / (S->seconds > 0.0 ? S->seconds : 1e-9), o->scorer, S->sc.nf, S->sc.nc);
    printf("threshold %s; %zu flagged (%.3f %%)", r->thr_text, S->flagged, S->n ? 100.0 * (double)S->flagged / (double)S->n : 0.0);
    for (k = 0; k < r->K; k++)
        if (S->by[k]) printf("%s%zu by %s", shown++ ? ", " : " (", S->by[k], member_label(o, o->members[k], lb, sizeof lb));
    printf("%s\n", shown ? ")" : "");
    if (S->has_truth && S->pos > 0 && S->pos < S->n) {
        double bound, a = hist_auroc(S->hist + STREAM_BINS, S->hist, &bound);
        printf("truth %s: %zu outliers; at the threshold: recall %.4f, false-positive rate %.4f; AUROC %.4f (+- %.1g, from %d bins)\n",
               r->truth_text, S->pos, (double)S->tp / (double)S->pos, (double)S->fp / (double)(S->n - S->pos), a, bound, STREAM_BINS);
    }
    printf("rank  index       name                 score  decided by\n");
    for (i = 0; i < S->n_top && i < (size_t)o->max_show; i++)
        printf("%4zu  %-10zu  %-16.16s %9.3f  %s\n", i + 1, S->top[i].i, pics_name(&r->pics, S->top[i].i, nb, sizeof nb), S->top[i].s,
               member_label(o, o->members[S->top[i].which], lb, sizeof lb));
}

static void stream_write_csv(const cli_stream *S, const cli_aopts *o, const char *path) {
    FILE *f = cli_fopen(path, "w");
    size_t i;
    int k;
    char lb[32], nb[32];
    fprintf(f, "rank,index,name,score,flagged,decided_by");
    for (k = 0; k < S->r.K; k++) fprintf(f, ",%s_neg_log_p", member_label(o, o->members[k], lb, sizeof lb));
    fprintf(f, "%s\n", S->has_truth ? ",truth" : "");
    for (i = 0; i < S->n_top; i++) {
        const stream_item *it = &S->top[i];
        fprintf(f, "%zu,%zu,", i + 1, it->i);
        csv_field(f, pics_name(&S->r.pics, it->i, nb, sizeof nb));
        fprintf(f, ",%.17g,%d,%s", it->s, it->s > S->r.thr, member_label(o, o->members[it->which], lb, sizeof lb));
        for (k = 0; k < S->r.K; k++) fprintf(f, ",%.17g", -it->lp[k]);
        if (S->has_truth) fprintf(f, ",%d", it->truth);
        fputc('\n', f);
    }
    cli_fclose(f, path);
    printf("wrote %s\n", path);
}

static void stream_write_json(const cli_stream *S, const cli_aopts *o, const char *path) {
    FILE *f = cli_fopen(path, "w");
    const cli_run *r = &S->r;
    size_t i;
    int k;
    double bound = (double)NAN, a = (double)NAN;
    char lb[32], nb[32];
    if (S->has_truth && S->pos > 0 && S->pos < S->n) a = hist_auroc(S->hist + STREAM_BINS, S->hist, &bound);
    fprintf(f, "{\n  \"mode\": \"stream\",\n  \"model\": "); json_str(f, o->model);
    fprintf(f, ",\n  \"batch\": "); json_str(f, o->batch);
    fprintf(f, ",\n  \"scorer\": "); json_str(f, o->scorer);
    fprintf(f, ",\n  \"pictures\": %zu,\n  \"seconds\": ", S->n); json_num(f, S->seconds);
    fprintf(f, ",\n  \"score\": \"combined\",\n  \"members\": [");
    for (k = 0; k < r->K; k++) { fprintf(f, "%s", k ? ", " : ""); json_str(f, member_label(o, o->members[k], lb, sizeof lb)); }
    fprintf(f, "],\n  \"fit_pictures\": %zu,\n  \"calibration_pictures\": %zu,\n  \"threshold\": {\"mode\": \"%s\", \"parameter\": ", S->sc.nf,
            S->sc.nc, r->thr_mode == THR_QUANTILE ? "quantile" : r->thr_mode == THR_FIXED ? "given" : "mad");
    json_num(f, r->thr_param);
    fprintf(f, ", \"value\": "); json_num(f, r->thr);
    fprintf(f, "},\n  \"false_positive_rate_requested\": "); json_num(f, o->fpr > 0.0 ? o->fpr : (double)NAN);
    fprintf(f, ",\n  \"flagged\": %zu,\n  \"flagged_by\": {", S->flagged);
    for (k = 0; k < r->K; k++) {
        fprintf(f, "%s", k ? ", " : "");
        json_str(f, member_label(o, o->members[k], lb, sizeof lb));
        fprintf(f, ": %zu", S->by[k]);
    }
    fprintf(f, "},\n  \"truth\": ");
    if (S->has_truth) json_str(f, r->truth_text); else fputs("null", f);
    fprintf(f, ",\n  \"true_outliers\": %zu,\n  \"recall_at_threshold\": ", S->pos);
    json_num(f, S->has_truth && S->pos ? (double)S->tp / (double)S->pos : (double)NAN);
    fprintf(f, ",\n  \"false_positive_rate_measured\": ");
    json_num(f, S->has_truth && S->pos < S->n ? (double)S->fp / (double)(S->n - S->pos) : (double)NAN);
    fprintf(f, ",\n  \"auroc\": "); json_num(f, a);
    fprintf(f, ",\n  \"auroc_bound\": "); json_num(f, bound);
    fprintf(f, ",\n  \"top\": [\n");
    for (i = 0; i < S->n_top; i++) {
        const stream_item *it = &S->top[i];
        fprintf(f, "    {\"rank\": %zu, \"index\": %zu, \"name\": ", i + 1, it->i);
        json_str(f, pics_name(&r->pics, it->i, nb, sizeof nb));
        fprintf(f, ", \"score\": %.17g, \"flagged\": %s, \"decided_by\": ", it->s, it->s > r->thr ? "true" : "false");
        json_str(f, member_label(o, o->members[it->which], lb, sizeof lb));
        fprintf(f, ", \"members_neg_log_p\": {");
        for (k = 0; k < r->K; k++) {
            fprintf(f, "%s", k ? ", " : "");
            json_str(f, member_label(o, o->members[k], lb, sizeof lb));
            fprintf(f, ": %.17g", -it->lp[k]);
        }
        fputc('}', f);
        if (S->has_truth) fprintf(f, ", \"truth\": %d", it->truth);
        fprintf(f, "}%s\n", i + 1 < S->n_top ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    cli_fclose(f, path);
    printf("wrote %s\n", path);
}

/* outliers --stream: set up, score every chunk, write the N highest */
static void run_stream(cli_aopts *o) {
    cli_stream S;
    int k;
    memset(&S, 0, sizeof S);
    stream_setup(&S, o);
    stream_open(&S, o);
    cli_mkdirs(o->out);
    stream_all(&S, o);
    stream_print(&S, o);
    stream_write_csv(&S, o, cli_join(o->out, "outliers.csv").s);
    stream_write_json(&S, o, cli_join(o->out, "outliers.json").s);
    for (k = 0; k < S.r.K; k++) heph_tail_free(&S.tl[k]);
    fits_free(&S.F);
    free(S.sc.fz); free(S.sc.cal);
    for (k = 0; k < N_SCORES; k++) free(S.sc.tail[k]);
    if (S.dp) heph_hpd_close(S.dp);
    pics_free(&S.r.pics);
    heph_maha_free(&S.r.fit);
    heph_vae_free(&S.r.m);
    free(S.top); free(S.hist);
}

#endif
