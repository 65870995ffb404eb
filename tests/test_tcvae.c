/* test_tcvae.c - the beta-TCVAE objective: MSS weight rows, the telescoping identity
   MI + TC + DWKL = mean(log q(z|x) - log p(z)) for both estimators, finite-difference gradients
   of heph_tc_terms, and a gradient check of a whole VAE trained with it.
   The _mws/_mss tests run once per estimator. Harness and usage: tests/test_harness.h.      */
#include "test_harness.h"

/* MSS: every row of exp(log w) sums to 1 and the diagonal (the sample's own component) is 1/N;
   MWS: every weight is 1/(N B) */
static int test_mss_weights(void) {
    int B, i, k, ok = 1, diag = 1;
    char msg[160] = "";
    for (B = 2; B <= 9; B += 7) {
        for (i = 0; i < B; i++) {
            double s = 0.0;
            for (k = 0; k < B; k++) s += exp((double)heph_tc_log_weight(HEPH_TC_MSS, i, k, B, 1000));
            if (fabs(s - 1.0) > 1e-6) { ok = 0; snprintf(msg, sizeof msg, "B %d row %d sums to %.9g", B, i, s); }
            if (fabs(exp((double)heph_tc_log_weight(HEPH_TC_MSS, i, i, B, 1000)) - 1e-3) > 1e-9) diag = 0;
        }
    }
    CHECK(ok, "MSS rows do not sum to 1: %s", msg);
    CHECK(diag, "the MSS diagonal weight (the sample's own component) is not 1/N");
    return 1;
}
static int test_mws_weight(void) {
    double w = exp((double)heph_tc_log_weight(HEPH_TC_MWS, 3, 1, 8, 100));
    CHECK(fabs(w - 1.0 / 800.0) < 1e-9, "MWS weight is not 1/(N B)");
    return 1;
}

static void fill(float *x, size_t n, heph_rng *r, float scale, float shift) {
    size_t i;
    for (i = 0; i < n; i++) x[i] = shift + scale * heph_rng_normal(r);
}

/* mean over i of log q(z_i|x_i) - log p(z_i) */
static double mc_kl(const float *z, const float *mu, const float *lv, int B, int D) {
    double s = 0.0;
    int i, j;
    for (i = 0; i < B; i++)
        for (j = 0; j < D; j++) {
            size_t t = (size_t)i * (size_t)D + (size_t)j;
            double d = (double)z[t] - (double)mu[t];
            s += -0.5 * ((double)lv[t] + d * d * exp(-(double)lv[t])) + 0.5 * (double)z[t] * (double)z[t];
        }
    return s / B;
}

/* heph_tc_terms with every field as an argument (the tests below pass many combinations) */
static void tc_args(const float *z, int ldz, const float *mu, const float *lv, int ldh, int B, int D, uint64_t N,
                    int est, float a, float b, float g, double *mi, double *tc, double *dw, float *dz, float *dmu,
                    float *dlv, float *scratch) {
    heph_tc_batch t;
    memset(&t, 0, sizeof t);
    t.z = z; t.ldz = ldz; t.mu = mu; t.logvar = lv; t.ldh = ldh; t.B = B; t.D = D; t.N = N;
    t.estimator = est; t.alpha = a; t.beta = b; t.gamma = g;
    t.dz = dz; t.dmu = dmu; t.dlogvar = dlv; t.scratch = scratch;
    heph_tc_terms(&t);
    *mi = t.mi; *tc = t.tc; *dw = t.dwkl;
}

