//! Seed inputs: valid encoded messages, frames, structures and whole
//! conversations, in the input format of each target, so the fuzzer starts
//! from bytes the decoders accept and mutates from there.

use ipc_schema::hes::{
    encode_frame, encode_message, EccCurve, FrameKind as HesKind, HesError, HesHashAlgo,
    HesRequest, HesResponse, SlotState, TokenChunk, VhukId,
};
use ipc_schema::rmi::{self, RmiRecEnter, RmiRecParams};
use ipc_schema::service::attestation::{
    AttestationError, AttestationRequest, AttestationResponse, RealmClaimsInput, RecHandle,
};
use ipc_schema::service::keys::{KeysError, KeysRequest, KeysResponse, MetadataFault};
use ipc_schema::service::measurement::{
    MeasuredRealmParams, MeasuredRecParams, MeasurementError, MeasurementRequest,
    MeasurementResponse,
};
use ipc_schema::service::{HashAlgo, Lease, RealmHandle};
use ipc_schema::simvcpu::{
    self, AccessSize, MemRegion, VcpuError, VcpuInfo, VcpuRequest, VcpuResponse,
};
use ipc_schema::smccc::smc_regs;
use ipc_schema::wire::{BoundedBytes, Bytes};
use zerocopy::{FromZeros, IntoBytes};

use crate::kernel::Host;
use crate::{encode, encode_messages, fixtures, LeaseKind, LeaseSpec};

/// Every target's seeds, by target name.
pub fn all() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let seeds = vec![
        ("measurement_request", each(&measurement_requests())),
        ("measurement_response", each(&measurement_responses())),
        ("attestation_request", each(&attestation_requests())),
        ("attestation_response", each(&attestation_responses())),
        ("keys_request", each(&keys_requests())),
        ("keys_response", each(&keys_responses())),
        ("hes_request", each(&hes_requests())),
        ("hes_response", each(&hes_responses())),
        ("vcpu_request", each(&vcpu_requests())),
        ("vcpu_response", each(&vcpu_responses())),
        ("rmi_realm_params", realm_params()),
        ("rmi_rec_params", rec_params()),
        ("rmi_rec_run", rec_run()),
        ("rsi_realm_config", realm_config()),
        ("rsi_host_call", host_call()),
        ("realm_metadata", vec![fixtures::metadata_block().to_vec()]),
        ("boot_manifest", boot_manifest()),
        ("hes_frame", hes_frames()),
        ("vcpu_frame", vcpu_frames()),
        ("measurement_service", measurement_conversations()),
        ("attestation_service", attestation_conversations()),
        ("keys_service", keys_conversations()),
        ("hes_handle_frame", hes_conversations()),
        ("hes_link_client", hes_link_streams()),
    ];
    debug_assert_eq!(
        seeds.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        crate::TARGETS
    );
    seeds
}

fn each<T: serde::Serialize>(msgs: &[T]) -> Vec<Vec<u8>> {
    msgs.iter().map(encode).collect()
}

const REALM: RealmHandle = RealmHandle(0x8000_4000);
const REC: RecHandle = RecHandle(0x8000_9000);

fn measured_realm_params() -> MeasuredRealmParams {
    MeasuredRealmParams {
        flags: 0,
        s2sz: 40,
        sve_vl: 0,
        num_bps: 2,
        num_wps: 2,
        pmu_num_ctrs: 0,
        hash_algo: rmi::hash_algo::SHA_256,
    }
}

fn measurement_requests() -> Vec<MeasurementRequest> {
    vec![
        MeasurementRequest::RealmCreate {
            realm: REALM,
            algo: HashAlgo::Sha256,
            params: measured_realm_params(),
        },
        MeasurementRequest::Data {
            realm: REALM,
            ipa: 0x1000,
            flags: rmi::data_flags::MEASURE_CONTENT,
            content: Some(Lease(0)),
            copy_to: Some(Lease(1)),
        },
        MeasurementRequest::Data {
            realm: REALM,
            ipa: 0x2000,
            flags: 0,
            content: None,
            copy_to: None,
        },
        MeasurementRequest::Rec {
            realm: REALM,
            params: MeasuredRecParams {
                flags: rmi::rec_flags::RUNNABLE,
                pc: 0x1000,
                gprs: [1, 2, 3, 4, 5, 6, 7, 8],
            },
        },
        MeasurementRequest::Ripas {
            realm: REALM,
            base: 0,
            top: 0x20_0000,
        },
        MeasurementRequest::Extend {
            realm: REALM,
            index: 1,
            data: BoundedBytes::new(&[0xee; 64]).expect("fits"),
        },
        MeasurementRequest::Read {
            realm: REALM,
            index: 0,
        },
        MeasurementRequest::Destroy { realm: REALM },
    ]
}

