/* test_train.c - training: exact resume from a checkpoint, evaluation and sampling, the NaN
   guard, a short end-to-end training on random bars, and (OpenMP builds) the same bits on 1
   and 2 threads; the conditional VAE (its tests, below the VAE's). Harness and usage:
   tests/test_harness.h. */
#include "test_harness.h"

/* ============================================================================================ */
/* training: exact resume, evaluate, NaN guard, end-to-end                                       */

/* n pictures (1, s, s) of random horizontal or vertical bars (each line lit with p = 1/4) */
static float *bars_dataset(size_t n, int s, uint64_t seed) {
    float *x = TALLOC(float, n * (size_t)(s * s));
    size_t k;
    int i, j, any;
    tseed(seed);
    for (k = 0; k < n; k++) {
        float *p = x + k * (size_t)(s * s);
        int vertical = (int)(trand64() & 1);
        do {
            any = 0;
            for (i = 0; i < s; i++) {
                int on = (trand64() & 3) == 0;
                any |= on;
                for (j = 0; j < s; j++) p[vertical ? j * s + i : i * s + j] = on ? 1.0f : 0.0f;
            }
        } while (!any);
    }
    return x;
}

/* copy the pictures of batch number t (a fixed shuffle of the data set) into xb */
static void batch_of(float *xb, const float *data, size_t n, size_t pic, int B, int t) {
    int b;
    for (b = 0; b < B; b++) {
        size_t k = ((size_t)t * 7919u + (size_t)b * 104729u) % n;
        memcpy(xb + (size_t)b * pic, data + k * pic, pic * sizeof(float));
    }
}

static int test_exact_resume(void) {
    heph_vae_config cfg;
    heph_vae a, b;
    const int B = 16, k = 5, nsteps = 12;
    const size_t n = 128, pic = 64;
    float *data = bars_dataset(n, 8, 5), *xb = TALLOC(float, (size_t)B * pic), *pa;
    const char *p = tpath("resume.hpm");
    int t;
    small_config(&cfg, 1, 8, 8, 4, "dense32,lrelu0.1", "dense32,relu,dense64", B);
    cfg.lr = 3e-3f;
    CHECK(heph_vae_init(&a, &cfg, 9) == HEPH_OK, "init: %s", a.err);
    for (t = 0; t < k; t++) {
        batch_of(xb, data, n, pic, B, t);
        CHECK(heph_vae_train_step(&a, xb, B, NULL) == HEPH_OK, "step %d: %s", t, a.err);
    }
    CHECK(heph_vae_save(&a, p, 0) == HEPH_OK, "save: %s", a.err);
    for (t = k; t < k + nsteps; t++) {
        batch_of(xb, data, n, pic, B, t);
        CHECK(heph_vae_train_step(&a, xb, B, NULL) == HEPH_OK, "step %d: %s", t, a.err);
    }
    pa = TALLOC(float, a.n_params);
    memcpy(pa, a.params, a.n_params * sizeof(float));
    CHECK(heph_vae_load(&b, p) == HEPH_OK, "load: %s", b.err);
    CHECK(b.step == (uint64_t)k, "loaded step %llu", (unsigned long long)b.step);
    for (t = k; t < k + nsteps; t++) {
        batch_of(xb, data, n, pic, B, t);
        CHECK(heph_vae_train_step(&b, xb, B, NULL) == HEPH_OK, "resumed step %d: %s", t, b.err);
    }
    CHECK(memcmp(pa, b.params, a.n_params * sizeof(float)) == 0, "resumed parameters differ");
    CHECK(memcmp(a.adam_m, b.adam_m, a.n_params * sizeof(float)) == 0 &&
              memcmp(a.adam_v, b.adam_v, a.n_params * sizeof(float)) == 0,
          "resumed Adam state differs");
    CHECK(same_rng(&a.rng, &b.rng) && a.step == b.step, "resumed rng or step differs");
    heph_vae_free(&a);
    heph_vae_free(&b);
    return 1;
}

static int test_evaluate(void) {
    heph_vae_config cfg;
    heph_vae m;
    heph_losses L1, L2, L3, L4;
    heph_rng r0;
    const size_t n = 37, pic = 64;
    float *data = bars_dataset(n, 8, 6), *p0, *x2 = TALLOC(float, 2 * pic);
    float *mu = TALLOC(float, n * 3), *lv = TALLOC(float, n * 3), *mu1 = TALLOC(float, 3),
          *lv1 = TALLOC(float, 3), *dec = TALLOC(float, n * pic);
    size_t i;
    small_config(&cfg, 1, 8, 8, 3, "dense16,tanh", "dense16,tanh,dense64", 8);
    CHECK(heph_vae_init(&m, &cfg, 4) == HEPH_OK, "init: %s", m.err);
    memcpy(x2, data, 2 * pic * sizeof(float));
    CHECK(heph_vae_train_step(&m, x2, 2, NULL) == HEPH_OK, "train: %s", m.err);
    p0 = TALLOC(float, 4 * m.n_params);
    memcpy(p0, m.params, 4 * m.n_params * sizeof(float)); /* params, grads, m, v */
    r0 = m.rng;
    /* n = 37 is not a multiple of max_batch 8: evaluate works in chunks */
    CHECK(heph_vae_evaluate(&m, data, n, 123, &L1) == HEPH_OK, "evaluate: %s", m.err);
    CHECK(heph_vae_evaluate(&m, data, n, 123, &L2) == HEPH_OK, "evaluate again: %s", m.err);
    CHECK(heph_vae_evaluate(&m, data, n, 124, &L3) == HEPH_OK, "evaluate seed 124: %s", m.err);
    CHECK(same_rng(&r0, &m.rng), "evaluate changed the model's rng");
    CHECK(memcmp(p0, m.params, m.n_params * sizeof(float)) == 0, "evaluate changed the parameters");
    CHECK(memcmp(p0 + 2 * m.n_params, m.adam_m, 2 * m.n_params * sizeof(float)) == 0,
          "evaluate changed the Adam state");
    CHECK(memcmp(&L1, &L2, sizeof L1) == 0, "evaluate with the same seed differs");
    CHECK(L1.recon != L3.recon, "evaluate with another seed gives the same recon %.9g", L1.recon);
    CHECK(L1.kl == L3.kl, "KL depends on the noise seed");
    CHECK(t_close(L1.elbo, -(L1.recon + L1.kl), 1e-12, 1e-12) && L1.recon > 0.0 && L1.kl >= 0.0,
          "evaluate terms: recon %g kl %g elbo %g", L1.recon, L1.kl, L1.elbo);
    CHECK(heph_vae_evaluate(&m, data, 0, 1, &L4) == HEPH_E_ARG, "evaluate of 0 pictures");
    /* evaluate of the first 8 (one chunk) == the average of its own terms: chunking consistent */
    {
        heph_losses La, Lb;
        CHECK(heph_vae_evaluate(&m, data, 8, 5, &La) == HEPH_OK, "evaluate 8");
        CHECK(heph_vae_evaluate(&m, data, 8, 5, &Lb) == HEPH_OK && memcmp(&La, &Lb, sizeof La) == 0,
              "evaluate 8 twice");
    }
    /* encode in chunks equals encode of one picture at a time; KL of evaluate matches */
    heph_vae_encode(&m, data, n, mu, lv);
    {
        double kl = 0.0;
        for (i = 0; i < n; i++) {
            heph_vae_encode(&m, data + i * pic, 1, mu1, lv1);
            CHECK(memcmp(mu1, mu + i * 3, 3 * sizeof(float)) == 0 &&
                      memcmp(lv1, lv + i * 3, 3 * sizeof(float)) == 0,
                  "encode of picture %zu alone differs from the chunked encode", i);
            kl += heph_kl_normal(NULL, NULL, mu + i * 3, lv + i * 3, 3, 0.0f);
        }
        CHECK(t_close(kl / (double)n, L1.kl, 1e-9, 1e-9), "evaluate KL %.9g, from encode %.9g", L1.kl, kl / (double)n);
    }
    heph_vae_encode(&m, data, n, mu, NULL);
    heph_vae_decode(&m, mu, n, dec);
    for (i = 0; i < n * pic; i++) CHECK(dec[i] >= 0.0f && dec[i] <= 1.0f, "decoded value %g", (double)dec[i]);
    {
        heph_rng r;
        heph_rng_seed(&r, 1);
        heph_vae_sample(&m, &r, n, dec);
        for (i = 0; i < n * pic; i++) CHECK(dec[i] >= 0.0f && dec[i] <= 1.0f, "sampled value %g", (double)dec[i]);
        CHECK(same_rng(&r0, &m.rng), "sample changed the model's rng");
    }
    heph_vae_free(&m);
    return 1;
}

