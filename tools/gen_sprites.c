/* gen_sprites - render procedural "paper-doll" game characters (64x64 RGB, 9 factors) into a
   .hpd file: a stand-in for the 2D Sprites of Reed et al. 2015 (issue #23).

   usage: gen_sprites [options] [OUT.hpd]      (see --help)

   Pictures come from tools/sprites_render.h; factors, their order and the splits are
   documented there: 672 identities (skin 3 x hair 4 x top 7 x bottom 4 x weapon 2; identity =
   ((((skin*4+hair)*7+top)*4+bottom)*2+weapon) in 48 poses (action 3 x view 4 x frame 4);
   index = identity*48 + (action*4 + view)*4 + frame, 32,256 pictures.
   Selection: --split train|val|test (500/72/100 identities of a fixed seeded permutation),
   --identities LIST, --pose-split train|test (36/12 poses), --where RULES on the other
   factors. Modes: every selected picture in index order (default), or --random N pictures
   drawn uniformly from the selection. The .hpd stores u8 CHW pixels (value_max 255) and per
   picture the nine factor indices (skin, hair, top, bottom, weapon, identity, action, view,
   frame); the factor table holds the indices as real values. Deterministic: the same options
   give the same bytes, for any number of OpenMP threads. */
/* the outputs are written as the CLI writes its files (a temporary unique to the process,
   fsync, rename, folder fsync), and the large blocks count against --mem-budget
   (heph_posix.h, cli_io.h) */
#define HEPHAESTUS_STATIC /* uses only the .hpd writer and the RNG: the rest compiles away */
#define HEPHAESTUS_IMPLEMENTATION
#include "heph_posix.h"
#include <time.h>
#define HEPH_SPRITES_IMPLEMENTATION
#include "sprites_render.h"
#include <stb/stb_image_write.h>
#include "gen_common.h"
typedef char gen_side_is_the_renderers[HEPH_SPR_SIZE == GEN_SIDE ? 1 : -1]; /* the preview grid assumes it */
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define PIX HEPH_SPR_PIXELS
#define NF HEPH_SPR_N_FACTORS
#define NID HEPH_SPR_N_IDENTITIES
#define NPOSE HEPH_SPR_N_POSES
#define CHUNK 512 /* pictures rendered (in parallel) between two writes */

