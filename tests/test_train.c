/* test_train.c - training: exact resume from a checkpoint, evaluation and sampling, the NaN
   guard, a short end-to-end training on random bars, and (OpenMP builds) the same bits on 1
   and 2 threads. Harness and usage: tests/test_harness.h. */
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
};
T_MAIN(tests)
