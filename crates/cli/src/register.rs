//! `stet register`: the TPP's registration as an OAuth client of a bank (STET dynamic
//! registration 1.0.5), in the bank's variant (its profile's `[registration]` table).
//!
//! What the bank answers is kept in two places: the profile (`client_id`, `key_id` when the
//! bank's keyId is the registered kid, and `registration_client_uri` and `status` in its
//! `registration` table), and the registration store next to the tokens (0600: the
//! `registration_access_token` and any `client_secret`).

use std::path::Path;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use stet_client::bank::{BankProfile, KeyIdForm};
use stet_client::registration::{
    BodyInput, JwksShape, KidStrategy, PendingRotation, QsealCertificate, RegisteredKey, Registrar,
    RegistrationError, RegistrationState, RegistrationStore, Rotation, default_store, kid_for,
    kid_of_certificate, record_carries, request_body,
};
use stet_transport::Profile;

use crate::Globals;
use crate::exit::{self, Failure, OrExit as _};
use crate::output::{Format, OutputArgs, Report};

#[derive(Debug, Subcommand)]
pub enum RegisterCommand {
    /// Register at the bank: POST the registration built from the profile and the QSealC
    #[command(after_help = "Examples:
  stet register create --profile bnp-paribas
  stet register create --profile lcl --output json

The body: client_name and provider_legal_id from the QSealC's subject (O, organizationIdentifier),
jwks with the QSealC as x5c and the kid the bank wants, redirect_uris (the profile's
redirect_uri), scope from the QSealC's PSD2 roles (never wider), token_endpoint_auth_method
tls_client_auth, and what the profile's registration table adds (contacts, client_uri,
logo_uri, tos_uri, policy_uri, client_name). The answer goes into the profile and the
registration store (0600).")]
    Create(CreateArgs),
    /// Read the registration at the bank (GET) and print it
    Show(OutputArgs),
    /// Send the registration again (PUT), from the profile as it is now
    Update(OutputArgs),
    /// Delete the registration at the bank (DELETE), where the bank allows it
    Delete(OutputArgs),
    /// Replace the registered QSealC by a new one, the way the bank does it
    #[command(after_help = "Examples:
  stet register rotate --qseal-cert new-qseal.pem --qseal-key new-qseal.key
  stet register rotate --finish

Spec banks get a PUT with the new certificate; banks that register keys side by side (CIC)
get both and assign the new one its kid; banks that want it (LCL) are read with the old key
first. The profile points at the new certificate, key and kid only once the bank has the new
certificate. A bank that approves updates by hand (BNP Paribas) answers \"recorded\": the
rotation is kept as pending and the old key keeps signing; once the bank confirms, run
`stet register rotate --finish` (or `stet register show`), which switches the profile when
the bank's registration carries the new certificate. A bank that registers no key through
its API (La Banque Postale: no jwks, the QSealC is uploaded on its developer portal) gets no
request: upload the new certificate there, then run `stet register rotate --finish`.")]
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    out: OutputArgs,
    /// Register again even when the store already holds a registration for the profile
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    out: OutputArgs,
    /// The new QSealC certificate (PEM)
    #[arg(long, value_name = "CERT.pem", required_unless_present = "finish")]
    qseal_cert: Option<std::path::PathBuf>,
    /// The new QSealC key: a key file, or a `pkcs11:` URI
    #[arg(long, value_name = "KEY", required_unless_present = "finish")]
    qseal_key: Option<String>,
    /// Finish a rotation the bank kept pending: read the registration and, once the bank has
    /// the new certificate, switch the profile to it
    #[arg(long, conflicts_with_all = ["qseal_cert", "qseal_key", "key_id"])]
    finish: bool,
    /// The Signature keyId of the new key, for a bank that finds the QSealC at a URL (publish
    /// the new certificate there first); by default the profile's `key_id` stays. A bank that
    /// names keys by their registration kid takes the new kid instead.
    #[arg(long, value_name = "KEY_ID")]
    key_id: Option<String>,
}

