/* train_common.h - the training loop and evaluation shared by the disentanglement examples
   (betavae_dsprites, capacity_dsprites, betatcvae_dsprites, betatcvae_shapes3d).

   Reads a .hpd dataset with ground-truth factors, trains for E "epochs" of K batches each
   (the seed's "epoch" is 500 batches, not a pass over the data), prints every loss term per
   epoch, keeps a resumable checkpoint, and at the end writes: loss curves, reconstructions,
   a latent traversal (rows = dimensions ordered by KL), the latent-factor correlation heatmap,
   and mig_discrete / mig_continuous (DESIGN §5) into results.json; every step's loss terms
   go to steps.csv (on a resume, steps after the last checkpoint appear twice).
   Include after tools/heph_posix.h (with HEPHAESTUS_IMPLEMENTATION) and tools/cli_common.h.               */
#ifndef HEPH_EXAMPLES_TRAIN_COMMON_H
#define HEPH_EXAMPLES_TRAIN_COMMON_H

#include "../tools/plot.h" /* plot_lines, plot_heatmap */

typedef struct {
    const char *name;      /* example name, for messages                                   */
    const char *data;      /* training .hpd                                                */
    const char *eval_data; /* fresh pictures for the metrics (default: draws from data)    */
    const char *out;       /* output folder                                                */
    const char *resume;    /* checkpoint to continue from, or NULL                         */
    heph_vae_config cfg;   /* model and objective                                          */
    long epochs, batches, batch, seed, threads, subset;
    double minutes;        /* stop after this much training time (0: no limit)             */
    long eval_n;           /* pictures for mig_discrete and the correlation matrix (10,000) */
    long mig_cont_n, mig_cont_samples; /* encodings and entropy samples for mig_continuous */
    float traverse_sigma;  /* > 0: traverse +-sigma; 0: each dimension's data range         */
    long ssim_n;           /* > 0: SSIM of reconstructions of this many eval pictures         */
    double holdout;        /* fraction of --data never trained on; the metrics use it       */
} ex_train_opts;

/* picture i is held out when a hash of i falls below the fraction (a fixed, seedless split) */
static int ex_held_out(size_t i, double frac) {
    uint32_t h = (uint32_t)((uint64_t)i * 2654435761u) ^ (uint32_t)(i >> 13);
    h *= 0x85ebca6bu;
    h ^= h >> 16;
    return (double)h / 4294967296.0 < frac;
}

static void ex_train_defaults(ex_train_opts *o, const char *name, const char *preset) {
    memset(o, 0, sizeof *o);
    o->name = name;
    heph_vae_config_preset(&o->cfg, preset);
    o->epochs = 10; o->batches = 500; o->batch = 64; o->seed = 1;
    o->eval_n = 10000; o->mig_cont_n = 20000; o->mig_cont_samples = 2000;
}

static void ex_train_usage_common(FILE *f) {
    fprintf(f,
        "  --data FILE         training pictures (.hpd with factors)\n"
        "  --eval-data FILE    fresh pictures for the metrics (default: random draws from --data)\n"
        "  --out DIR           output folder\n"
        "  --model PRESET      mlp-dsprites, cnn-dsprites, cnn-dsprites-tc, cnn-shapes3d\n"
        "  --epochs E          epochs of --batches batches each\n"
        "  --batches K         batches per epoch (the seed: 500)\n"
        "  --batch B           batch size\n"
        "  --lr X              Adam learning rate\n"
        "  --subset N          train on a random subset of N pictures (default: all)\n"
        "  --minutes M         stop training after M minutes (then evaluate)\n"
        "  --seed S            seed of initialisation, sampling and noise\n"
        "  --threads T         at most T OpenMP threads; fewer when another busy program makes\n"
        "                      fewer faster (heph_tuner; the results are the same)\n"
        "  --eval-n N          pictures for mig_discrete / correlations (default 10000)\n"
        "  --mig-cont-n N      encodings for mig_continuous (default 20000; 0 skips it)\n"
        "  --traverse-sigma S  traverse +-S around the base code (default: the data's range)\n"
        "  --holdout F         keep a fraction F of --data out of training; without --eval-data\n"
        "                      the metrics use only those never-trained pictures\n"
        "  --resume FILE       continue from a checkpoint\n"
        "  -h, --help          this help\n"
        "Writes to --out: model.hpm (every epoch), steps.csv (every step's terms: loss, recon,\n"
        "KL, MI, TC, DWKL, C, gamma/beta), loss_curve.png, kl_curve.png, reconstructions.png,\n"
        "traversal.png, correlation.png, results.json.\n");
}

