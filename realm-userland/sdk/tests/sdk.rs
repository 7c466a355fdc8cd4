//! The SDK's Rust API: sealing round trips through the RSI client (with a
//! scripted RMM that derives a key per flags and SVN, and records the
//! requests), token verification on tokens built and signed here, and the
//! simulated platform: attest, verify, seal and unseal against an
//! `atoll-hes` process as the root of trust, and the specified failures
//! without one.

use std::path::Path;

use atoll_cca_token::{encode_collection, HashAlgo, PlatformClaims, PlatformKey, RealmClaims};
use atoll_realm_description::RealmDescription;
use atoll_rsi_client::{RsiBackend, RsiClient, RsiError};
use atoll_sdk::{sealing_flags, EnvelopeError, Sdk, SdkError, VerifyError};
use atoll_sim::procs::HesProcess;
use atoll_sim::Background;
use ipc_schema::islet;
use ipc_schema::smccc::{SmcRegs, SMC_UNKNOWN};
use p384::ecdsa::SigningKey;

/// An RMM that only knows RSI_ISLET_REALM_SEALING_KEY: the key is a
/// function of (realm secret, flags, svn), as the real derivation is, and
/// every request is recorded.
struct ScriptedRmm {
    secret: u8,
    requests: Vec<(u64, u64)>,
}

impl RsiBackend for ScriptedRmm {
    type Error = std::convert::Infallible;

    fn smc(&mut self, regs: SmcRegs) -> Result<SmcRegs, Self::Error> {
        let mut out = [0u64; 18];
        if regs[0] != islet::fid::RSI_REALM_SEALING_KEY {
            out[0] = SMC_UNKNOWN;
            return Ok(out);
        }
        self.requests.push((regs[1], regs[2]));
        for (i, w) in out[1..5].iter_mut().enumerate() {
            *w = u64::from(self.secret) << 56 ^ regs[1] << 8 ^ regs[2] << 20 ^ i as u64;
        }
        Ok(out)
    }

    fn buffer_ipa(&self) -> u64 {
        0x1000
    }

    fn read_buffer(&mut self, _: usize, _: &mut [u8]) -> Result<(), Self::Error> {
        Ok(())
    }

    fn write_buffer(&mut self, _: usize, _: &[u8]) -> Result<(), Self::Error> {
        Ok(())
    }
}

fn scripted(secret: u8) -> Sdk<ScriptedRmm> {
    Sdk::new(RsiClient::new(ScriptedRmm {
        secret,
        requests: vec![],
    }))
}

#[test]
fn seal_unseal_round_trips_rederive_the_key_from_the_envelope() {
    let mut sdk = scripted(1);
    let flags = sealing_flags::RIM | sealing_flags::SVN;
    let sealed = sdk.seal_with_svn(b"application data", flags, 3).unwrap();
    assert_eq!(sdk.unseal(&sealed).unwrap(), b"application data");
    // The key was asked for twice with the same flags and SVN.
    assert_eq!(sdk.rsi().backend().requests, [(flags, 3), (flags, 3)]);
    // `seal` is SVN 0.
    let sealed0 = sdk.seal(b"", sealing_flags::REALM_ID).unwrap();
    assert_eq!(sdk.unseal(&sealed0).unwrap(), b"");
    assert_eq!(
        sdk.rsi().backend().requests[2..],
        [(sealing_flags::REALM_ID, 0), (sealing_flags::REALM_ID, 0)]
    );
}

#[test]
fn another_realm_or_a_rewritten_header_cannot_unseal() {
    let sealed = scripted(1).seal(b"secret", sealing_flags::RIM).unwrap();
    assert!(matches!(
        scripted(2).unseal(&sealed),
        Err(SdkError::Envelope(EnvelopeError::Authentication))
    ));
    // Steering the realm to another key (flags rewritten) fails the tag.
    let mut rewritten = sealed.clone();
    rewritten[8] = sealing_flags::KEY_M as u8;
    assert!(matches!(
        scripted(1).unseal(&rewritten),
        Err(SdkError::Envelope(EnvelopeError::Authentication))
    ));
    // Garbage is refused before any key is requested.
    let mut sdk = scripted(1);
    assert!(matches!(
        sdk.unseal(b"not an envelope at all, but long enough to have a header......"),
        Err(SdkError::Envelope(EnvelopeError::BadMagic))
    ));
    assert!(sdk.rsi().backend().requests.is_empty());
    // Undefined flags are refused by the client.
    assert!(matches!(
        sdk.seal(b"x", 1 << 12),
        Err(SdkError::Rsi(RsiError::InvalidArgument(_)))
    ));
}