pub fn run(command: RegisterCommand, globals: &Globals) -> Result<u8, Failure> {
    let profile = crate::profile::load(globals)?;
    let bank = crate::profile::bank(&profile)?;
    let store = default_store(&crate::profile::data_dir()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .or_exit(1, "cannot start the async runtime")?;
    runtime.block_on(async {
        match command {
            RegisterCommand::Create(args) => create(&profile, &bank, &store, args).await,
            RegisterCommand::Show(args) => show(&profile, &bank, &store, args).await,
            RegisterCommand::Update(args) => update(&profile, &bank, &store, args).await,
            RegisterCommand::Delete(args) => delete(&profile, &bank, &store, args).await,
            RegisterCommand::Rotate(args) => rotate(&profile, &bank, &store, args).await,
        }
    })
}

/// The exit code of a registration failure.
fn failure(e: RegistrationError) -> Failure {
    let code = match &e {
        RegistrationError::Transport(t) => exit::for_transport(t),
        RegistrationError::Refused { .. } | RegistrationError::Unreadable { .. } => exit::DATA,
        RegistrationError::Store { .. } => exit::IO,
        _ => exit::CONFIG,
    };
    Failure::new(code, e)
}

fn qseal(path: Option<&Path>, profile: &Profile) -> Result<QsealCertificate, Failure> {
    let path = path.ok_or_else(|| {
        Failure::new(
            exit::CONFIG,
            format!(
                "profile `{}` has no `qseal_cert`: registration sends the QSealC certificate, \
                 so add `qseal_cert = \"PATH\"` (PEM)",
                profile.name
            ),
        )
    })?;
    let bytes = std::fs::read(path).or_exit(
        exit::CONFIG,
        format!("cannot read the QSealC certificate {}", path.display()),
    )?;
    QsealCertificate::from_bytes(&bytes, &path.display().to_string()).map_err(failure)
}

/// The request body for `profile` with `keys`.
fn body(
    profile: &Profile,
    bank: &BankProfile,
    keys: Vec<RegisteredKey<'_>>,
    state: Option<&RegistrationState>,
) -> Result<Value, Failure> {
    let redirect_uris = match &profile.registration.redirect_uris {
        Some(list) => list.clone(),
        None => profile.redirect_uri.iter().map(|u| u.to_string()).collect(),
    };
    request_body(
        &bank.registration,
        &bank.scopes,
        &BodyInput {
            keys,
            redirect_uris,
            metadata: &profile.registration,
            client_id: state.map(|s| s.client_id.clone()).filter(|c| !c.is_empty()),
            registration_access_token: state.and_then(|s| s.registration_access_token.clone()),
        },
    )
    .map_err(failure)
}

fn registrar(profile: &Profile, bank: &BankProfile) -> Result<Registrar, Failure> {
    Registrar::new(profile, bank).map_err(failure)
}

fn stored(profile: &Profile, store: &RegistrationStore) -> Result<RegistrationState, Failure> {
    store.load(&profile.name).map_err(failure)?.ok_or_else(|| {
        failure(RegistrationError::NotRegistered {
            profile: profile.name.clone(),
        })
    })
}

async fn create(
    profile: &Profile,
    bank: &BankProfile,
    store: &RegistrationStore,
    args: CreateArgs,
) -> Result<u8, Failure> {
    if !args.force
        && let Some(state) = store.load(&profile.name).map_err(failure)?
    {
        return Err(Failure::new(
            exit::CONFIG,
            format!(
                "profile `{}` is already registered at {} (client_id `{}`): use `stet register \
                 update`, or `stet register create --force` to register anew",
                profile.name, bank.display_name, state.client_id
            ),
        ));
    }
    let cert = qseal(profile.qseal_cert.as_deref(), profile)?;
    let kid = kid_for(bank.registration.kid, &cert, Some(&profile.key_id));
    let body = body(
        profile,
        bank,
        vec![RegisteredKey { cert: &cert, kid }],
        None,
    )?;
    let registrar = registrar(profile, bank)?;
    eprintln!(
        "registering profile `{}` at {} ({})",
        profile.name,
        bank.display_name,
        registrar.endpoint()
    );
    let state = registrar.create(&body).await.map_err(failure)?;
    save(profile, bank, store, &state, None)?;
    print(&state, args.out.report())
}

async fn show(
    profile: &Profile,
    bank: &BankProfile,
    store: &RegistrationStore,
    args: OutputArgs,
) -> Result<u8, Failure> {
    let state = stored(profile, store)?;
    let read = registrar(profile, bank)?
        .read(&state)
        .await
        .map_err(failure)?;
    if read.pending_rotation.is_some() {
        // Reading is how a TPP learns that the bank approved: a rotation it now has is
        // finished here, as `rotate --finish` would.
        let read = settle_rotation(profile, bank, store, read, false)?;
        return print(&read, args.report());
    }
    store.save(&profile.name, &read).map_err(failure)?;
    print(&read, args.report())
}

/// What a read says of a pending rotation: the bank has the new certificate (the profile
/// switches to it), has not yet (still pending), or cannot say (a record without keys: the
/// profile switches only on `finish`, the TPP's word that the bank confirmed).
fn settle_rotation(
    profile: &Profile,
    bank: &BankProfile,
    store: &RegistrationStore,
    mut read: RegistrationState,
    finish: bool,
) -> Result<RegistrationState, Failure> {
    let Some(rotation) = read.pending_rotation.clone() else {
        return Ok(read);
    };
    let carried = record_carries(&read.record, &rotation.certificate);
    let done = match carried {
        Some(has) => has,
        None => finish,
    };
    if !done {
        read.status = "pending".to_owned();
        save(profile, bank, store, &read, None)?;
        let why = match carried {
            Some(_) => format!(
                "{}'s registration still carries the old QSealC",
                bank.display_name
            ),
            None => format!(
                "{}'s registration does not show its keys",
                bank.display_name
            ),
        };
        eprintln!(
            "the rotation to {} is still pending: {why}; profile `{}` keeps signing with its \
             current QSealC. Once {} confirms, run `stet register rotate --finish`",
            rotation.qseal_cert, profile.name, bank.display_name
        );
        return Ok(read);
    }
    if let Some(kid) =
        kid_of_certificate(&read.record, &rotation.certificate).or(rotation.kid.clone())
    {
        read.kid = Some(kid);
    }
    read.status = "active".to_owned();
    read.pending_rotation = None;
    let mut changed = vec![
        ("qseal_key", rotation.qseal_key.as_str()),
        ("qseal_cert", rotation.qseal_cert.as_str()),
    ];
    if bank.signature.key_id != KeyIdForm::RegistrationId
        && let Some(key_id) = &rotation.key_id
    {
        changed.push(("key_id", key_id.as_str()));
    }
    save(profile, bank, store, &read, Some(&changed))?;
    eprintln!(
        "{} has the new QSealC: profile `{}` now signs with {} (kid {})",
        bank.display_name,
        profile.name,
        rotation.qseal_cert,
        read.kid.as_deref().unwrap_or("none")
    );
    Ok(read)
}

async fn update(
    profile: &Profile,
    bank: &BankProfile,
    store: &RegistrationStore,
    args: OutputArgs,
) -> Result<u8, Failure> {
    let state = stored(profile, store)?;
    let cert = qseal(profile.qseal_cert.as_deref(), profile)?;
    let kid = state
        .kid
        .clone()
        .or_else(|| kid_for(bank.registration.kid, &cert, Some(&profile.key_id)));
    let body = body(
        profile,
        bank,
        vec![RegisteredKey { cert: &cert, kid }],
        Some(&state),
    )?;
    let updated = registrar(profile, bank)?
        .update(&state, &body)
        .await
        .map_err(failure)?;
    save(profile, bank, store, &updated, None)?;
    print(&updated, args.report())
}

async fn delete(
    profile: &Profile,
    bank: &BankProfile,
    store: &RegistrationStore,
    args: OutputArgs,
) -> Result<u8, Failure> {
    let state = stored(profile, store)?;
    Registrar::check_delete(bank).map_err(failure)?;
    registrar(profile, bank)?
        .delete(&state)
        .await
        .map_err(failure)?;
    store.delete(&profile.name).map_err(failure)?;
    let mut gone = state.clone();
    gone.status = "deleted".to_owned();
    update_profile(profile, &[], &[("status", "deleted")])?;
    eprintln!(
        "deleted the registration `{}` of profile `{}` at {}",
        state.client_id, profile.name, bank.display_name
    );
    print(&gone, args.report())
}

async fn rotate(
    profile: &Profile,
    bank: &BankProfile,
    store: &RegistrationStore,
    args: RotateArgs,
) -> Result<u8, Failure> {
    let state = stored(profile, store)?;
    let (Some(qseal_cert), Some(qseal_key)) = (args.qseal_cert.clone(), args.qseal_key.clone())
    else {
        // `--finish` (clap requires the two otherwise).
        return finish_rotation(profile, bank, store, state, args.out).await;
    };
    if let Some(pending) = &state.pending_rotation {
        eprintln!(
            "replacing the rotation to {} that was still pending",
            pending.qseal_cert
        );
    }
    let old = qseal(profile.qseal_cert.as_deref(), profile)?;
    let new = qseal(Some(&qseal_cert), profile)?;
    // The profile as it will be: the new certificate and key (and, below, kid).
    let mut next = profile.clone();
    next.qseal_cert = Some(qseal_cert.clone());
    next.qseal_key = qseal_key.clone().into();
    let rules = &bank.registration;
    let new_kid = match rules.kid {
        // A new kid for a new key: the profile's current one names the old key.
        KidStrategy::TppChosen => kid_for(rules.kid, &new, None),
        other => kid_for(other, &new, None),
    };
    let rotation = PendingRotation {
        qseal_cert: qseal_cert.display().to_string(),
        qseal_key: qseal_key.clone(),
        key_id: args.key_id.clone(),
        kid: new_kid.clone(),
        certificate: new.x5c(),
    };
    if rules.jwks == JwksShape::None {
        // No key goes through this bank's registration API: the QSealC is registered on its
        // developer portal, by hand. Nothing to send; the profile switches on `--finish`.
        let mut kept = state.clone();
        kept.status = "pending".to_owned();
        kept.pending_rotation = Some(rotation);
        save(profile, bank, store, &kept, None)?;
        eprintln!(
            "{} registers no key through its API (its registration has no jwks): upload {} on \
             its developer portal; profile `{}` keeps signing with its current QSealC until \
             then. Once the bank has it, run `stet register rotate --finish`",
            bank.display_name,
            qseal_cert.display(),
            profile.name
        );
        return print(&kept, args.out.report());
    }
    let updated = match rules.rotation {
        Rotation::ReplaceKey => {
            let body = body(
                profile,
                bank,
                vec![RegisteredKey {
                    cert: &new,
                    kid: new_kid.clone(),
                }],
                Some(&state),
            )?;
            registrar(profile, bank)?
                .update(&state, &body)
                .await
                .map_err(failure)?
        }
        Rotation::AddKey => {
            let body = body(
                profile,
                bank,
                vec![
                    RegisteredKey {
                        cert: &old,
                        kid: state.kid.clone(),
                    },
                    RegisteredKey {
                        cert: &new,
                        kid: new_kid.clone(),
                    },
                ],
                Some(&state),
            )?;
            registrar(profile, bank)?
                .update(&state, &body)
                .await
                .map_err(failure)?
        }
        Rotation::GetThenPut => {
            // Read with the old key, write with the new one: the bank takes the new
            // certificate from a request it signs.
            let read = registrar(profile, bank)?
                .read(&state)
                .await
                .map_err(failure)?;
            match (&bank.signature.key_id, &new_kid, &args.key_id) {
                (KeyIdForm::RegistrationId, Some(kid), _) => next.key_id = kid.clone(),
                (_, _, Some(key_id)) => next.key_id = key_id.clone(),
                _ => {}
            }
            let body = body(
                &next,
                bank,
                vec![RegisteredKey {
                    cert: &new,
                    kid: new_kid.clone(),
                }],
                Some(&read),
            )?;
            registrar(&next, bank)?
                .update(&read, &body)
                .await
                .map_err(failure)?
        }
    };
    // The profile switches only once the bank has the new certificate: an answer that is
    // "recorded, we will contact you" (or a record still without it) leaves the old key
    // signing, and the rotation pending.
    let recorded = updated.status == "pending"
        || record_carries(&updated.record, &rotation.certificate) == Some(false);
    if recorded {
        let mut kept = updated.clone();
        kept.status = "pending".to_owned();
        kept.kid = state.kid.clone();
        kept.pending_rotation = Some(rotation);
        save(profile, bank, store, &kept, None)?;
        eprintln!(
            "the rotation to {} is pending at {}{}: profile `{}` keeps signing with its \
             current QSealC ({}) until the bank has the new one. Once {} confirms, run `stet \
             register rotate --finish` (or `stet register show`)",
            qseal_cert.display(),
            bank.display_name,
            kept.message
                .as_deref()
                .map(|m| format!(" (\"{m}\")"))
                .unwrap_or_default(),
            profile.name,
            profile
                .qseal_cert
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            bank.display_name
        );
        return print(&kept, args.out.report());
    }
    let mut updated = updated;
    updated.pending_rotation = Some(rotation);
    let updated = settle_rotation(profile, bank, store, updated, true)?;
    if bank.signature.key_id == KeyIdForm::CertificateUrl {
        eprintln!(
            "{} finds the QSealC at key_id ({}): publish the new certificate there, or point \
             key_id at where it is (--key-id)",
            bank.display_name,
            args.key_id.as_deref().unwrap_or(&profile.key_id)
        );
    }
    print(&updated, args.out.report())
}

/// `stet register rotate --finish`: reads the registration and switches the profile once the
/// bank has the new certificate.
async fn finish_rotation(
    profile: &Profile,
    bank: &BankProfile,
    store: &RegistrationStore,
    state: RegistrationState,
    out: OutputArgs,
) -> Result<u8, Failure> {
    if state.pending_rotation.is_none() {
        return Err(Failure::new(
            exit::CONFIG,
            format!(
                "profile `{}` has no rotation pending: `stet register rotate --qseal-cert \
                 NEW.pem --qseal-key NEW.key` starts one",
                profile.name
            ),
        ));
    }
    let read = registrar(profile, bank)?
        .read(&state)
        .await
        .map_err(failure)?;
    let read = settle_rotation(profile, bank, store, read, true)?;
    if read.pending_rotation.is_some() {
        print(&read, out.report())?;
        return Ok(exit::TEMPORARY);
    }
    print(&read, out.report())
}

/// Keeps the answer: the store (secrets, 0600) and the profile (ids, status).
fn save(
    profile: &Profile,
    bank: &BankProfile,
    store: &RegistrationStore,
    state: &RegistrationState,
    extra: Option<&[(&str, &str)]>,
) -> Result<(), Failure> {
    store.save(&profile.name, state).map_err(failure)?;
    let mut top: Vec<(&str, &str)> = extra.map(<[_]>::to_vec).unwrap_or_default();
    if !state.client_id.is_empty() {
        top.push(("client_id", &state.client_id));
    }
    if bank.signature.key_id == KeyIdForm::RegistrationId
        && let Some(kid) = &state.kid
    {
        top.push(("key_id", kid));
    }
    let mut table: Vec<(&str, &str)> = vec![("status", &state.status)];
    if let Some(uri) = &state.registration_client_uri {
        table.push(("registration_client_uri", uri));
    }
    update_profile(profile, &top, &table)?;
    // A pending rotation says what it waits for where it is made or read.
    if state.status == "pending" && state.pending_rotation.is_none() {
        eprintln!(
            "{} recorded the request and approves it by hand{}: stet keeps it as pending",
            bank.display_name,
            state
                .message
                .as_deref()
                .map(|m| format!(" (\"{m}\")"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Writes `top` keys and `registration` table keys into the profile's section of its
/// configuration file, keeping everything else (comments included) as it was.
fn update_profile(
    profile: &Profile,
    top: &[(&str, &str)],
    registration: &[(&str, &str)],
) -> Result<(), Failure> {
    let Some(path) = &profile.source else {
        eprintln!(
            "the profile comes from the environment: set {} yourself",
            top.iter()
                .map(|(k, v)| format!("STET_{}={v}", k.to_ascii_uppercase()))
                .collect::<Vec<_>>()
                .join(" ")
        );
        return Ok(());
    };
    let text = std::fs::read_to_string(path)
        .or_exit(exit::IO, format!("cannot read {}", path.display()))?;
    let mut doc: toml_edit::DocumentMut = text.parse().or_exit(
        exit::CONFIG,
        format!("{} is not valid TOML", path.display()),
    )?;
    let name = &profile.name;
    let section = subtable(doc.as_table_mut(), "profiles", path, "profiles")?;
    let section = subtable(section, name, path, &format!("profiles.{name}"))?;
    for (key, value) in top {
        section.insert(key, toml_edit::value(*value));
    }
    if !registration.is_empty() {
        let what = format!("profiles.{name}.registration");
        let table = subtable(section, "registration", path, &what)?;
        for (key, value) in registration {
            table.insert(key, toml_edit::value(*value));
        }
    }
    replace_private(path, &doc.to_string())
}

/// The table `key` of `table` (made when missing), or a failure naming `what` in `path`.
fn subtable<'t>(
    table: &'t mut dyn toml_edit::TableLike,
    key: &str,
    path: &Path,
    what: &str,
) -> Result<&'t mut dyn toml_edit::TableLike, Failure> {
    table
        .entry(key)
        .or_insert(toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_like_mut()
        .ok_or_else(|| {
            Failure::new(
                exit::CONFIG,
                format!("{}: `{what}` is not a table", path.display()),
            )
        })
}

/// Replaces `path` with `text` atomically, readable by its owner only (a profile may name
/// secrets' locations; the doctor wants 0600).
fn replace_private(path: &Path, text: &str) -> Result<(), Failure> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .or_exit(exit::IO, format!("cannot write next to {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o600))
            .or_exit(exit::IO, format!("cannot write {}", path.display()))?;
    }
    std::io::Write::write_all(&mut temp, text.as_bytes())
        .or_exit(exit::IO, format!("cannot write {}", path.display()))?;
    temp.persist(path)
        .map_err(|e| e.error)
        .or_exit(exit::IO, format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// Prints the registration: one row (table, CSV) or its JSON, secrets left out.
fn print(state: &RegistrationState, format: Format) -> Result<u8, Failure> {
    let value = json!({
        "client_id": state.client_id,
        "status": state.status,
        "kid": state.kid,
        "registration_client_uri": state.registration_client_uri,
        "bank": state.bank,
        "message": state.message,
        "record": state.public_record(),
    });
    let optional = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut text = format!(
        "client_id  {}\nstatus     {}\n",
        state.client_id, state.status
    );
    if let Some(kid) = &state.kid {
        text.push_str(&format!("kid        {kid}\n"));
    }
    if let Some(uri) = &state.registration_client_uri {
        text.push_str(&format!("managed at {uri}\n"));
    }
    Report::new(value, text)
        .rows(
            &["client_id", "status", "kid", "registration_client_uri"],
            vec![vec![
                state.client_id.clone(),
                state.status.clone(),
                optional(&state.kid),
                optional(&state.registration_client_uri),
            ]],
        )
        .print(format)?;
    Ok(0)
}
