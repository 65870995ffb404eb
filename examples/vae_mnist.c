/* vae_mnist - the reference VAE of Kingma & Welling on MNIST or Fashion-MNIST.

   Encoder 784 -> 400 (ReLU) -> 20 (mu) and 20 (log sigma^2); decoder 20 -> 400 (ReLU) -> 784
   logits; Bernoulli reconstruction loss summed over pixels; Adam lr 1e-3; batch 128.
   Each epoch prints the train and test negative ELBO (nats per image) and images/s; at the
   end it writes reconstructions, samples, a morph grid and the loss curves as PNG, and keeps
   a checkpoint it can resume from.

   build:  make build/vae_mnist
   run:    build/vae_mnist --train data/mnist/train.hpd --test data/mnist/test.hpd --epochs 10 */
#define HEPHAESTUS_IMPLEMENTATION
#include "../tools/heph_posix.h" /* hephaestus.h with fsync, 64-bit seeks, safe temporaries */
#define CLI_PROG "" /* the examples name themselves in each message */
#include "../tools/cli_common.h" /* messages, folders, PNG files, threads, the clock */
#include "../tools/plot.h"

static void usage(FILE *f) {
    fprintf(f,
        "usage: vae_mnist --train TRAIN.hpd --test TEST.hpd [options]\n"
        "Trains the 784-400-20 VAE and writes pictures and a checkpoint to --out.\n"
        "  --epochs N      passes over the training set (default 10)\n"
        "  --batch N       batch size (default 128)\n"
        "  --lr X          Adam learning rate (default 1e-3)\n"
        "  --seed N        seed of initialisation, shuffling and noise (default 1)\n"
        "  --limit N       use only the first N training pictures (default: all)\n"
        "  --threads N     OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
        "  --out DIR       output folder (default out/vae_mnist)\n"
        "  --resume FILE   continue from a checkpoint written by this program\n"
        "  -h, --help      this help\n");
}

