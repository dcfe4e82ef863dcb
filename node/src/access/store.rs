//! The tokens file as a node holds it: read at start (a bad file stops the
//! start), read again when it changes (a bad edit keeps the tokens in
//! force and is logged), so tokens are added and revoked without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};

use super::tokens::{BadEntry, TokenFile, Tokens};

/// A tokens file could not be read, checked or written. Each names the
/// file, but for what `token add` fails at before it writes one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokensFileError {
    /// Reading or writing the file failed.
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    /// The file is not TOML of a tokens file.
    #[error("{}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    /// An entry of the file is unusable.
    #[error("{}: {entry}", path.display())]
    Entry { path: PathBuf, entry: BadEntry },
    /// `token add` with a name the file holds already.
    #[error("{}: a token named {name:?} is there already", path.display())]
    Duplicate { path: PathBuf, name: String },
    /// The entry `token add` would write is unusable.
    #[error(transparent)]
    NewEntry(BadEntry),
    #[error("no randomness from the OS")]
    NoRandomness,
    /// The tokens could not be written as TOML.
    #[error("{0}")]
    Encode(String),
}

impl TokensFileError {
    pub(super) fn io(path: &Path) -> impl Fn(std::io::Error) -> Self + Copy + '_ {
        move |e| Self::Io { path: path.to_owned(), message: e.to_string() }
    }

    pub(super) fn syntax(path: &Path) -> impl Fn(toml::de::Error) -> Self + Copy + '_ {
        move |e| Self::Syntax { path: path.to_owned(), message: e.to_string() }
    }
}

#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    tokens: RwLock<Arc<Tokens>>,
    read_at: Mutex<Option<SystemTime>>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reads and checks a tokens file.
pub fn read_tokens(path: &Path) -> Result<Tokens, TokensFileError> {
    let text = std::fs::read_to_string(path).map_err(TokensFileError::io(path))?;
    let file: TokenFile = toml::from_str(&text).map_err(TokensFileError::syntax(path))?;
    Tokens::from_file(&file).map_err(|entry| TokensFileError::Entry { path: path.to_owned(), entry })
}

impl TokenStore {
    pub fn open(path: &Path) -> Result<Self, TokensFileError> {
        let read_at = modified(path);
        let tokens = read_tokens(path)?;
        Ok(Self { path: path.to_owned(), tokens: RwLock::new(Arc::new(tokens)), read_at: Mutex::new(read_at) })
    }

    /// A store holding `tokens`, never reloaded (tests).
    pub fn fixed(tokens: Tokens) -> Self {
        Self { path: PathBuf::new(), tokens: RwLock::new(Arc::new(tokens)), read_at: Mutex::new(None) }
    }

    pub fn current(&self) -> Arc<Tokens> {
        self.tokens.read().clone()
    }

    /// Reads the file again if it changed. `Ok(Some(n))`: `n` tokens in
    /// force now; on an error the old tokens stay.
    pub fn reload_if_changed(&self) -> Result<Option<usize>, TokensFileError> {
        if self.path.as_os_str().is_empty() {
            return Ok(None);
        }
        let now = modified(&self.path);
        let mut read_at = self.read_at.lock();
        if *read_at == now {
            return Ok(None);
        }
        *read_at = now;
        let tokens = read_tokens(&self.path)?;
        let count = tokens.len();
        *self.tokens.write() = Arc::new(tokens);
        Ok(Some(count))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tokens::{hash, Scope};
    use super::*;

    fn write(path: &Path, token: &str) {
        let text = format!("[[tokens]]\nname = \"t\"\nscopes = [\"read\"]\nsha256 = \"{}\"\n", hex::encode(hash(token)));
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn a_changed_file_is_read_again_and_a_bad_one_keeps_the_old_tokens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.toml");
        write(&path, "one");
        let store = TokenStore::open(&path).expect("opens");
        assert_eq!(store.reload_if_changed(), Ok(None), "unchanged");
        let ok = |t: &str| store.current().authenticate(Some(format!("Bearer {t}").as_bytes()), Scope::Read).is_ok();
        assert!(ok("one"));
        write(&path, "two");
        // Filesystems with coarse timestamps: make the change visible.
        *store.read_at.lock() = None;
        assert_eq!(store.reload_if_changed(), Ok(Some(1)));
        assert!(ok("two") && !ok("one"), "revoked by the edit");
        std::fs::write(&path, "not toml [").expect("write");
        *store.read_at.lock() = None;
        assert!(store.reload_if_changed().is_err());
        assert!(ok("two"), "a bad edit keeps the tokens in force");
    }

    #[test]
    fn a_bad_file_stops_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.toml");
        std::fs::write(&path, "[[tokens]]\nname = \"t\"\nscopes = []\nsha256 = \"00\"\n").expect("write");
        assert!(TokenStore::open(&path).is_err());
        assert!(TokenStore::open(&dir.path().join("missing.toml")).is_err());
    }
}
