//! The whole attestation chain in simulation: a separate `atoll-hes`
//! process measures the boot and derives the keys, the RMM gets its RAK and
//! platform token from it, a realm built from a description asks for a
//! token through RSI, and the token verifies with `atoll token verify`
//! and with the independent Python verifier, against the HES's CPAK.

use std::process::Command;

use atoll_cca_token::{CcaToken, PlatformKey};
use atoll_realm_description::{BuildPlan, RealmDescription};
use atoll_rmi_client::{RealmBuilder, RmiClient};
use atoll_tests::hes::{Component, HesRoot};
use atoll_tests::procs::{binary, workspace, HesProcess};
use atoll_tests::Sim;
use ipc_schema::rmi::{exit_reason, RmiRecEnter, RmiRecExit};
use ipc_schema::rsi::{fid, status};
use ipc_schema::smccc::smc_regs;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const DRAM: u64 = 0x8000_0000;

fn jwk(point: &[u8; 97]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        r#"{{"kty":"EC","crv":"P-384","x":"{}","y":"{}"}}"#,
        b64.encode(&point[1..49]),
        b64.encode(&point[49..97])
    )
}

#[test]
fn a_realm_token_from_the_simulated_platform_verifies_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let hes = HesProcess::start(dir.path());
    let socket = hes.socket.clone();

    // The root monitor measures the boot chain into the HES, then the RMM
    // boots against it.
    let mut root = HesRoot::connect(&socket).unwrap();
    let chain = [
        Component {
            kind: "BL2",
            image: b"atoll simulated boot loader",
            signer_id: [0x51; 32],
            version: "1.0.0",
        },
        Component {
            kind: "RMM",
            image: b"atoll rmm (simulation)",
            signer_id: [0x52; 32],
            version: "0.1.0",
        },
    ];
    root.measure_boot(&chain).unwrap();
    let cpak_point = root.cpak_public_key().unwrap();
    let sim = Sim::new(DRAM, 64 << 20);
    sim.boot_with(Box::new(root))
        .expect("RMM boot against the HES");

    // A realm from the example description.
    let desc =
        RealmDescription::load(&workspace().join("images/examples/hello-realm.toml")).unwrap();
    let plan = BuildPlan::new(&desc).unwrap();
    let predicted = atoll_measure::measure(&plan).unwrap();
    let mut mem = sim.host_memory(DRAM, 64 << 20);
    let mut rmi = RmiClient::new(sim.clone());
    let built = RealmBuilder::new(&mut rmi, &mut mem)
        .vmid(1)
        .build(&plan)
        .unwrap();
    let rec = &built.recs[0];

    // The guest asks for a token into a page of its own RAM and hands it
    // to the host through host calls, 31 registers at a time.
    let challenge: [u64; 8] = core::array::from_fn(|i| 0xC0FFEE00 + i as u64);
    let buf = 0x4000_1000u64;
    sim.rmm().platform_mut().attach_guest(
        rec.rec,
        Box::new(move |cpu| {
            let init = cpu.smc(smc_regs(fid::ATTEST_TOKEN_INIT, &challenge));
            assert_eq!(init[0], status::SUCCESS);
            let mut token = Vec::new();
            loop {
                let r = cpu.smc(smc_regs(fid::ATTEST_TOKEN_CONTINUE, &[buf, 0, 4096]));
                let mut chunk = vec![0u8; r[1] as usize];
                cpu.read_bytes(buf, &mut chunk).unwrap();
                token.extend_from_slice(&chunk);
                if r[0] == status::SUCCESS {
                    break;
                }
                assert_eq!(r[0], status::INCOMPLETE);
            }
            assert_eq!(token.len() as u64, init[1]);
            let call = 0x4000_1800u64;
            for words in token.chunks(30 * 8) {
                let mut bytes = [0u8; 256];
                bytes[8..16].copy_from_slice(&(words.len() as u64).to_le_bytes());
                bytes[16..16 + words.len()].copy_from_slice(words);
                cpu.write_bytes(call, &bytes).unwrap();
                cpu.smc(smc_regs(fid::HOST_CALL, &[call]));
            }
        }),
    );
    let run = rec.run;
    let mut token = Vec::new();
    let enter = RmiRecEnter::new_zeroed();
    loop {
        let mut rmm = sim.rmm();
        rmm.platform_mut().ns_write(run, enter.as_bytes()).unwrap();
        assert_eq!(rmm.rec_enter(rec.rec, run), Ok(()));
        let mut raw = [0u8; 0x800];
        rmm.platform().ns_read(run + 0x800, &mut raw).unwrap();
        let exit = RmiRecExit::read_from_bytes(&raw).unwrap();
        match exit.exit_reason {
            exit_reason::HOST_CALL => {
                let len = exit.gprs[0] as usize;
                let bytes: Vec<u8> = exit.gprs[1..]
                    .iter()
                    .flat_map(|w| w.to_le_bytes())
                    .collect();
                token.extend_from_slice(&bytes[..len]);
            }
            exit_reason::PSCI => break,
            other => panic!(
                "unexpected exit {other}: {:?}",
                rmm.platform_mut().take_guest_failures()
            ),
        }
    }
    assert!(sim.rmm().platform_mut().take_guest_failures().is_empty());

    // Our verifier: both signatures, the binding, and the claims.
    let cpak = PlatformKey::P384(p384::ecdsa::VerifyingKey::from_sec1_bytes(&cpak_point).unwrap());
    let decoded = CcaToken::decode(&token).unwrap();
    decoded
        .verify(&cpak)
        .expect("verifies against the HES's CPAK");
    assert_eq!(
        decoded.realm.claims.rim,
        predicted.rim[..32].to_vec(),
        "the token's RIM is atoll measure's"
    );
    let components: Vec<_> = decoded
        .platform
        .claims
        .sw_components
        .iter()
        .map(|c| c.component_type.clone())
        .collect();
    assert_eq!(
        components,
        [Some("BL2".to_string()), Some("RMM".to_string())]
    );

    let token_file = dir.path().join("token.cbor");
    let jwk_file = dir.path().join("cpak.jwk");
    std::fs::write(&token_file, &token).unwrap();
    std::fs::write(&jwk_file, jwk(&cpak_point)).unwrap();

    // The CLI a relying party runs.
    let out = Command::new(binary("atoll-cli", "atoll"))
        .args(["token", "verify"])
        .arg(&token_file)
        .arg("--cpak")
        .arg(&jwk_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "atoll token verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // An independent implementation (cbor2 + cryptography).
    let script = workspace().join("tests/python/verify_cca_token.py");
    let have = Command::new("python3")
        .args(["-c", "import cbor2, cryptography"])
        .status()
        .expect("python3 is required");
    if !have.success() {
        let req = workspace().join("tests/python/requirements.txt");
        let st = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "-r"])
            .arg(req)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "installing the Python verifier's dependencies"
        );
    }
    let out = Command::new("python3")
        .arg(&script)
        .arg(&token_file)
        .arg(&jwk_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python verifier: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // And a tampered token fails both.
    let mut bad = token.clone();
    let last = bad.len() - 10;
    bad[last] ^= 0x01;
    std::fs::write(&token_file, &bad).unwrap();
    let cli = Command::new(binary("atoll-cli", "atoll"))
        .args(["token", "verify"])
        .arg(&token_file)
        .arg("--cpak")
        .arg(&jwk_file)
        .output()
        .unwrap();
    assert!(!cli.status.success());
    let py = Command::new("python3")
        .arg(&script)
        .arg(&token_file)
        .arg(&jwk_file)
        .output()
        .unwrap();
    assert!(!py.status.success());
}