/* est: 0 MWS, 1 MSS */
static int telescoping(int est) {
    int B = 16, D = 5;
    float z[16 * 5], mu[16 * 5], lv[16 * 5], scratch[18 * 16];
    heph_rng r;
    heph_rng_seed(&r, 11);
    fill(mu, sizeof mu / 4, &r, 1.0f, 0.0f);
    fill(lv, sizeof lv / 4, &r, 0.5f, -1.0f);
    fill(z, sizeof z / 4, &r, 1.0f, 0.0f);
    {
        double mi, tc, dw, want = mc_kl(z, mu, lv, B, D);
        tc_args(z, D, mu, lv, D, B, D, 5000, est, 1.0f, 1.0f, 1.0f, &mi, &tc, &dw, NULL, NULL, NULL, scratch);
        CHECK(fabs(mi + tc + dw - want) < 1e-4 * fmax(1.0, fabs(want)),
              "MI %.6f + TC %.6f + DWKL %.6f = %.6f, log q(z|x) - log p(z) = %.6f", mi, tc, dw, mi + tc + dw, want);
    }
    return 1;
}
static int test_telescoping_mws(void) { return telescoping(0); }
static int test_telescoping_mss(void) { return telescoping(1); }

/* finite differences of F = a MI + b TC + g DWKL wrt z, mu, logvar */
static double tc_obj(const float *z, const float *mu, const float *lv, int B, int D, int est, float *scratch) {
    double mi, tc, dw;
    tc_args(z, D, mu, lv, D, B, D, 300, est, 0.7f, 4.5f, 1.3f, &mi, &tc, &dw, NULL, NULL, NULL, scratch);
    return 0.7 * mi + 4.5 * tc + 1.3 * dw;
}

static int tc_grad(int est) {
    int B = 6, D = 3;
    {
        float z[18], mu[18], lv[18], dz[18] = {0}, dmu[18] = {0}, dlv[18] = {0}, scratch[8 * 6];
        double mi, tc, dw, maxe = 0.0;
        heph_rng r;
        size_t t;
        heph_rng_seed(&r, 21 + (uint64_t)est);
        fill(mu, 18, &r, 1.0f, 0.0f);
        fill(lv, 18, &r, 0.4f, -0.5f);
        fill(z, 18, &r, 1.0f, 0.0f);
        tc_args(z, D, mu, lv, D, B, D, 300, est, 0.7f, 4.5f, 1.3f, &mi, &tc, &dw, dz, dmu, dlv, scratch);
        for (t = 0; t < 18; t++) {
            float *arrs[3] = {z, mu, lv}, *grads[3] = {dz, dmu, dlv};
            int a;
            for (a = 0; a < 3; a++) {
                float o = arrs[a][t];
                double p, m, num, e;
                arrs[a][t] = o + 1e-3f; p = tc_obj(z, mu, lv, B, D, est, scratch);
                arrs[a][t] = o - 1e-3f; m = tc_obj(z, mu, lv, B, D, est, scratch);
                arrs[a][t] = o;
                num = (p - m) / 2e-3;
                e = fabs(num - (double)grads[a][t]) / fmax(0.1, fabs(num));
                if (e > maxe) maxe = e;
            }
        }
        CHECK(maxe < 5e-3, "worst relative error %.3g (limit 5e-3)", maxe);
    }
    return 1;
}
static int test_tc_grad_mws(void) { return tc_grad(0); }
static int test_tc_grad_mss(void) { return tc_grad(1); }

