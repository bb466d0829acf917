//! Faults that make the bank break one rule each, so that every check of `stet conformance`
//! can be seen to fail.
//!
//! A conformance check that passes against a compliant bank proves little until it has also
//! failed against a bank that breaks the rule it checks. Each [`CheckFault`] is such a bank:
//! it accepts what must be refused (an unsigned request, a stale `Date`, a token of the
//! wrong scope), or answers what must not be answered (a list without its required field, a
//! `_links.next` that loops). Each is narrow on purpose: it breaks one rule and leaves every
//! other answer as a compliant bank gives it, so the check it targets fails and no other one
//! changes. They are written in a faults spec like the others (`--faults accept-unsigned`),
//! and the table of them is in the crate manual.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use stet_httpsig::{
    KeyResolver, PublicKey, SignatureParams, VerifyError, VerifyPolicy, signing_string,
};

use crate::faults::{Fault, Faults};
use crate::server::{Reply, Req};
use crate::state::State;

/// The answer a [`CheckFault::DropField`] strips a required field from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `GET /accounts`: each account loses `cashAccountType`.
    Accounts,
    /// `GET /accounts/{id}/balances`: each balance loses `balanceType`.
    Balances,
    /// `GET /accounts/{id}/transactions`: each transaction loses `creditDebitIndicator`.
    Transactions,
    /// `GET /end-user-identity`: the identity loses `fullName`.
    Identity,
    /// `GET /trusted-beneficiaries`: each beneficiary loses `creditor`.
    Beneficiaries,
    /// `POST /funds-confirmations`: the report loses `result`.
    FundsConfirmation,
    /// `GET /payment-requests/{id}` and the confirmation's answer: the payment request loses
    /// `creationDateTime`.
    PaymentRequest,
    /// `GET /accounts/{id}/transactions`, pages after the first: each transaction loses
    /// `creditDebitIndicator` (the first page stays whole, so only a check that reads on finds
    /// it).
    LaterTransactions,
}

impl Resource {
    const ALL: [(Resource, &'static str); 8] = [
        (Resource::Accounts, "accounts"),
        (Resource::Balances, "balances"),
        (Resource::Transactions, "transactions"),
        (Resource::Identity, "identity"),
        (Resource::Beneficiaries, "beneficiaries"),
        (Resource::FundsConfirmation, "funds-confirmation"),
        (Resource::PaymentRequest, "payment-request"),
        (Resource::LaterTransactions, "later-transactions"),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(r, _)| *r == self)
            .map_or("", |(_, n)| n)
    }
}

/// One rule broken on purpose. The spec name of each is in [`CheckFault::NAMES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFault {
    /// API requests without a client certificate are served as if the TPP's QWAC had come.
    NoClientCert,
    /// Any client certificate passes the TLS handshake, whoever issued it.
    UntrustedClientCert,
    /// The token endpoint serves clients that sent no certificate.
    TokenWithoutCert,
    /// A request without `Authorization` is served.
    AcceptNoToken,
    /// An access token the bank never issued is accepted.
    AcceptUnknownToken,
    /// An expired access token is accepted.
    AcceptExpiredToken,
    /// A token is accepted for operations its scope (and grant) does not cover.
    IgnoreScopes,
    /// `/authorize` redirects without the client's `state`.
    DropState,
    /// `/authorize` gives a code without a PKCE `code_challenge`.
    PkceOptional,
    /// `/authorize` fails with a 500 on a request without a PKCE `code_challenge`: no code,
    /// but no refusal either.
    PkceCrash,
    /// The token endpoint does not check the PKCE `code_verifier`.
    PkceUnchecked,
    /// An authorization code can be exchanged more than once.
    ReusableCode,
    /// A request without `Signature` is served.
    AcceptUnsigned,
    /// The signature of a GET is parsed but never verified.
    UnverifiedGetSignature,
    /// `Digest` is never compared with the body.
    IgnoreDigest,
    /// A request whose `Digest` matches its body is served without verifying the signature.
    DigestInsteadOfSignature,
    /// `Date` may be of any age.
    AcceptStaleDate,
    /// A `keyId` the bank does not know is taken as the TPP's QSealC.
    AcceptUnknownKeyId,
    /// Signatures that leave required headers out of `headers` are accepted.
    AcceptIncompleteHeaders,
    /// A required field is left out of one kind of answer.
    DropField(Resource),
    /// Answers are labelled `text/plain`.
    TextContentType,
    /// `X-Request-ID` is not echoed.
    NoRequestId,
    /// A 404 answers a plain-text page instead of an `ErrorModel`.
    ErrorOutsideModel,
    /// A refusal of the API (400, 401, 403: a signature, a token, a scope refused) keeps its
    /// status but answers a JSON object without the `ErrorModel`'s `status` and `message`.
    RefusalOutsideModel,
    /// The last page of transactions links to a page after it, which does not exist.
    NextPastEnd,
    /// The last page of transactions links back to the first.
    LoopNext,
    /// Pages of transactions after the first have no `_links.self`.
    NoSelfLink,
    /// An empty list is `200` with no items instead of `204`.
    EmptyAs200,
    /// `dateTo` is ignored.
    IgnoreDateTo,
    /// `dateFrom` is ignored (the 90 days a token sees still bound the list).
    IgnoreDateFrom,
    /// Transactions older than 90 days come without the `extended_transaction_history` scope.
    HistoryUnlimited,
    /// The first payment request created is answered without `_links.consentApproval`.
    NoConsentApproval,
    /// A confirmed payment request reads as `RCVD` again.
    StatusRegress,
    /// A payment request is confirmed without the PSU's approval.
    ConfirmWithoutApproval,
    /// A cancellation is answered 200 and the payment request stays as it was.
    CancelIgnored,
    /// Unattended calls are never limited.
    UnlimitedUnattended,
}

