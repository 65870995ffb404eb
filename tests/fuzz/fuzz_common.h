/* fuzz_common.h - shared by the libFuzzer targets tests/fuzz/fuzz_*.c (issue #7).
   Include it first. Each target defines LLVMFuzzerTestOneInput and is built two ways:
     fuzzing: clang -fsanitize=fuzzer,address,undefined            (make fuzz)
     replay:  cc -DFUZZ_REPLAY -fsanitize=address,undefined        (tests/test_fuzz_replay.sh)
   The replay build gets the main() below: it runs every file named on the command line (or
   found in a folder named there) through the target once, and prints "ran N inputs".
   Also here: temporary files for the parsers that read paths, an allocation cap for the
   library (HEPH_MALLOC fails above FUZZ_MALLOC_CAP, as on a small machine, so the
   out-of-memory paths run too), fsync switched off (speed), and exit() turned into a jump
   back into the target (the CLI helpers exit on errors).                                   */
#ifndef HEPH_FUZZ_COMMON_H
#define HEPH_FUZZ_COMMON_H

#include <dirent.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef FUZZ_MALLOC_CAP
#define FUZZ_MALLOC_CAP ((size_t)64 << 20)
#endif
static void *fuzz_malloc(size_t n) { return n > FUZZ_MALLOC_CAP ? NULL : malloc(n); }
#define HEPH_MALLOC(sz) fuzz_malloc(sz)
#define HEPH_FREE(p) free(p)

/* the tools define HEPH_FSYNC(fp) as fsync(fileno(fp)): a no-op here */
#define fsync(fd) ((void)(fd), 0)

/* a private folder for this process's temporary files, removed at exit */
static char fuzz_dir[256];
static void fuzz_rm_tree(const char *dir, int depth) {
    DIR *d;
    struct dirent *e;
    char p[1024];
    if (depth > 2 || !(d = opendir(dir))) return;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (remove(p) != 0) fuzz_rm_tree(p, depth + 1);
    }
    closedir(d);
    rmdir(dir);
}
static void fuzz_cleanup(void) {
    if (fuzz_dir[0]) fuzz_rm_tree(fuzz_dir, 0);
}
/* path of temporary file NAME (the folder is made on first use) */
static const char *fuzz_path(const char *name) {
    static char p[4][600];
    static int k;
    if (!fuzz_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/heph_fuzz.%ld", t && *t ? t : "/tmp", (long)getpid());
        mkdir(fuzz_dir, 0700);
        atexit(fuzz_cleanup);
    }
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", fuzz_dir, name);
    return p[k];
}
/* write n bytes to temporary file NAME; returns its path (NULL when it cannot be written) */
static const char *fuzz_file(const char *name, const uint8_t *d, size_t n) {
    const char *path = fuzz_path(name);
    FILE *f = fopen(path, "wb");
    int ok = f != NULL;
    if (f && n && fwrite(d, 1, n, f) != n) ok = 0;
    if (f && fclose(f) != 0) ok = 0;
    return ok ? path : NULL;
}

/* exit() inside the code under test jumps back into the target: the target says
   #define exit(c) fuzz_exit(c) before including that code, and calls it as
   fuzz_jmp_armed = 1; if (setjmp(fuzz_jmp) == 0) CALL; fuzz_jmp_armed = 0;            */
static jmp_buf fuzz_jmp;
static int fuzz_jmp_armed, fuzz_exit_code;
static void fuzz_exit(int code) __attribute__((noreturn));
static void fuzz_exit(int code) {
    fuzz_exit_code = code;
    if (fuzz_jmp_armed) longjmp(fuzz_jmp, 1);
    fprintf(stderr, "fuzz: exit(%d) outside a guarded call\n", code);
    abort();
}

#ifdef FUZZ_REPLAY
static int fuzz_run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    uint8_t *b;
    long n;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "replay: %s: cannot read\n", path);
        if (f) fclose(f);
        return 0;
    }
    b = (uint8_t *)malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "replay: %s: cannot read\n", path);
        free(b);
        fclose(f);
        return 0;
    }
    fclose(f);
    fprintf(stderr, "replay: %s\n", path);
    LLVMFuzzerTestOneInput(b, (size_t)n);
    free(b);
    return 1;
}
int main(int argc, char **argv) {
    long ran = 0, bad = 0;
    int i;
    for (i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            char p[4096];
            while (d && (e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.') continue;
                snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
                if (fuzz_run_file(p)) ran++; else bad++;
            }
            if (d) closedir(d);
        } else if (fuzz_run_file(argv[i])) ran++;
        else bad++;
    }
    printf("ran %ld inputs\n", ran);
    return bad ? 1 : 0;
}
#endif

#endif
