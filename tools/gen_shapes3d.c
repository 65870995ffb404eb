/* gen_shapes3d - render a 3D Shapes look-alike dataset (64x64 RGB, 6 factors) into a .hpd file.

   usage: gen_shapes3d [options] [OUT.hpd]      (see --help)

   Pictures come from tools/shapes3d_render.h (a small ray caster); factors and their order are
   those of DeepMind's 3dshapes.h5: floor_hue, wall_hue, object_hue (10 each), scale (8),
   shape (4), orientation (15); index = ((((f*10+w)*10+o)*8+s)*4+sh)*15+or.
   Modes: the whole grid in index order (default), or --random N pictures with uniformly drawn
   factors. --where restricts the factor indices, --violate takes the pictures that break at
   least one --where rule instead (outlier batches). The .hpd stores u8 CHW pixels (value_max
   255), per picture the six factor indices, and the real factor values in the factor table.
   Deterministic: the same options give the same bytes, for any number of OpenMP threads. */
/* the outputs are written as the CLI writes its files (a temporary unique to the process,
   fsync, rename, folder fsync), and the large blocks count against --mem-budget
   (heph_posix.h, cli_io.h) */
#define HEPHAESTUS_STATIC /* uses only the .hpd writer and the RNG: the rest compiles away */
#define HEPHAESTUS_IMPLEMENTATION
#include "heph_posix.h"
#include <time.h>
#define HEPH_SHAPES3D_IMPLEMENTATION
#include "shapes3d_render.h"
#include <stb/stb_image_write.h>
#include "gen_common.h"
typedef char gen_side_is_the_renderers[HEPH_S3D_SIZE == GEN_SIDE ? 1 : -1]; /* the preview grid assumes it */
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define PIX HEPH_S3D_PIXELS
#define CHUNK 512 /* pictures rendered (in parallel) between two writes */

static void usage(FILE *f) {
    fprintf(f,
        "usage: gen_shapes3d [options] [OUT.hpd]\n"
        "Renders 3D Shapes look-alike pictures (64x64 RGB) with their six factors into a .hpd\n"
        "dataset (u8 CHW, value_max 255). Factors (index ranges):\n"
        "  0 floor_hue 0..9   1 wall_hue 0..9   2 object_hue 0..9   (hue = index/10)\n"
        "  3 scale 0..7 (0.75..1.25)   4 shape 0..3 (cube, cylinder, sphere, capsule)\n"
        "  5 orientation 0..14 (-30..30 degrees; 7 = 0 degrees)\n"
        "Modes:\n"
        "  (default)          the whole grid, 480,000 pictures in index order (5.9 GB)\n"
        "  --random N         N pictures with uniformly drawn factors\n"
        "  --seed S           seed of --random (default 1)\n"
        "  --where RULES      keep only pictures whose factor indices satisfy every rule;\n"
        "                     RULES = name=V[|V...],... with names or numbers 0..5, e.g.\n"
        "                     \"shape=2,wall_hue=3\" or \"4=2,1=3|4\". Grid mode writes all of them\n"
        "                     in order; random mode draws uniformly among them.\n"
        "  --violate          take the pictures that break at least one --where rule instead\n"
        "                     (uniformly among those), e.g. the outliers of a batch\n"
        "Previews and other:\n"
        "  --png FILE         write the first K pictures as a PNG grid\n"
        "  --png-count K      pictures in the preview (default 64)\n"
        "  --png-cols C       columns of the preview (default 8)\n"
        "  --png-scale S      enlarge the preview S times, nearest neighbour (default 1)\n"
        "  --sweeps           the preview shows factor sweeps instead: one row per factor with\n"
        "                     all its values, the other factors fixed at --base\n"
        "  --base RULES       the fixed factors of --sweeps (default floor_hue=1,wall_hue=5,\n"
        "                     object_hue=0,scale=4,shape=0,orientation=7)\n"
        "  --bench N          time N random pictures on one thread (and on all threads with\n"
        "                     OpenMP), print pictures/s, write nothing\n"
        "  --source NAME      source name in the header (default shapes3d-proc)\n"
        "  --threads N        OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
        "  --mem-budget MB    the large blocks (preview, factor lists, the writer's buffers) in\n"
        "                     total may not pass MB (default: 3/4 of physical memory)\n"
        "  --quiet            no progress line\n"
        "  -h, --help         this help\n"
        "      --version      the version of hephaestus.h\n"
        "Without OUT.hpd only the preview is made (from the first K pictures of the mode).\n"
        "Examples:\n"
        "  gen_shapes3d data/shapes3d/all.hpd                       full grid\n"
        "  gen_shapes3d --random 10000 --seed 7 train.hpd\n"
        "  gen_shapes3d --random 325 --where shape=2,wall_hue=3,object_hue=6 normal.hpd\n"
        "  gen_shapes3d --random 25 --where shape=2,wall_hue=3,object_hue=6 --violate out.hpd\n"
        "  gen_shapes3d --sweeps --png sweeps.png --png-scale 4\n");
}

