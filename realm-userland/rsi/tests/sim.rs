//! The RSI client against the simulated platform: the example realm is
//! built on the simulated RMM (in-process `atoll-sim` on its own thread),
//! and every call goes over the vCPU socket to REC 0, where the RMM answers
//! it as it would a realm on hardware. Attestation and sealing are checked
//! on a platform booted against an `atoll-hes` process, and (their
//! specified failure) on one without a root of trust.

use std::path::{Path, PathBuf};

use atoll_cca_token::{CcaToken, PlatformKey};
use atoll_realm_description::{BuildPlan, RealmDescription};
use atoll_rsi_client::sim::{SimBackend, SimError};
use atoll_rsi_client::{sealing_flags, HashAlgorithm, Ripas, RsiClient, RsiError};
use atoll_sim::hes::{HesRoot, SimulatedFirmware};
use atoll_sim::procs::HesProcess;
use atoll_sim::Background;
use ipc_schema::rsi;
use ipc_schema::smccc::{SMCCC_VERSION, SMCCC_VERSION_1_2};
use p384::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};

const RAM_BASE: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 0x20_0000;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/examples/hello-realm.toml")
}

struct Fixture {
    sim: Background,
    // Dropped after the simulator (fields drop in order).
    hes: Option<HesProcess>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// The example realm on a platform without a root of trust.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let desc = RealmDescription::load(&example()).unwrap();
        let sim = Background::start(desc, dir.path().join("realm.sock")).unwrap();
        Self {
            sim,
            hes: None,
            _dir: dir,
        }
    }

    /// The example realm on a platform booted against a fresh `atoll-hes`
    /// process.
    fn with_hes() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let hes = HesProcess::start(dir.path());
        let desc = RealmDescription::load(&example()).unwrap();
        let sim = Background::start_with(
            desc,
            dir.path().join("realm.sock"),
            Some(hes.socket.clone()),
        )
        .unwrap();
        Self {
            sim,
            hes: Some(hes),
            _dir: dir,
        }
    }

    fn client(&self) -> RsiClient<SimBackend> {
        RsiClient::new(SimBackend::connect(self.sim.socket()).unwrap())
    }
}

#[test]
fn hello_describes_rec0_and_ram() {
    let f = Fixture::new();
    let c = f.client();
    let info = c.backend().info();
    // The example's REC 0: pc and x0/x1 from the description.
    assert_eq!(info.pc, RAM_BASE);
    assert_eq!(info.entry_gprs[..2], [RAM_BASE, RAM_SIZE]);
    assert_eq!(info.ipa_width, 40);
    let ram: Vec<_> = info.ram_regions().map(|r| (r.base, r.size)).collect();
    assert_eq!(ram, [(RAM_BASE, RAM_SIZE)]);
    assert_eq!(c.backend().buffer_ipa(), RAM_BASE + RAM_SIZE - 0x1000);
}

use atoll_rsi_client::RsiBackend as _;

#[test]
fn version_features_and_smccc() {
    let f = Fixture::new();
    let mut c = f.client();
    let v = c.version().unwrap();
    assert_eq!((v.lower, v.higher), (rsi::VERSION_1_0, rsi::VERSION_1_0));
    assert_eq!(c.features(0).unwrap(), 0);
    let out = c.raw_call(SMCCC_VERSION, &[]).unwrap();
    assert_eq!(out[0], SMCCC_VERSION_1_2);
}

#[test]
fn rim_matches_prediction_and_rems_extend() {
    let f = Fixture::new();
    let mut c = f.client();
    let predicted = f.sim.measurement().rim;
    assert_eq!(c.measurement_read(0).unwrap(), predicted);

    assert_eq!(c.measurement_read(1).unwrap(), [0; 64]);
    c.measurement_extend(1, b"hello").unwrap();
    let expected: [u8; 32] = Sha256::new()
        .chain_update([0u8; 32])
        .chain_update(b"hello")
        .finalize()
        .into();
    let rem = c.measurement_read(1).unwrap();
    assert_eq!(rem[..32], expected);
    assert_eq!(rem[32..], [0; 32]);
    // The RIM cannot be extended; slots stop at 4.
    assert!(matches!(
        c.measurement_extend(0, b"x"),
        Err(RsiError::Input { .. })
    ));
    assert!(matches!(c.measurement_read(5), Err(RsiError::Input { .. })));
    assert!(matches!(
        c.measurement_extend(1, &[0; 65]),
        Err(RsiError::InvalidArgument(_))
    ));
}

