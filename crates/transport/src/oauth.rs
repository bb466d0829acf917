//! The OAuth2 side: client credentials, authorization code with PKCE, refresh.
//!
//! Built on the `oauth2` crate, driven through its `AsyncHttpClient` trait by stet's own mTLS
//! `reqwest` client (so token calls carry the QWAC like every other call), with redirects
//! refused: a token endpoint that redirects would send credentials elsewhere.

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse as _,
    TokenUrl,
};
use url::Url;

use crate::error::TransportError;
use crate::secret::Secret;
use crate::token::{Token, unix};

/// How the TPP authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// RFC 8705: the client id in the body, the QWAC on the TLS connection authenticates.
    TlsClientAuth,
    /// The client id and secret in an HTTP Basic `Authorization` header.
    ClientSecretBasic,
    /// The client id and secret in the form body.
    ClientSecretPost,
}

/// The authorization server's endpoints and the TPP's client registration.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// The configuration profile these settings come from, for messages.
    pub profile: String,
    /// The client id from the bank's registration.
    pub client_id: String,
    /// The client secret, for the `client_secret_*` methods.
    pub client_secret: Option<Secret>,
    /// How the client authenticates.
    pub client_auth: ClientAuth,
    /// The token endpoint.
    pub token_url: Url,
    /// The authorization endpoint (for the PSU's consent).
    pub authorize_url: Option<Url>,
    /// The redirect URI registered with the bank.
    pub redirect_uri: Option<Url>,
}

/// A started authorization: the URL the PSU opens, and what is needed to finish.
#[derive(Debug)]
pub struct Authorization {
    /// The URL to open in the PSU's browser.
    pub url: Url,
    /// The `state` sent, to check against the redirect.
    pub state: Secret,
    /// The PKCE verifier, sent with the code.
    pub pkce_verifier: Secret,
}

/// What the redirect back from the bank carried.
#[derive(Debug)]
pub struct Redirect {
    /// The authorization code.
    pub code: Secret,
}

/// Why a redirect URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// Not a URL.
    #[error("`{0}` is not the URL the bank redirected to (it should start with your redirect URI)")]
    NotAUrl(String),
    /// The bank sent an OAuth error.
    #[error("the bank did not grant access: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        /// The `error` parameter.
        error: String,
        /// The `error_description` parameter.
        description: Option<String>,
    },
    /// The state does not match what was sent.
    #[error(
        "the `state` in the redirect does not match the one stet sent: this URL does not belong \
         to this login (possible cross-site request forgery); start the login again"
    )]
    StateMismatch,
    /// No code.
    #[error("the redirect carries no `code` parameter")]
    NoCode,
}

/// The OAuth2 client.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    settings: OAuthSettings,
    http: reqwest::Client,
}

impl OAuthClient {
    /// A client with `settings`, sending through `http` (which must not follow redirects).
    pub fn new(settings: OAuthSettings, http: reqwest::Client) -> Self {
        OAuthClient { settings, http }
    }

    /// The settings.
    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// The same client with another redirect URI: a loopback listener on a port chosen at
    /// login (RFC 8252 §7.3). The code must be exchanged by the client that asked for it.
    pub fn with_redirect_uri(&self, redirect_uri: Url) -> OAuthClient {
        let mut settings = self.settings.clone();
        settings.redirect_uri = Some(redirect_uri);
        OAuthClient {
            settings,
            http: self.http.clone(),
        }
    }

    fn client(
        &self,
    ) -> BasicClient<
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    > {
        let mut client = BasicClient::new(ClientId::new(self.settings.client_id.clone()))
            .set_token_uri(TokenUrl::from_url(self.settings.token_url.clone()))
            .set_auth_type(match self.settings.client_auth {
                ClientAuth::ClientSecretBasic => AuthType::BasicAuth,
                ClientAuth::ClientSecretPost | ClientAuth::TlsClientAuth => AuthType::RequestBody,
            });
        if self.settings.client_auth != ClientAuth::TlsClientAuth
            && let Some(secret) = &self.settings.client_secret
        {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
        }
        if let Some(redirect) = &self.settings.redirect_uri {
            client = client.set_redirect_uri(RedirectUrl::from_url(redirect.clone()));
        }
        client
    }

