/* bench/mcd/mcd_fit.c - the library's FastMCD fit of the codes in a NumPy file, as text, for
   bench/mcd/compare.py to set beside scikit-learn's MinCovDet.
   usage: mcd_fit CODES.npy FRACTION SEED     (FRACTION <= 0: h = (n + D + 1) / 2)
   Prints: "n D", "raw_logdet X", "mean" + D numbers, "cov" + D*D numbers (row-major),
   "support" + n 0/1 flags (the reweighted fit), "d2" + n squared distances.               */
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"

/* a little-endian float32 C-order (n, D) array of NumPy format 1.x; NULL on anything else */
static float *read_npy(const char *path, size_t *n, int *D) {
    unsigned char pre[10];
    char hdr[1024];
    unsigned long long a, b;
    size_t hl, i;
    const char *sh;
    float *x;
    FILE *f = fopen(path, "rb");
    if (!f || fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) goto bad;
    hl = (size_t)pre[8] | (size_t)pre[9] << 8;
    if (hl >= sizeof hdr || fread(hdr, 1, hl, f) != hl) goto bad;
    hdr[hl] = '\0';
    if (!strstr(hdr, "'<f4'") || !strstr(hdr, "'fortran_order': False") || !(sh = strstr(hdr, "'shape': ("))) goto bad;
    if (sscanf(sh + 10, "%llu, %llu)", &a, &b) != 2 || a < 2 || b < 1 || b > 4096 || a > 100000000ULL) goto bad;
    *n = (size_t)a; *D = (int)b;
    x = (float *)malloc(*n * (size_t)*D * sizeof(float));
    if (!x) goto bad;
    for (i = 0; i < *n * (size_t)*D; i++) {
        unsigned char q[4];
        uint32_t u;
        if (fread(q, 1, 4, f) != 4) { free(x); goto bad; }
        u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
        memcpy(&x[i], &u, 4);
    }
    fclose(f);
    return x;
bad:
    if (f) fclose(f);
    return NULL;
}

int main(int argc, char **argv) {
    heph_maha fit;
    size_t n, i;
    int D, a;
    float *x;
    double *d2;
    if (argc != 4) { fprintf(stderr, "usage: mcd_fit CODES.npy FRACTION SEED\n"); return 2; }
    if (!(x = read_npy(argv[1], &n, &D))) { fprintf(stderr, "mcd_fit: %s: not a float32 (n, D) .npy file\n", argv[1]); return 1; }
    if (heph_maha_fit(&fit, x, n, D, HEPH_COV_MCD, atof(argv[2]), (uint64_t)atoll(argv[3])) != HEPH_OK) {
        fprintf(stderr, "mcd_fit: %s\n", fit.err);
        return 1;
    }
    d2 = (double *)malloc(n * sizeof(double));
    if (!d2) return 1;
    heph_maha_score(&fit, x, n, d2);
    printf("%zu %d\nraw_logdet %.17g\nmean", n, D, fit.raw_logdet);
    for (a = 0; a < D; a++) printf(" %.17g", fit.mean[a]);
    printf("\ncov");
    for (a = 0; a < D * D; a++) printf(" %.17g", fit.cov[a]);
    printf("\nsupport");
    for (i = 0; i < n; i++) printf(" %d", fit.support[i]);
    printf("\nd2");
    for (i = 0; i < n; i++) printf(" %.17g", d2[i]);
    printf("\n");
    heph_maha_free(&fit);
    free(x); free(d2);
    return 0;
}
