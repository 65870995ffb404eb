/* fuzz_hpm.c - libFuzzer target: the .hpm checkpoint loader (heph_vae_load), and the
   cycle-consistent VAE's .hpc loader (heph_cyc_load) on the same input. Each input is
   loaded twice: as it is, and with its last 8 bytes replaced by the right FNV-1a checksum,
   so that mutations get past the checksum into the fields. A checkpoint that loads is used:
   encode and decode a picture (with a label: a conditional model), one training step, then
   save and load again, which must give
   the same parameters bit for bit. Semantic checks after a successful load (issue #20), each
   an abort: a step above HEPH_STEP_MAX, an lr, beta1, beta2, eps or objective weight outside
   the ranges the CLI's flags take, a weight or Adam moment that is not finite, a negative
   second moment, more parameters than the file's bytes could hold.                        */
#include "fuzz_common.h"
#define HEPH_FSEEK(fp, off, whence) fseeko((fp), (off_t)(off), (whence))
#define HEPH_FTELL(fp) ((uint64_t)ftello(fp))
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"

static void use_model(heph_vae *m) {
    size_t np = (size_t)m->enc.in_n, D = (size_t)m->cfg.z_dim, i;
    float *x, *mu, *lv;
    heph_losses L;
    heph_vae m2;
    const char *out = fuzz_path("out.hpm");
    if (np > ((size_t)1 << 16) || m->n_params > ((size_t)1 << 20)) return; /* keep execs fast */
    x = (float *)calloc(np, sizeof(float));
    mu = (float *)calloc(D, sizeof(float));
    lv = (float *)calloc(D, sizeof(float));
    if (x && mu && lv) {
        const int y = m->cfg.n_classes - 1; /* a conditional model (version 2): its last label */
        for (i = 0; i < np; i++) x[i] = (float)(i % 7) / 6.0f;
        if (m->cfg.n_classes) { heph_cvae_encode(m, x, &y, 1, mu, lv); heph_cvae_decode(m, mu, &y, 1, x); }
        else { heph_vae_encode(m, x, 1, mu, lv); heph_vae_decode(m, mu, 1, x); }
        for (i = 0; i < np; i++) /* a sigmoid: [0,1] or NaN from NaN weights, never outside */
            if (x[i] < 0.0f || x[i] > 1.0f) abort();
        {
            int rc = m->cfg.n_classes ? heph_cvae_train_step(m, x, &y, 1, &L) : heph_vae_train_step(m, x, 1, &L);
            if (rc != HEPH_OK && rc != HEPH_E_NAN) abort();
        }
    }
    free(x); free(mu); free(lv);
    if (heph_vae_save(m, out, 0) != HEPH_OK) return;
    if (heph_vae_load(&m2, out) != HEPH_OK) abort(); /* what we wrote must load */
    if (m2.n_params != m->n_params || memcmp(m2.params, m->params, m->n_params * sizeof(float)) != 0 ||
        m2.step != m->step)
        abort();
    heph_vae_free(&m2);
}

/* what a loaded checkpoint must satisfy, whatever the file said */
static void check_loaded(const heph_vae *m, size_t size) {
    const heph_vae_config *c = &m->cfg;
    const heph_objective *o = &c->obj;
    size_t i;
    if (m->step > HEPH_STEP_MAX) abort();
    if (!(c->lr > 0.0f && c->lr <= HEPH_LR_MAX) || !(c->beta1 >= 0.0f && c->beta1 < 1.0f) ||
        !(c->beta2 >= 0.0f && c->beta2 < 1.0f) || !(c->eps > 0.0f && c->eps <= 1.0f))
        abort();
    if (!(o->beta >= 0.0f && o->beta <= HEPH_WEIGHT_MAX) || !(o->gamma >= 0.0f && o->gamma <= HEPH_WEIGHT_MAX) ||
        !(o->gamma_end >= 0.0f && o->gamma_end <= HEPH_WEIGHT_MAX) ||
        !(o->c_max >= 0.0f && o->c_max <= HEPH_WEIGHT_MAX) || !(o->alpha >= 0.0f && o->alpha <= HEPH_WEIGHT_MAX))
        abort();
    if (m->n_params == 0 || m->n_params > size / sizeof(float)) abort(); /* a lying count */
    for (i = 0; i < m->n_params; i++) {
        if (m->params[i] - m->params[i] != 0.0f) abort();
        if (m->adam_m[i] - m->adam_m[i] != 0.0f || !(m->adam_v[i] >= 0.0f) || m->adam_v[i] - m->adam_v[i] != 0.0f) abort();
    }
}

