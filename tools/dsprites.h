/* dsprites.h - the dSprites factor table, shared by gen_dsprites and dsprites2hpd.

   dSprites (Matthey et al. 2017, deepmind/dsprites-dataset, Apache-2.0) stores 737,280 binary
   64x64 pictures, one per combination of 6 factors, in mixed-radix order (first factor slowest,
   last fastest). Factor values as in its metadata (numpy linspace where a range is given):
     color        1   1.0
     shape        3   1, 2, 3 = square, ellipse, heart
     scale        6   linspace(0.5, 1, 6)
     orientation 40   linspace(0, 2*pi, 40)   (0 and 2*pi both present)
     posX        32   linspace(0, 1, 32)
     posY        32   linspace(0, 1, 32)
   Include after hephaestus.h. */
#ifndef HEPH_TOOLS_DSPRITES_H
#define HEPH_TOOLS_DSPRITES_H

#define DSPR_NF 6
#define DSPR_SIDE 64
#define DSPR_COUNT 737280u
#define DSPR_MAXV 40

static const char *const dspr_names[DSPR_NF] = {"color", "shape", "scale", "orientation", "posX", "posY"};
static const uint32_t dspr_sizes[DSPR_NF] = {1, 3, 6, 40, 32, 32};

/* numpy.linspace(start, stop, num): i * ((stop - start) / (num - 1)) + start, last = stop */
static void dspr_linspace(double *v, double start, double stop, uint32_t num) {
    uint32_t i;
    double step = num > 1 ? (stop - start) / (double)(num - 1) : 0.0;
    for (i = 0; i < num; i++) { /* volatile: no fused multiply-add under -ffp-contract=fast */
        volatile double t = (double)i * step;
        v[i] = t + start;
    }
    if (num > 1) v[num - 1] = stop;
}

/* the real values of every factor: values[k][0 .. dspr_sizes[k]) */
static void dspr_values(double values[DSPR_NF][DSPR_MAXV]) {
    values[0][0] = 1.0;
    values[1][0] = 1.0; values[1][1] = 2.0; values[1][2] = 3.0;
    dspr_linspace(values[2], 0.5, 1.0, 6);
    dspr_linspace(values[3], 0.0, 6.283185307179586, 40);
    dspr_linspace(values[4], 0.0, 1.0, 32);
    dspr_linspace(values[5], 0.0, 1.0, 32);
}

/* fill the common part of a .hpd header: 1-bit 64x64 pictures, value_max 1, the 6 factors.
   values must stay alive until heph_hpd_create has run. */
static void dspr_info(heph_hpd_info *info, uint64_t count, double values[DSPR_NF][DSPR_MAXV]) {
    int k;
    memset(info, 0, sizeof *info);
    info->count = count;
    info->c = 1; info->h = DSPR_SIDE; info->w = DSPR_SIDE;
    info->dtype = HEPH_PX_BIT;
    info->value_max = 1.0f;
    info->n_factors = DSPR_NF;
    dspr_values(values);
    for (k = 0; k < DSPR_NF; k++) {
        snprintf(info->factors[k].name, sizeof info->factors[k].name, "%s", dspr_names[k]);
        info->factors[k].n_values = dspr_sizes[k];
        info->factors[k].values = values[k];
    }
}

/* grid index -> factor indices (mixed radix, last factor fastest) */
static void dspr_digits(uint64_t i, int32_t *f) {
    int k;
    for (k = DSPR_NF - 1; k >= 0; k--) {
        f[k] = (int32_t)(i % dspr_sizes[k]);
        i /= dspr_sizes[k];
    }
}

#endif
