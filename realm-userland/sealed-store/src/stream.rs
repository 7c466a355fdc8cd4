//! The sealed partition file: header, then AES-256-GCM chunks (STREAM).

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::Zeroizing;

use crate::{expand, PartitionKey, SealError};

/// First bytes of a sealed partition.
pub const MAGIC: [u8; 8] = *b"ATOLLSP1";
/// Format version.
const VERSION: u8 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 72;
/// Plaintext bytes per chunk (all but the last chunk are exactly this).
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Bytes of a GCM tag.
const TAG_LEN: usize = 16;
/// Longest partition label.
const MAX_LABEL: usize = 16;

/// The header, as written.
struct Header {
    bytes: [u8; HEADER_LEN],
}

impl Header {
    // Layout: magic 8 | version 1 | label length 1 | label 16 (zero padded)
    // | chunk size u32 LE 4 | salt 16 | nonce prefix 7 | key check 16 | zero 3
    const LABEL: usize = 10;
    const CHUNK: usize = 26;
    const SALT: usize = 30;
    const PREFIX: usize = 46;
    const CHECK: usize = 53;

    fn new(label: &str, salt: [u8; 16], prefix: [u8; 7], check: [u8; 16]) -> Self {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(&MAGIC);
        b[8] = VERSION;
        b[9] = label.len() as u8;
        b[Self::LABEL..Self::LABEL + label.len()].copy_from_slice(label.as_bytes());
        b[Self::CHUNK..Self::CHUNK + 4].copy_from_slice(&(CHUNK_SIZE as u32).to_le_bytes());
        b[Self::SALT..Self::SALT + 16].copy_from_slice(&salt);
        b[Self::PREFIX..Self::PREFIX + 7].copy_from_slice(&prefix);
        b[Self::CHECK..Self::CHECK + 16].copy_from_slice(&check);
        Self { bytes: b }
    }

    fn parse(b: [u8; HEADER_LEN]) -> Result<Self, SealError> {
        if b[..8] != MAGIC {
            return Err(SealError::BadHeader("bad magic".into()));
        }
        if b[8] != VERSION {
            return Err(SealError::BadHeader(format!("unknown version {}", b[8])));
        }
        if b[9] as usize > MAX_LABEL || b[69..] != [0, 0, 0] {
            return Err(SealError::BadHeader("malformed header".into()));
        }
        let chunk = u32::from_le_bytes(
            b[Self::CHUNK..Self::CHUNK + 4]
                .try_into()
                .unwrap_or_default(),
        );
        if chunk as usize != CHUNK_SIZE {
            return Err(SealError::BadHeader(format!("chunk size {chunk}")));
        }
        Ok(Self { bytes: b })
    }

    fn label(&self) -> String {
        let n = self.bytes[9] as usize;
        String::from_utf8_lossy(&self.bytes[Self::LABEL..Self::LABEL + n]).into_owned()
    }

    fn salt(&self) -> &[u8] {
        &self.bytes[Self::SALT..Self::SALT + 16]
    }

    fn prefix(&self) -> [u8; 7] {
        let mut p = [0u8; 7];
        p.copy_from_slice(&self.bytes[Self::PREFIX..Self::PREFIX + 7]);
        p
    }

    fn check(&self) -> &[u8] {
        &self.bytes[Self::CHECK..Self::CHECK + 16]
    }
}

/// The per-file key and the check value that identifies it.
fn file_keys(key: &PartitionKey, salt: &[u8], label: &str) -> (Zeroizing<[u8; 32]>, [u8; 16]) {
    let k = Zeroizing::new(expand(
        key.bytes(),
        Some(salt),
        &[b"atoll sealed-store v1 key", label.as_bytes()],
    ));
    let c = expand(
        key.bytes(),
        Some(salt),
        &[b"atoll sealed-store v1 check", label.as_bytes()],
    );
    let mut check = [0u8; 16];
    check.copy_from_slice(&c[..16]);
    (k, check)
}

fn nonce(prefix: &[u8; 7], counter: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n
}

fn io_err(context: &str) -> impl FnOnce(io::Error) -> SealError + '_ {
    move |source| SealError::Io {
        context: context.to_string(),
        source,
    }
}

/// Bytes the writing thread writes between `fdatasync`s, when it writes
/// through the page cache.
const SYNC_EVERY: usize = 1 << 20;

