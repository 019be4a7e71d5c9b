//! The crate arrows of DESIGN.md: `consensus <- actors <- admin <- node`,
//! `sip <- node`, `media <- node`, and `chaos` is a dependency of no
//! production crate. `sip` depends on no other Carillon crate; `media` uses
//! its SDP parser (one SDP parser for the whole product), and nothing else
//! of Carillon.
//! Read from each crate's `[dependencies]` (dev-dependencies may differ).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The `carillon-*` crates named in the `[dependencies]` table of `manifest`.
fn production_dependencies(manifest: &str) -> BTreeSet<String> {
    let mut in_dependencies = false;
    let mut found = BTreeSet::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if in_dependencies {
            if let Some(name) = line
                .split(['=', '.', ' '])
                .next()
                .filter(|n| n.starts_with("carillon-"))
            {
                found.insert(name.trim_start_matches("carillon-").to_string());
            }
        }
    }
    found
}

#[test]
fn crates_depend_only_on_crates_to_their_left() {
    // crate -> (folder, crates it may depend on)
    let allowed: BTreeMap<&str, (&str, &[&str])> = BTreeMap::from([
        ("consensus", ("consensus", &[][..])),
        ("actors", ("actors", &["consensus"][..])),
        ("admin", ("admin", &["consensus", "actors"][..])),
        (
            "node",
            (
                "node",
                &["consensus", "actors", "admin", "media", "sip"][..],
            ),
        ),
        ("sip", ("node/sip", &[][..])),
        ("media", ("media", &["sip"][..])),
    ]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for (krate, (folder, allowed)) in &allowed {
        let manifest = std::fs::read_to_string(root.join(folder).join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("carillon-{krate} is expected in {folder}/: {e}"));
        checked += 1;
        let deps = production_dependencies(&manifest);
        for dep in &deps {
            assert!(
                allowed.contains(&dep.as_str()),
                "{krate} must not depend on carillon-{dep}"
            );
        }
    }
    assert!(
        checked == allowed.len(),
        "the workspace crates were found from {}",
        root.display()
    );
    assert_eq!(
        production_dependencies("[dependencies]\ncarillon-actors.workspace = true\nfoo = 1\n[dev-dependencies]\ncarillon-chaos = 1\n"),
        BTreeSet::from(["actors".to_string()]),
        "the manifest reader sees production dependencies only"
    );
}
