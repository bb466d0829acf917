//! The PSU context: the `PSU-*` headers that tell the bank about the person behind a request.
//!
//! Sending `PSU-IP-Address` marks the PSU as present: the bank then does not count the call
//! against the four unattended calls a day that PSD2 RTS article 36(5) allows per account and
//! endpoint. Send it only when the PSU really is at the keyboard.

/// The PSU's context, as STET's `PSU-*` headers. Only the fields set are sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PsuContext {
    /// `PSU-IP-Address`: the PSU's IP address (marks the PSU as present).
    pub ip_address: Option<String>,
    /// `PSU-IP-Port`.
    pub ip_port: Option<String>,
    /// `PSU-HTTP-Method`.
    pub http_method: Option<String>,
    /// `PSU-Date`.
    pub date: Option<String>,
    /// `PSU-User-Agent`.
    pub user_agent: Option<String>,
    /// `PSU-Referer`.
    pub referer: Option<String>,
    /// `PSU-Accept`.
    pub accept: Option<String>,
    /// `PSU-Accept-Charset`.
    pub accept_charset: Option<String>,
    /// `PSU-Accept-Encoding`.
    pub accept_encoding: Option<String>,
    /// `PSU-Accept-Language`.
    pub accept_language: Option<String>,
    /// `PSU-GEO-Location`.
    pub geo_location: Option<String>,
    /// `PSU-Device-ID`.
    pub device_id: Option<String>,
}

impl PsuContext {
    /// A context with only the PSU's IP address: the PSU is present.
    pub fn present(ip_address: impl Into<String>) -> Self {
        PsuContext {
            ip_address: Some(ip_address.into()),
            ..PsuContext::default()
        }
    }

    /// Whether the PSU is present (an IP address is set).
    pub fn is_present(&self) -> bool {
        self.ip_address.is_some()
    }

    /// The headers, in STET's order, for the fields that are set.
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        [
            ("PSU-IP-Address", &self.ip_address),
            ("PSU-IP-Port", &self.ip_port),
            ("PSU-HTTP-Method", &self.http_method),
            ("PSU-Date", &self.date),
            ("PSU-User-Agent", &self.user_agent),
            ("PSU-Referer", &self.referer),
            ("PSU-Accept", &self.accept),
            ("PSU-Accept-Charset", &self.accept_charset),
            ("PSU-Accept-Encoding", &self.accept_encoding),
            ("PSU-Accept-Language", &self.accept_language),
            ("PSU-GEO-Location", &self.geo_location),
            ("PSU-Device-ID", &self.device_id),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }
}
