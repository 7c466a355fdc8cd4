//! Parsing, validation and plan tests.

use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::plan::{block_size, mpidr_of_index, ripas_entries};

const MIB: u64 = 1 << 20;

fn base_desc() -> RealmDescription {
    RealmDescription {
        realm: RealmConfig {
            name: Some("t".into()),
            ipa_width: 40,
            hash_algo: HashAlgo::Sha256,
            rpv: [0; 64],
            lpa2: false,
            sve_vl: None,
            num_bps: 1,
            num_wps: 1,
            pmu_counters: None,
            vmid: None,
        },
        memory: MemoryConfig {
            ram: vec![RamRegion {
                base: 0x4000_0000,
                size: 4 * MIB,
            }],
            ripas_level: 3,
        },
        images: vec![Image {
            name: "a".into(),
            ipa: 0x4000_0000,
            data: vec![0xaa; 5000],
            measured: true,
        }],
        recs: vec![RecConfig {
            pc: 0x4000_0000,
            gprs: vec![1, 2],
            runnable: true,
        }],
    }
}

fn err(d: &RealmDescription) -> DescriptionError {
    d.validate().expect_err("description should be refused")
}

#[test]
fn base_description_is_valid() {
    base_desc().validate().unwrap();
}

#[test]
fn rtt_config_matches_the_valid_table() {
    assert_eq!(rtt_config(31), None);
    assert_eq!(
        rtt_config(32),
        Some(RttConfig {
            level_start: 2,
            num_start: 4
        })
    );
    assert_eq!(
        rtt_config(34),
        Some(RttConfig {
            level_start: 2,
            num_start: 16
        })
    );
    assert_eq!(
        rtt_config(35),
        Some(RttConfig {
            level_start: 1,
            num_start: 1
        })
    );
    assert_eq!(
        rtt_config(39),
        Some(RttConfig {
            level_start: 1,
            num_start: 1
        })
    );
    assert_eq!(
        rtt_config(40),
        Some(RttConfig {
            level_start: 1,
            num_start: 2
        })
    );
    assert_eq!(
        rtt_config(43),
        Some(RttConfig {
            level_start: 1,
            num_start: 16
        })
    );
    assert_eq!(
        rtt_config(44),
        Some(RttConfig {
            level_start: 0,
            num_start: 1
        })
    );
    assert_eq!(
        rtt_config(48),
        Some(RttConfig {
            level_start: 0,
            num_start: 1
        })
    );
    assert_eq!(
        rtt_config(52),
        Some(RttConfig {
            level_start: 0,
            num_start: 16
        })
    );
    assert_eq!(rtt_config(53), None);
    // Every configuration maps the whole IPA space; concatenated tables
    // map exactly it (a single table may be partly used).
    for w in 32..=52u8 {
        let c = rtt_config(w).unwrap();
        let covered = u128::from(c.num_start) * 512 * u128::from(block_size(c.level_start));
        assert!(covered >= 1u128 << w, "s2sz {w}");
        if c.num_start > 1 {
            assert_eq!(covered, 1u128 << w, "s2sz {w}");
        }
        assert!(c.num_start <= 16);
        // Never more levels than needed: one level up would not fit in 16 tables.
        if c.level_start < 2 {
            let below = u128::from(block_size(c.level_start + 1)) * 512 * 16;
            assert!(
                below < 1u128 << w,
                "s2sz {w} could start at level {}",
                c.level_start + 1
            );
        }
    }
}

#[test]
fn mpidr_encoding() {
    assert_eq!(mpidr_of_index(0), 0);
    assert_eq!(mpidr_of_index(15), 0xf);
    assert_eq!(mpidr_of_index(16), 0x100);
    assert_eq!(mpidr_of_index(0x1234), 0x01_2304);
}

#[test]
fn ipa_width_errors() {
    let mut d = base_desc();
    d.realm.ipa_width = 31;
    assert!(matches!(
        err(&d),
        DescriptionError::IpaWidth { value: 31, .. }
    ));
    d.realm.ipa_width = 49;
    assert!(matches!(
        err(&d),
        DescriptionError::IpaWidth {
            max: 48,
            lpa2: false,
            ..
        }
    ));
    d.realm.lpa2 = true;
    d.validate().unwrap();
    d.realm.ipa_width = 53;
    assert!(matches!(
        err(&d),
        DescriptionError::IpaWidth { max: 52, .. }
    ));
}

