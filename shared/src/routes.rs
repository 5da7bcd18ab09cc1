//! The HTTP API's routes and the function that serves each. This is the one list: the SAM
//! template, the local router in `Cargo.toml`, the OpenAPI file and the integration tests'
//! routing are all checked against it or derived from it.

pub const KICKOFF: &str = "/$data-migration";
pub const JOB_STATUS: &str = "/job/{id}/status";
pub const SEARCH: &str = "/AsyncJob";
pub const SEARCH_FORM: &str = "/AsyncJob/_search";
pub const READ: &str = "/AsyncJob/{id}";
pub const PAUSE: &str = "/AsyncJob/{id}/$pause";
pub const RESUME: &str = "/AsyncJob/{id}/$resume";
pub const METADATA: &str = "/metadata";
pub const OPERATION_DEFINITION: &str = "/OperationDefinition/data-migration";
pub const PAUSE_DEFINITION: &str = "/OperationDefinition/AsyncJob-pause";
pub const RESUME_DEFINITION: &str = "/OperationDefinition/AsyncJob-resume";
pub const UI: &str = "/ui";
pub const UI_ASSET: &str = "/ui/{asset}";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// The path template, as API Gateway writes it.
    pub path: &'static str,
    /// The binary that serves it.
    pub function: &'static str,
}

const fn route(method: &'static str, path: &'static str, function: &'static str) -> Route {
    Route {
        method,
        path,
        function,
    }
}

pub const ROUTES: &[Route] = &[
    route("POST", KICKOFF, "kickoff"),
    route("GET", KICKOFF, "discovery"),
    route("GET", METADATA, "discovery"),
    route("GET", OPERATION_DEFINITION, "discovery"),
    route("GET", PAUSE_DEFINITION, "discovery"),
    route("GET", RESUME_DEFINITION, "discovery"),
    route("GET", JOB_STATUS, "status"),
    route("DELETE", JOB_STATUS, "control"),
    route("GET", SEARCH, "search"),
    route("POST", SEARCH_FORM, "search"),
    route("GET", READ, "search"),
    route("POST", PAUSE, "control"),
    route("POST", RESUME, "control"),
    route("GET", UI, "ui"),
    route("GET", UI_ASSET, "ui"),
];

/// The methods a client can send. A path's methods that no route serves reach [`UNSERVED`]
/// (an `ANY` route in template.yaml, an entry per method in the local router), which answers
/// 405 with `Allow`, so no method gets a bare gateway 404.
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// The function that answers the methods a path does not serve.
pub const UNSERVED: &str = "discovery";

/// Every path template, once each, in the order of [`ROUTES`].
pub fn paths() -> impl Iterator<Item = &'static str> {
    ROUTES
        .iter()
        .enumerate()
        .filter(|(at, route)| {
            !ROUTES[..*at]
                .iter()
                .any(|earlier| earlier.path == route.path)
        })
        .map(|(_, route)| route.path)
}

/// The function a request reaches, as API Gateway routes it: the route for its method and
/// path, else [`UNSERVED`]; `None` when no route has its path.
pub fn function_for(method: &str, path: &str) -> Option<&'static str> {
    let mut routes = at(path).peekable();
    routes.peek()?;
    Some(
        routes
            .find(|route| route.method == method)
            .map_or(UNSERVED, |route| route.function),
    )
}

/// The template of the route that `path` reaches, if any: the template must match the end of
/// the path (a stage or base-path prefix may come before it). Where two match, the longer
/// and then the more literal one wins, as API Gateway chooses: `/AsyncJob/_search` is not a
/// read of the job `_search`.
pub fn template_of(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let matches = |template: &str| {
        let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        parts.len() <= segments.len()
            && parts
                .iter()
                .zip(&segments[segments.len() - parts.len()..])
                .all(|(part, segment)| {
                    *part == *segment || (part.starts_with('{') && !segment.is_empty())
                })
    };
    ROUTES
        .iter()
        .map(|route| route.path)
        .filter(|template| matches(template))
        .max_by_key(|template| (template.split('/').count(), !template.contains('{')))
}

/// The routes of the template `path` reaches: one per method.
pub fn at(path: &str) -> impl Iterator<Item = &'static Route> {
    let template = template_of(path);
    ROUTES
        .iter()
        .filter(move |route| Some(route.path) == template)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_reach_the_template_api_gateway_would_choose() {
        let cases = [
            ("/$data-migration", Some(KICKOFF)),
            ("/job/abc/status", Some(JOB_STATUS)),
            ("/prod/job/abc/status", Some(JOB_STATUS)),
            ("/AsyncJob", Some(SEARCH)),
            ("/AsyncJob/", Some(SEARCH)),
            ("/AsyncJob/_search", Some(SEARCH_FORM)),
            ("/AsyncJob/abc", Some(READ)),
            ("/AsyncJob/AsyncJob", Some(READ)),
            ("/metadata", Some(METADATA)),
            (
                "/OperationDefinition/data-migration",
                Some(OPERATION_DEFINITION),
            ),
            ("/OperationDefinition/other", None),
            ("/ui", Some(UI)),
            ("/prod/ui", Some(UI)),
            ("/ui/app.js", Some(UI_ASSET)),
            ("/AsyncJob/ui", Some(READ)),
            ("/AsyncJob/abc/$pause", Some(PAUSE)),
            ("/prod/AsyncJob/abc/$resume", Some(RESUME)),
            ("/AsyncJob/abc/$stop", None),
            ("/ui/", Some(UI)),
            ("/job//status", None),
            ("/elsewhere", None),
            ("", None),
        ];
        for (path, template) in cases {
            assert_eq!(template_of(path), template, "{path}");
        }
    }

    #[test]
    fn a_path_has_one_route_per_method() {
        let methods: Vec<&str> = at("/job/x/status").map(|route| route.method).collect();
        assert_eq!(methods, ["GET", "DELETE"]);
        assert_eq!(at("/nowhere").count(), 0);
    }

    #[test]
    fn a_method_no_route_serves_reaches_the_function_that_answers_405() {
        assert_eq!(function_for("DELETE", "/job/x/status"), Some("control"));
        assert_eq!(function_for("POST", "/AsyncJob/x/$pause"), Some("control"));
        assert_eq!(function_for("GET", "/AsyncJob/x/$resume"), Some(UNSERVED));
        assert_eq!(function_for("GET", "/$data-migration"), Some("discovery"));
        assert_eq!(function_for("POST", "/$data-migration"), Some("kickoff"));
        assert_eq!(function_for("PUT", "/job/x/status"), Some(UNSERVED));
        assert_eq!(function_for("GET", "/nowhere"), None);
    }

    #[test]
    fn each_path_is_listed_once() {
        let paths: Vec<&str> = paths().collect();
        assert_eq!(
            paths,
            [
                KICKOFF,
                METADATA,
                OPERATION_DEFINITION,
                PAUSE_DEFINITION,
                RESUME_DEFINITION,
                JOB_STATUS,
                SEARCH,
                SEARCH_FORM,
                READ,
                PAUSE,
                RESUME,
                UI,
                UI_ASSET
            ]
        );
    }
}
