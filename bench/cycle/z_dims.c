/* bench/cycle/z_dims.c - per dimension of a cycle-consistent VAE's z: the mean KL of 512
   pictures of a .hpd (evenly spaced) and the mean |mu(dec([s | r])) - r| of the reverse
   cycle for r ~ N(0, 1) (seed 5), in evaluation mode. Shows which z dimensions the model uses
   and that the reverse term's floor comes from the unused ones.
   build: cc -std=c99 -O2 -I. bench/cycle/z_dims.c -o build/z_dims -lm
   usage: build/z_dims MODEL.hpc DATA.hpd                                                     */
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
int main(int argc, char **argv) {
    heph_cyc m; heph_hpd d; size_t n = 512, i, j;
    if (argc != 3) { fprintf(stderr, "usage: z_dims MODEL.hpc DATA.hpd\n"); return 2; }
    if (heph_cyc_load(&m, argv[1]) != HEPH_OK) { fprintf(stderr, "%s\n", m.err); return 1; }
    if (heph_hpd_open(&d, argv[2]) != HEPH_OK) { fprintf(stderr, "%s\n", d.err); return 1; }
    size_t np = (size_t)m.enc.in_n, S = m.cfg.s_dim, Z = m.cfg.z_dim;
    float *x = malloc(n * np * 4), *s = malloc(n * S * 4), *mu = malloc(n * Z * 4), *lv = malloc(n * Z * 4);
    float *r = malloc(n * Z * 4), *p = malloc(n * np * 4), *mu2 = malloc(n * Z * 4);
    size_t *idx = malloc(n * sizeof(size_t));
    for (i = 0; i < n; i++) idx[i] = i * (d.info.count / n);
    for (i = 0; i < n; i++) heph_hpd_read_range(&d, idx[i], 1, x + i * np);
    heph_cyc_encode(&m, x, n, s, mu, lv);
    heph_rng g; heph_rng_seed(&g, 5);
    for (i = 0; i < n * Z; i++) r[i] = heph_rng_normal(&g);
    heph_cyc_decode(&m, s, r, n, p);
    heph_cyc_encode(&m, p, n, NULL, mu2, NULL);
    for (j = 0; j < Z; j++) {
        double kl = 0, rev = 0;
        for (i = 0; i < n; i++) {
            double a = mu[i * Z + j], b = lv[i * Z + j];
            kl += -0.5 * (1 + b - a * a - exp(b));
            rev += fabs(mu2[i * Z + j] - r[i * Z + j]);
        }
        printf("z%02zu  KL %.3f nats  |mu'-r| %.3f\n", j, kl / n, rev / n);
    }
    return 0;
}
