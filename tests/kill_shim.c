/* kill_shim.c - an LD_PRELOAD library for tests/test_hostile.sh (issue #20, kills during every
   kind of write): HEPH_KILL_AT=fsync:N, rename:N or write:N sends SIGKILL to the process at
   its Nth call of that function, before the call runs. fsync: a file is complete in its
   temporary, not yet renamed (or a folder is about to be synced); rename: the moment before a
   temporary replaces the old file; write: part of a file written (the CLI's whole-file writes
   use write(2); stdio's writes inside libc are not seen). Other calls pass through.
   Build: cc -shared -fPIC tests/kill_shim.c -o kill_shim.so -ldl                           */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* is this the Nth call of fn that HEPH_KILL_AT names? */
static int kill_now(const char *fn, int *calls) {
    const char *at = getenv("HEPH_KILL_AT");
    size_t n = strlen(fn);
    if (!at || strncmp(at, fn, n) != 0 || at[n] != ':') return 0;
    return ++*calls == atoi(at + n + 1);
}

/* the next definition of name after this library (the libc one) */
static void *next_fn(const char *name) { return dlsym(RTLD_NEXT, name); }

int fsync(int fd) {
    static int calls;
    int (*real)(int);
    void *p = next_fn("fsync");
    if (kill_now("fsync", &calls)) raise(SIGKILL);
    memcpy(&real, &p, sizeof p);
    return real(fd);
}

int rename(const char *from, const char *to) {
    static int calls;
    int (*real)(const char *, const char *);
    void *p = next_fn("rename");
    if (kill_now("rename", &calls)) raise(SIGKILL);
    memcpy(&real, &p, sizeof p);
    return real(from, to);
}

ssize_t write(int fd, const void *buf, size_t n) {
    static int calls;
    ssize_t (*real)(int, const void *, size_t);
    void *p = next_fn("write");
    if (fd > 2 && kill_now("write", &calls)) raise(SIGKILL);
    memcpy(&real, &p, sizeof p);
    return real(fd, buf, n);
}
