/* betatcvae_shapes3d - the seed's beta-TCVAE on shapes3d: conv 3->32->64->128->256 (4x4, stride 2), 4096-256-12; batch 128, 500 batches per epoch, 50 epochs (3.2 M pictures), lr 5e-4, beta 6, alpha = gamma = 1, anneal 5000 steps.

   Objective (Chen et al. 2018): recon + alpha MI + beta TC + g(t) gamma DWKL, with log q(z)
   and log prod_j q(z_j) estimated from the minibatch (MSS by default, the paper's weights;
   --estimator mws for minibatch weighted sampling) and the dimension-wise KL weight g(t)
   rising linearly over the anneal steps. Every term is printed per epoch. At the end:
   SSIM of reconstructions of fresh pictures (--ssim-n), mig_discrete on --eval-n fresh
   random pictures, mig_continuous, the correlation heatmap, reconstructions and traversal.

   build/betatcvae_shapes3d --data TRAIN.hpd --eval-data FRESH.hpd --out out/betatcvae_shapes3d */
#define _POSIX_C_SOURCE 200809L
#include <unistd.h>
#define HEPH_FSYNC(fp) fsync(fileno(fp))
#define HEPH_FSEEK(fp, off, whence) fseeko((fp), (off_t)(off), (whence))
#define HEPH_FTELL(fp) ((uint64_t)ftello(fp))
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#include "common.h"
#include "train_common.h"

int main(int argc, char **argv) {
    ex_train_opts o;
    int a;
    ex_train_defaults(&o, "betatcvae_shapes3d", "cnn-shapes3d");
    o.batch = 128;
    o.epochs = 50;
    o.batches = 500;
    o.ssim_n = 1000;
    o.cfg.lr = 5e-4f;
    o.cfg.obj.kind = HEPH_OBJ_TCVAE;
    o.cfg.obj.alpha = 1.0f;
    o.cfg.obj.beta = 6.0f;
    o.cfg.obj.gamma = 1.0f;
    o.cfg.obj.ramp_steps = 5000;
    o.cfg.obj.estimator = HEPH_TC_MSS;
    o.out = "out/betatcvae_shapes3d";
    for (a = 1; a < argc; a++) {
        const char *f = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            printf("usage: betatcvae_shapes3d --data TRAIN.hpd [--eval-data FRESH.hpd] [options]\n"
                   "beta-TCVAE on shapes3d (cnn-shapes3d, batch 128, 500 batches per epoch, 50 epochs).\n"
                   "  --beta B            total-correlation weight (default 6)\n"
                   "  --alpha A           index-code MI weight (default 1)\n"
                   "  --gamma G           dimension-wise KL weight (default 1)\n"
                   "  --anneal S          steps over which the DWKL weight ramps 0 -> gamma (default 5000)\n"
                   "  --estimator E       mss (default) or mws\n"
                   "  --dataset-size N    N in the estimators (default: the training pool)\n"
                   "  --ssim-n N          SSIM over N reconstructions of eval pictures (default 1000)\n");
            ex_train_usage_common(stdout);
            return 0;
        }
        if (v && !strcmp(f, "--beta")) { o.cfg.obj.beta = ex_arg_float(o.name, f, v); a++; continue; }
        if (v && !strcmp(f, "--alpha")) { o.cfg.obj.alpha = ex_arg_float(o.name, f, v); a++; continue; }
        if (v && !strcmp(f, "--gamma")) { o.cfg.obj.gamma = ex_arg_float(o.name, f, v); a++; continue; }
        if (v && !strcmp(f, "--anneal")) { o.cfg.obj.ramp_steps = (uint64_t)ex_arg_long(o.name, f, v); a++; continue; }
        if (v && !strcmp(f, "--dataset-size")) { o.cfg.obj.dataset_size = (uint64_t)ex_arg_long(o.name, f, v); a++; continue; }
        if (v && !strcmp(f, "--ssim-n")) { o.ssim_n = ex_arg_long(o.name, f, v); a++; continue; }
        if (v && !strcmp(f, "--estimator")) {
            if (!strcmp(v, "mss")) o.cfg.obj.estimator = HEPH_TC_MSS;
            else if (!strcmp(v, "mws")) o.cfg.obj.estimator = HEPH_TC_MWS;
            else ex_die("%s: --estimator must be mss or mws", o.name);
            a++;
            continue;
        }
        if (!ex_train_flag(&o, argc, argv, &a)) ex_die("%s: unknown option %s (see --help)", o.name, f);
    }
    return ex_train_run(&o);
}
