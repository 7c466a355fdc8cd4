//! `atoll measure` predicts the RIM the RMM computes: a realm is described,
//! measured by the tool, built through RMI on the simulated RMM by the
//! realm builder, and asked for its RIM from inside (RSI_MEASUREMENT_READ).

use std::path::{Path, PathBuf};

use atoll_realm_description::{BuildPlan, RealmDescription};
use atoll_rmi_client::{RealmBuilder, RmiClient};
use atoll_tests::Sim;
use ipc_schema::rmi::exit_reason;
use ipc_schema::rsi::{fid, status};
use ipc_schema::smccc::smc_regs;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const DRAM: u64 = 0x8000_0000;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../images/examples")
        .join(name)
}

/// Builds `desc` on a fresh simulated machine, runs REC 0 with a guest
/// that reads the RIM and hands it to the host in a host call, and returns
/// (the RIM the realm saw, the RIM `atoll measure` predicts).
fn build_and_read_rim(desc: &RealmDescription, host_call_ipa: u64) -> ([u8; 64], [u8; 64]) {
    let plan = BuildPlan::new(desc).expect("plan");
    let predicted = atoll_measure::measure(&plan).expect("measure");

    let sim = Sim::new(DRAM, 64 << 20);
    let mut mem = sim.host_memory(DRAM, 64 << 20);
    let mut rmi = RmiClient::new(sim.clone());
    let built = RealmBuilder::new(&mut rmi, &mut mem)
        .vmid(1)
        .build(&plan)
        .expect("build");
    assert!(built.active);

    let rec = &built.recs[0];
    sim.rmm().platform_mut().attach_guest(
        rec.rec,
        Box::new(move |cpu| {
            let out = cpu.smc(smc_regs(fid::MEASUREMENT_READ, &[0]));
            assert_eq!(out[0], status::SUCCESS);
            let mut call = [0u8; 256];
            for (i, w) in out[1..9].iter().enumerate() {
                call[8 + 8 * i..16 + 8 * i].copy_from_slice(&w.to_le_bytes());
            }
            cpu.write_bytes(host_call_ipa, &call)
                .expect("host call buffer in realm RAM");
            let r = cpu.smc(smc_regs(fid::HOST_CALL, &[host_call_ipa]));
            assert_eq!(r[0], status::SUCCESS);
        }),
    );
    let enter = ipc_schema::rmi::RmiRecEnter::new_zeroed();
    let mut rmm = sim.rmm();
    rmm.platform_mut()
        .ns_write(rec.run, enter.as_bytes())
        .unwrap();
    assert_eq!(rmm.rec_enter(rec.rec, rec.run), Ok(()));
    let mut raw = [0u8; 0x800];
    rmm.platform().ns_read(rec.run + 0x800, &mut raw).unwrap();
    let exit = ipc_schema::rmi::RmiRecExit::read_from_bytes(&raw).unwrap();
    assert_eq!(
        exit.exit_reason,
        exit_reason::HOST_CALL,
        "guest failures: {:?}",
        rmm.platform_mut().take_guest_failures()
    );
    let mut seen = [0u8; 64];
    for (i, w) in exit.gprs[..8].iter().enumerate() {
        seen[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
    }
    (seen, predicted.rim)
}

#[test]
fn hello_realm_rim_matches_atoll_measure() {
    let desc = RealmDescription::load(&example("hello-realm.toml")).expect("load example");
    // The payload's second page is measured realm RAM the guest may use.
    let (seen, predicted) = build_and_read_rim(&desc, 0x4000_1800);
    assert_eq!(seen, predicted);
    assert_ne!(seen, [0; 64]);
}

#[test]
fn rim_matches_for_sha512_level2_ripas_and_several_images() {
    let dir = std::env::temp_dir().join(format!("atoll-rim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.bin"), vec![0xAB; 3 * 4096 + 17]).unwrap();
    std::fs::write(
        dir.join("b.bin"),
        (0..9000u32).map(|i| i as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let toml = r#"
        [realm]
        ipa_width = 36
        hash_algo = "sha-512"
        rpv = "00112233"
        num_bps = 2
        num_wps = 2
        [memory]
        ripas_level = 2
        ram = [{ base = 0x0, size = "4MiB" }, { base = 0x80_0000, size = "12KiB" }]
        [[image]]
        path = "a.bin"
        ipa = 0x1000
        [[image]]
        path = "b.bin"
        ipa = 0x30_0000
        measured = false
        [[rec]]
        pc = 0x1000
        gprs = [1, 2, 3]
        [[rec]]
        pc = 0x1000
        runnable = false
        [[rec]]
        pc = 0x30_0000
    "#;
    let desc = atoll_realm_description::toml::from_str(toml, &dir).expect("parse");
    let (seen, predicted) = build_and_read_rim(&desc, 0x1800);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(seen, predicted);
}
