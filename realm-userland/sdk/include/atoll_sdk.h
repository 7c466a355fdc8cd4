/* The Atoll realm SDK C API. Generated from src/ffi.rs by cbindgen; do not edit. */

#ifndef ATOLL_SDK_H
#define ATOLL_SDK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/**
 * Status of a C API call.
 */
enum AtollStatus
#ifdef __cplusplus
  : int32_t
#endif // __cplusplus
 {
  /**
   * Success.
   */
  ATOLL_STATUS_OK = 0,
  /**
   * A required pointer was NULL.
   */
  ATOLL_STATUS_NULL_POINTER = -1,
  /**
   * The output buffer is too small; `*out_len` holds the size needed.
   */
  ATOLL_STATUS_BUFFER_TOO_SMALL = -2,
  /**
   * An argument is invalid (challenge length, index, UTF-8 path).
   */
  ATOLL_STATUS_INVALID_ARGUMENT = -3,
  /**
   * The connection to the platform failed (simulator socket).
   */
  ATOLL_STATUS_BACKEND = -4,
  /**
   * The RMM refused an argument (`RSI_ERROR_INPUT`).
   */
  ATOLL_STATUS_RSI_INPUT = -5,
  /**
   * The call is not valid in the realm's current state
   * (`RSI_ERROR_STATE`).
   */
  ATOLL_STATUS_RSI_STATE = -6,
  /**
   * The RMM could not complete the call (`RSI_ERROR_UNKNOWN`), e.g. no
   * attestation key or sealing key is available on this platform.
   */
  ATOLL_STATUS_RSI_UNKNOWN = -7,
  /**
   * The RMM does not implement the call (`SMC_UNKNOWN`).
   */
  ATOLL_STATUS_NOT_SUPPORTED = -8,
  /**
   * Sealed data failed authentication: wrong realm or key, or modified.
   */
  ATOLL_STATUS_AUTHENTICATION = -9,
  /**
   * Not a sealed envelope this SDK reads.
   */
  ATOLL_STATUS_BAD_ENVELOPE = -10,
  /**
   * The token did not decode or verify.
   */
  ATOLL_STATUS_VERIFY_FAILED = -11,
  /**
   * The CPAK JWK could not be read.
   */
  ATOLL_STATUS_BAD_KEY = -12,
  /**
   * An internal error (a bug): reported rather than crashing the caller.
   */
  ATOLL_STATUS_INTERNAL = -13,
};
#ifndef __cplusplus
typedef int32_t AtollStatus;
#endif // __cplusplus

/**
 * An SDK handle: opaque to C.
 */
typedef struct AtollSdk AtollSdk;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Connects to the simulator's vCPU socket at `socket_path` (NUL-terminated
 * UTF-8) and stores a new handle in `*out`. Free it with
 * [`atoll_sdk_free`].
 *
 * # Safety
 * `socket_path` must be a valid NUL-terminated string and `out` valid for
 * a pointer-sized write.
 */
AtollStatus atoll_sdk_connect_sim(const char *socket_path, struct AtollSdk **out);

/**
 * Closes the connection and frees the handle. NULL is ignored.
 *
 * # Safety
 * `sdk` must be NULL or a handle from [`atoll_sdk_connect_sim`] not yet
 * freed; it must not be used afterwards.
 */
void atoll_sdk_free(struct AtollSdk *sdk);

/**
 * Writes an attestation token for `challenge` (32 to 64 bytes) into
 * `token`/`token_len`. A too-small buffer reports the token's size; the
 * next call fetches a new token.
 *
 * # Safety
 * `sdk` a live handle; `challenge` `challenge_len` readable bytes;
 * `token_len` valid for read and write; `token` `*token_len` writable
 * bytes.
 */
AtollStatus atoll_attest(struct AtollSdk *sdk,
                         const uint8_t *challenge,
                         size_t challenge_len,
                         uint8_t *token,
                         size_t *token_len);

/**
 * Reads measurement slot `index` (0 = RIM, 1..=4 = REMs): 64 bytes,
 * zero-padded beyond the digest, into `out`/`out_len`.
 *
 * # Safety
 * As for [`atoll_attest`].
 */
AtollStatus atoll_measurement_read(struct AtollSdk *sdk,
                                   uint32_t index,
                                   uint8_t *out,
                                   size_t *out_len);

/**
 * Extends REM `index` (1..=4) with `data` (at most 64 bytes).
 *
 * # Safety
 * `sdk` a live handle; `data` `len` readable bytes.
 */
AtollStatus atoll_measurement_extend(struct AtollSdk *sdk,
                                     uint32_t index,
                                     const uint8_t *data,
                                     size_t len);

/**
 * Seals `data` under the realm sealing key for `key_flags` and `svn`
 * into `out`/`out_len` (the envelope is `len + 52` bytes).
 *
 * # Safety
 * `sdk` a live handle; `data` `len` readable bytes; `out_len` valid for
 * read and write; `out` `*out_len` writable bytes.
 */
AtollStatus atoll_seal(struct AtollSdk *sdk,
                       const uint8_t *data,
                       size_t len,
                       uint64_t key_flags,
                       uint64_t svn,
                       uint8_t *out,
                       size_t *out_len);

/**
 * Opens an envelope made by [`atoll_seal`] into `out`/`out_len`.
 *
 * # Safety
 * As for [`atoll_seal`].
 */
AtollStatus atoll_unseal(struct AtollSdk *sdk,
                         const uint8_t *sealed,
                         size_t len,
                         uint8_t *out,
                         size_t *out_len);

/**
 * Verifies `token` against the CPAK given as a JWK (NUL-terminated JSON):
 * both signatures and the RAK binding.
 *
 * # Safety
 * `token` `len` readable bytes; `cpak_jwk` a valid NUL-terminated string.
 */
AtollStatus atoll_verify(const uint8_t *token, size_t len, const char *cpak_jwk);

/**
 * A static, NUL-terminated description of a status value.
 */
const char *atoll_status_message(int32_t status);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* ATOLL_SDK_H */
