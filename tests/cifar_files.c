/* cifar_files.c - tests/test_cifar.sh's helper: writes small files in the CIFAR-10 and
   CIFAR-100 binary layouts (records of 1 or 2 label bytes and 3072 pixel bytes, CHW, no
   header) and checks what tools/cifar2hpd made of them, picture by picture.
     cifar_files write DIR          c10_a.bin (3 records: labels 0, 9, 4), c10_b.bin (2: 1, 2),
                                    c100.bin (3: coarse/fine 19/99, 0/0, 5/42), and the bad
                                    ones: c10_label10.bin (record 1 label 10), c10_cut.bin (3
                                    records less 5 bytes), c100_fine100.bin, empty.bin
     cifar_files check10 OUT.hpd    c10_a then c10_b: 5 pictures, their bytes and classes
     cifar_files check100 OUT.hpd   c100: 3 pictures, their bytes, coarse and fine labels
   Pixel j of record r of a file with seed s is (s + 7 r + 13 j) mod 256.                   */
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PX = 3072 };

static int put(const char *dir, const char *name, int seed, int n, const int *l0, const int *l1, long cut) {
    char path[1024];
    unsigned char rec[2 + PX];
    int r, j, L = l1 ? 2 : 1;
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!(f = fopen(path, "wb"))) return 0;
    for (r = 0; r < n; r++) {
        rec[0] = (unsigned char)l0[r];
        if (l1) rec[1] = (unsigned char)l1[r];
        for (j = 0; j < PX; j++) rec[L + j] = (unsigned char)((seed + 7 * r + 13 * j) & 255);
        fwrite(rec, 1, (size_t)(L + PX) - (r == n - 1 ? (size_t)cut : 0), f);
    }
    return fclose(f) == 0;
}

/* pictures first..first+n-1 of the .hpd against file seed s's records, and their labels */
static int same(heph_hpd *d, size_t first, int seed, int n, const int *l0, const int *l1) {
    float x[PX];
    int r, j;
    for (r = 0; r < n; r++) {
        if (heph_hpd_read_range(d, first + (size_t)r, 1, x) != HEPH_OK) { printf("read: %s\n", d->err); return 0; }
        for (j = 0; j < PX; j++)
            if ((int)(x[j] * 255.0f + 0.5f) != ((seed + 7 * r + 13 * j) & 255)) {
                printf("picture %zu value %d: %g\n", first + (size_t)r, j, (double)x[j]);
                return 0;
            }
        if (heph_hpd_label(d, first + (size_t)r, 0) != l0[r] || (l1 && heph_hpd_label(d, first + (size_t)r, 1) != l1[r])) {
            printf("picture %zu: wrong labels\n", first + (size_t)r);
            return 0;
        }
    }
    return 1;
}

static const int A[3] = {0, 9, 4}, Bl[2] = {1, 2}, C0[3] = {19, 0, 5}, C1[3] = {99, 0, 42};

int main(int argc, char **argv) {
    heph_hpd d;
    int ok;
    if (argc == 3 && !strcmp(argv[1], "write")) {
        static const int bad10[3] = {3, 10, 3}, f100[3] = {1, 100, 2};
        ok = put(argv[2], "c10_a.bin", 1, 3, A, NULL, 0) && put(argv[2], "c10_b.bin", 2, 2, Bl, NULL, 0) &&
             put(argv[2], "c100.bin", 3, 3, C0, C1, 0) && put(argv[2], "c10_label10.bin", 4, 3, bad10, NULL, 0) &&
             put(argv[2], "c10_cut.bin", 5, 3, A, NULL, 5) && put(argv[2], "c100_fine100.bin", 6, 3, C0, f100, 0) &&
             put(argv[2], "empty.bin", 7, 0, A, NULL, 0);
        return ok ? 0 : 1;
    }
    if (argc != 3 || (strcmp(argv[1], "check10") && strcmp(argv[1], "check100"))) {
        fprintf(stderr, "usage: cifar_files write DIR | check10 OUT.hpd | check100 OUT.hpd\n");
        return 2;
    }
    if (heph_hpd_open(&d, argv[2]) != HEPH_OK) { printf("open: %s\n", d.err); return 1; }
    if (d.info.c != 3 || d.info.h != 32 || d.info.w != 32 || d.info.value_max != 255.0f) { printf("shape\n"); return 1; }
    if (!strcmp(argv[1], "check10"))
        ok = d.info.count == 5 && d.info.n_factors == 1 && !strcmp(d.info.factors[0].name, "class") &&
             d.info.factors[0].n_values == 10 && same(&d, 0, 1, 3, A, NULL) && same(&d, 3, 2, 2, Bl, NULL);
    else
        ok = d.info.count == 3 && d.info.n_factors == 2 && !strcmp(d.info.factors[0].name, "coarse") &&
             d.info.factors[0].n_values == 20 && !strcmp(d.info.factors[1].name, "fine") && d.info.factors[1].n_values == 100 &&
             same(&d, 0, 3, 3, C0, C1);
    heph_hpd_close(&d);
    if (!ok) printf("%s: not the pictures and labels written\n", argv[2]);
    return ok ? 0 : 1;
}
