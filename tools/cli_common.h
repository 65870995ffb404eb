/* cli_common.h - small helpers of the hephaestus command-line tool (tools/hephaestus.c) and
   of the examples (examples/): messages and exit codes, option values, folders and files,
   growable text buffers, JSON/HTML escaping, base64, PNG files and data: URIs, picture grids,
   a whole .hpd in memory, threads, the clock and peak memory.
   Everything is static; include once, after hephaestus.h (tools/heph_posix.h).
   The examples name themselves in each message: they define CLI_PROG "" before including it.

   Exit codes: 0 success, 1 runtime error (a file, the data, the model), 2 usage error.
   Every error is one line on stderr: "hephaestus SUBCOMMAND: what went wrong".          */
#ifndef HEPH_CLI_COMMON_H
#define HEPH_CLI_COMMON_H

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <stb/stb_image_write.h>
#include "cli_io.h" /* temporaries, folder sync, the memory budget: shared with the converters */
#ifdef _OPENMP
#include <omp.h>
#endif

/* not every program calls every helper (the examples use a few) */
#if defined(__GNUC__) || defined(__clang__)
#define CLI_FN static __attribute__((unused))
#else
#define CLI_FN static
#endif

enum { CLI_OK = 0, CLI_ERR = 1, CLI_USAGE = 2 };

/* name of the running subcommand, for messages; set once while argv is parsed; no prefix at
   all when empty (the examples) */
#ifndef CLI_PROG
#define CLI_PROG "hephaestus"
#endif
static char cli_cmd[48] = CLI_PROG;

CLI_FN void cli_set_cmd(const char *sub) { snprintf(cli_cmd, sizeof cli_cmd, "hephaestus %s", sub); }

/* files being written: every output goes to a temporary PATH.PID.N.tmp in its own folder
   and is renamed over PATH only once it is complete and synced (cli_fopen / cli_fclose);
   an error exit removes the temporaries still open, so a failure leaves the old file */
typedef struct {
    FILE *f;
    char tmp[1100];
} cli_pending;
static cli_pending cli_pend[16];

CLI_FN void cli_remove_pending(void) {
    int i;
    for (i = 0; i < 16; i++)
        if (cli_pend[i].f) { fclose(cli_pend[i].f); remove(cli_pend[i].tmp); cli_pend[i].f = NULL; }
}