fn signed_token(challenge: [u8; 64]) -> (Vec<u8>, SigningKey) {
    let rak = SigningKey::from_slice(&[0x11; 48]).unwrap();
    let cpak = SigningKey::from_slice(&[0x22; 48]).unwrap();
    let realm = RealmClaims::new(
        challenge,
        [0; 64],
        &p384::PublicKey::from(rak.verifying_key()),
        HashAlgo::Sha256,
        vec![7; 32],
        [vec![0; 32], vec![0; 32], vec![0; 32], vec![0; 32]],
    )
    .unwrap();
    let platform = PlatformClaims {
        profile: atoll_cca_token::PLATFORM_PROFILE_1_0.into(),
        challenge: realm.binding_challenge(),
        implementation_id: [0; 32],
        instance_id: [1; 33],
        config: vec![],
        lifecycle: 0x3000,
        sw_components: vec![],
        verification_service: None,
        hash_algo: "sha-256".into(),
        extra: vec![],
    };
    let platform_token = platform.sign_with(&cpak).unwrap();
    let realm_token = realm.sign_with(&rak).unwrap();
    (
        encode_collection(&platform_token, &realm_token).unwrap(),
        cpak,
    )
}

#[test]
fn verify_checks_signatures_and_binding() {
    let (token, cpak) = signed_token([0xAA; 64]);
    let key = PlatformKey::from(*cpak.verifying_key());
    let decoded = atoll_sdk::verify(&token, &key).unwrap();
    assert_eq!(decoded.realm.claims.challenge, [0xAA; 64]);
    // The CPAK as a JWK, the way the CLI and the C API take it.
    let jwk = key.to_jwk().to_string();
    let from_jwk = atoll_sdk::cpak_from_jwk(&jwk).unwrap();
    atoll_sdk::verify(&token, &from_jwk).unwrap();
    // Another platform's key.
    let other = PlatformKey::from(*SigningKey::from_slice(&[0x33; 48]).unwrap().verifying_key());
    assert!(matches!(
        atoll_sdk::verify(&token, &other),
        Err(VerifyError::Verify(_))
    ));
    // A flipped byte anywhere in the signed parts: refused.
    let mut bad = token.clone();
    let n = bad.len();
    bad[n - 10] ^= 1;
    assert!(atoll_sdk::verify(&bad, &key).is_err());
    assert!(matches!(
        atoll_sdk::verify(b"\x01\x02", &key),
        Err(VerifyError::Decode(_))
    ));
    assert!(matches!(
        atoll_sdk::cpak_from_jwk("{\"kty\":\"RSA\"}"),
        Err(VerifyError::Key(_))
    ));
}

fn example() -> RealmDescription {
    RealmDescription::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/examples/hello-realm.toml"),
    )
    .unwrap()
}

/// The example realm with another payload (so another RIM): another
/// realm, as far as sealing keys go.
fn another_realm(dir: &Path) -> RealmDescription {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/examples");
    std::fs::write(dir.join("other.bin"), vec![0x0F; 4096]).unwrap();
    let toml = std::fs::read_to_string(example.join("hello-realm.toml"))
        .unwrap()
        .replace("hello-realm.bin", "other.bin");
    atoll_realm_description::toml::from_str(&toml, dir).unwrap()
}

/// One boot of the simulated platform: a fresh `atoll-hes` process on the
/// provisioning file in `dir` (same file, same device secrets), and the
/// realm `desc` on a simulator booted against it.
struct Platform {
    sim: Background,
    _hes: HesProcess,
}

impl Platform {
    fn boot(dir: &Path, desc: RealmDescription) -> Self {
        let hes = HesProcess::start(dir);
        let sim =
            Background::start_with(desc, dir.join("realm.sock"), Some(hes.socket.clone())).unwrap();
        Self { sim, _hes: hes }
    }

    fn sdk(&self) -> Sdk<atoll_rsi_client::sim::SimBackend> {
        Sdk::connect_sim(self.sim.socket()).unwrap()
    }
}

