/* fuzz_resume.c - libFuzzer target: the checkpoint-resume path (train --resume): a checkpoint
   is loaded (its checksum set right, as fuzz_hpm does, so mutations reach the fields), trained
   2 steps on 4 pictures of its shape with batches drawn from its own generator as train does;
   then loaded again, trained 1 step, saved with the optimiser state, loaded from that file and
   trained 1 more step. Semantic check (issue #20): the two must end in the same checkpoint,
   byte for byte (parameters, Adam moments, step, generator and its spare normal): whatever a
   file says, a loaded checkpoint resumes exactly, or is refused. Also: the step advances by
   exactly the steps taken, and a refused step (HEPH_E_NAN) changes nothing.                 */
#include "fuzz_common.h"
#define HEPH_FSEEK(fp, off, whence) fseeko((fp), (off_t)(off), (whence))
#define HEPH_FTELL(fp) ((uint64_t)ftello(fp))
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"

#define N_PICS 4

/* steps training steps as train_loop takes them: batch indices drawn from the model's
   generator, then one step; HEPH_OK or the step's error */
static int run_steps(heph_vae *m, const float *pics, size_t np, int B, int steps, float *x) {
    int s, k, rc, y[N_PICS];
    heph_losses L;
    for (s = 0; s < steps; s++) {
        uint64_t before = m->step;
        for (k = 0; k < B; k++) { /* a conditional model's labels: picture i has label i mod K */
            size_t i = (size_t)heph_rng_below64(&m->rng, N_PICS);
            memcpy(x + (size_t)k * np, pics + i * np, np * sizeof(float));
            y[k] = m->cfg.n_classes ? (int)(i % (size_t)m->cfg.n_classes) : 0;
        }
        rc = m->cfg.n_classes ? heph_cvae_train_step(m, x, y, B, &L) : heph_vae_train_step(m, x, B, &L);
        if (rc != HEPH_OK) {
            if (rc != HEPH_E_NAN || m->step != before) abort(); /* refused: nothing moved */
            return rc;
        }
        if (m->step != before + 1) abort();
    }
    return HEPH_OK;
}

/* the bytes of a file into a new block (n), or NULL */
static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *b;
    long len;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) { if (f) fclose(f); return NULL; }
    b = (unsigned char *)malloc((size_t)len + 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) { free(b); b = NULL; }
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void resume(const char *in) {
    heph_vae a, b;
    size_t np, i, na = 0, nb = 0;
    float *pics = NULL, *x = NULL;
    unsigned char *fa = NULL, *fb = NULL;
    const char *pa = fuzz_path("a.hpm"), *pb = fuzz_path("b.hpm"), *pc = fuzz_path("c.hpm");
    int B, rc;
    uint64_t step0;
    if (heph_vae_load(&a, in) != HEPH_OK) return;
    np = (size_t)a.enc.in_n;
    if (np > 4096 || a.n_params > ((size_t)1 << 16) || a.step > HEPH_STEP_MAX - 4) { heph_vae_free(&a); return; }
    B = a.cfg.max_batch < 2 ? a.cfg.max_batch : 2;
    step0 = a.step;
    pics = (float *)malloc(N_PICS * np * sizeof(float));
    x = (float *)malloc((size_t)B * np * sizeof(float));
    if (!pics || !x) goto done;
    for (i = 0; i < N_PICS * np; i++) pics[i] = (float)((i * 7) % 11) / 10.0f;
    rc = run_steps(&a, pics, np, B, 2, x);
    if (rc != HEPH_OK || heph_vae_save(&a, pa, 0) != HEPH_OK) goto done;
    if (a.step != step0 + 2) abort();
    /* the same two steps with a save and a load between them */
    if (heph_vae_load(&b, in) != HEPH_OK) abort(); /* loaded once, loads again */
    rc = run_steps(&b, pics, np, B, 1, x);
    if (rc == HEPH_OK && heph_vae_save(&b, pb, 0) != HEPH_OK) rc = -1;
    heph_vae_free(&b);
    if (rc != HEPH_OK) abort(); /* the first run took this step */
    if (heph_vae_load(&b, pb) != HEPH_OK) abort(); /* what we wrote must load */
    rc = run_steps(&b, pics, np, B, 1, x);
    if (rc != HEPH_OK || heph_vae_save(&b, pc, 0) != HEPH_OK) abort();
    heph_vae_free(&b);
    fa = slurp(pa, &na);
    fb = slurp(pc, &nb);
    if (fa && fb && (na != nb || memcmp(fa, fb, na) != 0)) abort(); /* resume was not exact */
done:
    free(fa); free(fb); free(pics); free(x);
    heph_vae_free(&a);
}

#include "fuzz_hpm_seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *fixed;
    const char *path;
    if (!(fixed = fuzz_hpm_seal(data, size))) return 0;
    path = fuzz_file("in.hpm", fixed, size);
    free(fixed);
    if (path) resume(path);
    return 0;
}
