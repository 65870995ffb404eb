/* fuzz_image.c - libFuzzer target: picture files through the CLI's folder loader
   (tools/cli_data.h: list_pictures, load_picture with stb_image, the resizer). stb_image is
   compiled in here, so it is instrumented too. Input: 1 byte of mode (the model's channels
   0 = keep the file's, 1 or 3; and the size the pictures are fitted to), then the file, saved
   as the only picture of a folder. Errors end in cli_fail -> exit, turned into a jump back.  */
#include "fuzz_common.h"
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#define exit(c) fuzz_exit(c)
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "../../tools/cli_common.h"
#include "../../tools/cli_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int chans[3] = {0, 1, 3};
    static const int hs[6] = {8, 1, 64, 5, 28, 3}, ws[6] = {8, 1, 64, 300, 28, 2};
    static const char *const names[3] = {"a.png", "b.JPG", "c.jpeg"};
    static cli_pics p; /* static: a jump back keeps it intact for the clean-up */
    const char *dir;
    char file[700];
    int c, h, w;
    if (size < 1) return 0;
    c = chans[data[0] % 3];
    h = c ? hs[(data[0] / 3) % 6] : 0;
    w = c ? ws[(data[0] / 3) % 6] : 0;
    dir = fuzz_path("pics");
    mkdir(dir, 0700);
    snprintf(file, sizeof file, "pics/%s", names[(data[0] >> 6) % 3]);
    fuzz_rm_tree(dir, 1); /* one file only */
    mkdir(dir, 0700);
    if (!fuzz_file(file, data + 1, size - 1)) return 0;
    memset(&p, 0, sizeof p);
    fuzz_jmp_armed = 1;
    if (setjmp(fuzz_jmp) == 0) {
        pics_load(&p, dir, c, h, w);
        if (p.n != 1 || p.c < 1 || p.h < 1 || p.w < 1 || (c && (p.c != c || p.h != h || p.w != w))) abort();
        {
            size_t i, np = (size_t)p.c * (size_t)p.h * (size_t)p.w;
            for (i = 0; i < np; i++)
                if (!(p.x[i] >= 0.0f && p.x[i] <= 1.0f + 1e-6f)) abort();
        }
    }
    fuzz_jmp_armed = 0;
    pics_free(&p);
    return 0;
}
