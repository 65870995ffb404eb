/* fuzz_hpn.c - libFuzzer target: the network file loader (heph_net_load, .hpn). Each input is
   loaded twice: as it is, and with its last 8 bytes replaced by the right FNV-1a checksum, so
   that mutations get past the checksum into the fields. A refused file must say why in err.
   A network that loads must be what the file's header promises, each check an abort: its
   layers those of heph_spec_parse on its spec and input shape, chained and laid out end to end
   over n_params parameters (the count of the spec; the file's bytes must hold them), and every
   parameter finite. When it is small enough to run, it is used: a forward of one input in
   [0, 1] and a backward of a fixed output gradient. The values must be finite whenever the
   parameters cannot overflow them (a bound propagated through the layers, see net_bounds);
   otherwise they may be inf or NaN, but a last sigmoid, tanh or relu stays in its range (or
   NaN). Then the network is saved and loaded again: same input shape, same layers, the same
   parameters bit for bit, the same outputs and gradients bit for bit (NaN where the first had
   NaN), and saving the copy writes the same bytes.                                          */
#include "fuzz_common.h"
#define HEPH_FSEEK(fp, off, whence) fseeko((fp), (off_t)(off), (whence))
#define HEPH_FTELL(fp) ((uint64_t)ftello(fp))
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#include "fuzz_hpm_seal.h"

/* the bits of a float: equality that sees NaN as equal to itself */
static int same_floats(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }
static int all_finite(const float *v, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!(fabsf(v[i]) <= FLT_MAX)) return 0;
    return 1;
}
static size_t in_n(const heph_layer *L) { return (size_t)L->in_c * (size_t)L->in_h * (size_t)L->in_w; }
static size_t out_n(const heph_layer *L) { return (size_t)L->out_c * (size_t)L->out_h * (size_t)L->out_w; }

/* what a loaded network must satisfy, whatever the file said: the layers of its spec on its
   input shape, chained, parameters laid out end to end and counted like the spec counts them,
   no more than the file could hold, every one finite */
static void check_loaded(const heph_net *net, size_t size) {
    heph_layer ly[HEPH_MAX_LAYERS];
    char spec[HEPH_SPEC_MAX * 2], err[HEPH_ERRLEN];
    int nl, l, c = net->in_c, h = net->in_h, w = net->in_w;
    size_t off = 0;
    if (c <= 0 || h <= 0 || w <= 0 || (size_t)net->in_n != (size_t)c * (size_t)h * (size_t)w || net->max_batch != 1)
        abort();
    if (net->n_layers < 0 || net->n_layers > HEPH_MAX_LAYERS) abort();
    heph__net_spec(net, spec, sizeof spec);
    if (heph_spec_parse(spec, c, h, w, ly, HEPH_MAX_LAYERS, &nl, err, sizeof err) != HEPH_OK || nl != net->n_layers)
        abort(); /* its own spec must describe it */
    for (l = 0; l < net->n_layers; l++) {
        const heph_layer *L = &net->layers[l];
        if (L->kind != ly[l].kind || L->in_c != c || L->in_h != h || L->in_w != w || L->out_c != ly[l].out_c ||
            L->out_h != ly[l].out_h || L->out_w != ly[l].out_w || L->k != ly[l].k || L->s != ly[l].s ||
            L->p != ly[l].p || L->n_params != ly[l].n_params || memcmp(&L->slope, &ly[l].slope, sizeof L->slope) != 0)
            abort();
        if (L->out_c <= 0 || L->out_h <= 0 || L->out_w <= 0) abort();
        if (L->kind == HEPH_LRELU && !(L->slope > 0.0f && L->slope < 1.0f)) abort(); /* the spec's range */
        if (L->n_params) { /* weights then bias, right after the previous layer's */
            if (L->w_off != off || L->b_off <= L->w_off || L->b_off >= L->w_off + L->n_params) abort();
            off += L->n_params;
        }
        c = L->out_c; h = L->out_h; w = L->out_w;
    }
    if (off != net->n_params) abort();                                  /* the count of the spec */
    if ((size_t)net->out_n != (size_t)c * (size_t)h * (size_t)w) abort();
    if (net->n_params > size / sizeof(float)) abort();                  /* a lying count */
    if (!net->params || !net->grads || !all_finite(net->params, net->n_params)) abort();
}

/* the multiply-adds of one forward, roughly (each layer's parameters times the larger of its
   input and output areas, plus the values it touches): a bound on the time of an input */
