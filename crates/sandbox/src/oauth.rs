//! The OAuth2 authorization server: `/authorize` (code + PKCE S256) and `/token`.

use std::time::{Duration, Instant};

use base64::Engine;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use crate::check_faults::CheckFault;
use crate::server::{Reply, Req};
use crate::state::{
    Code, Consent, Grant, Refresh, State, Token, organization_identifier, random_hex,
};

const CODE_LIFETIME: Duration = Duration::from_secs(60);
const KNOWN_SCOPES: [&str; 5] = [
    "aisp",
    "pisp",
    "cbpii",
    "piisp",
    "extended_transaction_history",
];

/// Whether `uri` is a loopback redirect URI (RFC 8252 §7.3): `http` on 127.0.0.1, `[::1]` or
/// localhost, any port, any path, no fragment.
pub(crate) fn is_loopback_redirect(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    if uri.contains('#') {
        return false;
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, port)) if port.is_empty() || port.starts_with(':') => {
                return h == "::1" && port.get(1..).is_none_or(valid_port);
            }
            _ => return false,
        }
    } else {
        authority
    };
    let (name, port) = match host.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    (name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost")) && port.is_none_or(valid_port)
}

fn valid_port(p: &str) -> bool {
    p.is_empty() || p.parse::<u16>().is_ok()
}

pub(crate) fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    Reply::plain_json(
        status,
        &serde_json::json!({"error": error, "error_description": description}),
    )
}

fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", out.finish())
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl State {
    /// `GET /authorize` (and `POST /authorize` from the consent page).
    pub(crate) fn authorize(&self, req: &Req) -> Reply {
        let params: Vec<(String, String)> = if req.method == "POST" {
            form_urlencoded::parse(&req.body).into_owned().collect()
        } else {
            req.query_pairs()
        };
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        // Errors about the client or the redirect URI are shown, never redirected (RFC 6749
        // §4.1.2.1).
        let page = |msg: &str| {
            Reply::html(
                400,
                format!(
                    "<!doctype html><title>Sandbox bank: error</title><h1>Authorization error</h1><p>{}</p>",
                    html_escape(msg)
                ),
            )
        };
        let Some(client_id) = get("client_id") else {
            return page("client_id is missing");
        };
        if self.client_org(client_id).is_none() {
            return page(&format!(
                "unknown client_id `{client_id}`: this bank knows `{}` and the clients \
                 registered with it",
                self.info.client_id
            ));
        }
        let Some(redirect_uri) = get("redirect_uri") else {
            return page("redirect_uri is missing");
        };
        if !is_loopback_redirect(redirect_uri) {
            return page(&format!(
                "redirect_uri `{redirect_uri}` is not a loopback URI (http://127.0.0.1:PORT/…, http://localhost:PORT/… or http://[::1]:PORT/…)"
            ));
        }
        let state = get("state").filter(|_| !self.config.faults.breaks(CheckFault::DropState));
        let fail = |error: &str, description: &str| {
            let mut pairs = vec![("error", error), ("error_description", description)];
            if let Some(s) = state {
                pairs.push(("state", s));
            }
            Reply::new(302).with_header("Location", with_query(redirect_uri, &pairs))
        };
        // The PSU who logs in: `login_hint` picks one of the bank's PSUs.
        let psu = match get("login_hint") {
            None => 1,
            Some(hint) => match self.psu_of(hint) {
                Some(n) => n,
                None => {
                    return fail(
                        "invalid_request",
                        &format!(
                            "login_hint `{hint}` names no PSU of this bank: psu-1 to psu-{} (stet sandbox serve --psus)",
                            self.psus()
                        ),
                    );
                }
            },
        };
        if get("response_type") != Some("code") {
            return fail("unsupported_response_type", "response_type must be `code`");
        }
        if get("code_challenge").is_none() && self.config.faults.breaks(CheckFault::PkceCrash) {
            return Reply::html(
                500,
                "<!DOCTYPE html><title>Error</title><p>Internal error".to_owned(),
            );
        }
        let pkce_optional = self.config.faults.breaks(CheckFault::PkceOptional);
        let Some(challenge) = get("code_challenge").or(pkce_optional.then_some("")) else {
            return fail("invalid_request", "PKCE is required: send code_challenge");
        };
        if pkce_optional && challenge.is_empty() {
            // Nothing to check: the code is given without PKCE.
        } else if get("code_challenge_method") != Some("S256") {
            return fail(
                "invalid_request",
                "code_challenge_method must be S256 (plain is refused)",
            );
        } else if challenge.len() != 43 {
            return fail(
                "invalid_request",
                "code_challenge must be BASE64URL(SHA256(verifier)) without padding: 43 characters",
            );
        }
        let scopes: Vec<String> = get("scope")
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if scopes.is_empty() {
            return fail(
                "invalid_scope",
                "scope is missing: ask for aisp, pisp or cbpii",
            );
        }
        if let Some(bad) = scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
            return fail("invalid_scope", &format!("unknown scope `{bad}`"));
        }
        let payment = get("paymentRequestResourceId").map(str::to_owned);
        if let Some(id) = &payment {
            if !scopes.iter().any(|s| s == "pisp") {
                return fail("invalid_scope", "a payment approval needs the pisp scope");
            }
            let inner = self.lock();
            match inner.payments.get(id) {
                None => return fail("invalid_request", &format!("no payment request `{id}`")),
                Some(p) if p.status != "RCVD" => {
                    return fail(
                        "invalid_request",
                        &format!(
                            "payment request `{id}` is {}, not awaiting approval",
                            p.status
                        ),
                    );
                }
                _ => {}
            }
        }

        if self.config.interactive && get("decision").is_none() {
            let hidden: String = params
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<input type=hidden name=\"{}\" value=\"{}\">",
                        html_escape(k),
                        html_escape(v)
                    )
                })
                .collect();
            let what = match &payment {
                Some(id) => format!("approve payment request <b>{}</b>", html_escape(id)),
                None => format!("grant <b>{}</b>", html_escape(&scopes.join(" "))),
            };
            return Reply::html(
                200,
                format!(
                    "<!doctype html><meta charset=utf-8><title>Sandbox bank: consent</title>\
                     <h1>Sandbox bank</h1><p>{} asks to {what} for {}.</p>\
                     <form method=post action=/authorize>{hidden}\
                     <button name=decision value=approve>Approve</button> \
                     <button name=decision value=deny>Deny</button></form>",
                    html_escape(client_id),
                    html_escape(&if psu == 1 {
                        self.info.psu.clone()
                    } else {
                        crate::state::psu_name(psu)
                    })
                ),
            );
        }
        if get("decision") == Some("deny") {
            return fail("access_denied", "the PSU refused");
        }

        let code = random_hex();
        let mut inner = self.lock();
        if let Some(id) = &payment
            && let Some(p) = inner.payments.get_mut(id)
        {
            p.approved = true;
        }
        inner.codes.insert(
            code.clone(),
            Code {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                challenge: challenge.to_owned(),
                scopes,
                payment,
                expires: Instant::now() + CODE_LIFETIME,
                psu,
            },
        );
        let mut pairs = vec![("code", code.as_str())];
        if let Some(s) = state {
            pairs.push(("state", s));
        }
        Reply::new(302).with_header("Location", with_query(redirect_uri, &pairs))
    }

    /// `POST /token`.
    pub(crate) fn token(&self, req: &Req, peer: &CertificateDer<'static>) -> Reply {
        let form: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());

        // Client authentication: the certificate, and a secret when one is sent.
        let cert_client = organization_identifier(peer);
        let mut secret = get("client_secret").map(str::to_owned);
        let mut client_id = get("client_id").map(str::to_owned);
        if let Some(basic) = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Basic "))
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(basic.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let Some((id, pw)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return oauth_error(401, "invalid_client", "the Basic credentials do not decode");
            };
            let id: String = form_urlencoded::parse(format!("a={id}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let pw: String = form_urlencoded::parse(format!("a={pw}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            client_id = Some(id);
            secret = Some(pw);
        }
        // A client is the sandbox's own (its id is the QWAC's organizationIdentifier) or one
        // registered with it; either way bound to the organisation of the QWAC presented.
        let client_id = match (client_id, cert_client) {
            (Some(id), cert) => match self.client_org(&id) {
                None => {
                    return oauth_error(
                        401,
                        "invalid_client",
                        &format!("unknown client_id `{id}`"),
                    );
                }
                Some(org) if cert.as_deref().is_some_and(|c| c != org) => {
                    return oauth_error(
                        401,
                        "invalid_client",
                        &format!(
                            "client_id `{id}` belongs to `{org}`, not to the client certificate's organisation (`{}`)",
                            cert.unwrap_or_default()
                        ),
                    );
                }
                Some(_) => id,
            },
            (None, Some(cert)) if cert == self.info.client_id => cert,
            (None, _) => {
                return oauth_error(
                    401,
                    "invalid_client",
                    "no client_id, and the client certificate has no known organizationIdentifier",
                );
            }
        };
        if let Some(s) = &secret
            && *s != self.info.client_secret
        {
            return oauth_error(401, "invalid_client", "wrong client_secret");
        }

        match get("grant_type") {
            Some("client_credentials") => {
                let scopes: Vec<String> = get("scope")
                    .unwrap_or("pisp")
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                if let Some(bad) = scopes
                    .iter()
                    .find(|s| !["pisp", "cbpii", "piisp"].contains(&s.as_str()))
                {
                    return oauth_error(
                        400,
                        "invalid_scope",
                        &format!(
                            "scope `{bad}` cannot be granted with client_credentials (pisp, cbpii only): the PSU must consent"
                        ),
                    );
                }
                self.issue(&client_id, scopes, Grant::ClientCredentials, None, None, 1)
            }
            Some("authorization_code") => {
                let Some(code) = get("code") else {
                    return oauth_error(400, "invalid_request", "code is missing");
                };
                let Some(verifier) = get("code_verifier") else {
                    return oauth_error(400, "invalid_request", "code_verifier is missing (PKCE)");
                };
                // Single use: removed whatever happens next.
                let reusable = self.config.faults.breaks(CheckFault::ReusableCode);
                let grant = {
                    let mut inner = self.lock();
                    if reusable {
                        inner.codes.get(code).cloned()
                    } else {
                        inner.codes.remove(code)
                    }
                };
                let Some(grant) = grant else {
                    return oauth_error(400, "invalid_grant", "unknown or already used code");
                };
                if Instant::now() >= grant.expires {
                    return oauth_error(400, "invalid_grant", "the code has expired (60 s)");
                }
                if grant.client_id != client_id {
                    return oauth_error(
                        400,
                        "invalid_grant",
                        "the code was issued to another client",
                    );
                }
                if get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
                    return oauth_error(
                        400,
                        "invalid_grant",
                        &format!(
                            "redirect_uri must be the one of the authorization request (`{}`)",
                            grant.redirect_uri
                        ),
                    );
                }
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(verifier.as_bytes()));
                if computed != grant.challenge
                    && !self.config.faults.breaks(CheckFault::PkceUnchecked)
                {
                    return oauth_error(
                        400,
                        "invalid_grant",
                        "PKCE: BASE64URL(SHA256(code_verifier)) does not equal the code_challenge",
                    );
                }
                let consent = {
                    let mut inner = self.lock();
                    inner.consents.push(Consent::default());
                    inner.counters.tokens_issued += 1;
                    (inner.consents.len() - 1) as u64
                };
                self.issue(
                    &client_id,
                    grant.scopes,
                    Grant::Code,
                    grant.payment,
                    Some(consent),
                    grant.psu,
                )
            }
            Some("refresh_token") => {
                let Some(rt) = get("refresh_token") else {
                    return oauth_error(400, "invalid_request", "refresh_token is missing");
                };
                // Rotation: a refresh token is good once; the grant answers a new one.
                let taken = {
                    let mut inner = self.lock();
                    match inner.refresh.remove(rt) {
                        Some(r) => {
                            inner.used_refresh.insert(rt.to_owned());
                            Ok(r)
                        }
                        None if inner.revoked.contains(rt) => Err(
                            "the refresh token was revoked: the PSU must consent again (/authorize)",
                        ),
                        None if inner.used_refresh.contains(rt) => {
                            inner.counters.refresh_reused += 1;
                            Err(
                                "the refresh token was already used: refresh tokens are single-use, use the one the last refresh answered",
                            )
                        }
                        None => Err("unknown refresh token"),
                    }
                };
                let r = match taken {
                    Ok(r) => r,
                    Err(description) => return oauth_error(400, "invalid_grant", description),
                };
                if r.client_id != client_id {
                    return oauth_error(
                        400,
                        "invalid_grant",
                        "the refresh token belongs to another client",
                    );
                }
                if let Some(c) = r.consent
                    && self
                        .lock()
                        .consents
                        .get(c as usize)
                        .is_some_and(|c| c.revoked)
                {
                    return oauth_error(400, "invalid_grant", "the PSU's consent was revoked");
                }
                let scopes = match get("scope") {
                    None => r.scopes.clone(),
                    Some(s) => {
                        let asked: Vec<String> = s
                            .split(' ')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect();
                        if let Some(bad) = asked.iter().find(|a| !r.scopes.contains(a)) {
                            return oauth_error(
                                400,
                                "invalid_scope",
                                &format!("scope `{bad}` was not granted originally"),
                            );
                        }
                        asked
                    }
                };
                self.lock().counters.refresh_grants += 1;
                self.issue(&client_id, scopes, Grant::Code, r.payment, r.consent, r.psu)
            }
            Some(other) => oauth_error(
                400,
                "unsupported_grant_type",
                &format!(
                    "grant_type `{other}` is not supported (authorization_code, client_credentials, refresh_token)"
                ),
            ),
            None => oauth_error(400, "invalid_request", "grant_type is missing"),
        }
    }

    /// An access token, and for code grants (the PSU consented) a refresh token too.
    fn issue(
        &self,
        client_id: &str,
        scopes: Vec<String>,
        grant: Grant,
        payment: Option<String>,
        consent: Option<u64>,
        psu: usize,
    ) -> Reply {
        let access = random_hex();
        let lifetime = self.config.token_lifetime;
        let mut inner = self.lock();
        inner.tokens.insert(
            access.clone(),
            Token {
                client_id: client_id.to_owned(),
                scopes: scopes.clone(),
                grant,
                expires: Instant::now() + lifetime,
                payment: payment.clone(),
                uses: 0,
                consent,
                psu,
            },
        );
        let mut body = serde_json::json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "scope": scopes.join(" "),
        });
        if grant == Grant::Code {
            let refresh = random_hex();
            inner.refresh.insert(
                refresh.clone(),
                Refresh {
                    client_id: client_id.to_owned(),
                    scopes,
                    payment,
                    consent,
                    psu,
                },
            );
            body["refresh_token"] = serde_json::Value::String(refresh);
        }
        Reply::plain_json(200, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback_redirect;

    #[test]
    fn loopback_redirects() {
        for ok in [
            "http://127.0.0.1/callback",
            "http://127.0.0.1:53123/callback",
            "http://localhost:8080/",
            "http://[::1]:9000/cb?x=1",
            "http://127.0.0.1",
        ] {
            assert!(is_loopback_redirect(ok), "{ok}");
        }
        for bad in [
            "https://127.0.0.1/callback",
            "http://127.0.0.2/callback",
            "http://evil.example/127.0.0.1",
            "http://127.0.0.1.evil.example/",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1@evil.example/",
            "http://[::2]/",
            "http://127.0.0.1/#frag",
        ] {
            assert!(!is_loopback_redirect(bad), "{bad}");
        }
    }
}
