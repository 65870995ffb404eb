/* cli_io.h - what the hephaestus CLI and the converters and generators (idx2hpd, dsprites2hpd,
   shapes3d2hpd, gen_dsprites, gen_shapes3d) share about their outputs and their memory:
     - temporaries PATH.PID.N.tmp, unique per process and call (HEPH_TMP_PATH of the library);
     - the folder fsync after a rename (HEPH_SYNC_DIR);
     - cli_save_bytes: a whole file written atomically (temporary, checked writes, fsync,
       rename, folder fsync; any failure removes the temporary and keeps the old file);
     - the memory budget (--mem-budget MB, default 3/4 of physical memory) that the library's
       allocations (HEPH_MALLOC/HEPH_FREE) and the tools' large buffers are counted against.
   Include it before hephaestus.h, so the hooks can be defined from it. POSIX; no stb.       */
#ifndef HEPH_CLI_IO_H
#define HEPH_CLI_IO_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

/* not every tool calls every helper */
#if defined(__GNUC__) || defined(__clang__)
#define CLI_IO_FN static __attribute__((unused))
#else
#define CLI_IO_FN static
#endif

/* PATH.PID.N.tmp: unique to this process and call (HEPH_TMP_PATH of the library, too) */
CLI_IO_FN int cli_tmp_path(char *dst, size_t cap, const char *path) {
    static unsigned long counter;
    return snprintf(dst, cap, "%s.%ld.%lu.tmp", path, (long)getpid(), ++counter);
}

/* fsync the folder of path, so a rename in it survives a crash (HEPH_SYNC_DIR); 0 on success.
   File systems that cannot sync a folder (EINVAL) count as success. */
CLI_IO_FN int cli_sync_dir(const char *path) {
    char dir[1024];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    int fd, rc;
    if (n >= sizeof dir) { errno = ENAMETOOLONG; return -1; }
    if (slash && n == 0) n = 1; /* "/name": the root */
    if (n) memcpy(dir, path, n);
    else dir[n++] = '.';
    dir[n] = '\0';
    fd = open(dir, O_RDONLY);
    if (fd < 0) return -1;
    rc = fsync(fd);
    if (rc != 0 && (errno == EINVAL || errno == EROFS)) rc = 0;
    close(fd);
    return rc;
}

