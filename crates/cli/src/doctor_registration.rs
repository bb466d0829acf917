//! `stet doctor`'s registration line: what `stet register` kept for the profile against what
//! the profile says (client id, the kid as keyId, an approval still pending).

use stet_client::bank::KeyIdForm;
use stet_client::registration::default_store;
use stet_transport::Profile;

use super::{Kind, Report, Status};
use crate::exit::Failure;

pub(super) fn check(report: &mut Report, profile: &Profile) -> Result<(), Failure> {
    const NAME: &str = "registration";
    let Ok(dir) = crate::profile::data_dir() else {
        return report.skip(NAME, "no data folder to look in", "");
    };
    let state = match default_store(&dir).load(&profile.name) {
        Ok(s) => s,
        Err(e) => return report.fail(NAME, e.to_string(), "delete the file and register again"),
    };
    let Some(state) = state else {
        return report.skip(
            NAME,
            "no registration made with `stet register` (the client_id was given by hand)",
            format!(
                "`stet register create --profile {}` registers at the bank",
                profile.name
            ),
        );
    };
    let key_id_form = crate::profile::bank(profile)
        .ok()
        .map(|b| b.signature.key_id);
    if state.status == "pending" {
        return report.other(
            Status::Warn,
            Kind::Local,
            NAME,
            format!(
                "{} approves it by hand and has not yet{}",
                state.bank,
                state
                    .message
                    .as_deref()
                    .map(|m| format!(" (\"{m}\")"))
                    .unwrap_or_default()
            ),
            "wait for the bank's message, then `stet register show`",
        );
    }
    if profile.client_id.as_deref() != Some(state.client_id.as_str()) {
        return report.fail(
            NAME,
            format!(
                "the profile's client_id ({}) is not the one the bank registered ({})",
                profile.client_id.as_deref().unwrap_or("none"),
                state.client_id
            ),
            format!(
                "set client_id = \"{}\" in profile `{}`",
                state.client_id, profile.name
            ),
        );
    }
    if key_id_form == Some(KeyIdForm::RegistrationId)
        && let Some(kid) = &state.kid
        && kid != &profile.key_id
    {
        return report.fail(
            NAME,
            format!(
                "the bank knows the QSealC as kid `{kid}`, but the profile signs with key_id `{}`",
                profile.key_id
            ),
            format!("set key_id = \"{kid}\" in profile `{}`", profile.name),
        );
    }
    report.pass(
        NAME,
        format!(
            "client_id {} registered at {} ({}{})",
            state.client_id,
            state.bank,
            state.status,
            state
                .kid
                .as_deref()
                .map(|k| format!(", kid {k}"))
                .unwrap_or_default()
        ),
    )
}
