//! The set of known profiles: the built-in files, the user's additions, lookup by name or
//! alias, and resolution of `extends` chains.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    BankProfile, ConfirmationPath, DateTimeFormat, Dialect, ExtendedHistory, FieldChange,
    FieldValue, KeyIdForm, Placement, StandingOrderForm, sources,
};

/// The built-in profile files, compiled in: the generic roots first, then the banks.
const BUILTIN: &[(&str, &str)] = &[
    (
        "generic-1.4.toml",
        include_str!("../../banks/generic-1.4.toml"),
    ),
    (
        "generic-1.5.toml",
        include_str!("../../banks/generic-1.5.toml"),
    ),
    ("sandbox.toml", include_str!("../../banks/sandbox.toml")),
    ("arkea.toml", include_str!("../../banks/arkea.toml")),
    (
        "bnp-paribas.toml",
        include_str!("../../banks/bnp-paribas.toml"),
    ),
    (
        "boursorama.toml",
        include_str!("../../banks/boursorama.toml"),
    ),
    ("bpce.toml", include_str!("../../banks/bpce.toml")),
    (
        "credit-agricole.toml",
        include_str!("../../banks/credit-agricole.toml"),
    ),
    (
        "credit-mutuel-cic.toml",
        include_str!("../../banks/credit-mutuel-cic.toml"),
    ),
    (
        "la-banque-postale.toml",
        include_str!("../../banks/la-banque-postale.toml"),
    ),
    ("lcl.toml", include_str!("../../banks/lcl.toml")),
    (
        "societe-generale.toml",
        include_str!("../../banks/societe-generale.toml"),
    ),
];

#[cfg(test)]
pub(super) const BUILTIN_FOR_TESTS: &[(&str, &str)] = BUILTIN;

/// Keys that belong to one profile and are never inherited from its base.
const OWN_KEYS: &[&str] = &["name", "display_name", "aliases", "extends"];

/// A profile file as written: every field optional, since a bank states only what differs.
/// Parsing into it checks key names and value types and names the culprit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read for validation; the merged table is what gets resolved
struct ProfileFile {
    name: String,
    display_name: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    extends: Option<String>,
    verified_against_live_sandbox: Option<bool>,
    dialect: Option<Dialect>,
    base_path: Option<String>,
    accept: Option<String>,
    authorization_scheme: Option<String>,
    psu_ip_required: Option<bool>,
    unattended_limit_status: Option<u16>,
    max_history_days_per_request: Option<u32>,
    history_without_extended_scope_days: Option<u32>,
    extended_history: Option<ExtendedHistory>,
    datetime_format: Option<DateTimeFormat>,
    paginates: Option<bool>,
    confirmation_path: Option<ConfirmationPath>,
    put_consents: Option<bool>,
    notes: Option<String>,
    signature: Option<SignatureFile>,
    scopes: Option<ScopesFile>,
    payment: Option<PaymentFile>,
    funds_confirmation: Option<FundsConfirmationFile>,
    sync: Option<SyncFile>,
    registration: Option<RegistrationFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SyncFile {
    entry_reference_stable: Option<bool>,
    overlap_days: Option<u32>,
    pending_claim_days: Option<u32>,
}

/// The `[registration]` table as written: every key optional, each checked for its type.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RegistrationFile {
    path: Option<String>,
    auth: Option<crate::registration::RegistrationAuth>,
    signed_headers: Option<Vec<String>>,
    token_path: Option<String>,
    token_client_id: Option<String>,
    token_scope: Option<String>,
    manage_with_token: Option<bool>,
    token_in_body: Option<bool>,
    jwks: Option<crate::registration::JwksShape>,
    x5c: Option<crate::registration::X5cShape>,
    key_type: Option<String>,
    key_members: Option<Vec<String>>,
    kid: Option<crate::registration::KidStrategy>,
    grant_types: Option<Vec<String>>,
    uppercase_grants: Option<bool>,
    scope_separator: Option<String>,
    omit: Option<Vec<String>>,
    contact: Option<crate::registration::ContactShape>,
    extra: Option<BTreeMap<String, String>>,
    created_status: Option<u16>,
    approval: Option<crate::registration::Approval>,
    delete: Option<bool>,
    rotation: Option<crate::registration::Rotation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SignatureFile {
    headers: Option<Vec<String>>,
    headers_without_body: Option<Vec<String>>,
    key_id: Option<KeyIdForm>,
    digest_on_get: Option<bool>,
    sign_psu_headers: Option<bool>,
    content_type_without_body: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PaymentFile {
    beneficiary: Option<Placement>,
    requested_execution_date: Option<Placement>,
    standing_order: Option<StandingOrderForm>,
    report_urls_required: Option<bool>,
    cancellation: Option<bool>,
    confirmation_body: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct FundsConfirmationFile {
    payee_required: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ScopesFile {
    aisp: Option<String>,
    pisp: Option<String>,
    cbpii: Option<String>,
    extended_history: Option<String>,
}

/// One file's contribution to a profile.
#[derive(Debug, Clone)]
struct Layer {
    /// Where it came from: `built-in banks/bpce.toml` or a path.
    origin: String,
    table: toml::Table,
    sources: BTreeMap<String, String>,
}

/// A named profile before resolution: its base and its layers, bottom first.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    aliases: Vec<String>,
    extends: Option<String>,
    layers: Vec<Layer>,
}

/// Every profile the client knows: the built-in ones and the user's.
///
/// ```
/// use stet_client::bank::BankProfiles;
///
/// let mut banks = BankProfiles::builtin();
/// banks.add_toml("my-bank.toml", r#"
///     name = "my-bank"
///     extends = "generic-1.5"
///     verified_against_live_sandbox = false
///     base_path = "/psd2/v1.5"
/// "#)?;
/// let mine = banks.get("My-Bank")?;
/// assert_eq!(mine.base_path, "/psd2/v1.5");
/// assert_eq!(banks.diff_from_base("my-bank")?.changes.len(), 1);
/// # Ok::<(), stet_client::bank::BankError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BankProfiles {
    entries: Vec<Entry>,
}

/// What a profile changes from the generic profile at the root of its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileDiff {
    /// The profile.
    pub profile: String,
    /// Its generic base; `None` for a generic profile (then `changes` is empty).
    pub base: Option<String>,
    /// The fields it sets differently, in field order.
    pub changes: Vec<FieldChange>,
}

/// One field of a resolved profile and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldInfo {
    /// The field's name, dotted for table keys.
    pub field: &'static str,
    /// Its resolved value.
    pub value: FieldValue,
    /// The profile in the chain whose file sets it.
    pub set_by: String,
    /// That file (`built-in banks/bpce.toml` or a path).
    pub origin: String,
    /// The `# source:` comment on the value, if the file has one.
    pub source: Option<String>,
}

