//! `RealmMetadata` (the 432-byte Islet block) from arbitrary bytes, through
//! the metadata crate's parser and verifier and the keys service's
//! `SetMetadata` / `GetMetadata`.
//!
//! Properties: no panic; the layout reads exactly 432 bytes; a block that
//! parses is canonical (rebuilding it from the parsed fields gives the same
//! bytes); a block that verifies also parses; the keys service stores a
//! block only if it verifies, and hands back exactly the stored bytes.
#![no_main]

use atoll_keys::KeysService;
use atoll_metadata::{TrustAnchor, BLOCK_LEN};
use ipc_schema::islet::RealmMetadata;
use ipc_schema::service::keys::{KeysRequest, KeysResponse};
use ipc_schema::service::{Lease, LeaseMem, RealmHandle};
use libfuzzer_sys::fuzz_target;
use zerocopy::{FromBytes, IntoBytes};

fuzz_target!(|data: &[u8]| {
    let block = RealmMetadata::read_from_bytes(data);
    assert_eq!(block.is_ok(), data.len() == BLOCK_LEN);
    if let Ok(b) = &block {
        assert_eq!(b.as_bytes(), data);
    }

    let parsed = atoll_metadata::parse(data);
    if let Ok(p) = &parsed {
        let mut rebuilt = p.metadata.to_unsigned_block(&p.public_key);
        rebuilt.signature = p.signature;
        assert_eq!(rebuilt.as_bytes(), data, "a parsed block is not canonical");
    }
    let verified = atoll_metadata::verify(data, TrustAnchor::EmbeddedKeyOnly);
    if let Ok(v) = &verified {
        assert_eq!(Ok(&v.metadata), parsed.as_ref().map(|p| &p.metadata));
    }

    let mut keys = KeysService::new(1);
    let realm = RealmHandle(0x1000);
    let r = keys.handle_ref(
        &KeysRequest::SetMetadata {
            realm,
            block: Lease(0),
        },
        &mut [LeaseMem::Read(data)],
    );
    assert_eq!(
        r == KeysResponse::Ok,
        verified.is_ok(),
        "keys service and verifier disagree: {r:?}"
    );
    if r == KeysResponse::Ok {
        let mut out = vec![0u8; BLOCK_LEN];
        let r = keys.handle_ref(
            &KeysRequest::GetMetadata {
                realm,
                out: Lease(0),
            },
            &mut [LeaseMem::Write(&mut out)],
        );
        assert_eq!(r, KeysResponse::Ok);
        assert_eq!(out, data);
    }
});
