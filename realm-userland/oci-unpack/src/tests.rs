use std::io::Write;

use super::*;

/// A tar stream built entry by entry, with names written raw so tests can
/// craft what honest tools refuse to.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    fn raw(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        data: &[u8],
        link: &str,
    ) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(name, tar::EntryType::Regular, 0o644, data, "")
    }

    fn dir(&mut self, name: &str) -> &mut Self {
        self.raw(name, tar::EntryType::Directory, 0o755, b"", "")
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name, tar::EntryType::Symlink, 0o777, b"", target)
    }

    fn bytes(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()))
            .into_inner()
            .unwrap()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn unpack(tar: &[u8], root: &Path) -> Result<LayerReport, UnpackError> {
    unpack_layer(
        tar,
        MEDIA_TAR,
        root,
        &Limits::default(),
        &mut Usage::default(),
    )
}

/// Every path under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn honest_layer_unpacks_with_its_diff_id() {
    let root = tempfile::tempdir().unwrap();
    let tar = Tar::new()
        .dir("app/")
        .file("app/run.sh", b"#!/bin/sh\n")
        .symlink("app/link", "/etc/passwd")
        .bytes();
    let r = unpack(&tar, root.path()).unwrap();
    assert_eq!(
        r.diff_id,
        format!("sha256:{}", hex::encode(Sha256::digest(&tar)))
    );
    assert_eq!(r.entries, 3);
    assert_eq!(
        fs::read(root.path().join("app/run.sh")).unwrap(),
        b"#!/bin/sh\n"
    );
    // Symlinks are data: created as they are, never followed.
    assert_eq!(
        fs::read_link(root.path().join("app/link")).unwrap(),
        Path::new("/etc/passwd")
    );
}

#[test]
fn parent_dir_paths_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let tar = Tar::new().file("a/../../escaped", b"x").bytes();
    assert!(matches!(
        unpack(&tar, root.path()),
        Err(UnpackError::ParentDir(_))
    ));
    assert!(!root.path().parent().unwrap().join("escaped").exists());
}

#[test]
fn absolute_paths_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let tar = Tar::new().file("/tmp/atoll-absolute", b"x").bytes();
    assert!(matches!(
        unpack(&tar, root.path()),
        Err(UnpackError::AbsolutePath(_))
    ));
    assert!(!Path::new("/tmp/atoll-absolute").exists());
}

#[test]
fn symlink_escape_is_contained_or_refused() {
    let outside = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let target = outside.path().display().to_string();
    // evil -> an absolute outside directory; a later entry writes through it.
    let tar = Tar::new()
        .symlink("evil", &target)
        .file("evil/planted", b"x")
        .bytes();
    unpack(&tar, root.path()).unwrap();
    assert!(listing(outside.path()).is_empty(), "wrote outside the root");
    // An absolute link resolves inside the root, as in a container.
    let inside = root
        .path()
        .join(outside.path().strip_prefix("/").unwrap())
        .join("planted");
    assert!(inside.exists());
    // A relative link that climbs out is an escape: refused.
    let root2 = tempfile::tempdir().unwrap();
    let tar = Tar::new()
        .symlink("up", "../../../../../../..")
        .file("up/tmp/planted2", b"y")
        .bytes();
    let err = unpack(&tar, root2.path()).unwrap_err();
    assert!(matches!(err, UnpackError::Resolve(..)), "{err}");
    assert!(err.to_string().contains("outside the root"), "{err}");
    assert!(!Path::new("/tmp/planted2").exists());
}

#[test]
fn existing_symlink_is_replaced_not_written_through() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, b"original").unwrap();
    let root = tempfile::tempdir().unwrap();
    let tar = Tar::new()
        .symlink("f", &victim.display().to_string())
        .file("f", b"overwritten?")
        .bytes();
    unpack(&tar, root.path()).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"original");
    assert_eq!(fs::read(root.path().join("f")).unwrap(), b"overwritten?");
}

#[test]
fn hard_link_escape_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let tar = Tar::new()
        .raw("h", tar::EntryType::Link, 0o644, b"", "/etc/passwd")
        .bytes();
    assert!(matches!(
        unpack(&tar, root.path()),
        Err(UnpackError::BadHardLink { .. })
    ));
    let tar = Tar::new()
        .raw("h", tar::EntryType::Link, 0o644, b"", "../x")
        .bytes();
    assert!(matches!(
        unpack(&tar, root.path()),
        Err(UnpackError::BadHardLink { .. })
    ));
    // A link to a file inside the root is fine.
    let tar = Tar::new()
        .file("a", b"data")
        .raw("b", tar::EntryType::Link, 0o644, b"", "a")
        .bytes();
    unpack(&tar, root.path()).unwrap();
    assert_eq!(fs::read(root.path().join("b")).unwrap(), b"data");
}