static void die(const char *fmt, const char *arg) { gen_die("gen_shapes3d", fmt, arg); }

#define now_s gen_now

/* non-negative integer argument of an option; dies with a message otherwise */
static unsigned long long parse_count(const char *opt, const char *s, unsigned long long lo, unsigned long long hi) {
    char *end;
    unsigned long long v;
    errno = 0;
    if (!s || !*s || *s == '-') goto bad;
    v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi) goto bad;
    return v;
bad:
    fprintf(stderr, "gen_shapes3d: %s needs an integer in %llu..%llu (got \"%s\")\n", opt, lo, hi, s ? s : "");
    exit(2);
}

/* factor number from a name or a digit; -1 if unknown */
static int factor_of(const char *name, size_t len) {
    int k;
    if (len == 1 && name[0] >= '0' && name[0] <= '5') return name[0] - '0';
    for (k = 0; k < 6; k++)
        if (strlen(heph_shapes3d_name(k)) == len && !strncmp(name, heph_shapes3d_name(k), len)) return k;
    return -1;
}

/* Parse "name=V[|V...],..." into allowed[k] (bit v set = index v allowed). Rules on the same
   factor must all hold. single: every rule names one value (for --base). 0 on error. */
static int parse_rules(const char *opt, const char *spec, uint32_t allowed[6], int *n_rules, int single) {
    const char *p = spec;
    *n_rules = 0;
    if (!*spec) { fprintf(stderr, "gen_shapes3d: %s: empty rule list\n", opt); return 0; }
    while (*p) {
        const char *eq, *end = p;
        uint32_t set = 0;
        int k, nv = 0;
        while (*end && *end != ',') end++;
        for (eq = p; eq < end && *eq != '='; eq++) {}
        if (eq == end || eq == p) {
            fprintf(stderr, "gen_shapes3d: %s: rule \"%.*s\" is not name=value\n", opt, (int)(end - p), p);
            return 0;
        }
        k = factor_of(p, (size_t)(eq - p));
        if (k < 0) {
            fprintf(stderr, "gen_shapes3d: %s: unknown factor \"%.*s\" (names: floor_hue wall_hue "
                            "object_hue scale shape orientation, or numbers 0..5)\n", opt, (int)(eq - p), p);
            return 0;
        }
        for (p = eq + 1;; p++) { /* values separated by '|' */
            char *vend;
            long v;
            if (*p < '0' || *p > '9') goto badval;
            v = strtol(p, &vend, 10);
            if (vend > end || v >= heph_shapes3d_count(k)) goto badval;
            set |= 1u << v;
            nv++;
            p = vend;
            if (p == end) break;
            if (*p != '|') goto badval;
        }
        if (single && nv != 1) {
            fprintf(stderr, "gen_shapes3d: %s: give one value per factor (%s)\n", opt, heph_shapes3d_name(k));
            return 0;
        }
        allowed[k] &= set;
        (*n_rules)++;
        p = *end ? end + 1 : end;
        continue;
    badval:
        fprintf(stderr, "gen_shapes3d: %s: %s takes value indices 0..%d (separated by '|'), got \"%.*s\"\n",
                opt, heph_shapes3d_name(k), heph_shapes3d_count(k) - 1, (int)(end - eq - 1), eq + 1);
        return 0;
    }
    return 1;
}

static int satisfies(const uint32_t allowed[6], const int f[6]) {
    int k;
    for (k = 0; k < 6; k++)
        if (!((allowed[k] >> f[k]) & 1u)) return 0;
    return 1;
}

/* where the factor tuples come from: the grid in order, or random draws */
typedef struct {
    int random, violate;
    uint32_t allowed[6];
    int vals[6][16], nvals[6]; /* allowed indices of each factor */
    heph_rng rng;
    long next; /* grid: next index to look at */
} tuple_source;