static int vae_grad(int est) {
    {
        heph_vae_config cfg;
        heph_vae m;
        heph_rng r;
        float x[4 * 16], eps[4 * 3], *g;
        size_t i;
        double maxe = 0.0;
        heph_losses L;
        heph_vae_config_default(&cfg);
        cfg.in_c = 1; cfg.in_h = 4; cfg.in_w = 4; cfg.z_dim = 3; cfg.max_batch = 4;
        strcpy(cfg.enc_spec, "dense6,tanh");
        strcpy(cfg.dec_spec, "dense6,tanh,dense16");
        cfg.obj.kind = HEPH_OBJ_TCVAE; cfg.obj.estimator = est;
        cfg.obj.alpha = 1.0f; cfg.obj.beta = 6.0f; cfg.obj.gamma = 1.0f;
        cfg.obj.ramp_steps = 0; cfg.obj.dataset_size = 1000;
        CHECK(heph_vae_init(&m, &cfg, 3) == HEPH_OK, "init: %s", m.err);
        heph_rng_seed(&r, 5);
        for (i = 0; i < 64; i++) x[i] = heph_rng_uniform(&r);
        for (i = 0; i < 12; i++) eps[i] = heph_rng_normal(&r);
        heph_vae_loss_grad(&m, x, 4, eps, &L);
        g = (float *)malloc(m.n_params * sizeof(float));
        memcpy(g, m.grads, m.n_params * sizeof(float));
        for (i = 0; i < m.n_params; i++) {
            float o = m.params[i];
            double lp, lm, num, e;
            m.params[i] = o + 1e-2f; heph_vae_loss_grad(&m, x, 4, eps, &L); lp = L.loss;
            m.params[i] = o - 1e-2f; heph_vae_loss_grad(&m, x, 4, eps, &L); lm = L.loss;
            m.params[i] = o;
            num = (lp - lm) / 2e-2;
            e = fabs(num - (double)g[i]) / fmax(0.05, fabs(num));
            if (e > maxe) maxe = e;
        }
        i = m.n_params;
        free(g);
        heph_vae_free(&m);
        CHECK(maxe < 2e-2, "%zu parameters, worst relative error %.3g (limit 2e-2); MI %.3f TC %.3f DWKL %.3f",
              i, maxe, L.mi, L.tc, L.dwkl);
    }
    return 1;
}
static int test_vae_grad_mws(void) { return vae_grad(0); }
static int test_vae_grad_mss(void) { return vae_grad(1); }

/* the annealed DWKL weight rises linearly and training lowers the loss */
static int test_anneal_and_training(void) {
    heph_vae_config cfg;
    heph_vae m;
    heph_rng r;
    float *x;
    heph_losses L;
    int s, i;
    double first = 0.0, last = 0.0, g10 = -1.0;
    memset(&L, 0, sizeof L); /* train_step leaves L unwritten when it fails (-O3 warns) */
    heph_vae_config_default(&cfg);
    cfg.in_c = 1; cfg.in_h = 8; cfg.in_w = 8; cfg.z_dim = 4; cfg.max_batch = 32;
    strcpy(cfg.enc_spec, "dense32,relu");
    strcpy(cfg.dec_spec, "dense32,relu,dense64");
    cfg.obj.kind = HEPH_OBJ_TCVAE; cfg.obj.beta = 4.0f; cfg.obj.ramp_steps = 20; cfg.obj.dataset_size = 512;
    cfg.lr = 3e-3f;
    heph_vae_init(&m, &cfg, 1);
    x = (float *)malloc(512 * 64 * sizeof(float));
    heph_rng_seed(&r, 2);
    for (i = 0; i < 512; i++) { /* a bar at a random row or column */
        int rowcol = (int)heph_rng_below(&r, 16), t;
        for (t = 0; t < 64; t++) x[i * 64 + t] = (rowcol < 8 ? (t / 8 == rowcol) : (t % 8 == rowcol - 8)) ? 1.0f : 0.0f;
    }
    for (s = 0; s < 300; s++) {
        heph_vae_train_step(&m, x + (size_t)(s % 16) * 32 * 64, 32, &L);
        if (s == 10) g10 = L.gamma;
        if (s < 20) first += L.loss / 20;
        if (s >= 280) last += L.loss / 20;
    }
    free(x);
    heph_vae_free(&m);
    CHECK(fabs(g10 - 0.5) < 1e-9, "DWKL weight at step 10 of 20 is %g, not 0.5", g10);
    CHECK(last < 0.8 * first, "loss first 20 steps %.2f, last 20 %.2f", first, last);
    return 1;
}

static const t_test tests[] = {
    {"mss_weights", test_mss_weights},
    {"mws_weight_is_1_over_NB", test_mws_weight},
    {"telescoping_mws", test_telescoping_mws},
    {"telescoping_mss", test_telescoping_mss},
    {"tc_terms_gradient_mws", test_tc_grad_mws},
    {"tc_terms_gradient_mss", test_tc_grad_mss},
    {"tcvae_vae_grad_all_params_mws", test_vae_grad_mws},
    {"tcvae_vae_grad_all_params_mss", test_vae_grad_mss},
    {"tcvae_anneal_and_training", test_anneal_and_training},
};
T_MAIN(tests)