int main(int argc, char **argv) {
    const char *train_path = NULL, *test_path = NULL, *out = "out/vae_mnist", *resume = NULL;
    long epochs = 10, batch = 128, seed = 1, limit = 0, threads = 0, e0 = 0;
    float lr = 1e-3f;
    heph_hpd dtr, dte;
    heph_vae_config cfg;
    heph_vae m;
    float *xtr, *xte, *xb;
    size_t ntr, nte, np, *idx, i;
    double *curve_tr, *curve_te;
    char ckpt[1024], spec[64];
    int a, rc;

    for (a = 1; a < argc; a += 2) { /* flag, value */
        const char *f = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) { usage(stdout); return 0; }
        if (!v) cli_fail("vae_mnist: %s needs a value (see --help)", f);
        if (!strcmp(f, "--train")) train_path = v;
        else if (!strcmp(f, "--test")) test_path = v;
        else if (!strcmp(f, "--epochs")) epochs = cli_arg_long("vae_mnist", f, v);
        else if (!strcmp(f, "--batch")) batch = cli_arg_long("vae_mnist", f, v);
        else if (!strcmp(f, "--seed")) seed = cli_arg_long("vae_mnist", f, v);
        else if (!strcmp(f, "--limit")) limit = cli_arg_long("vae_mnist", f, v);
        else if (!strcmp(f, "--threads")) threads = cli_arg_long("vae_mnist", f, v);
        else if (!strcmp(f, "--out")) out = v;
        else if (!strcmp(f, "--resume")) resume = v;
        else if (!strcmp(f, "--lr")) lr = strtof(v, NULL);
        else cli_fail("vae_mnist: unknown option %s (see --help)", f);
    }
    if (!train_path || !test_path) { usage(stderr); return 2; }
    if (batch < 1 || batch > 65536) cli_fail("vae_mnist: --batch must be in 1..65536");
    if (!(lr > 0.0f)) cli_fail("vae_mnist: --lr must be positive");
    cli_threads((int)threads);
    cli_mkdirs(out);

    /* data: every picture in memory as floats in [0,1] */
    xtr = cli_hpd_load_all(train_path, &dtr);
    xte = cli_hpd_load_all(test_path, &dte);
    ntr = (size_t)dtr.info.count;
    nte = (size_t)dte.info.count;
    if (limit > 0 && (size_t)limit < ntr) ntr = (size_t)limit;
    np = heph_hpd_picture_size(&dtr.info);
    if (heph_hpd_picture_size(&dte.info) != np)
        cli_fail("vae_mnist: %s has %zu values per picture, %s has %zu", test_path,
               heph_hpd_picture_size(&dte.info), train_path, np);
    printf("data: %zu training pictures (%s), %zu test pictures, %ux%ux%u\n", ntr,
           dtr.info.source, nte, dtr.info.c, dtr.info.h, dtr.info.w);

    /* model: the mlp-mnist preset, sized to the data's pictures */
    snprintf(ckpt, sizeof ckpt, "%s/vae_mnist.hpm", out);
    if (resume) {
        if (heph_vae_load(&m, resume) != HEPH_OK) cli_fail("vae_mnist: %s", m.err);
        if ((size_t)m.enc.in_n != np) cli_fail("vae_mnist: %s expects %d values per picture, the data has %zu", resume, m.enc.in_n, np);
        if (m.cfg.max_batch < batch) cli_fail("vae_mnist: %s was made for batches up to %d", resume, m.cfg.max_batch);
    } else {
        heph_vae_config_preset(&cfg, "mlp-mnist");
        cfg.in_c = (int)dtr.info.c; cfg.in_h = (int)dtr.info.h; cfg.in_w = (int)dtr.info.w;
        snprintf(spec, sizeof spec, "dense400,relu,dense%zu", np);
        strcpy(cfg.dec_spec, spec);
        cfg.max_batch = (int)batch;
        cfg.lr = lr;
        if (heph_vae_init(&m, &cfg, (uint64_t)seed) != HEPH_OK) cli_fail("vae_mnist: %s", m.err);
    }
    {
        size_t per_epoch = (ntr + (size_t)batch - 1) / (size_t)batch;
        e0 = (long)(m.step / per_epoch);
        if (m.step % per_epoch) cli_fail("vae_mnist: %s stopped inside an epoch (step %llu)", resume, (unsigned long long)m.step);
    }
    printf("model: encoder %s,dense%d | decoder %s | %zu parameters | %d threads%s\n",
           m.cfg.enc_spec, 2 * m.cfg.z_dim, m.cfg.dec_spec, m.n_params, cli_nthreads(),
           resume ? " | resumed" : "");

    idx = (size_t *)malloc(ntr * sizeof *idx);
    xb = (float *)malloc((size_t)batch * np * sizeof(float));
    curve_tr = (double *)calloc((size_t)epochs + 1, sizeof(double));
    curve_te = (double *)calloc((size_t)epochs + 1, sizeof(double));
    if (!idx || !xb || !curve_tr || !curve_te) cli_fail("out of memory");

    printf("epoch  train-nelbo  test-nelbo  test-recon  test-kl   images/s\n");
    for (long ep = e0; ep < epochs; ep++) {
        double sum = 0.0, t0, dt;
        heph_losses L, T;
        for (i = 0; i < ntr; i++) idx[i] = i;
        heph_rng_shuffle(&m.rng, idx, ntr);
        t0 = cli_now();
        for (i = 0; i < ntr; i += (size_t)batch) {
            size_t B = ntr - i < (size_t)batch ? ntr - i : (size_t)batch, b;
            for (b = 0; b < B; b++) memcpy(xb + b * np, xtr + idx[i + b] * np, np * sizeof(float));
            rc = heph_vae_train_step(&m, xb, (int)B, &L);
            if (rc != HEPH_OK) cli_fail("vae_mnist: training stopped: %s (last checkpoint %s is intact)", m.err, ckpt);
            sum += L.loss * (double)B;
        }
        dt = cli_now() - t0;
        if (heph_vae_evaluate(&m, xte, nte, 12345, &T) != HEPH_OK) cli_fail("vae_mnist: %s", m.err);
        curve_tr[ep] = sum / (double)ntr;
        curve_te[ep] = -T.elbo;
        printf("%5ld  %11.3f  %10.3f  %10.3f  %7.3f  %9.0f\n", ep + 1, curve_tr[ep], -T.elbo,
               T.recon, T.kl, (double)ntr / dt);
        fflush(stdout);
        if (heph_vae_save(&m, ckpt, 0) != HEPH_OK) cli_fail("vae_mnist: %s", m.err);
    }

    /* pictures, from the test set */
    {
        int c = (int)dte.info.c, h = (int)dte.info.h, w = (int)dte.info.w, k, t;
        size_t D = (size_t)m.cfg.z_dim;
        float *grid = (float *)malloc(64 * np * sizeof(float)), *rec = (float *)malloc(32 * np * sizeof(float));
        float *mu = (float *)malloc(32 * D * sizeof(float)), *zz = (float *)malloc(80 * D * sizeof(float));
        heph_rng rng;
        if (!grid || !rec || !mu || !zz) cli_fail("out of memory");
        /* reconstructions: rows of 16 originals, each followed by a row of their reconstructions */
        heph_vae_encode(&m, xte, 32, mu, NULL);
        heph_vae_decode(&m, mu, 32, rec);
        for (k = 0; k < 2; k++) {
            memcpy(grid + (size_t)(32 * k) * np, xte + (size_t)(16 * k) * np, 16 * np * sizeof(float));
            memcpy(grid + (size_t)(32 * k + 16) * np, rec + (size_t)(16 * k) * np, 16 * np * sizeof(float));
        }
        cli_write_grid(cli_join(out, "reconstructions.png").s, grid, 64, 16, c, h, w);
        /* samples from the prior */
        heph_rng_seed(&rng, 7);
        heph_vae_sample(&m, &rng, 64, grid);
        cli_write_grid(cli_join(out, "samples.png").s, grid, 64, 8, c, h, w);
        /* morphs: 8 pairs of test pictures, 10 steps on the line between their posterior means */
        for (k = 0; k < 8; k++)
            for (t = 0; t < 10; t++) {
                float s = (float)t / 9.0f;
                size_t j;
                for (j = 0; j < D; j++) /* z = (1-s) mu_a + s mu_b */
                    zz[((size_t)k * 10 + (size_t)t) * D + j] = (1.0f - s) * mu[(size_t)(2 * k) * D + j] + s * mu[(size_t)(2 * k + 1) * D + j];
            }
        free(grid);
        grid = (float *)malloc(80 * np * sizeof(float));
        if (!grid) cli_fail("out of memory");
        heph_vae_decode(&m, zz, 80, grid);
        cli_write_grid(cli_join(out, "morphs.png").s, grid, 80, 10, c, h, w);
        free(grid); free(rec); free(mu); free(zz);
    }
    if (epochs > e0) { /* loss curves */
        int W = 640, H = 400, n = (int)(epochs - e0);
        float *ys = (float *)malloc(2 * (size_t)n * sizeof(float));
        uint8_t *rgb = (uint8_t *)malloc((size_t)W * H * 3);
        const char *labels[2] = {"train -ELBO", "test -ELBO"};
        if (!ys || !rgb) cli_fail("out of memory");
        for (i = 0; i < (size_t)n; i++) {
            ys[i] = (float)curve_tr[e0 + (long)i];
            ys[(size_t)n + i] = (float)curve_te[e0 + (long)i];
        }
        plot_lines(rgb, W, H, ys, 2, n, labels, "negative ELBO (nats/image) per epoch");
        cli_write_png_in(out, "loss_curve.png", rgb, W, H);
        free(ys); free(rgb);
    }
    printf("checkpoint: %s (step %llu)\npeak memory: %.1f MiB\n", ckpt, (unsigned long long)m.step, cli_peak_rss_mib());
    heph_vae_free(&m);
    heph_hpd_close(&dtr);
    heph_hpd_close(&dte);
    free(xtr); free(xte); free(xb); free(idx); free(curve_tr); free(curve_te);
    return 0;
}
