//! The registration request body, built from the QSealC, the profile and the bank's variant.
//! Pure: no I/O.

use base64::Engine as _;
use der::Decode as _;
use serde_json::{Map, Value, json};
use stet_transport::RegistrationMetadata;
use stet_transport::inspect::{CertificateInfo, PspRole};

use super::RegistrationError;
use super::rules::{ContactShape, JwksShape, KidStrategy, RegistrationRules, X5cShape};
use crate::bank::Scopes;

/// The QSealC as registration needs it: its DER, subject, roles, serial and key.
#[derive(Debug, Clone)]
pub struct QsealCertificate {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// What `stet_transport::inspect` reads: subject, organizationIdentifier, roles.
    pub info: CertificateInfo,
    /// The subject's organizationName (`O`), the registration's `client_name`.
    pub organization: Option<String>,
    /// The serial number, big-endian bytes.
    pub serial: Vec<u8>,
    /// The RSA modulus and public exponent, big-endian, when the key is RSA.
    pub rsa: Option<(Vec<u8>, Vec<u8>)>,
}

impl QsealCertificate {
    /// Reads the first certificate of a PEM (or DER) file's bytes; `name` is for messages.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self, RegistrationError> {
        let bad = |detail: String| RegistrationError::Certificate {
            path: name.to_owned(),
            detail,
        };
        let der = if bytes.starts_with(b"-----") || bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            use rustls_pki_types::pem::PemObject as _;
            rustls_pki_types::CertificateDer::pem_slice_iter(bytes)
                .next()
                .ok_or_else(|| bad("no certificate in the file".to_owned()))?
                .map_err(|e| bad(stet_httpsig::describe_pem_error(&e)))?
                .to_vec()
        } else {
            bytes.to_vec()
        };
        let info = CertificateInfo::from_der(&der).map_err(|e| bad(e.to_string()))?;
        let cert = x509_cert::Certificate::from_der(&der).map_err(|e| bad(e.to_string()))?;
        let tbs = &cert.tbs_certificate;
        let organization = tbs
            .subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .find(|atv| atv.oid == der::oid::db::rfc4519::O)
            .and_then(|atv| {
                der::asn1::Utf8StringRef::try_from(&atv.value)
                    .map(|s| s.as_str().to_owned())
                    .or_else(|_| {
                        der::asn1::PrintableStringRef::try_from(&atv.value)
                            .map(|s| s.as_str().to_owned())
                    })
                    .ok()
            });
        let serial = tbs.serial_number.as_bytes().to_vec();
        let rsa = pkcs1::RsaPublicKey::from_der(
            tbs.subject_public_key_info.subject_public_key.raw_bytes(),
        )
        .ok()
        .map(|k| {
            (
                k.modulus.as_bytes().to_vec(),
                k.public_exponent.as_bytes().to_vec(),
            )
        });
        Ok(QsealCertificate {
            der,
            info,
            organization,
            serial,
            rsa,
        })
    }

    /// The serial number in decimal.
    pub fn serial_decimal(&self) -> String {
        decimal(&self.serial)
    }

    /// The certificate as `x5c` writes it: standard base64 of the DER.
    pub fn x5c(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.der)
    }
}