static void usage(FILE *f) {
    fprintf(f,
        "usage: gen_sprites [options] [OUT.hpd]\n"
        "Renders procedural game characters (64x64 RGB, our own art: a stand-in for the 2D\n"
        "Sprites of Reed et al.) with their nine factors into a .hpd dataset (u8 CHW, value_max\n"
        "255). Factors (index ranges):\n"
        "  0 skin 0..2 (light, tan, dark)\n"
        "  1 hair 0..3 (short brown, long blonde, red ponytail, spiky black)\n"
        "  2 top 0..6 (red tunic, blue shirt, green tunic, yellow shirt, white shirt,\n"
        "    purple robe, steel armour)\n"
        "  3 bottom 0..3 (blue trousers, brown trousers, grey trousers, red skirt)\n"
        "  4 weapon 0..1 (sword, staff)\n"
        "  5 identity 0..671 = (((skin*4 + hair)*7 + top)*4 + bottom)*2 + weapon\n"
        "  6 action 0..2 (walk, cast, slash)   7 view 0..3 (front, left, back, right)\n"
        "  8 frame 0..3\n"
        "  picture index = identity*48 + (action*4 + view)*4 + frame (32,256 pictures)\n"
        "Selection (all must hold; default: everything):\n"
        "  --split S          train, val, test or all: the 500 / 72 / 100 identities of a fixed\n"
        "                     permutation (splitmix64 Fisher-Yates, seed 23; see\n"
        "                     tools/sprites_render.h)\n"
        "  --identities LIST  these identities: I,J,K-L (inclusive ranges), 0..671\n"
        "  --pose-split S     train, test or all: test holds out, for every action and view,\n"
        "                     frame (action + view) mod 4 (12 poses); train the other 36\n"
        "  --where RULES      keep only these factor indices: name=V[|V...],... with names\n"
        "                     skin hair top bottom weapon action view frame or numbers 0..8\n"
        "                     (not identity: use --identities), e.g. \"view=0|2,action=1\"\n"
        "Modes:\n"
        "  (default)          every selected picture in index order (identity, then pose);\n"
        "                     the whole set is 32,256 pictures (396 MB)\n"
        "  --random N         N pictures drawn uniformly from the selection (with repeats)\n"
        "  --seed S           seed of --random (default 1)\n"
        "Previews and other:\n"
        "  --preview FILE     write factor sweeps as a PNG: one row per factor (skin, hair,\n"
        "                     top, bottom, weapon, action, view, frame) with all its values,\n"
        "                     the other factors fixed at --base\n"
        "  --base RULES       the fixed factors of --preview (default skin=1,hair=0,top=0,\n"
        "                     bottom=0,weapon=0,action=0,view=0,frame=0)\n"
        "  --png FILE         write the first K pictures of the mode as a PNG grid\n"
        "  --png-count K      pictures in that grid (default 64)\n"
        "  --png-cols C       columns of that grid (default 8)\n"
        "  --png-scale S      enlarge both PNGs S times, nearest neighbour (default 1)\n"
        "  --bench N          time N random pictures on one thread (and on all threads with\n"
        "                     OpenMP), print pictures/s, write nothing\n"
        "  --source NAME      source name in the header (default sprites-proc, plus /SPLIT and\n"
        "                     /pose-SPLIT when those are given)\n"
        "  --threads N        OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
        "  --mem-budget MB    the large blocks (previews, the writer's buffers) in total may\n"
        "                     not pass MB (default: 3/4 of physical memory)\n"
        "  --quiet            no progress line\n"
        "  -h, --help         this help\n"
        "      --version      the version of hephaestus.h\n"
        "Without OUT.hpd only the previews are made.\n"
        "Examples:\n"
        "  gen_sprites data/sprites/all.hpd                         the whole set\n"
        "  gen_sprites --split train train.hpd                      24,000 pictures\n"
        "  gen_sprites --split test --pose-split test test-new.hpd  unseen people, unseen poses\n"
        "  gen_sprites --random 5000 --seed 7 --split val val.hpd\n"
        "  gen_sprites --identities 0-7 --where view=1 left.hpd\n"
        "  gen_sprites --preview factors.png --png-scale 3\n");
}

static void die(const char *fmt, const char *arg) { gen_die("gen_sprites", fmt, arg); }

#define now_s gen_now

/* non-negative integer argument of an option; dies with a message otherwise */
static unsigned long long parse_count(const char *opt, const char *s, unsigned long long lo, unsigned long long hi) {
    char *end;
    unsigned long long v;
    errno = 0;
    if (!s || !*s || *s < '0' || *s > '9') goto bad;
    v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi) goto bad;
    return v;
bad:
    fprintf(stderr, "gen_sprites: %s needs an integer in %llu..%llu (got \"%s\")\n", opt, lo, hi, s ? s : "");
    exit(2);
    return 0; /* not reached (for compilers that do not know exit) */
}