fn measurement_responses() -> Vec<MeasurementResponse> {
    vec![
        MeasurementResponse::Ok,
        MeasurementResponse::Value(Bytes([0x77; 64])),
        MeasurementResponse::Error(MeasurementError::UnknownRealm),
        MeasurementResponse::Error(MeasurementError::AlgoMismatch),
    ]
}

fn claims() -> RealmClaimsInput {
    RealmClaimsInput {
        hash_algo: HashAlgo::Sha256,
        rpv: Bytes([0x11; 64]),
        rim: Bytes([0x22; 64]),
        rems: [
            Bytes([1; 64]),
            Bytes([2; 64]),
            Bytes([3; 64]),
            Bytes([4; 64]),
        ],
    }
}

fn attestation_requests() -> Vec<AttestationRequest> {
    vec![
        AttestationRequest::ProvisionRak {
            scalar: Bytes(fixtures::rak_and_platform_token().0),
        },
        AttestationRequest::ProvisionPlatformToken { token: Lease(0) },
        AttestationRequest::Init {
            rec: REC,
            realm: REALM,
            challenge: Bytes([0x33; 64]),
            claims: claims(),
        },
        AttestationRequest::Continue {
            rec: REC,
            buffer: Lease(1),
            offset: 0,
            size: 4096,
        },
        AttestationRequest::Abort { rec: REC },
    ]
}

fn attestation_responses() -> Vec<AttestationResponse> {
    vec![
        AttestationResponse::Ok,
        AttestationResponse::RakBinding {
            challenge: BoundedBytes::new(&[0x44; 32]).expect("fits"),
        },
        AttestationResponse::Initialised { token_len: 1234 },
        AttestationResponse::Progress {
            written: 512,
            done: false,
        },
        AttestationResponse::Error(AttestationError::BadLease),
    ]
}

fn keys_requests() -> Vec<KeysRequest> {
    let (a, m) = fixtures::vhuks();
    let mut rim = [0u8; 64];
    rim[..32].copy_from_slice(&fixtures::METADATA_RIM);
    vec![
        KeysRequest::Provision {
            vhuk_a: Bytes(a),
            vhuk_m: Bytes(m),
        },
        KeysRequest::SetMetadata {
            realm: REALM,
            block: Lease(0),
        },
        KeysRequest::CheckActivation {
            realm: REALM,
            algo: HashAlgo::Sha256,
            rim: Bytes(rim),
        },
        KeysRequest::GetMetadata {
            realm: REALM,
            out: Lease(1),
        },
        KeysRequest::SealingKey {
            realm: REALM,
            flags: ipc_schema::islet::sealing_flags::MASK,
            svn: fixtures::METADATA_SVN,
            algo: HashAlgo::Sha256,
            rim: Bytes(rim),
        },
        KeysRequest::Destroy { realm: REALM },
    ]
}

fn keys_responses() -> Vec<KeysResponse> {
    vec![
        KeysResponse::Ok,
        KeysResponse::SealingKey(Bytes([0x99; 32])),
        KeysResponse::Error(KeysError::InvalidMetadata(MetadataFault::Signature)),
        KeysResponse::Error(KeysError::SvnTooHigh),
    ]
}

fn hes_requests() -> Vec<HesRequest> {
    vec![
        HesRequest::GetRealmKey {
            curve: EccCurve::P384,
            hash_algo: HesHashAlgo::Sha256,
        },
        HesRequest::GetPlatformToken {
            challenge: BoundedBytes::new(&[0x5c; 32]).expect("fits"),
            offset: 0,
        },
        HesRequest::Extend {
            slot: 2,
            record: fixtures::record("BL31", 0xcc),
            lock: true,
        },
        HesRequest::ReadSlot { slot: 0 },
        HesRequest::BootComplete,
        HesRequest::GetVhuk { id: VhukId::M },
        HesRequest::GetCpakPublicKey,
    ]
}

