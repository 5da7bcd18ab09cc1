//! The dashboard's files, embedded in the binary, each with a fingerprint of its content
//! (its strong ETag). The page names the other files with their fingerprint in the query,
//! so a browser may keep them for a year: a deploy that changes one names a new URL.

use std::borrow::Cow;
use std::fmt::Write;
use std::sync::LazyLock;

use asyncjob_shared::model::{CodeSet, JobStatus, JobType};
use sha2::{Digest, Sha256};

pub struct Asset {
    pub content_type: &'static str,
    pub body: Cow<'static, str>,
    /// Hex of the first 8 bytes of the content's SHA-256.
    pub fingerprint: String,
}

impl Asset {
    fn new(content_type: &'static str, body: Cow<'static, str>) -> Self {
        let digest = Sha256::digest(body.as_bytes());
        let fingerprint = digest[..8].iter().fold(String::new(), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        });
        Self {
            content_type,
            body,
            fingerprint,
        }
    }

    /// A strong validator: the bytes are the same wherever the fingerprint is.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.fingerprint)
    }
}

/// The files under `/ui/`, by name.
const FILES: [(&str, &str, &str); 3] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/style.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../assets/icon.svg"),
    ),
];

/// The page, with `{{file}}` where a file's URL goes and `{{statuses}}`, `{{types}}` where
/// the codes go, so the filters offer exactly what the API accepts.
const PAGE: &str = include_str!("../assets/index.html");

pub struct Assets {
    pub page: Asset,
    files: Vec<(&'static str, Asset)>,
}

impl Assets {
    pub fn file(&self, name: &str) -> Option<&Asset> {
        self.files
            .iter()
            .find(|(file, _)| *file == name)
            .map(|(_, asset)| asset)
    }

    #[cfg(test)]
    pub fn files(&self) -> impl Iterator<Item = (&'static str, &Asset)> {
        self.files.iter().map(|(name, asset)| (*name, asset))
    }
}

pub static ASSETS: LazyLock<Assets> = LazyLock::new(|| {
    let files: Vec<(&str, Asset)> = FILES
        .iter()
        .map(|(name, content_type, body)| (*name, Asset::new(content_type, Cow::Borrowed(body))))
        .collect();
    // Relative to the page at `{base}/ui`, so a stage or path prefix is kept.
    let page = files.iter().fold(
        PAGE.replace("{{statuses}}", &codes::<JobStatus>())
            .replace("{{types}}", &codes::<JobType>()),
        |page, (name, asset)| {
            page.replace(
                &format!("{{{{{name}}}}}"),
                &format!("ui/{name}?v={}", asset.fingerprint),
            )
        },
    );
    Assets {
        page: Asset::new("text/html; charset=utf-8", Cow::Owned(page)),
        files,
    }
});

fn codes<T: CodeSet>() -> String {
    let codes: Vec<&str> = T::ALL.iter().map(|value| value.code()).collect();
    codes.join(" ")
}
