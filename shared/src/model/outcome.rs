//! `OperationOutcome`: the body of every error and of the kick-off and cancel answers.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

/// The `issue.code` values the service uses (FHIR `issue-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IssueCode {
    Invalid,
    Required,
    Value,
    NotFound,
    Conflict,
    Throttled,
    Security,
    Login,
    Forbidden,
    NotSupported,
    TooCostly,
    Transient,
    Exception,
    Informational,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationOutcomeResourceType {
    #[default]
    OperationOutcome,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationOutcome {
    pub resource_type: OperationOutcomeResourceType,
    pub issue: Vec<Issue>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    pub severity: Severity,
    pub code: IssueCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
}

impl OperationOutcome {
    pub fn single(severity: Severity, code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Self {
            resource_type: OperationOutcomeResourceType::OperationOutcome,
            issue: vec![Issue {
                severity,
                code,
                diagnostics: Some(diagnostics.into()),
            }],
        }
    }

    /// Adds an informational issue: a second thing the reader should know.
    pub fn and_information(mut self, diagnostics: impl Into<String>) -> Self {
        self.issue.extend(Self::information(diagnostics).issue);
        self
    }

    pub fn error(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Self::single(Severity::Error, code, diagnostics)
    }

    pub fn warning(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Self::single(Severity::Warning, code, diagnostics)
    }

    pub fn information(diagnostics: impl Into<String>) -> Self {
        Self::single(Severity::Information, IssueCode::Informational, diagnostics)
    }
}
