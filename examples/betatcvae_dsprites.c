/* betatcvae_dsprites - the seed's beta-TCVAE on dsprites: conv 1->32x4 (64->4), 512-256-10; batch 256, 500 batches per epoch, 120 epochs, lr 5e-4, beta 4.5, alpha = gamma = 1, anneal 5000 steps.

   Objective (Chen et al. 2018): recon + alpha MI + beta TC + g(t) gamma DWKL, with log q(z)
   and log prod_j q(z_j) estimated from the minibatch (MSS by default, the paper's weights;
   --estimator mws for minibatch weighted sampling) and the dimension-wise KL weight g(t)
   rising linearly over the anneal steps. Every term is printed per epoch. At the end:
   SSIM of reconstructions of fresh pictures (--ssim-n), mig_discrete on --eval-n fresh
   random pictures, mig_continuous, the correlation heatmap, reconstructions and traversal.

   build/betatcvae_dsprites --data TRAIN.hpd --eval-data FRESH.hpd --out out/betatcvae_dsprites */
#define HEPHAESTUS_IMPLEMENTATION
#include "../tools/heph_posix.h" /* hephaestus.h with fsync, 64-bit seeks, safe temporaries */
#define CLI_PROG "" /* the examples name themselves in each message */
#include "../tools/cli_common.h" /* messages, folders, PNG files, threads, the clock */
#include "train_common.h"

int main(int argc, char **argv) {
    ex_train_opts o;
    ex_train_defaults(&o, "betatcvae_dsprites", "cnn-dsprites-tc");
    o.batch = 256;
    o.epochs = 120;
    o.ssim_n = 0;
    o.cfg.obj.beta = 4.5f;
    o.out = "out/betatcvae_dsprites";
    return ex_tcvae_main(&o, argc, argv); /* objective, flags and the run: train_common.h */
}
