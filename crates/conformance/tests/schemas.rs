//! The schemas the crate carries are what `cargo xtask conformance-schemas` extracts from the
//! official STET files (in `shared/reference/stet/` beside the repository, as in CI).

#[test]
fn schemas_are_a_fresh_extraction() {
    let root = xtask::codegen::workspace_root();
    for (name, fresh) in xtask::schemas::extract(&root).expect("the official STET files") {
        let path = root.join(xtask::schemas::OUTPUT_DIR).join(name);
        let committed = std::fs::read_to_string(&path).unwrap();
        assert!(
            fresh == committed,
            "{} differs from a fresh extraction: run `cargo xtask conformance-schemas` and commit the result",
            path.display()
        );
    }
}

#[test]
fn the_catalogue_and_its_checks_agree() {
    let catalogue = stet_conformance::Catalogue::embedded();
    let names = stet_conformance::check_names();
    // Every check is used by a case of the embedded catalogue, and no case names an unknown one.
    for name in &names {
        assert!(
            catalogue.cases.iter().any(|c| c.check == *name),
            "check {name} is used by no case"
        );
    }
    assert_eq!(catalogue.cases.len(), names.len());
}
