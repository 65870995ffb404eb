// compile_check.cpp - the header from C++ (g++ -std=c++11 and -std=c++17, with and without
// -fopenmp, -Wall -Wextra -Wpedantic -Werror), implementation included, a few calls, checked.
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#include <cstring>
#include <vector>

int main() {
    heph_vae_config cfg;
    heph_vae m;
    heph_rng r;
    heph_vae_config_default(&cfg);
    cfg.in_h = cfg.in_w = 4;
    cfg.z_dim = 3;
    cfg.max_batch = 4;
    std::strcpy(cfg.enc_spec, "dense8,tanh");
    std::strcpy(cfg.dec_spec, "dense8,lrelu0.1,dense16");
    if (heph_vae_init(&m, &cfg, 5) != HEPH_OK) return 1;
    std::vector<float> x(4 * 16), mu(4 * 3), img(4 * 16);
    heph_rng_seed(&r, 9);
    for (float &v : x) v = heph_rng_uniform(&r);
    heph_losses L;
    if (heph_vae_train_step(&m, x.data(), 4, &L) != HEPH_OK) return 2;
    heph_vae_encode(&m, x.data(), 4, mu.data(), nullptr);
    heph_vae_decode(&m, mu.data(), 4, img.data());
    std::vector<unsigned char> grid(static_cast<size_t>(heph_grid_width(2, 4, 1)) *
                                    static_cast<size_t>(heph_grid_height(4, 2, 4, 1)) * 3);
    heph_image_grid(grid.data(), img.data(), 4, 2, 1, 4, 4, 1);
    heph_vae_free(&m);
    return L.loss > 0.0 ? 0 : 3;
}
