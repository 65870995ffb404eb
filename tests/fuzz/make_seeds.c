/* make_seeds.c - writes the seed inputs of the fuzz targets (run by tests/fuzz/make_corpus.sh,
   which adds the gzip and ZIP variants with the system's gzip and zip).
   usage: make_seeds CORPUS_DIR WORK_DIR
   CORPUS_DIR/X/ gets small valid (and a few nearly valid) inputs of target X; WORK_DIR gets
   the .npy and IDX files the script then packs.                                           */
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#include <stdlib.h>
#include <string.h>

static const char *C, *W;
static int failures;

static void put(const char *dir, const char *name, const void *p, size_t n) {
    char path[1024];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) { fprintf(stderr, "make_seeds: cannot write %s\n", path); failures++; }
}
static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    char *b;
    long sz;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) { if (f) fclose(f); return NULL; }
    b = (char *)malloc((size_t)sz + 1);
    if (!b || fread(b, 1, (size_t)sz, f) != (size_t)sz) { fclose(f); free(b); return NULL; }
    fclose(f);
    *n = (size_t)sz;
    return b;
}
static char *target(const char *t) {
    static char p[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", C, t);
    return p[k];
}

/* ---- .hpd ---------------------------------------------------------------------------------- */
static void hpd(const char *name, uint32_t c, uint32_t h, uint32_t w, uint32_t dtype, uint64_t count, int nf, int values) {
    static const double vals[4] = {0.0, 0.5, 1.0, 2.0};
    heph_hpd_info info;
    heph_hpd_writer wr;
    char path[1024];
    uint8_t px[64];
    float fx[64];
    int32_t fac[2];
    uint64_t i;
    size_t j, np = (size_t)c * h * w;
    memset(&info, 0, sizeof info);
    info.count = count; info.c = c; info.h = h; info.w = w; info.dtype = dtype;
    info.value_max = dtype == HEPH_PX_U8 ? 255.0f : 1.0f;
    info.n_factors = (uint32_t)nf;
    snprintf(info.source, sizeof info.source, "fuzz/%s", name);
    if (nf > 0) { strcpy(info.factors[0].name, "shape"); info.factors[0].n_values = 3; info.factors[0].values = values ? vals : NULL; }
    if (nf > 1) { strcpy(info.factors[1].name, "scale"); info.factors[1].n_values = 4; info.factors[1].values = values ? vals : NULL; }
    snprintf(path, sizeof path, "%s/%s", target("hpd"), name);
    if (heph_hpd_create(&wr, path, &info) != HEPH_OK) { fprintf(stderr, "make_seeds: %s\n", wr.err); failures++; return; }
    for (i = 0; i < count; i++) {
        for (j = 0; j < np; j++) { px[j] = (uint8_t)((i * 37 + j * 11) & 255); fx[j] = (float)px[j] / 255.0f; }
        fac[0] = (int32_t)(i % 3); fac[1] = (int32_t)(i % 4);
        if ((dtype == HEPH_PX_F32 ? heph_hpd_put_f32(&wr, fx, fac) : heph_hpd_put_u8(&wr, px, fac)) != HEPH_OK) { failures++; heph_hpd_abort(&wr); return; }
    }
    if (heph_hpd_finish(&wr) != HEPH_OK) failures++;
}

/* ---- .hpm ---------------------------------------------------------------------------------- */
static void hpm(const char *name, int c, int h, int w, int z, const char *enc, const char *dec, int obj, int recon, int flags, int K) {
    heph_vae_config cfg;
    heph_vae m;
    heph_losses L;
    char path[1024];
    float x[2 * 64];
    int i;
    heph_vae_config_default(&cfg);
    cfg.in_c = c; cfg.in_h = h; cfg.in_w = w; cfg.z_dim = z; cfg.max_batch = 2;
    snprintf(cfg.enc_spec, sizeof cfg.enc_spec, "%s", enc);
    snprintf(cfg.dec_spec, sizeof cfg.dec_spec, "%s", dec);
    cfg.obj.kind = obj; cfg.obj.recon = recon;
    if (obj == HEPH_OBJ_TCVAE) { cfg.obj.dataset_size = 10; cfg.obj.estimator = HEPH_TC_MSS; cfg.obj.beta = 4.0f; }
    if (obj == HEPH_OBJ_CAPACITY) { cfg.obj.c_max = 5.0f; cfg.obj.ramp_steps = 10; cfg.obj.gamma = 10.0f; cfg.obj.gamma_end = 10.0f; }
    cfg.n_classes = K; /* K > 0: a conditional model (version 2), label loss off (no classifier) */
    if (heph_vae_init(&m, &cfg, 3) != HEPH_OK) { fprintf(stderr, "make_seeds: %s: %s\n", name, m.err); failures++; return; }
    for (i = 0; i < 2 * c * h * w; i++) x[i] = (float)(i % 3) / 2.0f;
    if (K) { const int y[2] = {0, K - 1}; heph_cvae_train_step(&m, x, y, 2, &L); }
    else heph_vae_train_step(&m, x, 2, &L);
    snprintf(path, sizeof path, "%s/%s", target("hpm"), name);
    if (heph_vae_save(&m, path, flags) != HEPH_OK) { fprintf(stderr, "make_seeds: %s\n", m.err); failures++; }
    heph_vae_free(&m);
}

/* ---- .hpc: a cycle-consistent VAE after one step (fuzz_hpm.c loads both kinds) ------------ */
static void hpc(const char *name, const char *enc, const char *dec, int rev, int flags) {
    heph_cyc_config cfg;
    heph_cyc m;
    char path[1024];
    float x[2 * 2 * 16];
    int i;
    heph_cyc_config_default(&cfg);
    cfg.in_c = 1; cfg.in_h = cfg.in_w = 4; cfg.s_dim = 2; cfg.z_dim = 2; cfg.max_batch = 2; cfg.reverse_grad = rev;
    snprintf(cfg.enc_spec, sizeof cfg.enc_spec, "%s", enc);
    snprintf(cfg.dec_spec, sizeof cfg.dec_spec, "%s", dec);
    if (heph_cyc_init(&m, &cfg, 3) != HEPH_OK) { fprintf(stderr, "make_seeds: %s: %s\n", name, m.err); failures++; return; }
    for (i = 0; i < 2 * 2 * 16; i++) x[i] = (float)(i % 3) / 2.0f;
    heph_cyc_train_step(&m, x, x + 2 * 16, 2, NULL);
    snprintf(path, sizeof path, "%s/%s", target("hpm"), name);
    if (heph_cyc_save(&m, path, flags) != HEPH_OK) { fprintf(stderr, "make_seeds: %s\n", m.err); failures++; }
    heph_cyc_free(&m);
}

/* ---- .hpn: a network alone, PyTorch-initialised, its biases made nonzero ----------------- */
static void hpn(const char *name, int c, int h, int w, const char *spec) {
    heph_net net;
    heph_rng rng;
    char path[1024], err[HEPH_ERRLEN];
    float *p;
    size_t i;
    int l;
    if (heph_net_init(&net, spec, c, h, w, 1, err, sizeof err) != HEPH_OK) { fprintf(stderr, "make_seeds: %s: %s\n", name, err); failures++; return; }
    p = (float *)calloc(2 * net.n_params + 1, sizeof(float));
    if (!p) { heph_net_free(&net); failures++; return; }
    heph_net_bind(&net, p, p + net.n_params);
    heph_rng_seed(&rng, 5);
    heph_net_init_params(&net, &rng);
    for (l = 0; l < net.n_layers; l++)
        for (i = net.layers[l].b_off; i < net.layers[l].w_off + net.layers[l].n_params; i++) p[i] = 0.01f * (float)(i % 5);
    snprintf(path, sizeof path, "%s/%s", target("hpn"), name);
    if (heph_net_save(&net, path, err, sizeof err) != HEPH_OK) { fprintf(stderr, "make_seeds: %s\n", err); failures++; }
    heph_net_free(&net);
    free(p);
}

/* ---- spec: 3 shape bytes (channels-1, side index, side index), z byte, "ENC;DEC" --------- */
static void spec(const char *name, int c, int hi, int wi, int z, const char *text) {
    unsigned char b[600];
    size_t n = strlen(text);
    b[0] = (unsigned char)(c - 1); b[1] = (unsigned char)hi; b[2] = (unsigned char)wi; b[3] = (unsigned char)(z - 1);
    memcpy(b + 4, text, n);
    put(target("spec"), name, b, n + 4);
}

/* ---- .npy ------------------------------------------------------------------------------------ */
static size_t npy(unsigned char *out, int version, const char *dict, const void *data, size_t n) {
    size_t pre = version == 1 ? 10 : 12, hl = strlen(dict), total = pre + hl + 1, pad = (64 - total % 64) % 64, i;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)version; out[7] = 0;
    hl += pad + 1;
    if (version == 1) { out[8] = (unsigned char)(hl & 255); out[9] = (unsigned char)(hl >> 8); }
    else { out[8] = (unsigned char)(hl & 255); out[9] = (unsigned char)(hl >> 8); out[10] = 0; out[11] = 0; }
    memcpy(out + pre, dict, strlen(dict));
    for (i = 0; i < pad; i++) out[pre + strlen(dict) + i] = ' ';
    out[pre + hl - 1] = '\n';
    memcpy(out + pre + hl, data, n);
    return pre + hl + n;
}
static void npy_seeds(void) {
    static unsigned char cls[4096], img[16384], both[20480];
    unsigned char lab[2 * 6 * 8], px[2 * 4096];
    size_t nc, ni, i;
    int64_t v[12] = {0, 0, 0, 0, 0, 0, 0, 2, 5, 39, 31, 31};
    for (i = 0; i < 12; i++) { int k; for (k = 0; k < 8; k++) lab[i * 8 + (size_t)k] = (unsigned char)((uint64_t)v[i] >> (8 * k)); }
    for (i = 0; i < sizeof px; i++) px[i] = (unsigned char)(((i / 64) % 8 < 4) ^ ((i % 64) % 8 < 4));
    nc = npy(cls, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 6), }", lab, sizeof lab);
    ni = npy(img, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 64, 64), }", px, sizeof px);
    memcpy(both, cls, nc); memcpy(both + nc, img, ni);
    put(target("npy"), "two.npy2", both, nc + ni);
    put(W, "latents_classes.npy", cls, nc);
    put(W, "imgs.npy", img, ni);
    nc = npy(cls, 2, "{\"descr\": \"<i8\", \"fortran_order\": False, \"shape\": (2L, 6L)}", lab, sizeof lab);
    ni = npy(img, 3, "{'shape': (2, 64, 64), 'fortran_order': False, 'descr': '|u1'}", px, sizeof px);
    memcpy(both, cls, nc); memcpy(both + nc, img, ni);
    put(target("npy"), "v2v3.npy2", both, nc + ni);
    nc = npy(cls, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 6), }", lab, 48);
    ni = npy(img, 1, "{'descr': '|u1', 'fortran_order': True, 'shape': (1, 64, 64), }", px, 4096);
    memcpy(both, cls, nc); memcpy(both + nc, img, ni);
    put(target("npy"), "fortran.npy2", both, nc + ni);
    nc = npy(cls, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 6), }", lab + 48, 48);
    put(target("npy"), "classes_only.npy", cls, nc);
}