static int test_nan_guard(void) {
    heph_vae_config cfg;
    heph_vae m;
    const int B = 4;
    float *x = bars_dataset((size_t)B, 4, 8), *p0;
    heph_losses L;
    int s, rc;
    small_config(&cfg, 1, 4, 4, 2, "dense8,relu", "dense8,relu,dense16", B);
    CHECK(heph_vae_init(&m, &cfg, 3) == HEPH_OK, "init: %s", m.err);
    for (s = 0; s < 3; s++) CHECK(heph_vae_train_step(&m, x, B, NULL) == HEPH_OK, "step %d", s);
    p0 = TALLOC(float, 4 * m.n_params);
    memcpy(p0, m.params, 4 * m.n_params * sizeof(float));
    x[21] = NAN;
    rc = heph_vae_train_step(&m, x, B, &L);
    CHECK(rc == HEPH_E_NAN, "NaN pixel: rc %d", rc);
    CHECK(strstr(m.err, "step 3") != NULL, "message \"%s\" does not name step 3", m.err);
    CHECK(memcmp(p0, m.params, m.n_params * sizeof(float)) == 0, "parameters changed by a NaN step");
    CHECK(memcmp(p0 + 2 * m.n_params, m.adam_m, 2 * m.n_params * sizeof(float)) == 0,
          "Adam state changed by a NaN step");
    CHECK(m.step == 3, "step counter moved to %llu", (unsigned long long)m.step);
    x[21] = INFINITY;
    CHECK(heph_vae_train_step(&m, x, B, &L) == HEPH_E_NAN, "Inf pixel accepted");
    /* a non-finite parameter is caught too (in the loss or the gradient) */
    x[21] = 0.0f;
    m.params[m.n_params - 1] = NAN;
    memcpy(p0, m.params, m.n_params * sizeof(float));
    rc = heph_vae_train_step(&m, x, B, &L);
    CHECK(rc == HEPH_E_NAN && strstr(m.err, "step 3"), "NaN parameter: rc %d (%s)", rc, m.err);
    CHECK(memcmp(p0, m.params, m.n_params * sizeof(float)) == 0, "parameters changed by a NaN step");
    m.params[m.n_params - 1] = 0.0f;
    /* a bad batch size is refused */
    CHECK(heph_vae_train_step(&m, x, 0, &L) == HEPH_E_ARG && heph_vae_train_step(&m, x, B + 1, &L) == HEPH_E_ARG,
          "batch 0 or max_batch + 1 accepted");
    /* training goes on afterwards */
    CHECK(heph_vae_train_step(&m, x, B, &L) == HEPH_OK && m.step == 4, "step after the NaN: %s", m.err);
    heph_vae_free(&m);
    return 1;
}

static int test_end_to_end(void) {
    heph_vae_config cfg;
    heph_vae m;
    heph_losses L, E0, E1;
    const size_t n = 512, pic = 64;
    const int B = 32, steps = 300;
    float *data = bars_dataset(n, 8, 1), *xb = TALLOC(float, (size_t)B * pic);
    double first = 0.0, last = 0.0;
    size_t *order = TALLOC(size_t, n), k;
    heph_rng r;
    int t, at = 0;
    memset(&L, 0, sizeof L); /* gcc -O3 inlines the training step here and cannot see that HEPH_OK sets L */
    small_config(&cfg, 1, 8, 8, 4, "dense64,relu", "dense64,relu,dense64", B);
    cfg.lr = 5e-3f;
    CHECK(heph_vae_init(&m, &cfg, 2) == HEPH_OK, "init: %s", m.err);
    CHECK(heph_vae_evaluate(&m, data, n, 77, &E0) == HEPH_OK, "evaluate: %s", m.err);
    for (k = 0; k < n; k++) order[k] = k;
    heph_rng_seed(&r, 31);
    for (t = 0; t < steps; t++) {
        int b;
        if (t % (int)(n / (size_t)B) == 0) { heph_rng_shuffle(&r, order, n); at = 0; }
        for (b = 0; b < B; b++) memcpy(xb + (size_t)b * pic, data + order[at++] * pic, pic * sizeof(float));
        CHECK(heph_vae_train_step(&m, xb, B, &L) == HEPH_OK, "step %d: %s", t, m.err);
        if (t < 20) first += L.loss / 20.0;
        if (t >= steps - 20) last += L.loss / 20.0;
    }
    CHECK(heph_vae_evaluate(&m, data, n, 77, &E1) == HEPH_OK, "evaluate: %s", m.err);
    if (t_verbose)
        printf("  end-to-end: loss %.3f -> %.3f, -ELBO %.3f -> %.3f\n", first, last, -E0.elbo, -E1.elbo);
    CHECK(last < 0.8 * first, "loss fell only from %.3f to %.3f", first, last);
    CHECK(-E1.elbo < 0.8 * -E0.elbo, "negative ELBO fell only from %.3f to %.3f", -E0.elbo, -E1.elbo);
    CHECK(m.step == (uint64_t)steps, "step %llu", (unsigned long long)m.step);
    heph_vae_free(&m);
    return 1;
}

#ifdef _OPENMP
/* 1 and 2 threads give the same bits (the OpenMP builds only) */
static int test_threads_bitwise(void) {
    heph_vae_config cfg;
    heph_vae a, b;
    const size_t n = 64;
    const int B = 64;
    float *data = bars_dataset(n, 16, 12);
    int t, old = omp_get_max_threads();
    small_config(&cfg, 1, 16, 16, 6, "dense70,relu", "dense70,relu,dense256", B);
    CHECK(heph_vae_init(&a, &cfg, 5) == HEPH_OK && heph_vae_init(&b, &cfg, 5) == HEPH_OK, "init");
    omp_set_num_threads(1);
    for (t = 0; t < 4; t++) heph_vae_train_step(&a, data, B, NULL);
    omp_set_num_threads(2);
    for (t = 0; t < 4; t++) heph_vae_train_step(&b, data, B, NULL);
    omp_set_num_threads(old);
    CHECK(memcmp(a.params, b.params, 4 * a.n_params * sizeof(float)) == 0, "1 and 2 threads differ");
    heph_vae_free(&a);
    heph_vae_free(&b);
    return 1;
}
#endif

/* the thread tuner on synthetic step times (no clock, no OpenMP): on an idle machine it keeps
   the most threads; when a busy program makes 2 threads slower than 1 it moves to 1 within a
   few steps; when the machine is idle again it returns to 2 within 30 s; noise of +-20 % does
   not fool it */
static double tuner_step_s(int threads, int busy, heph_rng *r) {
    double s = threads >= 2 ? (busy ? 0.030 : 0.006) : (busy ? 0.0105 : 0.010);
    return s * (0.8 + 0.4 * (double)heph_rng_uniform(r));
}

static int test_tuner(void) {
    heph_tuner t;
    heph_rng r;
    int phase, i, at[3];
    heph_rng_seed(&r, 3);
    heph_tuner_init(&t, 2);
    for (phase = 0; phase < 3; phase++) { /* idle, busy, idle: 3000, 3000 and 6000 steps */
        int busy = phase == 1;
        at[phase] = 0;
        for (i = 0; i < (phase == 2 ? 6000 : 3000); i++) {
            at[phase] += t.threads == (busy ? 2 : 1); /* steps run on the slower count */
            heph_tuner_next(&t, tuner_step_s(t.threads, busy, &r));
        }
        CHECK(t.best == (busy ? 1 : 2), "phase %d (%s): chose %d threads", phase, busy ? "busy" : "idle", t.best);
    }
    /* idle again: one thread stays until the next probe, at most 30 s (HEPH__TUNE_HOLD_MAX_S,
       3000 steps of 10 ms) later */
    CHECK(at[0] <= 60 && at[2] <= 3100, "idle: %d of 3000 and %d of 6000 steps on 1 thread", at[0], at[2]);
    CHECK(at[1] <= 150, "busy: %d of 3000 steps on 2 threads", at[1]);
    CHECK(t.probes >= 3, "%lld probes", t.probes);
    heph_tuner_init(&t, 1); /* one thread: nothing to choose */
    for (i = 0; i < 100; i++) heph_tuner_next(&t, 0.01);
    CHECK(t.threads == 1 && t.probes == 0, "one thread: %d threads, %lld probes", t.threads, t.probes);
    heph_tuner_init(&t, 4); /* candidates 4, 2, 1: the fastest wins */
    for (i = 0; i < 200; i++) heph_tuner_next(&t, t.threads == 2 ? 0.01 : 0.02);
    CHECK(t.best == 2, "4 threads, 2 fastest: chose %d", t.best);
    return 1;
}

