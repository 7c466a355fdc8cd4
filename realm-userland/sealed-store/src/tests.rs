use std::io::{Read, Write};

use super::*;

fn key(b: u8) -> PartitionKey {
    PartitionKey::from_bytes([b; 32])
}

fn seal_bytes(path: &Path, k: &PartitionKey, data: &[u8]) {
    seal_bytes_with(path, k, data, true);
}

fn seal_bytes_with(path: &Path, k: &PartitionKey, data: &[u8], direct: bool) {
    let mut w = if direct {
        SealedWriter::create(path, k, "data").unwrap()
    } else {
        SealedWriter::create_buffered(path, k, "data").unwrap()
    };
    w.write_all(data).unwrap();
    w.commit().unwrap();
}

fn open_bytes(path: &Path, k: &PartitionKey) -> Result<Vec<u8>, SealError> {
    let mut r = SealedReader::open(path, k, "data")?;
    let slot = r.error_slot();
    let mut out = Vec::new();
    match r.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) => Err(slot
            .lock()
            .unwrap()
            .take()
            .unwrap_or(SealError::from_io(e, "read"))),
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn round_trips_in(dir: &Path, direct: bool) {
    let p = dir.join("part");
    for n in [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        3 * CHUNK_SIZE + 17,
        // Across the writer's staging buffer (direct writes in whole
        // blocks, the last one padded and cut).
        (4 << 20) - HEADER_LEN,
        (9 << 20) + 4095,
    ] {
        let data = pattern(n);
        seal_bytes_with(&p, &key(1), &data, direct);
        assert_eq!(open_bytes(&p, &key(1)).unwrap(), data, "{n} bytes");
        let len = std::fs::metadata(&p).unwrap().len() as usize;
        assert_eq!(len, HEADER_LEN + n + 16 * (n / CHUNK_SIZE + 1));
    }
}

#[test]
fn round_trips() {
    // O_DIRECT where the file system takes it (here: a disk file system).
    let dir = tempfile::tempdir().unwrap();
    round_trips_in(dir.path(), true);
}

#[test]
fn round_trips_through_the_page_cache() {
    // The path for file systems that refuse O_DIRECT.
    let dir = tempfile::tempdir().unwrap();
    round_trips_in(dir.path(), false);
}

#[test]
fn wrong_key_and_label() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("part");
    seal_bytes(&p, &key(1), b"secret");
    assert!(matches!(open_bytes(&p, &key(2)), Err(SealError::WrongKey)));
    assert!(matches!(
        SealedReader::open(&p, &key(1), "image"),
        Err(SealError::WrongLabel { .. })
    ));
}

#[test]
fn every_flipped_byte_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("part");
    let data = pattern(CHUNK_SIZE + 100);
    seal_bytes(&p, &key(1), &data);
    let good = std::fs::read(&p).unwrap();
    // Header fields, first chunk, its tag, the last chunk.
    for at in [
        0,
        9,
        12,
        30,
        50,
        60,
        HEADER_LEN,
        HEADER_LEN + CHUNK_SIZE + 3,
        good.len() - 1,
    ] {
        let mut bad = good.clone();
        bad[at] ^= 0x40;
        std::fs::write(&p, &bad).unwrap();
        assert!(
            open_bytes(&p, &key(1)).is_err(),
            "flip at {at} not detected"
        );
    }
}

#[test]
fn truncation_reordering_and_trailing_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("part");
    let data = pattern(3 * CHUNK_SIZE);
    seal_bytes(&p, &key(1), &data);
    let good = std::fs::read(&p).unwrap();
    let full = CHUNK_SIZE + 16;
    // Cut at a chunk boundary (the last chunk gone).
    std::fs::write(&p, &good[..HEADER_LEN + 3 * full]).unwrap();
    assert!(matches!(open_bytes(&p, &key(1)), Err(SealError::Truncated)));
    // Cut inside a chunk.
    std::fs::write(&p, &good[..HEADER_LEN + full + 1000]).unwrap();
    assert!(open_bytes(&p, &key(1)).is_err());
    // Two chunks swapped.
    let mut swapped = good[..HEADER_LEN].to_vec();
    swapped.extend_from_slice(&good[HEADER_LEN + full..HEADER_LEN + 2 * full]);
    swapped.extend_from_slice(&good[HEADER_LEN..HEADER_LEN + full]);
    swapped.extend_from_slice(&good[HEADER_LEN + 2 * full..]);
    std::fs::write(&p, &swapped).unwrap();
    assert!(matches!(
        open_bytes(&p, &key(1)),
        Err(SealError::Corrupt(0))
    ));
    // Garbage appended.
    let mut longer = good.clone();
    longer.extend_from_slice(b"more");
    std::fs::write(&p, &longer).unwrap();
    assert!(open_bytes(&p, &key(1)).is_err());
}

