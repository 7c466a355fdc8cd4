//! Sealing keys on the simulated platform, from the HES's VHUKs through
//! the keys service to the realm: stable for the same realm and vendor
//! across restarts of everything, different for another realm, another
//! vendor, or (with the measurement-bound flags) another firmware or RIM.

use atoll_metadata::{Metadata, RealmId, Rim, Version};
use atoll_realm_description::{BuildPlan, RealmDescription};
use atoll_rmi_client::{RealmBuilder, RmiClient};
use atoll_tests::hes::{Component, HesRoot};
use atoll_tests::procs::{workspace, HesProcess};
use atoll_tests::Sim;
use ipc_schema::islet::{fid as islet_fid, sealing_flags};
use ipc_schema::rmi::{exit_reason, RmiRecEnter, RmiRecExit};
use ipc_schema::rsi::status;
use ipc_schema::service::HashAlgo;
use ipc_schema::smccc::smc_regs;
use p384::ecdsa::SigningKey;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const DRAM: u64 = 0x8000_0000;
const FLAG_SETS: [u64; 4] = [
    0,
    sealing_flags::KEY_M,
    sealing_flags::RIM,
    sealing_flags::REALM_ID | sealing_flags::SVN,
];

/// What one boot of the platform produced: a key per flag set.
type Keys = Vec<[u64; 4]>;

struct Boot<'a> {
    rmm_image: &'a [u8],
    payload_byte: u8,
    vendor: &'a SigningKey,
    realm_id: &'a str,
}

/// Boots the simulated platform against the HES in `dir` (started fresh,
/// so its secrets come from the same provisioning file), builds the example
/// realm (its payload filled with `payload_byte`) with metadata signed by
/// `vendor`, and has the realm derive a key for each of [`FLAG_SETS`].
fn boot(dir: &std::path::Path, b: &Boot<'_>) -> Keys {
    let hes = HesProcess::start(dir);
    let mut root = HesRoot::connect(&hes.socket).unwrap();
    root.measure_boot(&[
        Component {
            kind: "BL2",
            image: b"atoll simulated boot loader",
            signer_id: [0x51; 32],
            version: "1.0.0",
        },
        Component {
            kind: "RMM",
            image: b.rmm_image,
            signer_id: [0x52; 32],
            version: "0.1.0",
        },
    ])
    .unwrap();
    let sim = Sim::new(DRAM, 64 << 20);
    sim.boot_with(Box::new(root)).unwrap();

    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(
        scratch.path().join("payload.bin"),
        vec![b.payload_byte; 8192],
    )
    .unwrap();
    let example =
        std::fs::read_to_string(workspace().join("images/examples/hello-realm.toml")).unwrap();
    let toml = example.replace("hello-realm.bin", "payload.bin");
    let desc: RealmDescription =
        atoll_realm_description::toml::from_str(&toml, scratch.path()).unwrap();
    let plan = BuildPlan::new(&desc).unwrap();
    let rim = atoll_measure::measure(&plan).unwrap();

    // The vendor signs the RIM `atoll measure` predicts; the RMM activates
    // the realm only because its RIM is that one.
    let md = Metadata {
        realm_id: RealmId::new(b.realm_id).unwrap(),
        rim: Rim::new(HashAlgo::Sha256, rim.rim()).unwrap(),
        svn: 3,
        version: Version {
            major: 1,
            minor: 0,
            patch: 0,
        },
    };
    let block = atoll_metadata::sign(&md, b.vendor);
    let mut mem = sim.host_memory(DRAM, 64 << 20);
    let mut rmi = RmiClient::new(sim.clone());
    let built = RealmBuilder::new(&mut rmi, &mut mem)
        .vmid(1)
        .metadata(block)
        .build(&plan)
        .unwrap();
    assert!(built.active && built.metadata.is_some());

    let rec = &built.recs[0];
    sim.rmm().platform_mut().attach_guest(
        rec.rec,
        Box::new(|cpu| {
            let call = 0x4000_1800u64;
            for flags in FLAG_SETS {
                let r = cpu.smc(smc_regs(islet_fid::RSI_REALM_SEALING_KEY, &[flags, 3]));
                assert_eq!(r[0], status::SUCCESS, "sealing key with flags {flags:#x}");
                let mut bytes = [0u8; 256];
                for (i, w) in r[1..5].iter().enumerate() {
                    bytes[8 + 8 * i..16 + 8 * i].copy_from_slice(&w.to_le_bytes());
                }
                cpu.write_bytes(call, &bytes).unwrap();
                cpu.smc(smc_regs(ipc_schema::rsi::fid::HOST_CALL, &[call]));
            }
        }),
    );
    let mut keys = Vec::new();
    loop {
        let mut rmm = sim.rmm();
        rmm.platform_mut()
            .ns_write(rec.run, RmiRecEnter::new_zeroed().as_bytes())
            .unwrap();
        assert_eq!(rmm.rec_enter(rec.rec, rec.run), Ok(()));
        let mut raw = [0u8; 0x800];
        rmm.platform().ns_read(rec.run + 0x800, &mut raw).unwrap();
        let exit = RmiRecExit::read_from_bytes(&raw).unwrap();
        match exit.exit_reason {
            exit_reason::HOST_CALL => keys.push(exit.gprs[..4].try_into().unwrap()),
            exit_reason::PSCI => break,
            other => panic!(
                "exit {other}: {:?}",
                rmm.platform_mut().take_guest_failures()
            ),
        }
    }
    assert!(sim.rmm().platform_mut().take_guest_failures().is_empty());
    assert_eq!(keys.len(), FLAG_SETS.len());
    keys
}

