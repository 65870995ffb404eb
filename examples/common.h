/* common.h - small helpers shared by the examples (not part of the library): dying with a
   message, wall-clock time, peak memory, PNG output through the system stb_image_write, and
   loading a whole .hpd file. Include after defining HEPHAESTUS_IMPLEMENTATION.            */
#ifndef HEPH_EXAMPLES_COMMON_H
#define HEPH_EXAMPLES_COMMON_H
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <stb/stb_image_write.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__GNUC__)
#define EX_FN static __attribute__((unused)) /* not every example uses every helper */
#else
#define EX_FN static
#endif

EX_FN void ex_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

EX_FN double ex_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* peak resident set size of this process, MiB */
EX_FN double ex_peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

EX_FN int ex_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

EX_FN void ex_set_threads(int n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    if (n > 1) fprintf(stderr, "note: built without OpenMP; --threads %d ignored\n", n);
#endif
}

/* mkdir -p */
EX_FN void ex_mkdir(const char *dir) {
    char buf[1024];
    size_t i, n = strlen(dir);
    if (n >= sizeof buf) ex_die("folder name too long: %s", dir);
    memcpy(buf, dir, n + 1);
    for (i = 1; i <= n; i++)
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) ex_die("cannot create folder %s", buf);
            buf[i] = c;
        }
}

EX_FN void ex_write_png(const char *dir, const char *name, const uint8_t *rgb, int w, int h) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!stbi_write_png(path, w, h, 3, rgb, w * 3)) ex_die("cannot write %s", path);
    printf("wrote %s (%dx%d)\n", path, w, h);
}

/* grid of n pictures (n, c, h, w) in [0,1] as a PNG */
EX_FN void ex_write_grid(const char *dir, const char *name, const float *imgs, int n, int cols,
                          int c, int h, int w) {
    int W = heph_grid_width(cols, w, 2), H = heph_grid_height(n, cols, h, 2);
    uint8_t *rgb = (uint8_t *)malloc((size_t)W * (size_t)H * 3);
    if (!rgb) ex_die("out of memory");
    heph_image_grid(rgb, imgs, n, cols, c, h, w, 2);
    ex_write_png(dir, name, rgb, W, H);
    free(rgb);
}

/* open a .hpd and read every picture into a new float array (count, C, H, W) */
EX_FN float *ex_load_all(const char *path, heph_hpd *d) {
    float *x;
    if (heph_hpd_open(d, path) != HEPH_OK) ex_die("%s", d->err);
    x = (float *)malloc((size_t)d->info.count * heph_hpd_picture_size(&d->info) * sizeof(float));
    if (!x) ex_die("%s: out of memory for %llu pictures", path, (unsigned long long)d->info.count);
    if (heph_hpd_read_range(d, 0, (size_t)d->info.count, x) != HEPH_OK) ex_die("%s", d->err);
    return x;
}
#endif
