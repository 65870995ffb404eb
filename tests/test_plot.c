/* test_plot.c - the charts of tools/plot.h that the CLI and the examples share: plot_lines
   and plot_heatmap (every size, degenerate inputs, guard bytes around the picture).

   Harness and usage: tests/test_harness.h. */
#include "test_harness.h"
#include "tools/plot.h"

/* =============================================================================================
   line plots                                                                                  */

static int test_plot_lines(void) {
    static const int sizes[][2] = {{1, 1},   {2, 3},    {7, 5},    {8, 8},    {40, 30},
                                   {79, 59}, {80, 60},  {81, 200}, {200, 61}, {320, 200},
                                   {640, 480}, {1000, 90}, {33, 400}};
    const int G = 256, NP = 50;
    float ys[3 * 50];
    const char *labels[3] = {"train loss", NULL, "a very long label that cannot fit in the legend box"};
    int k, i, variant;
    for (i = 0; i < NP; i++) {
        ys[i] = 100.0f / (float)(i + 1);
        ys[NP + i] = (float)i * 0.5f;
        ys[2 * NP + i] = (i % 7 == 3) ? NAN : 20.0f - (float)i * 0.3f;
    }
    for (k = 0; k < (int)(sizeof sizes / sizeof sizes[0]); k++)
        for (variant = 0; variant < 6; variant++) {
            int w = sizes[k][0], h = sizes[k][1], ns = 3, np = NP, j;
            size_t bytes = (size_t)w * (size_t)h * 3, nonwhite = 0, q;
            uint8_t *buf = (uint8_t *)malloc(bytes + 2 * (size_t)G), *rgb = buf + G;
            const float *data = ys;
            float flat[4] = {5.0f, 5.0f, 5.0f, 5.0f}, huge[3] = {-3e38f, 3e38f, INFINITY};
            const char *title = variant & 1 ? "Loss per step (nats)" : NULL;
            CHECK(buf != NULL, "malloc");
            if (variant == 2) { data = flat; ns = 1; np = 4; }
            if (variant == 3) { data = huge; ns = 1; np = 3; }
            if (variant == 4) { np = 1; ns = 2; }
            if (variant == 5) { data = NULL; ns = 0; }
            memset(buf, 0xA5, bytes + 2 * (size_t)G);
            plot_lines(rgb, w, h, data, ns, np, variant == 2 || variant == 3 ? NULL : labels, title);
            for (j = 0; j < G; j++)
                if (buf[j] != 0xA5 || rgb[bytes + (size_t)j] != 0xA5) {
                    free(buf);
                    return t_failf(__LINE__, "plot %dx%d variant %d wrote outside its buffer", w, h, variant);
                }
            for (q = 0; q < bytes; q++) nonwhite += rgb[q] != 255;
            free(buf);
            if (w >= 40 && h >= 30 && variant != 5)
                CHECK(nonwhite > 30, "plot %dx%d variant %d drew almost nothing", w, h, variant);
        }
    plot_lines(NULL, 10, 10, ys, 1, 5, NULL, NULL); /* ignored */
    return 1;
}

/* =============================================================================================
   heatmap                                                                                     */

#define T_GUARD 4096
/* draw into a buffer with guard bytes on both sides; fail if a guard byte changed */
static int t_heat_guarded(int w, int h, const float *m, int rows, int cols, float lo, float hi,
                          const char *const *rl, const char *const *cl, const char *title,
                          uint8_t **pixels) {
    size_t bytes = (size_t)w * (size_t)h * 3, i;
    uint8_t *buf = TALLOC(uint8_t, bytes + 2 * T_GUARD);
    memset(buf, 0xA5, bytes + 2 * T_GUARD);
    plot_heatmap(buf + T_GUARD, w, h, m, rows, cols, lo, hi, rl, cl, title);
    for (i = 0; i < T_GUARD; i++)
        if (buf[i] != 0xA5 || buf[T_GUARD + bytes + i] != 0xA5)
            return t_failf(__LINE__, "%dx%d (%dx%d matrix): wrote outside the buffer", w, h,
                           rows, cols);
    for (i = 0; i < bytes; i++)
        if (buf[T_GUARD + i] == 0xA5 && (i % 3) == 0 && buf[T_GUARD + i + 1] == 0xA5 &&
            buf[T_GUARD + i + 2] == 0xA5)
            return t_failf(__LINE__, "%dx%d: pixel %zu left unwritten", w, h, i / 3);
    if (pixels) *pixels = buf + T_GUARD;
    return 1;
}