#[test]
fn param_range_errors() {
    type Mutate = fn(&mut RealmConfig);
    let cases: [(Mutate, &str); 5] = [
        (|r| r.num_bps = 0, "num_bps"),
        (|r| r.num_wps = 64, "num_wps"),
        (|r| r.sve_vl = Some(16), "sve_vl"),
        (|r| r.pmu_counters = Some(32), "pmu_counters"),
        (|r| r.num_bps = 200, "num_bps"),
    ];
    for (f, name) in cases {
        let mut d = base_desc();
        f(&mut d.realm);
        match err(&d) {
            DescriptionError::ParamRange { field, .. } => assert_eq!(field, name),
            e => panic!("{name}: {e:?}"),
        }
    }
}

#[test]
fn memory_errors() {
    let mut d = base_desc();
    d.memory.ripas_level = 1;
    assert_eq!(err(&d), DescriptionError::RipasLevel(1));

    let mut d = base_desc();
    d.memory.ram.clear();
    assert_eq!(err(&d), DescriptionError::NoRam);

    let mut d = base_desc();
    d.memory.ram.push(RamRegion {
        base: 0x8000_0000,
        size: 0,
    });
    assert_eq!(err(&d), DescriptionError::EmptyRam(1));

    let mut d = base_desc();
    d.memory.ram[0].size = 0x1800;
    assert!(matches!(
        err(&d),
        DescriptionError::UnalignedRam { index: 0, .. }
    ));
    d.memory.ram[0] = RamRegion {
        base: 0x4000_0800,
        size: 0x1000,
    };
    assert!(matches!(
        err(&d),
        DescriptionError::UnalignedRam { index: 0, .. }
    ));

    // ipa_width 40: protected half ends at 2^39.
    let mut d = base_desc();
    d.memory.ram.push(RamRegion {
        base: (1 << 39) - 0x1000,
        size: 0x2000,
    });
    assert!(matches!(
        err(&d),
        DescriptionError::RamNotProtected {
            index: 1,
            limit: 0x80_0000_0000,
            ..
        }
    ));
    // Exactly up to the limit is fine.
    d.memory.ram[1].size = 0x1000;
    d.validate().unwrap();
    // Overflowing u64 is caught, not wrapped.
    d.memory.ram[1] = RamRegion {
        base: !0xfffu64,
        size: 0x2000,
    };
    assert!(matches!(err(&d), DescriptionError::RamNotProtected { .. }));

    let mut d = base_desc();
    d.memory.ram.push(RamRegion {
        base: 0x4030_0000,
        size: 0x20_0000,
    });
    assert_eq!(
        err(&d),
        DescriptionError::RamOverlap {
            first: 0,
            second: 1
        }
    );
    // Adjacent regions are fine.
    d.memory.ram[1].base = 0x4040_0000;
    d.validate().unwrap();
}

#[test]
fn image_errors() {
    let mut d = base_desc();
    d.images[0].data.clear();
    assert_eq!(err(&d), DescriptionError::EmptyImage("a".into()));

    let mut d = base_desc();
    d.images[0].ipa = 0x4000_0010;
    assert!(matches!(
        err(&d),
        DescriptionError::UnalignedImage {
            ipa: 0x4000_0010,
            ..
        }
    ));

    let mut d = base_desc();
    d.images[0].ipa = 1 << 39;
    assert!(matches!(
        err(&d),
        DescriptionError::ImageNotProtected { .. }
    ));

    let mut d = base_desc();
    d.images[0].ipa = 0x3fff_f000;
    assert!(matches!(
        err(&d),
        DescriptionError::ImageOutsideRam {
            ipa: 0x3fff_f000,
            ..
        }
    ));
    // Padding counts: 5000 bytes need two pages; the second one must be RAM.
    let mut d = base_desc();
    d.images[0].ipa = 0x4000_0000 + 4 * MIB - 0x1000;
    d.recs[0].pc = d.images[0].ipa;
    assert!(matches!(err(&d), DescriptionError::ImageOutsideRam { .. }));

    let mut d = base_desc();
    d.images.push(Image {
        name: "b".into(),
        ipa: 0x4000_1000,
        data: vec![1],
        measured: false,
    });
    assert_eq!(
        err(&d),
        DescriptionError::ImageOverlap {
            first: "a".into(),
            second: "b".into()
        }
    );
    d.images[1].ipa = 0x4000_2000;
    d.validate().unwrap();
}

