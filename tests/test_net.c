/* test_net.c - networks as public building blocks (heph_net_*), softmax cross-entropy against
   PyTorch (tests/fixtures/softmax_ref.txt, made by tools/make_softmax_fixtures.py), its
   reference and fast paths and finite differences, the reference and planned paths of whole
   networks, .hpn files (round trip and every rejection), and a small classifier trained from
   the blocks. Built like every unit test, and once more with HEPH_REFERENCE_KERNELS.
   usage: test_net [-d TMPDIR]. Prints "PASS name" / "FAIL name: why", then "DONE p f".      */
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static int n_pass = 0, n_fail = 0;
static const char *tmpdir = ".";
static void report(const char *name, int ok, const char *why) {
    if (ok) { printf("PASS %s\n", name); n_pass++; }
    else { printf("FAIL %s: %s\n", name, why); n_fail++; }
}
static void tmp_path(char *dst, size_t cap, const char *name) { snprintf(dst, cap, "%s/%s", tmpdir, name); }

/* ---- softmax cross-entropy ---------------------------------------------------------------- */
static void test_softmax_fixture(const char *path) {
    FILE *f = fopen(path, "r");
    char line[256], name[64], msg[256];
    int cases = 0;
    if (!f) { report("softmax_fixture_open", 0, path); return; }
    while (fgets(line, sizeof line, f)) {
        int B, K, i, ok = 1, lab[16];
        float a[64], d[64], want_d[64], d_ref[64];
        double want, got, got_ref, e = 0.0;
        if (sscanf(line, "case %63s %d %d", name, &B, &K) != 3) continue;
        for (i = 0; i < B * K; i++) { double v; ok &= fscanf(f, "%lf", &v) == 1; a[i] = (float)v; }
        for (i = 0; i < B; i++) ok &= fscanf(f, "%d", &lab[i]) == 1;
        ok &= fscanf(f, "%lf", &want) == 1;
        for (i = 0; i < B * K; i++) { double v; ok &= fscanf(f, "%lf", &v) == 1; want_d[i] = (float)v; }
        if (!ok) { report("softmax_fixture_read", 0, path); break; }
        got = heph_softmax_xent(d, a, lab, B, K, 1.0f);
        got_ref = heph__softmax_xent_ref(d_ref, a, lab, B, K, 1.0f);
        for (i = 0; i < B * K; i++) {
            double r = fabs((double)d[i] - (double)want_d[i]) / (1e-4 * fmax(1.0, fabs((double)want_d[i])));
            double s = fabs((double)d_ref[i] - (double)want_d[i]) / (1e-4 * fmax(1.0, fabs((double)want_d[i])));
            if (r > e) e = r;
            if (s > e) e = s;
        }
        if (fabs(got - want) / (1e-4 * fmax(1.0, fabs(want))) > e) e = fabs(got - want) / (1e-4 * fmax(1.0, fabs(want)));
        if (fabs(got_ref - want) / (1e-4 * fmax(1.0, fabs(want))) > e) e = fabs(got_ref - want) / (1e-4 * fmax(1.0, fabs(want)));
        snprintf(msg, sizeof msg, "loss %.9g (reference loops %.9g) vs PyTorch %.9g; worst |a-b|/(1e-4 max(1,|b|)) %.3g",
                 got, got_ref, want, e);
        snprintf(line, sizeof line, "softmax_xent_pytorch_%s", name);
        report(line, e <= 1.0, msg);
        cases++;
    }
    fclose(f);
    if (cases < 4) report("softmax_fixture_cases", 0, "fewer than 4 cases in the fixture");
}

