//! RFC 7512 `pkcs11:` URIs: which module, token and key, and where the PIN comes from.
//!
//! ```text
//! pkcs11:token=stet-qsealc;object=qseal;type=private?pin-source=file:/run/secrets/pin
//! pkcs11:token=stet-qsealc;id=%0a%01?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234
//! ```
//!
//! The path names the token (`token` label, `serial`, `manufacturer`, `model`, `slot-id`,
//! `library-manufacturer`, `library-description`) and the key (`object` is `CKA_LABEL`, `id`
//! is `CKA_ID` as percent-encoded bytes, `type` must be `private` when given). The query says
//! how to log in (`pin-source=file:PATH` or `pin-value=…`) and which module to load
//! (`module-path=…`, or `module-name=…` looked up in p11-kit's module registry). Values are
//! percent-decoded; an attribute given twice, an unknown one or a malformed escape is an error
//! that names it.
//!
//! The PIN is a secret: [`Pkcs11Uri`]'s `Display` and `Debug` leave `pin-value` out, so a URI
//! can go into a message or a log as it is.

use std::path::PathBuf;

use zeroize::Zeroizing;

/// Where the user PIN comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PinSource {
    /// `pin-value=…`: the PIN itself (convenient, but it sits in the configuration).
    Value(Zeroizing<String>),
    /// `pin-source=file:PATH`: a file holding the PIN; one trailing newline is not part of it.
    File(PathBuf),
}

impl std::fmt::Debug for PinSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PinSource::Value(_) => f.write_str("PinSource::Value(<redacted>)"),
            PinSource::File(path) => write!(f, "PinSource::File({})", path.display()),
        }
    }
}

impl PinSource {
    /// The PIN: the value, or the file's text without one trailing `\n` (or `\r\n`), which
    /// `echo PIN > file` adds and no token expects.
    pub fn read(&self) -> Result<Zeroizing<String>, crate::Pkcs11Error> {
        match self {
            PinSource::Value(pin) => Ok(pin.clone()),
            PinSource::File(path) => {
                let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| {
                    crate::Pkcs11Error::PinFile {
                        path: path.display().to_string(),
                        source,
                    }
                })?);
                let mut text = Zeroizing::new(String::from_utf8(bytes.to_vec()).map_err(|_| {
                    crate::Pkcs11Error::PinFile {
                        path: path.display().to_string(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "the PIN file is not UTF-8 text",
                        ),
                    }
                })?);
                let keep = text
                    .strip_suffix("\r\n")
                    .or_else(|| text.strip_suffix('\n'))
                    .map(str::len);
                if let Some(len) = keep {
                    text.truncate(len);
                }
                Ok(text)
            }
        }
    }
}

/// A parsed `pkcs11:` URI. Every field is optional; [`crate::Pkcs11Key::open`] says what is
/// missing for its use.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token`: the token's label (`CKA_LABEL` of the token, as `softhsm2-util --label` sets it).
    pub token: Option<String>,
    /// `manufacturer`: the token's manufacturer.
    pub manufacturer: Option<String>,
    /// `serial`: the token's serial number.
    pub serial: Option<String>,
    /// `model`: the token's model.
    pub model: Option<String>,
    /// `slot-id`: the slot number (unstable on many modules: prefer `token`).
    pub slot_id: Option<u64>,
    /// `library-manufacturer`: the module's manufacturer.
    pub library_manufacturer: Option<String>,
    /// `library-description`: the module's description.
    pub library_description: Option<String>,
    /// `object`: the key's label (`CKA_LABEL`).
    pub object: Option<String>,
    /// `id`: the key's `CKA_ID`, as bytes.
    pub id: Option<Vec<u8>>,
    /// `pin-source` / `pin-value`.
    pub pin: Option<PinSource>,
    /// `module-path`: the PKCS#11 module (a shared library) to load.
    pub module_path: Option<PathBuf>,
    /// `module-name`: a module registered with p11-kit (`softhsm2`).
    pub module_name: Option<String>,
}

/// Whether `text` is a PKCS#11 URI rather than a file path.
pub fn is_pkcs11_uri(text: &str) -> bool {
    text.get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("pkcs11:"))
}

/// Why a URI cannot be read. The message names the attribute at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct UriError {
    detail: String,
}

fn bad(detail: impl Into<String>) -> UriError {
    UriError {
        detail: detail.into(),
    }
}

impl std::str::FromStr for Pkcs11Uri {
    type Err = UriError;

