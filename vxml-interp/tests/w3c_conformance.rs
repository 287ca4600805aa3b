//! A first pass over the W3C VoiceXML IR tests of category `no-input` from
//! `shared/conformance/vxml-ir` (skipped when that folder is absent). Every test's verdict is
//! printed; the ones listed in `KNOWN_PASSING` must keep passing.

mod common;

use std::path::PathBuf;

use common::MapFetcher;
use vxml_interp::PlayItem;
use vxml_interp::platform::sim::SimPlatform;

/// W3C IR test ids that pass today (regressions fail this test).
const KNOWN_PASSING: &[&str] = &[
    "vxml20-11",
    "vxml20-12",
    "vxml20-32",
    "vxml20-43",
    "vxml20-44",
    "vxml20-45",
    "vxml20-48",
    "vxml20-56",
    "vxml20-58",
    "vxml20-76",
    "vxml20-82",
    "vxml20-96",
    "vxml20-112",
    "vxml20-154",
    "vxml20-260",
    "vxml20-262",
    "vxml20-338",
    "vxml20-369",
    "vxml20-377",
    "vxml20-378",
    "vxml20-390",
    "vxml20-391",
    "vxml20-394",
    "vxml20-398",
    "vxml20-400",
    "vxml20-404",
    "vxml20-405",
    "vxml20-406",
    "vxml20-408",
    "vxml20-431",
    "vxml20-436",
    "vxml20-511",
    "vxml20-512",
    "vxml20-514",
    "vxml20-515",
    "vxml20-517",
    "vxml20-524",
    "vxml20-526",
    "vxml20-527",
    "vxml20-528",
    "vxml20-529",
    "vxml20-532",
    "vxml20-535",
    "vxml20-552",
    "vxml20-553",
    "vxml20-555",
    "vxml20-558",
    "vxml20-562",
    "vxml20-614",
    "vxml20-621",
    "vxml20-626",
    "vxml20-638",
    "vxml20-1002",
    "vxml20-1003",
    "vxml20-1005",
    "vxml20-1006",
    "vxml20-1007",
    "vxml20-1008",
    "vxml20-1026",
    "vxml20-1179",
];

fn suite() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/vxml-ir");
    dir.join("manifest.tsv").is_file().then_some(dir)
}

fn verdict(platform: &SimPlatform, reason: &str) -> Result<(), String> {
    let said = |word: &str| {
        platform
            .played
            .iter()
            .any(|p| matches!(p, PlayItem::Text(t) if t.trim() == word))
    };
    if said("fail") {
        Err(format!("said fail: {:?}", platform.played))
    } else if !said("pass") {
        Err(format!("no verdict; ended with {reason}"))
    } else {
        Ok(())
    }
}

#[test]
fn w3c_no_input_tests() {
    // The suite ships beside the repository (../shared/conformance, also in CI). Missing, it is a
    // failure, not a silent pass; PARLEY_SKIP_W3C=1 opts out explicitly.
    let Some(dir) = suite() else {
        if std::env::var_os("PARLEY_SKIP_W3C").is_some() {
            eprintln!("conformance suite not found; skipped (PARLEY_SKIP_W3C)");
            return;
        }
        panic!("conformance suite not found beside the repository (../shared/conformance/vxml-ir)");
    };
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).unwrap();
    let (mut passed, mut failed) = (Vec::new(), 0);
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [id, category, start, ..] = cols[..] else {
            continue;
        };
        if category != "no-input" {
            continue;
        }
        let mut fetcher = MapFetcher::new(dir.join(id));
        fetcher.txml_to_vxml = true;
        let mut platform = SimPlatform::default();
        let url = common::url(start);
        let exit = common::block_on(&mut platform, &fetcher, url);
        match verdict(&platform, &exit.reason) {
            Ok(()) => {
                println!("PASS {id}");
                passed.push(id.to_owned());
            }
            Err(why) => {
                println!("FAIL {id}: {}", why.chars().take(200).collect::<String>());
                failed += 1;
            }
        }
    }
    println!("{} passed, {failed} failed", passed.len());
    for id in KNOWN_PASSING {
        assert!(passed.iter().any(|p| p == id), "{id} regressed");
    }
}
