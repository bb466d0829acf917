//! A Powens profile: which domain, which client, how to connect.

use stet_transport::{AggregatorProfile, HttpsOptions, Secret};
use url::Url;

use crate::PowensError;

/// Where Powens' domains live: `https://{domain}.biapi.pro/2.0`.
pub const DOMAIN_SUFFIX: &str = ".biapi.pro";

/// Everything the client needs to reach one Powens domain for one client.
#[derive(Debug, Clone)]
pub struct PowensConfig {
    /// The profile's name: its user token is kept under it.
    pub profile: String,
    /// The domain's name (`acme-sandbox`), when the profile gives one.
    pub domain: Option<String>,
    /// The API base, e.g. `https://acme-sandbox.biapi.pro/2.0/`.
    pub api_base: Url,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
    /// Where the browser comes back after a webauth connection.
    pub redirect_uri: Option<Url>,
    /// TLS roots, timeouts and retries.
    pub https: HttpsOptions,
}

/// Checks a domain name and gives the API base made from it. `acme-sandbox` and
/// `acme-sandbox.biapi.pro` are both accepted; anything else that is not a DNS label of
/// lowercase letters, digits and hyphens is refused, so a token never goes to a host the
/// user did not mean.
pub fn api_base_for(domain: &str) -> Result<(String, Url), String> {
    let name = domain.trim();
    let name = name.strip_suffix(DOMAIN_SUFFIX).unwrap_or(name);
    let label_ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !label_ok {
        return Err(format!(
            "`{domain}` is not a Powens domain: give the name Powens gave the client, in \
             lowercase letters, digits and hyphens (e.g. `acme-sandbox`, which makes \
             https://acme-sandbox{DOMAIN_SUFFIX}/2.0)"
        ));
    }
    let url = Url::parse(&format!("https://{name}{DOMAIN_SUFFIX}/2.0/"))
        .map_err(|e| format!("`{domain}`: {e}"))?;
    Ok((name.to_owned(), url))
}

impl PowensConfig {
    /// The configuration of an aggregator profile: `api_base` when given (tests, a proxy),
    /// else the URL made from `domain`; `client_id` and `client_secret` required.
    pub fn from_profile(p: &AggregatorProfile) -> Result<PowensConfig, PowensError> {
        let config = |detail: String| PowensError::Config {
            profile: p.name.clone(),
            detail,
        };
        let domain = match &p.domain {
            Some(d) => Some(api_base_for(d).map_err(|e| config(format!("`domain`: {e}")))?),
            None => None,
        };
        let api_base = match (&p.api_base, &domain) {
            (Some(base), _) => base.clone(),
            (None, Some((_, base))) => base.clone(),
            (None, None) => {
                return Err(config(
                    "no `domain`: add the name Powens gave the client (or set STET_DOMAIN)"
                        .to_owned(),
                ));
            }
        };
        let client_id = p.client_id.clone().ok_or_else(|| {
            config(
                "no `client_id`: add the one of the Powens console (or set STET_CLIENT_ID)"
                    .to_owned(),
            )
        })?;
        let client_secret = p.client_secret.clone().ok_or_else(|| {
            config(
                "no `client_secret`: set STET_CLIENT_SECRET (or add it to the configuration \
                 file, mode 0600)"
                    .to_owned(),
            )
        })?;
        Ok(PowensConfig {
            profile: p.name.clone(),
            domain: domain.map(|(name, _)| name),
            api_base,
            client_id,
            client_secret,
            redirect_uri: p.redirect_uri.clone(),
            https: HttpsOptions {
                ca_bundle: p.ca_bundle.clone(),
                connect_timeout: p.connect_timeout,
                timeout: p.timeout,
                allow_insecure_http: p.allow_insecure_http,
                ..HttpsOptions::default()
            },
        })
    }

    /// What names the domain in stable ids: the domain, else the API base.
    pub fn namespace_source(&self) -> String {
        self.domain
            .clone()
            .unwrap_or_else(|| self.api_base.as_str().trim_end_matches('/').to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_checked() {
        let (name, url) = api_base_for("acme-sandbox").unwrap();
        assert_eq!(name, "acme-sandbox");
        assert_eq!(url.as_str(), "https://acme-sandbox.biapi.pro/2.0/");
        assert_eq!(
            api_base_for("acme-sandbox.biapi.pro").unwrap().0,
            "acme-sandbox"
        );
        for bad in [
            "",
            "Acme",
            "acme.example.com",
            "-acme",
            "acme-",
            "a b",
            "evil.com/x",
            "acme_sandbox",
        ] {
            let err = api_base_for(bad).unwrap_err();
            assert!(err.contains("not a Powens domain"), "{bad}: {err}");
        }
    }
}