    fn from_str(text: &str) -> Result<Self, UriError> {
        if !is_pkcs11_uri(text) {
            return Err(bad("a PKCS#11 URI starts with `pkcs11:`"));
        }
        let rest = &text[7..];
        if rest.contains('#') {
            return Err(bad(
                "a PKCS#11 URI has no fragment (`#`): percent-encode it as %23",
            ));
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri::default();
        let mut seen: Vec<String> = Vec::new();
        let mut once = |name: &str| {
            if seen.iter().any(|s| s == name) {
                return Err(bad(format!("`{name}` is given twice")));
            }
            seen.push(name.to_owned());
            Ok(())
        };
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, raw) = attr
                .split_once('=')
                .ok_or_else(|| bad(format!("`{attr}` is not NAME=VALUE")))?;
            let name = name.to_ascii_lowercase();
            once(&name)?;
            let bytes = decode(raw, &name)?;
            let text = || {
                String::from_utf8(bytes.clone())
                    .map_err(|_| bad(format!("`{name}` is not UTF-8 once decoded")))
            };
            match name.as_str() {
                "token" => uri.token = Some(text()?),
                "manufacturer" => uri.manufacturer = Some(text()?),
                "serial" => uri.serial = Some(text()?),
                "model" => uri.model = Some(text()?),
                "library-manufacturer" => uri.library_manufacturer = Some(text()?),
                "library-description" => uri.library_description = Some(text()?),
                "object" => uri.object = Some(text()?),
                "id" => uri.id = Some(bytes),
                "slot-id" => {
                    uri.slot_id = Some(
                        text()?
                            .parse()
                            .map_err(|_| bad(format!("`slot-id={raw}` is not a number")))?,
                    )
                }
                "type" => {
                    let t = text()?;
                    if t != "private" {
                        return Err(bad(format!(
                            "`type={t}`: stet signs with a private key, so the type is `private` \
                             (or leave it out)"
                        )));
                    }
                }
                // Slot details and the library version identify a module's slot; the token
                // attributes above do that better, and accepting them unchecked would mislead.
                other if other.starts_with("x-") => {}
                other => {
                    return Err(bad(format!(
                        "unknown path attribute `{other}` (known: token, manufacturer, serial, \
                         model, slot-id, library-manufacturer, library-description, object, id, type)"
                    )));
                }
            }
        }
        for attr in query.into_iter().flat_map(|q| q.split('&')) {
            if attr.is_empty() {
                continue;
            }
            let (name, raw) = attr.split_once('=').ok_or_else(|| {
                bad(format!(
                    "query attribute `{}` is not NAME=VALUE",
                    redact_pair(attr)
                ))
            })?;
            let name = name.to_ascii_lowercase();
            once(&name)?;
            let value = Zeroizing::new(
                String::from_utf8(decode(raw, &name)?)
                    .map_err(|_| bad(format!("`{name}` is not UTF-8 once decoded")))?,
            );
            match name.as_str() {
                "pin-value" => uri.pin = Some(PinSource::Value(value)),
                "pin-source" => {
                    let path = value
                        .strip_prefix("file://")
                        .or_else(|| value.strip_prefix("file:"))
                        .unwrap_or(&value);
                    if path.starts_with('|') {
                        return Err(bad(
                            "`pin-source=|command` is not supported: give a file (pin-source=file:/run/secrets/pin)",
                        ));
                    }
                    if path.is_empty() {
                        return Err(bad("`pin-source` names no file"));
                    }
                    uri.pin = Some(PinSource::File(PathBuf::from(path)));
                }
                "module-path" => uri.module_path = Some(PathBuf::from(value.as_str())),
                "module-name" => uri.module_name = Some(value.to_string()),
                other if other.starts_with("x-") => {}
                other => {
                    return Err(bad(format!(
                        "unknown query attribute `{other}` (known: pin-source, pin-value, module-path, module-name)"
                    )));
                }
            }
        }
        if seen.iter().any(|s| s == "pin-value") && seen.iter().any(|s| s == "pin-source") {
            return Err(bad("give pin-source or pin-value, not both"));
        }
        Ok(uri)
    }
}

/// `name=value` of a query pair with the value hidden when it may be a PIN.
fn redact_pair(attr: &str) -> &str {
    if attr.to_ascii_lowercase().starts_with("pin-value") {
        "pin-value=…"
    } else {
        attr
    }
}

/// Percent-decodes an attribute value.
fn decode(raw: &str, name: &str) -> Result<Vec<u8>, UriError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "`{name}` has a malformed escape: `%` must be followed by two hex digits"
                    ))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Percent-encodes every byte but RFC 3986's unreserved ones.
fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

