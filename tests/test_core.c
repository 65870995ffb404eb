/* test_core.c - unit tests of hephaestus.h's core API: result strings, spec parsing, image
   grids. The layers are tested in test_layers.c, the file formats in test_files.c, training
   in test_train.c, the plots of tools/plot.h in test_plot.c. Harness and usage: tests/test_harness.h. */
#include "test_harness.h"

/* ============================================================================================ */
/* spec parsing                                                                                  */

static int test_spec_valid(void) {
    heph_layer L[HEPH_MAX_LAYERS];
    char err[HEPH_ERRLEN];
    int n = -1, rc;
    rc = heph_spec_parse("dense400,relu", 1, 28, 28, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
    CHECK(rc == HEPH_OK && n == 2, "dense400,relu: rc %d n %d (%s)", rc, n, err);
    CHECK(L[0].kind == HEPH_DENSE && L[0].in_c == 1 && L[0].in_h == 28 && L[0].in_w == 28 &&
              L[0].out_c == 400 && L[0].out_h == 1 && L[0].out_w == 1,
          "dense400 shapes");
    CHECK(L[0].n_params == 784u * 400u + 400u && L[0].w_off == 0 && L[0].b_off == 784u * 400u,
          "dense400: n_params %zu w_off %zu b_off %zu", L[0].n_params, L[0].w_off, L[0].b_off);
    CHECK(L[1].kind == HEPH_RELU && L[1].in_c == 400 && L[1].out_c == 400 && L[1].n_params == 0,
          "relu after dense400");
    rc = heph_spec_parse(" dense8 , lrelu,lrelu0.2,  sigmoid,tanh ,dense3", 3, 2, 5, L,
                         HEPH_MAX_LAYERS, &n, err, sizeof err);
    CHECK(rc == HEPH_OK && n == 6, "spaced spec: rc %d n %d (%s)", rc, n, err);
    CHECK(L[0].n_params == 30u * 8u + 8u && L[0].in_c == 3 && L[0].in_h == 2 && L[0].in_w == 5,
          "dense8 on 3x2x5: %zu params", L[0].n_params);
    CHECK(L[1].kind == HEPH_LRELU && L[1].slope == (float)0.01f, "lrelu default slope %g", (double)L[1].slope);
    CHECK(L[2].kind == HEPH_LRELU && L[2].slope == (float)0.2f, "lrelu0.2 slope %g", (double)L[2].slope);
    CHECK(L[3].kind == HEPH_SIGMOID && L[4].kind == HEPH_TANH && L[4].out_c == 8, "sigmoid, tanh");
    CHECK(L[5].kind == HEPH_DENSE && L[5].n_params == 8u * 3u + 3u && L[5].out_c == 3, "dense3");
    rc = heph_spec_parse("", 1, 1, 1, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
    CHECK(rc == HEPH_OK && n == 0, "empty spec: rc %d n %d", rc, n);
    rc = heph_spec_parse("dense1000000", 1, 1, 1, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
    CHECK(rc == HEPH_OK && n == 1 && L[0].n_params == 2000000u, "dense1000000: rc %d (%s)", rc, err);
    {   /* exactly HEPH_MAX_LAYERS layers is fine */
        char spec[HEPH_MAX_LAYERS * 5 + 1];
        int k;
        spec[0] = '\0';
        for (k = 0; k < HEPH_MAX_LAYERS; k++) strcat(spec, k ? ",relu" : "relu");
        rc = heph_spec_parse(spec, 1, 1, 4, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
        CHECK(rc == HEPH_OK && n == HEPH_MAX_LAYERS, "%d layers: rc %d (%s)", HEPH_MAX_LAYERS, rc, err);
    }
    {   /* presets build, and the model sizes are the known ones */
        heph_vae_config cfg;
        heph_vae m;
        CHECK(heph_vae_config_preset(&cfg, "mlp-mnist") == HEPH_OK, "preset mlp-mnist");
        cfg.max_batch = 2;
        CHECK(heph_vae_init(&m, &cfg, 1) == HEPH_OK, "mlp-mnist init: %s", m.err);
        /* 784*400+400 + 400*40+40 + 20*400+400 + 400*784+784 */
        CHECK(m.n_params == 314000u + 16040u + 8400u + 314384u, "mlp-mnist has %zu params", m.n_params);
        heph_vae_free(&m);
        CHECK(heph_vae_config_preset(&cfg, "mlp-dsprites") == HEPH_OK && cfg.in_h == 64 && cfg.z_dim == 10,
              "preset mlp-dsprites");
        CHECK(heph_vae_config_preset(&cfg, "nope") == HEPH_E_ARG, "unknown preset accepted");
        /* decoder output must match the picture */
        small_config(&cfg, 1, 4, 4, 2, "dense5", "dense15", 2);
        rc = heph_vae_init(&m, &cfg, 1);
        CHECK(rc == HEPH_E_SPEC && strstr(m.err, "dense15") != NULL, "mismatched decoder: rc %d (%s)", rc, m.err);
        small_config(&cfg, 1, 4, 4, 2, "dense5,bogus", "dense16", 2);
        rc = heph_vae_init(&m, &cfg, 1);
        CHECK(rc == HEPH_E_SPEC && strstr(m.err, "bogus") != NULL, "bad encoder: rc %d (%s)", rc, m.err);
        small_config(&cfg, 1, 4, 4, 0, "dense5", "dense16", 2);
        CHECK(heph_vae_init(&m, &cfg, 1) == HEPH_E_ARG, "z_dim 0 accepted");
    }
    return 1;
}

static int test_spec_errors(void) {
    static const struct {
        const char *spec;
        const char *needle; /* the message must contain this (the token, or its number) */
    } bad[] = {
        {",,", "token 1"},           {"dense4,", "token 2"},         {"dense4,,relu", "token 2"},
        {",dense4", "token 1"},      {"dense4, ,relu", "token 2"},   {"conv3", "conv3"},
        {"dense", "\"dense\""},      {"dense0", "dense0"},           {"dense12x", "dense12x"},
        {"dense99999999999", "dense99999999999"},                    {"dense-3", "dense-3"},
        {"dense1000001", "dense1000001"},                            {"lrelu2", "lrelu2"},
        {"lrelu0.x", "lrelu0.x"},    {"lrelu0", "lrelu0"},           {"lrelu-0.5", "lrelu-0.5"},
        {"lrelu1", "lrelu1"},        {"relu2", "relu2"},             {"Relu", "Relu"},
        {"dense4,tanhh", "tanhh"},   {"sigmoid,dense", "token 2"},
        {"dense1000000,dense1000000", "dense1000000"},
    };
    heph_layer L[HEPH_MAX_LAYERS];
    char err[HEPH_ERRLEN];
    int n, rc;
    size_t k;
    for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        err[0] = '\0';
        n = 99;
        rc = heph_spec_parse(bad[k].spec, 1, 1, 1, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
        CHECK(rc == HEPH_E_SPEC, "\"%s\": rc %d, expected HEPH_E_SPEC", bad[k].spec, rc);
        CHECK(strstr(err, bad[k].needle) != NULL, "\"%s\": message \"%s\" does not name \"%s\"",
              bad[k].spec, err, bad[k].needle);
        CHECK(n == 0, "\"%s\": n_layers %d after an error", bad[k].spec, n);
    }
    rc = heph_spec_parse(NULL, 1, 1, 1, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
    CHECK(rc == HEPH_E_SPEC && strstr(err, "NULL"), "NULL spec: rc %d (%s)", rc, err);
    {   /* one layer too many: the message gives the token number */
        char spec[(HEPH_MAX_LAYERS + 1) * 5 + 1];
        int i;
        spec[0] = '\0';
        for (i = 0; i <= HEPH_MAX_LAYERS; i++) strcat(spec, i ? ",relu" : "relu");
        rc = heph_spec_parse(spec, 1, 1, 1, L, HEPH_MAX_LAYERS, &n, err, sizeof err);
        CHECK(rc == HEPH_E_SPEC && strstr(err, "token 65"), "65 layers: rc %d (%s)", rc, err);
        rc = heph_spec_parse("relu,relu,relu,relu", 1, 1, 1, L, 3, &n, err, sizeof err);
        CHECK(rc == HEPH_E_SPEC && strstr(err, "token 4"), "4 layers, max 3: rc %d (%s)", rc, err);
    }
    /* invalid input shapes */
    {
        static const int shapes[][3] = {{0, 1, 1}, {1, 0, 1}, {1, 1, 0}, {-1, 2, 2}, {1000001, 1, 1}, {2000, 2000, 1000}};
        for (k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            char want[64];
            rc = heph_spec_parse("relu", shapes[k][0], shapes[k][1], shapes[k][2], L, HEPH_MAX_LAYERS,
                                 &n, err, sizeof err);
            snprintf(want, sizeof want, "%dx%dx%d", shapes[k][0], shapes[k][1], shapes[k][2]);
            CHECK(rc == HEPH_E_SPEC && strstr(err, want), "shape %s: rc %d (%s)", want, rc, err);
        }
    }
    /* a tiny error buffer is never overrun and stays terminated */
    {
        char small[8];
        memset(small, 'x', sizeof small);
        rc = heph_spec_parse("bogus", 1, 1, 1, L, HEPH_MAX_LAYERS, &n, small, 5);
        CHECK(rc == HEPH_E_SPEC && small[4] == '\0' && small[5] == 'x', "errlen 5 not respected");
        rc = heph_spec_parse("bogus", 1, 1, 1, L, HEPH_MAX_LAYERS, &n, NULL, 0);
        CHECK(rc == HEPH_E_SPEC, "NULL err buffer");
    }
    return 1;
}

/* ============================================================================================ */
/* pictures                                                                                      */

static int test_image_grid(void) {
    /* 5 gray pictures 2x3 in 3 columns, pad 1: width 3*4+1 = 13, height 2*3+1 = 7 */
    const int n = 5, cols = 3, h = 2, w = 3, pad = 1, G = 16;
    float imgs[5 * 6];
    int W = heph_grid_width(cols, w, pad), H = heph_grid_height(n, cols, h, pad), i, y, x, ch;
    uint8_t *buf, *dst;
    size_t bytes;
    CHECK(W == 13 && H == 7, "grid %dx%d, expected 13x7", W, H);
    CHECK(heph_grid_height(6, 3, 2, 1) == 7 && heph_grid_height(7, 3, 2, 1) == 10 &&
              heph_grid_width(1, 28, 0) == 28 && heph_grid_height(1, 1, 28, 0) == 28,
          "grid sizes");
    for (i = 0; i < n * 6; i++) imgs[i] = (float)i / 29.0f;
    imgs[0] = -0.5f; imgs[1] = 1.5f;
    bytes = (size_t)W * (size_t)H * 3;
    buf = TALLOC(uint8_t, bytes + 2 * G);
    memset(buf, 0xA5, bytes + 2 * G);
    dst = buf + G;
    heph_image_grid(dst, imgs, n, cols, 1, h, w, pad);
    for (i = 0; i < G; i++) CHECK(buf[i] == 0xA5 && dst[bytes + (size_t)i] == 0xA5, "guard byte %d overwritten", i);
    for (y = 0; y < H; y++)
        for (x = 0; x < W; x++) {
            int cell = -1, iy = (y - pad) % (h + pad), ix = (x - pad) % (w + pad);
            int want = 96;
            if (y >= pad && x >= pad && iy < h && ix < w) cell = ((y - pad) / (h + pad)) * cols + (x - pad) / (w + pad);
            if (cell >= 0 && cell < n) {
                float v = imgs[cell * 6 + iy * w + ix];
                v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
                want = (int)(v * 255.0f + 0.5f);
            }
            for (ch = 0; ch < 3; ch++)
                CHECK(dst[((size_t)y * (size_t)W + (size_t)x) * 3 + (size_t)ch] == want,
                      "pixel (%d,%d) channel %d = %d, expected %d", x, y, ch,
                      dst[((size_t)y * (size_t)W + (size_t)x) * 3 + (size_t)ch], want);
        }
    CHECK(dst[(1 * (size_t)W + 1) * 3] == 0 && dst[(1 * (size_t)W + 2) * 3] == 255, "clamping");
    /* picture 4 (row 1, column 1) pixel (y 1, x 2) = 29/29 = 1 -> 255 at grid (1+4+2, 1+3+1) */
    CHECK(dst[((size_t)5 * (size_t)W + 7) * 3 + 1] == 255, "last pixel of picture 4");
    /* colour: channel planes go to R, G, B */
    {
        float rgb[3 * 2 * 2] = {1.0f, 0.0f, 0.0f, 0.0f, /* R */ 0.0f, 1.0f, 0.0f, 0.0f, /* G */
                                0.0f, 0.0f, 0.5f, 0.0f /* B */};
        uint8_t out[3 * 2 * 3 + 2 * G], *o = out + G; /* 1 picture 2x2, pad 0: 2x2 pixels */
        memset(out, 0xA5, sizeof out);
        heph_image_grid(o, rgb, 1, 1, 3, 2, 2, 0);
        CHECK(o[0] == 255 && o[1] == 0 && o[2] == 0, "RGB pixel 0");
        CHECK(o[3] == 0 && o[4] == 255 && o[5] == 0, "RGB pixel 1");
        CHECK(o[6] == 0 && o[7] == 0 && o[8] == 128, "RGB pixel 2");
        CHECK(o[9] == 0 && o[10] == 0 && o[11] == 0, "RGB pixel 3");
        CHECK(out[G - 1] == 0xA5 && o[12] == 0xA5, "RGB grid guard bytes");
    }
    return 1;
}

static int test_result_strings(void) {
    int c;
    for (c = HEPH_E_MISMATCH; c <= HEPH_OK; c++)
        CHECK(strcmp(heph_result_string(c), "unknown error") != 0, "code %d has no name", c);
    CHECK(strcmp(heph_result_string(-99), "unknown error") == 0, "code -99");
    CHECK(strcmp(HEPH_VERSION_STRING, "0.1.0") >= 0, "version string");
    return 1;
}

/* ============================================================================================ */

static const t_test tests[] = {
    {"result_strings", test_result_strings},
    {"spec_valid", test_spec_valid},
    {"spec_errors", test_spec_errors},
    {"image_grid", test_image_grid},
};

T_MAIN(tests)
