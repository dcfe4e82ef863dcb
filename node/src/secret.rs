//! [`Secret`]: a password, token or key from the configuration. It reaches
//! only the code that sends it ([`Secret::expose`]); `Debug` prints
//! `<redacted>`, so a logged or printed config never carries it, and it can
//! be read from a file instead of a flag or variable (both are visible to
//! every local user in `/proc/PID/cmdline` and `/proc/PID/environ`).

use std::path::Path;

use serde::Deserialize;

#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads a secret file: its whole content without the trailing line
    /// break (`echo token > file` writes one).
    pub fn from_file(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        Ok(Self(text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "<unset>" } else { "<redacted>" })
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "<redacted>");
        assert_eq!(format!("{:?}", Secret::default()), "<unset>");
    }

    #[test]
    fn a_file_gives_its_content_without_the_line_break() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (content, want) in [("tok\n", "tok"), ("tok\r\n", "tok"), ("tok", "tok"), ("a b\n\n", "a b\n")] {
            let path = dir.path().join("s");
            std::fs::write(&path, content).expect("write");
            assert_eq!(Secret::from_file(&path).expect("read").expose(), want, "{content:?}");
        }
    }
}
