"""A small ClickHouse HTTP interface over chdb (embedded ClickHouse), for tests.

It serves what the Rust `clickhouse` crate (0.14) sends: SQL in the `query`
URL parameter and/or the POST body, `database`, `default_format`, `param_*`
and any other URL parameter as a ClickHouse setting of that one request,
INSERT bodies in any input format, `/ping`, and errors as HTTP 500 with the
engine's `Code: N. DB::Exception: ...` text. It adds fault injection for
tests under `/__faults`. See README.md for what it does not implement.
"""

import argparse
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

# URL parameters that are not ClickHouse settings (ignored or handled apart).
NOT_SETTINGS = {"query", "database", "default_format", "user", "password", "query_id", "quota_key", "role"}
UNSUPPORTED = {
    "compress": "compressed responses (compress=1)",
    "decompress": "compressed request bodies (decompress=1)",
    "enable_http_compression": "HTTP compression (enable_http_compression=1)",
    "session_id": "HTTP sessions (session_id)",
}
IDENT = r"(?:`[^`]*`|\"[^\"]*\"|[A-Za-z_][\w$]*)"
INSERT_RE = re.compile(rf"^\s*INSERT\s+INTO\s+(?:TABLE\s+)?({IDENT}(?:\s*\.\s*{IDENT})?)", re.I | re.S)
FORMAT_TAIL_RE = re.compile(r"^(.*?)\s+FORMAT\s+(\w+)\s*;?\s*$", re.I | re.S)
MAY_CHANGE_STATE_RE = re.compile(r"\b(SET|USE)\b", re.I)
SET_DATABASE_RE = re.compile(r"\bSET\b[^;]*\bdatabase\s*=", re.I)
CODE_RE = re.compile(r"Code: (\d+)\.")
SETTING_NAME_RE = re.compile(r"^[A-Za-z_]\w*$")


class ClickHouseError(Exception):
    """An error to answer with HTTP 500 and ClickHouse's text."""

    def __init__(self, text, code=None):
        text = text.strip()
        if not CODE_RE.match(text):
            text = f"Code: {code or 1001}. DB::Exception: {text}"
        super().__init__(text)
        self.code = CODE_RE.match(text).group(1)


