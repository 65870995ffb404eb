/* betavae_dsprites - the seed's beta-VAE on dSprites: MLP 4096-1024-256-64-10, Adam 1e-3,
   Bernoulli reconstruction summed over pixels, loss = recon + beta KL, beta in {1, 2.5, 4}.

   Larger beta presses the posterior towards the factorised prior, trading reconstruction for
   disentanglement (Higgins et al. 2017). Prints recon and KL per epoch; writes loss curves,
   reconstructions, a traversal (rows ordered by KL), the correlation heatmap, mig_discrete and
   mig_continuous.

   make data-dsprites && make build/betavae_dsprites
   build/betavae_dsprites --data data/dsprites/dsprites.hpd --beta 4 --epochs 10 --out out/beta4 */
#define HEPHAESTUS_IMPLEMENTATION
#include "../tools/heph_posix.h" /* hephaestus.h with fsync, 64-bit seeks, safe temporaries */
#define CLI_PROG "" /* the examples name themselves in each message */
#include "../tools/cli_common.h" /* messages, folders, PNG files, threads, the clock */
#include "train_common.h"

int main(int argc, char **argv) {
    ex_train_opts o;
    int a;
    ex_train_defaults(&o, "betavae_dsprites", "mlp-dsprites");
    o.batch = 128;
    o.cfg.lr = 1e-3f;
    o.cfg.obj.kind = HEPH_OBJ_BETA;
    o.cfg.obj.beta = 4.0f;
    o.out = "out/betavae_dsprites";
    for (a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            printf("usage: betavae_dsprites --data DSPRITES.hpd [--beta B] [options]\n"
                   "beta-VAE (recon + beta KL) on dSprites; default MLP 4096-1024-256-64-10, batch 128.\n"
                   "  --beta B            KL weight (default 4; the seed: 1, 2.5, 4)\n");
            ex_train_usage_common(stdout);
            return 0;
        }
        if (!strcmp(argv[a], "--beta") && a + 1 < argc) { o.cfg.obj.beta = cli_arg_float(o.name, "--beta", argv[++a]); continue; }
        if (!ex_train_flag(&o, argc, argv, &a)) cli_fail("%s: unknown option %s (see --help)", o.name, argv[a]);
    }
    if (!(o.cfg.obj.beta >= 0.0f)) cli_fail("%s: --beta must be >= 0", o.name);
    return ex_train_run(&o);
}
