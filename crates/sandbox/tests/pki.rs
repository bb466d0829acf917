//! The test PKI read back with x509-parser, a parser this project did not write.

use std::path::Path;

use x509_parser::der_parser::ber::BerObject;
use x509_parser::der_parser::der::parse_der;
use x509_parser::prelude::*;

fn oid(o: &BerObject<'_>) -> String {
    o.as_oid().unwrap().to_id_string()
}

/// (statement OIDs, QcType OIDs, PSD2 roles, NCA name, NCA id, organizationIdentifier)
type Parsed = (
    Vec<String>,
    Vec<String>,
    Vec<(String, String)>,
    String,
    String,
    String,
);

fn qc_statements(pem: &[u8]) -> Parsed {
    let (_, pem) = parse_x509_pem(pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let org_id = cert
        .subject()
        .iter_attributes()
        .find(|a| a.attr_type().to_id_string() == "2.5.4.97")
        .and_then(|a| a.as_str().ok())
        .unwrap()
        .to_owned();
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.3")
        .expect("no QCStatements extension");
    assert!(!ext.critical);
    let (rest, statements) = parse_der(ext.value).unwrap();
    assert!(rest.is_empty());
    let mut ids = Vec::new();
    let mut types = Vec::new();
    let mut roles = Vec::new();
    let (mut nca_name, mut nca_id) = (String::new(), String::new());
    for statement in statements.as_sequence().unwrap() {
        let parts = statement.as_sequence().unwrap();
        let id = oid(&parts[0]);
        match id.as_str() {
            "0.4.0.1862.1.6" => {
                for t in parts[1].as_sequence().unwrap() {
                    types.push(oid(t));
                }
            }
            "0.4.0.19495.2" => {
                let psd2 = parts[1].as_sequence().unwrap();
                for role in psd2[0].as_sequence().unwrap() {
                    let r = role.as_sequence().unwrap();
                    roles.push((oid(&r[0]), r[1].as_str().unwrap().to_owned()));
                }
                nca_name = psd2[1].as_str().unwrap().to_owned();
                nca_id = psd2[2].as_str().unwrap().to_owned();
            }
            _ => {}
        }
        ids.push(id);
    }
    (ids, types, roles, nca_name, nca_id, org_id)
}

fn check_dir(dir: &Path) {
    for (file, qc_type) in [
        ("tpp-qseal.pem", "0.4.0.1862.1.6.2"),
        ("tpp-qwac.pem", "0.4.0.1862.1.6.3"),
    ] {
        let (ids, types, roles, nca_name, nca_id, org_id) =
            qc_statements(&std::fs::read(dir.join(file)).unwrap());
        assert_eq!(
            ids,
            ["0.4.0.1862.1.1", "0.4.0.1862.1.6", "0.4.0.19495.2"],
            "{file}"
        );
        assert_eq!(types, [qc_type], "{file}");
        let names: Vec<&str> = roles.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["PSP_AS", "PSP_PI", "PSP_AI", "PSP_IC"]);
        let oids: Vec<&str> = roles.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(
            oids,
            [
                "0.4.0.19495.1.1",
                "0.4.0.19495.1.2",
                "0.4.0.19495.1.3",
                "0.4.0.19495.1.4"
            ]
        );
        assert_eq!(nca_id, "FR-ACPR");
        assert!(nca_name.contains("prudentiel"));
        assert_eq!(org_id, "PSDFR-ACPR-12345");
    }
    // The server certificate names localhost and 127.0.0.1.
    let bank = std::fs::read(dir.join("bank.pem")).unwrap();
    let (_, pem) = parse_x509_pem(&bank).unwrap();
    let cert = pem.parse_x509().unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert!(names.iter().any(|n| n.contains("localhost")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("7f:00:00:01")), "{names:?}");
}

#[test]
fn a_fresh_pki_carries_the_psd2_qc_statements() {
    let dir = tempfile::tempdir().unwrap();
    stet_sandbox::pki::generate(dir.path()).unwrap();
    check_dir(dir.path());
}

#[test]
fn certs_example_carries_the_psd2_qc_statements() {
    check_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs.example"));
}
