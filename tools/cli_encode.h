/* cli_encode.h - `hephaestus encode`: the posterior means and log-variances of every picture
   of a .hpd or a picture folder, streamed to mu.npy, logvar.npy (float32, shape (n, D),
   little-endian, NumPy format 1.0) and codes.csv (index, name, the factor indices if any, then
   mu_0 .. mu_{D-1}, logvar_0 .. logvar_{D-1}), so users can bring their own scorer.
   Pictures go through the model in chunks of CHUNK: memory does not grow with the set.     */
#ifndef HEPH_CLI_ENCODE_H
#define HEPH_CLI_ENCODE_H

#include "cli_common.h"
#include "cli_data.h"
#include "cli_analysis.h" /* load_model */

enum { ENC_CHUNK = 1024 };

static const char *const encode_help =
    "usage: hephaestus encode --model FILE --data PATH --out DIR [--limit N]\n"
    "Encodes every picture of PATH (a .hpd or a folder of PNG/JPEG pictures, fitted to the\n"
    "model's input) and writes, streaming, in DIR:\n"
    "  mu.npy      posterior means, float32 (n, D), NumPy format (numpy.load reads it)\n"
    "  logvar.npy  posterior log-variances, float32 (n, D), clamped to [-30, 20] as in training\n"
    "  codes.csv   index, name (file name, or #i), the factor indices of a .hpd (by name),\n"
    "              mu_0..mu_{D-1}, logvar_0..logvar_{D-1} (9 significant digits: the floats exactly)\n"
    "Options:\n"
    "  --model FILE   the checkpoint (.hpm)\n"
    "  --data PATH    the pictures\n"
    "  --out DIR      output folder (created)\n"
    "  --limit N      only the first N pictures (default all)\n"
    "  --threads T    OpenMP threads (default: all)\n"
    "Memory: the model and 1024 pictures at a time. A progress line every second on long runs.\n";

/* a float32 as 4 little-endian bytes, whatever the machine's byte order */
static void enc_put_f32(unsigned char *o, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    o[0] = (unsigned char)u; o[1] = (unsigned char)(u >> 8); o[2] = (unsigned char)(u >> 16); o[3] = (unsigned char)(u >> 24);
}

/* NumPy format 1.0 header of a (n, D) little-endian float32 C-order array, padded with spaces
   to a multiple of 64 bytes and ended by '\n' */
static void enc_npy_header(FILE *f, uint64_t n, int D) {
    char dict[128];
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%llu, %d), }", (unsigned long long)n, D);
    int total = (10 + len + 1 + 63) / 64 * 64, hl = total - 10, i;
    pre[8] = (unsigned char)(hl & 0xff); pre[9] = (unsigned char)(hl >> 8);
    fwrite(pre, 1, 10, f);
    fwrite(dict, 1, (size_t)len, f);
    for (i = 10 + len; i < total - 1; i++) fputc(' ', f);
    fputc('\n', f);
}

static void enc_npy_rows(FILE *f, const float *v, size_t n_floats, unsigned char *bytes) {
    size_t i;
    for (i = 0; i < n_floats; i++) enc_put_f32(bytes + 4 * i, v[i]);
    fwrite(bytes, 4, n_floats, f); /* checked by cli_fclose (ferror) */
}

/* the CSV rows of pictures s .. s+B-1 */
static void enc_csv_rows(FILE *f, const cli_pics *p, const heph_hpd *d, size_t s, int B, int D, const float *mu, const float *lv) {
    char nb[32];
    int b, j, k;
    for (b = 0; b < B; b++) {
        size_t i = s + (size_t)b;
        fprintf(f, "%zu,", i);
        csv_field(f, pics_name(p, i, nb, sizeof nb));
        if (d)
            for (k = 0; k < (int)d->info.n_factors; k++) fprintf(f, ",%d", (int)heph_hpd_label(d, i, k));
        for (j = 0; j < D; j++) fprintf(f, ",%.9g", (double)mu[(size_t)b * (size_t)D + (size_t)j]);
        for (j = 0; j < D; j++) fprintf(f, ",%.9g", (double)lv[(size_t)b * (size_t)D + (size_t)j]);
        fputc('\n', f);
    }
}

/* pictures s .. s+B-1 of the set into x: a .hpd range, or B folder files fitted to the model */
static void enc_read_chunk(heph_vae *m, cli_pics *p, heph_hpd *d, size_t s, int B, float *x) {
    size_t np = (size_t)m->enc.in_n;
    int b;
    if (d) {
        if (heph_hpd_read_range(d, s, (size_t)B, x) != HEPH_OK) cli_fail("%s", d->err);
        return;
    }
    for (b = 0; b < B; b++) {
        int c = m->cfg.in_c, h = m->cfg.in_h, w = m->cfg.in_w;
        cli_path fp = cli_join(p->path, p->files[s + (size_t)b]);
        float *one = load_picture(fp.s, &c, &h, &w);
        memcpy(x + (size_t)b * np, one, np * sizeof(float));
        free(one);
    }
}

