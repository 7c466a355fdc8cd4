/* Exercises the Atoll SDK C API against a running atoll-sim.
 * Usage: sdk_test SOCKET
 * Prints "key=value" lines the Rust test checks; exits non-zero when a
 * check that needs no platform answer fails. */
#include <stdio.h>
#include <string.h>

#include "atoll_sdk.h"

static void hex(const char *name, const uint8_t *p, size_t n) {
    printf("%s=", name);
    for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
    printf("\n");
}

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "check failed: %s (line %d)\n", #cond, __LINE__); return 1; } } while (0)

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    AtollSdk *sdk = NULL;

    /* NULL pointers are refused, not dereferenced. */
    CHECK(atoll_sdk_connect_sim(NULL, &sdk) == ATOLL_STATUS_NULL_POINTER);
    CHECK(atoll_sdk_connect_sim(argv[1], NULL) == ATOLL_STATUS_NULL_POINTER);
    CHECK(atoll_measurement_read(NULL, 0, NULL, NULL) == ATOLL_STATUS_NULL_POINTER);
    atoll_sdk_free(NULL);

    AtollStatus st = atoll_sdk_connect_sim(argv[1], &sdk);
    printf("connect=%d\n", (int)st);
    CHECK(st == ATOLL_STATUS_OK && sdk != NULL);

    /* Too small a buffer: nothing written, the size needed reported. */
    uint8_t m[64];
    size_t len = 10;
    CHECK(atoll_measurement_read(sdk, 0, m, &len) == ATOLL_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == 64);
    CHECK(atoll_measurement_read(sdk, 0, m, NULL) == ATOLL_STATUS_NULL_POINTER);

    len = sizeof m;
    st = atoll_measurement_read(sdk, 0, m, &len);
    CHECK(st == ATOLL_STATUS_OK && len == 64);
    hex("rim", m, len);

    const uint8_t data[] = "measured by C";
    CHECK(atoll_measurement_extend(sdk, 1, NULL, 5) == ATOLL_STATUS_NULL_POINTER);
    st = atoll_measurement_extend(sdk, 1, data, sizeof data - 1);
    CHECK(st == ATOLL_STATUS_OK);
    len = sizeof m;
    CHECK(atoll_measurement_read(sdk, 1, m, &len) == ATOLL_STATUS_OK);
    hex("rem1", m, len);
    /* The RMM refuses slot 5. */
    len = sizeof m;
    printf("read5=%d\n", (int)atoll_measurement_read(sdk, 5, m, &len));

    /* Attestation and sealing: their status depends on the platform. */
    uint8_t challenge[64];
    memset(challenge, 0xA5, sizeof challenge);
    CHECK(atoll_attest(sdk, challenge, 8, NULL, &len) == ATOLL_STATUS_INVALID_ARGUMENT);
    static uint8_t token[16384];
    len = sizeof token;
    st = atoll_attest(sdk, challenge, sizeof challenge, token, &len);
    printf("attest=%d\n", (int)st);
    if (st == ATOLL_STATUS_OK) hex("token", token, len);

    uint8_t sealed[256];
    len = 4;
    CHECK(atoll_seal(sdk, data, sizeof data - 1, 2, 0, sealed, &len) == ATOLL_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == sizeof data - 1 + 52);
    len = sizeof sealed;
    st = atoll_seal(sdk, data, sizeof data - 1, 2, 0, sealed, &len);
    printf("seal=%d\n", (int)st);
    if (st == ATOLL_STATUS_OK) {
        hex("sealed", sealed, len);
        uint8_t plain[256];
        size_t plen = sizeof plain;
        st = atoll_unseal(sdk, sealed, len, plain, &plen);
        printf("unseal=%d\n", (int)st);
        CHECK(st != ATOLL_STATUS_OK || (plen == sizeof data - 1 && memcmp(plain, data, plen) == 0));
    }
    /* Not an envelope: refused before any key is asked for. */
    uint8_t junk[60] = {0};
    size_t plen = sizeof junk;
    printf("unseal_junk=%d\n", (int)atoll_unseal(sdk, junk, sizeof junk, junk, &plen));

    printf("verify_junk=%d\n", (int)atoll_verify(junk, sizeof junk, "{\"kty\":\"EC\"}"));
    printf("message=%s\n", atoll_status_message(ATOLL_STATUS_RSI_UNKNOWN));
    atoll_sdk_free(sdk);
    return 0;
}