#[test]
fn rec_errors() {
    let mut d = base_desc();
    d.recs.clear();
    assert_eq!(err(&d), DescriptionError::NoRecs);

    let mut d = base_desc();
    d.recs = vec![d.recs[0].clone(); MAX_RECS + 1];
    assert_eq!(
        err(&d),
        DescriptionError::TooManyRecs {
            count: MAX_RECS + 1,
            max: MAX_RECS
        }
    );
    d.recs.pop();
    d.validate().unwrap();

    let mut d = base_desc();
    d.recs[0].gprs = vec![0; 9];
    assert_eq!(
        err(&d),
        DescriptionError::TooManyGprs { index: 0, count: 9 }
    );

    let mut d = base_desc();
    d.recs[0].pc += 2;
    assert_eq!(
        err(&d),
        DescriptionError::UnalignedPc {
            index: 0,
            pc: 0x4000_0002
        }
    );

    let mut d = base_desc();
    d.recs[0].pc = 0x4010_0000;
    assert_eq!(
        err(&d),
        DescriptionError::PcOutsideImages {
            index: 0,
            pc: 0x4010_0000
        }
    );
    // A REC that waits for CPU_ON need not point into an image.
    d.recs[0].runnable = false;
    d.recs.push(RecConfig {
        pc: 0x4000_0000,
        gprs: vec![],
        runnable: true,
    });
    d.validate().unwrap();
}

fn steps(plan: &BuildPlan) -> Vec<Step<'_>> {
    plan.steps().collect()
}