/* index of `s` in names[0..n), or dies naming the option and the choices */
static int parse_choice(const char *opt, const char *s, const char *const *names, int n, const char *list) {
    int i;
    for (i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return i;
    fprintf(stderr, "gen_sprites: %s takes %s (got \"%s\")\n", opt, list, s);
    exit(2);
    return -1; /* not reached */
}

/* factor number from a name or a digit; -1 if unknown */
static int factor_of(const char *name, size_t len) {
    int k;
    if (len == 1 && name[0] >= '0' && name[0] <= '8') return name[0] - '0';
    for (k = 0; k < NF; k++)
        if (strlen(heph_spr_name(k)) == len && !strncmp(name, heph_spr_name(k), len)) return k;
    return -1;
}

/* Parse "name=V[|V...],..." into allowed[k] (bit v set = index v allowed). Rules on the same
   factor must all hold. single: every rule names one value (for --base). 0 on error. */
static int parse_rules(const char *opt, const char *spec, uint32_t allowed[NF], int single) {
    const char *p = spec;
    if (!*spec) { fprintf(stderr, "gen_sprites: %s: empty rule list\n", opt); return 0; }
    while (*p) {
        const char *eq, *end = p;
        uint32_t set = 0;
        int k, nv = 0;
        while (*end && *end != ',') end++;
        for (eq = p; eq < end && *eq != '='; eq++) {}
        if (eq == end || eq == p) {
            fprintf(stderr, "gen_sprites: %s: rule \"%.*s\" is not name=value\n", opt, (int)(end - p), p);
            return 0;
        }
        k = factor_of(p, (size_t)(eq - p));
        if (k < 0) {
            fprintf(stderr, "gen_sprites: %s: unknown factor \"%.*s\" (names: skin hair top bottom weapon "
                            "action view frame, or numbers 0..8)\n", opt, (int)(eq - p), p);
            return 0;
        }
        if (k == HEPH_SPR_IDENTITY) {
            fprintf(stderr, "gen_sprites: %s: identity is not a rule's factor: use --identities LIST (or "
                            "the attributes skin, hair, top, bottom, weapon)\n", opt);
            return 0;
        }
        for (p = eq + 1;; p++) { /* values separated by '|' */
            char *vend;
            long v;
            if (*p < '0' || *p > '9') goto badval;
            v = strtol(p, &vend, 10);
            if (vend > end || v >= heph_spr_count(k)) goto badval;
            set |= 1u << v;
            nv++;
            p = vend;
            if (p == end) break;
            if (*p != '|') goto badval;
        }
        if (single && nv != 1) {
            fprintf(stderr, "gen_sprites: %s: give one value per factor (%s)\n", opt, heph_spr_name(k));
            return 0;
        }
        allowed[k] &= set;
        p = *end ? end + 1 : end;
        continue;
    badval:
        fprintf(stderr, "gen_sprites: %s: %s takes value indices 0..%d (separated by '|'), got \"%.*s\"\n",
                opt, heph_spr_name(k), heph_spr_count(k) - 1, (int)(end - eq - 1), eq + 1);
        return 0;
    }
    return 1;
}

/* Parse "I,J,K-L" into want[0..671] (1 = listed). 0 on error (message printed). */
static int parse_identities(const char *spec, unsigned char want[NID]) {
    const char *p = spec;
    size_t n = strlen(spec);
    if (n == 0 || spec[n - 1] == ',') {
        fprintf(stderr, "gen_sprites: --identities: %s\n", n ? "nothing after the last comma" : "empty list");
        return 0;
    }
    while (*p) {
        const char *end = p;
        char *e;
        long a, b;
        while (*end && *end != ',') end++;
        if (*p < '0' || *p > '9') goto bad;
        a = strtol(p, &e, 10);
        b = a;
        if (e < end && *e == '-') {
            if (e[1] < '0' || e[1] > '9') goto bad;
            b = strtol(e + 1, &e, 10);
        }
        if (e != end || a > b || b >= NID) goto bad;
        for (; a <= b; a++) want[a] = 1;
        p = *end ? end + 1 : end;
        continue;
    bad:
        fprintf(stderr, "gen_sprites: --identities takes identities 0..%d as I,J,K-L (K <= L), got \"%.*s\"\n",
                NID - 1, (int)(end - p), p);
        return 0;
    }
    return 1;
}

/* where the pictures come from: the selection in index order, or random draws from it */
typedef struct {
    int random;
    int ids[NID], n_ids;     /* selected identities, ascending */
    int poses[NPOSE], n_poses; /* selected poses, ascending      */
    heph_rng rng;
    long next;               /* order: next position in ids x poses */
} pic_source;

static void source_next(pic_source *s, int f[NF]) {
    long id, pose;
    if (!s->random) {
        id = s->ids[s->next / s->n_poses];
        pose = s->poses[s->next % s->n_poses];
        s->next++;
    } else { /* uniform over the selection: it is the product ids x poses */
        id = s->ids[heph_rng_below(&s->rng, (uint32_t)s->n_ids)];
        pose = s->poses[heph_rng_below(&s->rng, (uint32_t)s->n_poses)];
    }
    heph_spr_factors(id * NPOSE + pose, f);
}

static int write_png(const char *path, const uint8_t *pics, const int *empty, int n, int cols, int scale) {
    return gen_write_png("gen_sprites", path, pics, empty, n, cols, scale);
}

/* factor sweeps: one row per factor but identity, every value of that factor, the others
   (and the identity they make) at base */
static int write_sweeps(const char *path, const uint32_t base_allowed[NF], int scale) {
    enum { COLS = 7, ROWS = NF - 1 };
    int base[NF], k, v, row, ok;
    int empty[ROWS * COLS];
    uint8_t *pics = (uint8_t *)cli_budget_calloc((size_t)ROWS * COLS, PIX);
    if (!pics) { fprintf(stderr, "gen_sprites: out of memory for the preview%s\n", cli_budget_note()); return 0; }
    for (k = 0; k < NF; k++) { /* lowest allowed index of each factor */
        for (v = 0; k != HEPH_SPR_IDENTITY && !((base_allowed[k] >> v) & 1u); v++) {}
        base[k] = k == HEPH_SPR_IDENTITY ? 0 : v;
    }
    for (k = 0, row = 0; k < NF; k++) {
        if (k == HEPH_SPR_IDENTITY) continue;
        for (v = 0; v < COLS; v++) {
            int f[NF];
            empty[row * COLS + v] = v >= heph_spr_count(k);
            if (empty[row * COLS + v]) continue;
            memcpy(f, base, sizeof f);
            f[k] = v;
            f[HEPH_SPR_IDENTITY] = heph_spr_identity(f);
            heph_spr_render(pics + (size_t)(row * COLS + v) * PIX, f);
        }
        row++;
    }
    ok = write_png(path, pics, empty, ROWS * COLS, COLS, scale);
    cli_budget_free(pics);
    return ok;
}

static int bench(unsigned long long n, uint64_t seed) {
    int (*f)[NF] = (int (*)[NF])cli_budget_calloc((size_t)n, sizeof *f);
    uint8_t *buf = f ? (uint8_t *)cli_budget_calloc((size_t)PIX, CHUNK) : NULL;
    unsigned long long i;
    heph_rng rng;
    double t;
    if (!f || !buf) { fprintf(stderr, "gen_sprites: out of memory%s\n", cli_budget_note()); cli_budget_free(f); return 1; }
    heph_rng_seed(&rng, seed);
    for (i = 0; i < n; i++) heph_spr_factors((long)heph_rng_below(&rng, (uint32_t)HEPH_SPR_COUNT), f[i]);
    t = now_s();
    for (i = 0; i < n; i++) heph_spr_render(buf + (i % CHUNK) * PIX, f[i]);
    t = now_s() - t;
    printf("gen_sprites: bench: %llu random pictures in %.3f s on 1 thread: %.0f pictures/s\n", n, t, (double)n / t);
#ifdef _OPENMP
    if (omp_get_max_threads() > 1) {
        long j;
        t = now_s();
#pragma omp parallel for schedule(static)
        for (j = 0; j < (long)n; j++) heph_spr_render(buf + (size_t)omp_get_thread_num() * PIX, f[j]);
        t = now_s() - t;
        printf("gen_sprites: bench: %llu random pictures in %.3f s on %d threads: %.0f pictures/s\n", n, t,
               omp_get_max_threads(), (double)n / t);
    }
#endif
    cli_budget_free(f);
    cli_budget_free(buf);
    return 0;
}

int main(int argc, char **argv) {
    static const char *const split_names[4] = {"train", "val", "test", "all"};
    static const char *const pose_names[3] = {"train", "test", "all"};
    const char *out = NULL, *png = NULL, *preview = NULL, *where = NULL, *ids_spec = NULL, *source = NULL;
    const char *base_spec = "skin=1,hair=0,top=0,bottom=0,weapon=0,action=0,view=0,frame=0";
    unsigned long long n_random = 0, png_count = 64, png_cols = 8, png_scale = 1, seed = 1, n_bench = 0;
    int random = 0, quiet = 0, split = 3, pose_split = 2, i, k, q, rc = 1;
    uint32_t allowed[NF], base_allowed[NF];
    unsigned char want[NID];
    unsigned long long total, done, n_png;
    static pic_source src;
    heph_hpd_info info;
    heph_hpd_writer w;
    double values[NF][NID], t0, t_last;
    char source_buf[64];
    uint8_t *buf = NULL, *png_pics = NULL;
    int (*fac)[NF] = NULL;

    cli_budget_default();
    for (k = 0; k < NF; k++) allowed[k] = base_allowed[k] = k == HEPH_SPR_IDENTITY ? ~0u : (1u << heph_spr_count(k)) - 1u;
    memset(want, 1, sizeof want);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDS_VALUE() do { if (!val) die("%s needs a value (see --help)", a); i++; } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--version")) { printf("gen_sprites %s (hephaestus.h)\n", HEPH_VERSION_STRING); return 0; }
        else if (!strcmp(a, "--random")) { NEEDS_VALUE(); n_random = parse_count(a, val, 1, 1000000000ull); random = 1; }
        else if (!strcmp(a, "--seed")) { NEEDS_VALUE(); seed = parse_count(a, val, 0, ~0ull); }
        else if (!strcmp(a, "--split")) { NEEDS_VALUE(); split = parse_choice(a, val, split_names, 4, "train, val, test or all"); }
        else if (!strcmp(a, "--pose-split")) { NEEDS_VALUE(); pose_split = parse_choice(a, val, pose_names, 3, "train, test or all"); }
        else if (!strcmp(a, "--identities")) { NEEDS_VALUE(); ids_spec = val; }
        else if (!strcmp(a, "--where")) { NEEDS_VALUE(); where = val; }
        else if (!strcmp(a, "--preview")) { NEEDS_VALUE(); preview = val; }
        else if (!strcmp(a, "--base")) { NEEDS_VALUE(); base_spec = val; }
        else if (!strcmp(a, "--png")) { NEEDS_VALUE(); png = val; }
        else if (!strcmp(a, "--png-count")) { NEEDS_VALUE(); png_count = parse_count(a, val, 1, 10000); }
        else if (!strcmp(a, "--png-cols")) { NEEDS_VALUE(); png_cols = parse_count(a, val, 1, 1000); }
        else if (!strcmp(a, "--png-scale")) { NEEDS_VALUE(); png_scale = parse_count(a, val, 1, 16); }
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
            if (nt > 1) fprintf(stderr, "gen_sprites: built without OpenMP; --threads %llu ignored\n", nt);
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
    if (where && !parse_rules("--where", where, allowed, 0)) return 2;
    if (!parse_rules("--base", base_spec, base_allowed, 1)) return 2;
    if (ids_spec) {
        memset(want, 0, sizeof want);
        if (!parse_identities(ids_spec, want)) return 2;
    }
    if (!out && !png && !preview) die("nothing to do: give OUT.hpd, --png FILE and/or --preview FILE (see --help)%s", "");
    if (source && strlen(source) > 32) die("--source %s is longer than 32 characters", source);
    if (!source) { /* sprites-proc[/SPLIT][/pose-SPLIT] */
        snprintf(source_buf, sizeof source_buf, "sprites-proc%s%s%s%s", split < 3 ? "/" : "", split < 3 ? split_names[split] : "",
                 pose_split < 2 ? "/pose-" : "", pose_split < 2 ? pose_names[pose_split] : "");
        source = source_buf;
    }

    if (preview) {
        if (!write_sweeps(preview, base_allowed, (int)png_scale)) return 1;
        if (!out && !png) return 0;
    }

    /* the selection: identities x poses */
    memset(&src, 0, sizeof src);
    src.random = random;
    heph_rng_seed(&src.rng, seed);
    for (i = 0; i < NID; i++) {
        int f[NF];
        heph_spr_factors((long)i * NPOSE, f);
        if (!want[i] || (split < 3 && heph_spr_split(i) != split)) continue;
        for (k = 0; k < HEPH_SPR_N_ATTRIBUTES && ((allowed[k] >> f[k]) & 1u); k++) {}
        if (k == HEPH_SPR_N_ATTRIBUTES) src.ids[src.n_ids++] = i;
    }
    for (i = 0; i < NPOSE; i++) {
        int f[NF];
        heph_spr_factors(i, f);
        if (pose_split < 2 && heph_spr_pose_test(f[HEPH_SPR_ACTION], f[HEPH_SPR_VIEW], f[HEPH_SPR_FRAME]) != pose_split) continue;
        if (((allowed[HEPH_SPR_ACTION] >> f[HEPH_SPR_ACTION]) & 1u) && ((allowed[HEPH_SPR_VIEW] >> f[HEPH_SPR_VIEW]) & 1u) &&
            ((allowed[HEPH_SPR_FRAME] >> f[HEPH_SPR_FRAME]) & 1u))
            src.poses[src.n_poses++] = i;
    }
    if (src.n_ids == 0) die("no identity is left by --split, --identities and the --where rules on skin, hair, top, bottom, weapon%s", "");
    if (src.n_poses == 0) die("no pose is left by --pose-split and the --where rules on action, view, frame%s", "");
    total = random ? n_random : (unsigned long long)src.n_ids * (unsigned long long)src.n_poses;
    n_png = png ? (png_count < total ? png_count : total) : 0;
    if (!out) total = n_png; /* preview only */

    buf = (uint8_t *)cli_budget_calloc((size_t)PIX, CHUNK);
    fac = (int (*)[NF])malloc(CHUNK * sizeof *fac);
    png_pics = n_png ? (uint8_t *)cli_budget_calloc((size_t)PIX, (size_t)n_png) : NULL;
    if (!buf || !fac || (n_png && !png_pics)) { fprintf(stderr, "gen_sprites: out of memory%s\n", cli_budget_note()); goto done; }

    if (out) {
        memset(&info, 0, sizeof info);
        info.count = total;
        info.c = 3; info.h = HEPH_SPR_SIZE; info.w = HEPH_SPR_SIZE;
        info.dtype = HEPH_PX_U8;
        info.value_max = 255.0f;
        /* never GRID: identity repeats the attributes, so the factors are no full product */
        info.flags = HEPH_HPD_GENERATED;
        info.seed = random ? seed : 0;
        memcpy(info.source, source, strlen(source) + 1); /* <= 32 characters: checked above */
        info.n_factors = NF;
        for (q = 0; q < NF; q++) {
            int v;
            snprintf(info.factors[q].name, sizeof info.factors[q].name, "%s", heph_spr_name(q));
            info.factors[q].n_values = (uint32_t)heph_spr_count(q);
            for (v = 0; v < heph_spr_count(q); v++) values[q][v] = (double)v;
            info.factors[q].values = values[q];
        }
        if (heph_hpd_create(&w, out, &info) != HEPH_OK) {
            fprintf(stderr, "gen_sprites: %s\n", w.err);
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
        for (j = 0; j < m; j++) heph_spr_render(buf + (size_t)j * PIX, fac[j]);
        for (j = 0; j < m; j++) {
            int32_t f32[NF];
            for (k = 0; k < NF; k++) f32[k] = fac[j][k];
            if (done + (unsigned long long)j < n_png)
                memcpy(png_pics + (size_t)(done + (unsigned long long)j) * PIX, buf + (size_t)j * PIX, PIX);
            if (out && heph_hpd_put_u8(&w, buf + (size_t)j * PIX, f32) != HEPH_OK) {
                fprintf(stderr, "gen_sprites: %s\n", w.err);
                heph_hpd_abort(&w);
                goto done;
            }
        }
        done += (unsigned long long)m;
        if (!quiet) gen_progress("gen_sprites", done, total, t0, &t_last);
    }
    if (out) {
        double t = now_s() - t0;
        if (heph_hpd_finish(&w) != HEPH_OK) {
            fprintf(stderr, "gen_sprites: %s\n", w.err);
            goto done;
        }
        printf("gen_sprites: wrote %s: %llu pictures 3x64x64 (%s, %d identities x %d poses), source %s, "
               "%.1f MB, %.2f s (%.0f pictures/s)\n",
               out, total, random ? "random" : "in order", src.n_ids, src.n_poses, source,
               ((double)total * PIX + 4.0 * NF * (double)total) / 1e6, t, t > 0.0 ? (double)total / t : 0.0);
    }
    if (png && !write_png(png, png_pics, NULL, (int)n_png, (int)png_cols, (int)png_scale)) goto done;
    rc = 0;
done:
    cli_budget_free(buf);
    free(fac);
    cli_budget_free(png_pics);
    return rc;
}
