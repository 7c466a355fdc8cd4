//! Cross-check with an independent implementation: tokens produced by our
//! encoder, signed with fresh keys, must verify in tests/python/
//! verify_cca_token.py (cbor2 + cryptography), and tampered ones must not.
//! Fails, rather than skips, without python3: the cross-check is the point.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

use atoll_cca_token::{encode_collection, HashAlgo, PlatformKey, RakForm, RealmPublicKey};
use common::{fresh_p384, platform_claims, realm_claims};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/python/verify_cca_token.py")
}

fn python_ready() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let have = Command::new("python3")
            .args(["-c", "import cbor2, cryptography"])
            .status()
            .expect("python3 must be installed to run the independent verifier");
        if !have.success() {
            let req = script().with_file_name("requirements.txt");
            let st = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "-r"])
                .arg(&req)
                .status()
                .expect("run pip");
            assert!(st.success(), "could not install cbor2 and cryptography");
        }
    });
}

fn run(token: &[u8], cpak: &PlatformKey) -> Output {
    python_ready();
    let dir = tempfile::tempdir().unwrap();
    let (t, k) = (
        dir.path().join("token.cbor"),
        dir.path().join("cpak.jwk.json"),
    );
    std::fs::write(&t, token).unwrap();
    std::fs::write(&k, cpak.to_jwk().to_string()).unwrap();
    Command::new("python3")
        .arg(script())
        .arg(&t)
        .arg(&k)
        .arg("--json")
        .output()
        .unwrap()
}

fn result(o: &Output) -> serde_json::Value {
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "verifier error: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn python_accepts_our_tokens() {
    for (algo, form, rak_hash) in [
        (HashAlgo::Sha256, RakForm::CoseKey, HashAlgo::Sha256),
        (HashAlgo::Sha512, RakForm::CoseKey, HashAlgo::Sha256),
        (HashAlgo::Sha256, RakForm::RawPoint, HashAlgo::Sha512),
    ] {
        let rak = fresh_p384();
        let cpak = fresh_p384();
        let mut realm = realm_claims(&rak, algo);
        realm.rak = RealmPublicKey::new(&p384::PublicKey::from(rak.verifying_key()), form).unwrap();
        realm.rak_hash_algo = rak_hash;
        let platform = platform_claims(&realm);
        let token = encode_collection(
            &platform.sign_with(&cpak).unwrap(),
            &realm.sign_with(&rak).unwrap(),
        )
        .unwrap();
        let o = run(&token, &PlatformKey::from(*cpak.verifying_key()));
        let r = result(&o);
        assert!(o.status.success(), "{algo:?} {form:?}: {r}");
        assert_eq!(r["platform_signature"], true);
        assert_eq!(r["realm_signature"], true);
        assert_eq!(r["binding"], true);
        assert_eq!(r["realm_challenge"], hex::encode(realm.challenge));
    }
}

#[test]
fn python_accepts_our_es256_platform_tokens() {
    let rak = fresh_p384();
    let cpak = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let realm = realm_claims(&rak, HashAlgo::Sha256);
    let token = encode_collection(
        &platform_claims(&realm).sign(&cpak).unwrap(),
        &realm.sign_with(&rak).unwrap(),
    )
    .unwrap();
    let o = run(&token, &PlatformKey::from(*cpak.verifying_key()));
    assert!(o.status.success(), "{}", result(&o));
}

#[test]
fn python_rejects_what_we_reject() {
    let rak = fresh_p384();
    let cpak = fresh_p384();
    let key = PlatformKey::from(*cpak.verifying_key());
    let realm = realm_claims(&rak, HashAlgo::Sha256);
    let p_tok = platform_claims(&realm).sign_with(&cpak).unwrap();

    // Binding broken: the platform token was issued for another RAK.
    let other_rak = fresh_p384();
    let other = realm_claims(&other_rak, HashAlgo::Sha256);
    let token = encode_collection(&p_tok, &other.sign_with(&other_rak).unwrap()).unwrap();
    let r = result(&run(&token, &key));
    assert_eq!(
        (
            r["platform_signature"].clone(),
            r["realm_signature"].clone()
        ),
        (true.into(), true.into())
    );
    assert_eq!(r["binding"], false);
    assert!(atoll_cca_token::decode(&token)
        .unwrap()
        .verify_binding()
        .is_err());

    // Wrong CPAK.
    let token = encode_collection(&p_tok, &realm.sign_with(&rak).unwrap()).unwrap();
    let o = run(&token, &PlatformKey::from(*fresh_p384().verifying_key()));
    assert!(!o.status.success());
    assert_eq!(result(&o)["platform_signature"], false);
}
