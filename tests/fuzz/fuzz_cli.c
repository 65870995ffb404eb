/* fuzz_cli.c - libFuzzer target: the command-line option parsers of tools/hephaestus.c
   (its main() renamed, nothing run but the parsing): train's options and model
   configuration, the analysis options (--cov, --auto, numbers), batch's options, --dims, the
   factor rules of batch/--truth ("name=V,k=A-B|W") against a 3-factor dataset, --shape, and
   the integer and real flag parsers. Input: 1 byte of mode, 1 byte of parameter, then the
   arguments separated by newlines. A usage error or --help ends in exit(), turned into a jump
   back; every rule that parses must only hold ranges inside its factor.                    */
#include "fuzz_common.h"
#include <stdlib.h>
#define exit(c) fuzz_exit(c)
#define main hephaestus_main
#include "../../tools/hephaestus.c"
#undef main

#define MAX_ARGS 64

static void parse_analysis(int argc, char **argv) {
    cli_aopts o;
    int i;
    aopts_default(&o);
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (aopts_flag(&o, argc, argv, &i)) {}
        else if (cli_is(a, "--steps")) o.steps = (int)cli_long(a, cli_val(argc, argv, &i), 2, 1000);
        else cli_unknown(a);
    }
    if (o.cov_param != o.cov_param) abort();
}

static void parse_rules(const char *text, const uint8_t *labels) {
    static cli_pics p; /* 3 factors: shape (3 values), hue (10), is_outlier (2) */
    cli_rules rs;
    int i, j;
    int32_t v[3];
    memset(&p, 0, sizeof p);
    snprintf(p.path, sizeof p.path, "fuzz.hpd");
    p.K = 3;
    strcpy(p.names[0], "shape"); p.n_values[0] = 3;
    strcpy(p.names[1], "hue"); p.n_values[1] = 10;
    strcpy(p.names[2], "is_outlier"); p.n_values[2] = 2;
    rules_parse(&rs, text, &p, "--normal");
    if (rs.n < 1 || rs.n > HEPH_MAX_FACTORS) abort();
    for (i = 0; i < rs.n; i++) {
        const cli_rule *r = &rs.r[i];
        if (r->factor < 0 || r->factor >= p.K || r->n < 1 || r->n > CLI_MAX_RANGES) abort();
        for (j = 0; j < r->n; j++)
            if (r->lo[j] < 0 || r->lo[j] > r->hi[j] || (uint32_t)r->hi[j] >= p.n_values[r->factor]) abort();
    }
    for (i = 0; i < 3; i++) v[i] = (int32_t)(labels[i] % p.n_values[i]);
    (void)rules_match(&rs, v);
}

static void numbers(int argc, char **argv) {
    cli_topts t;
    cli_aopts o;
    int i;
    memset(&t, 0, sizeof t);
    aopts_default(&o);
    for (i = 0; i < argc; i++) {
        switch (i % 6) {
        case 0: (void)cli_long("--n", argv[i], -5, 100000000L); break;
        case 1: (void)cli_num("--beta", argv[i], 0.0, 1e6); break;
        case 2: parse_shape(&t, argv[i]); break;
        case 3: parse_cov(&o, argv[i]); break;
        case 4: parse_auto(&o, argv[i]); break;
        default: parse_objective(&t, argv[i]); break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char buf[8192];
    static char *argv[MAX_ARGS + 1];
    static int argc;
    static cli_topts t;
    static heph_vae_config cfg;
    static cli_bopts b;
    static int dims[64];
    size_t n, i;
    int mode, param;
    if (size < 2) return 0;
    mode = data[0] % 7;
    param = data[1];
    n = size - 2 < sizeof buf - 1 ? size - 2 : sizeof buf - 1;
    memcpy(buf, data + 2, n);
    buf[n] = '\0';
    argc = 0;
    argv[argc++] = buf;
    for (i = 0; i < n && argc < MAX_ARGS; i++)
        if (buf[i] == '\n') { buf[i] = '\0'; argv[argc++] = buf + i + 1; }
    argv[argc] = NULL;
    cli_set_cmd("fuzz");
    fuzz_jmp_armed = 1;
    if (setjmp(fuzz_jmp) == 0) {
        switch (mode) {
        case 0:
            train_parse(&t, argc, argv);
            train_config(&t, &cfg);
            if (t.batch < 1 || t.batch > 65536 || cfg.max_batch != t.batch) abort();
            break;
        case 1: parse_analysis(argc, argv); break;
        case 2: batch_parse(&b, argc, argv); break;
        case 3: {
            int D = 1 + param % 64, k, got = parse_dims(argv[0], D, dims);
            if (got < 0 || got > D) abort();
            for (k = 0; k < got; k++) if (dims[k] < 0 || dims[k] >= D) abort();
            break;
        }
        case 4: parse_rules(argv[0], data); break;
        case 5: numbers(argc, argv); break;
        default: {
            cli_topts tt;
            memset(&tt, 0, sizeof tt);
            heph_vae_config_default(&tt.cfg);
            for (i = 0; i < (size_t)argc; i++) {
                int k = (int)i;
                if (!train_obj_flag(&tt, argc, argv, &k)) break;
                i = (size_t)k;
            }
            break;
        }
        }
    }
    fuzz_jmp_armed = 0;
    return 0;
}