#ifdef _OPENMP
/* changing the thread count between steps (what the tuner does) gives the same bits as one
   count throughout */
static int test_threads_switch(void) {
    heph_vae_config cfg;
    heph_vae a, b;
    const int B = 32;
    float *data = bars_dataset(B, 16, 12);
    int t, old = omp_get_max_threads();
    small_config(&cfg, 1, 16, 16, 6, "conv8k4s2p1,relu,dense40,relu", "dense40,relu,dense256", B);
    CHECK(heph_vae_init(&a, &cfg, 9) == HEPH_OK && heph_vae_init(&b, &cfg, 9) == HEPH_OK, "init");
    omp_set_num_threads(2);
    for (t = 0; t < 6; t++) heph_vae_train_step(&a, data, B, NULL);
    for (t = 0; t < 6; t++) {
        omp_set_num_threads(1 + t % 2);
        heph_vae_train_step(&b, data, B, NULL);
    }
    omp_set_num_threads(old);
    CHECK(memcmp(a.params, b.params, 4 * a.n_params * sizeof(float)) == 0, "alternating 1 and 2 threads differs");
    heph_vae_free(&a);
    heph_vae_free(&b);
    return 1;
}
#endif

/* ============================================================================================ */
/* the conditional VAE (issue #22 item 3): the whole objective, label loss through a frozen
   classifier included, against finite differences for every parameter (encoder, decoder and
   both label tables); the wrong-label draw; refusals (plain calls on a conditional model and
   the reverse, labels out of range, a classifier of the wrong shape, settings out of range);
   the version-2 checkpoint round trip and an exact resume; relabelling and evaluation; the
   same bits for 1 and 2 threads.                                                              */

enum { C_B = 3, C_D = 3, C_K = 3, C_E = 2, C_NIN = 16 };

/* a conditional model on 1x4x4 pictures with K = 3 labels and a 2-wide decoder embedding */
static int cvae_make(heph_vae *m, float lambda, int B, uint64_t seed) {
    heph_vae_config cfg;
    small_config(&cfg, 1, 4, 4, C_D, "dense6,tanh", "dense6,tanh,dense16", B);
    cfg.n_classes = C_K; cfg.label_dim = C_E; cfg.label_weight = lambda;
    return heph_vae_init(m, &cfg, seed);
}

/* a classifier 1x4x4 -> K logits with its own parameter block (free with cls_free) */
static int cls_make(heph_net *n, const char *spec, int B, uint64_t seed) {
    char err[HEPH_ERRLEN];
    heph_rng r;
    float *pg;
    if (heph_net_init(n, spec, 1, 4, 4, B, err, sizeof err) != HEPH_OK) return 0;
    pg = TALLOC(float, 2 * n->n_params);
    heph_net_bind(n, pg, pg + n->n_params);
    heph_rng_seed(&r, seed);
    heph_net_init_params(n, &r);
    return 1;
}
static void cls_free(heph_net *n) {
    heph_net_free(n); /* the block is the harness's (TALLOC) */
}

typedef struct {
    heph_vae *m;
    const float *x, *eps;
    const int *y;
    int B;
} cvae_ctx;

static double cvae_loss(void *p) {
    cvae_ctx *c = (cvae_ctx *)p;
    heph_losses L;
    int rc = heph_cvae_loss_grad(c->m, c->x, c->y, c->B, c->eps, &L);
    return rc == HEPH_OK ? L.loss : (double)NAN;
}

/* every parameter's gradient against central differences; with_cls: the label loss (lambda 7)
   through a frozen classifier, whose parameters must not change */
static int cvae_gradcheck(int with_cls, const char *name) {
    heph_vae m;
    heph_net cls;
    cvae_ctx c;
    heph_losses L;
    float *x = TALLOC(float, C_B * C_NIN), *eps = TALLOC(float, C_B * C_D), *ga, *cp = NULL;
    const int y[C_B] = {0, 2, 2}; /* labels 1 unused: its rows must get gradient 0 */
    size_t i;
    int rc;
    memset(&L, 0, sizeof L);
    CHECK(cvae_make(&m, 7.0f, C_B, 21) == HEPH_OK, "%s: init: %s", name, m.err);
    CHECK(m.n_params == m.enc.n_params + m.dec.n_params + (size_t)C_K * (2 * C_D + C_E), "%s: %zu parameters", name,
          m.n_params);
    for (i = 0; i < m.n_params; i++) m.params[i] *= 2.0f; /* tanh well inside its non-linear range */
    for (i = 0; i < (size_t)C_K * 2 * C_D; i++) m.emb_enc[i] = (float)tnormal() * 0.5f; /* not 0: a real test */
    if (with_cls) {
        CHECK(cls_make(&cls, "dense5,tanh,dense3", C_B, 5), "%s: classifier", name);
        for (i = 0; i < cls.n_params; i++) cls.params[i] *= 3.0f;
        CHECK(heph_vae_set_classifier(&m, &cls) == HEPH_OK, "%s: set_classifier: %s", name, m.err);
        cp = TALLOC(float, cls.n_params);
        memcpy(cp, cls.params, cls.n_params * sizeof(float));
    }
    tfill(x, C_B * C_NIN, 0.0f, 1.0f);
    for (i = 0; i < (size_t)(C_B * C_D); i++) eps[i] = (float)tnormal();
    rc = heph_cvae_loss_grad(&m, x, y, C_B, eps, &L);
    CHECK(rc == HEPH_OK, "%s: loss_grad: %s", name, m.err);
    if (with_cls) {
        CHECK(L.label > 0.0 && L.label_acc >= 0.0 && L.label_acc <= 1.0, "%s: label %g acc %g", name, L.label, L.label_acc);
        CHECK(t_close(L.loss, L.recon + L.kl + 7.0 * L.label, 1e-9, 1e-9), "%s: loss %.9g != recon + KL + 7 label",
              name, L.loss);
    } else
        CHECK(L.label == 0.0 && t_close(L.loss, L.recon + L.kl, 1e-9, 1e-9), "%s: no classifier, label %g", name, L.label);
    ga = TALLOC(float, m.n_params);
    memcpy(ga, m.grads, m.n_params * sizeof(float));
    for (i = 0; i < 2 * C_D; i++) CHECK(ga[(size_t)(m.emb_enc - m.params) + 1 * 2 * C_D + i] == 0.0f, "%s: emb_enc[1]", name);
    for (i = 0; i < C_E; i++) CHECK(ga[(size_t)(m.emb_dec - m.params) + 1 * C_E + i] == 0.0f, "%s: emb_dec[1]", name);
    c.m = &m; c.x = x; c.eps = eps; c.y = y; c.B = C_B;
    REQUIRE(gradcheck(name, cvae_loss, &c, m.params, ga, m.n_params, 1e-2f, 5e-4, 5e-3));
    if (with_cls) {
        /* the label loss reaches the decoder: its gradient differs from the one without it */
        heph_vae_set_classifier(&m, NULL);
        CHECK(heph_cvae_loss_grad(&m, x, y, C_B, eps, &L) == HEPH_OK, "%s: without", name);
        CHECK(memcmp(ga + m.enc.n_params, m.grads + m.enc.n_params, m.dec.n_params * sizeof(float)) != 0,
              "%s: the label loss does not change the decoder's gradient", name);
        CHECK(memcmp(cp, cls.params, cls.n_params * sizeof(float)) == 0, "%s: the frozen classifier changed", name);
        cls_free(&cls);
    }
    heph_vae_free(&m);
    return 1;
}

static int test_cvae_gradcheck(void) {
    tseed(2201);
    REQUIRE(cvae_gradcheck(0, "cvae without classifier"));
    REQUIRE(cvae_gradcheck(1, "cvae with the label loss"));
    return 1;
}

/* the wrong-label draw: a share wrong_labels of the pictures gets another label, uniform
   over the other K - 1; 0 and 1 are exact */
