/* shapes3d2hpd - convert DeepMind's 3D Shapes (3dshapes.h5) to a Hephaestus .hpd.

   usage: shapes3d2hpd [options] 3dshapes.h5 OUT.hpd            (see --help)

   Reads the two root datasets of the real file through the HDF5 C library (Debian's
   libhdf5-dev; the Makefile builds this tool only when its headers are installed):
     images  (N, 64, 64, 3) uint8, RGB, HWC
     labels  (N, 6) float64: floor_hue, wall_hue, object_hue, scale, shape, orientation values
   and writes exactly the layout tools/gen_shapes3d.c writes: u8 planar CHW 3x64x64, value_max
   255, six factors with the same names, counts and real values (tools/shapes3d_render.h), and
   per picture the six factor indices. So a model trained on rendered pictures evaluates real ones.
   Each label is mapped to the nearest grid value of its factor; a label farther than 1e-4 of a
   grid step from every grid value is refused (file, row, column and value named). The grid
   flag is set when the labels are exactly the full grid in index order (the real file).

   Streaming: the labels are read and checked first, in blocks (N x 6 indices kept, 11.5 MB for
   the real file), then the pictures in blocks of about 1,024 rows (12 MB); each block is a
   hyperslab that covers whole HDF5 chunks, so no chunk is inflated twice. The output is written to
   OUT.hpd.PID.N.tmp beside it, synced and renamed into place at the end, and the folder synced
   (tools/cli_io.h, as the CLI writes); on any error it is removed and one line on stderr names
   the file and the problem. The labels, the read blocks and the writer's buffers count against
   --mem-budget.                                                      */
#define HEPHAESTUS_STATIC /* uses only the .hpd writer: the rest compiles away */
#define HEPHAESTUS_IMPLEMENTATION
#include "heph_posix.h" /* fsync, 64-bit seeks, temporaries, the memory budget (cli_io.h) */
#include <time.h>
#define HEPH_SHAPES3D_STATIC
#define HEPH_SHAPES3D_IMPLEMENTATION
#include "shapes3d_render.h"
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <math.h>

#define S HEPH_S3D_SIZE
#define PIX HEPH_S3D_PIXELS  /* bytes of one picture, HWC in the file, CHW in the .hpd */
#define NF HEPH_S3D_N_FACTORS
#define BLOCK 1024           /* pictures per read, rounded up to whole HDF5 chunks          */
#define MAX_BLOCK 16384      /* at most 200 MB of pictures per read                           */
#define LABEL_BLOCK 8192     /* label rows per read, rounded up to whole chunks               */
#define MAX_LABEL_BLOCK (1u << 20) /* at most 48 MB of labels per read                        */
#define MAX_PICTURES 100000000ull  /* 208 times 3D Shapes: anything larger is a corrupt file  */

static const char *in_path = "";

