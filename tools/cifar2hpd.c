/* cifar2hpd - convert the CIFAR-10 or CIFAR-100 binary files to one Hephaestus .hpd dataset.

   usage: cifar2hpd [--cifar100] [--source NAME] FILE.bin [FILE.bin ...] OUT.hpd

   CIFAR-10 (cifar-10-binary.tar.gz: data_batch_1.bin .. data_batch_5.bin, test_batch.bin):
   records of 1 + 3072 bytes, the label 0..9, then the 32x32 red, green and blue planes, each
   row-major (CHW). CIFAR-100 (cifar-100-binary.tar.gz: train.bin, test.bin): records of
   2 + 3072 bytes, the coarse label 0..19, the fine label 0..99, then the planes. No header, no
   magic: a file must be a whole number of records and every label in range, which is all
   that can be checked. Several files are joined in the order given. The pictures are copied
   as they are (u8 CHW 3x32x32, value_max 255); the labels become the factor "class" (10
   values), or "coarse" (20) and "fine" (100). Records are read one at a time: memory does not
   grow with the files. The output is written as every tool writes (a temporary unique to the
   process, fsync, rename): a failed conversion leaves nothing behind.                     */
#define HEPHAESTUS_IMPLEMENTATION
#include "heph_posix.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { CIFAR_PX = 3 * 32 * 32, CIFAR_MAX_FILES = 64 };

static void usage(FILE *f) {
    fprintf(f,
            "usage: cifar2hpd [--cifar100] [--source NAME] FILE.bin [FILE.bin ...] OUT.hpd\n"
            "Converts CIFAR-10 binary files (records of 1 + 3072 bytes: label 0..9, then the 32x32\n"
            "red, green and blue planes) or, with --cifar100, CIFAR-100 ones (2 + 3072 bytes: coarse\n"
            "label 0..19, fine label 0..99, then the planes) into one .hpd (u8, 3x32x32, value_max\n"
            "255; factor \"class\", or \"coarse\" and \"fine\"). The files are joined in the order given,\n"
            "e.g. data_batch_1.bin .. data_batch_5.bin for the CIFAR-10 training set.\n"
            "  --cifar100      CIFAR-100 records (default: CIFAR-10)\n"
            "  --source NAME   name stored in the header (default cifar-10 or cifar-100)\n"
            "  --mem-budget MB the library's allocations may not pass MB (default: 3/4 of memory)\n"
            "  -h, --help      this help\n"
            "      --version   the version of hephaestus.h\n"
            "Exit status: 0 ok, 1 a file could not be read or is not CIFAR data, 2 usage error.\n");
}

/* the records of path: a regular file, a whole and non-zero number of rec-byte records */
static int cifar_count(const char *path, size_t rec, int c100, uint64_t *n) {
    struct stat st;
    if (stat(path, &st) != 0) { fprintf(stderr, "cifar2hpd: %s: cannot open\n", path); return 0; }
    if (!S_ISREG(st.st_mode)) { fprintf(stderr, "cifar2hpd: %s: not a regular file\n", path); return 0; }
    if (st.st_size <= 0) { fprintf(stderr, "cifar2hpd: %s: empty, no CIFAR record in it\n", path); return 0; }
    if ((uint64_t)st.st_size % rec != 0) { /* the other layout's record size: a hint, when it fits */
        int other = (uint64_t)st.st_size % (c100 ? rec - 1 : rec + 1) == 0;
        fprintf(stderr, "cifar2hpd: %s: %lld bytes is not a whole number of %zu-byte CIFAR-%s records (%llu bytes over: "
                        "cut short?%s)\n", path, (long long)st.st_size, rec, c100 ? "100" : "10",
                (unsigned long long)((uint64_t)st.st_size % rec),
                !other ? "" : c100 ? " it is whole in CIFAR-10 records: drop --cifar100" : " it is whole in CIFAR-100 records: add --cifar100");
        return 0;
    }
    *n = (uint64_t)st.st_size / rec;
    return 1;
}

/* the labels of record i of path: lab[0] (CIFAR-10 class, or coarse), lab[1] (fine) */
static int cifar_labels(const char *path, uint64_t i, const unsigned char *r, int c100, int32_t *lab) {
    lab[0] = r[0];
    lab[1] = c100 ? r[1] : 0;
    if (!c100 && r[0] > 9) {
        fprintf(stderr, "cifar2hpd: %s: record %llu has label %d, CIFAR-10 labels are 0..9 (a CIFAR-100 file needs --cifar100)\n",
                path, (unsigned long long)i, r[0]);
        return 0;
    }
    if (c100 && (r[0] > 19 || r[1] > 99)) {
        fprintf(stderr, "cifar2hpd: %s: record %llu has coarse label %d and fine label %d (CIFAR-100: 0..19 and 0..99)\n",
                path, (unsigned long long)i, r[0], r[1]);
        return 0;
    }
    return 1;
}

