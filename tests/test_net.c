/* test_net.c - networks as public building blocks (heph_net_*), softmax cross-entropy against
   PyTorch (softmax_ref.txt in the fixture folder, made by tools/make_softmax_fixtures.py), its
   reference and fast paths and finite differences, the label embedding against PyTorch's
   nn.Embedding (embed_ref.txt, tools/make_embed_fixtures.py) and by finite differences,
   accuracy by hand, the reference and planned paths of whole
   networks, .hpn files (round trip and every rejection), and a small classifier trained from
   the blocks. Built like every unit test, and once more with HEPH_REFERENCE_KERNELS.
   The tests keep the names they had before the move to the harness (a test per fixture case,
   per network, per rejection). Harness and usage: tests/test_harness.h.                      */
#include "test_harness.h"

/* ---- softmax cross-entropy ---------------------------------------------------------------- */
/* every case of the fixture is read; the case named want is computed, both paths against
   PyTorch; *cases counts the cases, *found says whether want was one                        */
static int softmax_fixture_in(FILE *f, const char *want, int *cases, int *found) {
    char line[256], name[64];
    while (fgets(line, sizeof line, f)) {
        int B, K, i, ok = 1, lab[16];
        float a[64], d[64], want_d[64], d_ref[64];
        double want_loss, got, got_ref, e = 0.0;
        if (sscanf(line, "case %63s %d %d", name, &B, &K) != 3) continue;
        CHECK(B >= 1 && B <= 16 && K >= 1 && B * K <= 64, "%s: fixture case too large", name);
        for (i = 0; i < B * K; i++) { double v; ok &= fscanf(f, "%lf", &v) == 1; a[i] = (float)v; }
        for (i = 0; i < B; i++) ok &= fscanf(f, "%d", &lab[i]) == 1;
        ok &= fscanf(f, "%lf", &want_loss) == 1;
        for (i = 0; i < B * K; i++) { double v; ok &= fscanf(f, "%lf", &v) == 1; want_d[i] = (float)v; }
        CHECK(ok, "%s: cannot read the case", name);
        (*cases)++;
        if (strcmp(name, want) != 0) continue;
        *found = 1;
        got = heph_softmax_xent(d, a, lab, B, K, 1.0f);
        got_ref = heph__softmax_xent_ref(d_ref, a, lab, B, K, 1.0f);
        for (i = 0; i < B * K; i++) {
            double r = fabs((double)d[i] - (double)want_d[i]) / (1e-4 * fmax(1.0, fabs((double)want_d[i])));
            double s = fabs((double)d_ref[i] - (double)want_d[i]) / (1e-4 * fmax(1.0, fabs((double)want_d[i])));
            if (r > e) e = r;
            if (s > e) e = s;
        }
        if (fabs(got - want_loss) / (1e-4 * fmax(1.0, fabs(want_loss))) > e) e = fabs(got - want_loss) / (1e-4 * fmax(1.0, fabs(want_loss)));
        if (fabs(got_ref - want_loss) / (1e-4 * fmax(1.0, fabs(want_loss))) > e) e = fabs(got_ref - want_loss) / (1e-4 * fmax(1.0, fabs(want_loss)));
        CHECK(e <= 1.0, "loss %.9g (reference loops %.9g) vs PyTorch %.9g; worst |a-b|/(1e-4 max(1,|b|)) %.3g",
              got, got_ref, want_loss, e);
    }
    return 1;
}
/* one case of the fixture, by its name there; the fixture must hold the 4 cases listed below */
static int softmax_case(const char *name) {
    const char *path = tfixture("softmax_ref.txt");
    FILE *f = fopen(path, "r");
    int ok, cases = 0, found = 0;
    CHECK(f != NULL, "cannot open %s", path);
    ok = softmax_fixture_in(f, name, &cases, &found);
    fclose(f);
    REQUIRE(ok);
    CHECK(found, "no case %s in %s", name, path);
    CHECK(cases >= 4, "fewer than 4 cases in the fixture");
    CHECK(cases == 4, "%d cases in the fixture, 4 in SOFTMAX_CASES: list the new ones there", cases);
    return 1;
}
#define SOFTMAX_CASES(X) X(small) X(wide) X(large) X(one)
#define SOFTMAX_FN(n) static int test_softmax_##n(void) { return softmax_case(#n); }
#define SOFTMAX_ENTRY(n) {"softmax_xent_pytorch_" #n, test_softmax_##n},
SOFTMAX_CASES(SOFTMAX_FN)

/* the gradient of the reference (path 0) or fast (path 1) loops against central differences
   of the loss (in double); the fast path's logits are the second draw of the stream        */
static int softmax_fd(int path) {
    float a[3 * 5], d[3 * 5];
    int lab[3] = {4, 0, 2}, i, k;
    heph_rng r;
    double worst = 0.0;
    heph_rng_seed(&r, 3);
    for (k = 0; k <= path; k++)
        for (i = 0; i < 15; i++) a[i] = 2.0f * heph_rng_normal(&r);
    if (path) heph__softmax_xent_fast(d, a, lab, 3, 5, 0.5f);
    else heph__softmax_xent_ref(d, a, lab, 3, 5, 0.5f);
    for (i = 0; i < 15; i++) {
        float o = a[i];
        double lp, lm, num;
        a[i] = o + 1e-2f; lp = heph__softmax_xent_ref(NULL, a, lab, 3, 5, 0.0f);
        a[i] = o - 1e-2f; lm = heph__softmax_xent_ref(NULL, a, lab, 3, 5, 0.0f);
        a[i] = o;
        num = 0.5 * (lp - lm) / 2e-2;
        if (fabs(num - (double)d[i]) > worst) worst = fabs(num - (double)d[i]);
    }
    CHECK(worst < 2e-3, "worst |numeric - analytic| %.3g (limit 2e-3)", worst);
    return 1;
}
static int test_softmax_reference_fd(void) { return softmax_fd(0); }
static int test_softmax_fast_fd(void) { return softmax_fd(1); }
static int test_argmax_first_of_ties(void) {
    const float one[1] = {0.5f};
    CHECK(heph_argmax(one, 1) == 0 && heph_argmax((const float[]){1, 3, 3, 2}, 4) == 1,
          "argmax of {1, 3, 3, 2} should be 1");
    return 1;
}

/* ---- networks --------------------------------------------------------------------------- */
#define SPEC "conv3k3s2p1,relu,conv4k3s1p1,lrelu,flatten,dense6,tanh,dense3"

/* the loss sum(out * R) of a net, in double, for the finite differences */
static double net_loss(heph_net *net, const float *x, const float *R, int B) {
    const float *y = heph_net_forward(net, x, B);
    double s = 0.0;
    size_t i;
    for (i = 0; i < (size_t)net->out_n * (size_t)B; i++) s += (double)y[i] * (double)R[i];
    return s;
}