/* ---- IDX (big-endian), written to WORK_DIR; the script gzips them ---------------------------- */
static void idx_seeds(void) {
    unsigned char b[16 + 3 * 4 * 5], l[8 + 3];
    size_t i;
    memset(b, 0, sizeof b);
    b[2] = 8; b[3] = 3; b[7] = 3; b[11] = 4; b[15] = 5;
    for (i = 16; i < sizeof b; i++) b[i] = (unsigned char)(i * 13);
    put(W, "img.idx", b, sizeof b);
    memset(l, 0, sizeof l);
    l[2] = 8; l[3] = 1; l[7] = 3; l[8] = 1; l[9] = 9; l[10] = 4;
    put(W, "lab.idx", l, sizeof l);
}

/* ---- pictures: PNG and JPEG with a mode byte in front --------------------------------------- */
static void img(const char *name, int mode, int jpg, int w, int h, int comp) {
    unsigned char px[16 * 16 * 4], *png, *buf;
    int n = 0, i;
    char tmp[1024];
    size_t fn = 0;
    for (i = 0; i < w * h * comp; i++) px[i] = (unsigned char)(i * 29 + 7);
    if (!jpg) {
        png = stbi_write_png_to_mem(px, w * comp, w, h, comp, &n);
        if (!png) { failures++; return; }
        buf = (unsigned char *)malloc((size_t)n + 1);
        buf[0] = (unsigned char)mode;
        memcpy(buf + 1, png, (size_t)n);
        put(target("image"), name, buf, (size_t)n + 1);
        free(buf); STBIW_FREE(png);
        return;
    }
    snprintf(tmp, sizeof tmp, "%s/t.jpg", W);
    if (!stbi_write_jpg(tmp, w, h, comp, px, 60)) { failures++; return; }
    buf = (unsigned char *)slurp(tmp, &fn);
    if (!buf) { failures++; return; }
    png = (unsigned char *)malloc(fn + 1);
    png[0] = (unsigned char)mode;
    memcpy(png + 1, buf, fn);
    put(target("image"), name, png, fn + 1);
    free(png); free(buf);
    remove(tmp);
}

