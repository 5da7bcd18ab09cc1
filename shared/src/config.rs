//! Settings read once from the environment when a function starts.

use std::time::Duration;

use crate::runner::RunSettings;

/// How the caller's scopes are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// API Gateway's JWT authorizer has checked the token; its claims are in the request
    /// context.
    Authorizer,
    /// The local stack: a bearer token's claims are read without checking its signature, and
    /// a request without a token may do everything.
    Local,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// The claim that lists the caller's scopes, space separated (OAuth's `scope`).
    pub scope_claim: String,
    /// Needed to poll, read and search.
    pub read_scope: String,
    /// Needed to kick off and cancel; it also grants everything the read scope does.
    pub admin_scope: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub table_name: String,
    /// The base of absolute URLs in headers and bodies; without it they are built from the
    /// request's `Host` and `X-Forwarded-Proto`.
    pub public_base_url: Option<String>,
    pub auth: AuthConfig,
    /// How long a finished job stays readable.
    pub retention: Duration,
    /// How the worker runs jobs.
    pub run: RunSettings,
    /// Key of the MAC that binds a search cursor to its search.
    pub cursor_key: Vec<u8>,
}

pub const DEFAULT_TABLE_NAME: &str = "asyncjob-jobs";
const DEFAULT_RETENTION_DAYS: u64 = 30;
const SECONDS_PER_DAY: u64 = 24 * 60 * 60;

impl Config {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let setting = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let mode = match setting("ASYNCJOB_AUTH").as_deref() {
            None | Some("authorizer") => AuthMode::Authorizer,
            Some("local") => AuthMode::Local,
            Some(other) => {
                return Err(format!(
                    "ASYNCJOB_AUTH={other:?}: expected \"authorizer\" or \"local\""
                ));
            }
        };
        let number =
            |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| match setting(name) {
                None => Ok(default),
                Some(text) => text
                    .parse::<u64>()
                    .ok()
                    .filter(|value| range.contains(value))
                    .ok_or_else(|| {
                        format!(
                            "{name}={text:?}: expected a whole number from {} to {}",
                            range.start(),
                            range.end()
                        )
                    }),
            };
        let defaults = RunSettings::default();
        let retention_days = number("ASYNCJOB_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 1..=3650)?;
        let run = RunSettings {
            lease: Duration::from_secs(number(
                "ASYNCJOB_LEASE_SECONDS",
                defaults.lease.as_secs(),
                1..=900,
            )?),
            max_attempts: number(
                "ASYNCJOB_MAX_ATTEMPTS",
                defaults.max_attempts.into(),
                1..=100,
            )? as u32,
            page_size: number(
                "ASYNCJOB_MIGRATION_PAGE_SIZE",
                defaults.page_size as u64,
                1..=1000,
            )? as usize,
            stop_before_deadline: defaults.stop_before_deadline,
        };
        let table_name = setting("ASYNCJOB_TABLE").unwrap_or_else(|| DEFAULT_TABLE_NAME.to_owned());
        // Without a secret, cursors are still bound to their search, but could be forged
        // by someone who knows the table name; a forged one still reads only that search.
        let cursor_key = setting("ASYNCJOB_CURSOR_SECRET")
            .unwrap_or_else(|| format!("asyncjob-cursor:{table_name}"))
            .into_bytes();
        Ok(Self {
            table_name,
            cursor_key,
            public_base_url: setting("PUBLIC_BASE_URL")
                .map(|url| url.trim_end_matches('/').to_owned()),
            auth: AuthConfig {
                mode,
                scope_claim: setting("ASYNCJOB_SCOPE_CLAIM").unwrap_or_else(|| "scope".to_owned()),
                read_scope: setting("ASYNCJOB_READ_SCOPE")
                    .unwrap_or_else(|| "asyncjob/read".to_owned()),
                admin_scope: setting("ASYNCJOB_ADMIN_SCOPE")
                    .unwrap_or_else(|| "asyncjob/admin".to_owned()),
            },
            retention: Duration::from_secs(retention_days * SECONDS_PER_DAY),
            run,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn defaults_are_safe_for_aws() {
        let config = config(&[]).unwrap();
        assert_eq!(config.auth.mode, AuthMode::Authorizer);
        assert_eq!(config.table_name, DEFAULT_TABLE_NAME);
        assert_eq!(config.retention, Duration::from_secs(30 * SECONDS_PER_DAY));
        assert_eq!(config.public_base_url, None);
        assert_eq!(config.run, RunSettings::default());
    }

    #[test]
    fn reads_every_setting() {
        let config = config(&[
            ("ASYNCJOB_AUTH", "local"),
            ("ASYNCJOB_TABLE", "jobs"),
            ("ASYNCJOB_RETENTION_DAYS", "7"),
            ("PUBLIC_BASE_URL", "https://api.example.org/fhir/"),
            ("ASYNCJOB_READ_SCOPE", "jobs.read"),
            ("ASYNCJOB_ADMIN_SCOPE", "jobs.admin"),
            ("ASYNCJOB_SCOPE_CLAIM", "scp"),
            ("ASYNCJOB_LEASE_SECONDS", "5"),
            ("ASYNCJOB_MAX_ATTEMPTS", "4"),
            ("ASYNCJOB_MIGRATION_PAGE_SIZE", "25"),
        ])
        .unwrap();
        assert_eq!(config.auth.mode, AuthMode::Local);
        assert_eq!(config.table_name, "jobs");
        assert_eq!(config.retention, Duration::from_secs(7 * SECONDS_PER_DAY));
        assert_eq!(
            config.public_base_url.as_deref(),
            Some("https://api.example.org/fhir")
        );
        assert_eq!(config.auth.read_scope, "jobs.read");
        assert_eq!(config.auth.admin_scope, "jobs.admin");
        assert_eq!(config.auth.scope_claim, "scp");
        assert_eq!(config.run.lease, Duration::from_secs(5));
        assert_eq!(config.run.max_attempts, 4);
        assert_eq!(config.run.page_size, 25);
    }

    #[test]
    fn refuses_bad_values_instead_of_guessing() {
        assert!(config(&[("ASYNCJOB_AUTH", "none")]).is_err());
        assert!(config(&[("ASYNCJOB_RETENTION_DAYS", "0")]).is_err());
        assert!(config(&[("ASYNCJOB_RETENTION_DAYS", "ten")]).is_err());
        assert!(config(&[("ASYNCJOB_MAX_ATTEMPTS", "0")]).is_err());
        assert!(config(&[("ASYNCJOB_MIGRATION_PAGE_SIZE", "5000")]).is_err());
    }
}