#[test]
fn state_survives_reconnection() {
    let f = Fixture::new();
    let mut c = f.client();
    c.measurement_extend(2, &[7; 64]).unwrap();
    let rem = c.measurement_read(2).unwrap();
    drop(c);
    let mut again = f.client();
    assert_eq!(again.measurement_read(2).unwrap(), rem);
    assert_ne!(rem, [0; 64]);
}

#[test]
fn realm_config() {
    let f = Fixture::new();
    let mut c = f.client();
    let cfg = c.realm_config().unwrap();
    assert_eq!(cfg.ipa_width, 40);
    assert_eq!(cfg.hash_algo, HashAlgorithm::Sha256);
    let mut rpv = [0u8; 64];
    rpv[..11].copy_from_slice(b"hello-realm");
    assert_eq!(cfg.rpv, rpv);
}

#[test]
fn ipa_state_get_and_set() {
    let f = Fixture::new();
    let mut c = f.client();
    let s = c.ipa_state_get(RAM_BASE, RAM_BASE + RAM_SIZE).unwrap();
    assert_eq!((s.top, s.ripas), (RAM_BASE + RAM_SIZE, Ripas::Ram));
    let s = c.ipa_state_get(0, 0x1000).unwrap();
    assert_eq!((s.top, s.ripas), (0x1000, Ripas::Empty));

    // Give the middle of RAM back (the host accepts), then take it again.
    let (base, top) = (RAM_BASE + 0x10_0000, RAM_BASE + 0x10_4000);
    let ch = c.ipa_state_set(base, top, Ripas::Empty, false).unwrap();
    assert_eq!((ch.top, ch.accepted), (top, true));
    let s = c.ipa_state_get(base, top).unwrap();
    assert_eq!((s.top, s.ripas), (top, Ripas::Empty));
    // An access to RIPAS EMPTY memory is a synchronous external abort.
    assert!(matches!(
        c.backend_mut().load(base, 8),
        Err(SimError::Sea { ipa }) if ipa == base
    ));
    let ch = c.ipa_state_set(base, top, Ripas::Ram, false).unwrap();
    assert_eq!((ch.top, ch.accepted), (top, true));
    assert_eq!(c.ipa_state_get(base, top).unwrap().ripas, Ripas::Ram);
    // Misaligned: refused by the RMM.
    assert!(matches!(
        c.ipa_state_set(base + 1, top, Ripas::Ram, false),
        Err(RsiError::Input { .. })
    ));
}

