/* fuzz_store_codec.c - libFuzzer target for the shared stores' value
 * decoder, the one parser that reads bytes another process wrote.
 *
 * The first input byte picks a mode. Mode 0 decodes the rest as it is.
 * Mode 1 first re-seals it with a correct XXH3 checksum, so the fuzzer gets
 * past the checksum and exercises the length checks and the zstd path.
 * Mode 2 encodes the rest (split into key and payload) and checks that it
 * decodes back to the same bytes and that every truncation is rejected.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "blob.h"
#include "store_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_any(const char *p, size_t n) {
  /* The key is taken from the value itself when it fits, so that the
   * key check passes and decoding goes on to the payload. */
  dn_slice key = {"", 0};
  if (n >= DN__CODEC_HEADER) {
    uint32_t klen = (uint32_t)(uint8_t)p[8] | (uint32_t)(uint8_t)p[9] << 8 |
                    (uint32_t)(uint8_t)p[10] << 16 |
                    (uint32_t)(uint8_t)p[11] << 24;
    if (klen <= n - DN__CODEC_HEADER)
      key = (dn_slice){p + DN__CODEC_HEADER, klen};
  }
  dn_blob *b = NULL;
  int rc = dn__codec_decode(NULL, p, n, key, (size_t)1 << 20, &b);
  if (rc == 0) {
    /* Touch every byte so ASan checks the blob's bounds. */
    volatile char sink = 0;
    for (size_t i = 0; i < dn_blob_len(b); i++)
      sink ^= dn_blob_data(b)[i];
    (void)sink;
    dn_blob_unref(b);
  } else if (b) {
    abort(); /* a failed decode must leave *out alone */
  }
}

static void reseal_and_decode(const char *p, size_t n) {
  if (n < DN__CODEC_OVERHEAD)
    return;
  char *copy = malloc(n);
  memcpy(copy, p, n);
  memcpy(copy, "DNUT\x01", 5);
  uint64_t h = XXH3_64bits(copy, n - 8);
  for (int i = 0; i < 8; i++)
    copy[n - 8 + i] = (char)(h >> (8 * i));
  decode_any(copy, n);
  free(copy);
}

static void round_trip(const char *p, size_t n) {
  size_t klen = n ? (uint8_t)p[0] % (n) : 0;
  dn_slice key = {p, klen};
  dn__buf enc;
  dn__buf_init(&enc, 0);
  if (dn__codec_encode(NULL, key, p + klen, n - klen, 64, SIZE_MAX, &enc) != 0)
    abort();
  dn_blob *b = NULL;
  if (dn__codec_decode(NULL, enc.data, enc.len, key, (size_t)1 << 20, &b) !=
          0 ||
      dn_blob_len(b) != n - klen ||
      (n - klen && memcmp(dn_blob_data(b), p + klen, n - klen) != 0))
    abort();
  dn_blob_unref(b);
  for (size_t cut = 0; cut < enc.len; cut += 1 + cut / 4) {
    b = NULL;
    if (dn__codec_decode(NULL, enc.data, cut, key, (size_t)1 << 20, &b) == 0)
      abort();
  }
  dn__buf_free(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const char *p = (const char *)data + 1;
  size_t n = size - 1;
  switch (data[0] % 3) {
  case 0:
    decode_any(p, n);
    break;
  case 1:
    reseal_and_decode(p, n);
    break;
  default:
    round_trip(p, n);
    break;
  }
  return 0;
}