static double net_work(const heph_net *net) {
    double work = 0.0;
    int l;
    for (l = 0; l < net->n_layers; l++) {
        const heph_layer *L = &net->layers[l];
        double ai = (double)L->in_h * L->in_w, ao = (double)L->out_h * L->out_w;
        work += (double)L->n_params * (ai > ao ? ai : ao) + (double)in_n(L) + (double)out_n(L);
    }
    return work;
}

/* bounds on |values| for an input in [0, 1] and an output gradient in [-1, 1], from the largest
   |parameter| M: every output of a dense, conv or convt layer sums at most in_n products of an
   input and a weight (each input meets each output at most once), so |y| <= in_n M |x| + M; an
   input gradient sums at most out_n products (|dx| <= out_n M |dy|); a weight or bias gradient
   sums at most one product per output position or input position. relu and lrelu (slope < 1)
   do not grow, sigmoid and tanh are bounded by 1 (derivatives 1/4 and 1); maxpool2 does not
   grow; bn (run in evaluation mode here) gives |y| <= M (|x| + M) / sqrt(eps) + M and
   |dx| <= M |dy| / sqrt(eps), its gamma and beta gradients at most n products. Returns 1 when every
   forward value, gradient and input gradient stays below 1e30 (far from FLT_MAX even with the
   rounding of float sums): those must then be finite. */
static int net_bounded(const heph_net *net) {
    double M = 0.0, a[HEPH_MAX_LAYERS + 1], g;
    size_t i;
    int l;
    for (i = 0; i < net->n_params; i++)
        if (fabs((double)net->params[i]) > M) M = fabs((double)net->params[i]);
    a[0] = 1.0;
    for (l = 0; l < net->n_layers; l++) {
        const heph_layer *L = &net->layers[l];
        double x = a[l];
        if (L->kind == HEPH_BN) x = M * (x + M) / sqrt(HEPH_BN_EPS) + M;
        else if (L->n_params) x = (double)in_n(L) * M * x + M;
        else if (L->kind == HEPH_SIGMOID || L->kind == HEPH_TANH) x = 1.0;
        if (!(x < 1e30)) return 0;
        a[l + 1] = x;
    }
    g = 1.0;
    for (l = net->n_layers - 1; l >= 0; l--) {
        const heph_layer *L = &net->layers[l];
        if (L->kind == HEPH_BN) {
            double dw = (double)L->in_h * L->in_w * g * (a[l] + M) / sqrt(HEPH_BN_EPS);
            if (!(dw < 1e30)) return 0;
            g = M * g / sqrt(HEPH_BN_EPS);
        } else if (L->n_params) {
            double ai = (double)L->in_h * L->in_w, ao = (double)L->out_h * L->out_w;
            double dw = (ai > ao ? ai : ao) * g * (a[l] > 1.0 ? a[l] : 1.0);
            if (!(dw < 1e30)) return 0;
            g = (double)out_n(L) * M * g;
        } else if (L->kind == HEPH_SIGMOID) g *= 0.25;
        if (!(g < 1e30)) return 0;
    }
    return 1;
}

/* forward of x, backward of dout: copies of the output (out_n), the parameter gradients
   (n_params) and the input gradient (in_n) into res; checks the values */
static void run(heph_net *net, const float *x, const float *dout, float *res, int bounded) {
    size_t no = (size_t)net->out_n, np = net->n_params, ni = (size_t)net->in_n, i;
    const float *y = heph_net_forward(net, x, 1);
    int last = net->n_layers ? net->layers[net->n_layers - 1].kind : 0;
    memcpy(res, y, no * sizeof(float));
    for (i = 0; i < no; i++) { /* the range of a last activation; NaN passes */
        if (last == HEPH_SIGMOID && (res[i] < 0.0f || res[i] > 1.0f)) abort();
        if (last == HEPH_TANH && (res[i] < -1.0f || res[i] > 1.0f)) abort();
        if (last == HEPH_RELU && res[i] < 0.0f) abort();
    }
    if (net->n_layers == 0 && !same_floats(res, x, no)) abort(); /* the empty spec: identity */
    heph_net_backward(net, dout, 1, res + no + np);
    memcpy(res + no, net->grads, np * sizeof(float));
    if (bounded && !all_finite(res, no + np + ni)) abort();
}