static void usage(FILE *f) {
    fprintf(f,
        "usage: shapes3d2hpd [options] 3dshapes.h5 OUT.hpd\n"
        "Converts DeepMind's 3D Shapes file (datasets images (N,64,64,3) uint8 RGB and labels\n"
        "(N,6) float64) into a .hpd dataset laid out like gen_shapes3d's: u8 CHW 3x64x64,\n"
        "value_max 255, factors floor_hue, wall_hue, object_hue (10), scale (8), shape (4),\n"
        "orientation (15) as indices, each label mapped to its factor's nearest grid value.\n"
        "  --limit N        convert only the first N pictures (all when the file has fewer)\n"
        "  --source NAME    name stored in the header (default \"shapes3d\")\n"
        "  --mem-budget MB  the large blocks (labels, read blocks, the writer's buffers) in total\n"
        "                   may not pass MB (default: 3/4 of physical memory)\n"
        "  -q, --quiet      no progress line\n"
        "  -h, --help       this help\n"
        "      --version    the version of hephaestus.h\n"
        "Example:\n"
        "  shapes3d2hpd 3dshapes.h5 data/shapes3d/real.hpd      480,000 pictures, 5.9 GB\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- errors: one line "shapes3d2hpd: FILE: problem" ---------------------------------------- */

/* the most specific entry of HDF5's error stack (e.g. "truncated file: eof = ...") */
static herr_t h5_first_error(unsigned n, const H5E_error2_t *e, void *data) {
    char *out = (char *)data;
    if (n == 0 && e->desc && e->desc[0]) snprintf(out, 200, "%s", e->desc);
    return 0;
}

/* HDF5's reason for the last failure, kept before later calls clear its error stack */
static char h5_why[200];
static void h5_note(void) {
    h5_why[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_first_error, h5_why);
}

/* prints "shapes3d2hpd: IN: what" and, when HDF5 left a reason (h5_note), that reason */
static void fail_h5(const char *what) {
    char why[200] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_first_error, why);
    H5Eclear2(H5E_DEFAULT);
    if (!why[0]) memcpy(why, h5_why, sizeof why);
    if (why[0]) fprintf(stderr, "shapes3d2hpd: %s: %s (HDF5: %s)\n", in_path, what, why);
    else fprintf(stderr, "shapes3d2hpd: %s: %s\n", in_path, what);
}

/* ---- the two datasets: existence, rank, shape and element type ---------------------------- */

/* short name of an HDF5 element type for messages, e.g. "uint8", "float32", "string" */
static void type_name(hid_t t, char *out, size_t cap) {
    H5T_class_t c = H5Tget_class(t);
    unsigned bits = (unsigned)H5Tget_size(t) * 8u;
    if (c == H5T_INTEGER) snprintf(out, cap, "%s%u", H5Tget_sign(t) == H5T_SGN_NONE ? "uint" : "int", bits);
    else if (c == H5T_FLOAT) snprintf(out, cap, "float%u", bits);
    else if (c == H5T_STRING) snprintf(out, cap, "string");
    else if (c == H5T_COMPOUND) snprintf(out, cap, "compound");
    else if (c == H5T_ARRAY) snprintf(out, cap, "array");
    else snprintf(out, cap, "type class %d", (int)c);
}

/* "(480000, 64, 64, 3)" */
static void shape_name(const hsize_t *dims, int rank, char *out, size_t cap) {
    size_t at = 0;
    int k;
    at += (size_t)snprintf(out, cap, "(");
    for (k = 0; k < rank && at < cap; k++)
        at += (size_t)snprintf(out + at, cap - at, "%s%llu", k ? ", " : "", (unsigned long long)dims[k]);
    if (at < cap) snprintf(out + at, cap - at, "%s", rank == 1 ? ",)" : ")");
}

/* Open root dataset `name` and check it: rank, every size but the first against want[1..]
   (want_shape says it in words), element class (H5T_INTEGER unsigned or H5T_FLOAT) and size. Returns the dataset (rows in
   *rows, the first chunk dimension in *chunk0, 0 when not chunked) or -1 after a message.    */
static hid_t open_checked(hid_t file, const char *name, int rank, const hsize_t *want, const char *want_shape,
                          H5T_class_t cls, size_t size, const char *want_type, hsize_t *rows, hsize_t *chunk0) {
    hsize_t dims[H5S_MAX_RANK];
    char msg[400], got[100], a[100];
    hid_t ds, sp, ty, pl;
    int r, ok, k;
    htri_t ex = H5Lexists(file, name, H5P_DEFAULT);
    if (ex <= 0) {
        snprintf(msg, sizeof msg, "no dataset '%s' at the root of the file", name);
        fail_h5(msg);
        return -1;
    }
    ds = H5Dopen2(file, name, H5P_DEFAULT);
    if (ds < 0) {
        snprintf(msg, sizeof msg, "'%s' is not a dataset (cannot open it as one)", name);
        fail_h5(msg);
        return -1;
    }
    sp = H5Dget_space(ds);
    r = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (r < 0 || r > H5S_MAX_RANK || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) r = -1;
    if (sp >= 0) H5Sclose(sp);
    ok = r == rank;
    for (k = 1; ok && k < rank; k++) ok = dims[k] == want[k];
    if (!ok) {
        if (r < 0) snprintf(a, sizeof a, "an unreadable shape");
        else if (r == 0) snprintf(a, sizeof a, "() (a scalar)");
        else shape_name(dims, r, a, sizeof a);
        snprintf(msg, sizeof msg, "dataset '%s' has shape %s; expected %s", name, a, want_shape);
        fail_h5(msg);
        H5Dclose(ds);
        return -1;
    }
    ty = H5Dget_type(ds);
    ok = ty >= 0 && H5Tget_class(ty) == cls && H5Tget_size(ty) == size &&
         (cls != H5T_INTEGER || H5Tget_sign(ty) == H5T_SGN_NONE);
    if (!ok) {
        if (ty >= 0) type_name(ty, got, sizeof got);
        else snprintf(got, sizeof got, "an unreadable type");
        snprintf(msg, sizeof msg, "dataset '%s' holds %s; expected %s", name, got, want_type);
        fail_h5(msg);
        if (ty >= 0) H5Tclose(ty);
        H5Dclose(ds);
        return -1;
    }
    H5Tclose(ty);
    *rows = dims[0];
    *chunk0 = 0;
    pl = H5Dget_create_plist(ds);
    if (pl >= 0) {
        hsize_t cd[H5S_MAX_RANK];
        if (H5Pget_layout(pl) == H5D_CHUNKED && H5Pget_chunk(pl, rank, cd) == rank) *chunk0 = cd[0];
        H5Pclose(pl);
    }
    return ds;
}

/* rows [start, start+n) of a dataset of the given rank into buf, converted to mem_type */
static int read_rows(hid_t ds, int rank, const hsize_t *dims, hsize_t start, hsize_t n, hid_t mem_type, void *buf) {
    hsize_t off[4] = {0, 0, 0, 0}, cnt[4];
    hid_t fs = H5Dget_space(ds), ms;
    herr_t rc = -1;
    memcpy(cnt, dims, sizeof(hsize_t) * (size_t)rank);
    off[0] = start;
    cnt[0] = n;
    ms = H5Screate_simple(rank, cnt, NULL);
    if (fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) >= 0)
        rc = H5Dread(ds, mem_type, ms, fs, H5P_DEFAULT, buf);
    if (rc < 0) h5_note(); /* the closes below would clear the reason */
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return rc < 0 ? -1 : 0;
}

