//! Applies the numbered SQL files of `migrations/` (embedded in the binary)
//! to ClickHouse, once each, in order.
//!
//! Applied files are recorded in `ollystack_migrations` with a checksum of
//! their text; a recorded file whose text has changed is an error (applied
//! migrations are immutable: a change is a new numbered file). Every
//! statement is idempotent (`IF NOT EXISTS`), so a run interrupted between a
//! file's last statement and its record is simply repeated next time.
//!
//! The pure parts (statement splitting, placeholder substitution, checksum,
//! planning) are plain functions with their tests below; [`migrate_files`]
//! is the I/O around them.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::settings::{is_identifier, ClickHouseSettings};

/// One migration file: `version` is its number, `name` its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration<'a> {
    pub version: u32,
    pub name: &'a str,
    pub sql: &'a str,
}

macro_rules! embedded {
    ($($version:literal => $name:literal),* $(,)?) => {
        &[$(Migration { version: $version, name: $name, sql: include_str!(concat!("../../../../migrations/", $name)) }),*]
    };
}

/// The migrations shipped with this binary, in order (kept in sync with the
/// `migrations/` directory by a unit test).
pub const MIGRATIONS: &[Migration<'static>] = embedded![
    1 => "0001_otel_traces.sql",
    2 => "0002_otel_logs.sql",
    3 => "0003_sessions.sql",
    4 => "0004_metric_exemplars.sql",
    5 => "0005_correlation_summary.sql",
];

/// The one placeholder a migration may use; the runner substitutes the
/// validated `clickhouse.ttl_days`.
pub const TTL_PLACEHOLDER: &str = "{ttl_days}";

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS ollystack_migrations (\
     version UInt32, name String, checksum String, applied_at DateTime64(3)\
     ) ENGINE = MergeTree ORDER BY version";

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub database: String,
    pub url: String,
    /// Files applied by this run, in order.
    pub applied: Vec<AppliedMigration>,
    /// Files found already applied (and unchanged).
    pub already_applied: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: u32,
    pub name: String,
    pub statements: usize,
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "migrations: {} applied, {} already applied (database {} at {})",
            self.applied.len(),
            self.already_applied,
            self.database,
            self.url
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrateError {
    #[error("invalid ClickHouse settings: {0}")]
    Settings(String),
    #[error("invalid migration list: {0}")]
    Files(String),
    #[error("ClickHouse at {url}: {action} failed: {message}")]
    Server { url: String, action: String, message: String },
    #[error(
        "migration {name} was applied with checksum {recorded} but the file now has checksum {actual}; \
         applied migrations must not change (add a new numbered file instead)"
    )]
    ChecksumMismatch { version: u32, name: String, recorded: String, actual: String },
    #[error("migration version {version} was applied as {recorded} but the file is now {name}")]
    NameMismatch { version: u32, name: String, recorded: String },
    #[error("migration {name}: statement {index} of {total} (`{first_line}`) failed: {message}")]
    Statement { name: String, index: usize, total: usize, first_line: String, message: String },
}

/// Applies the embedded [`MIGRATIONS`] that are not applied yet.
pub async fn migrate(settings: &ClickHouseSettings) -> Result<MigrationReport, MigrateError> {
    migrate_files(settings, MIGRATIONS).await
}

