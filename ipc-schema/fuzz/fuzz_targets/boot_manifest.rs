//! `BootManifest` (the EL3 boot manifest at offset 0 of the shared page)
//! and the structures it points to, from arbitrary bytes.
//!
//! Nothing in Atoll interprets a manifest yet, so this checks the layouts:
//! each reads from exactly its size, from any prefix at least that long,
//! and writes back the bytes it was read from.
#![no_main]

use ipc_schema::el3::{BootManifest, ConsoleInfo, DramBank};
use libfuzzer_sys::fuzz_target;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

fn layout<T: FromBytes + IntoBytes + Immutable + KnownLayout>(data: &[u8]) {
    let size = core::mem::size_of::<T>();
    assert_eq!(T::read_from_bytes(data).is_ok(), data.len() == size);
    match T::read_from_prefix(data) {
        Ok((v, rest)) => {
            assert!(data.len() >= size);
            assert_eq!(v.as_bytes(), &data[..size]);
            assert_eq!(rest.len(), data.len() - size);
        }
        Err(_) => assert!(data.len() < size),
    }
}

fuzz_target!(|data: &[u8]| {
    layout::<BootManifest>(data);
    layout::<DramBank>(data);
    layout::<ConsoleInfo>(data);
    if let Ok((m, _)) = BootManifest::read_from_prefix(data) {
        // Every field is plain data: reading them cannot fail.
        let _ = (m.version, m.plat_data, m.plat_dram.num_banks);
        let _ = (m.plat_console.num_consoles, m.plat_console.checksum);
    }
});