#[test]
fn plan_ripas_level_3() {
    let plan = BuildPlan::new(&base_desc()).unwrap();
    let s = steps(&plan);
    assert!(matches!(s[0], Step::RealmCreate(_)));
    // s2sz 40: level 1 start, 2 tables; 4 MiB of RAM at 1 GiB needs one
    // level-2 table and two level-3 tables.
    assert_eq!(
        &s[1..5],
        &[
            Step::RttCreate {
                ipa: 0x4000_0000,
                level: 2
            },
            Step::RttCreate {
                ipa: 0x4000_0000,
                level: 3
            },
            Step::RttCreate {
                ipa: 0x4020_0000,
                level: 3
            },
            Step::InitRipas {
                base: 0x4000_0000,
                top: 0x4040_0000,
                level: 3
            },
        ]
    );
    match &s[5] {
        Step::Data {
            ipa,
            measured,
            content,
        } => {
            assert_eq!((*ipa, *measured), (0x4000_0000, true));
            assert!(content.iter().all(|&b| b == 0xaa));
        }
        other => panic!("{other:?}"),
    }
    match &s[6] {
        Step::Data { ipa, content, .. } => {
            assert_eq!(*ipa, 0x4000_1000);
            assert_eq!(content.len(), 4096);
            assert!(content[..5000 - 4096].iter().all(|&b| b == 0xaa));
            assert!(
                content[5000 - 4096..].iter().all(|&b| b == 0),
                "zero-padded"
            );
        }
        other => panic!("{other:?}"),
    }
    match &s[7] {
        Step::RecCreate(rec) => {
            assert_eq!(rec.index, 0);
            assert_eq!(rec.params.gprs, [1, 2, 0, 0, 0, 0, 0, 0]);
            assert!(rec.runnable());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s[8], Step::Activate);
    assert_eq!(s.len(), 9);
    assert_eq!(plan.rtt_count(), 3);
    assert_eq!(plan.data_page_count(), 2);
    assert_eq!(plan.ripas_entry_count(), 1024);
    let rc = plan.realm();
    assert_eq!(
        rc.rtt,
        RttConfig {
            level_start: 1,
            num_start: 2
        }
    );
    assert_eq!(rc.params.s2sz, 40);
    assert_eq!(rc.params.flags, 0);
}

#[test]
fn plan_ripas_level_2_splits_unaligned_edges() {
    let mut d = base_desc();
    d.memory.ripas_level = 2;
    // 0x401f_f000 .. 0x4060_1000: one page before a 2 MiB boundary, two
    // whole blocks, one page after.
    d.memory.ram[0] = RamRegion {
        base: 0x401f_f000,
        size: 4 * MIB + 0x2000,
    };
    d.images[0].ipa = 0x4020_0000;
    d.recs[0].pc = 0x4020_0000;
    let plan = BuildPlan::new(&d).unwrap();
    let s = steps(&plan);
    assert_eq!(
        &s[1..8],
        &[
            Step::RttCreate {
                ipa: 0x4000_0000,
                level: 2
            },
            Step::RttCreate {
                ipa: 0x4000_0000,
                level: 3
            },
            Step::RttCreate {
                ipa: 0x4060_0000,
                level: 3
            },
            Step::InitRipas {
                base: 0x401f_f000,
                top: 0x4020_0000,
                level: 3
            },
            Step::InitRipas {
                base: 0x4020_0000,
                top: 0x4060_0000,
                level: 2
            },
            Step::InitRipas {
                base: 0x4060_0000,
                top: 0x4060_1000,
                level: 3
            },
            // The image's block gets its level-3 table only now, after
            // RIPAS was initialised at level 2.
            Step::RttCreate {
                ipa: 0x4020_0000,
                level: 3
            },
        ]
    );
    assert_eq!(plan.ripas_entry_count(), 1 + 2 + 1);
    assert!(matches!(
        s[8],
        Step::Data {
            ipa: 0x4020_0000,
            ..
        }
    ));
}

#[test]
fn plan_small_unaligned_region_at_level_2() {
    let mut d = base_desc();
    d.memory.ripas_level = 2;
    d.memory.ram[0] = RamRegion {
        base: 0x4000_0000,
        size: 0x3000,
    };
    d.images[0].data.truncate(10);
    let plan = BuildPlan::new(&d).unwrap();
    let ripas: Vec<_> = plan
        .steps()
        .filter(|s| matches!(s, Step::InitRipas { .. }))
        .collect();
    assert_eq!(
        ripas,
        vec![Step::InitRipas {
            base: 0x4000_0000,
            top: 0x4000_3000,
            level: 3
        }]
    );
}

#[test]
fn plan_starting_level_2_and_0() {
    let mut d = base_desc();
    d.realm.ipa_width = 33; // level 2 start: no level-2 RTT_CREATE
    let plan = BuildPlan::new(&d).unwrap();
    assert!(plan.steps().all(|s| !matches!(
        s,
        Step::RttCreate { level: 2, .. } | Step::RttCreate { level: 1, .. }
    )));
    assert_eq!(plan.rtt_count(), 2);

    d.realm.ipa_width = 48; // level 0 start: one level-1 table first
    let plan = BuildPlan::new(&d).unwrap();
    let s = steps(&plan);
    assert_eq!(s[1], Step::RttCreate { ipa: 0, level: 1 });
    assert_eq!(
        s[2],
        Step::RttCreate {
            ipa: 0x4000_0000,
            level: 2
        }
    );
    assert_eq!(plan.rtt_count(), 4);
}

#[test]
fn plan_is_independent_of_listing_order() {
    let mut a = base_desc();
    a.memory.ram.push(RamRegion {
        base: 0x1000_0000,
        size: 2 * MIB,
    });
    a.images.push(Image {
        name: "low".into(),
        ipa: 0x1000_0000,
        data: vec![7; 10],
        measured: false,
    });
    let mut b = a.clone();
    b.memory.ram.reverse();
    b.images.reverse();
    let pa = BuildPlan::new(&a).unwrap();
    let pb = BuildPlan::new(&b).unwrap();
    assert_eq!(steps(&pa), steps(&pb));
    // Lowest IPA first.
    assert!(matches!(
        pa.steps().find(|s| matches!(s, Step::Data { .. })),
        Some(Step::Data {
            ipa: 0x1000_0000,
            measured: false,
            ..
        })
    ));
}

#[test]
fn plan_realm_flags() {
    let mut d = base_desc();
    d.realm.sve_vl = Some(3);
    d.realm.pmu_counters = Some(6);
    d.realm.hash_algo = HashAlgo::Sha512;
    d.realm.vmid = Some(9);
    let plan = BuildPlan::new(&d).unwrap();
    let p = plan.realm().params;
    assert_eq!(p.flags, 0b110);
    assert_eq!((p.sve_vl, p.pmu_num_ctrs, p.hash_algo), (3, 6, 1));
    assert_eq!(plan.realm().vmid, Some(9));
    assert_eq!(plan.algo(), HashAlgo::Sha512);
}

#[test]
fn plan_refuses_invalid_descriptions() {
    let mut d = base_desc();
    d.recs.clear();
    assert_eq!(BuildPlan::new(&d), Err(DescriptionError::NoRecs));
}

#[test]
fn ripas_entry_iteration() {
    let e: Vec<_> = ripas_entries(0x4000_0000, 0x4000_3000, 3).collect();
    assert_eq!(
        e,
        vec![
            (0x4000_0000, 0x4000_1000),
            (0x4000_1000, 0x4000_2000),
            (0x4000_2000, 0x4000_3000)
        ]
    );
    let e: Vec<_> = ripas_entries(0, 4 * MIB, 2).collect();
    assert_eq!(e, vec![(0, 2 * MIB), (2 * MIB, 4 * MIB)]);
}

#[cfg(feature = "std")]
mod toml_files {
    use super::*;
    use alloc::string::ToString;
    use std::fs;
    use std::path::Path;

    const GOOD: &str = r#"
[realm]
name = "demo"
ipa_width = 40
hash_algo = "sha-512"
rpv = "0x0102"
sve_vl = 2
pmu_counters = 4
vmid = 5

[memory]
ripas_level = 2
ram = [ { base = 0x4000_0000, size = "4MiB" }, { base = 0x8000_0000, size = 0x1000 } ]

[[image]]
path = "payload.bin"
ipa = 0x4000_0000

[[image]]
path = "sub/data.bin"
ipa = 0x4010_0000
measured = false

[[rec]]
pc = 0x4000_0000
gprs = [1, 2, 3]

[[rec]]
pc = 0
runnable = false
"#;

    fn dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("payload.bin"), [0x5a; 100]).unwrap();
        fs::create_dir(d.path().join("sub")).unwrap();
        fs::write(d.path().join("sub/data.bin"), [1; 8192]).unwrap();
        d
    }

    fn parse(text: &str, dir: &Path) -> Result<RealmDescription, DescriptionError> {
        crate::toml::from_str(text, dir)
    }

    #[test]
    fn register_values_above_i64_as_strings() {
        let d = dir();
        let text = GOOD.replace(
            "gprs = [1, 2, 3]",
            r#"gprs = ["0xA5A5_A5A5_A5A5_A5A5", "18446744073709551615", 7, "0x10"]"#,
        );
        let desc = parse(&text, d.path()).unwrap();
        assert_eq!(
            desc.recs[0].gprs,
            [0xA5A5_A5A5_A5A5_A5A5, u64::MAX, 7, 0x10]
        );
        for bad in [r#""0x""#, r#""0x1_0000_0000_0000_0000""#, r#""xyz""#, "-1"] {
            let text = GOOD.replace("gprs = [1, 2, 3]", &std::format!("gprs = [{bad}]"));
            assert!(
                matches!(parse(&text, d.path()), Err(DescriptionError::Syntax(_))),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn parses_everything() {
        let d = dir();
        let desc = parse(GOOD, d.path()).unwrap();
        let r = &desc.realm;
        assert_eq!(r.name.as_deref(), Some("demo"));
        assert_eq!(r.ipa_width, 40);
        assert_eq!(r.hash_algo, HashAlgo::Sha512);
        assert_eq!(&r.rpv[..3], &[1, 2, 0]);
        assert_eq!(
            (r.sve_vl, r.pmu_counters, r.vmid),
            (Some(2), Some(4), Some(5))
        );
        assert_eq!((r.num_bps, r.num_wps), (1, 1));
        assert_eq!(desc.memory.ripas_level, 2);
        assert_eq!(
            desc.memory.ram[0],
            RamRegion {
                base: 0x4000_0000,
                size: 4 * MIB
            }
        );
        assert_eq!(desc.memory.ram[1].size, 0x1000);
        assert_eq!(desc.images[0].data, vec![0x5a; 100]);
        assert!(desc.images[0].measured);
        assert!(!desc.images[1].measured);
        assert_eq!(desc.images[1].data.len(), 8192);
        assert_eq!(desc.recs[0].gprs, vec![1, 2, 3]);
        assert!(desc.recs[0].runnable);
        assert!(!desc.recs[1].runnable);
        BuildPlan::new(&desc).unwrap();

        // load() resolves paths against the file's directory.
        let toml_path = d.path().join("realm.toml");
        fs::write(&toml_path, GOOD).unwrap();
        assert_eq!(RealmDescription::load(&toml_path).unwrap(), desc);
    }

    #[test]
    fn s2sz_alias_and_defaults() {
        let d = dir();
        let text = GOOD.replace("ipa_width = 40", "s2sz = 40");
        assert_eq!(parse(&text, d.path()).unwrap().realm.ipa_width, 40);
    }

    fn parse_err(from: &str, to: &str) -> DescriptionError {
        let d = dir();
        assert!(GOOD.contains(from), "{from}");
        parse(&GOOD.replacen(from, to, 1), d.path()).expect_err(to)
    }

    #[test]
    fn syntax_and_unknown_keys() {
        assert!(
            matches!(parse_err("vmid = 5", "vmdi = 5"), DescriptionError::Syntax(m) if m.contains("vmdi"))
        );
        assert!(matches!(
            parse_err("[memory]", "[memroy]"),
            DescriptionError::Syntax(_)
        ));
        assert!(
            matches!(parse_err("ripas_level = 2\n", "\n"), DescriptionError::Syntax(m) if m.contains("ripas_level"))
        );
        assert!(matches!(
            parse_err("pc = 0\n", "pc = \"zero\"\n"),
            DescriptionError::Syntax(_)
        ));
    }

    #[test]
    fn field_errors() {
        assert_eq!(
            parse_err("\"sha-512\"", "\"md5\""),
            DescriptionError::UnknownHashAlgo("md5".into())
        );
        assert!(matches!(
            parse_err("\"0x0102\"", "\"0x01zz\""),
            DescriptionError::BadHex {
                field: "realm.rpv",
                ..
            }
        ));
        assert!(matches!(
            parse_err("\"0x0102\"", "\"123\""),
            DescriptionError::BadHex { .. }
        ));
        let long = "\"".to_string() + &"ab".repeat(65) + "\"";
        assert_eq!(
            parse_err("\"0x0102\"", &long),
            DescriptionError::RpvTooLong(65)
        );
        assert!(
            matches!(parse_err("\"4MiB\"", "\"4 parsecs\""), DescriptionError::BadSize { field, .. } if field == "memory.ram[0].size")
        );
        assert_eq!(
            parse_err("ripas_level = 2", "ripas_level = 4"),
            DescriptionError::RipasLevel(4)
        );
        assert_eq!(
            parse_err("ripas_level = 2", "ripas_level = 1000"),
            DescriptionError::RipasLevel(1000)
        );
        assert!(matches!(
            parse_err("vmid = 5", "vmid = 70000"),
            DescriptionError::ParamRange { field: "vmid", .. }
        ));
        assert!(matches!(
            parse_err("sve_vl = 2", "sve_vl = -1"),
            DescriptionError::ParamRange {
                field: "sve_vl",
                value: -1,
                ..
            }
        ));
        assert!(matches!(
            parse_err("ipa_width = 40", "ipa_width = 60"),
            DescriptionError::IpaWidth { .. }
        ));
        assert!(matches!(
            parse_err("path = \"payload.bin\"", "path = \"missing.bin\""),
            DescriptionError::Io { .. }
        ));
        // Validation runs on parse.
        assert!(matches!(
            parse_err("ipa = 0x4010_0000", "ipa = 0x4000_0000"),
            DescriptionError::ImageOverlap { .. }
        ));
    }

    #[test]
    fn sizes() {
        use crate::toml::parse_size;
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("0x1000"), Some(4096));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("2 MiB"), Some(2 << 20));
        assert_eq!(parse_size("1gb"), Some(1 << 30));
        assert_eq!(parse_size("1_024"), Some(1024));
        assert_eq!(parse_size("2X"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999T"), None);
    }

    #[test]
    fn example_file_builds() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-realm.toml");
        let desc = RealmDescription::load(&path).unwrap();
        let plan = BuildPlan::new(&desc).unwrap();
        assert!(plan.data_page_count() >= 1);
        assert_eq!(plan.name(), Some("hello-realm"));
    }
}
