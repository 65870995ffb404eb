/* shapes3d_h5 - writes small 3dshapes.h5-like files with the HDF5 C API and checks what
   tools/shapes3d2hpd made of them. Driven by tests/test_shapes3d_h5.sh (built only when
   libhdf5-dev is installed); each subcommand is one check: exit 0 on success, else exit 1
   with the reason on stdout (one line).

   shapes3d_h5 write FILE.h5 KIND N     N pictures with the real file's layout: images
                                        (N,64,64,3) uint8 HWC, labels (N,6) float64 values.
     KIND good       chunked (7,32,64,3) + shuffle + deflate; pixels a pattern of (row, y, x,
                     channel); labels of scattered grid tuples, odd rows rounded to float32
          contig     the same data, contiguous and uncompressed
          rendered   the first N pictures of gen_shapes3d --where floor_hue=2,wall_hue=3,
                     object_hue=4,shape=2, rendered by tools/shapes3d_render.h, stored HWC
          and broken variants of good: chw (images (N,3,64,64)), rgba (N,64,64,4), imgrank
          (images (N,64,64)), u16 (images uint16), i8 (images int8), labi64 (labels int64),
          labf32 (labels float32), labcols (labels (N,5)), labrank (labels (N*6)), count
          (labels N-1 rows), noimages, nolabels, group (images is a group), offgrid (row 5
          scale 0.8), nan (row 2 floor_hue NaN), empty (N = 0 rows)
   shapes3d_h5 check FILE.hpd KIND N    the .hpd holds the first N pictures of KIND exactly:
                                        header as gen_shapes3d's (u8 CHW 3x64x64, value_max
                                        255, factor names, counts, values), pixels, indices
   shapes3d_h5 same-as-gen GEN.hpd CONV.hpd  byte-identical except the flags (GENERATED) and
                                        the source name: same header, factor table, pixels
                                        and labels
   shapes3d_h5 corrupt FILE.h5          xor 512 bytes in the middle of the file              */
#define HEPH_FSEEK(fp, off, whence) fseeko((fp), (off_t)(off), (whence))
#define HEPH_FTELL(fp) ((uint64_t)ftello(fp))
#define HEPHAESTUS_STATIC /* only the .hpd reader is used */
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#define HEPH_SHAPES3D_STATIC
#define HEPH_SHAPES3D_IMPLEMENTATION
#include "tools/shapes3d_render.h"
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdarg.h>

#define S 64
#define PIX (3 * S * S)

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    return 1;
}

/* ---- the expected contents, computed here on their own ------------------------------------ */

static const char *const names[6] = {"floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"};
static const int counts[6] = {10, 10, 10, 8, 4, 15};

/* numpy.linspace(a, b, n)[i] as 3dshapes.h5 stores it */
static double linspace(double a, double b, int n, int i) {
    return i == n - 1 ? b : a + (double)i * ((b - a) / (double)(n - 1));
}
static double value(int k, int i) {
    if (k == 3) return linspace(0.75, 1.25, 8, i);
    if (k == 4) return (double)i;
    if (k == 5) return linspace(-30.0, 30.0, 15, i);
    return linspace(0.0, 0.9, 10, i);
}

/* grid tuple of row i: scattered over the grid for "good", the --where sub-grid for "rendered"
   (floor 2, wall 3, object 4, sphere; scale and orientation in index order) */
static void tuple_of(int rendered, long i, int f[6]) {
    long idx = rendered ? -1 : (i * 7919L + 13L) % 480000L;
    int k;
    if (rendered) {
        f[0] = 2; f[1] = 3; f[2] = 4; f[3] = (int)(i / 15) % 8; f[4] = 2; f[5] = (int)(i % 15);
        return;
    }
    for (k = 5; k >= 0; k--) { f[k] = (int)(idx % counts[k]); idx /= counts[k]; }
}

/* pixel (y, x, channel c) of row i for "good": 4x4 blocks (deflate finds repeats), every
   coordinate weighted differently so a swapped axis or channel order shows */
static uint8_t pattern(long i, int y, int x, int c) {
    return (uint8_t)(i * 7 + (y / 4) * 29 + (x / 4) * 11 + c * 101 + (y % 4) * (c == 1));
}

