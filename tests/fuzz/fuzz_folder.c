/* fuzz_folder.c - libFuzzer target: a folder of pictures through the CLI's loader, as train
   --data DIR and the analysis subcommands' --batch DIR read it (tools/cli_data.h: pics_load,
   list_pictures with its name, case and regular-file rules and sorting, load_picture for each
   file with stb_image compiled in, the fit to the model's shape, the stacking into one batch).
   Input: a mode byte (the model's channels 0 = keep the files', 1 or 3, and the size; bit 7
   adds a FIFO and a folder named *.png, which must be skipped), then up to 6 files separated
   by "|F|", each named by its first byte from a list of picture and other names (a later file
   of the same name replaces the earlier one). Errors end in cli_fail -> exit, a jump back.
   Semantic checks on success (issue #20), each an abort: as many pictures as regular files
   with picture names were written, in sorted name order, every value in [0, 1], the shape
   the model asked for (or one the files could give).                                        */
#include "fuzz_common.h"
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#define exit(c) fuzz_exit(c)
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "../../tools/cli_common.h"
#include "../../tools/cli_data.h"

#define N_NAMES 10
static const char *const names[N_NAMES] = {"a.png", "B.PNG", "c.jpg", "d.jpeg", "e.JPG", "f.txt",
                                           "g.png.bak", ".h.png", "i", "j.Jpeg"};
static const int is_pic[N_NAMES] = {1, 1, 1, 1, 1, 0, 0, 0, 0, 1};

/* write the parts of data (separated by "|F|") into dir; returns the picture files written */
static int write_parts(const char *dir, const uint8_t *data, size_t size) {
    int written[N_NAMES] = {0}, k, n = 0, parts = 0;
    size_t at = 0;
    while (at < size && parts < 6) {
        size_t end = at, i;
        char file[700];
        for (i = at; i + 3 <= size; i++)
            if (data[i] == '|' && data[i + 1] == 'F' && data[i + 2] == '|') break;
        end = i + 3 <= size ? i : size;
        if (end > at) {
            k = data[at] % N_NAMES;
            snprintf(file, sizeof file, "%s/%s", strrchr(dir, '/') + 1, names[k]);
            if (fuzz_file(file, data + at + 1, end - at - 1)) written[k] = 1;
        }
        parts++;
        at = end + 3;
    }
    for (k = 0; k < N_NAMES; k++) n += written[k] && is_pic[k];
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int chans[3] = {0, 1, 3};
    static const int hs[6] = {8, 1, 64, 5, 28, 3}, ws[6] = {8, 1, 64, 300, 28, 2};
    static cli_pics p; /* static: a jump back keeps it intact for the clean-up */
    char dir[600], extra[700];
    int c, h, w, want;
    size_t i, np;
    if (size < 1) return 0;
    c = chans[data[0] % 3];
    h = c ? hs[(data[0] / 3) % 6] : 0;
    w = c ? ws[(data[0] / 3) % 6] : 0;
    snprintf(dir, sizeof dir, "%s", fuzz_path("pics")); /* fuzz_path's buffers are reused */
    fuzz_rm_tree(dir, 1);
    mkdir(dir, 0700);
    want = write_parts(dir, data + 1, size - 1);
    if (data[0] & 128) { /* skipped with a warning, never opened */
        snprintf(extra, sizeof extra, "%s/fifo.png", dir);
        if (mkfifo(extra, 0600) != 0) return 0;
        snprintf(extra, sizeof extra, "%s/sub.png", dir);
        mkdir(extra, 0700);
    }
    memset(&p, 0, sizeof p);
    fuzz_jmp_armed = 1;
    if (setjmp(fuzz_jmp) == 0) {
        pics_load(&p, dir, c, h, w);
        if (p.n != (size_t)want || want == 0 || !p.files || !p.x) abort();
        if (p.c < 1 || p.h < 1 || p.w < 1 || (c && (p.c != c || p.h != h || p.w != w))) abort();
        if (!c && (p.c != 1 && p.c != 3)) abort();
        for (i = 0; i + 1 < p.n; i++)
            if (strcmp(p.files[i], p.files[i + 1]) >= 0) abort(); /* sorted, no name twice */
        np = (size_t)p.c * (size_t)p.h * (size_t)p.w;
        for (i = 0; i < p.n * np; i++)
            if (!(p.x[i] >= 0.0f && p.x[i] <= 1.0f + 1e-6f)) abort();
    }
    fuzz_jmp_armed = 0;
    pics_free(&p);
    return 0;
}
