//! Archive entry names: relative paths that can never leave the output directory.

use super::FormatError;
use std::fmt;
use std::path::PathBuf;

/// Longest entry name, in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// A validated entry name: a relative path of `/`-separated components.
///
/// Rules: 1..=[`MAX_NAME_BYTES`] bytes of UTF-8; no control characters (including NUL), no `\`
/// and no `:` (Windows separators, drive letters and streams); no leading or trailing `/`, no
/// empty component (`a//b`), no `.` or `..` component.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryName(String);

impl EntryName {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<Self, FormatError> {
        let name = name.into();
        match problem(&name) {
            None => Ok(EntryName(name)),
            Some(reason) => Err(invalid(&name, reason)),
        }
    }

    /// Validates raw bytes read from a file.
    pub(super) fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        match std::str::from_utf8(bytes) {
            Ok(s) => EntryName::new(s),
            Err(_) => Err(invalid(&String::from_utf8_lossy(bytes), "not valid UTF-8")),
        }
    }

    /// The name as written in the archive.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a relative path, to be joined to an output directory.
    pub fn to_relative_path(&self) -> PathBuf {
        self.0.split('/').collect()
    }
}

impl fmt::Display for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is wrong with `name`, if anything.
fn problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return Some("longer than 1024 bytes");
    }
    if name.chars().any(char::is_control) {
        return Some("contains a control character");
    }
    if name.chars().any(is_bidi_control) {
        return Some(
            "contains a bidirectional text control (U+061C, U+200E/F, U+202A-E, U+2066-9)",
        );
    }
    if name.contains(['\\', ':']) {
        return Some("contains '\\' or ':'");
    }
    if name.starts_with('/') {
        return Some("is an absolute path");
    }
    name.split('/').find_map(|component| match component {
        "" => Some("has an empty path component"),
        "." | ".." => Some("has a '.' or '..' path component"),
        _ => None,
    })
}

/// Unicode's bidirectional formatting characters: they make a name display as another (a
/// `U+202E` can show `gnp.exe` as `exe.png`).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn invalid(name: &str, reason: &'static str) -> FormatError {
    const SHOWN: usize = 100;
    let mut shown: String = name.chars().take(SHOWN).collect();
    if name.chars().nth(SHOWN).is_some() {
        shown.push('…');
    }
    FormatError::InvalidName {
        name: shown,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Component;

    #[test]
    fn accepts_relative_paths() {
        for ok in [
            "a.png",
            "digits/0/img 1.png",
            "ü/名前",
            "..a/b..",
            ".hidden",
            "a/.b",
        ] {
            let n = EntryName::new(ok).unwrap();
            assert_eq!(n.as_str(), ok);
            assert!(n
                .to_relative_path()
                .components()
                .all(|c| matches!(c, Component::Normal(_))));
        }
        EntryName::new("x".repeat(MAX_NAME_BYTES)).unwrap();
    }

    #[test]
    fn rejects_escapes_and_oddities() {
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        for bad in [
            "",
            "/etc/passwd",
            "..",
            "../x",
            "a/../../x",
            "a/..",
            "./a",
            "a/./b",
            "a//b",
            "a/",
            "C:x",
            "c:\\x",
            "a\\..\\b",
            "a\0b",
            "a\nb",
            "\u{7f}",
            "report\u{202E}gnp.exe",
            "a\u{2066}b",
            "a\u{200F}b",
            "a\u{061C}b",
            &long,
        ] {
            let err = EntryName::new(bad).unwrap_err();
            assert!(
                matches!(err, FormatError::InvalidName { .. }),
                "{bad:?}: {err}"
            );
        }
        assert!(EntryName::from_bytes(b"a\xffb").is_err());
    }

    #[test]
    fn long_names_are_shortened_in_errors() {
        let err = EntryName::new(format!("../{}", "y".repeat(5000)))
            .unwrap_err()
            .to_string();
        assert!(err.len() < 200, "{err}");
    }
}