/// A big-endian unsigned number in decimal.
pub fn decimal(bytes: &[u8]) -> String {
    let mut digits: Vec<u8> = Vec::new(); // little-endian base 10
    for &byte in bytes {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            let v = u32::from(*d) * 256 + carry;
            *d = (v % 10) as u8;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    if digits.is_empty() {
        return "0".to_owned();
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

/// The scopes the certificate's PSD2 roles allow, in the bank's names.
pub fn scopes_for_roles(cert: &CertificateInfo, scopes: &Scopes) -> Vec<String> {
    let mut out = Vec::new();
    if cert.has_role(PspRole::AccountInformation) {
        out.push(scopes.aisp.clone());
    }
    if cert.has_role(PspRole::PaymentInitiation) {
        out.push(scopes.pisp.clone());
    }
    if cert.has_role(PspRole::CardIssuing) {
        out.push(scopes.cbpii.clone());
    }
    out
}

/// The PSD2 role a scope needs, in the bank's names; `None` for scopes no role governs
/// (`extended_transaction_history` rides on `aisp`).
fn role_for(scope: &str, scopes: &Scopes) -> Option<PspRole> {
    if scope == scopes.aisp {
        Some(PspRole::AccountInformation)
    } else if scope == scopes.pisp {
        Some(PspRole::PaymentInitiation)
    } else if scope == scopes.cbpii {
        Some(PspRole::CardIssuing)
    } else {
        PspRole::for_scope(scope)
    }
}

/// One key of the registration: a QSealC and its kid.
#[derive(Debug, Clone)]
pub struct RegisteredKey<'a> {
    /// The certificate.
    pub cert: &'a QsealCertificate,
    /// Its kid; `None` sends `"kid": null` (the bank assigns one).
    pub kid: Option<String>,
}

/// What goes into a request body besides the bank's rules.
#[derive(Debug, Clone)]
pub struct BodyInput<'a> {
    /// The keys, the current QSealC first (rotation adds the new one after it, and the
    /// newest one's roles bound the scope).
    pub keys: Vec<RegisteredKey<'a>>,
    /// `redirect_uris`.
    pub redirect_uris: Vec<String>,
    /// The profile's `registration` table.
    pub metadata: &'a RegistrationMetadata,
    /// For an update: the client id, and the registration access token when the bank wants it
    /// in the body.
    pub client_id: Option<String>,
    /// The registration access token (an update at a bank whose rules say `token_in_body`).
    pub registration_access_token: Option<String>,
}

/// The JSON body of a registration request (`POST`) or update (`PUT`) at a bank with `rules`.
///
/// Fails when the certificate carries no PSD2 role, when a scope asked for is wider than its
/// roles, or when something the spec requires is missing (a redirect URI, contacts).
pub fn request_body(
    rules: &RegistrationRules,
    scopes: &Scopes,
    input: &BodyInput<'_>,
) -> Result<Value, RegistrationError> {
    // The newest certificate decides the roles (a rotation lists it last).
    let leaf = input
        .keys
        .last()
        .ok_or_else(|| RegistrationError::Invalid("no QSealC to register".to_owned()))?
        .cert;
    let info = &leaf.info;
    let roles_text = info.roles_text();
    if info.psd2.as_ref().is_none_or(|p| p.roles.is_empty()) {
        return Err(RegistrationError::NoRoles {
            subject: info.subject.clone(),
        });
    }
    let allowed = scopes_for_roles(info, scopes);
    let asked: Vec<String> = match &input.metadata.scope {
        Some(list) => list.clone(),
        None => allowed.clone(),
    };
    for scope in &asked {
        match role_for(scope, scopes) {
            Some(role) if !info.has_role(role.clone()) => {
                return Err(RegistrationError::ScopeTooWide {
                    scope: scope.clone(),
                    role: role.to_string(),
                    roles: roles_text,
                });
            }
            _ => {}
        }
    }
    if asked.is_empty() {
        return Err(RegistrationError::Invalid(format!(
            "no scope to register: the QSealC's roles ({roles_text}) allow none of {}, {}, {}",
            scopes.aisp, scopes.pisp, scopes.cbpii
        )));
    }
    if input.redirect_uris.is_empty() {
        return Err(RegistrationError::Invalid(
            "no redirect URI: set `redirect_uri` in the profile, or `redirect_uris` in its \
             registration table"
                .to_owned(),
        ));
    }
    let client_name = input
        .metadata
        .client_name
        .clone()
        .or_else(|| leaf.organization.clone())
        .ok_or_else(|| {
            RegistrationError::Invalid(format!(
                "the QSealC ({}) has no organizationName: set `client_name` in the profile's \
                 registration table",
                info.subject
            ))
        })?;
    let provider_legal_id = info.organization_identifier.clone().ok_or_else(|| {
        RegistrationError::Invalid(format!(
            "the QSealC ({}) has no organizationIdentifier, which is the provider_legal_id",
            info.subject
        ))
    })?;
    let contacts = input.metadata.contacts.clone().unwrap_or_default();
    if contacts.is_empty() {
        return Err(RegistrationError::Invalid(
            "no contacts: add `contacts = [\"ops@your-company.example\"]` to the profile's \
             registration table (the bank reaches you there)"
                .to_owned(),
        ));
    }

    let mut body = Map::new();
    let mut put = |name: &str, value: Value| {
        if rules.sends(name) {
            body.insert(name.to_owned(), value);
        }
    };
    if let Some(id) = &input.client_id {
        put("client_id", json!(id));
    }
    if rules.token_in_body
        && let Some(rat) = &input.registration_access_token
    {
        put("registration_access_token", json!(rat));
    }
    put("redirect_uris", json!(input.redirect_uris));
    put("token_endpoint_auth_method", json!("tls_client_auth"));
    let grants: Vec<String> = rules
        .grant_types
        .iter()
        .map(|g| {
            if rules.uppercase_grants {
                g.to_ascii_uppercase()
            } else {
                g.to_ascii_lowercase()
            }
        })
        .collect();
    put("grant_types", json!(grants));
    put("response_types", json!(["code"]));
    put("client_name", json!(client_name));
    match rules.contact {
        ContactShape::Contacts => put("contacts", json!(contacts)),
        ContactShape::ContactObject => put(
            "contact",
            json!({"contact_name": client_name, "email": contacts[0], "phone_number": Value::Null}),
        ),
    }
    put("provider_legal_id", json!(provider_legal_id));
    put("scope", json!(asked.join(&rules.scope_separator)));
    for (name, value) in [
        ("client_uri", &input.metadata.client_uri),
        ("logo_uri", &input.metadata.logo_uri),
        ("tos_uri", &input.metadata.tos_uri),
        ("policy_uri", &input.metadata.policy_uri),
        ("client_legal_id", &input.metadata.client_legal_id),
    ] {
        if let Some(v) = value {
            put(name, json!(v));
        }
    }
    let keys: Vec<Value> = input.keys.iter().map(|k| jwk(rules, k)).collect();
    match rules.jwks {
        JwksShape::Object => put("jwks", json!({"keys": keys})),
        JwksShape::Array => put("jwks", json!(keys)),
        JwksShape::None => {}
    }
    for (name, value) in &rules.extra {
        body.insert(name.clone(), json!(value));
    }
    Ok(Value::Object(body))
}

/// One JSON Web Key: the QSealC as `x5c`, its kid, and the members the bank wants.
fn jwk(rules: &RegistrationRules, key: &RegisteredKey<'_>) -> Value {
    let b64 = key.cert.x5c();
    let url = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut jwk = Map::new();
    jwk.insert("kty".into(), json!(rules.key_type));
    jwk.insert(
        "kid".into(),
        key.kid.as_ref().map_or(Value::Null, |k| json!(k)),
    );
    jwk.insert(
        "x5c".into(),
        match rules.x5c {
            X5cShape::Array => json!([b64]),
            X5cShape::String => json!(b64),
        },
    );
    for member in &rules.key_members {
        match member.as_str() {
            "use" => {
                jwk.insert("use".into(), json!("sig"));
            }
            "key_ops" | "keys_ops" => {
                jwk.insert(member.clone(), json!(["verify"]));
            }
            "alg" => {
                jwk.insert("alg".into(), json!("RS256"));
            }
            "x5t#S256" => {
                use sha2::Digest as _;
                jwk.insert(
                    "x5t#S256".into(),
                    json!(url(&sha2::Sha256::digest(&key.cert.der))),
                );
            }
            "n" | "e" => {
                if let Some((n, e)) = &key.cert.rsa {
                    let strip = |b: &[u8]| {
                        let at = b.iter().position(|&x| x != 0).unwrap_or(b.len());
                        b[at..].to_vec()
                    };
                    let value = if member == "n" { strip(n) } else { strip(e) };
                    jwk.insert(member.clone(), json!(url(&value)));
                }
            }
            _ => {}
        }
    }
    Value::Object(jwk)
}

/// The kid to register for `cert` under `strategy`: `current` (the profile's key_id when it is
/// not a URL) or a new UUID for a TPP-chosen kid, the decimal serial, or none (bank-assigned).
pub fn kid_for(
    strategy: KidStrategy,
    cert: &QsealCertificate,
    current: Option<&str>,
) -> Option<String> {
    match strategy {
        KidStrategy::TppChosen => Some(
            current
                .filter(|k| !k.contains("://"))
                .map(str::to_owned)
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        ),
        KidStrategy::SerialDecimal => Some(cert.serial_decimal()),
        KidStrategy::BankAssigned => None,
    }
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn serials_in_decimal() {
        assert_eq!(decimal(&[]), "0");
        assert_eq!(decimal(&[0x01, 0x00]), "256");
        // The kid in LCL's registration stub, a QSealC serial read as decimal.
        assert_eq!(decimal(&u128::MAX.to_be_bytes()), u128::MAX.to_string());
        assert_eq!(
            decimal(&57_960_876_493_606_644_482_050_706_203_694_200_967u128.to_be_bytes()),
            "57960876493606644482050706203694200967"
        );
    }
}