/// Bytes the writing thread hands to the file at once (4 MiB measured
/// best of 256 KiB, 1 MiB and 4 MiB).
const STAGE: usize = 4 << 20;

/// What `O_DIRECT` asks of buffer addresses, file offsets and lengths
/// (enough for 512- and 4096-byte sectors).
const DIRECT_ALIGN: usize = 4096;

/// The writing thread's side: collects the partition's bytes in an aligned
/// buffer of [`STAGE`] bytes and writes it with `O_DIRECT` where the file
/// system allows it, straight from the buffer to the device. Through the
/// page cache, the copy into it and its writeback competed with encryption
/// for the two cores and held the store near 0.6x raw AES-GCM. Where
/// `O_DIRECT` is refused, at open or at the first write, the same buffers
/// go through the page cache with an `fdatasync` every [`SYNC_EVERY`]
/// bytes.
struct DiskWriter {
    /// The temporary file as created (buffered); returned for `commit`.
    file: File,
    /// The same file opened with `O_DIRECT`, when possible.
    direct: Option<File>,
    buf: Vec<u8>,
    /// Offset in `buf` of the first aligned byte.
    start: usize,
    /// Bytes staged.
    len: usize,
    /// Bytes written to the file so far.
    written: u64,
    unsynced: usize,
}

impl DiskWriter {
    fn new(file: File, path: &Path, allow_direct: bool) -> Self {
        use std::os::unix::fs::OpenOptionsExt;
        let direct = allow_direct
            .then(|| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(path)
                    .ok()
            })
            .flatten();
        let buf = vec![0u8; STAGE + DIRECT_ALIGN];
        let start = (DIRECT_ALIGN - buf.as_ptr() as usize % DIRECT_ALIGN) % DIRECT_ALIGN;
        Self {
            file,
            direct,
            buf,
            start,
            len: 0,
            written: 0,
            unsynced: 0,
        }
    }

    fn push(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = (STAGE - self.len).min(data.len());
            let at = self.start + self.len;
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
            if self.len == STAGE {
                self.write_stage(STAGE)?;
            }
        }
        Ok(())
    }

    /// Writes the first `n` staged bytes (`n` a multiple of the alignment
    /// when writing directly) at the current end.
    fn write_stage(&mut self, n: usize) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let bytes = &self.buf[self.start..self.start + n];
        let written_directly = match &self.direct {
            Some(direct) => match direct.write_all_at(bytes, self.written) {
                Ok(()) => true,
                // Opened, but the alignment does not suit the device: the
                // same bytes again, through the page cache, from now on.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    self.direct = None;
                    false
                }
                Err(e) => return Err(e),
            },
            None => false,
        };
        if !written_directly {
            self.file.write_all_at(bytes, self.written)?;
            self.unsynced += n;
            if self.unsynced >= SYNC_EVERY {
                // Flush as we go, overlapping with the encryption, so that
                // commit's fsync has little left.
                self.file.sync_data()?;
                self.unsynced = 0;
            }
        }
        self.written += n as u64;
        self.len = 0;
        Ok(())
    }

    /// Writes what is staged and returns the file, cut to the bytes pushed.
    fn finish(mut self) -> io::Result<File> {
        let tail = self.len;
        if tail > 0 {
            if self.direct.is_some() {
                // A whole last block, zero padded, then cut to size.
                let padded = tail.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
                let at = self.start + tail;
                self.buf[at..self.start + padded].fill(0);
                self.write_stage(padded)?;
                self.written -= (padded - tail) as u64;
                self.file.set_len(self.written)?;
            } else {
                self.write_stage(tail)?;
            }
        }
        Ok(self.file)
    }
}

/// Buffers in flight between the encrypting and the writing thread.
const IN_FLIGHT: usize = 32;

/// Writes a sealed partition; nothing replaces the file at its path until
/// [`SealedWriter::commit`].
///
/// Encryption runs in the caller's thread and file writes in a helper
/// thread, so the two overlap.
pub struct SealedWriter {
    to_disk: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    free: std::sync::mpsc::Receiver<Vec<u8>>,
    disk: Option<std::thread::JoinHandle<io::Result<File>>>,
    tmp: Option<tempfile::TempPath>,
    dest: PathBuf,
    cipher: Aes256Gcm,
    header: [u8; HEADER_LEN],
    prefix: [u8; 7],
    counter: u32,
    buf: Vec<u8>,
}