/* common flags; returns 1 if argv[*a] was one (and advances *a past its value) */
static int ex_train_flag(ex_train_opts *o, int argc, char **argv, int *a) {
    const char *f = argv[*a], *v = *a + 1 < argc ? argv[*a + 1] : NULL, *p = o->name;
    if (strncmp(f, "--", 2) != 0) return 0;
    if (!v) cli_fail("%s: %s needs a value (see --help)", p, f);
    if (!strcmp(f, "--data")) o->data = v;
    else if (!strcmp(f, "--eval-data")) o->eval_data = v;
    else if (!strcmp(f, "--out")) o->out = v;
    else if (!strcmp(f, "--resume")) o->resume = v;
    else if (!strcmp(f, "--model")) {
        heph_objective keep = o->cfg.obj;
        float lr = o->cfg.lr;
        if (heph_vae_config_preset(&o->cfg, v) != HEPH_OK) cli_fail("%s: unknown model %s", p, v);
        o->cfg.obj = keep;
        o->cfg.lr = lr;
    } else if (!strcmp(f, "--epochs")) o->epochs = cli_arg_long(p, f, v);
    else if (!strcmp(f, "--batches")) o->batches = cli_arg_long(p, f, v);
    else if (!strcmp(f, "--batch")) o->batch = cli_arg_long(p, f, v);
    else if (!strcmp(f, "--lr")) o->cfg.lr = cli_arg_float(p, f, v);
    else if (!strcmp(f, "--subset")) o->subset = cli_arg_long(p, f, v);
    else if (!strcmp(f, "--minutes")) o->minutes = (double)cli_arg_float(p, f, v);
    else if (!strcmp(f, "--seed")) o->seed = cli_arg_long(p, f, v);
    else if (!strcmp(f, "--threads")) o->threads = cli_arg_long(p, f, v);
    else if (!strcmp(f, "--eval-n")) o->eval_n = cli_arg_long(p, f, v);
    else if (!strcmp(f, "--mig-cont-n")) o->mig_cont_n = cli_arg_long(p, f, v);
    else if (!strcmp(f, "--traverse-sigma")) o->traverse_sigma = cli_arg_float(p, f, v);
    else if (!strcmp(f, "--holdout")) {
        o->holdout = (double)cli_arg_float(p, f, v);
        if (!(o->holdout >= 0.0 && o->holdout < 1.0)) cli_fail("%s: --holdout must be in [0, 1)", p);
    }
    else return 0;
    (*a)++;
    return 1;
}

/* read pictures idx[0..n) of d into x, in chunks */
static void ex_read(heph_hpd *d, const size_t *idx, size_t n, float *x) {
    if (heph_hpd_read(d, idx, n, x) != HEPH_OK) cli_fail("%s", d->err);
}

/* PNG of curves: series-major values */
static void ex_plot(const char *dir, const char *file, const double *ys, int n_series, int n,
                    const char *const *labels, const char *title) {
    int W = 720, H = 420, s, i;
    float *f = (float *)malloc((size_t)n_series * (size_t)n * sizeof(float) + 4);
    uint8_t *rgb = (uint8_t *)malloc((size_t)W * H * 3);
    if (!f || !rgb) cli_fail("out of memory");
    for (s = 0; s < n_series; s++)
        for (i = 0; i < n; i++) f[(size_t)s * (size_t)n + (size_t)i] = (float)ys[(size_t)s * (size_t)n + (size_t)i];
    plot_lines(rgb, W, H, f, n_series, n, labels, title);
    cli_write_png_in(dir, file, rgb, W, H);
    free(f); free(rgb);
}