/* ---- CLI: mode byte, parameter byte, arguments separated by newlines ------------------------ */
static void cli(const char *name, int mode, int param, const char *args) {
    unsigned char b[1024];
    size_t n = strlen(args);
    b[0] = (unsigned char)mode; b[1] = (unsigned char)param;
    memcpy(b + 2, args, n);
    put(target("cli"), name, b, n + 2);
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: make_seeds CORPUS_DIR WORK_DIR\n"); return 2; }
    C = argv[1]; W = argv[2];
    /* .hpd */
    hpd("u8_nolabels.hpd", 1, 2, 3, HEPH_PX_U8, 3, 0, 0);
    hpd("bit_2factors_values.hpd", 1, 4, 4, HEPH_PX_BIT, 2, 2, 1);
    hpd("f32_1factor.hpd", 2, 2, 2, HEPH_PX_F32, 2, 1, 0);
    hpd("u8_rgb_values.hpd", 3, 2, 2, HEPH_PX_U8, 2, 1, 1);
    hpd("bit_odd.hpd", 1, 3, 3, HEPH_PX_BIT, 3, 0, 0);
    /* .hpm */
    hpm("mlp.hpm", 1, 4, 4, 2, "dense8,relu", "dense16", HEPH_OBJ_BETA, HEPH_RECON_BERNOULLI, 0, 0);
    hpm("mlp_weights.hpm", 1, 4, 4, 2, "dense8,relu", "dense8,tanh,dense16", HEPH_OBJ_BETA, HEPH_RECON_GAUSSIAN, HEPH_SAVE_WEIGHTS_ONLY, 0);
    hpm("conv.hpm", 1, 8, 8, 2, "conv2k3s2p1,relu,flatten", "dense32,lrelu0.2,reshape2x4x4,convt1k4s2p1", HEPH_OBJ_CAPACITY, HEPH_RECON_BERNOULLI, 0, 0);
    hpm("tcvae.hpm", 2, 2, 2, 3, "", "dense8,sigmoid", HEPH_OBJ_TCVAE, HEPH_RECON_BERNOULLI, 0, 0);
    hpm("cvae.hpm", 1, 4, 4, 2, "dense8,relu", "dense8,relu,dense16", HEPH_OBJ_BETA, HEPH_RECON_BERNOULLI, 0, 3);
    hpc("cyc.hpc", "dense8,relu", "dense16", HEPH_CYC_REVERSE_ENCODER, 0);
    hpc("cyc_bn_all.hpc", "dense8,bn,relu", "dense8,tanh,dense16", HEPH_CYC_REVERSE_ALL, HEPH_SAVE_WEIGHTS_ONLY);
    /* .hpn: a dense classifier, a conv classifier, a small decoder (reshape, convt) */
    hpn("dense.hpn", 1, 4, 4, "dense8,relu,dense6,lrelu0.2,dense3");
    hpn("conv.hpn", 1, 8, 8, "conv2k3s2p1,relu,conv4k3s2p1,lrelu,flatten,dense3");
    hpn("decoder.hpn", 2, 1, 1, "dense32,tanh,reshape2x4x4,convt2k4s2p1,relu,convt1k3s1p1,sigmoid");
    hpn("pool.hpn", 1, 8, 8, "conv2k3p1,bn,relu,maxpool2,conv3k3p1,maxpool2,flatten,dense3");
    /* spec: side index 3 = 4, 6 = 8, 9 = 28 */
    spec("mlp", 1, 3, 3, 2, "dense8,relu;dense16");
    spec("conv", 1, 6, 6, 2, "conv2k3s2p1,relu,conv4k4s2p1,flatten,dense8;dense32,lrelu0.2,reshape2x4x4,convt2k4s2p1,relu,convt1k3s1p1");
    spec("acts", 3, 3, 3, 4, "lrelu,sigmoid,tanh,flatten,dense4;dense48,reshape3x4x4");
    spec("mnist", 1, 9, 9, 8, "dense400,relu;dense400,relu,dense784");
    spec("bad", 1, 3, 3, 2, "conv0k3,,dense99999999;reshape1x2");
    spec("pool", 1, 6, 6, 2, "conv2k3p1,bn,relu,maxpool2,maxpool2,flatten,dense4,bn;dense8,bn,reshape2x2x2,maxpool2,flatten,dense64");
    /* npy, idx, pictures */
    npy_seeds();
    idx_seeds();
    img("gray4.png", 1, 0, 4, 4, 1);
    img("rgb3x2.png", 3 + 3 * 3, 0, 3, 2, 3);
    img("rgba.png", 0, 0, 2, 2, 4);
    img("graya.png", 3 * 5 + 1, 0, 5, 3, 2);
    img("rgb16.jpg", 64 + 3, 1, 16, 16, 3);
    img("gray8.jpg", 128, 1, 8, 8, 1);
    img("big.png", 2 + 3 * 2, 0, 16, 16, 3);
    /* CLI */
    cli("train", 0, 0, "--data\nx.hpd\n--enc\ndense32,relu\n--dec\ndense12288\n--z\n4\n--batch-size\n32\n--lr\n1e-3\n--objective\ntcvae\n--estimator\nmws\n--shape\n3x64x64");
    cli("train_resume", 0, 0, "--data\nd\n--resume\nm.hpm\n--steps\n100\n--checkpoint-every\n5\n--threads\n1");
    cli("analysis", 1, 0, "--model\nm\n--batch\nb\n--cov\nridge:0.01\n--auto\nmad:2\n--top-k\n3\n--zmin\n1.5\n--truth\nclass=8\n--steps\n4");
    cli("batch", 2, 0, "--data\ns.hpd\n--normal\nshape=2,hue=0-7\n--n-normal\n40\n--outlier\nviolate\n--n-outlier\n8\n--seed\n2\n--out\nb.hpd\n--shuffle");
    cli("dims", 3, 9, "0,3,5");
    cli("rules", 4, 0, "shape=0|2,1=3-9,is_outlier=1");
    cli("numbers", 5, 0, "42\n1.5e3\n1x28x28\nmcd:0.75\nchi2:0.99\ncapacity");
    cli("objective", 6, 0, "--beta\n4\n--gamma\n10\n--c-max\n25\n--ramp-steps\n1000\n--recon\ngaussian\n--alpha\n1");
    return failures ? 1 : 0;
}
