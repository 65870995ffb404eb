/* betatcvae_shapes3d - the seed's beta-TCVAE on shapes3d: conv 3->32->64->128->256 (4x4, stride 2), 4096-256-12; batch 128, 500 batches per epoch, 50 epochs (3.2 M pictures), lr 5e-4, beta 6, alpha = gamma = 1, anneal 5000 steps.

   Objective (Chen et al. 2018): recon + alpha MI + beta TC + g(t) gamma DWKL, with log q(z)
   and log prod_j q(z_j) estimated from the minibatch (MSS by default, the paper's weights;
   --estimator mws for minibatch weighted sampling) and the dimension-wise KL weight g(t)
   rising linearly over the anneal steps. Every term is printed per epoch. At the end:
   SSIM of reconstructions of fresh pictures (--ssim-n), mig_discrete on --eval-n fresh
   random pictures, mig_continuous, the correlation heatmap, reconstructions and traversal.

   build/betatcvae_shapes3d --data TRAIN.hpd --eval-data FRESH.hpd --out out/betatcvae_shapes3d */
#define HEPHAESTUS_IMPLEMENTATION
#include "../tools/heph_posix.h" /* hephaestus.h with fsync, 64-bit seeks, safe temporaries */
#define CLI_PROG "" /* the examples name themselves in each message */
#include "../tools/cli_common.h" /* messages, folders, PNG files, threads, the clock */
#include "train_common.h"

int main(int argc, char **argv) {
    ex_train_opts o;
    ex_train_defaults(&o, "betatcvae_shapes3d", "cnn-shapes3d");
    o.batch = 128;
    o.epochs = 50;
    o.ssim_n = 1000;
    o.cfg.obj.beta = 6.0f;
    o.out = "out/betatcvae_shapes3d";
    return ex_tcvae_main(&o, argc, argv); /* objective, flags and the run: train_common.h */
}