/* the whole run; returns 0 */
static int ex_train_run(ex_train_opts *o) {
    heph_hpd d, de;
    heph_hpd *ev = &d;
    heph_vae m;
    size_t np, n_all, n_use, *pool, *idx, i;
    float *x;
    long ep, e0 = 0, n_ep;
    size_t hstride; /* hist[term * hstride + epoch]: fixed at allocation */
    double t_train = 0.0, *hist;
    int D, stopped_early = 0, K;
    char ckpt[1024];
    FILE *js, *steps_csv;
    heph_tuner tune; /* threads: the fastest of 1..--threads now and then (results are the same) */
    enum { H_LOSS, H_RECON, H_KL, H_MI, H_TC, H_DWKL, H_C, H_NTERMS };

    if (!o->data) cli_fail("%s: --data is required (see --help)", o->name);
    if (!o->out) cli_fail("%s: --out is required", o->name);
    if (o->batch < 1 || o->batch > 65536 || o->batches < 1) cli_fail("%s: --batch and --batches must be positive", o->name);
    cli_threads((int)o->threads);
    cli_mkdirs(o->out);
    if (heph_hpd_open(&d, o->data) != HEPH_OK) cli_fail("%s: %s", o->name, d.err);
    if (d.info.n_factors == 0) cli_fail("%s: %s has no factors; the metrics need ground truth", o->name, o->data);
    np = heph_hpd_picture_size(&d.info);
    n_all = (size_t)d.info.count;
    if (o->eval_data) {
        if (heph_hpd_open(&de, o->eval_data) != HEPH_OK) cli_fail("%s: %s", o->name, de.err);
        if (heph_hpd_picture_size(&de.info) != np || de.info.n_factors != d.info.n_factors)
            cli_fail("%s: %s and %s differ in picture size or factors", o->name, o->eval_data, o->data);
        ev = &de;
    }
    K = (int)d.info.n_factors;

    /* model */
    snprintf(ckpt, sizeof ckpt, "%s/model.hpm", o->out);
    if (o->resume) {
        if (heph_vae_load(&m, o->resume) != HEPH_OK) cli_fail("%s: %s", o->name, m.err);
        if ((size_t)m.enc.in_n != np) cli_fail("%s: %s expects %d values per picture, %s has %zu", o->name, o->resume, m.enc.in_n, o->data, np);
        if (m.cfg.max_batch < o->batch) cli_fail("%s: %s was made for batches up to %d", o->name, o->resume, m.cfg.max_batch);
        e0 = (long)(m.step / (uint64_t)o->batches);
    } else {
        o->cfg.max_batch = (int)o->batch;
        if ((size_t)o->cfg.in_c * (size_t)o->cfg.in_h * (size_t)o->cfg.in_w != np)
            cli_fail("%s: the model takes %dx%dx%d pictures, %s has %ux%ux%u", o->name, o->cfg.in_c,
                   o->cfg.in_h, o->cfg.in_w, o->data, d.info.c, d.info.h, d.info.w);
        if (o->cfg.obj.kind == HEPH_OBJ_TCVAE && o->cfg.obj.dataset_size == 0) {
            size_t kept = 0;
            for (i = 0; i < n_all; i++) kept += !(o->holdout > 0.0 && ex_held_out(i, o->holdout));
            o->cfg.obj.dataset_size = o->subset > 0 && (size_t)o->subset < kept ? (uint64_t)o->subset : (uint64_t)kept;
        }
        if (heph_vae_init(&m, &o->cfg, (uint64_t)o->seed) != HEPH_OK) cli_fail("%s: %s", o->name, m.err);
    }
    D = m.cfg.z_dim;
    printf("%s: %zu pictures %ux%ux%u from %s | encoder %s | decoder %s | z %d | %zu parameters | "
           "%d threads\n", o->name, n_all, d.info.c, d.info.h, d.info.w, o->data, m.cfg.enc_spec,
           m.cfg.dec_spec, D, m.n_params, cli_nthreads());

    /* the training pool: all pictures or a random subset (fixed by the seed) */
    pool = (size_t *)malloc(n_all * sizeof *pool);
    idx = (size_t *)malloc((size_t)o->batch * sizeof *idx);
    x = (float *)malloc((size_t)o->batch * np * sizeof(float));
    n_ep = o->epochs > e0 ? o->epochs : e0;
    hstride = (size_t)n_ep + 1;
    hist = (double *)calloc((size_t)H_NTERMS * hstride, sizeof(double));
    if (!pool || !idx || !x || !hist) cli_fail("out of memory");
    {
        heph_rng pr;
        size_t n_pool = 0;
        heph_rng_seed(&pr, (uint64_t)o->seed ^ 0x9e3779b97f4a7c15ULL);
        for (i = 0; i < n_all; i++)
            if (!(o->holdout > 0.0 && ex_held_out(i, o->holdout))) pool[n_pool++] = i;
        if (n_pool == 0) cli_fail("%s: --holdout %.3f leaves nothing to train on", o->name, o->holdout);
        heph_rng_shuffle(&pr, pool, n_pool);
        n_use = o->subset > 0 && (size_t)o->subset < n_pool ? (size_t)o->subset : n_pool;
        if (o->holdout > 0.0)
            printf("%s: %zu pictures held out of training (--holdout %.3f), %zu in the training pool\n",
                   o->name, n_all - n_pool, o->holdout, n_use);
    }
    /* batches are drawn uniformly (with replacement) from the pool with the model's own rng,
       which the checkpoint keeps: a resumed run continues the very same sequence */
    /* every step's terms: DIR/steps.csv (appended to when resuming) */
    {
        char sp[1100];
        snprintf(sp, sizeof sp, "%s/steps.csv", o->out);
        steps_csv = fopen(sp, o->resume ? "a" : "w");
        if (!steps_csv) cli_fail("%s: cannot write %s", o->name, sp);
        if (!o->resume) fprintf(steps_csv, "step,loss,recon,kl,mi,tc,dwkl,c,gamma\n");
    }
    heph_tuner_init(&tune, cli_nthreads());
    printf("epoch   loss      recon     KL      MI      TC      DWKL    C/gamma   img/s   (nats/image)\n");
    for (ep = e0; ep < o->epochs && !stopped_early; ep++) {
        double sum[H_NTERMS] = {0}, t0 = cli_now(), dt, cg = 0.0;
        long b;
        heph_losses L;
        for (b = 0; b < o->batches; b++) {
            size_t k;
            double ts = cli_now();
            cli_threads(tune.threads);
            for (k = 0; k < (size_t)o->batch; k++) { /* uniform draw from the pool */
                idx[k] = pool[heph_rng_below(&m.rng, (uint32_t)n_use)];
            }
            ex_read(&d, idx, (size_t)o->batch, x);
            if (heph_vae_train_step(&m, x, (int)o->batch, &L) != HEPH_OK)
                cli_fail("%s: training stopped: %s (last checkpoint %s is intact)", o->name, m.err, ckpt);
            heph_tuner_next(&tune, cli_now() - ts);
            sum[H_LOSS] += L.loss; sum[H_RECON] += L.recon; sum[H_KL] += L.kl;
            sum[H_MI] += L.mi; sum[H_TC] += L.tc; sum[H_DWKL] += L.dwkl; sum[H_C] += L.c;
            cg = m.cfg.obj.kind == HEPH_OBJ_BETA ? (double)m.cfg.obj.beta : L.gamma;
            fprintf(steps_csv, "%llu,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4g\n", (unsigned long long)m.step,
                    L.loss, L.recon, L.kl, L.mi, L.tc, L.dwkl, L.c, cg);
        }
        dt = cli_now() - t0;
        t_train += dt;
        for (i = 0; i < H_NTERMS; i++) hist[i * hstride + (size_t)ep] = sum[i] / (double)o->batches;
        printf("%5ld %8.2f %9.2f %7.2f %7.2f %7.2f %7.2f %5.1f/%-5.2g %7.0f\n", ep + 1,
               sum[H_LOSS] / o->batches, sum[H_RECON] / o->batches, sum[H_KL] / o->batches,
               sum[H_MI] / o->batches, sum[H_TC] / o->batches, sum[H_DWKL] / o->batches,
               sum[H_C] / o->batches, cg, (double)(o->batches * o->batch) / dt);
        fflush(stdout);
        fflush(steps_csv);
        if (heph_vae_save(&m, ckpt, 0) != HEPH_OK) cli_fail("%s: %s", o->name, m.err);
        if (o->minutes > 0.0 && t_train > 60.0 * o->minutes && ep + 1 < o->epochs) {
            printf("%s: --minutes %.1f reached after epoch %ld; evaluating\n", o->name, o->minutes, ep + 1);
            stopped_early = 1;
            n_ep = ep + 1;
        }
    }
    fclose(steps_csv);
    if (!stopped_early) n_ep = o->epochs;
    cli_threads(tune.max_threads); /* the evaluation is not timed by the tuner: all threads */

    /* ---- evaluation on pictures drawn at random from the evaluation set ---- */
    {
        size_t ne = (size_t)o->eval_n, nc = (size_t)o->mig_cont_n, nmax, k;
        size_t *eidx;
        float *ex, *mu, *lv, *lo, *hi, *grid, *corr;
        int32_t *fac;
        uint32_t nv[HEPH_MAX_FACTORS];
        double *kl, mig_d = 0.0, mig_c = -1.0, mig_co = -1.0, pf_d[HEPH_MAX_FACTORS], pf_c[HEPH_MAX_FACTORS];
        int *order, r, t, steps = 10, show;
        heph_rng er;
        char title[160];
        const char *rl[64], *cl[HEPH_MAX_FACTORS];
        char rlbuf[64][16];
        nmax = ne > nc ? ne : nc;
        if (nmax < 16) nmax = 16;
        eidx = (size_t *)malloc(nmax * sizeof *eidx);
        ex = (float *)malloc(nmax * np * sizeof(float));
        mu = (float *)malloc(nmax * (size_t)D * sizeof(float));
        lv = (float *)malloc(nmax * (size_t)D * sizeof(float));
        fac = (int32_t *)malloc(nmax * (size_t)K * sizeof(int32_t));
        kl = (double *)malloc((size_t)D * sizeof(double));
        order = (int *)malloc((size_t)D * sizeof(int));
        lo = (float *)calloc((size_t)D, sizeof(float)); /* zeroed: gcc saw them maybe unset */
        hi = (float *)calloc((size_t)D, sizeof(float));
        corr = (float *)malloc((size_t)D * (size_t)K * sizeof(float));
        grid = (float *)malloc((size_t)D * (size_t)steps * np * sizeof(float) + 32 * np * sizeof(float));
        if (!eidx || !ex || !mu || !lv || !fac || !kl || !order || !lo || !hi || !corr || !grid) cli_fail("out of memory");
        heph_rng_seed(&er, 4242);
        for (k = 0; k < nmax; k++) { /* uniform draws; from the held-out part when there is one */
            do eidx[k] = (size_t)heph_rng_below(&er, (uint32_t)ev->info.count);
            while (ev == &d && o->holdout > 0.0 && !ex_held_out(eidx[k], o->holdout));
        }
        if (ev == &d && o->holdout > 0.0) printf("metrics on %zu draws from the held-out pictures\n", nmax);
        for (k = 0; k < nmax; k++) ex_read(ev, eidx + k, 1, ex + k * np);
        for (k = 0; k < nmax; k++)
            for (r = 0; r < K; r++) fac[k * (size_t)K + (size_t)r] = heph_hpd_label(ev, eidx[k], r);
        for (r = 0; r < K; r++) nv[r] = ev->info.factors[r].n_values;
        heph_vae_encode(&m, ex, nmax, mu, lv);
        heph_vae_kl_per_dim(&m, ex, ne < 2000 ? ne : 2000, kl);
        {
            size_t *ord = (size_t *)malloc((size_t)D * sizeof(size_t));
            if (!ord || heph_rank_desc(kl, (size_t)D, ord) != HEPH_OK) cli_fail("out of memory");
            for (r = 0; r < D; r++) order[r] = (int)ord[r];
            free(ord);
        }

        /* reconstructions: 16 pictures above their reconstructions */
        memcpy(grid, ex, 16 * np * sizeof(float));
        heph_vae_decode(&m, mu, 16, grid + 16 * np);
        cli_write_grid(cli_join(o->out, "reconstructions.png").s, grid, 32, 16, (int)d.info.c, (int)d.info.h, (int)d.info.w);
        if (o->ssim_n > 0) {
            size_t ns = (size_t)o->ssim_n < nmax ? (size_t)o->ssim_n : nmax;
            double s = 0.0;
            for (k = 0; k < ns; k += 16) {
                size_t nb = ns - k < 16 ? ns - k : 16, b2;
                heph_vae_decode(&m, mu + k * (size_t)D, nb, grid);
                for (b2 = 0; b2 < nb; b2++)
                    s += heph_ssim(ex + (k + b2) * np, grid + b2 * np, (int)d.info.c, (int)d.info.h, (int)d.info.w);
            }
            printf("SSIM(11, sigma 1.5, K 0.01/0.03, L=1, valid, per-channel mean) of %zu reconstructions: %.4f\n", ns, s / (double)ns);
            o->ssim_n = -1; /* printed */
        }
        /* traversal: rows = dimensions by decreasing KL, base = the first picture's code */
        for (r = 0; r < D; r++) {
            if (o->traverse_sigma > 0.0f) { lo[r] = -o->traverse_sigma; hi[r] = o->traverse_sigma; }
            else {
                lo[r] = hi[r] = mu[r];
                for (k = 0; k < ne; k++) {
                    float v = mu[k * (size_t)D + (size_t)r];
                    if (v < lo[r]) lo[r] = v;
                    if (v > hi[r]) hi[r] = v;
                }
            }
        }
        heph_vae_traverse(&m, mu, order, D, lo, hi, steps, grid);
        cli_write_grid(cli_join(o->out, "traversal.png").s, grid, D * steps, steps, (int)d.info.c, (int)d.info.h, (int)d.info.w);
        printf("traversal rows (by KL): ");
        for (r = 0; r < D; r++) printf("z%d (KL %.2f, %.2f..%.2f)%s", order[r], kl[order[r]], (double)lo[order[r]], (double)hi[order[r]], r + 1 < D ? ", " : "\n");

        /* metrics */
        if (heph_mig_discrete(mu, ne, D, fac, K, nv, 20, &mig_d, pf_d, NULL) != HEPH_OK) cli_fail("%s: mig_discrete failed", o->name);
        if (nc > 0) {
            /* two named numbers of one estimate: mig_continuous over every factor, and
               mig_continuous_ordinal, the mean gap of the factors other than the categorical
               shape (a factor's gap does not depend on which others are used) */
            double sum = 0.0;
            int used = 0;
            if (heph_mig_continuous(mu, lv, nc, D, fac, K, nv, NULL, (size_t)o->mig_cont_samples, 77, &mig_c, pf_c, NULL) != HEPH_OK)
                cli_fail("%s: mig_continuous failed", o->name);
            for (r = 0; r < K; r++)
                if (nv[r] > 1 && strcmp(ev->info.factors[r].name, "shape") != 0 && pf_c[r] == pf_c[r]) { sum += pf_c[r]; used++; }
            mig_co = used ? sum / used : -1.0;
        }
        heph_correlation_matrix(mu, ne, D, fac, K, corr);
        printf("mig_discrete %.4f (%zu samples, 20 bins, means):", mig_d, ne);
        for (r = 0; r < K; r++) printf(" %s %.3f", ev->info.factors[r].name, pf_d[r]);
        printf("\n");
        if (nc > 0) {
            printf("mig_continuous %.4f, mig_continuous_ordinal %.4f without shape (%zu encodings, %ld entropy samples):",
                   mig_c, mig_co, nc, o->mig_cont_samples);
            for (r = 0; r < K; r++) printf(" %s %.3f", ev->info.factors[r].name, pf_c[r]);
            printf("\n");
        }
        for (r = 0; r < D && r < 64; r++) { snprintf(rlbuf[r], sizeof rlbuf[r], "z%d", r); rl[r] = rlbuf[r]; }
        for (r = 0; r < K; r++) cl[r] = ev->info.factors[r].name;
        {
            int W = 120 + 70 * K, Hh = 110 + 34 * D;
            uint8_t *rgb = (uint8_t *)malloc((size_t)W * (size_t)Hh * 3);
            if (!rgb) cli_fail("out of memory");
            snprintf(title, sizeof title, "correlation: latent mean vs factor");
            plot_heatmap(rgb, W, Hh, corr, D, K, -1.0f, 1.0f, rl, cl, title);
            cli_write_png_in(o->out, "correlation.png", rgb, W, Hh);
            free(rgb);
        }
        /* the strongest factor of each dimension, for naming ("z0 ~ posX") */
        printf("dimension -> factor with the largest |correlation|:\n");
        for (r = 0; r < D; r++) {
            int kb = 0, kk;
            for (kk = 1; kk < K; kk++)
                if (fabsf(corr[(size_t)order[r] * (size_t)K + (size_t)kk]) > fabsf(corr[(size_t)order[r] * (size_t)K + (size_t)kb])) kb = kk;
            printf("  z%d (KL %.2f) ~ %s (r = %+.2f)\n", order[r], kl[order[r]], cl[kb], (double)corr[(size_t)order[r] * (size_t)K + (size_t)kb]);
        }
        /* curves */
        if (n_ep > e0) {
            int n = (int)(n_ep - e0);
            double *ys = (double *)calloc((size_t)4 * (size_t)n, sizeof(double)); /* zeroed: gcc -march=x86-64 saw it maybe unset */
            const char *l1[2] = {"loss", "recon"}, *l2[4] = {"KL", "MI", "TC", "DWKL"};
            if (!ys) cli_fail("out of memory");
            for (t = 0; t < n; t++) {
                ys[t] = hist[H_LOSS * hstride + (size_t)(e0 + t)];
                ys[n + t] = hist[H_RECON * hstride + (size_t)(e0 + t)];
            }
            ex_plot(o->out, "loss_curve.png", ys, 2, n, l1, "objective and reconstruction (nats/image) per epoch");
            show = m.cfg.obj.kind == HEPH_OBJ_TCVAE ? 4 : 1;
            for (r = 0; r < show; r++)
                for (t = 0; t < n; t++) ys[(size_t)r * (size_t)n + (size_t)t] = hist[(size_t)(H_KL + r) * hstride + (size_t)(e0 + t)];
            ex_plot(o->out, "kl_curve.png", ys, show, n, l2, "KL terms (nats/image) per epoch");
            free(ys);
        }
        /* results.json */
        {
            char jp[1100];
            snprintf(jp, sizeof jp, "%s/results.json", o->out);
            js = fopen(jp, "w");
            if (!js) cli_fail("cannot write %s", jp);
            fprintf(js, "{\n  \"example\": \"%s\",\n  \"data\": \"%s\",\n  \"pictures\": %zu,\n  \"subset\": %zu,\n",
                    o->name, o->data, n_all, n_use);
            fprintf(js, "  \"epochs\": %ld,\n  \"batches_per_epoch\": %ld,\n  \"batch\": %ld,\n  \"steps\": %llu,\n",
                    n_ep, o->batches, o->batch, (unsigned long long)m.step);
            fprintf(js, "  \"train_seconds\": %.1f,\n  \"threads\": %d,\n  \"mig_discrete\": %.6f,\n  \"mig_continuous\": %.6f,\n  \"mig_continuous_ordinal\": %.6f,\n",
                    t_train, tune.max_threads, mig_d, mig_c, mig_co);
            fprintf(js, "  \"final\": {\"loss\": %.4f, \"recon\": %.4f, \"kl\": %.4f, \"mi\": %.4f, \"tc\": %.4f, \"dwkl\": %.4f},\n",
                    hist[H_LOSS * hstride + (size_t)(n_ep - 1)], hist[H_RECON * hstride + (size_t)(n_ep - 1)],
                    hist[H_KL * hstride + (size_t)(n_ep - 1)], hist[H_MI * hstride + (size_t)(n_ep - 1)],
                    hist[H_TC * hstride + (size_t)(n_ep - 1)], hist[H_DWKL * hstride + (size_t)(n_ep - 1)]);
            fprintf(js, "  \"kl_per_dim\": [");
            for (r = 0; r < D; r++) fprintf(js, "%.4f%s", kl[r], r + 1 < D ? ", " : "],\n");
            fprintf(js, "  \"mig_discrete_per_factor\": {");
            for (r = 0; r < K; r++) { /* a constant factor has no MIG: JSON null, not nan */
                if (pf_d[r] == pf_d[r]) fprintf(js, "\"%s\": %.4f%s", cl[r], pf_d[r], r + 1 < K ? ", " : "}\n}\n");
                else fprintf(js, "\"%s\": null%s", cl[r], r + 1 < K ? ", " : "}\n}\n");
            }
            fclose(js);
            printf("wrote %s\n", jp);
        }
        free(eidx); free(ex); free(mu); free(lv); free(fac); free(kl); free(order);
        free(lo); free(hi); free(corr); free(grid);
    }
    printf("%s: %.1f s of training, %llu steps; checkpoint %s; peak memory %.1f MiB\n", o->name,
           t_train, (unsigned long long)m.step, ckpt, cli_peak_rss_mib());
    heph_vae_free(&m);
    heph_hpd_close(&d);
    if (ev != &d) heph_hpd_close(ev);
    free(pool); free(idx); free(x); free(hist);
    return 0;
}
/* beta-TCVAE runs (betatcvae_dsprites, betatcvae_shapes3d): the seed's objective settings on
   top of o's defaults, the TC flags, then the common ones. Returns ex_train_run's status.   */