/* every parameter and input gradient of a public network against central differences */
static int test_net_fd(void) {
    heph_net net;
    char err[256];
    float *p, *g, x[2 * 2 * 6 * 6], dx[2 * 2 * 6 * 6], R[2 * 3];
    heph_rng r;
    size_t i, np;
    double worst = 0.0;
    int fast;
    int rc = heph_net_init(&net, SPEC, 2, 6, 6, 2, err, sizeof err);
    CHECK(rc == HEPH_OK, "%s", err);
    p = TALLOC(float, net.n_params);
    g = TALLOC(float, net.n_params);
    for (i = 0; i < net.n_params; i++) g[i] = NAN; /* the backward must write every one */
    heph_net_bind(&net, p, g);
    heph_rng_seed(&r, 5);
    heph_net_init_params(&net, &r);
    for (i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = heph_rng_normal(&r);
    for (i = 0; i < 6; i++) R[i] = heph_rng_normal(&r);
    net_loss(&net, x, R, 2);
    heph_net_backward(&net, R, 2, dx);
    for (i = 0; i < net.n_params + sizeof x / sizeof x[0]; i++) {
        float *v = i < net.n_params ? &p[i] : &x[i - net.n_params], o = *v;
        double lp, lm, num, an = i < net.n_params ? (double)g[i] : (double)dx[i - net.n_params], e;
        *v = o + 1e-2f; lp = net_loss(&net, x, R, 2);
        *v = o - 1e-2f; lm = net_loss(&net, x, R, 2);
        *v = o;
        num = (lp - lm) / 2e-2;
        e = fabs(num - an) / fmax(0.05, fabs(num));
        if (!(e <= worst)) worst = e;
    }
    np = net.n_params;
    fast = net.plan != NULL;
    heph_net_free(&net);
    CHECK(worst < 2e-2, "%zu parameters and %zu inputs (%s path): worst relative error %.3g (limit 2e-2)",
          np, sizeof x / sizeof x[0], fast ? "fast" : "reference", worst);
    return 1;
}

/* the planned (fast) path of a network against its reference loops, forward and backward:
   with the plan set aside, the same net runs on part A's layers (in a HEPH_REFERENCE_KERNELS
   build there is no plan: both runs are the reference, and the message says so)            */
static int net_paths(const char *spec, int c, int h, int w, int B) {
    heph_net net;
    struct heph__net_plan *plan;
    char err[256];
    float *p, *g1, *g2, *x, *dx1, *dx2, *R, *y1;
    size_t i, n_in = (size_t)c * h * w * B, n_out;
    double e = 0.0;
    heph_rng r;
    int rc = heph_net_init(&net, spec, c, h, w, B, err, sizeof err);
    CHECK(rc == HEPH_OK, "%s", err);
    n_out = (size_t)net.out_n * B;
    p = TALLOC(float, net.n_params + 1); g1 = TALLOC(float, net.n_params + 1);
    g2 = TALLOC(float, net.n_params + 1);
    x = TALLOC(float, n_in); dx1 = TALLOC(float, n_in); dx2 = TALLOC(float, n_in);
    R = TALLOC(float, n_out); y1 = TALLOC(float, n_out);
    heph_rng_seed(&r, 7);
    heph_net_bind(&net, p, g1);
    heph_net_init_params(&net, &r);
    for (i = 0; i < n_in; i++) x[i] = heph_rng_normal(&r);
    for (i = 0; i < n_out; i++) R[i] = heph_rng_normal(&r);
    memcpy(y1, heph_net_forward(&net, x, B), n_out * 4);
    heph_net_backward(&net, R, B, dx1);
    { /* frozen (the input gradient only): the same input gradient, bit for bit */
        float *dx3 = TALLOC(float, n_in);
        net.frozen = 1;
        heph_net_forward(&net, x, B);
        heph_net_backward(&net, R, B, dx3);
        net.frozen = 0;
        CHECK(memcmp(dx1, dx3, n_in * sizeof(float)) == 0, "a frozen network's input gradient differs");
    }
    plan = net.plan;
    net.plan = NULL; /* the reference loops, on the same buffers */
    heph_net_bind(&net, p, g2);
    {
        const float *y2 = heph_net_forward(&net, x, B);
        heph_net_backward(&net, R, B, dx2);
        for (i = 0; i < n_out; i++) e = fmax(e, fabs((double)y1[i] - (double)y2[i]) / (1e-4 * fmax(1.0, fabs((double)y2[i]))));
    }
    for (i = 0; i < n_in; i++) e = fmax(e, fabs((double)dx1[i] - (double)dx2[i]) / (1e-4 * fmax(1.0, fabs((double)dx2[i]))));
    for (i = 0; i < net.n_params; i++) e = fmax(e, fabs((double)g1[i] - (double)g2[i]) / (1e-4 * fmax(1.0, fabs((double)g2[i]))));
    net.plan = plan;
    heph_net_free(&net);
    CHECK(e <= 1.0, "output, input and parameter gradients: worst |a-b|/(1e-4 max(1,|b|)) %.3g%s", e,
          plan ? "" : " (reference build: both paths are the reference)");
    return 1;
}
#define PATH_CASES(X)                                                                       \
    X(1, SPEC, 2, 6, 6, 3)                                                                  \
    X(2, "conv4k4s2p1,relu,conv5k3s2p1,relu,flatten,dense6,relu,dense2", 3, 8, 8, 3)        \
    X(3, "dense36,relu,reshape4x3x3,convt3k4s2p1,relu,convt2k3s1p1,sigmoid", 5, 1, 1, 2)    \
    X(4, "conv3k3s1p1,reshape12x3x1,convt2k2s2p0,flatten,dense4", 2, 4, 3, 2)              \
    X(5, "conv4k3p1,relu,maxpool2,conv3k3p1,maxpool2,flatten,dense3", 2, 9, 11, 3)          \
    X(6, "maxpool2,conv2k3p1,relu,maxpool2", 3, 8, 8, 2)                                    \
    X(7, "conv4k3p1,bn,relu,maxpool2,conv3k3p1,bn,flatten,dense6,bn,tanh,dense2", 2, 6, 6, 4) \
    X(8, "conv20k3p1,bn,relu,maxpool2,flatten,dense36,bn,dense2", 2, 6, 6, 5)
#define PATH_FN(id, spec, c, h, w, b) static int test_paths_##id(void) { return net_paths(spec, c, h, w, b); }
#define PATH_ENTRY(id, spec, c, h, w, b) {"net_fast_vs_reference_" spec, test_paths_##id},
PATH_CASES(PATH_FN)

/* ---- .hpn files ---------------------------------------------------------------------------- */
/* store a new FNV-1a checksum after editing a file's bytes, so that a lie gets past it */
static void reseal(unsigned char *buf, size_t n) { heph__put_le64(buf + n - 8, heph__fnv1a(HEPH__FNV_INIT, buf, n - 8)); }

static int expect_load_error(const char *path, int want_rc, const char *want_text) {
    heph_net net;
    char err[256] = "";
    int rc = heph_net_load(&net, path, 4, err, sizeof err);
    if (rc == HEPH_OK) heph_net_free(&net);
    CHECK(rc == want_rc && strstr(err, path) && strstr(err, want_text),
          "rc %d (want %d), message \"%s\" (want it to name %s and say \"%s\")", rc, want_rc,
          rc == HEPH_OK ? "" : err, path, want_text);
    return 1;
}

/* the network of the .hpn tests (max_batch 3), its parameters drawn from *r seeded 21 and a
   leaky ReLU slope other than the default (written into the spec) */
static int hpn_net(heph_net *a, heph_rng *r) {
    char err[256];
    int rc = heph_net_init(a, SPEC, 2, 6, 6, 3, err, sizeof err);
    CHECK(rc == HEPH_OK, "%s", err);
    heph_net_bind(a, TALLOC(float, a->n_params), TALLOC(float, a->n_params));
    heph_rng_seed(r, 21);
    heph_net_init_params(a, r);
    a->layers[3].slope = 0.2f;
    return 1;
}
/* that network saved as test_net.hpn in the temporary folder, and the file's bytes */
static int hpn_bytes(unsigned char *buf, size_t cap, size_t *n) {
    heph_net a;
    heph_rng r;
    char err[256], path[1024];
    unsigned char *b;
    int rc;
    snprintf(path, sizeof path, "%s", tpath("test_net.hpn"));
    REQUIRE(hpn_net(&a, &r));
    rc = heph_net_save(&a, path, err, sizeof err);
    heph_net_free(&a);
    CHECK(rc == HEPH_OK, "%s", err);
    b = read_bytes(path, n);
    CHECK(b != NULL && *n > 40 && *n < cap, "cannot read %s back (%zu bytes)", path, *n);
    memcpy(buf, b, *n);
    return 1;
}

static int test_hpn_round_trip(void) {
    heph_net a, b;
    char err[256], path[1024];
    float x[3 * 2 * 6 * 6];
    size_t i;
    heph_rng r;
    int rc, same = 1;
    snprintf(path, sizeof path, "%s", tpath("test_net.hpn"));
    memset(&r, 0, sizeof r); /* hpn_net seeds it; gcc -O3 cannot see that it always does */
    REQUIRE(hpn_net(&a, &r));
    for (i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = heph_rng_normal(&r);
    rc = heph_net_save(&a, path, err, sizeof err);
    if (rc == HEPH_OK) rc = heph_net_load(&b, path, 2, err, sizeof err);
    if (rc != HEPH_OK) heph_net_free(&a);
    CHECK(rc == HEPH_OK, "%s", err);
    for (i = 0; i < a.n_params; i++) same &= memcmp(&a.params[i], &b.params[i], 4) == 0;
    same &= a.n_layers == b.n_layers && b.layers[3].slope == a.layers[3].slope && b.max_batch == 2;
    {
        const float *ya = heph_net_forward(&a, x, 2), *yb;
        float y0[6];
        memcpy(y0, ya, sizeof y0);
        yb = heph_net_forward(&b, x, 2);
        same &= memcmp(y0, yb, sizeof y0) == 0;
    }
    snprintf(err, sizeof err, "%zu parameters, %d layers: parameters, slope and outputs the same bits", b.n_params, b.n_layers);
    heph_net_free(&a);
    heph_net_free(&b);
    CHECK(same, "%s", err);
    return 1;
}

/* every way a file can lie: test_net.hpn's bytes (hb, hn of them), or the copy hm after EDIT,
   written as test_net_bad.hpn (LEN bytes of BUF) must fail to load with RC and a message
   naming the file and saying TEXT */
static unsigned char hb[8192], hm[8192];
static size_t hn;
static int lie(const unsigned char *buf, size_t n, int want_rc, const char *want_text) {
    char bad[1024];
    snprintf(bad, sizeof bad, "%s", tpath("test_net_bad.hpn"));
    CHECK(write_bytes(bad, buf, n), "cannot write %s", bad);
    return expect_load_error(bad, want_rc, want_text);
}
#define HPN_LIE(fn, EDIT, BUF, LEN, RC, TEXT) \
    static int fn(void) {                     \
        REQUIRE(hpn_bytes(hb, sizeof hb - 1, &hn)); \
        memcpy(hm, hb, hn);                   \
        EDIT;                                 \
        return lie(BUF, LEN, RC, TEXT);       \
    }
HPN_LIE(test_hpn_rejects_wrong_magic, hm[0] = 'X', hm, hn, HEPH_E_FORMAT, "not a .hpn")
HPN_LIE(test_hpn_rejects_version, { hm[8] = 2; reseal(hm, hn); }, hm, hn, HEPH_E_VERSION, "version 2")
HPN_LIE(test_hpn_rejects_flipped_bit, hm[hn / 2] ^= 1, hm, hn, HEPH_E_CHECKSUM, "checksum")
HPN_LIE(test_hpn_rejects_truncation, (void)0, hb, hn - 5, HEPH_E_CHECKSUM, "checksum")
HPN_LIE(test_hpn_rejects_tiny_file, (void)0, hb, 10, HEPH_E_FORMAT, "truncated")
HPN_LIE(test_hpn_rejects_zero_shape, { heph__put_le32(hm + 12, 0); reseal(hm, hn); }, hm, hn, HEPH_E_FORMAT, "input shape")
HPN_LIE(test_hpn_rejects_spec_length_lie, { heph__put_le32(hm + 24, 9999); reseal(hm, hn); }, hm, hn, HEPH_E_FORMAT, "spec")
HPN_LIE(test_hpn_rejects_bad_spec, { hm[28] = 'X'; reseal(hm, hn); }, hm, hn, HEPH_E_SPEC, "invalid spec")
HPN_LIE(test_hpn_rejects_parameter_count_lie,
        { heph__put_le64(hm + 28 + heph__get_le32(hm + 24), (uint64_t)1 << 40); reseal(hm, hn); }, hm, hn,
        HEPH_E_FORMAT, "parameters stored")
HPN_LIE(test_hpn_rejects_nan_parameter, { memset(hm + hn - 12, 0xff, 4); reseal(hm, hn); }, hm, hn, HEPH_E_FORMAT, "not finite")
HPN_LIE(test_hpn_rejects_trailing_bytes, { hm[hn] = 0; reseal(hm, hn + 1); }, hm, hn + 1, HEPH_E_FORMAT, "parameters stored")

/* a slope must stay inside (0, 1) as the float it becomes */
static int test_spec_refuses_slopes(void) {
    heph_net c;
    char err[256];
    int r1 = heph_net_init(&c, "dense2,lrelu1e-50", 3, 1, 1, 1, err, sizeof err);
    int r2;
    if (r1 == HEPH_OK) heph_net_free(&c);
    r2 = heph_net_init(&c, "dense2,lrelu0.99999999998", 3, 1, 1, 1, err, sizeof err);
    if (r2 == HEPH_OK) heph_net_free(&c);
    CHECK(r1 == HEPH_E_SPEC && r2 == HEPH_E_SPEC, "lrelu1e-50: rc %d, lrelu0.99999999998: rc %d (both %d expected)", r1, r2, HEPH_E_SPEC);
    return 1;
}
/* a spec of many layers must still fit when written back (the shortest decimal of each slope) */
static int test_hpn_round_trip_of_30_lrelu_layers(void) {
    heph_net c;
    heph_rng r;
    char err[256] = "", many[HEPH_SPEC_MAX], bad[1024];
    float pc[8];
    int k, rc, ok;
    snprintf(bad, sizeof bad, "%s", tpath("test_net_bad.hpn"));
    strcpy(many, "dense2");
    for (k = 0; k < 30; k++) strcat(many, k % 2 ? ",lrelu" : ",lrelu0.3");
    rc = heph_net_init(&c, many, 3, 1, 1, 1, err, sizeof err);
    CHECK(rc == HEPH_OK, "%s", err);
    heph_net_bind(&c, pc, NULL);
    heph_rng_seed(&r, 21);
    heph_net_init_params(&c, &r);
    rc = heph_net_save(&c, bad, err, sizeof err);
    heph_net_free(&c);
    CHECK(rc == HEPH_OK, "%s", err);
    rc = heph_net_load(&c, bad, 1, err, sizeof err);
    CHECK(rc == HEPH_OK, "%s", err);
    { /* float objects: on x87 (FLT_EVAL_METHOD 2) the constant 0.3f itself is not rounded to float */
        const float w3 = 0.3f, w1 = 0.01f;
        ok = c.n_layers == 31 && c.layers[1].slope == w3 && c.layers[2].slope == w1;
    }
    heph_net_free(&c);
    CHECK(ok, "%s", "");
    return 1;
}
static int test_hpn_rejects_missing_file(void) {
    char bad[1024];
    snprintf(bad, sizeof bad, "%s", tpath("no_such_dir/x.hpn"));
    return expect_load_error(bad, HEPH_E_IO, "cannot open");
}
static int test_hpn_save_reports_unwritable_path(void) {
    heph_net a;
    heph_rng r;
    char err[256] = "", bad[1024];
    int rc;
    snprintf(bad, sizeof bad, "%s", tpath("no_such_dir/x.hpn"));
    REQUIRE(hpn_net(&a, &r));
    rc = heph_net_save(&a, bad, err, sizeof err);
    heph_net_free(&a);
    CHECK(rc == HEPH_E_IO && strstr(err, bad) != NULL, "%s", err);
    return 1;
}

/* ---- a classifier from the blocks --------------------------------------------------------- */
/* ---- max-pooling 2x2 -------------------------------------------------------------------- */
/* PyTorch's max_pool2d(x, 2) with indices (pool_ref.txt, made by tools/make_pool_fixtures.py):
   the outputs (NaN where PyTorch has NaN), the indices and the input gradient, exactly      */
static int pool_case(const char *want) {
    const char *path = tfixture("pool_ref.txt");
    FILE *f = fopen(path, "r");
    char line[512], name[32];
    int B, C, H, W, found = 0, ok = 1;
    CHECK(f != NULL, "cannot open %s", path);
    ok = fgets(line, sizeof line, f) != NULL;
    while (ok && fscanf(f, " case %31s %d %d %d %d", name, &B, &C, &H, &W) == 5) {
        int n = B * C * H * W, m = B * C * (H / 2) * (W / 2), i, bad = 0, idx[256], iw[256];
        float x[1024], out_w[256], R[256], dx_w[1024], out[256], dx[1024];
        for (i = 0; ok && i < n; i++) ok = fscanf(f, "%f", &x[i]) == 1;
        for (i = 0; ok && i < m; i++) ok = fscanf(f, "%f", &out_w[i]) == 1;
        for (i = 0; ok && i < m; i++) ok = fscanf(f, "%d", &iw[i]) == 1;
        for (i = 0; ok && i < m; i++) ok = fscanf(f, "%f", &R[i]) == 1;
        for (i = 0; ok && i < n; i++) ok = fscanf(f, "%f", &dx_w[i]) == 1;
        if (!ok || strcmp(name, want) != 0) continue;
        found = 1;
        heph_maxpool2_forward(out, idx, x, B, C, H, W);
        heph_maxpool2_backward(dx, R, x, B, C, H, W);
        for (i = 0; i < m; i++)
            if (idx[i] != iw[i] || (out[i] != out_w[i] && !(out[i] != out[i] && out_w[i] != out_w[i]))) bad++;
        for (i = 0; i < n; i++) bad += dx[i] != dx_w[i];
        CHECK(bad == 0, "case %s: %d values differ from PyTorch", name, bad);
    }
    fclose(f);
    CHECK(ok && found, "%s: case %s missing or unreadable", path, want);
    return 1;
}
static int test_pool_pytorch_odd(void) { return pool_case("odd"); }
static int test_pool_pytorch_ties(void) { return pool_case("ties"); }
static int test_pool_pytorch_nan(void) { return pool_case("nan"); }

/* part D's max-pool in (H, W, C) order (heph__maxpool2_layout, what a network runs after a
   convolution) against part A's on ties, NaNs, signed zeros and an odd size: the same
   outputs and input gradients, bit for bit, once reordered                                */
static int test_pool_fast_path_ties_nan(void) {
    enum { B = 2, C = 3, H = 5, W = 7, Ho = 2, Wo = 3, N = B * C * H * W, M = B * C * Ho * Wo };
    float x[N], xt[N], R[M], Rt[M], want[M], dwant[N], y[M], dx[N];
    int i, b, c, p, bad = 0;
    heph_rng r;
    heph_rng_seed(&r, 9);
    for (i = 0; i < N; i++) { /* few distinct values: many ties; some NaNs and signed zeros */
        uint32_t u = heph_rng_u32(&r) % 8u;
        x[i] = u == 0 ? (float)NAN : u == 1 ? -0.0f : u == 2 ? 0.0f : (float)(u % 3);
    }
    for (i = 0; i < M; i++) R[i] = heph_rng_normal(&r);
    heph_maxpool2_forward(want, NULL, x, B, C, H, W);
    heph_maxpool2_backward(dwant, R, x, B, C, H, W);
    for (b = 0; b < B; b++) /* (C, H, W) -> (H, W, C) */
        for (c = 0; c < C; c++) {
            for (p = 0; p < H * W; p++) xt[(b * H * W + p) * C + c] = x[(b * C + c) * H * W + p];
            for (p = 0; p < Ho * Wo; p++) Rt[(b * Ho * Wo + p) * C + c] = R[(b * C + c) * Ho * Wo + p];
        }
    heph__maxpool2_layout(y, NULL, NULL, xt, B, C, H, W, 1);
    for (i = 0; i < N; i++) dx[i] = 7.0f; /* every value must be written: 0 where no window reads */
    heph__maxpool2_layout(NULL, dx, Rt, xt, B, C, H, W, 1);
    for (b = 0; b < B; b++)
        for (c = 0; c < C; c++) {
            for (p = 0; p < Ho * Wo; p++) {
                float g = y[(b * Ho * Wo + p) * C + c], w = want[(b * C + c) * Ho * Wo + p];
                bad += memcmp(&g, &w, sizeof g) != 0 && !(g != g && w != w);
            }
            for (p = 0; p < H * W; p++) bad += memcmp(&dx[(b * H * W + p) * C + c], &dwant[(b * C + c) * H * W + p], sizeof(float)) != 0;
        }
    CHECK(bad == 0, "%d outputs or input gradients differ from heph_maxpool2_forward/backward", bad);
    return 1;
}

/* the input gradient against central differences of L = sum(out * R), on values 0.1 apart
   (a step of 1e-3 moves no window's largest)                                               */
static int test_pool_finite_differences(void) {
    enum { B = 2, C = 2, H = 5, W = 4, N = B * C * H * W, M = B * C * 2 * 2 };
    float x[N], R[M], out[M], dx[N];
    int i, j;
    double worst = 0.0;
    heph_rng r;
    heph_rng_seed(&r, 4);
    for (i = 0; i < N; i++) x[i] = 0.1f * (float)i;
    for (i = N - 1; i > 0; i--) { /* shuffled: the largest anywhere in its window */
        int k = (int)(heph_rng_u32(&r) % (uint32_t)(i + 1));
        float t = x[i]; x[i] = x[k]; x[k] = t;
    }
    for (i = 0; i < M; i++) R[i] = heph_rng_normal(&r);
    heph_maxpool2_backward(dx, R, x, B, C, H, W);
    for (i = 0; i < N; i++) {
        double lp = 0.0, lm = 0.0, num;
        float keep = x[i];
        x[i] = keep + 1e-3f; heph_maxpool2_forward(out, NULL, x, B, C, H, W);
        for (j = 0; j < M; j++) lp += (double)out[j] * (double)R[j];
        x[i] = keep - 1e-3f; heph_maxpool2_forward(out, NULL, x, B, C, H, W);
        for (j = 0; j < M; j++) lm += (double)out[j] * (double)R[j];
        x[i] = keep;
        num = (lp - lm) / 2e-3;
        if (fabs(num - (double)dx[i]) > worst) worst = fabs(num - (double)dx[i]);
    }
    CHECK(worst < 1e-3, "max-pool gradient off central differences by %.3g", worst);
    return 1;
}
/* the spec: maxpool2 halves the picture (odd sizes drop the last row or column), keeps the
   channels, writes back as "maxpool2"; it needs a picture of at least 2x2                   */
static int test_pool_spec(void) {
    heph_layer L[8];
    int n = 0;
    char err[256];
    CHECK(heph_spec_parse("conv4k3p1,maxpool2,maxpool2", 1, 9, 7, L, 8, &n, err, sizeof err) == HEPH_OK, "%s", err);
    CHECK(n == 3 && L[1].kind == HEPH_MAXPOOL && L[1].out_c == 4 && L[1].out_h == 4 && L[1].out_w == 3 && L[2].out_h == 2 &&
          L[2].out_w == 1 && L[1].n_params == 0, "shapes %dx%dx%d, %dx%dx%d", L[1].out_c, L[1].out_h, L[1].out_w, L[2].out_c, L[2].out_h, L[2].out_w);
    CHECK(heph_spec_parse("maxpool2,maxpool2", 1, 3, 3, L, 8, &n, err, sizeof err) == HEPH_E_SPEC && strstr(err, "at least 2x2"),
          "a 1x1 picture pooled: %s", err);
    CHECK(heph_spec_parse("dense8,maxpool2", 1, 4, 4, L, 8, &n, err, sizeof err) == HEPH_E_SPEC && strstr(err, "reshape first"),
          "pooling after dense: %s", err);
    return 1;
}

/* ---- BatchNorm --------------------------------------------------------------------------- */
/* PyTorch's BatchNorm1d / BatchNorm2d (bn_ref.txt, made by tools/make_bn_fixtures.py), in
   training and evaluation mode: outputs, running statistics after, and the gradients, each
   within 1e-4 max(1, |b|); on part A's loops and on part D's in both layouts               */
static int bn_case(const char *want) {
    const char *path = tfixture("bn_ref.txt");
    FILE *f = fopen(path, "r");
    char line[512], name[32];
    int B, C, HW, train, found = 0, ok;
    CHECK(f != NULL, "cannot open %s", path);
    ok = fgets(line, sizeof line, f) != NULL;
    while (ok && fscanf(f, " case %31s %d %d %d %d", name, &B, &C, &HW, &train) == 5) {
        enum { MAXN = 256, MAXC = 8 };
        float g[MAXC], be[MAXC], rm0[MAXC], rv0[MAXC], x[MAXN], R[MAXN], y_w[MAXN], rm_w[MAXC], rv_w[MAXC], dx_w[MAXN];
        float dg_w[MAXC], db_w[MAXC];
        int n = B * C * HW, i, path_;
        double e = 0.0;
        float *arrs[12] = {g, be, rm0, rv0, x, R, y_w, rm_w, rv_w, dx_w, dg_w, db_w};
        int lens[12];
        lens[0] = lens[1] = lens[2] = lens[3] = lens[7] = lens[8] = lens[10] = lens[11] = C;
        lens[4] = lens[5] = lens[6] = lens[9] = n;
        CHECK(n <= MAXN && C <= MAXC, "case %s too large for the test", name);
        for (i = 0; ok && i < 12; i++) {
            int j;
            for (j = 0; ok && j < lens[i]; j++) ok = fscanf(f, "%f", &arrs[i][j]) == 1;
        }
        if (!ok || strcmp(name, want) != 0) continue;
        found = 1;
        for (path_ = 0; path_ < 3; path_++) { /* part A; part D in (C, H, W); part D in (H, W, C) */
            float y[MAXN], rm[MAXC], rv[MAXC], dx[MAXN], dg[MAXC], db[MAXC], xt[MAXN], Rt[MAXN], yt[MAXN], dxt[MAXN];
            int b, c, k;
            memcpy(rm, rm0, sizeof rm); memcpy(rv, rv0, sizeof rv);
            if (path_ == 0) {
                heph_batchnorm_forward(y, rm, rv, x, g, be, B, C, HW, train);
                heph_batchnorm_backward(dx, dg, db, R, x, g, rm0, rv0, B, C, HW, train);
            } else {
                int nhwc = path_ == 2;
                for (b = 0; b < B; b++) /* x and R into the layout, y and dx back from it */
                    for (c = 0; c < C; c++)
                        for (k = 0; k < HW; k++) {
                            int a = (b * C + c) * HW + k, t = nhwc ? (b * HW + k) * C + c : a;
                            xt[t] = x[a]; Rt[t] = R[a];
                        }
                heph__bn_layout(yt, rm, rv, NULL, NULL, NULL, NULL, xt, g, be, B, C, HW, train, nhwc);
                heph__bn_layout(NULL, rm0, rv0, dxt, dg, db, Rt, xt, g, NULL, B, C, HW, train, nhwc);
                for (b = 0; b < B; b++)
                    for (c = 0; c < C; c++)
                        for (k = 0; k < HW; k++) {
                            int a = (b * C + c) * HW + k, t = nhwc ? (b * HW + k) * C + c : a;
                            y[a] = yt[t]; dx[a] = dxt[t];
                        }
            }
            for (i = 0; i < n; i++) {
                e = fmax(e, fabs((double)y[i] - (double)y_w[i]) / (1e-4 * fmax(1.0, fabs((double)y_w[i]))));
                e = fmax(e, fabs((double)dx[i] - (double)dx_w[i]) / (1e-4 * fmax(1.0, fabs((double)dx_w[i]))));
            }
            for (i = 0; i < C; i++) {
                e = fmax(e, fabs((double)rm[i] - (double)rm_w[i]) / (1e-4 * fmax(1.0, fabs((double)rm_w[i]))));
                e = fmax(e, fabs((double)rv[i] - (double)rv_w[i]) / (1e-4 * fmax(1.0, fabs((double)rv_w[i]))));
                e = fmax(e, fabs((double)dg[i] - (double)dg_w[i]) / (1e-4 * fmax(1.0, fabs((double)dg_w[i]))));
                e = fmax(e, fabs((double)db[i] - (double)db_w[i]) / (1e-4 * fmax(1.0, fabs((double)db_w[i]))));
            }
            CHECK(e <= 1.0, "case %s, %s: worst |a-b|/(1e-4 max(1,|b|)) %.3g", name,
                  path_ == 0 ? "part A" : path_ == 1 ? "part D (C, H, W)" : "part D (H, W, C)", e);
        }
    }
    fclose(f);
    CHECK(ok && found, "%s: case %s missing or unreadable", path, want);
    return 1;
}
static int test_bn_pytorch_1d_train(void) { return bn_case("bn1d_train"); }
static int test_bn_pytorch_2d_train(void) { return bn_case("bn2d_train"); }
static int test_bn_pytorch_2d_eval(void) { return bn_case("bn2d_eval"); }
static int test_bn_pytorch_1d_two(void) { return bn_case("bn1d_two"); }

/* a network with BatchNorm after a convolution and after a dense layer: every trained
   parameter and input gradient against central differences (step 5e-3; tanh, not ReLU,
   after the normalisation: half the normalised values sit near a ReLU's kink), in training
   mode (batch statistics) and in evaluation mode (running ones, moved away from 0 and 1 by
   a few training forwards). The running statistics are not trained: their gradient is 0 by
   definition and is checked by batchnorm_state_saved_untrained_thread_free.               */
static int bn_net_fd(int train) {
    heph_net net;
    char err[256];
    float *p, *g, x[4 * 2 * 4 * 4], dx[4 * 2 * 4 * 4], R[4 * 3];
    heph_rng r;
    size_t i, n_state = 0;
    double worst = 0.0;
    int k, rc = heph_net_init(&net, "conv3k3p1,bn,tanh,flatten,dense5,bn,tanh,dense3", 2, 4, 4, 4, err, sizeof err);
    CHECK(rc == HEPH_OK, "%s", err);
    p = TALLOC(float, net.n_params);
    g = TALLOC(float, net.n_params);
    heph_net_bind(&net, p, g);
    heph_rng_seed(&r, 12);
    heph_net_init_params(&net, &r);
    for (i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = heph_rng_normal(&r);
    for (i = 0; i < 12; i++) R[i] = heph_rng_normal(&r);
    for (k = 0; k < 5; k++) heph_net_forward(&net, x, 4); /* running statistics move */
    heph_net_set_train(&net, train);
    net_loss(&net, x, R, 4);
    heph_net_backward(&net, R, 4, dx);
    for (i = 0; i < net.n_params + sizeof x / sizeof x[0]; i++) {
        float *v = i < net.n_params ? &p[i] : &x[i - net.n_params], o = *v;
        double lp, lm, num, an = i < net.n_params ? (double)g[i] : (double)dx[i - net.n_params], e;
        for (k = 0; k < net.n_layers && i < net.n_params; k++) /* a running statistic: not trained */
            if (net.layers[k].kind == HEPH_BN && i >= net.layers[k].b_off + (size_t)net.layers[k].in_c &&
                i < net.layers[k].w_off + net.layers[k].n_params) break;
        if (k < net.n_layers && i < net.n_params) { n_state++; continue; }
        *v = o + 5e-3f; lp = net_loss(&net, x, R, 4);
        *v = o - 5e-3f; lm = net_loss(&net, x, R, 4);
        *v = o;
        num = (lp - lm) / 1e-2;
        e = fabs(num - an) / fmax(0.05, fabs(num));
        if (!(e <= worst)) worst = e;
    }
    heph_net_free(&net);
    CHECK(n_state == 2 * (3 + 5), "%zu running statistics skipped, want 16", n_state);
    CHECK(worst < 2e-2, "%s mode: worst relative error %.3g (limit 2e-2)", train ? "training" : "evaluation", worst);
    return 1;
}
static int test_bn_net_fd_train(void) { return bn_net_fd(1); }
static int test_bn_net_fd_eval(void) { return bn_net_fd(0); }

/* the running statistics are parameters of the block: a network file keeps them bit for bit,
   their gradients are 0 (so Adam leaves them), and a training forward on 1 and on 2 threads
   gives the same bits                                                                      */
static int test_bn_state_saved_and_untrained(void) {
    heph_net net, back;
    char err[256];
    const char *path = tpath("bn.hpn");
    float *p, *g, x[6 * 3 * 4 * 4], y1[6 * 2], y2[6 * 2];
    heph_rng r;
    size_t i, zero = 0, n_state = 0;
    int rc = heph_net_init(&net, "conv4k3p1,bn,relu,maxpool2,flatten,dense2", 3, 4, 4, 6, err, sizeof err);
    CHECK(rc == HEPH_OK, "%s", err);
    p = TALLOC(float, net.n_params);
    g = TALLOC(float, net.n_params);
    heph_net_bind(&net, p, g);
    heph_rng_seed(&r, 2);
    heph_net_init_params(&net, &r);
    for (i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = heph_rng_normal(&r) + 0.5f;
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    memcpy(y1, heph_net_forward(&net, x, 6), sizeof y1);
#ifdef _OPENMP
    omp_set_num_threads(2);
#endif
    memcpy(y2, heph_net_forward(&net, x, 6), sizeof y2);
    CHECK(memcmp(y1, y2, sizeof y1) == 0, "1 and 2 threads differ");
    heph_net_backward(&net, y1, 6, NULL);
    for (i = 0; i < 4; i++) { /* layer 1 is bn over 4 channels: gamma, beta, mean, var */
        const heph_layer *L = &net.layers[1];
        zero += g[L->b_off + 4 + i] == 0.0f && g[L->b_off + 8 + i] == 0.0f;
        n_state += p[L->b_off + 4 + i] != 0.0f && p[L->b_off + 8 + i] != 1.0f; /* moved by the forwards */
    }
    CHECK(zero == 4 && n_state == 4, "running statistics: %zu of 4 with zero gradients, %zu of 4 moved", zero, n_state);
    CHECK(heph_net_save(&net, path, err, sizeof err) == HEPH_OK, "%s", err);
    CHECK(heph_net_load(&back, path, 6, err, sizeof err) == HEPH_OK, "%s", err);
    CHECK(back.n_params == net.n_params && memcmp(back.params, net.params, net.n_params * sizeof(float)) == 0,
          "the reloaded network's parameters differ");
    heph_net_set_train(&net, 0);
    heph_net_set_train(&back, 0);
    memcpy(y1, heph_net_forward(&net, x, 6), sizeof y1);
    memcpy(y2, heph_net_forward(&back, x, 6), sizeof y2);
    heph_net_free(&back);
    CHECK(memcmp(y1, y2, sizeof y1) == 0, "evaluation outputs differ after the round trip");
    { /* a file whose running variance is negative (checksum made right) is refused */
        FILE *f = fopen(path, "rb");
        unsigned char buf[4096];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0, at = n - 8 - 4 * (net.n_params - (net.layers[1].b_off + 8));
        float neg = -0.5f;
        if (f) fclose(f);
        CHECK(n > 8 + 4 * net.n_params && n < sizeof buf, "%s: %zu bytes", path, n);
        { uint32_t u; memcpy(&u, &neg, 4); heph__put_le32(buf + at, u); } /* the file is little-endian */
        reseal(buf, n);
        f = fopen(path, "wb");
        CHECK(f && fwrite(buf, 1, n, f) == n && fclose(f) == 0, "cannot rewrite %s", path);
        heph_net_free(&net);
        REQUIRE(expect_load_error(path, HEPH_E_FORMAT, "layer 1 (bn): the running variance of channel 0 is -0.5"));
    }
    return 1;
}

/* a VAE with BatchNorm in both networks: training steps move the running statistics (the
   networks train inside heph_vae_train_step), encoding uses them (the same code for a
   picture alone or in a batch: no batch statistics), and the checkpoint keeps them bit for
   bit                                                                                      */
static int test_bn_in_a_vae(void) {
    heph_vae_config cfg;
    heph_vae m, back;
    heph_rng r;
    float x[8 * 64], mu_all[8 * 3], mu_one[3], mu_back[8 * 3];
    const char *path = tpath("bn.hpm");
    int t, i, moved = 0;
    heph_vae_config_default(&cfg);
    cfg.in_c = 1; cfg.in_h = cfg.in_w = 8; cfg.z_dim = 3; cfg.max_batch = 8;
    strcpy(cfg.enc_spec, "conv4k3s2p1,bn,relu,flatten,dense16,bn,relu");
    strcpy(cfg.dec_spec, "dense16,bn,relu,dense64");
    CHECK(heph_vae_init(&m, &cfg, 3) == HEPH_OK, "%s", m.err);
    heph_rng_seed(&r, 6);
    for (i = 0; i < 8 * 64; i++) x[i] = heph_rng_uniform(&r);
    for (t = 0; t < 3; t++) CHECK(heph_vae_train_step(&m, x, 8, NULL) == HEPH_OK, "step %d: %s", t, m.err);
    for (i = 0; i < 4; i++) moved += m.enc.params[m.enc.layers[1].b_off + 4 + (size_t)i] != 0.0f; /* running means */
    CHECK(moved == 4 && m.enc.eval == 1 && m.dec.eval == 1, "%d of 4 running means moved; eval flags %d %d", moved, m.enc.eval, m.dec.eval);
    heph_vae_encode(&m, x, 8, mu_all, NULL);
    heph_vae_encode(&m, x + 5 * 64, 1, mu_one, NULL);
    CHECK(memcmp(mu_one, mu_all + 5 * 3, sizeof mu_one) == 0, "picture 5 alone encodes differently: batch statistics used");
    CHECK(heph_vae_save(&m, path, 0) == HEPH_OK, "%s", m.err);
    CHECK(heph_vae_load(&back, path) == HEPH_OK, "%s", back.err);
    heph_vae_encode(&back, x, 8, mu_back, NULL);
    CHECK(back.n_params == m.n_params && memcmp(back.params, m.params, m.n_params * sizeof(float)) == 0 &&
          memcmp(mu_back, mu_all, sizeof mu_all) == 0, "the checkpoint lost the running statistics");
    heph_vae_free(&back);
    heph_vae_free(&m);
    return 1;
}

/* ---- label embedding and accuracy --------------------------------------------------------- */
/* nn.Embedding of PyTorch (embed_ref.txt, made by tools/make_embed_fixtures.py): the rows
   looked up, and the table's gradient of sum(out * R): repeated labels add up, the classes
   the batch lacks get 0                                                                     */
static int test_embed_pytorch(void) {
    const char *path = tfixture("embed_ref.txt");
    FILE *f = fopen(path, "r");
    char line[256];
    int K = 0, E = 0, B = 0, i, lab[16], ok = 1;
    float T[64], R[128], out_want[128], dT_want[64], out[128], dT[64];
    double worst = 0.0;
    CHECK(f != NULL, "cannot open %s", path);
    ok = fgets(line, sizeof line, f) != NULL && fscanf(f, "%d %d %d", &K, &E, &B) == 3 && K * E <= 64 && B * E <= 128 && B <= 16;
    for (i = 0; ok && i < K * E; i++) ok = fscanf(f, "%f", &T[i]) == 1;
    for (i = 0; ok && i < B; i++) ok = fscanf(f, "%d", &lab[i]) == 1;
    for (i = 0; ok && i < B * E; i++) ok = fscanf(f, "%f", &R[i]) == 1;
    for (i = 0; ok && i < B * E; i++) ok = fscanf(f, "%f", &out_want[i]) == 1;
    for (i = 0; ok && i < K * E; i++) ok = fscanf(f, "%f", &dT_want[i]) == 1;
    fclose(f);
    CHECK(ok, "%s: cannot read the fixture", path);
    heph_embed_forward(out, T, lab, B, K, E);
    heph_embed_backward(dT, R, lab, B, K, E);
    for (i = 0; i < B * E; i++) {
        double e = fabs((double)out[i] - (double)out_want[i]);
        worst = e > worst ? e : worst;
    }
    for (i = 0; i < K * E; i++) {
        double e = fabs((double)dT[i] - (double)dT_want[i]) / (1.0 + fabs((double)dT_want[i]));
        worst = e > worst ? e : worst;
    }
    CHECK(worst <= 1e-6, "embedding off PyTorch by %.3g", worst);
    return 1;
}
/* the table's gradient against central differences of L = sum(out * R) in double */
static int test_embed_finite_differences(void) {
    enum { K = 5, E = 3, B = 6 };
    float T[K * E], R[B * E], out[B * E], dT[K * E];
    int lab[B] = {2, 4, 2, 0, 2, 4}, i, j;
    double worst = 0.0;
    heph_rng r;
    heph_rng_seed(&r, 8);
    for (i = 0; i < K * E; i++) T[i] = heph_rng_normal(&r);
    for (i = 0; i < B * E; i++) R[i] = heph_rng_normal(&r);
    heph_embed_backward(dT, R, lab, B, K, E);
    for (i = 0; i < K * E; i++) {
        double lp = 0.0, lm = 0.0, h = 1e-2, num;
        float keep = T[i];
        T[i] = keep + (float)h;
        heph_embed_forward(out, T, lab, B, K, E);
        for (j = 0; j < B * E; j++) lp += (double)out[j] * (double)R[j];
        T[i] = keep - (float)h;
        heph_embed_forward(out, T, lab, B, K, E);
        for (j = 0; j < B * E; j++) lm += (double)out[j] * (double)R[j];
        T[i] = keep;
        num = (lp - lm) / (2.0 * h);
        if (fabs(num - (double)dT[i]) > worst) worst = fabs(num - (double)dT[i]);
    }
    CHECK(worst < 1e-4, "embedding gradient off central differences by %.3g", worst);
    return 1;
}
/* accuracy by hand: rows 0 and 2 right (row 1's tie goes to the first index, not its label) */
static int test_accuracy_by_hand(void) {
    float logits[3 * 3] = {0.1f, 2.0f, 0.3f, 1.0f, 1.0f, 0.0f, -1.0f, -2.0f, -0.5f};
    int lab[3] = {1, 1, 2};
    CHECK(fabs(heph_accuracy(logits, lab, 3, 3) - 2.0 / 3.0) < 1e-12, "accuracy %g, want 2/3", heph_accuracy(logits, lab, 3, 3));
    CHECK(heph_accuracy(logits, lab, 0, 3) == 0.0, "an empty batch");
    return 1;
}

/* 3 classes of 1x8x8 pictures: a bright bar across, down, or a bright square in the middle,
   over noise; one net, softmax cross-entropy, Adam on one flat parameter block */
static void make_pic(heph_rng *r, int cls, float *x) {
    int i, j, at = 1 + (int)heph_rng_below(r, 6);
    for (i = 0; i < 64; i++) x[i] = 0.3f * heph_rng_uniform(r);
    for (i = 0; i < 8; i++)
        for (j = 0; j < 8; j++)
            if ((cls == 0 && i == at) || (cls == 1 && j == at) || (cls == 2 && i >= 3 && i < 5 && j >= 3 && j < 5))
                x[i * 8 + j] = 1.0f;
}
static int test_classifier(void) {
    heph_net net;
    char err[256];
    float *blk, x[32 * 64], dlogits[32 * 3];
    int lab[32], step, b, right = 0;
    heph_rng r;
    double loss = 0.0;
    int rc = heph_net_init(&net, "conv4k3s1p1,relu,conv8k4s2p1,relu,flatten,dense16,relu,dense3", 1, 8, 8, 32, err, sizeof err);
    CHECK(rc == HEPH_OK, "%s", err);
    blk = TALLOC(float, 4 * net.n_params); /* params, grads, Adam m, v */
    heph_net_bind(&net, blk, blk + net.n_params);
    heph_rng_seed(&r, 1);
    heph_net_init_params(&net, &r);
    for (step = 1; step <= 150; step++) {
        const float *logits;
        for (b = 0; b < 32; b++) { lab[b] = (int)heph_rng_below(&r, 3); make_pic(&r, lab[b], x + b * 64); }
        logits = heph_net_forward(&net, x, 32);
        loss = heph_softmax_xent(dlogits, logits, lab, 32, 3, 1.0f / 32) / 32;
        heph_net_backward(&net, dlogits, 32, NULL);
        heph_adam_step(net.params, net.grads, blk + 2 * net.n_params, blk + 3 * net.n_params, net.n_params,
                       3e-3f, 0.9f, 0.999f, 1e-8f, (uint64_t)step);
    }
    for (step = 0; step < 4; step++) { /* 128 fresh pictures */
        const float *logits;
        for (b = 0; b < 32; b++) { lab[b] = (int)heph_rng_below(&r, 3); make_pic(&r, lab[b], x + b * 64); }
        logits = heph_net_forward(&net, x, 32);
        for (b = 0; b < 32; b++) right += heph_argmax(logits + b * 3, 3) == lab[b];
    }
    heph_net_free(&net);
    CHECK(right >= 120, "after 150 steps: last batch loss %.4f, %d of 128 fresh pictures right (want >= 120)", loss, right);
    return 1;
}

/* in the order of the program before the harness */
static const t_test tests[] = {
    SOFTMAX_CASES(SOFTMAX_ENTRY)
    {"softmax_xent_reference_finite_differences", test_softmax_reference_fd},
    {"softmax_xent_fast_finite_differences", test_softmax_fast_fd},
    {"argmax_first_of_ties", test_argmax_first_of_ties},
    {"net_finite_differences", test_net_fd},
    PATH_CASES(PATH_ENTRY)
    {"hpn_round_trip", test_hpn_round_trip},
    {"hpn_rejects_wrong_magic", test_hpn_rejects_wrong_magic},
    {"hpn_rejects_version", test_hpn_rejects_version},
    {"hpn_rejects_flipped_bit", test_hpn_rejects_flipped_bit},
    {"hpn_rejects_truncation", test_hpn_rejects_truncation},
    {"hpn_rejects_tiny_file", test_hpn_rejects_tiny_file},
    {"hpn_rejects_zero_shape", test_hpn_rejects_zero_shape},
    {"hpn_rejects_spec_length_lie", test_hpn_rejects_spec_length_lie},
    {"hpn_rejects_bad_spec", test_hpn_rejects_bad_spec},
    {"hpn_rejects_parameter_count_lie", test_hpn_rejects_parameter_count_lie},
    {"hpn_rejects_nan_parameter", test_hpn_rejects_nan_parameter},
    {"hpn_rejects_trailing_bytes", test_hpn_rejects_trailing_bytes},
    {"spec_refuses_slopes_that_round_to_0_or_1", test_spec_refuses_slopes},
    {"hpn_round_trip_of_30_lrelu_layers", test_hpn_round_trip_of_30_lrelu_layers},
    {"hpn_rejects_missing_file", test_hpn_rejects_missing_file},
    {"hpn_save_reports_unwritable_path", test_hpn_save_reports_unwritable_path},
    {"maxpool2_matches_pytorch_odd", test_pool_pytorch_odd},
    {"maxpool2_matches_pytorch_ties", test_pool_pytorch_ties},
    {"maxpool2_matches_pytorch_nan", test_pool_pytorch_nan},
    {"maxpool2_gradient_finite_differences", test_pool_finite_differences},
    {"maxpool2_fast_path_ties_nan", test_pool_fast_path_ties_nan},
    {"maxpool2_in_specs", test_pool_spec},
    {"batchnorm1d_train_matches_pytorch", test_bn_pytorch_1d_train},
    {"batchnorm2d_train_matches_pytorch", test_bn_pytorch_2d_train},
    {"batchnorm2d_eval_matches_pytorch", test_bn_pytorch_2d_eval},
    {"batchnorm1d_batch_of_two_matches_pytorch", test_bn_pytorch_1d_two},
    {"batchnorm_net_gradients_train", test_bn_net_fd_train},
    {"batchnorm_net_gradients_eval", test_bn_net_fd_eval},
    {"batchnorm_state_saved_untrained_thread_free", test_bn_state_saved_and_untrained},
    {"batchnorm_in_a_vae", test_bn_in_a_vae},
    {"embed_matches_pytorch", test_embed_pytorch},
    {"embed_gradient_finite_differences", test_embed_finite_differences},
    {"accuracy_by_hand", test_accuracy_by_hand},
    {"classifier_from_blocks", test_classifier},
};
T_MAIN(tests)
