//! What the service layer counts for `/metrics` (the server crate renders them). Every label is a bounded value:
//! a method, a protocol, an outcome, a stable error code or a check result; never an id, an email or a name.
//! Without an installed recorder (the `latchkey operators` command, unit tests) these calls do nothing.

/// One finished sign-in attempt. `method` is how the person proved who they are (`sso`, `password`, `ldap`),
/// `protocol` the protocol that carried it (`oidc`, `saml`, `ldap`, `password`), `code` the stable error code of a
/// failure (empty on success).
pub fn sign_in(method: &'static str, protocol: &'static str, code: Option<&'static str>) {
    let outcome = if code.is_some() { "failure" } else { "success" };
    metrics::counter!(
        "latchkey_sign_ins_total",
        "method" => method,
        "protocol" => protocol,
        "outcome" => outcome,
        "code" => code.unwrap_or(""),
    )
    .increment(1);
}

/// One second-factor challenge (console or application), `kind` = `totp`, `recovery_code` or the error code.
pub fn mfa_challenge(success: bool, via: &'static str) {
    metrics::counter!(
        "latchkey_mfa_challenges_total",
        "outcome" => if success { "success" } else { "failure" },
        "via" => via,
    )
    .increment(1);
}

/// One DNS check of a domain, by what it found (`verified`, `missing`, `wrong_value`, `held_elsewhere`, …).
pub fn domain_check(result: &'static str) {
    metrics::counter!("latchkey_domain_checks_total", "result" => result).increment(1);
}

/// One webhook delivery attempt, by what it led to (`delivered`, `pending` = will retry, `failed` = gave up).
pub fn webhook_attempt(status: &'static str) {
    metrics::counter!("latchkey_webhook_attempts_total", "result" => status).increment(1);
}

/// One pass of a background job (`domain_checks`, `housekeeping`) and how long it took.
pub fn job_pass(job: &'static str, ok: bool, seconds: f64) {
    metrics::counter!("latchkey_job_passes_total", "job" => job, "outcome" => if ok { "success" } else { "failure" }).increment(1);
    metrics::histogram!("latchkey_job_pass_duration_seconds", "job" => job).record(seconds);
}
