/* fuzz_spec.c - libFuzzer target: architecture spec strings (heph_spec_parse) and the
   networks they build. Input: 3 bytes of input shape (channels, height, width), 1 byte z_dim,
   then "ENCODER;DECODER" text. Both specs are parsed against their inputs; every layer must
   chain (out of one = in of the next) and count its parameters; when the model is small it is
   built, trained one step on a batch of 2 and used to encode and decode.                    */
#include "fuzz_common.h"
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"

/* checks the chain of layers; returns the multiply-adds of one forward pass, roughly (each
   layer's parameters times the larger of its input and output areas) */
static double check_layers(const heph_layer *L, int n, int c, int h, int w) {
    int l;
    double work = 0.0;
    for (l = 0; l < n; l++) {
        double ai = (double)L[l].in_h * L[l].in_w, ao = (double)L[l].out_h * L[l].out_w;
        if (L[l].in_c != c || L[l].in_h != h || L[l].in_w != w) abort();
        if (L[l].out_c <= 0 || L[l].out_h <= 0 || L[l].out_w <= 0) abort();
        work += (double)L[l].n_params * (ai > ao ? ai : ao);
        c = L[l].out_c; h = L[l].out_h; w = L[l].out_w;
    }
    return work;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int sides[16] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 28, 31, 32, 64, 100, 1000, 65536};
    heph_layer layers[HEPH_MAX_LAYERS];
    char text[2 * HEPH_SPEC_MAX + 2], err[HEPH_ERRLEN], *dec;
    int c, h, w, z, n, rc1, rc2, n2;
    double work = 0.0;
    size_t len;
    heph_vae_config cfg;
    heph_vae m;
    if (size < 4) return 0;
    c = data[0] < 250 ? 1 + data[0] % 4 : (data[0] == 250 ? 3 : data[0] == 251 ? 4096 : data[0] == 252 ? 0 : 1000000);
    h = sides[data[1] % 16];
    w = sides[data[2] % 16];
    z = 1 + data[3] % 8;
    len = size - 4 < sizeof text - 1 ? size - 4 : sizeof text - 1;
    memcpy(text, data + 4, len);
    text[len] = '\0';
    dec = strchr(text, ';');
    if (dec) *dec++ = '\0';
    else dec = text + len;
    rc1 = heph_spec_parse(text, c, h, w, layers, HEPH_MAX_LAYERS, &n, err, sizeof err);
    if (rc1 == HEPH_OK) work += check_layers(layers, n, c, h, w);
    else if (rc1 != HEPH_E_SPEC || !memchr(err, 0, sizeof err) || !err[0]) abort();
    rc2 = heph_spec_parse(dec, z, 1, 1, layers, HEPH_MAX_LAYERS, &n2, err, sizeof err);
    if (rc2 == HEPH_OK) work += check_layers(layers, n2, z, 1, 1);
    else if (rc2 != HEPH_E_SPEC) abort();
    /* a small model: build, train a step, encode, decode. Small in work too: a few parameters
       slid over a large picture (convt...k41) cost seconds per input in the instrumented build,
       which an idle-CPU fuzzing run reports as a timeout */
    if (rc1 != HEPH_OK || rc2 != HEPH_OK || (size_t)c * (size_t)h * (size_t)w > 4096 || work > 4e6 ||
        strlen(text) >= HEPH_SPEC_MAX || strlen(dec) >= HEPH_SPEC_MAX)
        return 0;
    heph_vae_config_default(&cfg);
    cfg.in_c = c; cfg.in_h = h; cfg.in_w = w; cfg.z_dim = z; cfg.max_batch = 2;
    memcpy(cfg.enc_spec, text, strlen(text) + 1);
    memcpy(cfg.dec_spec, dec, strlen(dec) + 1);
    if (heph_vae_init(&m, &cfg, 1) != HEPH_OK) {
        if (!m.err[0]) abort();
        return 0;
    }
    if (m.n_params <= ((size_t)1 << 18)) {
        size_t np = (size_t)c * (size_t)h * (size_t)w, i;
        float *x = (float *)calloc(2 * np, sizeof(float)), mu[16], lv[16];
        heph_losses L;
        if (x) {
            for (i = 0; i < 2 * np; i++) x[i] = (float)(i % 5) / 4.0f;
            rc1 = heph_vae_train_step(&m, x, 2, &L);
            if (rc1 != HEPH_OK && rc1 != HEPH_E_NAN) abort();
            heph_vae_encode(&m, x, 2, mu, lv);
            heph_vae_decode(&m, mu, 2, x);
            free(x);
        }
    }
    heph_vae_free(&m);
    return 0;
}
