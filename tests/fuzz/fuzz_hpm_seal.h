/* fuzz_hpm_seal.h - for the checkpoint and network targets (fuzz_hpm.c, fuzz_resume.c, fuzz_hpn.c): a copy of the
   input whose last 8 bytes are made the FNV-1a checksum of the rest, so that mutated
   checkpoints reach the checks behind the checksum. Include after hephaestus.h's
   implementation. Returns a malloc'd copy (free it), or NULL for inputs under 16 bytes.      */
static uint8_t *fuzz_hpm_seal(const uint8_t *data, size_t size) {
    uint64_t h = HEPH__FNV_INIT;
    uint8_t *fixed;
    size_t i;
    if (size < 16 || !(fixed = (uint8_t *)malloc(size))) return NULL;
    memcpy(fixed, data, size);
    h = heph__fnv1a(h, fixed, size - 8);
    for (i = 0; i < 8; i++) fixed[size - 8 + i] = (uint8_t)(h >> (8 * i));
    return fixed;
}