static int test_cvae_wrong_labels(void) {
    heph_vae_config cfg;
    heph_vae m;
    enum { N = 100000, K = 10 };
    int *y = TALLOC(int, N), *g = TALLOC(int, N), i, changed = 0;
    long by_offset[K] = {0};
    small_config(&cfg, 1, 4, 4, 2, "", "dense16", 64); /* the draw takes any B: it touches no model buffer */
    cfg.n_classes = K;
    CHECK(heph_vae_init(&m, &cfg, 3) == HEPH_OK, "init: %s", m.err);
    CHECK(m.cfg.label_dim == K && t_close((double)m.cfg.wrong_labels, 0.1, 0, 1e-7), "defaults: label_dim %d, wrong %g",
          m.cfg.label_dim, (double)m.cfg.wrong_labels);
    for (i = 0; i < N; i++) y[i] = i % K;
    heph_cvae_wrong_labels(&m, y, N, g);
    for (i = 0; i < N; i++) {
        CHECK(g[i] >= 0 && g[i] < K, "label %d", g[i]);
        changed += g[i] != y[i];
        by_offset[(g[i] - y[i] + K) % K]++;
    }
    /* binomial: sd of the share sqrt(0.09 / 1e5) = 0.00095; 5 sd */
    CHECK(fabs(changed / (double)N - 0.1) < 0.005, "share changed %.4f, expected 0.1", changed / (double)N);
    for (i = 1; i < K; i++) /* each other label: 1/90 of the pictures, sd 0.00033 */
        CHECK(fabs(by_offset[i] / (double)N - 0.1 / 9) < 0.0017, "offset %d: share %.4f", i, by_offset[i] / (double)N);
    m.cfg.wrong_labels = 0.0f;
    heph_cvae_wrong_labels(&m, y, N, g);
    CHECK(memcmp(g, y, N * sizeof(int)) == 0, "wrong_labels 0 changed a label");
    m.cfg.wrong_labels = 1.0f;
    heph_cvae_wrong_labels(&m, y, N, g);
    for (i = 0; i < N; i++) CHECK(g[i] != y[i], "wrong_labels 1 kept label %d of picture %d", y[i], i);
    heph_vae_free(&m);
    return 1;
}

/* what a conditional model refuses, and what a plain one refuses, each with a message */
static int test_cvae_refusals(void) {
    heph_vae m, p;
    heph_vae_config cfg;
    heph_net cls;
    float x[C_B * C_NIN] = {0};
    int y[C_B] = {0, 1, 2};
    CHECK(cvae_make(&m, 1.0f, C_B, 1) == HEPH_OK, "init: %s", m.err);
    CHECK(heph_vae_train_step(&m, x, C_B, NULL) == HEPH_E_ARG && strstr(m.err, "conditional"), "plain step: %s", m.err);
    CHECK(heph_vae_evaluate(&m, x, C_B, 1, NULL) == HEPH_E_ARG, "plain evaluate");
    y[1] = 3;
    CHECK(heph_cvae_train_step(&m, x, y, C_B, NULL) == HEPH_E_ARG && strstr(m.err, "label 3 of picture 1"), "label 3: %s",
          m.err);
    y[1] = -1;
    CHECK(heph_cvae_loss_grad(&m, x, y, C_B, NULL, NULL) == HEPH_E_ARG && strstr(m.err, "label -1"), "label -1: %s", m.err);
    CHECK(heph_cvae_evaluate(&m, x, y, C_B, 1, NULL) == HEPH_E_ARG && strstr(m.err, "label -1"), "evaluate: %s", m.err);
    CHECK(m.step == 0, "a refused step moved the counter");
    CHECK(cls_make(&cls, "dense4", C_B, 1), "classifier");
    CHECK(heph_vae_set_classifier(&m, &cls) == HEPH_E_MISMATCH && strstr(m.err, "4 logits"), "4 classes: %s", m.err);
    cls_free(&cls);
    CHECK(cls_make(&cls, "dense3", C_B - 1, 1), "classifier");
    CHECK(heph_vae_set_classifier(&m, &cls) == HEPH_E_MISMATCH && strstr(m.err, "max batch 2"), "batch: %s", m.err);
    cls_free(&cls);
    CHECK(m.cls == NULL, "a refused classifier was kept");
    heph_vae_free(&m);
    small_config(&cfg, 1, 4, 4, C_D, "dense6,tanh", "dense6,tanh,dense16", C_B);
    CHECK(heph_vae_init(&p, &cfg, 1) == HEPH_OK, "plain init");
    y[1] = 1;
    CHECK(heph_cvae_train_step(&p, x, y, C_B, NULL) == HEPH_E_ARG && strstr(p.err, "not conditional"), "cvae step on a plain "
          "model: %s", p.err);
    CHECK(heph_vae_set_classifier(&p, NULL) == HEPH_E_ARG, "classifier on a plain model");
    heph_vae_free(&p);
    cfg.n_classes = 1;
    CHECK(heph_vae_init(&p, &cfg, 1) == HEPH_E_ARG && strstr(p.err, "n_classes 1"), "1 class: %s", p.err);
    cfg.n_classes = 3; cfg.wrong_labels = 1.5f;
    CHECK(heph_vae_init(&p, &cfg, 1) == HEPH_E_ARG && strstr(p.err, "wrong_labels"), "wrong 1.5: %s", p.err);
    cfg.wrong_labels = 0.1f; cfg.label_weight = (float)NAN;
    CHECK(heph_vae_init(&p, &cfg, 1) == HEPH_E_ARG && strstr(p.err, "label_weight"), "lambda NaN: %s", p.err);
    cfg.label_weight = 1.0f;
    strcpy(cfg.dec_spec, "dense6,tanh,dense15");
    CHECK(heph_vae_init(&p, &cfg, 1) == HEPH_E_SPEC, "decoder of 15 values");
    return 1;
}

/* a few steps with the label loss; save, load, go on: the same bits as never stopping. The
   file is version 2; a plain model's stays version 1. A truncated file is refused. */
static int test_cvae_checkpoint(void) {
    heph_vae a, b;
    heph_net cls;
    float *x = TALLOC(float, C_B * C_NIN);
    const int y[C_B] = {2, 0, 1};
    const char *path = tpath("cvae.hpm");
    unsigned char head[12];
    FILE *f;
    int t;
    tseed(2205);
    tfill(x, C_B * C_NIN, 0.0f, 1.0f);
    CHECK(cvae_make(&a, 5.0f, C_B, 9) == HEPH_OK, "init");
    CHECK(cls_make(&cls, "dense5,tanh,dense3", C_B, 2), "classifier");
    CHECK(heph_vae_set_classifier(&a, &cls) == HEPH_OK, "classifier: %s", a.err);
    a.cfg.wrong_labels = 0.5f; /* the draws come from the model's generator, which the file keeps */
    for (t = 0; t < 3; t++) CHECK(heph_cvae_train_step(&a, x, y, C_B, NULL) == HEPH_OK, "step: %s", a.err);
    CHECK(heph_vae_save(&a, path, 0) == HEPH_OK, "save: %s", a.err);
    CHECK(heph_vae_load(&b, path) == HEPH_OK, "load: %s", b.err);
    f = fopen(path, "rb");
    CHECK(f && fread(head, 1, 12, f) == 12, "read back");
    fclose(f);
    CHECK(head[8] == 2 && head[9] == 0, "version %u, expected 2", head[8]);
    CHECK(b.cfg.n_classes == C_K && b.cfg.label_dim == C_E && b.cfg.label_weight == 5.0f && b.cfg.wrong_labels == 0.5f,
          "settings: %d %d %g %g", b.cfg.n_classes, b.cfg.label_dim, (double)b.cfg.label_weight, (double)b.cfg.wrong_labels);
    CHECK(b.n_params == a.n_params && memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0, "parameters");
    CHECK(b.cls == NULL, "a loaded model has no classifier until it is given one");
    CHECK(heph_vae_set_classifier(&b, &cls) == HEPH_OK, "classifier: %s", b.err);
    for (t = 0; t < 3; t++) {
        CHECK(heph_cvae_train_step(&a, x, y, C_B, NULL) == HEPH_OK, "a: %s", a.err);
        CHECK(heph_cvae_train_step(&b, x, y, C_B, NULL) == HEPH_OK, "b: %s", b.err);
    }
    CHECK(memcmp(a.params, b.params, 4 * a.n_params * sizeof(float)) == 0 && same_rng(&a.rng, &b.rng),
          "resumed training differs");
    heph_vae_free(&b);
    /* truncated: 4 bytes cut from the end */
    {
        unsigned char *buf;
        size_t n;
        f = fopen(path, "rb");
        CHECK(f != NULL, "open");
        fseek(f, 0, SEEK_END); n = (size_t)ftell(f); fseek(f, 0, SEEK_SET);
        buf = TALLOC(unsigned char, n);
        CHECK(fread(buf, 1, n, f) == n, "read");
        fclose(f);
        f = fopen(path, "wb");
        CHECK(f && fwrite(buf, 1, n - 4, f) == n - 4, "write");
        fclose(f);
        CHECK(heph_vae_load(&b, path) != HEPH_OK && strstr(b.err, "cvae.hpm"), "truncated: %s", b.err);
    }
    heph_vae_free(&a);
    cls_free(&cls);
    {
        heph_vae_config cfg;
        small_config(&cfg, 1, 4, 4, C_D, "dense6,tanh", "dense6,tanh,dense16", C_B);
        CHECK(heph_vae_init(&a, &cfg, 1) == HEPH_OK && heph_vae_save(&a, path, 0) == HEPH_OK, "plain save");
        f = fopen(path, "rb");
        CHECK(f && fread(head, 1, 12, f) == 12, "read back");
        fclose(f);
        CHECK(head[8] == 1, "a plain model's file is version %u, expected 1", head[8]);
        heph_vae_free(&a);
    }
    return 1;
}