/* ---- write ---------------------------------------------------------------------------------- */

static int put(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank, const hsize_t *dims,
               const hsize_t *chunk, const void *data) {
    hid_t sp = H5Screate_simple(rank, dims, NULL), pl = H5Pcreate(H5P_DATASET_CREATE), ds;
    int ok;
    if (chunk) {
        H5Pset_chunk(pl, rank, chunk);
        H5Pset_shuffle(pl);
        H5Pset_deflate(pl, 4);
    }
    ds = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    ok = ds >= 0 && (!data || H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(pl);
    H5Sclose(sp);
    return ok;
}

static int write_file(const char *path, const char *kind, long n) {
    int rendered = !strcmp(kind, "rendered"), contig = !strcmp(kind, "contig"), ok = 1, k;
    long i, nl = !strcmp(kind, "count") ? n - 1 : n;
    size_t npx = (size_t)(n ? n : 1) * PIX;
    uint8_t *img = (uint8_t *)malloc(npx), chw[PIX];
    uint16_t *img16 = NULL;
    double *lab = (double *)malloc((size_t)(n ? n : 1) * 6 * sizeof(double));
    float *lab32 = NULL;
    int64_t *lab64 = NULL;
    hsize_t idims[4] = {(hsize_t)n, S, S, 3}, ichunk[4] = {7, 32, 64, 3};
    hsize_t ldims[2] = {(hsize_t)nl, 6}, lchunk[2] = {nl < 100 ? (hsize_t)nl : 100, 6};
    const hsize_t *ic = (contig || rendered || !strcmp(kind, "empty")) ? NULL : ichunk;
    const hsize_t *lc = ic ? lchunk : NULL;
    hid_t file;
    if (!img || !lab) return fail("out of memory");
    if (rendered) heph_shapes3d_init();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* failures are reported in one line below */
    for (i = 0; i < n; i++) {
        int f[6], y, x, c;
        tuple_of(rendered, i, f);
        for (k = 0; k < 6; k++) {
            double v = value(k, f[k]);
            lab[i * 6 + k] = (!rendered && (i & 1)) ? (double)(float)v : v; /* float32-rounded labels map too */
        }
        if (rendered) heph_shapes3d_render(chw, f);
        for (y = 0; y < S; y++)
            for (x = 0; x < S; x++)
                for (c = 0; c < 3; c++)
                    img[(size_t)i * PIX + (size_t)((y * S + x) * 3 + c)] =
                        rendered ? chw[c * S * S + y * S + x] : pattern(i, y, x, c);
    }
    if (!strcmp(kind, "offgrid")) lab[5 * 6 + 3] = 0.8;
    if (!strcmp(kind, "nan")) lab[2 * 6 + 0] = nan("");
    file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) return fail("%s: cannot create", path);

    /* images */
    if (!strcmp(kind, "noimages")) {
    } else if (!strcmp(kind, "group")) {
        hid_t g = H5Gcreate2(file, "images", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        ok = g >= 0 && H5Gclose(g) >= 0;
    } else if (!strcmp(kind, "chw")) {
        hsize_t d[4] = {(hsize_t)n, 3, S, S};
        ok = put(file, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, d, NULL, img);
    } else if (!strcmp(kind, "rgba")) {
        hsize_t d[4] = {(hsize_t)n, S, S, 4};
        ok = put(file, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, d, NULL, NULL);
    } else if (!strcmp(kind, "imgrank")) {
        hsize_t d[3] = {(hsize_t)n, S, S};
        ok = put(file, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, 3, d, NULL, NULL);
    } else if (!strcmp(kind, "u16") || !strcmp(kind, "i8")) {
        int u16 = !strcmp(kind, "u16");
        img16 = (uint16_t *)malloc(npx * sizeof(uint16_t));
        if (!img16) return fail("out of memory");
        for (i = 0; i < (long)npx; i++) img16[i] = img[i];
        ok = u16 ? put(file, "images", H5T_STD_U16LE, H5T_NATIVE_UINT16, 4, idims, NULL, img16)
                 : put(file, "images", H5T_STD_I8LE, H5T_NATIVE_UINT8, 4, idims, NULL, NULL);
    } else {
        ok = put(file, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, idims, ic, img);
    }

    /* labels */
    if (!ok || !strcmp(kind, "nolabels")) {
    } else if (!strcmp(kind, "labi64")) {
        lab64 = (int64_t *)malloc((size_t)(n ? n : 1) * 6 * sizeof(int64_t));
        if (!lab64) return fail("out of memory");
        for (i = 0; i < n * 6; i++) lab64[i] = (int64_t)lab[i];
        ok = put(file, "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, 2, ldims, NULL, lab64);
    } else if (!strcmp(kind, "labf32")) {
        lab32 = (float *)malloc((size_t)(n ? n : 1) * 6 * sizeof(float));
        if (!lab32) return fail("out of memory");
        for (i = 0; i < n * 6; i++) lab32[i] = (float)lab[i];
        ok = put(file, "labels", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, ldims, NULL, lab32);
    } else if (!strcmp(kind, "labcols")) {
        hsize_t d[2] = {(hsize_t)n, 5};
        ok = put(file, "labels", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d, NULL, lab);
    } else if (!strcmp(kind, "labrank")) {
        hsize_t d[1] = {(hsize_t)n * 6};
        ok = put(file, "labels", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d, NULL, lab);
    } else {
        ok = put(file, "labels", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, ldims, lc, lab);
    }
    ok = H5Fclose(file) >= 0 && ok;
    free(img); free(img16); free(lab); free(lab32); free(lab64);
    return ok ? 0 : fail("%s: HDF5 could not write kind %s", path, kind);
}

/* ---- check ---------------------------------------------------------------------------------- */

static int check_file(const char *path, const char *kind, long n) {
    int rendered = !strcmp(kind, "rendered"), k, v;
    heph_hpd d;
    uint8_t *px = (uint8_t *)malloc(PIX), want[PIX];
    long i;
    FILE *f = NULL;
    int rc = 1;
    if (!px) return fail("out of memory");
    if (heph_hpd_open(&d, path) != HEPH_OK) { free(px); return fail("%s", d.err); }
    if (d.info.count != (uint64_t)n || d.info.c != 3 || d.info.h != S || d.info.w != S ||
        d.info.dtype != HEPH_PX_U8 || d.info.value_max != 255.0f) {
        fail("header: count %llu c %u h %u w %u dtype %u value_max %g; want %ld 3x64x64 u8 255",
             (unsigned long long)d.info.count, d.info.c, d.info.h, d.info.w, d.info.dtype, (double)d.info.value_max, n);
        goto done;
    }
    if (d.info.flags != HEPH_HPD_LABELS || d.info.seed != 0 || strcmp(d.info.source, "shapes3d") || d.info.n_factors != 6) {
        fail("header: flags %u seed %llu source '%s' factors %u; want labels only, 0, 'shapes3d', 6", d.info.flags,
             (unsigned long long)d.info.seed, d.info.source, d.info.n_factors);
        goto done;
    }
    for (k = 0; k < 6; k++) {
        if (strcmp(d.info.factors[k].name, names[k]) || d.info.factors[k].n_values != (uint32_t)counts[k] ||
            !d.info.factors[k].values) {
            fail("factor %d is '%s' with %u values; want '%s' with %d", k, d.info.factors[k].name,
                 d.info.factors[k].n_values, names[k], counts[k]);
            goto done;
        }
        for (v = 0; v < counts[k]; v++)
            if (memcmp(&d.info.factors[k].values[v], &(double){value(k, v)}, sizeof(double))) {
                fail("factor %s value %d is %.17g; want %.17g", names[k], v, d.info.factors[k].values[v], value(k, v));
                goto done;
            }
    }
    f = fopen(path, "rb");
    if (!f || fseeko(f, (off_t)d.header_bytes, SEEK_SET) != 0) { fail("%s: cannot reopen", path); goto done; }
    if (rendered) heph_shapes3d_init();
    for (i = 0; i < n; i++) {
        int t[6], y, x, c;
        tuple_of(rendered, i, t);
        for (k = 0; k < 6; k++)
            if (heph_hpd_label(&d, (size_t)i, k) != t[k]) {
                fail("picture %ld factor %s index %d; want %d", i, names[k], heph_hpd_label(&d, (size_t)i, k), t[k]);
                goto done;
            }
        if (fread(px, 1, PIX, f) != PIX) { fail("picture %ld: short read", i); goto done; }
        if (rendered) heph_shapes3d_render(want, t); /* what gen_shapes3d stores: CHW */
        else
            for (c = 0; c < 3; c++)
                for (y = 0; y < S; y++)
                    for (x = 0; x < S; x++) want[c * S * S + y * S + x] = pattern(i, y, x, c);
        for (c = 0; c < PIX; c++)
            if (px[c] != want[c]) {
                fail("picture %ld byte %d (channel %d, y %d, x %d) is %u; want %u", i, c, c / (S * S),
                     c % (S * S) / S, c % S, px[c], want[c]);
                goto done;
            }
    }
    rc = 0;
done:
    if (f) fclose(f);
    heph_hpd_close(&d);
    free(px);
    return rc;
}

static unsigned char *slurp(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *b = NULL;
    if (f && fseek(f, 0, SEEK_END) == 0 && (*len = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = (unsigned char *)malloc((size_t)*len)) && fread(b, 1, (size_t)*len, f) != (size_t)*len) {
        free(b);
        b = NULL;
    }
    if (f) fclose(f);
    return b;
}

/* the converter's file equals gen_shapes3d's but for the flags (bytes 52..55: GENERATED) and
   the source name (bytes 72..103) */
static int same_as_gen(const char *gen, const char *conv) {
    long ng = 0, nc = 0, i;
    unsigned char *g = slurp(gen, &ng), *c = slurp(conv, &nc);
    int rc = 1;
    if (!g || !c) fail("cannot read %s or %s", gen, conv);
    else if (ng != nc) fail("%s has %ld bytes, %s %ld", gen, ng, conv, nc);
    else if (g[52] != (HEPH_HPD_LABELS | HEPH_HPD_GENERATED) || c[52] != HEPH_HPD_LABELS)
        fail("flags are %u (gen) and %u (converted); want 5 and 1", g[52], c[52]);
    else if (strcmp((const char *)g + 72, "shapes3d-proc") || strcmp((const char *)c + 72, "shapes3d"))
        fail("sources are '%.32s' and '%.32s'", (const char *)g + 72, (const char *)c + 72);
    else {
        for (i = 0; i < ng; i++)
            if (g[i] != c[i] && !(i >= 52 && i < 56) && !(i >= 72 && i < 104)) break;
        if (i < ng) fail("byte %ld differs: %u (gen) and %u (converted)", i, g[i], c[i]);
        else rc = 0;
    }
    free(g);
    free(c);
    return rc;
}

static int corrupt(const char *path) {
    FILE *f = fopen(path, "r+b");
    unsigned char b[512];
    long mid, i;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (mid = ftell(f) / 2) < 0 || fseek(f, mid, SEEK_SET) != 0 ||
        fread(b, 1, sizeof b, f) != sizeof b) {
        if (f) fclose(f);
        return fail("%s: cannot read 512 bytes in the middle", path);
    }
    for (i = 0; i < (long)sizeof b; i++) b[i] ^= 0x5a;
    if (fseek(f, mid, SEEK_SET) != 0 || fwrite(b, 1, sizeof b, f) != sizeof b) { fclose(f); return fail("write"); }
    return fclose(f) == 0 ? 0 : fail("close");
}

int main(int argc, char **argv) {
    int rc;
    if (argc == 5 && !strcmp(argv[1], "write")) rc = write_file(argv[2], argv[3], atol(argv[4]));
    else if (argc == 5 && !strcmp(argv[1], "check")) rc = check_file(argv[2], argv[3], atol(argv[4]));
    else if (argc == 4 && !strcmp(argv[1], "same-as-gen")) rc = same_as_gen(argv[2], argv[3]);
    else if (argc == 3 && !strcmp(argv[1], "corrupt")) rc = corrupt(argv[2]);
    else return fail("usage: shapes3d_h5 write FILE KIND N | check HPD KIND N | same-as-gen GEN CONV | corrupt FILE");
    H5close();
    return rc;
}