#[test]
fn simulator_attest_and_seal_with_the_hes() {
    let dir = tempfile::tempdir().unwrap();
    let data = b"kept for this realm only";
    let (sealed_rim, sealed_m, rim) = {
        let platform = Platform::boot(dir.path(), example());
        let mut sdk = platform.sdk();
        // A token for the verifier's nonce (48 bytes, zero-padded to 64)
        // that verifies against the platform's CPAK, with the realm's RIM.
        let nonce: [u8; 48] = core::array::from_fn(|i| i as u8 * 3);
        let token = sdk.attest(&nonce).unwrap();
        let cpak = platform.sim.cpak().expect("booted against the HES");
        let cpak = PlatformKey::from(p384::ecdsa::VerifyingKey::from_sec1_bytes(cpak).unwrap());
        let decoded = atoll_sdk::verify(&token, &cpak).unwrap();
        let mut padded = [0u8; 64];
        padded[..48].copy_from_slice(&nonce);
        assert_eq!(decoded.realm.claims.challenge, padded);
        assert_eq!(decoded.realm.claims.rim, platform.sim.measurement().rim());
        // Through the JWK, as relying parties hold the key.
        let jwk = cpak.to_jwk().to_string();
        atoll_sdk::verify(&token, &atoll_sdk::cpak_from_jwk(&jwk).unwrap()).unwrap();
        let stranger = SigningKey::from_slice(&[0x33; 48]).unwrap();
        assert!(matches!(
            atoll_sdk::verify(&token, &PlatformKey::from(*stranger.verifying_key())),
            Err(VerifyError::Verify(_))
        ));

        // Seal and unseal round trips, under VHUK_A and VHUK_M keys.
        let sealed_rim = sdk.seal(data, sealing_flags::RIM).unwrap();
        assert_eq!(sdk.unseal(&sealed_rim).unwrap(), data);
        let sealed_m = sdk.seal(data, sealing_flags::KEY_M).unwrap();
        assert_eq!(sdk.unseal(&sealed_m).unwrap(), data);
        // Fresh nonces: the same data seals differently each time.
        assert_ne!(sdk.seal(data, sealing_flags::RIM).unwrap(), sealed_rim);
        // Without vendor metadata there is no realm id or SVN to bind to.
        assert!(matches!(
            sdk.seal(data, sealing_flags::REALM_ID),
            Err(SdkError::Rsi(RsiError::State { .. }))
        ));
        (sealed_rim, sealed_m, platform.sim.measurement().rim)
    };

    // The platform restarted (HES process and simulator), same device
    // secrets and firmware: the same realm opens what it sealed.
    {
        let platform = Platform::boot(dir.path(), example());
        let mut sdk = platform.sdk();
        assert_eq!(sdk.unseal(&sealed_rim).unwrap(), data);
        assert_eq!(sdk.unseal(&sealed_m).unwrap(), data);
    }

    // Another realm on the same platform cannot: its keys are its own.
    let platform = Platform::boot(dir.path(), another_realm(dir.path()));
    let mut sdk = platform.sdk();
    assert_ne!(sdk.rsi().measurement_read(0).unwrap(), rim);
    for sealed in [&sealed_rim, &sealed_m] {
        assert!(matches!(
            sdk.unseal(sealed),
            Err(SdkError::Envelope(EnvelopeError::Authentication))
        ));
    }
    // Its own data it seals and unseals.
    let own = sdk.seal(b"other", sealing_flags::RIM).unwrap();
    assert_eq!(sdk.unseal(&own).unwrap(), b"other");
}

/// Without a root of trust (no HES): tokens and sealing keys fail with
/// `RSI_ERROR_UNKNOWN`, as the RMM specifies; challenge lengths are still
/// checked first, and measurements still work.
#[test]
fn simulator_attest_and_seal_without_a_root_of_trust() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Background::start(example(), dir.path().join("realm.sock")).unwrap();
    assert!(sim.cpak().is_none());
    let mut sdk = Sdk::connect_sim(sim.socket()).unwrap();
    assert!(matches!(
        sdk.attest(&[1; 16]),
        Err(SdkError::ChallengeLength(16))
    ));
    assert!(matches!(
        sdk.attest(&[1; 65]),
        Err(SdkError::ChallengeLength(65))
    ));
    assert!(matches!(
        sdk.attest(&[1; 32]),
        Err(SdkError::Rsi(RsiError::Unknown { .. }))
    ));
    assert!(matches!(
        sdk.seal(b"data", sealing_flags::RIM),
        Err(SdkError::Rsi(RsiError::Unknown { .. }))
    ));
    // The RIM is readable through the SDK's client all the same.
    assert_eq!(
        sdk.rsi().measurement_read(0).unwrap(),
        sim.measurement().rim
    );
}
