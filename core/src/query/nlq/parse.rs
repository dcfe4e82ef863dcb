//! The question parser: words → [`StructuredQuery`]. Pure: the node clock's
//! time and the known service and operation names are arguments.
//!
//! Tokens are words, `"quoted phrases"` (a name), and numbers with an
//! optional unit (`500ms`, `2 hours`). What a number means depends on the
//! word before it: a range after `last`/`past`/`since`, a duration bound
//! after `slower than`/`over`/`under`, a count after `top`/`first`, and
//! otherwise a count (a bare number) or a range (with a time unit). Names
//! are known services (exact, case-insensitive) and words that are part of
//! a known root operation; `service X` and `operation X` name them
//! explicitly. Every other word is reported as unknown.

use std::time::Duration;

use serde::Serialize;

use super::words::{meaning, unit_ms, Meaning};
#[cfg(test)]
use super::LIMIT_DEFAULT;
use super::{ErrorFilter, OrderBy, StructuredQuery, LIMIT_MAX};
use crate::query::{format_rfc3339_nanos, parse_rfc3339_nanos};

/// Longest question accepted, in characters.
pub const QUESTION_CHARS_MAX: usize = 500;
/// Tokens read at most; the rest is reported.
const TOKENS_MAX: usize = 64;
/// Unknown words reported at most.
const UNKNOWN_MAX: usize = 20;
/// Shortest word matched inside an operation name.
const NAME_PART_CHARS_MIN: usize = 3;
const DAY_MS: u64 = 86_400_000;

/// Names the parser can recognise (from the sessions the node holds).
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    pub services: Vec<String>,
    /// Root span names.
    pub operations: Vec<String>,
}

/// A parsed question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parsed {
    pub query: StructuredQuery,
    /// Words that meant nothing to the parser, as typed.
    pub unknown_words: Vec<String>,
    /// Choices the parser made (a second service ignored, a limit capped).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// Lowercase and as typed.
    Word(String, String),
    Quoted(String),
    Number(f64, Option<u64>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Pending {
    Nothing,
    Relative,
    Since,
    AtLeast,
    AtMost,
    Limit,
    Most,
    Not,
}

struct Parser<'v> {
    vocab: &'v Vocabulary,
    now_unix_ms: u64,
    out: Parsed,
    order_set: bool,
    pending: Pending,
}

/// Parses `question` (see the module doc).
pub fn parse(question: &str, now_unix_ms: u64, vocab: &Vocabulary) -> Parsed {
    let mut p = Parser {
        vocab,
        now_unix_ms,
        out: Parsed { query: StructuredQuery::default(), unknown_words: Vec::new(), notes: Vec::new() },
        order_set: false,
        pending: Pending::Nothing,
    };
    let mut tokens = tokenize(question);
    if tokens.len() > TOKENS_MAX {
        p.out.notes.push(format!("only the first {TOKENS_MAX} words were read"));
        tokens.truncate(TOKENS_MAX);
    }
    let mut i = 0;
    while i < tokens.len() {
        i += p.token(&tokens, i);
    }
    if p.pending == Pending::Relative {
        p.order(OrderBy::Newest);
    }
    p.out.query.errors_only = p.out.query.errors == ErrorFilter::Only;
    p.out
}

