//! The contract in api/openapi.yaml, as the tests check answers against it.

use std::sync::LazyLock;

use lambda_http::http::Method;
use serde_json::Value;

/// The status codes api/openapi.yaml documents for `method` on `path`, or `None` when it
/// documents no such operation.
pub fn openapi_statuses(method: &Method, path: &str) -> Option<Vec<u16>> {
    static OPENAPI: LazyLock<Value> = LazyLock::new(|| {
        serde_yaml_ng::from_str(include_str!("../../api/openapi.yaml")).expect("valid YAML")
    });
    let segments: Vec<&str> = path.split('/').collect();
    let matches = |template: &str| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(part, segment)| part.starts_with('{') || part == segment)
    };
    // The most literal template wins: /AsyncJob/_search before /AsyncJob/{id}.
    let (_, item) = OPENAPI["paths"]
        .as_object()?
        .iter()
        .filter(|(template, _)| matches(template))
        .min_by_key(|(template, _)| template.matches('{').count())?;
    let operation = item.get(method.as_str().to_ascii_lowercase())?;
    Some(
        operation["responses"]
            .as_object()?
            .keys()
            .filter_map(|status| status.parse().ok())
            .collect(),
    )
}
