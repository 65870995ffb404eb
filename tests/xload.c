/* xload.c - cross-load test: .hpd and .hpm files written on one machine (CPU, compiler) load on
   every other and give the same results. Driven by tests/test_cross.sh (make test-cross).

   usage: xload write DIR NAME   generate a small dataset and write it as DIR/NAME.hpd (f32
                                 pixels, two factors, one with real values), train a tiny conv
                                 beta-TCVAE on it for XL_STEPS steps (seeded; batches read back
                                 from the .hpd), save DIR/NAME.hpm (with Adam state and RNG) and
                                 DIR/NAME.ref: reference outputs computed on this machine, exact (%a)
                                 (decoded pixels of fixed latent codes, Ledoit-Wolf D^2 of fixed
                                 codes and of the encoded data, negative ELBO with a fixed seed)
          xload check DIR NAME   load DIR/NAME.hpd/.hpm/.ref (written by any machine) and check:
                                 the .hpd header, pixels and labels are exactly the generated
                                 ones; the .hpm configuration, step and RNG state are exact; the
                                 outputs recomputed here from the loaded model match the .ref;
                                 training here from the same seed gives the parameters of the
                                 loaded .hpm within float rounding (the trajectory)
   Prints "PASS name: ..." / "FAIL name: why" lines, then one "XL reader writer key=value ..."
   line with the measured differences (tests/test_cross.sh tabulates them). Exit status 1 when
   anything failed.                                                                           */
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#define XL_N 64      /* pictures */
#define XL_SIDE 8    /* 1 x 8 x 8 */
#define XL_PX (XL_SIDE * XL_SIDE)
#define XL_Z 3       /* latent dimensions */
#define XL_B 16      /* batch */
#ifndef XL_STEPS
#define XL_STEPS 40  /* optimiser steps (-DXL_STEPS=N for a longer trajectory) */
#endif
#define XL_CODES 5   /* fixed latent codes decoded and scored */
#define XL_SEED 20240917u

/* tolerances: loaded parameters are the writer's bits, so outputs differ only by the
   arithmetic of this machine (x87 excess precision, libm); the trajectory compounds the
   rounding of XL_STEPS steps                                                                */
#define XL_TOL_PIXEL 1e-5 /* decoded pixels, absolute */
#define XL_TOL_D2 1e-4    /* D^2, relative */
#define XL_TOL_ELBO 1e-5  /* negative ELBO, relative */
#define XL_TOL_TRAJ 1e-3  /* parameters after XL_STEPS steps, absolute */

static int n_fail = 0;
static char label[128];
#if defined(__GNUC__)
static void report(int ok, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#endif
static void report(int ok, const char *what, const char *fmt, ...) {
    va_list ap;
    printf("%s %s %s: ", ok ? "PASS" : "FAIL", label, what);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!ok) n_fail++;
}

/* the dataset: a bright 3x3 square at (fx, fy) on a faint gradient, exact in float (k/256) */
static void xl_picture(int i, float *px, int32_t *factors) {
    int fx = i % 6, fy = (i / 6) % 6, x, y;
    for (y = 0; y < XL_SIDE; y++)
        for (x = 0; x < XL_SIDE; x++) {
            int v = (x * 7 + y * 5 + i * 3) % 40;
            if (x >= fx && x < fx + 3 && y >= fy && y < fy + 3) v = 200 + (i * 11 + x + y) % 56;
            px[y * XL_SIDE + x] = (float)v * 0.00390625f;
        }
    factors[0] = (int32_t)fx;
    factors[1] = (int32_t)fy;
}
static const double xl_fy_values[6] = {-1.0, -0.6, -0.2, 0.2, 0.6, 1.0e-300}; /* 1e-300: a double */

static void xl_info(heph_hpd_info *info) {
    memset(info, 0, sizeof *info);
    info->count = XL_N;
    info->c = 1;
    info->h = info->w = XL_SIDE;
    info->dtype = HEPH_PX_F32;
    info->value_max = 1.0f;
    info->flags = HEPH_HPD_LABELS | HEPH_HPD_GENERATED;
    info->seed = 0x0123456789abcdefULL;
    strcpy(info->source, "xload/squares");
    info->n_factors = 2;
    strcpy(info->factors[0].name, "posX");
    info->factors[0].n_values = 6;
    strcpy(info->factors[1].name, "posY");
    info->factors[1].n_values = 6;
    info->factors[1].values = xl_fy_values;
}