/* relabel = the posterior mean of (x, y) decoded with y; another label, another picture;
   evaluate adds lambda times the label loss, and a classifier agrees with itself */
static int test_cvae_relabel_evaluate(void) {
    heph_vae m;
    heph_net cls;
    heph_losses L;
    float *x = TALLOC(float, C_B * C_NIN), *r = TALLOC(float, C_B * C_NIN), *d = TALLOC(float, C_B * C_NIN);
    float mu[C_B * C_D];
    const int y[C_B] = {1, 0, 2}, y2[C_B] = {2, 1, 0};
    tseed(2207);
    tfill(x, C_B * C_NIN, 0.0f, 1.0f);
    CHECK(cvae_make(&m, 3.0f, C_B, 4) == HEPH_OK, "init");
    heph_cvae_relabel(&m, x, y, C_B, r);
    heph_cvae_encode(&m, x, y, C_B, mu, NULL);
    heph_cvae_decode(&m, mu, y, C_B, d);
    CHECK(memcmp(r, d, sizeof(float) * C_B * C_NIN) == 0, "relabel != decode(encode)");
    heph_cvae_relabel(&m, x, y2, C_B, d);
    CHECK(memcmp(r, d, sizeof(float) * C_B * C_NIN) != 0, "another label gives the same picture");
    CHECK(heph_cvae_evaluate(&m, x, y, C_B, 7, &L) == HEPH_OK && L.label == 0.0, "evaluate without classifier");
    CHECK(cls_make(&cls, "dense3", C_B, 3), "classifier");
    CHECK(heph_vae_set_classifier(&m, &cls) == HEPH_OK, "set");
    CHECK(heph_cvae_evaluate(&m, x, y, C_B, 7, &L) == HEPH_OK, "evaluate: %s", m.err);
    CHECK(L.label > 0.0 && t_close(L.loss, L.recon + L.kl + 3.0 * L.label, 1e-12, 1e-12), "loss %g label %g", L.loss, L.label);
    {   /* the accuracy by hand: the same z (seed 7's normals), decoded, classified */
        float pic[C_B * C_NIN], lv[C_B * C_D], z[C_B * C_D];
        int b, right = 0;
        size_t i;
        heph_rng g;
        const float *lg;
        heph_rng_seed(&g, 7);
        heph_cvae_encode(&m, x, y, C_B, mu, lv);
        for (i = 0; i < C_B * C_D; i++) z[i] = mu[i] + expf(0.5f * lv[i]) * heph_rng_normal(&g);
        heph_cvae_decode(&m, z, y, C_B, pic);
        lg = heph_net_forward(&cls, pic, C_B);
        for (b = 0; b < C_B; b++) right += heph_argmax(lg + b * C_K, C_K) == y[b];
        CHECK(t_close(L.label_acc, right / (double)C_B, 1e-12, 0), "accuracy %g, by hand %d of %d", L.label_acc, right, C_B);
    }
    cls_free(&cls);
    heph_vae_free(&m);
    return 1;
}

#ifdef _OPENMP
/* the same bits for 1 and 2 threads, with wrong labels, the label loss and a classifier with
   BatchNorm (evaluation mode) */
static int test_cvae_threads_bitwise(void) {
    heph_vae a, b;
    heph_net cls;
    heph_vae_config cfg;
    enum { B = 32 };
    float *x = TALLOC(float, B * 64);
    int y[B], t, i, old = omp_get_max_threads();
    char err[HEPH_ERRLEN];
    heph_rng r;
    float *pg;
    tseed(2209);
    tfill(x, B * 64, 0.0f, 1.0f);
    for (i = 0; i < B; i++) y[i] = i % 4;
    small_config(&cfg, 1, 8, 8, 4, "conv4k3s2p1,relu,flatten,dense20,relu", "dense20,relu,dense64", B);
    cfg.n_classes = 4; cfg.label_weight = 10.0f; cfg.wrong_labels = 0.3f;
    CHECK(heph_vae_init(&a, &cfg, 5) == HEPH_OK && heph_vae_init(&b, &cfg, 5) == HEPH_OK, "init: %s", a.err);
    CHECK(heph_net_init(&cls, "conv4k3s2p1,bn,relu,flatten,dense4", 1, 8, 8, B, err, sizeof err) == HEPH_OK, "%s", err);
    pg = TALLOC(float, 2 * cls.n_params);
    heph_net_bind(&cls, pg, pg + cls.n_params);
    heph_rng_seed(&r, 1);
    heph_net_init_params(&cls, &r);
    CHECK(heph_vae_set_classifier(&a, &cls) == HEPH_OK && heph_vae_set_classifier(&b, &cls) == HEPH_OK, "set");
    omp_set_num_threads(1);
    for (t = 0; t < 4; t++) CHECK(heph_cvae_train_step(&a, x, y, B, NULL) == HEPH_OK, "%s", a.err);
    omp_set_num_threads(2);
    for (t = 0; t < 4; t++) CHECK(heph_cvae_train_step(&b, x, y, B, NULL) == HEPH_OK, "%s", b.err);
    omp_set_num_threads(old);
    CHECK(memcmp(a.params, b.params, 4 * a.n_params * sizeof(float)) == 0, "1 and 2 threads differ");
    heph_vae_free(&a); heph_vae_free(&b);
    heph_net_free(&cls);
    return 1;
}
#endif


/* ---- the cycle-consistent VAE --------------------------------------------------------------- */
enum { Y_C = 1, Y_HW = 4, Y_N = 16, Y_S = 2, Y_Z = 3, Y_B = 3 };

/* a tiny cycle VAE on 1x4x4 pictures (tanh: smooth everywhere, for finite differences) */
static int cyc_make(heph_cyc *m, const char *enc, const char *dec, int recon, uint64_t seed) {
    heph_cyc_config cfg;
    heph_cyc_config_default(&cfg);
    cfg.in_c = Y_C; cfg.in_h = cfg.in_w = Y_HW; cfg.s_dim = Y_S; cfg.z_dim = Y_Z; cfg.max_batch = Y_B;
    cfg.recon = recon;
    cfg.w_recon = 20.0f; /* the per-pixel terms' gradients well above the differences' noise */
    strcpy(cfg.enc_spec, enc);
    strcpy(cfg.dec_spec, dec);
    return heph_cyc_init(m, &cfg, seed);
}

typedef struct {
    heph_cyc *m;
    const float *x1, *x2, *eps, *r;
} cyc_ctx;

static double cyc_loss(void *p) {
    cyc_ctx *c = (cyc_ctx *)p;
    heph_cyc_losses L;
    return heph_cyc_loss_grad(c->m, c->x1, c->x2, Y_B, c->eps, c->r, &L) == HEPH_OK ? L.loss : (double)NAN;
}

/* r (B, Z) away from the kink of |mu' - r| at 0, where central differences are wrong: the
   head's input is tanh's (in [-1, 1]), so |mu'_j| <= sum_i |W_ji| + |b_j|, and r stays 0.5
   beyond that */