def quote_str(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_ident(name):
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def table_of(insert_sql):
    """The bare table name of an INSERT (no database, no quotes), or None."""
    m = INSERT_RE.match(insert_sql)
    if not m:
        return None
    last = re.findall(IDENT, m.group(1))[-1]
    return last[1:-1] if last[0] in "`\"" else last


class Engine:
    """The one chdb session of the process; one statement at a time."""

    def __init__(self, data_dir, log_path):
        from chdb import session  # imported here so `--help` works without chdb

        os.makedirs(data_dir, exist_ok=True)
        self.session = session.Session(data_dir)
        self.lock = threading.Lock()
        self.infile_dir = os.path.join(data_dir, "chdb-http-infile")
        os.makedirs(self.infile_dir, exist_ok=True)
        self.baseline = self._changed_settings()
        self.log = open(log_path, "a", encoding="utf-8", buffering=1) if log_path else None
        self.log_lock = threading.Lock()

    def _q(self, sql, fmt="TabSeparated", params=None):
        try:
            return self.session.query(sql, fmt, params=params or None).bytes()
        except Exception as e:  # chdb raises ChdbError / RuntimeError with the engine's text
            raise ClickHouseError(str(e)) from None

    def _changed_settings(self):
        rows = self._q("SELECT name, value FROM system.settings WHERE changed", "JSONEachRow")
        return {r["name"]: r["value"] for r in map(json.loads, rows.decode().splitlines())}

    def log_statement(self, sql):
        if self.log:
            with self.log_lock:
                self.log.write(json.dumps(sql) + "\n")

    def run(self, sql, fmt, database, settings, params, data=None):
        """Runs one request's statement with its database and settings, then
        puts the session back as it was (chdb keeps USE and SET across queries).
        With `data`, `sql` is `INSERT ... FORMAT f` and `data` is its input."""
        if SET_DATABASE_RE.search(sql):
            # `SET database = 'missing'` breaks every later query of a chdb session.
            raise ClickHouseError("chdb-http refuses SET database; use the database parameter", 1)
        with self.lock:
            infile = None
            try:
                if database and database != "default":
                    self._q(f"USE {quote_ident(database)}")
                if settings:
                    self._q("SET " + ", ".join(f"{n} = {quote_str(v)}" for n, v in settings))
                if data is not None:
                    head, in_fmt = FORMAT_TAIL_RE.match(sql).groups()
                    if not data:
                        return b""  # nothing to insert; chdb would fail reading a header
                    fd, infile = tempfile.mkstemp(dir=self.infile_dir, suffix=".bin")
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                    sql = f"{head} FROM INFILE {quote_str(infile)} FORMAT {in_fmt}"
                return self._q(sql, fmt, params)
            finally:
                if infile:
                    os.unlink(infile)
                self._restore([n for n, _ in settings], full=bool(MAY_CHANGE_STATE_RE.search(sql)))

    def _restore(self, names, full):
        try:
            names = set(names)
            if full:  # the statement itself may have run SET or USE
                names |= {n for n, v in self._changed_settings().items() if self.baseline.get(n) != v}
            names.discard("database")
            if names:
                self._q("SET " + ", ".join(f"{n} = {quote_str(self.baseline[n])}" if n in self.baseline else f"{n} = DEFAULT" for n in sorted(names)))
            self._q("USE default")
        except ClickHouseError as e:
            print(f"chdb-http: could not restore the session: {e}", file=sys.stderr, flush=True)


class Faults:
    """Injected faults and counters, shared by all connections."""

    KEYS = {"fail_inserts": int, "fail_inserts_table": (str, type(None)), "lose_reply_inserts": int, "lose_reply_inserts_table": (str, type(None)), "down": bool}

    def __init__(self):
        self.lock = threading.Lock()
        self.fail_inserts, self.fail_inserts_table = 0, None
        self.lose_reply_inserts, self.lose_reply_inserts_table = 0, None
        self.down = False
        self.inserts, self.insert_attempts, self.queries = {}, {}, 0

    def update(self, changes):
        if not isinstance(changes, dict):
            raise ValueError("expected a JSON object")
        for key, value in changes.items():
            if key not in self.KEYS:
                raise ValueError(f"unknown key {key!r}; known: {sorted(self.KEYS)}")
            if not isinstance(value, self.KEYS[key]) or (self.KEYS[key] is int and isinstance(value, bool)):
                raise ValueError(f"bad value for {key!r}: {value!r}")
        with self.lock:
            for key, value in changes.items():
                setattr(self, key, value)

    def snapshot(self):
        with self.lock:
            state = {k: getattr(self, k) for k in self.KEYS}
            return {**state, "inserts": dict(self.inserts), "insert_attempts": dict(self.insert_attempts), "queries": self.queries}

    def take_insert(self, table):
        """Counts an INSERT attempt; returns (fail, lose_reply) for it."""
        with self.lock:
            self.insert_attempts[table] = self.insert_attempts.get(table, 0) + 1
            fail = self.fail_inserts > 0 and self.fail_inserts_table in (None, table)
            if fail:
                self.fail_inserts -= 1
                return True, False
            lose = self.lose_reply_inserts > 0 and self.lose_reply_inserts_table in (None, table)
            if lose:
                self.lose_reply_inserts -= 1
            return False, lose

    def count(self, table=None):
        with self.lock:
            if table is None:
                self.queries += 1
            else:
                self.inserts[table] = self.inserts.get(table, 0) + 1


class IncompleteBody(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chdb-http"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.handle_any(body_allowed=False)

    def do_POST(self):
        self.handle_any(body_allowed=True)

    def drop(self):
        """Closes the connection without an answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def reply(self, status, body, content_type="text/plain; charset=UTF-8", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def reply_error(self, err):
        self.reply(500, (str(err) + "\n").encode(), headers=[("X-ClickHouse-Exception-Code", err.code)])

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                line = self.rfile.readline(65537)
                if not line.endswith(b"\n"):
                    raise IncompleteBody()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537).strip():  # trailers
                        pass
                    return b"".join(parts)
                part = self.rfile.read(size)
                if len(part) < size or not self.rfile.readline(3).endswith(b"\n"):
                    raise IncompleteBody()
                parts.append(part)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if len(body) < n:
            raise IncompleteBody()
        return body

    def handle_any(self, body_allowed):
        url = urlsplit(self.path)
        faults, engine = self.server.faults, self.server.engine
        if url.path == "/__faults":
            return self.handle_faults(body_allowed)
        if faults.down:
            return self.drop()
        try:
            body = self.read_body() if body_allowed else b""
        except (IncompleteBody, ValueError, OSError):  # the client went away mid-body: nothing runs
            return self.drop()
        if url.path in ("/ping", "/replicas_status") or (url.path == "/" and not url.query and not body):
            return self.reply(200, b"Ok.\n")
        if url.path != "/":
            return self.reply(404, f"There is no handle {url.path}\n".encode())
        try:
            self.handle_query(dict(parse_qsl(url.query, keep_blank_values=True)), body, faults, engine)
        except ClickHouseError as err:
            self.reply_error(err)

    def handle_query(self, params, body, faults, engine):
        for name, what in UNSUPPORTED.items():
            if params.get(name, "0") not in ("", "0"):
                raise ClickHouseError(f"chdb-http does not implement {what}; use Compression::None / no sessions. (UNSUPPORTED_METHOD)", 1)
        if self.headers.get("Content-Encoding"):
            raise ClickHouseError("chdb-http does not implement compressed request bodies (Content-Encoding). (UNSUPPORTED_METHOD)", 1)
        fmt = params.get("default_format") or "TabSeparated"
        query_params = {k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")}
        settings = [(k, v) for k, v in params.items() if k not in NOT_SETTINGS and not k.startswith("param_")]
        for name, _ in settings:
            if not SETTING_NAME_RE.match(name):
                raise ClickHouseError(f"Unknown setting '{name}'. (UNKNOWN_SETTING)", 115)

        url_sql = params.get("query", "")
        data = None
        if url_sql and body and INSERT_RE.match(url_sql) and FORMAT_TAIL_RE.match(url_sql):
            sql, data = url_sql, body  # INSERT ... FORMAT f in the URL, its data in the body
        else:
            sql = "\n".join(p for p in (url_sql, body.decode("utf-8", "replace")) if p)
        engine.log_statement(sql)

        table = table_of(sql)
        lose = False
        if table is not None:
            fail, lose = faults.take_insert(table)
            if fail:
                raise ClickHouseError(f"Injected fault: INSERT into {table} failed without executing (chdb-http /__faults). (UNKNOWN_EXCEPTION)", 1002)
        try:
            out = engine.run(sql, fmt, params.get("database"), settings, query_params, data)
        except ClickHouseError:
            if lose:
                return self.drop()
            raise
        faults.count(table)
        if lose:
            return self.drop()
        self.reply(200, out, "application/octet-stream", [("X-ClickHouse-Format", fmt), ("X-ClickHouse-Query-Id", str(uuid.uuid4()))])

    def handle_faults(self, body_allowed):
        faults = self.server.faults
        try:
            if body_allowed:
                faults.update(json.loads(self.read_body() or b"{}"))
        except (ValueError, IncompleteBody) as e:
            return self.reply(400, f"{e}\n".encode())
        self.reply(200, json.dumps(faults.snapshot()).encode() + b"\n", "application/json")


def exit_with_parent():
    parent = os.getppid()
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(0)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m ollystack_chdb_http", description="ClickHouse HTTP interface over chdb, for tests (127.0.0.1 only).")
    ap.add_argument("--port", type=int, default=8123, help="0 picks a free port")
    ap.add_argument("--data", required=True, help="chdb data directory")
    ap.add_argument("--port-file", help="write the port here (atomically) once listening")
    ap.add_argument("--log-statements", metavar="PATH", help="append every statement received, one JSON string per line")
    ap.add_argument("--keep-when-orphaned", action="store_true", help="do not exit when the parent process exits")
    args = ap.parse_args(argv)

    engine = Engine(args.data, args.log_statements)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.engine, server.faults = engine, Faults()
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    if not args.keep_when_orphaned:
        threading.Thread(target=exit_with_parent, daemon=True).start()
    server.serve_forever()