    /// A client-credentials token for `scopes` (PISP, CBPII).
    pub async fn client_credentials(&self, scopes: &[String]) -> Result<Token, TransportError> {
        let response = self
            .client()
            .exchange_client_credentials()
            .add_scopes(scopes.iter().cloned().map(Scope::new))
            .request_async(&OAuthHttp(&self.http))
            .await
            .map_err(|e| self.token_error(e))?;
        to_token(&response, scopes, None)
    }

    /// Starts an authorization-code flow with PKCE S256 and a random `state`: the URL for the
    /// PSU's browser. `at` replaces the configured authorization endpoint (a payment's
    /// `consentApproval` link); `extra` adds parameters.
    pub fn authorize(
        &self,
        scopes: &[String],
        at: Option<&Url>,
        extra: &[(String, String)],
    ) -> Result<Authorization, TransportError> {
        let endpoint = at
            .or(self.settings.authorize_url.as_ref())
            .ok_or_else(|| {
                TransportError::Config(crate::config::ConfigError::Missing {
                    key: "authorize_url",
                    profile: self.settings.profile.clone(),
                })
            })?
            .clone();
        if self.settings.redirect_uri.is_none() {
            return Err(TransportError::Config(
                crate::config::ConfigError::Missing {
                    key: "redirect_uri",
                    profile: self.settings.profile.clone(),
                },
            ));
        }
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self.client().set_auth_uri(AuthUrl::from_url(endpoint));
        let mut request = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        for (k, v) in extra {
            request = request.add_extra_param(k.clone(), v.clone());
        }
        let (url, state) = request.url();
        Ok(Authorization {
            url,
            state: Secret::new(state.secret().clone()),
            pkce_verifier: Secret::new(verifier.secret().clone()),
        })
    }

    /// Reads the URL the bank redirected the PSU to: checks `state`, surfaces an OAuth error,
    /// and gives the code.
    pub fn read_redirect(
        &self,
        redirected: &str,
        state: &Secret,
    ) -> Result<Redirect, RedirectError> {
        let url = Url::parse(redirected.trim())
            .map_err(|_| RedirectError::NotAUrl(redacted_url(redirected)))?;
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if let Some(error) = param("error") {
            return Err(RedirectError::Denied {
                error,
                description: param("error_description"),
            });
        }
        match param("state") {
            Some(s) if s == state.expose() => {}
            _ => return Err(RedirectError::StateMismatch),
        }
        let code = param("code").ok_or(RedirectError::NoCode)?;
        Ok(Redirect {
            code: Secret::new(code),
        })
    }

    /// Exchanges an authorization code (with its PKCE verifier) for tokens.
    pub async fn exchange_code(
        &self,
        code: &Secret,
        pkce_verifier: &Secret,
        scopes: &[String],
    ) -> Result<Token, TransportError> {
        let response = self
            .client()
            .exchange_code(AuthorizationCode::new(code.expose().to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.expose().to_owned()))
            .request_async(&OAuthHttp(&self.http))
            .await
            .map_err(|e| self.token_error(e))?;
        to_token(&response, scopes, Some(unix(SystemTime::now())))
    }

    /// Refreshes `token` with its refresh token; the new token keeps the consent's
    /// authentication time.
    pub async fn refresh(&self, token: &Token) -> Result<Token, TransportError> {
        let refresh = token
            .refresh_token
            .as_ref()
            .ok_or_else(|| TransportError::OAuth {
                error: "no_refresh_token".to_owned(),
                description: Some("the bank issued no refresh token".to_owned()),
            })?;
        let response = self
            .client()
            .exchange_refresh_token(&RefreshToken::new(refresh.expose().to_owned()))
            .request_async(&OAuthHttp(&self.http))
            .await
            .map_err(|e| self.token_error(e))?;
        let mut fresh = to_token(&response, &token.scopes, token.authenticated_at)?;
        // A bank may not rotate the refresh token: keep the old one then.
        if fresh.refresh_token.is_none() {
            fresh.refresh_token = token.refresh_token.clone();
        }
        Ok(fresh)
    }