impl CheckFault {
    /// Every fault without parameters, by its spec name. (`drop-field:resource=R` takes one.)
    pub const NAMES: [(CheckFault, &'static str); 35] = [
        (CheckFault::NoClientCert, "no-client-cert"),
        (CheckFault::UntrustedClientCert, "untrusted-client-cert"),
        (CheckFault::TokenWithoutCert, "token-without-cert"),
        (CheckFault::AcceptNoToken, "accept-no-token"),
        (CheckFault::AcceptUnknownToken, "accept-unknown-token"),
        (CheckFault::AcceptExpiredToken, "accept-expired-token"),
        (CheckFault::IgnoreScopes, "ignore-scopes"),
        (CheckFault::DropState, "drop-state"),
        (CheckFault::PkceOptional, "pkce-optional"),
        (CheckFault::PkceCrash, "pkce-crash"),
        (CheckFault::PkceUnchecked, "pkce-unchecked"),
        (CheckFault::ReusableCode, "reusable-code"),
        (CheckFault::AcceptUnsigned, "accept-unsigned"),
        (
            CheckFault::UnverifiedGetSignature,
            "unverified-get-signature",
        ),
        (CheckFault::IgnoreDigest, "ignore-digest"),
        (
            CheckFault::DigestInsteadOfSignature,
            "digest-instead-of-signature",
        ),
        (CheckFault::AcceptStaleDate, "accept-stale-date"),
        (CheckFault::AcceptUnknownKeyId, "accept-unknown-keyid"),
        (
            CheckFault::AcceptIncompleteHeaders,
            "accept-incomplete-headers",
        ),
        (CheckFault::TextContentType, "text-content-type"),
        (CheckFault::NoRequestId, "no-request-id"),
        (CheckFault::ErrorOutsideModel, "error-outside-model"),
        (CheckFault::RefusalOutsideModel, "refusal-outside-model"),
        (CheckFault::NextPastEnd, "next-past-end"),
        (CheckFault::LoopNext, "loop-next"),
        (CheckFault::NoSelfLink, "no-self-link"),
        (CheckFault::EmptyAs200, "empty-200"),
        (CheckFault::IgnoreDateTo, "ignore-date-to"),
        (CheckFault::IgnoreDateFrom, "ignore-date-from"),
        (CheckFault::HistoryUnlimited, "history-unlimited"),
        (CheckFault::NoConsentApproval, "no-consent-approval"),
        (CheckFault::StatusRegress, "status-regress"),
        (
            CheckFault::ConfirmWithoutApproval,
            "confirm-without-approval",
        ),
        (CheckFault::CancelIgnored, "cancel-ignored"),
        (CheckFault::UnlimitedUnattended, "unlimited-unattended"),
    ];

    /// Reads one part of a faults spec, when it names a check fault. `Ok(None)`: not one.
    pub(crate) fn parse(part: &str) -> Result<Option<CheckFault>, String> {
        if let Some((fault, _)) = Self::NAMES.iter().find(|(_, n)| *n == part) {
            return Ok(Some(*fault));
        }
        if let Some((_, name)) = Self::NAMES.iter().find(|(_, n)| {
            part.strip_prefix(n)
                .is_some_and(|rest| rest.starts_with(':'))
        }) {
            return Err(format!("`{name}` takes no parameters"));
        }
        let Some(rest) = part.strip_prefix("drop-field") else {
            return Ok(None);
        };
        let wanted = rest.strip_prefix(":resource=").ok_or_else(|| {
            "`drop-field` takes `resource=R` (accounts, balances, transactions, identity, \
             beneficiaries, funds-confirmation, payment-request, later-transactions)"
                .to_owned()
        })?;
        Resource::ALL
            .iter()
            .find(|(_, n)| *n == wanted)
            .map(|(r, _)| Some(CheckFault::DropField(*r)))
            .ok_or_else(|| {
                format!(
                    "unknown resource `{wanted}`: expected accounts, balances, transactions, \
                     identity, beneficiaries, funds-confirmation, payment-request or \
                     later-transactions"
                )
            })
    }
}

impl fmt::Display for CheckFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let CheckFault::DropField(r) = self {
            return write!(f, "drop-field:resource={}", r.name());
        }
        let name = Self::NAMES
            .iter()
            .find(|(c, _)| c == self)
            .map_or("", |(_, n)| n);
        f.write_str(name)
    }
}