impl std::fmt::Display for Pkcs11Uri {
    /// The URI without `pin-value` (`pin-source` is a path and is kept).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut path = Vec::new();
        let text = |name: &str, v: &Option<String>, path: &mut Vec<String>| {
            if let Some(v) = v {
                path.push(format!("{name}={}", encode(v.as_bytes())));
            }
        };
        text("token", &self.token, &mut path);
        text("manufacturer", &self.manufacturer, &mut path);
        text("serial", &self.serial, &mut path);
        text("model", &self.model, &mut path);
        if let Some(slot) = self.slot_id {
            path.push(format!("slot-id={slot}"));
        }
        text(
            "library-manufacturer",
            &self.library_manufacturer,
            &mut path,
        );
        text("library-description", &self.library_description, &mut path);
        text("object", &self.object, &mut path);
        if let Some(id) = &self.id {
            path.push(format!("id={}", encode_all(id)));
        }
        let mut query = Vec::new();
        match &self.pin {
            Some(PinSource::File(p)) => query.push(format!("pin-source=file:{}", p.display())),
            Some(PinSource::Value(_)) => query.push("pin-value=<redacted>".to_owned()),
            None => {}
        }
        if let Some(p) = &self.module_path {
            query.push(format!("module-path={}", p.display()));
        }
        if let Some(n) = &self.module_name {
            query.push(format!("module-name={n}"));
        }
        write!(f, "pkcs11:{}", path.join(";"))?;
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pkcs11Uri({self})")
    }
}

/// Every byte as `%xx`: how ids are conventionally written.
fn encode_all(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02x}")).collect()
}

impl Pkcs11Uri {
    /// The key, as people read it: `object=qseal` and/or `id=%0a%01`.
    pub fn object_description(&self) -> String {
        match (&self.object, &self.id) {
            (Some(label), Some(id)) => format!("object `{label}` with id {}", encode_all(id)),
            (Some(label), None) => format!("object `{label}`"),
            (None, Some(id)) => format!("id {}", encode_all(id)),
            (None, None) => "any private key".to_owned(),
        }
    }

    /// The token, as people read it: `token `stet-qsealc`` or its serial or slot.
    pub fn token_description(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = &self.token {
            parts.push(format!("token `{t}`"));
        }
        if let Some(s) = &self.serial {
            parts.push(format!("serial {s}"));
        }
        if let Some(m) = &self.manufacturer {
            parts.push(format!("manufacturer `{m}`"));
        }
        if let Some(m) = &self.model {
            parts.push(format!("model `{m}`"));
        }
        if let Some(s) = self.slot_id {
            parts.push(format!("slot {s}"));
        }
        if parts.is_empty() {
            "the only token".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_in_use() {
        let uri: Pkcs11Uri = "pkcs11:model=SoftHSM%20v2;token=stet-qsealc;id=%0A%01;object=qseal-a;type=private?pin-source=file:/run/pin&module-path=/usr/lib/softhsm/libsofthsm2.so"
            .parse()
            .unwrap();
        assert_eq!(uri.token.as_deref(), Some("stet-qsealc"));
        assert_eq!(uri.model.as_deref(), Some("SoftHSM v2"));
        assert_eq!(uri.id.as_deref(), Some(&[0x0a, 0x01][..]));
        assert_eq!(uri.object.as_deref(), Some("qseal-a"));
        assert_eq!(uri.pin, Some(PinSource::File("/run/pin".into())));
        assert_eq!(
            uri.module_path.as_deref(),
            Some(std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
        let shown = uri.to_string();
        let again: Pkcs11Uri = shown.parse().unwrap();
        assert_eq!(again, uri);

        let uri: Pkcs11Uri = "PKCS11:token=a?pin-value=12%2034".parse().unwrap();
        assert_eq!(
            uri.pin,
            Some(PinSource::Value(Zeroizing::new("12 34".into())))
        );
    }

    #[test]
    fn the_pin_value_never_shows() {
        let uri: Pkcs11Uri = "pkcs11:token=a;object=k?pin-value=s3cr3t-PIN"
            .parse()
            .unwrap();
        assert!(!uri.to_string().contains("s3cr3t"));
        assert!(!format!("{uri:?}").contains("s3cr3t"));
        let err = "pkcs11:token=a?pin-values3cr3t"
            .parse::<Pkcs11Uri>()
            .unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }

    #[test]
    fn errors_name_the_attribute() {
        for (uri, needle) in [
            ("pkcs11:token=a;token=b", "`token` is given twice"),
            ("pkcs11:tokn=a", "unknown path attribute `tokn`"),
            ("pkcs11:id=%zz", "`id` has a malformed escape"),
            ("pkcs11:token=a?pin-source=|/bin/pin", "not supported"),
            ("pkcs11:token=a;type=cert", "type=cert"),
            ("pkcs11:slot-id=x", "slot-id=x"),
            ("pkcs11:token=a?pin-value=1&pin-source=file:/p", "not both"),
            ("file:/a", "starts with `pkcs11:`"),
        ] {
            let err = uri.parse::<Pkcs11Uri>().unwrap_err().to_string();
            assert!(err.contains(needle), "{uri}: {err}");
        }
    }

    #[test]
    fn pin_files_lose_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        for (content, pin) in [
            ("1234\n", "1234"),
            ("1234\r\n", "1234"),
            ("1234", "1234"),
            ("1234\n\n", "1234\n"),
        ] {
            let path = dir.path().join("pin");
            std::fs::write(&path, content).unwrap();
            assert_eq!(PinSource::File(path).read().unwrap().as_str(), pin);
        }
    }
}