fn hes_responses() -> Vec<HesResponse> {
    vec![
        HesResponse::RealmKey(Bytes([0x12; 48])),
        HesResponse::PlatformToken(TokenChunk {
            total_len: 900,
            offset: 768,
            remaining: 0,
            digest: Bytes([0x34; 32]),
            data: BoundedBytes::new(&[0x56; 132]).expect("fits"),
        }),
        HesResponse::Extended,
        HesResponse::Slot(SlotState {
            record: fixtures::record("RMM", 0xbb),
            extend_count: 2,
            locked: false,
        }),
        HesResponse::BootCompleted,
        HesResponse::Vhuk(Bytes([0x78; 32])),
        HesResponse::CpakPublicKey(Bytes([0x04; 97])),
        HesResponse::Error(HesError::Frame(ipc_schema::hes::FrameError::BadChecksum)),
    ]
}

fn vcpu_requests() -> Vec<VcpuRequest> {
    vec![
        VcpuRequest::Hello,
        VcpuRequest::Smc {
            regs: smc_regs(ipc_schema::rsi::fid::VERSION, &[0x1_0000]),
        },
        VcpuRequest::Load {
            ipa: 0x1000,
            size: AccessSize::B8,
        },
        VcpuRequest::Store {
            ipa: 0x1008,
            size: AccessSize::B4,
            value: 0xdead_beef,
        },
        VcpuRequest::Read {
            ipa: 0x2000,
            len: 4096,
        },
        VcpuRequest::Write {
            ipa: 0x3000,
            data: BoundedBytes::new(&[0xab; 100]).expect("fits"),
        },
    ]
}

fn vcpu_responses() -> Vec<VcpuResponse> {
    let mut ram = [MemRegion::default(); simvcpu::MAX_RAM_REGIONS];
    ram[0] = MemRegion {
        base: 0,
        size: 0x20_0000,
    };
    vec![
        VcpuResponse::Hello(VcpuInfo {
            mpidr: 0,
            pc: 0x1000,
            entry_gprs: [0; 8],
            ipa_width: 40,
            ram,
        }),
        VcpuResponse::Smc {
            regs: smc_regs(0, &[1, 2, 3]),
        },
        VcpuResponse::Loaded { value: 42 },
        VcpuResponse::Stored,
        VcpuResponse::Data(BoundedBytes::new(&[0xcd; 64]).expect("fits")),
        VcpuResponse::Written,
        VcpuResponse::Sea,
        VcpuResponse::Error(VcpuError::TooLong),
    ]
}

fn realm_params() -> Vec<Vec<u8>> {
    let p = Host::default_params();
    let mut out = Vec::new();
    for flags in [1u8, 3, 0] {
        let mut seed = vec![flags];
        seed.extend_from_slice(p.as_bytes());
        out.push(seed);
    }
    out
}

fn rec_params() -> Vec<Vec<u8>> {
    let mut p = RmiRecParams::new_zeroed();
    p.flags = rmi::rec_flags::RUNNABLE;
    p.pc = 0x1000;
    p.gprs = [1, 2, 3, 4, 5, 6, 7, 8];
    p.num_aux = 2;
    let mut seed = vec![7u8];
    seed.extend_from_slice(p.as_bytes());
    let mut unpatched = vec![0u8];
    unpatched.extend_from_slice(p.as_bytes());
    vec![seed, unpatched]
}

fn rec_run() -> Vec<Vec<u8>> {
    let mut enter = RmiRecEnter::new_zeroed();
    enter.gprs[0] = 0x1234;
    let mut page = enter.as_bytes().to_vec();
    page.resize(4096, 0);
    let mut mmio = RmiRecEnter::new_zeroed();
    mmio.flags = rmi::rec_enter_flags::EMUL_MMIO;
    mmio.gprs[0] = 0x55;
    let mut mmio_page = mmio.as_bytes().to_vec();
    mmio_page.resize(4096, 0);
    // Scripts: host calls; MMIO then WFI; mixed.
    [0x00u8, 0x91, 0x1b, 0xe4]
        .into_iter()
        .map(|script| {
            let mut seed = vec![script];
            seed.extend_from_slice(&page);
            seed.extend_from_slice(&mmio_page);
            seed.extend_from_slice(&page);
            seed
        })
        .collect()
}

fn realm_config() -> Vec<Vec<u8>> {
    (0u8..4)
        .map(|sel| {
            let mut seed = vec![sel];
            seed.extend_from_slice(&[0x5a; 64]);
            seed.extend_from_slice(&[0xff; 4096]);
            seed
        })
        .collect()
}

