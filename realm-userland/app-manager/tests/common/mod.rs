//! The deployment test bed shared by the end-to-end tests and the
//! install benchmark.
#![allow(dead_code)]

use std::collections::BTreeMap;

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atoll_app_manager::keys::{stored_vendor, AppKeys};
use atoll_app_manager::realm::{Realm, SimRealm};
use atoll_app_manager::trust::TrustBundle;
use atoll_app_manager::Manager;
use atoll_sim::procs::{binary, HesProcess};
use atoll_sim::Background;
use ipc_schema::agent::{AgentRequest, AgentResponse, AppSpec, AppState};

pub const REPO: &str = "acme/counter";

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A vendor: CA directory and vendor directory made by `atoll sign`.
pub struct Vendor {
    pub ca: PathBuf,
    pub dir: PathBuf,
}

pub fn make_vendor(atoll: &Path, base: &Path, ca_name: &str, vendor: &str) -> Vendor {
    let ca = base.join(format!("{ca_name}-ca"));
    let dir = base.join(vendor);
    run(Command::new(atoll)
        .args(["sign", "keygen", "--name", ca_name, "--ca-root"])
        .arg(&ca));
    run(Command::new(atoll)
        .args(["sign", "vendor", "--name", vendor, "--ca"])
        .arg(&ca)
        .arg("-o")
        .arg(&dir));
    Vendor { ca, dir }
}

pub struct RegistryProcess {
    pub child: Child,
    pub config: PathBuf,
    pub push: String,
    pub pull: String,
}

impl RegistryProcess {
    pub fn start(config: &Path) -> Self {
        Self::start_binary(&binary("atoll-registry", "atoll-registry"), config)
    }

    /// Starts a given `atoll-registry` executable (benchmarks use a
    /// release build).
    pub fn start_binary(program: &Path, config: &Path) -> Self {
        let text = std::fs::read_to_string(config).unwrap();
        let port = |mode: &str| -> String {
            // The address line before the listener's mode line.
            let lines: Vec<&str> = text.lines().collect();
            let i = lines
                .iter()
                .position(|l| l.trim() == format!("mode = \"{mode}\""))
                .unwrap();
            lines[i - 1].split('"').nth(1).unwrap().to_string()
        };
        let (push, pull) = (port("tls"), port("ra-tls"));
        let log = std::fs::File::create(config.with_extension("log")).unwrap();
        let child = Command::new(program)
            .arg("--config")
            .arg(config)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&pull).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            config: config.to_owned(),
            push,
            pull,
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Everything a deployment needs, in one temporary directory.
pub struct Bed {
    pub dir: tempfile::TempDir,
    pub atoll: PathBuf,
    pub acme: Vendor,
    pub realm: Arc<SimRealm>,
    pub manager: Manager,
    pub registry: RegistryProcess,
    _sim: Background,
    _hes: HesProcess,
}

pub fn registry_tls(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    std::fs::create_dir_all(dir).unwrap();
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "test registry CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("registry.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("registry-key.pem"), key.serialize_pem()).unwrap();
}

impl Bed {
    /// `policy_rim`: the RIM the registry's policy allows (`None`: this
    /// realm's).
    pub fn new(policy_rim: Option<&str>) -> Self {
        Self::with_registry(policy_rim, &binary("atoll-registry", "atoll-registry"))
    }

    /// As [`Bed::new`] with a given registry executable.
    pub fn with_registry(policy_rim: Option<&str>, registry_program: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let atoll = binary("atoll-cli", "atoll");
        let acme = make_vendor(&atoll, d, "Test Vendor CA", "acme");
        registry_tls(&d.join("tls"));
        let bundle =
            TrustBundle::from_pem_files(&[&acme.ca.join("root.pem")], &[&d.join("tls/ca.pem")])
                .unwrap();
        std::fs::write(d.join("trust-bundle.bin"), bundle.encode().unwrap()).unwrap();
        let toml = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/examples/app-realm.toml"),
        )
        .unwrap();
        std::fs::write(d.join("realm.toml"), toml).unwrap();
        let refs = run(Command::new(&atoll)
            .args(["measure", "--json"])
            .arg(d.join("realm.toml")));
        let refs = match policy_rim {
            Some(rim) => {
                let mut v: serde_json::Value = serde_json::from_str(&refs).unwrap();
                v["realm"][0]["initial-measurement"] = rim.into();
                v.to_string()
            }
            None => refs,
        };
        std::fs::write(d.join("refs.json"), refs).unwrap();
        run(Command::new(&atoll)
            .args(["metadata", "keygen", "-o"])
            .arg(d.join("realm-key.pem")));
        std::fs::write(
            d.join("meta.yaml"),
            "realm_id: \"com.example.test\"\nversion: \"1.0.0\"\nsvn: 1\nhash_algo: sha-256\n",
        )
        .unwrap();
        run(Command::new(&atoll)
            .args(["metadata", "create", "--config"])
            .arg(d.join("meta.yaml"))
            .arg("--key")
            .arg(d.join("realm-key.pem"))
            .arg("--rim-from")
            .arg(d.join("realm.toml"))
            .arg("-o")
            .arg(d.join("realm.meta")));
        let block: [u8; 432] = std::fs::read(d.join("realm.meta"))
            .unwrap()
            .try_into()
            .unwrap();

