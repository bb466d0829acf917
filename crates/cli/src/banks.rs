//! `stet banks`: the bank dialect profiles, and what each changes from its generic base.
//!
//! Everything shown comes from `stet_client::bank`; this file only lays it out.

use std::path::PathBuf;

use stet_client::bank::{BankProfile, BankProfiles, ProfileDiff};

use crate::exit::{self, Failure, OrExit as _};
use crate::output::{OutputArgs, Report};

/// `stet banks [NAME] [--output json] [--profiles DIR]`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stet banks                        every profile, and what each changes from its generic base
  stet banks hellobank              one profile in full, with the source of each value
  stet banks --output json | jq '.[] | {name: .profile.name, changes: [.changes[].field]}'
  stet banks --profiles ~/.config/stet/banks bpce
                                    with the profiles in that folder replacing or patching the built-in ones

A profile file that extends its own name patches the built-in profile:
  # ~/.config/stet/banks/bpce.toml
  name = \"bpce\"
  extends = \"bpce\"
  base_path = \"/stet/psd2/v1.4.2\"")]
pub struct BanksArgs {
    /// Show this profile in full (a name or an alias, any case)
    #[arg(value_name = "NAME")]
    name: Option<String>,
    #[command(flatten)]
    out: OutputArgs,
    /// A folder of profile files (*.toml) that add to, replace or patch the built-in profiles
    #[arg(long, value_name = "DIR", env = "STET_BANK_PROFILES")]
    profiles: Option<PathBuf>,
}

/// Prints the profiles (or one), to stdout; an unknown name or a bad profile file exits 78.
pub fn run(args: BanksArgs) -> Result<u8, Failure> {
    let mut banks = BankProfiles::builtin();
    if let Some(dir) = &args.profiles {
        if !dir.is_dir() {
            return Err(Failure::new(
                exit::NO_INPUT,
                format!("--profiles {}: not a folder", dir.display()),
            ));
        }
        banks
            .add_dir(dir)
            .or_exit(exit::CONFIG, "cannot load the bank profiles")?;
    }
    let report = match &args.name {
        Some(name) => one(&banks, name)?,
        None => list(&banks)?,
    };
    report.print(args.out.report())?;
    Ok(0)
}

/// A profile and what it changes, for the list.
fn resolve_all(banks: &BankProfiles) -> Result<Vec<(BankProfile, ProfileDiff)>, Failure> {
    banks
        .names()
        .iter()
        .map(|name| Ok((banks.get(name)?, banks.diff_from_base(name)?)))
        .collect::<Result<_, stet_client::bank::BankError>>()
        .or_exit(exit::CONFIG, "invalid bank profile")
}

fn list(banks: &BankProfiles) -> Result<Report, Failure> {
    let all = resolve_all(banks)?;
    let items: serde_json::Value = all
        .iter()
        .map(|(profile, diff)| {
            serde_json::json!({ "profile": profile, "base": diff.base, "changes": diff.changes })
        })
        .collect();
    let csv_rows = all
        .iter()
        .map(|(profile, diff)| {
            vec![
                profile.name.clone(),
                profile.display_name.clone(),
                profile.dialect.to_string(),
                profile.extends.clone().unwrap_or_default(),
                profile.base_path.clone(),
                diff.changes
                    .iter()
                    .map(|c| c.field)
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();

    let mut rows = vec![[
        "NAME".to_owned(),
        "BANK".to_owned(),
        "DIALECT".to_owned(),
        "EXTENDS".to_owned(),
        "BASE PATH".to_owned(),
    ]];
    for (profile, _) in &all {
        rows.push([
            profile.name.clone(),
            profile.display_name.clone(),
            profile.dialect.to_string(),
            profile.extends.clone().unwrap_or_else(|| "-".to_owned()),
            profile.base_path.clone(),
        ]);
    }
    let mut text = table(&rows);

    text.push_str("\nWhat each profile changes from its generic base:\n");
    for (profile, diff) in &all {
        let Some(base) = &diff.base else { continue };
        text.push_str(&format!("\n{} (from {base})", profile.name));
        if !profile.aliases.is_empty() {
            text.push_str(&format!(", also: {}", profile.aliases.join(", ")));
        }
        text.push('\n');
        if diff.changes.is_empty() {
            text.push_str("  nothing\n");
        }
        let width = diff
            .changes
            .iter()
            .map(|c| c.field.len())
            .max()
            .unwrap_or(0);
        for change in &diff.changes {
            text.push_str(&format!(
                "  {:width$}  {}  ->  {}\n",
                change.field, change.base, change.profile
            ));
        }
    }
    text.push_str(
        "\nNo bank profile has been checked against the bank's live sandbox. \
         `stet banks NAME` shows one in full, with sources.\n",
    );
    Ok(Report::new(items, text).rows(
        &["name", "bank", "dialect", "extends", "base_path", "changes"],
        csv_rows,
    ))
}

fn one(banks: &BankProfiles, name: &str) -> Result<Report, Failure> {
    // An unknown name is a configuration problem: the message lists the known names.
    let profile = banks.get(name).map_err(|e| Failure::new(exit::CONFIG, e))?;
    let diff = banks
        .diff_from_base(&profile.name)
        .or_exit(exit::CONFIG, "invalid bank profile")?;
    let fields = banks
        .explain(&profile.name)
        .or_exit(exit::CONFIG, "invalid bank profile")?;
    let json = serde_json::json!({
        "profile": profile,
        "base": diff.base,
        "changes": diff.changes,
        "fields": fields,
    });
    let csv_rows = fields
        .iter()
        .map(|f| {
            vec![
                f.field.to_owned(),
                f.value.to_string(),
                f.set_by.clone(),
                f.source.clone().unwrap_or_default(),
            ]
        })
        .collect();

    let mut text = format!("{}: {}\n", profile.name, profile.display_name);
    if !profile.aliases.is_empty() {
        text.push_str(&format!("aliases: {}\n", profile.aliases.join(", ")));
    }
    match (&profile.extends, &diff.base) {
        (Some(extends), Some(base)) if extends != base => {
            text.push_str(&format!("extends: {extends} (generic base: {base})\n"));
        }
        (Some(extends), _) => text.push_str(&format!("extends: {extends}\n")),
        (None, _) => text.push_str("extends: nothing (a generic profile)\n"),
    }
    text.push_str(&format!(
        "checked against the bank's live sandbox: {}\n\n",
        if profile.verified_against_live_sandbox {
            "yes"
        } else {
            "no"
        }
    ));
    let width = fields.iter().map(|f| f.field.len()).max().unwrap_or(0);
    for field in &fields {
        let changed = diff.changes.iter().any(|c| c.field == field.field);
        text.push_str(&format!(
            "{} {:width$} = {}\n",
            if changed { "*" } else { " " },
            field.field,
            field.value
        ));
        let from = format!("set by {} ({})", field.set_by, field.origin);
        match &field.source {
            Some(source) => text.push_str(&format!("  {:width$}   {from}; source: {source}\n", "")),
            None => text.push_str(&format!("  {:width$}   {from}\n", "")),
        }
    }
    if diff.base.is_some() {
        text.push_str("\n* differs from the generic base\n");
    }
    text.push_str("\nnotes:\n");
    for line in profile.notes.trim().lines() {
        text.push_str(&format!("  {line}\n"));
    }
    Ok(Report::new(json, text).rows(&["field", "value", "set_by", "source"], csv_rows))
}

/// Left-aligned columns two spaces apart; widths by characters (names have accents).
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                line.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}
