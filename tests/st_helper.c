/* st_helper.c - helper of tests/test_safetensors.sh (issue #27), built with the codec of
   tools/cli_export.h:
     st_helper init PRESET SEED OUT.hpm          a freshly initialised model of a preset, or of
                                                 "pool" (a small conv model with maxpool2), or of
                                                 "bn" (BatchNorm in both networks, 3 steps trained)
     st_helper ref MODEL.hpm N SEED OUT.st       N pictures x and codes z drawn from SEED, and the C
                                                 model's mu, logvar (encode x) and dec (decode z,
                                                 sigmoid) as one safetensors file
     st_helper compare MODEL.hpm REF.st TOL      encode REF's x, decode its z; print the largest
                                                 |difference| to its mu, logvar, dec; exit 1 above TOL
     st_helper same A.hpm B.hpm                  same specs, shape and parameters bit for bit
     st_helper same-tensors A.st B.st            the same tensor names, shapes and bytes
     st_helper bad GOOD.st CASE OUT.st           a malformed variant of GOOD (see bad_cases)  */
#define HEPHAESTUS_IMPLEMENTATION
#include "../tools/heph_posix.h"
#define HEPH_ST_CODEC_ONLY
#include "../tools/cli_export.h"
#include <math.h>

static int die(const char *fmt, const char *a) {
    fprintf(stderr, "st_helper: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    return 2;
}

static int load(heph_vae *m, const char *path) {
    if (heph_vae_load(m, path) != HEPH_OK) { fprintf(stderr, "st_helper: %s\n", m->err); return 0; }
    return 1;
}

static st_file *open_st(const char *path, unsigned char **buf) {
    static st_file f[2];
    static int k;
    char err[300];
    size_t n = 0;
    st_file *s = &f[k++ & 1];
    *buf = st_slurp(path, &n, err, sizeof err);
    if (!*buf) { fprintf(stderr, "st_helper: %s\n", err); return NULL; }
    if (st_parse(s, *buf, n) != 0) { fprintf(stderr, "st_helper: %s: %s\n", path, s->err); return NULL; }
    return s;
}

static int write_file(const char *path, const unsigned char *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    int ok = fp && fwrite(p, 1, n, fp) == n;
    if (fp && fclose(fp) != 0) ok = 0;
    return ok;
}

static int cmd_ref(const char *model, int n, uint64_t seed, const char *out) {
    heph_vae m;
    heph_rng rng;
    size_t np, D, i;
    float *x, *z, *mu, *lv, *dec;
    st_out t[5];
    st_buf b;
    int ok;
    if (!load(&m, model)) return 1;
    np = (size_t)m.enc.in_n; D = (size_t)m.cfg.z_dim;
    x = malloc((size_t)n * np * 4); z = malloc((size_t)n * D * 4); mu = malloc((size_t)n * D * 4);
    lv = malloc((size_t)n * D * 4); dec = malloc((size_t)n * np * 4);
    heph_rng_seed(&rng, seed);
    for (i = 0; i < (size_t)n * np; i++) x[i] = heph_rng_uniform(&rng);
    for (i = 0; i < (size_t)n * D; i++) z[i] = heph_rng_normal(&rng);
    heph_vae_encode(&m, x, (size_t)n, mu, lv);
    heph_vae_decode(&m, z, (size_t)n, dec);
    memset(t, 0, sizeof t);
    strcpy(t[0].name, "x"); t[0].rank = 4; t[0].shape[0] = (uint64_t)n; t[0].shape[1] = (uint64_t)m.cfg.in_c;
    t[0].shape[2] = (uint64_t)m.cfg.in_h; t[0].shape[3] = (uint64_t)m.cfg.in_w; t[0].v = x; t[0].n = (uint64_t)n * np;
    strcpy(t[1].name, "z"); t[1].rank = 2; t[1].shape[0] = (uint64_t)n; t[1].shape[1] = D; t[1].v = z; t[1].n = (uint64_t)n * D;
    t[2] = t[1]; strcpy(t[2].name, "mu"); t[2].v = mu;
    t[3] = t[1]; strcpy(t[3].name, "logvar"); t[3].v = lv;
    t[4] = t[0]; strcpy(t[4].name, "dec"); t[4].v = dec;
    ok = st_serialize(&b, t, 5, NULL, 0) == 0 && write_file(out, b.p, b.n);
    free(b.p); free(x); free(z); free(mu); free(lv); free(dec);
    heph_vae_free(&m);
    return ok ? 0 : die("%s: cannot write", out);
}

/* largest |a - b| over n values (NaN counts as infinite) */
static double maxdiff(const float *a, const float *b, size_t n) {
    double d = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= d)) d = e == e ? e : (double)INFINITY;
    }
    return d;
}

