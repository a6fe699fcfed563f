//! sentry-cli's source bundle: a zip archive (after an 8-byte `SYSB` header in the format's newer
//! writers) whose `manifest.json` lists each file with its `type` (`minified_source`, `source_map`, …),
//! its `url` (`~/static/app.js`) and headers (`debug-id`, `sourcemap`); `attributes` carry the release and
//! dist the upload named.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use serde::Deserialize;

use super::ArtifactError;
use crate::store::{ArtifactFile, ArtifactKind};

/// The manifest's own cap: a list of files, never large.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// Files listed in one bundle, at most.
const MAX_FILES: usize = 100_000;

#[derive(Deserialize, Default)]
struct Manifest {
    #[serde(default)]
    files: BTreeMap<String, ManifestFile>,
    #[serde(default)]
    attributes: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct ManifestFile {
    #[serde(default, rename = "type")]
    ty: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// A bundle's files and the release and dist its manifest names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BundleIndex {
    pub files: Vec<ArtifactFile>,
    pub release: String,
    pub dist: String,
}

fn archive(bytes: &[u8]) -> Result<zip::ZipArchive<Cursor<&[u8]>>, ArtifactError> {
    // The zip reader finds the central directory from the end, so a header before the archive is fine.
    zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ArtifactError::Invalid(format!("the bundle is not a zip archive: {e}")))
}

/// Reads `path` from the archive, refusing (by its stated size, and again while reading) more than
/// `cap` bytes.
fn read_entry(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    path: &str,
    cap: u64,
    what: &str,
) -> Result<Vec<u8>, ArtifactError> {
    let entry = zip
        .by_name(path)
        .map_err(|e| ArtifactError::Invalid(format!("{what}: {e}")))?;
    if entry.size() > cap {
        return Err(ArtifactError::Invalid(format!(
            "{what} is {} bytes, over the cap of {cap} bytes",
            entry.size()
        )));
    }
    let mut out = Vec::with_capacity(entry.size() as usize);
    entry
        .take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|e| ArtifactError::Invalid(format!("{what}: {e}")))?;
    if out.len() as u64 > cap {
        return Err(ArtifactError::Invalid(format!(
            "{what} is over the cap of {cap} bytes"
        )));
    }
    Ok(out)
}

/// The bundle's index, every file checked against `max_file_bytes` by its size in the archive
/// (a map over the cap is refused here, at upload, with its URL named).
pub fn index(bytes: &[u8], max_file_bytes: usize) -> Result<BundleIndex, ArtifactError> {
    let mut zip = archive(bytes)?;
    let manifest = read_entry(
        &mut zip,
        "manifest.json",
        MAX_MANIFEST_BYTES,
        "manifest.json",
    )?;
    let manifest: Manifest = serde_json::from_slice(&manifest)
        .map_err(|e| ArtifactError::Invalid(format!("manifest.json: {e}")))?;
    if manifest.files.len() > MAX_FILES {
        return Err(ArtifactError::Invalid(format!(
            "the bundle lists {} files; at most {MAX_FILES}",
            manifest.files.len()
        )));
    }
    let mut files = Vec::with_capacity(manifest.files.len());
    for (path, file) in manifest.files {
        let size = zip
            .by_name(&path)
            .map_err(|e| ArtifactError::Invalid(format!("{path} (listed in the manifest): {e}")))?
            .size();
        if size > max_file_bytes as u64 {
            return Err(ArtifactError::Invalid(format!(
                "{} is {size} bytes, over the cap of {max_file_bytes} bytes per file (SPLAT_MAX_ARTIFACT_FILE_BYTES)",
                file.url
            )));
        }
        let header = |name: &str| {
            file.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        files.push(ArtifactFile {
            kind: ArtifactKind::from_name(&file.ty),
            url: file.url.clone(),
            debug_id: header("debug-id").map(|d| d.to_ascii_lowercase()),
            sourcemap: header("sourcemap").or_else(|| header("x-sourcemap")),
            path,
        });
    }
    let attribute = |name: &str| {
        manifest
            .attributes
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    Ok(BundleIndex {
        files,
        release: attribute("release"),
        dist: attribute("dist"),
    })
}

/// One file of a stored bundle, at most `cap` bytes.
pub fn read_file(bytes: &[u8], path: &str, cap: usize) -> Result<Vec<u8>, ArtifactError> {
    read_entry(&mut archive(bytes)?, path, cap as u64, path)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;

    /// A file of a test bundle: path in the zip, type, URL, headers, content.
    pub(crate) type TestFile<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a [u8],
    );

    /// A bundle as sentry-cli builds it: the `SYSB` header, then a zip with a manifest and the files.
    pub(crate) fn bundle(files: &[TestFile]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        let mut manifest = serde_json::json!({"files": {}, "attributes": {"release": "1.0"}});
        for (path, ty, url, headers, content) in files {
            zip.start_file(*path, options).unwrap();
            zip.write_all(content).unwrap();
            let headers: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect();
            manifest["files"][*path] =
                serde_json::json!({"type": ty, "url": url, "headers": headers});
        }
        zip.start_file("manifest.json", options).unwrap();
        zip.write_all(manifest.to_string().as_bytes()).unwrap();
        let zipped = zip.finish().unwrap().into_inner();
        let mut out = b"SYSB\x02\x00\x00\x00".to_vec();
        out.extend(zipped);
        out
    }

    #[test]
    fn the_manifest_is_indexed_and_files_read_back() {
        let bytes = bundle(&[
            (
                "files/_/_/app.js",
                "minified_source",
                "~/app.js",
                &[("debug-id", "ABC-1"), ("Sourcemap", "app.js.map")],
                b"function a(){}",
            ),
            (
                "files/_/_/app.js.map",
                "source_map",
                "~/app.js.map",
                &[("debug-id", "abc-1")],
                b"{}",
            ),
        ]);
        let index = index(&bytes, 1000).unwrap();
        assert_eq!(index.release, "1.0");
        assert_eq!(index.files.len(), 2);
        let js = &index.files[0];
        assert_eq!(js.kind, ArtifactKind::MinifiedSource);
        assert_eq!(js.debug_id.as_deref(), Some("abc-1"));
        assert_eq!(js.sourcemap.as_deref(), Some("app.js.map"));
        assert_eq!(
            read_file(&bytes, "files/_/_/app.js.map", 10).unwrap(),
            b"{}"
        );
        assert!(read_file(&bytes, "files/_/_/app.js", 3).is_err());
    }

    #[test]
    fn a_file_over_the_cap_or_a_broken_archive_is_refused_with_its_reason() {
        let bytes = bundle(&[("m", "source_map", "~/big.js.map", &[], &[b'x'; 2000])]);
        let err = index(&bytes, 1000).unwrap_err().to_string();
        assert!(err.contains("~/big.js.map is 2000 bytes"), "{err}");
        assert!(index(b"not a zip", 1000).is_err());
        assert!(index(&bytes[..bytes.len() / 2], 1000).is_err());
    }
}