/* print "hephaestus SUB: message" and exit with code */
CLI_FN void cli_die(int code, const char *fmt, ...) {
    va_list ap;
    cli_remove_pending();
    if (cli_cmd[0]) fprintf(stderr, "%s: ", cli_cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(cli_budget_note(), stderr);
    fputc('\n', stderr);
    exit(code);
}
#define cli_fail(...) cli_die(CLI_ERR, __VA_ARGS__)
#define cli_usage(...) cli_die(CLI_USAGE, __VA_ARGS__)

CLI_FN void *cli_alloc(size_t n, size_t size) {
    void *p;
    if (n && size > (size_t)-1 / n) cli_fail("out of memory (%zu x %zu bytes)", n, size);
    p = calloc(n ? n : 1, size ? size : 1);
    if (!p) cli_fail("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

/* cli_alloc for data of a file: the message names the file and what the memory was for */
CLI_FN void *cli_alloc_for(const char *path, const char *what, size_t n, size_t size) {
    void *p;
    if (n && size > (size_t)-1 / n) cli_fail("%s: out of memory for %s (%zu x %zu bytes)", path, what, n, size);
    p = calloc(n ? n : 1, size ? size : 1);
    if (!p) cli_fail("%s: out of memory for %s (%zu x %zu bytes)", path, what, n, size);
    return p;
}

/* ---- options ------------------------------------------------------------------------------ */

CLI_FN int cli_is(const char *a, const char *b) { return strcmp(a, b) == 0; }

/* the value after option argv[*i] (and step over it), or a usage error */
CLI_FN const char *cli_val(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) cli_usage("%s needs a value (see --help)", argv[*i]);
    (*i)++;
    return argv[*i];
}

/* the value of an output option (--out): a file or folder name, never empty (an empty
   folder would put DIR/name at /name) */
CLI_FN const char *cli_out_val(int argc, char **argv, int *i) {
    const char *v = cli_val(argc, argv, i);
    if (*v == '\0') cli_usage("%s needs a file or folder name, got an empty string (use . for the current folder)", argv[*i - 1]);
    return v;
}

/* v as a whole decimal integer in lo..hi into *x; 0 on success, -1 when it is not one */
CLI_FN int cli_parse_long(const char *v, long lo, long hi, long *x) {
    char *e;
    errno = 0;
    *x = strtol(v, &e, 10);
    if (*v == '\0' || isspace((unsigned char)*v) || *e != '\0' || errno || *x < lo || *x > hi) return -1; /* strtol skips spaces */
    return 0;
}

CLI_FN long cli_long(const char *flag, const char *v, long lo, long hi) {
    long x;
    if (cli_parse_long(v, lo, hi, &x) != 0) cli_usage("%s takes an integer in %ld..%ld, got \"%s\"", flag, lo, hi, v);
    return x;
}

CLI_FN double cli_num(const char *flag, const char *v, double lo, double hi) {
    char *e;
    double x = strtod(v, &e);
    if (*v == '\0' || isspace((unsigned char)*v) || *e != '\0' || !(x >= lo && x <= hi))
        cli_usage("%s takes a number in %g..%g, got \"%s\"", flag, lo, hi, v);
    return x;
}

/* the examples' option values: a runtime error (exit 1) naming the program prog */
CLI_FN long cli_arg_long(const char *prog, const char *flag, const char *v) {
    long x;
    if (cli_parse_long(v, 0, LONG_MAX, &x) != 0) cli_fail("%s: %s needs a non-negative integer, got \"%s\"", prog, flag, v);
    return x;
}

CLI_FN float cli_arg_float(const char *prog, const char *flag, const char *v) {
    char *e;
    float x = strtof(v, &e);
    if (*v == '\0' || *e != '\0' || !(x == x)) cli_fail("%s: %s needs a number, got \"%s\"", prog, flag, v);
    return x;
}

CLI_FN void cli_unknown(const char *a) {
    if (a[0] == '-') cli_usage("unknown option %s (see %s --help)", a, cli_cmd);
    cli_usage("unexpected argument \"%s\" (see %s --help)", a, cli_cmd);
}

CLI_FN void cli_require(const char *value, const char *flag) {
    if (!value) cli_usage("%s is required (see %s --help)", flag, cli_cmd);
}

/* --threads N: 0 keeps the default (OMP_NUM_THREADS or all cores) */
CLI_FN void cli_threads(int n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    if (n > 1) fprintf(stderr, "%s: built without OpenMP; --threads %d ignored\n", cli_cmd[0] ? cli_cmd : "note", n);
#endif
}

/* the threads a parallel region will use */
CLI_FN int cli_nthreads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ---- files and folders -------------------------------------------------------------------- */

CLI_FN int cli_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p */
CLI_FN void cli_mkdirs(const char *dir) {
    char buf[1024];
    size_t i, n = strlen(dir);
    if (n == 0) cli_usage("an empty folder name (use . for the current folder)");
    if (n >= sizeof buf) cli_fail("%s: folder name too long", dir);
    memcpy(buf, dir, n + 1);
    for (i = 1; i <= n; i++) {
        char c = buf[i];
        if (c != '/' && c != '\0') continue;
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) cli_fail("%s: cannot create folder (%s)", buf, strerror(errno));
        buf[i] = c;
    }
    if (!cli_is_dir(dir)) cli_fail("%s: exists and is not a folder", dir);
}

/* mkdir -p the folder a file will be written to */
CLI_FN void cli_mkdirs_parent(const char *file) {
    char dir[1024];
    const char *slash = strrchr(file, '/');
    size_t n = slash ? (size_t)(slash - file) : 0;
    if (n == 0) return;
    if (n >= sizeof dir) cli_fail("%s: path too long", file);
    memcpy(dir, file, n);
    dir[n] = '\0';
    cli_mkdirs(dir);
}

/* dir/name into a caller buffer of 1024 bytes */
typedef struct { char s[1024]; } cli_path;
CLI_FN cli_path cli_join(const char *dir, const char *name) {
    cli_path p;
    if (dir[0] == '\0') cli_usage("an empty folder name for %s (use . for the current folder)", name);
    if ((size_t)snprintf(p.s, sizeof p.s, "%s/%s", dir, name) >= sizeof p.s) cli_fail("%s/%s: path too long", dir, name);
    return p;
}

/* path must be a regular file to be read as data: a FIFO would block open() forever, a
   folder or device is not data. stat follows links, so a dangling link fails too. */
CLI_FN void cli_need_regular(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) cli_fail("%s: cannot open for reading (%s)", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        cli_fail("%s: not a regular file (%s): only files are read as data", path,
                 S_ISDIR(st.st_mode) ? "a folder" : S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISSOCK(st.st_mode) ? "a socket" : "a device");
}

/* "r...": a regular file, opened for reading. "a...": appended in place (the training log).
   "w...": a new temporary file beside path, which cli_fclose renames over path. */
CLI_FN FILE *cli_fopen(const char *path, const char *mode) {
    FILE *f;
    int i, fd;
    if (mode[0] == 'r') cli_need_regular(path);
    if (mode[0] != 'w') {
        f = fopen(path, mode);
        if (!f) cli_fail("%s: cannot open for %s (%s)", path, mode[0] == 'r' ? "reading" : "writing", strerror(errno));
        return f;
    }
    for (i = 0; i < 16 && cli_pend[i].f; i++) {}
    if (i == 16) cli_fail("%s: too many files open for writing", path);
    if (cli_tmp_path(cli_pend[i].tmp, sizeof cli_pend[i].tmp, path) >= (int)sizeof cli_pend[i].tmp) cli_fail("%s: path too long", path);
    fd = open(cli_pend[i].tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0) cli_fail("%s: cannot create %s (%s)", path, cli_pend[i].tmp, strerror(errno));
    f = fdopen(fd, "wb");
    if (!f) { close(fd); remove(cli_pend[i].tmp); cli_fail("%s: cannot open for writing (%s)", path, strerror(errno)); }
    cli_pend[i].f = f;
    return f;
}

/* close a file of cli_fopen: written ones are checked, flushed, synced, renamed over path and
   their folder synced; any failure removes the temporary, keeps the old path, and exits 1 */
CLI_FN void cli_fclose(FILE *f, const char *path) {
    int i, e = 0;
    for (i = 0; i < 16 && cli_pend[i].f != f; i++) {}
    if (i == 16) { /* read or appended */
        if (ferror(f) | fclose(f)) cli_fail("%s: write failed (%s)", path, strerror(errno));
        return;
    }
    if (fflush(f) != 0 || ferror(f)) e = errno ? errno : EIO;
    else if (fsync(fileno(f)) != 0) e = errno;
    if (fclose(f) != 0 && !e) e = errno;
    cli_pend[i].f = NULL;
    if (!e && rename(cli_pend[i].tmp, path) != 0) e = errno;
    if (e) {
        remove(cli_pend[i].tmp);
        cli_fail("%s: cannot write (%s)", path, strerror(e));
    }
    if (cli_sync_dir(path) != 0) cli_fail("%s: written, but its folder cannot be synced (%s)", path, strerror(errno));
}

/* ---- growable text buffer ------------------------------------------------------------------ */

typedef struct {
    char *s;
    size_t n, cap;
} cli_buf;

CLI_FN void buf_put(cli_buf *b, const char *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *s;
        while (cap < b->n + n + 1) cap *= 2;
        s = (char *)realloc(b->s, cap);
        if (!s) cli_fail("out of memory (%zu bytes of text)", cap);
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = '\0';
}

CLI_FN void buf_str(cli_buf *b, const char *s) { buf_put(b, s, strlen(s)); }

CLI_FN void buf_printf(cli_buf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) { buf_put(b, tmp, (size_t)n); return; }
    {
        char *big = (char *)cli_alloc((size_t)n + 1, 1);
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        buf_put(b, big, (size_t)n);
        free(big);
    }
}

