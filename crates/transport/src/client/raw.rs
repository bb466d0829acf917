//! Requests sent as they are: for a conformance suite, which must send what the pipeline
//! never would (no `Signature`, a stale `Date`, a `Digest` that does not match) and see what
//! the bank does with it.
//!
//! [`Transport::raw_request`] builds the request the pipeline would send, every header in
//! place but the signature; the caller changes what it wants, signs it or not with
//! [`Transport::sign_raw`] (under any [`SigningProfile`], with the profile's key), changes
//! more, and sends it once with [`Transport::send_raw`]: no retry, no token refresh, nothing
//! added. The same limits hold as for every request: the bank's host only, no redirect, the
//! body capped.

use std::time::SystemTime;

use stet_httpsig::{Signed, SigningProfile, sign_request};
use url::Url;

use super::{StetRequest, StetResponse, Transport, classify};
use crate::error::TransportError;
use crate::token::Token;

/// A request built by the pipeline and not sent yet: change it at will, then
/// [`Transport::send_raw`] sends it exactly as it is.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// Where it goes: on the bank's API host.
    pub url: Url,
    /// The method, target, headers (in order) and body that go on the wire.
    pub message: stet_httpsig::Request,
}

impl Transport {
    /// The request the pipeline would send for `request`: `Host`, `Date`, `X-Request-ID`,
    /// `Accept`, `Content-Type` with a body, `Authorization` with `token`, the `PSU-*`
    /// headers; not signed, and without `Digest` (signing adds it).
    pub fn raw_request(
        &self,
        request: &StetRequest,
        token: Option<&Token>,
    ) -> Result<RawRequest, TransportError> {
        let url = self.resolve(&request.target)?;
        let (message, _) = self.message(request, &url, token);
        Ok(RawRequest { url, message })
    }

    /// The signing profile of this transport (the bank's header list and the keyId).
    pub fn signing_profile(&self) -> &SigningProfile {
        &self.inner.signing
    }

    /// Signs `raw` with the profile's QSealC key under `signing` (which may differ from
    /// [`signing_profile`](Self::signing_profile): another keyId, fewer headers), as at `at`.
    /// A `Digest` is added when the rules of [`sign_request`] call for one.
    pub fn sign_raw(
        &self,
        raw: &mut RawRequest,
        signing: &SigningProfile,
        at: SystemTime,
    ) -> Result<Signed, TransportError> {
        Ok(sign_request(
            &mut raw.message,
            signing,
            self.inner.signer.as_ref(),
            at,
        )?)
    }

    /// Sends `raw` once, exactly as it is, and gives whatever the bank answered.
    pub async fn send_raw(&self, raw: &RawRequest) -> Result<StetResponse, TransportError> {
        let url = self.resolve(raw.url.as_str())?;
        let method = reqwest::Method::from_bytes(raw.message.method().as_bytes())
            .map_err(|_| super::bad_header(raw.message.method()))?;
        let wire = self.wire(&method, &url, &raw.message)?;
        let request_id = raw.message.header("x-request-id").unwrap_or_default();
        let response = self
            .inner
            .http
            .execute(wire)
            .await
            .map_err(|e| classify(&e, method.as_str(), url.as_str(), !e.is_connect()))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = self.read_body(response, &url).await?;
        tracing::debug!(method = %method, path = url.path(), status, "raw request");
        Ok(StetResponse {
            status,
            headers,
            body,
            url,
            request_id,
            attempts: 1,
        })
    }
}