static void cyc_far_r(const heph_cyc *m, float *r) {
    const heph_layer *hd = &m->enc.layers[m->enc.n_layers - 1];
    int j, k, i, I = (int)(hd->n_params / (Y_S + 2 * Y_Z)) - 1;
    for (j = 0; j < Y_Z; j++) {
        double bound = fabs((double)m->params[hd->b_off + Y_S + (size_t)j]);
        for (k = 0; k < I; k++) bound += fabs((double)m->params[hd->w_off + (size_t)(Y_S + j) * (size_t)I + (size_t)k]);
        for (i = 0; i < Y_B; i++) {
            double n = tnormal();
            r[i * Y_Z + j] = (float)((n < 0.0 ? -1.0 : 1.0) * (bound + 0.5 + 0.25 * fabs(n)));
        }
    }
}

/* both cycles' gradient w.r.t. every parameter against central differences, for Gaussian and
   Bernoulli reconstructions and an encoder with BatchNorm (the batch's statistics in all
   four passes), with HEPH_CYC_REVERSE_ALL; the reverse cycle reaches the decoder and the
   encoder */
static int cyc_gradcheck(const char *enc, int recon, float wrev, float h, double rtol, const char *name) {
    heph_cyc m;
    cyc_ctx c;
    heph_cyc_losses L;
    float x1[Y_B * Y_N], x2[Y_B * Y_N], eps[2 * Y_B * Y_Z], r[Y_B * Y_Z], *ga;
    size_t i;
    CHECK(cyc_make(&m, enc, "dense6,tanh,dense16", recon, 31) == HEPH_OK, "%s: init: %s", name, m.err);
    m.cfg.w_reverse = wrev;
    m.cfg.reverse_grad = HEPH_CYC_REVERSE_ALL; /* one objective: every term, every parameter */
    for (i = 0; i < m.n_params; i++) m.params[i] *= 2.0f;
    tfill(x1, Y_B * Y_N, 0.0f, 1.0f);
    tfill(x2, Y_B * Y_N, 0.0f, 1.0f);
    for (i = 0; i < 2 * Y_B * Y_Z; i++) eps[i] = (float)tnormal();
    cyc_far_r(&m, r);
    CHECK(heph_cyc_loss_grad(&m, x1, x2, Y_B, eps, r, &L) == HEPH_OK, "%s: %s", name, m.err);
    CHECK(L.recon > 0.0 && L.kl > 0.0 && L.reverse > 0.0 &&
          t_close(L.loss, 20.0 * L.recon + 3.0 * L.kl + (double)wrev * L.reverse, 1e-12, 1e-12),
          "%s: loss %g recon %g kl %g reverse %g", name, L.loss, L.recon, L.kl, L.reverse);
    ga = TALLOC(float, m.n_params);
    memcpy(ga, m.grads, m.n_params * sizeof(float));
    c.m = &m; c.x1 = x1; c.x2 = x2; c.eps = eps; c.r = r;
    /* atol: |mu' - r| (about 3.5) in float loses ~2e-7 per value, ~3e-5 in a difference */
    REQUIRE(gradcheck(name, cyc_loss, &c, m.params, ga, m.n_params, h, 1e-4, rtol));
    m.cfg.w_reverse = 0.0f; /* without the reverse cycle, both networks' gradients change */
    CHECK(heph_cyc_loss_grad(&m, x1, x2, Y_B, eps, r, &L) == HEPH_OK, "%s", m.err);
    CHECK(memcmp(ga, m.grads, m.enc.n_params * sizeof(float)) != 0 &&
          memcmp(ga + m.enc.n_params, m.grads + m.enc.n_params, m.dec.n_params * sizeof(float)) != 0,
          "%s: the reverse cycle does not reach both networks", name);
    heph_cyc_free(&m);
    return 1;
}

static int test_cyc_gradcheck(void) {
    tseed(2301);
    REQUIRE(cyc_gradcheck("dense6,tanh", HEPH_RECON_GAUSSIAN, 10.0f, 1e-2f, 5e-3, "cyc gaussian"));
    REQUIRE(cyc_gradcheck("dense6,tanh", HEPH_RECON_BERNOULLI, 10.0f, 1e-2f, 5e-3, "cyc bernoulli"));
    /* BatchNorm over 6 pictures curves the loss strongly: a smaller step (central differences
       of one weight went -0.245, -0.192, -0.1859 for steps 3e-2, 1e-2, 3e-3, the gradient
       -0.1855), so less float noise: the reverse term (|r| beyond the bound) weighs 1 */
    REQUIRE(cyc_gradcheck("dense6,bn,tanh", HEPH_RECON_GAUSSIAN, 1.0f, 3e-3f, 1e-2, "cyc batchnorm"));
    return 1;
}

/* the default reverse_grad (HEPH_CYC_REVERSE_ENCODER): the decoder's gradient is the one
   without the reverse term, and the encoder's gains exactly the gradient of
   w_reverse mean |mu(p) - r| over its weights with the decodes p held as given pictures
   (finite differences of that function, computed from the public encode and decode) */
static double cyc_rev_ctx_loss(void *p);
typedef struct {
    heph_cyc *m;
    const float *pics, *r;
} cyc_rev_ctx;
static double cyc_rev_ctx_loss(void *p) {
    cyc_rev_ctx *c = (cyc_rev_ctx *)p;
    float mu[2 * Y_B * Y_Z];
    double sum = 0.0;
    int i;
    heph_cyc_encode(c->m, c->pics, 2 * Y_B, NULL, mu, NULL);
    for (i = 0; i < 2 * Y_B * Y_Z; i++) sum += fabs((double)mu[i] - (double)c->r[(i / Y_Z) % Y_B * Y_Z + i % Y_Z]);
    return (double)c->m->cfg.w_reverse * sum / (2.0 * Y_B * Y_Z);
}
static int test_cyc_reverse_encoder_only(void) {
    heph_cyc m;
    heph_cyc_losses L;
    cyc_rev_ctx c;
    float x1[Y_B * Y_N], x2[Y_B * Y_N], eps[2 * Y_B * Y_Z], r[Y_B * Y_Z], s[Y_B * Y_S], ss[2 * Y_B * Y_S];
    float rr[2 * Y_B * Y_Z], pics[2 * Y_B * Y_N], *g1, *g0;
    size_t i;
    int b;
    tseed(2306);
    CHECK(cyc_make(&m, "dense6,tanh", "dense6,tanh,dense16", HEPH_RECON_GAUSSIAN, 36) == HEPH_OK, "%s", m.err);
    CHECK(m.cfg.reverse_grad == HEPH_CYC_REVERSE_ENCODER, "the default is %d", m.cfg.reverse_grad);
    for (i = 0; i < m.n_params; i++) m.params[i] *= 2.0f;
    tfill(x1, Y_B * Y_N, 0.0f, 1.0f);
    tfill(x2, Y_B * Y_N, 0.0f, 1.0f);
    for (i = 0; i < 2 * Y_B * Y_Z; i++) eps[i] = (float)tnormal();
    cyc_far_r(&m, r);
    g1 = TALLOC(float, m.n_params);
    g0 = TALLOC(float, m.n_params);
    CHECK(heph_cyc_loss_grad(&m, x1, x2, Y_B, eps, r, &L) == HEPH_OK && L.reverse > 0.0, "%s", m.err);
    memcpy(g1, m.grads, m.n_params * sizeof(float));
    m.cfg.w_reverse = 0.0f;
    CHECK(heph_cyc_loss_grad(&m, x1, x2, Y_B, eps, r, &L) == HEPH_OK, "%s", m.err);
    memcpy(g0, m.grads, m.n_params * sizeof(float));
    m.cfg.w_reverse = 10.0f;
    for (i = m.enc.n_params; i < m.n_params; i++) CHECK(g1[i] == g0[i], "decoder gradient %zu changed", i);
    for (i = 0; i < m.enc.n_params; i++) g1[i] -= g0[i]; /* the reverse term's share */
    heph_cyc_encode(&m, x1, Y_B, s, NULL, NULL); /* the decodes: [s_b | r_b], [s_b+1 | r_b] */
    for (b = 0; b < Y_B; b++) {
        memcpy(ss + b * Y_S, s + b * Y_S, sizeof(float) * Y_S);
        memcpy(ss + (Y_B + b) * Y_S, s + (b + 1) % Y_B * Y_S, sizeof(float) * Y_S);
        memcpy(rr + b * Y_Z, r + b * Y_Z, sizeof(float) * Y_Z);
        memcpy(rr + (Y_B + b) * Y_Z, r + b * Y_Z, sizeof(float) * Y_Z);
    }
    heph_cyc_decode(&m, ss, rr, 2 * Y_B, pics);
    c.m = &m; c.pics = pics; c.r = r;
    CHECK(t_close(cyc_rev_ctx_loss(&c), 10.0 * L.reverse, 1e-6, 1e-6), "reverse %.9g, by hand %.9g", 10.0 * L.reverse,
          cyc_rev_ctx_loss(&c));
    REQUIRE(gradcheck("reverse term, encoder only", cyc_rev_ctx_loss, &c, m.params, g1, m.enc.n_params, 1e-2f, 1e-4, 5e-3));
    heph_cyc_free(&m);
    return 1;
}

