/* gen_common.h - what the picture generators (gen_shapes3d, gen_sprites) share: a usage
   error naming the program, the clock, the preview grid of 64x64 RGB pictures as PNG
   (counted against --mem-budget, written atomically) and the progress line. Every message
   starts with the program's name, `prog`. Include after heph_posix.h, <time.h> and
   <stb/stb_image_write.h>. */
#ifndef HEPH_GEN_COMMON_H
#define HEPH_GEN_COMMON_H

#define GEN_SIDE 64            /* the generators' pictures: 3 x 64 x 64 u8, CHW */
#define GEN_PIX (3 * GEN_SIDE * GEN_SIDE)

/* a usage error: "prog: " fmt (with arg), exit status 2 */
static void gen_die(const char *prog, const char *fmt, const char *arg) {
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(2);
}

static double gen_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* n CHW pictures in a grid of `cols` columns, `scale` times enlarged, white gaps; empty[i]
   marks cells left blank. 1 when written, else 0 with a message. */
static int gen_write_png(const char *prog, const char *path, const uint8_t *pics, const int *empty, int n, int cols,
                         int scale) {
    const int S = GEN_SIDE, NP = S * S, gap = 2 * scale, cell = S * scale;
    int rows, W, H, i, x, y, c, ok;
    uint8_t *rgb;
    cli_bytes enc = {NULL, 0, 0, 0};
    char err[1300];
    if (cols > n) cols = n;
    rows = (n + cols - 1) / cols;
    W = cols * cell + (cols + 1) * gap;
    H = rows * cell + (rows + 1) * gap;
    rgb = (uint8_t *)cli_budget_calloc((size_t)W * (size_t)H, 3);
    if (!rgb) { fprintf(stderr, "%s: out of memory for the preview%s\n", prog, cli_budget_note()); return 0; }
    memset(rgb, 255, (size_t)W * (size_t)H * 3);
    for (i = 0; i < n; i++) {
        int ox = gap + (i % cols) * (cell + gap), oy = gap + (i / cols) * (cell + gap);
        if (empty && empty[i]) continue;
        for (y = 0; y < cell; y++)
            for (x = 0; x < cell; x++)
                for (c = 0; c < 3; c++)
                    rgb[((size_t)(oy + y) * W + (size_t)(ox + x)) * 3 + c] =
                        pics[(size_t)i * GEN_PIX + (size_t)c * NP + (size_t)(y / scale) * S + (size_t)(x / scale)];
    }
    ok = stbi_write_png_to_func(cli_bytes_sink, &enc, W, H, 3, rgb, W * 3) != 0 && !enc.failed;
    cli_budget_free(rgb);
    if (!ok) fprintf(stderr, "%s: %s: cannot encode the PNG (out of memory)\n", prog, path);
    else if (cli_save_bytes(path, enc.p, enc.n, err, sizeof err) != 0) { fprintf(stderr, "%s: %s\n", prog, err); ok = 0; }
    else printf("%s: wrote %s (%dx%d, %d pictures)\n", prog, path, W, H, n);
    free(enc.p);
    return ok;
}

/* the progress line after `done` of `total` pictures (started at t0): every 0.5 s on a
   terminal, every 10 s in a log, and once at the end of a run of a second or more */
static void gen_progress(const char *prog, unsigned long long done, unsigned long long total, double t0, double *t_last) {
    double t = gen_now(), rate;
    int tty = isatty(2);
    if (!(t - *t_last >= (tty ? 0.5 : 10.0) || (done == total && t - t0 >= 1.0))) return;
    rate = (double)done / (t - t0);
    fprintf(stderr, "%s%s: %llu/%llu pictures (%.1f%%), %.0f/s, %.0f s left%s", tty ? "\r" : "", prog, done, total,
            100.0 * (double)done / (double)total, rate, (double)(total - done) / rate, (tty && done < total) ? "   " : "\n");
    *t_last = t;
}

#endif
