/* idx_sweep.c - robustness sweep of tools/idx2hpd.c, built with sanitizers by tests/run.sh.
   idx2hpd's main is compiled in here (renamed) and called in-process on every single-byte flip
   and every truncation of a gzip file (for a large file: the first 128 positions, where the
   gzip header and the first block's Huffman tables are, and 32 more spread over the rest). A flip must convert or fail with exit status 1; a truncation must
   fail with 1. The sanitizers report any out-of-bounds access, undefined behaviour or leak.

   usage: idx_sweep FILE.gz LABELS.idx TMPDIR
   The last line on stderr says what was swept (and the first failure); exit status 0 = pass. */
#define main idx2hpd_main
#include "../tools/idx2hpd.c"
#undef main

static unsigned char *whole(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *b;
    long sz;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        if (f) fclose(f);
        return NULL;
    }
    b = (unsigned char *)malloc((size_t)sz + 1);
    if (!b || fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        free(b);
        return NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static int put(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(b, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    return ok;
}

int main(int argc, char **argv) {
    char gz[1024], out[1024];
    char *args[5];
    unsigned char *b;
    size_t n, i, k, npos, bad = 0, runs = 0;
    char first[200] = "";
    if (argc != 4) {
        fprintf(stderr, "usage: idx_sweep FILE.gz LABELS.idx TMPDIR\n");
        return 2;
    }
    b = whole(argv[1], &n);
    if (!b) {
        fprintf(stderr, "idx_sweep: cannot read %s\n", argv[1]);
        return 1;
    }
    snprintf(gz, sizeof gz, "%s/sweep.gz", argv[3]);
    snprintf(out, sizeof out, "%s/sweep.hpd", argv[3]);
    args[0] = (char *)"idx2hpd"; args[1] = gz; args[2] = argv[2]; args[3] = out; args[4] = NULL;
    npos = n <= 160 ? n : 160;
    for (k = 0; k < npos; k++) {
        int rc;
        i = (n <= 160 || k < 128) ? k : 128 + (k - 128) * (n - 128) / 32;
        b[i] ^= 0xff; /* one byte flipped */
        if (!put(gz, b, n)) { bad++; break; }
        b[i] ^= 0xff;
        rc = idx2hpd_main(4, args);
        runs++;
        if (rc != 0 && rc != 1) {
            if (!bad++) snprintf(first, sizeof first, "flip of byte %zu: exit status %d", i, rc);
        }
        if (!put(gz, b, i)) { bad++; break; } /* the first i bytes */
        rc = idx2hpd_main(4, args);
        runs++;
        if (rc != 1) {
            if (!bad++) snprintf(first, sizeof first, "truncation to %zu bytes: exit status %d", i, rc);
        }
    }
    free(b);
    remove(gz);
    remove(out);
    fprintf(stderr, "idx_sweep: %zu of %zu byte positions of %s, %zu runs%s%s\n", npos, n, argv[1],
            runs, bad ? "; first failure: " : "", first);
    return bad ? 1 : 0;
}