static const float *tensor(const st_file *f, const char *name, uint64_t n, float **keep) {
    const st_tensor *t = st_find(f, name);
    if (!t || strcmp(t->dtype, "F32") != 0 || (t->end - t->begin) != 4 * n) return NULL;
    *keep = malloc((size_t)n * 4 + 4);
    st_read_f32(f, t, *keep);
    return *keep;
}

static int cmd_compare(const char *model, const char *ref, double tol) {
    heph_vae m;
    unsigned char *buf;
    st_file *f;
    const st_tensor *tx;
    float *x = NULL, *z = NULL, *emu = NULL, *elv = NULL, *edec = NULL, *mu, *lv, *dec;
    size_t n, np, D;
    double dm, dl, dd;
    if (!load(&m, model)) return 1;
    if (!(f = open_st(ref, &buf))) return 1;
    np = (size_t)m.enc.in_n; D = (size_t)m.cfg.z_dim;
    tx = st_find(f, "x");
    if (!tx) return die("%s: no tensor x", ref);
    n = (size_t)((tx->end - tx->begin) / 4 / np);
    if (!tensor(f, "x", n * np, &x) || !tensor(f, "z", n * D, &z) || !tensor(f, "mu", n * D, &emu) ||
        !tensor(f, "logvar", n * D, &elv) || !tensor(f, "dec", n * np, &edec))
        return die("%s: tensors x, z, mu, logvar, dec do not fit the model", ref);
    mu = malloc(n * D * 4); lv = malloc(n * D * 4); dec = malloc(n * np * 4);
    heph_vae_encode(&m, x, n, mu, lv);
    heph_vae_decode(&m, z, n, dec);
    dm = maxdiff(mu, emu, n * D); dl = maxdiff(lv, elv, n * D); dd = maxdiff(dec, edec, n * np);
    printf("%zu pictures: max |mu diff| %.3g, |logvar diff| %.3g, |decoder output diff| %.3g\n", n, dm, dl, dd);
    free(x); free(z); free(emu); free(elv); free(edec); free(mu); free(lv); free(dec); free(buf);
    heph_vae_free(&m);
    return dm <= tol && dl <= tol && dd <= tol ? 0 : 1;
}

static int cmd_same(const char *a, const char *b) {
    heph_vae m1, m2;
    int same;
    if (!load(&m1, a) || !load(&m2, b)) return 1;
    same = m1.n_params == m2.n_params && !strcmp(m1.cfg.enc_spec, m2.cfg.enc_spec) &&
           !strcmp(m1.cfg.dec_spec, m2.cfg.dec_spec) && m1.cfg.z_dim == m2.cfg.z_dim &&
           m1.cfg.in_c == m2.cfg.in_c && m1.cfg.in_h == m2.cfg.in_h && m1.cfg.in_w == m2.cfg.in_w &&
           m1.cfg.obj.kind == m2.cfg.obj.kind && m1.cfg.obj.beta == m2.cfg.obj.beta && m1.cfg.lr == m2.cfg.lr &&
           memcmp(m1.params, m2.params, m1.n_params * sizeof(float)) == 0;
    printf("%s and %s: %s (%zu parameters)\n", a, b, same ? "the same model" : "DIFFERENT", m1.n_params);
    heph_vae_free(&m1); heph_vae_free(&m2);
    return same ? 0 : 1;
}

static int cmd_same_tensors(const char *a, const char *b) {
    unsigned char *ba, *bb;
    st_file *fa = open_st(a, &ba), *fb;
    int i, k;
    if (!fa) return 1;
    fb = open_st(b, &bb);
    if (!fb) return 1;
    if (fa->n_t != fb->n_t) { printf("%d tensors against %d\n", fa->n_t, fb->n_t); return 1; }
    for (i = 0; i < fa->n_t; i++) {
        const st_tensor *x = &fa->t[i], *y = st_find(fb, x->name);
        if (!y || y->rank != x->rank || strcmp(x->dtype, y->dtype) || y->end - y->begin != x->end - x->begin ||
            memcmp(fa->data + x->begin, fb->data + y->begin, (size_t)(x->end - x->begin)) != 0) {
            printf("tensor %s differs\n", x->name);
            return 1;
        }
        for (k = 0; k < x->rank; k++)
            if (x->shape[k] != y->shape[k]) { printf("tensor %s: shapes differ\n", x->name); return 1; }
    }
    printf("%d tensors, same names, shapes and bytes\n", fa->n_t);
    return 0;
}