static int cmd_encode(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *out = NULL;
    long limit = 0;
    heph_vae m;
    heph_hpd d, *dp = NULL;
    cli_pics p;
    FILE *fmu, *flv, *fcsv;
    cli_path pmu, plv, pcsv;
    float *x, *mu, *lv;
    unsigned char *bytes;
    size_t n, s;
    double t0 = cli_now(), t_last = t0;
    int D, i, j, k, tty = isatty(2);
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h") || cli_is(a, "--help")) { fputs(encode_help, stdout); return 0; }
        else if (cli_is(a, "--model")) model = cli_val(argc, argv, &i);
        else if (cli_is(a, "--data")) data = cli_val(argc, argv, &i);
        else if (cli_is(a, "--out")) out = cli_out_val(argc, argv, &i);
        else if (cli_is(a, "--limit")) limit = cli_long(a, cli_val(argc, argv, &i), 1, LONG_MAX);
        else if (cli_is(a, "--threads")) cli_threads((int)cli_long(a, cli_val(argc, argv, &i), 1, 1024));
        else cli_unknown(a);
    }
    cli_require(model, "--model");
    cli_require(data, "--data");
    cli_require(out, "--out");
    load_model(&m, model);
    D = m.cfg.z_dim;
    memset(&p, 0, sizeof p);
    snprintf(p.path, sizeof p.path, "%s", data);
    if (cli_is_dir(data)) {
        if (m.cfg.in_c != 1 && m.cfg.in_c != 3)
            cli_fail("%s: PNG/JPEG pictures can feed gray (1 channel) or RGB (3) models, this one takes %d channels", data, m.cfg.in_c);
        p.files = list_pictures(data, &p.n);
    } else {
        cli_need_regular(data);
        if (heph_hpd_open(&d, data) != HEPH_OK) cli_fail("%s", d.err);
        dp = &d;
        p.c = (int)d.info.c; p.h = (int)d.info.h; p.w = (int)d.info.w;
        if (d.info.count > (uint64_t)SIZE_MAX) cli_fail("%s: %llu pictures do not fit this machine's size_t", data, (unsigned long long)d.info.count);
        p.n = (size_t)d.info.count;
        pics_check_shape(&p, m.cfg.in_c, m.cfg.in_h, m.cfg.in_w);
    }
    n = limit > 0 && (uint64_t)limit < (uint64_t)p.n ? (size_t)limit : p.n;
    x = (float *)cli_alloc((size_t)ENC_CHUNK * (size_t)m.enc.in_n, sizeof(float));
    mu = (float *)cli_alloc((size_t)ENC_CHUNK * (size_t)D, sizeof(float));
    lv = (float *)cli_alloc((size_t)ENC_CHUNK * (size_t)D, sizeof(float));
    bytes = (unsigned char *)cli_alloc((size_t)ENC_CHUNK * (size_t)D, 4);
    cli_mkdirs(out);
    pmu = cli_join(out, "mu.npy"); plv = cli_join(out, "logvar.npy"); pcsv = cli_join(out, "codes.csv");
    fmu = cli_fopen(pmu.s, "wb"); flv = cli_fopen(plv.s, "wb"); fcsv = cli_fopen(pcsv.s, "wb");
    enc_npy_header(fmu, n, D);
    enc_npy_header(flv, n, D);
    fputs("index,name", fcsv);
    for (k = 0; dp && k < (int)dp->info.n_factors; k++) { fputc(',', fcsv); csv_field(fcsv, dp->info.factors[k].name); }
    for (j = 0; j < D; j++) fprintf(fcsv, ",mu_%d", j);
    for (j = 0; j < D; j++) fprintf(fcsv, ",logvar_%d", j);
    fputc('\n', fcsv);
    for (s = 0; s < n; s += ENC_CHUNK) {
        int B = (int)(n - s < (size_t)ENC_CHUNK ? n - s : (size_t)ENC_CHUNK);
        enc_read_chunk(&m, &p, dp, s, B, x);
        heph_vae_encode(&m, x, (size_t)B, mu, lv);
        enc_npy_rows(fmu, mu, (size_t)B * (size_t)D, bytes);
        enc_npy_rows(flv, lv, (size_t)B * (size_t)D, bytes);
        enc_csv_rows(fcsv, &p, dp, s, B, D, mu, lv);
        if (cli_now() - t_last >= 1.0 || (s + (size_t)B == n && t_last > t0)) {
            t_last = cli_now();
            fprintf(stderr, "%sencode: %zu/%zu pictures, %.0f pictures/s%s", tty ? "\r" : "", s + (size_t)B, n,
                    (double)(s + (size_t)B) / (t_last - t0), tty && s + (size_t)B < n ? "" : "\n");
        }
    }
    cli_fclose(fmu, pmu.s); cli_fclose(flv, plv.s); cli_fclose(fcsv, pcsv.s);
    printf("wrote %s, %s and %s: %zu pictures, %d latent dimensions\n", pmu.s, plv.s, pcsv.s, n, D);
    if (dp) heph_hpd_close(dp);
    free(x); free(mu); free(lv); free(bytes);
    pics_free(&p);
    heph_vae_free(&m);
    return 0;
}

#endif
