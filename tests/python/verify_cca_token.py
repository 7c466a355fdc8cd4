#!/usr/bin/env python3
"""Independent verifier for Arm CCA attestation tokens (tag 399).

Written against draft-ffm-rats-cca-token and RFC 9052 only, with cbor2 and
cryptography, so that it shares no code with the Rust implementation it is
used to cross-check. It decodes the tag-399 collection, verifies the
platform token's COSE_Sign1 (ES256 or ES384) with a CPAK given as a JWK,
the realm token's COSE_Sign1 (ES384) with the RAK from realm claim 44237
(COSE_Key or raw SEC1 point), and the binding: platform challenge ==
H(claim 44237 bytes), H named by claim 44240.

Usage: verify_cca_token.py TOKEN CPAK_JWK [--json]
Exit status 0 when all three checks pass, 1 when one fails, 2 on bad input.
"""

import argparse
import base64
import hashlib
import json
import sys

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

PLATFORM, REALM = 44234, 44241
COSE_ALGS = {
    -7: (ec.SECP256R1, hashes.SHA256(), 32),   # ES256
    -35: (ec.SECP384R1, hashes.SHA384(), 48),  # ES384
}
HASHES = {"sha-256": hashlib.sha256, "sha-384": hashlib.sha384, "sha-512": hashlib.sha512}


class BadInput(Exception):
    pass


def as_map(item, what):
    """cbor2 >= 6 decodes maps inside tags as an immutable frozendict."""
    if not hasattr(item, "keys"):
        raise BadInput(f"{what} is not a map")
    return dict(item)


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwk_public_key(jwk):
    curves = {"P-256": (ec.SECP256R1, 32), "P-384": (ec.SECP384R1, 48)}
    if jwk.get("kty") != "EC" or jwk.get("crv") not in curves:
        raise BadInput("CPAK must be an EC P-256 or P-384 JWK")
    curve, n = curves[jwk["crv"]]
    x, y = b64url(jwk["x"]), b64url(jwk["y"])
    if len(x) != n or len(y) != n:
        raise BadInput("JWK coordinates have the wrong length")
    return ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve()
    ).public_key()


def rak_public_key(claim):
    if len(claim) == 97 and claim[0] == 4:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(), claim)
    key = as_map(cbor2.loads(claim), "realm public key")
    if key.get(1) != 2 or key.get(-1) != 2:
        raise BadInput("realm public key is not a P-384 EC2 COSE_Key")
    x, y = key.get(-2), key.get(-3)
    if not (isinstance(x, bytes) and isinstance(y, bytes) and len(x) == len(y) == 48):
        raise BadInput("realm public key coordinates are not 48-byte strings")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(), b"\x04" + x + y)


def parse_sign1(data, what):
    item = cbor2.loads(data)
    if isinstance(item, cbor2.CBORTag):
        if item.tag != 18:
            raise BadInput(f"{what}: tag {item.tag}, expected 18 (COSE_Sign1)")
        item = item.value
    if not isinstance(item, (list, tuple)) or len(item) != 4:
        raise BadInput(f"{what}: not a COSE_Sign1 array")
    protected, _unprotected, payload, signature = item
    if not isinstance(protected, bytes) or not isinstance(payload, bytes):
        raise BadInput(f"{what}: protected header or payload is not a byte string")
    alg = as_map(cbor2.loads(protected), f"{what} protected header").get(1) if protected else None
    if alg not in COSE_ALGS:
        raise BadInput(f"{what}: unsupported algorithm {alg}")
    return protected, payload, signature, alg


def verify_sign1(protected, payload, signature, alg, key):
    curve, digest, n = COSE_ALGS[alg]
    if not isinstance(key.curve, curve) or len(signature) != 2 * n:
        return False
    sig_structure = cbor2.dumps(["Signature1", protected, b"", payload])
    der = encode_dss_signature(
        int.from_bytes(signature[:n], "big"), int.from_bytes(signature[n:], "big")
    )
    try:
        key.verify(der, sig_structure, ec.ECDSA(digest))
        return True
    except InvalidSignature:
        return False


def verify(token_bytes, cpak):
    top = cbor2.loads(token_bytes)
    if not isinstance(top, cbor2.CBORTag) or top.tag != 399:
        raise BadInput("token is not a tag-399 CCA token")
    collection = as_map(top.value, "the collection")
    if set(collection) != {PLATFORM, REALM}:
        raise BadInput("collection must hold exactly entries 44234 and 44241")
    p_prot, p_payload, p_sig, p_alg = parse_sign1(collection[PLATFORM], "platform token")
    r_prot, r_payload, r_sig, r_alg = parse_sign1(collection[REALM], "realm token")
    platform = as_map(cbor2.loads(p_payload), "platform claims")
    realm = as_map(cbor2.loads(r_payload), "realm claims")
    rak_claim = realm[44237]
    binding_hash = HASHES.get(realm[44240])
    if binding_hash is None:
        raise BadInput(f"unknown RAK hash algorithm {realm[44240]!r}")
    return {
        "platform_signature": verify_sign1(p_prot, p_payload, p_sig, p_alg, cpak),
        "realm_signature": r_alg == -35
        and verify_sign1(r_prot, r_payload, r_sig, r_alg, rak_public_key(rak_claim)),
        "binding": platform[10] == binding_hash(rak_claim).digest(),
        "realm_challenge": realm[10].hex(),
        "platform_challenge": platform[10].hex(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("token")
    ap.add_argument("cpak", help="platform key as a JWK file")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:
        with open(args.token, "rb") as f:
            token = f.read()
        with open(args.cpak) as f:
            cpak = jwk_public_key(json.load(f))
        result = verify(token, cpak)
    except (BadInput, KeyError, ValueError, TypeError, cbor2.CBORDecodeError) as e:
        print(f"verify_cca_token: bad input: {e}", file=sys.stderr)
        return 2
    ok = result["platform_signature"] and result["realm_signature"] and result["binding"]
    if args.json:
        print(json.dumps(result))
    else:
        for k in ("platform_signature", "realm_signature", "binding"):
            print(f"{k}: {'ok' if result[k] else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