static void source_init(tuple_source *s, int random, int violate, const uint32_t allowed[6], uint64_t seed) {
    int k, v;
    memset(s, 0, sizeof *s);
    s->random = random;
    s->violate = violate;
    memcpy(s->allowed, allowed, sizeof s->allowed);
    for (k = 0; k < 6; k++)
        for (v = 0; v < heph_shapes3d_count(k); v++)
            if ((allowed[k] >> v) & 1u) s->vals[k][s->nvals[k]++] = v;
    heph_rng_seed(&s->rng, seed);
}

static void source_next(tuple_source *s, int f[6]) {
    int k;
    if (!s->random) { /* next grid index that is wanted */
        for (;;) {
            heph_shapes3d_factors(s->next++, f);
            if (satisfies(s->allowed, f) != s->violate) return;
        }
    }
    if (!s->violate) { /* uniform over the satisfying set: it is a product of per-factor sets */
        for (k = 0; k < 6; k++) f[k] = s->vals[k][heph_rng_below(&s->rng, (uint32_t)s->nvals[k])];
        return;
    }
    do { /* uniform over the rest: draw from the whole grid, reject satisfying tuples */
        for (k = 0; k < 6; k++) f[k] = (int)heph_rng_below(&s->rng, (uint32_t)heph_shapes3d_count(k));
    } while (satisfies(s->allowed, f));
}

static int write_png(const char *path, const uint8_t *pics, const int *empty, int n, int cols, int scale) {
    return gen_write_png("gen_shapes3d", path, pics, empty, n, cols, scale);
}

/* factor sweeps: row k shows every value of factor k, the others at base */
static int write_sweeps(const char *path, const uint32_t base_allowed[6], int scale) {
    int base[6], k, v, n = 6 * 15, ok;
    uint8_t *pics = (uint8_t *)calloc((size_t)n, PIX);
    int empty[6 * 15];
    if (!pics) { fprintf(stderr, "gen_shapes3d: out of memory\n"); return 0; }
    for (k = 0; k < 6; k++) { /* lowest allowed index of each factor */
        for (v = 0; !((base_allowed[k] >> v) & 1u); v++) {}
        base[k] = v;
    }
    for (k = 0; k < 6; k++)
        for (v = 0; v < 15; v++) {
            int f[6];
            empty[k * 15 + v] = v >= heph_shapes3d_count(k);
            if (empty[k * 15 + v]) continue;
            memcpy(f, base, sizeof f);
            f[k] = v;
            heph_shapes3d_render(pics + (size_t)(k * 15 + v) * PIX, f);
        }
    ok = write_png(path, pics, empty, n, 15, scale);
    free(pics);
    return ok;
}

static int bench(unsigned long long n, uint64_t seed) {
    tuple_source src;
    uint32_t all[6] = {~0u, ~0u, ~0u, ~0u, ~0u, ~0u};
    int (*f)[6] = (int (*)[6])cli_budget_calloc((size_t)n, sizeof *f);
    uint8_t *buf = f ? (uint8_t *)cli_budget_calloc((size_t)PIX, CHUNK) : NULL;
    unsigned long long i;
    double t;
    if (!f || !buf) { fprintf(stderr, "gen_shapes3d: out of memory%s\n", cli_budget_note()); cli_budget_free(f); return 1; }
    source_init(&src, 1, 0, all, seed);
    for (i = 0; i < n; i++) source_next(&src, f[i]);
    heph_shapes3d_init();
    t = now_s();
    for (i = 0; i < n; i++) heph_shapes3d_render(buf + (i % CHUNK) * PIX, f[i]);
    t = now_s() - t;
    printf("gen_shapes3d: bench: %llu random pictures in %.3f s on 1 thread: %.0f pictures/s\n", n, t, (double)n / t);
#ifdef _OPENMP
    if (omp_get_max_threads() > 1) {
        long j;
        t = now_s();
#pragma omp parallel for schedule(static)
        for (j = 0; j < (long)n; j++) heph_shapes3d_render(buf + (size_t)omp_get_thread_num() * PIX, f[j]);
        t = now_s() - t;
        printf("gen_shapes3d: bench: %llu random pictures in %.3f s on %d threads: %.0f pictures/s\n", n, t,
               omp_get_max_threads(), (double)n / t);
    }
#endif
    cli_budget_free(f);
    cli_budget_free(buf);
    return 0;
}