    fn token_error(
        &self,
        e: RequestTokenError<OAuthHttpError, BasicErrorResponse>,
    ) -> TransportError {
        let url = self.settings.token_url.to_string();
        match e {
            RequestTokenError::ServerResponse(r) => TransportError::OAuth {
                error: r.error().to_string(),
                description: r.error_description().cloned(),
            },
            RequestTokenError::Request(OAuthHttpError::Redirect(location)) => {
                TransportError::TokenRedirect { location }
            }
            RequestTokenError::Request(OAuthHttpError::Reqwest(e)) => {
                crate::client::classify(&e, "POST", &url, true)
            }
            RequestTokenError::Request(other) => TransportError::TokenEndpoint {
                url,
                status: 0,
                detail: other.to_string(),
            },
            RequestTokenError::Parse(err, _body) => TransportError::TokenEndpoint {
                url,
                status: 200,
                detail: format!("the answer is not a token response ({err})"),
            },
            RequestTokenError::Other(detail) => TransportError::TokenEndpoint {
                url,
                status: 0,
                detail,
            },
        }
    }
}

fn to_token(
    response: &oauth2::basic::BasicTokenResponse,
    requested: &[String],
    authenticated_at: Option<u64>,
) -> Result<Token, TransportError> {
    let bearer = match response.token_type() {
        BasicTokenType::Bearer => true,
        BasicTokenType::Extension(t) => t.eq_ignore_ascii_case("bearer"),
        BasicTokenType::Mac => false,
    };
    if !bearer {
        return Err(TransportError::OAuth {
            error: "unsupported_token_type".to_owned(),
            description: Some(format!(
                "the bank issued a `{}` token; stet uses Bearer tokens",
                response.token_type().as_ref()
            )),
        });
    }
    let now = unix(SystemTime::now());
    Ok(Token {
        access_token: Secret::new(response.access_token().secret().clone()),
        // Banks answer `bearer` or `Bearer`; some (BNP Paribas) then insist on `Bearer`.
        token_type: "Bearer".to_owned(),
        expires_at: response.expires_in().map(|d| now + d.as_secs()),
        refresh_token: response
            .refresh_token()
            .map(|r| Secret::new(r.secret().clone())),
        scopes: response
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect())
            .unwrap_or_else(|| requested.to_vec()),
        obtained_at: now,
        authenticated_at,
    })
}

/// The URL with its query removed, for messages (a redirect URL carries the code).
fn redacted_url(s: &str) -> String {
    let s = s.trim();
    match s.find('?') {
        Some(i) => format!("{}?…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The largest token response read.
const MAX_TOKEN_RESPONSE: usize = 1024 * 1024;

/// What can fail in a token call below OAuth.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OAuthHttpError {
    #[error("redirect to {0}")]
    Redirect(String),
    #[error(transparent)]
    Reqwest(#[from] reqwest::Error),
    #[error("malformed HTTP message: {0}")]
    Http(#[from] http::Error),
    #[error("the token response is larger than {MAX_TOKEN_RESPONSE} bytes")]
    TooLarge,
}

/// stet's reqwest client, as the `oauth2` crate's HTTP client.
pub(crate) struct OAuthHttp<'a>(pub(crate) &'a reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp<'_> {
    type Error = OAuthHttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, OAuthHttpError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)?;
            let started = std::time::Instant::now();
            let mut response = self.0.execute(request).await?;
            tracing::debug!(
                status = response.status().as_u16(),
                duration_ms = started.elapsed().as_millis() as u64,
                "token endpoint answered"
            );
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(redacted_url)
                    .unwrap_or_else(|| "an unnamed location".to_owned());
                return Err(OAuthHttpError::Redirect(location));
            }
            let mut builder = http::Response::builder()
                .status(response.status())
                .version(response.version());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_TOKEN_RESPONSE {
                    return Err(OAuthHttpError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(builder.body(body)?)
        })
    }
}