CLI_FN void buf_free(cli_buf *b) {
    free(b->s);
    b->s = NULL;
    b->n = b->cap = 0;
}

/* text with & < > " escaped (for HTML and SVG) */
CLI_FN void buf_html(cli_buf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '&') buf_str(b, "&amp;");
        else if (*s == '<') buf_str(b, "&lt;");
        else if (*s == '>') buf_str(b, "&gt;");
        else if (*s == '"') buf_str(b, "&quot;");
        else buf_put(b, s, 1);
    }
}

/* RFC 4648 base64 of n bytes */
CLI_FN void buf_base64(cli_buf *b, const unsigned char *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;
    for (i = 0; i + 2 < n; i += 3) {
        char q[4];
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        q[0] = tab[v >> 18]; q[1] = tab[(v >> 12) & 63]; q[2] = tab[(v >> 6) & 63]; q[3] = tab[v & 63];
        buf_put(b, q, 4);
    }
    if (i < n) {
        char q[4];
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0u);
        q[0] = tab[v >> 18]; q[1] = tab[(v >> 12) & 63];
        q[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        q[3] = '=';
        buf_put(b, q, 4);
    }
}

/* the buffer as the file path, written atomically (cli_io.h) */
CLI_FN void buf_save(const cli_buf *b, const char *path) {
    char err[1300];
    if (cli_save_bytes(path, b->s, b->n, err, sizeof err) != 0) cli_fail("%s", err);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

CLI_FN void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* a number, or null when it is not finite (JSON has no NaN) */
CLI_FN void json_num(FILE *f, double v) {
    if (v == v && v - v == 0.0) fprintf(f, "%.17g", v);
    else fputs("null", f);
}

/* ---- CSV ----------------------------------------------------------------------------------- */

/* a text field, quoted (with "" for ") when it holds a comma, quote or line break */
CLI_FN void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* ---- pictures ------------------------------------------------------------------------------ */

CLI_FN void cli_png_sink(void *ctx, void *data, int size) {
    if (size > 0) buf_put((cli_buf *)ctx, (const char *)data, (size_t)size);
}

/* encoded in memory, then written like every output (stbi_write_png does not check fwrite) */
CLI_FN void cli_write_png(const char *path, const uint8_t *rgb, int w, int h) {
    cli_buf png = {0};
    if (!stbi_write_png_to_func(cli_png_sink, &png, w, h, 3, rgb, w * 3)) cli_fail("%s: cannot encode the PNG", path);
    buf_save(&png, path);
    buf_free(&png);
}

/* append "data:image/png;base64,..." for an RGB picture */
CLI_FN void buf_png_uri(cli_buf *b, const uint8_t *rgb, int w, int h) {
    cli_buf png = {0};
    if (!stbi_write_png_to_func(cli_png_sink, &png, w, h, 3, rgb, w * 3)) cli_fail("cannot encode a PNG");
    buf_str(b, "data:image/png;base64,");
    buf_base64(b, (const unsigned char *)png.s, png.n);
    buf_free(&png);
}

/* a grid of n pictures (n, c, h, w) in [0,1] as a new RGB picture of *W x *H (2 px gaps) */
CLI_FN uint8_t *cli_grid(const float *imgs, int n, int cols, int c, int h, int w, int *W, int *H) {
    uint8_t *rgb;
    if (cols > n) cols = n;
    if (cols < 1) cols = 1;
    *W = heph_grid_width(cols, w, 2);
    *H = heph_grid_height(n, cols, h, 2);
    rgb = (uint8_t *)cli_alloc((size_t)*W * (size_t)*H, 3);
    heph_image_grid(rgb, imgs, n, cols, c, h, w, 2);
    return rgb;
}

/* DIR/NAME as a PNG, announced on stdout */
CLI_FN void cli_write_png_in(const char *dir, const char *name, const uint8_t *rgb, int w, int h) {
    cli_path p = cli_join(dir, name);
    cli_write_png(p.s, rgb, w, h);
    printf("wrote %s (%dx%d)\n", p.s, w, h);
}

CLI_FN void cli_write_grid(const char *path, const float *imgs, int n, int cols, int c, int h, int w) {
    int W, H;
    uint8_t *rgb = cli_grid(imgs, n, cols, c, h, w, &W, &H);
    cli_write_png(path, rgb, W, H);
    printf("wrote %s (%dx%d)\n", path, W, H);
    free(rgb);
}

/* ---- datasets ------------------------------------------------------------------------------ */

/* open a .hpd and read every picture into a new float array (count, C, H, W) */
CLI_FN float *cli_hpd_load_all(const char *path, heph_hpd *d) {
    float *x;
    if (heph_hpd_open(d, path) != HEPH_OK) cli_fail("%s", d->err);
    x = (float *)malloc((size_t)d->info.count * heph_hpd_picture_size(&d->info) * sizeof(float));
    if (!x) cli_fail("%s: out of memory for %llu pictures", path, (unsigned long long)d->info.count);
    if (heph_hpd_read_range(d, 0, (size_t)d->info.count, x) != HEPH_OK) cli_fail("%s", d->err);
    return x;
}

/* ---- time and memory ----------------------------------------------------------------------- */

CLI_FN double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "1:02:03" or "2:03" */
CLI_FN void cli_hms(char *s, size_t n, double sec) {
    long t = sec > 0.0 && sec < 1e9 ? (long)(sec + 0.5) : 0;
    if (t >= 3600) snprintf(s, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(s, n, "%ld:%02ld", t / 60, t % 60);
}

/* peak resident set size of this process, MiB */
CLI_FN double cli_peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

#endif