/* n bytes written to path atomically; 0 on success, else -1 with "PATH: why (strerror)" in err */
CLI_IO_FN int cli_save_bytes(const char *path, const void *data, size_t n, char *err, size_t cap) {
    char tmp[1100];
    const char *p = (const char *)data;
    size_t left = n;
    int fd, e = 0;
    if (cli_tmp_path(tmp, sizeof tmp, path) >= (int)sizeof tmp) { snprintf(err, cap, "%s: path too long", path); return -1; }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0) { snprintf(err, cap, "%s: cannot create %s (%s)", path, tmp, strerror(errno)); return -1; }
    while (left > 0 && !e) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) e = w < 0 ? errno : EIO;
        else { p += w; left -= (size_t)w; }
    }
    if (!e && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        remove(tmp);
        snprintf(err, cap, "%s: cannot write (%s)", path, strerror(e));
        return -1;
    }
    if (cli_sync_dir(path) != 0) {
        snprintf(err, cap, "%s: written, but its folder cannot be synced (%s)", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* a growable block of bytes; cli_bytes_sink has the signature of stb_image_write's write
   function, so a PNG is encoded into memory and then saved with cli_save_bytes (stbi_write_png
   does not check its fwrite) */
typedef struct {
    unsigned char *p;
    size_t n, cap;
    int failed;
} cli_bytes;

CLI_IO_FN void cli_bytes_sink(void *ctx, void *data, int size) {
    cli_bytes *b = (cli_bytes *)ctx;
    if (size <= 0 || b->failed) return;
    if ((size_t)size > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 65536;
        unsigned char *q;
        while (cap - b->n < (size_t)size && cap <= (size_t)-1 / 2) cap *= 2;
        q = cap - b->n >= (size_t)size ? (unsigned char *)realloc(b->p, cap) : NULL;
        if (!q) { b->failed = 1; return; }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, (size_t)size);
    b->n += (size_t)size;
}

/* ---- memory budget ------------------------------------------------------------------------ */

/* the live total of counted blocks may not pass cli_mem_budget bytes, so a hostile header (a
   checkpoint whose max_batch asks for 17 GB, an .npz claiming GBs of labels) is refused before
   the memory is taken; cli_mem_refused keeps the largest refused block for the message */
static uint64_t cli_mem_budget = UINT64_MAX, cli_mem_live, cli_mem_refused;

CLI_IO_FN void cli_budget_default(void) {
#ifdef _SC_PHYS_PAGES
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages > 0 && size > 0) cli_mem_budget = (uint64_t)pages * (uint64_t)size / 4 * 3;
#endif
}

/* --mem-budget MB: an integer 1..2^30; 0 when set, -1 when the value is not one */
CLI_IO_FN int cli_budget_parse(const char *v) {
    char *e;
    long x;
    errno = 0;
    x = strtol(v, &e, 10);
    if (*v < '0' || *v > '9' || *e != '\0' || errno || x < 1 || x > (1L << 30)) return -1;
    cli_mem_budget = (uint64_t)x << 20;
    return 0;
}

/* n bytes counted against the budget; zeroed by calloc when zero (fresh pages from the OS are
   not touched until used) */
static void *cli_budget_alloc(size_t n, int zero) {
    uint64_t *p;
    if ((uint64_t)n > cli_mem_budget - cli_mem_live || n > (size_t)-1 - 16) {
        if ((uint64_t)n > cli_mem_refused) cli_mem_refused = (uint64_t)n;
        return NULL;
    }
    p = (uint64_t *)(zero ? calloc(1, n + 16) : malloc(n + 16));
    if (!p) return NULL;
    p[0] = (uint64_t)n;
    cli_mem_live += n;
    return p + 2;
}

CLI_IO_FN void *cli_budget_malloc(size_t n) { return cli_budget_alloc(n, 0); }

CLI_IO_FN void cli_budget_free(void *q) {
    uint64_t *p = (uint64_t *)q;
    if (!q) return;
    cli_mem_live -= p[-2];
    free(p - 2);
}

/* would a block of n bytes fit the budget beside the live ones? (for blocks another
   allocator makes: the inflater's); 0 yes, -1 no (and the refusal is kept for the note) */
CLI_IO_FN int cli_budget_check(uint64_t n) {
    if (n <= cli_mem_budget - cli_mem_live) return 0;
    if (n > cli_mem_refused) cli_mem_refused = n;
    return -1;
}

/* n x size bytes, zeroed, counted against the budget; NULL when refused or out of memory */
CLI_IO_FN void *cli_budget_calloc(size_t n, size_t size) {
    void *p;
    if (size && n > ((size_t)-1 - 16) / size) {
        cli_mem_refused = UINT64_MAX;
        return NULL;
    }
    p = cli_budget_alloc(n * size > 0 ? n * size : 1, 1);
    return p;
}

/* " (a block of X MB would pass the memory budget of Y MB; see --mem-budget)" after a refusal,
   else "": appended to out-of-memory messages */
CLI_IO_FN const char *cli_budget_note(void) {
    static char note[160];
    note[0] = '\0';
    if (cli_mem_refused == UINT64_MAX)
        snprintf(note, sizeof note, " (a block larger than this platform can address)");
    else if (cli_mem_refused)
        snprintf(note, sizeof note, " (a block of %.1f MB would pass the memory budget of %.1f MB; see --mem-budget)",
                 (double)cli_mem_refused / 1048576.0, (double)cli_mem_budget / 1048576.0);
    return note;
}

#endif