static void xl_config(heph_vae_config *cfg) {
    heph_vae_config_default(cfg);
    cfg->in_c = 1;
    cfg->in_h = cfg->in_w = XL_SIDE;
    cfg->z_dim = XL_Z;
    cfg->max_batch = XL_B;
    strcpy(cfg->enc_spec, "conv4k3s2p1,relu,flatten,dense16,tanh");
    strcpy(cfg->dec_spec, "dense32,lrelu,reshape2x4x4,convt1k4s2p1");
    cfg->obj.kind = HEPH_OBJ_TCVAE;
    cfg->obj.estimator = HEPH_TC_MSS;
    cfg->obj.alpha = 1.0f;
    cfg->obj.beta = 4.0f;
    cfg->obj.gamma = 1.0f;
    cfg->obj.ramp_steps = 20;
    cfg->obj.dataset_size = XL_N;
    cfg->lr = 5e-3f;
}

static void xl_code(int k, float *z) {
    int d;
    for (d = 0; d < XL_Z; d++) z[d] = (float)((k * 7 + d * 3) % 9 - 4) * 0.375f;
}

/* train a fresh model from the seed on the pictures of the open dataset */
static int xl_train(heph_vae *m, heph_hpd *d, double *last_loss) {
    heph_vae_config cfg;
    heph_rng order;
    size_t idx[XL_N];
    float x[XL_B * XL_PX];
    heph_losses L;
    int s, i;
    xl_config(&cfg);
    memset(&L, 0, sizeof L);
    if (heph_vae_init(m, &cfg, XL_SEED) != HEPH_OK) {
        report(0, "init", "%s", m->err);
        return 0;
    }
    heph_rng_seed(&order, 7);
    for (i = 0; i < XL_N; i++) idx[i] = (size_t)i;
    for (s = 0; s < XL_STEPS; s++) {
        int at = (s * XL_B) % XL_N;
        if (at == 0) heph_rng_shuffle(&order, idx, XL_N);
        if (heph_hpd_read(d, idx + at, XL_B, x) != HEPH_OK) {
            report(0, "read batch", "%s", d->err);
            heph_vae_free(m);
            return 0;
        }
        if (heph_vae_train_step(m, x, XL_B, &L) != HEPH_OK) {
            report(0, "train", "step %d: %s", s, m->err);
            heph_vae_free(m);
            return 0;
        }
    }
    *last_loss = L.loss;
    return 1;
}

typedef struct {
    float decoded[XL_CODES * XL_PX];
    double d2_codes[XL_CODES], d2_data[XL_N], elbo;
} xl_outputs;

static int xl_outputs_of(heph_vae *m, heph_hpd *d, xl_outputs *o) {
    float z[XL_CODES * XL_Z], *x = (float *)malloc(sizeof(float) * XL_N * XL_PX), mu[XL_N * XL_Z];
    heph_maha fit;
    heph_losses L;
    int k, ok = 1;
    if (!x) return 0;
    for (k = 0; k < XL_CODES; k++) xl_code(k, z + k * XL_Z);
    heph_vae_decode(m, z, XL_CODES, o->decoded);
    if (heph_hpd_read_range(d, 0, XL_N, x) != HEPH_OK) { report(0, "read", "%s", d->err); ok = 0; }
    if (ok) {
        heph_vae_encode(m, x, XL_N, mu, NULL);
        if (heph_maha_fit(&fit, mu, XL_N, XL_Z, HEPH_COV_LEDOIT_WOLF, 0.0, 1) != HEPH_OK) {
            report(0, "maha fit", "%s", fit.err);
            ok = 0;
        } else {
            heph_maha_score(&fit, z, XL_CODES, o->d2_codes);
            heph_maha_score(&fit, mu, XL_N, o->d2_data);
            heph_maha_free(&fit);
        }
    }
    if (ok && heph_vae_evaluate(m, x, XL_N, 99, &L) != HEPH_OK) { report(0, "evaluate", "%s", m->err); ok = 0; }
    if (ok) o->elbo = L.loss;
    free(x);
    return ok;
}