#[test]
fn uncommitted_writer_leaves_the_previous_partition() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("part");
    seal_bytes(&p, &key(1), b"version 1");
    {
        let mut w = SealedWriter::create(&p, &key(1), "data").unwrap();
        w.write_all(&pattern(5 * CHUNK_SIZE)).unwrap();
        // Dropped: a crash or an error before commit.
    }
    assert_eq!(open_bytes(&p, &key(1)).unwrap(), b"version 1");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["part"], "temp file left behind");
}

#[test]
fn directory_trees_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("data/sub")).unwrap();
    std::fs::write(src.join("data/sub/file"), pattern(200_000)).unwrap();
    std::os::unix::fs::symlink("sub/file", src.join("data/link")).unwrap();
    let part = dir.path().join("data.sealed");
    seal_dir(&src, &part, &key(7), "data", &Default::default()).unwrap();
    let dest = dir.path().join("out");
    unseal_dir(&part, &key(7), "data", &dest, &Default::default()).unwrap();
    assert_eq!(
        std::fs::read(dest.join("data/sub/file")).unwrap(),
        pattern(200_000)
    );
    assert_eq!(
        std::fs::read_link(dest.join("data/link")).unwrap(),
        Path::new("sub/file")
    );
    // The wrong key creates nothing.
    let dest2 = dir.path().join("out2");
    assert!(matches!(
        unseal_dir(&part, &key(8), "data", &dest2, &Default::default()),
        Err(SealError::WrongKey)
    ));
    assert!(!dest2.exists());
    // A tampered tree creates nothing either.
    let mut bytes = std::fs::read(&part).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 1;
    std::fs::write(&part, &bytes).unwrap();
    let err = unseal_dir(&part, &key(7), "data", &dest2, &Default::default()).unwrap_err();
    assert!(matches!(err, SealError::Corrupt(_)), "{err}");
    assert!(!dest2.exists());
}

fn vendor(v: u8, r: u8) -> VendorIdentity {
    VendorIdentity {
        vendor_spki: vec![v; 120],
        root_spki: vec![r; 120],
    }
}

#[test]
fn key_layering_separates_vendors_realms_and_builds() {
    let realm_a = [1u8; 32];
    let realm_b = [2u8; 32];
    let base = AppKey::derive(&realm_a, &vendor(1, 9), None).data_key("app");
    let same = AppKey::derive(&realm_a, &vendor(1, 9), None).data_key("app");
    assert_eq!(base.bytes(), same.bytes());
    let others = [
        AppKey::derive(&realm_a, &vendor(2, 9), None).data_key("app"),
        AppKey::derive(&realm_a, &vendor(1, 8), None).data_key("app"),
        AppKey::derive(&realm_b, &vendor(1, 9), None).data_key("app"),
        AppKey::derive(&realm_a, &vendor(1, 9), Some(&[5; 32])).data_key("app"),
        AppKey::derive(&realm_a, &vendor(1, 9), None).data_key("other"),
        AppKey::derive(&realm_a, &vendor(1, 9), None).image_key(),
    ];
    for (i, k) in others.iter().enumerate() {
        assert_ne!(k.bytes(), base.bytes(), "derivation {i} collides");
    }
    // Length prefixes keep the fields apart.
    let split1 = VendorIdentity {
        vendor_spki: vec![1, 2],
        root_spki: vec![3],
    };
    let split2 = VendorIdentity {
        vendor_spki: vec![1],
        root_spki: vec![2, 3],
    };
    assert_ne!(
        AppKey::derive(&realm_a, &split1, None).image_key().bytes(),
        AppKey::derive(&realm_a, &split2, None).image_key().bytes()
    );
    // Another vendor's key cannot open this vendor's data.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("data.sealed");
    seal_bytes(&p, &base, b"vendor 1 data");
    assert!(matches!(
        open_bytes(&p, &others[0]),
        Err(SealError::WrongKey)
    ));
}
