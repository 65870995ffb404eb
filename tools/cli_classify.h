/* cli_classify.h - training and scoring a classifier (one heph_net, softmax cross-entropy on
   its K logits, Adam over its one block with the learning rate falling linearly to 0 over
   the run), shared by `hephaestus classifier` and examples/classifier_mnist.c. Every picture
   is in memory; an epoch visits them in an order shuffled by the trainer's own generator, so
   a seed gives the same network for any thread count. Needs cli_common.h. */
#ifndef HEPH_CLI_CLASSIFY_H
#define HEPH_CLI_CLASSIFY_H

#include "cli_common.h"

typedef struct {
    heph_net net;
    int K, batch;
    size_t np;                 /* values per picture                         */
    float *blk;                /* parameters, gradients, Adam m and v        */
    float *xb, *dlogits;       /* a batch and the gradient of its logits     */
    int *yb;
    size_t *idx;               /* the epoch's order (n_train)                */
    heph_rng rng;              /* initialisation and the epochs' orders      */
    float lr;
    uint64_t step, n_steps;    /* Adam's step; the run's total, for the decay */
} cls_trainer;

/* a network spec for (c, h, w) pictures and K classes, n_steps steps in all; 0 with the
   reason in err (the caller names itself) when the spec is wrong or does not give K logits */
static int cls_init(cls_trainer *t, const char *spec, int c, int h, int w, int K, int batch, uint64_t seed, float lr,
                    size_t n_train, uint64_t n_steps, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    if (heph_net_init(&t->net, spec, c, h, w, batch, err, errlen) != HEPH_OK) return 0;
    if (t->net.out_n != K) {
        snprintf(err, errlen, "--spec must end in %d outputs (one logit per class), \"%.160s\" gives %d", K, spec, t->net.out_n);
        heph_net_free(&t->net);
        return 0;
    }
    t->K = K; t->batch = batch; t->lr = lr; t->n_steps = n_steps;
    t->np = (size_t)c * (size_t)h * (size_t)w;
    t->blk = (float *)cli_alloc(4 * t->net.n_params, sizeof(float));
    heph_net_bind(&t->net, t->blk, t->blk + t->net.n_params);
    heph_rng_seed(&t->rng, seed);
    heph_net_init_params(&t->net, &t->rng);
    t->xb = (float *)cli_alloc((size_t)batch * t->np, sizeof(float));
    t->dlogits = (float *)cli_alloc((size_t)batch * (size_t)K, sizeof(float));
    t->yb = (int *)cli_alloc((size_t)batch, sizeof(int));
    t->idx = (size_t *)cli_alloc(n_train ? n_train : 1, sizeof(size_t));
    return 1;
}

static void cls_free(cls_trainer *t) {
    heph_net_free(&t->net);
    free(t->blk); free(t->xb); free(t->dlogits); free(t->yb); free(t->idx);
}

/* one pass over the n pictures x with labels y in a shuffled order: mean loss into *loss,
   training accuracy into *acc; progress (stderr, every 2 s) when tell is set */
static void cls_epoch(cls_trainer *t, const float *x, const int *y, size_t n, double *loss, double *acc, int tell) {
    size_t i, right = 0, np = t->np;
    double sum = 0.0, t0 = cli_now(), last = t0;
    float *am = t->blk + 2 * t->net.n_params, *av = t->blk + 3 * t->net.n_params;
    for (i = 0; i < n; i++) t->idx[i] = i;
    heph_rng_shuffle(&t->rng, t->idx, n);
    heph_net_set_train(&t->net, 1);
    for (i = 0; i < n; i += (size_t)t->batch) {
        int B = n - i < (size_t)t->batch ? (int)(n - i) : t->batch, b;
        const float *logits;
        float lr_t;
        for (b = 0; b < B; b++) {
            memcpy(t->xb + (size_t)b * np, x + t->idx[i + (size_t)b] * np, np * sizeof(float));
            t->yb[b] = y[t->idx[i + (size_t)b]];
        }
        logits = heph_net_forward(&t->net, t->xb, B);
        for (b = 0; b < B; b++) right += heph_argmax(logits + (size_t)b * (size_t)t->K, t->K) == t->yb[b];
        /* loss = 1/B sum_b -log softmax(logits_b)[y_b]; dlogits = (softmax - onehot) / B */
        sum += heph_softmax_xent(t->dlogits, logits, t->yb, B, t->K, 1.0f / (float)B);
        heph_net_backward(&t->net, t->dlogits, B, NULL); /* writes the gradients; no input gradient */
        /* Adam, the learning rate falling linearly from lr (step 1) towards 0 (after the last) */
        lr_t = t->lr * (float)(1.0 - (double)t->step / (double)(t->n_steps ? t->n_steps : 1));
        if (lr_t < 0.0f) lr_t = 0.0f;
        t->step++;
        heph_adam_step(t->net.params, t->net.grads, am, av, t->net.n_params, lr_t, 0.9f, 0.999f, 1e-8f, t->step);
        if (tell && cli_now() - last > 2.0) {
            double s = cli_now() - t0;
            char es[32];
            cli_hms(es, sizeof es, s / (double)(i + (size_t)B) * (double)(n - i - (size_t)B));
            fprintf(stderr, "  %zu/%zu pictures  loss %.4f  %.0f img/s  epoch ETA %s\n", i + (size_t)B, n,
                    sum / (double)(i + (size_t)B), (double)(i + (size_t)B) / s, es);
            last = cli_now();
        }
    }
    if (!(sum == sum && sum - sum == 0.0)) cli_fail("the loss is not finite (try a smaller --lr)");
    *loss = sum / (double)n;
    *acc = (double)right / (double)n;
}

/* the share of the n pictures whose largest logit is their label, in evaluation mode
   (BatchNorm's running statistics); pred (n, may be NULL) gets each prediction */
static double cls_accuracy(heph_net *net, const float *x, const int *y, size_t n, int *pred) {
    size_t i, right = 0, np = (size_t)net->in_n;
    int K = net->out_n, mb = net->max_batch;
    heph_net_set_train(net, 0);
    for (i = 0; i < n; i += (size_t)mb) {
        int B = n - i < (size_t)mb ? (int)(n - i) : mb, b;
        const float *lg = heph_net_forward(net, x + i * np, B);
        for (b = 0; b < B; b++) {
            int k = heph_argmax(lg + (size_t)b * (size_t)K, K);
            right += k == y[i + (size_t)b];
            if (pred) pred[i + (size_t)b] = k;
        }
    }
    return n ? (double)right / (double)n : 0.0;
}

#endif
