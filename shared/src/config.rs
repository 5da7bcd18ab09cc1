//! Settings read once from the environment when a function starts.

use std::time::Duration;

use crate::runner::{MAX_SEGMENTS, RunSettings};

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
    /// The EventBridge `source` kick-off events must come from.
    pub event_source: String,
}

pub const DEFAULT_TABLE_NAME: &str = "asyncjob-jobs";
/// A migration's write budget, in item writes a second (unset: none).
const ITEMS_PER_SECOND: &str = "ASYNCJOB_MIGRATION_ITEMS_PER_SECOND";
/// How many Scan segments a segmentable migration runs in (unset: by the table's size).
const SEGMENTS: &str = "ASYNCJOB_MIGRATION_SEGMENTS";
pub const DEFAULT_EVENT_SOURCE: &str = "asyncjob.kickoff";
const DEFAULT_RETENTION_DAYS: u64 = 30;
const SECONDS_PER_DAY: u64 = 24 * 60 * 60;

impl Config {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let settings = Settings(&lookup);
        let table_name = settings
            .text("ASYNCJOB_TABLE")
            .unwrap_or_else(|| DEFAULT_TABLE_NAME.to_owned());
        // Without a secret, cursors are still bound to their search, but could be forged
        // by someone who knows the table name; a forged one still reads only that search.
        let cursor_key = settings
            .text("ASYNCJOB_CURSOR_SECRET")
            .unwrap_or_else(|| format!("asyncjob-cursor:{table_name}"))
            .into_bytes();
        let retention_days =
            settings.number("ASYNCJOB_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 1..=3650)?;
        Ok(Self {
            table_name,
            cursor_key,
            event_source: settings
                .text("ASYNCJOB_EVENT_SOURCE")
                .unwrap_or_else(|| DEFAULT_EVENT_SOURCE.to_owned()),
            public_base_url: settings
                .text("PUBLIC_BASE_URL")
                .map(|url| url.trim_end_matches('/').to_owned()),
            auth: settings.auth()?,
            retention: Duration::from_secs(retention_days * SECONDS_PER_DAY),
            run: settings.run()?,
        })
    }
}

/// The settings as `lookup` finds them; a blank value counts as unset.
struct Settings<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Settings<'_> {
    fn text(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|value| !value.trim().is_empty())
    }

    fn number(
        &self,
        name: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, String> {
        let Some(text) = self.text(name) else {
            return Ok(default);
        };
        text.parse::<u64>()
            .ok()
            .filter(|value| range.contains(value))
            .ok_or_else(|| {
                format!(
                    "{name}={text:?}: expected a whole number from {} to {}",
                    range.start(),
                    range.end()
                )
            })
    }

    fn auth(&self) -> Result<AuthConfig, String> {
        let mode = match self.text("ASYNCJOB_AUTH").as_deref() {
            None | Some("authorizer") => AuthMode::Authorizer,
            Some("local") => AuthMode::Local,
            Some(other) => {
                return Err(format!(
                    "ASYNCJOB_AUTH={other:?}: expected \"authorizer\" or \"local\""
                ));
            }
        };
        let or = |name: &str, default: &str| self.text(name).unwrap_or_else(|| default.to_owned());
        Ok(AuthConfig {
            mode,
            scope_claim: or("ASYNCJOB_SCOPE_CLAIM", "scope"),
            read_scope: or("ASYNCJOB_READ_SCOPE", "asyncjob/read"),
            admin_scope: or("ASYNCJOB_ADMIN_SCOPE", "asyncjob/admin"),
        })
    }

    fn run(&self) -> Result<RunSettings, String> {
        let defaults = RunSettings::default();
        let lease_seconds =
            self.number("ASYNCJOB_LEASE_SECONDS", defaults.lease.as_secs(), 1..=900)?;
        let max_attempts = self.number(
            "ASYNCJOB_MAX_ATTEMPTS",
            defaults.max_attempts.into(),
            1..=100,
        )?;
        let page_size = self.number(
            "ASYNCJOB_MIGRATION_PAGE_SIZE",
            defaults.page_size as u64,
            1..=1000,
        )?;
        let items_per_second = self
            .text(ITEMS_PER_SECOND)
            .map(|_| self.number(ITEMS_PER_SECOND, 0, 1..=1_000_000))
            .transpose()?;
        let segments = self
            .text(SEGMENTS)
            .map(|_| self.number(SEGMENTS, 0, 1..=u64::from(MAX_SEGMENTS)))
            .transpose()?;
        let segments_at_once = self.number(
            "ASYNCJOB_MIGRATION_SEGMENTS_AT_ONCE",
            defaults.segments_at_once as u64,
            1..=u64::from(MAX_SEGMENTS),
        )?;
        let retry_seconds = self.number(
            "ASYNCJOB_RETRY_SECONDS",
            defaults.retry_delay.as_secs(),
            1..=3600,
        )?;
        Ok(RunSettings {
            lease: Duration::from_secs(lease_seconds),
            // Both fit: their ranges are far inside the types.
            max_attempts: max_attempts as u32,
            retry_delay: Duration::from_secs(retry_seconds),
            max_retry_delay: defaults
                .max_retry_delay
                .max(Duration::from_secs(retry_seconds)),
            page_size: page_size as usize,
            items_per_second: items_per_second.map(|rate| rate as u32),
            segments: segments.map(|count| count as u32),
            segments_at_once: segments_at_once as usize,
            stop_before_deadline: defaults.stop_before_deadline,
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
            ("ASYNCJOB_MIGRATION_ITEMS_PER_SECOND", "500"),
            ("ASYNCJOB_RETRY_SECONDS", "2"),
            ("ASYNCJOB_MIGRATION_SEGMENTS", "8"),
            ("ASYNCJOB_MIGRATION_SEGMENTS_AT_ONCE", "4"),
            ("ASYNCJOB_EVENT_SOURCE", "my.app"),
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
        assert_eq!(config.run.items_per_second, Some(500));
        assert_eq!(config.run.retry_delay, Duration::from_secs(2));
        assert_eq!(config.run.segments, Some(8));
        assert_eq!(config.run.segments_at_once, 4);
        assert_eq!(config.event_source, "my.app");
    }

    #[test]
    fn refuses_bad_values_instead_of_guessing() {
        assert!(config(&[("ASYNCJOB_AUTH", "none")]).is_err());
        assert!(config(&[("ASYNCJOB_RETENTION_DAYS", "0")]).is_err());
        assert!(config(&[("ASYNCJOB_RETENTION_DAYS", "ten")]).is_err());
        assert!(config(&[("ASYNCJOB_MAX_ATTEMPTS", "0")]).is_err());
        assert!(config(&[("ASYNCJOB_MIGRATION_PAGE_SIZE", "5000")]).is_err());
        assert!(config(&[("ASYNCJOB_MIGRATION_ITEMS_PER_SECOND", "0")]).is_err());
        assert!(config(&[("ASYNCJOB_MIGRATION_ITEMS_PER_SECOND", "fast")]).is_err());
        assert!(config(&[("ASYNCJOB_MIGRATION_SEGMENTS", "65")]).is_err());
        assert!(config(&[("ASYNCJOB_MIGRATION_SEGMENTS_AT_ONCE", "0")]).is_err());
    }
}