static int test_heatmap_guard(void) {
    static const char *const rl[] = {"z0", "z1", "a rather long row label that must be cut",
                                     NULL, "z4"};
    static const char *const cl[] = {"floor hue", "wall hue", "object hue", "scale", NULL,
                                     "orientation"};
    const char *rl30[30];
    float m[30], big[200 * 3];
    int i, sizes[][2] = {{1, 1}, {16, 16}, {640, 480}, {2, 1}, {1, 2}, {79, 59}, {80, 60},
                         {81, 61}, {100, 60}, {200, 100}, {333, 77}, {60, 400}, {1200, 30}};
    uint8_t *px = NULL;
    long red = 0, blue = 0;
    for (i = 0; i < 30; i++) m[i] = (float)((i * 37) % 23 - 11) / 11.0f;
    for (i = 0; i < 30; i++)
        rl30[i] = i % 7 == 3 ? NULL : (i % 2 ? "odd row" : "an even row label");
    m[7] = (float)NAN;
    m[8] = (float)INFINITY;
    for (i = 0; i < 600; i++) big[i] = sinf((float)i * 0.37f) * 40.0f;
    for (i = 0; i < (int)(sizeof sizes / sizeof sizes[0]); i++) {
        int w = sizes[i][0], h = sizes[i][1];
        REQUIRE(t_heat_guarded(w, h, m, 5, 6, -1.0f, 1.0f, rl, cl, "latents vs factors", NULL));
        REQUIRE(t_heat_guarded(w, h, m, 5, 6, 0.0f, 0.0f, NULL, NULL, NULL, NULL));
        REQUIRE(t_heat_guarded(w, h, m, 30, 1, 1.0f, -1.0f, rl30, NULL,
                               "a title much longer than any picture it is drawn into, by far",
                               NULL));
        REQUIRE(t_heat_guarded(w, h, big, 200, 3, (float)NAN, 0.0f, NULL, cl, "t", NULL));
        REQUIRE(t_heat_guarded(w, h, big, 3, 200, 0.0f, 100.0f, NULL, NULL, "", NULL));
        REQUIRE(t_heat_guarded(w, h, m, 1, 1, -1.0f, 1.0f, rl, cl, "one", NULL));
        REQUIRE(t_heat_guarded(w, h, NULL, 0, 0, -1.0f, 1.0f, NULL, NULL, "empty", NULL));
    }
    /* the 640x480 correlation picture has strong reds and blues */
    REQUIRE(t_heat_guarded(640, 480, m, 5, 6, -1.0f, 1.0f, rl, cl, "latents vs factors", &px));
    for (i = 0; i < 640 * 480; i++) {
        const uint8_t *q = px + (size_t)i * 3;
        if (q[0] > 150 && q[2] < 80) red++;
        if (q[2] > 150 && q[0] < 80) blue++;
    }
    CHECK(red > 5000 && blue > 5000, "red %ld blue %ld pixels", red, blue);
    return 1;
}

/* every size from 1x1 to 90x70 with exactly sized heap buffers (ASan sees any overrun) */
static int test_heatmap_sweep(void) {
    float m[12] = {-1, -0.5f, 0, 0.5f, 1, 0.25f, -0.25f, 0.75f, -0.75f, 0.1f, -0.1f, 0.9f};
    static const char *const cl[] = {"alpha", "beta", "gamma", "delta"};
    static const char *const rl[12] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8",
                                       "r9", "r10", "the last row"};
    int w, h;
    for (w = 1; w <= 90; w += (w < 20 ? 1 : 7))
        for (h = 1; h <= 70; h += (h < 20 ? 1 : 5)) {
            uint8_t *buf = (uint8_t *)malloc((size_t)w * (size_t)h * 3);
            CHECK(buf != NULL, "malloc");
            plot_heatmap(buf, w, h, m, 3, 4, -1.0f, 1.0f, NULL, cl, "sweep");
            plot_heatmap(buf, w, h, m, 12, 1, 0.0f, 0.0f, rl, NULL, NULL);
            free(buf);
        }
    return 1;
}

/* =============================================================================================
   main                                                                                        */

static const t_test tests[] = {
    {"plot_lines", test_plot_lines},
    {"heatmap_guard", test_heatmap_guard},
    {"heatmap_sweep", test_heatmap_sweep},
};

T_MAIN(tests)