/* ---- malformed variants ---------------------------------------------------------------------- */

static void put_shape(st_buf *h, const st_tensor *t) {
    int k;
    char s[32];
    st_puts(h, "[");
    for (k = 0; k < t->rank; k++) { snprintf(s, sizeof s, "%s%llu", k ? "," : "", (unsigned long long)t->shape[k]); st_puts(h, s); }
    st_puts(h, "]");
}

/* GOOD rewritten tensor by tensor (in data order, as we write them), with one change */
static int cmd_bad(const char *good, const char *which, const char *out) {
    unsigned char *buf;
    st_file *f = open_st(good, &buf);
    st_buf h = {0}, file = {0};
    unsigned char len[8];
    uint64_t off = 0, hn, extra = 0;
    int i, n, nmeta;
    char s[256];
    if (!f) return 1;
    n = f->n_t;
    nmeta = f->n_meta;
    if (!strcmp(which, "missing")) n--;
    if (!strcmp(which, "no-meta")) nmeta = 0;
    st_puts(&h, "{");
    if (nmeta) {
        st_puts(&h, "\"__metadata__\":{");
        for (i = 0; i < nmeta; i++) {
            const char *v = f->meta[i].val;
            if (i) st_puts(&h, ",");
            st_put_jstr(&h, f->meta[i].key);
            st_puts(&h, ":");
            if (!strcmp(which, "meta-number") && !strcmp(f->meta[i].key, "z_dim")) { st_puts(&h, v); continue; }
            if (!strcmp(which, "bad-spec") && !strcmp(f->meta[i].key, "encoder_spec")) v = "conv0k4,relu";
            if (!strcmp(which, "bad-shape-meta") && !strcmp(f->meta[i].key, "input_shape")) v = "1,28";
            st_put_jstr(&h, v);
        }
        st_puts(&h, "}");
    }
    for (i = 0; i < n; i++) {
        const st_tensor *t = &f->t[i];
        uint64_t bytes = t->end - t->begin;
        if (nmeta || i) st_puts(&h, ",");
        st_put_jstr(&h, !strcmp(which, "duplicate") && i == 1 ? f->t[0].name : t->name);
        if (!strcmp(which, "dtype-f16") && i == 0) {
            snprintf(s, sizeof s, ":{\"dtype\":\"F16\",\"shape\":[%llu]", (unsigned long long)(bytes / 2));
            st_puts(&h, s);
        } else if (!strcmp(which, "dtype-unknown") && i == 0) {
            st_puts(&h, ":{\"dtype\":\"F33\",\"shape\":");
            put_shape(&h, t);
        } else if (!strcmp(which, "shape-swapped") && t->rank == 2) {
            snprintf(s, sizeof s, ":{\"dtype\":\"F32\",\"shape\":[%llu,%llu]", (unsigned long long)t->shape[1],
                     (unsigned long long)t->shape[0]);
            st_puts(&h, s);
            which = "done";
        } else if (!strcmp(which, "shape-negative") && i == 0) {
            st_puts(&h, ":{\"dtype\":\"F32\",\"shape\":[-1]");
        } else {
            st_puts(&h, ":{\"dtype\":\"F32\",\"shape\":");
            put_shape(&h, t);
        }
        if (!strcmp(which, "hole") && i == 1) off += 4, extra = 4;
        if (!strcmp(which, "overlap") && i == 1) off -= 4;
        snprintf(s, sizeof s, ",\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + bytes - (!strcmp(which, "size-mismatch") && i == 0 ? 4 : 0)));
        st_puts(&h, s);
        off += bytes;
    }
    if (!strcmp(which, "extra")) { /* one more tensor, its 4 bytes at the end */
        snprintf(s, sizeof s, ",\"encoder.99.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%llu,%llu]}",
                 (unsigned long long)off, (unsigned long long)(off + 4));
        st_puts(&h, s);
    }
    st_puts(&h, "}");
    if (!strcmp(which, "json-trailing")) st_puts(&h, " x");
    if (!strcmp(which, "unterminated")) h.n = h.n / 2;
    if (!strcmp(which, "bad-escape")) { h.n = 0; st_puts(&h, "{\"enc\\qoder.0.weight\":{}}"); }
    if (!strcmp(which, "not-object")) { h.n = 0; st_puts(&h, "[1,2,3]"); }
    while (h.n % 8) st_puts(&h, " ");
    hn = h.n;
    if (!strcmp(which, "header-length")) hn = (uint64_t)1 << 40;
    for (i = 0; i < 8; i++) len[i] = (unsigned char)(hn >> (8 * i));
    st_put(&file, len, 8);
    st_put(&file, h.p, h.n);
    if (strcmp(which, "bad-escape") && strcmp(which, "not-object")) {
        uint64_t data = off;
        if (extra) { /* the hole: 4 zero bytes after the first tensor */
            st_put(&file, f->data, (size_t)(f->t[0].end));
            st_put(&file, "\0\0\0\0", 4);
            st_put(&file, f->data + f->t[0].end, (size_t)(data - extra - f->t[0].end));
        } else {
            st_put(&file, f->data, (size_t)(!strcmp(which, "overlap") ? data + 4 : data));
        }
        if (!strcmp(which, "trailing") || !strcmp(which, "extra")) st_put(&file, "\0\0\0\0", 4);
    }
    if (!strcmp(which, "truncated")) file.n -= 100;
    if (!strcmp(which, "short")) file.n = 5;
    if (!write_file(out, file.p, file.n)) return die("%s: cannot write", out);
    free(h.p); free(file.p); free(buf);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "init")) {
        heph_vae_config cfg;
        heph_vae m;
        int rc;
        if (!strcmp(argv[2], "pool") || !strcmp(argv[2], "bn")) { /* not presets (3x16x16, z 4) */
            heph_vae_config_default(&cfg);
            cfg.in_c = 3; cfg.in_h = cfg.in_w = 16; cfg.z_dim = 4; cfg.max_batch = 8;
            if (argv[2][0] == 'p') { /* pooling in the encoder */
                strcpy(cfg.enc_spec, "conv4k3s1p1,relu,maxpool2,conv6k3s1p1,lrelu0.1,maxpool2,flatten,dense16,relu");
                strcpy(cfg.dec_spec, "dense96,relu,reshape6x4x4,convt4k4s2p1,relu,convt3k4s2p1");
            } else { /* BatchNorm over channels and over features, in both networks */
                strcpy(cfg.enc_spec, "conv4k3s1p1,bn,relu,maxpool2,flatten,dense16,bn,relu");
                strcpy(cfg.dec_spec, "dense96,bn,relu,reshape6x4x4,convt4k4s2p1,bn,relu,convt3k4s2p1");
            }
        } else if (heph_vae_config_preset(&cfg, argv[2]) != HEPH_OK) return die("unknown preset %s", argv[2]);
        if (heph_vae_init(&m, &cfg, (uint64_t)atol(argv[3])) != HEPH_OK) return die("%s", m.err);
        if (!strcmp(argv[2], "bn")) { /* three training steps: the running statistics move off 0 and 1 */
            static float x[8 * 3 * 16 * 16];
            heph_rng r;
            int i;
            heph_rng_seed(&r, 4);
            for (i = 0; i < 8 * 3 * 16 * 16; i++) x[i] = heph_rng_uniform(&r);
            for (i = 0; i < 3; i++)
                if (heph_vae_train_step(&m, x, 8, NULL) != HEPH_OK) return die("%s", m.err);
        }
        rc = heph_vae_save(&m, argv[4], HEPH_SAVE_WEIGHTS_ONLY);
        heph_vae_free(&m);
        return rc == HEPH_OK ? 0 : die("%s: cannot write", argv[4]);
    }
    if (argc == 6 && !strcmp(argv[1], "ref")) return cmd_ref(argv[2], atoi(argv[3]), (uint64_t)atol(argv[4]), argv[5]);
    if (argc == 5 && !strcmp(argv[1], "compare")) return cmd_compare(argv[2], argv[3], atof(argv[4]));
    if (argc == 4 && !strcmp(argv[1], "same")) return cmd_same(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "same-tensors")) return cmd_same_tensors(argv[2], argv[3]);
    if (argc == 5 && !strcmp(argv[1], "bad")) return cmd_bad(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: see the comment at the top of tests/st_helper.c\n");
    return 2;
}