fn host_call() -> Vec<Vec<u8>> {
    let mut call = ipc_schema::rsi::RsiHostCall::new_zeroed();
    call.imm = ipc_schema::simvcpu::host_call::CONSOLE_WRITE;
    call.gprs[0] = 5;
    call.gprs[1] = u64::from_le_bytes(*b"hello\0\0\0");
    let mut page = vec![0u8; 4096];
    for off in [0usize, 0x100, 0xF00] {
        page[off..off + 256].copy_from_slice(call.as_bytes());
    }
    let mut page1 = vec![0u8; 4096];
    page1[0x700..0x800].copy_from_slice(call.as_bytes());
    (0u8..8)
        .map(|sel| {
            let mut seed = vec![sel];
            seed.extend_from_slice(&page);
            seed.extend_from_slice(&page1);
            seed.extend((0..31 * 8).map(|i| i as u8));
            seed
        })
        .collect()
}

fn boot_manifest() -> Vec<Vec<u8>> {
    let mut m = ipc_schema::el3::BootManifest::new_zeroed();
    m.version = ipc_schema::el3::MANIFEST_VERSION;
    m.plat_dram.num_banks = 1;
    m.plat_dram.banks = 0x8000_0000;
    let mut bank = ipc_schema::el3::DramBank::new_zeroed();
    bank.base = 0x8000_0000;
    bank.size = 0x4000_0000;
    let mut seed = m.as_bytes().to_vec();
    seed.extend_from_slice(bank.as_bytes());
    vec![seed]
}

fn hes_frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; ipc_schema::hes::MAX_FRAME];
    for (i, r) in hes_requests().iter().enumerate() {
        let n = encode_message(HesKind::Request, i as u32 + 1, r, &mut buf).expect("fits");
        out.push(buf[..n].to_vec());
    }
    for (i, r) in hes_responses().iter().enumerate() {
        let n = encode_message(HesKind::Response, i as u32 + 1, r, &mut buf).expect("fits");
        out.push(buf[..n].to_vec());
    }
    out
}

fn vcpu_frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; simvcpu::MAX_FRAME];
    for (i, r) in vcpu_requests().iter().enumerate() {
        let n = simvcpu::encode_message(simvcpu::FrameKind::Request, i as u32, r, &mut buf)
            .expect("fits");
        out.push(buf[..n].to_vec());
    }
    for (i, r) in vcpu_responses().iter().enumerate() {
        let n = simvcpu::encode_message(simvcpu::FrameKind::Response, i as u32, r, &mut buf)
            .expect("fits");
        out.push(buf[..n].to_vec());
    }
    out
}

/// A handler-target input: lease descriptor, then the messages.
fn conversation<T: serde::Serialize>(
    leases: &[(LeaseKind, usize)],
    flag: bool,
    msgs: &[T],
) -> Vec<u8> {
    let mut seed = LeaseSpec::to_u16(leases, flag).to_le_bytes().to_vec();
    let encoded: Vec<Vec<u8>> = msgs.iter().map(encode).collect();
    seed.extend(encode_messages(&encoded));
    seed
}

fn measurement_conversations() -> Vec<Vec<u8>> {
    // Lease 0: the page to measure; lease 1: the DATA granule to copy into.
    let leases = [(LeaseKind::Read, 0), (LeaseKind::Write, 0)];
    vec![
        conversation(&leases, false, &measurement_requests()),
        conversation(
            &[(LeaseKind::Read, 4), (LeaseKind::Read, 0)],
            false,
            &measurement_requests(),
        ),
    ]
}

fn attestation_conversations() -> Vec<Vec<u8>> {
    let reqs = attestation_requests();
    let token_flow = [
        reqs[2].clone(),
        reqs[3].clone(),
        reqs[3].clone(),
        reqs[3].clone(),
        AttestationRequest::Continue {
            rec: REC,
            buffer: Lease(1),
            offset: 4000,
            size: 96,
        },
        reqs[3].clone(),
        reqs[4].clone(),
    ];
    vec![
        // Boot provisioning by the conversation itself.
        conversation(
            &[(LeaseKind::Fixture, 0), (LeaseKind::Write, 0)],
            false,
            &reqs,
        ),
        // Provisioned up front: a whole token into a writable granule.
        conversation(
            &[(LeaseKind::Fixture, 0), (LeaseKind::Write, 0)],
            true,
            &token_flow,
        ),
        // The buffer lent read-only, or too small.
        conversation(
            &[(LeaseKind::Read, 0), (LeaseKind::Read, 0)],
            true,
            &token_flow,
        ),
        conversation(
            &[(LeaseKind::Read, 0), (LeaseKind::Write, 6)],
            true,
            &token_flow,
        ),
    ]
}