static void xl_path(char *buf, size_t cap, const char *dir, const char *name, const char *ext) {
    snprintf(buf, cap, "%s/%s.%s", dir, name, ext);
}

static int do_write(const char *dir, const char *name) {
    char p[512];
    heph_hpd_info info;
    heph_hpd_writer w;
    heph_hpd d;
    heph_vae m;
    xl_outputs o;
    float px[XL_PX];
    int32_t f[2];
    double last = 0.0;
    int i;
    FILE *fp;
    xl_info(&info);
    xl_path(p, sizeof p, dir, name, "hpd");
    if (heph_hpd_create(&w, p, &info) != HEPH_OK) { report(0, "hpd create", "%s", w.err); return 1; }
    for (i = 0; i < XL_N; i++) {
        xl_picture(i, px, f);
        if (heph_hpd_put_f32(&w, px, f) != HEPH_OK) { report(0, "hpd put", "%s", w.err); heph_hpd_abort(&w); return 1; }
    }
    if (heph_hpd_finish(&w) != HEPH_OK) { report(0, "hpd finish", "%s", w.err); return 1; }
    if (heph_hpd_open(&d, p) != HEPH_OK) { report(0, "hpd open", "%s", d.err); return 1; }
    if (!xl_train(&m, &d, &last)) { heph_hpd_close(&d); return 1; }
    xl_path(p, sizeof p, dir, name, "hpm");
    if (heph_vae_save(&m, p, 0) != HEPH_OK) { report(0, "save", "%s", m.err); heph_vae_free(&m); heph_hpd_close(&d); return 1; }
    if (!xl_outputs_of(&m, &d, &o)) { heph_vae_free(&m); heph_hpd_close(&d); return 1; }
    heph_vae_free(&m);
    heph_hpd_close(&d);
    xl_path(p, sizeof p, dir, name, "ref");
    fp = fopen(p, "w");
    if (!fp) { report(0, "ref", "cannot create %s", p); return 1; }
    fprintf(fp, "xload 1\nwriter %s\nsteps %d\nlast_loss 1 %a\nelbo 1 %a\ndecoded %d\n", name,
            XL_STEPS, last, o.elbo, XL_CODES * XL_PX);
    for (i = 0; i < XL_CODES * XL_PX; i++) fprintf(fp, "%a\n", (double)o.decoded[i]);
    fprintf(fp, "d2_codes %d\n", XL_CODES);
    for (i = 0; i < XL_CODES; i++) fprintf(fp, "%a\n", o.d2_codes[i]);
    fprintf(fp, "d2_data %d\n", XL_N);
    for (i = 0; i < XL_N; i++) fprintf(fp, "%a\n", o.d2_data[i]);
    if (fclose(fp) != 0) { report(0, "ref", "cannot write %s", p); return 1; }
    report(1, "write", "%s.hpd, %s.hpm, %s.ref (%d steps, last loss %.6f, -ELBO %.6f)", name, name, name,
           XL_STEPS, last, o.elbo);
    return 0;
}

/* read "key count" then count numbers; 0 on a malformed file */
static int ref_expect(FILE *fp, const char *key, int count, double *out) {
    char k[64];
    int n, i;
    if (fscanf(fp, "%63s %d", k, &n) != 2 || strcmp(k, key) != 0 || n != count) return 0;
    for (i = 0; i < count; i++)
        if (fscanf(fp, "%lf", &out[i]) != 1) return 0;
    return 1;
}

static double rel_diff(double a, double b) {
    double s = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return s > 0.0 ? fabs(a - b) / s : 0.0;
}