impl Faults {
    /// Whether `fault` is on.
    pub(crate) fn breaks(&self, fault: CheckFault) -> bool {
        self.0.contains(&Fault::Check(fault))
    }
}

/// The TPP's QWAC (the first certificate of `tpp-qwac.pem`), for the faults that serve a
/// client without a certificate as if it had sent it.
fn tpp_qwac(state: &State) -> Option<Arc<CertificateDer<'static>>> {
    let pem = std::fs::read(&state.info.qwac_cert).ok()?;
    CertificateDer::pem_slice_iter(&pem)
        .next()?
        .ok()
        .map(|c| Arc::new(c.into_owned()))
}

/// `no-client-cert` and `token-without-cert`: a request without a client certificate gets the
/// TPP's, for the API or the token endpoint.
pub(crate) fn substitute_peer(state: &State, mut req: Req) -> Req {
    if req.peer.is_some() {
        return req;
    }
    let faults = &state.config.faults;
    let api = req.path.starts_with(&state.prefix) && faults.breaks(CheckFault::NoClientCert);
    let token = req.path == "/token" && faults.breaks(CheckFault::TokenWithoutCert);
    if api || token {
        req.peer = tpp_qwac(state);
    }
    req
}

/// A client-certificate verifier that lets every certificate through (`untrusted-client-cert`),
/// keeping the handshake signatures checked.
#[derive(Debug)]
struct AnyClientCert(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The client-certificate verifier the server uses: the CA's, or with `untrusted-client-cert`
/// one that accepts any certificate.
pub(crate) fn client_verifier(
    verifier: Arc<dyn ClientCertVerifier>,
    faults: &Faults,
) -> Arc<dyn ClientCertVerifier> {
    if faults.breaks(CheckFault::UntrustedClientCert) {
        Arc::new(AnyClientCert(verifier))
    } else {
        verifier
    }
}

/// The signature alone: the signing string rebuilt from the request and checked with the key,
/// nothing else (what a bank that skips the other checks still does).
fn signature_alone(request: &stet_httpsig::Request, keys: &dyn KeyResolver) -> bool {
    let Some(header) = request.header("signature") else {
        return false;
    };
    let Ok(params) = SignatureParams::parse(&header) else {
        return false;
    };
    let Ok(text) = signing_string(request, &params.headers, params.created, params.expires) else {
        return false;
    };
    keys.resolve(&params.key_id)
        .is_some_and(|key| key.verify_rsa_sha256(text.as_bytes(), &params.signature))
}

/// Whether a fault lets through a request whose signature check failed with `error`.
pub(crate) fn signature_let_through(
    state: &State,
    request: &stet_httpsig::Request,
    error: &VerifyError,
    now: SystemTime,
) -> bool {
    let faults = &state.config.faults;
    let keys: &HashMap<String, PublicKey> = &state.keys;
    let relaxed = |policy: VerifyPolicy, resolver: &dyn KeyResolver| {
        stet_httpsig::verify_request(request, &policy, resolver, now).is_ok()
    };
    match error {
        VerifyError::NoSignature => faults.breaks(CheckFault::AcceptUnsigned),
        VerifyError::Mismatch { .. } => {
            let get = request.method().eq_ignore_ascii_case("GET");
            let digest_matches = !request.body().is_empty()
                && request
                    .header("digest")
                    .is_some_and(|d| stet_httpsig::check_digest(&d, request.body()).is_ok());
            (get && faults.breaks(CheckFault::UnverifiedGetSignature))
                || (digest_matches && faults.breaks(CheckFault::DigestInsteadOfSignature))
        }
        VerifyError::Digest(_) => {
            faults.breaks(CheckFault::IgnoreDigest) && signature_alone(request, keys)
        }
        VerifyError::DateSkew { .. } => {
            faults.breaks(CheckFault::AcceptStaleDate)
                && relaxed(
                    VerifyPolicy {
                        max_skew: None,
                        ..VerifyPolicy::stet()
                    },
                    keys,
                )
        }
        VerifyError::UnknownKey(_) => {
            faults.breaks(CheckFault::AcceptUnknownKeyId)
                && keys
                    .get(&state.info.key_id)
                    .is_some_and(|qseal| relaxed(VerifyPolicy::stet(), qseal))
        }
        VerifyError::NotSigned(_) => {
            faults.breaks(CheckFault::AcceptIncompleteHeaders)
                && relaxed(
                    VerifyPolicy {
                        required_headers: Vec::new(),
                        require_psu_headers: false,
                        require_digest_with_body: false,
                        ..VerifyPolicy::stet()
                    },
                    keys,
                )
        }
        _ => false,
    }
}

/// A token for a request that a fault lets through without a valid one: the TPP's, with the
/// scope asked for, as from the PSU's consent.
pub(crate) fn stand_in_token(state: &State, scope: &str) -> crate::state::Token {
    crate::state::Token {
        client_id: state.info.client_id.clone(),
        scopes: vec![scope.to_owned()],
        grant: crate::state::Grant::Code,
        expires: std::time::Instant::now() + std::time::Duration::from_secs(60),
        payment: None,
        uses: 0,
        consent: None,
        psu: 1,
    }
}

/// `href` with its `page` query parameter set to `page` (removed for page 1).
fn with_page(href: &str, page: usize) -> String {
    let (base, query) = href.split_once('?').unwrap_or((href, ""));
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k != "page" {
            q.append_pair(&k, &v);
        }
    }
    if page > 1 {
        q.append_pair("page", &page.to_string());
    }
    let q = q.finish();
    if q.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{q}")
    }
}

