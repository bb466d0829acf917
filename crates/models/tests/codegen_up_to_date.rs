//! CI fails when `src/generated.rs` is not what `cargo xtask codegen` makes from `openapi/`.

#[test]
fn generated_models_match_the_spec() {
    let root = xtask::codegen::workspace_root();
    let fresh = xtask::codegen::generate_from(&root).expect("codegen runs");
    let committed = std::fs::read_to_string(root.join(xtask::codegen::OUTPUT)).unwrap();
    assert!(
        fresh == committed,
        "{} differs from a fresh generation from {}: run `cargo xtask codegen` and commit the result",
        xtask::codegen::OUTPUT,
        xtask::codegen::SPEC
    );
}

#[test]
fn the_spec_declares_the_fourteen_operations() {
    let ops: Vec<(&str, &str)> = stet_models::OPERATIONS
        .iter()
        .map(|o| (o.method, o.path))
        .collect();
    for want in [
        ("GET", "/accounts"),
        ("GET", "/accounts/{accountResourceId}/balances"),
        ("GET", "/accounts/{accountResourceId}/transactions"),
        ("GET", "/accounts/{accountResourceId}/overdrafts"),
        ("GET", "/accounts/{accountResourceId}/owners"),
        ("PUT", "/consents"),
        ("GET", "/end-user-identity"),
        ("GET", "/trusted-beneficiaries"),
        ("POST", "/funds-confirmations"),
        ("POST", "/payment-requests"),
        ("GET", "/payment-requests/{paymentRequestResourceId}"),
        ("PUT", "/payment-requests/{paymentRequestResourceId}"),
        (
            "POST",
            "/payment-requests/{paymentRequestResourceId}/confirmation",
        ),
        (
            "GET",
            "/payment-requests/{paymentRequestResourceId}/transactions",
        ),
    ] {
        assert!(ops.contains(&want), "missing {want:?}");
    }
    assert_eq!(ops.len(), 14);
}
