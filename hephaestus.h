/* hephaestus.h - v0.2.0 - variational autoencoders in plain C - MIT license (see end of file)

   Train VAEs from readable pure-C loops, save and load them, and use their latent space to
   find, explain and repair the outliers in a batch of pictures.
   No dependency beyond the C standard library and libm; OpenMP when built with -fopenmp.

   DO THIS in exactly one C or C++ file, before the #include:
       #define HEPHAESTUS_IMPLEMENTATION
       #include "hephaestus.h"
   Every other file just includes it. Link with -lm.

   THE FIVE LINES (train a VAE on a batch source, then save it):

       heph_vae_config cfg; heph_vae vae; heph_losses L;
       heph_vae_config_preset(&cfg, "mlp-mnist");           // 784-400-20, Bernoulli, Adam 1e-3
       if (heph_vae_init(&vae, &cfg, 42) != HEPH_OK) die(vae.err);
       for (step = 0; step < n_steps; step++)
           heph_vae_train_step(&vae, next_batch(), 128, &L);  // x: (128, 1, 28, 28) floats in [0,1]
       heph_vae_save(&vae, "model.hpm", 0); heph_vae_free(&vae);

   AND SCORE A BATCH (which pictures do not belong, and why):

       heph_vae_encode(&vae, x, n, mu, NULL);                 // posterior means (n, D)
       heph_maha_fit(&fit, mu, n, D, HEPH_COV_MCD, 0.9, 1);    // robust mean and covariance
       heph_maha_score(&fit, mu, n, d2);                      // D^2 of every picture
       heph_maha_explain(&fit, mu + i*D, zscore, contrib);    // per-dimension reasons
       heph_counterfactual(mu + i*D, zscore, normal_mean, D, 2, cf);  // decode cf: the repair

   Reading data: heph_hpd_open / heph_hpd_read (.hpd files, see "Dataset files" below).
   Looking inside: heph_vae_encode (posterior mean and log-variance), heph_vae_decode,
   heph_vae_sample, heph_vae_evaluate (negative ELBO in nats per image, recon and KL apart),
   heph_vae_traverse, heph_vae_kl_per_dim. Other outlier scores: heph_marginal_fit/score (one
   latent at a time), heph_knn_score/search, heph_gmm_fit/score (a mixture, for several modes),
   heph_vae_recon_score, heph_vae_iwae_score(_from) (ELBO and the importance-weighted likelihood
   bound), heph_complexity_score (likelihood minus the picture's code length: foreign data),
   heph_tail_fit/logp and heph_combine_sidak (scores calibrated on normal pictures, combined).
   Metrics: heph_mig_discrete, heph_mig_continuous,
   heph_correlation_matrix, heph_ssim, heph_auroc. Pictures: heph_image_grid (pixels
   only; write them with e.g. stb_image_write; line plots and heatmaps: tools/plot.h).

   NETWORKS AS BLOCKS (a classifier, a second encoder, a conditional decoder):
       heph_net_init(&net, "conv32k3p1,relu,flatten,dense10", 1, 28, 28, 64, err, sizeof err);
       heph_net_bind(&net, block, block + net.n_params);   // your one buffer: params, grads
       logits = heph_net_forward(&net, x, B);               // then heph_softmax_xent, and
       heph_net_backward(&net, dlogits, B, NULL);           // heph_adam_step over the block
       heph_accuracy(logits, labels, B, 10);                // share right; a label's own
       heph_embed_forward(e, table, labels, B, 10, E);      // trainable vector (conditional models)

   A CONDITIONAL VAE (told each picture's label; with another label it keeps the style):
       heph_vae_config_preset(&cfg, "cvae-mnist");           // 10 labels, latent 10, lambda 100
       heph_vae_init(&vae, &cfg, 42); heph_vae_set_classifier(&vae, &frozen_classifier);
       heph_cvae_train_step(&vae, x, labels, B, &L);          // 10 % of the labels made wrong
       heph_cvae_relabel(&vae, x, other_labels, n, pictures); // "this picture with label k"

   A CYCLE-CONSISTENT VAE (s: what a pair of pictures shares, z: the rest):
       heph_cyc_config_preset(&ccfg, "cyc-mnist"); heph_cyc_init(&cyc, &ccfg, 42);
       heph_cyc_train_step(&cyc, x1, x2, B, &CL);            // pairs with the same digit
       heph_cyc_transfer(&cyc, xs, xz, n, pictures);          // s of xs[i] with z of xz[i]

   THE FILE, IN ORDER (each part starts with a banner you can search for):
     API            the declarations, with what every function computes
     IMPLEMENTATION configuration macros, small helpers, "the fence" (the fast kernels of
                    part D that the other parts may call, declared in one place)
     PART A         THE LESSON, read from here: random numbers; activations; the reference
                    layers (dense, conv2d, transposed conv2d as loops over indices, each
                    formula on one line); the public layer functions (each picks the
                    reference loops or part D in one line); the VAE pieces (reparameterisation,
                    Bernoulli / Gaussian / softmax losses, accuracy, label embedding, KL,
                    Adam); the beta-TCVAE terms;
                    architecture specs; networks (a plain loop over layers); the VAE (config,
                    one training step in five steps, encode, decode, sample, evaluate; the
                    conditional VAE: labels added to the head and the decoder, the label loss;
                    the cycle-consistent VAE: two cycles through twin networks)
     PART B         ANALYSIS AND METRICS: Mahalanobis fits (FastMCD, Ledoit-Wolf), marginal,
                    kNN, GMM, reconstruction / ELBO / IWAE / complexity scores, calibrated
                    tails and their combination, explanations, counterfactuals, picture
                    grids, MIG, correlation, SSIM, AUROC
     PART C         FILES: little-endian fields, datasets (.hpd), checkpoints (.hpm),
                    networks (.hpn); left out by HEPH_NO_STDIO
     PART D         FAST KERNELS: packed GEMM, (H, W, C) and implicit-GEMM convolutions,
                    vectorised exp/log for the losses, the network plan (layouts, ReLUs fused
                    into the layer before), Mahalanobis tiles, kNN over transposed codes. The same numbers as part A up to rounding
                    (tests/test_net.c, test_conv.c compare them), and the same bits for any
                    thread count.
   A training step from the top: heph_vae_train_step -> heph_vae_loss_grad ->
   heph__net_forward (for each layer: heph__layer_forward) -> heph__layer_forward_ref ->
   heph__dense_forward_ref / heph__conv2d_forward_ref ...; backward the same way; then
   heph_adam_step. Built with -DHEPH_REFERENCE_KERNELS the library runs on part A alone.

   OPTIONS (define before including the implementation):
       HEPHAESTUS_STATIC     make every function static (private copy per translation unit)
       HEPH_DEF              linkage of the API functions (default: extern)
       HEPH_MALLOC(sz) / HEPH_FREE(p)   allocator: define both or neither
       HEPH_CALLOC(sz)       zeroed blocks freed by HEPH_FREE (default: calloc with the default
                             allocator; with yours, HEPH_MALLOC + memset unless you define it)
       HEPH_ASSERT(x)        programmer-error check (default: assert)
       HEPH_NO_OPENMP        ignore -fopenmp
       HEPH_CONV_SLICES      convolutions cut a batch into this many fixed slices of images
                             that threads take whole (default 4: up to 4 threads share a
                             conv layer; results depend on it, not on the thread count)
       HEPH_REFERENCE_KERNELS  run everything on part A's plain loops: layers, networks, VAEs,
                             analysis (slow; for reading and for checking part D against it)
       HEPH_NO_STDIO         leave out every function that opens a file (.hpd, .hpm, .hpn):
                             no fopen/fread/fwrite/rename/remove is referenced; <stdio.h> is
                             still included for snprintf (error messages)
       HEPH_FSYNC(fp)        called on a checkpoint/dataset file before it is renamed into
                             place; 0 on success (default: nothing, 0; POSIX tools define it as
                             fsync(fileno(fp)) so a crash cannot leave a half-written file)
       HEPH_TMP_PATH(dst, cap, path)  the temporary name (in path's folder) a checkpoint or
                             dataset is written to before the rename; snprintf's result
                             (default "<path>.tmp"; the tools add the process id and a
                             counter, so two writers of one path never share a temporary)
       HEPH_SYNC_DIR(path)   called after that rename; 0 on success (default: nothing, 0;
                             POSIX tools fsync the folder so that the rename survives a crash)
       HEPH_FSEEK(fp,off,wh) / HEPH_FTELL(fp)  64-bit seek and tell (default: fseek/ftell with
                             long; offsets beyond LONG_MAX are refused with a message). POSIX
                             tools define them with fseeko/ftello.
   TUNING (part D; the defaults are what make bench measured best; results depend on
   HEPH_CONV_SLICES and HEPH__KC, never on the thread count):
       HEPH__MR (6)          rows of a GEMM register tile (its NR is fixed at 32 columns)
       HEPH__KC (256)        k is summed in blocks of KC so that a packed block stays in cache
       HEPH__DENSE_T (1)     a dense layer with many outputs and a small batch runs as W x^T
       HEPH__ROWS_FLOATS (1 << 20)  patch rows per chunk of images in a convolution
       HEPH__IMPLICIT (1)    conv forward reads patches in place (0: through patch rows)
       HEPH__SIZE_LIMIT      the largest block the library allocates (the tests set 2^32 - 1
                             to check the 32-bit limits on a 64-bit machine)
   BUILD FLAGS: -O3 -march=native -ffp-contract=fast -fno-math-errno -fopenmp is fastest
   (without -fno-math-errno gcc cannot vectorise sqrtf/expf loops). On a machine shared with
   other work, run with OMP_WAIT_POLICY=passive: spinning OpenMP threads then waste whole
   time slices at every barrier.

   CONVENTIONS
     - Everything is float32. Pictures given and returned are NCHW (inside a network the
       fast kernels of part D keep them (H, W, C)); dense weights are [out][in].
     - Functions that can fail return an int status: HEPH_OK (0) or a negative HEPH_E_* code;
       heph_result_string(code) names it, and the object's err[] field says what went wrong
       (which file, which field, what was expected). The library never prints or exits.
     - Ownership: the caller owns every struct; heph_X_init/open allocates, heph_X_free/close
       releases exactly that. Pointers returned from inside an object are views: do not free.
     - The public layer backward functions ADD (+=) into gradient buffers; a network's
       backward (heph_vae_loss_grad) writes them (every parameter has one use).
     - A network is a list of layers over ONE contiguous parameter buffer, with a gradient
       buffer and Adam m/v buffers of the same length, so optimiser, checkpoint and gradient
       checks are each one flat loop.
     - No global mutable state: two threads may use two models. One model is not thread-safe.
     - Determinism: same seed, same bits. Work is split among OpenMP threads by outputs, or
       (convolutions) by fixed slices of the batch whose gradient sums are added in a fixed
       order, so 1, 2 or N threads give bit-identical results. Noise is drawn serially.

   ARCHITECTURE SPECS are comma-separated layer tokens, applied to the input shape:
       denseN        fully connected, N outputs (flattens an image input)
       convNkKsSpP   conv2d, N output channels, kernel K, stride S, padding P (s1, p0 default)
       convtNkKsSpP  transposed conv2d (ConvTranspose2d), same fields
       flatten       (C,H,W) -> (C*H*W)       reshapeCxHxW   (n) -> (C,H,W)
       maxpool2      max-pooling 2x2, stride 2: (C,H,W) -> (C,H/2,W/2)
       bn            BatchNorm over channels (or the features of a flat tensor)
       relu  lrelu  lreluA (slope A, default 0.01)  sigmoid  tanh
     e.g. "conv32k4s2p1,relu,conv32k4s2p1,relu,flatten,dense256,relu".
     The VAE appends the encoder's last dense layer (2*z_dim: mu then log-variance) itself;
     the decoder spec maps z_dim to the logits of the picture (its last layer must output
     exactly C*H*W values). Presets: "mlp-mnist", "mlp-dsprites", "cnn-dsprites" (the seed's
     capacity CNN), "cnn-dsprites-tc" (its beta-TCVAE CNN), "cnn-shapes3d".

   REVISION HISTORY (details in CHANGELOG.md)
     0.2.0  the header as a lesson: parts A-D, reference loops for every layer, networks and
            VAEs (HEPH_REFERENCE_KERNELS runs on them alone); heph_net_* public blocks with
            .hpn files; heph_softmax_xent, heph_argmax; HEPH_NO_STDIO. API changes:
            heph_tc_terms takes a heph_tc_batch; heph_order_desc removed (heph_rank_desc);
            heph_rank_desc and heph_threshold_mad return a status; heph_plot_lines and
            heph_plot_heatmap moved to tools/plot.h; heph_net fields changed (the plan is
            private, layer offsets count from the network's own slice)
     0.1.0  core: RNG, dense + activations, conv2d + transposed conv2d, VAE / beta-VAE /
            controlled capacity / beta-TCVAE (MWS, MSS), Adam, .hpd datasets, .hpm
            checkpoints, traversals, Mahalanobis analysis, MIG / SSIM / AUROC, grids, plots
*/
#ifndef HEPHAESTUS_H
#define HEPHAESTUS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HEPH_VERSION_MAJOR 0
#define HEPH_VERSION_MINOR 2
#define HEPH_VERSION_PATCH 0
#define HEPH_VERSION_STRING "0.2.0"

#ifndef HEPH_DEF
#ifdef HEPHAESTUS_STATIC
#if defined(__GNUC__) /* gcc, clang: an unused static API function is not a warning */
#define HEPH_DEF static __attribute__((unused))
#else
#define HEPH_DEF static
#endif
#else
#define HEPH_DEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* status codes                                                                                */

enum {
    HEPH_OK = 0,
    HEPH_E_ARG = -1,      /* invalid argument (programmer or user input)                    */
    HEPH_E_NOMEM = -2,    /* allocation failed                                              */
    HEPH_E_IO = -3,       /* open/read/write/rename failed                                  */
    HEPH_E_FORMAT = -4,   /* file is malformed: wrong magic, truncated, inconsistent sizes  */
    HEPH_E_VERSION = -5,  /* file version this library does not read                        */
    HEPH_E_CHECKSUM = -6, /* file content does not match its checksum                       */
    HEPH_E_SPEC = -7,     /* architecture spec string is invalid                            */
    HEPH_E_SIZE = -8,     /* sizes overflow or exceed the limits                            */
    HEPH_E_NAN = -9,      /* NaN or Inf in a loss or gradient                               */
    HEPH_E_MISMATCH = -10 /* data and model disagree (shape, channels)                      */
};
#define HEPH_ERRLEN 256
HEPH_DEF const char *heph_result_string(int code);

/* ------------------------------------------------------------------------------------------ */
/* random numbers: PCG32 (O'Neill 2014) with a Box-Muller normal sampler                       */

typedef struct {
    uint64_t state, inc; /* PCG32 state and stream (inc is odd)                   */
    int has_spare;       /* Box-Muller makes normals in pairs; the second waits   */
    float spare;
} heph_rng;

HEPH_DEF void heph_rng_seed(heph_rng *r, uint64_t seed);
HEPH_DEF uint32_t heph_rng_u32(heph_rng *r);
HEPH_DEF uint32_t heph_rng_below(heph_rng *r, uint32_t n); /* uniform in [0, n), unbiased */
/* uniform in [0, n) for any 64-bit n, unbiased; for n <= 2^32 the very draw of heph_rng_below */
HEPH_DEF uint64_t heph_rng_below64(heph_rng *r, uint64_t n);
HEPH_DEF float heph_rng_uniform(heph_rng *r);             /* uniform in [0, 1)           */
HEPH_DEF float heph_rng_normal(heph_rng *r);              /* N(0, 1)                     */
HEPH_DEF void heph_rng_shuffle(heph_rng *r, size_t *idx, size_t n); /* Fisher-Yates      */

/* ------------------------------------------------------------------------------------------ */
/* layers: forward/backward pairs over raw buffers (outputs first, then inputs, then params)   */

/* y = x W^T + b.  out (B,O), inp (B,I), W (O,I), b (O).  ws: heph_dense_ws_floats(I,O) floats */
HEPH_DEF size_t heph_dense_ws_floats(int B, int I, int O);
HEPH_DEF void heph_dense_forward(float *out, const float *inp, const float *W, const float *b,
                                 int B, int I, int O, float *ws);
/* dinp = dout W (may be NULL to skip); dW += dout^T inp; db += sum_b dout.                 */
HEPH_DEF void heph_dense_backward(float *dinp, float *dW, float *db, const float *dout,
                                  const float *inp, const float *W, int B, int I, int O,
                                  float *ws);

/* elementwise activations; backward uses the forward OUTPUT y and writes dinp = dout*f'(.) */
HEPH_DEF void heph_relu_forward(float *out, const float *inp, size_t n);
HEPH_DEF void heph_relu_backward(float *dinp, const float *dout, const float *out, size_t n);
HEPH_DEF void heph_lrelu_forward(float *out, const float *inp, size_t n, float slope);
HEPH_DEF void heph_lrelu_backward(float *dinp, const float *dout, const float *out, size_t n,
                                  float slope);
HEPH_DEF void heph_sigmoid_forward(float *out, const float *inp, size_t n);
HEPH_DEF void heph_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n);
HEPH_DEF void heph_tanh_forward(float *out, const float *inp, size_t n);
HEPH_DEF void heph_tanh_backward(float *dinp, const float *dout, const float *out, size_t n);

/* max-pooling 2x2, stride 2, over (B, C, H, W) pictures (PyTorch's max_pool2d(x, 2): an odd
   last row or column is dropped): out (B, C, H/2, W/2), out[b,c,i,j] = the largest of
   in[b,c,2i..2i+1,2j..2j+1], read row by row; the first one wins a tie and a NaN wins (the
   last NaN of the window, as PyTorch). idx (may be NULL) gets its flat position y W + x in the input plane (PyTorch's
   indices). Backward WRITES dinp (B, C, H, W): each output's gradient goes to the input the
   forward took (found again from in), 0 elsewhere.                                        */
HEPH_DEF void heph_maxpool2_forward(float *out, int *idx, const float *in, int B, int C, int H, int W);
HEPH_DEF void heph_maxpool2_backward(float *dinp, const float *dout, const float *in, int B, int C, int H, int W);

/* BatchNorm over channels (PyTorch's BatchNorm2d; the features of a flat tensor are channels
   of one pixel, which is BatchNorm1d), over (B, C, HW) values, for each channel c over its
   n = B HW values, eps HEPH_BN_EPS, momentum HEPH_BN_MOMENTUM:
     train: m_c = mean x, v_c = mean (x - m_c)^2 (biased), xh = (x - m_c) / sqrt(v_c + eps),
            y = gamma_c xh + beta_c; rmean_c = (1 - mom) rmean_c + mom m_c,
            rvar_c = (1 - mom) rvar_c + mom v_c n / (n - 1) (unbiased; v_c when n = 1)
     eval:  y = gamma_c (x - rmean_c) / sqrt(rvar_c + eps) + beta_c
   Backward WRITES dgamma = sum dy xh, dbeta = sum dy and dinp:
     train: dx = gamma_c / sqrt(v_c + eps) (dy - mean dy - xh mean(dy xh))  (m_c, v_c again from in)
     eval:  dx = gamma_c / sqrt(rvar_c + eps) dy
   Sums in double, each channel in a fixed order: the same bits for any thread count.       */
#define HEPH_BN_EPS 1e-5
#define HEPH_BN_MOMENTUM 0.1
HEPH_DEF void heph_batchnorm_forward(float *out, float *rmean, float *rvar, const float *in, const float *gamma,
                                     const float *beta, int B, int C, int HW, int train);
HEPH_DEF void heph_batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *in,
                                      const float *gamma, const float *rmean, const float *rvar, int B, int C, int HW,
                                      int train);

/* Convolution geometry, one image: input (C, H, W), output (Co, Ho, Wo), square kernel k,
   stride s, zero padding p.
     conv2d:  Ho = (H + 2p - k)/s + 1;  weights [Co][C][k][k], bias [Co]   (PyTorch Conv2d)
     convt2d: Ho = (H - 1)s - 2p + k;   weights [C][Co][k][k], bias [Co]   (ConvTranspose2d)
   Both take and give (C, H, W) pictures and run as GEMMs over patch rows (one per output
   position for conv2d, per input position for convt2d) of chunks of whole images; inside a
   network the same kernels work on (H, W, C) pictures and skip the conversions.            */
typedef struct {
    int C, H, W;    /* input shape  */
    int Co, Ho, Wo; /* output shape */
    int k, s, p;    /* kernel, stride, padding */
} heph_conv_geom;

/* fill Ho, Wo from the rest; HEPH_E_ARG if the geometry is impossible */
HEPH_DEF int heph_conv2d_geom(heph_conv_geom *g, int C, int H, int W, int Co, int k, int s, int p);
HEPH_DEF int heph_convt2d_geom(heph_conv_geom *g, int C, int H, int W, int Co, int k, int s, int p);
HEPH_DEF size_t heph_conv2d_ws_floats(const heph_conv_geom *g, int B);
HEPH_DEF size_t heph_convt2d_ws_floats(const heph_conv_geom *g, int B);
/* out (B, Co, Ho, Wo) = conv(inp (B, C, H, W), W) + b */
HEPH_DEF void heph_conv2d_forward(float *out, const float *inp, const float *W, const float *b,
                                  const heph_conv_geom *g, int B, float *ws);
/* dinp (may be NULL) = conv^T(dout);  dW += dout (x) patches;  db += sum dout */
HEPH_DEF void heph_conv2d_backward(float *dinp, float *dW, float *db, const float *dout,
                                   const float *inp, const float *W, const heph_conv_geom *g,
                                   int B, float *ws);
HEPH_DEF void heph_convt2d_forward(float *out, const float *inp, const float *W, const float *b,
                                   const heph_conv_geom *g, int B, float *ws);
HEPH_DEF void heph_convt2d_backward(float *dinp, float *dW, float *db, const float *dout,
                                    const float *inp, const float *W, const heph_conv_geom *g,
                                    int B, float *ws);

/* ------------------------------------------------------------------------------------------ */
/* VAE pieces: reparameterisation, reconstruction losses, KL                                  */

#define HEPH_LOGVAR_MIN (-30.0f) /* log sigma^2 is clamped to this range (sigma in [3e-7, 2.2e4]) */
#define HEPH_LOGVAR_MAX (20.0f)

/* z = mu + exp(logvar/2) * eps.  All (n).  eps is given (drawn by the caller).            */
HEPH_DEF void heph_reparam_forward(float *z, const float *mu, const float *logvar,
                                   const float *eps, size_t n);
/* dmu += dz;  dlogvar += dz * eps * exp(logvar/2) / 2                                    */
HEPH_DEF void heph_reparam_backward(float *dmu, float *dlogvar, const float *dz,
                                    const float *logvar, const float *eps, size_t n);

/* Bernoulli: sum over pixels of BCE(sigmoid(logit), x) computed stably from logits:
   l = max(a,0) - a*x + log(1 + exp(-|a|)).  Returns the sum over all n; dlogits = scale*(sigmoid(a)-x)
   (dlogits may be NULL).                                                                   */
HEPH_DEF double heph_bce_logits(float *dlogits, const float *logits, const float *x, size_t n,
                                float scale);
/* Gaussian (squared error): sum (sigmoid(a) - x)^2 with the mean through a sigmoid;
   dlogits = scale * 2 (y - x) y (1 - y).                                                   */
HEPH_DEF double heph_sqerr_logits(float *dlogits, const float *logits, const float *x,
                                  size_t n, float scale);
/* KL(N(mu, e^lv) || N(0,1)) = -1/2 sum (1 + lv - mu^2 - e^lv) over n values (one image's D);
   adds scale * d/dmu, scale * d/dlv into dmu, dlv (may be NULL).                           */
HEPH_DEF double heph_kl_normal(float *dmu, float *dlogvar, const float *mu, const float *logvar,
                               size_t n, float scale);

/* Adam with bias correction, one flat loop over n parameters; t is the step count (>= 1).
   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  w -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps) */
HEPH_DEF void heph_adam_step(float *w, const float *g, float *m, float *v, size_t n, float lr,
                             float beta1, float beta2, float eps, uint64_t t);

/* ------------------------------------------------------------------------------------------ */
/* networks                                                                                   */

enum { HEPH_DENSE = 1, HEPH_RELU, HEPH_LRELU, HEPH_SIGMOID, HEPH_TANH, HEPH_CONV, HEPH_CONVT,
       HEPH_FLATTEN, HEPH_RESHAPE, HEPH_MAXPOOL, HEPH_BN };
#define HEPH_MAX_LAYERS 64
#define HEPH_SPEC_MAX 512

typedef struct {
    int kind;                 /* HEPH_DENSE, HEPH_RELU, ...                                  */
    int in_c, in_h, in_w;     /* input shape (one image); flat tensors have h = w = 1        */
    int out_c, out_h, out_w;  /* output shape                                                */
    float slope;              /* leaky ReLU slope                                            */
    int k, s, p;              /* conv / transposed conv: kernel, stride, padding             */
    size_t w_off, b_off;      /* offsets of weights and bias in the parameter buffer         */
    size_t n_params;          /* number of parameters (weights + bias)                       */
} heph_layer;

/* Parse a spec string for an input of shape (c,h,w). Fills layers[0..*n_layers) with shapes
   and parameter counts (offsets start at 0). On error returns HEPH_E_SPEC and writes which
   token was wrong into err.                                                                */
HEPH_DEF int heph_spec_parse(const char *spec, int c, int h, int w, heph_layer *layers,
                             int max_layers, int *n_layers, char *err, size_t errlen);

/* A network: the layers of a spec over a slice of a parameter buffer that the caller owns
   (heph_net_bind: a model keeps one contiguous block for all its networks, one Adam loop and
   one file). The activations of the last forward are kept for the backward pass.         */
struct heph__net_plan; /* private: the fast kernels' layouts and fused ReLUs (NULL: reference) */
typedef struct {
    int n_layers;
    heph_layer layers[HEPH_MAX_LAYERS]; /* parameter offsets count from the net's slice    */
    int in_c, in_h, in_w, in_n; /* input shape and its size                               */
    int out_n;                  /* output size per image                                  */
    int max_batch;
    size_t n_params;            /* the length of the net's slice                           */
    float *params, *grads;      /* views: the caller's parameters and gradients            */
    const float *input;         /* the last forward's input (kept for backward)            */
    float **act;                /* act[l]: output of layer l, (max_batch, layer out size)   */
    float *grad_a, *grad_b;     /* ping-pong buffers for backward, (max_batch, max size)    */
    size_t max_n;               /* the largest layer output per image (input included)      */
    size_t scratch_n;           /* floats of scratch behind grad_a, grad_b and the plan     */
    float *mem;                 /* one allocation behind act (owned)                        */
    float *scratch_own;         /* the scratch, when the net owns it (heph_net_init)        */
    float *params_own;          /* parameters and gradients, when owned (heph_net_load)     */
    struct heph__net_plan *plan;
    int eval;                   /* BatchNorm: 0 batch statistics (training), 1 running ones */
    int frozen;                 /* 1: backward computes the input gradient only and leaves the
                                   parameter gradients unspecified (part D skips their work; the
                                   reference loops compute them anyway): a network that is not
                                   trained, like the conditional VAE's classifier            */
} heph_net;

/* Parse spec for (c, h, w) inputs and allocate activations and scratch for max_batch
   pictures; the parameters are not allocated: bind a slice of net->n_params floats (and one
   for the gradients) with heph_net_bind before the first forward. HEPH_E_SPEC names the bad
   token in err.                                                                            */
HEPH_DEF int heph_net_init(heph_net *net, const char *spec, int c, int h, int w, int max_batch,
                           char *err, size_t errlen);
HEPH_DEF void heph_net_bind(heph_net *net, float *params, float *grads);
/* BatchNorm layers ("bn") use the batch's statistics and update the running ones (train, the
   default of heph_net_init), or use the running ones (eval). A VAE's networks train inside
   heph_vae_loss_grad (and so heph_vae_train_step) and evaluate everywhere else.            */
HEPH_DEF void heph_net_set_train(heph_net *net, int train);
/* PyTorch's default initialisation: every W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))     */
HEPH_DEF void heph_net_init_params(heph_net *net, heph_rng *rng);
/* out = net(x) for B <= max_batch inputs (B, in_n): a view (B, out_n) valid until the next call */
HEPH_DEF const float *heph_net_forward(heph_net *net, const float *x, int B);
/* after a forward of the same B inputs: from dout (B, out_n), WRITES the parameter gradients
   (every parameter has one use) and the gradient wrt the input into dinp (B, in_n; NULL: skip) */
HEPH_DEF void heph_net_backward(heph_net *net, const float *dout, int B, float *dinp);
HEPH_DEF void heph_net_free(heph_net *net);
/* A network file (.hpn): its spec, input shape and parameters (see "network files" below).
   Written atomically like a checkpoint. heph_net_load initialises net (allocating, and binding
   a parameter and gradient block that heph_net_free releases).                              */
#ifndef HEPH_NO_STDIO
HEPH_DEF int heph_net_save(const heph_net *net, const char *path, char *err, size_t errlen);
HEPH_DEF int heph_net_load(heph_net *net, const char *path, int max_batch, char *err, size_t errlen);
#endif

/* softmax cross-entropy over K classes for B rows of logits: returns sum_b (log sum_k e^a_bk
   - a_b,y_b); dlogits (may be NULL) = scale (softmax(a) - onehot(y)). Labels in [0, K).       */
HEPH_DEF double heph_softmax_xent(float *dlogits, const float *logits, const int *labels, int B,
                                  int K, float scale);
/* the index of the largest of v[0..n) (the first on ties): a classifier's prediction      */
HEPH_DEF int heph_argmax(const float *v, int n);
/* the share of the B rows of logits (B, K) whose argmax is the row's label: accuracy      */
HEPH_DEF double heph_accuracy(const float *logits, const int *labels, int B, int K);
/* label embedding (the conditional VAE's way in for a label): a trainable table T (K, E),
   one row per class. Forward: out[b] = T[y_b] (B, E). Backward WRITES dT (K, E):
   dT[k] = sum over the rows b with y_b = k of dout[b], in the order of b (0 for a class the
   batch does not have). Labels in [0, K) (HEPH_ASSERT).                                    */
HEPH_DEF void heph_embed_forward(float *out, const float *T, const int *labels, int B, int K, int E);
HEPH_DEF void heph_embed_backward(float *dT, const float *dout, const int *labels, int B, int K, int E);

/* ------------------------------------------------------------------------------------------ */
/* the VAE model                                                                              */

enum { HEPH_RECON_BERNOULLI = 0, HEPH_RECON_GAUSSIAN = 1 };
enum {
    HEPH_OBJ_BETA = 0,     /* recon + beta * KL (beta = 1: the plain VAE)                           */
    HEPH_OBJ_CAPACITY = 1, /* recon + gamma * |KL - C|, C ramps 0 -> c_max over ramp_steps;        */
                           /* gamma ramps gamma -> gamma_end over the same span (equal: constant) */
    HEPH_OBJ_TCVAE = 2     /* beta-TCVAE: recon + alpha MI + beta TC + g(t) gamma DWKL, where the   */
                           /* dimension-wise KL weight g(t) = min(1, t / ramp_steps) ("anneal")    */
};
enum { HEPH_TC_MWS = 0, HEPH_TC_MSS = 1 }; /* minibatch weighted / stratified sampling */

typedef struct {
    int kind;           /* HEPH_OBJ_*                                                         */
    int recon;          /* HEPH_RECON_*                                                       */
    float beta;         /* KL weight (BETA) or total-correlation weight (TCVAE)               */
    float gamma, gamma_end, c_max; /* capacity objective; gamma = DWKL weight for TCVAE        */
    uint64_t ramp_steps;           /* steps over which C (and gamma) ramp; TCVAE anneal steps  */
    float alpha;                   /* TCVAE: index-code mutual information weight             */
    int estimator;                 /* TCVAE: HEPH_TC_MWS or HEPH_TC_MSS                       */
    uint64_t dataset_size;         /* TCVAE: N, the number of training pictures               */
} heph_objective;

typedef struct {
    int in_c, in_h, in_w;          /* picture shape                                           */
    int z_dim;                     /* latent dimensions                                       */
    char enc_spec[HEPH_SPEC_MAX];  /* encoder body; the (2*z_dim) head is appended            */
    char dec_spec[HEPH_SPEC_MAX];  /* decoder: z_dim -> C*H*W logits                          */
    int max_batch;                 /* largest batch passed to any call (default 128)          */
    heph_objective obj;
    float lr, beta1, beta2, eps;   /* Adam (defaults 1e-3, 0.9, 0.999, 1e-8)                  */
    /* the conditional VAE (n_classes = K > 0; see "the conditional VAE" below)               */
    int n_classes;                 /* K labels; 0: a plain VAE (the default)                  */
    int label_dim;                 /* E: width of the decoder's label embedding (0: K)        */
    float label_weight;            /* lambda: weight of the frozen classifier's NLL (default 0) */
    float wrong_labels;            /* share of training pictures given a wrong label (0.1)    */
} heph_vae_config;
/* Ranges every configuration (given or loaded from a checkpoint) must keep; the CLI's flags
   take the same: lr in (0, HEPH_LR_MAX], beta1 and beta2 in [0, 1), eps in (0, 1], the
   objective weights beta, gamma, gamma_end, c_max, alpha in [0, HEPH_WEIGHT_MAX]; a step
   counter at most HEPH_STEP_MAX (doubles hold it exactly; a checkpoint beyond is refused).  */
#define HEPH_LR_MAX 10.0f
#define HEPH_WEIGHT_MAX 1e6f
#define HEPH_STEP_MAX ((uint64_t)1 << 53)

typedef struct {
    double loss;       /* the objective that was minimised, per image                        */
    double recon;      /* reconstruction term, nats per image (Bernoulli) or squared error     */
    double kl;         /* KL(q(z|x) || p(z)), nats per image                                   */
    double elbo;       /* -(recon + kl): evidence lower bound per image (Bernoulli: nats)      */
    double c, gamma;   /* capacity target and weight at this step (capacity objective);        */
                       /* for TCVAE gamma is the annealed DWKL weight g(t) gamma               */
    double mi, tc, dwkl; /* TCVAE: index-code MI, total correlation, dimension-wise KL (nats);  */
                         /* mi + tc + dwkl = mean log q(z|x) - log p(z), a one-sample KL      */
    double label;        /* conditional VAE with a classifier: its NLL of the given label per  */
                         /* image (nats, before the weight lambda; the loss has lambda label)  */
    double label_acc;    /* ... and the share of reconstructions it gives the given label      */
} heph_losses;

/* beta-TCVAE decomposition of a batch (Chen et al. 2018): z, mu, logvar (B, D). Estimates per
   sample i, with N the dataset size and log q(z_i) by logsumexp over the batch (MWS weights
   1/(N B); MSS weights: own component 1/N, component (i+1) mod B (N-M)/(N M), the rest 1/M,
   M = B - 1; every row sums to 1). heph_tc_terms fills mi, tc, dwkl with the batch means and,
   when dz is not NULL, adds the gradient of (alpha MI + beta TC + gamma DWKL) (batch mean)
   wrt z, mu, logvar into dz, dmu, dlogvar.                                                  */
typedef struct {
    const float *z, *mu, *logvar; /* (B, D) each; row strides ldz (z, dz) and ldh (the rest)  */
    int ldz, ldh, B, D;
    uint64_t N;                   /* the dataset size                                        */
    int estimator;                /* HEPH_TC_MWS or HEPH_TC_MSS                              */
    float alpha, beta, gamma;     /* weights of MI, TC and DWKL in the gradient              */
    float *dz, *dmu, *dlogvar;    /* gradients added to (dz NULL: the values only)           */
    float *scratch;               /* 2 B + B*B floats                                        */
    double mi, tc, dwkl;          /* out: index-code MI, total correlation, dimension-wise KL */
} heph_tc_batch;
HEPH_DEF void heph_tc_terms(heph_tc_batch *t);
/* log importance weight log w_ik of the estimator (row i, column k) */
HEPH_DEF float heph_tc_log_weight(int estimator, int i, int k, int B, uint64_t N);

typedef struct {
    heph_vae_config cfg;
    heph_net enc, dec;
    size_t n_params;
    float *params, *grads, *adam_m, *adam_v; /* four views into one block of 4*n_params      */
    uint64_t step;                           /* optimiser steps taken                         */
    heph_rng rng;                            /* noise for reparameterisation and shuffling    */
    float *h;       /* encoder output (max_batch, 2*z_dim): mu then logvar per row             */
    float *eps, *z, *dz; /* (max_batch, z_dim)                                                 */
    float *dh;      /* gradient wrt h                                                          */
    float *dlogits; /* (max_batch, C*H*W)                                                      */
    float *tc_scratch; /* beta-TCVAE: (max_batch + 2) * max_batch                               */
    /* the conditional VAE (cfg.n_classes > 0) */
    float *emb_enc, *emb_dec; /* views into params: (K, 2 z_dim) added to [mu | logvar], (K, E) */
    float *u, *du;  /* the decoder's input [z | emb_dec[y]] and its gradient (max_batch, z_dim + E) */
    float *pic, *dpic; /* sigmoid(logits), the classifier's input, and its gradient (max_batch, C*H*W) */
    float *dcls;    /* the gradient wrt the classifier's logits (max_batch, K)                   */
    float *hy;      /* the encoder's output + emb_enc[y], before the clamp (max_batch, 2 z_dim)  */
    int *given;     /* a training step's labels after the wrong-label draw (max_batch)           */
    heph_net *cls;  /* the frozen classifier of the label loss (not owned; NULL: none)          */
    float *mem;     /* one allocation behind the above                                        */
    float *scratch; /* the networks' backward and GEMM scratch: encoder and decoder share it,
                       since they never run at the same time                                  */
    char err[HEPH_ERRLEN];
} heph_vae;

/* Fill cfg with defaults for a preset ("mlp-mnist", "mlp-dsprites"); HEPH_E_ARG if unknown. */
HEPH_DEF int heph_vae_config_preset(heph_vae_config *cfg, const char *name);
/* Defaults: Adam 1e-3/0.9/0.999/1e-8, batch 128, beta-VAE with beta 1, Bernoulli.           */
HEPH_DEF void heph_vae_config_default(heph_vae_config *cfg);
/* Build the networks and initialise parameters like PyTorch's nn.Linear: U(-1/sqrt(in), 1/sqrt(in)). */
HEPH_DEF int heph_vae_init(heph_vae *m, const heph_vae_config *cfg, uint64_t seed);
HEPH_DEF void heph_vae_free(heph_vae *m);

/* One optimiser step on a batch x (B, C, H, W) in [0,1], B <= max_batch. Fills *out (may be
   NULL). Returns HEPH_E_NAN (parameters untouched, err says which term) on NaN/Inf.           */
HEPH_DEF int heph_vae_train_step(heph_vae *m, const float *x, int B, heph_losses *out);
/* Loss and gradient (into m->grads, zeroed first) without the optimiser step, with given eps
   (B, z_dim) or NULL to draw from m->rng. For tests and gradient checks.                    */
HEPH_DEF int heph_vae_loss_grad(heph_vae *m, const float *x, int B, const float *eps,
                                heph_losses *out);
/* Posterior mean and log-variance for n pictures (any n; processed in max_batch chunks).
   mu, logvar: (n, z_dim); logvar may be NULL.                                               */
HEPH_DEF void heph_vae_encode(heph_vae *m, const float *x, size_t n, float *mu, float *logvar);
/* Decode n latent codes (n, z_dim) into pictures (n, C, H, W) in [0,1] (sigmoid of logits).  */
HEPH_DEF void heph_vae_decode(heph_vae *m, const float *z, size_t n, float *out);
/* Decode n draws from the prior N(0, I) using the caller's rng.                              */
HEPH_DEF void heph_vae_sample(heph_vae *m, heph_rng *rng, size_t n, float *out);
/* Average negative ELBO over n pictures, one z sample each drawn from a generator seeded
   with `seed` (the model's own rng is not touched). recon and KL reported apart.            */
HEPH_DEF int heph_vae_evaluate(heph_vae *m, const float *x, size_t n, uint64_t seed,
                               heph_losses *out);

/* ---- the conditional VAE (SEED-MODELS.md section 3 part B) ------------------------------------
   A heph_vae whose configuration has n_classes = K > 0 is told a label y in [0, K) with each
   picture. Its block holds two more tables after the decoder: emb_enc (K, 2D), added to the
   encoder's [mu | logvar] head before the clamp (zero at first: the plain encoder), and
   emb_dec (K, E), N(0, 1) at first like nn.Embedding, whose row joins z as the decoder's input
   [z | emb_dec[y]] (so dec_spec takes D + E inputs). With a frozen classifier (K logits of a
   picture, heph_vae_set_classifier) and label_weight lambda > 0, the reconstruction
   sigmoid(logits) goes through it and lambda NLL(given label) joins the objective:
       loss = recon + beta KL + lambda (log sum_k e^c_k - c_y),   c = classifier(sigmoid(logits))
   Its gradient flows through the classifier into the decoder; the classifier never changes.
   heph_cvae_train_step gives a share wrong_labels of the batch a wrong label (uniform over the
   other K - 1), drawn from the model's generator: the reconstruction is still compared with the
   picture, the encoder, the decoder and the label loss all see the given label. With a wrong
   label, reconstruction and label loss pull apart, and lambda decides: the picture's style,
   the given label's class. The plain functions above take plain models only (HEPH_ASSERT);
   a conditional model uses these, with one label per picture, in [0, K) (HEPH_ASSERT):      */
/* the classifier of the label loss (NULL: none, the label loss is 0): a network from C*H*W
   pictures to K logits, max_batch at least the model's; set to evaluation mode and frozen
   (net->frozen: its parameter gradients are not computed). Not owned: it must outlive its
   use. HEPH_E_MISMATCH with err when the shapes differ.                                    */
HEPH_DEF int heph_vae_set_classifier(heph_vae *m, heph_net *cls);
/* given[b] = y[b], or with probability wrong_labels a label drawn uniformly from the others   */
HEPH_DEF void heph_cvae_wrong_labels(heph_vae *m, const int *y, int B, int *given);
/* loss and gradient with the given labels as they are (no draw); eps as heph_vae_loss_grad   */
HEPH_DEF int heph_cvae_loss_grad(heph_vae *m, const float *x, const int *given, int B, const float *eps,
                                 heph_losses *out);
/* one optimiser step: heph_cvae_wrong_labels, heph_cvae_loss_grad, Adam                       */
HEPH_DEF int heph_cvae_train_step(heph_vae *m, const float *x, const int *y, int B, heph_losses *out);
HEPH_DEF void heph_cvae_encode(heph_vae *m, const float *x, const int *y, size_t n, float *mu, float *logvar);
HEPH_DEF void heph_cvae_decode(heph_vae *m, const float *z, const int *y, size_t n, float *out);
/* "this picture with label y": the posterior mean of (x, y) decoded with y, (n, C, H, W)    */
HEPH_DEF void heph_cvae_relabel(heph_vae *m, const float *x, const int *y, size_t n, float *out);
/* heph_vae_evaluate with labels, and the label loss and accuracy when a classifier is set
   (for any lambda, 0 included; the loss adds lambda times it)                               */
HEPH_DEF int heph_cvae_evaluate(heph_vae *m, const float *x, const int *y, size_t n, uint64_t seed,
                                heph_losses *out);

/* ---- the cycle-consistent VAE (SEED-MODELS.md section 2; Jha et al. 2018) -------------------
   The latent splits into a specified part s (S dims, deterministic: what a label names, the
   identity) and an unspecified part z (Z dims, variational: everything else, the pose). No
   adversary: two cycles. The encoder (enc_spec and a dense head) gives h = [s | mu | logvar]
   (S + 2Z; logvar clamped as the VAE's); the decoder (dec_spec) maps [s | z] (S + Z) to
   C*H*W logits. A batch is B pairs (x1[b], x2[b]) that share their specified factor. A step
   minimises  loss = w_recon recon + w_kl KL + w_reverse reverse  (weights 2, 3, 10):
     forward cycle: z = mu + sigma eps for x1 and x2; x1' = dec([s2 | z1]), x2' = dec([s1 | z2])
       (the pair's s swapped); recon = the mean over the 2 B C H W pixels of
       (sigmoid(x') - x)^2 (Gaussian: the write-up's MSE) or of the Bernoulli loss; KL = the
       KL of z1 and z2 to N(0, I), summed, over the same 2 B C H W (the authors' scale);
     reverse cycle: r_b ~ N(0, I); the decoder draws r_b with the s of two different pictures,
       p_b = sigmoid(dec([s1[b] | r_b])) and q_b = sigmoid(dec([s1[b+1 mod B] | r_b])); both
       are encoded again: reverse = the mean over 2 B Z values of |mu(p_b) - r_b| and
       |mu(q_b) - r_b| (z must survive a change of s).
   The reverse term trains the encoder alone by default (reverse_grad HEPH_CYC_REVERSE_ENCODER,
   as the authors' code: the decodes p and q are given pictures to it, and s and the decoder get
   none of its gradient): the encoder learns to read z from any decode. With
   HEPH_CYC_REVERSE_ALL every term is differentiated w.r.t. every parameter, one objective
   (checked by finite differences): the decoder is then also pushed to draw every z legibly,
   which on MNIST held the reconstruction at the level of the mean picture (0.087 per pixel
   after 1,500 steps, against 0.031 without the reverse term). The reverse cycle runs the
   networks a second time, on their twins enc_r and dec_r: the same parameters (BatchNorm
   running statistics updated by both passes, as a module called twice in PyTorch), their own
   activations and gradients, added in order.                                               */
enum { HEPH_CYC_REVERSE_ENCODER = 0, HEPH_CYC_REVERSE_ALL = 1 };
typedef struct {
    int in_c, in_h, in_w;          /* picture shape                                           */
    int s_dim, z_dim;              /* S specified, Z unspecified dimensions                   */
    char enc_spec[HEPH_SPEC_MAX];  /* encoder body; the (S + 2 Z) head is appended            */
    char dec_spec[HEPH_SPEC_MAX];  /* decoder: S + Z -> C*H*W logits                          */
    int max_batch;                 /* pairs per batch at most (64); the networks take 2x      */
    int recon;                     /* HEPH_RECON_GAUSSIAN (default) or HEPH_RECON_BERNOULLI   */
    float w_recon, w_kl, w_reverse; /* 2, 3, 10                                               */
    int reverse_grad;              /* HEPH_CYC_REVERSE_ENCODER (default) or HEPH_CYC_REVERSE_ALL */
    float lr, beta1, beta2, eps;   /* Adam: 1e-4, 0.9, 0.999, 1e-8 (the write-up)             */
} heph_cyc_config;

typedef struct {
    double loss;    /* w_recon recon + w_kl kl + w_reverse reverse                            */
    double recon;   /* per pixel of the swapped reconstructions (squared error or Bernoulli)  */
    double kl;      /* KL of z per pixel (divide by Z / (C H W) for nats per dimension)       */
    double reverse; /* mean |mu(decoded r) - r| per latent value                              */
} heph_cyc_losses;

typedef struct {
    heph_cyc_config cfg;
    heph_net enc, dec;       /* the forward cycle's passes, and encode / decode              */
    heph_net enc_r, dec_r;   /* the reverse cycle's passes: the same parameters              */
    size_t n_params;         /* encoder then decoder                                         */
    float *params, *grads, *adam_m, *adam_v; /* four views into one block of 4 n_params      */
    float *grads_r;          /* the reverse passes' gradients, added to grads (n_params)     */
    uint64_t step;
    heph_rng rng;            /* eps and r of each step                                       */
    float *x, *h, *dh;       /* [x1; x2] (2B, N); its [s | mu | logvar] and gradient (2B, S+2Z) */
    float *eps, *dz;         /* (2B, Z)                                                      */
    float *u, *du;           /* the forward cycle's decoder input [s swapped | z] (2B, S+Z)  */
    float *dlogits;          /* (2B, N)                                                      */
    float *r;                /* the reverse cycle's draws (B, Z)                             */
    float *ur, *dur;         /* its decoder input [s | r] (2B, S+Z)                          */
    float *pr, *dpr;         /* its decodes, sigmoid (2B, N), and their gradient             */
    float *dhr;              /* the gradient at the second encoding (2B, S+2Z)               */
    float *mem, *scratch;    /* the allocations behind the above and the networks' scratch   */
    char err[HEPH_ERRLEN];
} heph_cyc;

/* defaults (the write-up's, with small sizes): S 16, Z 16, batch 64, Gaussian, 2/3/10, Adam
   1e-4; the shape and the specs are the caller's                                             */
HEPH_DEF void heph_cyc_config_default(heph_cyc_config *cfg);
/* "cyc-mnist" (28x28, S 16, Z 16, conv encoder and transposed-conv decoder) or
   "cyc-sprites" (64x64x3, S 64, Z 32); HEPH_E_ARG if unknown                                 */
HEPH_DEF int heph_cyc_config_preset(heph_cyc_config *cfg, const char *name);
HEPH_DEF int heph_cyc_init(heph_cyc *m, const heph_cyc_config *cfg, uint64_t seed);
HEPH_DEF void heph_cyc_free(heph_cyc *m);
/* loss and gradient (into m->grads) of B pairs x1, x2 (B, C, H, W) in [0, 1]; eps (2B, Z:
   x1's rows then x2's) and r (B, Z) given, or NULL to draw them from m->rng (eps first)     */
HEPH_DEF int heph_cyc_loss_grad(heph_cyc *m, const float *x1, const float *x2, int B,
                                const float *eps, const float *r, heph_cyc_losses *out);
/* heph_cyc_loss_grad with drawn eps and r, then Adam; HEPH_E_NAN (nothing changed) as the VAE's */
HEPH_DEF int heph_cyc_train_step(heph_cyc *m, const float *x1, const float *x2, int B, heph_cyc_losses *out);
/* the losses of n pairs without a gradient (BatchNorm: running statistics), eps and r drawn
   from a generator seeded with seed, in chunks of max_batch pairs; means over all n        */
HEPH_DEF int heph_cyc_evaluate(heph_cyc *m, const float *x1, const float *x2, size_t n, uint64_t seed,
                               heph_cyc_losses *out);
/* s (n, S), mu and logvar (n, Z) of n pictures; any of the three may be NULL               */
HEPH_DEF void heph_cyc_encode(heph_cyc *m, const float *x, size_t n, float *s, float *mu, float *logvar);
/* sigmoid(dec([s | z])) for n codes s (n, S), z (n, Z): pictures (n, C, H, W)                */
HEPH_DEF void heph_cyc_decode(heph_cyc *m, const float *s, const float *z, size_t n, float *out);
/* style transfer: picture i = dec([s of xs[i] | mu of xz[i]]), (n, C, H, W)                  */
HEPH_DEF void heph_cyc_transfer(heph_cyc *m, const float *xs, const float *xz, size_t n, float *out);
#ifndef HEPH_NO_STDIO
/* checkpoints (.hpc), written atomically as heph_vae_save (flags: HEPH_SAVE_WEIGHTS_ONLY);
   heph_cyc_load initialises an uninitialised m, or leaves nothing to free with m->err naming
   the file and the problem                                                                  */
HEPH_DEF int heph_cyc_save(heph_cyc *m, const char *path, int flags);
HEPH_DEF int heph_cyc_load(heph_cyc *m, const char *path);
#endif

/* ---- threads that adapt to a shared machine ---------------------------------------------
   Results never depend on the thread count (see OPTIONS), so a training loop may change it at
   any step. With another busy process on the cores, every join of a parallel step waits for
   the thread the OS has set aside, and fewer threads are faster. The tuner times each
   candidate count (max, max/2, ..., 1) for a few steps, keeps the fastest, watches the steps
   that follow and times the candidates again after 20x the probing time (twice as long each
   time the same count wins, 2 to 30 s), or at once when the steps slow down by half. It
   reads no clock and sets nothing itself:
       heph_tuner t;  heph_tuner_init(&t, omp_get_max_threads());
       each step:     omp_set_num_threads(t.threads); t0 = clock(); step(); heph_tuner_next(&t, clock() - t0);
   Its cost on an idle machine: about 1/20 of the probing steps' extra time (< 1 %).        */
typedef struct {
    int max_threads;   /* the most threads it may choose                                    */
    int threads;       /* the count the next step should run with                           */
    int best;          /* the count chosen by the last probe (max_threads until then)       */
    int probing;       /* 1 while timing the candidates                                     */
    int skip;          /* steps still to run untimed (the first after a change)             */
    int n;             /* steps timed at `threads` in the current probe or watch window     */
    double sum;        /* their seconds                                                     */
    double best_s;     /* seconds per step of `best` when probed                            */
    double probe_s;    /* seconds the last probe took                                       */
    double held_s;     /* seconds run at `best` since the last probe                        */
    double hold;       /* probe times to run `best` before the next probe                   */
    int slow;          /* watch windows in a row slower than HEPH__TUNE_SLOW x best_s       */
    double cand_s[8];  /* seconds per step of candidate max_threads >> i in this probe      */
    long long probes;  /* probes finished                                                   */
} heph_tuner;
HEPH_DEF void heph_tuner_init(heph_tuner *t, int max_threads);
/* Record the seconds the last step took (at t->threads); sets t->threads for the next one.  */
HEPH_DEF void heph_tuner_next(heph_tuner *t, double step_seconds);

/* Mean KL of each latent dimension over n pictures: kl[d] = mean_i KL(q(z_d|x_i) || N(0,1)).
   Dimensions with KL near 0 are unused ("collapsed"); the largest carry the most information. */
HEPH_DEF void heph_vae_kl_per_dim(heph_vae *m, const float *x, size_t n, double *kl);
/* Latent traversal: for each r < n_dims, dimension d = dims[r] of the base code z0 (z_dim)
   takes `steps` evenly spaced values from lo[d] to hi[d] (the others stay), decoded into
   out (n_dims * steps, C, H, W): one row of the grid per dimension.                          */
HEPH_DEF void heph_vae_traverse(heph_vae *m, const float *z0, const int *dims, int n_dims,
                                const float *lo, const float *hi, int steps, float *out);

/* Checkpoints (.hpm). flags: HEPH_SAVE_WEIGHTS_ONLY drops the optimiser state. The file is
   written to a temporary file (HEPH_TMP_PATH), flushed, synced (HEPH_FSYNC), closed and
   renamed over path, then the folder is synced (HEPH_SYNC_DIR): a crash never leaves a
   half-written checkpoint under the real name.                                              */
#define HEPH_SAVE_WEIGHTS_ONLY 1
#ifndef HEPH_NO_STDIO
HEPH_DEF int heph_vae_save(heph_vae *m, const char *path, int flags);
/* Load a checkpoint into an uninitialised m (allocates; heph_vae_free releases). On error
   m->err names the file and the problem and nothing needs freeing.                          */
HEPH_DEF int heph_vae_load(heph_vae *m, const char *path);
#endif

/* ------------------------------------------------------------------------------------------ */
/* analysis: context-based outlier detection in the latent space (DESIGN §5)
   1. encode the batch to posterior means (heph_vae_encode);
   2. fit its latent distribution: mean m and covariance S (empirical, Ledoit-Wolf shrinkage,
      ridge, or robust FastMCD so that the outliers do not shape their own reference);
   3. score D^2_i = (mu_i - m)^T S^-1 (mu_i - m) (squared Mahalanobis distance; D = sqrt);
   4. threshold: chi^2_D quantile, median + k MAD of the scores, or given;
   5. explain: z-scores (mu_d - m_d)/sqrt(S_dd) and contributions c_d = (mu - m)_d [S^-1 (mu - m)]_d
      that add up to D^2 exactly (they differ from z^2 when latents are correlated);
   6. counterfactual: the outlier's code with its top-k deviant dimensions set to the normal
      mean, decoded; the morph decodes the line between the two codes.                      */

enum { HEPH_COV_EMPIRICAL = 0, HEPH_COV_LEDOIT_WOLF = 1, HEPH_COV_RIDGE = 2, HEPH_COV_MCD = 3 };

typedef struct {
    int D;            /* latent dimensions                                                */
    int method;       /* HEPH_COV_*                                                       */
    size_t n;         /* points the fit saw                                               */
    double shrinkage; /* Ledoit-Wolf delta, or the ridge added to the diagonal           */
    double *mean;     /* (D) m                                                            */
    double *cov;      /* (D, D) S                                                         */
    double *chol;     /* (D, D) lower-triangular L with L L^T = S                         */
    unsigned char *support; /* (n) MCD: 1 for the points of the final (reweighted) fit  */
    double raw_logdet; /* MCD: log det of the raw h-subset's covariance, the objective the
                          random starts minimise (lower is a better search); 0 otherwise  */
    double *work;     /* (2 D) scratch                                                    */
    char err[HEPH_ERRLEN];
} heph_maha;

/* Fit mean and covariance of n points z (n, D). param: HEPH_COV_RIDGE: the ridge epsilon
   (S + eps I; default 1e-2 when <= 0); HEPH_COV_MCD: the support fraction h/n (default
   (n + D + 1) / (2 n) when <= 0). seed: MCD's random starts. Empirical needs n > D and a
   non-singular covariance: otherwise HEPH_E_ARG with a message suggesting Ledoit-Wolf.    */
HEPH_DEF int heph_maha_fit(heph_maha *f, const float *z, size_t n, int D, int method,
                           double param, uint64_t seed);
HEPH_DEF void heph_maha_free(heph_maha *f);
/* d2[i] = squared Mahalanobis distance of z_i (n, D) to the fit */
HEPH_DEF void heph_maha_score(heph_maha *f, const float *z, size_t n, double *d2);
/* one point: zscore[d] = (z_d - m_d)/sqrt(S_dd); contrib[d] = (z - m)_d [S^-1 (z - m)]_d,
   sum_d contrib[d] = D^2 (either may be NULL)                                               */
HEPH_DEF void heph_maha_explain(heph_maha *f, const float *z, double *zscore, double *contrib);

/* chi^2 with k degrees of freedom: P(X <= x) and its p-quantile (regularised incomplete gamma) */
HEPH_DEF double heph_chi2_cdf(double x, int k);
HEPH_DEF double heph_chi2_quantile(double p, int k);
/* *thr = median + k * MAD of n scores (MAD scaled by 1.4826 to estimate a standard
   deviation); HEPH_E_ARG when n is 0, HEPH_E_NOMEM (and *thr = HUGE_VAL) without memory  */
HEPH_DEF int heph_threshold_mad(const double *scores, size_t n, double k, double *thr);
/* order[0..n) = indices of scores by decreasing value (ties: lower index first; a stable
   merge sort); HEPH_E_NOMEM when its n-index scratch cannot be allocated                    */
HEPH_DEF int heph_rank_desc(const double *scores, size_t n, size_t *order);
/* top[0..k) = the k dimensions with the largest |zscore| (ties: lower index first) */
HEPH_DEF void heph_top_dims(const double *zscore, int D, int k, int *top);
/* counts[d] += 1 for each of the n flagged points (zscores (n, D)) whose d is among its top-k
   dimensions by |z-score| and |z_d| >= zmin: the per-dimension outlier counts.             */
HEPH_DEF void heph_dim_counts(const double *zscores, size_t n, int D, int topk, double zmin,
                              int *counts);
/* counterfactual code: out = z with its top-k dimensions by |zscore| set to normal_mean      */
HEPH_DEF void heph_counterfactual(const float *z, const double *zscore, const double *normal_mean,
                                  int D, int k, float *out);
/* T codes on the line from a to b (T >= 2: a first, b last), out (T, D) */
HEPH_DEF void heph_lerp_codes(const float *a, const float *b, int D, int T, float *out);
/* codes at increasing Mahalanobis distance from the mean along direction dir (D):
   out_t = m + r_t L u / |u|, u = L^-1 (dir), r_t = r_max t/(T-1), so D(out_t) = r_t       */
HEPH_DEF void heph_maha_walk(heph_maha *f, const float *dir, double r_max, int T, float *out);
/* saliency: gradient of D^2(mu(x)) with respect to the pixels of one picture x (C, H, W),
   through the encoder's mean; out (C, H, W). Uses the model's buffers.                     */
HEPH_DEF int heph_vae_saliency(heph_vae *m, heph_maha *f, const float *x, float *out);

/* More scores than D^2 (issue #21): D^2 over all dimensions dilutes one odd factor, and a
   distance in latent space misses pictures the model cannot draw at all.
   - marginal: each latent dimension on its own, so that one odd value is not averaged away.
     Per dimension j a Gaussian kernel density f_j of the reference codes (bandwidth
     h_j = 0.9 min(sd, IQR/1.34) n^-1/5, Silverman's rule, at least HEPH_KDE_HMIN), and the
     density tail p-value of a value v: p_j = (1 + #{reference i: f_j(x_i) <= f_j(v)})/(n + 1)
     with leave-one-out f_j(x_i), continued below the least dense reference point as
     p_j = f_j(v) / (min_i f_j(x_i) (n + 1)). A low density is unusual wherever it is: in a
     tail or in an empty gap between the values the reference has. The dimensions are
     combined by Sidak's correction of the smallest: P = 1 - (1 - min_j p_j)^D, and the
     score is -ln P (nats; higher = more unusual). pdim gets -ln p_j per dimension: which
     dimension made the score. At most HEPH_KDE_MAX reference codes are kept (every
     ceil(n / HEPH_KDE_MAX)-th): the fit is O(n^2 D) in them. A new value's ln f_j is read
     from a table of HEPH_KDE_GRID points over [min - 6 h_j, max + 6 h_j], linear between
     them (within 2e-4 (1 + |ln f_j|) in the tests, the most where two far clusters meet
     at a density of e^-1000; exact outside the table): O(1)
     per value instead of O(n), which is what lets `outliers --stream` score millions.
   - knn: Euclidean distance from a code to its k-th nearest reference code (exact).
   - recon: -ln p(x | z = mu(x)), the model's own reconstruction term at the posterior mean
     (Bernoulli: sum of BCE over pixels; Gaussian: sum of squared errors), per picture.    */
#ifndef HEPH_KDE_MAX
#define HEPH_KDE_MAX 4096
#endif
#define HEPH_KDE_HMIN 1e-3 /* latent units (the prior is N(0, 1)): collapsed dimensions */
#ifndef HEPH_KDE_GRID
#define HEPH_KDE_GRID 4096
#endif
typedef struct {
    int D;
    size_t n;          /* reference codes kept: every step-th of n_fit          */
    size_t n_fit, step;
    double *h;         /* (D) bandwidths                                        */
    double *x;         /* (D, n) the codes, dimension-major                     */
    double *logf;      /* (D, n) leave-one-out log densities, ascending per dim */
    double *g0, *gdx;  /* (D) the table's first point and spacing per dim       */
    double *glog;      /* (D, HEPH_KDE_GRID) ln f_j at g0 + t gdx               */
    char err[HEPH_ERRLEN];
} heph_marginal;
/* fit on n reference codes z (n, D); n >= 3, every value finite */
HEPH_DEF int heph_marginal_fit(heph_marginal *f, const float *z, size_t n, int D);
HEPH_DEF void heph_marginal_free(heph_marginal *f);
/* score[i] = -ln P of code z_i (m, D); pdim (m, D) = -ln p_j, or NULL. self: z is the very
   set the fit saw, in the same order (each code leaves itself out of its own density)     */
HEPH_DEF int heph_marginal_score(heph_marginal *f, const float *z, size_t m, int self,
                                 double *score, double *pdim);
/* dist[i] = distance from z_i (m, D) to its k-th nearest of the n codes ref (n, D);
   self: z is ref (each code is not its own neighbour); 1 <= k < n + !self             */
HEPH_DEF int heph_knn_score(const float *ref, size_t n, int D, const float *z, size_t m, int k,
                            int self, double *dist, char *err, size_t errlen);
/* the explanation behind knn: idx (m, k) the k nearest of the n codes ref to each z_i,
   nearest first (ties: the lower index), dist (m, k) their distances; skip[i] is an index of
   ref that z_i may not take (itself, when z_i is in ref), or (size_t)-1; skip may be NULL.
   1 <= k <= n - 1 when skip is given, k <= n otherwise                                  */
HEPH_DEF int heph_knn_search(const float *ref, size_t n, int D, const float *z, size_t m, int k,
                             const size_t *skip, size_t *idx, double *dist, char *err, size_t errlen);
/* A Gaussian mixture of the normal codes, for normal sets with several modes:
     p(z) = sum_c w_c N(z; m_c, S_c), S_c full, fitted by EM (8 k-means++ starts, S_c + 1e-6 I
     as scikit-learn's reg_covar), for every component count 1..k_max; the count with the
     smallest BIC = -2 ln L + p ln n, p = (k - 1) + k D + k D (D + 1) / 2, is kept.
   heph_gmm_score: score[i] = -ln p(z_i) (nats; higher = less likely). n > D + 1 needed.   */
typedef struct {
    int D, k;          /* dimensions; components kept                                     */
    double *w;         /* (k) weights                                                     */
    double *mean;      /* (k, D) means                                                    */
    double *chol;      /* (k, D, D) Cholesky factors of the covariances                   */
    double *logdet;    /* (k) ln det S_c                                                  */
    double bic[16];    /* BIC of 1 .. k_max components (k_max <= 16)                       */
    double *work;      /* (D) scratch                                                     */
    char err[HEPH_ERRLEN];
} heph_gmm;
HEPH_DEF int heph_gmm_fit(heph_gmm *g, const float *z, size_t n, int D, int k_max, uint64_t seed);
HEPH_DEF int heph_gmm_score(heph_gmm *g, const float *z, size_t m, double *score);
HEPH_DEF void heph_gmm_free(heph_gmm *g);

/* recon[i] = -ln p(x_i | mu(x_i)) for n pictures x (n, C, H, W), in max_batch chunks */
HEPH_DEF int heph_vae_recon_score(heph_vae *m, const float *x, size_t n, double *recon);
/* Likelihood scores of n pictures x (n, C, H, W) from k samples z_1..z_k ~ q(z | x_i):
     log w_s = ln p(x_i | z_s) + ln N(z_s; 0, I) - ln q(z_s | x_i)
     iwae[i] = -(logsumexp_s log w_s - ln k)   (Burda et al. 2016: -ln p(x) <= iwae, tighter as k grows)
     elbo[i] = -(1/k) sum_s log w_s            (the negative ELBO, k-sample mean)
   Nats per picture, higher = less likely; either output may be NULL. Picture i draws its
   noise from its own stream (seed, i), so the scores do not depend on max_batch or on the
   other pictures. Bernoulli models: ln p(x | z) = -BCE; Gaussian: -squared error / 2 (unit
   variance, without the constant). Returns HEPH_OK, HEPH_E_ARG (k < 1), HEPH_E_NOMEM or
   HEPH_E_NAN naming the picture.                                                        */
HEPH_DEF int heph_vae_iwae_score(heph_vae *m, const float *x, size_t n, int k, uint64_t seed,
                                 double *iwae, double *elbo);
/* the same for pictures first .. first+n-1 of a larger set scored in parts: picture i draws
   from stream (seed, first + i), so the parts give the scores of the whole set            */
HEPH_DEF int heph_vae_iwae_score_from(heph_vae *m, const float *x, size_t n, size_t first, int k, uint64_t seed,
                                      double *iwae, double *elbo);
/* Input complexity (Serra et al. 2020): a generative model gives simple foreign pictures a
   high likelihood; subtracting the picture's lossless code length L(x) corrects for it:
     score[i] = nll[i] / ln 2 - bits[i]          (bits; higher = more unusual)
   nll: -ln p(x) in nats (e.g. iwae of heph_vae_iwae_score); bits: L(x) from the caller (the
   paper uses PNG's length; the CLI does) or from heph_complexity_bits.                   */
HEPH_DEF void heph_complexity_score(const double *nll, const double *bits, size_t n, double *score);
/* A small code length of one picture (c, h, w) in [0, 1], in bits: values quantised to 8 bits,
   each predicted by its left neighbour (PNG's Sub filter), and the residuals coded with their
   own empirical entropy: L = sum_r -log2 f(r), f the residuals' frequencies in the picture.  */
HEPH_DEF double heph_complexity_bits(const float *x, int c, int h, int w);
/* Putting scores on one scale (the `combined` score): each score is calibrated on m held-out
   normal pictures c (their scores, c_(0) <= ... <= c_(m-1)), giving its tail probability
   p(s) = P(S >= s | normal):
     s <= c_(0):            p = 1
     c_(j-1) < s <= c_(j):  p = (1 + n(s)) / (m + 1),  n(s) = m - j + (c_(j) - s) / (c_(j) - c_(j-1))
                            (the conformal rank p-value, linear between calibration scores)
     s > c_(m-1):           p = G(s - u) / (G(c_(m-1) - u) (m + 1))     (the fitted tail)
   G(y) = (1 + xi y / sigma)^(-1/xi) (exp(-y / sigma) when xi = 0) is the generalised Pareto
   tail of the excesses y of the t = max(10, m / 10) largest scores over the next one, u
   (peaks over threshold), fitted by moments: with their mean a and variance v,
   xi = (1 - a^2 / v) / 2 and sigma = a (1 + a^2 / v) / 2, and xi < 0 taken as 0 (exponential,
   sigma = a). Rates down to 1 / (m + 1) come from ranks alone, so a threshold on p keeps its
   false-positive rate; beyond them a heavy-tailed score decays slowly, as it should, and very
   unusual pictures stay apart instead of tying at 1 / (m + 1). ln p from heph_tail_logp.
   Needs m >= 20 finite scores.                                                              */
typedef struct {
    size_t m;
    double *c;         /* (m) the calibration scores, ascending */
    double u, xi, sigma; /* the tail: threshold, shape, scale    */
    char err[HEPH_ERRLEN];
} heph_tail;
HEPH_DEF int heph_tail_fit(heph_tail *t, const double *cal, size_t m);
HEPH_DEF double heph_tail_logp(const heph_tail *t, double s);
HEPH_DEF void heph_tail_free(heph_tail *t);
/* K tail log-probabilities of one picture, combined by Sidak's correction of the smallest:
     P = 1 - (1 - min_k p_k)^K,   returns -ln P   (higher = more unusual)
   which (may be NULL) receives the k of the smallest p: the score that made the verdict.     */
HEPH_DEF double heph_combine_sidak(const double *logp, int K, int *which);

/* ------------------------------------------------------------------------------------------ */
/* metrics: MIG (two estimators), latent-factor correlation, SSIM, AUROC                      */
/* Matrices over latents and factors are row-major (D, K): element [j*K + k] is latent j,
   factor k. Encodings are row-major (n, D); factor labels are row-major (n, K) indices with
   0 <= factors[i*K + k] < n_values[k].                                                        */

/* MIG, disentanglement_lib's estimator (discrete, encoder means). Each latent dimension j is
   cut into `bins` equal-width bins over its observed min..max (numpy: digitize(x,
   histogram(x, bins)[1][:-1]) on float64 data: edges b*step + min in double; a constant
   dimension falls in one bin), then
   I[j][k] = plug-in discrete mutual information in nats between bin index and factor label
   (sklearn mutual_info_score), H[k] = empirical entropy of the labels of factor k, and
   MIG = mean over factors of (largest - second largest I[.][k]) / H[k]. With D == 1 the
   second largest is 0. Factors with H[k] == 0 (one observed value) are skipped: their
   per_factor entry is NaN and they are left out of the mean (MIG is NaN if all are skipped).
     mu         (n, D) encoder means, finite
     n          number of encodings (1 .. 2^32-1); DL uses 10,000 random ground-truth samples
     D          latent dimensions (>= 1)
     factors    (n, K) factor indices
     K          number of factors (>= 1)
     n_values   K counts (1 .. HEPH_MAX_FACTOR_VALUES): factor k takes values 0 .. n_values[k]-1
     bins       bins per latent dimension (DL: 20), 1 .. 2^20
     mig        out: the MIG score in [0, 1]
     per_factor out (K values, or NULL): normalised gap of each factor, NaN if skipped
     mi         out (D*K values, or NULL): I[j][k] in nats
   Returns HEPH_OK, HEPH_E_ARG (bad sizes, non-finite mu, label out of range) or HEPH_E_NOMEM.
   Scratch: about n*(K+1) ints + bins*(distinct labels) counts.                                */
HEPH_DEF int heph_mig_discrete(const float *mu, size_t n, int D, const int32_t *factors, int K,
                               const uint32_t *n_values, int bins, double *mig,
                               double *per_factor, double *mi);

/* MIG, the beta-TCVAE paper's estimator (continuous, sampled; Chen et al. 2018). Draws one
   z_n ~ q(z|x_n) = N(mu_n, exp(logvar_n)) per encoding; then for a set G of encodings,
   H_G(z_j) = mean over S = min(n_samples, |G|) samples s of G of
              -log[(1/|G|) sum_{m in G} q(z_sj | x_m)]   (logsumexp over all of G),
   H(z_j) uses G = all n encodings, H(z_j | v_k) is the equal-weight average over the observed
   values v of factor k of H_G(z_j) with G = the encodings with that value;
   I[j][k] = max(0, H(z_j) - H(z_j | v_k)), per_factor[k] = (largest - second largest
   I[.][k]) / log(n_values[k]) and MIG = their mean over the factors used. This matches the
   authors' code when the encodings are the whole factor grid (their dSprites setting skips
   the shape factor: use_factor = {0,1,1,1,1}). Randomness, from heph_rng_seed(seed): the
   n*D normals of z in order (n, then j), then for each set with |G| > n_samples, in order
   (all; factor 0 value 0, 1, ...; factor 1 ...), a partial Fisher-Yates choice of the samples
   (sets with |G| <= n_samples use all their members, without randomness).
   Cost: O(n_samples * n * D * (1 + number of factors used)) Gaussian densities, through a
   vectorisable float exp (relative error ~1e-7): 0.5 ns (in cache) to 1.5 ns (large sets)
   each on one AVX-512 core with -O3 -march=native. The whole dSprites grid (737,280
   encodings, 10,000 samples, D = 10, the marginal and 4 factors) is ~3.7e11 densities, some
   7 minutes on one core. OpenMP splits the samples of each set; the result is bit-identical
   for any number of threads.
     mu, logvar (n, D) encoder outputs; logvar is clamped to [HEPH_LOGVAR_MIN, HEPH_LOGVAR_MAX]
     n          number of encodings (1 .. 2^32-1)
     D          latent dimensions (>= 1)
     factors    (n, K) factor indices, 0 <= factors[i*K+k] < n_values[k]
     K          number of factors (>= 1)
     n_values   K counts of factor values (1 .. HEPH_MAX_FACTOR_VALUES); factors with
                n_values[k] < 2 are skipped
     use_factor K flags (0 = skip that factor), or NULL to use all
     n_samples  samples per entropy estimate (paper: 10,000), >= 1
     seed       seed of the sampling
     mig        out: the MIG score (NaN if no factor is used)
     per_factor out (K values, or NULL): normalised gap of each factor, NaN if skipped
     mi         out (D*K values, or NULL): I[j][k] in nats (NaN in the columns skipped)
   Returns HEPH_OK, HEPH_E_ARG or HEPH_E_NOMEM. Scratch: about 4*n*D floats + n*(K+2) ints
   + n_samples*D doubles.                                                                    */
HEPH_DEF int heph_mig_continuous(const float *mu, const float *logvar, size_t n, int D,
                                 const int32_t *factors, int K, const uint32_t *n_values,
                                 const int *use_factor, size_t n_samples, uint64_t seed,
                                 double *mig, double *per_factor, double *mi);

/* Pearson correlation of each latent dimension with each factor index:
   out[j*K + k] = cov(mu_j, f_k) / (sd(mu_j) sd(f_k)), 0 when either is constant (or n < 2).
     mu (n, D) latents, n samples, D dimensions, factors (n, K) indices, K factors,
     out (D, K) results.                                                                       */
HEPH_DEF void heph_correlation_matrix(const float *mu, size_t n, int D, const int32_t *factors,
                                      int K, float *out);

/* SSIM (Wang et al. 2004) of two pictures a, b (c, h, w) planar floats with range L = 1:
   Gaussian 11x11 window, sigma 1.5 (weights normalised to sum 1), K1 = 0.01, K2 = 0.03,
   population (weighted) variances, mean over the (h-10)*(w-10) fully contained windows, then
   mean over the c channels: "SSIM(11, s1.5, K 0.01/0.03, L=1, valid, per-channel mean)".
   Returns NaN when c < 1 or the picture is smaller than 11x11. No allocation.                */
HEPH_DEF double heph_ssim(const float *a, const float *b, int c, int h, int w);

/* Area under the ROC curve of `scores` (higher = more positive) against is_positive[i] != 0:
   the Mann-Whitney statistic with average ranks, so tied scores count one half. O(n log n)
   with a private stable merge sort (deterministic). *auc = NaN when either class is empty.
   Returns HEPH_OK, HEPH_E_ARG (NULL pointer or a NaN score) or HEPH_E_NOMEM (scratch 2n
   size_t).                                                                                   */
HEPH_DEF int heph_auroc(const float *scores, const int *is_positive, size_t n, double *auc);

/* ------------------------------------------------------------------------------------------ */
/* dataset files (.hpd): little-endian header, factor table, pixel block, i32 factor indices  */

enum { HEPH_PX_U8 = 1, HEPH_PX_F32 = 2, HEPH_PX_BIT = 3 };
enum { HEPH_HPD_LABELS = 1, HEPH_HPD_GRID = 2, HEPH_HPD_GENERATED = 4 };
#define HEPH_MAX_FACTORS 32
#define HEPH_MAX_FACTOR_VALUES 1000000

typedef struct {
    char name[24];        /* e.g. "class", "shape", "posX" (NUL-terminated, <= 23 chars)        */
    uint32_t n_values;    /* number of distinct values (indices are 0..n_values-1)               */
    const double *values; /* n_values real values, or NULL (writer: caller's; reader: owned)     */
} heph_factor;

typedef struct {
    uint64_t count;           /* number of pictures                                     */
    uint32_t c, h, w;         /* channels, height, width (planar CHW)                   */
    uint32_t dtype;           /* HEPH_PX_*                                              */
    float value_max;          /* stored value that means 1.0 (255 for u8 images)        */
    uint32_t flags;           /* HEPH_HPD_*                                             */
    uint64_t seed;            /* generator seed (0 for real data)                       */
    char source[33];          /* e.g. "mnist/train"                                     */
    uint32_t n_factors;
    heph_factor factors[HEPH_MAX_FACTORS];
} heph_hpd_info;

#ifndef HEPH_NO_STDIO /* the file functions; an embedded build can leave them out */
typedef struct {
    heph_hpd_info info;
    FILE *fp;
    uint64_t header_bytes, labels_offset, image_bytes, file_size;
    int32_t *labels;       /* (count, n_factors) factor indices                         */
    double *values;        /* storage behind info.factors[k].values                      */
    unsigned char *raw;    /* one stored picture                                         */
    char path[160];
    char err[HEPH_ERRLEN];
} heph_hpd;

typedef struct {
    heph_hpd_info info;
    FILE *fp;
    uint64_t written;
    int32_t *labels;
    unsigned char *raw;
    uint64_t image_bytes;
    char path[160], tmp[200];
    char err[HEPH_ERRLEN];
} heph_hpd_writer;

/* Open and validate every header field against the file size; labels are read, pixels stay
   on disk until heph_hpd_read.                                                               */
HEPH_DEF int heph_hpd_open(heph_hpd *d, const char *path);
HEPH_DEF void heph_hpd_close(heph_hpd *d);
/* Read pictures idx[0..n) as floats in [0,1] (stored value / value_max) into out (n, C, H, W).
   A stored value outside [0, value_max] (f32: NaN, Inf, negative, too large; u8 or 1-bit:
   above a value_max below 255 or 1) is HEPH_E_FORMAT naming the picture; the writer refuses
   to put an f32 one.                                                                          */
HEPH_DEF int heph_hpd_read(heph_hpd *d, const size_t *idx, size_t n, float *out);
HEPH_DEF int heph_hpd_read_range(heph_hpd *d, size_t start, size_t n, float *out);
/* Factor index k of picture i (from memory). */
HEPH_DEF int32_t heph_hpd_label(const heph_hpd *d, size_t i, int k);
HEPH_DEF size_t heph_hpd_picture_size(const heph_hpd_info *info); /* C*H*W */

/* Write a dataset: create, then exactly info->count calls to a put function, then close,
   which writes the labels and renames the temporary file into place.                         */
HEPH_DEF int heph_hpd_create(heph_hpd_writer *w, const char *path, const heph_hpd_info *info);
/* px: one picture, C*H*W values. U8 stores them; BIT stores (px != 0). factors: n_factors indices. */
HEPH_DEF int heph_hpd_put_u8(heph_hpd_writer *w, const uint8_t *px, const int32_t *factors);
HEPH_DEF int heph_hpd_put_f32(heph_hpd_writer *w, const float *px, const int32_t *factors);
HEPH_DEF int heph_hpd_finish(heph_hpd_writer *w);  /* close + rename; frees the writer */
HEPH_DEF void heph_hpd_abort(heph_hpd_writer *w);  /* remove the temporary file        */
#endif /* HEPH_NO_STDIO */

/* ------------------------------------------------------------------------------------------ */
/* pictures: pure pixel math, no file I/O (write the result with e.g. stb_image_write)         */

/* Lay out n pictures (n, c, h, w) floats in [0,1], c = 1 or 3, in a grid of `cols` columns
   with `pad` pixels of gray between them. dst is RGB u8 of heph_grid_width x heph_grid_height. */
HEPH_DEF int heph_grid_width(int cols, int w, int pad);
HEPH_DEF int heph_grid_height(int n, int cols, int h, int pad);
HEPH_DEF void heph_image_grid(uint8_t *dst, const float *imgs, int n, int cols, int c, int h,
                              int w, int pad);

#ifdef __cplusplus
}
#endif
#endif /* HEPHAESTUS_H */

/* ========================================================================================== */
/*                                    IMPLEMENTATION                                          */
/* ========================================================================================== */
#ifdef HEPHAESTUS_IMPLEMENTATION
#ifndef HEPHAESTUS_IMPLEMENTATION_DONE
#define HEPHAESTUS_IMPLEMENTATION_DONE

#include <math.h>
#include <float.h>
#include <string.h>
#include <stdlib.h>
#include <stdarg.h>
#include <limits.h>
#include <errno.h>

#if defined(HEPH_MALLOC) && defined(HEPH_FREE)
#elif !defined(HEPH_MALLOC) && !defined(HEPH_FREE)
#define HEPH_MALLOC(sz) malloc(sz)
#define HEPH_FREE(p) free(p)
#ifndef HEPH_CALLOC
#define HEPH_CALLOC(sz) calloc(1, sz)
#endif
#else
#error "hephaestus.h: define both HEPH_MALLOC and HEPH_FREE, or neither"
#endif
#ifndef HEPH_ASSERT
#include <assert.h>
#define HEPH_ASSERT(x) assert(x)
#endif
#ifndef HEPH_FSYNC
#define HEPH_FSYNC(fp) ((void)(fp), 0)
#endif
#ifndef HEPH_TMP_PATH
#define HEPH_TMP_PATH(dst, cap, path) snprintf((dst), (cap), "%s.tmp", (path))
#endif
#ifndef HEPH_SYNC_DIR
#define HEPH_SYNC_DIR(path) ((void)(path), 0)
#endif

/* HEPH_REFERENCE_KERNELS: every layer, network and VAE on the reference loops of part A */
#ifdef HEPH_REFERENCE_KERNELS
#define HEPH__REFERENCE 1
#else
#define HEPH__REFERENCE 0
#endif

#if defined(_OPENMP) && !defined(HEPH_NO_OPENMP)
#include <omp.h>
#define HEPH__OMP_FOR _Pragma("omp parallel for schedule(static)")
/* parallel only when cond holds (small loops stay serial) */
#define HEPH__PRAGMA(x) _Pragma(#x)
#define HEPH__OMP_FOR_IF(cond) HEPH__PRAGMA(omp parallel for schedule(static) if(cond))
#else
#define HEPH__OMP_FOR
#define HEPH__OMP_FOR_IF(cond)
#endif

#if defined(__cplusplus)
#define HEPH__RESTRICT __restrict
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L
#define HEPH__RESTRICT restrict
#else
#define HEPH__RESTRICT
#endif

/* ------------------------------------------------------------------------------------------ */
/* small helpers                                                                              */

HEPH_DEF const char *heph_result_string(int code) {
    switch (code) {
    case HEPH_OK: return "ok";
    case HEPH_E_ARG: return "invalid argument";
    case HEPH_E_NOMEM: return "out of memory";
    case HEPH_E_IO: return "input/output error";
    case HEPH_E_FORMAT: return "malformed file";
    case HEPH_E_VERSION: return "unsupported file version";
    case HEPH_E_CHECKSUM: return "checksum mismatch";
    case HEPH_E_SPEC: return "invalid architecture spec";
    case HEPH_E_SIZE: return "size overflow or out of limits";
    case HEPH_E_NAN: return "NaN or Inf in training";
    case HEPH_E_MISMATCH: return "model and data disagree";
    default: return "unknown error";
    }
}

/* printf into a caller's error buffer (never NULL-dereferences, always terminated) */
static int heph__errf(char *err, size_t errlen, int code, const char *fmt, ...) {
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* the largest block the library allocates, in bytes: size_t's range (tests set it to 2^32 - 1
   to check the 32-bit limits on a 64-bit machine) */
#ifndef HEPH__SIZE_LIMIT
#define HEPH__SIZE_LIMIT ((uint64_t)(size_t)-1)
#endif
/* a block of n floats (n computed in 64 bits) fits size_t, and so every index into it */
static int heph__floats_fit(uint64_t n) { return n <= HEPH__SIZE_LIMIT / sizeof(float); }
/* a block of b bytes fits the limit (a function, so a 32-bit size_t widened here is no
   always-false comparison for gcc's -Wtype-limits on i686) */
static int heph__bytes_fit(uint64_t b) { return b <= HEPH__SIZE_LIMIT; }

/* a*b with overflow check; returns 0 on overflow */
static int heph__mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > (size_t)-1 / a) return 0;
    *out = a * b;
    return 1;
}

static void *heph__calloc(size_t n, size_t size) {
    size_t bytes;
    void *p;
    if (!heph__mul_ok(n, size, &bytes) || bytes == 0 || !heph__bytes_fit(bytes)) return NULL;
#ifdef HEPH_CALLOC
    /* calloc: large blocks come from the OS already zero and are not touched until used (a
       model loaded to encode never writes its gradients or Adam state: writing zeros there
       took half of `hephaestus outliers` on a 350-picture batch)                          */
    p = HEPH_CALLOC(bytes);
#else
    p = HEPH_MALLOC(bytes);
    if (p) memset(p, 0, bytes);
#endif
    return p;
}

/* a workspace size for the public *_ws_floats: (size_t)-1 when size_t cannot hold it, so an
   allocation of that many floats fails instead of wrapping to a small block */
static size_t heph__ws_size(uint64_t n) { return heph__floats_fit(n) ? (size_t)n : (size_t)-1; }

/* ------------------------------------------------------------------------------------------ */
/* the fence: the fast kernels of part D that parts A and B call. Each public layer function
   and each network layer picks its path in one line: the reference loops of part A when
   HEPH_REFERENCE_KERNELS is defined (HEPH__REFERENCE), these otherwise.                     */
static uint64_t heph__dense_ws64(int B, int I, int O);
static void heph__dense_forward(float *out, const float *inp, const float *W, const float *b,
                                int B, int I, int O, float *ws, int relu);
static void heph__dense_backward(float *dinp, float *dW, float *db, const float *dout,
                                 const float *inp, const float *W, int B, int I, int O,
                                 float *ws, int mask, int set);
static size_t heph__conv_public_ws(const heph_conv_geom *g, int B, int tr);
static void heph__conv_public_forward(float *out, const float *inp, const float *W, const float *b,
                                      const heph_conv_geom *g, int B, float *ws, int tr);
static void heph__conv_public_backward(float *dinp, float *dW, float *db, const float *dout,
                                       const float *inp, const float *W, const heph_conv_geom *g,
                                       int B, float *ws, int tr);
static double heph__loss_chunked(int gaussian, float *dlogits, const float *logits,
                                 const float *x, size_t n, float scale);
static double heph__softmax_xent_fast(float *dlogits, const float *logits, const int *labels,
                                      int B, int K, float scale);
static float heph__exp_neg(float x);
static int heph__maha_score_fast(const double *mean, const double *L, int D, const float *z,
                                 size_t n, double *d2);
static int heph__knn_fast(const float *ref, size_t n, int D, const float *z, size_t m, int k,
                          int self, double *best, double *dist);

/* ========================================================================================== */
/* PART A - THE LESSON: random numbers; every layer as plain loops over indices with its    */
/* formula (dense, conv2d, transposed conv2d, activations, the VAE pieces, softmax, KL, the */
/* beta-TCVAE terms, Adam); architecture specs; a network as a loop over its layers; the VAE. */
/* Each public layer function picks its path in one line: these loops, or part D.           */
/* ========================================================================================== */

/* ------------------------------------------------------------------------------------------ */
/* RNG: PCG32, XSH-RR output; seeding as in the reference pcg32_srandom                        */

HEPH_DEF uint32_t heph_rng_u32(heph_rng *r) {
    uint64_t old = r->state;
    uint32_t xorshifted, rot;
    r->state = old * 6364136223846793005ULL + r->inc;       /* LCG step */
    xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);   /* xorshift high bits */
    rot = (uint32_t)(old >> 59u);                            /* random rotation */
    return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
}

HEPH_DEF void heph_rng_seed(heph_rng *r, uint64_t seed) {
    r->state = 0;
    r->inc = (seed << 1u) | 1u; /* stream selected by the seed */
    heph_rng_u32(r);
    r->state += seed ^ 0x853c49e6748fea9bULL;
    heph_rng_u32(r);
    r->has_spare = 0;
    r->spare = 0.0f;
}

HEPH_DEF uint32_t heph_rng_below(heph_rng *r, uint32_t n) {
    uint32_t threshold, x;
    if (n <= 1) return 0;
    threshold = (uint32_t)(0u - n) % n; /* reject the biased low range (Lemire/PCG) */
    for (;;) {
        x = heph_rng_u32(r);
        if (x >= threshold) return x % n;
    }
}

HEPH_DEF uint64_t heph_rng_below64(heph_rng *r, uint64_t n) {
    uint64_t threshold, x;
    if (n <= 0xffffffffu) return heph_rng_below(r, (uint32_t)n);
    threshold = (0u - n) % n; /* 2^64 mod n: reject the biased low range, as above */
    for (;;) {
        x = (uint64_t)heph_rng_u32(r) << 32;
        x |= heph_rng_u32(r);
        if (x >= threshold) return x % n;
    }
}

/* 24 random bits -> [0, 1) */
HEPH_DEF float heph_rng_uniform(heph_rng *r) {
    return (float)(heph_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

/* Box-Muller: r = sqrt(-2 ln u1), z0 = r cos(2 pi u2), z1 = r sin(2 pi u2) */
HEPH_DEF float heph_rng_normal(heph_rng *r) {
    float u1, u2, rad, th;
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    do { u1 = heph_rng_uniform(r); } while (u1 <= 0.0f);
    u2 = heph_rng_uniform(r);
    rad = sqrtf(-2.0f * logf(u1));
    th = 6.28318530717958647692f * u2;
    r->spare = rad * sinf(th);
    r->has_spare = 1;
    return rad * cosf(th);
}

HEPH_DEF void heph_rng_shuffle(heph_rng *r, size_t *idx, size_t n) {
    size_t i, j, t;
    for (i = n; i > 1; i--) { /* swap idx[i-1] with a uniform idx[j], j < i */
        j = (size_t)heph_rng_below(r, (uint32_t)(i > 0xffffffffu ? 0xffffffffu : i));
        t = idx[i - 1]; idx[i - 1] = idx[j]; idx[j] = t;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* activations                                                                                */

/* y = max(x, 0) */
HEPH_DEF void heph_relu_forward(float *out, const float *inp, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}
/* dx = dy * [y > 0] */
HEPH_DEF void heph_relu_backward(float *dinp, const float *dout, const float *out, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) dinp[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}
/* y = x > 0 ? x : a x */
HEPH_DEF void heph_lrelu_forward(float *out, const float *inp, size_t n, float slope) {
    size_t i;
    for (i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : slope * inp[i];
}
/* dx = dy * (y > 0 ? 1 : a)   (a > 0, so sign(y) = sign(x)) */
HEPH_DEF void heph_lrelu_backward(float *dinp, const float *dout, const float *out, size_t n,
                                  float slope) {
    size_t i;
    for (i = 0; i < n; i++) dinp[i] = out[i] > 0.0f ? dout[i] : slope * dout[i];
}
/* y = 1 / (1 + e^-x), computed without overflow for either sign */
static float heph__sigmoid(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    {
        float e = expf(x);
        return e / (1.0f + e);
    }
}
HEPH_DEF void heph_sigmoid_forward(float *out, const float *inp, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) out[i] = heph__sigmoid(inp[i]);
}
/* dx = dy * y (1 - y) */
HEPH_DEF void heph_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) dinp[i] = dout[i] * out[i] * (1.0f - out[i]);
}
/* y = tanh(x) */
HEPH_DEF void heph_tanh_forward(float *out, const float *inp, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}
/* dx = dy * (1 - y^2) */
HEPH_DEF void heph_tanh_backward(float *dinp, const float *dout, const float *out, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
}

/* the input position (y W + x) of the largest of window (i, j) of one (H, W) plane */
static int heph__pool_argmax(const float *plane, int W, int i, int j) {
    int y, x, best = 2 * i * W + 2 * j;
    for (y = 2 * i; y < 2 * i + 2; y++)
        for (x = 2 * j; x < 2 * j + 2; x++) {
            float v = plane[y * W + x], m = plane[best];
            if (v > m || v != v) best = y * W + x; /* larger, or a NaN (the last one: PyTorch's rule) */
        }
    return best;
}

HEPH_DEF void heph_maxpool2_forward(float *out, int *idx, const float *in, int B, int C, int H, int W) {
    int Ho = H / 2, Wo = W / 2, p, i, j;
    for (p = 0; p < B * C; p++) { /* one (H, W) plane per picture and channel */
        const float *plane = in + (size_t)p * (size_t)H * (size_t)W;
        for (i = 0; i < Ho; i++)
            for (j = 0; j < Wo; j++) {
                int at = heph__pool_argmax(plane, W, i, j);
                size_t o = ((size_t)p * (size_t)Ho + (size_t)i) * (size_t)Wo + (size_t)j;
                out[o] = plane[at]; /* out[b,c,i,j] = max over the 2x2 window */
                if (idx) idx[o] = at;
            }
    }
}

/* the batch mean and biased variance of channel c of (B, C, HW) values */
static void heph__bn_stats(const float *in, int B, int C, int HW, int c, double *mean, double *var) {
    double s = 0.0, q = 0.0, n = (double)B * (double)HW;
    int b, i;
    for (b = 0; b < B; b++)
        for (i = 0; i < HW; i++) s += (double)in[((size_t)b * (size_t)C + (size_t)c) * (size_t)HW + (size_t)i];
    *mean = s / n;
    for (b = 0; b < B; b++)
        for (i = 0; i < HW; i++) {
            double d = (double)in[((size_t)b * (size_t)C + (size_t)c) * (size_t)HW + (size_t)i] - *mean;
            q += d * d;
        }
    *var = q / n;
}

HEPH_DEF void heph_batchnorm_forward(float *out, float *rmean, float *rvar, const float *in, const float *gamma,
                                     const float *beta, int B, int C, int HW, int train) {
    int c, b, i;
    double n = (double)B * (double)HW;
    for (c = 0; c < C; c++) {
        double m, v, inv;
        if (train) {
            heph__bn_stats(in, B, C, HW, c, &m, &v);
            rmean[c] = (float)((1.0 - HEPH_BN_MOMENTUM) * (double)rmean[c] + HEPH_BN_MOMENTUM * m);
            rvar[c] = (float)((1.0 - HEPH_BN_MOMENTUM) * (double)rvar[c] + HEPH_BN_MOMENTUM * (n > 1.0 ? v * n / (n - 1.0) : v));
        } else {
            m = (double)rmean[c]; v = (double)rvar[c];
        }
        inv = 1.0 / sqrt(v + HEPH_BN_EPS);
        for (b = 0; b < B; b++)
            for (i = 0; i < HW; i++) { /* y = gamma (x - m) / sqrt(v + eps) + beta */
                size_t at = ((size_t)b * (size_t)C + (size_t)c) * (size_t)HW + (size_t)i;
                out[at] = (float)((double)gamma[c] * (((double)in[at] - m) * inv) + (double)beta[c]);
            }
    }
}

HEPH_DEF void heph_batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *in,
                                      const float *gamma, const float *rmean, const float *rvar, int B, int C, int HW,
                                      int train) {
    int c, b, i;
    double n = (double)B * (double)HW;
    for (c = 0; c < C; c++) {
        double m, v, inv, sdy = 0.0, sdyx = 0.0;
        if (train) heph__bn_stats(in, B, C, HW, c, &m, &v);
        else { m = (double)rmean[c]; v = (double)rvar[c]; }
        inv = 1.0 / sqrt(v + HEPH_BN_EPS);
        for (b = 0; b < B; b++)
            for (i = 0; i < HW; i++) {
                size_t at = ((size_t)b * (size_t)C + (size_t)c) * (size_t)HW + (size_t)i;
                sdy += (double)dout[at];                                  /* dbeta = sum dy       */
                sdyx += (double)dout[at] * ((double)in[at] - m) * inv;     /* dgamma = sum dy xh   */
            }
        dgamma[c] = (float)sdyx;
        dbeta[c] = (float)sdy;
        if (!dinp) continue;
        for (b = 0; b < B; b++)
            for (i = 0; i < HW; i++) {
                size_t at = ((size_t)b * (size_t)C + (size_t)c) * (size_t)HW + (size_t)i;
                double xh = ((double)in[at] - m) * inv, g = (double)gamma[c] * inv;
                dinp[at] = (float)(train ? g * ((double)dout[at] - sdy / n - xh * sdyx / n) : g * (double)dout[at]);
            }
    }
}

HEPH_DEF void heph_maxpool2_backward(float *dinp, const float *dout, const float *in, int B, int C, int H, int W) {
    int Ho = H / 2, Wo = W / 2, p, i, j;
    memset(dinp, 0, (size_t)B * (size_t)C * (size_t)H * (size_t)W * sizeof(float));
    for (p = 0; p < B * C; p++) { /* d in[b,c,argmax] = d out[b,c,i,j]; the windows do not overlap */
        const float *plane = in + (size_t)p * (size_t)H * (size_t)W;
        for (i = 0; i < Ho; i++)
            for (j = 0; j < Wo; j++)
                dinp[(size_t)p * (size_t)H * (size_t)W + (size_t)heph__pool_argmax(plane, W, i, j)] =
                    dout[((size_t)p * (size_t)Ho + (size_t)i) * (size_t)Wo + (size_t)j];
    }
}

/* ------------------------------------------------------------------------------------------ */
/* the reference layers: every layer as plain loops over indices, its formula beside it.
   With HEPH_REFERENCE_KERNELS the whole library runs on these alone; otherwise the public
   layer functions and the networks go to the fast kernels of part D (one dispatch point per
   layer, below each pair), and the tests check the two against each other. Pictures are
   (C, H, W) per image, dense weights [out][in]; backward passes ADD into dW and db.        */

/* y[b][o] = bias[o] + sum_i x[b][i] W[o][i] */
static void heph__dense_forward_ref(float *out, const float *inp, const float *W,
                                    const float *bias, int B, int I, int O) {
    int b, o, i;
    for (b = 0; b < B; b++)
        for (o = 0; o < O; o++) {
            const float *x = inp + (size_t)b * (size_t)I, *w = W + (size_t)o * (size_t)I;
            float s = bias[o];
            for (i = 0; i < I; i++) s += x[i] * w[i];
            out[(size_t)b * (size_t)O + (size_t)o] = s;
        }
}

/* dW[o][i] += sum_b dy[b][o] x[b][i];  db[o] += sum_b dy[b][o];  dx[b][i] = sum_o dy[b][o] W[o][i] */
static void heph__dense_backward_ref(float *dinp, float *dW, float *db, const float *dout,
                                     const float *inp, const float *W, int B, int I, int O) {
    int b, o, i;
    for (b = 0; b < B; b++)
        for (o = 0; o < O; o++) {
            float d = dout[(size_t)b * (size_t)O + (size_t)o];
            db[o] += d;
            for (i = 0; i < I; i++) dW[(size_t)o * (size_t)I + (size_t)i] += d * inp[(size_t)b * (size_t)I + (size_t)i];
        }
    if (!dinp) return;
    for (b = 0; b < B; b++)
        for (i = 0; i < I; i++) {
            float s = 0.0f;
            for (o = 0; o < O; o++) s += dout[(size_t)b * (size_t)O + (size_t)o] * W[(size_t)o * (size_t)I + (size_t)i];
            dinp[(size_t)b * (size_t)I + (size_t)i] = s;
        }
}

/* index of x[b][c][y][x] in a (B, C, H, W) block */
static size_t heph__at4(int b, int c, int y, int x, int C, int H, int W) {
    return (((size_t)b * (size_t)C + (size_t)c) * (size_t)H + (size_t)y) * (size_t)W + (size_t)x;
}

/* conv2d: y[b][o][i][j] = bias[o] + sum_{c,u,v} W[o][c][u][v] x[b][c][i s + u - p][j s + v - p]
   (x is 0 outside the picture) */
static void heph__conv2d_forward_ref(float *out, const float *inp, const float *W,
                                     const float *bias, const heph_conv_geom *g, int B) {
    int b, o, i, j, c, u, v, k = g->k;
    for (b = 0; b < B; b++)
        for (o = 0; o < g->Co; o++)
            for (i = 0; i < g->Ho; i++)
                for (j = 0; j < g->Wo; j++) {
                    float s = bias[o];
                    for (c = 0; c < g->C; c++)
                        for (u = 0; u < k; u++)
                            for (v = 0; v < k; v++) {
                                int y = i * g->s + u - g->p, x = j * g->s + v - g->p;
                                if (y < 0 || y >= g->H || x < 0 || x >= g->W) continue;
                                s += W[heph__at4(o, c, u, v, g->C, k, k)] * inp[heph__at4(b, c, y, x, g->C, g->H, g->W)];
                            }
                    out[heph__at4(b, o, i, j, g->Co, g->Ho, g->Wo)] = s;
                }
}

/* each output gradient d = dy[b][o][i][j] flows back along the products that made y:
   dW[o][c][u][v] += d x[b][c][y][x];  dx[b][c][y][x] += d W[o][c][u][v];  db[o] += d       */
static void heph__conv2d_backward_ref(float *dinp, float *dW, float *db, const float *dout,
                                      const float *inp, const float *W, const heph_conv_geom *g, int B) {
    int b, o, i, j, c, u, v, k = g->k;
    if (dinp) memset(dinp, 0, (size_t)B * (size_t)g->C * (size_t)g->H * (size_t)g->W * sizeof(float));
    for (b = 0; b < B; b++)
        for (o = 0; o < g->Co; o++)
            for (i = 0; i < g->Ho; i++)
                for (j = 0; j < g->Wo; j++) {
                    float d = dout[heph__at4(b, o, i, j, g->Co, g->Ho, g->Wo)];
                    db[o] += d;
                    for (c = 0; c < g->C; c++)
                        for (u = 0; u < k; u++)
                            for (v = 0; v < k; v++) {
                                int y = i * g->s + u - g->p, x = j * g->s + v - g->p;
                                size_t wi = heph__at4(o, c, u, v, g->C, k, k), xi;
                                if (y < 0 || y >= g->H || x < 0 || x >= g->W) continue;
                                xi = heph__at4(b, c, y, x, g->C, g->H, g->W);
                                dW[wi] += d * inp[xi];
                                if (dinp) dinp[xi] += d * W[wi];
                            }
                }
}

/* transposed conv2d, the gradient of conv2d's input turned into a layer: every input value
   spreads over a k x k patch of the output,
   y[b][o][i s + u - p][j s + v - p] += x[b][c][i][j] W[c][o][u][v], and y starts at bias[o] */
static void heph__convt2d_forward_ref(float *out, const float *inp, const float *W,
                                      const float *bias, const heph_conv_geom *g, int B) {
    int b, o, i, j, c, u, v, k = g->k;
    size_t plane = (size_t)g->Ho * (size_t)g->Wo, q;
    for (b = 0; b < B; b++)
        for (o = 0; o < g->Co; o++)
            for (q = 0; q < plane; q++) out[heph__at4(b, o, 0, 0, g->Co, g->Ho, g->Wo) + q] = bias[o];
    for (b = 0; b < B; b++)
        for (c = 0; c < g->C; c++)
            for (i = 0; i < g->H; i++)
                for (j = 0; j < g->W; j++) {
                    float x = inp[heph__at4(b, c, i, j, g->C, g->H, g->W)];
                    for (o = 0; o < g->Co; o++)
                        for (u = 0; u < k; u++)
                            for (v = 0; v < k; v++) {
                                int y = i * g->s + u - g->p, xx = j * g->s + v - g->p;
                                if (y < 0 || y >= g->Ho || xx < 0 || xx >= g->Wo) continue;
                                out[heph__at4(b, o, y, xx, g->Co, g->Ho, g->Wo)] += x * W[heph__at4(c, o, u, v, g->Co, k, k)];
                            }
                }
}

/* dx[b][c][i][j] = sum_{o,u,v} W[c][o][u][v] dy[b][o][i s + u - p][j s + v - p];
   dW[c][o][u][v] += x[b][c][i][j] dy[...];  db[o] += sum of dy over b and the plane        */
static void heph__convt2d_backward_ref(float *dinp, float *dW, float *db, const float *dout,
                                       const float *inp, const float *W, const heph_conv_geom *g, int B) {
    int b, o, i, j, c, u, v, k = g->k;
    size_t plane = (size_t)g->Ho * (size_t)g->Wo, q;
    for (b = 0; b < B; b++)
        for (o = 0; o < g->Co; o++)
            for (q = 0; q < plane; q++) db[o] += dout[heph__at4(b, o, 0, 0, g->Co, g->Ho, g->Wo) + q];
    for (b = 0; b < B; b++)
        for (c = 0; c < g->C; c++)
            for (i = 0; i < g->H; i++)
                for (j = 0; j < g->W; j++) {
                    size_t xi = heph__at4(b, c, i, j, g->C, g->H, g->W);
                    float s = 0.0f;
                    for (o = 0; o < g->Co; o++)
                        for (u = 0; u < k; u++)
                            for (v = 0; v < k; v++) {
                                int y = i * g->s + u - g->p, x = j * g->s + v - g->p;
                                size_t wi = heph__at4(c, o, u, v, g->Co, k, k);
                                float d;
                                if (y < 0 || y >= g->Ho || x < 0 || x >= g->Wo) continue;
                                d = dout[heph__at4(b, o, y, x, g->Co, g->Ho, g->Wo)];
                                dW[wi] += inp[xi] * d;
                                s += W[wi] * d;
                            }
                    if (dinp) dinp[xi] = s;
                }
}

/* ------------------------------------------------------------------------------------------ */
/* the public layer functions: reference loops or fast kernels, chosen in one place each  */

HEPH_DEF void heph_dense_forward(float *out, const float *inp, const float *W, const float *b,
                                 int B, int I, int O, float *ws) {
    if (HEPH__REFERENCE) heph__dense_forward_ref(out, inp, W, b, B, I, O);
    else heph__dense_forward(out, inp, W, b, B, I, O, ws, 0);
}

HEPH_DEF void heph_dense_backward(float *dinp, float *dW, float *db, const float *dout,
                                  const float *inp, const float *W, int B, int I, int O,
                                  float *ws) {
    if (HEPH__REFERENCE) heph__dense_backward_ref(dinp, dW, db, dout, inp, W, B, I, O);
    else heph__dense_backward(dinp, dW, db, dout, inp, W, B, I, O, ws, 0, 0);
}

HEPH_DEF size_t heph_dense_ws_floats(int B, int I, int O) { return heph__ws_size(heph__dense_ws64(B, I, O)); }

HEPH_DEF int heph_conv2d_geom(heph_conv_geom *g, int C, int H, int W, int Co, int k, int s, int p) {
    g->C = C; g->H = H; g->W = W; g->Co = Co; g->k = k; g->s = s; g->p = p;
    if (C <= 0 || H <= 0 || W <= 0 || Co <= 0 || k <= 0 || s <= 0 || p < 0 || p >= k ||
        H + 2 * p < k || W + 2 * p < k)
        return HEPH_E_ARG;
    g->Ho = (H + 2 * p - k) / s + 1;  /* Ho = (H + 2p - k)/s + 1 */
    g->Wo = (W + 2 * p - k) / s + 1;
    return HEPH_OK;
}

HEPH_DEF int heph_convt2d_geom(heph_conv_geom *g, int C, int H, int W, int Co, int k, int s, int p) {
    g->C = C; g->H = H; g->W = W; g->Co = Co; g->k = k; g->s = s; g->p = p;
    if (C <= 0 || H <= 0 || W <= 0 || Co <= 0 || k <= 0 || s <= 0 || p < 0 || p >= k)
        return HEPH_E_ARG;
    g->Ho = (H - 1) * s - 2 * p + k;  /* Ho = (H - 1)s - 2p + k */
    g->Wo = (W - 1) * s - 2 * p + k;
    return g->Ho > 0 && g->Wo > 0 ? HEPH_OK : HEPH_E_ARG;
}

HEPH_DEF size_t heph_conv2d_ws_floats(const heph_conv_geom *g, int B) { return heph__conv_public_ws(g, B, 0); }
HEPH_DEF size_t heph_convt2d_ws_floats(const heph_conv_geom *g, int B) { return heph__conv_public_ws(g, B, 1); }

HEPH_DEF void heph_conv2d_forward(float *out, const float *inp, const float *W, const float *b,
                                  const heph_conv_geom *g, int B, float *ws) {
    if (HEPH__REFERENCE) heph__conv2d_forward_ref(out, inp, W, b, g, B);
    else heph__conv_public_forward(out, inp, W, b, g, B, ws, 0);
}
HEPH_DEF void heph_conv2d_backward(float *dinp, float *dW, float *db, const float *dout,
                                   const float *inp, const float *W, const heph_conv_geom *g,
                                   int B, float *ws) {
    if (HEPH__REFERENCE) heph__conv2d_backward_ref(dinp, dW, db, dout, inp, W, g, B);
    else heph__conv_public_backward(dinp, dW, db, dout, inp, W, g, B, ws, 0);
}
HEPH_DEF void heph_convt2d_forward(float *out, const float *inp, const float *W, const float *b,
                                   const heph_conv_geom *g, int B, float *ws) {
    if (HEPH__REFERENCE) heph__convt2d_forward_ref(out, inp, W, b, g, B);
    else heph__conv_public_forward(out, inp, W, b, g, B, ws, 1);
}
HEPH_DEF void heph_convt2d_backward(float *dinp, float *dW, float *db, const float *dout,
                                    const float *inp, const float *W, const heph_conv_geom *g,
                                    int B, float *ws) {
    if (HEPH__REFERENCE) heph__convt2d_backward_ref(dinp, dW, db, dout, inp, W, g, B);
    else heph__conv_public_backward(dinp, dW, db, dout, inp, W, g, B, ws, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* VAE pieces                                                                                 */

HEPH_DEF void heph_reparam_forward(float *z, const float *mu, const float *logvar,
                                   const float *eps, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) z[i] = mu[i] + expf(0.5f * logvar[i]) * eps[i]; /* z = mu + sigma eps */
}

HEPH_DEF void heph_reparam_backward(float *dmu, float *dlogvar, const float *dz,
                                    const float *logvar, const float *eps, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        dmu[i] += dz[i];                                              /* dz/dmu = 1 */
        dlogvar[i] += dz[i] * eps[i] * 0.5f * expf(0.5f * logvar[i]); /* dz/dlv = eps sigma / 2 */
    }
}

/* Bernoulli loss from logits: l = max(a,0) - a x + log(1 + e^-|a|) (= -[x log s(a) + (1-x)
   log(1 - s(a))] without overflow);  dl/da = s(a) - x, s the sigmoid                         */
static double heph__bce_logits_ref(float *dlogits, const float *logits, const float *x,
                                   size_t n, float scale) {
    double sum = 0.0;
    size_t i;
    for (i = 0; i < n; i++) {
        float a = logits[i];
        sum += (double)((a > 0.0f ? a : 0.0f) - a * x[i] + log1pf(expf(-fabsf(a))));
        if (dlogits) dlogits[i] = scale * (heph__sigmoid(a) - x[i]);
    }
    return sum;
}

/* Gaussian loss through a sigmoid mean: l = (s(a) - x)^2;  dl/da = 2 (s(a) - x) s(a) (1 - s(a)) */
static double heph__sqerr_logits_ref(float *dlogits, const float *logits, const float *x,
                                     size_t n, float scale) {
    double sum = 0.0;
    size_t i;
    for (i = 0; i < n; i++) {
        float y = heph__sigmoid(logits[i]), d = y - x[i];
        sum += (double)(d * d);
        if (dlogits) dlogits[i] = scale * 2.0f * d * y * (1.0f - y);
    }
    return sum;
}

/* softmax cross-entropy over K classes, row b: l_b = log sum_k e^{a_bk} - a_{b,y_b} (the
   maximum m_b subtracted first: log sum_k e^{a_bk - m_b} + m_b);  dl_b/da_bk = p_bk - [k = y_b],
   p = softmax(a)                                                                            */
static double heph__softmax_xent_ref(float *dlogits, const float *logits, const int *labels,
                                     int B, int K, float scale) {
    double sum = 0.0;
    int b, k;
    for (b = 0; b < B; b++) {
        const float *a = logits + (size_t)b * (size_t)K;
        float m = a[0], se = 0.0f;
        for (k = 1; k < K; k++) m = a[k] > m ? a[k] : m;
        for (k = 0; k < K; k++) se += expf(a[k] - m);
        sum += (double)(logf(se) + m - a[labels[b]]);
        if (dlogits)
            for (k = 0; k < K; k++)
                dlogits[(size_t)b * (size_t)K + (size_t)k] =
                    scale * (expf(a[k] - m) / se - (k == labels[b] ? 1.0f : 0.0f));
    }
    return sum;
}

HEPH_DEF double heph_bce_logits(float *dlogits, const float *logits, const float *x, size_t n,
                                float scale) {
    return HEPH__REFERENCE ? heph__bce_logits_ref(dlogits, logits, x, n, scale)
                           : heph__loss_chunked(0, dlogits, logits, x, n, scale);
}

HEPH_DEF double heph_sqerr_logits(float *dlogits, const float *logits, const float *x,
                                  size_t n, float scale) {
    return HEPH__REFERENCE ? heph__sqerr_logits_ref(dlogits, logits, x, n, scale)
                           : heph__loss_chunked(1, dlogits, logits, x, n, scale);
}

HEPH_DEF double heph_softmax_xent(float *dlogits, const float *logits, const int *labels, int B,
                                  int K, float scale) {
    return HEPH__REFERENCE ? heph__softmax_xent_ref(dlogits, logits, labels, B, K, scale)
                           : heph__softmax_xent_fast(dlogits, logits, labels, B, K, scale);
}

HEPH_DEF int heph_argmax(const float *v, int n) {
    int i, best = 0;
    for (i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

HEPH_DEF double heph_accuracy(const float *logits, const int *labels, int B, int K) {
    int b, right = 0;
    for (b = 0; b < B; b++) right += heph_argmax(logits + (size_t)b * (size_t)K, K) == labels[b];
    return B > 0 ? (double)right / (double)B : 0.0;
}

HEPH_DEF void heph_embed_forward(float *out, const float *T, const int *labels, int B, int K, int E) {
    int b;
    for (b = 0; b < B; b++) { /* out[b] = T[y_b] */
        HEPH_ASSERT(labels[b] >= 0 && labels[b] < K);
        memcpy(out + (size_t)b * (size_t)E, T + (size_t)labels[b] * (size_t)E, (size_t)E * sizeof(float));
    }
}

HEPH_DEF void heph_embed_backward(float *dT, const float *dout, const int *labels, int B, int K, int E) {
    int b, e;
    memset(dT, 0, (size_t)K * (size_t)E * sizeof(float));
    for (b = 0; b < B; b++) { /* dT[y_b] += dout[b], b in order: the same bits on any machine */
        float *row = dT + (size_t)labels[b] * (size_t)E;
        HEPH_ASSERT(labels[b] >= 0 && labels[b] < K);
        for (e = 0; e < E; e++) row[e] += dout[(size_t)b * (size_t)E + (size_t)e];
    }
}

HEPH_DEF double heph_kl_normal(float *dmu, float *dlogvar, const float *mu, const float *logvar,
                               size_t n, float scale) {
    double sum = 0.0;
    size_t i;
    for (i = 0; i < n; i++) {
        float e = expf(logvar[i]);
        sum += (double)(-0.5f * (1.0f + logvar[i] - mu[i] * mu[i] - e)); /* -1/2 (1 + lv - mu^2 - e^lv) */
        if (dmu) dmu[i] += scale * mu[i];                                 /* d/dmu = mu */
        if (dlogvar) dlogvar[i] += scale * 0.5f * (e - 1.0f);             /* d/dlv = (e^lv - 1)/2 */
    }
    return sum;
}

HEPH_DEF void heph_adam_step(float *w, const float *g, float *m, float *v, size_t n, float lr,
                             float beta1, float beta2, float eps, uint64_t t) {
    /* bias corrections 1 - b^t, in double so that large t stays exact enough */
    double c1 = 1.0 - pow((double)beta1, (double)t), c2 = 1.0 - pow((double)beta2, (double)t);
    /* lr (m / c1) / (sqrt(v / c2) + eps) = step m / (sqrt(v) k + eps): one division and one
       square root per weight (the loop is bound by them when the state is in cache)        */
    float step = (float)((double)lr / c1), k = (float)(1.0 / sqrt(c2));
    long long i, nn = (long long)n;
    HEPH__OMP_FOR
    for (i = 0; i < nn; i++) {
        float mi = beta1 * m[i] + (1.0f - beta1) * g[i];        /* first moment  */
        float vi = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i]; /* second moment */
        m[i] = mi;
        v[i] = vi;
        w[i] -= step * mi / (sqrtf(vi) * k + eps);               /* bias-corrected step */
    }
}

/* the index of the first parameter whose Adam step t (the same arithmetic as heph_adam_step)
   would leave a weight or moment that is not finite, or n when every one stays finite; reads
   only, in chunks that threads share, so a refused step changes nothing */
static size_t heph__adam_first_bad(const float *w, const float *g, const float *m, const float *v,
                                   size_t n, float lr, float beta1, float beta2, float eps, uint64_t t) {
    double c1 = 1.0 - pow((double)beta1, (double)t), c2 = 1.0 - pow((double)beta2, (double)t);
    float step = (float)((double)lr / c1), k = (float)(1.0 / sqrt(c2));
    size_t nc = (n + 65535) / 65536, c, i;
    unsigned char flags[4096];
    long long ci;
    if (nc > sizeof flags) nc = sizeof flags; /* the last chunk takes the rest */
    HEPH__OMP_FOR_IF(n > 131072)
    for (ci = 0; ci < (long long)nc; ci++) {
        size_t a = (size_t)ci * 65536, e = ci + 1 == (long long)nc ? n : a + 65536, j;
        int f = 0;
        for (j = a; j < e; j++) {
            float mi = beta1 * m[j] + (1.0f - beta1) * g[j];
            float vi = beta2 * v[j] + (1.0f - beta2) * g[j] * g[j];
            float wi = w[j] - step * mi / (sqrtf(vi) * k + eps);
            f |= !(fabsf(mi) <= FLT_MAX) | !(vi <= FLT_MAX) | !(fabsf(wi) <= FLT_MAX); /* inf or NaN */
        }
        flags[ci] = (unsigned char)f;
    }
    for (c = 0; c < nc && !flags[c]; c++) {}
    if (c == nc) return n;
    for (i = c * 65536; i < n; i++) {
        float mi = beta1 * m[i] + (1.0f - beta1) * g[i];
        float vi = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        float wi = w[i] - step * mi / (sqrtf(vi) * k + eps);
        if (!(fabsf(mi) <= FLT_MAX) || !(vi <= FLT_MAX) || !(fabsf(wi) <= FLT_MAX)) break;
    }
    return i;
}

/* ------------------------------------------------------------------------------------------ */
/* beta-TCVAE: index-code MI, total correlation and dimension-wise KL from a minibatch        */

HEPH_DEF float heph_tc_log_weight(int estimator, int i, int k, int B, uint64_t N) {
    double n = (double)N, M = (double)(B - 1);
    if (estimator != HEPH_TC_MSS || B < 2 || n <= M) return (float)-log(n * (double)B); /* MWS: 1/(N B) */
    if (k == i) return (float)-log(n);                              /* own component: 1/N       */
    if (k == (i + 1) % B) return (float)log((n - M) / (n * M));     /* stratum: (N - M)/(N M)   */
    return (float)-log(M);                                          /* the other M - 1: 1/M     */
}

/* log N(z; mu, e^lv) = -1/2 (log 2 pi + lv + (z - mu)^2 e^-lv) */
static double heph__log_normal(float z, float mu, float lv) {
    double d = (double)z - (double)mu;
    return -0.5 * (1.8378770664093453 + (double)lv + d * d * exp(-(double)lv));
}

HEPH_DEF void heph_tc_terms(heph_tc_batch *t) {
    const float *z = t->z, *mu = t->mu, *logvar = t->logvar;
    float *dz = t->dz, *dmu = t->dmu, *dlogvar = t->dlogvar, *scratch = t->scratch;
    int ldz = t->ldz, ldh = t->ldh, B = t->B, D = t->D, estimator = t->estimator;
    uint64_t N = t->N;
    double a = (double)t->alpha, b = (double)t->beta, g = (double)t->gamma;
    /* per-sample gradient weights of the batch mean of a (A - Q) + b (Q - P) + g (P - R),
       with A = log q(z|x), Q = log q(z), P = log prod_j q(z_j), R = log p(z)               */
    double cA = a / B, cQ = (b - a) / B, cP = (g - b) / B;
    double cR = -g / B, sA = 0.0, sQ = 0.0, sP = 0.0, sR = 0.0;
    float *S = scratch, *pi = scratch + B, *Mj = scratch + 2 * B;
    int i, k, j;
    for (i = 0; i < B; i++) {
        const float *zi = z + (size_t)i * (size_t)ldz;
        double Q, P = 0.0, A = 0.0, R = 0.0, mx = -HUGE_VAL, se = 0.0;
        /* S_ik = log w_ik + sum_j log q(z_ij | x_k);  Q_i = logsumexp_k S_ik */
        for (k = 0; k < B; k++) {
            const float *mk = mu + (size_t)k * (size_t)ldh, *lk = logvar + (size_t)k * (size_t)ldh;
            double sk = (double)heph_tc_log_weight(estimator, i, k, B, N);
            for (j = 0; j < D; j++) sk += heph__log_normal(zi[j], mk[j], lk[j]);
            S[k] = (float)sk;
            if (sk > mx) mx = sk;
            if (k == i) A = sk - (double)heph_tc_log_weight(estimator, i, i, B, N);
        }
        for (k = 0; k < B; k++) se += exp((double)S[k] - mx);
        Q = mx + log(se);
        for (k = 0; k < B; k++) pi[k] = (float)exp((double)S[k] - Q); /* softmax_k: dQ/dS_ik */
        /* P_i = sum_j logsumexp_k (log w_ik + log q(z_ij | x_k)); gradients per (k, j) */
        for (j = 0; j < D; j++) {
            double mxj = -HUGE_VAL, sej = 0.0, lse;
            for (k = 0; k < B; k++) {
                double v = (double)heph_tc_log_weight(estimator, i, k, B, N) +
                           heph__log_normal(zi[j], mu[(size_t)k * (size_t)ldh + (size_t)j],
                                            logvar[(size_t)k * (size_t)ldh + (size_t)j]);
                Mj[k] = (float)v;
                if (v > mxj) mxj = v;
            }
            for (k = 0; k < B; k++) sej += exp((double)Mj[k] - mxj);
            lse = mxj + log(sej);
            P += lse;
            R += -0.5 * (1.8378770664093453 + (double)zi[j] * (double)zi[j]); /* log N(z; 0, 1) */
            if (!dz) continue;
            for (k = 0; k < B; k++) {
                /* G = dL/d log q(z_ij|x_k) = cQ pi_ik + cP softmax_k(...)_kj + [k = i] cA */
                double G = cQ * (double)pi[k] + cP * exp((double)Mj[k] - lse) + (k == i ? cA : 0.0);
                size_t hk = (size_t)k * (size_t)ldh + (size_t)j;
                double diff = (double)zi[j] - (double)mu[hk], iv = exp(-(double)logvar[hk]);
                dz[(size_t)i * (size_t)ldz + (size_t)j] += (float)(-G * diff * iv);   /* d/dz  = -(z-mu)/s^2 */
                dmu[hk] += (float)(G * diff * iv);                                    /* d/dmu = (z-mu)/s^2  */
                dlogvar[hk] += (float)(G * 0.5 * (diff * diff * iv - 1.0));           /* d/dlv = ((z-mu)^2/s^2 - 1)/2 */
            }
            dz[(size_t)i * (size_t)ldz + (size_t)j] += (float)(cR * -(double)zi[j]);  /* d log p/dz = -z */
        }
        sA += A; sQ += Q; sP += P; sR += R;
    }
    t->mi = (sA - sQ) / B;   /* E[log q(z|x) - log q(z)]        */
    t->tc = (sQ - sP) / B;   /* E[log q(z) - sum_j log q(z_j)]  */
    t->dwkl = (sP - sR) / B; /* E[sum_j log q(z_j) - log p(z)]  */
}

/* ------------------------------------------------------------------------------------------ */
/* architecture specs                                                                         */

#define HEPH__MAX_DIM 1000000   /* largest layer width / picture side accepted by the parser */

/* parse an unsigned decimal at s (at least one digit); *end after it; 0 on overflow/missing */
static int heph__parse_uint(const char *s, const char **end, long *out) {
    long v = 0;
    if (*s < '0' || *s > '9') return 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        if (v > HEPH__MAX_DIM) return 0;
        s++;
    }
    *end = s;
    *out = v;
    return 1;
}

/* convNkKsSpP or convtNkKsSpP (s and p optional: 1 and 0) into L (its input shape set) */
static int heph__spec_conv(const char *t, size_t len, int tok, int after_flat, heph_layer *L, char *err,
                           size_t errlen) {
    int tr = t[4] == 't', rcg, c = L->in_c, h = L->in_h, w = L->in_w;
    const char *q = t + 4 + tr, *ne;
    long co = 0, k = 0, st = 1, pd = 0;
    heph_conv_geom g;
    uint64_t nw64;
    int ok = heph__parse_uint(q, &ne, &co) && co != 0 && *ne == 'k' && heph__parse_uint(ne + 1, &ne, &k) &&
             k != 0 && k <= 64;
    if (ok && *ne == 's') ok = heph__parse_uint(ne + 1, &ne, &st) && st != 0 && st <= 64;
    if (ok && *ne == 'p') ok = heph__parse_uint(ne + 1, &ne, &pd) && pd <= 64;
    if (!ok || (size_t)(ne - t) != len)
        return heph__errf(err, errlen, HEPH_E_SPEC,
                          "token %d: a conv needs channels and kernel, e.g. conv32k4s2p1 or convt32k4s2p1 "
                          "(kernel and stride 1..64, padding 0..64)", tok);
    if (h == 1 && w == 1 && after_flat)
        return heph__errf(err, errlen, HEPH_E_SPEC,
                          "token %d \"%.*s\": a conv needs an image input; add reshapeCxHxW",
                          tok, (int)len, t);
    rcg = tr ? heph_convt2d_geom(&g, c, h, w, (int)co, (int)k, (int)st, (int)pd)
             : heph_conv2d_geom(&g, c, h, w, (int)co, (int)k, (int)st, (int)pd);
    if (rcg != HEPH_OK || (size_t)g.Co * (size_t)g.Ho * (size_t)g.Wo > (size_t)INT_MAX)
        return heph__errf(err, errlen, HEPH_E_SPEC,
                          "token %d \"%.*s\": kernel %ld, stride %ld, padding %ld do not fit "
                          "a %dx%dx%d input (the output must be at least 1x1, and padding < kernel: "
                          "a wider padding only adds output pixels that see nothing but zeros; "
                          "PyTorch allows it, this library does not)", tok, (int)len, t, k,
                          st, pd, c, h, w);
    L->kind = tr ? HEPH_CONVT : HEPH_CONV;
    L->k = (int)k; L->s = (int)st; L->p = (int)pd;
    L->out_c = g.Co; L->out_h = g.Ho; L->out_w = g.Wo;
    nw64 = (uint64_t)c * (uint64_t)co * (uint64_t)k * (uint64_t)k; /* 64 bits: no wrap */
    if (nw64 > ((uint64_t)1 << 31))
        return heph__errf(err, errlen, HEPH_E_SPEC, "token %d \"%.*s\": too many weights", tok, (int)len, t);
    L->b_off = (size_t)nw64;
    L->n_params = (size_t)nw64 + (size_t)co;
    return HEPH_OK;
}

/* denseN, reshapeCxHxW, lreluA: the tokens with numbers other than convolutions */
static int heph__spec_numbered(const char *t, size_t len, int tok, heph_layer *L, char *err, size_t errlen) {
    size_t cur = (size_t)L->in_c * (size_t)L->in_h * (size_t)L->in_w;
    const char *ne;
    long num = 0, rc2 = 0, rh = 0, rw = 0;
    if (strncmp(t, "dense", 5) == 0) {
        if (!heph__parse_uint(t + 5, &ne, &num) || (size_t)(ne - t) != len || num == 0)
            return heph__errf(err, errlen, HEPH_E_SPEC, "token %d \"%.*s\": dense needs a width 1..%d, e.g. dense400",
                              tok, (int)len, t, HEPH__MAX_DIM);
        L->kind = HEPH_DENSE;
        L->out_c = (int)num; L->out_h = 1; L->out_w = 1;
        if (!heph__mul_ok(cur, (size_t)num, &L->n_params) || L->n_params > ((size_t)1 << 31))
            return heph__errf(err, errlen, HEPH_E_SPEC, "token %d \"%.*s\": %zu x %ld weights is too many", tok,
                              (int)len, t, cur, num);
        L->b_off = L->n_params;     /* relative: weights first, then the bias */
        L->n_params += (size_t)num;
        return HEPH_OK;
    }
    if (strncmp(t, "reshape", 7) == 0) {
        if (!heph__parse_uint(t + 7, &ne, &rc2) || *ne != 'x' || !heph__parse_uint(ne + 1, &ne, &rh) ||
            *ne != 'x' || !heph__parse_uint(ne + 1, &ne, &rw) || (size_t)(ne - t) != len ||
            rc2 == 0 || rh == 0 || rw == 0)
            return heph__errf(err, errlen, HEPH_E_SPEC, "token %d \"%.*s\": reshape needs CxHxW, e.g. reshape32x4x4",
                              tok, (int)len, t);
        if ((size_t)rc2 * (size_t)rh * (size_t)rw != cur)
            return heph__errf(err, errlen, HEPH_E_SPEC, "token %d \"%.*s\": %ldx%ldx%ld = %zu values, the input has %zu",
                              tok, (int)len, t, rc2, rh, rw, (size_t)rc2 * (size_t)rh * (size_t)rw, cur);
        L->kind = HEPH_RESHAPE;
        L->out_c = (int)rc2; L->out_h = (int)rh; L->out_w = (int)rw;
        return HEPH_OK;
    }
    L->kind = HEPH_LRELU; /* "lrelu" and its slope */
    L->slope = 0.01f;
    if (len > 5) {
        char buf[32], *pe;
        double a;
        if (len - 5 >= sizeof buf) return heph__errf(err, errlen, HEPH_E_SPEC, "token %d: slope too long", tok);
        memcpy(buf, t + 5, len - 5);
        buf[len - 5] = '\0';
        a = strtod(buf, &pe);
        if (*pe != '\0' || !((float)a > 0.0f && (float)a < 1.0f)) /* the float kept: 1e-50 would be 0 */
            return heph__errf(err, errlen, HEPH_E_SPEC, "token %d \"%.*s\": leaky ReLU slope must be in (0, 1), "
                              "e.g. lrelu0.2", tok, (int)len, t);
        L->slope = (float)a;
    }
    return HEPH_OK;
}

/* one token (t, len) into L, whose input shape is set; after_flat: the layer before flattened */
static int heph__spec_token(const char *t, size_t len, int tok, int after_flat, heph_layer *L, char *err,
                            size_t errlen) {
    if ((len > 5 && strncmp(t, "dense", 5) == 0) || (len > 7 && strncmp(t, "reshape", 7) == 0) ||
        (len >= 5 && strncmp(t, "lrelu", 5) == 0))
        return heph__spec_numbered(t, len, tok, L, err, errlen);
    if (len > 4 && strncmp(t, "conv", 4) == 0) return heph__spec_conv(t, len, tok, after_flat, L, err, errlen);
    if (len == 7 && strncmp(t, "flatten", 7) == 0) {
        L->kind = HEPH_FLATTEN;
        L->out_c = L->in_c * L->in_h * L->in_w; L->out_h = 1; L->out_w = 1;
    } else if (len == 2 && strncmp(t, "bn", 2) == 0) {
        L->kind = HEPH_BN; /* gamma, beta, then the running mean and variance (never trained) */
        L->b_off = (size_t)L->in_c;
        L->n_params = 4 * (size_t)L->in_c;
    } else if (len == 8 && strncmp(t, "maxpool2", 8) == 0) {
        if (after_flat || L->in_h < 2 || L->in_w < 2)
            return heph__errf(err, errlen, HEPH_E_SPEC, "token %d \"maxpool2\" needs pictures of at least 2x2, not %dx%dx%d%s",
                              tok, L->in_c, L->in_h, L->in_w, after_flat ? " (after dense/flatten: reshape first)" : "");
        L->kind = HEPH_MAXPOOL;
        L->out_h = L->in_h / 2; L->out_w = L->in_w / 2;
    } else if (len == 4 && strncmp(t, "relu", 4) == 0) L->kind = HEPH_RELU;
    else if (len == 7 && strncmp(t, "sigmoid", 7) == 0) L->kind = HEPH_SIGMOID;
    else if (len == 4 && strncmp(t, "tanh", 4) == 0) L->kind = HEPH_TANH;
    else
        return heph__errf(err, errlen, HEPH_E_SPEC,
                          "token %d \"%.*s\" is not a layer (known: denseN, convNkKsSpP, "
                          "convtNkKsSpP, maxpool2, bn, flatten, reshapeCxHxW, relu, lrelu[A], sigmoid, tanh)",
                          tok, (int)len, t);
    return HEPH_OK;
}

HEPH_DEF int heph_spec_parse(const char *spec, int c, int h, int w, heph_layer *layers,
                             int max_layers, int *n_layers, char *err, size_t errlen) {
    const char *s = spec;
    int n = 0, tok = 0, rc;
    size_t cur;
    *n_layers = 0;
    if (!spec) return heph__errf(err, errlen, HEPH_E_SPEC, "spec is NULL");
    if (c <= 0 || h <= 0 || w <= 0 || c > HEPH__MAX_DIM || h > HEPH__MAX_DIM || w > HEPH__MAX_DIM)
        return heph__errf(err, errlen, HEPH_E_SPEC, "input shape %dx%dx%d is invalid", c, h, w);
    if (!heph__mul_ok((size_t)c, (size_t)h, &cur) || !heph__mul_ok(cur, (size_t)w, &cur) ||
        cur > (size_t)INT_MAX)
        return heph__errf(err, errlen, HEPH_E_SPEC, "input shape %dx%dx%d is too large", c, h, w);
    while (*s == ' ') s++;
    if (*s == '\0') return HEPH_OK; /* empty spec: identity */
    for (;;) { /* one comma-separated token per layer, each applied to the shape so far */
        const char *t = s, *e = s;
        size_t len;
        heph_layer L;
        tok++;
        while (*e && *e != ',') e++;
        len = (size_t)(e - t);
        while (len && t[len - 1] == ' ') len--;
        memset(&L, 0, sizeof L);
        L.in_c = L.out_c = c; L.in_h = L.out_h = h; L.in_w = L.out_w = w;
        if (len == 0) return heph__errf(err, errlen, HEPH_E_SPEC, "token %d is empty (\"%s\")", tok, spec);
        if (n >= max_layers) return heph__errf(err, errlen, HEPH_E_SPEC, "token %d: more than %d layers", tok, max_layers);
        rc = heph__spec_token(t, len, tok, n > 0 && (layers[n - 1].kind == HEPH_DENSE || layers[n - 1].kind == HEPH_FLATTEN),
                              &L, err, errlen);
        if (rc != HEPH_OK) return rc;
        layers[n++] = L;
        c = L.out_c; h = L.out_h; w = L.out_w;
        if (*e == '\0') break;
        s = e + 1;
        while (*s == ' ') s++;
    }
    *n_layers = n;
    return HEPH_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* networks: a list of layers over a slice of a caller's parameter buffer                     */

static size_t heph__layer_out_n(const heph_layer *L) {
    return (size_t)L->out_c * (size_t)L->out_h * (size_t)L->out_w;
}
static size_t heph__layer_in_n(const heph_layer *L) {
    return (size_t)L->in_c * (size_t)L->in_h * (size_t)L->in_w;
}

static void heph__layer_geom(const heph_layer *L, heph_conv_geom *g) {
    g->C = L->in_c; g->H = L->in_h; g->W = L->in_w;
    g->Co = L->out_c; g->Ho = L->out_h; g->Wo = L->out_w;
    g->k = L->k; g->s = L->s; g->p = L->p;
}

/* One layer on the reference loops: out = layer(in) for B pictures, into act[l]. */
static const float *heph__layer_forward_ref(heph_net *net, int l, const float *in, int B) {
    const heph_layer *L = &net->layers[l];
    const float *W = net->params + L->w_off, *bias = net->params + L->b_off;
    float *out = net->act[l];
    size_t n = heph__layer_out_n(L) * (size_t)B;
    heph_conv_geom g;
    heph__layer_geom(L, &g);
    switch (L->kind) {
    case HEPH_DENSE: heph__dense_forward_ref(out, in, W, bias, B, (int)heph__layer_in_n(L), L->out_c); break;
    case HEPH_CONV: heph__conv2d_forward_ref(out, in, W, bias, &g, B); break;
    case HEPH_CONVT: heph__convt2d_forward_ref(out, in, W, bias, &g, B); break;
    case HEPH_FLATTEN:
    case HEPH_RESHAPE: memcpy(out, in, n * sizeof(float)); break; /* same values, new shape */
    case HEPH_MAXPOOL: heph_maxpool2_forward(out, NULL, in, B, L->in_c, L->in_h, L->in_w); break;
    case HEPH_BN: /* gamma at w_off, beta at b_off, then the running mean and variance */
        heph_batchnorm_forward(out, net->params + L->b_off + L->in_c, net->params + L->b_off + 2 * L->in_c, in, W, bias, B,
                               L->in_c, L->in_h * L->in_w, !net->eval);
        break;
    case HEPH_RELU: heph_relu_forward(out, in, n); break;
    case HEPH_LRELU: heph_lrelu_forward(out, in, n, L->slope); break;
    case HEPH_SIGMOID: heph_sigmoid_forward(out, in, n); break;
    case HEPH_TANH: heph_tanh_forward(out, in, n); break;
    default: HEPH_ASSERT(0);
    }
    return out;
}

/* One layer backward on the reference loops: g is the gradient wrt the layer's output; the
   gradient wrt its input goes to dinp (layer 0; NULL: not wanted) or to the free one of the
   two ping-pong buffers, and is returned. The layer's parameter gradients are written: every
   parameter has one use, so they are cleared and then added to. */
static const float *heph__layer_backward_ref(heph_net *net, int l, const float *g, float *dinp, int B) {
    const heph_layer *L = &net->layers[l];
    const float *in = l > 0 ? net->act[l - 1] : net->input, *out = net->act[l];
    const float *W = net->params + L->w_off;
    float *dW = net->grads + L->w_off, *db = net->grads + L->b_off;
    float *dst = l == 0 ? dinp : (g == net->grad_a ? net->grad_b : net->grad_a);
    size_t n = heph__layer_out_n(L) * (size_t)B;
    heph_conv_geom cg;
    heph__layer_geom(L, &cg);
    if (L->n_params) memset(dW, 0, L->n_params * sizeof(float));
    switch (L->kind) {
    case HEPH_DENSE: heph__dense_backward_ref(dst, dW, db, g, in, W, B, (int)heph__layer_in_n(L), L->out_c); break;
    case HEPH_CONV: heph__conv2d_backward_ref(dst, dW, db, g, in, W, &cg, B); break;
    case HEPH_CONVT: heph__convt2d_backward_ref(dst, dW, db, g, in, W, &cg, B); break;
    case HEPH_FLATTEN:
    case HEPH_RESHAPE: if (dst) memcpy(dst, g, n * sizeof(float)); break;
    case HEPH_MAXPOOL: if (dst) heph_maxpool2_backward(dst, g, in, B, L->in_c, L->in_h, L->in_w); break;
    case HEPH_BN: /* the running statistics' gradients stay 0 (cleared above): Adam leaves them */
        heph_batchnorm_backward(dst, dW, db, g, in, W, net->params + L->b_off + L->in_c, net->params + L->b_off + 2 * L->in_c,
                                B, L->in_c, L->in_h * L->in_w, !net->eval);
        break;
    case HEPH_RELU: if (dst) heph_relu_backward(dst, g, out, n); break;
    case HEPH_LRELU: if (dst) heph_lrelu_backward(dst, g, out, n, L->slope); break;
    case HEPH_SIGMOID: if (dst) heph_sigmoid_backward(dst, g, out, n); break;
    case HEPH_TANH: if (dst) heph_tanh_backward(dst, g, out, n); break;
    default: HEPH_ASSERT(0);
    }
    return dst;
}

/* the dispatch point of a network's layers: the reference loops above, or the planned fast
   kernels of part D (reordered layouts, ReLUs fused into the layer before) */
static const float *heph__layer_forward_fast(heph_net *net, int l, const float *in, int B);
static const float *heph__layer_backward_fast(heph_net *net, int l, const float *g, float *dinp, int B);
static const float *heph__layer_forward(heph_net *net, int l, const float *in, int B) {
    return net->plan ? heph__layer_forward_fast(net, l, in, B) : heph__layer_forward_ref(net, l, in, B);
}
static const float *heph__layer_backward(heph_net *net, int l, const float *g, float *dinp, int B) {
    return net->plan ? heph__layer_backward_fast(net, l, g, dinp, B) : heph__layer_backward_ref(net, l, g, dinp, B);
}

/* forward B inputs x (B, in_n); returns the output (B, out_n), a view into the net */
static const float *heph__net_forward(heph_net *net, const float *x, int B) {
    const float *h = x;
    int l;
    net->input = x;
    for (l = 0; l < net->n_layers; l++) h = heph__layer_forward(net, l, h, B); /* each layer: forward */
    return h;
}

/* backward from dout (B, out_n), last layer first: writes the parameter gradients into the
   net's gradient view and the gradient wrt the input into dinp (B, in_n) when not NULL */
static void heph__net_backward(heph_net *net, const float *dout, int B, float *dinp) {
    const float *g = dout;
    int l;
    for (l = net->n_layers - 1; l >= 0 && g; l--) g = heph__layer_backward(net, l, g, l == 0 ? dinp : NULL, B);
}

/* the fast path's plan (part D): layouts, fused ReLUs and the buffers they need */
static int heph__plan_make(heph_net *net, uint64_t *acts, uint64_t *scratch);
static void heph__plan_place(heph_net *net, float *p);
static void heph__plan_bind(heph_net *net, float *scratch);

/* parse spec for (c, h, w) pictures; parameter offsets from 0; activation buffers allocated
   (the scratch is bound later: heph__net_bind_scratch). The fast path makes its plan here,
   once; the reference path gives every layer its own (C, H, W) buffer. */
static int heph__net_make(heph_net *net, const char *spec, int c, int h, int w, int max_batch,
                          char *err, size_t errlen) {
    int l, rc;
    uint64_t n64 = 0, acts = 0, scratch = 0;
    size_t maxn;
    float *p;
    memset(net, 0, sizeof *net);
    rc = heph_spec_parse(spec, c, h, w, net->layers, HEPH_MAX_LAYERS, &net->n_layers, err, errlen);
    if (rc != HEPH_OK) return rc;
    net->in_c = c; net->in_h = h; net->in_w = w;
    net->in_n = c * h * w;
    net->max_batch = max_batch;
    maxn = (size_t)net->in_n;
    for (l = 0; l < net->n_layers; l++) {
        heph_layer *L = &net->layers[l];
        L->w_off = (size_t)n64;
        L->b_off += (size_t)n64;
        n64 += L->n_params; /* 64 layers of up to 2^31 parameters: more than a 32-bit size_t */
        if (heph__layer_out_n(L) > maxn) maxn = heph__layer_out_n(L);
        acts += heph__layer_out_n(L);
    }
    net->n_params = (size_t)n64;
    net->max_n = maxn;
    net->out_n = net->n_layers ? (int)heph__layer_out_n(&net->layers[net->n_layers - 1]) : net->in_n;
    scratch = 2 * (uint64_t)maxn * (uint64_t)max_batch; /* the two ping-pong gradient buffers */
    if (!HEPH__REFERENCE) {
        rc = heph__plan_make(net, &acts, &scratch);
        if (rc != HEPH_OK) return heph__errf(err, errlen, rc, "out of memory for a network plan");
    }
    /* every size in 64 bits first: with a 32-bit size_t the products could wrap to a small
       block that the layers then overrun */
    acts *= (uint64_t)max_batch;
    if (!heph__floats_fit(4 * n64) || !heph__floats_fit(acts + 1) || !heph__floats_fit(scratch)) {
        HEPH_FREE(net->plan); net->plan = NULL;
        return heph__errf(err, errlen, HEPH_E_SIZE,
                          "a network of %llu parameters, %llu activation and %llu scratch floats "
                          "(batch %d) is more than this platform can address (%llu bytes)",
                          (unsigned long long)n64, (unsigned long long)acts,
                          (unsigned long long)scratch, max_batch, (unsigned long long)HEPH__SIZE_LIMIT);
    }
    net->scratch_n = (size_t)scratch;
    net->mem = (float *)heph__calloc((size_t)acts + 1, sizeof(float));
    net->act = (float **)heph__calloc((size_t)net->n_layers + 1, sizeof(float *));
    if (!net->mem || !net->act) {
        HEPH_FREE(net->mem); HEPH_FREE(net->act); HEPH_FREE(net->plan);
        net->mem = NULL; net->act = NULL; net->plan = NULL;
        return heph__errf(err, errlen, HEPH_E_NOMEM, "out of memory for a network of %llu floats",
                          (unsigned long long)acts);
    }
    if (net->plan) { heph__plan_place(net, net->mem); return HEPH_OK; }
    for (p = net->mem, l = 0; l < net->n_layers; l++) {
        net->act[l] = p;
        p += heph__layer_out_n(&net->layers[l]) * (size_t)max_batch;
    }
    return HEPH_OK;
}

/* point the net's gradient buffers (and the plan's workspace) into scratch (scratch_n floats) */
static void heph__net_bind_scratch(heph_net *net, float *scratch) {
    size_t m = net->max_n * (size_t)net->max_batch;
    net->grad_a = scratch;
    net->grad_b = scratch + m;
    if (net->plan) heph__plan_bind(net, scratch + 2 * m);
}

HEPH_DEF int heph_net_init(heph_net *net, const char *spec, int c, int h, int w, int max_batch,
                           char *err, size_t errlen) {
    int rc;
    if (c <= 0 || h <= 0 || w <= 0 || max_batch <= 0 || max_batch > 65536 || (uint64_t)c * (uint64_t)h * (uint64_t)w > 0x7fffffffu) {
        memset(net, 0, sizeof *net);
        return heph__errf(err, errlen, HEPH_E_ARG, "network input %dx%dx%d, batch %d: out of range",
                          c, h, w, max_batch);
    }
    rc = heph__net_make(net, spec, c, h, w, max_batch, err, errlen);
    if (rc != HEPH_OK) return rc;
    net->scratch_own = (float *)heph__calloc(net->scratch_n + 1, sizeof(float));
    if (!net->scratch_own) {
        heph_net_free(net);
        return heph__errf(err, errlen, HEPH_E_NOMEM, "out of memory for %zu floats of network scratch",
                          net->scratch_n);
    }
    heph__net_bind_scratch(net, net->scratch_own);
    return HEPH_OK;
}

HEPH_DEF void heph_net_bind(heph_net *net, float *params, float *grads) {
    net->params = params;
    net->grads = grads;
}

/* every parameter like PyTorch's Linear/Conv2d/ConvTranspose2d defaults:
   W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
HEPH_DEF void heph_net_init_params(heph_net *net, heph_rng *rng) {
    int l;
    for (l = 0; l < net->n_layers; l++) {
        heph_layer *L = &net->layers[l];
        size_t i;
        float bound;
        if (L->n_params == 0) continue;
        if (L->kind == HEPH_BN) { /* gamma 1, beta 0, running mean 0, running variance 1 (PyTorch) */
            for (i = 0; i < (size_t)L->in_c; i++) {
                net->params[L->w_off + i] = 1.0f;
                net->params[L->b_off + i] = 0.0f;
                net->params[L->b_off + (size_t)L->in_c + i] = 0.0f;
                net->params[L->b_off + 2 * (size_t)L->in_c + i] = 1.0f;
            }
            continue;
        }
        if (L->kind == HEPH_DENSE) bound = 1.0f / sqrtf((float)heph__layer_in_n(L));
        else if (L->kind == HEPH_CONV) bound = 1.0f / sqrtf((float)(L->in_c * L->k * L->k));
        else bound = 1.0f / sqrtf((float)(L->out_c * L->k * L->k)); /* PyTorch: fan_in = weight.size(1) k k */
        for (i = 0; i < L->n_params; i++)
            net->params[L->w_off + i] = (2.0f * heph_rng_uniform(rng) - 1.0f) * bound;
    }
}

HEPH_DEF void heph_net_set_train(heph_net *net, int train) { net->eval = !train; }

HEPH_DEF const float *heph_net_forward(heph_net *net, const float *x, int B) {
    HEPH_ASSERT(B > 0 && B <= net->max_batch && net->params);
    return heph__net_forward(net, x, B);
}

HEPH_DEF void heph_net_backward(heph_net *net, const float *dout, int B, float *dinp) {
    HEPH_ASSERT(B > 0 && B <= net->max_batch && net->grads);
    heph__net_backward(net, dout, B, dinp);
}

HEPH_DEF void heph_net_free(heph_net *net) {
    HEPH_FREE(net->mem);
    HEPH_FREE(net->act);
    HEPH_FREE(net->plan);
    HEPH_FREE(net->scratch_own);
    if (net->params_own) net->params = net->grads = NULL; /* the views pointed into it */
    HEPH_FREE(net->params_own);
    net->mem = NULL; net->act = NULL; net->plan = NULL; net->scratch_own = NULL;
    net->params_own = NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* VAE: configuration and construction                                                        */

HEPH_DEF void heph_vae_config_default(heph_vae_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->in_c = 1; cfg->in_h = 28; cfg->in_w = 28;
    cfg->z_dim = 20;
    cfg->max_batch = 128;
    cfg->obj.kind = HEPH_OBJ_BETA;
    cfg->obj.recon = HEPH_RECON_BERNOULLI;
    cfg->obj.beta = 1.0f;
    cfg->obj.gamma = cfg->obj.gamma_end = 1.0f;
    cfg->obj.alpha = 1.0f;
    cfg->obj.estimator = HEPH_TC_MSS;
    cfg->lr = 1e-3f; cfg->beta1 = 0.9f; cfg->beta2 = 0.999f; cfg->eps = 1e-8f;
    cfg->wrong_labels = 0.1f; /* used only when n_classes > 0 */
}

HEPH_DEF int heph_vae_config_preset(heph_vae_config *cfg, const char *name) {
    heph_vae_config_default(cfg);
    if (strcmp(name, "mlp-mnist") == 0) {            /* 784-400-20 (Kingma & Welling; pytorch/examples) */
        strcpy(cfg->enc_spec, "dense400,relu");
        strcpy(cfg->dec_spec, "dense400,relu,dense784");
        return HEPH_OK;
    }
    if (strcmp(name, "mlp-dsprites") == 0) {         /* 4096-1024-256-64-10 (the seed's beta-VAE) */
        cfg->in_h = cfg->in_w = 64;
        cfg->z_dim = 10;
        strcpy(cfg->enc_spec, "dense1024,relu,dense256,relu,dense64,relu");
        strcpy(cfg->dec_spec, "dense64,relu,dense256,relu,dense1024,relu,dense4096");
        return HEPH_OK;
    }
    if (strcmp(name, "cnn-dsprites") == 0 || strcmp(name, "cnn-dsprites-tc") == 0) {
        /* (1,64,64) -> (32,32,32) -> (32,16,16) -> (32,8,8) -> (32,4,4) -> 512 -> 256 [-> 64] -> 10 */
        int tc = name[12] == '-';
        cfg->in_h = cfg->in_w = 64;
        cfg->z_dim = 10;
        strcpy(cfg->enc_spec, "conv32k4s2p1,relu,conv32k4s2p1,relu,conv32k4s2p1,relu,"
                              "conv32k4s2p1,relu,flatten,dense256,relu");
        if (!tc) strcat(cfg->enc_spec, ",dense64,relu");
        strcpy(cfg->dec_spec, tc ? "dense256,relu" : "dense64,relu,dense256,relu");
        strcat(cfg->dec_spec, ",dense512,relu,reshape32x4x4,convt32k4s2p1,relu,convt32k4s2p1,relu,"
                              "convt32k4s2p1,relu,convt1k4s2p1");
        return HEPH_OK;
    }
    if (strcmp(name, "cvae-mnist") == 0) {
        /* the conditional VAE on 1x28x28 with 10 labels (SEED-MODELS.md 3B: latent 10, lambda
           100): (1,28,28) -> (8,14,14) -> (16,7,7) -> (32,4,4) -> 512 -> 20; the decoder mirrors
           it from z + a 10-wide label embedding. lambda needs a classifier (heph_vae_set_classifier;
           the README's runs use the 99.5 % BatchNorm CNN of hephaestus classifier). */
        cfg->z_dim = 10;
        cfg->n_classes = 10; cfg->label_dim = 10; cfg->label_weight = 100.0f;
        strcpy(cfg->enc_spec, "conv8k4s2p1,lrelu0.2,conv16k4s2p1,lrelu0.2,conv32k3s2p1,lrelu0.2,flatten");
        strcpy(cfg->dec_spec, "dense512,lrelu0.2,reshape32x4x4,convt16k3s2p1,lrelu0.2,convt8k4s2p1,lrelu0.2,"
                              "convt1k4s2p1");
        return HEPH_OK;
    }
    if (strcmp(name, "cnn-shapes3d") == 0) {
        /* (3,64,64) -> (32,32,32) -> (64,16,16) -> (128,8,8) -> (256,4,4) -> 4096 -> 256 -> 12 */
        cfg->in_c = 3;
        cfg->in_h = cfg->in_w = 64;
        cfg->z_dim = 12;
        strcpy(cfg->enc_spec, "conv32k4s2p1,relu,conv64k4s2p1,relu,conv128k4s2p1,relu,"
                              "conv256k4s2p1,relu,flatten,dense256,relu");
        strcpy(cfg->dec_spec, "dense256,relu,dense4096,relu,reshape256x4x4,convt128k4s2p1,relu,"
                              "convt64k4s2p1,relu,convt32k4s2p1,relu,convt3k4s2p1");
        return HEPH_OK;
    }
    return HEPH_E_ARG;
}

/* the numeric settings of cfg inside their ranges (HEPH_LR_MAX, ...); NaN fails every test */
/* Adam's settings inside their ranges (any model's), or HEPH_E_ARG naming the first that is not */
static int heph__adam_cfg_ok(float lr, float beta1, float beta2, float eps, char *err) {
    const char *adam = NULL;
    float a = 0.0f;
    if (!(lr > 0.0f && lr <= HEPH_LR_MAX))
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_ARG, "learning rate %g is out of range (0, %g]",
                          (double)lr, (double)HEPH_LR_MAX);
    if (!(beta1 >= 0.0f && beta1 < 1.0f)) { adam = "beta1"; a = beta1; }
    else if (!(beta2 >= 0.0f && beta2 < 1.0f)) { adam = "beta2"; a = beta2; }
    else if (!(eps > 0.0f && eps <= 1.0f)) { adam = "eps"; a = eps; }
    if (adam)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_ARG, "Adam %s %g is out of range (%s)", adam,
                          (double)a, adam[0] == 'e' ? "(0, 1]" : "[0, 1)");
    return HEPH_OK;
}

static int heph__cfg_numbers_ok(const heph_vae_config *cfg, char *err) {
    const heph_objective *o = &cfg->obj;
    const char *objw = NULL;
    float w = 0.0f;
    int rc = heph__adam_cfg_ok(cfg->lr, cfg->beta1, cfg->beta2, cfg->eps, err);
    if (rc != HEPH_OK) return rc;
    if (!(o->beta >= 0.0f && o->beta <= HEPH_WEIGHT_MAX)) { objw = "beta"; w = o->beta; }
    else if (!(o->gamma >= 0.0f && o->gamma <= HEPH_WEIGHT_MAX)) { objw = "gamma"; w = o->gamma; }
    else if (!(o->gamma_end >= 0.0f && o->gamma_end <= HEPH_WEIGHT_MAX)) { objw = "gamma_end"; w = o->gamma_end; }
    else if (!(o->c_max >= 0.0f && o->c_max <= HEPH_WEIGHT_MAX)) { objw = "c_max"; w = o->c_max; }
    else if (!(o->alpha >= 0.0f && o->alpha <= HEPH_WEIGHT_MAX)) { objw = "alpha"; w = o->alpha; }
    if (objw)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_ARG, "objective %s %g is out of range [0, %g]",
                          objw, (double)w, (double)HEPH_WEIGHT_MAX);
    return HEPH_OK;
}

/* the conditional VAE's settings in range (label_dim 0 becomes K); a plain model's are zeroed */
static int heph__cfg_labels(heph_vae_config *c, char *err) {
    if (c->n_classes == 0) {
        c->label_dim = 0; c->label_weight = 0.0f; c->wrong_labels = 0.0f;
        return HEPH_OK;
    }
    if (c->n_classes < 2 || c->n_classes > 65536)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_ARG, "n_classes %d is out of range 2..65536 (0: a plain VAE)",
                          c->n_classes);
    if (c->label_dim == 0) c->label_dim = c->n_classes;
    if (c->label_dim < 1 || c->label_dim > 4096)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_ARG, "label_dim %d is out of range 1..4096", c->label_dim);
    if (!(c->label_weight >= 0.0f && c->label_weight <= HEPH_WEIGHT_MAX))
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_ARG, "label_weight %g is out of range [0, %g]",
                          (double)c->label_weight, (double)HEPH_WEIGHT_MAX);
    if (!(c->wrong_labels >= 0.0f && c->wrong_labels <= 1.0f))
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_ARG, "wrong_labels %g is out of range [0, 1]",
                          (double)c->wrong_labels);
    return HEPH_OK;
}

/* build nets and buffers for cfg; parameters zero */
static int heph__vae_build(heph_vae *m, const heph_vae_config *cfg) {
    char spec[HEPH_SPEC_MAX + 32];
    int rc, D;
    size_t n_in, B, total, K, E;
    float *p;
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->cfg.enc_spec[HEPH_SPEC_MAX - 1] = '\0';
    m->cfg.dec_spec[HEPH_SPEC_MAX - 1] = '\0';
    D = cfg->z_dim;
    if (D <= 0 || D > 4096)
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_ARG, "z_dim %d is out of range 1..4096", D);
    if (cfg->max_batch <= 0 || cfg->max_batch > 65536)
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_ARG, "max_batch %d is out of range 1..65536",
                          cfg->max_batch);
    rc = heph__cfg_numbers_ok(cfg, m->err);
    if (rc != HEPH_OK) return rc;
    if (cfg->obj.kind != HEPH_OBJ_BETA && cfg->obj.kind != HEPH_OBJ_CAPACITY &&
        cfg->obj.kind != HEPH_OBJ_TCVAE)
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_ARG, "unknown objective %d", cfg->obj.kind);
    if (cfg->obj.kind == HEPH_OBJ_TCVAE &&
        (cfg->obj.dataset_size < (uint64_t)cfg->max_batch ||
         (cfg->obj.estimator != HEPH_TC_MWS && cfg->obj.estimator != HEPH_TC_MSS)))
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_ARG,
                          "beta-TCVAE needs the dataset size (>= max_batch %d, got %llu) and "
                          "estimator MWS (0) or MSS (1), got %d", cfg->max_batch,
                          (unsigned long long)cfg->obj.dataset_size, cfg->obj.estimator);
    if (cfg->obj.recon != HEPH_RECON_BERNOULLI && cfg->obj.recon != HEPH_RECON_GAUSSIAN)
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_ARG, "unknown reconstruction loss %d",
                          cfg->obj.recon);
    rc = heph__cfg_labels(&m->cfg, m->err);
    if (rc != HEPH_OK) return rc;
    K = (size_t)m->cfg.n_classes; E = (size_t)m->cfg.label_dim;
    /* encoder: body + head (2 D) */
    snprintf(spec, sizeof spec, "%s%sdense%d", m->cfg.enc_spec, m->cfg.enc_spec[0] ? "," : "",
             2 * D);
    rc = heph__net_make(&m->enc, spec, cfg->in_c, cfg->in_h, cfg->in_w, cfg->max_batch,
                        m->err, HEPH_ERRLEN);
    if (rc != HEPH_OK) return rc;
    rc = heph__net_make(&m->dec, m->cfg.dec_spec, D + (int)E, 1, 1, cfg->max_batch, m->err, HEPH_ERRLEN);
    if (rc != HEPH_OK) { heph_net_free(&m->enc); return rc; }
    m->enc.eval = m->dec.eval = 1; /* BatchNorm: running statistics but inside heph_vae_loss_grad */
    n_in = (size_t)m->enc.in_n;
    if ((size_t)m->dec.out_n != n_in) {
        heph_net_free(&m->enc); heph_net_free(&m->dec);
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_SPEC,
                          "decoder spec \"%s\" outputs %d values, the picture has %zu (%dx%dx%d)",
                          m->cfg.dec_spec, m->dec.out_n, n_in, cfg->in_c, cfg->in_h, cfg->in_w);
    }
    m->n_params = m->enc.n_params + m->dec.n_params + K * (2 * (size_t)D + E);
    B = (size_t)cfg->max_batch;
    { /* the one-block sizes in 64 bits, against what size_t can address */
        uint64_t np = (uint64_t)m->enc.n_params + (uint64_t)m->dec.n_params + (uint64_t)K * (2u * (uint64_t)D + E),
                 b = (uint64_t)B;
        uint64_t t64 = b * (uint64_t)D * 7 + b * (uint64_t)n_in + (b + 2) * b
                       + (K ? b * (2 * ((uint64_t)D + E) + 2 * (uint64_t)n_in + K + 2 * (uint64_t)D) : 0);
        if (!heph__floats_fit(4 * np) || !heph__floats_fit(t64)) {
            heph_net_free(&m->enc); heph_net_free(&m->dec);
            return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_SIZE,
                              "%llu parameters (4 floats each) and %llu floats of batch buffers are more "
                              "than this platform can address (%llu bytes)", (unsigned long long)np,
                              (unsigned long long)t64, (unsigned long long)HEPH__SIZE_LIMIT);
        }
    }
    /* parameters, gradients, Adam m and v: one block */
    m->params = (float *)heph__calloc(4 * m->n_params, sizeof(float));
    total = B * (size_t)D * 2 /* h */ + B * (size_t)D * 3 /* eps, z, dz */ + B * (size_t)D * 2 /* dh */
            + B * n_in + (B + 2) * B /* tc scratch */
            + (K ? B * (2 * ((size_t)D + E) + 2 * n_in + K + 2 * (size_t)D) : 0) /* u, du, pic, dpic, dcls, hy */;
    m->mem = (float *)heph__calloc(total, sizeof(float));
    m->given = (int *)heph__calloc(B, sizeof(int));
    m->scratch = (float *)heph__calloc(
        (m->enc.scratch_n > m->dec.scratch_n ? m->enc.scratch_n : m->dec.scratch_n) + 1, sizeof(float));
    if (!m->params || !m->mem || !m->scratch || !m->given) {
        HEPH_FREE(m->params); HEPH_FREE(m->mem); HEPH_FREE(m->scratch); HEPH_FREE(m->given);
        heph_net_free(&m->enc); heph_net_free(&m->dec);
        memset(m, 0, sizeof *m);
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_NOMEM, "out of memory for %zu parameters",
                          m->n_params);
    }
    heph__net_bind_scratch(&m->enc, m->scratch);
    heph__net_bind_scratch(&m->dec, m->scratch);
    m->grads = m->params + m->n_params;
    heph_net_bind(&m->enc, m->params, m->grads);
    heph_net_bind(&m->dec, m->params + m->enc.n_params, m->grads + m->enc.n_params);
    m->adam_m = m->grads + m->n_params;
    m->adam_v = m->adam_m + m->n_params;
    p = m->mem;
    m->h = p; p += B * (size_t)D * 2;
    m->eps = p; p += B * (size_t)D;
    m->z = p; p += B * (size_t)D;
    m->dz = p; p += B * (size_t)D;
    m->dh = p; p += B * (size_t)D * 2;
    m->dlogits = p; p += B * n_in;
    m->tc_scratch = p; p += (B + 2) * B;
    if (K) {
        m->emb_enc = m->params + m->enc.n_params + m->dec.n_params;
        m->emb_dec = m->emb_enc + K * 2 * (size_t)D;
        m->u = p; p += B * ((size_t)D + E);
        m->du = p; p += B * ((size_t)D + E);
        m->pic = p; p += B * n_in;
        m->dpic = p; p += B * n_in;
        m->dcls = p; p += B * K;
        m->hy = p;
    }
    return HEPH_OK;
}

HEPH_DEF int heph_vae_init(heph_vae *m, const heph_vae_config *cfg, uint64_t seed) {
    int rc = heph__vae_build(m, cfg);
    if (rc != HEPH_OK) return rc;
    heph_rng_seed(&m->rng, seed);
    heph_net_init_params(&m->enc, &m->rng);
    heph_net_init_params(&m->dec, &m->rng);
    if (m->cfg.n_classes) { /* emb_enc stays 0; emb_dec ~ N(0, 1) like nn.Embedding */
        size_t i, n = (size_t)m->cfg.n_classes * (size_t)m->cfg.label_dim;
        for (i = 0; i < n; i++) m->emb_dec[i] = heph_rng_normal(&m->rng);
    }
    return HEPH_OK;
}

HEPH_DEF void heph_vae_free(heph_vae *m) {
    heph_net_free(&m->enc);
    heph_net_free(&m->dec);
    HEPH_FREE(m->params);
    HEPH_FREE(m->mem);
    HEPH_FREE(m->scratch);
    HEPH_FREE(m->given);
    m->params = m->grads = m->adam_m = m->adam_v = NULL;
    m->mem = m->scratch = NULL;
    m->given = NULL;
    m->cls = NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* VAE: loss, gradient and training step                                                      */

/* capacity schedule at step t: C = c_max min(1, t/T); gamma from gamma to gamma_end likewise */
static void heph__capacity_at(const heph_objective *o, uint64_t t, double *c, double *gamma) {
    double f = o->ramp_steps ? (double)t / (double)o->ramp_steps : 1.0;
    if (f > 1.0) f = 1.0;
    *c = (double)o->c_max * f;
    *gamma = (double)o->gamma + ((double)o->gamma_end - (double)o->gamma) * f;
}

static int heph__finite(double x) { return x == x && x - x == 0.0; }

/* the encoder's output h = [mu | logvar] for B pictures (labels y: + emb_enc[y], conditional
   models), logvar clamped to [LOGVAR_MIN, LOGVAR_MAX], into out (B, 2D); returns the raw output
   (the clamp's gradient needs it; with labels it is out's unclamped twin in m->hy) */
static const float *heph__vae_head(heph_vae *m, const float *x, const int *y, int B, float *out) {
    int D = m->cfg.z_dim, b, j;
    const float *h = heph__net_forward(&m->enc, x, B);
    if (y) { /* h + emb_enc[y]: the label's row added to the mu and logvar layers */
        float *hy = m->hy;
        for (b = 0; b < B; b++) {
            const float *e = m->emb_enc + (size_t)y[b] * 2 * (size_t)D;
            HEPH_ASSERT(y[b] >= 0 && y[b] < m->cfg.n_classes);
            for (j = 0; j < 2 * D; j++) hy[(size_t)b * 2 * (size_t)D + (size_t)j] = h[(size_t)b * 2 * (size_t)D + (size_t)j] + e[j];
        }
        h = hy;
    }
    for (b = 0; b < B; b++)
        for (j = 0; j < 2 * D; j++) {
            float v = h[(size_t)b * 2 * (size_t)D + (size_t)j];
            if (j >= D) v = v < HEPH_LOGVAR_MIN ? HEPH_LOGVAR_MIN : (v > HEPH_LOGVAR_MAX ? HEPH_LOGVAR_MAX : v);
            out[(size_t)b * 2 * (size_t)D + (size_t)j] = v;
        }
    return h;
}

/* the decoder's logits of B codes z (B, D); with labels y its input is [z | emb_dec[y]] */
static const float *heph__vae_dec(heph_vae *m, const float *z, const int *y, int B) {
    size_t D = (size_t)m->cfg.z_dim, E = (size_t)m->cfg.label_dim, b;
    if (!y) return heph__net_forward(&m->dec, z, B);
    for (b = 0; b < (size_t)B; b++) {
        HEPH_ASSERT(y[b] >= 0 && y[b] < m->cfg.n_classes);
        memcpy(m->u + b * (D + E), z + b * D, D * sizeof(float));
        memcpy(m->u + b * (D + E) + D, m->emb_dec + (size_t)y[b] * E, E * sizeof(float));
    }
    return heph__net_forward(&m->dec, m->u, B);
}

/* the encoder half of a step: h = [mu | logvar] (heph__vae_head); eps ~ N(0, I) drawn
   serially (threads cannot change it) unless given; z = mu + sigma eps. Returns the encoder's
   raw output. */
static const float *heph__vae_encode_sample(heph_vae *m, const float *x, const int *y, int B, const float *eps) {
    int D = m->cfg.z_dim, b;
    size_t i;
    const float *h = heph__vae_head(m, x, y, B, m->h);
    for (i = 0; i < (size_t)B * (size_t)D; i++) m->eps[i] = eps ? eps[i] : heph_rng_normal(&m->rng);
    for (b = 0; b < B; b++) {
        const float *row = m->h + (size_t)b * 2 * (size_t)D;
        heph_reparam_forward(m->z + (size_t)b * (size_t)D, row, row + D, m->eps + (size_t)b * (size_t)D, (size_t)D);
    }
    return h;
}

/* the beta-TCVAE terms of the batch in m (z, h): values into L, gradients added to dz, dh
   when grad is set */
static void heph__vae_tc(heph_vae *m, int B, double gamma, int grad, heph_losses *L) {
    const heph_objective *o = &m->cfg.obj;
    int D = m->cfg.z_dim;
    heph_tc_batch t;
    memset(&t, 0, sizeof t);
    t.z = m->z; t.mu = m->h; t.logvar = m->h + D;
    t.ldz = D; t.ldh = 2 * D; t.B = B; t.D = D;
    t.N = o->dataset_size; t.estimator = o->estimator;
    t.alpha = o->alpha; t.beta = o->beta; t.gamma = (float)gamma;
    if (grad) { t.dz = m->dz; t.dmu = m->dh; t.dlogvar = m->dh + D; }
    t.scratch = m->tc_scratch;
    heph_tc_terms(&t);
    if (L) { L->mi = t.mi; L->tc = t.tc; L->dwkl = t.dwkl; }
}

/* the objective from the batch means of recon and KL: fills L (loss, c, gamma, TC terms) and
   returns the weight of the analytic KL's gradient */
static double heph__vae_objective(heph_vae *m, int B, double recon, double kl, heph_losses *L) {
    const heph_objective *o = &m->cfg.obj;
    double c = 0.0, gamma = 0.0, kl_w;
    if (o->kind == HEPH_OBJ_TCVAE) {
        double g = o->ramp_steps ? (double)m->step / (double)o->ramp_steps : 1.0;
        gamma = (g > 1.0 ? 1.0 : g) * (double)o->gamma;          /* annealed DWKL weight */
        heph__vae_tc(m, B, gamma, 0, L);
        L->loss = recon + (double)o->alpha * L->mi + (double)o->beta * L->tc + gamma * L->dwkl;
        kl_w = 0.0; /* the analytic KL is only reported; the gradient comes from the estimator */
    } else if (o->kind == HEPH_OBJ_CAPACITY) {
        heph__capacity_at(o, m->step, &c, &gamma);
        L->loss = recon + gamma * fabs(kl - c);                  /* recon + gamma |KL - C| */
        kl_w = gamma * (kl > c ? 1.0 : (kl < c ? -1.0 : 0.0));
    } else {
        L->loss = recon + (double)o->beta * kl;                   /* recon + beta KL */
        kl_w = (double)o->beta;
    }
    L->recon = recon; L->kl = kl; L->elbo = -(recon + kl);
    L->c = c; L->gamma = gamma;
    return kl_w;
}

/* the decoder's backward to dz; with labels y its input [z | emb_dec[y]] splits: dz, and
   d emb_dec[k] = sum of the rows b with y_b = k (in the order of b; 0 for the others) */
static void heph__vae_dec_backward(heph_vae *m, const int *y, int B) {
    size_t D = (size_t)m->cfg.z_dim, E = (size_t)m->cfg.label_dim, b, j;
    float *demb;
    if (!y) { heph__net_backward(&m->dec, m->dlogits, B, m->dz); return; }
    heph__net_backward(&m->dec, m->dlogits, B, m->du);
    demb = m->grads + (m->emb_dec - m->params);
    memset(demb, 0, (size_t)m->cfg.n_classes * E * sizeof(float));
    for (b = 0; b < (size_t)B; b++) {
        memcpy(m->dz + b * D, m->du + b * (D + E), D * sizeof(float));
        for (j = 0; j < E; j++) demb[(size_t)y[b] * E + j] += m->du[b * (D + E) + D + j];
    }
}

/* the backward half: KL (weight kl_w), decoder to z, the TC terms, reparameterisation to
   (mu, logvar), the clamp (no gradient where it was active: h_raw), the label's encoder row
   (d emb_enc[k] = sum of dh over the rows with y_b = k), encoder */
static void heph__vae_backward(heph_vae *m, const float *h_raw, const int *y, int B, double kl_w,
                               const heph_losses *L) {
    int D = m->cfg.z_dim, b, j;
    float inv_b = 1.0f / (float)B;
    memset(m->dh, 0, (size_t)B * 2 * (size_t)D * sizeof(float));
    for (b = 0; b < B; b++) {
        const float *row = m->h + (size_t)b * 2 * (size_t)D;
        float *drow = m->dh + (size_t)b * 2 * (size_t)D;
        heph_kl_normal(drow, drow + D, row, row + D, (size_t)D, (float)kl_w * inv_b);
    }
    heph__vae_dec_backward(m, y, B);
    if (m->cfg.obj.kind == HEPH_OBJ_TCVAE) heph__vae_tc(m, B, L->gamma, 1, NULL);
    for (b = 0; b < B; b++) {
        const float *row = m->h + (size_t)b * 2 * (size_t)D;
        float *drow = m->dh + (size_t)b * 2 * (size_t)D;
        heph_reparam_backward(drow, drow + D, m->dz + (size_t)b * (size_t)D, row + D,
                              m->eps + (size_t)b * (size_t)D, (size_t)D);
    }
    for (b = 0; b < B; b++)
        for (j = D; j < 2 * D; j++) {
            float v = h_raw[(size_t)b * 2 * (size_t)D + (size_t)j];
            if (v < HEPH_LOGVAR_MIN || v > HEPH_LOGVAR_MAX) m->dh[(size_t)b * 2 * (size_t)D + (size_t)j] = 0.0f;
        }
    if (y) {
        float *demb = m->grads + (m->emb_enc - m->params);
        memset(demb, 0, (size_t)m->cfg.n_classes * 2 * (size_t)D * sizeof(float));
        for (b = 0; b < B; b++)
            for (j = 0; j < 2 * D; j++)
                demb[(size_t)y[b] * 2 * (size_t)D + (size_t)j] += m->dh[(size_t)b * 2 * (size_t)D + (size_t)j];
    }
    heph__net_backward(&m->enc, m->dh, B, NULL);
}

/* which part of the block parameter i belongs to, for messages */
static const char *heph__param_part(const heph_vae *m, size_t i) {
    if (i < m->enc.n_params) return "encoder";
    if (i < m->enc.n_params + m->dec.n_params) return "decoder";
    return "label embedding";
}

/* the index of the first of g[0..n) that is not finite, or n; chunks in parallel, their flags
   read in order (|g| <= FLT_MAX is false for inf and NaN) */
static size_t heph__first_nonfinite(const float *g, size_t n) {
    size_t nc = (n + 65535) / 65536, c, i;
    int bad = 0;
    long long ci;
    unsigned char flags[4096];
    if (nc > sizeof flags) nc = 0; /* > 268 M parameters: the serial scan */
    HEPH__OMP_FOR_IF(n > 131072)
    for (ci = 0; ci < (long long)nc; ci++) {
        size_t a = (size_t)ci * 65536, e = a + 65536 < n ? a + 65536 : n, k;
        int f = 0;
        for (k = a; k < e; k++) f |= !(fabsf(g[k]) <= FLT_MAX);
        flags[ci] = (unsigned char)f;
    }
    for (c = 0; c < nc; c++) bad |= flags[c];
    if (nc == 0)
        for (i = 0; i < n; i++) bad |= !heph__finite((double)g[i]);
    if (!bad) return n;
    for (i = 0; i < n; i++)
        if (!heph__finite((double)g[i])) break;
    return i;
}
/* HEPH_E_NAN naming the first parameter whose gradient is not finite, else HEPH_OK */
static int heph__grads_finite(heph_vae *m) {
    size_t i = heph__first_nonfinite(m->grads, m->n_params);
    if (i == m->n_params) return HEPH_OK;
    return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_NAN, "step %llu: gradient of parameter %zu (%s) is not finite",
                      (unsigned long long)m->step, i, heph__param_part(m, i));
}

/* the label loss of a conditional model with a classifier: c = cls(sigmoid(logits)) for the
   B reconstructions; L->label = mean NLL of the given labels, L->label_acc; with grad set,
   lambda (softmax(c) - onehot(y)) / B goes back through the frozen classifier (its own
   gradient buffer is scratch) and dlogits += dpic sigmoid'(logits) */
static void heph__vae_label_loss(heph_vae *m, const float *logits, const int *y, int B, int grad, heph_losses *L) {
    size_t n = (size_t)B * (size_t)m->enc.in_n, i;
    int K = m->cfg.n_classes;
    float lam = m->cfg.label_weight / (float)B;
    const float *c;
    heph_sigmoid_forward(m->pic, logits, n);
    c = heph__net_forward(m->cls, m->pic, B);
    L->label = heph_softmax_xent(grad ? m->dcls : NULL, c, y, B, K, lam) / (double)B;
    L->label_acc = heph_accuracy(c, y, B, K);
    if (!grad) return;
    heph__net_backward(m->cls, m->dcls, B, m->dpic);
    for (i = 0; i < n; i++) m->dlogits[i] += m->dpic[i] * m->pic[i] * (1.0f - m->pic[i]);
}

/* One step's loss and gradient: encode and sample, decode, reconstruction loss (summed over
   pixels, averaged over the batch), KL per image, the label loss (conditional models), the
   objective, backward. m->grads needs no clearing: the backward passes write every
   parameter's gradient. */
static int heph__vae_loss_grad(heph_vae *m, const float *x, const int *y, int B, const float *eps,
                               heph_losses *out);
static int heph__vae_train_loss_grad(heph_vae *m, const float *x, const int *y, int B, const float *eps,
                                     heph_losses *out) {
    int rc;
    m->enc.eval = m->dec.eval = 0; /* BatchNorm: the batch's statistics while training ... */
    rc = heph__vae_loss_grad(m, x, y, B, eps, out);
    m->enc.eval = m->dec.eval = 1; /* ... and the running ones for everything else */
    return rc;
}
/* a plain entry point on a conditional model, or the reverse: HEPH_E_ARG */
static int heph__vae_kind_ok(heph_vae *m, int labels, const char *fn) {
    if (!m->cfg.n_classes == !labels) return HEPH_OK;
    return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_ARG, labels ? "%s: the model is not conditional (no labels)"
                      : "%s: the model is conditional (%d labels): use the heph_cvae_ functions", fn, m->cfg.n_classes);
}
HEPH_DEF int heph_vae_loss_grad(heph_vae *m, const float *x, int B, const float *eps,
                                heph_losses *out) {
    int rc = heph__vae_kind_ok(m, 0, "heph_vae_loss_grad");
    return rc != HEPH_OK ? rc : heph__vae_train_loss_grad(m, x, NULL, B, eps, out);
}
HEPH_DEF int heph_cvae_loss_grad(heph_vae *m, const float *x, const int *given, int B, const float *eps,
                                 heph_losses *out) {
    int rc = heph__vae_kind_ok(m, 1, "heph_cvae_loss_grad");
    return rc != HEPH_OK ? rc : heph__vae_train_loss_grad(m, x, given, B, eps, out);
}
static int heph__vae_loss_grad(heph_vae *m, const float *x, const int *y, int B, const float *eps,
                               heph_losses *out) {
    int D = m->cfg.z_dim, b;
    size_t n_in = (size_t)m->enc.in_n;
    const float *h_raw, *logits;
    double recon, kl = 0.0, kl_w;
    float inv_b;
    heph_losses L;
    memset(&L, 0, sizeof L);
    if (B <= 0 || B > m->cfg.max_batch)
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_ARG, "batch %d is out of range 1..%d", B,
                          m->cfg.max_batch);
    for (b = 0; y && b < B; b++)
        if (y[b] < 0 || y[b] >= m->cfg.n_classes)
            return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_ARG, "label %d of picture %d is out of range 0..%d", y[b], b,
                              m->cfg.n_classes - 1);
    inv_b = 1.0f / (float)B;
    h_raw = heph__vae_encode_sample(m, x, y, B, eps);
    logits = heph__vae_dec(m, m->z, y, B);
    if (m->cfg.obj.recon == HEPH_RECON_BERNOULLI)
        recon = heph_bce_logits(m->dlogits, logits, x, (size_t)B * n_in, inv_b);
    else
        recon = heph_sqerr_logits(m->dlogits, logits, x, (size_t)B * n_in, inv_b);
    recon /= (double)B;
    for (b = 0; b < B; b++) {
        const float *row = m->h + (size_t)b * 2 * (size_t)D;
        kl += heph_kl_normal(NULL, NULL, row, row + D, (size_t)D, 0.0f);
    }
    kl /= (double)B;
    kl_w = heph__vae_objective(m, B, recon, kl, &L);
    if (y && m->cls && m->cfg.label_weight > 0.0f) {
        heph__vae_label_loss(m, logits, y, B, 1, &L);
        L.loss += (double)m->cfg.label_weight * L.label; /* + lambda NLL(given label) */
        if (!heph__finite(L.label))
            return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_NAN, "step %llu: label loss is %g",
                              (unsigned long long)m->step, L.label);
    }
    heph__vae_backward(m, h_raw, y, B, kl_w, &L);
    if (!heph__finite(L.mi + L.tc + L.dwkl))
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_NAN, "step %llu: TC terms are not finite "
                          "(MI %g, TC %g, DWKL %g)", (unsigned long long)m->step, L.mi, L.tc, L.dwkl);
    if (out) *out = L;
    if (!heph__finite(recon))
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_NAN, "step %llu: reconstruction loss is %g",
                          (unsigned long long)m->step, recon);
    if (!heph__finite(kl))
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_NAN, "step %llu: KL term is %g",
                          (unsigned long long)m->step, kl);
    return heph__grads_finite(m);
}

/* the optimiser's half of a step, after the gradient: Adam, unless an update is not finite */
/* Adam over a model's block: the views w, g, am, av of n floats, step *step + 1 with the
   hyper-parameters hp = {lr, beta1, beta2, eps}. Guarded: at the counter's limit (HEPH_E_ARG),
   or when an update would not be finite (a moment or weight overflowing: HEPH_E_NAN, like a
   non-finite loss, before anything changes), err says which parameter (part(owner, i) names
   its part of the block) */
static int heph__adam_block(float *w, const float *g, float *am, float *av, size_t n, const float hp[4],
                            uint64_t *step, char *err, const char *(*part)(const void *, size_t),
                            const void *owner) {
    size_t bad;
    if (*step >= HEPH_STEP_MAX)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_ARG, "step %llu: the step counter is at its limit 2^53",
                          (unsigned long long)*step);
    bad = heph__adam_first_bad(w, g, am, av, n, hp[0], hp[1], hp[2], hp[3], *step + 1);
    if (bad < n)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_NAN,
                          "step %llu: the Adam update of parameter %zu (%s) is not finite (weight %g, "
                          "gradient %g, moments %g and %g)", (unsigned long long)*step, bad,
                          part(owner, bad), (double)w[bad], (double)g[bad], (double)am[bad], (double)av[bad]);
    ++*step;
    heph_adam_step(w, g, am, av, n, hp[0], hp[1], hp[2], hp[3], *step);
    return HEPH_OK;
}
static const char *heph__vae_part(const void *m, size_t i) { return heph__param_part((const heph_vae *)m, i); }
static int heph__vae_adam(heph_vae *m) {
    const float hp[4] = {m->cfg.lr, m->cfg.beta1, m->cfg.beta2, m->cfg.eps};
    return heph__adam_block(m->params, m->grads, m->adam_m, m->adam_v, m->n_params, hp, &m->step, m->err,
                            heph__vae_part, m);
}

HEPH_DEF int heph_vae_train_step(heph_vae *m, const float *x, int B, heph_losses *out) {
    int rc = heph_vae_loss_grad(m, x, B, NULL, out);
    return rc != HEPH_OK ? rc : heph__vae_adam(m);
}

/* ------------------------------------------------------------------------------------------ */
/* the conditional VAE: labels, the classifier, a training step                               */

HEPH_DEF int heph_vae_set_classifier(heph_vae *m, heph_net *cls) {
    int rc = heph__vae_kind_ok(m, 1, "heph_vae_set_classifier");
    if (rc != HEPH_OK) return rc;
    if (cls && (cls->in_c != m->cfg.in_c || cls->in_h != m->cfg.in_h || cls->in_w != m->cfg.in_w ||
                cls->out_n != m->cfg.n_classes || cls->max_batch < m->cfg.max_batch || !cls->params || !cls->grads))
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_MISMATCH,
                          "the classifier takes %dx%dx%d pictures to %d logits (max batch %d%s); the model has "
                          "%dx%dx%d pictures, %d labels and max batch %d", cls->in_c, cls->in_h, cls->in_w, cls->out_n,
                          cls->max_batch, cls->params && cls->grads ? "" : ", no parameter block bound", m->cfg.in_c,
                          m->cfg.in_h, m->cfg.in_w, m->cfg.n_classes, m->cfg.max_batch);
    if (cls) { /* frozen: BatchNorm's running statistics, never updated; backward: the input gradient only */
        heph_net_set_train(cls, 0);
        cls->frozen = 1;
    }
    m->cls = cls;
    return HEPH_OK;
}

HEPH_DEF void heph_cvae_wrong_labels(heph_vae *m, const int *y, int B, int *given) {
    int b, K = m->cfg.n_classes;
    for (b = 0; b < B; b++) { /* two draws per picture, serially: the same for any thread count */
        float u = heph_rng_uniform(&m->rng);
        int other = (int)heph_rng_below(&m->rng, (uint32_t)(K - 1));
        HEPH_ASSERT(y[b] >= 0 && y[b] < K);
        given[b] = u < m->cfg.wrong_labels ? (y[b] + 1 + other) % K : y[b]; /* uniform over the others */
    }
}

HEPH_DEF int heph_cvae_train_step(heph_vae *m, const float *x, const int *y, int B, heph_losses *out) {
    int rc = heph__vae_kind_ok(m, 1, "heph_cvae_train_step"), b;
    if (rc != HEPH_OK) return rc;
    if (B <= 0 || B > m->cfg.max_batch)
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_ARG, "batch %d is out of range 1..%d", B, m->cfg.max_batch);
    for (b = 0; b < B; b++)
        if (y[b] < 0 || y[b] >= m->cfg.n_classes)
            return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_ARG, "label %d of picture %d is out of range 0..%d", y[b], b,
                              m->cfg.n_classes - 1);
    heph_cvae_wrong_labels(m, y, B, m->given);
    rc = heph__vae_train_loss_grad(m, x, m->given, B, NULL, out);
    return rc != HEPH_OK ? rc : heph__vae_adam(m);
}

/* ------------------------------------------------------------------------------------------ */
/* VAE: encode, decode, sample, evaluate                                                      */

/* mu and logvar (clamped) of n pictures, max_batch at a time; labels y (conditional models):
   + emb_enc[y] first */
static void heph__vae_encode(heph_vae *m, const float *x, const int *y, size_t n, float *mu, float *logvar) {
    size_t s, D = (size_t)m->cfg.z_dim, n_in = (size_t)m->enc.in_n;
    for (s = 0; s < n; s += (size_t)m->cfg.max_batch) {
        int B = (int)(n - s < (size_t)m->cfg.max_batch ? n - s : (size_t)m->cfg.max_batch), b;
        const float *h = heph__net_forward(&m->enc, x + s * n_in, B);
        for (b = 0; b < B; b++) {
            const float *e = y ? m->emb_enc + (size_t)y[s + (size_t)b] * 2 * D : NULL;
            size_t j;
            HEPH_ASSERT(!y || (y[s + (size_t)b] >= 0 && y[s + (size_t)b] < m->cfg.n_classes));
            for (j = 0; j < D; j++) mu[(s + (size_t)b) * D + j] = h[(size_t)b * 2 * D + j] + (e ? e[j] : 0.0f);
            if (logvar)
                for (j = 0; j < D; j++) {
                    float v = h[(size_t)b * 2 * D + D + j] + (e ? e[D + j] : 0.0f);
                    logvar[(s + (size_t)b) * D + j] =
                        v < HEPH_LOGVAR_MIN ? HEPH_LOGVAR_MIN : (v > HEPH_LOGVAR_MAX ? HEPH_LOGVAR_MAX : v);
                }
        }
    }
}

/* sigmoid(decoder(z)) for n codes, max_batch at a time (labels y: conditional models) */
static void heph__vae_decode(heph_vae *m, const float *z, const int *y, size_t n, float *out) {
    size_t s, D = (size_t)m->cfg.z_dim, n_in = (size_t)m->enc.in_n;
    for (s = 0; s < n; s += (size_t)m->cfg.max_batch) {
        int B = (int)(n - s < (size_t)m->cfg.max_batch ? n - s : (size_t)m->cfg.max_batch);
        const float *lg = heph__vae_dec(m, z + s * D, y ? y + s : NULL, B);
        heph_sigmoid_forward(out + s * n_in, lg, (size_t)B * n_in);
    }
}

#define HEPH__PLAIN(m) HEPH_ASSERT((m)->cfg.n_classes == 0 && "a conditional model takes labels: heph_cvae_*")
#define HEPH__COND(m) HEPH_ASSERT((m)->cfg.n_classes > 0 && "heph_cvae_* take a conditional model")
HEPH_DEF void heph_vae_encode(heph_vae *m, const float *x, size_t n, float *mu, float *logvar) {
    HEPH__PLAIN(m);
    heph__vae_encode(m, x, NULL, n, mu, logvar);
}
HEPH_DEF void heph_vae_decode(heph_vae *m, const float *z, size_t n, float *out) {
    HEPH__PLAIN(m);
    heph__vae_decode(m, z, NULL, n, out);
}
HEPH_DEF void heph_cvae_encode(heph_vae *m, const float *x, const int *y, size_t n, float *mu, float *logvar) {
    HEPH__COND(m);
    heph__vae_encode(m, x, y, n, mu, logvar);
}
HEPH_DEF void heph_cvae_decode(heph_vae *m, const float *z, const int *y, size_t n, float *out) {
    HEPH__COND(m);
    heph__vae_decode(m, z, y, n, out);
}
HEPH_DEF void heph_cvae_relabel(heph_vae *m, const float *x, const int *y, size_t n, float *out) {
    size_t s, n_in = (size_t)m->enc.in_n;
    HEPH__COND(m);
    for (s = 0; s < n; s += (size_t)m->cfg.max_batch) { /* the posterior mean of (x, y), decoded with y */
        size_t B = n - s < (size_t)m->cfg.max_batch ? n - s : (size_t)m->cfg.max_batch;
        heph__vae_encode(m, x + s * n_in, y + s, B, m->z, NULL);
        heph__vae_decode(m, m->z, y + s, B, out + s * n_in);
    }
}

HEPH_DEF void heph_vae_sample(heph_vae *m, heph_rng *rng, size_t n, float *out) {
    size_t s, i, D = (size_t)m->cfg.z_dim, n_in = (size_t)m->enc.in_n;
    HEPH__PLAIN(m);
    for (s = 0; s < n; s += (size_t)m->cfg.max_batch) {
        size_t B = n - s < (size_t)m->cfg.max_batch ? n - s : (size_t)m->cfg.max_batch;
        for (i = 0; i < B * D; i++) m->z[i] = heph_rng_normal(rng); /* z ~ N(0, I) */
        heph_vae_decode(m, m->z, B, out + s * n_in);
    }
}

/* recon and KL (one z each from a generator seeded with seed) over n pictures; labels y:
   the label loss and accuracy too, when a classifier is set */
static int heph__vae_evaluate(heph_vae *m, const float *x, const int *y, size_t n, uint64_t seed,
                              heph_losses *out) {
    size_t s, i, D = (size_t)m->cfg.z_dim, n_in = (size_t)m->enc.in_n;
    double recon = 0.0, kl = 0.0, label = 0.0, acc = 0.0;
    int lab = y && m->cls; /* the classifier's NLL is reported even when lambda is 0 */
    heph_rng rng;
    heph_losses L;
    if (n == 0) return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_ARG, "evaluate: no pictures");
    heph_rng_seed(&rng, seed);
    for (s = 0; s < n; s += (size_t)m->cfg.max_batch) {
        int B = (int)(n - s < (size_t)m->cfg.max_batch ? n - s : (size_t)m->cfg.max_batch), b;
        const float *xb = x + s * n_in, *lg;
        heph__vae_encode(m, xb, y ? y + s : NULL, (size_t)B, m->h, m->dh); /* mu in h, logvar in dh: (B, D) each */
        for (i = 0; i < (size_t)B * D; i++) m->eps[i] = heph_rng_normal(&rng);
        heph_reparam_forward(m->z, m->h, m->dh, m->eps, (size_t)B * D);
        for (b = 0; b < B; b++)
            kl += heph_kl_normal(NULL, NULL, m->h + (size_t)b * D, m->dh + (size_t)b * D, D, 0.0f);
        lg = heph__vae_dec(m, m->z, y ? y + s : NULL, B);
        recon += m->cfg.obj.recon == HEPH_RECON_BERNOULLI
                     ? heph_bce_logits(NULL, lg, xb, (size_t)B * n_in, 0.0f)
                     : heph_sqerr_logits(NULL, lg, xb, (size_t)B * n_in, 0.0f);
        if (lab) {
            heph__vae_label_loss(m, lg, y + s, B, 0, &L);
            label += L.label * B; acc += L.label_acc * B;
        }
    }
    memset(&L, 0, sizeof L);
    L.recon = recon / (double)n;
    L.kl = kl / (double)n;
    L.elbo = -(L.recon + L.kl);
    L.label = label / (double)n;
    L.label_acc = acc / (double)n;
    L.loss = L.recon + L.kl + (double)m->cfg.label_weight * L.label;
    if (out) *out = L;
    if (!heph__finite(L.loss))
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_NAN, "evaluate: loss is %g", L.loss);
    return HEPH_OK;
}

HEPH_DEF int heph_vae_evaluate(heph_vae *m, const float *x, size_t n, uint64_t seed, heph_losses *out) {
    int rc = heph__vae_kind_ok(m, 0, "heph_vae_evaluate");
    return rc != HEPH_OK ? rc : heph__vae_evaluate(m, x, NULL, n, seed, out);
}
HEPH_DEF int heph_cvae_evaluate(heph_vae *m, const float *x, const int *y, size_t n, uint64_t seed,
                                heph_losses *out) {
    size_t i;
    int rc = heph__vae_kind_ok(m, 1, "heph_cvae_evaluate");
    for (i = 0; rc == HEPH_OK && i < n; i++)
        if (y[i] < 0 || y[i] >= m->cfg.n_classes)
            return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_ARG, "evaluate: label %d of picture %zu is out of range 0..%d",
                              y[i], i, m->cfg.n_classes - 1);
    return rc != HEPH_OK ? rc : heph__vae_evaluate(m, x, y, n, seed, out);
}

HEPH_DEF void heph_vae_kl_per_dim(heph_vae *m, const float *x, size_t n, double *kl) {
    size_t s, D = (size_t)m->cfg.z_dim, j;
    for (j = 0; j < D; j++) kl[j] = 0.0;
    for (s = 0; s < n; s += (size_t)m->cfg.max_batch) {
        size_t B = n - s < (size_t)m->cfg.max_batch ? n - s : (size_t)m->cfg.max_batch, b;
        heph_vae_encode(m, x + s * (size_t)m->enc.in_n, B, m->h, m->dh);
        for (b = 0; b < B; b++)
            for (j = 0; j < D; j++) /* -1/2 (1 + lv - mu^2 - e^lv) for one dimension */
                kl[j] += heph_kl_normal(NULL, NULL, m->h + b * D + j, m->dh + b * D + j, 1, 0.0f);
    }
    for (j = 0; j < D; j++) kl[j] /= (double)(n ? n : 1);
}

HEPH_DEF void heph_vae_traverse(heph_vae *m, const float *z0, const int *dims, int n_dims,
                                const float *lo, const float *hi, int steps, float *out) {
    size_t D = (size_t)m->cfg.z_dim, n_in = (size_t)m->enc.in_n;
    int r, t;
    for (r = 0; r < n_dims; r++) {
        int d = dims[r];
        for (t = 0; t < steps; t += m->cfg.max_batch) {
            int nb = steps - t < m->cfg.max_batch ? steps - t : m->cfg.max_batch, b;
            for (b = 0; b < nb; b++) { /* z = z0 with z_d = lo + (hi - lo) s, s in [0, 1] */
                float s = steps > 1 ? (float)(t + b) / (float)(steps - 1) : 0.5f;
                memcpy(m->z + (size_t)b * D, z0, D * sizeof(float));
                m->z[(size_t)b * D + (size_t)d] = lo[d] + (hi[d] - lo[d]) * s;
            }
            heph_vae_decode(m, m->z, (size_t)nb, out + ((size_t)r * (size_t)steps + (size_t)t) * n_in);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* the cycle-consistent VAE: two cycles, four passes, one objective                           */

HEPH_DEF void heph_cyc_config_default(heph_cyc_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->in_c = 1; cfg->in_h = 28; cfg->in_w = 28;
    cfg->s_dim = 16; cfg->z_dim = 16;
    cfg->max_batch = 64;
    cfg->recon = HEPH_RECON_GAUSSIAN;
    cfg->w_recon = 2.0f; cfg->w_kl = 3.0f; cfg->w_reverse = 10.0f;
    cfg->lr = 1e-4f; cfg->beta1 = 0.9f; cfg->beta2 = 0.999f; cfg->eps = 1e-8f;
}

HEPH_DEF int heph_cyc_config_preset(heph_cyc_config *cfg, const char *name) {
    heph_cyc_config_default(cfg);
    if (strcmp(name, "cyc-mnist") == 0) {
        /* (1,28,28) -> (16,14,14) -> (32,7,7) -> (64,4,4) -> 1024 -> [s 16 | mu 16 | logvar 16];
           the decoder mirrors it from [s | z] */
        strcpy(cfg->enc_spec, "conv16k4s2p1,bn,lrelu0.2,conv32k4s2p1,bn,lrelu0.2,conv64k3s2p1,bn,lrelu0.2,flatten");
        strcpy(cfg->dec_spec, "dense1024,lrelu0.2,reshape64x4x4,convt32k3s2p1,bn,lrelu0.2,"
                              "convt16k4s2p1,bn,lrelu0.2,convt1k4s2p1");
        return HEPH_OK;
    }
    if (strcmp(name, "cyc-sprites") == 0) {
        /* (3,64,64) -> (32,32,32) -> (64,16,16) -> (128,8,8) -> (128,4,4) -> 256 -> [s 64 | z 32 x 2] */
        cfg->in_c = 3; cfg->in_h = cfg->in_w = 64;
        cfg->s_dim = 64; cfg->z_dim = 32;
        strcpy(cfg->enc_spec, "conv32k4s2p1,bn,lrelu0.2,conv64k4s2p1,bn,lrelu0.2,conv128k4s2p1,bn,lrelu0.2,"
                              "conv128k4s2p1,bn,lrelu0.2,flatten,dense256,lrelu0.2");
        strcpy(cfg->dec_spec, "dense256,lrelu0.2,dense2048,lrelu0.2,reshape128x4x4,convt128k4s2p1,bn,lrelu0.2,"
                              "convt64k4s2p1,bn,lrelu0.2,convt32k4s2p1,bn,lrelu0.2,convt3k4s2p1");
        return HEPH_OK;
    }
    return HEPH_E_ARG;
}

/* the configuration's numbers, or HEPH_E_ARG saying which is out of range */
static int heph__cyc_cfg_ok(const heph_cyc_config *c, char *err) {
    if (c->s_dim <= 0 || c->s_dim > 4096 || c->z_dim <= 0 || c->z_dim > 4096)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_ARG, "s_dim %d and z_dim %d must be in 1..4096", c->s_dim, c->z_dim);
    if (c->max_batch <= 0 || c->max_batch > 32768)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_ARG, "max_batch %d (pairs) is out of range 1..32768", c->max_batch);
    if (c->recon != HEPH_RECON_BERNOULLI && c->recon != HEPH_RECON_GAUSSIAN)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_ARG, "unknown reconstruction loss %d", c->recon);
    if (c->reverse_grad != HEPH_CYC_REVERSE_ENCODER && c->reverse_grad != HEPH_CYC_REVERSE_ALL)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_ARG, "reverse_grad %d is neither HEPH_CYC_REVERSE_ENCODER (0) nor "
                          "HEPH_CYC_REVERSE_ALL (1)", c->reverse_grad);
    if (!(c->w_recon >= 0.0f && c->w_recon <= HEPH_WEIGHT_MAX && c->w_kl >= 0.0f && c->w_kl <= HEPH_WEIGHT_MAX &&
          c->w_reverse >= 0.0f && c->w_reverse <= HEPH_WEIGHT_MAX))
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_ARG, "the weights (recon %g, KL %g, reverse %g) must be in [0, %g]",
                          (double)c->w_recon, (double)c->w_kl, (double)c->w_reverse, (double)HEPH_WEIGHT_MAX);
    return heph__adam_cfg_ok(c->lr, c->beta1, c->beta2, c->eps, err);
}

/* the four networks: enc and enc_r from one spec, dec and dec_r from another, each for 2B */
static int heph__cyc_nets(heph_cyc *m) {
    const heph_cyc_config *c = &m->cfg;
    char spec[HEPH_SPEC_MAX + 32];
    int rc, U = c->s_dim + c->z_dim, B2 = 2 * c->max_batch;
    snprintf(spec, sizeof spec, "%s%sdense%d", c->enc_spec, c->enc_spec[0] ? "," : "", c->s_dim + 2 * c->z_dim);
    rc = heph__net_make(&m->enc, spec, c->in_c, c->in_h, c->in_w, B2, m->err, HEPH_ERRLEN);
    if (rc == HEPH_OK) rc = heph__net_make(&m->enc_r, spec, c->in_c, c->in_h, c->in_w, B2, m->err, HEPH_ERRLEN);
    if (rc == HEPH_OK) rc = heph__net_make(&m->dec, c->dec_spec, U, 1, 1, B2, m->err, HEPH_ERRLEN);
    if (rc == HEPH_OK) rc = heph__net_make(&m->dec_r, c->dec_spec, U, 1, 1, B2, m->err, HEPH_ERRLEN);
    if (rc == HEPH_OK && m->dec.out_n != m->enc.in_n)
        rc = heph__errf(m->err, HEPH_ERRLEN, HEPH_E_SPEC, "decoder spec \"%s\" outputs %d values, the picture has %d (%dx%dx%d)",
                        c->dec_spec, m->dec.out_n, m->enc.in_n, c->in_c, c->in_h, c->in_w);
    if (rc != HEPH_OK) { heph_net_free(&m->enc); heph_net_free(&m->enc_r); heph_net_free(&m->dec); heph_net_free(&m->dec_r); }
    m->enc.eval = m->dec.eval = m->enc_r.eval = m->dec_r.eval = 1; /* BatchNorm: batch statistics in a step only */
    return rc;
}

/* the batch buffers, in order, as (pointer, floats per pair-row) with 2B rows each except r */
static void heph__cyc_place(heph_cyc *m, float *p) {
    size_t B2 = 2 * (size_t)m->cfg.max_batch, S = (size_t)m->cfg.s_dim, Z = (size_t)m->cfg.z_dim,
           N = (size_t)m->enc.in_n, H = S + 2 * Z, U = S + Z;
    m->x = p; p += B2 * N;
    m->h = p; p += B2 * H;
    m->dh = p; p += B2 * H;
    m->eps = p; p += B2 * Z;
    m->dz = p; p += B2 * Z;
    m->u = p; p += B2 * U;
    m->du = p; p += B2 * U;
    m->dlogits = p; p += B2 * N;
    m->r = p; p += B2 / 2 * Z;
    m->ur = p; p += B2 * U;
    m->dur = p; p += B2 * U;
    m->pr = p; p += B2 * N;
    m->dpr = p; p += B2 * N;
    m->dhr = p;
}

HEPH_DEF int heph_cyc_init(heph_cyc *m, const heph_cyc_config *cfg, uint64_t seed) {
    size_t B2, S, Z, N, total, sc;
    uint64_t t64;
    int rc;
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->cfg.enc_spec[HEPH_SPEC_MAX - 1] = m->cfg.dec_spec[HEPH_SPEC_MAX - 1] = '\0';
    if ((rc = heph__cyc_cfg_ok(&m->cfg, m->err)) != HEPH_OK || (rc = heph__cyc_nets(m)) != HEPH_OK) return rc;
    B2 = 2 * (size_t)cfg->max_batch; S = (size_t)cfg->s_dim; Z = (size_t)cfg->z_dim; N = (size_t)m->enc.in_n;
    m->n_params = m->enc.n_params + m->dec.n_params;
    t64 = (uint64_t)B2 * (4 * (uint64_t)N + 3 * (S + 2 * (uint64_t)Z) + 2 * (uint64_t)Z + 4 * (S + (uint64_t)Z)) + B2 / 2 * Z;
    if (!heph__floats_fit(5 * (uint64_t)m->n_params) || !heph__floats_fit(t64)) {
        heph_cyc_free(m);
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_SIZE, "%llu parameters and %llu floats of batch buffers are more "
                          "than this platform can address", (unsigned long long)(m->enc.n_params + m->dec.n_params),
                          (unsigned long long)t64);
    }
    total = (size_t)t64;
    sc = m->enc.scratch_n > m->dec.scratch_n ? m->enc.scratch_n : m->dec.scratch_n;
    m->params = (float *)heph__calloc(5 * m->n_params, sizeof(float)); /* params, grads, m, v, grads_r */
    m->mem = (float *)heph__calloc(total, sizeof(float));
    m->scratch = (float *)heph__calloc(sc + 1, sizeof(float));
    if (!m->params || !m->mem || !m->scratch) {
        heph_cyc_free(m);
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_NOMEM, "out of memory for %zu parameters", m->n_params);
    }
    m->grads = m->params + m->n_params;
    m->adam_m = m->grads + m->n_params;
    m->adam_v = m->adam_m + m->n_params;
    m->grads_r = m->adam_v + m->n_params;
    heph_net_bind(&m->enc, m->params, m->grads);
    heph_net_bind(&m->dec, m->params + m->enc.n_params, m->grads + m->enc.n_params);
    heph_net_bind(&m->enc_r, m->params, m->grads_r);
    heph_net_bind(&m->dec_r, m->params + m->enc.n_params, m->grads_r + m->enc.n_params);
    heph__net_bind_scratch(&m->enc, m->scratch); /* no two passes run at once: one scratch */
    heph__net_bind_scratch(&m->dec, m->scratch);
    heph__net_bind_scratch(&m->enc_r, m->scratch);
    heph__net_bind_scratch(&m->dec_r, m->scratch);
    heph__cyc_place(m, m->mem);
    heph_rng_seed(&m->rng, seed);
    heph_net_init_params(&m->enc, &m->rng);
    heph_net_init_params(&m->dec, &m->rng);
    return HEPH_OK;
}

HEPH_DEF void heph_cyc_free(heph_cyc *m) {
    heph_net_free(&m->enc); heph_net_free(&m->enc_r);
    heph_net_free(&m->dec); heph_net_free(&m->dec_r);
    HEPH_FREE(m->params); HEPH_FREE(m->mem); HEPH_FREE(m->scratch);
    m->params = m->grads = m->adam_m = m->adam_v = m->grads_r = m->mem = m->scratch = NULL;
}

static const char *heph__cyc_part(const void *mv, size_t i) {
    return i < ((const heph_cyc *)mv)->enc.n_params ? "encoder" : "decoder";
}

/* the forward cycle on the 2B pictures in m->x ([x1; x2]): h = [s | mu | logvar] (logvar
   clamped), z = mu + sigma eps beside the partner's s (u row b: [s of b +- B | z_b]), the
   swapped reconstructions and KL; with grad: the decoder's backward, and in dh the KL's and
   the swapped s's gradients (dz for the reparameterisation). Returns the encoder's raw output. */
static const float *heph__cyc_forward_cycle(heph_cyc *m, int B, int grad, heph_cyc_losses *L) {
    size_t B2 = 2 * (size_t)B, S = (size_t)m->cfg.s_dim, Z = (size_t)m->cfg.z_dim, H = S + 2 * Z, U = S + Z,
           N = (size_t)m->enc.in_n, b, j;
    const float *raw = heph__net_forward(&m->enc, m->x, (int)B2), *lg;
    double kl = 0.0, rec, per = 1.0 / ((double)B2 * (double)N);
    for (b = 0; b < B2 * H; b++) {
        float v = raw[b];
        if (b % H >= S + Z) v = v < HEPH_LOGVAR_MIN ? HEPH_LOGVAR_MIN : (v > HEPH_LOGVAR_MAX ? HEPH_LOGVAR_MAX : v);
        m->h[b] = v;
    }
    for (b = 0; b < B2; b++) { /* u_b = [s of the partner | mu_b + sigma_b eps_b] */
        const float *hb = m->h + b * H;
        memcpy(m->u + b * U, m->h + (b < (size_t)B ? b + (size_t)B : b - (size_t)B) * H, S * sizeof(float));
        heph_reparam_forward(m->u + b * U + S, hb + S, hb + S + Z, m->eps + b * Z, Z);
    }
    lg = heph__net_forward(&m->dec, m->u, (int)B2);
    rec = m->cfg.recon == HEPH_RECON_BERNOULLI
              ? heph_bce_logits(grad ? m->dlogits : NULL, lg, m->x, B2 * N, (float)((double)m->cfg.w_recon * per))
              : heph_sqerr_logits(grad ? m->dlogits : NULL, lg, m->x, B2 * N, (float)((double)m->cfg.w_recon * per));
    if (grad) memset(m->dh, 0, B2 * H * sizeof(float));
    for (b = 0; b < B2; b++) { /* KL(q(z|x) || N(0, I)), per pixel as the recon */
        float *d = m->dh + b * H + S;
        kl += heph_kl_normal(grad ? d : NULL, grad ? d + Z : NULL, m->h + b * H + S, m->h + b * H + S + Z, Z,
                             (float)((double)m->cfg.w_kl * per));
    }
    L->recon = rec * per;
    L->kl = kl * per;
    if (!grad) return raw;
    heph__net_backward(&m->dec, m->dlogits, (int)B2, m->du);
    for (b = 0; b < B2; b++) { /* the decoder's input splits: ds to the partner, dz to b */
        float *ds = m->dh + (b < (size_t)B ? b + (size_t)B : b - (size_t)B) * H;
        for (j = 0; j < S; j++) ds[j] += m->du[b * U + j];
        memcpy(m->dz + b * Z, m->du + b * U + S, Z * sizeof(float));
    }
    return raw;
}

/* the reverse cycle: rows b and B + b of the decoder's input are [s_b | r_b] and
   [s_(b+1 mod B) | r_b] (s of x1's pictures); decoded, encoded again (the twins enc_r,
   dec_r); reverse = mean |mu' - r|; with grad: back through enc_r, and (HEPH_CYC_REVERSE_ALL)
   through dec_r with ds added into dh */
static void heph__cyc_reverse_cycle(heph_cyc *m, int B, int grad, heph_cyc_losses *L) {
    size_t B2 = 2 * (size_t)B, S = (size_t)m->cfg.s_dim, Z = (size_t)m->cfg.z_dim, H = S + 2 * Z, U = S + Z,
           N = (size_t)m->enc.in_n, b, j;
    const float *lg, *hr;
    double sum = 0.0;
    float sc = (float)((double)m->cfg.w_reverse / ((double)B2 * (double)Z));
    for (b = 0; b < (size_t)B; b++) {
        size_t q = (b + 1) % (size_t)B;
        memcpy(m->ur + b * U, m->h + b * H, S * sizeof(float));
        memcpy(m->ur + (B + b) * U, m->h + q * H, S * sizeof(float));
        memcpy(m->ur + b * U + S, m->r + b * Z, Z * sizeof(float));
        memcpy(m->ur + (B + b) * U + S, m->r + b * Z, Z * sizeof(float));
    }
    lg = heph__net_forward(&m->dec_r, m->ur, (int)B2);
    heph_sigmoid_forward(m->pr, lg, B2 * N);
    hr = heph__net_forward(&m->enc_r, m->pr, (int)B2);
    if (grad) memset(m->dhr, 0, B2 * H * sizeof(float));
    for (b = 0; b < B2; b++)
        for (j = 0; j < Z; j++) { /* |mu'_bj - r_bj|, d/dmu' = sign */
            float d = hr[b * H + S + j] - m->r[(b % (size_t)B) * Z + j];
            sum += (double)fabsf(d);
            if (grad) m->dhr[b * H + S + j] = d > 0.0f ? sc : (d < 0.0f ? -sc : 0.0f);
        }
    L->reverse = sum / ((double)B2 * (double)Z);
    if (!grad) return;
    if (m->cfg.reverse_grad == HEPH_CYC_REVERSE_ENCODER) { /* the decodes are given pictures */
        heph__net_backward(&m->enc_r, m->dhr, (int)B2, NULL);
        memset(m->grads_r + m->enc.n_params, 0, m->dec.n_params * sizeof(float));
        return;
    }
    heph__net_backward(&m->enc_r, m->dhr, (int)B2, m->dpr);
    for (j = 0; j < B2 * N; j++) m->dpr[j] *= m->pr[j] * (1.0f - m->pr[j]); /* through the sigmoid */
    heph__net_backward(&m->dec_r, m->dpr, (int)B2, m->dur);
    for (b = 0; b < (size_t)B; b++) {
        float *d0 = m->dh + b * H, *d1 = m->dh + ((b + 1) % (size_t)B) * H;
        for (j = 0; j < S; j++) d0[j] += m->dur[b * U + j];
        for (j = 0; j < S; j++) d1[j] += m->dur[(B + b) * U + j];
    }
}

/* the encoder's backward for [x1; x2]: the reparameterisation (dz into dmu, dlogvar), no
   gradient where the logvar clamp was active (raw), the encoder; then grads += grads_r */
static void heph__cyc_encoder_backward(heph_cyc *m, int B, const float *raw) {
    size_t B2 = 2 * (size_t)B, S = (size_t)m->cfg.s_dim, Z = (size_t)m->cfg.z_dim, H = S + 2 * Z, b, j;
    long long i, n = (long long)m->n_params;
    for (b = 0; b < B2; b++) {
        float *d = m->dh + b * H;
        heph_reparam_backward(d + S, d + S + Z, m->dz + b * Z, m->h + b * H + S + Z, m->eps + b * Z, Z);
        for (j = S + Z; j < H; j++)
            if (raw[b * H + j] < HEPH_LOGVAR_MIN || raw[b * H + j] > HEPH_LOGVAR_MAX) d[j] = 0.0f;
    }
    heph__net_backward(&m->enc, m->dh, (int)B2, NULL);
    HEPH__OMP_FOR_IF(n > 131072)
    for (i = 0; i < n; i++) m->grads[i] += m->grads_r[i]; /* each parameter's two uses */
}

static void heph__cyc_train_mode(heph_cyc *m, int train) {
    m->enc.eval = m->dec.eval = m->enc_r.eval = m->dec_r.eval = !train;
}

/* B pairs into m->x; eps (2B, Z) and r (B, Z) given or drawn (eps first) from g */
static int heph__cyc_batch(heph_cyc *m, const float *x1, const float *x2, int B, const float *eps,
                           const float *r, heph_rng *g) {
    size_t N = (size_t)m->enc.in_n, Z = (size_t)m->cfg.z_dim, i;
    if (B <= 0 || B > m->cfg.max_batch)
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_ARG, "batch %d (pairs) is out of range 1..%d", B, m->cfg.max_batch);
    memcpy(m->x, x1, (size_t)B * N * sizeof(float));
    memcpy(m->x + (size_t)B * N, x2, (size_t)B * N * sizeof(float));
    for (i = 0; i < 2 * (size_t)B * Z; i++) m->eps[i] = eps ? eps[i] : heph_rng_normal(g);
    for (i = 0; i < (size_t)B * Z; i++) m->r[i] = r ? r[i] : heph_rng_normal(g);
    return HEPH_OK;
}

/* the weighted sum, and HEPH_E_NAN naming a term that is not finite */
static int heph__cyc_total(heph_cyc *m, heph_cyc_losses *L) {
    L->loss = (double)m->cfg.w_recon * L->recon + (double)m->cfg.w_kl * L->kl + (double)m->cfg.w_reverse * L->reverse;
    if (heph__finite(L->loss)) return HEPH_OK;
    return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_NAN, "step %llu: a loss is not finite (recon %g, KL %g, reverse %g)",
                      (unsigned long long)m->step, L->recon, L->kl, L->reverse);
}

HEPH_DEF int heph_cyc_loss_grad(heph_cyc *m, const float *x1, const float *x2, int B,
                                const float *eps, const float *r, heph_cyc_losses *out) {
    heph_cyc_losses L;
    const float *raw;
    size_t i;
    int rc = heph__cyc_batch(m, x1, x2, B, eps, r, &m->rng);
    if (rc != HEPH_OK) return rc;
    memset(&L, 0, sizeof L);
    heph__cyc_train_mode(m, 1); /* BatchNorm: the batch's statistics, in every pass */
    raw = heph__cyc_forward_cycle(m, B, 1, &L);
    heph__cyc_reverse_cycle(m, B, 1, &L);
    heph__cyc_encoder_backward(m, B, raw);
    heph__cyc_train_mode(m, 0);
    if (out) *out = L;
    if ((rc = heph__cyc_total(m, &L)) != HEPH_OK) return rc;
    if (out) *out = L;
    i = heph__first_nonfinite(m->grads, m->n_params);
    if (i == m->n_params) return HEPH_OK;
    return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_NAN, "step %llu: gradient of parameter %zu (%s) is not finite",
                      (unsigned long long)m->step, i, heph__cyc_part(m, i));
}

HEPH_DEF int heph_cyc_train_step(heph_cyc *m, const float *x1, const float *x2, int B, heph_cyc_losses *out) {
    const float hp[4] = {m->cfg.lr, m->cfg.beta1, m->cfg.beta2, m->cfg.eps};
    int rc = heph_cyc_loss_grad(m, x1, x2, B, NULL, NULL, out);
    if (rc != HEPH_OK) return rc;
    return heph__adam_block(m->params, m->grads, m->adam_m, m->adam_v, m->n_params, hp, &m->step, m->err,
                            heph__cyc_part, m);
}

HEPH_DEF int heph_cyc_evaluate(heph_cyc *m, const float *x1, const float *x2, size_t n, uint64_t seed,
                               heph_cyc_losses *out) {
    size_t s, N = (size_t)m->enc.in_n;
    heph_cyc_losses L, sum;
    heph_rng g;
    int rc;
    heph_rng_seed(&g, seed);
    memset(&sum, 0, sizeof sum);
    for (s = 0; s < n; s += (size_t)m->cfg.max_batch) { /* BatchNorm: the running statistics */
        int B = (int)(n - s < (size_t)m->cfg.max_batch ? n - s : (size_t)m->cfg.max_batch);
        if ((rc = heph__cyc_batch(m, x1 + s * N, x2 + s * N, B, NULL, NULL, &g)) != HEPH_OK) return rc;
        memset(&L, 0, sizeof L);
        heph__cyc_forward_cycle(m, B, 0, &L);
        heph__cyc_reverse_cycle(m, B, 0, &L);
        sum.recon += L.recon * B; sum.kl += L.kl * B; sum.reverse += L.reverse * B;
    }
    if (n) { sum.recon /= (double)n; sum.kl /= (double)n; sum.reverse /= (double)n; }
    rc = heph__cyc_total(m, &sum);
    if (out) *out = sum;
    return rc;
}

HEPH_DEF void heph_cyc_encode(heph_cyc *m, const float *x, size_t n, float *s, float *mu, float *logvar) {
    size_t c, b, j, S = (size_t)m->cfg.s_dim, Z = (size_t)m->cfg.z_dim, H = S + 2 * Z, N = (size_t)m->enc.in_n,
           chunk = 2 * (size_t)m->cfg.max_batch;
    for (c = 0; c < n; c += chunk) {
        size_t B = n - c < chunk ? n - c : chunk;
        const float *h = heph__net_forward(&m->enc, x + c * N, (int)B);
        for (b = 0; b < B; b++) {
            if (s) memcpy(s + (c + b) * S, h + b * H, S * sizeof(float));
            if (mu) memcpy(mu + (c + b) * Z, h + b * H + S, Z * sizeof(float));
            for (j = 0; logvar && j < Z; j++) {
                float v = h[b * H + S + Z + j];
                logvar[(c + b) * Z + j] = v < HEPH_LOGVAR_MIN ? HEPH_LOGVAR_MIN : (v > HEPH_LOGVAR_MAX ? HEPH_LOGVAR_MAX : v);
            }
        }
    }
}

HEPH_DEF void heph_cyc_decode(heph_cyc *m, const float *s, const float *z, size_t n, float *out) {
    size_t c, b, S = (size_t)m->cfg.s_dim, Z = (size_t)m->cfg.z_dim, U = S + Z, N = (size_t)m->enc.in_n,
           chunk = 2 * (size_t)m->cfg.max_batch;
    for (c = 0; c < n; c += chunk) {
        size_t B = n - c < chunk ? n - c : chunk;
        for (b = 0; b < B; b++) { /* [s | z] */
            memcpy(m->u + b * U, s + (c + b) * S, S * sizeof(float));
            memcpy(m->u + b * U + S, z + (c + b) * Z, Z * sizeof(float));
        }
        heph_sigmoid_forward(out + c * N, heph__net_forward(&m->dec, m->u, (int)B), B * N);
    }
}

HEPH_DEF void heph_cyc_transfer(heph_cyc *m, const float *xs, const float *xz, size_t n, float *out) {
    size_t c, chunk = 2 * (size_t)m->cfg.max_batch, N = (size_t)m->enc.in_n;
    for (c = 0; c < n; c += chunk) { /* s of xs and mu of xz into the batch buffers, then decode */
        size_t B = n - c < chunk ? n - c : chunk;
        heph_cyc_encode(m, xs + c * N, B, m->ur, NULL, NULL);
        heph_cyc_encode(m, xz + c * N, B, NULL, m->dz, NULL);
        heph_cyc_decode(m, m->ur, m->dz, B, out + c * N);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* threads that adapt (see heph_tuner in the API): probe the candidates, keep the fastest      */

#define HEPH__TUNE_MIN_STEPS 3     /* steps timed per candidate, at least ...                  */
#define HEPH__TUNE_MIN_S 0.05      /* ... and at least this long                               */
#define HEPH__TUNE_HOLD 20.0       /* run the choice this many probe times before probing again, */
#define HEPH__TUNE_HOLD_MAX 320.0  /* doubled (up to this) each time a probe confirms it        */
#define HEPH__TUNE_HOLD_MIN_S 2.0  /* and at least these seconds ...                           */
#define HEPH__TUNE_HOLD_MAX_S 30.0 /* ... at most these (unless one probe takes longer)        */
#define HEPH__TUNE_SLOW 1.5        /* two watch windows in a row this much slower than probed: */
                                   /* probe now                                                */

static int heph__tune_cand(const heph_tuner *t, int i) { return t->max_threads >> i; }

static void heph__tune_set(heph_tuner *t, int threads) {
    t->skip = threads > t->threads; /* the first step on more threads wakes them: untimed */
    t->threads = threads;
    t->n = 0;
    t->sum = 0.0;
}

HEPH_DEF void heph_tuner_init(heph_tuner *t, int max_threads) {
    memset(t, 0, sizeof *t);
    t->max_threads = max_threads < 1 ? 1 : (max_threads > 128 ? 128 : max_threads);
    t->threads = t->best = t->max_threads;
    t->probing = t->max_threads > 1; /* one thread has nothing to choose */
    t->skip = 1;                     /* the first step of a run is not typical */
}

HEPH_DEF void heph_tuner_next(heph_tuner *t, double s) {
    int i = 0, again = 0, prev;
    double hold_s;
    if (t->max_threads <= 1) return;
    if (t->skip) { t->skip--; return; }
    t->n++;
    t->sum += s;
    if (t->probing) {
        if (t->n < HEPH__TUNE_MIN_STEPS || t->sum < HEPH__TUNE_MIN_S) return;
        while (heph__tune_cand(t, i) != t->threads) i++;
        t->cand_s[i] = t->sum / t->n;          /* seconds per step of this candidate */
        t->probe_s += t->sum;
        if (heph__tune_cand(t, i + 1) >= 1 && i + 1 < 8) { heph__tune_set(t, heph__tune_cand(t, i + 1)); return; }
        prev = t->best;
        t->best = t->max_threads;              /* the fastest; a tie keeps more threads */
        t->best_s = t->cand_s[0];
        for (i = 1; i < 8 && heph__tune_cand(t, i) >= 1; i++)
            if (t->cand_s[i] < t->best_s) { t->best = heph__tune_cand(t, i); t->best_s = t->cand_s[i]; }
        /* the same choice again: probe half as often (each probe costs the slower counts' steps) */
        t->hold = t->probes > 0 && t->best == prev && 2.0 * t->hold <= HEPH__TUNE_HOLD_MAX ? 2.0 * t->hold
                  : (t->probes > 0 && t->best == prev ? t->hold : HEPH__TUNE_HOLD);
        t->probing = 0;
        t->probes++;
        t->held_s = 0.0;
        t->slow = 0;
        heph__tune_set(t, t->best);
        return;
    }
    t->held_s += s; /* watching the choice: probe again after a while, or when it slows down */
    hold_s = t->hold * t->probe_s;
    hold_s = hold_s < HEPH__TUNE_HOLD_MIN_S ? HEPH__TUNE_HOLD_MIN_S : hold_s;
    hold_s = hold_s > HEPH__TUNE_HOLD_MAX_S && t->probe_s < HEPH__TUNE_HOLD_MAX_S ? HEPH__TUNE_HOLD_MAX_S : hold_s;
    if (t->held_s >= hold_s) again = 1;
    else if (t->n >= HEPH__TUNE_MIN_STEPS && t->sum >= HEPH__TUNE_MIN_S) {
        t->slow = t->sum / t->n > HEPH__TUNE_SLOW * t->best_s ? t->slow + 1 : 0;
        again = t->slow >= 2;
        t->n = 0;
        t->sum = 0.0;
    }
    if (!again) return;
    t->probing = 1;
    t->probe_s = 0.0;
    heph__tune_set(t, t->max_threads);
}

/* ========================================================================================== */
/* PART B - ANALYSIS AND METRICS: outlier scores, fits, explanations, pictures, MIG, SSIM, AUROC */
/* ========================================================================================== */

/* ------------------------------------------------------------------------------------------ */
/* analysis: Mahalanobis fits, scores, explanations, counterfactuals                          */

/* L L^T = S for symmetric positive definite S (D, D); 0 when S is not positive definite */
static int heph__cholesky(const double *S, double *L, int D) {
    int i, j, k;
    for (i = 0; i < D * D; i++) L[i] = 0.0;
    for (j = 0; j < D; j++) {
        double d = S[j * D + j];
        for (k = 0; k < j; k++) d -= L[j * D + k] * L[j * D + k];   /* L_jj^2 = S_jj - sum L_jk^2 */
        if (!(d > 1e-12 * (fabs(S[j * D + j]) + 1e-300))) return 0;
        L[j * D + j] = sqrt(d);
        for (i = j + 1; i < D; i++) {
            double s = S[i * D + j];
            for (k = 0; k < j; k++) s -= L[i * D + k] * L[j * D + k]; /* L_ij = (S_ij - sum L_ik L_jk)/L_jj */
            L[i * D + j] = s / L[j * D + j];
        }
    }
    return 1;
}

/* solve L y = v (forward substitution), in place */
static void heph__forward_solve(const double *L, double *v, int D) {
    int i, k;
    for (i = 0; i < D; i++) {
        double s = v[i];
        for (k = 0; k < i; k++) s -= L[i * D + k] * v[k];
        v[i] = s / L[i * D + i];
    }
}
/* solve L^T x = y (back substitution), in place */
static void heph__back_solve(const double *L, double *v, int D) {
    int i, k;
    for (i = D - 1; i >= 0; i--) {
        double s = v[i];
        for (k = i + 1; k < D; k++) s -= L[k * D + i] * v[k];
        v[i] = s / L[i * D + i];
    }
}

/* mean and (1/n) covariance of the points with w[i] != 0 (w NULL: all) */
static size_t heph__mean_cov(const float *z, size_t n, int D, const unsigned char *w, double *mean,
                             double *cov) {
    size_t i, cnt = 0;
    int a, b;
    for (a = 0; a < D; a++) mean[a] = 0.0;
    for (a = 0; a < D * D; a++) cov[a] = 0.0;
    for (i = 0; i < n; i++) {
        if (w && !w[i]) continue;
        cnt++;
        for (a = 0; a < D; a++) mean[a] += (double)z[i * (size_t)D + (size_t)a];
    }
    if (!cnt) return 0;
    for (a = 0; a < D; a++) mean[a] /= (double)cnt;
    for (i = 0; i < n; i++) { /* S = 1/n sum (z - m)(z - m)^T */
        if (w && !w[i]) continue;
        for (a = 0; a < D; a++) {
            double da = (double)z[i * (size_t)D + (size_t)a] - mean[a];
            for (b = 0; b <= a; b++) cov[a * D + b] += da * ((double)z[i * (size_t)D + (size_t)b] - mean[b]);
        }
    }
    for (a = 0; a < D; a++)
        for (b = 0; b <= a; b++) {
            cov[a * D + b] /= (double)cnt;
            cov[b * D + a] = cov[a * D + b];
        }
    return cnt;
}

/* D^2 of one point against (mean, chol); work: D doubles */
static double heph__d2(const double *mean, const double *L, int D, const float *z, double *work) {
    int a;
    double s = 0.0;
    for (a = 0; a < D; a++) work[a] = (double)z[a] - mean[a];
    heph__forward_solve(L, work, D); /* y = L^-1 (z - m);  D^2 = |y|^2 */
    for (a = 0; a < D; a++) s += work[a] * work[a];
    return s;
}

/* ln Gamma by the Lanczos approximation (g = 7, 9 terms) */
static double heph__lgamma(double x) {
    static const double c[9] = {0.99999999999980993, 676.5203681218851, -1259.1392167224028,
                                771.32342877765313, -176.61502916214059, 12.507343278686905,
                                -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7};
    double s = c[0], t;
    int i;
    if (x < 0.5) return log(3.14159265358979323846 / fabs(sin(3.14159265358979323846 * x))) - heph__lgamma(1.0 - x);
    x -= 1.0;
    for (i = 1; i < 9; i++) s += c[i] / (x + (double)i);
    t = x + 7.5;
    return 0.91893853320467274178 + (x + 0.5) * log(t) - t + log(s);
}

/* regularised lower incomplete gamma P(a, x): series for x < a + 1, else continued fraction */
static double heph__gamma_p(double a, double x) {
    double gln = heph__lgamma(a);
    int i;
    if (x <= 0.0) return 0.0;
    if (x < a + 1.0) { /* P = e^-x x^a / Gamma(a+1) sum x^n / ((a+1)...(a+n)) */
        double ap = a, sum = 1.0 / a, del = sum;
        for (i = 0; i < 1000; i++) {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if (fabs(del) < fabs(sum) * 1e-15) break;
        }
        return sum * exp(-x + a * log(x) - gln);
    } else { /* Q by Lentz's continued fraction; P = 1 - Q */
        double b = x + 1.0 - a, c = 1e300, d = 1.0 / b, h = d;
        for (i = 1; i < 1000; i++) {
            double an = -(double)i * ((double)i - a), del;
            b += 2.0;
            d = an * d + b;
            if (fabs(d) < 1e-300) d = 1e-300;
            c = b + an / c;
            if (fabs(c) < 1e-300) c = 1e-300;
            d = 1.0 / d;
            del = d * c;
            h *= del;
            if (fabs(del - 1.0) < 1e-15) break;
        }
        return 1.0 - exp(-x + a * log(x) - gln) * h;
    }
}

HEPH_DEF double heph_chi2_cdf(double x, int k) { return heph__gamma_p(0.5 * (double)k, 0.5 * x); }

HEPH_DEF double heph_chi2_quantile(double p, int k) {
    double lo = 0.0, hi = (double)k + 10.0 * sqrt(2.0 * (double)k) + 100.0;
    int i;
    if (!(p > 0.0)) return 0.0;
    if (!(p < 1.0)) return HUGE_VAL;
    while (heph_chi2_cdf(hi, k) < p) hi *= 2.0;
    for (i = 0; i < 200; i++) { /* bisection: the cdf is monotone */
        double mid = 0.5 * (lo + hi);
        if (heph_chi2_cdf(mid, k) < p) lo = mid; else hi = mid;
        if (hi - lo < 1e-12 * hi) break;
    }
    return 0.5 * (lo + hi);
}

/* sort v (n) ascending in place: heap sort (no allocation, no global state) */
static void heph__sort_doubles(double *v, size_t n) {
    size_t start, end, root, child;
    double t;
    if (n < 2) return;
    for (start = n / 2; start-- > 0;) { /* heapify */
        root = start;
        while ((child = 2 * root + 1) < n) {
            if (child + 1 < n && v[child] < v[child + 1]) child++;
            if (v[root] < v[child]) { t = v[root]; v[root] = v[child]; v[child] = t; root = child; }
            else break;
        }
    }
    for (end = n - 1; end > 0; end--) {
        t = v[0]; v[0] = v[end]; v[end] = t;
        root = 0;
        while ((child = 2 * root + 1) < end) {
            if (child + 1 < end && v[child] < v[child + 1]) child++;
            if (v[root] < v[child]) { t = v[root]; v[root] = v[child]; v[child] = t; root = child; }
            else break;
        }
    }
}

/* median of n values (copies them into tmp) */
static double heph__median(const double *v, size_t n, double *tmp) {
    memcpy(tmp, v, n * sizeof(double));
    heph__sort_doubles(tmp, n);
    return n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
}

HEPH_DEF int heph_threshold_mad(const double *scores, size_t n, double k, double *thr) {
    double *tmp, med, mad;
    size_t i;
    *thr = HUGE_VAL;
    if (n == 0) return HEPH_E_ARG;
    tmp = (double *)heph__calloc(2 * n, sizeof(double));
    if (!tmp) return HEPH_E_NOMEM;
    med = heph__median(scores, n, tmp);
    for (i = 0; i < n; i++) tmp[n + i] = fabs(scores[i] - med);
    mad = heph__median(tmp + n, n, tmp);                       /* median |s - median| */
    HEPH_FREE(tmp);
    *thr = med + k * 1.4826 * mad;                             /* 1.4826 MAD ~ sigma (normal) */
    return HEPH_OK;
}

/* order by decreasing score: a stable bottom-up merge sort of indices through tmp (n) */
static void heph__rank_desc(const double *scores, size_t n, size_t *order, size_t *tmp) {
    size_t w, i;
    for (i = 0; i < n; i++) order[i] = i;
    for (w = 1; w < n; w *= 2) {
        size_t lo;
        for (lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi) /* take from the right only when strictly larger: stable */
                tmp[o++] = scores[order[b]] > scores[order[a]] ? order[b++] : order[a++];
            while (a < mid) tmp[o++] = order[a++];
            while (b < hi) tmp[o++] = order[b++];
        }
        memcpy(order, tmp, n * sizeof(size_t));
    }
}

HEPH_DEF int heph_rank_desc(const double *scores, size_t n, size_t *order) {
    size_t *tmp = (size_t *)heph__calloc(n ? n : 1, sizeof(size_t)), i;
    if (!tmp) {
        for (i = 0; i < n; i++) order[i] = i;
        return HEPH_E_NOMEM;
    }
    heph__rank_desc(scores, n, order, tmp);
    HEPH_FREE(tmp);
    return HEPH_OK;
}

HEPH_DEF void heph_top_dims(const double *zscore, int D, int k, int *top) {
    int i, j, n = 0;
    for (i = 0; i < D && k > 0; i++) { /* insertion into a list sorted by |z| descending */
        double v = fabs(zscore[i]);
        if (n == k && !(v > fabs(zscore[top[n - 1]]))) continue;
        j = n < k ? n++ : k - 1;
        while (j > 0 && fabs(zscore[top[j - 1]]) < v) { top[j] = top[j - 1]; j--; }
        top[j] = i;
    }
}

HEPH_DEF void heph_dim_counts(const double *zscores, size_t n, int D, int topk, double zmin,
                              int *counts) {
    int top[256], t;
    size_t i;
    if (topk > 256) topk = 256;
    if (topk > D) topk = D;
    for (i = 0; i < n; i++) {
        const double *zs = zscores + i * (size_t)D;
        heph_top_dims(zs, D, topk, top);
        for (t = 0; t < topk; t++)
            if (fabs(zs[top[t]]) >= zmin) counts[top[t]]++;
    }
}

HEPH_DEF void heph_counterfactual(const float *z, const double *zscore, const double *normal_mean,
                                  int D, int k, float *out) {
    int top[256], t;
    if (k > 256) k = 256;
    if (k > D) k = D;
    memcpy(out, z, (size_t)D * sizeof(float));
    heph_top_dims(zscore, D, k, top);
    for (t = 0; t < k; t++) out[top[t]] = (float)normal_mean[top[t]]; /* deviant dims -> normal mean */
}

HEPH_DEF void heph_lerp_codes(const float *a, const float *b, int D, int T, float *out) {
    int t, d;
    for (t = 0; t < T; t++) {
        float s = T > 1 ? (float)t / (float)(T - 1) : 0.0f;
        for (d = 0; d < D; d++) out[(size_t)t * (size_t)D + (size_t)d] = (1.0f - s) * a[d] + s * b[d]; /* (1-s) a + s b */
    }
}

HEPH_DEF void heph_maha_free(heph_maha *f) {
    HEPH_FREE(f->mean);
    HEPH_FREE(f->support);
    f->mean = f->cov = f->chol = f->work = NULL;
    f->support = NULL;
}

/* Ledoit-Wolf: S* = (1 - delta) S + delta (tr S / D) I with the closed-form delta */
static double heph__ledoit_wolf(const float *z, size_t n, int D, const double *mean, double *cov) {
    double mu = 0.0, d2 = 0.0, b2 = 0.0, delta;
    size_t i;
    int a, b;
    for (a = 0; a < D; a++) mu += cov[a * D + a];
    mu /= (double)D;                                          /* m = tr(S) / D */
    for (a = 0; a < D; a++)
        for (b = 0; b < D; b++) {
            double v = cov[a * D + b] - (a == b ? mu : 0.0);
            d2 += v * v;                                      /* |S - m I|_F^2 */
        }
    for (i = 0; i < n; i++) { /* b^2 = 1/n^2 sum |x x^T - S|_F^2 */
        double s = 0.0;
        for (a = 0; a < D; a++) {
            double xa = (double)z[i * (size_t)D + (size_t)a] - mean[a];
            for (b = 0; b < D; b++) {
                double v = xa * ((double)z[i * (size_t)D + (size_t)b] - mean[b]) - cov[a * D + b];
                s += v * v;
            }
        }
        b2 += s;
    }
    b2 /= (double)n * (double)n;
    if (b2 > d2) b2 = d2;
    delta = d2 > 0.0 ? b2 / d2 : 0.0;                         /* delta = min(b^2, d^2) / d^2 */
    for (a = 0; a < D; a++)
        for (b = 0; b < D; b++) cov[a * D + b] = (1.0 - delta) * cov[a * D + b] + (a == b ? delta * mu : 0.0);
    return delta;
}

/* FastMCD (Rousseeuw & Van Driessen 1999): random (D+1)-subsets, C-steps on the h points with
   the smallest distances, keep the smallest determinant; consistency correction by
   median(D^2) / chi^2_D median; reweighting on D^2 <= chi^2_D(0.975).                       */
static int heph__mcd(heph_maha *f, const float *z, size_t n, int D, double frac, uint64_t seed) {
    size_t h = frac > 0.0 ? (size_t)ceil(frac * (double)n) : (n + (size_t)D + 1) / 2, i;
    int n_starts = 500, s, it, a;
    double best_det = HUGE_VAL, *d2, *tmp, *mean, *cov, *L, corr;
    unsigned char *w, *best;
    size_t *ord;
    heph_rng rng;
    if (h < (size_t)D + 1) h = (size_t)D + 1;
    if (h > n) h = n;
    d2 = (double *)heph__calloc(2 * n, sizeof(double));
    mean = (double *)heph__calloc((size_t)D + 2 * (size_t)D * (size_t)D, sizeof(double));
    w = (unsigned char *)heph__calloc(2 * n, 1);
    ord = (size_t *)heph__calloc(2 * n, sizeof(size_t)); /* the order and its sort scratch */
    if (!d2 || !mean || !w || !ord) {
        HEPH_FREE(d2); HEPH_FREE(mean); HEPH_FREE(w); HEPH_FREE(ord);
        return heph__errf(f->err, HEPH_ERRLEN, HEPH_E_NOMEM, "MCD: out of memory");
    }
    tmp = d2 + n;
    cov = mean + D;
    L = cov + (size_t)D * (size_t)D;
    best = w + n;
    heph_rng_seed(&rng, seed);
    for (s = 0; s < n_starts; s++) {
        double det = 0.0;
        memset(w, 0, n);
        for (i = 0; i < (size_t)D + 1; i++) w[heph_rng_below(&rng, (uint32_t)n)] = 1; /* random subset */
        for (it = 0; it < 30; it++) {
            size_t k;
            double newdet = 0.0;
            heph__mean_cov(z, n, D, w, mean, cov);
            if (!heph__cholesky(cov, L, D)) { /* singular start: grow it by one random point */
                if (it == 0) { w[heph_rng_below(&rng, (uint32_t)n)] = 1; continue; }
                break;
            }
            for (a = 0; a < D; a++) newdet += 2.0 * log(L[a * D + a]); /* log det S */
            if (it > 1 && newdet >= det - 1e-12) { det = newdet; break; } /* C-steps converged */
            det = newdet;
            for (i = 0; i < n; i++) d2[i] = heph__d2(mean, L, D, z + i * (size_t)D, f->work);
            heph__rank_desc(d2, n, ord, ord + n);                     /* largest first */
            memset(w, 0, n);
            for (k = 0; k < h; k++) w[ord[n - 1 - k]] = 1;            /* the h closest points */
        }
        if (det < best_det && heph__mean_cov(z, n, D, w, mean, cov) >= (size_t)D + 1 && heph__cholesky(cov, L, D)) {
            best_det = det;
            memcpy(best, w, n);
        }
    }
    if (best_det == HUGE_VAL) {
        HEPH_FREE(d2); HEPH_FREE(mean); HEPH_FREE(w); HEPH_FREE(ord);
        return heph__errf(f->err, HEPH_ERRLEN, HEPH_E_ARG,
                          "MCD: every subset of %zu points has a singular covariance (n %zu, D %d)", h, n, D);
    }
    /* raw estimate, consistency correction: S *= median(D^2) / chi^2_D(0.5) */
    f->raw_logdet = best_det;
    heph__mean_cov(z, n, D, best, mean, cov);
    heph__cholesky(cov, L, D);
    for (i = 0; i < n; i++) d2[i] = heph__d2(mean, L, D, z + i * (size_t)D, f->work);
    corr = heph__median(d2, n, tmp) / heph_chi2_quantile(0.5, D);
    if (corr > 0.0)
        for (a = 0; a < D * D; a++) cov[a] *= corr;
    heph__cholesky(cov, L, D);
    /* reweighting: refit on the points within the 97.5 % chi^2_D quantile */
    {
        double cut = heph_chi2_quantile(0.975, D);
        for (i = 0; i < n; i++) best[i] = heph__d2(mean, L, D, z + i * (size_t)D, f->work) <= cut;
    }
    if (heph__mean_cov(z, n, D, best, f->mean, f->cov) < (size_t)D + 1 || !heph__cholesky(f->cov, f->chol, D)) {
        memcpy(f->mean, mean, (size_t)D * sizeof(double)); /* keep the corrected raw fit */
        memcpy(f->cov, cov, (size_t)D * (size_t)D * sizeof(double));
        heph__cholesky(f->cov, f->chol, D);
    }
    memcpy(f->support, best, n);
    HEPH_FREE(d2); HEPH_FREE(mean); HEPH_FREE(w); HEPH_FREE(ord);
    return HEPH_OK;
}

HEPH_DEF int heph_maha_fit(heph_maha *f, const float *z, size_t n, int D, int method,
                           double param, uint64_t seed) {
    size_t i;
    memset(f, 0, sizeof *f);
    f->D = D; f->method = method; f->n = n;
    if (D <= 0 || D > 4096) return heph__errf(f->err, HEPH_ERRLEN, HEPH_E_ARG, "fit: %d dimensions", D);
    if (n < 2) return heph__errf(f->err, HEPH_ERRLEN, HEPH_E_ARG, "fit: %zu points (need at least 2)", n);
    for (i = 0; i < n * (size_t)D; i++)
        if (!heph__finite((double)z[i]))
            return heph__errf(f->err, HEPH_ERRLEN, HEPH_E_ARG, "fit: point %zu is not finite", i / (size_t)D);
    f->mean = (double *)heph__calloc((size_t)D * (2 * (size_t)D + 3), sizeof(double));
    f->support = (unsigned char *)heph__calloc(n, 1);
    if (!f->mean || !f->support) {
        heph_maha_free(f);
        return heph__errf(f->err, HEPH_ERRLEN, HEPH_E_NOMEM, "fit: out of memory");
    }
    f->cov = f->mean + D;
    f->chol = f->cov + (size_t)D * (size_t)D;
    f->work = f->chol + (size_t)D * (size_t)D;
    memset(f->support, 1, n);
    if (method == HEPH_COV_MCD) {
        int rc;
        if (n <= (size_t)D + 1) {
            heph_maha_free(f);
            return heph__errf(f->err, HEPH_ERRLEN, HEPH_E_ARG,
                              "MCD needs more points than dimensions + 1 (%zu points, %d dimensions)", n, D);
        }
        rc = heph__mcd(f, z, n, D, param, seed);
        if (rc != HEPH_OK) { char e[HEPH_ERRLEN]; memcpy(e, f->err, sizeof e); heph_maha_free(f); memcpy(f->err, e, sizeof e); }
        return rc;
    }
    heph__mean_cov(z, n, D, NULL, f->mean, f->cov);
    if (method == HEPH_COV_LEDOIT_WOLF) {
        f->shrinkage = heph__ledoit_wolf(z, n, D, f->mean, f->cov);
    } else if (method == HEPH_COV_RIDGE) {
        int a;
        f->shrinkage = param > 0.0 ? param : 1e-2;
        for (a = 0; a < D; a++) f->cov[a * D + a] += f->shrinkage; /* S + eps I */
    } else if (method != HEPH_COV_EMPIRICAL) {
        heph_maha_free(f);
        return heph__errf(f->err, HEPH_ERRLEN, HEPH_E_ARG, "fit: unknown covariance method %d", method);
    }
    if (!heph__cholesky(f->cov, f->chol, D)) {
        double tr = 0.0;
        int a;
        for (a = 0; a < D; a++) tr += f->cov[a * D + a];
        heph_maha_free(f);
        if (tr == 0.0) /* Ledoit-Wolf shrinks towards (trace / D) I = 0: only a ridge helps */
            return heph__errf(f->err, HEPH_ERRLEN, HEPH_E_ARG,
                              "the %zu points in %d dimensions are all identical (no variance): their "
                              "covariance is 0; use a ridge", n, D);
        return heph__errf(f->err, HEPH_ERRLEN, HEPH_E_ARG,
                          "the %scovariance of %zu points in %d dimensions is singular%s; use %s",
                          method == HEPH_COV_LEDOIT_WOLF ? "Ledoit-Wolf " : "", n, D,
                          n <= (size_t)D ? " (fewer points than dimensions)" : "",
                          method == HEPH_COV_LEDOIT_WOLF ? "a ridge" : "Ledoit-Wolf or a ridge");
    }
    return HEPH_OK;
}

HEPH_DEF void heph_maha_score(heph_maha *f, const float *z, size_t n, double *d2) {
    /* D^2_i = |L^-1 (z_i - m)|^2, one latent at a time (heph__d2); part D takes tiles of
       latents side by side (D <= 256, n >= 32). Every D^2 is computed alone: threads cannot
       change it                                                                           */
    size_t i;
    if (!HEPH__REFERENCE && heph__maha_score_fast(f->mean, f->chol, f->D, z, n, d2)) return;
    for (i = 0; i < n; i++) d2[i] = heph__d2(f->mean, f->chol, f->D, z + i * (size_t)f->D, f->work);
}

HEPH_DEF void heph_maha_explain(heph_maha *f, const float *z, double *zscore, double *contrib) {
    int D = f->D, a;
    double *v = f->work, *y = f->work + D;
    for (a = 0; a < D; a++) {
        v[a] = (double)z[a] - f->mean[a];
        if (zscore) zscore[a] = v[a] / sqrt(f->cov[a * D + a]);      /* (z_d - m_d) / s_d */
        y[a] = v[a];
    }
    if (!contrib) return;
    heph__forward_solve(f->chol, y, D);
    heph__back_solve(f->chol, y, D);                                 /* y = S^-1 (z - m) */
    for (a = 0; a < D; a++) contrib[a] = v[a] * y[a];                /* c_d = (z - m)_d [S^-1 (z - m)]_d */
}

HEPH_DEF void heph_maha_walk(heph_maha *f, const float *dir, double r_max, int T, float *out) {
    int D = f->D, t, a, b;
    double *u = f->work, norm = 0.0;
    for (a = 0; a < D; a++) u[a] = (double)dir[a];
    heph__forward_solve(f->chol, u, D);                              /* u = L^-1 dir */
    for (a = 0; a < D; a++) norm += u[a] * u[a];
    norm = norm > 0.0 ? sqrt(norm) : 1.0;
    for (t = 0; t < T; t++) {
        double r = T > 1 ? r_max * (double)t / (double)(T - 1) : 0.0;
        for (a = 0; a < D; a++) { /* m + r L u / |u| */
            double s = 0.0;
            for (b = 0; b <= a; b++) s += f->chol[a * D + b] * u[b];
            out[(size_t)t * (size_t)D + (size_t)a] = (float)(f->mean[a] + r * s / norm);
        }
    }
}

HEPH_DEF int heph_vae_saliency(heph_vae *m, heph_maha *f, const float *x, float *out) {
    int D = m->cfg.z_dim, a;
    const float *h;
    double *y = f->work;
    HEPH__PLAIN(m);
    if (f->D != D) return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_MISMATCH, "saliency: fit has %d dimensions, the model %d", f->D, D);
    h = heph__net_forward(&m->enc, x, 1);
    for (a = 0; a < D; a++) y[a] = (double)h[a] - f->mean[a];
    heph__forward_solve(f->chol, y, D);
    heph__back_solve(f->chol, y, D);
    memset(m->dh, 0, 2 * (size_t)D * sizeof(float));
    for (a = 0; a < D; a++) m->dh[a] = (float)(2.0 * y[a]);          /* dD^2/dmu = 2 S^-1 (mu - m) */
    heph__net_backward(&m->enc, m->dh, 1, out); /* to the pixels (grads: scratch) */
    return HEPH_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* marginal, kNN and reconstruction scores                                                    */

HEPH_DEF void heph_marginal_free(heph_marginal *f) {
    HEPH_FREE(f->h); HEPH_FREE(f->x); HEPH_FREE(f->logf); HEPH_FREE(f->g0); HEPH_FREE(f->gdx); HEPH_FREE(f->glog);
    f->h = f->x = f->logf = f->g0 = f->gdx = f->glog = NULL;
    f->n = 0;
}

/* ln of the kernel density of the n values x (one dimension, bandwidth h) at v, leaving out
   x[skip] (skip >= n: none): ln (1/(n' h sqrt(2 pi)) sum_i exp(-(v - x_i)^2 / (2 h^2)))    */
static double heph__kde_log(const double *x, size_t n, double h, double v, size_t skip) {
    double mx = -HUGE_VAL, s = 0.0, inv = 1.0 / (2.0 * h * h);
    size_t i, cnt = n - (skip < n);
    for (i = 0; i < n; i++) /* the largest term first: the sum cannot underflow to 0 */
        if (i != skip && -(v - x[i]) * (v - x[i]) * inv > mx) mx = -(v - x[i]) * (v - x[i]) * inv;
    for (i = 0; i < n; i++)
        if (i != skip) s += exp(-(v - x[i]) * (v - x[i]) * inv - mx);
    return mx + log(s) - log((double)cnt * h * 2.5066282746310002);
}

HEPH_DEF int heph_marginal_fit(heph_marginal *f, const float *z, size_t n, int D) {
    size_t step, nk, i;
    long long j;
    memset(f, 0, sizeof *f);
    if (D < 1 || n < 3) return heph__errf(f->err, HEPH_ERRLEN, HEPH_E_ARG, "marginal fit: %zu codes of %d dimensions (needs at least 3 codes)", n, D);
    for (i = 0; i < n * (size_t)D; i++)
        if (!(fabsf(z[i]) <= FLT_MAX)) return heph__errf(f->err, HEPH_ERRLEN, HEPH_E_NAN, "marginal fit: code %zu is not finite", i / (size_t)D);
    step = (n + HEPH_KDE_MAX - 1) / HEPH_KDE_MAX;
    nk = (n + step - 1) / step;
    f->D = D; f->n = nk; f->n_fit = n; f->step = step;
    f->h = (double *)heph__calloc((size_t)D, sizeof(double));
    f->x = (double *)heph__calloc(nk * (size_t)D, sizeof(double));
    f->logf = (double *)heph__calloc(nk * (size_t)D, sizeof(double));
    f->g0 = (double *)heph__calloc((size_t)D, sizeof(double));
    f->gdx = (double *)heph__calloc((size_t)D, sizeof(double));
    f->glog = (double *)heph__calloc((size_t)D * HEPH_KDE_GRID, sizeof(double));
    if (!f->h || !f->x || !f->logf || !f->g0 || !f->gdx || !f->glog) { heph_marginal_free(f); return heph__errf(f->err, HEPH_ERRLEN, HEPH_E_NOMEM, "marginal fit: out of memory"); }
    HEPH__OMP_FOR
    for (j = 0; j < D; j++) { /* each dimension alone: the same bits for any thread count */
        double *x = f->x + (size_t)j * nk, *lf = f->logf + (size_t)j * nk, *srt = lf, mean = 0.0, var = 0.0, iqr, sd, h;
        size_t a;
        for (a = 0; a < nk; a++) { x[a] = (double)z[a * step * (size_t)D + (size_t)j]; mean += x[a]; }
        mean /= (double)nk;
        for (a = 0; a < nk; a++) var += (x[a] - mean) * (x[a] - mean);
        sd = sqrt(var / (double)(nk - 1));
        for (a = 0; a < nk; a++) srt[a] = x[a]; /* quartiles from a sorted copy (lf is scratch) */
        heph__sort_doubles(srt, nk);
        iqr = srt[(3 * (nk - 1)) / 4] - srt[(nk - 1) / 4];
        h = 0.9 * (iqr > 0.0 && iqr / 1.34 < sd ? iqr / 1.34 : sd) * pow((double)nk, -0.2);
        f->h[j] = h > HEPH_KDE_HMIN ? h : HEPH_KDE_HMIN;
        f->g0[j] = srt[0] - 6.0 * f->h[j]; /* the table spans the values and 6 bandwidths more */
        f->gdx[j] = (srt[nk - 1] - srt[0] + 12.0 * f->h[j]) / (HEPH_KDE_GRID - 1);
        for (a = 0; a < HEPH_KDE_GRID; a++)
            f->glog[(size_t)j * HEPH_KDE_GRID + a] = heph__kde_log(x, nk, f->h[j], f->g0[j] + (double)a * f->gdx[j], nk);
        for (a = 0; a < nk; a++) lf[a] = heph__kde_log(x, nk, f->h[j], x[a], a); /* leave-one-out */
        heph__sort_doubles(lf, nk);
    }
    return HEPH_OK;
}

/* ln f_j(v) of dimension j: from the table, linear between its points; exact off the table */
static double heph__kde_table(const heph_marginal *f, int j, double v) {
    double t = (v - f->g0[j]) / f->gdx[j], fr;
    const double *g = f->glog + (size_t)j * HEPH_KDE_GRID;
    size_t a;
    if (!(t >= 0.0 && t <= (double)(HEPH_KDE_GRID - 1))) return heph__kde_log(f->x + (size_t)j * f->n, f->n, f->h[j], v, f->n);
    a = (size_t)t < HEPH_KDE_GRID - 1 ? (size_t)t : HEPH_KDE_GRID - 2;
    fr = t - (double)a;
    return g[a] + fr * (g[a + 1] - g[a]);
}

/* -ln p of log density lv in one dimension: sorted leave-one-out log densities lf (n) */
static double heph__density_tail(const double *lf, size_t n, double lv) {
    size_t lo = 0, hi = n; /* count = #{lf <= lv}: binary search in the ascending list */
    while (lo < hi) { size_t mid = lo + (hi - lo) / 2; if (lf[mid] <= lv) lo = mid + 1; else hi = mid; }
    if (lo == 0) return log((double)n + 1.0) - (lv - lf[0]); /* p = f(v) / (f_min (n + 1)) */
    return log((double)n + 1.0) - log((double)lo + 1.0);       /* p = (1 + count) / (n + 1) */
}

HEPH_DEF int heph_marginal_score(heph_marginal *f, const float *z, size_t m, int self,
                                 double *score, double *pdim) {
    long long i;
    int D = f->D;
    size_t step = f->step;
    if (!f->x) return heph__errf(f->err, HEPH_ERRLEN, HEPH_E_ARG, "marginal score: no fit");
    if (self && m != f->n_fit)
        return heph__errf(f->err, HEPH_ERRLEN, HEPH_E_ARG, "marginal score: self needs the %zu codes of the fit, got %zu", f->n_fit, m);
    HEPH__OMP_FOR
    for (i = 0; i < (long long)m; i++) {
        const float *zi = z + (size_t)i * (size_t)D;
        double best = 0.0, lp, P;
        int j;
        /* a code the fit kept (self, every step-th) leaves itself out */
        size_t skip = self && (size_t)i % step == 0 ? (size_t)i / step : (size_t)-1;
        for (j = 0; j < D; j++) {
            double v = (double)zi[j], t = HUGE_VAL;
            if (fabs(v) <= DBL_MAX) /* a new value reads the table; a fitted code leaves itself out, exactly */
                t = heph__density_tail(f->logf + (size_t)j * f->n, f->n,
                                       skip < f->n ? heph__kde_log(f->x + (size_t)j * f->n, f->n, f->h[j], v, skip) : heph__kde_table(f, j, v));
            if (pdim) pdim[(size_t)i * (size_t)D + (size_t)j] = t;
            if (t > best) best = t;
        }
        lp = -best; /* ln of the smallest p; P = 1 - (1 - p)^D, in logs where p is tiny */
        P = lp < -30.0 ? HUGE_VAL : -expm1((double)D * log1p(-exp(lp)));
        score[i] = (lp < -30.0 ? -(log((double)D) + lp) : -log(P)) + 0.0; /* + 0: no -0 when P = 1 */
    }
    return HEPH_OK;
}

HEPH_DEF int heph_knn_score(const float *ref, size_t n, int D, const float *z, size_t m, int k,
                            int self, double *dist, char *err, size_t errlen) {
    long long i;
    double *buf;
    if (D < 1 || k < 1 || (size_t)k > n - (self ? 1 : 0) || (self && n < 2))
        return heph__errf(err, errlen, HEPH_E_ARG, "knn: k = %d with %zu reference codes%s (needs 1 <= k <= %zu)", k, n,
                          self ? " scored against themselves" : "", n > 0 ? n - (self ? 1 : 0) : 0);
    buf = (double *)heph__calloc(m > 0 ? m * (size_t)k : 1, sizeof(double));
    if (!buf) return heph__errf(err, errlen, HEPH_E_NOMEM, "knn: out of memory for %zu x %d distances", m, k);
    if (!HEPH__REFERENCE && heph__knn_fast(ref, n, D, z, m, k, self, buf, dist)) { HEPH_FREE(buf); return HEPH_OK; }
    HEPH__OMP_FOR
    for (i = 0; i < (long long)m; i++) {
        double *best = buf + (size_t)i * (size_t)k; /* the k smallest squared distances, ascending */
        const float *q = z + (size_t)i * (size_t)D;
        size_t r, filled = 0;
        for (r = 0; r < n; r++) {
            const float *p = ref + r * (size_t)D;
            double d2 = 0.0;
            size_t at;
            int a;
            if (self && r == (size_t)i) continue;
            for (a = 0; a < D; a++) d2 += ((double)q[a] - (double)p[a]) * ((double)q[a] - (double)p[a]);
            if (filled == (size_t)k && d2 >= best[k - 1]) continue;
            at = filled < (size_t)k ? filled++ : (size_t)k - 1; /* insertion into the sorted list */
            while (at > 0 && best[at - 1] > d2) { best[at] = best[at - 1]; at--; }
            best[at] = d2;
        }
        dist[i] = sqrt(best[k - 1]);
    }
    HEPH_FREE(buf);
    return HEPH_OK;
}

HEPH_DEF int heph_knn_search(const float *ref, size_t n, int D, const float *z, size_t m, int k,
                             const size_t *skip, size_t *idx, double *dist, char *err, size_t errlen) {
    long long i;
    if (D < 1 || k < 1 || (size_t)k + (skip ? 1 : 0) > n)
        return heph__errf(err, errlen, HEPH_E_ARG, "knn search: k = %d with %zu reference codes (needs 1 <= k <= %zu)", k, n,
                          n > 0 ? n - (skip ? 1 : 0) : 0);
    HEPH__OMP_FOR
    for (i = 0; i < (long long)m; i++) {
        double *bd = dist + (size_t)i * (size_t)k; /* the k smallest squared distances, ascending */
        size_t *bi = idx + (size_t)i * (size_t)k, r, filled = 0;
        const float *q = z + (size_t)i * (size_t)D;
        for (r = 0; r < n; r++) {
            double d2 = 0.0;
            size_t at;
            int a;
            if (skip && r == skip[i]) continue;
            for (a = 0; a < D; a++) d2 += ((double)q[a] - (double)ref[r * (size_t)D + (size_t)a]) * ((double)q[a] - (double)ref[r * (size_t)D + (size_t)a]);
            if (filled == (size_t)k && d2 >= bd[k - 1]) continue; /* equal: the lower index stays */
            at = filled < (size_t)k ? filled++ : (size_t)k - 1;
            while (at > 0 && bd[at - 1] > d2) { bd[at] = bd[at - 1]; bi[at] = bi[at - 1]; at--; }
            bd[at] = d2; bi[at] = r;
        }
        for (r = 0; r < (size_t)k; r++) bd[r] = sqrt(bd[r]);
    }
    return HEPH_OK;
}

/* ---- Gaussian mixture ---------------------------------------------------------------------- */

HEPH_DEF void heph_gmm_free(heph_gmm *g) {
    HEPH_FREE(g->w);
    g->w = g->mean = g->chol = g->logdet = g->work = NULL;
}

/* ln sum_c w_c N(z; m_c, S_c), and each component's ln w_c N(...) into lc (k) */
static double heph__gmm_logp(const heph_gmm *g, const float *z, double *lc, double *work) {
    double mx = -HUGE_VAL, s = 0.0;
    int c;
    for (c = 0; c < g->k; c++) { /* ln w + ln N = ln w - (D ln 2pi + ln det S + d^2) / 2 */
        double d2 = heph__d2(g->mean + (size_t)c * (size_t)g->D, g->chol + (size_t)c * (size_t)g->D * (size_t)g->D, g->D, z, work);
        lc[c] = log(g->w[c]) - 0.5 * ((double)g->D * log(2.0 * 3.14159265358979323846) + g->logdet[c] + d2);
        mx = lc[c] > mx ? lc[c] : mx;
    }
    for (c = 0; c < g->k; c++) s += exp(lc[c] - mx);
    return mx + log(s);
}

/* M-step from responsibilities r (n, k): weights, means, covariances + 1e-6 I, Cholesky */
static int heph__gmm_mstep(heph_gmm *g, const float *z, size_t n, const double *r, double *cov) {
    int D = g->D, c, a, b;
    size_t i;
    for (c = 0; c < g->k; c++) {
        double nc = 0.0, *m = g->mean + (size_t)c * (size_t)D;
        for (a = 0; a < D; a++) m[a] = 0.0;
        for (a = 0; a < D * D; a++) cov[a] = 0.0;
        for (i = 0; i < n; i++) {
            double ri = r[i * (size_t)g->k + (size_t)c];
            nc += ri;
            for (a = 0; a < D; a++) m[a] += ri * (double)z[i * (size_t)D + (size_t)a];
        }
        nc += 10.0 * DBL_EPSILON; /* as scikit-learn: an empty component keeps a finite mean */
        for (a = 0; a < D; a++) m[a] /= nc;                                   /* m_c = sum r z / N_c */
        for (i = 0; i < n; i++) {
            double ri = r[i * (size_t)g->k + (size_t)c];
            for (a = 0; a < D; a++)
                for (b = 0; b <= a; b++)
                    cov[a * D + b] += ri * ((double)z[i * (size_t)D + (size_t)a] - m[a]) * ((double)z[i * (size_t)D + (size_t)b] - m[b]);
        }
        for (a = 0; a < D; a++)
            for (b = 0; b <= a; b++) cov[b * D + a] = cov[a * D + b] = cov[a * D + b] / nc + (a == b ? 1e-6 : 0.0);
        if (!heph__cholesky(cov, g->chol + (size_t)c * (size_t)D * (size_t)D, D)) return 0;
        g->logdet[c] = 0.0;
        for (a = 0; a < D; a++) g->logdet[c] += 2.0 * log(g->chol[((size_t)c * (size_t)D + (size_t)a) * (size_t)D + (size_t)a]);
        g->w[c] = nc / (double)n;                                             /* w_c = N_c / n */
    }
    return 1;
}

/* EM for k components from k-means++ seeds; returns ln L, or -HUGE_VAL when a covariance fails */
static double heph__gmm_em(heph_gmm *g, const float *z, size_t n, heph_rng *rng, double *r, double *cov, double *near) {
    int D = g->D, k = g->k, c, it, a;
    size_t i, seeds[16];
    double ll = -HUGE_VAL;
    for (c = 0; c < k; c++) { /* k-means++: the next seed with probability ~ squared distance */
        double tot = 0.0, u;
        for (i = 0; i < n; i++) {
            double d = c ? HUGE_VAL : 1.0;
            int cc;
            for (cc = 0; cc < c; cc++) {
                double s = 0.0;
                for (a = 0; a < D; a++) {
                    double v = (double)z[i * (size_t)D + (size_t)a] - (double)z[seeds[cc] * (size_t)D + (size_t)a];
                    s += v * v;
                }
                d = s < d ? s : d;
            }
            near[i] = d;
            tot += d;
        }
        u = (double)heph_rng_uniform(rng) * tot;
        for (i = 0; i + 1 < n && u >= near[i]; i++) u -= near[i];
        seeds[c] = i;
    }
    for (i = 0; i < n; i++) { /* hard start: each code to its nearest seed */
        int best = 0;
        double bd = HUGE_VAL;
        for (c = 0; c < k; c++) {
            double s = 0.0;
            for (a = 0; a < D; a++) {
                double v = (double)z[i * (size_t)D + (size_t)a] - (double)z[seeds[c] * (size_t)D + (size_t)a];
                s += v * v;
            }
            if (s < bd) { bd = s; best = c; }
        }
        for (c = 0; c < k; c++) r[i * (size_t)k + (size_t)c] = c == best;
    }
    for (it = 0; it < 300; it++) {
        double nll = 0.0;
        if (!heph__gmm_mstep(g, z, n, r, cov)) return -HUGE_VAL;
        for (i = 0; i < n; i++) { /* E-step: r_ic = w_c N_c(z_i) / p(z_i) */
            double lp = heph__gmm_logp(g, z + i * (size_t)D, r + i * (size_t)k, g->work);
            for (c = 0; c < k; c++) r[i * (size_t)k + (size_t)c] = exp(r[i * (size_t)k + (size_t)c] - lp);
            nll -= lp;
        }
        if (fabs(-nll - ll) < 1e-6 * (double)n) { ll = -nll; break; } /* mean ln L moved < 1e-6 */
        ll = -nll;
    }
    return heph__gmm_mstep(g, z, n, r, cov) ? ll : -HUGE_VAL;
}

HEPH_DEF int heph_gmm_fit(heph_gmm *g, const float *z, size_t n, int D, int k_max, uint64_t seed) {
    size_t i, per = 0;
    double *r, *cov, *near, best = HUGE_VAL;
    double *bw = NULL;
    heph_rng rng;
    int k, bk = 0;
    memset(g, 0, sizeof *g);
    g->D = D;
    if (D < 1 || D > 256 || k_max < 1 || k_max > 16) return heph__errf(g->err, HEPH_ERRLEN, HEPH_E_ARG, "gmm: D %d, k_max %d (1..256, 1..16)", D, k_max);
    if (n < (size_t)D + 2) return heph__errf(g->err, HEPH_ERRLEN, HEPH_E_ARG, "gmm: %zu codes for %d dimensions (need at least D + 2)", n, D);
    for (i = 0; i < n * (size_t)D; i++)
        if (!heph__finite((double)z[i])) return heph__errf(g->err, HEPH_ERRLEN, HEPH_E_ARG, "gmm: code %zu is not finite", i / (size_t)D);
    per = (size_t)k_max * (1 + (size_t)D + (size_t)D * (size_t)D + 1); /* w, mean, chol, logdet */
    g->w = (double *)heph__calloc(2 * per + (size_t)D, sizeof(double));
    r = (double *)heph__calloc(n * (size_t)k_max + (size_t)D * (size_t)D + n, sizeof(double));
    if (!g->w || !r) { HEPH_FREE(r); heph_gmm_free(g); return heph__errf(g->err, HEPH_ERRLEN, HEPH_E_NOMEM, "gmm: out of memory"); }
    cov = r + n * (size_t)k_max;
    near = cov + (size_t)D * (size_t)D;
    bw = g->w + per; /* the best fit so far, in the same layout */
    g->work = bw + per;
    heph_rng_seed(&rng, seed);
    for (k = 1; k <= k_max; k++) {
        int start;
        double p = (double)(k - 1) + (double)k * D + (double)k * D * (D + 1) / 2.0;
        g->k = k;
        g->mean = g->w + k; g->chol = g->mean + (size_t)k * (size_t)D; g->logdet = g->chol + (size_t)k * (size_t)D * (size_t)D;
        g->bic[k - 1] = HUGE_VAL;
        for (start = 0; start < (k > 1 ? 8 : 1); start++) { /* EM finds local optima: 8 starts */
            double ll = heph__gmm_em(g, z, n, &rng, r, cov, near);
            double bic = ll > -HUGE_VAL ? -2.0 * ll + p * log((double)n) : HUGE_VAL; /* BIC = -2 ln L + p ln n */
            if (bic < g->bic[k - 1]) g->bic[k - 1] = bic;
            if (bic < best) { best = bic; bk = k; memcpy(bw, g->w, per * sizeof(double)); }
        }
    }
    HEPH_FREE(r);
    if (!bk) { heph_gmm_free(g); return heph__errf(g->err, HEPH_ERRLEN, HEPH_E_ARG, "gmm: every covariance is singular (%zu codes, D %d)", n, D); }
    memcpy(g->w, bw, per * sizeof(double));
    g->k = bk;
    g->mean = g->w + bk; g->chol = g->mean + (size_t)bk * (size_t)D; g->logdet = g->chol + (size_t)bk * (size_t)D * (size_t)D;
    return HEPH_OK;
}

HEPH_DEF int heph_gmm_score(heph_gmm *g, const float *z, size_t m, double *score) {
    double lc[16];
    size_t i;
    for (i = 0; i < m; i++) {
        double lp;
        int a;
        for (a = 0; a < g->D; a++)
            if (!heph__finite((double)z[i * (size_t)g->D + (size_t)a])) return heph__errf(g->err, HEPH_ERRLEN, HEPH_E_ARG, "gmm score: code %zu is not finite", i);
        lp = heph__gmm_logp(g, z + i * (size_t)g->D, lc, g->work);
        score[i] = -lp;                                                       /* -ln p(z) */
    }
    return HEPH_OK;
}

HEPH_DEF int heph_vae_recon_score(heph_vae *m, const float *x, size_t n, double *recon) {
    size_t s, D = (size_t)m->cfg.z_dim, n_in = (size_t)m->enc.in_n;
    HEPH__PLAIN(m);
    for (s = 0; s < n; s += (size_t)m->cfg.max_batch) {
        int B = (int)(n - s < (size_t)m->cfg.max_batch ? n - s : (size_t)m->cfg.max_batch), b;
        const float *h = heph__net_forward(&m->enc, x + s * n_in, B), *lg;
        for (b = 0; b < B; b++) memcpy(m->z + (size_t)b * D, h + (size_t)b * 2 * D, D * sizeof(float)); /* z = mu */
        lg = heph__net_forward(&m->dec, m->z, B);
        HEPH__OMP_FOR_IF(B >= 64)
        for (b = 0; b < B; b++) { /* each picture's own sum: the same bits for any thread count */
            const float *xb = x + (s + (size_t)b) * n_in, *lb = lg + (size_t)b * n_in;
            recon[s + (size_t)b] = m->cfg.obj.recon == HEPH_RECON_BERNOULLI ? heph_bce_logits(NULL, lb, xb, n_in, 1.0f)
                                                                             : heph_sqerr_logits(NULL, lb, xb, n_in, 1.0f);
        }
    }
    for (s = 0; s < n; s++)
        if (!(fabs(recon[s]) <= DBL_MAX)) return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_NAN, "recon score: picture %zu gives a non-finite reconstruction term", s);
    return HEPH_OK;
}

/* log w of k samples for the B pictures of one chunk starting at picture s: lw (B, k) */
static void heph__iwae_chunk(heph_vae *m, const float *x, size_t s, size_t first, int B, int k, uint64_t seed,
                             float *ml, double *lw, heph_rng *rng) {
    size_t D = (size_t)m->cfg.z_dim, n_in = (size_t)m->enc.in_n;
    const float *h = heph__net_forward(&m->enc, x + s * n_in, B), *lg;
    int b, t;
    memcpy(ml, h, (size_t)B * 2 * D * sizeof(float)); /* mu, logvar per row */
    for (b = 0; b < B; b++) /* picture s+b draws its samples from its own stream */
        heph_rng_seed(&rng[b], seed ^ ((uint64_t)(first + s + (size_t)b) * 0x9E3779B97F4A7C15ULL));
    for (t = 0; t < k; t++) { /* each picture on its own: the same bits for any thread count */
        HEPH__OMP_FOR_IF(B >= 64)
        for (b = 0; b < B; b++) {
            double lq = 0.0, lp = 0.0;
            size_t j;
            for (j = 0; j < D; j++) {
                float mu = ml[(size_t)b * 2 * D + j], lv = ml[(size_t)b * 2 * D + D + j], e, z;
                lv = lv < HEPH_LOGVAR_MIN ? HEPH_LOGVAR_MIN : (lv > HEPH_LOGVAR_MAX ? HEPH_LOGVAR_MAX : lv);
                e = heph_rng_normal(&rng[b]);
                z = mu + expf(0.5f * lv) * e;                                  /* z = mu + sigma eps */
                m->z[(size_t)b * D + j] = z;
                lp += -0.5 * (double)z * (double)z;                            /* ln N(z; 0, 1) + c */
                lq += -0.5 * ((double)e * (double)e + (double)lv);             /* ln q(z | x) + c */
            }
            lw[(size_t)b * (size_t)k + (size_t)t] = lp - lq;
        }
        lg = heph__net_forward(&m->dec, m->z, B);
        HEPH__OMP_FOR_IF(B >= 64)
        for (b = 0; b < B; b++) {
            const float *xb = x + (s + (size_t)b) * n_in, *lb = lg + (size_t)b * n_in;
            double rec = m->cfg.obj.recon == HEPH_RECON_BERNOULLI ? heph_bce_logits(NULL, lb, xb, n_in, 1.0f)
                                                                   : 0.5 * heph_sqerr_logits(NULL, lb, xb, n_in, 1.0f);
            lw[(size_t)b * (size_t)k + (size_t)t] -= rec;                      /* + ln p(x | z) */
        }
    }
}

HEPH_DEF int heph_vae_iwae_score(heph_vae *m, const float *x, size_t n, int k, uint64_t seed,
                                 double *iwae, double *elbo) {
    return heph_vae_iwae_score_from(m, x, n, 0, k, seed, iwae, elbo);
}

HEPH_DEF int heph_vae_iwae_score_from(heph_vae *m, const float *x, size_t n, size_t first, int k, uint64_t seed,
                                      double *iwae, double *elbo) {
    size_t s, D = (size_t)m->cfg.z_dim, MB = (size_t)m->cfg.max_batch, i;
    float *ml;
    double *lw;
    heph_rng *rng;
    HEPH__PLAIN(m);
    if (k < 1 || k > 1000000) return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_ARG, "iwae score: k = %d samples (1 .. 1000000)", k);
    ml = (float *)heph__calloc(MB * 2 * D, sizeof(float));
    lw = (double *)heph__calloc(MB * (size_t)k, sizeof(double));
    rng = (heph_rng *)heph__calloc(MB, sizeof(heph_rng));
    if (!ml || !lw || !rng) {
        HEPH_FREE(ml); HEPH_FREE(lw); HEPH_FREE(rng);
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_NOMEM, "iwae score: out of memory");
    }
    for (s = 0; s < n; s += MB) {
        int B = (int)(n - s < MB ? n - s : MB), b, t;
        heph__iwae_chunk(m, x, s, first, B, k, seed, ml, lw, rng);
        for (b = 0; b < B; b++) {
            const double *w = lw + (size_t)b * (size_t)k;
            double mx = w[0], sum = 0.0, mean = 0.0;
            for (t = 1; t < k; t++) mx = w[t] > mx ? w[t] : mx;
            for (t = 0; t < k; t++) { sum += exp(w[t] - mx); mean += w[t]; }
            if (iwae) iwae[s + (size_t)b] = -(mx + log(sum) - log((double)k)); /* -(logsumexp - ln k) */
            if (elbo) elbo[s + (size_t)b] = -mean / (double)k;
        }
    }
    HEPH_FREE(ml); HEPH_FREE(lw); HEPH_FREE(rng);
    for (i = 0; i < n; i++)
        if ((iwae && !(fabs(iwae[i]) <= DBL_MAX)) || (elbo && !(fabs(elbo[i]) <= DBL_MAX)))
            return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_NAN, "iwae score: picture %zu gives a non-finite likelihood", first + i);
    return HEPH_OK;
}

HEPH_DEF void heph_complexity_score(const double *nll, const double *bits, size_t n, double *score) {
    size_t i;
    for (i = 0; i < n; i++) score[i] = nll[i] / log(2.0) - bits[i]; /* -log2 p(x) - L(x) */
}

HEPH_DEF double heph_complexity_bits(const float *x, int c, int h, int w) {
    uint32_t count[256];
    size_t i, n = (size_t)c * (size_t)h * (size_t)w;
    double bits = 0.0;
    int ch, y, xx;
    memset(count, 0, sizeof count);
    for (ch = 0; ch < c; ch++)
        for (y = 0; y < h; y++) {
            int left = 0;
            for (xx = 0; xx < w; xx++) {
                float v = x[((size_t)ch * (size_t)h + (size_t)y) * (size_t)w + (size_t)xx];
                int q = v > 0.0f ? (v < 1.0f ? (int)(v * 255.0f + 0.5f) : 255) : 0; /* 8 bits */
                count[(q - left) & 255]++;                                          /* Sub residual */
                left = q;
            }
        }
    for (i = 0; i < 256; i++) /* sum over residuals of -log2 f = -sum_r count_r log2(count_r / n) */
        if (count[i]) bits -= (double)count[i] * log2((double)count[i] / (double)n);
    return bits;
}

HEPH_DEF void heph_tail_free(heph_tail *t) {
    HEPH_FREE(t->c);
    t->c = NULL;
    t->m = 0;
}

HEPH_DEF int heph_tail_fit(heph_tail *t, const double *cal, size_t m) {
    size_t i, t0;
    double a = 0.0, v = 0.0, r;
    memset(t, 0, sizeof *t);
    if (m < 20) return heph__errf(t->err, HEPH_ERRLEN, HEPH_E_ARG, "calibration: %zu scores (need at least 20)", m);
    for (i = 0; i < m; i++)
        if (!heph__finite(cal[i])) return heph__errf(t->err, HEPH_ERRLEN, HEPH_E_ARG, "calibration: score %zu is not finite", i);
    t->c = (double *)heph__calloc(m, sizeof(double));
    if (!t->c) return heph__errf(t->err, HEPH_ERRLEN, HEPH_E_NOMEM, "calibration: out of memory for %zu scores", m);
    memcpy(t->c, cal, m * sizeof(double));
    heph__sort_doubles(t->c, m);
    t->m = m;
    t0 = m / 10 > 10 ? m / 10 : 10;
    t->u = t->c[m - 1 - t0];
    for (i = m - t0; i < m; i++) a += t->c[i] - t->u;           /* excesses y over u */
    a /= (double)t0;                                             /* their mean */
    for (i = m - t0; i < m; i++) v += (t->c[i] - t->u - a) * (t->c[i] - t->u - a);
    v /= (double)t0;                                             /* their variance */
    r = v > 0.0 ? a * a / v : HUGE_VAL;
    t->xi = r < 1.0 ? 0.5 * (1.0 - r) : 0.0;                     /* xi = (1 - a^2/v) / 2, >= 0 */
    t->sigma = t->xi > 0.0 ? 0.5 * a * (1.0 + r) : a;            /* sigma = a (1 + a^2/v) / 2 */
    if (!(t->sigma > 1e-12 * (1.0 + fabs(t->u)))) t->sigma = 1e-12 * (1.0 + fabs(t->u));
    return HEPH_OK;
}

/* ln G(y): the generalised Pareto tail (xi > 0) or the exponential one (xi = 0) */
static double heph__tail_logg(const heph_tail *t, double y) {
    return t->xi > 0.0 ? -log1p(t->xi * y / t->sigma) / t->xi : -y / t->sigma;
}

HEPH_DEF double heph_tail_logp(const heph_tail *t, double s) {
    size_t lo = 0, hi = t->m;
    double n;
    if (s != s) return s; /* NaN stays NaN */
    while (lo < hi) {     /* lo = the first j with c_(j) >= s */
        size_t mid = lo + (hi - lo) / 2;
        if (t->c[mid] < s) lo = mid + 1; else hi = mid;
    }
    if (lo == t->m) /* beyond every calibration score: G(s - u) / (G(c_max - u) (m + 1)) */
        return heph__tail_logg(t, s - t->u) - heph__tail_logg(t, t->c[t->m - 1] - t->u) - log((double)t->m + 1.0);
    if (lo == 0) return 0.0;
    n = (double)(t->m - lo) + (t->c[lo] - s) / (t->c[lo] - t->c[lo - 1]);        /* n(s) */
    return log((1.0 + n) / ((double)t->m + 1.0));
}

HEPH_DEF double heph_combine_sidak(const double *logp, int K, int *which) {
    int k, best = 0;
    double lp;
    for (k = 1; k < K; k++)
        if (logp[k] < logp[best]) best = k;
    if (which) *which = best;
    lp = logp[best];
    if (lp < -30.0) return -(log((double)K) + lp);           /* P = K p to 1e-13 relative */
    return -log(-expm1((double)K * log1p(-exp(lp))));         /* -ln(1 - (1 - p)^K) */
}

/* ------------------------------------------------------------------------------------------ */
/* pictures                                                                                   */

HEPH_DEF int heph_grid_width(int cols, int w, int pad) { return cols * (w + pad) + pad; }
HEPH_DEF int heph_grid_height(int n, int cols, int h, int pad) {
    int rows = cols > 0 ? (n + cols - 1) / cols : 0;
    return rows * (h + pad) + pad;
}

/* dst pixel = 255 * clamp(img value, 0, 1); gray pictures are copied to all three channels */
HEPH_DEF void heph_image_grid(uint8_t *dst, const float *imgs, int n, int cols, int c, int h,
                              int w, int pad) {
    int W = heph_grid_width(cols, w, pad), H = heph_grid_height(n, cols, h, pad), i, y, x, ch;
    memset(dst, 96, (size_t)W * (size_t)H * 3);
    for (i = 0; i < n; i++) {
        int ox = pad + (i % cols) * (w + pad), oy = pad + (i / cols) * (h + pad);
        const float *img = imgs + (size_t)i * (size_t)c * (size_t)h * (size_t)w;
        for (y = 0; y < h; y++)
            for (x = 0; x < w; x++)
                for (ch = 0; ch < 3; ch++) {
                    float v = img[(size_t)(c == 3 ? ch : 0) * (size_t)h * (size_t)w + (size_t)y * (size_t)w + (size_t)x];
                    v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
                    dst[((size_t)(oy + y) * (size_t)W + (size_t)(ox + x)) * 3 + (size_t)ch] =
                        (uint8_t)(v * 255.0f + 0.5f);
                }
    }
}

/* 1 if v is neither NaN nor +-Inf (NaN fails both comparisons; no isfinite macro needed) */
static int heph__finite_f(float v) { return v >= -3.40282347e38f && v <= 3.40282347e38f; }

/* ------------------------------------------------------------------------------------------ */
/* metrics: MIG (discrete and continuous), correlation, SSIM, AUROC                            */

/* quiet NaN as a double (the result of a metric that is undefined for its input) */
static double heph__nan(void) {
    return (double)NAN;
}

/* a*b*c bytes with overflow check, then HEPH_MALLOC; NULL on overflow or failure */
static void *heph__malloc3(size_t a, size_t b, size_t c) {
    size_t ab, bytes;
    if (!heph__mul_ok(a, b, &ab) || !heph__mul_ok(ab, c, &bytes) || bytes == 0) return NULL;
    return HEPH_MALLOC(bytes);
}

/* stable bottom-up merge sort of idx[0..n) by key[idx[i]] ascending (equal keys keep their
   order, so starting from 0..n-1 ties are broken by index); tmp: n scratch entries */
static void heph__sort_idx(size_t *idx, size_t *tmp, const float *key, size_t n) {
    size_t width, i, *src = idx, *dst = tmp, *t;
    for (width = 1; width < n; width = width > n / 2 ? n : 2 * width) {
        for (i = 0; i < n; i += n - i > 2 * width ? 2 * width : n - i) {
            size_t mid = n - i > width ? i + width : n;
            size_t hi = n - mid > width ? mid + width : n;
            size_t a = i, b = mid, o = i;
            /* take from the right run only when strictly smaller: stability */
            while (a < mid && b < hi) dst[o++] = key[src[b]] < key[src[a]] ? src[b++] : src[a++];
            while (a < mid) dst[o++] = src[a++];
            while (b < hi) dst[o++] = src[b++];
        }
        t = src; src = dst; dst = t;
    }
    if (src != idx) memcpy(idx, src, n * sizeof *idx);
}

/* largest and second largest of v[0..d) (second = 0 when d == 1) */
static void heph__top2(const double *v, int d, double *first, double *second) {
    double a = v[0], b = 0.0;
    int j;
    for (j = 1; j < d; j++) {
        if (v[j] > a) { b = a; a = v[j]; }
        else if (j == 1 || v[j] > b) b = v[j];
    }
    *first = a;
    *second = b;
}

/* check the shared MIG inputs: sizes, label ranges, finite encodings */
static int heph__mig_check(const float *mu, size_t n, int D, const int32_t *factors, int K,
                           const uint32_t *n_values, double *mig) {
    size_t i, nd;
    int k;
    if (!mu || !factors || !n_values || !mig || n < 1 || D < 1 || K < 1) return HEPH_E_ARG;
    if ((n >> 16 >> 16) != 0 /* n >= 2^32; not a compare: 32-bit size_t warns */ ||
        !heph__mul_ok(n, (size_t)D, &nd) ||
        !heph__mul_ok(n, (size_t)K, &i))
        return HEPH_E_ARG;
    for (k = 0; k < K; k++)
        if (n_values[k] < 1 || n_values[k] > HEPH_MAX_FACTOR_VALUES) return HEPH_E_ARG;
    for (i = 0; i < nd; i++)
        if (!heph__finite_f(mu[i])) return HEPH_E_ARG;
    for (i = 0; i < n; i++)
        for (k = 0; k < K; k++) {
            int32_t v = factors[i * (size_t)K + (size_t)k];
            if (v < 0 || (uint32_t)v >= n_values[k]) return HEPH_E_ARG;
        }
    return HEPH_OK;
}

/* bin of x among equal-width edges: number of edges[0..bins) <= x, minus 1 (numpy digitize) */
static int heph__digitize(const double *edges, int bins, double x) {
    int lo = 0, hi = bins;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (edges[mid] <= x) lo = mid + 1;
        else hi = mid;
    }
    return lo > 0 ? lo - 1 : 0;
}

/* plug-in MI in nats of a (bins x nu) contingency table with row sums a, column sums b:
   I = sum_ij (n_ij/N) (log n_ij - log N + 2 log N - log(a_i b_j))   (sklearn's arrangement) */
static double heph__mi_table(const size_t *tab, const size_t *a, const size_t *b, int bins,
                             size_t nu, size_t n) {
    double N = (double)n, logN = log(N), s = 0.0;
    int i;
    size_t j;
    for (i = 0; i < bins; i++)
        for (j = 0; j < nu; j++) {
            size_t c = tab[(size_t)i * nu + j];
            double p;
            if (!c) continue;
            p = (double)c / N;
            s += p * (log((double)c) - logN) + p * (logN + logN - log((double)a[i] * (double)b[j]));
        }
    return s > 0.0 ? s : 0.0;
}

HEPH_DEF int heph_mig_discrete(const float *mu, size_t n, int D, const int32_t *factors, int K,
                               const uint32_t *n_values, int bins, double *mig,
                               double *per_factor, double *mi) {
    int32_t *fid = NULL, *remap = NULL, *bidx = NULL;
    size_t *tab = NULL, *bcnt = NULL, *fcnt = NULL, *nu = NULL, i, maxv = 0, maxu = 0;
    double *edges = NULL, *H = NULL, *I = NULL, sum = 0.0; /* I: (K, D), factor-major */
    int j, k, used = 0, rc;
    if (mig) *mig = heph__nan();
    rc = heph__mig_check(mu, n, D, factors, K, n_values, mig);
    if (rc != HEPH_OK) return rc;
    if (bins < 1 || bins > (1 << 20)) return HEPH_E_ARG;
    for (k = 0; k < K; k++)
        if (n_values[k] > maxv) maxv = n_values[k];
    fid = (int32_t *)heph__malloc3(n, (size_t)K, sizeof *fid);
    remap = (int32_t *)heph__malloc3(maxv, 1, sizeof *remap);
    bidx = (int32_t *)heph__malloc3(n, 1, sizeof *bidx);
    nu = (size_t *)heph__malloc3((size_t)K, 1, sizeof *nu);
    edges = (double *)heph__malloc3((size_t)bins, 1, sizeof *edges);
    bcnt = (size_t *)heph__malloc3((size_t)bins, 1, sizeof *bcnt);
    H = (double *)heph__malloc3((size_t)K, 1, sizeof *H);
    I = (double *)heph__malloc3((size_t)D, (size_t)K, sizeof *I);
    rc = HEPH_E_NOMEM;
    if (!fid || !remap || !bidx || !nu || !edges || !bcnt || !H || !I) goto done;

    /* labels -> compact ids 0..nu[k)-1 in order of first appearance (tables sized by use) */
    for (k = 0; k < K; k++) {
        for (i = 0; i < n_values[k]; i++) remap[i] = -1;
        nu[k] = 0;
        for (i = 0; i < n; i++) {
            int32_t v = factors[i * (size_t)K + (size_t)k];
            if (remap[v] < 0) remap[v] = (int32_t)nu[k]++;
            fid[i * (size_t)K + (size_t)k] = remap[v];
        }
        if (nu[k] > maxu) maxu = nu[k];
    }
    tab = (size_t *)heph__malloc3((size_t)bins, maxu, sizeof *tab);
    fcnt = (size_t *)heph__malloc3(maxu, 1, sizeof *fcnt);
    if (!tab || !fcnt) goto done;

    /* H[k] = -sum_v p_v log p_v, the empirical entropy of the labels */
    for (k = 0; k < K; k++) {
        memset(fcnt, 0, nu[k] * sizeof *fcnt);
        for (i = 0; i < n; i++) fcnt[fid[i * (size_t)K + (size_t)k]]++;
        H[k] = 0.0;
        for (i = 0; i < nu[k]; i++) {
            double p = (double)fcnt[i] / (double)n;
            H[k] -= p * log(p);
        }
    }

    for (j = 0; j < D; j++) {
        double lo = (double)mu[j], hi = lo, step;
        for (i = 1; i < n; i++) {
            double v = (double)mu[i * (size_t)D + (size_t)j];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        if (lo == hi) { lo -= 0.5; hi += 0.5; } /* numpy's range for a constant input */
        /* edges e_b = b*step + lo, b < bins, step = (hi-lo)/bins (numpy linspace, unfused) */
        step = (hi - lo) / (double)bins;
        for (k = 0; k < bins; k++) edges[k] = (double)k * step;
        for (k = 0; k < bins; k++) edges[k] += lo;
        memset(bcnt, 0, (size_t)bins * sizeof *bcnt);
        for (i = 0; i < n; i++) {
            bidx[i] = heph__digitize(edges, bins, (double)mu[i * (size_t)D + (size_t)j]);
            bcnt[bidx[i]]++;
        }
        for (k = 0; k < K; k++) {
            memset(tab, 0, (size_t)bins * nu[k] * sizeof *tab);
            memset(fcnt, 0, nu[k] * sizeof *fcnt);
            for (i = 0; i < n; i++) {
                int32_t u = fid[i * (size_t)K + (size_t)k];
                tab[(size_t)bidx[i] * nu[k] + (size_t)u]++;
                fcnt[u]++;
            }
            I[(size_t)k * (size_t)D + (size_t)j] = heph__mi_table(tab, bcnt, fcnt, bins, nu[k], n);
        }
    }

    /* gap of each factor: (largest - second largest MI) / H[k]; H = 0 factors are skipped */
    for (k = 0; k < K; k++) {
        double first, second, g = heph__nan();
        if (H[k] > 0.0) {
            heph__top2(I + (size_t)k * (size_t)D, D, &first, &second);
            g = (first - second) / H[k];
            sum += g;
            used++;
        }
        if (per_factor) per_factor[k] = g;
    }
    *mig = used ? sum / (double)used : heph__nan();
    if (mi)
        for (j = 0; j < D; j++)
            for (k = 0; k < K; k++)
                mi[(size_t)j * (size_t)K + (size_t)k] = I[(size_t)k * (size_t)D + (size_t)j];
    rc = HEPH_OK;
done:
    HEPH_FREE(fid); HEPH_FREE(remap); HEPH_FREE(bidx); HEPH_FREE(nu); HEPH_FREE(edges);
    HEPH_FREE(bcnt); HEPH_FREE(H); HEPH_FREE(I); HEPH_FREE(tab); HEPH_FREE(fcnt);
    return rc;
}


/* terms per chunk of heph__lse_gauss: the exponentials of a chunk wait on the stack */
#define HEPH__LSE_CHUNK 256

/* log sum_m N(z; mu_m, sigma_m^2) over a set of g encodings of one latent dimension:
   l_m = c_m - h_m (z - mu_m)^2 with c_m = -0.5 (log 2pi + logvar_m), h_m = 0.5 exp(-logvar_m),
   logsumexp = cmax + log sum_m exp(l_m - cmax), cmax = max_m c_m >= max_m l_m (no overflow).
   No underflow either: the sample's own encoding is in the set, and with logvar clamped its
   term is >= exp(-25 - 16.6). Each chunk's exponentials are summed in 16 float lanes (fixed
   order, whatever the vector width), then added into a double. */
static double heph__lse_gauss(float z, const float *HEPH__RESTRICT mu,
                              const float *HEPH__RESTRICT h, const float *HEPH__RESTRICT c,
                              float cmax, size_t g) {
    float e[HEPH__LSE_CHUNK], acc[16];
    double s = 0.0;
    size_t i0, i, nb;
    int k;
    for (i0 = 0; i0 < g; i0 += nb) {
        nb = g - i0 < HEPH__LSE_CHUNK ? g - i0 : HEPH__LSE_CHUNK;
        /* exp(l_m - cmax): independent iterations, vectorised */
        for (i = 0; i < nb; i++) {
            float d = z - mu[i0 + i];
            e[i] = heph__exp_neg(c[i0 + i] - h[i0 + i] * d * d - cmax);
        }
        for (; i % 16; i++) e[i] = 0.0f; /* pad the last chunk to whole lanes */
        for (k = 0; k < 16; k++) acc[k] = e[k];
        for (i = 16; i < nb; i += 16)
            for (k = 0; k < 16; k++) acc[k] += e[i + (size_t)k];
        for (k = 0; k < 16; k++) s += (double)acc[k];
    }
    return (double)cmax + log(s);
}

/* scratch of heph_mig_continuous; the encodings of the current ordering are gathered
   dimension-major (D, n) so that every set is a contiguous slice of each dimension */
typedef struct {
    size_t n;
    int D;
    const float *mu, *logvar;
    float *z;           /* (n, D) the samples z_i ~ q(z|x_i)                        */
    float *gm, *gh, *gc, *gz; /* (D, n): mu, 0.5/sigma^2, -0.5 log(2 pi sigma^2), z      */
    size_t *ord, *pos;  /* ordering of the encodings; sample positions inside a set  */
    double *terms;      /* (samples, D) -log q(z_sj) + log|G| of each chosen sample  */
    float *cmax;        /* D: largest c_m of the current set, per dimension         */
    heph_rng rng;
} heph__migc;

/* log sigma^2 clamped to the library's range [HEPH_LOGVAR_MIN, HEPH_LOGVAR_MAX] */
static float heph__clamp_logvar(float lv) {
    return lv < HEPH_LOGVAR_MIN ? HEPH_LOGVAR_MIN : (lv > HEPH_LOGVAR_MAX ? HEPH_LOGVAR_MAX : lv);
}

/* gather the encodings in the order ord[] into the dimension-major arrays */
static void heph__migc_gather(heph__migc *w) {
    size_t p, n = w->n;
    int j;
    for (j = 0; j < w->D; j++)
        for (p = 0; p < n; p++) {
            size_t src = w->ord[p] * (size_t)w->D + (size_t)j, dst = (size_t)j * n + p;
            float lv = heph__clamp_logvar(w->logvar[src]);
            w->gm[dst] = w->mu[src];
            w->gh[dst] = 0.5f * expf(-lv);                            /* 1 / (2 sigma^2)  */
            w->gc[dst] = -0.5f * (1.83787706640934548f + lv);         /* -0.5 log(2 pi s^2) */
            w->gz[dst] = w->z[src];
        }
}

/* H[j] = mean over S chosen samples s of the set [o, o+g) of log g - logsumexp_m log q(z_sj|x_m) */
static void heph__migc_entropy(heph__migc *w, size_t o, size_t g, size_t n_samples, double *H) {
    size_t S = g < n_samples ? g : n_samples, i, n = w->n;
    double logg = log((double)g);
    long long s;
    int j, D = w->D;
    /* which samples: all members, or a random subset (partial Fisher-Yates) */
    for (i = 0; i < g; i++) w->pos[i] = i;
    if (S < g)
        for (i = 0; i < S; i++) {
            size_t r = i + (size_t)heph_rng_below(&w->rng, (uint32_t)(g - i)), t = w->pos[i];
            w->pos[i] = w->pos[r];
            w->pos[r] = t;
        }
    /* cmax[j] = max of c_m over the set: the shift of every logsumexp of dimension j */
    for (j = 0; j < D; j++) {
        const float *cj = w->gc + (size_t)j * n + o;
        float m = cj[0];
        for (i = 1; i < g; i++) m = cj[i] > m ? cj[i] : m;
        w->cmax[j] = m;
    }
    /* each sample's terms are computed by one thread into their own slots */
    HEPH__OMP_FOR
    for (s = 0; s < (long long)S; s++) {
        size_t p = o + w->pos[s];
        int jj;
        for (jj = 0; jj < D; jj++) {
            size_t row = (size_t)jj * n;
            w->terms[(size_t)s * (size_t)D + (size_t)jj] =
                logg - heph__lse_gauss(w->gz[row + p], w->gm + row + o, w->gh + row + o,
                                       w->gc + row + o, w->cmax[jj], g);
        }
    }
    /* fixed-order sum: the same bits for any number of threads */
    for (j = 0; j < D; j++) {
        double acc = 0.0;
        for (i = 0; i < S; i++) acc += w->terms[i * (size_t)D + (size_t)j];
        H[j] = acc / (double)S;
    }
}

HEPH_DEF int heph_mig_continuous(const float *mu, const float *logvar, size_t n, int D,
                                 const int32_t *factors, int K, const uint32_t *n_values,
                                 const int *use_factor, size_t n_samples, uint64_t seed,
                                 double *mig, double *per_factor, double *mi) {
    heph__migc w;
    size_t i, nd, *cnt = NULL, maxv = 0;
    double *Hm = NULL, *Hc = NULL, *Hg = NULL, *I = NULL, sum = 0.0;
    int j, k, used = 0, rc;
    if (mig) *mig = heph__nan();
    rc = heph__mig_check(mu, n, D, factors, K, n_values, mig);
    if (rc != HEPH_OK) return rc;
    if (!logvar || n_samples < 1) return HEPH_E_ARG;
    nd = n * (size_t)D;
    for (i = 0; i < nd; i++)
        if (logvar[i] != logvar[i]) return HEPH_E_ARG; /* NaN (infinities are clamped) */
    if (per_factor)
        for (k = 0; k < K; k++) per_factor[k] = heph__nan();
    if (mi)
        for (i = 0; i < (size_t)D * (size_t)K; i++) mi[i] = heph__nan();
    for (k = 0; k < K; k++)
        if (n_values[k] > maxv) maxv = n_values[k];
    memset(&w, 0, sizeof w);
    w.n = n; w.D = D; w.mu = mu; w.logvar = logvar;
    w.z = (float *)heph__malloc3(nd, 1, sizeof(float));
    w.gm = (float *)heph__malloc3(nd, 1, sizeof(float));
    w.gh = (float *)heph__malloc3(nd, 1, sizeof(float));
    w.gc = (float *)heph__malloc3(nd, 1, sizeof(float));
    w.gz = (float *)heph__malloc3(nd, 1, sizeof(float));
    w.ord = (size_t *)heph__malloc3(n, 1, sizeof(size_t));
    w.pos = (size_t *)heph__malloc3(n, 1, sizeof(size_t));
    w.terms = (double *)heph__malloc3(n < n_samples ? n : n_samples, (size_t)D, sizeof(double));
    cnt = (size_t *)heph__malloc3(maxv + 1, 1, sizeof *cnt);
    w.cmax = (float *)heph__malloc3((size_t)D, 1, sizeof(float));
    Hm = (double *)heph__malloc3((size_t)D, 1, sizeof(double));
    Hc = (double *)heph__malloc3((size_t)D, 1, sizeof(double));
    Hg = (double *)heph__malloc3((size_t)D, 1, sizeof(double));
    I = (double *)heph__malloc3((size_t)D, 1, sizeof(double));
    rc = HEPH_E_NOMEM;
    if (!w.z || !w.gm || !w.gh || !w.gc || !w.gz || !w.ord || !w.pos || !w.terms || !w.cmax ||
        !cnt || !Hm || !Hc || !Hg || !I)
        goto done;

    /* one sample per encoding: z = mu + sigma * eps, eps ~ N(0,1), drawn serially */
    heph_rng_seed(&w.rng, seed);
    for (i = 0; i < nd; i++) {
        w.z[i] = mu[i] + expf(0.5f * heph__clamp_logvar(logvar[i])) * heph_rng_normal(&w.rng);
    }

    /* marginal entropies H(z_j) over all encodings */
    for (i = 0; i < n; i++) w.ord[i] = i;
    heph__migc_gather(&w);
    heph__migc_entropy(&w, 0, n, n_samples, Hm);

    for (k = 0; k < K; k++) {
        size_t V = n_values[k], v, o, nobs = 0;
        double first, second, g;
        if ((use_factor && !use_factor[k]) || V < 2) continue;
        /* counting sort of the encodings by the value of factor k: set v = [cnt[v], cnt[v+1]) */
        memset(cnt, 0, (V + 1) * sizeof *cnt);
        for (i = 0; i < n; i++) cnt[(size_t)factors[i * (size_t)K + (size_t)k] + 1]++;
        for (v = 0; v < V; v++) cnt[v + 1] += cnt[v];
        for (i = 0; i < n; i++) w.ord[cnt[factors[i * (size_t)K + (size_t)k]]++] = i;
        for (v = V; v > 0; v--) cnt[v] = cnt[v - 1]; /* the fill advanced cnt[v] to its end */
        cnt[0] = 0;
        heph__migc_gather(&w);
        /* H(z_j | v_k): equal-weight mean over the observed values */
        for (j = 0; j < D; j++) Hc[j] = 0.0;
        for (v = 0; v < V; v++) {
            o = cnt[v];
            if (cnt[v + 1] == o) continue;
            heph__migc_entropy(&w, o, cnt[v + 1] - o, n_samples, Hg);
            for (j = 0; j < D; j++) Hc[j] += Hg[j];
            nobs++;
        }
        /* I_jk = max(0, H(z_j) - H(z_j | v_k)) */
        for (j = 0; j < D; j++) {
            double d = Hm[j] - Hc[j] / (double)nobs;
            I[j] = d > 0.0 ? d : 0.0;
            if (mi) mi[(size_t)j * (size_t)K + (size_t)k] = I[j];
        }
        heph__top2(I, D, &first, &second);
        g = (first - second) / log((double)V); /* normalised by the entropy of a uniform factor */
        if (per_factor) per_factor[k] = g;
        sum += g;
        used++;
    }
    *mig = used ? sum / (double)used : heph__nan();
    rc = HEPH_OK;
done:
    HEPH_FREE(w.z); HEPH_FREE(w.gm); HEPH_FREE(w.gh); HEPH_FREE(w.gc); HEPH_FREE(w.gz);
    HEPH_FREE(w.ord); HEPH_FREE(w.pos); HEPH_FREE(w.terms); HEPH_FREE(w.cmax); HEPH_FREE(cnt);
    HEPH_FREE(Hm); HEPH_FREE(Hc); HEPH_FREE(Hg); HEPH_FREE(I);
    return rc;
}

HEPH_DEF void heph_correlation_matrix(const float *mu, size_t n, int D, const int32_t *factors,
                                      int K, float *out) {
    int j, k;
    size_t i;
    if (!out || D < 1 || K < 1) return;
    for (j = 0; j < D; j++)
        for (k = 0; k < K; k++) {
            double ma = 0.0, mb = 0.0, sab = 0.0, saa = 0.0, sbb = 0.0, r = 0.0;
            if (mu && factors && n >= 2) {
                for (i = 0; i < n; i++) {
                    ma += (double)mu[i * (size_t)D + (size_t)j];
                    mb += (double)factors[i * (size_t)K + (size_t)k];
                }
                ma /= (double)n;
                mb /= (double)n;
                /* r = sum (a-ma)(b-mb) / sqrt(sum (a-ma)^2 sum (b-mb)^2) */
                for (i = 0; i < n; i++) {
                    double a = (double)mu[i * (size_t)D + (size_t)j] - ma;
                    double b = (double)factors[i * (size_t)K + (size_t)k] - mb;
                    sab += a * b; saa += a * a; sbb += b * b;
                }
                if (saa > 0.0 && sbb > 0.0) r = sab / sqrt(saa * sbb);
                r = r > 1.0 ? 1.0 : (r < -1.0 ? -1.0 : r);
            }
            out[(size_t)j * (size_t)K + (size_t)k] = (float)r;
        }
}

/* output columns per pass of heph_ssim: the vertical sums of a pass live on the stack */
#define HEPH__SSIM_CHUNK 64

HEPH_DEF double heph_ssim(const float *a, const float *b, int c, int h, int w) {
    const double C1 = 0.01 * 0.01, C2 = 0.03 * 0.03; /* (K1 L)^2, (K2 L)^2 with L = 1 */
    double g[11], gs = 0.0, total = 0.0;
    double v[5][HEPH__SSIM_CHUNK + 10];
    int ch, y, x0, t, r, ho = h - 10, wo = w - 10;
    if (!a || !b || c < 1 || h < 11 || w < 11) return heph__nan();
    /* g_t = exp(-(t-5)^2 / (2 sigma^2)), sigma 1.5, normalised; the 2-D window is g g^T */
    for (t = 0; t < 11; t++) {
        g[t] = exp(-(double)((t - 5) * (t - 5)) / (2.0 * 1.5 * 1.5));
        gs += g[t];
    }
    for (t = 0; t < 11; t++) g[t] /= gs;
    for (ch = 0; ch < c; ch++) {
        const float *pa = a + (size_t)ch * (size_t)h * (size_t)w;
        const float *pb = b + (size_t)ch * (size_t)h * (size_t)w;
        double acc = 0.0;
        for (y = 0; y < ho; y++)
            for (x0 = 0; x0 < wo; x0 += HEPH__SSIM_CHUNK) {
                int nc = wo - x0 < HEPH__SSIM_CHUNK ? wo - x0 : HEPH__SSIM_CHUNK, nx = nc + 10;
                int q, x;
                /* vertical pass: weighted column sums of a, b, a^2, b^2, ab over rows y..y+10 */
                for (q = 0; q < 5; q++)
                    for (x = 0; x < nx; x++) v[q][x] = 0.0;
                for (r = 0; r < 11; r++) {
                    const float *ra = pa + (size_t)(y + r) * (size_t)w + (size_t)x0;
                    const float *rb = pb + (size_t)(y + r) * (size_t)w + (size_t)x0;
                    for (x = 0; x < nx; x++) {
                        double fa = (double)ra[x], fb = (double)rb[x];
                        v[0][x] += g[r] * fa;
                        v[1][x] += g[r] * fb;
                        v[2][x] += g[r] * fa * fa;
                        v[3][x] += g[r] * fb * fb;
                        v[4][x] += g[r] * fa * fb;
                    }
                }
                /* horizontal pass and the SSIM of each window */
                for (x = 0; x < nc; x++) {
                    double ma = 0.0, mb = 0.0, eaa = 0.0, ebb = 0.0, eab = 0.0, vaa, vbb, vab;
                    for (t = 0; t < 11; t++) {
                        ma += g[t] * v[0][x + t];
                        mb += g[t] * v[1][x + t];
                        eaa += g[t] * v[2][x + t];
                        ebb += g[t] * v[3][x + t];
                        eab += g[t] * v[4][x + t];
                    }
                    vaa = eaa - ma * ma; /* sigma_a^2 = E[a^2] - mu_a^2 (population) */
                    vbb = ebb - mb * mb;
                    vab = eab - ma * mb; /* sigma_ab = E[ab] - mu_a mu_b */
                    /* SSIM = (2 ma mb + C1)(2 vab + C2) / ((ma^2 + mb^2 + C1)(vaa + vbb + C2)) */
                    acc += ((2.0 * ma * mb + C1) * (2.0 * vab + C2)) /
                           ((ma * ma + mb * mb + C1) * (vaa + vbb + C2));
                }
            }
        total += acc / ((double)ho * (double)wo);
    }
    return total / (double)c;
}

HEPH_DEF int heph_auroc(const float *scores, const int *is_positive, size_t n, double *auc) {
    size_t *idx, *tmp, i, j, npos = 0, nneg = 0;
    double below = 0.0, acc = 0.0;
    if (!auc) return HEPH_E_ARG;
    *auc = heph__nan();
    if (n && (!scores || !is_positive)) return HEPH_E_ARG;
    for (i = 0; i < n; i++) {
        if (scores[i] != scores[i]) return HEPH_E_ARG;
        if (is_positive[i]) npos++;
        else nneg++;
    }
    if (!npos || !nneg) return HEPH_OK;
    idx = (size_t *)heph__malloc3(n, 1, sizeof *idx);
    tmp = (size_t *)heph__malloc3(n, 1, sizeof *tmp);
    if (!idx || !tmp) {
        HEPH_FREE(idx); HEPH_FREE(tmp);
        return HEPH_E_NOMEM;
    }
    for (i = 0; i < n; i++) idx[i] = i;
    heph__sort_idx(idx, tmp, scores, n);
    /* AUC = (1/(P N)) sum over groups of equal scores of p (negatives below + q/2) */
    for (i = 0; i < n; i = j) {
        double p = 0.0, q = 0.0;
        for (j = i; j < n && scores[idx[j]] == scores[idx[i]]; j++) {
            if (is_positive[idx[j]]) p += 1.0;
            else q += 1.0;
        }
        acc += p * (below + 0.5 * q);
        below += q;
    }
    *auc = acc / ((double)npos * (double)nneg);
    HEPH_FREE(idx); HEPH_FREE(tmp);
    return HEPH_OK;
}

/* ========================================================================================== */
/* PART C - FILES: little-endian fields, datasets (.hpd), checkpoints (.hpm), networks (.hpn) */
/* ========================================================================================== */
#ifndef HEPH_NO_STDIO

/* a*b in 64 bits with overflow check; 0 on overflow */
static int heph__mul64_ok(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* little-endian byte helpers: every multi-byte field in every file goes through these        */

#ifndef HEPH_FSEEK
#define HEPH_FSEEK(fp, off, whence) fseek((fp), (long)(off), (whence))
#define HEPH_FTELL(fp) ((uint64_t)ftell(fp))
#define HEPH__SEEK_MAX ((uint64_t)LONG_MAX)
#else
#define HEPH__SEEK_MAX UINT64_MAX
#endif

static void heph__put_le32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}
static void heph__put_le64(unsigned char *p, uint64_t v) {
    heph__put_le32(p, (uint32_t)v);
    heph__put_le32(p + 4, (uint32_t)(v >> 32));
}
static uint32_t heph__get_le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t heph__get_le64(const unsigned char *p) {
    return (uint64_t)heph__get_le32(p) | ((uint64_t)heph__get_le32(p + 4) << 32);
}
static uint32_t heph__f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float heph__u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint64_t heph__d2u(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static double heph__u2d(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }

/* FNV-1a 64-bit hash, the checkpoint checksum */
static uint64_t heph__fnv1a(uint64_t h, const unsigned char *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
    return h;
}
#define HEPH__FNV_INIT 0xcbf29ce484222325ULL

static int heph__seek(FILE *fp, uint64_t off) {
    if (off > HEPH__SEEK_MAX) return -1;
    return HEPH_FSEEK(fp, off, SEEK_SET);
}

/* size of an open file, or UINT64_MAX when it cannot be told */
static uint64_t heph__file_size(FILE *fp) {
    uint64_t sz;
    if (HEPH_FSEEK(fp, 0, SEEK_END) != 0) return UINT64_MAX;
    sz = HEPH_FTELL(fp);
    if (HEPH_FSEEK(fp, 0, SEEK_SET) != 0) return UINT64_MAX;
    return sz;
}

static void heph__copy_path(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) { /* keep the end of long paths: it names the file */
        src += n - (cap - 4);
        memcpy(dst, "...", 3);
        memcpy(dst + 3, src, cap - 4);
        dst[cap - 1] = '\0';
    } else {
        memcpy(dst, src, n + 1);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* dataset files (.hpd)
   offset  size  field
   0       8     magic "HEPHHPD\0"
   8       4     version (1)
   12      4     header_bytes: offset of the pixel block, a multiple of 64
   16      8     count
   24      12    channels, height, width
   36      4     pixel type (1 u8, 2 f32, 3 1-bit packed MSB first, each picture padded to a byte)
   40      4     layout (0 = planar CHW)
   44      4     value_max (f32): the stored value that means 1.0 (finite, >= 1e-30)
   48      4     number of factors K (<= 32)
   52      4     flags: 1 labels present, 2 full factor grid in mixed-radix order, 4 generated
   56      8     generator seed
   64      8     labels_offset = header_bytes + count * picture bytes
   72      32    source name, NUL-padded ASCII
   104     32 K  factor table: name[24], n_values u32, values_offset u32 (0 = none; else offset
                 of n_values f64 real values inside the header)
   ...           factor values, zero padding to header_bytes
   header_bytes  pixel block; then at labels_offset count*K i32 factor indices; end of file. */

static const unsigned char heph__hpd_magic[8] = {'H', 'E', 'P', 'H', 'H', 'P', 'D', 0};
#define HEPH__HPD_FIXED 104u
#define HEPH__HPD_MAX_HEADER (1u << 24)
#define HEPH__MAX_SIDE 65536u
#define HEPH__MAX_CHANNELS 4096u

HEPH_DEF size_t heph_hpd_picture_size(const heph_hpd_info *info) {
    return (size_t)info->c * (size_t)info->h * (size_t)info->w;
}

/* bytes of one stored picture; 0 on overflow or bad type */
static uint64_t heph__hpd_image_bytes(const heph_hpd_info *in) {
    uint64_t n;
    if (!heph__mul64_ok((uint64_t)in->c * (uint64_t)in->h, (uint64_t)in->w, &n)) return 0;
    switch (in->dtype) {
    case HEPH_PX_U8: return n;
    case HEPH_PX_F32: return heph__mul64_ok(n, 4, &n) ? n : 0;
    case HEPH_PX_BIT: return (n + 7) / 8;
    default: return 0;
    }
}

/* checks shared by reader and writer; writes the message into err */
static int heph__hpd_check_info(const heph_hpd_info *in, const char *path, char *err) {
    uint32_t k;
    if (in->c == 0 || in->h == 0 || in->w == 0 || in->c > HEPH__MAX_CHANNELS ||
        in->h > HEPH__MAX_SIDE || in->w > HEPH__MAX_SIDE)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_SIZE,
                          "%s: picture shape %ux%ux%u is out of range (channels 1..%u, sides 1..%u)",
                          path, in->c, in->h, in->w, HEPH__MAX_CHANNELS, HEPH__MAX_SIDE);
    if (in->dtype != HEPH_PX_U8 && in->dtype != HEPH_PX_F32 && in->dtype != HEPH_PX_BIT)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: pixel type %u is not 1, 2 or 3",
                          path, in->dtype);
    if (!(in->value_max >= 1e-30f) || !heph__finite((double)in->value_max)) /* tiny: 255/value_max overflows */
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: value_max %g must be finite and >= 1e-30",
                          path, (double)in->value_max);
    if (in->count == 0)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: the dataset holds no pictures",
                          path);
    if (in->n_factors > HEPH_MAX_FACTORS)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_SIZE, "%s: %u factors (at most %d)", path,
                          in->n_factors, HEPH_MAX_FACTORS);
    for (k = 0; k < in->n_factors; k++) {
        if (in->factors[k].n_values == 0 || in->factors[k].n_values > HEPH_MAX_FACTOR_VALUES)
            return heph__errf(err, HEPH_ERRLEN, HEPH_E_SIZE,
                              "%s: factor %u has %u values (1..%d)", path, k,
                              in->factors[k].n_values, HEPH_MAX_FACTOR_VALUES);
        if (memchr(in->factors[k].name, 0, sizeof in->factors[k].name) == NULL)
            return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT,
                              "%s: factor %u name is not NUL-terminated", path, k);
    }
    return HEPH_OK;
}

HEPH_DEF void heph_hpd_close(heph_hpd *d) {
    if (d->fp) fclose(d->fp);
    HEPH_FREE(d->labels);
    HEPH_FREE(d->values);
    HEPH_FREE(d->raw);
    d->fp = NULL; d->labels = NULL; d->values = NULL; d->raw = NULL;
}

/* the fixed part of a .hpd header (in `fixed`) into d: magic, version, shape, and a header
   size that fits the file */
static int heph__hpd_fixed(heph_hpd *d, unsigned char *fixed, const char *path) {
    heph_hpd_info *in = &d->info;
    uint64_t hb;
    int rc;
    if (fread(fixed, 1, HEPH__HPD_FIXED, d->fp) != HEPH__HPD_FIXED) {
        return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_FORMAT,
                          "%s: truncated header (%llu bytes, need at least %u)", path,
                          (unsigned long long)d->file_size, HEPH__HPD_FIXED);
    }
    if (memcmp(fixed, heph__hpd_magic, 8) != 0) {
        rc = heph__errf(d->err, HEPH_ERRLEN, HEPH_E_FORMAT,
                        "%s: not a .hpd dataset (wrong magic; expected \"HEPHHPD\")", path);
        return rc;
    }
    if (heph__get_le32(fixed + 8) != 1) {
        return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_VERSION,
                          "%s: .hpd version %u (this library reads version 1)", path,
                          heph__get_le32(fixed + 8));
    }
    hb = heph__get_le32(fixed + 12);
    in->count = heph__get_le64(fixed + 16);
    in->c = heph__get_le32(fixed + 24);
    in->h = heph__get_le32(fixed + 28);
    in->w = heph__get_le32(fixed + 32);
    in->dtype = heph__get_le32(fixed + 36);
    in->value_max = heph__u2f(heph__get_le32(fixed + 44));
    in->n_factors = heph__get_le32(fixed + 48);
    in->flags = heph__get_le32(fixed + 52);
    in->seed = heph__get_le64(fixed + 56);
    d->labels_offset = heph__get_le64(fixed + 64);
    memcpy(in->source, fixed + 72, 32);
    in->source[32] = '\0';
    if (heph__get_le32(fixed + 40) != 0) {
        return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: layout %u (only 0 = CHW is defined)",
                          path, heph__get_le32(fixed + 40));
    }
    if (in->n_factors > HEPH_MAX_FACTORS) {
        return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_SIZE, "%s: %u factors (at most %d)", path,
                          in->n_factors, HEPH_MAX_FACTORS);
    }
    if (hb % 64 != 0 || hb < HEPH__HPD_FIXED + 32u * in->n_factors || hb > HEPH__HPD_MAX_HEADER ||
        hb > d->file_size) {
        return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_FORMAT,
                          "%s: header_bytes %llu is invalid (multiple of 64, >= %u, <= file size %llu)",
                          path, (unsigned long long)hb, HEPH__HPD_FIXED + 32u * in->n_factors,
                          (unsigned long long)d->file_size);
    }
    d->header_bytes = hb;
    return HEPH_OK;
}

/* the factor values of the header hdr (header_bytes long): every offset inside the header,
   every value finite */
static int heph__hpd_values(heph_hpd *d, const unsigned char *hdr, const char *path) {
    heph_hpd_info *in = &d->info;
    uint64_t hb = d->header_bytes, nvals = 0;
    uint32_t k;
    size_t i;
    int rc;
    for (k = 0; k < in->n_factors; k++) { /* room only for the values the header stores */
        uint32_t off = heph__get_le32(hdr + HEPH__HPD_FIXED + 32u * k + 28), nv = in->factors[k].n_values;
        if (off != 0 && (off < HEPH__HPD_FIXED + 32u * in->n_factors || (uint64_t)off + 8ull * nv > hb)) {
            return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_FORMAT, /* checked before allocating */
                              "%s: factor %u (%s) values_offset %u lies outside the header", path,
                              k, in->factors[k].name, off);
        }
        if (off != 0) nvals += nv;
    }
    if (nvals) {
        d->values = (double *)heph__calloc((size_t)nvals, sizeof(double));
        if (!d->values) { rc = heph__errf(d->err, HEPH_ERRLEN, HEPH_E_NOMEM, "%s: out of memory", path); return rc; }
    }
    nvals = 0;
    for (k = 0; k < in->n_factors; k++) {
        uint32_t off = heph__get_le32(hdr + HEPH__HPD_FIXED + 32u * k + 28), nv = in->factors[k].n_values;
        if (off != 0) {
            if (off < HEPH__HPD_FIXED + 32u * in->n_factors || (uint64_t)off + 8ull * nv > hb) {
                return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_FORMAT,
                                  "%s: factor %u (%s) values_offset %u lies outside the header", path,
                                  k, in->factors[k].name, off);
            }
            for (i = 0; i < nv; i++) {
                double v = heph__u2d(heph__get_le64(hdr + off + 8 * i));
                if (v - v != 0.0) { /* NaN or Inf: plots, correlations and reports would take it */
                    return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: factor %u (%s) value %u is %g: "
                                      "factor values must be finite", path, k, in->factors[k].name, i, v);
                }
                d->values[nvals + i] = v;
            }
            in->factors[k].values = d->values + nvals;
            nvals += nv;
        }
    }
    return HEPH_OK;
}

/* the pixel block and the label block fill the file exactly; *lab_bytes is the second */
static int heph__hpd_sizes(heph_hpd *d, uint64_t *lab_bytes_out, const char *path) {
    heph_hpd_info *in = &d->info;
    uint64_t hb = d->header_bytes, pix, lab_bytes, end;
    d->image_bytes = heph__hpd_image_bytes(in);
    if (d->image_bytes == 0 || !heph__mul64_ok(in->count, d->image_bytes, &pix) ||
        pix > UINT64_MAX - hb || !heph__mul64_ok(in->count, 4ull * in->n_factors, &lab_bytes) ||
        d->labels_offset != hb + pix || lab_bytes > UINT64_MAX - d->labels_offset) {
        return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_SIZE,
                          "%s: %llu pictures of %ux%ux%u (type %u) do not fit the layout "
                          "(labels_offset %llu)", path, (unsigned long long)in->count, in->c, in->h,
                          in->w, in->dtype, (unsigned long long)d->labels_offset);
    }
    end = d->labels_offset + lab_bytes;
    if (end != d->file_size) {
        return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_FORMAT,
                          "%s: file is %llu bytes, the header says %llu (%s)", path,
                          (unsigned long long)d->file_size, (unsigned long long)end,
                          d->file_size < end ? "truncated" : "trailing bytes");
    }
    if (lab_bytes > (uint64_t)((size_t)-1) / 2 || (lab_bytes && d->labels_offset > HEPH__SEEK_MAX)) {
        return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_SIZE, "%s: label block too large to load", path);
    }
    *lab_bytes_out = lab_bytes;
    return HEPH_OK;
}

/* the label block (lab_bytes) read, every index range-checked */
static int heph__hpd_labels(heph_hpd *d, uint64_t lab_bytes, const char *path) {
    heph_hpd_info *in = &d->info;
    unsigned char *lab = NULL;
    size_t i, nl;
    int rc = HEPH_OK;
    nl = (size_t)(lab_bytes / 4);
    if (nl) {
        d->labels = (int32_t *)heph__calloc(nl, sizeof(int32_t));
        lab = (unsigned char *)HEPH_MALLOC((size_t)lab_bytes);
        if (!d->labels || !lab) { rc = heph__errf(d->err, HEPH_ERRLEN, HEPH_E_NOMEM, "%s: out of memory for labels", path); goto done; }
        if (heph__seek(d->fp, d->labels_offset) != 0 || fread(lab, 1, (size_t)lab_bytes, d->fp) != (size_t)lab_bytes) {
            rc = heph__errf(d->err, HEPH_ERRLEN, HEPH_E_IO, "%s: cannot read the labels", path);
            goto done;
        }
        for (i = 0; i < nl; i++) {
            int32_t v = (int32_t)heph__get_le32(lab + 4 * i);
            uint32_t kk = (uint32_t)(i % in->n_factors);
            if (v < 0 || (uint32_t)v >= in->factors[kk].n_values) {
                rc = heph__errf(d->err, HEPH_ERRLEN, HEPH_E_FORMAT,
                                "%s: picture %zu factor %u (%s) index %d is outside 0..%u", path,
                                i / in->n_factors, kk, in->factors[kk].name, v,
                                in->factors[kk].n_values - 1);
                goto done;
            }
            d->labels[i] = v;
        }
    }
done:
    HEPH_FREE(lab);
    return rc;
}

HEPH_DEF int heph_hpd_open(heph_hpd *d, const char *path) {
    unsigned char fixed[HEPH__HPD_FIXED], *hdr = NULL;
    heph_hpd_info *in = &d->info;
    uint64_t hb, lab_bytes = 0;
    uint32_t k;
    int rc;
    memset(d, 0, sizeof *d);
    heph__copy_path(d->path, sizeof d->path, path);
    path = d->path;
    d->fp = fopen(path, "rb");
    if (!d->fp) return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_IO, "%s: cannot open for reading", path);
    d->file_size = heph__file_size(d->fp);
    if (d->file_size == UINT64_MAX) {
        rc = heph__errf(d->err, HEPH_ERRLEN, HEPH_E_IO, "%s: cannot tell the file size", path);
        goto fail;
    }
    rc = heph__hpd_fixed(d, fixed, path);
    if (rc != HEPH_OK) goto fail;
    hb = d->header_bytes;
    hdr = (unsigned char *)HEPH_MALLOC((size_t)hb);
    if (!hdr) { rc = heph__errf(d->err, HEPH_ERRLEN, HEPH_E_NOMEM, "%s: out of memory", path); goto fail; }
    if (heph__seek(d->fp, 0) != 0 || fread(hdr, 1, (size_t)hb, d->fp) != (size_t)hb) {
        rc = heph__errf(d->err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: truncated header", path);
        goto fail;
    }
    /* factor table */
    for (k = 0; k < in->n_factors; k++) {
        const unsigned char *f = hdr + HEPH__HPD_FIXED + 32u * k;
        memcpy(in->factors[k].name, f, 24);
        in->factors[k].n_values = heph__get_le32(f + 24);
        in->factors[k].values = NULL;
    }
    rc = heph__hpd_check_info(in, path, d->err);
    if (rc != HEPH_OK) goto fail;
    if (in->flags & ~(uint32_t)(HEPH_HPD_LABELS | HEPH_HPD_GRID | HEPH_HPD_GENERATED)) {
        rc = heph__errf(d->err, HEPH_ERRLEN, HEPH_E_FORMAT,
                        "%s: unknown flag bits 0x%x (this library knows 1 labels, 2 grid, 4 generated)", path,
                        in->flags & ~(uint32_t)(HEPH_HPD_LABELS | HEPH_HPD_GRID | HEPH_HPD_GENERATED));
        goto fail;
    }
    if (((in->flags & HEPH_HPD_LABELS) != 0) != (in->n_factors > 0)) {
        rc = heph__errf(d->err, HEPH_ERRLEN, HEPH_E_FORMAT,
                        "%s: labels flag (%u) disagrees with %u factors", path,
                        in->flags & HEPH_HPD_LABELS, in->n_factors);
        goto fail;
    }
    rc = heph__hpd_values(d, hdr, path);
    if (rc == HEPH_OK) rc = heph__hpd_sizes(d, &lab_bytes, path);
    if (rc == HEPH_OK) rc = heph__hpd_labels(d, lab_bytes, path);
    if (rc != HEPH_OK) goto fail;
    d->raw = (unsigned char *)HEPH_MALLOC((size_t)d->image_bytes);
    if (!d->raw) { rc = heph__errf(d->err, HEPH_ERRLEN, HEPH_E_NOMEM, "%s: out of memory", path); goto fail; }
    HEPH_FREE(hdr);
    return HEPH_OK;
fail:
    HEPH_FREE(hdr);
    heph_hpd_close(d);
    return rc;
}

/* decode stored picture `at` into floats in [0,1]; a stored value outside [0, value_max] (NaN,
   Inf, negative, too large; a u8 or a set bit above a small value_max) is refused naming the
   picture, since ReLU would turn a NaN into 0 and the batch would look normal, and a value
   above 1 is no picture the model was made for */
static int heph__hpd_decode(heph_hpd *d, const unsigned char *raw, float *out, size_t at) {
    size_t n = heph_hpd_picture_size(&d->info), i;
    float inv = 1.0f / d->info.value_max, vmax = d->info.value_max, v = 0.0f;
    switch (d->info.dtype) {
    case HEPH_PX_U8:
        for (i = 0; i < n; i++) {
            v = (float)raw[i];
            if (v > vmax) break;
            out[i] = v * inv > 1.0f ? 1.0f : v * inv;
        }
        break;
    case HEPH_PX_F32:
        for (i = 0; i < n; i++) {
            v = heph__u2f(heph__get_le32(raw + 4 * i));
            if (!(v >= 0.0f && v <= vmax)) break; /* NaN fails too */
            out[i] = v * inv > 1.0f ? 1.0f : v * inv;
        }
        break;
    default: /* 1-bit, MSB first */
        for (i = 0; i < n; i++) {
            v = (float)((raw[i >> 3] >> (7 - (i & 7))) & 1u);
            if (v > vmax) break;
            out[i] = v * inv > 1.0f ? 1.0f : v * inv;
        }
        break;
    }
    if (i < n)
        return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_FORMAT,
                          "%s: picture %zu, value %zu is %g: pixels must lie in [0, value_max %g]", d->path, at, i,
                          (double)v, (double)vmax);
    return HEPH_OK;
}

HEPH_DEF int heph_hpd_read(heph_hpd *d, const size_t *idx, size_t n, float *out) {
    size_t i, np = heph_hpd_picture_size(&d->info);
    for (i = 0; i < n; i++) {
        if (idx[i] >= d->info.count)
            return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_ARG, "%s: picture %zu does not exist (%llu pictures)",
                              d->path, idx[i], (unsigned long long)d->info.count);
        if (heph__seek(d->fp, d->header_bytes + (uint64_t)idx[i] * d->image_bytes) != 0 ||
            fread(d->raw, 1, (size_t)d->image_bytes, d->fp) != (size_t)d->image_bytes)
            return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_IO, "%s: cannot read picture %zu", d->path, idx[i]);
        if (heph__hpd_decode(d, d->raw, out + i * np, idx[i]) != HEPH_OK) return HEPH_E_FORMAT;
    }
    return HEPH_OK;
}

HEPH_DEF int heph_hpd_read_range(heph_hpd *d, size_t start, size_t n, float *out) {
    size_t i, np = heph_hpd_picture_size(&d->info);
    if (start > d->info.count || n > d->info.count - start)
        return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_ARG, "%s: pictures %zu..%zu do not exist (%llu pictures)",
                          d->path, start, start + n, (unsigned long long)d->info.count);
    if (n && heph__seek(d->fp, d->header_bytes + (uint64_t)start * d->image_bytes) != 0)
        return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_IO, "%s: cannot seek to picture %zu", d->path, start);
    for (i = 0; i < n; i++) {
        if (fread(d->raw, 1, (size_t)d->image_bytes, d->fp) != (size_t)d->image_bytes)
            return heph__errf(d->err, HEPH_ERRLEN, HEPH_E_IO, "%s: cannot read picture %zu", d->path, start + i);
        if (heph__hpd_decode(d, d->raw, out + i * np, start + i) != HEPH_OK) return HEPH_E_FORMAT;
    }
    return HEPH_OK;
}

HEPH_DEF int32_t heph_hpd_label(const heph_hpd *d, size_t i, int k) {
    HEPH_ASSERT(i < d->info.count && k >= 0 && (uint32_t)k < d->info.n_factors);
    return d->labels[i * d->info.n_factors + (size_t)k];
}

/* writer */
HEPH_DEF void heph_hpd_abort(heph_hpd_writer *w) {
    if (w->fp) { fclose(w->fp); remove(w->tmp); }
    HEPH_FREE(w->labels);
    HEPH_FREE(w->raw);
    w->fp = NULL; w->labels = NULL; w->raw = NULL;
}

HEPH_DEF int heph_hpd_create(heph_hpd_writer *w, const char *path, const heph_hpd_info *info) {
    unsigned char *hdr;
    uint64_t hb, pix, nlab;
    uint32_t k, off;
    int rc;
    memset(w, 0, sizeof *w);
    w->info = *info;
    heph__copy_path(w->path, sizeof w->path, path);
    rc = HEPH_TMP_PATH(w->tmp, sizeof w->tmp, w->path);
    if (rc < 0 || (size_t)rc >= sizeof w->tmp)
        return heph__errf(w->err, HEPH_ERRLEN, HEPH_E_ARG, "%s: path too long for its temporary file", w->path);
    rc = heph__hpd_check_info(info, w->path, w->err);
    if (rc != HEPH_OK) return rc;
    w->info.flags = (info->flags & ~(uint32_t)HEPH_HPD_LABELS) | (info->n_factors ? (uint32_t)HEPH_HPD_LABELS : 0u);
    /* header size: fixed part, factor table, factor values, padded to 64 */
    hb = HEPH__HPD_FIXED + 32u * info->n_factors;
    for (k = 0; k < info->n_factors; k++)
        if (info->factors[k].values) hb += 8ull * info->factors[k].n_values;
    hb = (hb + 63) / 64 * 64;
    w->image_bytes = heph__hpd_image_bytes(info);
    if (hb > HEPH__HPD_MAX_HEADER || !heph__mul64_ok(info->count, w->image_bytes, &pix) ||
        !heph__mul64_ok(info->count, info->n_factors, &nlab) || nlab > (uint64_t)((size_t)-1) / 8)
        return heph__errf(w->err, HEPH_ERRLEN, HEPH_E_SIZE, "%s: dataset too large", w->path);
    hdr = (unsigned char *)heph__calloc((size_t)hb, 1);
    w->labels = nlab ? (int32_t *)heph__calloc((size_t)nlab, sizeof(int32_t)) : NULL;
    w->raw = (unsigned char *)heph__calloc((size_t)w->image_bytes, 1);
    if (!hdr || (nlab && !w->labels) || !w->raw) {
        HEPH_FREE(hdr);
        heph_hpd_abort(w);
        return heph__errf(w->err, HEPH_ERRLEN, HEPH_E_NOMEM, "%s: out of memory", w->path);
    }
    memcpy(hdr, heph__hpd_magic, 8);
    heph__put_le32(hdr + 8, 1);
    heph__put_le32(hdr + 12, (uint32_t)hb);
    heph__put_le64(hdr + 16, info->count);
    heph__put_le32(hdr + 24, info->c);
    heph__put_le32(hdr + 28, info->h);
    heph__put_le32(hdr + 32, info->w);
    heph__put_le32(hdr + 36, info->dtype);
    heph__put_le32(hdr + 40, 0);
    heph__put_le32(hdr + 44, heph__f2u(info->value_max));
    heph__put_le32(hdr + 48, info->n_factors);
    heph__put_le32(hdr + 52, w->info.flags);
    heph__put_le64(hdr + 56, info->seed);
    heph__put_le64(hdr + 64, hb + pix);
    { /* source name, NUL-padded to 32 bytes */
        size_t sl = 0;
        while (sl < 32 && info->source[sl]) sl++;
        memcpy(hdr + 72, info->source, sl);
    }
    off = HEPH__HPD_FIXED + 32u * info->n_factors;
    for (k = 0; k < info->n_factors; k++) {
        unsigned char *f = hdr + HEPH__HPD_FIXED + 32u * k;
        uint32_t i;
        memcpy(f, info->factors[k].name, 24);
        heph__put_le32(f + 24, info->factors[k].n_values);
        if (info->factors[k].values) {
            heph__put_le32(f + 28, off);
            for (i = 0; i < info->factors[k].n_values; i++)
                heph__put_le64(hdr + off + 8 * i, heph__d2u(info->factors[k].values[i]));
            off += 8u * info->factors[k].n_values;
        }
    }
    w->fp = fopen(w->tmp, "wb");
    if (!w->fp) {
        HEPH_FREE(hdr);
        heph_hpd_abort(w);
        return heph__errf(w->err, HEPH_ERRLEN, HEPH_E_IO, "%s: cannot create %s (%s)", w->path, w->tmp, strerror(errno));
    }
    if (fwrite(hdr, 1, (size_t)hb, w->fp) != (size_t)hb) {
        HEPH_FREE(hdr);
        heph_hpd_abort(w);
        return heph__errf(w->err, HEPH_ERRLEN, HEPH_E_IO, "%s: write failed (%s: %s)", w->path, w->tmp, strerror(errno));
    }
    HEPH_FREE(hdr);
    return HEPH_OK;
}

static int heph__hpd_put_raw(heph_hpd_writer *w, const int32_t *factors) {
    uint32_t k;
    if (w->written >= w->info.count)
        return heph__errf(w->err, HEPH_ERRLEN, HEPH_E_ARG, "%s: more than the %llu pictures announced",
                          w->path, (unsigned long long)w->info.count);
    for (k = 0; k < w->info.n_factors; k++) {
        if (factors[k] < 0 || (uint32_t)factors[k] >= w->info.factors[k].n_values)
            return heph__errf(w->err, HEPH_ERRLEN, HEPH_E_ARG,
                              "%s: picture %llu factor %s index %d is outside 0..%u", w->path,
                              (unsigned long long)w->written, w->info.factors[k].name, factors[k],
                              w->info.factors[k].n_values - 1);
        w->labels[w->written * w->info.n_factors + k] = factors[k];
    }
    if (fwrite(w->raw, 1, (size_t)w->image_bytes, w->fp) != (size_t)w->image_bytes)
        return heph__errf(w->err, HEPH_ERRLEN, HEPH_E_IO, "%s: write failed (%s: %s)", w->path, w->tmp, strerror(errno));
    w->written++;
    return HEPH_OK;
}

HEPH_DEF int heph_hpd_put_u8(heph_hpd_writer *w, const uint8_t *px, const int32_t *factors) {
    size_t n = heph_hpd_picture_size(&w->info), i;
    if (w->info.dtype == HEPH_PX_F32)
        for (i = 0; i < n; i++)
            if ((float)px[i] > w->info.value_max) /* what the reader would refuse */
                return heph__errf(w->err, HEPH_ERRLEN, HEPH_E_ARG, "%s: picture %llu, value %zu is %u: pixels must "
                                  "lie in [0, value_max %g]", w->path, (unsigned long long)w->written, i,
                                  (unsigned)px[i], (double)w->info.value_max);
    if (w->info.dtype == HEPH_PX_U8) {
        memcpy(w->raw, px, n);
    } else if (w->info.dtype == HEPH_PX_BIT) {
        memset(w->raw, 0, (size_t)w->image_bytes);
        for (i = 0; i < n; i++)
            if (px[i]) w->raw[i >> 3] |= (unsigned char)(0x80u >> (i & 7));
    } else {
        for (i = 0; i < n; i++) heph__put_le32(w->raw + 4 * i, heph__f2u((float)px[i]));
    }
    return heph__hpd_put_raw(w, factors);
}

HEPH_DEF int heph_hpd_put_f32(heph_hpd_writer *w, const float *px, const int32_t *factors) {
    size_t n = heph_hpd_picture_size(&w->info), i;
    if (w->info.dtype != HEPH_PX_F32)
        return heph__errf(w->err, HEPH_ERRLEN, HEPH_E_ARG, "%s: put_f32 needs pixel type f32", w->path);
    for (i = 0; i < n; i++) {
        if (!(px[i] >= 0.0f && px[i] <= w->info.value_max)) /* what the reader would refuse */
            return heph__errf(w->err, HEPH_ERRLEN, HEPH_E_ARG, "%s: picture %llu, value %zu is %g: pixels must lie "
                              "in [0, value_max %g]", w->path, (unsigned long long)w->written, i, (double)px[i],
                              (double)w->info.value_max);
        heph__put_le32(w->raw + 4 * i, heph__f2u(px[i]));
    }
    return heph__hpd_put_raw(w, factors);
}

HEPH_DEF int heph_hpd_finish(heph_hpd_writer *w) {
    unsigned char buf[4096];
    size_t i, n = (size_t)(w->info.count * w->info.n_factors), fill = 0;
    int ok = 1, e;
    if (!w->fp) return heph__errf(w->err, HEPH_ERRLEN, HEPH_E_ARG, "%s: writer is not open", w->path);
    if (w->written != w->info.count) {
        heph__errf(w->err, HEPH_ERRLEN, HEPH_E_ARG, "%s: %llu pictures written, %llu announced",
                   w->path, (unsigned long long)w->written, (unsigned long long)w->info.count);
        heph_hpd_abort(w);
        return HEPH_E_ARG;
    }
    for (i = 0; i < n && ok; i++) {
        heph__put_le32(buf + fill, (uint32_t)w->labels[i]);
        fill += 4;
        if (fill == sizeof buf || i + 1 == n) {
            ok = fwrite(buf, 1, fill, w->fp) == fill;
            fill = 0;
        }
    }
    ok = ok && fflush(w->fp) == 0;
    ok = ok && HEPH_FSYNC(w->fp) == 0;
    e = ok ? 0 : errno;
    ok = (fclose(w->fp) == 0) && ok;
    if (!ok && !e) e = errno;
    w->fp = NULL;
    if (ok && rename(w->tmp, w->path) != 0) { ok = 0; e = errno; }
    if (!ok) {
        remove(w->tmp);
        heph_hpd_abort(w);
        return heph__errf(w->err, HEPH_ERRLEN, HEPH_E_IO, "%s: cannot write or rename into place (%s: %s)",
                          w->path, w->tmp, strerror(e));
    }
    heph_hpd_abort(w); /* frees buffers; fp is already closed */
    if (HEPH_SYNC_DIR(w->path) != 0)
        return heph__errf(w->err, HEPH_ERRLEN, HEPH_E_IO, "%s: written, but its folder cannot be synced (%s)",
                          w->path, strerror(errno));
    return HEPH_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* checkpoints (.hpm), all fields little-endian, in this order:
     magic "HEPHHPM\0", version u32 (1; 2: a conditional model), flags u32 (1 = optimiser state present)
     in_c, in_h, in_w, z_dim, max_batch: u32
     encoder spec, decoder spec: u32 length + bytes (no NUL)
     objective: kind u32, recon u32, beta f32, gamma f32, gamma_end f32, c_max f32, ramp_steps u64,
                alpha f32, estimator u32, dataset_size u64
     Adam: lr, beta1, beta2, eps f32;  step u64
     RNG: state u64, inc u64, has_spare u32, spare f32
     version 2 only: n_classes u32, label_dim u32, label_weight f32, wrong_labels f32
     n_params u64, parameters f32[n] (encoder, decoder, then emb_enc and emb_dec of a conditional
     model); if flags & 1: Adam m f32[n], v f32[n]
     checksum u64: FNV-1a 64 of every byte before it                                          */

static const unsigned char heph__hpm_magic[8] = {'H', 'E', 'P', 'H', 'H', 'P', 'M', 0};

typedef struct {
    FILE *fp;
    uint64_t hash;
    int ok, err; /* err: errno of the first failure */
} heph__wr;

static void heph__wr_bytes(heph__wr *w, const void *p, size_t n) {
    if (!w->ok) return;
    w->hash = heph__fnv1a(w->hash, (const unsigned char *)p, n);
    if (fwrite(p, 1, n, w->fp) != n) { w->ok = 0; w->err = errno; }
}
static void heph__wr_u32(heph__wr *w, uint32_t v) {
    unsigned char b[4];
    heph__put_le32(b, v);
    heph__wr_bytes(w, b, 4);
}
static void heph__wr_u64(heph__wr *w, uint64_t v) {
    unsigned char b[8];
    heph__put_le64(b, v);
    heph__wr_bytes(w, b, 8);
}
static void heph__wr_f32s(heph__wr *w, const float *x, size_t n) {
    unsigned char buf[4096];
    size_t i, fill = 0;
    for (i = 0; i < n; i++) {
        heph__put_le32(buf + fill, heph__f2u(x[i]));
        fill += 4;
        if (fill == sizeof buf) { heph__wr_bytes(w, buf, fill); fill = 0; }
    }
    if (fill) heph__wr_bytes(w, buf, fill);
}
static void heph__wr_str(heph__wr *w, const char *s) {
    size_t n = strlen(s);
    heph__wr_u32(w, (uint32_t)n);
    heph__wr_bytes(w, s, n);
}

/* a file written atomically: open a temporary name beside path (HEPH_TMP_PATH) ... */
static int heph__wr_open(heph__wr *w, char *tmp, size_t cap, const char *path, const char *what,
                         char *err, size_t errlen) {
    int n = HEPH_TMP_PATH(tmp, cap, path);
    if (n < 0 || (size_t)n >= cap) return heph__errf(err, errlen, HEPH_E_ARG, "%s path is too long", what);
    w->fp = fopen(tmp, "wb");
    w->hash = HEPH__FNV_INIT;
    w->ok = w->fp != NULL;
    w->err = 0;
    if (!w->ok)
        return heph__errf(err, errlen, HEPH_E_IO, "%s: cannot create the %s %s (%s)", path, what, tmp,
                          strerror(errno));
    return HEPH_OK;
}
/* ... then the checksum of every byte before it, flush, sync (HEPH_FSYNC), close, rename into
   place and sync the folder (HEPH_SYNC_DIR): a crash never leaves a half-written file under
   the real name, and a failed write removes the temporary */
static int heph__wr_close(heph__wr *w, const char *tmp, const char *path, const char *what,
                          char *err, size_t errlen) {
    unsigned char b[8];
    heph__put_le64(b, w->hash);
    heph__wr_bytes(w, b, 8); /* (the hash it updates is no longer used) */
    if (w->ok && fflush(w->fp) != 0) { w->ok = 0; w->err = errno; }
    if (w->ok && HEPH_FSYNC(w->fp) != 0) { w->ok = 0; w->err = errno; }
    if (fclose(w->fp) != 0 && w->ok) { w->ok = 0; w->err = errno; }
    if (w->ok && rename(tmp, path) != 0) { w->ok = 0; w->err = errno; }
    if (!w->ok) {
        remove(tmp);
        return heph__errf(err, errlen, HEPH_E_IO, "%s: cannot write the %s (%s: %s)", path, what, tmp,
                          w->err ? strerror(w->err) : "write failed");
    }
    if (HEPH_SYNC_DIR(path) != 0)
        return heph__errf(err, errlen, HEPH_E_IO, "%s: written, but its folder cannot be synced (%s)", path,
                          strerror(errno));
    return HEPH_OK;
}

HEPH_DEF int heph_vae_save(heph_vae *m, const char *path, int flags) {
    char tmp[1024];
    heph__wr w;
    const heph_vae_config *c = &m->cfg;
    int opt = !(flags & HEPH_SAVE_WEIGHTS_ONLY);
    int rc = heph__wr_open(&w, tmp, sizeof tmp, path, "checkpoint", m->err, HEPH_ERRLEN);
    if (rc != HEPH_OK) return rc;
    heph__wr_bytes(&w, heph__hpm_magic, 8);
    heph__wr_u32(&w, c->n_classes ? 2u : 1u); /* version 2: a conditional model */
    heph__wr_u32(&w, opt ? 1u : 0u);
    heph__wr_u32(&w, (uint32_t)c->in_c); heph__wr_u32(&w, (uint32_t)c->in_h);
    heph__wr_u32(&w, (uint32_t)c->in_w); heph__wr_u32(&w, (uint32_t)c->z_dim);
    heph__wr_u32(&w, (uint32_t)c->max_batch);
    heph__wr_str(&w, c->enc_spec);
    heph__wr_str(&w, c->dec_spec);
    heph__wr_u32(&w, (uint32_t)c->obj.kind); heph__wr_u32(&w, (uint32_t)c->obj.recon);
    heph__wr_u32(&w, heph__f2u(c->obj.beta)); heph__wr_u32(&w, heph__f2u(c->obj.gamma));
    heph__wr_u32(&w, heph__f2u(c->obj.gamma_end)); heph__wr_u32(&w, heph__f2u(c->obj.c_max));
    heph__wr_u64(&w, c->obj.ramp_steps);
    heph__wr_u32(&w, heph__f2u(c->obj.alpha)); heph__wr_u32(&w, (uint32_t)c->obj.estimator);
    heph__wr_u64(&w, c->obj.dataset_size);
    heph__wr_u32(&w, heph__f2u(c->lr)); heph__wr_u32(&w, heph__f2u(c->beta1));
    heph__wr_u32(&w, heph__f2u(c->beta2)); heph__wr_u32(&w, heph__f2u(c->eps));
    heph__wr_u64(&w, m->step);
    heph__wr_u64(&w, m->rng.state); heph__wr_u64(&w, m->rng.inc);
    heph__wr_u32(&w, (uint32_t)m->rng.has_spare); heph__wr_u32(&w, heph__f2u(m->rng.spare));
    if (c->n_classes) {
        heph__wr_u32(&w, (uint32_t)c->n_classes); heph__wr_u32(&w, (uint32_t)c->label_dim);
        heph__wr_u32(&w, heph__f2u(c->label_weight)); heph__wr_u32(&w, heph__f2u(c->wrong_labels));
    }
    heph__wr_u64(&w, (uint64_t)m->n_params);
    heph__wr_f32s(&w, m->params, m->n_params);
    if (opt) {
        heph__wr_f32s(&w, m->adam_m, m->n_params);
        heph__wr_f32s(&w, m->adam_v, m->n_params);
    }
    return heph__wr_close(&w, tmp, path, "checkpoint", m->err, HEPH_ERRLEN);
}

/* bounds-checked reader over a memory buffer */
typedef struct {
    const unsigned char *p;
    size_t n, at;
    int ok;
} heph__rd;

static const unsigned char *heph__rd_take(heph__rd *r, size_t n) {
    const unsigned char *p;
    if (!r->ok || n > r->n - r->at) { r->ok = 0; return NULL; }
    p = r->p + r->at;
    r->at += n;
    return p;
}
static uint32_t heph__rd_u32(heph__rd *r) {
    const unsigned char *p = heph__rd_take(r, 4);
    return p ? heph__get_le32(p) : 0;
}
static uint64_t heph__rd_u64(heph__rd *r) {
    const unsigned char *p = heph__rd_take(r, 8);
    return p ? heph__get_le64(p) : 0;
}
static float heph__rd_f32(heph__rd *r) { return heph__u2f(heph__rd_u32(r)); }
static int heph__rd_str(heph__rd *r, char *dst, size_t cap) {
    uint32_t n = heph__rd_u32(r);
    const unsigned char *p;
    if (!r->ok || n >= cap) { r->ok = 0; return 0; }
    p = heph__rd_take(r, n);
    if (!p) return 0;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return memchr(dst, 0, n) == NULL; /* no NUL inside */
}
static void heph__rd_f32s(heph__rd *r, float *dst, size_t n) {
    const unsigned char *p = heph__rd_take(r, n * 4);
    size_t i;
    if (!p) return;
    for (i = 0; i < n; i++) dst[i] = heph__u2f(heph__get_le32(p + 4 * i));
}

#define HEPH__HPM_MAX_BYTES ((uint64_t)1 << 36)

/* adds the parameters of the network spec describes on input (c, h, w) to *n_params and sets
   *out_n to its output size; no allocation. HEPH_E_SPEC when the spec is invalid. */
static int heph__spec_count(const char *spec, int c, int h, int w, size_t *n_params, size_t *out_n) {
    heph_layer ly[HEPH_MAX_LAYERS];
    char err[8];
    int nl, l, rc = heph_spec_parse(spec, c, h, w, ly, HEPH_MAX_LAYERS, &nl, err, sizeof err);
    if (rc != HEPH_OK) return rc;
    for (l = 0; l < nl; l++) *n_params += ly[l].n_params;
    *out_n = nl ? heph__layer_out_n(&ly[nl - 1]) : (size_t)c * (size_t)h * (size_t)w;
    return HEPH_OK;
}

/* every BatchNorm running variance of net >= 0 (what training keeps; a negative one would
   make the evaluation sqrt NaN): HEPH_OK, or HEPH_E_FORMAT naming the layer and channel   */
static int heph__bn_state_ok(const heph_net *net, const char *path, const char *which, char *err, size_t errlen) {
    int l, c;
    for (l = 0; l < net->n_layers; l++) {
        const heph_layer *L = &net->layers[l];
        if (L->kind != HEPH_BN) continue;
        for (c = 0; c < L->in_c; c++) {
            float v = net->params[L->b_off + 2 * (size_t)L->in_c + (size_t)c];
            if (!(v >= 0.0f))
                return heph__errf(err, errlen, HEPH_E_FORMAT, "%s: %slayer %d (bn): the running variance of channel %d is %g "
                                  "(>= 0 expected)", path, which, l, c, (double)v);
        }
    }
    return HEPH_OK;
}

/* every weight finite, every Adam first moment finite, every second moment finite and >= 0
   (what training keeps), every BatchNorm running variance >= 0, or HEPH_E_FORMAT naming the
   first value that is not */
static int heph__block_values_ok(const float *p, const float *am, const float *av, size_t n, const heph_net *enc,
                                 const heph_net *dec, const char *path, const char *(*part)(const void *, size_t),
                                 const void *owner, char *err) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!(fabsf(p[i]) <= FLT_MAX))
            return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: parameter %zu is %g (%s)", path, i, (double)p[i],
                              part(owner, i));
    for (i = 0; i < n; i++)
        if (!(fabsf(am[i]) <= FLT_MAX))
            return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: Adam first moment of parameter %zu is %g",
                              path, i, (double)am[i]);
    for (i = 0; i < n; i++)
        if (!(av[i] >= 0.0f && av[i] <= FLT_MAX))
            return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: Adam second moment of parameter %zu is %g "
                              "(finite and >= 0 expected)", path, i, (double)av[i]);
    if (heph__bn_state_ok(enc, path, "encoder ", err, HEPH_ERRLEN) != HEPH_OK) return HEPH_E_FORMAT;
    return heph__bn_state_ok(dec, path, "decoder ", err, HEPH_ERRLEN);
}
static int heph__state_values_ok(heph_vae *m, const char *path) {
    return heph__block_values_ok(m->params, m->adam_m, m->adam_v, m->n_params, &m->enc, &m->dec, path,
                                 heph__vae_part, m, m->err);
}

/* a whole file into a new buffer (at most max bytes, at least min): HEPH_OK or an error in err */
static int heph__slurp(const char *path, uint64_t min, uint64_t max, unsigned char **buf, size_t *size,
                       char *err, size_t errlen) {
    FILE *fp = fopen(path, "rb");
    uint64_t n;
    *buf = NULL;
    if (!fp) return heph__errf(err, errlen, HEPH_E_IO, "%s: cannot open for reading", path);
    n = heph__file_size(fp);
    if (n == UINT64_MAX || n > max || n > (uint64_t)((size_t)-1)) {
        fclose(fp);
        return heph__errf(err, errlen, HEPH_E_SIZE, "%s: file size cannot be read or is too large", path);
    }
    if (n < min) {
        fclose(fp);
        return heph__errf(err, errlen, HEPH_E_FORMAT, "%s: truncated (%llu bytes)", path, (unsigned long long)n);
    }
    *buf = (unsigned char *)HEPH_MALLOC((size_t)n);
    if (!*buf) { fclose(fp); return heph__errf(err, errlen, HEPH_E_NOMEM, "%s: out of memory", path); }
    if (fread(*buf, 1, (size_t)n, fp) != (size_t)n) {
        fclose(fp); HEPH_FREE(*buf); *buf = NULL;
        return heph__errf(err, errlen, HEPH_E_IO, "%s: read failed", path);
    }
    fclose(fp);
    *size = (size_t)n;
    return HEPH_OK;
}

/* the fixed fields of a .hpm in buf (magic, version and checksum checked): configuration,
   step and generator state; r is left at the parameter count */
static int heph__hpm_fields(heph__rd *r, const unsigned char *buf, size_t size, const char *path,
                            heph_vae_config *cfg, uint64_t *step_out, heph_rng *rng, uint32_t *flags_out,
                            char *err) {
    uint32_t version, flags;
    uint64_t step = 0;
    const char *field = "header";
    if (memcmp(buf, heph__hpm_magic, 8) != 0)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: not a .hpm checkpoint (wrong magic; expected \"HEPHHPM\")", path);
    version = heph__get_le32(buf + 8);
    if (version != 1 && version != 2)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_VERSION, "%s: checkpoint version %u (this library reads versions 1 "
                          "and 2)", path, version);
    if (heph__fnv1a(HEPH__FNV_INIT, buf, size - 8) != heph__get_le64(buf + size - 8))
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_CHECKSUM, "%s: checksum mismatch (the file is truncated or corrupted)",
                          path);
    r->p = buf; r->n = size - 8; r->ok = 1;
    flags = heph__get_le32(buf + 12);
    r->at = 16;
    memset(cfg, 0, sizeof *cfg);
    if (flags > 1) { r->ok = 0; field = "flags"; }
    if (r->ok) {
        field = "picture shape";
        cfg->in_c = (int)heph__rd_u32(r); cfg->in_h = (int)heph__rd_u32(r);
        cfg->in_w = (int)heph__rd_u32(r); cfg->z_dim = (int)heph__rd_u32(r);
        cfg->max_batch = (int)heph__rd_u32(r);
    }
    if (r->ok) { field = "encoder spec"; if (!heph__rd_str(r, cfg->enc_spec, HEPH_SPEC_MAX)) r->ok = 0; }
    if (r->ok) { field = "decoder spec"; if (!heph__rd_str(r, cfg->dec_spec, HEPH_SPEC_MAX)) r->ok = 0; }
    if (r->ok) {
        field = "objective";
        cfg->obj.kind = (int)heph__rd_u32(r); cfg->obj.recon = (int)heph__rd_u32(r);
        cfg->obj.beta = heph__rd_f32(r); cfg->obj.gamma = heph__rd_f32(r);
        cfg->obj.gamma_end = heph__rd_f32(r); cfg->obj.c_max = heph__rd_f32(r);
        cfg->obj.ramp_steps = heph__rd_u64(r);
        cfg->obj.alpha = heph__rd_f32(r); cfg->obj.estimator = (int)heph__rd_u32(r);
        cfg->obj.dataset_size = heph__rd_u64(r);
        cfg->lr = heph__rd_f32(r); cfg->beta1 = heph__rd_f32(r);
        cfg->beta2 = heph__rd_f32(r); cfg->eps = heph__rd_f32(r);
        step = heph__rd_u64(r);
        rng->state = heph__rd_u64(r); rng->inc = heph__rd_u64(r);
        rng->has_spare = heph__rd_u32(r) ? 1 : 0; rng->spare = heph__rd_f32(r);
    }
    if (r->ok && version == 2) {
        field = "conditional settings";
        cfg->n_classes = (int)heph__rd_u32(r); cfg->label_dim = (int)heph__rd_u32(r);
        cfg->label_weight = heph__rd_f32(r); cfg->wrong_labels = heph__rd_f32(r);
        if (r->ok && (cfg->n_classes < 2 || cfg->n_classes > 65536 || cfg->label_dim < 1 || cfg->label_dim > 4096))
            return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: %d labels with a %d-wide embedding (2..65536, "
                              "1..4096)", path, cfg->n_classes, cfg->label_dim);
    }
    if (!r->ok) return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: malformed %s", path, field);
    if (step > HEPH_STEP_MAX)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: step %llu is out of range 0..2^53", path,
                          (unsigned long long)step);
    if (!(fabsf(rng->spare) <= FLT_MAX))
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: random generator state: spare normal is %g",
                          path, (double)rng->spare);
    if (cfg->in_c <= 0 || cfg->in_h <= 0 || cfg->in_w <= 0 || cfg->in_c > (int)HEPH__MAX_CHANNELS ||
        cfg->in_h > (int)HEPH__MAX_SIDE || cfg->in_w > (int)HEPH__MAX_SIDE)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: picture shape %dx%dx%d is invalid", path,
                          cfg->in_c, cfg->in_h, cfg->in_w);
    *step_out = step; *flags_out = flags;
    return HEPH_OK;
}

/* before anything is allocated: the stored parameter count must fill the rest of the file
   exactly, and match the architecture the specs describe (a damaged or hostile header cannot
   make the loader allocate more than a few times the file's size for parameters) */
static int heph__hpm_count_ok(const heph__rd *r, const heph_vae_config *cfg, uint32_t flags, const char *path,
                              char *err) {
    uint64_t per = (flags & 1) ? 12u : 4u, left = (uint64_t)(r->n - r->at), n_params;
    size_t want = 0, out_n = 0, enc_out = 0;
    char spec[HEPH_SPEC_MAX + 32];
    n_params = left >= 8 ? heph__get_le64(r->p + r->at) : 0;
    if (left < 8 || n_params > (left - 8) / per || n_params * per != left - 8)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT,
                          "%s: %llu parameters stored, the file holds %llu bytes for them (%s)", path,
                          (unsigned long long)n_params, (unsigned long long)(left >= 8 ? left - 8 : 0),
                          left < 8 || n_params > (left - 8) / per ? "truncated parameters"
                                                                  : "trailing bytes after the parameters");
    if (cfg->z_dim <= 0 || cfg->z_dim > 4096) return HEPH_OK; /* heph__vae_build says why */
    snprintf(spec, sizeof spec, "%s%sdense%d", cfg->enc_spec, cfg->enc_spec[0] ? "," : "", 2 * cfg->z_dim);
    want = (size_t)cfg->n_classes * (2 * (size_t)cfg->z_dim + (size_t)cfg->label_dim); /* the label tables */
    if (heph__spec_count(spec, cfg->in_c, cfg->in_h, cfg->in_w, &want, &enc_out) == HEPH_OK &&
        heph__spec_count(cfg->dec_spec, cfg->z_dim + cfg->label_dim, 1, 1, &want, &out_n) == HEPH_OK) {
        size_t n_in = (size_t)cfg->in_c * (size_t)cfg->in_h * (size_t)cfg->in_w;
        if (out_n != n_in) /* as heph__vae_build would say, before it allocates the encoder */
            return heph__errf(err, HEPH_ERRLEN, HEPH_E_SPEC,
                              "%.80s: decoder spec \"%.120s\" outputs %zu values, the picture has %zu "
                              "(%dx%dx%d)", path, cfg->dec_spec, out_n, n_in, cfg->in_c, cfg->in_h, cfg->in_w);
        if (want != n_params)
            return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: %llu parameters stored, the architecture has %zu",
                              path, (unsigned long long)n_params, want);
    }
    return HEPH_OK;
}

HEPH_DEF int heph_vae_load(heph_vae *m, const char *path) {
    unsigned char *buf = NULL;
    size_t size = 0;
    uint64_t n_params, step = 0;
    heph__rd r;
    heph_vae_config cfg;
    heph_rng rng;
    uint32_t flags = 0;
    char err[HEPH_ERRLEN];
    int rc;
    memset(m, 0, sizeof *m);
    memset(&rng, 0, sizeof rng);
    memset(&r, 0, sizeof r);
    rc = heph__slurp(path, 16, HEPH__HPM_MAX_BYTES, &buf, &size, m->err, HEPH_ERRLEN);
    if (rc != HEPH_OK) return rc;
    rc = heph__hpm_fields(&r, buf, size, path, &cfg, &step, &rng, &flags, m->err);
    if (rc == HEPH_OK) rc = heph__hpm_count_ok(&r, &cfg, flags, path, m->err);
    if (rc != HEPH_OK) { HEPH_FREE(buf); return rc; }
    rc = heph__vae_build(m, &cfg);
    if (rc != HEPH_OK) {
        snprintf(err, sizeof err, "%.100s: %.150s", path, m->err);
        HEPH_FREE(buf);
        memset(m, 0, sizeof *m);
        memcpy(m->err, err, sizeof err);
        return rc;
    }
    n_params = heph__rd_u64(&r);
    if (!r.ok || n_params != (uint64_t)m->n_params) {
        size_t want = m->n_params;
        heph_vae_free(m);
        HEPH_FREE(buf);
        memset(m, 0, sizeof *m);
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_FORMAT,
                          "%s: %llu parameters stored, the architecture has %zu", path,
                          (unsigned long long)n_params, want);
    }
    heph__rd_f32s(&r, m->params, m->n_params);
    if (flags & 1) {
        heph__rd_f32s(&r, m->adam_m, m->n_params);
        heph__rd_f32s(&r, m->adam_v, m->n_params);
    }
    if (!r.ok || r.at != r.n) {
        size_t at = r.at, n = r.n;
        int ok = r.ok;
        heph_vae_free(m);
        HEPH_FREE(buf);
        memset(m, 0, sizeof *m);
        return heph__errf(m->err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: %s (%zu bytes of %zu used)", path,
                          ok ? "trailing bytes after the parameters" : "truncated parameters", at, n);
    }
    rc = heph__state_values_ok(m, path);
    if (rc != HEPH_OK) {
        memcpy(err, m->err, sizeof err);
        heph_vae_free(m);
        HEPH_FREE(buf);
        memset(m, 0, sizeof *m);
        memcpy(m->err, err, sizeof err);
        return rc;
    }
    m->step = step;
    m->rng = rng;
    HEPH_FREE(buf);
    return HEPH_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* cycle-consistent VAE checkpoints (.hpc), all fields little-endian:
     magic "HEPHHPC\0", version u32 (1), flags u32 (1: the optimiser state follows the weights)
     in_c, in_h, in_w, s_dim, z_dim, max_batch: u32;  encoder spec, decoder spec: u32 length + bytes
     recon u32, w_recon, w_kl, w_reverse f32, reverse_grad u32;  Adam lr, beta1, beta2, eps f32;  step u64
     RNG: state u64, inc u64, has_spare u32, spare f32
     n_params u64, parameters f32[n] (encoder, decoder); if flags & 1: Adam m f32[n], v f32[n]
     checksum u64: FNV-1a 64 of every byte before it                                          */

static const unsigned char heph__hpc_magic[8] = {'H', 'E', 'P', 'H', 'H', 'P', 'C', 0};

HEPH_DEF int heph_cyc_save(heph_cyc *m, const char *path, int flags) {
    char tmp[1024];
    heph__wr w;
    const heph_cyc_config *c = &m->cfg;
    int opt = !(flags & HEPH_SAVE_WEIGHTS_ONLY);
    int rc = heph__wr_open(&w, tmp, sizeof tmp, path, "checkpoint", m->err, HEPH_ERRLEN);
    if (rc != HEPH_OK) return rc;
    heph__wr_bytes(&w, heph__hpc_magic, 8);
    heph__wr_u32(&w, 1u);
    heph__wr_u32(&w, opt ? 1u : 0u);
    heph__wr_u32(&w, (uint32_t)c->in_c); heph__wr_u32(&w, (uint32_t)c->in_h); heph__wr_u32(&w, (uint32_t)c->in_w);
    heph__wr_u32(&w, (uint32_t)c->s_dim); heph__wr_u32(&w, (uint32_t)c->z_dim); heph__wr_u32(&w, (uint32_t)c->max_batch);
    heph__wr_str(&w, c->enc_spec);
    heph__wr_str(&w, c->dec_spec);
    heph__wr_u32(&w, (uint32_t)c->recon);
    heph__wr_u32(&w, heph__f2u(c->w_recon)); heph__wr_u32(&w, heph__f2u(c->w_kl)); heph__wr_u32(&w, heph__f2u(c->w_reverse));
    heph__wr_u32(&w, (uint32_t)c->reverse_grad);
    heph__wr_u32(&w, heph__f2u(c->lr)); heph__wr_u32(&w, heph__f2u(c->beta1));
    heph__wr_u32(&w, heph__f2u(c->beta2)); heph__wr_u32(&w, heph__f2u(c->eps));
    heph__wr_u64(&w, m->step);
    heph__wr_u64(&w, m->rng.state); heph__wr_u64(&w, m->rng.inc);
    heph__wr_u32(&w, (uint32_t)m->rng.has_spare); heph__wr_u32(&w, heph__f2u(m->rng.spare));
    heph__wr_u64(&w, (uint64_t)m->n_params);
    heph__wr_f32s(&w, m->params, m->n_params);
    if (opt) {
        heph__wr_f32s(&w, m->adam_m, m->n_params);
        heph__wr_f32s(&w, m->adam_v, m->n_params);
    }
    return heph__wr_close(&w, tmp, path, "checkpoint", m->err, HEPH_ERRLEN);
}

/* the fields of a .hpc before its parameters (magic, version, checksum checked), and the
   parameter count against the file's size and the architecture, before anything is allocated */
static int heph__hpc_fields(heph__rd *r, const unsigned char *buf, size_t size, const char *path, heph_cyc_config *c,
                            uint64_t *step, heph_rng *rng, uint32_t *flags, char *err) {
    uint32_t version;
    uint64_t left, n_params, per;
    size_t want = 0, enc_out = 0, out_n = 0;
    char spec[HEPH_SPEC_MAX + 32];
    if (memcmp(buf, heph__hpc_magic, 8) != 0)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: not a .hpc cycle-VAE checkpoint (wrong magic; expected "
                          "\"HEPHHPC\")", path);
    if ((version = heph__get_le32(buf + 8)) != 1)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_VERSION, "%s: cycle-VAE checkpoint version %u (this library reads 1)",
                          path, version);
    if (heph__fnv1a(HEPH__FNV_INIT, buf, size - 8) != heph__get_le64(buf + size - 8))
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_CHECKSUM, "%s: checksum mismatch (the file is truncated or corrupted)",
                          path);
    r->p = buf; r->n = size - 8; r->ok = 1; r->at = 16;
    *flags = heph__get_le32(buf + 12);
    memset(c, 0, sizeof *c);
    c->in_c = (int)heph__rd_u32(r); c->in_h = (int)heph__rd_u32(r); c->in_w = (int)heph__rd_u32(r);
    c->s_dim = (int)heph__rd_u32(r); c->z_dim = (int)heph__rd_u32(r); c->max_batch = (int)heph__rd_u32(r);
    if (!heph__rd_str(r, c->enc_spec, HEPH_SPEC_MAX) || !heph__rd_str(r, c->dec_spec, HEPH_SPEC_MAX)) r->ok = 0;
    c->recon = (int)heph__rd_u32(r);
    c->w_recon = heph__rd_f32(r); c->w_kl = heph__rd_f32(r); c->w_reverse = heph__rd_f32(r);
    c->reverse_grad = (int)heph__rd_u32(r);
    c->lr = heph__rd_f32(r); c->beta1 = heph__rd_f32(r); c->beta2 = heph__rd_f32(r); c->eps = heph__rd_f32(r);
    *step = heph__rd_u64(r);
    rng->state = heph__rd_u64(r); rng->inc = heph__rd_u64(r);
    rng->has_spare = heph__rd_u32(r) ? 1 : 0; rng->spare = heph__rd_f32(r);
    if (!r->ok || *flags > 1) return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: malformed header", path);
    if (*step > HEPH_STEP_MAX || !(fabsf(rng->spare) <= FLT_MAX))
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: step %llu or the generator's spare normal %g is out of range",
                          path, (unsigned long long)*step, (double)rng->spare);
    if (c->in_c <= 0 || c->in_h <= 0 || c->in_w <= 0 || c->in_c > (int)HEPH__MAX_CHANNELS || c->in_h > (int)HEPH__MAX_SIDE ||
        c->in_w > (int)HEPH__MAX_SIDE || c->s_dim <= 0 || c->s_dim > 4096 || c->z_dim <= 0 || c->z_dim > 4096)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: picture %dx%dx%d or latent sizes s %d, z %d out of range",
                          path, c->in_c, c->in_h, c->in_w, c->s_dim, c->z_dim);
    per = (*flags & 1) ? 12u : 4u;
    left = (uint64_t)(r->n - r->at);
    n_params = left >= 8 ? heph__get_le64(r->p + r->at) : 0;
    if (left < 8 || n_params > (left - 8) / per || n_params * per != left - 8)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: %llu parameters stored, the file holds %llu bytes for them",
                          path, (unsigned long long)n_params, (unsigned long long)(left >= 8 ? left - 8 : 0));
    snprintf(spec, sizeof spec, "%s%sdense%d", c->enc_spec, c->enc_spec[0] ? "," : "", c->s_dim + 2 * c->z_dim);
    if (heph__spec_count(spec, c->in_c, c->in_h, c->in_w, &want, &enc_out) == HEPH_OK &&
        heph__spec_count(c->dec_spec, c->s_dim + c->z_dim, 1, 1, &want, &out_n) == HEPH_OK && want != n_params)
        return heph__errf(err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: %llu parameters stored, the architecture has %zu", path,
                          (unsigned long long)n_params, want);
    return HEPH_OK; /* a bad spec: heph_cyc_init says why */
}

HEPH_DEF int heph_cyc_load(heph_cyc *m, const char *path) {
    unsigned char *buf = NULL;
    size_t size = 0;
    uint64_t step = 0;
    heph__rd r;
    heph_cyc_config cfg;
    heph_rng rng;
    uint32_t flags = 0;
    char err[HEPH_ERRLEN];
    int rc;
    memset(m, 0, sizeof *m);
    memset(&r, 0, sizeof r);
    memset(&rng, 0, sizeof rng);
    rc = heph__slurp(path, 16, HEPH__HPM_MAX_BYTES, &buf, &size, m->err, HEPH_ERRLEN);
    if (rc != HEPH_OK) return rc;
    rc = heph__hpc_fields(&r, buf, size, path, &cfg, &step, &rng, &flags, m->err);
    if (rc == HEPH_OK && (rc = heph_cyc_init(m, &cfg, 0)) != HEPH_OK) {
        snprintf(err, sizeof err, "%.100s: %.150s", path, m->err);
        memcpy(m->err, err, sizeof err);
    }
    if (rc == HEPH_OK) {
        (void)heph__rd_u64(&r); /* the count, checked above */
        heph__rd_f32s(&r, m->params, m->n_params);
        if (flags & 1) {
            heph__rd_f32s(&r, m->adam_m, m->n_params);
            heph__rd_f32s(&r, m->adam_v, m->n_params);
        }
        if (!r.ok || r.at != r.n)
            rc = heph__errf(m->err, HEPH_ERRLEN, HEPH_E_FORMAT, "%s: the parameters do not fill the file", path);
        else
            rc = heph__block_values_ok(m->params, m->adam_m, m->adam_v, m->n_params, &m->enc, &m->dec, path,
                                       heph__cyc_part, m, m->err);
        if (rc != HEPH_OK) {
            memcpy(err, m->err, sizeof err);
            heph_cyc_free(m);
            memcpy(m->err, err, sizeof err);
        }
    }
    HEPH_FREE(buf);
    if (rc != HEPH_OK) return rc;
    m->step = step;
    m->rng = rng;
    return HEPH_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* network files (.hpn): one network alone (a classifier, say), all fields little-endian:
     magic "HEPHHPN\0", version u32 (1), input shape in_c, in_h, in_w: u32
     spec: u32 length + bytes (no NUL);  n_params u64, parameters f32[n]
     checksum u64: FNV-1a 64 of every byte before it                                          */

static const unsigned char heph__hpn_magic[8] = {'H', 'E', 'P', 'H', 'H', 'P', 'N', 0};

/* the spec of a parsed network, rebuilt from its layers (what heph_spec_parse reads back) */
static void heph__net_spec(const heph_net *net, char *s, size_t cap) {
    size_t at = 0;
    int l;
    s[0] = '\0';
    for (l = 0; l < net->n_layers && at < cap; l++) {
        const heph_layer *L = &net->layers[l];
        const char *sep = l ? "," : "";
        int n = 0;
        switch (L->kind) {
        case HEPH_DENSE: n = snprintf(s + at, cap - at, "%sdense%d", sep, L->out_c); break;
        case HEPH_CONV: case HEPH_CONVT:
            n = snprintf(s + at, cap - at, "%s%s%dk%ds%dp%d", sep, L->kind == HEPH_CONV ? "conv" : "convt",
                         L->out_c, L->k, L->s, L->p);
            break;
        case HEPH_FLATTEN: n = snprintf(s + at, cap - at, "%sflatten", sep); break;
        case HEPH_MAXPOOL: n = snprintf(s + at, cap - at, "%smaxpool2", sep); break;
        case HEPH_BN: n = snprintf(s + at, cap - at, "%sbn", sep); break;
        case HEPH_RESHAPE: n = snprintf(s + at, cap - at, "%sreshape%dx%dx%d", sep, L->out_c, L->out_h, L->out_w); break;
        case HEPH_RELU: n = snprintf(s + at, cap - at, "%srelu", sep); break;
        case HEPH_LRELU: { /* the shortest decimal that reads back as the same float */
            char num[32];
            int d;
            for (d = 1; d <= 9; d++) {
                snprintf(num, sizeof num, "%.*g", d, (double)L->slope);
                if ((float)strtod(num, NULL) == L->slope) break;
            }
            n = snprintf(s + at, cap - at, "%slrelu%s", sep, num);
            break;
        }
        case HEPH_SIGMOID: n = snprintf(s + at, cap - at, "%ssigmoid", sep); break;
        case HEPH_TANH: n = snprintf(s + at, cap - at, "%stanh", sep); break;
        default: HEPH_ASSERT(0);
        }
        at += n > 0 ? (size_t)n : 0;
    }
}

HEPH_DEF int heph_net_save(const heph_net *net, const char *path, char *err, size_t errlen) {
    char tmp[1024], spec[HEPH_SPEC_MAX * 2];
    heph__wr w;
    int rc;
    heph__net_spec(net, spec, sizeof spec);
    if (strlen(spec) >= HEPH_SPEC_MAX)
        return heph__errf(err, errlen, HEPH_E_SPEC, "%s: the network's spec is longer than %d characters",
                          path, HEPH_SPEC_MAX - 1);
    if (!net->params) return heph__errf(err, errlen, HEPH_E_ARG, "%s: the network has no parameters bound", path);
    rc = heph__wr_open(&w, tmp, sizeof tmp, path, "network file", err, errlen);
    if (rc != HEPH_OK) return rc;
    heph__wr_bytes(&w, heph__hpn_magic, 8);
    heph__wr_u32(&w, 1);
    heph__wr_u32(&w, (uint32_t)net->in_c); heph__wr_u32(&w, (uint32_t)net->in_h);
    heph__wr_u32(&w, (uint32_t)net->in_w);
    heph__wr_str(&w, spec);
    heph__wr_u64(&w, (uint64_t)net->n_params);
    heph__wr_f32s(&w, net->params, net->n_params);
    return heph__wr_close(&w, tmp, path, "network file", err, errlen);
}


/* the header of a .hpn in buf: magic, version, checksum, shape, spec, and a parameter count that
   fills the rest of the file exactly and matches the spec; r is left at the parameters */
static int heph__hpn_header(heph__rd *r, const unsigned char *buf, size_t size, const char *path,
                            int *shape, char *spec, char *err, size_t errlen) {
    size_t want = 0, out_n = 0;
    uint64_t n;
    int i;
    if (memcmp(buf, heph__hpn_magic, 8) != 0)
        return heph__errf(err, errlen, HEPH_E_FORMAT, "%s: not a .hpn network file (wrong magic; expected \"HEPHHPN\")", path);
    if (heph__get_le32(buf + 8) != 1)
        return heph__errf(err, errlen, HEPH_E_VERSION, "%s: network file version %u (this library reads version 1)",
                          path, heph__get_le32(buf + 8));
    if (heph__fnv1a(HEPH__FNV_INIT, buf, size - 8) != heph__get_le64(buf + size - 8))
        return heph__errf(err, errlen, HEPH_E_CHECKSUM, "%s: checksum mismatch (the file is truncated or corrupted)", path);
    r->p = buf; r->n = size - 8; r->at = 12; r->ok = 1;
    for (i = 0; i < 3; i++) shape[i] = (int)heph__rd_u32(r);
    if (!r->ok || shape[0] <= 0 || shape[1] <= 0 || shape[2] <= 0 || shape[0] > (int)HEPH__MAX_CHANNELS ||
        shape[1] > (int)HEPH__MAX_SIDE || shape[2] > (int)HEPH__MAX_SIDE)
        return heph__errf(err, errlen, HEPH_E_FORMAT, "%s: input shape %dx%dx%d is invalid", path, shape[0], shape[1], shape[2]);
    if (!heph__rd_str(r, spec, HEPH_SPEC_MAX))
        return heph__errf(err, errlen, HEPH_E_FORMAT, "%s: malformed spec", path);
    if (heph__spec_count(spec, shape[0], shape[1], shape[2], &want, &out_n) != HEPH_OK)
        return heph__errf(err, errlen, HEPH_E_SPEC, "%s: invalid spec \"%.200s\"", path, spec);
    n = heph__rd_u64(r);
    if (!r->ok || n != (uint64_t)want || (uint64_t)(r->n - r->at) != 4 * (uint64_t)want)
        return heph__errf(err, errlen, HEPH_E_FORMAT, "%s: %llu parameters stored in %llu bytes, the spec has %zu", path,
                          (unsigned long long)n, (unsigned long long)(r->ok ? r->n - r->at : 0), want);
    return HEPH_OK;
}

HEPH_DEF int heph_net_load(heph_net *net, const char *path, int max_batch, char *err, size_t errlen) {
    unsigned char *buf;
    size_t size = 0, i;
    char spec[HEPH_SPEC_MAX];
    int shape[3], rc;
    heph__rd r;
    memset(net, 0, sizeof *net);
    memset(&r, 0, sizeof r);
    rc = heph__slurp(path, 24, HEPH__HPM_MAX_BYTES, &buf, &size, err, errlen);
    if (rc == HEPH_OK) rc = heph__hpn_header(&r, buf, size, path, shape, spec, err, errlen);
    if (rc == HEPH_OK) rc = heph_net_init(net, spec, shape[0], shape[1], shape[2], max_batch, err, errlen);
    if (rc != HEPH_OK) { HEPH_FREE(buf); return rc; }
    net->params_own = (float *)heph__calloc(2 * net->n_params + 1, sizeof(float));
    if (!net->params_own) {
        HEPH_FREE(buf); heph_net_free(net);
        return heph__errf(err, errlen, HEPH_E_NOMEM, "%s: out of memory for %zu parameters", path, net->n_params);
    }
    heph_net_bind(net, net->params_own, net->params_own + net->n_params);
    heph__rd_f32s(&r, net->params, net->n_params);
    HEPH_FREE(buf);
    for (i = 0; i < net->n_params; i++)
        if (!(fabsf(net->params[i]) <= FLT_MAX)) {
            heph_net_free(net);
            return heph__errf(err, errlen, HEPH_E_FORMAT, "%s: parameter %zu is not finite", path, i);
        }
    if (heph__bn_state_ok(net, path, "", err, errlen) != HEPH_OK) { heph_net_free(net); return HEPH_E_FORMAT; }
    return HEPH_OK;
}
#endif /* HEPH_NO_STDIO */

/* ========================================================================================== */
/* PART D - FAST KERNELS: packed GEMM, (H, W, C) and implicit-GEMM convolutions, vectorised */
/* exp/log for the losses, the network plan (layouts, fused ReLUs). Same results for any    */
/* thread count; reached only through the dispatch points of part A.                        */
/* ========================================================================================== */

/* ------------------------------------------------------------------------------------------ */
/* Mahalanobis scores (heph_maha_score) as a small triangular matrix product. W = L^-1 is
   formed once per call (D^3/3 multiply-adds, lower triangular, zero above the diagonal);
   then, for HEPH__MAHA_T latents side by side, y = W (z - m) takes HEPH__MAHA_R rows of W at a
   time into R x T sums held in vector registers (the latent index innermost, the pattern of
   the GEMM tile below), and D^2 = sum_a y_a^2 in the order of a. The plain form, heph__d2,
   solves L y = z - m one latent at a time by substitution, a chain of dependent steps as long
   as D: the two differ in the last bits (y through L^-1 instead of by division). Tiles go to
   threads in blocks of 256 latents; every D^2 is computed alone (same bits for any thread
   count).                                                                                  */
#define HEPH__MAHA_T 32     /* latents side by side (a multiple of the vector length) */
#define HEPH__MAHA_R 2      /* rows of W at a time: 2 x 32 sums, 8 AVX-512 registers  */
#define HEPH__MAHA_DMAX 256 /* the tile, D x HEPH__MAHA_T doubles, is on the stack (64 KB) */

/* y[i] += a x[i]: two rows of one matrix, which the compiler cannot know apart */
static void heph__axpy_d(double *HEPH__RESTRICT y, const double *HEPH__RESTRICT x, double a, int n) {
    int i;
    for (i = 0; i < n; i++) y[i] += a * x[i];
}

static void heph__maha_tile(const double *HEPH__RESTRICT mean, const double *HEPH__RESTRICT W,
                            int D, const float *HEPH__RESTRICT z, int nt, double *HEPH__RESTRICT v,
                            double *HEPH__RESTRICT d2) {
    double acc[HEPH__MAHA_R][HEPH__MAHA_T], sum[HEPH__MAHA_T];
    int a0, k, j, r;
    for (j = 0; j < HEPH__MAHA_T; j++) /* v[k][j] = z_jk - m_k (a short tile repeats its last) */
        for (k = 0; k < D; k++) v[k * HEPH__MAHA_T + j] = (double)z[(size_t)(j < nt ? j : nt - 1) * (size_t)D + (size_t)k] - mean[k];
    for (j = 0; j < HEPH__MAHA_T; j++) sum[j] = 0.0;
    for (a0 = 0; a0 < D; a0 += HEPH__MAHA_R) { /* y_a = sum_k<=a W_ak v_k, rows a0.. a0+R-1 */
        int kend = a0 + HEPH__MAHA_R < D ? a0 + HEPH__MAHA_R : D;
        for (r = 0; r < HEPH__MAHA_R; r++) { /* k = 0 starts the sums; rows past D are 0 */
            double w = W[(size_t)(a0 + r) * (size_t)D];
            for (j = 0; j < HEPH__MAHA_T; j++) acc[r][j] = w * v[j];
        }
        for (k = 1; k < kend; k++) {
            const double *vk = v + (size_t)k * HEPH__MAHA_T;
            for (r = 0; r < HEPH__MAHA_R; r++) {
                double w = W[(size_t)(a0 + r) * (size_t)D + (size_t)k];
                for (j = 0; j < HEPH__MAHA_T; j++) acc[r][j] += w * vk[j];
            }
        }
        for (r = 0; r < HEPH__MAHA_R; r++)
            for (j = 0; j < HEPH__MAHA_T; j++) sum[j] += acc[r][j] * acc[r][j];
    }
    for (j = 0; j < nt; j++) d2[j] = sum[j];
}

static int heph__maha_score_fast(const double *mean, const double *L, int D, const float *z,
                                 size_t n, double *d2) {
    size_t DR = ((size_t)D + HEPH__MAHA_R - 1) / HEPH__MAHA_R * HEPH__MAHA_R, a, c, k;
    long long b, nb = (long long)((n + 255) / 256);
    double *W;
    if (D > HEPH__MAHA_DMAX || n < HEPH__MAHA_T) return 0; /* the plain loops do it */
    W = (double *)HEPH_MALLOC(DR * (size_t)D * sizeof(double));
    if (!W) return 0;
    memset(W, 0, DR * (size_t)D * sizeof(double));
    for (a = 0; a < (size_t)D; a++) W[a * (size_t)D + a] = 1.0;
    for (k = 0; k < (size_t)D; k++) { /* L W = I, row k of W final once divided by L_kk ... */
        double *wk = W + k * (size_t)D;
        for (c = 0; c <= k; c++) wk[c] /= L[k * (size_t)D + k];
        for (a = k + 1; a < (size_t)D; a++) /* ... then every later row takes its term */
            heph__axpy_d(W + a * (size_t)D, wk, -L[a * (size_t)D + k], (int)k + 1);
    }
    HEPH__OMP_FOR_IF(n >= 2048)
    for (b = 0; b < nb; b++) {
        double v[HEPH__MAHA_DMAX * HEPH__MAHA_T];
        size_t i0 = (size_t)b * 256, i1 = n - i0 < 256 ? n : i0 + 256, i;
        for (i = i0; i < i1; i += HEPH__MAHA_T) {
            int nt = (int)(i1 - i < HEPH__MAHA_T ? i1 - i : HEPH__MAHA_T);
            heph__maha_tile(mean, W, D, z + i * (size_t)D, nt, v, d2 + i);
        }
    }
    HEPH_FREE(W);
    return 1;
}

/* kNN distances (heph_knn_score): the reference codes transposed to (D, n) doubles, so that
   one query's squared distances to a block of HEPH__KNN_BLOCK codes are summed side by side
   (vector lanes over the codes). Each distance still adds its D terms in order a = 0..D-1,
   as the plain loop does; the k smallest are kept by the same insertion.                   */
#define HEPH__KNN_BLOCK 256
static int heph__knn_fast(const float *ref, size_t n, int D, const float *z, size_t m, int k,
                          int self, double *best_all, double *dist) {
    double *T;
    size_t r, a;
    long long i;
    if (n < 64 || m < 16) return 0; /* the plain loops do it */
    T = (double *)HEPH_MALLOC(n * (size_t)D * sizeof(double));
    if (!T) return 0;
    for (r = 0; r < n; r++)
        for (a = 0; a < (size_t)D; a++) T[a * n + r] = (double)ref[r * (size_t)D + a];
    HEPH__OMP_FOR
    for (i = 0; i < (long long)m; i++) {
        double d2[HEPH__KNN_BLOCK], *best = best_all + (size_t)i * (size_t)k;
        const float *q = z + (size_t)i * (size_t)D;
        size_t r0, filled = 0;
        for (r0 = 0; r0 < n; r0 += HEPH__KNN_BLOCK) {
            size_t nb = n - r0 < HEPH__KNN_BLOCK ? n - r0 : HEPH__KNN_BLOCK, j;
            int c;
            for (j = 0; j < nb; j++) d2[j] = 0.0;
            for (c = 0; c < D; c++) {
                const double *col = T + (size_t)c * n + r0, qc = (double)q[c];
                for (j = 0; j < nb; j++) d2[j] += (qc - col[j]) * (qc - col[j]);
            }
            for (j = 0; j < nb; j++) {
                size_t at;
                if ((self && r0 + j == (size_t)i) || (filled == (size_t)k && d2[j] >= best[k - 1])) continue;
                at = filled < (size_t)k ? filled++ : (size_t)k - 1; /* insertion into the sorted list */
                while (at > 0 && best[at - 1] > d2[j]) { best[at] = best[at - 1]; at--; }
                best[at] = d2[j];
            }
        }
        dist[i] = sqrt(best[k - 1]);
    }
    HEPH_FREE(T);
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* GEMM: C (M,N) = [C +] op(A) (M,K) * op(B) (K,N), row-major.
   op(A)[m][k] = ta ? A[k*lda+m] : A[m*lda+k];   op(B)[k][n] = tb ? B[n*ldb+k] : B[k*ldb+n].
   k runs in blocks of HEPH__KC. For each block, B is packed into panels of HEPH__NR columns
   (ws: min(K, KC) * roundup(N, NR) floats), then each (HEPH__MR x HEPH__NR) tile of C sums
   the block in registers (k in order) and adds it to C. Threads take runs of whole panels
   through all k blocks when there are enough of them (one fork per product), else the tiles
   of each block. Every C element is computed by one thread in one fixed order: results do
   not depend on the number of threads. heph__gemm_ex also adds a bias over the columns and
   applies a ReLU while the tiles are in registers.                                          */

#ifndef HEPH__MR
#define HEPH__MR 6
#endif
#define HEPH__NR 32

#ifndef HEPH__KC
#define HEPH__KC 256 /* k is summed in blocks of KC: a packed block of B stays in cache */
#endif

/* floats of a packed block of B (K x N): in 64 bits, as every workspace size below, so a
   32-bit size_t cannot wrap; heph__net_make checks the largest against size_t */
static uint64_t heph__gemm_ws(uint64_t K, uint64_t N) {
    uint64_t kc = K < HEPH__KC ? K : HEPH__KC;
    return kc * ((N + HEPH__NR - 1) / HEPH__NR) * HEPH__NR;
}


/* one MR x NR tile: acc[r][j] = [bias[j] +] sum_k a(r,k) * panel[k][j], stored into C (or
   added to it), then max(c, 0) when relu. rowp (ta = 0 only, else NULL): where each row of
   op(A) starts, pointers into the array A (the rows of an implicit product need not be
   evenly spaced). An edge tile (mr < MR rows) runs the same loop
   with its missing rows reading row mr-1, and stores only mr rows: every element is the
   same sum in the same order whatever the tile's size.                                     */
static void heph__gemm_tile(int K, int mr, const float *HEPH__RESTRICT A, int lda, int ta,
                            const float *const *rowp, const float *HEPH__RESTRICT panel,
                            float *HEPH__RESTRICT C, int ldc, int ncols, int accumulate,
                            const float *bias, int relu) {
    float acc[HEPH__MR][HEPH__NR], bv[HEPH__NR];
    size_t off[HEPH__MR]; /* where row r of op(A) starts (ta = 0) or sits in a column (ta = 1) */
    int r, j, k;
    if (bias)
        for (j = 0; j < HEPH__NR; j++) bv[j] = j < ncols ? bias[j] : 0.0f;
    for (r = 0; r < HEPH__MR; r++) {
        size_t rr = (size_t)(r < mr ? r : mr - 1);
        float a;
        off[r] = rowp ? (size_t)(rowp[rr] - A) : ta ? rr : rr * (size_t)lda;
        a = A[off[r]]; /* k = 0 starts the sums (K >= 1): no zeroing pass */
        if (bias)
            for (j = 0; j < HEPH__NR; j++) acc[r][j] = bv[j] + a * panel[j];
        else
            for (j = 0; j < HEPH__NR; j++) acc[r][j] = a * panel[j];
    }
    if (!ta) {
        for (k = 1; k < K; k++) {
            const float *bp = panel + (size_t)k * HEPH__NR;
            for (r = 0; r < HEPH__MR; r++) {
                float a = A[off[r] + (size_t)k];
                for (j = 0; j < HEPH__NR; j++) acc[r][j] += a * bp[j];
            }
        }
    } else {
        for (k = 1; k < K; k++) {
            const float *bp = panel + (size_t)k * HEPH__NR;
            const float *ap = A + (size_t)k * (size_t)lda;
            for (r = 0; r < HEPH__MR; r++) {
                float a = ap[off[r]];
                for (j = 0; j < HEPH__NR; j++) acc[r][j] += a * bp[j];
            }
        }
    }
    if (ncols == HEPH__NR) /* a whole tile: rows of a fixed length, stored as vectors */
        for (r = 0; r < mr; r++) {
            float *c = C + (size_t)r * (size_t)ldc;
            if (accumulate)
                for (j = 0; j < HEPH__NR; j++) c[j] += acc[r][j];
            else
                for (j = 0; j < HEPH__NR; j++) c[j] = acc[r][j];
            if (relu)
                for (j = 0; j < HEPH__NR; j++) c[j] = c[j] > 0.0f ? c[j] : 0.0f;
        }
    else
        for (r = 0; r < mr; r++) {
            float *c = C + (size_t)r * (size_t)ldc;
            if (accumulate)
                for (j = 0; j < ncols; j++) c[j] += acc[r][j];
            else
                for (j = 0; j < ncols; j++) c[j] = acc[r][j];
            if (relu)
                for (j = 0; j < ncols; j++) c[j] = c[j] > 0.0f ? c[j] : 0.0f;
        }
}

/* the reference: the same product as three plain loops, k in order. heph__gemm uses it when
   HEPH_REFERENCE_KERNELS is defined; the tests compare the two on odd sizes.               */
static void heph__gemm_ref(int M, int N, int K, const float *A, int lda, int ta, const float *B,
                           int ldb, int tb, float *C, int ldc, int accumulate) {
    int i, j, k;
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            float s = 0.0f; /* C[i][j] (+)= sum_k op(A)[i][k] op(B)[k][j] */
            for (k = 0; k < K; k++)
                s += (ta ? A[(size_t)k * (size_t)lda + (size_t)i] : A[(size_t)i * (size_t)lda + (size_t)k]) *
                     (tb ? B[(size_t)j * (size_t)ldb + (size_t)k] : B[(size_t)k * (size_t)ldb + (size_t)j]);
            if (accumulate) C[(size_t)i * (size_t)ldc + (size_t)j] += s;
            else C[(size_t)i * (size_t)ldc + (size_t)j] = s;
        }
}

/* pack op(B)[k0 .. k0+kc) of panels p0 .. p1-1: ws[p][k][j] = op(B)[k0+k][p*NR + j], 0 past N.
   Panel p starts at ws + p ks NR, ks >= kc: a product passes the same ks for all its k blocks
   (see heph__gemm_ex), so a panel's place never depends on which block it holds            */
static void heph__gemm_pack(int p0, int p1, int N, int k0, int kc, int ks, const float *B, int ldb,
                            int tb, float *ws) {
    int p;
    for (p = p0; p < p1; p++) {
        float *dst = ws + (size_t)p * (size_t)ks * HEPH__NR;
        int j0 = p * HEPH__NR, k, j;
        if (!tb && j0 + HEPH__NR <= N) {
            for (k = 0; k < kc; k++)
                memcpy(dst + (size_t)k * HEPH__NR, B + (size_t)(k0 + k) * (size_t)ldb + (size_t)j0,
                       HEPH__NR * sizeof(float));
            continue;
        }
        if (tb && j0 + HEPH__NR <= N) { /* a whole panel of rows of B, turned 16 k at a time */
            float blk[HEPH__NR][16];
            int kb, kk;
            for (kb = 0; kb + 16 <= kc; kb += 16) {
                for (j = 0; j < HEPH__NR; j++)
                    memcpy(blk[j], B + (size_t)(j0 + j) * (size_t)ldb + (size_t)(k0 + kb), sizeof blk[j]);
                for (kk = 0; kk < 16; kk++)
                    for (j = 0; j < HEPH__NR; j++) dst[(size_t)(kb + kk) * HEPH__NR + (size_t)j] = blk[j][kk];
            }
            for (j = 0; j < HEPH__NR; j++)
                for (k = kb; k < kc; k++)
                    dst[(size_t)k * HEPH__NR + (size_t)j] = B[(size_t)(j0 + j) * (size_t)ldb + (size_t)(k0 + k)];
            continue;
        }
        if (tb) { /* column n of the panel is row n of B: read it contiguously */
            for (j = 0; j < HEPH__NR; j++) {
                int n = j0 + j;
                const float *src = B + (size_t)n * (size_t)ldb + (size_t)k0;
                if (n >= N)
                    for (k = 0; k < kc; k++) dst[(size_t)k * HEPH__NR + (size_t)j] = 0.0f;
                else
                    for (k = 0; k < kc; k++) dst[(size_t)k * HEPH__NR + (size_t)j] = src[k];
            }
            continue;
        }
        for (k = 0; k < kc; k++)
            for (j = 0; j < HEPH__NR; j++) {
                int n = j0 + j;
                dst[(size_t)k * HEPH__NR + (size_t)j] =
                    n >= N ? 0.0f : B[(size_t)(k0 + k) * (size_t)ldb + (size_t)n];
            }
    }
}

/* tile t of a k block over panels p0 .. p0+n-1: panel-major (a packed panel stays in cache
   for all row tiles) when op(A) is the smaller side, row-major otherwise (a row tile of A
   stays in cache for all panels, which are re-read from the outer cache): the larger side is
   read only once                                                                           */
static void heph__gemm_tile_at(int t, int p0, int n, int mt, int M, int N, int k0, int kc, int ks,
                               const float *A, int lda, int ta, const float *ws, float *C, int ldc,
                               int acc, const float *bias, int relu) {
    int rows_outer = M > N, mi = rows_outer ? t / n : t % mt, pp = p0 + (rows_outer ? t % n : t / mt);
    int i0 = mi * HEPH__MR, j0 = pp * HEPH__NR;
    int mr = M - i0 < HEPH__MR ? M - i0 : HEPH__MR;
    int nc = N - j0 < HEPH__NR ? N - j0 : HEPH__NR;
    const float *a = ta ? A + (size_t)k0 * (size_t)lda + (size_t)i0 : A + (size_t)i0 * (size_t)lda + (size_t)k0;
    heph__gemm_tile(kc, mr, a, lda, ta, NULL, ws + (size_t)pp * (size_t)ks * HEPH__NR, C + (size_t)i0 * (size_t)ldc + (size_t)j0,
                    ldc, nc, acc, bias ? bias + j0 : NULL, relu);
}

/* C (+)= op(A) op(B) [+ bias, a vector over the N columns], then max(C, 0) when relu: the
   bias starts the sums of the first k block, the ReLU is applied by the last one's store */
static void heph__gemm_ex(int M, int N, int K, const float *A, int lda, int ta, const float *B,
                          int ldb, int tb, float *C, int ldc, int accumulate, float *ws,
                          const float *bias, int relu) {
    int np = (N + HEPH__NR - 1) / HEPH__NR, mt = (M + HEPH__MR - 1) / HEPH__MR, k0;
    int ks = K < HEPH__KC ? K : HEPH__KC; /* panel stride in ws, the same for every k block */
    if (M <= 0 || N <= 0) return;
    if (HEPH__REFERENCE || K <= 0) { /* three loops (K = 0: an empty sum), then the extras */
        int i, j;
        if (K > 0) heph__gemm_ref(M, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate);
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                float *c = C + (size_t)i * (size_t)ldc + (size_t)j;
                if (K <= 0 && !accumulate) *c = 0.0f;
                if (bias) *c += bias[j];
                if (relu) *c = *c > 0.0f ? *c : 0.0f;
            }
        return;
    }
#if defined(_OPENMP) && !defined(HEPH_NO_OPENMP)
    /* enough panels for every thread: each takes a run of whole panels and goes through all
       k blocks alone, packing only its own panels (one fork, no barrier between k blocks).
       A thread may reach the last, shorter k block while another is still in an earlier
       one: panels sit at a fixed stride ks, so the regions of two threads never overlap
       (with a stride of the block's own kc they did: issue #17)                            */
    if (!omp_in_parallel() && omp_get_max_threads() > 1 && np >= 4 * omp_get_max_threads() &&
        (double)M * (double)N * (double)K > 2e6) {
#pragma omp parallel
        {
            int nt = omp_get_num_threads(), me = omp_get_thread_num(), kb;
            int p0 = (int)((long long)np * me / nt), p1 = (int)((long long)np * (me + 1) / nt), t;
            for (kb = 0; kb < K; kb += HEPH__KC) {
                int kc = K - kb < HEPH__KC ? K - kb : HEPH__KC;
                heph__gemm_pack(p0, p1, N, kb, kc, ks, B, ldb, tb, ws);
                for (t = 0; t < (p1 - p0) * mt; t++)
                    heph__gemm_tile_at(t, p0, p1 - p0, mt, M, N, kb, kc, ks, A, lda, ta, ws, C, ldc,
                                       accumulate || kb > 0, kb == 0 ? bias : NULL, relu && kb + kc >= K);
            }
        }
        return;
    }
#endif
    /* C (+)= sum over blocks of KC k's, in order; each block: pack, then all tiles */
    for (k0 = 0; k0 < K; k0 += HEPH__KC) {
        int kc = K - k0 < HEPH__KC ? K - k0 : HEPH__KC, acc = accumulate || k0 > 0, p, t;
        HEPH__OMP_FOR_IF((double)M * (double)N * (double)kc > 3e5)
        for (p = 0; p < np; p++) heph__gemm_pack(p, p + 1, N, k0, kc, ks, B, ldb, tb, ws);
        /* tiles of C, each owned by one iteration */
        HEPH__OMP_FOR_IF((double)M * (double)N * (double)kc > 3e5)
        for (t = 0; t < np * mt; t++)
            heph__gemm_tile_at(t, 0, np, mt, M, N, k0, kc, ks, A, lda, ta, ws, C, ldc, acc,
                               k0 == 0 ? bias : NULL, relu && k0 + kc >= K);
    }
}
static void heph__gemm(int M, int N, int K, const float *A, int lda, int ta, const float *B,
                       int ldb, int tb, float *C, int ldc, int accumulate, float *ws) {
    heph__gemm_ex(M, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate, ws, NULL, 0);
}

/* x[i] = mask[i] > 0 ? x[i] : 0: a gradient through the ReLU whose output is mask */
static void heph__relu_mask(float *x, const float *mask, size_t n) {
    long long i;
    HEPH__OMP_FOR
    for (i = 0; i < (long long)n; i++) x[i] = mask[i] > 0.0f ? x[i] : 0.0f;
}
/* db[c] (+)= sum over P rows of d[r][c] (= when set): 16 channels per iteration, rows in order */
static void heph__bias_grad_rows(float *db, const float *d, size_t P, int C, int set) {
    int cb, ncb = (C + 15) / 16;
    HEPH__OMP_FOR
    for (cb = 0; cb < ncb; cb++) {
        float s[16];
        int c0 = cb * 16, n = C - c0 < 16 ? C - c0 : 16, j;
        size_t r;
        for (j = 0; j < 16; j++) s[j] = 0.0f;
        if (n == 16) /* a whole vector per row */
            for (r = 0; r < P; r++) {
                const float *row = d + r * (size_t)C + (size_t)c0;
                for (j = 0; j < 16; j++) s[j] += row[j];
            }
        else
            for (r = 0; r < P; r++) {
                const float *row = d + r * (size_t)C + (size_t)c0;
                for (j = 0; j < n; j++) s[j] += row[j];
            }
        for (j = 0; j < n; j++) db[c0 + j] = set ? s[j] : db[c0 + j] + s[j];
    }
}
/* ------------------------------------------------------------------------------------------ */
/* dense layer                                                                                */

static uint64_t heph__dense_ws64(int B, int I, int O) {
    uint64_t f = heph__gemm_ws(I, O);      /* forward: W^T packed, K = I, N = O    */
    uint64_t g = heph__gemm_ws(B, I);      /* dW: inp packed, K = B, N = I         */
    uint64_t h = heph__gemm_ws(O, I);      /* dinp: W packed, K = O, N = I         */
    uint64_t t = (uint64_t)B * (uint64_t)O + heph__gemm_ws(I, B); /* out^T, inp packed */
    if (g > f) f = g;
    if (h > f) f = h;
    if (t > f) f = t;
    return f;
}

#ifndef HEPH__DENSE_T
#define HEPH__DENSE_T 1
#endif
static int heph__dense_transposed(int B, int I, int O) {
    return HEPH__DENSE_T && O >= 64 && (double)O * (double)I > 2.0 * (double)B * ((double)I + (double)O);
}
/* y[b][o] = x^T[o][b] + bias[o] (then max(y, 0) when relu) */
static void heph__untranspose(float *y, const float *xt, const float *bias, int B, int O, int relu) {
    int r;
    HEPH__OMP_FOR
    for (r = 0; r < B; r++) {
        float *o = y + (size_t)r * (size_t)O;
        int j;
        for (j = 0; j < O; j++) o[j] = xt[(size_t)j * (size_t)B + (size_t)r] + bias[j];
        if (relu)
            for (j = 0; j < O; j++) o[j] = o[j] > 0.0f ? o[j] : 0.0f;
    }
}
/* out[b][o] = b[o] + sum_i inp[b][i] W[o][i]  (then max(out, 0) when relu) */
static void heph__dense_forward(float *out, const float *inp, const float *W, const float *b,
                                int B, int I, int O, float *ws, int relu) {
    if (heph__dense_transposed(B, I, O)) { /* out^T (O, B) = W inp^T */
        heph__gemm(O, B, I, W, I, 0, inp, I, 1, ws, B, 0, ws + (size_t)B * (size_t)O);
        heph__untranspose(out, ws, b, B, O, relu);
        return;
    }
    heph__gemm_ex(B, O, I, inp, I, 0, W, I, 1, out, O, 0, ws, b, relu);
}
/* dinp[b][i] = sum_o dout[b][o] W[o][i];  dW[o][i] += sum_b dout[b][o] inp[b][i];
   db[o] += sum_b dout[b][o] */
/* set: dW and db are written, not added to (a network's step: every parameter has one use) */
static void heph__dense_backward(float *dinp, float *dW, float *db, const float *dout,
                                 const float *inp, const float *W, int B, int I, int O,
                                 float *ws, int mask, int set) {
    if (dW) { /* (NULL: a frozen network, the input gradient only) */
        heph__gemm(O, I, B, dout, O, 1, inp, I, 0, dW, I, !set, ws);
        heph__bias_grad_rows(db, dout, (size_t)B, O, set); /* db[o] (+)= sum_b dout[b][o], b in order */
    }
    if (!dinp) return;
    heph__gemm(B, I, O, dout, O, 0, W, I, 0, dinp, I, 0, ws);
    if (mask) heph__relu_mask(dinp, inp, (size_t)B * (size_t)I); /* the input is a ReLU's output */
}
/* ------------------------------------------------------------------------------------------ */
/* convolutions: inside a network, pictures are stored (H, W, C) per image ("NHWC"), so the
   patch of an output position is k runs of k*C contiguous floats, and a GEMM's (positions,
   channels) result is already the next layer's input. The batch is cut into chunks of whole
   images whose patch rows fit in HEPH__ROWS_FLOATS (they stay in cache between im2row and
   the GEMM, and the workspace stays small); the chunk size depends only on the shapes, so
   the sums are the same for any number of threads. The public layer functions of part A
   take and give (C, H, W) pictures: heph__conv_public_* below convert around the same
   kernels.                                                                                  */

#ifndef HEPH__ROWS_FLOATS
#define HEPH__ROWS_FLOATS (1 << 20) /* patch rows per chunk: 4 MiB */
#endif
#ifndef HEPH__IMPLICIT
#define HEPH__IMPLICIT 1 /* conv forward reads patches in place (0: always through patch rows) */
#endif
#ifndef HEPH_CONV_SLICES
#define HEPH_CONV_SLICES 4 /* a batch is cut into this many slices of images (see below) */
#endif

/* rows[(b, oy, ox)][(ky, kx, c)] = img[b][iy][ix][c], iy = oy*s - p + ky, ix = ox*s - p + kx,
   0 outside: the patches of a conv over (H, W, C) images at output positions (Ho, Wo)     */
static void heph__im2row_nhwc(float *rows, const float *img, int B, int C, int H, int W, int Ho,
                              int Wo, int k, int s, int p) {
    size_t kC = (size_t)k * (size_t)C, K = (size_t)k * kC, cb = (size_t)C * sizeof(float);
    long long r, nr = (long long)B * Ho * Wo;
    HEPH__OMP_FOR
    for (r = 0; r < nr; r++) {
        int b = (int)(r / ((long long)Ho * Wo)), pos = (int)(r % ((long long)Ho * Wo));
        int oy = pos / Wo, ox = pos % Wo, x0 = ox * s - p, ky, kx;
        const float *im = img + (size_t)b * (size_t)H * (size_t)W * (size_t)C;
        float *row = rows + (size_t)r * K;
        for (ky = 0; ky < k; ky++, row += kC) {
            int iy = oy * s - p + ky;
            const float *line;
            if (iy < 0 || iy >= H) { memset(row, 0, kC * sizeof(float)); continue; }
            line = im + (size_t)iy * (size_t)W * (size_t)C;
            if (x0 >= 0 && x0 + k <= W) { /* a whole run: short ones are cheaper as a loop */
                const float *src = line + (size_t)x0 * (size_t)C;
                size_t j;
                if (kC >= 64) memcpy(row, src, kC * sizeof(float));
                else for (j = 0; j < kC; j++) row[j] = src[j];
                continue;
            }
            for (kx = 0; kx < k; kx++) {
                int ix = x0 + kx;
                if (ix < 0 || ix >= W) memset(row + (size_t)kx * (size_t)C, 0, cb);
                else memcpy(row + (size_t)kx * (size_t)C, line + (size_t)ix * (size_t)C, cb);
            }
        }
    }
}

/* the adjoint of im2row: img[b][iy][ix][c] = init[c] (or 0) + the sum of every patch entry
   that im2row read from (iy, ix, c). One image line per iteration, gathered in a fixed order
   (ky, then ox): the same bits for any number of threads. Then, while the line is in cache,
   relu: v = max(v, 0); mask: v = mask > 0 ? v : 0 (the gradient through a ReLU whose output
   is mask).                                                                                */
static void heph__row2im_nhwc(float *img, const float *rows, const float *init, int relu,
                              const float *mask, int B, int C, int H, int W, int Ho, int Wo,
                              int k, int s, int p) {
    size_t kC = (size_t)k * (size_t)C, K = (size_t)k * kC, WC = (size_t)W * (size_t)C;
    long long t, nt = (long long)B * H;
    HEPH__OMP_FOR
    for (t = 0; t < nt; t++) {
        int b = (int)(t / H), iy = (int)(t % H), ky, ox;
        float *line = img + (size_t)t * WC;
        size_t i;
        if (init) {
            int ix, c;
            for (ix = 0; ix < W; ix++)
                for (c = 0; c < C; c++) line[(size_t)ix * (size_t)C + (size_t)c] = init[c];
        } else {
            memset(line, 0, WC * sizeof(float));
        }
        for (ky = 0; ky < k; ky++) {
            int num = iy + p - ky, oy; /* iy = oy*s - p + ky */
            if (num < 0 || num % s) continue;
            oy = num / s;
            if (oy >= Ho) continue;
            for (ox = 0; ox < Wo; ox++) {
                int x0 = ox * s - p, kx0 = x0 < 0 ? -x0 : 0, kx1 = x0 + k > W ? W - x0 : k;
                const float *src = rows + (((size_t)b * (size_t)Ho + (size_t)oy) * (size_t)Wo + (size_t)ox) * K +
                                   (size_t)ky * kC + (size_t)kx0 * (size_t)C;
                float *dst = line + (size_t)(x0 + kx0) * (size_t)C;
                size_t n = kx1 > kx0 ? (size_t)(kx1 - kx0) * (size_t)C : 0;
                for (i = 0; i < n; i++) dst[i] += src[i];
            }
        }
        if (relu)
            for (i = 0; i < WC; i++) line[i] = line[i] > 0.0f ? line[i] : 0.0f;
        if (mask) {
            const float *m = mask + (size_t)t * WC;
            for (i = 0; i < WC; i++) line[i] = m[i] > 0.0f ? line[i] : 0.0f;
        }
    }
}

/* (B, C, HW) <-> (B, HW, C) */
static void heph__nchw_to_rows(float *rows, const float *x, int B, int C, int HW) {
    int b;
    HEPH__OMP_FOR
    for (b = 0; b < B; b++) {
        int c, i;
        for (c = 0; c < C; c++)
            for (i = 0; i < HW; i++)
                rows[((size_t)b * (size_t)HW + (size_t)i) * (size_t)C + (size_t)c] =
                    x[((size_t)b * (size_t)C + (size_t)c) * (size_t)HW + (size_t)i];
    }
}
static void heph__rows_to_nchw(float *x, const float *rows, int B, int C, int HW) {
    int b;
    HEPH__OMP_FOR
    for (b = 0; b < B; b++) {
        int c, i;
        for (c = 0; c < C; c++)
            for (i = 0; i < HW; i++)
                x[((size_t)b * (size_t)C + (size_t)c) * (size_t)HW + (size_t)i] =
                    rows[((size_t)b * (size_t)HW + (size_t)i) * (size_t)C + (size_t)c];
    }
}
/* weights in the kernels' order: Wp[r][j][a] = W[r][a][j] (conv: r = Co, a = C, j = ky kx;
   transposed conv: r = C, a = Co); their gradient comes as dWt[j][a][r] (patch entries by
   channels: the GEMM that makes it has a long side and a side of whole panels), and
   W[r][a][j] += dWt[j][a][r]                                                               */
static void heph__wperm(float *Wp, const float *W, int R, int A, int J) {
    int r;
    HEPH__OMP_FOR
    for (r = 0; r < R; r++) {
        int a, j;
        for (a = 0; a < A; a++)
            for (j = 0; j < J; j++)
                Wp[((size_t)r * (size_t)J + (size_t)j) * (size_t)A + (size_t)a] =
                    W[((size_t)r * (size_t)A + (size_t)a) * (size_t)J + (size_t)j];
    }
}
/* the same weights as (patch entries x channels): Wt[j][a][r] = W[r][a][j], the layout the
   GEMM packs with plain row copies when the product needs Wp transposed                  */
static void heph__wperm_t(float *Wt, const float *W, int R, int A, int J) {
    /* in blocks of 16 r's and one a: reads 16 runs of J floats, writes J runs of 16 (read one
       r at a time, every read of a large layer was a new cache line and often a new page)  */
    long long q, nq = (long long)((R + 15) / 16) * A;
    HEPH__OMP_FOR
    for (q = 0; q < nq; q++) {
        int r0 = (int)(q / A) * 16, a = (int)(q % A), r1 = r0 + 16 < R ? r0 + 16 : R, r, j;
        for (j = 0; j < J; j++) {
            float *dst = Wt + ((size_t)j * (size_t)A + (size_t)a) * (size_t)R;
            for (r = r0; r < r1; r++) dst[r] = W[((size_t)r * (size_t)A + (size_t)a) * (size_t)J + (size_t)j];
        }
    }
}
/* W[r][a][j] (+)= sum over the S gradients dWt_s = Wp + s * stride, in order s = 0, 1, ... */
static void heph__wperm_add_back(float *W, const float *Wp, size_t stride, int S, int R, int A,
                                 int J, int set) {
    /* in blocks of 16 r's and one a, like heph__wperm_t: whole cache lines on both sides */
    long long q, nq = (long long)((R + 15) / 16) * A;
    HEPH__OMP_FOR
    for (q = 0; q < nq; q++) {
        int r0 = (int)(q / A) * 16, a = (int)(q % A), r1 = r0 + 16 < R ? r0 + 16 : R, r, j, s;
        for (j = 0; j < J; j++)
            for (r = r0; r < r1; r++) {
                float *w = W + ((size_t)r * (size_t)A + (size_t)a) * (size_t)J + (size_t)j;
                size_t i = ((size_t)j * (size_t)A + (size_t)a) * (size_t)R + (size_t)r;
                float d = Wp[i];
                for (s = 1; s < S; s++) d += Wp[(size_t)s * stride + i];
                *w = set ? d : *w + d;
            }
    }
}
static uint64_t heph__max3(uint64_t a, uint64_t b, uint64_t c) {
    uint64_t m = a > b ? a : b;
    return m > c ? m : c;
}
/* images per chunk: as many as fit HEPH__ROWS_FLOATS patch floats, at least 1, at most B */
static int heph__chunk_images(size_t rows_per_image, int B) {
    size_t nb = rows_per_image ? (size_t)HEPH__ROWS_FLOATS / rows_per_image : (size_t)B;
    if (nb < 1) nb = 1;
    return nb > (size_t)B ? B : (int)nb;
}

/* slices: a batch of B images is cut into S = min(B, HEPH_CONV_SLICES) fixed runs of images,
   slice s = images [B s / S, B (s + 1) / S). Threads take whole slices and work through them
   alone (no synchronisation inside a layer); the weight and bias gradients are summed per
   slice and the S sums added in the order s = 0, 1, ...: the same bits for any number of
   threads, because S depends only on B.                                                    */
static int heph__n_slices(int B) {
    return B < 1 ? 1 : B < HEPH_CONV_SLICES ? B : HEPH_CONV_SLICES;
}
static int heph__slice_start(int B, int S, int s) { return (int)((long long)B * s / S); }

/* one slice's NHWC workspace (n images at most): the weight gradient, the bias gradient, one
   chunk of patch rows, GEMM packing                                                        */
static uint64_t heph__conv_slice_ws(const heph_conv_geom *g, int n, int tr) {
    int kk = g->k * g->k;
    uint64_t K = (uint64_t)(tr ? g->Co : g->C) * (uint64_t)kk, nW = (uint64_t)g->C * (uint64_t)g->Co * (uint64_t)kk;
    uint64_t pos = tr ? (uint64_t)g->H * (uint64_t)g->W : (uint64_t)g->Ho * (uint64_t)g->Wo, pk = pos * K;
    int nb = heph__chunk_images(heph__bytes_fit(pk) ? (size_t)pk : (size_t)-1, n > 0 ? n : 1);
    uint64_t P = (uint64_t)nb * pos;
    int oc = tr ? g->C : g->Co;
    uint64_t pack = heph__max3(heph__gemm_ws(K, (uint64_t)oc), heph__gemm_ws(P, (uint64_t)oc), heph__gemm_ws((uint64_t)oc, K));
    return nW + (uint64_t)g->Co + P * K + pack;
}
/* the whole NHWC workspace for B images: the permuted weights, then S slices' */
static uint64_t heph__conv_nhwc_ws(const heph_conv_geom *g, int B, int tr) {
    int S = heph__n_slices(B), n = (B + S - 1) / S;
    uint64_t nW = (uint64_t)g->C * (uint64_t)g->Co * (uint64_t)g->k * (uint64_t)g->k;
    return nW + (uint64_t)S * heph__conv_slice_ws(g, n, tr);
}
/* after the slices: dW (+)= the S slices' dWt (permuted back), db (+)= their bias sums */
static void heph__slices_add_back(float *dW, float *db, const float *sws, size_t stride, int S,
                                  int R, int A, int J, int Co, int set) {
    size_t nW = (size_t)R * (size_t)A * (size_t)J;
    int c, s;
    heph__wperm_add_back(dW, sws, stride, S, R, A, J, set);
    for (c = 0; c < Co; c++) {
        float t = 0.0f;
        for (s = 0; s < S; s++) t += sws[(size_t)s * stride + nW + (size_t)c];
        db[c] = set ? t : db[c] + t;
    }
}

/* the same product without patch rows ("implicit GEMM"), for m images: they are copied once
   into pad with a zero border of p, where the patch row of an output position is k runs of
   k C contiguous floats, one per ky; the GEMM takes its k blocks inside those runs and reads
   them in place. Every output is the same sum as from patch rows, in the same order.      */
static int heph__conv_implicit_ok(const heph_conv_geom *g, int m, size_t rows_cap) {
    size_t padded = (size_t)m * (size_t)(g->H + 2 * g->p) * (size_t)(g->W + 2 * g->p) * (size_t)g->C;
    return HEPH__IMPLICIT && !HEPH__REFERENCE && (size_t)g->k * (size_t)g->C >= 64 && padded <= rows_cap;
}
static void heph__conv2d_implicit(float *out, const float *inp, int m, const float *Wt,
                                  const float *bias, int relu, const heph_conv_geom *g, float *pad,
                                  float *pack) {
    int Hp = g->H + 2 * g->p, Wq = g->W + 2 * g->p, C = g->C, Co = g->Co, HWo = g->Ho * g->Wo;
    int kC = g->k * C, P = m * HWo, mt = (P + HEPH__MR - 1) / HEPH__MR, np = (Co + HEPH__NR - 1) / HEPH__NR;
    size_t img = (size_t)Hp * (size_t)Wq * (size_t)C, line = (size_t)g->W * (size_t)C;
    int b, y, ky, c0, t;
    for (b = 0; b < m; b++) { /* pad[b][y + p][x + p][c] = inp[b][y][x][c], 0 elsewhere */
        float *dst = pad + (size_t)b * img;
        memset(dst, 0, (size_t)g->p * (size_t)Wq * (size_t)C * sizeof(float));
        for (y = 0; y < g->H; y++) {
            float *row = dst + ((size_t)(y + g->p) * (size_t)Wq) * (size_t)C;
            memset(row, 0, (size_t)g->p * (size_t)C * sizeof(float));
            memcpy(row + (size_t)g->p * (size_t)C, inp + ((size_t)b * (size_t)g->H + (size_t)y) * line, line * sizeof(float));
            memset(row + (size_t)g->p * (size_t)C + line, 0, (size_t)(Wq - g->W - g->p) * (size_t)C * sizeof(float));
        }
        memset(dst + (size_t)(g->H + g->p) * (size_t)Wq * (size_t)C, 0,
               (size_t)(Hp - g->H - g->p) * (size_t)Wq * (size_t)C * sizeof(float));
    }
    for (ky = 0; ky < g->k; ky++)
        for (c0 = 0; c0 < kC; c0 += HEPH__KC) {
            int kc = kC - c0 < HEPH__KC ? kC - c0 : HEPH__KC, kb = ky * kC + c0;
            int first = kb == 0, last = ky == g->k - 1 && c0 + kc >= kC;
            heph__gemm_pack(0, np, Co, kb, kc, kc, Wt, Co, 0, pack); /* serial: pack, then use */
            for (t = 0; t < mt * np; t++) { /* a row tile at a time, all its panels */
                int mi = t / np, pp = t % np, i0 = mi * HEPH__MR, j0 = pp * HEPH__NR, r;
                int mr = P - i0 < HEPH__MR ? P - i0 : HEPH__MR, nc = Co - j0 < HEPH__NR ? Co - j0 : HEPH__NR;
                const float *rowp[HEPH__MR];
                for (r = 0; r < mr; r++) { /* output position q = (b, oy, ox): its run for ky */
                    int q = i0 + r, bq = q / HWo, pos = q % HWo, oy = pos / g->Wo, ox = pos % g->Wo;
                    rowp[r] = pad + (size_t)bq * img +
                              ((size_t)(oy * g->s + ky) * (size_t)Wq + (size_t)(ox * g->s)) * (size_t)C + (size_t)c0;
                }
                heph__gemm_tile(kc, mr, pad, 0, 0, rowp, pack + (size_t)pp * (size_t)kc * HEPH__NR,
                                out + (size_t)i0 * (size_t)Co + (size_t)j0, Co, nc, !first,
                                first && bias ? bias + j0 : NULL, last && relu);
            }
        }
}

/* conv, NHWC: out (B, Ho, Wo, Co) = patches (B Ho Wo, k k C) Wt (k k C, Co) + b (then
   max(out, 0) when relu: a ReLU after the conv, computed in the same pass)                 */
static void heph__conv2d_nhwc_forward(float *out, const float *inp, const float *W,
                                      const float *bias, const heph_conv_geom *g, int B, float *ws,
                                      int relu) {
    int kk = g->k * g->k, K = g->C * kk, HWo = g->Ho * g->Wo, S = heph__n_slices(B), s;
    size_t nW = (size_t)g->Co * (size_t)K, in_img = (size_t)g->H * (size_t)g->W * (size_t)g->C;
    size_t sws = (size_t)heph__conv_slice_ws(g, (B + S - 1) / S, 0);
    float *Wp = ws;
    heph__wperm_t(Wp, W, g->Co, g->C, kk); /* (K, Co) */
    HEPH__OMP_FOR_IF(S > 1)
    for (s = 0; s < S; s++) {
        int s0 = heph__slice_start(B, S, s), n = heph__slice_start(B, S, s + 1) - s0, b0;
        int nb = heph__chunk_images((size_t)HWo * (size_t)K, n);
        float *rows = ws + nW + (size_t)s * sws + nW + (size_t)g->Co;
        float *pack = rows + (size_t)nb * (size_t)HWo * (size_t)K;
        for (b0 = s0; b0 < s0 + n; b0 += nb) {
            int m = s0 + n - b0 < nb ? s0 + n - b0 : nb, P = m * HWo;
            float *o = out + (size_t)b0 * (size_t)HWo * (size_t)g->Co;
            if (heph__conv_implicit_ok(g, m, (size_t)nb * (size_t)HWo * (size_t)K)) {
                heph__conv2d_implicit(o, inp + (size_t)b0 * in_img, m, Wp, bias, relu, g, rows, pack);
                continue;
            }
            heph__im2row_nhwc(rows, inp + (size_t)b0 * in_img, m, g->C, g->H, g->W, g->Ho, g->Wo, g->k, g->s, g->p);
            heph__gemm_ex(P, g->Co, K, rows, K, 0, Wp, g->Co, 0, o, g->Co, 0, pack, bias, relu);
        }
    }
}

/* dW += dout^T patches;  db += column sums of dout;  dinp (if not NULL) = row2im(dout Wp),
   masked by inp > 0 when mask (the input is a ReLU's output: its gradient is done here too) */
static void heph__conv2d_nhwc_backward(float *dinp, float *dW, float *db, const float *dout,
                                       const float *inp, const float *W, const heph_conv_geom *g,
                                       int B, float *ws, int mask, int set) {
    int kk = g->k * g->k, K = g->C * kk, HWo = g->Ho * g->Wo, S = heph__n_slices(B), s;
    size_t nW = (size_t)g->Co * (size_t)K, in_img = (size_t)g->H * (size_t)g->W * (size_t)g->C;
    size_t sws = (size_t)heph__conv_slice_ws(g, (B + S - 1) / S, 0);
    float *Wp = ws;
    if (dinp) heph__wperm(Wp, W, g->Co, g->C, kk);
    HEPH__OMP_FOR_IF(S > 1)
    for (s = 0; s < S; s++) {
        int s0 = heph__slice_start(B, S, s), n = heph__slice_start(B, S, s + 1) - s0, b0;
        int nb = heph__chunk_images((size_t)HWo * (size_t)K, n);
        float *dWp = ws + nW + (size_t)s * sws, *dbs = dWp + nW, *rows = dbs + g->Co;
        float *pack = rows + (size_t)nb * (size_t)HWo * (size_t)K;
        if (dW) /* (NULL: a frozen network, the input gradient only) */
            heph__bias_grad_rows(dbs, dout + (size_t)s0 * (size_t)HWo * (size_t)g->Co, (size_t)n * (size_t)HWo,
                                 g->Co, 1);
        for (b0 = s0; b0 < s0 + n; b0 += nb) {
            int m = s0 + n - b0 < nb ? s0 + n - b0 : nb, P = m * HWo;
            const float *d = dout + (size_t)b0 * (size_t)HWo * (size_t)g->Co;
            if (dW) {
                heph__im2row_nhwc(rows, inp + (size_t)b0 * in_img, m, g->C, g->H, g->W, g->Ho, g->Wo, g->k, g->s, g->p);
                /* dWt (K, Co) (+)= rows^T (K, P) d (P, Co) */
                heph__gemm(K, g->Co, P, rows, K, 1, d, g->Co, 0, dWp, g->Co, b0 > s0, pack);
            }
            if (!dinp) continue;
            /* rows (P, K) = d (P, Co) Wp (Co, K), then gathered back onto the input */
            heph__gemm(P, K, g->Co, d, g->Co, 0, Wp, K, 0, rows, K, 0, pack);
            heph__row2im_nhwc(dinp + (size_t)b0 * in_img, rows, NULL, 0, mask ? inp + (size_t)b0 * in_img : NULL,
                              m, g->C, g->H, g->W, g->Ho, g->Wo, g->k, g->s, g->p);
        }
    }
    if (dW) heph__slices_add_back(dW, db, ws + nW, sws, S, g->Co, g->C, kk, g->Co, set);
}

/* transposed conv, NHWC: the adjoint of a conv whose input is our output. Patch rows are our
   input positions: rows (B H W, k k Co) = inp (B H W, C) Wp (C, k k Co), out = b + row2im */
static void heph__convt2d_nhwc_forward(float *out, const float *inp, const float *W,
                                       const float *bias, const heph_conv_geom *g, int B, float *ws,
                                       int relu) {
    int kk = g->k * g->k, K = g->Co * kk, HW = g->H * g->W, S = heph__n_slices(B), s;
    size_t nW = (size_t)g->C * (size_t)K, out_img = (size_t)g->Ho * (size_t)g->Wo * (size_t)g->Co;
    size_t sws = (size_t)heph__conv_slice_ws(g, (B + S - 1) / S, 1);
    float *Wp = ws;
    heph__wperm(Wp, W, g->C, g->Co, kk);
    HEPH__OMP_FOR_IF(S > 1)
    for (s = 0; s < S; s++) {
        int s0 = heph__slice_start(B, S, s), n = heph__slice_start(B, S, s + 1) - s0, b0;
        int nb = heph__chunk_images((size_t)HW * (size_t)K, n);
        float *rows = ws + nW + (size_t)s * sws + nW + (size_t)g->Co;
        float *pack = rows + (size_t)nb * (size_t)HW * (size_t)K;
        for (b0 = s0; b0 < s0 + n; b0 += nb) {
            int m = s0 + n - b0 < nb ? s0 + n - b0 : nb, P = m * HW;
            heph__gemm(P, K, g->C, inp + (size_t)b0 * (size_t)HW * (size_t)g->C, g->C, 0, Wp, K, 0, rows, K, 0, pack);
            heph__row2im_nhwc(out + (size_t)b0 * out_img, rows, bias, relu, NULL, m, g->Co, g->Ho, g->Wo,
                              g->H, g->W, g->k, g->s, g->p);
        }
    }
}

static void heph__convt2d_nhwc_backward(float *dinp, float *dW, float *db, const float *dout,
                                        const float *inp, const float *W, const heph_conv_geom *g,
                                        int B, float *ws, int mask, int set) {
    int kk = g->k * g->k, K = g->Co * kk, HW = g->H * g->W, S = heph__n_slices(B), s;
    size_t nW = (size_t)g->C * (size_t)K, out_img = (size_t)g->Ho * (size_t)g->Wo * (size_t)g->Co;
    size_t sws = (size_t)heph__conv_slice_ws(g, (B + S - 1) / S, 1);
    float *Wp = ws;
    if (dinp) heph__wperm_t(Wp, W, g->C, g->Co, kk); /* (K, C) */
    HEPH__OMP_FOR_IF(S > 1)
    for (s = 0; s < S; s++) {
        int s0 = heph__slice_start(B, S, s), n = heph__slice_start(B, S, s + 1) - s0, b0;
        int nb = heph__chunk_images((size_t)HW * (size_t)K, n);
        float *dWp = ws + nW + (size_t)s * sws, *dbs = dWp + nW, *rows = dbs + g->Co;
        float *pack = rows + (size_t)nb * (size_t)HW * (size_t)K;
        if (dW) /* (NULL: a frozen network, the input gradient only) */
            heph__bias_grad_rows(dbs, dout + (size_t)s0 * out_img, (size_t)n * (size_t)g->Ho * (size_t)g->Wo, g->Co, 1);
        for (b0 = s0; b0 < s0 + n; b0 += nb) {
            int m = s0 + n - b0 < nb ? s0 + n - b0 : nb, P = m * HW;
            const float *x = inp + (size_t)b0 * (size_t)HW * (size_t)g->C;
            /* rows (P, k k Co): the patches of dout seen from each input position */
            heph__im2row_nhwc(rows, dout + (size_t)b0 * out_img, m, g->Co, g->Ho, g->Wo, g->H, g->W, g->k, g->s, g->p);
            /* dWt (K, C) (+)= rows^T (K, P) x (P, C) */
            if (dW) heph__gemm(K, g->C, P, rows, K, 1, x, g->C, 0, dWp, g->C, b0 > s0, pack);
            /* dinp (P, C) = rows (P, K) Wp^T (K, C), masked while in cache */
            if (dinp) {
                float *dx = dinp + (size_t)b0 * (size_t)HW * (size_t)g->C;
                heph__gemm(P, g->C, K, rows, K, 0, Wp, g->C, 0, dx, g->C, 0, pack);
                if (mask) heph__relu_mask(dx, x, (size_t)P * (size_t)g->C);
            }
        }
    }
    if (dW) heph__slices_add_back(dW, db, ws + nW, sws, S, g->C, g->Co, kk, g->Co, set);
}

/* for the public (C, H, W) functions: convert, run the NHWC kernel, convert back. Workspace:
   the input and the output in NHWC, the input gradient, then the kernel's own             */
static size_t heph__conv_public_ws(const heph_conv_geom *g, int B, int tr) {
    uint64_t in = (uint64_t)B * (uint64_t)g->C * (uint64_t)g->H * (uint64_t)g->W;
    uint64_t on = (uint64_t)B * (uint64_t)g->Co * (uint64_t)g->Ho * (uint64_t)g->Wo;
    return heph__ws_size(2 * in + on + heph__conv_nhwc_ws(g, B, tr));
}

static void heph__conv_public_forward(float *out, const float *inp, const float *W, const float *b,
                                      const heph_conv_geom *g, int B, float *ws, int tr) {
    size_t in = (size_t)B * (size_t)g->C * (size_t)g->H * (size_t)g->W;
    size_t on = (size_t)B * (size_t)g->Co * (size_t)g->Ho * (size_t)g->Wo;
    float *xi = ws, *yo = xi + in, *kws = yo + on + in;
    heph__nchw_to_rows(xi, inp, B, g->C, g->H * g->W);
    if (tr) heph__convt2d_nhwc_forward(yo, xi, W, b, g, B, kws, 0);
    else heph__conv2d_nhwc_forward(yo, xi, W, b, g, B, kws, 0);
    heph__rows_to_nchw(out, yo, B, g->Co, g->Ho * g->Wo);
}
static void heph__conv_public_backward(float *dinp, float *dW, float *db, const float *dout,
                                       const float *inp, const float *W, const heph_conv_geom *g,
                                       int B, float *ws, int tr) {
    size_t in = (size_t)B * (size_t)g->C * (size_t)g->H * (size_t)g->W;
    size_t on = (size_t)B * (size_t)g->Co * (size_t)g->Ho * (size_t)g->Wo;
    float *xi = ws, *go = xi + in, *gi = go + on, *kws = gi + in;
    heph__nchw_to_rows(xi, inp, B, g->C, g->H * g->W);
    heph__nchw_to_rows(go, dout, B, g->Co, g->Ho * g->Wo);
    if (tr) heph__convt2d_nhwc_backward(dinp ? gi : NULL, dW, db, go, xi, W, g, B, kws, 0, 0);
    else heph__conv2d_nhwc_backward(dinp ? gi : NULL, dW, db, go, xi, W, g, B, kws, 0, 0);
    if (dinp) heph__rows_to_nchw(dinp, gi, B, g->C, g->H * g->W);
}

/* Sums over n elements are split into fixed chunks of HEPH__CHUNK (whatever the number of
   threads), each summed in order, and the chunk sums are added in order: same bits always. */
#define HEPH__CHUNK 4096
#define HEPH__MAX_CHUNKS 1024

/* exp(x) for x <= 0 in float, in a form gcc and clang vectorise (expf is a library call):
   x = n ln2 + r with n = round(x / ln2), |r| <= ln2/2 (ln2 split in two parts, Cody-Waite);
   exp(r) = sum_{i<=7} r^i / i! (truncation error < 6e-9); 2^n is built in the exponent bits.
   |x| is capped at 87 on the bits (exp(-87) = 1.6e-38; -inf gives that too), and the sign
   is taken as negative, so only x <= 0 may be passed. Relative error about 1e-7, i.e. 1 ulp
   (tests/test_metrics.c checks < 3e-7). Float compares would keep gcc from vectorising the
   loop that calls it, hence the integer min. With -O3 this loop runs ~13x faster than with
   expf (AVX-512), ~2x with plain SSE2; gcc -O2 does not vectorise it (~2x slower than expf). */
static float heph__exp_neg(float x) {
    float p, r, s;
    int32_t n, bits;
    uint32_t mag;
    memcpy(&mag, &x, sizeof mag);
    mag &= 0x7fffffffu;                            /* |x| as bits: monotonic in |x|             */
    mag = mag < 0x42ae0000u ? mag : 0x42ae0000u;   /* min(|x|, 87)                              */
    mag |= 0x80000000u;                            /* x = -|x|                                  */
    memcpy(&x, &mag, sizeof x);
    n = (int32_t)(x * 1.44269504f - 0.5f);         /* round(x / ln2): truncation of a value <= 0 */
    r = x - (float)n * 0.693145752f;               /* ln2 = 0.693145752 + 1.42860677e-6         */
    r = r - (float)n * 1.42860677e-6f;
    p = 1.0f / 5040.0f;                            /* Horner: 1 + r + r^2/2 + ... + r^7/7!     */
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    bits = (n + 127) * 8388608;                    /* 2^n: biased exponent n + 127 in bits 23.. */
    memcpy(&s, &bits, sizeof s);
    return p * s;
}

/* log(1 + e) for 0 <= e <= 1: 2 atanh(s), s = e/(2 + e) <= 1/3, by its series to s^15 (the
   next term is < 3e-9 of the sum); with rounding, within 2.2e-7 relative of log1p (checked
   on a 1e-6 grid), where log1pf is a library call no compiler vectorises                   */
static float heph__log1p01(float e) {
    float s = e / (2.0f + e), q = s * s;
    return 2.0f * s * (1.0f + q * (1.0f / 3 + q * (1.0f / 5 + q * (1.0f / 7 + q * (1.0f / 9 +
           q * (1.0f / 11 + q * (1.0f / 13 + q * (1.0f / 15))))))));
}

/* one chunk of the Bernoulli loss: per-element terms in blocks of 256 (loops the compiler
   vectorises), added into 8 double partial sums in a fixed pattern, then in order         */
static double heph__bce_chunk(float *dlogits, const float *logits, const float *x, size_t n,
                              float scale) {
    double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0}, sum = 0.0;
    float t[256];
    size_t i0, i, j;
    for (i0 = 0; i0 < n; i0 += 256) {
        size_t m = n - i0 < 256 ? n - i0 : 256;
        const float *a = logits + i0, *xx = x + i0;
        /* -[x log s(a) + (1-x) log(1 - s(a))] = max(a,0) - a x + log(1 + e^-|a|) */
        for (i = 0; i < m; i++) {
            float e = heph__exp_neg(-fabsf(a[i]));
            t[i] = (a[i] > 0.0f ? a[i] : 0.0f) - a[i] * xx[i] + heph__log1p01(e);
        }
        if (dlogits) { /* d/da = s(a) - x, with s(a) = 1/(1+e) for a >= 0, e/(1+e) otherwise */
            float *d = dlogits + i0;
            for (i = 0; i < m; i++) {
                float e = heph__exp_neg(-fabsf(a[i]));
                d[i] = scale * ((a[i] >= 0.0f ? 1.0f : e) / (1.0f + e) - xx[i]);
            }
        }
        for (i = 0; i + 8 <= m; i += 8)
            for (j = 0; j < 8; j++) acc[j] += (double)t[i + j];
        for (; i < m; i++) acc[i % 8] += (double)t[i];
    }
    for (j = 0; j < 8; j++) sum += acc[j];
    return sum;
}

static double heph__sqerr_chunk(float *dlogits, const float *logits, const float *x, size_t n,
                                float scale) {
    double sum = 0.0;
    size_t i;
    for (i = 0; i < n; i++) {
        float y = heph__sigmoid(logits[i]), d = y - x[i];
        sum += (double)(d * d);                                          /* (y - x)^2 */
        if (dlogits) dlogits[i] = scale * 2.0f * d * y * (1.0f - y);     /* 2 (y-x) y (1-y) */
    }
    return sum;
}

/* chunked, deterministic driver for the two losses above */
static double heph__loss_chunked(int gaussian, float *dlogits, const float *logits,
                                 const float *x, size_t n, float scale) {
    double part[HEPH__MAX_CHUNKS], sum = 0.0;
    size_t chunk = HEPH__CHUNK, nc = (n + chunk - 1) / chunk, c;
    long long ci;
    if (nc > HEPH__MAX_CHUNKS) { /* very large inputs: bigger chunks, still fixed by n */
        chunk = (n + HEPH__MAX_CHUNKS - 1) / HEPH__MAX_CHUNKS;
        nc = (n + chunk - 1) / chunk;
    }
    HEPH__OMP_FOR_IF(n > 2 * HEPH__CHUNK)
    for (ci = 0; ci < (long long)nc; ci++) {
        size_t a = (size_t)ci * chunk, len = n - a < chunk ? n - a : chunk;
        part[ci] = gaussian ? heph__sqerr_chunk(dlogits ? dlogits + a : NULL, logits + a, x + a, len, scale)
                            : heph__bce_chunk(dlogits ? dlogits + a : NULL, logits + a, x + a, len, scale);
    }
    for (c = 0; c < nc; c++) sum += part[c];
    return sum;
}

/* softmax cross-entropy, fast: the same sums with exp(a - max) <= 1 by heph__exp_neg in
   loops the compiler vectorises, rows in order                                             */
static double heph__softmax_xent_fast(float *dlogits, const float *logits, const int *labels,
                                      int B, int K, float scale) {
    double sum = 0.0;
    int b, k;
    for (b = 0; b < B; b++) {
        const float *a = logits + (size_t)b * (size_t)K;
        float *d = dlogits ? dlogits + (size_t)b * (size_t)K : NULL;
        float m = a[0], se = 0.0f, inv;
        for (k = 1; k < K; k++) m = a[k] > m ? a[k] : m;
        for (k = 0; k < K; k++) se += heph__exp_neg(a[k] - m);
        sum += (double)(logf(se) + m - a[labels[b]]);
        if (!d) continue;
        inv = scale / se;
        for (k = 0; k < K; k++) d[k] = inv * heph__exp_neg(a[k] - m);
        d[labels[b]] -= scale;
    }
    return sum;
}

/* ------------------------------------------------------------------------------------------ */
/* the network plan: layouts and fused ReLUs (the networks of part A reach it through
   heph__layer_forward / heph__layer_backward)
   Convolutions keep pictures (H, W, C) per image; dense layers, flatten and the net's own
   input and output are (C, H, W). Where they meet, the values are reordered into a buffer of
   the plan. A ReLU after a dense layer or a convolution is computed by that layer in place
   (it gets no buffer of its own), and its gradient by the layer after it, when that is a
   dense layer or a convolution too (the mask is the ReLU's output, the next layer's input). */
/* max-pooling 2x2 in either layout of the plan ((C, H, W), or (H, W, C) after convolutions),
   the same windows, order and ties as heph_maxpool2_forward / _backward: forward (out given)
   or backward (dinp given: WRITES it from dout), over B pictures, threads over pictures    */
static void heph__maxpool2_layout(float *out, float *dinp, const float *dout, const float *in, int B, int C, int H, int W,
                                  int nhwc) {
    int Ho = H / 2, Wo = W / 2;
    size_t pin = (size_t)C * (size_t)H * (size_t)W, pout = (size_t)C * (size_t)Ho * (size_t)Wo;
    long long b;
    /* the inputs no window covers (an odd last row or column) get gradient 0; in (H, W, C) every
       covered input is written below, so only then is the whole gradient cleared first */
    if (dinp && (!nhwc || (H & 1) || (W & 1))) memset(dinp, 0, (size_t)B * pin * sizeof(float));
    HEPH__OMP_FOR_IF(B >= 8)
    for (b = 0; b < B; b++) {
        const float *x = in + (size_t)b * pin;
        int c, i, j, y, xx;
        if (nhwc) /* (H, W, C): the four inputs of a window are rows of C values; channels inner,
                     the choice made by value (selects the compiler can vectorise) */
            for (i = 0; i < Ho; i++)
                for (j = 0; j < Wo; j++) {
                    size_t o = (size_t)b * pout + ((size_t)i * (size_t)Wo + (size_t)j) * (size_t)C;
                    size_t a0 = ((size_t)(2 * i) * (size_t)W + (size_t)(2 * j)) * (size_t)C; /* row by row */
                    size_t a1 = a0 + (size_t)C, a2 = a0 + (size_t)W * (size_t)C, a3 = a2 + (size_t)C;
                    const float *x0 = x + a0, *x1 = x + a1, *x2 = x + a2, *x3 = x + a3;
                    if (out) /* the first wins a tie, a NaN wins; | not ||: no branches */
                        for (c = 0; c < C; c++) {
                            float v = x0[c], w = x1[c];
                            v = ((w > v) | (w != w)) ? w : v;
                            w = x2[c]; v = ((w > v) | (w != w)) ? w : v;
                            w = x3[c]; v = ((w > v) | (w != w)) ? w : v;
                            out[o + (size_t)c] = v;
                        }
                    else {
                        float *g = dinp + (size_t)b * pin;
                        for (c = 0; c < C; c++) {
                            float v = x0[c], w = x1[c], d = dout[o + (size_t)c];
                            int k = 0, t;
                            t = (w > v) | (w != w); v = t ? w : v; k = t ? 1 : k;
                            w = x2[c]; t = (w > v) | (w != w); v = t ? w : v; k = t ? 2 : k;
                            w = x3[c]; t = (w > v) | (w != w); k = t ? 3 : k;
                            g[a0 + (size_t)c] = k == 0 ? d : 0.0f;
                            g[a1 + (size_t)c] = k == 1 ? d : 0.0f;
                            g[a2 + (size_t)c] = k == 2 ? d : 0.0f;
                            g[a3 + (size_t)c] = k == 3 ? d : 0.0f;
                        }
                    }
                }
        else
            for (c = 0; c < C; c++)
                for (i = 0; i < Ho; i++)
                    for (j = 0; j < Wo; j++) {
                        size_t best = 0, o = ((size_t)c * (size_t)Ho + (size_t)i) * (size_t)Wo + (size_t)j;
                        int first = 1;
                        for (y = 2 * i; y < 2 * i + 2; y++)
                            for (xx = 2 * j; xx < 2 * j + 2; xx++) {
                                size_t at = ((size_t)c * (size_t)H + (size_t)y) * (size_t)W + (size_t)xx;
                                if (first || x[at] > x[best] || x[at] != x[at]) best = at;
                                first = 0;
                            }
                        if (out) out[(size_t)b * pout + o] = x[best];
                        else dinp[(size_t)b * pin + best] = dout[(size_t)b * pout + o];
                    }
    }
}

/* BatchNorm in either layout of the plan, the same sums in the same order as part A's
   heph_batchnorm_forward / _backward (over b, then the pixels): the same bits unless the
   compiler fuses multiply-adds differently in the two (-ffp-contract=fast). Threads take
   groups of channels: 16 neighbours in (H, W, C), whose values at one pixel share a cache
   line, so each pass reads every line once; one channel at a time in (C, H, W). Forward when
   out is given (a training one updates rmean, rvar), else backward (dgamma, dbeta and, when
   given, dinp written; evaluation reads rmean, rvar).                                       */
#define HEPH__BN_GROUP 16
static void heph__bn_layout(float *out, float *rmean, float *rvar, float *dinp, float *dgamma, float *dbeta,
                            const float *dout, const float *in, const float *gamma, const float *beta, int B, int C,
                            int HW, int train, int nhwc) {
    int G = nhwc ? HEPH__BN_GROUP : 1;
    long long g, ng = (C + G - 1) / G;
    double n = (double)B * (double)HW;
    size_t ks = nhwc ? 1 : (size_t)HW; /* from one channel to the next at a pixel */
    /* the value of channel c0 + k at pixel i of picture b is at BASE(b, i) + k ks */
#define HEPH__BN_BASE(b, i) (nhwc ? ((size_t)(b) * (size_t)HW + (size_t)(i)) * (size_t)C + (size_t)c0 \
                                  : ((size_t)(b) * (size_t)C + (size_t)c0) * (size_t)HW + (size_t)(i))
    HEPH__OMP_FOR_IF(ng >= 2 && n * (double)C >= 32768.0)
    for (g = 0; g < ng; g++) {
        int c0 = (int)g * G, gc = C - c0 < G ? C - c0 : G, b, i, k;
        double m[HEPH__BN_GROUP], inv[HEPH__BN_GROUP], s[HEPH__BN_GROUP], q[HEPH__BN_GROUP];
        for (k = 0; k < gc; k++) s[k] = q[k] = 0.0;
        if (train) { /* the batch mean, then the biased variance, as heph__bn_stats */
            for (b = 0; b < B; b++)
                for (i = 0; i < HW; i++) {
                    const float *x = in + HEPH__BN_BASE(b, i);
                    for (k = 0; k < gc; k++) s[k] += (double)x[(size_t)k * ks];
                }
            for (k = 0; k < gc; k++) m[k] = s[k] / n;
            for (b = 0; b < B; b++)
                for (i = 0; i < HW; i++) {
                    const float *x = in + HEPH__BN_BASE(b, i);
                    for (k = 0; k < gc; k++) q[k] += ((double)x[(size_t)k * ks] - m[k]) * ((double)x[(size_t)k * ks] - m[k]);
                }
            for (k = 0; k < gc; k++) inv[k] = 1.0 / sqrt(q[k] / n + HEPH_BN_EPS);
        } else
            for (k = 0; k < gc; k++) {
                m[k] = (double)rmean[c0 + k];
                inv[k] = 1.0 / sqrt((double)rvar[c0 + k] + HEPH_BN_EPS);
            }
        if (out) {
            if (train)
                for (k = 0; k < gc; k++) {
                    double v = q[k] / n;
                    rmean[c0 + k] = (float)((1.0 - HEPH_BN_MOMENTUM) * (double)rmean[c0 + k] + HEPH_BN_MOMENTUM * m[k]);
                    rvar[c0 + k] = (float)((1.0 - HEPH_BN_MOMENTUM) * (double)rvar[c0 + k] +
                                           HEPH_BN_MOMENTUM * (n > 1.0 ? v * n / (n - 1.0) : v));
                }
            for (b = 0; b < B; b++)
                for (i = 0; i < HW; i++) {
                    size_t at = HEPH__BN_BASE(b, i);
                    for (k = 0; k < gc; k++)
                        out[at + (size_t)k * ks] = (float)((double)gamma[c0 + k] * (((double)in[at + (size_t)k * ks] - m[k]) * inv[k]) +
                                                           (double)beta[c0 + k]);
                }
        } else {
            double sdy[HEPH__BN_GROUP], sdyx[HEPH__BN_GROUP];
            for (k = 0; k < gc; k++) sdy[k] = sdyx[k] = 0.0;
            for (b = 0; (dgamma || train) && b < B; b++) /* (dgamma NULL in evaluation: dinp only) */
                for (i = 0; i < HW; i++) {
                    size_t at = HEPH__BN_BASE(b, i);
                    for (k = 0; k < gc; k++) {
                        size_t e = at + (size_t)k * ks;
                        sdy[k] += (double)dout[e];
                        sdyx[k] += (double)dout[e] * ((double)in[e] - m[k]) * inv[k];
                    }
                }
            for (k = 0; dgamma && k < gc; k++) { dgamma[c0 + k] = (float)sdyx[k]; dbeta[c0 + k] = (float)sdy[k]; }
            if (dinp)
                for (b = 0; b < B; b++)
                    for (i = 0; i < HW; i++) {
                        size_t at = HEPH__BN_BASE(b, i);
                        for (k = 0; k < gc; k++) {
                            size_t e = at + (size_t)k * ks;
                            double gk = (double)gamma[c0 + k] * inv[k], xh = ((double)in[e] - m[k]) * inv[k];
                            dinp[e] = (float)(train ? gk * ((double)dout[e] - sdy[k] / n - xh * sdyx[k] / n) : gk * (double)dout[e]);
                        }
                    }
        }
    }
#undef HEPH__BN_BASE
}

struct heph__net_plan {
    unsigned char nhwc[HEPH_MAX_LAYERS];  /* act[l] is stored (H, W, C)                       */
    unsigned char cvt[HEPH_MAX_LAYERS];   /* layer l's input is reordered first: 1 to (H, W, C),
                                             2 to (C, H, W), into cvt_buf[l]                  */
    unsigned char fused[HEPH_MAX_LAYERS]; /* a ReLU the layer before computes (act[l] = act[l-1]) */
    float *cvt_buf[HEPH_MAX_LAYERS];
    float *out_buf;  /* the output in (C, H, W) order when the last act is not              */
    float *grad_c;   /* a third gradient buffer, for reorders after the first layer         */
    float *ws;       /* im2row and GEMM packing workspace                                   */
    int any_cvt, out_nhwc;
};

/* does the order of a (c, h, w) tensor matter: (C, H, W) and (H, W, C) differ */
static int heph__layout_matters(int c, int h, int w) { return c > 1 && h * w > 1; }

/* dense and convolutions can end with a ReLU and mask their input gradient by one */
static int heph__has_dinp_mask(int kind) {
    return kind == HEPH_DENSE || kind == HEPH_CONV || kind == HEPH_CONVT;
}

/* the plan of net (its layers parsed): *acts becomes the activation floats per image, the
   reorder buffers included, and *scratch the floats of gradient buffers and workspace */
static int heph__plan_make(heph_net *net, uint64_t *acts, uint64_t *scratch) {
    struct heph__net_plan *P = (struct heph__net_plan *)heph__calloc(1, sizeof *P);
    int l, lay = 0, B = net->max_batch;
    uint64_t a = 0, ws = 0;
    if (!P) return HEPH_E_NOMEM;
    for (l = 0; l < net->n_layers; l++) {
        heph_layer *L = &net->layers[l];
        int want = L->kind == HEPH_CONV || L->kind == HEPH_CONVT ? 1 : L->kind == HEPH_DENSE ? 0 : -1;
        /* layouts: what the layer needs, what it makes */
        if (want >= 0 && want != lay && heph__layout_matters(L->in_c, L->in_h, L->in_w)) {
            P->cvt[l] = (unsigned char)(want ? 1 : 2);
            a += heph__layer_in_n(L);
            if (l > 0) P->any_cvt = 1;
        }
        if (want >= 0) lay = want;
        if (L->kind == HEPH_CONV || L->kind == HEPH_CONVT || L->kind == HEPH_RESHAPE) lay = 1;
        if (L->kind == HEPH_DENSE || L->kind == HEPH_FLATTEN) lay = 0;
        P->nhwc[l] = (unsigned char)lay;
        if (L->n_params) {
            uint64_t wsz;
            heph_conv_geom g;
            heph__layer_geom(L, &g);
            wsz = L->kind == HEPH_DENSE ? heph__dense_ws64(B, (int)heph__layer_in_n(L), L->out_c)
                                        : heph__conv_nhwc_ws(&g, B, L->kind == HEPH_CONVT);
            if (wsz > ws) ws = wsz;
        }
        if (L->kind == HEPH_RELU && l > 0 && heph__has_dinp_mask(net->layers[l - 1].kind))
            P->fused[l] = 1; /* no buffer of its own */
        else
            a += heph__layer_out_n(L);
    }
    if (net->n_layers && lay) {
        const heph_layer *L = &net->layers[net->n_layers - 1];
        if (heph__layout_matters(L->out_c, L->out_h, L->out_w)) { a += (uint64_t)net->out_n; P->out_nhwc = 1; }
    }
    *acts = a;
    *scratch = (P->any_cvt ? 3u : 2u) * (uint64_t)net->max_n * (uint64_t)B + ws;
    net->plan = P;
    return HEPH_OK;
}

/* the plan's buffers and the activations, one after the other from p */
static void heph__plan_place(heph_net *net, float *p) {
    struct heph__net_plan *P = net->plan;
    int l;
    for (l = 0; l < net->n_layers; l++) {
        if (P->cvt[l]) {
            P->cvt_buf[l] = p;
            p += heph__layer_in_n(&net->layers[l]) * (size_t)net->max_batch;
        }
        if (P->fused[l]) {
            net->act[l] = net->act[l - 1];
            continue;
        }
        net->act[l] = p;
        p += heph__layer_out_n(&net->layers[l]) * (size_t)net->max_batch;
    }
    if (P->out_nhwc) P->out_buf = p;
}

/* after the two gradient buffers: a third when a reorder sits after the first layer, then the
   workspace */
static void heph__plan_bind(heph_net *net, float *scratch) {
    size_t m = net->max_n * (size_t)net->max_batch;
    net->plan->grad_c = net->plan->any_cvt ? scratch : NULL;
    net->plan->ws = scratch + (net->plan->any_cvt ? m : 0);
}

/* reorder B tensors of n = c*h*w values read in (C, H, W) order: dst in layout ld (1: (H, W, C))
   of shape (c2, hw2), src in layout ls of shape (c1, hw1); flatten and reshape, and their
   gradients (the same call with the two sides swapped: it is a permutation)               */
static void heph__reflow(float *dst, int ld, int c2, int hw2, const float *src, int ls, int c1,
                         int hw1, int B) {
    size_t n = (size_t)c1 * (size_t)hw1;
    int b;
    ld = ld && c2 > 1 && hw2 > 1;
    ls = ls && c1 > 1 && hw1 > 1;
    if (!ld && !ls) {
        memcpy(dst, src, n * (size_t)B * sizeof(float));
        return;
    }
    HEPH__OMP_FOR
    for (b = 0; b < B; b++) {
        const float *x = src + (size_t)b * n;
        float *y = dst + (size_t)b * n;
        size_t i;
        for (i = 0; i < n; i++) {
            size_t si = ls ? (i % (size_t)hw1) * (size_t)c1 + i / (size_t)hw1 : i;
            size_t di = ld ? (i % (size_t)hw2) * (size_t)c2 + i / (size_t)hw2 : i;
            y[di] = x[si];
        }
    }
}

/* reorder B tensors of layer L's input shape: to (H, W, C) when to_nhwc, else to (C, H, W) */
static void heph__net_reorder(const heph_layer *L, float *dst, const float *src, int to_nhwc, int B) {
    if (to_nhwc) heph__nchw_to_rows(dst, src, B, L->in_c, L->in_h * L->in_w);
    else heph__rows_to_nchw(dst, src, B, L->in_c, L->in_h * L->in_w);
}

/* layer l forward on the fast kernels, after the plan: its input reordered when the plan
   says so, a fused ReLU skipped (the layer before made it), the last output in (C, H, W) */
static const float *heph__layer_forward_fast(heph_net *net, int l, const float *in, int B) {
    const struct heph__net_plan *P = net->plan;
    const heph_layer *L = &net->layers[l];
    const float *W = net->params + L->w_off, *bias = net->params + L->b_off;
    float *out = net->act[l];
    size_t n = heph__layer_out_n(L) * (size_t)B;
    int relu = l + 1 < net->n_layers && P->fused[l + 1]; /* the next layer, done here */
    heph_conv_geom g;
    heph__layer_geom(L, &g);
    if (P->cvt[l]) {
        heph__net_reorder(L, P->cvt_buf[l], in, P->cvt[l] == 1, B);
        in = P->cvt_buf[l];
    }
    if (!P->fused[l]) switch (L->kind) {
        case HEPH_DENSE:
            heph__dense_forward(out, in, W, bias, B, (int)heph__layer_in_n(L), L->out_c, P->ws, relu);
            break;
        case HEPH_CONV: heph__conv2d_nhwc_forward(out, in, W, bias, &g, B, P->ws, relu); break;
        case HEPH_CONVT: heph__convt2d_nhwc_forward(out, in, W, bias, &g, B, P->ws, relu); break;
        case HEPH_FLATTEN:
        case HEPH_RESHAPE: /* same values in (C, H, W) reading order, new shape */
            heph__reflow(out, P->nhwc[l], L->out_c, L->out_h * L->out_w, in,
                         l > 0 ? P->nhwc[l - 1] : 0, L->in_c, L->in_h * L->in_w, B);
            break;
        case HEPH_MAXPOOL: heph__maxpool2_layout(out, NULL, NULL, in, B, L->in_c, L->in_h, L->in_w, P->nhwc[l]); break;
        case HEPH_BN:
            heph__bn_layout(out, net->params + L->b_off + L->in_c, net->params + L->b_off + 2 * L->in_c, NULL, NULL, NULL, NULL,
                            in, W, bias, B, L->in_c, L->in_h * L->in_w, !net->eval, P->nhwc[l]);
            break;
        case HEPH_RELU: heph_relu_forward(out, in, n); break;
        case HEPH_LRELU: heph_lrelu_forward(out, in, n, L->slope); break;
        case HEPH_SIGMOID: heph_sigmoid_forward(out, in, n); break;
        case HEPH_TANH: heph_tanh_forward(out, in, n); break;
        default: HEPH_ASSERT(0);
        }
    if (l == net->n_layers - 1 && P->out_buf) { /* the caller gets (C, H, W) */
        heph__rows_to_nchw(P->out_buf, out, B, L->out_c, L->out_h * L->out_w);
        return P->out_buf;
    }
    return out;
}

/* layer l backward on the fast kernels: g (the gradient wrt its output) comes (C, H, W) from
   the caller at the last layer; a fused ReLU whose gradient the next layer made is skipped;
   a ReLU before this layer masks the gradient here; a reordered input's gradient goes back
   to the order the layer before made. Parameter gradients are written (set, not added). */
static const float *heph__layer_backward_fast(heph_net *net, int l, const float *g, float *dinp, int B) {
    const struct heph__net_plan *P = net->plan;
    const heph_layer *L = &net->layers[l];
    const float *in, *out = net->act[l], *W = net->params + L->w_off;
    float *dW = net->frozen ? NULL : net->grads + L->w_off, *db = net->frozen ? NULL : net->grads + L->b_off; /* frozen: dinp only */
    float *free_buf, *dst, *final_dst;
    size_t n = heph__layer_out_n(L) * (size_t)B;
    int mask = l > 0 && P->fused[l - 1]; /* the ReLU before: its gradient is made here */
    heph_conv_geom cg;
    if (l == net->n_layers - 1 && P->out_buf) {
        heph__nchw_to_rows(net->grad_a, g, B, L->out_c, L->out_h * L->out_w);
        g = net->grad_a;
    }
    in = P->cvt[l] ? P->cvt_buf[l] : l > 0 ? net->act[l - 1] : net->input;
    free_buf = g == net->grad_a ? net->grad_b : net->grad_a;
    dst = final_dst = l == 0 ? dinp : free_buf;
    if (!dst && l == 0 && L->n_params == 0) return NULL; /* nothing left to compute */
    if (P->fused[l] && l + 1 < net->n_layers && heph__has_dinp_mask(net->layers[l + 1].kind))
        return g; /* g already went through this ReLU */
    if (dst && P->cvt[l]) /* the layer's gradient is reordered into dst afterwards */
        dst = l == 0 ? free_buf : P->grad_c;
    heph__layer_geom(L, &cg);
    switch (L->kind) {
    case HEPH_DENSE:
        heph__dense_backward(dst, dW, db, g, in, W, B, (int)heph__layer_in_n(L), L->out_c, P->ws, mask, 1);
        break;
    case HEPH_CONV: heph__conv2d_nhwc_backward(dst, dW, db, g, in, W, &cg, B, P->ws, mask, 1); break;
    case HEPH_CONVT: heph__convt2d_nhwc_backward(dst, dW, db, g, in, W, &cg, B, P->ws, mask, 1); break;
    case HEPH_FLATTEN:
    case HEPH_RESHAPE:
        heph__reflow(dst, l > 0 ? P->nhwc[l - 1] : 0, L->in_c, L->in_h * L->in_w, g,
                     P->nhwc[l], L->out_c, L->out_h * L->out_w, B);
        break;
    case HEPH_MAXPOOL: heph__maxpool2_layout(NULL, dst, g, in, B, L->in_c, L->in_h, L->in_w, P->nhwc[l]); break;
    case HEPH_BN: /* the running statistics' gradients: 0, so Adam leaves them */
        if (db) memset(db + L->in_c, 0, 2 * (size_t)L->in_c * sizeof(float));
        heph__bn_layout(NULL, net->params + L->b_off + L->in_c, net->params + L->b_off + 2 * L->in_c, dst, dW, db, g, in, W,
                        NULL, B, L->in_c, L->in_h * L->in_w, !net->eval, P->nhwc[l]);
        break;
    case HEPH_RELU: heph_relu_backward(dst, g, out, n); break;
    case HEPH_LRELU: heph_lrelu_backward(dst, g, out, n, L->slope); break;
    case HEPH_SIGMOID: heph_sigmoid_backward(dst, g, out, n); break;
    case HEPH_TANH: heph_tanh_backward(dst, g, out, n); break;
    default: HEPH_ASSERT(0);
    }
    if (final_dst && dst != final_dst) /* back to the order the previous layer made */
        heph__net_reorder(L, final_dst, dst, P->cvt[l] == 2, B);
    return final_dst;
}

#endif /* HEPHAESTUS_IMPLEMENTATION_DONE */
#endif /* HEPHAESTUS_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
MIT License

Copyright (c) 2026 the Hephaestus authors

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
*/
