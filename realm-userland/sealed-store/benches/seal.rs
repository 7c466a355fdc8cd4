//! Sealed-store write throughput against raw AES-256-GCM on the same data.
//!
//! `seal_64mib/sealed_writer`: 64 MiB through `SealedWriter` into a new
//! file and `commit` (fsync, rename, directory fsync).
//! `seal_64mib/sealed_writer_replacing`: the same over the previous
//! iteration's file (its blocks are freed inside the rename).
//! `seal_64mib/aes_gcm_baseline`: the same 64 MiB encrypted in place in
//! 64 KiB chunks with the aes-gcm crate, in memory. Target: the sealed
//! store at least 0.7x the baseline's throughput.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::io::Write;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use atoll_sealed_store::{PartitionKey, SealedWriter, CHUNK_SIZE};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const SIZE: usize = 64 << 20;

fn bench(c: &mut Criterion) {
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 253) as u8).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.sealed");
    let key = PartitionKey::from_bytes([3; 32]);
    let mut g = c.benchmark_group("seal_64mib");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(10);
    // Writing a partition: encryption, the writes, fsync, rename and the
    // directory fsync. The previous iteration's file is deleted before the
    // timer starts: freeing 64 MiB is the file system's cost of replacing
    // a partition, not of writing one (on this machine's ext4, mounted
    // with online `discard`, an unlink of 64 MiB takes about 10 ms).
    g.bench_function("sealed_writer", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(&path);
            },
            |()| {
                let mut w = SealedWriter::create(&path, &key, "data").expect("create");
                w.write_all(&data).expect("write");
                w.commit().expect("commit");
            },
            BatchSize::PerIteration,
        )
    });
    // The same, replacing the previous partition (what an application's
    // data partition sees at every stop): for information.
    g.bench_function("sealed_writer_replacing", |b| {
        b.iter(|| {
            let mut w = SealedWriter::create(&path, &key, "data").expect("create");
            w.write_all(&data).expect("write");
            w.commit().expect("commit");
        })
    });
    let cipher = Aes256Gcm::new(&[3u8; 32].into());
    let mut buf = data.clone();
    g.bench_function("aes_gcm_baseline", |b| {
        b.iter(|| {
            buf.copy_from_slice(&data);
            for (i, chunk) in buf.chunks_mut(CHUNK_SIZE).enumerate() {
                let mut n = [0u8; 12];
                n[7..11].copy_from_slice(&(i as u32).to_be_bytes());
                let tag = cipher
                    .encrypt_in_place_detached(Nonce::from_slice(&n), b"aad", chunk)
                    .expect("encrypt");
                std::hint::black_box(tag);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