static int do_check(const char *dir, const char *name, const char *me) {
    char p[512], k1[64], writer[64];
    heph_hpd_info want;
    heph_hpd d;
    heph_vae loaded, own;
    heph_vae_config cfg;
    xl_outputs o;
    double ref_last, ref_elbo, ref_dec[XL_CODES * XL_PX], ref_d2c[XL_CODES], ref_d2d[XL_N], last = 0.0;
    double dmax = 0.0, d2max = 0.0, elbo_rel, traj = 0.0, adam = 0.0;
    float px[XL_PX], got[XL_PX];
    int32_t f[2];
    size_t i, ndiff = 0;
    int ok, j, version, steps;
    FILE *fp;
    snprintf(label, sizeof label, "xload %s<-%s", me, name);

    /* the dataset: every header field, pixel and label exactly as generated */
    xl_info(&want);
    xl_path(p, sizeof p, dir, name, "hpd");
    if (heph_hpd_open(&d, p) != HEPH_OK) { report(0, ".hpd", "%s", d.err); return 1; }
    ok = d.info.count == want.count && d.info.c == want.c && d.info.h == want.h &&
         d.info.w == want.w && d.info.dtype == want.dtype && d.info.value_max == want.value_max &&
         d.info.flags == want.flags && d.info.seed == want.seed &&
         strcmp(d.info.source, want.source) == 0 && d.info.n_factors == want.n_factors;
    for (j = 0; ok && j < 2; j++)
        ok = strcmp(d.info.factors[j].name, want.factors[j].name) == 0 &&
             d.info.factors[j].n_values == want.factors[j].n_values &&
             (d.info.factors[j].values == NULL) == (want.factors[j].values == NULL);
    for (i = 0; ok && i < 6; i++) ok = d.info.factors[1].values[i] == xl_fy_values[i];
    if (!ok) {
        report(0, ".hpd", "header fields differ from the generated set");
        heph_hpd_close(&d);
        return 1;
    }
    for (i = 0; ok && i < XL_N; i++) {
        xl_picture((int)i, px, f);
        ok = heph_hpd_read(&d, &i, 1, got) == HEPH_OK && memcmp(px, got, sizeof px) == 0 &&
             heph_hpd_label(&d, i, 0) == f[0] && heph_hpd_label(&d, i, 1) == f[1];
    }
    report(ok, ".hpd", ok ? "header, %d pictures (f32) and labels bit-identical" : "picture or label %d differs",
           ok ? XL_N : (int)i - 1);
    if (!ok) { heph_hpd_close(&d); return 1; }

    /* the checkpoint: configuration, step and RNG exact; parameters as stored */
    xl_path(p, sizeof p, dir, name, "hpm");
    if (heph_vae_load(&loaded, p) != HEPH_OK) { report(0, ".hpm", "%s", loaded.err); heph_hpd_close(&d); return 1; }
    xl_config(&cfg);
    ok = loaded.cfg.in_c == cfg.in_c && loaded.cfg.in_h == cfg.in_h && loaded.cfg.in_w == cfg.in_w &&
         loaded.cfg.z_dim == cfg.z_dim && loaded.cfg.max_batch == cfg.max_batch &&
         strcmp(loaded.cfg.enc_spec, cfg.enc_spec) == 0 && strcmp(loaded.cfg.dec_spec, cfg.dec_spec) == 0 &&
         loaded.cfg.obj.kind == cfg.obj.kind && loaded.cfg.obj.estimator == cfg.obj.estimator &&
         loaded.cfg.obj.alpha == cfg.obj.alpha && loaded.cfg.obj.beta == cfg.obj.beta &&
         loaded.cfg.obj.gamma == cfg.obj.gamma && loaded.cfg.obj.ramp_steps == cfg.obj.ramp_steps &&
         loaded.cfg.obj.dataset_size == cfg.obj.dataset_size && loaded.cfg.lr == cfg.lr &&
         loaded.cfg.beta1 == cfg.beta1 && loaded.cfg.beta2 == cfg.beta2 && loaded.cfg.eps == cfg.eps &&
         loaded.step == XL_STEPS;
    report(ok, ".hpm", ok ? "configuration and step %d exact, %zu parameters" : "configuration or step differs (step %d, %zu parameters)",
           (int)loaded.step, loaded.n_params);

    /* the trajectory: the same seed here gives the writer's parameters within rounding */
    if (xl_train(&own, &d, &last)) {
        int same_rng = own.rng.state == loaded.rng.state && own.rng.inc == loaded.rng.inc &&
                       own.rng.has_spare == loaded.rng.has_spare;
        report(same_rng && own.n_params == loaded.n_params, "RNG state", "%s",
               same_rng ? "exact after the same steps" : "differs after the same steps");
        if (own.n_params == loaded.n_params) {
            for (i = 0; i < own.n_params; i++) {
                double e = fabs((double)own.params[i] - (double)loaded.params[i]);
                double a = fabs((double)own.adam_m[i] - (double)loaded.adam_m[i]);
                if (memcmp(&own.params[i], &loaded.params[i], sizeof(float)) != 0) ndiff++;
                if (e > traj || e != e) traj = e != e ? HUGE_VAL : e;
                if (a > adam || a != a) adam = a != a ? HUGE_VAL : a;
            }
            report(traj <= XL_TOL_TRAJ, "trajectory",
                   "%d steps from seed %u here vs the writer: parameters max abs diff %.3g (%zu of %zu differ "
                   "in any bit), Adam m max abs diff %.3g (tolerance %g)",
                   XL_STEPS, XL_SEED, traj, ndiff, own.n_params, adam, XL_TOL_TRAJ);
        }
        heph_vae_free(&own);
    }

    /* the outputs: recomputed here from the loaded model, against the writer's */
    xl_path(p, sizeof p, dir, name, "ref");
    fp = fopen(p, "r");
    ok = fp != NULL;
    ok = ok && fscanf(fp, "%63s %d", k1, &version) == 2 && strcmp(k1, "xload") == 0 && version == 1;
    ok = ok && fscanf(fp, "%63s %63s", k1, writer) == 2 && strcmp(k1, "writer") == 0;
    ok = ok && fscanf(fp, "%63s %d", k1, &steps) == 2 && steps == XL_STEPS;
    ok = ok && ref_expect(fp, "last_loss", 1, &ref_last) && ref_expect(fp, "elbo", 1, &ref_elbo);
    ok = ok && ref_expect(fp, "decoded", XL_CODES * XL_PX, ref_dec) && ref_expect(fp, "d2_codes", XL_CODES, ref_d2c);
    ok = ok && ref_expect(fp, "d2_data", XL_N, ref_d2d);
    if (fp) fclose(fp);
    if (!ok) {
        report(0, ".ref", "%s is missing or malformed", p);
    } else if (xl_outputs_of(&loaded, &d, &o)) {
        for (i = 0; i < XL_CODES * XL_PX; i++) {
            double e = fabs((double)o.decoded[i] - ref_dec[i]);
            if (e > dmax || e != e) dmax = e != e ? HUGE_VAL : e;
        }
        for (i = 0; i < XL_CODES; i++) {
            double e = rel_diff(o.d2_codes[i], ref_d2c[i]);
            if (e > d2max || e != e) d2max = e != e ? HUGE_VAL : e;
        }
        for (i = 0; i < XL_N; i++) {
            double e = rel_diff(o.d2_data[i], ref_d2d[i]);
            if (e > d2max || e != e) d2max = e != e ? HUGE_VAL : e;
        }
        elbo_rel = rel_diff(o.elbo, ref_elbo);
        report(dmax <= XL_TOL_PIXEL, "decode", "%d pixels of %d fixed codes: max abs diff %.3g (tolerance %g)",
               XL_CODES * XL_PX, XL_CODES, dmax, XL_TOL_PIXEL);
        report(d2max <= XL_TOL_D2, "D^2", "Ledoit-Wolf D^2 of %d codes and %d encoded pictures: max rel diff %.3g (tolerance %g)",
               XL_CODES, XL_N, d2max, XL_TOL_D2);
        report(elbo_rel <= XL_TOL_ELBO, "ELBO", "-ELBO %.9g here, %.9g there: rel diff %.3g (tolerance %g)",
               o.elbo, ref_elbo, elbo_rel, XL_TOL_ELBO);
        printf("XL %s %s pixel=%.3g d2=%.3g elbo=%.3g traj=%.3g trajbits=%zu/%zu fail=%d\n", me, name, dmax,
               d2max, elbo_rel, traj, ndiff, loaded.n_params, n_fail);
    }
    heph_vae_free(&loaded);
    heph_hpd_close(&d);
    return n_fail ? 1 : 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 4 && strcmp(argv[1], "write") == 0) {
        snprintf(label, sizeof label, "xload %s", argv[3]);
        return do_write(argv[2], argv[3]);
    }
    if (argc >= 4 && strcmp(argv[1], "check") == 0)
        return do_check(argv[2], argv[3], argc >= 5 ? argv[4] : "here");
    fprintf(stderr, "usage: xload write DIR NAME | xload check DIR NAME [READER]\n");
    return 2;
}
