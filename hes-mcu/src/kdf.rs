//! Key derivation: NIST SP 800-108 counter mode (PRF HMAC-SHA-256) from a
//! device secret to a seed, then HKDF-SHA256 from the seed to the key, as
//! Islet's HES does. Every key has its own label, used both as the SP 800-108
//! label and as HKDF's info, so no two keys can ever share an output.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

/// Labels, one per derived key. Changing one changes that key on every
/// device, so they are part of the HES's external contract.
pub mod label {
    /// CPAK seed (key: GUK, context: the BL2 measurement).
    pub const CPAK: &[u8] = b"ATOLL-HES CPAK v1";
    /// Realm attestation key (key: HUK, context: curve, binding hash, boot
    /// measurements).
    pub const RAK: &[u8] = b"ATOLL-HES RAK v1";
    /// VHUK_A (key: HUK, context: signer ids of the measured components).
    pub const VHUK_A: &[u8] = b"ATOLL-HES VHUK_A v1";
    /// VHUK_M (key: HUK, context: the measurements).
    pub const VHUK_M: &[u8] = b"ATOLL-HES VHUK_M v1";
}

/// HKDF salt: a fixed domain separator, so a seed from this HES can never be
/// mistaken for HKDF input of another protocol.
const HKDF_SALT: &[u8] = b"ATOLL-HES HKDF salt v1";

/// How many candidates [`derive_p384`] tries before giving up. A candidate
/// fails with probability about 2^-190 (the P-384 order is that close to
/// 2^384), so the limit exists only to bound the loop.
const P384_MAX_TRIES: u8 = 32;

/// SP 800-108 counter mode with HMAC-SHA-256: block `i` (from 1) is
/// `HMAC(key, [i]_32 || label || 0x00 || context || [L]_32)`, `L` the output
/// length in bits, both integers big-endian. `None` if `out` is longer than
/// the 32-bit length field can describe (never the case in this crate).
pub fn sp800_108_ctr_hmac_sha256(
    key: &[u8],
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Option<()> {
    let bits = u32::try_from(out.len()).ok()?.checked_mul(8)?.to_be_bytes();
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let counter = u32::try_from(i + 1).ok()?.to_be_bytes();
        // HMAC accepts keys of any length, so this never fails.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
        mac.update(&counter);
        mac.update(label);
        mac.update(&[0]);
        mac.update(context);
        mac.update(&bits);
        let block = mac.finalize().into_bytes();
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    Some(())
}

/// The two-stage derivation: a 32-byte SP 800-108 seed from `key`, `label`
/// and `context`, expanded by HKDF-SHA256 (salt [`HKDF_SALT`], info `label
/// || info_suffix`) into `out`. `None` only for an `out` above HKDF's
/// 8160-byte limit.
fn derive_into(
    key: &[u8],
    label: &[u8],
    context: &[u8],
    info_suffix: &[u8],
    out: &mut [u8],
) -> Option<()> {
    let mut seed = [0u8; 32];
    sp800_108_ctr_hmac_sha256(key, label, context, &mut seed)?;
    let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), &seed);
    seed.zeroize();
    hk.expand_multi_info(&[label, info_suffix], out).ok()
}

/// A 32-byte symmetric key (the VHUKs).
pub fn derive_key32(key: &[u8], label: &[u8], context: &[u8]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    derive_into(key, label, context, &[], &mut out)?;
    Some(out)
}

/// A P-384 private key. Each candidate is 48 HKDF bytes read as a
/// big-endian integer; one that is zero or not below the group order is
/// rejected and the next is expanded with an incremented counter byte in
/// the info. Reducing modulo the order instead would bias the key, and
/// clamping would make some keys impossible.
pub fn derive_p384(key: &[u8], label: &[u8], context: &[u8]) -> Option<p384::SecretKey> {
    first_valid_scalar(|counter, candidate| derive_into(key, label, context, &[counter], candidate))
}

/// Asks `candidate` for candidates 0, 1, ... and returns the first that is a
/// valid P-384 private scalar (non-zero, below the order).
fn first_valid_scalar(
    mut candidate: impl FnMut(u8, &mut [u8; 48]) -> Option<()>,
) -> Option<p384::SecretKey> {
    for counter in 0..P384_MAX_TRIES {
        let mut bytes = [0u8; 48];
        candidate(counter, &mut bytes)?;
        let secret = p384::SecretKey::from_slice(&bytes);
        bytes.zeroize();
        if let Ok(secret) = secret {
            return Some(secret);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counter-mode construction written out by hand for two blocks, so
    /// a change in field order or encoding fails here.
    #[test]
    fn sp800_108_matches_its_definition() {
        let key = [7u8; 32];
        let mut out = [0u8; 40];
        sp800_108_ctr_hmac_sha256(&key, b"L", b"ctx", &mut out).unwrap();
        for (i, chunk) in out.chunks(32).enumerate() {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
            let mut msg = Vec::new();
            msg.extend_from_slice(&(i as u32 + 1).to_be_bytes());
            msg.extend_from_slice(b"L\0ctx");
            msg.extend_from_slice(&320u32.to_be_bytes());
            mac.update(&msg);
            let block = mac.finalize().into_bytes();
            assert_eq!(chunk, &block[..chunk.len()]);
        }
    }

    #[test]
    fn output_depends_on_key_label_and_context() {
        let d = |k: u8, l: &[u8], c: &[u8]| derive_key32(&[k; 32], l, c).unwrap();
        let base = d(1, label::VHUK_A, b"ctx");
        assert_eq!(base, d(1, label::VHUK_A, b"ctx"));
        assert_ne!(base, d(2, label::VHUK_A, b"ctx"));
        assert_ne!(base, d(1, label::VHUK_M, b"ctx"));
        assert_ne!(base, d(1, label::VHUK_A, b"ctx2"));
    }

    #[test]
    fn p384_keys_are_deterministic_valid_and_distinct() {
        let a = derive_p384(&[1; 32], label::CPAK, b"bl2").unwrap();
        let b = derive_p384(&[1; 32], label::CPAK, b"bl2").unwrap();
        let c = derive_p384(&[1; 32], label::RAK, b"bl2").unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        assert_ne!(a.to_bytes(), c.to_bytes());
    }

    /// Candidates at or above the order, and zero, are skipped, never
    /// reduced; a source of only invalid candidates gives no key at all.
    #[test]
    fn invalid_scalars_are_rejected_not_reduced() {
        let mut asked = Vec::new();
        let key = first_valid_scalar(|counter, c| {
            asked.push(counter);
            *c = match counter {
                0 => [0xFF; 48],
                1 => [0; 48],
                _ => [0x11; 48],
            };
            Some(())
        })
        .unwrap();
        assert_eq!(asked, [0, 1, 2]);
        assert_eq!(key.to_bytes().as_slice(), &[0x11; 48]);
        assert!(first_valid_scalar(|_, c| {
            *c = [0xFF; 48];
            Some(())
        })
        .is_none());
    }

    /// The candidate for counter 0 is accepted whenever it is a valid
    /// scalar: the key is the raw HKDF output, not something reduced.
    #[test]
    fn p384_key_is_the_first_valid_candidate() {
        let key = derive_p384(&[9; 32], label::CPAK, b"x").unwrap();
        let mut first = [0u8; 48];
        derive_into(&[9; 32], label::CPAK, b"x", &[0], &mut first).unwrap();
        assert_eq!(key.to_bytes().as_slice(), &first);
    }
}