int main(int argc, char **argv) {
    const char *out = NULL, *png = NULL, *where = NULL, *base_spec = "floor_hue=1,wall_hue=5,object_hue=0,scale=4,shape=0,orientation=7";
    const char *source = "shapes3d-proc";
    unsigned long long n_random = 0, png_count = 64, png_cols = 8, png_scale = 1, seed = 1, n_bench = 0;
    int random = 0, violate = 0, sweeps = 0, quiet = 0, n_rules = 0, n_base = 0, i, k, q, rc = 1;
    uint32_t allowed[6], base_allowed[6];
    unsigned long long total, done, n_sat = 0, n_png;
    tuple_source src;
    heph_hpd_info info;
    heph_hpd_writer w;
    double values[6][15], t0, t_last;
    uint8_t *buf = NULL, *png_pics = NULL;
    int (*fac)[6] = NULL;

    cli_budget_default();
    for (k = 0; k < 6; k++) allowed[k] = base_allowed[k] = (1u << heph_shapes3d_count(k)) - 1u;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDS_VALUE() do { if (!val) die("%s needs a value (see --help)", a); i++; } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--version")) { printf("gen_shapes3d %s (hephaestus.h)\n", HEPH_VERSION_STRING); return 0; }
        else if (!strcmp(a, "--random")) { NEEDS_VALUE(); n_random = parse_count(a, val, 1, 1000000000ull); random = 1; }
        else if (!strcmp(a, "--seed")) { NEEDS_VALUE(); seed = parse_count(a, val, 0, ~0ull); }
        else if (!strcmp(a, "--where")) { NEEDS_VALUE(); where = val; }
        else if (!strcmp(a, "--violate")) violate = 1;
        else if (!strcmp(a, "--png")) { NEEDS_VALUE(); png = val; }
        else if (!strcmp(a, "--png-count")) { NEEDS_VALUE(); png_count = parse_count(a, val, 1, 10000); }
        else if (!strcmp(a, "--png-cols")) { NEEDS_VALUE(); png_cols = parse_count(a, val, 1, 1000); }
        else if (!strcmp(a, "--png-scale")) { NEEDS_VALUE(); png_scale = parse_count(a, val, 1, 16); }
        else if (!strcmp(a, "--sweeps")) sweeps = 1;
        else if (!strcmp(a, "--base")) { NEEDS_VALUE(); base_spec = val; }
        else if (!strcmp(a, "--bench")) { NEEDS_VALUE(); n_bench = parse_count(a, val, 1, 100000000ull); }
        else if (!strcmp(a, "--source")) { NEEDS_VALUE(); source = val; }
        else if (!strcmp(a, "--mem-budget")) {
            NEEDS_VALUE();
            if (cli_budget_parse(val) != 0) die("--mem-budget takes an integer in 1..1073741824 (MB), got \"%s\"", val);
        }
        else if (!strcmp(a, "--threads")) {
            unsigned long long nt;
            NEEDS_VALUE();
            nt = parse_count(a, val, 1, 1024);
#ifdef _OPENMP
            omp_set_num_threads((int)nt);
#else
            if (nt > 1) fprintf(stderr, "gen_shapes3d: built without OpenMP; --threads %llu ignored\n", nt);
#endif
        }
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "-o")) { NEEDS_VALUE(); out = val; }
        else if (a[0] == '-' && a[1]) die("unknown option %s (see --help)", a);
        else if (!out) out = a;
        else die("more than one output file (%s); see --help", a);