impl Parser<'_> {
    /// Reads the token at `i` (and maybe the next); returns how many it used.
    fn token(&mut self, tokens: &[Token], i: usize) -> usize {
        let next = tokens.get(i + 1);
        match &tokens[i] {
            Token::Number(n, unit) => {
                let (unit, used) = match (unit, next) {
                    (Some(u), _) => (Some(*u), 1),
                    (None, Some(Token::Word(w, _))) if unit_ms(w).is_some() => (unit_ms(w), 2),
                    _ => (None, 1),
                };
                self.number(*n, unit);
                used
            }
            Token::Quoted(text) => {
                self.pending = Pending::Nothing;
                match self.known_service(text) {
                    Some(s) => self.service(s),
                    None => self.operation(text.clone()),
                }
                1
            }
            Token::Word(w, typed) => self.word(w, typed, next),
        }
    }

    fn number(&mut self, n: f64, unit: Option<u64>) {
        let pending = std::mem::replace(&mut self.pending, Pending::Nothing);
        match (pending, unit) {
            (Pending::Relative | Pending::Since, Some(u)) => self.range((n * u as f64) as u64),
            (Pending::Relative, None) => {
                self.limit(n);
                self.order(OrderBy::Newest);
            }
            (Pending::AtLeast, u) => self.out.query.min_duration_ms = Some(n * u.unwrap_or(1) as f64),
            (Pending::AtMost, u) => self.out.query.max_duration_ms = Some(n * u.unwrap_or(1) as f64),
            (_, Some(1)) => self.out.query.min_duration_ms = Some(n),
            (_, Some(u)) => self.range((n * u as f64) as u64),
            (_, None) => self.limit(n),
        }
    }

    fn word(&mut self, w: &str, typed: &str, next: Option<&Token>) -> usize {
        let pending = self.pending;
        if pending == Pending::Relative {
            if let Some(u) = unit_ms(w) {
                self.pending = Pending::Nothing;
                self.range(u);
                return 1;
            }
        }
        if pending == Pending::Since {
            if let Some(t) = parse_rfc3339_nanos(typed) {
                self.pending = Pending::Nothing;
                self.out.query.since_unix_ms = Some(t / 1_000_000);
                self.out.query.since = Some(format_rfc3339_nanos(t));
                return 1;
            }
        }
        if typed.starts_with('/') {
            self.pending = Pending::Nothing;
            self.operation(typed.to_owned());
            return 1;
        }
        let Some(m) = meaning(w) else {
            self.settle_relative();
            self.name(typed);
            return 1;
        };
        if m != Meaning::Filler {
            self.settle_relative();
        }
        match m {
            Meaning::Filler => {}
            Meaning::Order(o) if pending == Pending::Most && o == OrderBy::Newest => self.order(o),
            Meaning::Order(o) => self.order(o),
            Meaning::Errors(e) => {
                let e = if pending == Pending::Not && e == ErrorFilter::Only { ErrorFilter::Without } else { e };
                self.out.query.errors = e;
                if pending == Pending::Most && e == ErrorFilter::Only {
                    self.order(OrderBy::ErrorsDesc);
                }
            }
            Meaning::Relative => self.pending = Pending::Relative,
            Meaning::Since => self.pending = Pending::Since,
            Meaning::Today => {
                let midnight = self.now_unix_ms - self.now_unix_ms % DAY_MS;
                self.out.query.since_unix_ms = Some(midnight);
                self.out.query.since = Some(format_rfc3339_nanos(midnight.saturating_mul(1_000_000)));
                self.out.query.range = Some("today".to_owned());
            }
            Meaning::AtLeast => self.pending = Pending::AtLeast,
            Meaning::AtMost => self.pending = Pending::AtMost,
            Meaning::Limit => self.pending = Pending::Limit,
            Meaning::Most => self.pending = Pending::Most,
            Meaning::Not => self.pending = Pending::Not,
            Meaning::ServiceKeyword | Meaning::OperationKeyword => {
                // The name after it, unless that word means something itself
                // ("checkout service requests": the name came before).
                if let Some(Token::Word(_, ntyped)) = next.filter(|t| matches!(t, Token::Word(nw, _) if meaning(nw).is_none())) {
                    if m == Meaning::ServiceKeyword {
                        let s = self.known_service(ntyped).unwrap_or_else(|| ntyped.clone());
                        self.service(s);
                    } else {
                        self.operation(ntyped.clone());
                    }
                    return 2;
                }
            }
            Meaning::Method => {
                if let Some(Token::Word(_, path)) = next.filter(|t| matches!(t, Token::Word(_, p) if p.starts_with('/'))) {
                    self.operation(format!("{} {path}", typed.to_uppercase()));
                    return 2;
                }
            }
        }
        1
    }

    /// `last` not followed by a range: most recent first.
    fn settle_relative(&mut self) {
        if self.pending == Pending::Relative {
            self.order(OrderBy::Newest);
        }
        self.pending = Pending::Nothing;
    }

    fn name(&mut self, typed: &str) {
        if let Some(s) = self.known_service(typed) {
            return self.service(s);
        }
        let lower = typed.to_lowercase();
        if lower.chars().count() >= NAME_PART_CHARS_MIN && self.vocab.operations.iter().any(|o| o.to_lowercase().contains(&lower)) {
            return self.operation(typed.to_owned());
        }
        if self.out.unknown_words.len() < UNKNOWN_MAX {
            self.out.unknown_words.push(typed.to_owned());
        }
    }

    fn known_service(&self, typed: &str) -> Option<String> {
        self.vocab.services.iter().find(|s| s.eq_ignore_ascii_case(typed)).cloned()
    }

    fn service(&mut self, s: String) {
        match &self.out.query.service {
            Some(first) if *first != s => self.out.notes.push(format!("one service at a time: {first} kept, {s} ignored")),
            _ => self.out.query.service = Some(s),
        }
    }

    fn operation(&mut self, o: String) {
        match &self.out.query.operation {
            Some(first) if *first != o => self.out.notes.push(format!("one operation at a time: {first:?} kept, {o:?} ignored")),
            _ => self.out.query.operation = Some(o),
        }
    }

    fn order(&mut self, o: OrderBy) {
        if self.order_set && self.out.query.order_by != o {
            self.out.notes.push(format!("first ordering kept, {o:?} ignored"));
            return;
        }
        self.order_set = true;
        self.out.query.order_by = o;
    }

    fn limit(&mut self, n: f64) {
        let n = n.max(1.0) as usize;
        if n > LIMIT_MAX {
            self.out.notes.push(format!("limit {n} capped at {LIMIT_MAX}"));
        }
        self.out.query.limit = n.min(LIMIT_MAX);
    }

    fn range(&mut self, ms: u64) {
        let since = self.now_unix_ms.saturating_sub(ms);
        self.out.query.since_unix_ms = Some(since);
        self.out.query.since = Some(format_rfc3339_nanos(since.saturating_mul(1_000_000)));
        self.out.query.range = Some(humantime::format_duration(Duration::from_millis(ms)).to_string());
    }
}