impl SealedWriter {
    /// Starts a partition labelled `label` that will replace `path`.
    pub fn create(path: &Path, key: &PartitionKey, label: &str) -> Result<Self, SealError> {
        Self::create_with(path, key, label, true)
    }

    /// [`SealedWriter::create`], always writing through the page cache
    /// (the path taken where `O_DIRECT` is refused).
    #[cfg(test)]
    pub(crate) fn create_buffered(
        path: &Path,
        key: &PartitionKey,
        label: &str,
    ) -> Result<Self, SealError> {
        Self::create_with(path, key, label, false)
    }

    fn create_with(
        path: &Path,
        key: &PartitionKey,
        label: &str,
        allow_direct: bool,
    ) -> Result<Self, SealError> {
        if label.is_empty() || label.len() > MAX_LABEL {
            return Err(SealError::BadHeader(format!(
                "label {label:?}: 1 to {MAX_LABEL} bytes"
            )));
        }
        let dir = atoll_atomic_file::parent_dir(path);
        let mut random = [0u8; 23];
        getrandom::getrandom(&mut random)
            .map_err(|e| io_err("random salt")(io::Error::other(e.to_string())))?;
        let salt: [u8; 16] = random[..16].try_into().unwrap_or_default();
        let prefix: [u8; 7] = random[16..].try_into().unwrap_or_default();
        let (file_key, check) = file_keys(key, &salt, label);
        let header = Header::new(label, salt, prefix, check).bytes;
        let tmp = tempfile::Builder::new()
            .prefix(".sealed-")
            .tempfile_in(dir)
            .map_err(io_err("creating the partition"))?;
        let (file, tmp) = tmp.into_parts();
        let mut disk_writer = DiskWriter::new(file, &tmp, allow_direct);
        let (to_disk, from_cipher) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (give_back, free) = std::sync::mpsc::channel::<Vec<u8>>();
        for _ in 0..IN_FLIGHT {
            let _ = give_back.send(Vec::with_capacity(CHUNK_SIZE + TAG_LEN));
        }
        let disk = std::thread::Builder::new()
            .name("sealed-writer".into())
            .spawn(move || -> io::Result<File> {
                disk_writer.push(&header)?;
                for mut chunk in from_cipher {
                    disk_writer.push(&chunk)?;
                    chunk.clear();
                    // The encrypting side may be gone already.
                    let _ = give_back.send(chunk);
                }
                disk_writer.finish()
            })
            .map_err(io_err("starting the writer thread"))?;
        let buf = free.recv().unwrap_or_default();
        Ok(Self {
            to_disk: Some(to_disk),
            free,
            disk: Some(disk),
            tmp: Some(tmp),
            dest: path.to_owned(),
            cipher: Aes256Gcm::new(file_key.as_ref().into()),
            header,
            prefix,
            counter: 0,
            buf,
        })
    }

    fn disk_failed(&mut self) -> io::Error {
        self.to_disk = None;
        match self.disk.take().map(|h| h.join()) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("the partition writer thread stopped"),
        }
    }

    fn emit(&mut self, last: bool) -> io::Result<()> {
        let n = nonce(&self.prefix, self.counter, last);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&n), &self.header, &mut self.buf)
            .map_err(|_| io::Error::other("AES-GCM encryption failed"))?;
        self.buf.extend_from_slice(&tag);
        let next = match self.free.recv() {
            Ok(b) => b,
            Err(_) => return Err(self.disk_failed()),
        };
        let full = std::mem::replace(&mut self.buf, next);
        let sent = self.to_disk.as_ref().map(|tx| tx.send(full).is_ok());
        if sent != Some(true) {
            return Err(self.disk_failed());
        }
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| io::Error::other("partition larger than 2^32 chunks"))?;
        Ok(())
    }

    /// Writes the last chunk, syncs the file, renames it over the
    /// destination and syncs the directory.
    pub fn commit(mut self) -> Result<(), SealError> {
        self.emit(true).map_err(io_err("writing the last chunk"))?;
        self.to_disk = None;
        let file = match self.disk.take().map(|h| h.join()) {
            Some(Ok(Ok(file))) => file,
            Some(Ok(Err(e))) => return Err(io_err("writing the partition")(e)),
            _ => {
                return Err(io_err("writing the partition")(io::Error::other(
                    "the writer thread panicked",
                )))
            }
        };
        file.sync_all().map_err(io_err("syncing the partition"))?;
        drop(file);
        let tmp = self
            .tmp
            .take()
            .ok_or_else(|| io_err("replacing the partition")(io::Error::other("no temp file")))?;
        tmp.persist(&self.dest)
            .map_err(|e| io_err("replacing the partition")(e.error))?;
        atoll_atomic_file::sync_dir(atoll_atomic_file::parent_dir(&self.dest))
            .map_err(io_err("syncing the directory"))?;
        Ok(())
    }
}