/* the bookkeeping, recomputed from the public encode and decode: x1[b] is rebuilt from x2[b]'s
   s and its own z, x2[b] from x1[b]'s s; the reverse cycle decodes r_b with s of x1[b] and
   of x1[b+1 mod B]; the KL of both; every value per pixel or per latent */
static int test_cyc_bookkeeping(void) {
    heph_cyc m;
    heph_cyc_losses L;
    float x1[Y_B * Y_N], x2[Y_B * Y_N], eps[2 * Y_B * Y_Z], r[Y_B * Y_Z];
    float s[2 * Y_B * Y_S], mu[2 * Y_B * Y_Z], lv[2 * Y_B * Y_Z], z[2 * Y_B * Y_Z], ss[2 * Y_B * Y_S];
    float rz[2 * Y_B * Y_Z], pic[2 * Y_B * Y_N], mu2[2 * Y_B * Y_Z], xx[2 * Y_B * Y_N];
    double rec = 0.0, kl = 0.0, rev = 0.0;
    int b, j;
    tseed(2302);
    CHECK(cyc_make(&m, "dense6,tanh", "dense6,tanh,dense16", HEPH_RECON_GAUSSIAN, 32) == HEPH_OK, "%s", m.err);
    tfill(x1, Y_B * Y_N, 0.0f, 1.0f);
    tfill(x2, Y_B * Y_N, 0.0f, 1.0f);
    for (j = 0; j < 2 * Y_B * Y_Z; j++) eps[j] = (float)tnormal();
    for (j = 0; j < Y_B * Y_Z; j++) r[j] = (float)tnormal();
    CHECK(heph_cyc_loss_grad(&m, x1, x2, Y_B, eps, r, &L) == HEPH_OK, "%s", m.err);
    memcpy(xx, x1, sizeof x1);
    memcpy(xx + Y_B * Y_N, x2, sizeof x2);
    heph_cyc_encode(&m, xx, 2 * Y_B, s, mu, lv);
    for (b = 0; b < 2 * Y_B; b++) {
        int partner = b < Y_B ? b + Y_B : b - Y_B;
        memcpy(ss + b * Y_S, s + partner * Y_S, Y_S * sizeof(float));
        for (j = 0; j < Y_Z; j++) {
            int k = b * Y_Z + j;
            z[k] = mu[k] + expf(0.5f * lv[k]) * eps[k];
            kl += -0.5 * (1.0 + (double)lv[k] - (double)mu[k] * (double)mu[k] - exp((double)lv[k]));
        }
    }
    heph_cyc_decode(&m, ss, z, 2 * Y_B, pic);
    for (j = 0; j < 2 * Y_B * Y_N; j++) rec += ((double)pic[j] - (double)xx[j]) * ((double)pic[j] - (double)xx[j]);
    for (b = 0; b < Y_B; b++) {
        memcpy(ss + b * Y_S, s + b * Y_S, Y_S * sizeof(float));
        memcpy(ss + (Y_B + b) * Y_S, s + ((b + 1) % Y_B) * Y_S, Y_S * sizeof(float));
        memcpy(rz + b * Y_Z, r + b * Y_Z, Y_Z * sizeof(float));
        memcpy(rz + (Y_B + b) * Y_Z, r + b * Y_Z, Y_Z * sizeof(float));
    }
    heph_cyc_decode(&m, ss, rz, 2 * Y_B, pic);
    heph_cyc_encode(&m, pic, 2 * Y_B, NULL, mu2, NULL);
    for (j = 0; j < 2 * Y_B * Y_Z; j++) rev += fabs((double)mu2[j] - (double)rz[j]);
    rec /= 2.0 * Y_B * Y_N; kl /= 2.0 * Y_B * Y_N; rev /= 2.0 * Y_B * Y_Z;
    CHECK(t_close(L.recon, rec, 1e-7, 1e-5), "recon %.9g, by hand %.9g", L.recon, rec);
    CHECK(t_close(L.kl, kl, 1e-7, 1e-5), "KL %.9g, by hand %.9g", L.kl, kl);
    CHECK(t_close(L.reverse, rev, 1e-7, 1e-5), "reverse %.9g, by hand %.9g", L.reverse, rev);
    /* transfer = decode(s of the first, mu of the second), bit for bit */
    heph_cyc_transfer(&m, x1, x2, Y_B, pic);
    heph_cyc_decode(&m, s, mu + Y_B * Y_Z, Y_B, pic + Y_B * Y_N);
    CHECK(memcmp(pic, pic + Y_B * Y_N, Y_B * Y_N * sizeof(float)) == 0, "transfer != decode(s1, mu2)");
    heph_cyc_free(&m);
    return 1;
}

/* training lowers the loss; evaluate changes nothing and repeats itself; bad batches, bad
   configurations and NaN pictures are refused with the model untouched */
static int test_cyc_train_refusals(void) {
    heph_cyc m;
    heph_cyc_config cfg;
    heph_cyc_losses L0, L1, E0, E1;
    float x1[Y_B * Y_N], x2[Y_B * Y_N], *before;
    int t;
    tseed(2303);
    CHECK(cyc_make(&m, "dense8,relu", "dense8,relu,dense16", HEPH_RECON_BERNOULLI, 33) == HEPH_OK, "%s", m.err);
    m.cfg.lr = 1e-2f;
    tfill(x1, Y_B * Y_N, 0.0f, 1.0f);
    memcpy(x2, x1, sizeof x1); /* pairs of the same picture */
    CHECK(heph_cyc_evaluate(&m, x1, x2, Y_B, 9, &E0) == HEPH_OK, "%s", m.err);
    for (t = 0; t < 200; t++) CHECK(heph_cyc_train_step(&m, x1, x2, Y_B, t ? &L1 : &L0) == HEPH_OK, "%s", m.err);
    CHECK(m.step == 200 && L1.loss < 0.8 * L0.loss, "200 steps: loss %g -> %g", L0.loss, L1.loss);
    before = TALLOC(float, 4 * m.n_params);
    memcpy(before, m.params, 4 * m.n_params * sizeof(float));
    CHECK(heph_cyc_evaluate(&m, x1, x2, Y_B, 9, &E0) == HEPH_OK && heph_cyc_evaluate(&m, x1, x2, Y_B, 9, &E1) == HEPH_OK,
          "%s", m.err);
    CHECK(memcmp(&E0, &E1, sizeof E0) == 0 && E0.loss < L0.loss, "evaluate %g then %g", E0.loss, E1.loss);
    CHECK(heph_cyc_train_step(&m, x1, x2, 0, NULL) == HEPH_E_ARG && heph_cyc_train_step(&m, x1, x2, Y_B + 1, NULL) == HEPH_E_ARG,
          "batch out of range accepted");
    x1[5] = NAN;
    CHECK(heph_cyc_train_step(&m, x1, x2, Y_B, NULL) == HEPH_E_NAN && strstr(m.err, "not finite"), "NaN: %s", m.err);
    CHECK(memcmp(before, m.params, m.n_params * sizeof(float)) == 0 && m.step == 200 &&
          memcmp(before + 2 * m.n_params, m.adam_m, 2 * m.n_params * sizeof(float)) == 0,
          "a refused step changed the parameters or Adam's moments");
    heph_cyc_free(&m);
    heph_cyc_config_default(&cfg);
    strcpy(cfg.dec_spec, "dense10"); /* 10 values for a 28x28 picture */
    CHECK(heph_cyc_init(&m, &cfg, 1) == HEPH_E_SPEC && strstr(m.err, "784"), "decoder size: %s", m.err);
    heph_cyc_config_default(&cfg);
    cfg.s_dim = 0;
    CHECK(heph_cyc_init(&m, &cfg, 1) == HEPH_E_ARG && strstr(m.err, "s_dim"), "s_dim 0: %s", m.err);
    CHECK(heph_cyc_config_preset(&cfg, "no-such") == HEPH_E_ARG, "unknown preset");
    CHECK(heph_cyc_config_preset(&cfg, "cyc-mnist") == HEPH_OK && heph_cyc_init(&m, &cfg, 1) == HEPH_OK, "cyc-mnist: %s", m.err);
    heph_cyc_free(&m);
    CHECK(heph_cyc_config_preset(&cfg, "cyc-sprites") == HEPH_OK && heph_cyc_init(&m, &cfg, 1) == HEPH_OK, "cyc-sprites: %s", m.err);
    heph_cyc_free(&m);
    return 1;
}


