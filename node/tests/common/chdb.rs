//! A real ClickHouse engine for integration tests: starts the ClickHouse HTTP
//! front over chdb (`tools/chdb-http`, run as `python -m ollystack_chdb_http`
//! with the interpreter in `OLLYSTACK_TEST_PYTHON`) on a free loopback port
//! with a fresh data dir, and talks to its fault-injection endpoint.
//!
//! The helpers here use a tiny blocking HTTP/1.1 request over
//! `std::net::TcpStream`, so they work anywhere, tokio tests included (each
//! call blocks its thread for the duration of one local request).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const START_LIMIT: Duration = Duration::from_secs(60);
const REQUEST_LIMIT: Duration = Duration::from_secs(60);

pub struct ChdbServer {
    /// `http://127.0.0.1:PORT`, for `clickhouse::Client::with_url`.
    pub url: String,
    addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
    statement_log: PathBuf,
}

impl ChdbServer {
    /// Starts the shim on a free 127.0.0.1 port with a fresh data dir and
    /// waits (at most 60 s) until `/ping` answers.
    pub fn start() -> ChdbServer {
        let Ok(python) = std::env::var("OLLYSTACK_TEST_PYTHON") else {
            panic!("OLLYSTACK_TEST_PYTHON is not set: run the tests through ./scripts/test");
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let port_file = dir.path().join("port");
        let statement_log = dir.path().join("statements.log");
        let stderr_path = dir.path().join("stderr.log");
        let child = Command::new(&python)
            .args(["-m", "ollystack_chdb_http", "--port", "0", "--data"])
            .arg(dir.path().join("data"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log-statements")
            .arg(&statement_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python} -m ollystack_chdb_http: {e}"));
        let mut server = ChdbServer { url: String::new(), addr: SocketAddr::from(([127, 0, 0, 1], 0)), child, dir, statement_log };

        let deadline = Instant::now() + START_LIMIT;
        loop {
            let stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
            if let Some(status) = server.child.try_wait().expect("try_wait") {
                panic!("chdb-http exited during start-up ({status}); stderr:\n{}", stderr());
            }
            if server.addr.port() == 0 {
                if let Some(port) = std::fs::read_to_string(&port_file).ok().and_then(|s| s.trim().parse::<u16>().ok()) {
                    server.addr.set_port(port);
                    server.url = format!("http://{}", server.addr);
                }
            }
            if server.addr.port() != 0 && matches!(server.request("GET", "/ping", b""), Ok((200, ref body)) if body == "Ok.\n") {
                return server;
            }
            if Instant::now() > deadline {
                panic!("chdb-http did not answer /ping within {START_LIMIT:?}; stderr:\n{}", stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Changes injected faults (`POST /__faults`); keys left out keep their
    /// value: `fail_inserts`, `fail_inserts_table`, `lose_reply_inserts`,
    /// `lose_reply_inserts_table`, `down`.
    pub fn set_faults(&self, json: Value) {
        match self.request("POST", "/__faults", json.to_string().as_bytes()) {
            Ok((200, _)) => {}
            other => panic!("POST /__faults {json} failed: {other:?}"),
        }
    }

    /// The current faults and counters (`GET /__faults`): the keys above plus
    /// `inserts` and `insert_attempts` (per bare table name) and `queries`.
    pub fn faults(&self) -> Value {
        match self.request("GET", "/__faults", b"") {
            Ok((200, body)) => serde_json::from_str(&body).expect("/__faults answers JSON"),
            other => panic!("GET /__faults failed: {other:?}"),
        }
    }

    /// Runs one statement in the `default` database (qualify table names)
    /// and returns the body; the default output format is TabSeparated.
    /// Panics with ClickHouse's error text when it fails.
    pub fn query(&self, sql: &str) -> String {
        match self.request("POST", "/", sql.as_bytes()) {
            Ok((200, body)) => body,
            Ok((status, body)) => panic!("chdb query failed with {status}: {sql}\n{body}"),
            Err(e) => panic!("chdb query failed: {sql}\n{e}"),
        }
    }

    /// Every statement the shim received so far, in order (an INSERT's data
    /// excluded), including those that failed or were faulted.
    pub fn statements(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.statement_log).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("statement log holds JSON strings")).collect()
    }

    /// A `clickhouse` client for this server without compression (the shim
    /// does not implement ClickHouse's compressed framing) and no database.
    pub fn client(&self) -> clickhouse::Client {
        clickhouse::Client::default().with_url(&self.url).with_compression(clickhouse::Compression::None)
    }

    /// The temp dir holding the data dir, the statement log and stderr.log.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// One request on a fresh connection (`Connection: close`).
    fn request(&self, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&self.addr, REQUEST_LIMIT)?;
        stream.set_read_timeout(Some(REQUEST_LIMIT))?;
        stream.set_write_timeout(Some(REQUEST_LIMIT))?;
        let head =
            format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", self.addr, body.len());
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{what} in answer to {method} {path}"));
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no complete HTTP answer"))?;
        let head = String::from_utf8_lossy(&raw[..split]);
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no HTTP status"))?;
        Ok((status, String::from_utf8_lossy(&raw[split + 4..]).into_owned()))
    }
}

impl Drop for ChdbServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