/* the gradient of both paths against central differences of the loss (in double) */
static void test_softmax_fd(void) {
    float a[3 * 5], d[3 * 5];
    int lab[3] = {4, 0, 2}, i, path;
    heph_rng r;
    char msg[128];
    heph_rng_seed(&r, 3);
    for (path = 0; path < 2; path++) {
        double worst = 0.0;
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
        snprintf(msg, sizeof msg, "worst |numeric - analytic| %.3g (limit 2e-3)", worst);
        report(path ? "softmax_xent_fast_finite_differences" : "softmax_xent_reference_finite_differences",
               worst < 2e-3, msg);
    }
    report("argmax_first_of_ties", heph_argmax(a, 1) == 0 && heph_argmax((const float[]){1, 3, 3, 2}, 4) == 1,
           "argmax of {1, 3, 3, 2} should be 1");
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
static void test_net_fd(void) {
    heph_net net;
    char err[256], msg[256];
    float *p, *g, x[2 * 2 * 6 * 6], dx[2 * 2 * 6 * 6], R[2 * 3];
    heph_rng r;
    size_t i;
    double worst = 0.0;
    int rc = heph_net_init(&net, SPEC, 2, 6, 6, 2, err, sizeof err);
    if (rc != HEPH_OK) { report("net_finite_differences", 0, err); return; }
    p = (float *)malloc(net.n_params * sizeof(float));
    g = (float *)malloc(net.n_params * sizeof(float));
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
    snprintf(msg, sizeof msg, "%zu parameters and %zu inputs (%s path): worst relative error %.3g (limit 2e-2)",
             net.n_params, sizeof x / sizeof x[0], net.plan ? "fast" : "reference", worst);
    report("net_finite_differences", worst < 2e-2, msg);
    heph_net_free(&net);
    free(p); free(g);
}

/* the planned (fast) path of a network against its reference loops, forward and backward:
   with the plan set aside, the same net runs on part A's layers */
static void test_net_paths(const char *spec, int c, int h, int w, int B) {
    heph_net net;
    struct heph__net_plan *plan;
    char err[256], msg[256], name[160];
    float *p, *g1, *g2, *x, *dx1, *dx2, *R, *y1;
    size_t i, n_in = (size_t)c * h * w * B, n_out;
    double e = 0.0;
    heph_rng r;
    int rc = heph_net_init(&net, spec, c, h, w, B, err, sizeof err);
    snprintf(name, sizeof name, "net_fast_vs_reference_%s", spec);
    if (rc != HEPH_OK) { report(name, 0, err); return; }
    n_out = (size_t)net.out_n * B;
    p = (float *)malloc(net.n_params * 4 + 4); g1 = (float *)malloc(net.n_params * 4 + 4);
    g2 = (float *)malloc(net.n_params * 4 + 4);
    x = (float *)malloc(n_in * 4); dx1 = (float *)malloc(n_in * 4); dx2 = (float *)malloc(n_in * 4);
    R = (float *)malloc(n_out * 4); y1 = (float *)malloc(n_out * 4);
    heph_rng_seed(&r, 7);
    heph_net_bind(&net, p, g1);
    heph_net_init_params(&net, &r);
    for (i = 0; i < n_in; i++) x[i] = heph_rng_normal(&r);
    for (i = 0; i < n_out; i++) R[i] = heph_rng_normal(&r);
    memcpy(y1, heph_net_forward(&net, x, B), n_out * 4);
    heph_net_backward(&net, R, B, dx1);
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
    snprintf(msg, sizeof msg, "output, input and parameter gradients: worst |a-b|/(1e-4 max(1,|b|)) %.3g%s", e,
             plan ? "" : " (reference build: both paths are the reference)");
    report(name, e <= 1.0, msg);
    heph_net_free(&net);
    free(p); free(g1); free(g2); free(x); free(dx1); free(dx2); free(R); free(y1);
}

/* ---- .hpn files ---------------------------------------------------------------------------- */
static size_t file_bytes(const char *path, unsigned char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    size_t n;
    if (!f) return 0;
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}
static void file_put(const char *path, const unsigned char *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(buf, 1, n, f);
    fclose(f);
}
/* store a new FNV-1a checksum after editing a file's bytes, so that a lie gets past it */
static void reseal(unsigned char *buf, size_t n) { heph__put_le64(buf + n - 8, heph__fnv1a(HEPH__FNV_INIT, buf, n - 8)); }

static void expect_load_error(const char *name, const char *path, int want_rc, const char *want_text) {
    heph_net net;
    char err[256], msg[400];
    int rc = heph_net_load(&net, path, 4, err, sizeof err);
    snprintf(msg, sizeof msg, "rc %d (want %d), message \"%s\" (want it to name %s and say \"%s\")", rc, want_rc,
             rc == HEPH_OK ? "" : err, path, want_text);
    report(name, rc == want_rc && strstr(err, path) && strstr(err, want_text), msg);
    if (rc == HEPH_OK) heph_net_free(&net);
}

static void test_hpn(void) {
    heph_net a, b;
    char err[256], path[512], bad[512], msg[256];
    float *p, *g, x[3 * 2 * 6 * 6];
    unsigned char buf[8192], mod[8192];
    size_t n, i;
    heph_rng r;
    int rc, same = 1;
    tmp_path(path, sizeof path, "test_net.hpn");
    tmp_path(bad, sizeof bad, "test_net_bad.hpn");
    rc = heph_net_init(&a, SPEC, 2, 6, 6, 3, err, sizeof err);
    if (rc != HEPH_OK) { report("hpn_round_trip", 0, err); return; }
    p = (float *)malloc(a.n_params * 4); g = (float *)malloc(a.n_params * 4);
    heph_net_bind(&a, p, g);
    heph_rng_seed(&r, 21);
    heph_net_init_params(&a, &r);
    a.layers[3].slope = 0.2f; /* a slope other than the default, written into the spec */
    for (i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = heph_rng_normal(&r);
    rc = heph_net_save(&a, path, err, sizeof err);
    if (rc == HEPH_OK) rc = heph_net_load(&b, path, 2, err, sizeof err);
    if (rc != HEPH_OK) { report("hpn_round_trip", 0, err); heph_net_free(&a); free(p); free(g); return; }
    for (i = 0; i < a.n_params; i++) same &= memcmp(&a.params[i], &b.params[i], 4) == 0;
    same &= a.n_layers == b.n_layers && b.layers[3].slope == 0.2f && b.max_batch == 2;
    {
        const float *ya = heph_net_forward(&a, x, 2), *yb;
        float y0[6];
        memcpy(y0, ya, sizeof y0);
        yb = heph_net_forward(&b, x, 2);
        same &= memcmp(y0, yb, sizeof y0) == 0;
    }
    snprintf(msg, sizeof msg, "%zu parameters, %d layers: parameters, slope and outputs the same bits", b.n_params, b.n_layers);
    report("hpn_round_trip", same, msg);
    heph_net_free(&b);
    n = file_bytes(path, buf, sizeof buf);
    /* every way a file can lie */
    memcpy(mod, buf, n); mod[0] = 'X'; file_put(bad, mod, n);
    expect_load_error("hpn_rejects_wrong_magic", bad, HEPH_E_FORMAT, "not a .hpn");
    memcpy(mod, buf, n); mod[8] = 2; reseal(mod, n); file_put(bad, mod, n);
    expect_load_error("hpn_rejects_version", bad, HEPH_E_VERSION, "version 2");
    memcpy(mod, buf, n); mod[n / 2] ^= 1; file_put(bad, mod, n);
    expect_load_error("hpn_rejects_flipped_bit", bad, HEPH_E_CHECKSUM, "checksum");
    file_put(bad, buf, n - 5);
    expect_load_error("hpn_rejects_truncation", bad, HEPH_E_CHECKSUM, "checksum");
    file_put(bad, buf, 10);
    expect_load_error("hpn_rejects_tiny_file", bad, HEPH_E_FORMAT, "truncated");
    memcpy(mod, buf, n); heph__put_le32(mod + 12, 0); reseal(mod, n); file_put(bad, mod, n);
    expect_load_error("hpn_rejects_zero_shape", bad, HEPH_E_FORMAT, "input shape");
    memcpy(mod, buf, n); heph__put_le32(mod + 24, 9999); reseal(mod, n); file_put(bad, mod, n);
    expect_load_error("hpn_rejects_spec_length_lie", bad, HEPH_E_FORMAT, "spec");
    memcpy(mod, buf, n); mod[28] = 'X'; reseal(mod, n); file_put(bad, mod, n);
    expect_load_error("hpn_rejects_bad_spec", bad, HEPH_E_SPEC, "invalid spec");
    memcpy(mod, buf, n); heph__put_le64(mod + 28 + heph__get_le32(mod + 24), (uint64_t)1 << 40); reseal(mod, n); file_put(bad, mod, n);
    expect_load_error("hpn_rejects_parameter_count_lie", bad, HEPH_E_FORMAT, "parameters stored");
    memcpy(mod, buf, n); memset(mod + n - 12, 0xff, 4); reseal(mod, n); file_put(bad, mod, n);
    expect_load_error("hpn_rejects_nan_parameter", bad, HEPH_E_FORMAT, "not finite");
    memcpy(mod, buf, n); mod[n] = 0; reseal(mod, n + 1); file_put(bad, mod, n + 1);
    expect_load_error("hpn_rejects_trailing_bytes", bad, HEPH_E_FORMAT, "parameters stored");
    { /* a slope must stay inside (0, 1) as the float it becomes, and a spec of many layers must
         still fit when written back (the shortest decimal of each slope) */
        heph_net c;
        char many[HEPH_SPEC_MAX];
        int k, r1 = heph_net_init(&c, "dense2,lrelu1e-50", 3, 1, 1, 1, err, sizeof err);
        int r2 = heph_net_init(&c, "dense2,lrelu0.99999999998", 3, 1, 1, 1, err, sizeof err);
        snprintf(msg, sizeof msg, "lrelu1e-50: rc %d, lrelu0.99999999998: rc %d (both %d expected)", r1, r2, HEPH_E_SPEC);
        report("spec_refuses_slopes_that_round_to_0_or_1", r1 == HEPH_E_SPEC && r2 == HEPH_E_SPEC, msg);
        strcpy(many, "dense2");
        for (k = 0; k < 30; k++) strcat(many, k % 2 ? ",lrelu" : ",lrelu0.3");
        rc = heph_net_init(&c, many, 3, 1, 1, 1, err, sizeof err);
        if (rc == HEPH_OK) {
            float pc[8];
            heph_net_bind(&c, pc, NULL);
            heph_net_init_params(&c, &r);
            rc = heph_net_save(&c, bad, err, sizeof err);
            heph_net_free(&c);
            if (rc == HEPH_OK) rc = heph_net_load(&c, bad, 1, err, sizeof err);
            if (rc == HEPH_OK) {
                rc = c.n_layers == 31 && c.layers[1].slope == 0.3f && c.layers[2].slope == 0.01f ? HEPH_OK : HEPH_E_FORMAT;
                heph_net_free(&c);
            }
        }
        report("hpn_round_trip_of_30_lrelu_layers", rc == HEPH_OK, rc == HEPH_OK ? "" : err);
    }
    tmp_path(bad, sizeof bad, "no_such_dir/x.hpn");
    expect_load_error("hpn_rejects_missing_file", bad, HEPH_E_IO, "cannot open");
    rc = heph_net_save(&a, bad, err, sizeof err);
    report("hpn_save_reports_unwritable_path", rc == HEPH_E_IO && strstr(err, bad) != NULL, err);
    heph_net_free(&a);
    free(p); free(g);
}

/* ---- a classifier from the blocks --------------------------------------------------------- */
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
static void test_classifier(void) {
    heph_net net;
    char err[256], msg[256];
    float *blk, x[32 * 64], dlogits[32 * 3];
    int lab[32], step, b, right = 0;
    heph_rng r;
    double loss = 0.0;
    int rc = heph_net_init(&net, "conv4k3s1p1,relu,conv8k4s2p1,relu,flatten,dense16,relu,dense3", 1, 8, 8, 32, err, sizeof err);
    if (rc != HEPH_OK) { report("classifier_from_blocks", 0, err); return; }
    blk = (float *)calloc(4 * net.n_params, sizeof(float)); /* params, grads, Adam m, v */
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
    snprintf(msg, sizeof msg, "after 150 steps: last batch loss %.4f, %d of 128 fresh pictures right (want >= 120)", loss, right);
    report("classifier_from_blocks", right >= 120, msg);
    heph_net_free(&net);
    free(blk);
}

int main(int argc, char **argv) {
    int i;
    for (i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-d") && i + 1 < argc) tmpdir = argv[++i];
    if (getenv("HEPH_TEST_TMP")) tmpdir = getenv("HEPH_TEST_TMP");
    test_softmax_fixture("tests/fixtures/softmax_ref.txt");
    test_softmax_fd();
    test_net_fd();
    test_net_paths(SPEC, 2, 6, 6, 3);
    test_net_paths("conv4k4s2p1,relu,conv5k3s2p1,relu,flatten,dense6,relu,dense2", 3, 8, 8, 3);
    test_net_paths("dense36,relu,reshape4x3x3,convt3k4s2p1,relu,convt2k3s1p1,sigmoid", 5, 1, 1, 2);
    test_net_paths("conv3k3s1p1,reshape12x3x1,convt2k2s2p0,flatten,dense4", 2, 4, 3, 2);
    test_hpn();
    test_classifier();
    printf("DONE %d %d\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
