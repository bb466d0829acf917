//! Powens profiles for the end-to-end tests: a sandbox serving the Powens mock, a profile for
//! it, and `stet connect` to the test connector's clone.

use std::path::PathBuf;

use serde_json::Value;

use super::{Env, Out, write_private};

/// A sandbox with the Powens mock, and a configuration whose profile `powens` points at it
/// (the client secret in `STET_CLIENT_SECRET`, as the README advises).
pub fn powens_env(extra: &[&str]) -> Env {
    let mut args = vec!["--powens"];
    args.extend_from_slice(extra);
    let mut env = Env::with(&args, "sandbox");
    let path = write_profile(&env, "powens", &[]);
    let secret = env.sandbox.info["powens"]["client_secret"]
        .as_str()
        .expect("the mock's secret")
        .to_owned();
    env.vars
        .push(("STET_CONFIG".into(), path.display().to_string()));
    env.vars.push(("STET_CLIENT_SECRET".into(), secret));
    env
}

/// Writes `NAME.toml` with one Powens profile `NAME` for the mock, keys overridden or added.
pub fn write_profile(env: &Env, name: &str, overrides: &[(&str, &str)]) -> PathBuf {
    let mock = &env.sandbox.info["powens"];
    let q = |v: &Value| format!("{:?}", v.as_str().expect("a string"));
    let mut keys: Vec<(String, String)> = vec![
        ("provider".into(), "\"powens\"".into()),
        ("api_base".into(), q(&mock["api_base"])),
        ("client_id".into(), q(&mock["client_id"])),
        ("ca_bundle".into(), q(&env.sandbox.info["ca"])),
        (
            "redirect_uri".into(),
            "\"http://127.0.0.1/callback\"".into(),
        ),
    ];
    for (k, v) in overrides {
        match keys.iter_mut().find(|(key, _)| key == k) {
            Some(entry) => entry.1 = (*v).to_owned(),
            None => keys.push(((*k).to_owned(), (*v).to_owned())),
        }
    }
    let body: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    let path = env.home.path().join(format!("{name}.toml"));
    write_private(
        &path,
        &format!("default_profile = \"{name}\"\n[profiles.{name}]\n{body}"),
    );
    path
}

pub const TEST: &str = "Connecteur de test";

/// `stet connect` to the test connector through `openapi` with `scenario`, the rest given.
pub fn connect(env: &Env, scenario: &str) -> Out {
    env.run(&[
        "connect",
        "--connector",
        TEST,
        "--source",
        "openapi",
        "--field",
        "login=jdoe",
        "--field",
        "password=1234",
        "--field",
        &format!("openapiwebsite={scenario}"),
        "--output",
        "json",
    ])
}

/// Every request that reached the mock carrying credentials (`GET
/// /sandbox/powens/credentials`): path, fields (name, whether a JWE), key, scenario, answer.
pub fn credential_posts(env: &Env) -> Vec<Value> {
    super::sandbox_call(env, "GET", "/sandbox/powens/credentials", "")["posts"]
        .as_array()
        .expect("the mock's credential log")
        .clone()
}

/// Asserts that every credential field of every post the mock received was a JWE: what
/// proves that `stet connect` encrypts on the wire (the mock refuses values in clear, and
/// says which were).
pub fn assert_all_encrypted(posts: &[Value]) {
    assert!(!posts.is_empty(), "no credentials reached the mock");
    for post in posts {
        let fields = post["fields"].as_array().expect("fields");
        assert!(!fields.is_empty(), "{post}");
        for field in fields {
            assert_eq!(field["encrypted"], true, "sent in clear: {post}");
        }
        assert_ne!(post["key"], "none", "refused unread: {post}");
    }
}