impl Drop for SealedWriter {
    fn drop(&mut self) {
        // Uncommitted: stop the writer; the temp file is removed with
        // `tmp`.
        self.to_disk = None;
        if let Some(h) = self.disk.take() {
            let _ = h.join();
        }
    }
}

impl Write for SealedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let room = CHUNK_SIZE - self.buf.len();
            let n = room.min(rest.len());
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            // A full chunk is never the last one: the last is shorter
            // (possibly empty), written by `commit`.
            if self.buf.len() == CHUNK_SIZE {
                self.emit(false)?;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads a sealed partition, authenticating each chunk before any of its
/// bytes are returned.
pub struct SealedReader {
    input: BufReader<File>,
    cipher: Aes256Gcm,
    header: [u8; HEADER_LEN],
    prefix: [u8; 7],
    counter: u32,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
    error: Arc<Mutex<Option<SealError>>>,
}

impl SealedReader {
    /// Opens `path`, checking the header, the label and that `key` is the
    /// one it was sealed with.
    pub fn open(path: &Path, key: &PartitionKey, label: &str) -> Result<Self, SealError> {
        let file = File::open(path).map_err(io_err(&path.display().to_string()))?;
        let mut input = BufReader::with_capacity(CHUNK_SIZE + TAG_LEN, file);
        let mut b = [0u8; HEADER_LEN];
        input.read_exact(&mut b).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                SealError::BadHeader("file shorter than a header".into())
            } else {
                io_err("reading the header")(e)
            }
        })?;
        let header = Header::parse(b)?;
        if header.label() != label {
            return Err(SealError::WrongLabel {
                expected: label.into(),
                found: header.label(),
            });
        }
        let (file_key, check) = file_keys(key, header.salt(), label);
        if header.check() != check {
            return Err(SealError::WrongKey);
        }
        Ok(Self {
            input,
            cipher: Aes256Gcm::new(file_key.as_ref().into()),
            prefix: header.prefix(),
            header: header.bytes,
            counter: 0,
            chunk: Vec::with_capacity(CHUNK_SIZE + TAG_LEN),
            pos: 0,
            done: false,
            error: Arc::new(Mutex::new(None)),
        })
    }

    /// Where the reader records the typed cause of an error it returned
    /// through `io::Read` (which layers above may wrap).
    pub fn error_slot(&self) -> Arc<Mutex<Option<SealError>>> {
        self.error.clone()
    }

    fn fail(&self, e: SealError) -> io::Error {
        let msg = e.to_string();
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        io::Error::other(msg)
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        self.chunk.resize(CHUNK_SIZE + TAG_LEN, 0);
        let mut got = 0;
        while got < self.chunk.len() {
            match self.input.read(&mut self.chunk[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if got < TAG_LEN {
            return Err(self.fail(SealError::Truncated));
        }
        let last = got < CHUNK_SIZE + TAG_LEN;
        self.chunk.truncate(got);
        let tag_at = got - TAG_LEN;
        let tag = *Tag::from_slice(&self.chunk[tag_at..]);
        self.chunk.truncate(tag_at);
        let n = nonce(&self.prefix, self.counter, last);
        if self
            .cipher
            .decrypt_in_place_detached(Nonce::from_slice(&n), &self.header, &mut self.chunk, &tag)
            .is_err()
        {
            // A full-size chunk that does not authenticate as a middle one
            // may be a last chunk cut off by truncation of what followed;
            // either way the file is not what was sealed.
            let counter = self.counter;
            return Err(self.fail(SealError::Corrupt(counter)));
        }
        self.counter += 1;
        self.pos = 0;
        if last {
            let mut extra = [0u8; 1];
            if self.input.read(&mut extra)? != 0 {
                return Err(self.fail(SealError::TrailingData));
            }
            self.done = true;
        }
        Ok(())
    }
}

impl Read for SealedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