#[test]
fn sealing_keys_follow_realm_vendor_and_firmware() {
    let dir = tempfile::tempdir().unwrap();
    let vendor = SigningKey::from_slice(&[0x77; 48]).unwrap();
    let other_vendor = SigningKey::from_slice(&[0x78; 48]).unwrap();
    let base = Boot {
        rmm_image: b"rmm v1",
        payload_byte: 1,
        vendor: &vendor,
        realm_id: "com.example.app",
    };

    let first = boot(dir.path(), &base);
    // Everything restarted (HES process, RMM, realm): the same keys.
    let again = boot(dir.path(), &base);
    assert_eq!(
        first, again,
        "same realm and vendor -> same keys across restarts"
    );
    let distinct: std::collections::BTreeSet<_> = first.iter().collect();
    assert_eq!(
        distinct.len(),
        FLAG_SETS.len(),
        "each flag set gives its own key"
    );

    // Another vendor: every key differs (the vendor key is always mixed in).
    let other = boot(
        dir.path(),
        &Boot {
            vendor: &other_vendor,
            ..base
        },
    );
    for (a, b) in first.iter().zip(&other) {
        assert_ne!(a, b);
    }

    // Another realm id: only keys that mix the realm id in differ.
    let renamed = boot(
        dir.path(),
        &Boot {
            realm_id: "com.example.other",
            ..base
        },
    );
    assert_eq!(first[0], renamed[0]);
    assert_ne!(first[3], renamed[3]);

    // A new payload (another RIM) from the same vendor: signer-bound keys
    // survive the update, the RIM-bound key does not.
    let updated = boot(
        dir.path(),
        &Boot {
            payload_byte: 2,
            ..base
        },
    );
    assert_eq!(
        first[0], updated[0],
        "VHUK_A key survives an application update"
    );
    assert_ne!(
        first[2], updated[2],
        "the RIM flag binds to the realm's measurement"
    );

    // New RMM firmware signed by the same signer: VHUK_A keys stay, the
    // measurement-bound VHUK_M key changes.
    let firmware = boot(
        dir.path(),
        &Boot {
            rmm_image: b"rmm v2",
            ..base
        },
    );
    assert_eq!(first[0], firmware[0]);
    assert_ne!(first[1], firmware[1]);
}