/// Why a profile cannot be loaded, found or resolved. Each message names the file, key or
/// profile at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BankError {
    /// A file is not valid TOML or not a valid profile (an unknown key, a wrong type).
    #[error("{origin}: {message}")]
    Parse {
        /// The file.
        origin: String,
        /// What is wrong, with the line when known.
        message: String,
    },
    /// No profile has this name or alias.
    #[error(
        "unknown bank `{name}`{}; known profiles: {}",
        .suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(),
        .known.join(", ")
    )]
    UnknownBank {
        /// The name asked for.
        name: String,
        /// The closest known name, if one is close.
        suggestion: Option<String>,
        /// Every profile name.
        known: Vec<String>,
    },
    /// A profile extends a name no profile has.
    #[error(
        "profile `{profile}` extends `{base}`, which is not a known profile; known profiles: {}",
        .known.join(", ")
    )]
    UnknownBase {
        /// The extending profile.
        profile: String,
        /// The missing base.
        base: String,
        /// Every profile name.
        known: Vec<String>,
    },
    /// Profiles extend each other in a loop.
    #[error("profiles extend each other in a cycle: {}", .chain.join(" -> "))]
    Cycle {
        /// The loop, its first name repeated at the end.
        chain: Vec<String>,
    },
    /// After inheritance, a field is still missing or a value is out of range.
    #[error("profile `{profile}`: {message}")]
    Invalid {
        /// The profile.
        profile: String,
        /// What is wrong.
        message: String,
    },
    /// A name or alias is already taken by another profile.
    #[error("{origin}: `{name}` is already the name or an alias of profile `{owner}`")]
    NameTaken {
        /// The file that tried to take it.
        origin: String,
        /// The name or alias.
        name: String,
        /// The profile that has it.
        owner: String,
    },
    /// A profile folder or file cannot be read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl BankProfiles {
    /// The built-in profiles: `generic-1.4`, `generic-1.5`, `sandbox` and the French banks.
    pub fn builtin() -> Self {
        let mut profiles = BankProfiles {
            entries: Vec::new(),
        };
        for (file, text) in BUILTIN {
            profiles
                .add_toml(&format!("built-in banks/{file}"), text)
                .unwrap_or_else(|e| panic!("built-in bank profile is broken: {e}"));
        }
        profiles
    }

    /// Adds one profile file. `origin` names it in errors and in [`explain`](Self::explain).
    ///
    /// A new name adds a profile; a taken name replaces that profile, unless the file extends
    /// its own name, in which case it is laid over the existing profile field by field (and
    /// its aliases are added). Unknown keys and wrong value types are errors naming the key;
    /// bases are checked when a profile is resolved.
    pub fn add_toml(&mut self, origin: &str, text: &str) -> Result<(), BankError> {
        let parse_error = |e: toml::de::Error| BankError::Parse {
            origin: origin.to_owned(),
            message: describe_toml_error(&e, text),
        };
        let file: ProfileFile = toml::from_str(text).map_err(parse_error)?;
        let table: toml::Table = toml::from_str(text).map_err(parse_error)?;
        let invalid_name = |n: &str| BankError::Parse {
            origin: origin.to_owned(),
            message: format!(
                "`{n}` is not a valid profile name (letters, digits, `.`, `-`, `_`; starting with a letter or digit)"
            ),
        };
        let name = file.name.to_ascii_lowercase();
        if !valid_name(&name) {
            return Err(invalid_name(&file.name));
        }
        let mut aliases = Vec::new();
        for alias in &file.aliases {
            let alias = alias.to_ascii_lowercase();
            if !valid_name(&alias) {
                return Err(invalid_name(&alias));
            }
            if alias != name && !aliases.contains(&alias) {
                aliases.push(alias);
            }
        }
        let extends = file.extends.as_deref().map(str::to_ascii_lowercase);
        let layer = Layer {
            origin: origin.to_owned(),
            table,
            sources: sources::scan(text),
        };

        if let Some(owner) = self.owner_of(&name).filter(|&o| o != name) {
            return Err(BankError::NameTaken {
                origin: origin.to_owned(),
                name,
                owner: owner.to_owned(),
            });
        }
        for alias in &aliases {
            if let Some(owner) = self.owner_of(alias).filter(|&o| o != name) {
                return Err(BankError::NameTaken {
                    origin: origin.to_owned(),
                    name: alias.clone(),
                    owner: owner.to_owned(),
                });
            }
        }

        let patches_itself = extends
            .as_deref()
            .is_some_and(|base| self.owner_of(base) == Some(name.as_str()));
        match self.entries.iter_mut().find(|e| e.name == name) {
            Some(entry) if patches_itself => {
                for alias in aliases {
                    if !entry.aliases.contains(&alias) {
                        entry.aliases.push(alias);
                    }
                }
                entry.layers.push(layer);
            }
            Some(entry) => {
                *entry = Entry {
                    name,
                    aliases,
                    extends,
                    layers: vec![layer],
                };
            }
            None => self.entries.push(Entry {
                name,
                aliases,
                extends,
                layers: vec![layer],
            }),
        }
        Ok(())
    }

    /// Adds every `*.toml` file of `dir`, in name order, as [`add_toml`](Self::add_toml) does,
    /// and returns how many. A folder that does not exist adds nothing.
    pub fn add_dir(&mut self, dir: &Path) -> Result<usize, BankError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| BankError::Io { path, source }
        };
        let read = match std::fs::read_dir(dir) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io(dir)(e)),
        };
        let mut files = Vec::new();
        for item in read {
            let path = item.map_err(io(dir))?.path();
            if path.extension().is_some_and(|x| x == "toml") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        for path in &files {
            let text = std::fs::read_to_string(path).map_err(io(path))?;
            self.add_toml(&path.display().to_string(), &text)?;
        }
        Ok(files.len())
    }

    /// Every profile name, generic roots first, then in the order they were added.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.name.clone()).collect()
    }

    /// The canonical name of the profile `name` (a name or an alias, any case).
    pub fn canonical_name(&self, name: &str) -> Result<String, BankError> {
        let wanted = name.trim().to_ascii_lowercase();
        self.owner_of(&wanted)
            .map(str::to_owned)
            .ok_or_else(|| BankError::UnknownBank {
                name: name.to_owned(),
                suggestion: self.suggest(&wanted),
                known: self.names(),
            })
    }

    /// The profile `name` (a name or an alias, any case), resolved and checked.
    pub fn get(&self, name: &str) -> Result<BankProfile, BankError> {
        self.resolve(&self.canonical_name(name)?)
            .map(|(profile, _)| profile)
    }

    /// Every profile, resolved and checked, in [`names`](Self::names) order.
    pub fn all(&self) -> Result<Vec<BankProfile>, BankError> {
        self.entries
            .iter()
            .map(|e| self.resolve(&e.name).map(|(profile, _)| profile))
            .collect()
    }

    /// What the profile `name` changes from the generic profile its chain starts at.
    pub fn diff_from_base(&self, name: &str) -> Result<ProfileDiff, BankError> {
        let profile = self.get(name)?;
        let (base, changes) = match &profile.generic_base {
            Some(base) => {
                let base_profile = self.get(base)?;
                (Some(base.clone()), profile.diff(&base_profile))
            }
            None => (None, Vec::new()),
        };
        Ok(ProfileDiff {
            profile: profile.name,
            base,
            changes,
        })
    }

    /// Every field of the profile `name`, resolved, with the profile and file that set it and
    /// the source cited there.
    pub fn explain(&self, name: &str) -> Result<Vec<FieldInfo>, BankError> {
        let (profile, origins) = self.resolve(&self.canonical_name(name)?)?;
        Ok(profile
            .fields()
            .into_iter()
            .map(|(field, value)| {
                let origin = origins.get(field);
                FieldInfo {
                    field,
                    value,
                    set_by: origin.map(|o| o.profile.clone()).unwrap_or_default(),
                    origin: origin.map(|o| o.file.clone()).unwrap_or_default(),
                    source: origin.and_then(|o| o.source.clone()),
                }
            })
            .collect())
    }

    /// The name of the profile that has `name` as its name or an alias (`name` lowercase).
    fn owner_of(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.name == name || e.aliases.iter().any(|a| a == name))
            .map(|e| e.name.as_str())
    }

    /// The known name closest to a mistyped one, when it is close enough to be a typo.
    fn suggest(&self, wanted: &str) -> Option<String> {
        let mut best: Option<(usize, &str)> = None;
        for entry in &self.entries {
            for candidate in std::iter::once(&entry.name).chain(&entry.aliases) {
                let mut distance = edit_distance(wanted, candidate);
                if wanted.len() >= 3 && candidate.starts_with(wanted) {
                    distance = distance.min(1);
                }
                if best.is_none_or(|(d, _)| distance < d) {
                    best = Some((distance, &entry.name));
                }
            }
        }
        let limit = (wanted.chars().count() / 3).max(1);
        best.filter(|&(d, _)| d <= limit)
            .map(|(_, name)| name.to_owned())
    }

    /// Walks the `extends` chain of `name` (canonical), merges it root first, and checks the
    /// result. Also gives, per field, the layer that set it.
    fn resolve(&self, name: &str) -> Result<(BankProfile, BTreeMap<String, Origin>), BankError> {
        let mut chain: Vec<&Entry> = Vec::new();
        let mut current = self
            .entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| BankError::UnknownBank {
                name: name.to_owned(),
                suggestion: None,
                known: self.names(),
            })?;
        loop {
            if chain.iter().any(|e| e.name == current.name) {
                let mut names: Vec<String> = chain.iter().map(|e| e.name.clone()).collect();
                names.push(current.name.clone());
                return Err(BankError::Cycle { chain: names });
            }
            chain.push(current);
            let Some(base) = &current.extends else { break };
            current = self
                .owner_of(base)
                .and_then(|owner| self.entries.iter().find(|e| e.name == owner))
                .ok_or_else(|| BankError::UnknownBase {
                    profile: current.name.clone(),
                    base: base.clone(),
                    known: self.names(),
                })?;
        }
        let target = chain[0];

        let mut merged = toml::Table::new();
        let mut origins: BTreeMap<String, Origin> = BTreeMap::new();
        for entry in chain.iter().rev() {
            let own = entry.name == target.name;
            for layer in &entry.layers {
                for (key, value) in &layer.table {
                    if OWN_KEYS.contains(&key.as_str()) && !own {
                        continue;
                    }
                    let note = |dotted: &str| Origin {
                        profile: entry.name.clone(),
                        file: layer.origin.clone(),
                        source: layer.sources.get(dotted).cloned(),
                    };
                    match (value, merged.get_mut(key)) {
                        (toml::Value::Table(sub), Some(toml::Value::Table(into))) => {
                            for (k, v) in sub {
                                into.insert(k.clone(), v.clone());
                                let dotted = format!("{key}.{k}");
                                origins.insert(dotted.clone(), note(&dotted));
                            }
                        }
                        _ => {
                            merged.insert(key.clone(), value.clone());
                            if let toml::Value::Table(sub) = value {
                                for k in sub.keys() {
                                    let dotted = format!("{key}.{k}");
                                    origins.insert(dotted.clone(), note(&dotted));
                                }
                            } else {
                                origins.insert(key.clone(), note(key));
                            }
                        }
                    }
                }
            }
        }
        // Identity comes from the target alone, whatever its layers or bases say.
        merged.insert("name".into(), target.name.clone().into());
        merged.insert(
            "aliases".into(),
            toml::Value::Array(target.aliases.iter().cloned().map(Into::into).collect()),
        );
        match &target.extends {
            Some(base) if base != &target.name => {
                merged.insert("extends".into(), base.clone().into());
            }
            _ => {
                merged.remove("extends");
            }
        }
        if !merged.contains_key("display_name") {
            merged.insert("display_name".into(), target.name.clone().into());
        }
        if chain.len() > 1 {
            let root = chain[chain.len() - 1].name.clone();
            merged.insert("generic_base".into(), root.into());
        }

        let profile: BankProfile =
            merged
                .try_into()
                .map_err(|e: toml::de::Error| BankError::Invalid {
                    profile: target.name.clone(),
                    message: format!("{} (after inheritance)", e.message()),
                })?;
        check(&profile)?;
        Ok((profile, origins))
    }
}