/// Applies those of `files` (ordered by strictly increasing version) that are
/// not recorded in the database yet: creates the database and the migrations
/// table if missing, then runs each pending file statement by statement and
/// records it once all its statements succeeded.
pub async fn migrate_files(settings: &ClickHouseSettings, files: &[Migration<'_>]) -> Result<MigrationReport, MigrateError> {
    if !is_identifier(&settings.database) {
        return Err(MigrateError::Settings(format!("database `{}` is not an identifier [A-Za-z_][A-Za-z0-9_]*", settings.database)));
    }
    if settings.ttl_days == 0 {
        return Err(MigrateError::Settings("ttl_days must be greater than 0".into()));
    }
    check_files(files)?;
    let timeout = settings.request_timeout;
    let server_error = |action: &str, message: String| MigrateError::Server { url: settings.url.clone(), action: action.into(), message };

    let create_db = format!("CREATE DATABASE IF NOT EXISTS {}", settings.database);
    call(timeout, settings.server_client().query(&create_db).execute())
        .await
        .map_err(|m| server_error(&format!("creating database {}", settings.database), m))?;
    let client = settings.client();
    call(timeout, client.query(MIGRATIONS_TABLE).execute()).await.map_err(|m| server_error("creating table ollystack_migrations", m))?;
    let applied: Vec<(u32, String, String)> =
        call(timeout, client.query("SELECT version, name, checksum FROM ollystack_migrations ORDER BY version").fetch_all())
            .await
            .map_err(|m| server_error("reading ollystack_migrations", m))?;

    let plan = plan(files, &applied)?;
    for (version, name) in &plan.unknown {
        tracing::warn!(version, name = %name, "ClickHouse has a migration this binary does not know (applied by a newer version?)");
    }
    let mut report = MigrationReport {
        database: settings.database.clone(),
        url: settings.url.clone(),
        applied: Vec::with_capacity(plan.pending.len()),
        already_applied: plan.already_applied,
    };
    for file in plan.pending {
        let statements = split_statements(file.sql);
        for (i, statement) in statements.iter().enumerate() {
            let sql = substitute(statement, settings.ttl_days);
            // The client treats `?` as a bind placeholder; `??` is a literal `?`.
            let sql = sql.replace('?', "??");
            call(timeout, client.query(&sql).execute()).await.map_err(|message| MigrateError::Statement {
                name: file.name.to_string(),
                index: i + 1,
                total: statements.len(),
                first_line: first_line(statement).to_string(),
                message,
            })?;
        }
        let record = client
            .query("INSERT INTO ollystack_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, now64(3))")
            .bind(file.version)
            .bind(file.name)
            .bind(checksum(file.sql));
        call(timeout, record.execute()).await.map_err(|m| server_error(&format!("recording migration {}", file.name), m))?;
        tracing::info!(version = file.version, name = file.name, statements = statements.len(), "applied migration");
        report.applied.push(AppliedMigration { version: file.version, name: file.name.to_string(), statements: statements.len() });
    }
    Ok(report)
}

/// Awaits one ClickHouse request with the configured deadline; the error is
/// ClickHouse's own text where it answered.
async fn call<T>(timeout: Duration, request: impl Future<Output = clickhouse::error::Result<T>>) -> Result<T, String> {
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(clickhouse::error::Error::BadResponse(message))) => Err(message.trim().to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}", humantime::format_duration(timeout))),
    }
}

/// Versions strictly increasing, names present.
fn check_files(files: &[Migration<'_>]) -> Result<(), MigrateError> {
    for pair in files.windows(2) {
        if pair[1].version <= pair[0].version {
            return Err(MigrateError::Files(format!(
                "{} (version {}) follows {} (version {}): versions must increase",
                pair[1].name, pair[1].version, pair[0].name, pair[0].version
            )));
        }
    }
    match files.iter().find(|f| f.name.trim().is_empty()) {
        Some(f) => Err(MigrateError::Files(format!("migration version {} has no name", f.version))),
        None => Ok(()),
    }
}

/// Which files to apply, given the `(version, name, checksum)` rows of
/// `ollystack_migrations`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan<'f, 'a> {
    pub pending: Vec<&'f Migration<'a>>,
    pub already_applied: usize,
    /// Recorded versions without a file here (from a newer binary).
    pub unknown: Vec<(u32, String)>,
}

pub(crate) fn plan<'f, 'a>(files: &'f [Migration<'a>], applied: &[(u32, String, String)]) -> Result<Plan<'f, 'a>, MigrateError> {
    let mut pending = Vec::new();
    let mut already_applied = 0;
    for file in files {
        // Two nodes migrating at once may both record a file: every record must agree.
        let records: Vec<_> = applied.iter().filter(|(v, _, _)| *v == file.version).collect();
        if records.is_empty() {
            pending.push(file);
            continue;
        }
        let actual = checksum(file.sql);
        for (_, name, recorded) in records {
            if name != file.name {
                return Err(MigrateError::NameMismatch { version: file.version, name: file.name.to_string(), recorded: name.clone() });
            }
            if *recorded != actual {
                return Err(MigrateError::ChecksumMismatch {
                    version: file.version,
                    name: file.name.to_string(),
                    recorded: recorded.clone(),
                    actual,
                });
            }
        }
        already_applied += 1;
    }
    let mut unknown: Vec<(u32, String)> =
        applied.iter().filter(|(v, _, _)| !files.iter().any(|f| f.version == *v)).map(|(v, name, _)| (*v, name.clone())).collect();
    unknown.dedup();
    Ok(Plan { pending, already_applied, unknown })
}

/// Checksum of a migration's text (line endings normalized, so a CRLF
/// checkout does not look like an edit): CRC-32 and length, in hex.
pub(crate) fn checksum(sql: &str) -> String {
    let mut hasher = crc32fast::Hasher::new();
    let mut len = 0u64;
    for part in sql.split('\r') {
        hasher.update(part.as_bytes());
        len += part.len() as u64;
    }
    format!("crc32:{:08x}:{len:x}", hasher.finalize())
}

