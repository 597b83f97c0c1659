//! docs/configuration.md is rendered from the clap definitions; this test
//! keeps the committed file equal to them, so every new flag is documented.
//! `UPDATE_CONFIG_REFERENCE=1 cargo test -p sagascope --test config_reference`
//! rewrites it.

use std::path::PathBuf;

#[test]
fn docs_configuration_md_matches_the_flags() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let rendered = sagascope::config_reference::render();
    if std::env::var_os("UPDATE_CONFIG_REFERENCE").is_some() {
        std::fs::write(&path, &rendered).expect("write docs/configuration.md");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "docs/configuration.md is out of date with the flags: run \
         `UPDATE_CONFIG_REFERENCE=1 cargo test -p sagascope --test config_reference` \
         and commit the file"
    );
}