/// Applies the faults that change an answer after the bank made it.
pub(crate) fn shape(state: &State, req: &Req, rest: &str, reply: &mut Reply) {
    let faults = &state.config.faults;
    if !faults.0.iter().any(|f| matches!(f, Fault::Check(_))) {
        return;
    }
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let get = req.method == "GET";
    let transactions = get && matches!(segments.as_slice(), ["accounts", _, "transactions"]);
    if reply.status == 404 && faults.breaks(CheckFault::ErrorOutsideModel) {
        reply
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        reply
            .headers
            .push(("Content-Type".into(), "text/plain".into()));
        reply.body = b"Not Found".to_vec();
        return;
    }
    if matches!(reply.status, 400 | 401 | 403) && faults.breaks(CheckFault::RefusalOutsideModel) {
        // JSON, so that only a check that reads the error model (not one that wants JSON) sees
        // the difference.
        let body = serde_json::json!({"error": "refused", "description": "request refused"});
        reply
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        reply
            .headers
            .push(("Content-Type".into(), "application/json".into()));
        reply.body = body.to_string().into_bytes();
        return;
    }
    if reply.status == 204 && get && faults.breaks(CheckFault::EmptyAs200) {
        let list = match segments.as_slice() {
            ["accounts"] => "accounts",
            ["trusted-beneficiaries"] => "beneficiaries",
            _ => "transactions",
        };
        let body = serde_json::json!({list: [], "_links": {"self": {"href": req.target}}});
        *reply = Reply::json(200, body.to_string().into_bytes());
        return;
    }
    if (200..300).contains(&reply.status)
        && !reply.body.is_empty()
        && faults.breaks(CheckFault::TextContentType)
    {
        reply
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        reply
            .headers
            .push(("Content-Type".into(), "text/plain; charset=utf-8".into()));
    }
    if reply.status != 200 {
        return;
    }
    let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(&reply.body) else {
        return;
    };
    let before = body.clone();
    let page: usize = req
        .query_param("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    if transactions && body.pointer("/_links/next").is_none() {
        let target = if faults.breaks(CheckFault::NextPastEnd) {
            body.pointer("/_links/self/href")
                .and_then(|h| h.as_str())
                .map(|h| with_page(h, page + 1))
        } else if faults.breaks(CheckFault::LoopNext) {
            body.pointer("/_links/first/href")
                .and_then(|h| h.as_str())
                .map(str::to_owned)
        } else {
            None
        };
        if let Some(href) = target {
            body["_links"]["next"] = serde_json::json!({"href": href});
        }
    }
    if transactions
        && page > 1
        && faults.breaks(CheckFault::NoSelfLink)
        && let Some(links) = body.get_mut("_links").and_then(|l| l.as_object_mut())
    {
        links.remove("self");
    }
    for fault in &faults.0 {
        let Fault::Check(CheckFault::DropField(resource)) = fault else {
            continue;
        };
        let (matches, list, field) = match resource {
            Resource::Accounts => (
                get && segments == ["accounts"],
                "accounts",
                "cashAccountType",
            ),
            Resource::Balances => (
                get && matches!(segments.as_slice(), ["accounts", _, "balances"]),
                "balances",
                "balanceType",
            ),
            Resource::Transactions => (transactions, "transactions", "creditDebitIndicator"),
            Resource::Identity => (get && segments == ["end-user-identity"], "", "fullName"),
            Resource::Beneficiaries => (
                get && segments == ["trusted-beneficiaries"],
                "beneficiaries",
                "creditor",
            ),
            Resource::FundsConfirmation => (
                req.method == "POST" && segments == ["funds-confirmations"],
                "",
                "result",
            ),
            Resource::PaymentRequest => (
                matches!(
                    (req.method.as_str(), segments.as_slice()),
                    ("GET", ["payment-requests", _])
                        | (
                            "POST",
                            ["payment-requests", _, "confirmation" | "o-confirmation"]
                        )
                ),
                "",
                "creationDateTime",
            ),
            Resource::LaterTransactions => (
                transactions && page > 1,
                "transactions",
                "creditDebitIndicator",
            ),
        };
        if !matches {
            continue;
        }
        match (list, &mut body) {
            ("", serde_json::Value::Object(top)) if *resource == Resource::Identity => {
                if let Some(identity) = top.get_mut("identity").and_then(|i| i.as_object_mut()) {
                    identity.remove(field);
                }
            }
            ("", serde_json::Value::Object(top)) if *resource == Resource::PaymentRequest => {
                if let Some(payment) = top
                    .get_mut("paymentRequest")
                    .and_then(|p| p.as_object_mut())
                {
                    payment.remove(field);
                }
            }
            ("", serde_json::Value::Object(top)) => {
                top.remove(field);
            }
            (list, body) => {
                if let Some(items) = body.get_mut(list).and_then(|l| l.as_array_mut()) {
                    for item in items.iter_mut().filter_map(|i| i.as_object_mut()) {
                        item.remove(field);
                    }
                }
            }
        }
    }
    if body != before {
        reply.body = body.to_string().into_bytes();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_and_prints_back() {
        for (fault, name) in CheckFault::NAMES {
            let faults: Faults = name.parse().unwrap();
            assert_eq!(faults.0, [Fault::Check(fault)]);
            assert_eq!(faults.to_string(), name);
        }
        let spec = "drop-field:resource=funds-confirmation,accept-unsigned,foreign-next:every=1";
        let faults: Faults = spec.parse().unwrap();
        assert_eq!(faults.to_string(), spec);
    }

    #[test]
    fn errors_name_the_part() {
        for (spec, needle) in [
            ("accept-unsigned:every=1", "takes no parameters"),
            ("drop-field", "takes `resource=R`"),
            ("drop-field:resource=owners", "unknown resource `owners`"),
        ] {
            let e = spec.parse::<Faults>().unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn pages_are_rewritten_in_any_link_style() {
        assert_eq!(
            with_page("https://b/x/transactions?dateFrom=1&page=2", 3),
            "https://b/x/transactions?dateFrom=1&page=3"
        );
        assert_eq!(with_page("transactions", 2), "transactions?page=2");
        assert_eq!(with_page("/v/t?page=4", 1), "/v/t");
    }
}