fn keys_conversations() -> Vec<Vec<u8>> {
    let reqs = keys_requests();
    vec![
        conversation(
            &[(LeaseKind::Fixture, 0), (LeaseKind::Write, 1)],
            false,
            &reqs,
        ),
        conversation(
            &[(LeaseKind::Fixture, 0), (LeaseKind::Write, 1)],
            true,
            &reqs[1..],
        ),
        conversation(
            &[(LeaseKind::Read, 1), (LeaseKind::Read, 1)],
            true,
            &reqs[1..],
        ),
    ]
}

fn hes_conversations() -> Vec<Vec<u8>> {
    let reqs = hes_requests();
    let payloads: Vec<Vec<u8>> = reqs.iter().map(encode).collect();
    let mut framed = vec![3u8];
    framed.extend(encode_messages(&payloads));
    let mut unmeasured = vec![1u8];
    unmeasured.extend(encode_messages(&payloads));
    let frames: Vec<Vec<u8>> = hes_frames().into_iter().take(reqs.len()).collect();
    let mut raw = vec![2u8];
    raw.extend(encode_messages(&frames));
    vec![framed, unmeasured, raw]
}

/// Answer streams for the link client: the real HES's answers to the calls
/// each op script makes, recorded as payloads (framed mode) and as raw
/// frames (raw mode).
fn hes_link_streams() -> Vec<Vec<u8>> {
    use atoll_hes_link::{HesLink, Transport};

    struct Recorder {
        hes: atoll_hes_mcu::Hes,
        answer: Vec<u8>,
        payloads: Vec<Vec<u8>>,
        raw: Vec<u8>,
    }
    impl Transport for Recorder {
        type Error = HesError;
        fn write_all(&mut self, buf: &[u8]) -> Result<(), HesError> {
            let mut out = [0u8; ipc_schema::hes::MAX_FRAME];
            let n = self.hes.handle_frame(buf, &mut out);
            self.answer = out[..n].to_vec();
            self.raw.extend_from_slice(&out[..n]);
            self.payloads
                .push(out[ipc_schema::hes::HEADER_LEN..n].to_vec());
            Ok(())
        }
        fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), HesError> {
            if self.answer.len() < buf.len() {
                return Err(HesError::Malformed);
            }
            buf.copy_from_slice(&self.answer[..buf.len()]);
            self.answer.drain(..buf.len());
            Ok(())
        }
    }

    // Op scripts as the target reads them: eight 3-bit op numbers.
    let scripts: [[u32; 8]; 3] = [
        [0, 1, 3, 4, 5, 6, 7, 2],
        [1, 1, 2, 0, 6, 6, 7, 4],
        [3, 3, 5, 3, 4, 0, 1, 7],
    ];
    let mut out = Vec::new();
    for script in scripts {
        let mut link = HesLink::new(Recorder {
            hes: fixtures::hes(),
            answer: Vec::new(),
            payloads: Vec::new(),
            raw: Vec::new(),
        });
        for (i, op) in script.iter().enumerate() {
            // The same calls the target makes for each op.
            let _ = match op {
                0 => link
                    .realm_key(EccCurve::P384, HesHashAlgo::Sha256)
                    .map(drop),
                1 | 2 => link
                    .platform_token(&[0x5c; 64][..if *op == 1 { 32 } else { 48 }])
                    .map(drop),
                3 => link.extend(0, fixtures::record("BL2", 0xaa), false),
                4 => link.read_slot(1).map(drop),
                5 => link.boot_complete(),
                6 => link
                    .vhuk(if i % 2 == 0 { VhukId::A } else { VhukId::M })
                    .map(drop),
                _ => link.cpak_public_key().map(drop),
            };
        }
        let rec = link.into_inner();
        let ops: u32 = script.iter().enumerate().map(|(i, op)| op << (3 * i)).sum();
        let ops = ops.to_le_bytes();
        let mut framed = vec![1u8, ops[0], ops[1], ops[2]];
        framed.extend(encode_messages(&rec.payloads));
        let mut raw = vec![0u8, ops[0], ops[1], ops[2]];
        raw.extend(rec.raw);
        out.push(framed);
        out.push(raw);
    }
    // A raw stream that is a single valid frame of another request's id.
    let mut buf = [0u8; ipc_schema::hes::MAX_FRAME];
    let n = encode_frame(
        HesKind::Response,
        7,
        &encode(&HesResponse::Extended),
        &mut buf,
    )
    .expect("fits");
    let mut stale = vec![0u8, 3, 0, 0];
    stale.extend_from_slice(&buf[..n]);
    out.push(stale);
    out
}
