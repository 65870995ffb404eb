/* fuzz_safetensors.c - libFuzzer target: the safetensors reader of `hephaestus import`
   (st_parse, st_config and st_to_vae in tools/cli_export.h, issue #27). A file that parses
   must keep every tensor inside its data block; when its tensors are all F32 it is written
   again (st_serialize) and must parse to the same names, shapes, bytes and metadata. When its
   metadata describes a model (pictures up to 64K values) the model is built and filled; one
   that fills is encoded and decoded once, exported (st_from_vae) and imported again, which
   must give the same parameters bit for bit.                                              */
#include "fuzz_common.h"
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#define HEPH_ST_CODEC_ONLY
#include "../../tools/cli_export.h"

static st_file f1, f2;
static st_out outs[ST_MAX_TENSORS];

/* all-F32 files: written again, parsed again, the same */
static void rewrite(void) {
    float *vals;
    uint64_t total = 0, at = 0;
    st_buf b;
    int i, k;
    for (i = 0; i < f1.n_t; i++) {
        if (strcmp(f1.t[i].dtype, "F32") != 0) return;
        total += (f1.t[i].end - f1.t[i].begin) / 4;
    }
    if (total > ((uint64_t)1 << 22)) return;
    vals = (float *)malloc((size_t)total * sizeof(float) + sizeof(float));
    if (!vals) return;
    for (i = 0; i < f1.n_t; i++) {
        st_out *o = &outs[i];
        const st_tensor *t = &f1.t[i];
        memset(o, 0, sizeof *o);
        memcpy(o->name, t->name, sizeof o->name);
        o->rank = t->rank;
        for (k = 0; k < t->rank; k++) o->shape[k] = t->shape[k];
        o->n = (t->end - t->begin) / 4;
        o->v = vals + at;
        st_read_f32(&f1, t, vals + at);
        at += o->n;
    }
    if (st_serialize(&b, outs, f1.n_t, f1.meta, f1.n_meta) == 0) {
        if (st_parse(&f2, b.p, b.n) != 0) abort(); /* what we write must parse */
        if (f2.n_t != f1.n_t || f2.n_meta != f1.n_meta) abort();
        for (i = 0; i < f1.n_t; i++) {
            const st_tensor *x = &f1.t[i], *y = st_find(&f2, x->name);
            if (!y || y->rank != x->rank || y->end - y->begin != x->end - x->begin ||
                memcmp(f1.data + x->begin, f2.data + y->begin, (size_t)(x->end - x->begin)) != 0)
                abort();
            for (k = 0; k < x->rank; k++)
                if (x->shape[k] != y->shape[k]) abort();
        }
        for (i = 0; i < f1.n_meta; i++)
            if (strcmp(f1.meta[i].key, f2.meta[i].key) || strcmp(f1.meta[i].val, f2.meta[i].val)) abort();
        free(b.p);
    }
    free(vals);
}

/* a model the metadata describes, filled from the tensors, used, exported and imported again */
static void model(void) {
    heph_vae_config cfg;
    heph_vae m, m2;
    char err[300];
    st_buf b;
    if (st_config(&f1, &cfg, err, sizeof err) != 0) { if (!err[0]) abort(); return; }
    if ((size_t)cfg.in_c * (size_t)cfg.in_h * (size_t)cfg.in_w > ((size_t)1 << 16) || cfg.max_batch > 256) return;
    if (st_to_vae(&f1, &cfg, &m, err, sizeof err) != 0) { if (!err[0]) abort(); return; }
    {
        size_t np = (size_t)m.enc.in_n, i;
        float *x = (float *)calloc(np, sizeof(float)), *mu = (float *)calloc((size_t)m.cfg.z_dim, sizeof(float));
        if (x && mu) {
            for (i = 0; i < np; i++) x[i] = (float)(i % 5) / 4.0f;
            heph_vae_encode(&m, x, 1, mu, NULL);
            heph_vae_decode(&m, mu, 1, x);
        }
        free(x); free(mu);
    }
    if (st_from_vae(&m, &b) == 0) {
        if (st_parse(&f2, b.p, b.n) != 0) abort();
        if (st_to_vae(&f2, &cfg, &m2, err, sizeof err) != 0) {
            if (strstr(err, "cannot be built") == NULL) abort(); /* only memory may run out */
        } else {
            if (m2.n_params != m.n_params || memcmp(m2.params, m.params, m.n_params * sizeof(float)) != 0) abort();
            heph_vae_free(&m2);
        }
        free(b.p);
    }
    heph_vae_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int i;
    if (st_parse(&f1, data, size) != 0) {
        if (f1.err[0] == '\0' || !memchr(f1.err, 0, sizeof f1.err)) abort();
        return 0;
    }
    for (i = 0; i < f1.n_t; i++)
        if (f1.t[i].begin > f1.t[i].end || f1.t[i].end > f1.data_size) abort();
    rewrite();
    model();
    return 0;
}