CLI_FN int ex_tcvae_main(ex_train_opts *o, int argc, char **argv) {
    int a;
    o->batches = 500;
    o->cfg.lr = 5e-4f;
    o->cfg.obj.kind = HEPH_OBJ_TCVAE;
    o->cfg.obj.alpha = 1.0f;
    o->cfg.obj.gamma = 1.0f;
    o->cfg.obj.ramp_steps = 5000;
    o->cfg.obj.estimator = HEPH_TC_MSS;
    for (a = 1; a < argc; a++) {
        const char *f = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            printf("usage: %s --data TRAIN.hpd [--eval-data FRESH.hpd] [options]\n"
                   "beta-TCVAE (%s, batch %ld, 500 batches per epoch, %ld epochs).\n"
                   "  --beta B            total-correlation weight (default %g)\n"
                   "  --alpha A           index-code MI weight (default 1)\n"
                   "  --gamma G           dimension-wise KL weight (default 1)\n"
                   "  --anneal S          steps over which the DWKL weight ramps 0 -> gamma (default 5000)\n"
                   "  --estimator E       mss (default) or mws\n"
                   "  --dataset-size N    N in the estimators (default: the training pool)\n"
                   "  --ssim-n N          SSIM over N reconstructions of eval pictures (default %ld)\n",
                   o->name, o->cfg.enc_spec, o->batch, o->epochs, (double)o->cfg.obj.beta, o->ssim_n);
            ex_train_usage_common(stdout);
            return 0;
        }
        if (v && !strcmp(f, "--beta")) { o->cfg.obj.beta = cli_arg_float(o->name, f, v); a++; continue; }
        if (v && !strcmp(f, "--alpha")) { o->cfg.obj.alpha = cli_arg_float(o->name, f, v); a++; continue; }
        if (v && !strcmp(f, "--gamma")) { o->cfg.obj.gamma = cli_arg_float(o->name, f, v); a++; continue; }
        if (v && !strcmp(f, "--anneal")) { o->cfg.obj.ramp_steps = (uint64_t)cli_arg_long(o->name, f, v); a++; continue; }
        if (v && !strcmp(f, "--dataset-size")) { o->cfg.obj.dataset_size = (uint64_t)cli_arg_long(o->name, f, v); a++; continue; }
        if (v && !strcmp(f, "--ssim-n")) { o->ssim_n = cli_arg_long(o->name, f, v); a++; continue; }
        if (v && !strcmp(f, "--estimator")) {
            if (!strcmp(v, "mss")) o->cfg.obj.estimator = HEPH_TC_MSS;
            else if (!strcmp(v, "mws")) o->cfg.obj.estimator = HEPH_TC_MWS;
            else cli_fail("%s: --estimator must be mss or mws", o->name);
            a++;
            continue;
        }
        if (!ex_train_flag(o, argc, argv, &a)) cli_fail("%s: unknown option %s (see --help)", o->name, f);
    }
    return ex_train_run(o);
}

#endif
