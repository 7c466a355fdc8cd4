//! The RIM of a small realm, computed by hand from the specification's
//! byte layouts and compared with what the plan replay produces.

use atoll_realm_description::{
    HashAlgo, Image, MemoryConfig, RamRegion, RealmConfig, RealmDescription, RecConfig,
};
use sha2::{Digest, Sha256, Sha512};

use super::*;

fn desc(algo: HashAlgo, ripas_level: i8) -> RealmDescription {
    let mut rpv = [0u8; 64];
    rpv[0] = 0xee;
    RealmDescription {
        realm: RealmConfig {
            name: None,
            ipa_width: 36,
            hash_algo: algo,
            rpv,
            lpa2: false,
            sve_vl: None,
            num_bps: 2,
            num_wps: 3,
            pmu_counters: Some(4),
            vmid: None,
        },
        memory: MemoryConfig {
            ram: vec![RamRegion {
                base: 0x20_0000,
                size: 0x40_0000,
            }],
            ripas_level,
        },
        images: vec![
            Image {
                name: "code".into(),
                ipa: 0x20_0000,
                data: (0..5000u32).map(|i| i as u8).collect(),
                measured: true,
            },
            Image {
                name: "data".into(),
                ipa: 0x30_0000,
                data: vec![9; 10],
                measured: false,
            },
        ],
        recs: vec![
            RecConfig {
                pc: 0x20_0000,
                gprs: vec![7],
                runnable: true,
            },
            RecConfig {
                pc: 0,
                gprs: vec![],
                runnable: false,
            },
        ],
    }
}

fn h(algo: HashAlgo, data: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    match algo {
        HashAlgo::Sha256 => out[..32].copy_from_slice(&Sha256::digest(data)),
        HashAlgo::Sha512 => out.copy_from_slice(&Sha512::digest(data)),
    }
    out
}

fn desc_header(ty: u8, rim: &[u8; 64]) -> Vec<u8> {
    let mut d = vec![0u8; 0x100];
    d[0] = ty;
    d[8..16].copy_from_slice(&0x100u64.to_le_bytes());
    d[0x10..0x50].copy_from_slice(rim);
    d
}

fn by_hand(algo: HashAlgo, ripas_level: i8) -> [u8; 64] {
    let mut params = vec![0u8; 4096];
    params[0..8].copy_from_slice(&4u64.to_le_bytes()); // PMU flag
    params[8..16].copy_from_slice(&36u64.to_le_bytes());
    params[0x18..0x20].copy_from_slice(&2u64.to_le_bytes());
    params[0x20..0x28].copy_from_slice(&3u64.to_le_bytes());
    params[0x28..0x30].copy_from_slice(&4u64.to_le_bytes());
    params[0x30] = algo.to_rmi();
    let mut rim = h(algo, &params);

    let entry = if ripas_level == 3 {
        0x1000u64
    } else {
        0x20_0000
    };
    let mut base = 0x20_0000u64;
    while base < 0x60_0000 {
        let mut d = desc_header(2, &rim);
        d[0x50..0x58].copy_from_slice(&base.to_le_bytes());
        d[0x58..0x60].copy_from_slice(&(base + entry).to_le_bytes());
        rim = h(algo, &d);
        base += entry;
    }

    let code: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    for (i, chunk) in code.chunks(4096).enumerate() {
        let mut page = chunk.to_vec();
        page.resize(4096, 0);
        let mut d = desc_header(0, &rim);
        d[0x50..0x58].copy_from_slice(&(0x20_0000 + 0x1000 * i as u64).to_le_bytes());
        d[0x58..0x60].copy_from_slice(&1u64.to_le_bytes());
        d[0x60..0xa0].copy_from_slice(&h(algo, &page));
        rim = h(algo, &d);
    }
    let mut d = desc_header(0, &rim);
    d[0x50..0x58].copy_from_slice(&0x30_0000u64.to_le_bytes());
    rim = h(algo, &d);

    let mut rec = vec![0u8; 4096];
    rec[0..8].copy_from_slice(&1u64.to_le_bytes());
    rec[0x200..0x208].copy_from_slice(&0x20_0000u64.to_le_bytes());
    rec[0x300..0x308].copy_from_slice(&7u64.to_le_bytes());
    let mut d = desc_header(1, &rim);
    d[0x50..0x90].copy_from_slice(&h(algo, &rec));
    h(algo, &d)
}

#[test]
fn rim_matches_hand_computation() {
    for algo in [HashAlgo::Sha256, HashAlgo::Sha512] {
        for level in [2, 3] {
            let plan = BuildPlan::new(&desc(algo, level)).unwrap();
            let m = measure(&plan).unwrap();
            assert_eq!(m.algo, algo);
            assert_eq!(m.rim, by_hand(algo, level), "{algo:?} ripas_level {level}");
            assert_eq!(m.rim().len(), algo.digest_len());
        }
    }
}

#[test]
fn ripas_level_and_rpv_effects() {
    let d2 = desc(HashAlgo::Sha256, 2);
    let d3 = desc(HashAlgo::Sha256, 3);
    let m2 = measure(&BuildPlan::new(&d2).unwrap()).unwrap();
    let m3 = measure(&BuildPlan::new(&d3).unwrap()).unwrap();
    assert_ne!(m2, m3, "the RTT depth at INIT_RIPAS is measured");

    let mut other_rpv = d2.clone();
    other_rpv.realm.rpv = [1; 64];
    other_rpv.realm.vmid = Some(3);
    let m = measure(&BuildPlan::new(&other_rpv).unwrap()).unwrap();
    assert_eq!(m, m2, "RPV and VMID are not measured");

    let mut unmeasured = d2.clone();
    unmeasured.images[0].measured = false;
    assert_ne!(measure(&BuildPlan::new(&unmeasured).unwrap()).unwrap(), m2);
}

#[test]
fn reference_values_shape() {
    let plan = BuildPlan::new(&desc(HashAlgo::Sha512, 3)).unwrap();
    let m = measure(&plan).unwrap();
    let v = reference_values(&plan, &m);
    let realm = &v["realm"][0];
    assert_eq!(
        realm["initial-measurement"],
        hex::encode(&by_hand(HashAlgo::Sha512, 3)[..])
    );
    let mut rpv = vec![0u8; 64];
    rpv[0] = 0xee;
    assert_eq!(realm["personalization-value"], hex::encode(rpv));
    assert_eq!(realm["rak-hash-algorithm"], "sha-256");
    assert_eq!(realm["hash-algorithm"], "sha-512");
    assert_eq!(v["realm"].as_array().unwrap().len(), 1);

    let plan = BuildPlan::new(&desc(HashAlgo::Sha256, 3)).unwrap();
    let m = measure(&plan).unwrap();
    let hexrim = reference_values(&plan, &m)["realm"][0]["initial-measurement"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(hexrim.len(), 64, "SHA-256 RIMs are reported unpadded");
}