/* rows per read: `want` rounded up to a whole number of chunks (chunk0 rows each), so that
   each chunk is inflated once; at most `most` (taller chunks are then inflated once per read) */
static hsize_t block_rows(hsize_t want, hsize_t chunk0, hsize_t most) {
    hsize_t b = want;
    if (chunk0 > 0 && chunk0 < most) b = (want + chunk0 - 1) / chunk0 * chunk0;
    return b > most ? most : b;
}

/* ---- labels -> factor indices -------------------------------------------------------------- */

/* index of the grid value of factor k nearest to v, or -1 when v is off the grid (farther than
   1e-4 of a grid step from every value; float32-rounded labels still map) or not a number   */
static int grid_index(int k, double v) {
    double step = heph_shapes3d_value(k, 1) - heph_shapes3d_value(k, 0), best = HUGE_VAL;
    int i, at = -1;
    for (i = 0; i < heph_shapes3d_count(k); i++) {
        double d = fabs(v - heph_shapes3d_value(k, i)); /* distance to grid value i */
        if (d < best) { best = d; at = i; }
    }
    return best <= 1e-4 * step ? at : -1;
}

/* read the first n rows of labels in blocks, store their indices in lab (n x 6); *grid = the
   rows are the full grid in index order; chunk0: rows per HDF5 chunk (0: not chunked).
   0, or -1 after a message.                                                                  */
static int read_labels(hid_t ds, uint64_t n, hsize_t chunk0, int32_t *lab, int *grid) {
    const hsize_t dims[2] = {0, NF};
    hsize_t blk = block_rows(LABEL_BLOCK, chunk0, MAX_LABEL_BLOCK), at;
    double *buf = (double *)cli_budget_calloc((size_t)blk * NF, sizeof(double));
    if (!buf) { fprintf(stderr, "shapes3d2hpd: out of memory%s\n", cli_budget_note()); return -1; }
    *grid = n == (uint64_t)HEPH_S3D_COUNT;
    for (at = 0; at < n; at += blk) {
        hsize_t m = n - at < blk ? n - at : blk, j;
        char msg[120];
        if (read_rows(ds, 2, dims, at, m, H5T_NATIVE_DOUBLE, buf) != 0) {
            snprintf(msg, sizeof msg, "cannot read labels rows %llu..%llu (corrupt or truncated file?)",
                     (unsigned long long)at, (unsigned long long)(at + m - 1));
            fail_h5(msg);
            cli_budget_free(buf);
            return -1;
        }
        for (j = 0; j < m; j++) {
            int f[NF], k;
            for (k = 0; k < NF; k++) {
                double v = buf[j * NF + (hsize_t)k];
                f[k] = grid_index(k, v);
                if (f[k] < 0) {
                    fprintf(stderr, "shapes3d2hpd: %s: labels row %llu, column %d (%s) is %.17g: not one of "
                            "the %d %s values %g..%g\n", in_path, (unsigned long long)(at + j), k,
                            heph_shapes3d_name(k), v, heph_shapes3d_count(k), heph_shapes3d_name(k),
                            heph_shapes3d_value(k, 0), heph_shapes3d_value(k, heph_shapes3d_count(k) - 1));
                    cli_budget_free(buf);
                    return -1;
                }
                lab[(at + j) * NF + (hsize_t)k] = f[k];
            }
            if (heph_shapes3d_index(f) != (long)(at + j)) *grid = 0;
        }
    }
    cli_budget_free(buf);
    return 0;
}