fn tokenize(question: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut rest: String = question.chars().take(QUESTION_CHARS_MAX).collect();
    while !rest.is_empty() {
        rest = rest.trim_start().to_owned();
        if let Some(after) = rest.strip_prefix('"') {
            let (phrase, tail) = after.split_once('"').unwrap_or((after, ""));
            if !phrase.trim().is_empty() {
                out.push(Token::Quoted(phrase.trim().to_owned()));
            }
            rest = tail.to_owned();
            continue;
        }
        let end = rest.find(|c: char| c.is_whitespace() || c == '"').unwrap_or(rest.len());
        let raw: String = rest[..end].to_owned();
        rest = rest[end..].to_owned();
        push_word(&raw, &mut out);
    }
    out
}

fn push_word(raw: &str, out: &mut Vec<Token>) {
    let word = raw.trim_matches(|c: char| matches!(c, ',' | ';' | '!' | '?' | '(' | ')' | '\'')).trim_end_matches(['.', ':']);
    if word.is_empty() {
        return;
    }
    for op in [">=", "<=", ">", "<"] {
        if let Some(tail) = word.strip_prefix(op).filter(|t| !t.is_empty()) {
            out.push(Token::Word(op.to_owned(), op.to_owned()));
            return push_word(tail, out);
        }
    }
    if let Some((key, value)) = word.split_once([':', '=']).filter(|(k, v)| !v.is_empty() && meaning(&k.to_lowercase()).is_some()) {
        out.push(Token::Word(key.to_lowercase(), key.to_owned()));
        return push_word(value, out);
    }
    out.push(number(word).unwrap_or_else(|| Token::Word(word.to_lowercase(), word.to_owned())));
}

/// `500`, `1.5`, `500ms`, `2h`; `None` for anything else (`5xx`).
fn number(word: &str) -> Option<Token> {
    let split = word.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(word.len());
    let (digits, unit) = word.split_at(split);
    let n: f64 = digits.parse().ok().filter(|n: &f64| n.is_finite())?;
    if unit.is_empty() {
        return Some(Token::Number(n, None));
    }
    unit_ms(&unit.to_lowercase()).map(|u| Token::Number(n, Some(u)))
}

#[cfg(test)]
#[path = "parse_test.rs"]
mod tests;