#[test]
fn devices_are_refused_and_setuid_stripped() {
    let root = tempfile::tempdir().unwrap();
    let tar = Tar::new()
        .raw("dev/sda", tar::EntryType::Block, 0o600, b"", "")
        .bytes();
    assert!(matches!(
        unpack(&tar, root.path()),
        Err(UnpackError::ForbiddenType {
            kind: "block device",
            ..
        })
    ));
    let tar = Tar::new()
        .raw("null", tar::EntryType::Char, 0o600, b"", "")
        .bytes();
    assert!(matches!(
        unpack(&tar, root.path()),
        Err(UnpackError::ForbiddenType { .. })
    ));
    let tar = Tar::new()
        .raw("su", tar::EntryType::Regular, 0o4755, b"x", "")
        .bytes();
    let mut usage = Usage::default();
    unpack_layer(
        &tar[..],
        MEDIA_TAR,
        root.path(),
        &Limits::default(),
        &mut usage,
    )
    .unwrap();
    let mode = fs::metadata(root.path().join("su"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
    assert_eq!(usage.stripped_mode_bits, 1);
}

#[test]
fn decompression_bomb_stops_at_the_cap() {
    // 64 MiB of zeros in one file compresses to ~64 KiB.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("bomb").unwrap();
    h.set_size(64 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append(&h, io::repeat(0).take(64 << 20)).unwrap();
    let gz = gzip(&tar.into_inner().unwrap());
    assert!(gz.len() < 1 << 20);
    let root = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_total_bytes: 4 << 20,
        ..Limits::default()
    };
    let err = unpack_layer(
        &gz[..],
        MEDIA_TAR_GZIP,
        root.path(),
        &limits,
        &mut Usage::default(),
    )
    .unwrap_err();
    assert!(matches!(err, UnpackError::TooLarge(_)), "{err}");
    // Per-file cap too.
    let limits = Limits {
        max_file_bytes: 1 << 20,
        ..Limits::default()
    };
    let err = unpack_layer(
        &gz[..],
        MEDIA_TAR_GZIP,
        root.path(),
        &limits,
        &mut Usage::default(),
    )
    .unwrap_err();
    assert!(matches!(err, UnpackError::FileTooLarge(..)), "{err}");
}

/// Writes each tar (gzipped or not) as a layer file in `dir`, with its
/// diff_id.
fn layer_files(dir: &Path, tars: &[Vec<u8>], gzipped: bool) -> Vec<Layer> {
    tars.iter()
        .enumerate()
        .map(|(i, t)| {
            let path = dir.join(format!("l{i}"));
            fs::write(&path, if gzipped { gzip(t) } else { t.clone() }).unwrap();
            Layer {
                path,
                media_type: if gzipped { MEDIA_TAR_GZIP } else { MEDIA_TAR }.into(),
                diff_id: format!("sha256:{}", hex::encode(Sha256::digest(t))),
            }
        })
        .collect()
}

#[test]
fn whiteouts_and_opaque_directories() {
    let dir = tempfile::tempdir().unwrap();
    let lower = Tar::new()
        .dir("etc/")
        .file("etc/keep", b"1")
        .file("etc/gone", b"2")
        .dir("var/")
        .file("var/old1", b"3")
        .file("var/old2", b"4")
        .bytes();
    let upper = Tar::new()
        .file("etc/.wh.gone", b"")
        .file("var/new", b"5")
        .file("var/.wh..wh..opq", b"")
        .bytes();
    let layers = layer_files(dir.path(), &[lower, upper], true);
    let dest = dir.path().join("rootfs");
    unpack_image(&layers, &dest, &Limits::default()).unwrap();
    assert_eq!(listing(&dest), ["etc", "etc/keep", "var", "var/new"]);
}

#[test]
fn an_opaque_marker_keeps_what_its_own_layer_made_and_nothing_from_below() {
    let dir = tempfile::tempdir().unwrap();
    let lower = Tar::new()
        .dir("etc/")
        .file("etc/old", b"1")
        .dir("etc/kept/")
        .file("etc/kept/old", b"2")
        .bytes();
    // The marker comes after this layer's entries; `etc/app/` has no entry
    // of its own (made implicitly for its file), `etc/kept/` is reused.
    let upper = Tar::new()
        .file("etc/app/conf", b"3")
        .file("etc/kept/new", b"4")
        .file("etc/.wh..wh..opq", b"")
        .bytes();
    let layers = layer_files(dir.path(), &[lower, upper], false);
    let dest = dir.path().join("rootfs");
    unpack_image(&layers, &dest, &Limits::default()).unwrap();
    assert_eq!(
        listing(&dest),
        ["etc", "etc/app", "etc/app/conf", "etc/kept", "etc/kept/new"]
    );
}

#[test]
fn diff_id_mismatch_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tar::new().file("a", b"1").bytes();
    let p = dir.path().join("l0");
    fs::write(&p, &t).unwrap();
    let layers = [Layer {
        path: p,
        media_type: MEDIA_TAR.into(),
        diff_id: format!("sha256:{}", "00".repeat(32)),
    }];
    let dest = dir.path().join("rootfs");
    let err = unpack_image(&layers, &dest, &Limits::default()).unwrap_err();
    assert!(matches!(err, UnpackError::DiffIdMismatch { .. }), "{err}");
    assert!(!dest.exists());
    assert_eq!(listing(dir.path()), ["l0"], "staging left behind");
}

#[test]
fn pack_and_unpack_round_trip() {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir_all(src.path().join("d/e")).unwrap();
    fs::write(src.path().join("d/e/f"), b"hello").unwrap();
    fs::set_permissions(src.path().join("d/e/f"), fs::Permissions::from_mode(0o751)).unwrap();
    std::os::unix::fs::symlink("e/f", src.path().join("d/l")).unwrap();
    let mut tar = Vec::new();
    pack_dir(src.path(), &mut tar, &Limits::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("copy");
    unpack_tar(&tar[..], &dest, &Limits::default()).unwrap();
    assert_eq!(listing(&dest), listing(src.path()));
    assert_eq!(fs::read(dest.join("d/l")).unwrap(), b"hello");
    let mode = fs::metadata(dest.join("d/e/f"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o751);
}

#[test]
fn hard_links_are_packed_once_and_unpack_as_links() {
    use std::os::unix::fs::MetadataExt;
    let src = tempfile::tempdir().unwrap();
    let big = vec![7u8; 1 << 20];
    fs::write(src.path().join("a"), &big).unwrap();
    for i in 0..20 {
        fs::hard_link(src.path().join("a"), src.path().join(format!("b{i:02}"))).unwrap();
    }
    let mut tar = Vec::new();
    let bytes = pack_dir(src.path(), &mut tar, &Limits::default()).unwrap();
    assert_eq!(bytes, tar.len() as u64);
    // One copy of the data plus headers, not 21.
    assert!(tar.len() < (1 << 20) + 64 * 1024, "{} bytes", tar.len());
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("copy");
    unpack_tar(&tar[..], &dest, &Limits::default()).unwrap();
    let ino = fs::metadata(dest.join("a")).unwrap().ino();
    assert_eq!(fs::metadata(dest.join("b19")).unwrap().ino(), ino);
    assert_eq!(fs::read(dest.join("b07")).unwrap(), big);
}

#[test]
fn pack_limits_are_the_unpack_limits() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("f"), vec![1u8; 100_000]).unwrap();
    let mut tar = Vec::new();
    let exact = pack_dir(src.path(), &mut tar, &Limits::default()).unwrap();
    // A stream of exactly the cap packs and unpacks under that cap ...
    let at_cap = Limits {
        max_total_bytes: exact,
        ..Default::default()
    };
    let mut again = Vec::new();
    assert_eq!(pack_dir(src.path(), &mut again, &at_cap).unwrap(), exact);
    let out = tempfile::tempdir().unwrap();
    unpack_tar(&again[..], &out.path().join("ok"), &at_cap).unwrap();
    // ... one byte less is refused by both, whatever the file bytes say.
    let below = Limits {
        max_total_bytes: exact - 1,
        ..Default::default()
    };
    let err = pack_dir(src.path(), &mut Vec::new(), &below).unwrap_err();
    assert!(matches!(err, UnpackError::TooLarge(_)), "{err}");
    let err = unpack_tar(&again[..], &out.path().join("no"), &below).unwrap_err();
    assert!(matches!(err, UnpackError::TooLarge(_)), "{err}");
    // Entries and file sizes too.
    let few = Limits {
        max_entries: 0,
        ..Default::default()
    };
    let err = pack_dir(src.path(), &mut Vec::new(), &few).unwrap_err();
    assert!(matches!(err, UnpackError::TooManyEntries(0)), "{err}");
    let small_files = Limits {
        max_file_bytes: 99_999,
        ..Default::default()
    };
    let err = pack_dir(src.path(), &mut Vec::new(), &small_files).unwrap_err();
    assert!(matches!(err, UnpackError::FileTooLarge(..)), "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(64))]
    /// Whatever names and link targets a layer carries, nothing appears
    /// outside the root.
    #[test]
    fn nothing_escapes(entries in proptest::collection::vec(
        (proptest::sample::select(vec!["a", "b", "..", ".", "/", "c/d", "/tmp", "x/../.."]),
         proptest::sample::select(vec!["a", "b", "c", "..", "/tmp", "../../..", "/"]),
         0u8..3), 1..8)) {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        fs::create_dir(&root).unwrap();
        let mut tar = Tar::new();
        for (i, (dir, target, kind)) in entries.iter().enumerate() {
            let name = format!("{dir}/n{i}");
            if name.len() >= 100 || target.len() >= 100 { continue; }
            match kind {
                0 => { tar.file(&name, b"x"); }
                1 => { tar.symlink(&name, target); }
                _ => { tar.dir(&name); }
            }
        }
        let _ = unpack(&tar.bytes(), &root);
        let around = listing(outer.path());
        proptest::prop_assert!(around.iter().all(|p| p == "root" || p.starts_with("root/")), "{around:?}");
    }
}