/// Where a resolved field's value was written.
#[derive(Debug, Clone)]
struct Origin {
    profile: String,
    file: String,
    source: Option<String>,
}

/// Range and syntax checks on a resolved profile, including the signing profile's own.
fn check(profile: &BankProfile) -> Result<(), BankError> {
    let invalid = |message: String| BankError::Invalid {
        profile: profile.name.clone(),
        message,
    };
    let path = &profile.base_path;
    if !(path.is_empty() || path.starts_with('/'))
        || path.ends_with('/')
        || path
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
    {
        return Err(invalid(format!(
            "base_path `{path}` must be empty or start with `/`, with no trailing `/`, spaces, `?` or `#`"
        )));
    }
    if profile.accept.trim().is_empty() || profile.accept.chars().any(char::is_control) {
        return Err(invalid("accept must be a non-empty header value".into()));
    }
    let scheme = &profile.authorization_scheme;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(invalid(format!(
            "authorization_scheme `{scheme}` must be a single word such as `Bearer`"
        )));
    }
    if profile.max_history_days_per_request == Some(0) {
        return Err(invalid(
            "max_history_days_per_request must be at least 1 (leave it out for no cap)".into(),
        ));
    }
    if !matches!(profile.unattended_limit_status, 403 | 429) {
        return Err(invalid(format!(
            "unattended_limit_status {} must be 429 (Too Many Requests) or 403",
            profile.unattended_limit_status
        )));
    }
    if profile.history_without_extended_scope_days == 0 {
        return Err(invalid(
            "history_without_extended_scope_days must be at least 1".into(),
        ));
    }
    let scopes = &profile.scopes;
    for (key, scope) in [
        ("aisp", &scopes.aisp),
        ("pisp", &scopes.pisp),
        ("cbpii", &scopes.cbpii),
        ("extended_history", &scopes.extended_history),
    ] {
        if scope.is_empty() || !scope.chars().all(|c| c.is_ascii_graphic() && c != '"') {
            return Err(invalid(format!(
                "scopes.{key} `{scope}` must be one OAuth2 scope token"
            )));
        }
    }
    profile
        .signing_profile("key-id")
        .validate()
        .map_err(|e| invalid(format!("signature.headers: {e}")))?;
    profile
        .signing_profile_without_body("key-id")
        .validate()
        .map_err(|e| invalid(format!("signature.headers_without_body: {e}")))?;
    // A request without a body carries no Content-Length, and no Content-Type unless the
    // profile sends one: a list that signs them there would fail on every GET.
    let key = if profile.signature.headers_without_body.is_some() {
        "signature.headers_without_body"
    } else {
        "signature.headers"
    };
    let names = |h: &str| profile.headers_without_body().iter().any(|x| x == h);
    if names("content-length") {
        return Err(invalid(format!(
            "{key} names content-length, which a request without a body (a GET) does not \
             carry: give signature.headers_without_body, the list the bank signs on GETs"
        )));
    }
    if names("content-type") && !profile.signature.content_type_without_body {
        return Err(invalid(format!(
            "{key} names content-type, which a request without a body (a GET) does not carry: \
             set signature.content_type_without_body = true if the bank wants it sent and \
             signed on every request, or give signature.headers_without_body without it"
        )));
    }
    for name in profile.funds_confirmation.headers.keys() {
        if !is_header_name(name) {
            return Err(invalid(format!(
                "funds_confirmation.headers: `{name}` is not a header name"
            )));
        }
    }
    Ok(())
}

/// An HTTP field name (RFC 9110 token).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn valid_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// A toml error on one line: `line N: message`.
fn describe_toml_error(error: &toml::de::Error, text: &str) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message.to_owned(),
    }
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}