/* a .hpc that loads: its settings in range, its values finite; encode, decode and transfer
   one picture, one step, then save and load again (the same parameters) */
static void use_cyc(heph_cyc *m, size_t size) {
    const heph_cyc_config *c = &m->cfg;
    size_t np = (size_t)m->enc.in_n, i;
    float *x, *s, *z, *y;
    heph_cyc m2;
    const char *out = fuzz_path("out.hpc");
    if (m->step > HEPH_STEP_MAX || !(c->lr > 0.0f && c->lr <= HEPH_LR_MAX) || !(c->w_reverse >= 0.0f && c->w_reverse <= HEPH_WEIGHT_MAX) ||
        !(c->w_recon >= 0.0f && c->w_kl >= 0.0f) || m->n_params == 0 || m->n_params > size / sizeof(float))
        abort();
    for (i = 0; i < m->n_params; i++)
        if (m->params[i] - m->params[i] != 0.0f || !(m->adam_v[i] >= 0.0f)) abort();
    if (np > ((size_t)1 << 16) || m->n_params > ((size_t)1 << 20)) return; /* keep execs fast */
    x = (float *)calloc(2 * np, sizeof(float)); y = (float *)calloc(np, sizeof(float));
    s = (float *)calloc((size_t)c->s_dim, sizeof(float)); z = (float *)calloc((size_t)c->z_dim, sizeof(float));
    if (x && y && s && z) {
        for (i = 0; i < 2 * np; i++) x[i] = (float)(i % 7) / 6.0f;
        heph_cyc_encode(m, x, 1, s, z, NULL);
        heph_cyc_decode(m, s, z, 1, y);
        heph_cyc_transfer(m, x, x + np, 1, y);
        for (i = 0; i < np; i++)
            if (y[i] < 0.0f || y[i] > 1.0f) abort();
        i = (size_t)heph_cyc_train_step(m, x, x + np, 1, NULL);
        if (i != HEPH_OK && i != (size_t)HEPH_E_NAN) abort();
    }
    free(x); free(y); free(s); free(z);
    if (heph_cyc_save(m, out, 0) != HEPH_OK) return;
    if (heph_cyc_load(&m2, out) != HEPH_OK) abort();
    if (m2.n_params != m->n_params || memcmp(m2.params, m->params, m->n_params * sizeof(float)) != 0) abort();
    heph_cyc_free(&m2);
}

static void load(const uint8_t *data, size_t size) {
    heph_vae m;
    heph_cyc cm;
    const char *path = fuzz_file("in.hpm", data, size);
    if (!path) return;
    if (heph_cyc_load(&cm, path) == HEPH_OK) {
        use_cyc(&cm, size);
        heph_cyc_free(&cm);
    } else if (cm.err[0] == '\0' || !memchr(cm.err, 0, sizeof cm.err)) abort();
    if (heph_vae_load(&m, path) != HEPH_OK) {
        if (m.err[0] == '\0' || !memchr(m.err, 0, sizeof m.err)) abort();
        return;
    }
    check_loaded(&m, size);
    use_model(&m);
    heph_vae_free(&m);
}

#include "fuzz_hpm_seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *fixed;
    load(data, size);
    if (!(fixed = fuzz_hpm_seal(data, size))) return 0;
    if (memcmp(fixed, data, size) != 0) load(fixed, size);
    free(fixed);
    return 0;
}