        let hes = HesProcess::start(d);
        let desc = atoll_realm_description::RealmDescription::load(&d.join("realm.toml")).unwrap();
        let sim = Background::start_with_metadata(
            desc,
            d.join("vcpu.sock"),
            Some(hes.socket.clone()),
            Some(block),
        )
        .unwrap();
        let jwk = atoll_sim::hes::cpak_jwk(sim.cpak().unwrap()).unwrap();
        std::fs::write(d.join("cpak.jwk"), jwk).unwrap();

        let config = d.join("registry.toml");
        std::fs::write(
            &config,
            format!(
                "storage = \"registry\"\ntrust_anchors = \"cpak.jwk\"\n\n\
                 [[listener]]\naddress = \"127.0.0.1:{}\"\nmode = \"tls\"\naccess = \"read-write\"\n\
                 cert = \"tls/registry.pem\"\nkey = \"tls/registry-key.pem\"\n\n\
                 [[listener]]\naddress = \"127.0.0.1:{}\"\nmode = \"ra-tls\"\n\
                 cert = \"tls/registry.pem\"\nkey = \"tls/registry-key.pem\"\n\n\
                 [[realm]]\nname = \"test\"\nreference_values = \"refs.json\"\nrepositories = [\"acme/*\"]\n",
                free_port(),
                free_port()
            ),
        )
        .unwrap();
        let registry = RegistryProcess::start_binary(registry_program, &config);
        let realm = Arc::new(SimRealm::new(d.join("vcpu.sock")));
        let manager = Manager::new(realm.clone(), &d.join("work")).unwrap();
        Self {
            atoll,
            acme,
            realm,
            manager,
            registry,
            _sim: sim,
            _hes: hes,
            dir,
        }
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn spec(&self, name: &str, version: &str) -> AppSpec {
        let disk = self.p(&format!("disks/{name}"));
        std::fs::create_dir_all(&disk).unwrap();
        AppSpec {
            name: name.into(),
            version: version.into(),
            registry: self.registry.pull.clone(),
            repository: REPO.into(),
            disk: disk.display().to_string(),
            image_limit: 64 << 20,
            data_limit: 16 << 20,
        }
    }

    pub fn push(&self, layout: &Path) {
        let pem = std::fs::read(self.p("tls/ca.pem")).unwrap();
        let client = atoll_oci_client::Client::tls_with_roots(&self.registry.push, &pem).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(client.push_layout(layout, REPO))
            .unwrap();
    }

    /// Builds the counter app at `version`, signs it with `signer` and
    /// pushes both.
    pub fn publish_counter(&self, version: &str, signer: &Vendor) -> String {
        let layout = self.p(&format!("images/counter-{version}"));
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/examples/counter-app");
        let spec = atoll_oci_image::ImageSpec {
            entrypoint: vec!["/app/counter.sh".into()],
            volumes: vec!["/data".into()],
            env: vec![format!("COUNTER_VERSION={version}")],
            version: Some(version.into()),
            ..atoll_oci_image::ImageSpec::for_host()
        };
        let built = atoll_oci_image::build(&[&src], &spec, &layout, version).unwrap();
        self.sign_and_push(&built.manifest, signer, &layout);
        built.manifest_digest
    }

    pub fn sign_and_push(&self, manifest: &[u8], signer: &Vendor, layout: &Path) {
        let key = atoll_signing::keys::signing_key_from_pem(
            &std::fs::read_to_string(signer.dir.join("vendor.pem")).unwrap(),
        )
        .unwrap();
        let chain = x509_cert::Certificate::load_pem_chain(
            &std::fs::read(signer.dir.join("vendor-chain.pem")).unwrap(),
        )
        .unwrap();
        let artifact =
            atoll_signing::SignatureArtifact::sign(manifest, &key, &chain, BTreeMap::new())
                .unwrap();
        let sig = layout.with_extension("sig");
        atoll_signing::layout::write(&sig, &artifact).unwrap();
        self.push(layout);
        self.push(&sig);
    }

    pub fn call(&self, req: AgentRequest) -> AgentResponse {
        self.manager.handle(req)
    }

    pub fn provision(&self, specs: Vec<AppSpec>) {
        assert_eq!(
            self.call(AgentRequest::Provision { apps: specs }),
            AgentResponse::Done
        );
    }

    pub fn status(&self, name: &str) -> ipc_schema::agent::AppStatus {
        match self.call(AgentRequest::Status) {
            AgentResponse::Status { apps } => apps.into_iter().find(|a| a.name == name).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    /// Starts the app and waits until it exited; returns the exit code.
    pub fn run_to_exit(&self, name: &str) -> i32 {
        let r = self.call(AgentRequest::StartApp { name: name.into() });
        assert_eq!(r, AgentResponse::Done, "start {name}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.status(name).state {
                AppState::Exited { code } => return code,
                AppState::Failed { reason } => panic!("{name} failed: {reason}"),
                _ => {}
            }
            assert!(Instant::now() < deadline, "{name} did not finish");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The counter's run count, read by unsealing its data partition the
    /// way the app-manager does.
    pub fn runs(&self, spec: &AppSpec) -> u32 {
        let disk = atoll_app_manager::disk::Disk::new(Path::new(&spec.disk));
        let bundle = self.realm.trust_bundle().unwrap();
        let vendor = stored_vendor(&disk, &bundle).unwrap().unwrap();
        let keys = AppKeys::derive(self.realm.as_ref(), &vendor, &spec.name).unwrap();
        let out = self.p(&format!("peek-{}", rand_suffix()));
        keys.unseal_data(&disk.path("data.sealed"), &out, 1 << 30)
            .unwrap();
        std::fs::read_to_string(out.join("data/runs"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

pub fn rand_suffix() -> String {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).unwrap();
    hex::encode(b)
}
