/* tests/hostile/stb_impl.c - stb_image and stb_image_write compiled in, for the static i686
   build of the CLI that tests/hostile/run.sh runs under qemu-i386 (Debian has no i686 libstb). */
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
