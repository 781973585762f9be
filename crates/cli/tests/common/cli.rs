//! Running the `sluice` CLI binary against a test broker, the way a user
//! would: `--url` names the broker's HTTP listener, `--token` is passed
//! explicitly and `SLUICE_TOKEN`/`SLUICE_URL` are removed from the
//! environment, so nothing from the shell running the tests leaks in.
//!
//! The CLI's contract these helpers check: success exits 0; a refusal or
//! failure exits 1 and usage errors exit 2, in both cases with stderr
//! starting `error: `.

use std::process::Command;

use serde_json::Value;

use super::Broker;

/// The `sluice` command for `args` against `b`, with `token` as `--token`,
/// not yet run: for tests that spawn it or pipe its output themselves.
pub fn cli(b: &Broker, token: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(args)
        .arg("--url")
        .arg(format!("http://127.0.0.1:{}", b.http_port))
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_URL");
    if let Some(t) = token {
        cmd.arg("--token").arg(t);
    }
    cmd
}

/// Runs the CLI to the end; its exit code (-1 if killed by a signal),
/// stdout and stderr.
pub fn sluice(b: &Broker, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let out = cli(b, token, args).output().expect("run sluice");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the CLI expecting success (exit 0); its stdout.
pub fn ok(b: &Broker, token: Option<&str>, args: &[&str]) -> String {
    let (code, out, err) = sluice(b, token, args);
    assert_eq!(code, 0, "sluice {args:?} failed: {err}");
    out
}

/// Runs the CLI with `--json` appended; it must succeed with one JSON
/// document on stdout, which is returned.
pub fn json(b: &Broker, token: Option<&str>, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ok(b, token, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not one JSON document ({e}): {out}"))
}

/// Runs the CLI expecting it to fail with exit status `code` and stderr
/// starting `error: `; its stderr, for the test to check the message.
pub fn fails(b: &Broker, token: Option<&str>, args: &[&str], code: i32) -> String {
    let (got, out, err) = sluice(b, token, args);
    assert_eq!(got, code, "sluice {args:?} should exit {code}: {out} {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

/// Runs the CLI expecting a refusal: exit 1 and `error: ...`; its stderr.
pub fn refused(b: &Broker, token: Option<&str>, args: &[&str]) -> String {
    fails(b, token, args, 1)
}