/* a checkpoint resumes exactly (3 + 3 steps = 6 steps); a weights-only file decodes the same;
   a damaged, truncated or foreign file is refused with the file's name and nothing to free */
static int test_cyc_checkpoint(void) {
    heph_cyc a, b, c;
    float x1[Y_B * Y_N], x2[Y_B * Y_N], s[Y_B * Y_S], mu[Y_B * Y_Z], pa[Y_B * Y_N], pb[Y_B * Y_N];
    const char *path = tpath("cyc.hpc"), *wpath = tpath("cyc_w.hpc"), *bad = tpath("cyc_bad.hpc");
    unsigned char *bytes;
    size_t n;
    int t;
    tseed(2305);
    tfill(x1, Y_B * Y_N, 0.0f, 1.0f);
    tfill(x2, Y_B * Y_N, 0.0f, 1.0f);
    CHECK(cyc_make(&a, "dense6,bn,tanh", "dense6,tanh,dense16", HEPH_RECON_GAUSSIAN, 34) == HEPH_OK &&
          cyc_make(&b, "dense6,bn,tanh", "dense6,tanh,dense16", HEPH_RECON_GAUSSIAN, 34) == HEPH_OK, "init: %s", a.err);
    a.cfg.reverse_grad = b.cfg.reverse_grad = HEPH_CYC_REVERSE_ALL; /* not the default: stored too */
    for (t = 0; t < 6; t++) CHECK(heph_cyc_train_step(&a, x1, x2, Y_B, NULL) == HEPH_OK, "%s", a.err);
    for (t = 0; t < 3; t++) CHECK(heph_cyc_train_step(&b, x1, x2, Y_B, NULL) == HEPH_OK, "%s", b.err);
    CHECK(heph_cyc_save(&b, path, 0) == HEPH_OK && heph_cyc_save(&b, wpath, HEPH_SAVE_WEIGHTS_ONLY) == HEPH_OK, "%s", b.err);
    heph_cyc_free(&b);
    CHECK(heph_cyc_load(&b, path) == HEPH_OK, "load: %s", b.err);
    CHECK(b.step == 3 && b.cfg.s_dim == Y_S && b.cfg.w_reverse == 10.0f && b.cfg.w_recon == 20.0f &&
          b.cfg.reverse_grad == HEPH_CYC_REVERSE_ALL, "fields: step %llu",
          (unsigned long long)b.step);
    for (t = 0; t < 3; t++) CHECK(heph_cyc_train_step(&b, x1, x2, Y_B, NULL) == HEPH_OK, "%s", b.err);
    CHECK(memcmp(a.params, b.params, 4 * a.n_params * sizeof(float)) == 0 && b.step == 6, "3 + 3 steps != 6 steps");
    CHECK(heph_cyc_load(&c, wpath) == HEPH_OK, "weights only: %s", c.err);
    heph_cyc_encode(&c, x1, Y_B, s, mu, NULL);
    heph_cyc_decode(&c, s, mu, Y_B, pa);
    heph_cyc_free(&c);
    CHECK(heph_cyc_load(&c, path) == HEPH_OK, "%s", c.err);
    heph_cyc_encode(&c, x1, Y_B, s, mu, NULL);
    heph_cyc_decode(&c, s, mu, Y_B, pb);
    CHECK(memcmp(pa, pb, sizeof pa) == 0, "the weights-only file decodes differently");
    heph_cyc_free(&c);
    bytes = read_bytes(path, &n);
    CHECK(bytes && n > 100, "read %s", path);
    bytes[n / 2] ^= 1;
    CHECK(write_bytes(bad, bytes, n) && heph_cyc_load(&c, bad) == HEPH_E_CHECKSUM && strstr(c.err, "cyc_bad.hpc"),
          "flipped byte: %s", c.err);
    bytes[n / 2] ^= 1;
    CHECK(write_bytes(bad, bytes, n - 9) && heph_cyc_load(&c, bad) != HEPH_OK, "truncated file loaded");
    bytes[6] = 'M'; /* "HEPHHPM": a VAE checkpoint's magic */
    CHECK(write_bytes(bad, bytes, n) && heph_cyc_load(&c, bad) == HEPH_E_FORMAT && strstr(c.err, "HEPHHPC"), "magic: %s", c.err);
    {   /* a plain VAE's checkpoint is not a cycle VAE's, and the reverse */
        heph_vae v;
        CHECK(heph_vae_load(&v, path) == HEPH_E_FORMAT && strstr(v.err, "magic"), "vae loads a .hpc: %s", v.err);
    }
    heph_cyc_free(&a); heph_cyc_free(&b);
    return 1;
}

#ifdef _OPENMP
/* the same bits for 1 and 2 threads: convolutions, BatchNorm, both cycles */
static int test_cyc_threads_bitwise(void) {
    heph_cyc a, b;
    heph_cyc_config cfg;
    enum { B = 16 };
    float *x1 = TALLOC(float, B * 64), *x2 = TALLOC(float, B * 64);
    int t, old = omp_get_max_threads();
    tseed(2304);
    tfill(x1, B * 64, 0.0f, 1.0f);
    tfill(x2, B * 64, 0.0f, 1.0f);
    heph_cyc_config_default(&cfg);
    cfg.in_h = cfg.in_w = 8; cfg.s_dim = 3; cfg.z_dim = 2; cfg.max_batch = B;
    strcpy(cfg.enc_spec, "conv4k3s2p1,bn,lrelu0.2,flatten,dense20,relu");
    strcpy(cfg.dec_spec, "dense64,relu,reshape4x4x4,convt1k4s2p1");
    CHECK(heph_cyc_init(&a, &cfg, 5) == HEPH_OK && heph_cyc_init(&b, &cfg, 5) == HEPH_OK, "init: %s", a.err);
    omp_set_num_threads(1);
    for (t = 0; t < 4; t++) CHECK(heph_cyc_train_step(&a, x1, x2, B, NULL) == HEPH_OK, "%s", a.err);
    omp_set_num_threads(2);
    for (t = 0; t < 4; t++) CHECK(heph_cyc_train_step(&b, x1, x2, B, NULL) == HEPH_OK, "%s", b.err);
    omp_set_num_threads(old);
    CHECK(memcmp(a.params, b.params, 4 * a.n_params * sizeof(float)) == 0, "1 and 2 threads differ");
    heph_cyc_free(&a); heph_cyc_free(&b);
    return 1;
}
#endif

/* ============================================================================================ */

static const t_test tests[] = {
    {"exact_resume", test_exact_resume},
    {"evaluate", test_evaluate},
    {"nan_guard", test_nan_guard},
    {"end_to_end", test_end_to_end},
#ifdef _OPENMP
    {"threads_bitwise", test_threads_bitwise},
    {"threads_switch", test_threads_switch},
#endif
    {"tuner", test_tuner},
    {"cvae_gradcheck", test_cvae_gradcheck},
    {"cvae_wrong_labels", test_cvae_wrong_labels},
    {"cvae_refusals", test_cvae_refusals},
    {"cvae_checkpoint", test_cvae_checkpoint},
    {"cvae_relabel_evaluate", test_cvae_relabel_evaluate},
#ifdef _OPENMP
    {"cvae_threads_bitwise", test_cvae_threads_bitwise},
#endif
    {"cyc_gradcheck", test_cyc_gradcheck},
    {"cyc_reverse_encoder_only", test_cyc_reverse_encoder_only},
    {"cyc_bookkeeping", test_cyc_bookkeeping},
    {"cyc_train_refusals", test_cyc_train_refusals},
    {"cyc_checkpoint", test_cyc_checkpoint},
#ifdef _OPENMP
    {"cyc_threads_bitwise", test_cyc_threads_bitwise},
#endif
};
T_MAIN(tests)