#undef NEEDS_VALUE
    }
    if (n_bench) return bench(n_bench, seed);
    if (where && !parse_rules("--where", where, allowed, &n_rules, 0)) return 2;
    if (!parse_rules("--base", base_spec, base_allowed, &n_base, 1)) return 2;
    if (violate && !where) die("--violate needs --where (the rules to break)%s", "");
    if (!out && !png) die("nothing to do: give OUT.hpd and/or --png FILE (see --help)%s", "");
    if (strlen(source) > 32) die("--source %s is longer than 32 characters", source);
    if (sweeps && !png) die("--sweeps needs --png FILE%s", "");
    heph_shapes3d_init();

    if (sweeps) {
        if (!write_sweeps(png, base_allowed, (int)png_scale)) return 1;
        if (!out) return 0;
        png = NULL;
    }

    /* how many pictures */
    {
        long idx;
        int f[6];
        for (idx = 0; idx < HEPH_S3D_COUNT; idx++) {
            heph_shapes3d_factors(idx, f);
            n_sat += (unsigned long long)satisfies(allowed, f);
        }
    }
    if (n_sat == 0) die("no picture satisfies --where \"%s\"", where);
    if (violate && n_sat == (unsigned long long)HEPH_S3D_COUNT)
        die("--violate: every picture satisfies --where \"%s\", so none breaks it", where);
    total = random ? n_random : (violate ? (unsigned long long)HEPH_S3D_COUNT - n_sat : n_sat);
    n_png = png ? (png_count < total ? png_count : total) : 0;
    if (!out) total = n_png; /* preview only */
    source_init(&src, random, violate, allowed, seed);

    buf = (uint8_t *)cli_budget_calloc((size_t)PIX, CHUNK);
    fac = (int (*)[6])malloc(CHUNK * sizeof *fac);
    png_pics = n_png ? (uint8_t *)cli_budget_calloc((size_t)PIX, (size_t)n_png) : NULL;
    if (!buf || !fac || (n_png && !png_pics)) { fprintf(stderr, "gen_shapes3d: out of memory%s\n", cli_budget_note()); goto done; }

    if (out) {
        memset(&info, 0, sizeof info);
        info.count = total;
        info.c = 3; info.h = HEPH_S3D_SIZE; info.w = HEPH_S3D_SIZE;
        info.dtype = HEPH_PX_U8;
        info.value_max = 255.0f;
        info.flags = HEPH_HPD_GENERATED | ((!random && n_rules == 0) ? (uint32_t)HEPH_HPD_GRID : 0u);
        info.seed = random ? seed : 0;
        snprintf(info.source, sizeof info.source, "%s", source);
        info.n_factors = 6;
        for (q = 0; q < 6; q++) {
            int v;
            snprintf(info.factors[q].name, sizeof info.factors[q].name, "%s", heph_shapes3d_name(q));
            info.factors[q].n_values = (uint32_t)heph_shapes3d_count(q);
            for (v = 0; v < heph_shapes3d_count(q); v++) values[q][v] = heph_shapes3d_value(q, v);
            info.factors[q].values = values[q];
        }
        if (heph_hpd_create(&w, out, &info) != HEPH_OK) {
            fprintf(stderr, "gen_shapes3d: %s\n", w.err);
            goto done;
        }
    }

    t0 = t_last = now_s();
    for (done = 0; done < total;) {
        long m = (long)(total - done < CHUNK ? total - done : CHUNK), j;
        for (j = 0; j < m; j++) source_next(&src, fac[j]); /* drawn serially: deterministic */
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 16)
#endif
        for (j = 0; j < m; j++) heph_shapes3d_render(buf + (size_t)j * PIX, fac[j]);
        for (j = 0; j < m; j++) {
            int32_t f32[6];
            for (k = 0; k < 6; k++) f32[k] = fac[j][k];
            if (done + (unsigned long long)j < n_png)
                memcpy(png_pics + (size_t)(done + (unsigned long long)j) * PIX, buf + (size_t)j * PIX, PIX);
            if (out && heph_hpd_put_u8(&w, buf + (size_t)j * PIX, f32) != HEPH_OK) {
                fprintf(stderr, "gen_shapes3d: %s\n", w.err);
                heph_hpd_abort(&w);
                goto done;
            }
        }
        done += (unsigned long long)m;
        if (!quiet) gen_progress("gen_shapes3d", done, total, t0, &t_last);
    }
    if (out) {
        double t = now_s() - t0;
        if (heph_hpd_finish(&w) != HEPH_OK) {
            fprintf(stderr, "gen_shapes3d: %s\n", w.err);
            goto done;
        }
        printf("gen_shapes3d: wrote %s: %llu pictures 3x64x64 (%s%s%s), %.1f MB, %.2f s (%.0f pictures/s)\n",
               out, total, random ? "random" : "grid", where ? (violate ? ", violating --where" : ", --where") : "",
               (!random && n_rules == 0) ? ", full grid" : "",
               ((double)total * PIX + 24.0 * (double)total) / 1e6, t, t > 0.0 ? (double)total / t : 0.0);
    }
    if (png && !write_png(png, png_pics, NULL, (int)n_png, (int)png_cols, (int)png_scale)) goto done;
    rc = 0;
done:
    cli_budget_free(buf);
    free(fac);
    cli_budget_free(png_pics);
    return rc;
}
