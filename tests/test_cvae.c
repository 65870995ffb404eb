/* test_cvae.c - the conditional VAE (issue #22 item 3): the whole objective, label loss through
   a frozen classifier included, against finite differences for every parameter (encoder,
   decoder and both label tables); the wrong-label draw; refusals (plain calls on a conditional
   model and the reverse, labels out of range, a classifier of the wrong shape, settings out of
   range); the version-2 checkpoint round trip and an exact resume; relabelling and evaluation;
   the same bits for 1 and 2 threads. Harness and usage: tests/test_harness.h. */
#include "test_harness.h"
#ifdef _OPENMP
#include <omp.h>
#endif

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

static int test_gradcheck(void) {
    tseed(2201);
    REQUIRE(cvae_gradcheck(0, "cvae without classifier"));
    REQUIRE(cvae_gradcheck(1, "cvae with the label loss"));
    return 1;
}

/* the wrong-label draw: a share wrong_labels of the pictures gets another label, uniform
   over the other K - 1; 0 and 1 are exact */
static int test_wrong_labels(void) {
    heph_vae_config cfg;
    heph_vae m;
    enum { N = 100000, K = 10 };
    int *y = TALLOC(int, N), *g = TALLOC(int, N), i, changed = 0;
    long by_offset[K] = {0};
    small_config(&cfg, 1, 4, 4, 2, "", "dense16", 64); /* the draw takes any B: it touches no model buffer */
    cfg.n_classes = K;
    CHECK(heph_vae_init(&m, &cfg, 3) == HEPH_OK, "init: %s", m.err);
    CHECK(m.cfg.label_dim == K && t_close(m.cfg.wrong_labels, 0.1, 0, 1e-7), "defaults: label_dim %d, wrong %g",
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
static int test_refusals(void) {
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
static int test_checkpoint(void) {
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
static int test_relabel_evaluate(void) {
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
        CHECK(L.label_acc == right / (double)C_B, "accuracy %g, by hand %d of %d", L.label_acc, right, C_B);
    }
    cls_free(&cls);
    heph_vae_free(&m);
    return 1;
}

#ifdef _OPENMP
/* the same bits for 1 and 2 threads, with wrong labels, the label loss and a classifier with
   BatchNorm (evaluation mode) */
static int test_threads_bitwise(void) {
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

static const t_test tests[] = {
    {"gradcheck", test_gradcheck},
    {"wrong_labels", test_wrong_labels},
    {"refusals", test_refusals},
    {"checkpoint", test_checkpoint},
    {"relabel_evaluate", test_relabel_evaluate},
#ifdef _OPENMP
    {"threads_bitwise", test_threads_bitwise},
#endif
};
T_MAIN(tests)
