/* heph_posix.h - hephaestus.h with the POSIX hooks, as every tool, example and test helper of
   this repository includes it (one copy instead of one per program):
     - _POSIX_C_SOURCE 200809L and _FILE_OFFSET_BITS 64 (fsync, fileno, fseeko, files > 2 GB);
     - HEPH_FSYNC: fsync(fileno(fp)) before a checkpoint or dataset is renamed into place;
     - HEPH_FSEEK / HEPH_FTELL: fseeko / ftello, 64-bit offsets on 32-bit systems too;
     - HEPH_TMP_PATH / HEPH_SYNC_DIR: temporaries PATH.PID.N.tmp unique per process and call,
       and the folder synced after the rename (tools/cli_io.h);
     - HEPH_MALLOC / HEPH_CALLOC / HEPH_FREE: the library's allocations counted against the
       memory budget
       (tools/cli_io.h; no limit until a program sets one) unless the includer brings its own
       (the fuzz targets do).
   Include it first, instead of hephaestus.h; define HEPHAESTUS_IMPLEMENTATION (and
   HEPHAESTUS_STATIC) before it as for hephaestus.h.                                         */
#ifndef HEPH_POSIX_H
#define HEPH_POSIX_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#ifndef _FILE_OFFSET_BITS
#define _FILE_OFFSET_BITS 64
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>
#include "cli_io.h"

#define HEPH_FSYNC(fp) fsync(fileno(fp))
#define HEPH_FSEEK(fp, off, whence) fseeko((fp), (off_t)(off), (whence))
#define HEPH_FTELL(fp) ((uint64_t)ftello(fp))
#define HEPH_TMP_PATH(dst, cap, path) cli_tmp_path((dst), (cap), (path))
#define HEPH_SYNC_DIR(path) cli_sync_dir(path)
#ifndef HEPH_MALLOC
#define HEPH_MALLOC(sz) cli_budget_malloc(sz)
#define HEPH_FREE(p) cli_budget_free(p)
#define HEPH_CALLOC(sz) cli_budget_calloc(1, sz)
#endif
#include "hephaestus.h"

#endif