#[test]
fn memory_access_populates_ram_and_emulates_mmio() {
    let f = Fixture::new();
    let mut c = f.client();
    let b = c.backend_mut();
    // Untouched RAM: populated by the host on first access, zeroed.
    let ipa = RAM_BASE + 0x8_0000;
    assert_eq!(b.load(ipa, 8).unwrap(), 0);
    b.store(ipa + 3, 1, 0xAB).unwrap();
    assert_eq!(b.load(ipa, 4).unwrap(), 0xAB00_0000);
    // Bulk access across a granule boundary at an odd address.
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    b.write(ipa + 0xFFD, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    b.read(ipa + 0xFFD, &mut back).unwrap();
    assert_eq!(back, data);
    // The measured image is there at the RAM base.
    let image = std::fs::read(example().with_file_name("hello-realm.bin")).unwrap();
    let mut head = vec![0u8; image.len().min(64)];
    b.read(RAM_BASE, &mut head).unwrap();
    assert_eq!(head, image[..head.len()]);
    // Unaligned single access: the architecture faults it.
    assert!(matches!(b.load(ipa + 1, 8), Err(SimError::Sea { .. })));
    // Unprotected IPA with nothing mapped: emulated MMIO reads 0.
    assert_eq!(b.load((1 << 39) + 0x1000, 4).unwrap(), 0);
    b.store((1 << 39) + 0x1000, 4, 0x1234).unwrap();
    // Beyond the IPA space: SEA.
    assert!(matches!(b.load(1 << 40, 8), Err(SimError::Sea { .. })));
}

#[test]
fn console_host_call() {
    let f = Fixture::new();
    let mut c = f.client();
    let text: Vec<u8> = b"hello from the realm\n"
        .iter()
        .copied()
        .cycle()
        .take(700)
        .collect();
    assert_eq!(c.console_write(&text).unwrap(), 700);
    assert_eq!(f.sim.console(), text);
    // Any other immediate: the host says it does not know it.
    let out = c.host_call(0x7777, &[1; 31]).unwrap();
    assert_eq!(out[0], u64::MAX);
    // A host-call structure outside realm memory is refused. (One realm
    // process at a time: the next is served once this one hangs up.)
    drop(c);
    let mut bad = RsiClient::new(
        SimBackend::connect(f.sim.socket())
            .unwrap()
            .with_buffer_ipa(0x1000)
            .unwrap(),
    );
    assert!(matches!(
        bad.host_call(1, &[0; 31]),
        Err(RsiError::Backend(SimError::Sea { .. }))
    ));
}

/// With the HES as root of trust: the token comes back complete and
/// verifies against the HES's CPAK (as the HES itself reports it), with
/// the realm's challenge, the RIM `atoll measure` predicts, and the
/// simulated boot chain as platform software components.
#[test]
fn attestation_token_verifies_against_the_hes_cpak() {
    let f = Fixture::with_hes();
    let hes = f.hes.as_ref().unwrap();
    let cpak_point = HesRoot::connect(&hes.socket)
        .unwrap()
        .cpak_public_key()
        .unwrap();
    assert_eq!(f.sim.cpak(), Some(&cpak_point));
    let cpak = PlatformKey::from(VerifyingKey::from_sec1_bytes(&cpak_point).unwrap());

    let mut c = f.client();
    let challenge: [u8; 64] = core::array::from_fn(|i| i as u8 ^ 0x5A);
    let token = c.attestation_token_vec(&challenge).unwrap();
    let decoded = CcaToken::decode(&token).unwrap();
    decoded.verify(&cpak).expect("verifies against the CPAK");
    assert_eq!(decoded.realm.claims.challenge, challenge);
    let desc = RealmDescription::load(&example()).unwrap();
    let predicted = atoll_measure::measure(&BuildPlan::new(&desc).unwrap()).unwrap();
    assert_eq!(decoded.realm.claims.rim, predicted.rim());
    let sw: Vec<_> = decoded
        .platform
        .claims
        .sw_components
        .iter()
        .map(|c| (c.component_type.clone(), c.measurement.clone()))
        .collect();
    let firmware = SimulatedFirmware::of_this_executable().unwrap();
    assert_eq!(sw.len(), 2, "{sw:?}");
    assert_eq!(
        sw[0],
        (Some("BL2".to_string()), firmware.bl2_measurement().to_vec())
    );
    assert_eq!(sw[1].0.as_deref(), Some("RMM"));

    // Another challenge, another token; a flipped byte does not verify;
    // another platform's key does not verify.
    let other = c.attestation_token_vec(&[0xA5; 64]).unwrap();
    let other = CcaToken::decode(&other).unwrap();
    other.verify(&cpak).unwrap();
    assert_eq!(other.realm.claims.challenge, [0xA5; 64]);
    let mut bad = token.clone();
    let n = bad.len();
    bad[n - 10] ^= 1;
    let tampered = CcaToken::decode(&bad).map(|t| t.verify(&cpak).is_ok());
    assert!(!matches!(tampered, Ok(true)), "a tampered token verified");
    let stranger = p384::ecdsa::SigningKey::from_slice(&[0x33; 48]).unwrap();
    let stranger = PlatformKey::from(*stranger.verifying_key());
    assert!(decoded.verify(&stranger).is_err());
}

/// Without a root of trust (no HES): INIT answers `RSI_ERROR_UNKNOWN`, as
/// the RMM specifies for a platform that has no attestation key.
#[test]
fn attestation_token_without_a_root_of_trust() {
    let f = Fixture::new();
    assert_eq!(f.sim.cpak(), None);
    let mut c = f.client();
    let challenge = [0x5A; 64];
    assert!(matches!(
        c.attestation_token_vec(&challenge),
        Err(RsiError::Unknown {
            command: "RSI_ATTESTATION_TOKEN_INIT"
        })
    ));
    // CONTINUE without a successful INIT: the specified state error.
    let out = c
        .raw_call(
            rsi::fid::ATTEST_TOKEN_CONTINUE,
            &[c.backend().buffer_ipa(), 0, 4096],
        )
        .unwrap();
    assert_eq!(out[0], rsi::status::ERROR_STATE);
}

/// With the HES: sealing keys are stable, differ between VHUK_A and VHUK_M
/// keys, and (the example realm has no vendor metadata, so its binary is
/// its identity) the RIM is always mixed in: no flags and `RIM` give the
/// same key, while `REALM_ID`/`SVN` need metadata (a state error, as does
/// RSI_ISLET_REALM_METADATA).
#[test]
fn islet_calls_with_the_hes() {
    let f = Fixture::with_hes();
    let mut c = f.client();
    let rim = c.sealing_key(sealing_flags::RIM, 0).unwrap();
    assert_ne!(rim.0, [0; 32]);
    assert_eq!(c.sealing_key(sealing_flags::RIM, 0).unwrap().0, rim.0);
    assert_eq!(c.sealing_key(0, 0).unwrap().0, rim.0);
    let m = c
        .sealing_key(sealing_flags::KEY_M | sealing_flags::RIM, 0)
        .unwrap();
    assert_ne!(m.0, rim.0);
    assert_eq!(c.sealing_key(sealing_flags::KEY_M, 0).unwrap().0, m.0);
    for flags in [sealing_flags::REALM_ID, sealing_flags::SVN] {
        assert!(matches!(
            c.sealing_key(flags, 1),
            Err(RsiError::State {
                command: "RSI_ISLET_REALM_SEALING_KEY"
            })
        ));
    }
    assert!(matches!(
        c.realm_metadata(),
        Err(RsiError::State {
            command: "RSI_ISLET_REALM_METADATA"
        })
    ));
    assert!(matches!(
        c.sealing_key(1 << 9, 0),
        Err(RsiError::InvalidArgument(_))
    ));
}

/// Without a root of trust the RMM has no VHUKs and cannot derive a key
/// (`RSI_ERROR_UNKNOWN`). The example realm has no vendor metadata, so
/// RSI_ISLET_REALM_METADATA is a state error whatever the platform has.
#[test]
fn islet_calls_without_a_root_of_trust() {
    let f = Fixture::new();
    let mut c = f.client();
    assert!(matches!(
        c.sealing_key(sealing_flags::RIM, 0),
        Err(RsiError::Unknown {
            command: "RSI_ISLET_REALM_SEALING_KEY"
        })
    ));
    assert!(matches!(
        c.realm_metadata(),
        Err(RsiError::State {
            command: "RSI_ISLET_REALM_METADATA"
        })
    ));
    // Undefined flags never reach the RMM.
    assert!(matches!(
        c.sealing_key(1 << 9, 0),
        Err(RsiError::InvalidArgument(_))
    ));
}

#[test]
fn a_second_process_waits_for_the_first() {
    let f = Fixture::new();
    let mut first = f.client();
    first.measurement_extend(3, b"first").unwrap();
    let socket = f.sim.socket().to_path_buf();
    let second = std::thread::spawn(move || {
        let mut c = RsiClient::new(SimBackend::connect(&socket).unwrap());
        c.measurement_read(3).unwrap()
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    let rem = first.measurement_read(3).unwrap();
    drop(first);
    assert_eq!(second.join().unwrap(), rem);
}
