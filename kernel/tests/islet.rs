//! Islet's realm metadata and sealing keys through the kernel and the keys
//! service: RMI_ISLET_REALM_SET_METADATA, the activation check,
//! RSI_ISLET_REALM_METADATA and RSI_ISLET_REALM_SEALING_KEY.

mod support;

use std::sync::mpsc;

use atoll_kernel::granule::GranuleState;
use atoll_metadata::{Metadata, RealmId, Rim, Version};
use ipc_schema::islet::{fid as islet_fid, sealing_flags};
use ipc_schema::rmi::RmiReturn;
use ipc_schema::rsi::status;
use ipc_schema::service::HashAlgo;
use ipc_schema::smccc::smc_regs;
use p384::ecdsa::SigningKey;
use rand_core::OsRng;
use support::*;

/// A NEW realm with RAM, a page and a runnable REC (not yet active).
fn new_realm(host: &mut Host) -> (RealmRef, u64) {
    let realm = host.create_realm();
    host.rtts_to(&realm, 0, 3);
    host.init_ripas(&realm, 0, 2 << 20);
    for i in 0..4 {
        host.data(&realm, i * G, &[i as u8 + 1; 4096], true);
    }
    let rec = host.create_rec(&realm, 0, 0x1000, true);
    (realm, rec)
}

fn block(rim: &[u8], key: &SigningKey, svn: u64) -> [u8; 432] {
    let md = Metadata {
        realm_id: RealmId::new("com.example.realm").unwrap(),
        rim: Rim::new(HashAlgo::Sha256, rim).unwrap(),
        svn,
        version: Version {
            major: 1,
            minor: 2,
            patch: 3,
        },
    };
    atoll_metadata::sign(&md, key)
}

fn set_metadata(host: &mut Host, realm: &RealmRef, bytes: &[u8]) -> (Result<(), RmiReturn>, u64) {
    let src = host.alloc();
    host.write(src + 0x100, bytes);
    let granule = host.delegated();
    (
        host.rmm.islet_set_metadata(realm.rd, granule, src + 0x100),
        granule,
    )
}

#[test]
fn metadata_gates_activation_and_reaches_the_realm() {
    let mut host = Host::new();
    host.with_keys(TestRoot::new());
    let (realm, rec) = new_realm(&mut host);
    let vendor = SigningKey::random(&mut OsRng);
    let rim = host.rim(&realm);
    let good = block(&rim[..32], &vendor, 5);

    // A block for another RIM is accepted (its signature is fine) but the
    // realm then cannot be activated; a realm keeps its first block.
    let (r, granule) = set_metadata(&mut host, &realm, &good);
    assert_eq!(r, Ok(()));
    assert_eq!(
        host.rmm.granules().state(granule),
        Some(GranuleState::Metadata)
    );
    let (again, g2) = set_metadata(&mut host, &realm, &good);
    assert_eq!(again, Err(RmiReturn::INPUT), "only once per realm");
    assert_eq!(host.rmm.granules().state(g2), Some(GranuleState::Delegated));
    assert_eq!(host.rmm.realm_activate(realm.rd), Ok(()));
    // Only while NEW.
    let (late, _) = set_metadata(&mut host, &realm, &good);
    assert_eq!(late, Err(RmiReturn::REALM));

    let (tx, rx) = mpsc::channel();
    host.guest(rec, move |cpu| {
        let md = cpu.smc(smc_regs(islet_fid::RSI_REALM_METADATA, &[0x3000]))[0];
        let mut got = [0u8; 432];
        cpu.read_bytes(0x3000, &mut got).unwrap();
        let key = |cpu: &mut atoll_kernel::arch::host::RealmCpu, flags: u64, svn: u64| {
            let r = cpu.smc(smc_regs(islet_fid::RSI_REALM_SEALING_KEY, &[flags, svn]));
            (r[0], [r[1], r[2], r[3], r[4]])
        };
        let results = vec![
            key(cpu, 0, 0),
            key(cpu, 0, 0),
            key(cpu, sealing_flags::KEY_M, 0),
            key(cpu, sealing_flags::RIM | sealing_flags::REALM_ID, 0),
            key(cpu, sealing_flags::SVN, 5),
            key(cpu, sealing_flags::SVN, 4),
            key(cpu, sealing_flags::SVN, 6),
            key(cpu, 1 << 7, 0),
        ];
        tx.send((md, got.to_vec(), results)).unwrap();
    });
    let run = host.alloc();
    let (res, _) = host.enter(rec, run);
    assert_eq!(res, Ok(()));
    host.assert_guests_ok();
    let (md, got, keys) = rx.recv().unwrap();
    assert_eq!(md, status::SUCCESS);
    assert_eq!(got, good.to_vec(), "the realm reads back its signed block");
    assert!(keys[..6]
        .iter()
        .all(|(st, k)| *st == status::SUCCESS && *k != [0; 4]));
    assert_eq!(keys[0], keys[1], "same inputs, same key");
    let distinct: std::collections::BTreeSet<_> = keys[1..6].iter().map(|(_, k)| *k).collect();
    assert_eq!(distinct.len(), 5, "each flag set gives another key");
    assert_ne!(keys[4].1, keys[5].1, "the SVN is mixed in");
    assert_eq!(keys[6].0, status::ERROR_INPUT, "SVN above the metadata's");
    assert_eq!(keys[7].0, status::ERROR_INPUT, "undefined flag");
}