/* every record of every input into out; 1 on success, 0 (message given, no output) otherwise */
static int cifar_convert(const char *const *in, int nin, int c100, const char *source, const char *out) {
    size_t L = c100 ? 2 : 1, rec = L + CIFAR_PX;
    uint64_t total = 0, counts[CIFAR_MAX_FILES], i;
    unsigned char buf[2 + CIFAR_PX];
    heph_hpd_info info;
    heph_hpd_writer w;
    int f;
    if (nin > CIFAR_MAX_FILES) { fprintf(stderr, "cifar2hpd: more than %d input files\n", CIFAR_MAX_FILES); return 0; }
    for (f = 0; f < nin; f++) {
        if (!cifar_count(in[f], rec, c100, &counts[f])) return 0;
        total += counts[f];
    }
    memset(&info, 0, sizeof info);
    info.count = total;
    info.c = 3; info.h = 32; info.w = 32;
    info.dtype = HEPH_PX_U8;
    info.value_max = 255.0f;
    info.flags = HEPH_HPD_LABELS;
    snprintf(info.source, sizeof info.source, "%s", source ? source : c100 ? "cifar-100" : "cifar-10");
    info.n_factors = c100 ? 2 : 1;
    strcpy(info.factors[0].name, c100 ? "coarse" : "class");
    info.factors[0].n_values = c100 ? 20 : 10;
    if (c100) { strcpy(info.factors[1].name, "fine"); info.factors[1].n_values = 100; }
    if (heph_hpd_create(&w, out, &info) != HEPH_OK) { fprintf(stderr, "cifar2hpd: %s\n", w.err); return 0; }
    for (f = 0; f < nin; f++) {
        FILE *fp = fopen(in[f], "rb");
        int ok = fp != NULL;
        if (!ok) fprintf(stderr, "cifar2hpd: %s: cannot open\n", in[f]);
        for (i = 0; ok && i < counts[f]; i++) {
            int32_t lab[2];
            if (fread(buf, 1, rec, fp) != rec) {
                fprintf(stderr, "cifar2hpd: %s: cannot read record %llu (the file changed while it was read?)\n", in[f], (unsigned long long)i);
                ok = 0;
            } else if (!cifar_labels(in[f], i, buf, c100, lab)) {
                ok = 0;
            } else if (heph_hpd_put_u8(&w, buf + L, lab) != HEPH_OK) {
                fprintf(stderr, "cifar2hpd: %s\n", w.err);
                ok = 0;
            }
        }
        if (fp) fclose(fp);
        if (!ok) { heph_hpd_abort(&w); return 0; }
    }
    if (heph_hpd_finish(&w) != HEPH_OK) { fprintf(stderr, "cifar2hpd: %s\n", w.err); return 0; }
    printf("cifar2hpd: %s: %llu pictures 3x32x32 from %d file%s, labels as %s\n", out, (unsigned long long)total, nin,
           nin == 1 ? "" : "s", c100 ? "factors \"coarse\" and \"fine\"" : "factor \"class\"");
    return 1;
}

int main(int argc, char **argv) {
    const char *source = NULL, *files[CIFAR_MAX_FILES + 1];
    int nf = 0, i, c100 = 0;
    cli_budget_default();
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        if (!strcmp(argv[i], "--version")) { printf("cifar2hpd %s (hephaestus.h)\n", HEPH_VERSION_STRING); return 0; }
        if (!strcmp(argv[i], "--cifar100")) c100 = 1;
        else if (!strcmp(argv[i], "--source")) {
            if (++i >= argc) { fprintf(stderr, "cifar2hpd: --source needs a value\n"); return 2; }
            source = argv[i];
        } else if (!strcmp(argv[i], "--mem-budget")) {
            if (++i >= argc || cli_budget_parse(argv[i]) != 0) {
                fprintf(stderr, "cifar2hpd: --mem-budget takes an integer in 1..1073741824 (MB)\n");
                return 2;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "cifar2hpd: unknown option %s (see --help)\n", argv[i]);
            return 2;
        } else if (nf <= CIFAR_MAX_FILES) {
            files[nf++] = argv[i];
        } else {
            fprintf(stderr, "cifar2hpd: more than %d input files (see --help)\n", CIFAR_MAX_FILES);
            return 2;
        }
    }
    if (nf < 2) { usage(stderr); return 2; }
    return cifar_convert(files, nf - 1, c100, source, files[nf - 1]) ? 0 : 1;
}