/* the layers of two networks, field by field */
static int same_layers(const heph_net *a, const heph_net *b) {
    int l;
    if (a->n_layers != b->n_layers || a->in_c != b->in_c || a->in_h != b->in_h || a->in_w != b->in_w ||
        a->in_n != b->in_n || a->out_n != b->out_n || a->n_params != b->n_params)
        return 0;
    for (l = 0; l < a->n_layers; l++) {
        const heph_layer *p = &a->layers[l], *q = &b->layers[l];
        if (p->kind != q->kind || p->in_c != q->in_c || p->in_h != q->in_h || p->in_w != q->in_w ||
            p->out_c != q->out_c || p->out_h != q->out_h || p->out_w != q->out_w || p->k != q->k || p->s != q->s ||
            p->p != q->p || p->w_off != q->w_off || p->b_off != q->b_off || p->n_params != q->n_params ||
            memcmp(&p->slope, &q->slope, sizeof p->slope) != 0)
            return 0;
    }
    return 1;
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *b = NULL;
    long sz;
    if (f && fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = (unsigned char *)malloc((size_t)sz + 1)) != NULL && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    } else if (b) *n = (size_t)sz;
    if (f) fclose(f);
    return b;
}

static void use_net(heph_net *net) {
    size_t no = (size_t)net->out_n, np = net->n_params, ni = (size_t)net->in_n, i, n1 = 0, n2 = 0;
    float *x, *dout, *res1, *res2;
    const char *out = fuzz_path("out.hpn"), *out2 = fuzz_path("out2.hpn");
    char err[HEPH_ERRLEN];
    unsigned char *b1, *b2;
    heph_net net2;
    int bounded, rc;
    if (ni > ((size_t)1 << 16) || no > ((size_t)1 << 16) || np > ((size_t)1 << 20) || net_work(net) > 4e6)
        return; /* keep execs fast */
    bounded = net_bounded(net);
    x = (float *)calloc(ni, sizeof(float));
    dout = (float *)calloc(no + 1, sizeof(float));
    res1 = (float *)calloc(no + np + ni, sizeof(float));
    res2 = (float *)calloc(no + np + ni, sizeof(float));
    if (!x || !dout || !res1 || !res2) goto done;
    for (i = 0; i < ni; i++) x[i] = (float)(i % 7) / 6.0f;
    for (i = 0; i < no; i++) dout[i] = (float)((int)(i % 5) - 2) / 2.0f;
    heph_net_set_train(net, 0); /* BatchNorm: the running statistics, which a run must not change */
    run(net, x, dout, res1, bounded);
    run(net, x, dout, res2, bounded); /* the same again: nothing left over from the last pass */
    if (!same_floats(res1, res2, no + np + ni)) abort();
    rc = heph_net_save(net, out, err, sizeof err);
    if (rc != HEPH_OK) { /* only a canonical spec too long for the format ("lrelu" grows to 18 characters) */
        if (rc != HEPH_E_SPEC || !err[0] || !memchr(err, 0, sizeof err)) abort();
        goto done;
    }
    if (heph_net_load(&net2, out, 1, err, sizeof err) != HEPH_OK) {
        fprintf(stderr, "fuzz_hpn: a saved network does not load: %s\n", err);
        abort(); /* what we wrote must load */
    }
    if (!same_layers(net, &net2) || !same_floats(net->params, net2.params, np)) abort();
    heph_net_set_train(&net2, 0);
    run(&net2, x, dout, res2, bounded);
    if (!same_floats(res1, res2, no + np + ni)) abort(); /* same network, same numbers */
    if (heph_net_save(&net2, out2, err, sizeof err) != HEPH_OK) abort();
    b1 = read_all(out, &n1);
    b2 = read_all(out2, &n2);
    if (b1 && b2 && (n1 != n2 || memcmp(b1, b2, n1) != 0)) abort(); /* a fixed point */
    free(b1); free(b2);
    heph_net_free(&net2);
done:
    free(x); free(dout); free(res1); free(res2);
}

static void load(const uint8_t *data, size_t size) {
    heph_net net;
    char err[HEPH_ERRLEN];
    const char *path = fuzz_file("in.hpn", data, size);
    if (!path) return;
    err[0] = '\0';
    if (heph_net_load(&net, path, 1, err, sizeof err) != HEPH_OK) {
        if (err[0] == '\0' || !memchr(err, 0, sizeof err)) abort();
        if (net.mem || net.act || net.plan || net.scratch_own || net.params_own) abort(); /* nothing kept */
        return;
    }
    check_loaded(&net, size);
    use_net(&net);
    heph_net_free(&net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *fixed;
    load(data, size);
    if (!(fixed = fuzz_hpm_seal(data, size))) return 0;
    if (memcmp(fixed, data, size) != 0) load(fixed, size);
    free(fixed);
    return 0;
}