#[test]
fn a_rim_mismatch_keeps_the_realm_new() {
    let mut host = Host::new();
    host.with_keys(TestRoot::new());
    let (realm, _) = new_realm(&mut host);
    let vendor = SigningKey::random(&mut OsRng);
    let (r, _) = set_metadata(&mut host, &realm, &block(&[0xAB; 32], &vendor, 1));
    assert_eq!(r, Ok(()));
    assert_eq!(host.rmm.realm_activate(realm.rd), Err(RmiReturn::REALM));
    assert_eq!(
        host.rmm.realm(realm.rd).unwrap().state,
        atoll_kernel::realm::RealmState::New
    );
}

#[test]
fn bad_blocks_are_refused_and_nothing_is_kept() {
    let mut host = Host::new();
    host.with_keys(TestRoot::new());
    let (realm, _) = new_realm(&mut host);
    let vendor = SigningKey::random(&mut OsRng);
    let rim = host.rim(&realm);
    let mut tampered = block(&rim[..32], &vendor, 1);
    tampered[0xD0] ^= 1; // the SVN, under the signature
    let (r, granule) = set_metadata(&mut host, &realm, &tampered);
    assert_eq!(r, Err(RmiReturn::INPUT));
    assert_eq!(
        host.rmm.granules().state(granule),
        Some(GranuleState::Delegated)
    );
    assert!(host.rmm.realm(realm.rd).unwrap().metadata.is_none());
    // A block straddling two granules, or in realm memory.
    let src = host.alloc();
    let granule = host.delegated();
    assert_eq!(
        host.rmm.islet_set_metadata(realm.rd, granule, src + 0xF00),
        Err(RmiReturn::INPUT)
    );
    let realm_pa = host.delegated();
    assert_eq!(
        host.rmm.islet_set_metadata(realm.rd, granule, realm_pa),
        Err(RmiReturn::INPUT)
    );
    // Still no metadata: activation needs no check.
    assert_eq!(host.rmm.realm_activate(realm.rd), Ok(()));
}

#[test]
fn realm_destroy_returns_the_metadata_granule() {
    let mut host = Host::new();
    host.with_keys(TestRoot::new());
    let realm = host.create_realm();
    let vendor = SigningKey::random(&mut OsRng);
    let rim = host.rim(&realm);
    let (r, granule) = set_metadata(&mut host, &realm, &block(&rim[..32], &vendor, 1));
    assert_eq!(r, Ok(()));
    assert_eq!(host.rmm.realm_destroy(realm.rd), Ok(()));
    assert_eq!(
        host.rmm.granules().state(granule),
        Some(GranuleState::Delegated)
    );
    assert!(host.raw_read(granule).iter().all(|&b| b == 0), "scrubbed");
}