/* ---- pictures ------------------------------------------------------------------------------ */

/* one picture: HWC (file) -> planar CHW (.hpd, as gen_shapes3d writes it) */
static void hwc_to_chw(const uint8_t *hwc, uint8_t *chw) {
    int c, p;
    for (c = 0; c < 3; c++)
        for (p = 0; p < S * S; p++) chw[c * S * S + p] = hwc[p * 3 + c];
}

static void progress(uint64_t done, uint64_t total, double t0, double *t_last) {
    double t = now_s(), rate;
    int tty = isatty(2);
    if (!(t - *t_last >= (tty ? 0.5 : 10.0) || (done == total && t - t0 >= 1.0))) return;
    rate = (double)done / (t - t0);
    fprintf(stderr, "%sshapes3d2hpd: %llu/%llu pictures (%.1f%%), %.0f/s, %.0f s left%s", tty ? "\r" : "",
            (unsigned long long)done, (unsigned long long)total, 100.0 * (double)done / (double)total, rate,
            (double)(total - done) / rate, (tty && done < total) ? "   " : "\n");
    *t_last = t;
}

/* ---- main ---------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    const char *out = NULL, *source = "shapes3d";
    unsigned long long limit = 0;
    int quiet = 0, grid = 0, writing = 0, rc = 1, i, k;
    const hsize_t img_dims[4] = {0, S, S, 3}, lab_dims[2] = {0, NF};
    hsize_t n_img = 0, n_lab = 0, chunk0 = 0, lab_chunk0 = 0, blk, at;
    hid_t file = -1, img = -1, lab = -1;
    uint64_t n;
    int32_t *labels = NULL;
    uint8_t *hwc = NULL, chw[PIX];
    double values[NF][15], t0, t_last;
    heph_hpd_info info;
    heph_hpd_writer w;
    FILE *probe;

    cli_budget_default();
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--version")) { printf("shapes3d2hpd %s (hephaestus.h)\n", HEPH_VERSION_STRING); return 0; }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { quiet = 1; continue; }
        if ((!strcmp(a, "--limit") || !strcmp(a, "--source") || !strcmp(a, "--mem-budget")) && i + 1 >= argc) {
            fprintf(stderr, "shapes3d2hpd: %s needs a value (see --help)\n", a);
            return 2;
        }
        if (!strcmp(a, "--limit")) {
            const char *v = argv[++i];
            char *end = NULL;
            errno = 0;
            if (*v >= '0' && *v <= '9') limit = strtoull(v, &end, 10);
            if (!end || errno || *end || limit == 0) {
                fprintf(stderr, "shapes3d2hpd: --limit needs a positive integer (got \"%s\")\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--source")) source = argv[++i];
        else if (!strcmp(a, "--mem-budget")) {
            if (cli_budget_parse(argv[++i]) != 0) {
                fprintf(stderr, "shapes3d2hpd: --mem-budget takes an integer in 1..1073741824 (MB), got \"%s\"\n", argv[i]);
                return 2;
            }
        }
        else if (a[0] == '-' && a[1]) { fprintf(stderr, "shapes3d2hpd: unknown option %s (see --help)\n", a); return 2; }
        else if (!in_path[0]) in_path = a;
        else if (!out) out = a;
        else { fprintf(stderr, "shapes3d2hpd: too many arguments: %s (see --help)\n", a); return 2; }
    }
    if (!in_path[0] || !out) { fprintf(stderr, "shapes3d2hpd: give the .h5 file and the output .hpd (see --help)\n"); return 2; }
    if (strlen(source) > 32) { fprintf(stderr, "shapes3d2hpd: --source: longer than 32 characters\n"); return 2; }

    /* 1. the file and its two datasets */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors are reported here, one line each */
    probe = fopen(in_path, "rb");
    if (!probe) { fprintf(stderr, "shapes3d2hpd: %s: cannot open: %s\n", in_path, strerror(errno)); goto done; }
    fclose(probe);
    if (H5Fis_hdf5(in_path) <= 0) {
        fail_h5("not an HDF5 file (no HDF5 signature found)");
        goto done;
    }
    file = H5Fopen(in_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) { fail_h5("cannot open as HDF5 (truncated or corrupt file?)"); goto done; }
    img = open_checked(file, "images", 4, img_dims, "(N, 64, 64, 3)", H5T_INTEGER, 1, "uint8", &n_img, &chunk0);
    if (img < 0) goto done;
    lab = open_checked(file, "labels", 2, lab_dims, "(N, 6)", H5T_FLOAT, 8, "float64", &n_lab, &lab_chunk0);
    if (lab < 0) goto done;
    if (n_img != n_lab) {
        fprintf(stderr, "shapes3d2hpd: %s: images has %llu pictures but labels has %llu rows\n", in_path,
                (unsigned long long)n_img, (unsigned long long)n_lab);
        goto done;
    }
    if (n_img == 0) { fprintf(stderr, "shapes3d2hpd: %s: the datasets hold no pictures\n", in_path); goto done; }
    if (n_img > MAX_PICTURES) {
        fprintf(stderr, "shapes3d2hpd: %s: the datasets claim %llu pictures, more than %llu (corrupt file?)\n",
                in_path, (unsigned long long)n_img, MAX_PICTURES);
        goto done;
    }
    n = (uint64_t)n_img;
    if (limit && limit < n) n = limit;

    /* 2. the labels, checked before anything is written */
    labels = (int32_t *)cli_budget_calloc((size_t)n * NF, sizeof(int32_t));
    blk = block_rows(BLOCK, chunk0, MAX_BLOCK);
    hwc = labels ? (uint8_t *)cli_budget_calloc((size_t)blk, PIX) : NULL;
    if (!labels || !hwc) { fprintf(stderr, "shapes3d2hpd: %s: out of memory for %llu pictures%s\n", in_path, (unsigned long long)n, cli_budget_note()); goto done; }
    if (read_labels(lab, n, lab_chunk0, labels, &grid) != 0) goto done;

    /* 3. the output: the same header gen_shapes3d writes, real data (no generator, no seed) */
    memset(&info, 0, sizeof info);
    info.count = n;
    info.c = 3; info.h = S; info.w = S;
    info.dtype = HEPH_PX_U8;
    info.value_max = 255.0f;
    info.flags = grid ? (uint32_t)HEPH_HPD_GRID : 0u;
    snprintf(info.source, sizeof info.source, "%s", source);
    info.n_factors = NF;
    for (k = 0; k < NF; k++) {
        int v;
        snprintf(info.factors[k].name, sizeof info.factors[k].name, "%s", heph_shapes3d_name(k));
        info.factors[k].n_values = (uint32_t)heph_shapes3d_count(k);
        for (v = 0; v < heph_shapes3d_count(k); v++) values[k][v] = heph_shapes3d_value(k, v);
        info.factors[k].values = values[k];
    }
    if (heph_hpd_create(&w, out, &info) != HEPH_OK) { fprintf(stderr, "shapes3d2hpd: %s\n", w.err); goto done; }
    writing = 1;

    /* 4. the pictures, block by block */
    t0 = t_last = now_s();
    for (at = 0; at < n; at += blk) {
        hsize_t m = n - at < blk ? n - at : blk, j;
        if (read_rows(img, 4, img_dims, at, m, H5T_NATIVE_UINT8, hwc) != 0) {
            char msg[120];
            snprintf(msg, sizeof msg, "cannot read images rows %llu..%llu (corrupt or truncated file?)",
                     (unsigned long long)at, (unsigned long long)(at + m - 1));
            fail_h5(msg);
            goto done;
        }
        for (j = 0; j < m; j++) {
            hwc_to_chw(hwc + j * PIX, chw);
            if (heph_hpd_put_u8(&w, chw, labels + (at + j) * NF) != HEPH_OK) {
                fprintf(stderr, "shapes3d2hpd: %s\n", w.err);
                goto done;
            }
        }
        if (!quiet) progress(at + m, n, t0, &t_last);
    }
    writing = 0;
    if (heph_hpd_finish(&w) != HEPH_OK) { fprintf(stderr, "shapes3d2hpd: %s\n", w.err); goto done; }
    printf("shapes3d2hpd: wrote %s: %llu of %llu pictures 3x64x64 u8, 6 factors%s, %.1f MB, %.1f s\n", out,
           (unsigned long long)n, (unsigned long long)n_img, grid ? ", full grid in index order" : "",
           ((double)n * (PIX + 4.0 * NF)) / 1e6, now_s() - t0);
    rc = 0;
done:
    if (writing) heph_hpd_abort(&w);
    if (img >= 0) H5Dclose(img);
    if (lab >= 0) H5Dclose(lab);
    if (file >= 0) H5Fclose(file);
    H5close();
    cli_budget_free(labels);
    cli_budget_free(hwc);
    return rc;
}