/// Replaces [`TTL_PLACEHOLDER`] with `ttl_days`; nothing else is substituted.
pub(crate) fn substitute(statement: &str, ttl_days: u32) -> String {
    statement.replace(TTL_PLACEHOLDER, &ttl_days.to_string())
}

/// Splits a file into statements at `;` outside string literals, quoted
/// identifiers and comments. Each statement starts at its first code (leading
/// comments dropped) and has no `;`; pieces holding only comments and
/// whitespace are skipped, and a last statement without `;` is kept.
pub(crate) fn split_statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let mut code_start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| i + p);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..].find("*/").map_or(bytes.len(), |p| i + 2 + p + 2);
                continue;
            }
            quote @ (b'\'' | b'"' | b'`') => {
                code_start.get_or_insert(i);
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b if b == quote => break,
                        _ => i += 1,
                    }
                }
            }
            b';' => {
                if let Some(start) = code_start.take() {
                    statements.push(sql[start..i].trim_end());
                }
            }
            b if !b.is_ascii_whitespace() => {
                code_start.get_or_insert(i);
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(start) = code_start {
        statements.push(sql[start..].trim_end());
    }
    statements
}

/// A statement's first line, for error messages.
pub(crate) fn first_line(statement: &str) -> &str {
    let line = statement.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("--")).unwrap_or("");
    match line.char_indices().nth(100) {
        Some((cut, _)) => &line[..cut],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(version: u32, name: &'static str, sql: &'static str) -> Migration<'static> {
        Migration { version, name, sql }
    }

    #[test]
    fn embedded_list_matches_the_migrations_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("migrations dir")
            .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
        assert_eq!(embedded, on_disk, "MIGRATIONS in migrate.rs must list every file of migrations/, in order");
        for m in MIGRATIONS {
            let prefix: u32 = m.name.split('_').next().and_then(|p| p.parse().ok()).expect("numbered file name");
            assert_eq!(prefix, m.version, "{}", m.name);
            assert_eq!(m.sql, std::fs::read_to_string(dir.join(m.name)).expect("read").as_str(), "{}", m.name);
        }
        check_files(MIGRATIONS).expect("versions increase");
    }

    #[test]
    fn embedded_migrations_follow_the_rules() {
        for m in MIGRATIONS {
            let statements = split_statements(m.sql);
            assert!(!statements.is_empty(), "{}", m.name);
            for s in statements {
                let upper = s.to_ascii_uppercase();
                assert!(upper.starts_with("CREATE "), "{}: every statement is a CREATE: {}", m.name, first_line(s));
                assert!(upper.contains(" IF NOT EXISTS "), "{}: not idempotent: {}", m.name, first_line(s));
                let substituted = substitute(s, 7);
                assert!(!substituted.contains('{'), "{}: only {TTL_PLACEHOLDER} may be substituted: {}", m.name, first_line(s));
                assert!(!s.contains('?'), "{}: `?` is a bind placeholder for the client", m.name);
                if upper.contains("MERGETREE") {
                    assert!(upper.contains("TTL "), "{}: table without TTL: {}", m.name, first_line(s));
                }
            }
        }
    }

    #[test]
    fn splits_at_semicolons_outside_literals_and_comments() {
        let sql = "-- header; with a semicolon\n\
                   CREATE TABLE a (x String DEFAULT 'a;b', `we;ird` UInt8) ENGINE = Memory;\n\
                   /* block; comment */\n\
                   CREATE VIEW v AS SELECT 'it''s;' AS s, 'esc\\';' AS t, \"q;\" AS u -- trailing; comment\n\
                   ;\n\
                   -- only a comment;\n\
                   \n\
                   SELECT 1";
        let statements = split_statements(sql);
        assert_eq!(
            statements,
            vec![
                "CREATE TABLE a (x String DEFAULT 'a;b', `we;ird` UInt8) ENGINE = Memory",
                "CREATE VIEW v AS SELECT 'it''s;' AS s, 'esc\\';' AS t, \"q;\" AS u -- trailing; comment",
                "SELECT 1",
            ]
        );
        assert!(split_statements("").is_empty());
        assert!(split_statements("  -- nothing;\n/* here */ ;\n").is_empty());
        assert_eq!(split_statements("SELECT 'ünïcode;' ; SELECT 2;"), vec!["SELECT 'ünïcode;'", "SELECT 2"]);
        assert_eq!(split_statements("SELECT 'unterminated; still one"), vec!["SELECT 'unterminated; still one"]);
    }

    #[test]
    fn substitutes_only_the_ttl_placeholder() {
        assert_eq!(substitute("TTL t + toIntervalDay({ttl_days}) -- {ttl_days}", 30), "TTL t + toIntervalDay(30) -- 30");
        assert_eq!(substitute("SELECT {x:String}, {ttl}", 30), "SELECT {x:String}, {ttl}");
    }

    #[test]
    fn checksum_ignores_line_endings_and_sees_edits() {
        let a = checksum("CREATE TABLE t;\nSELECT 1;\n");
        assert_eq!(a, checksum("CREATE TABLE t;\r\nSELECT 1;\r\n"));
        assert_ne!(a, checksum("CREATE TABLE t;\nSELECT 2;\n"));
        assert_ne!(a, checksum("CREATE TABLE t;\nSELECT 1;\n\n"));
        assert!(a.starts_with("crc32:"), "{a}");
    }

    #[test]
    fn first_line_skips_comments_and_is_bounded() {
        assert_eq!(first_line("-- note\n\n  CREATE TABLE t (\n x UInt8)"), "CREATE TABLE t (");
        assert_eq!(first_line(&"x".repeat(300)).len(), 100);
    }

    #[test]
    fn plan_picks_pending_files_and_checks_applied_ones() {
        let files = [m(1, "0001_a.sql", "CREATE A;"), m(2, "0002_b.sql", "CREATE B;"), m(3, "0003_c.sql", "CREATE C;")];
        let empty = plan(&files, &[]).expect("plan");
        assert_eq!(empty.pending.iter().map(|f| f.version).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(empty.already_applied, 0);

        let rec = |v: u32, name: &str, sql: &str| (v, name.to_string(), checksum(sql));
        let applied = [rec(1, "0001_a.sql", "CREATE A;"), rec(1, "0001_a.sql", "CREATE A;"), rec(3, "0003_c.sql", "CREATE C;")];
        let p = plan(&files, &applied).expect("plan");
        assert_eq!(p.pending.iter().map(|f| f.version).collect::<Vec<_>>(), vec![2], "a gap is filled");
        assert_eq!(p.already_applied, 2);
        assert!(p.unknown.is_empty());

        let all = [rec(1, "0001_a.sql", "CREATE A;"), rec(2, "0002_b.sql", "CREATE B;"), rec(3, "0003_c.sql", "CREATE C;")];
        let p = plan(&files, &all).expect("plan");
        assert!(p.pending.is_empty());
        assert_eq!(p.already_applied, 3);

        let newer = [rec(9, "0009_z.sql", "CREATE Z;")];
        assert_eq!(plan(&files, &newer).expect("plan").unknown, vec![(9, "0009_z.sql".to_string())]);
    }

    #[test]
    fn plan_refuses_changed_or_renamed_files() {
        let files = [m(1, "0001_a.sql", "CREATE A;"), m(2, "0002_b.sql", "CREATE B2;")];
        let applied = [(1, "0001_a.sql".to_string(), checksum("CREATE A;")), (2, "0002_b.sql".to_string(), checksum("CREATE B;"))];
        let err = plan(&files, &applied).expect_err("changed file");
        assert!(matches!(&err, MigrateError::ChecksumMismatch { version: 2, .. }), "{err:?}");
        assert!(err.to_string().contains("0002_b.sql"), "{err}");

        let renamed = [(1, "0001_old.sql".to_string(), checksum("CREATE A;"))];
        let err = plan(&files, &renamed).expect_err("renamed file");
        assert!(err.to_string().contains("0001_old.sql") && err.to_string().contains("0001_a.sql"), "{err}");
    }

    #[test]
    fn file_lists_must_increase() {
        assert!(check_files(&[m(1, "a", ""), m(1, "b", "")]).is_err());
        assert!(check_files(&[m(2, "a", ""), m(1, "b", "")]).is_err());
        assert!(check_files(&[m(1, " ", "")]).is_err());
        assert!(check_files(&[m(1, "a", ""), m(5, "b", "")]).is_ok());
    }

    #[test]
    fn statement_errors_name_file_statement_and_cause() {
        let e = MigrateError::Statement {
            name: "0009_x.sql".into(),
            index: 2,
            total: 3,
            first_line: "CREATE TABLE IF NOT EXISTS broken (".into(),
            message: "Code: 62. DB::Exception: Syntax error".into(),
        };
        assert_eq!(
            e.to_string(),
            "migration 0009_x.sql: statement 2 of 3 (`CREATE TABLE IF NOT EXISTS broken (`) failed: Code: 62. DB::Exception: Syntax error"
        );
    }

    #[test]
    fn report_line() {
        let r = MigrationReport {
            database: "ollystack".into(),
            url: "http://127.0.0.1:8123".into(),
            applied: vec![AppliedMigration { version: 1, name: "0001_a.sql".into(), statements: 2 }],
            already_applied: 4,
        };
        assert_eq!(r.to_string(), "migrations: 1 applied, 4 already applied (database ollystack at http://127.0.0.1:8123)");
    }
}
