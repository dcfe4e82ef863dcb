//! Replacing the literals of a SQL statement by `?`, so `db.query.text`
//! carries the shape of a query and not the data in it.
//!
//! A single pass over the bytes, with the lexical rules common to the usual
//! dialects: `'...'` strings (with `''` and, for MySQL, backslash escapes:
//! treating a backslash as an escape can only make a string longer, so data
//! never leaks out of it), numbers (decimal, fraction, exponent, `0x` hex)
//! that are not part of an identifier (`t1`, `col_2`, `$1` stay), and
//! `IN (lit, lit, ...)` lists collapsed to `IN (?)`. Quoted identifiers
//! (`"..."`, `` `...` ``), comments, keywords (`TRUE`, `NULL`) and everything
//! else are kept byte for byte. The result is a fixed point: scrubbing it
//! again changes nothing.

/// Replaces string, numeric and hex literals by `?` and collapses literal
/// `IN` lists to `IN (?)`.
pub fn scrub_sql_literals(sql: &str) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    // `sql[copied..i]` is pending verbatim output. Every index stored in
    // `copied` sits at an ASCII byte or the end, so slicing is on a char
    // boundary.
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'\'' {
            out.push_str(&sql[copied..i]);
            out.push('?');
            i = quoted_end(b, i);
            copied = i;
        } else if c == b'"' || c == b'`' {
            i = quoted_end(b, i);
        } else if c == b'-' && next == Some(b'-') {
            i = b[i..].iter().position(|&x| x == b'\n').map_or(b.len(), |n| i + n);
        } else if c == b'/' && next == Some(b'*') {
            i = find(b, i + 2, b"*/").map_or(b.len(), |n| n + 2);
        } else if starts_number(b, i) {
            match number_end(b, i) {
                Some(end) => {
                    out.push_str(&sql[copied..i]);
                    out.push('?');
                    i = end;
                    copied = i;
                }
                // A name that starts with a digit (MySQL allows `1col`); at
                // a `.` (`.5x`) step over the dot so the loop always advances.
                None => i = word_end(b, i).max(i + 1),
            }
        } else if is_ident(c) {
            let end = word_end(b, i);
            let list = if b[i..end].eq_ignore_ascii_case(b"in") { literal_list(b, end) } else { None };
            i = end;
            if let Some((open, close)) = list {
                out.push_str(&sql[copied..open]);
                out.push_str("(?)");
                i = close + 1;
                copied = i;
            }
        } else {
            i += 1;
        }
    }
    out.push_str(&sql[copied..]);
    out
}

/// Bytes of names: ASCII letters and digits, `_`, `$` (`$1`, `v$session`)
/// and any non-ASCII byte (so UTF-8 characters are never split).
fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// End of the name starting at `i`.
fn word_end(b: &[u8], i: usize) -> usize {
    b[i..].iter().position(|&c| !is_ident(c)).map_or(b.len(), |n| i + n)
}

/// First index at or after `from` where `needle` starts.
fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|n| from + n)
}

/// End (exclusive) of the quoted token opening at `i`; the quote doubled
/// escapes itself, and in strings a backslash escapes the next byte.
/// Unterminated: the end of the input.
fn quoted_end(b: &[u8], i: usize) -> usize {
    let quote = b[i];
    let mut j = i + 1;
    while j < b.len() {
        if quote == b'\'' && b[j] == b'\\' {
            j += 2;
        } else if b[j] == quote {
            if b.get(j + 1) != Some(&quote) {
                return j + 1;
            }
            j += 2;
        } else {
            j += 1;
        }
    }
    b.len()
}

/// Whether a number may start at `i`: a digit, or `.` then a digit not
/// following a name (`t.5` is not a fraction).
fn starts_number(b: &[u8], i: usize) -> bool {
    let digit_at = |k: usize| b.get(k).is_some_and(u8::is_ascii_digit);
    digit_at(i) || (b[i] == b'.' && digit_at(i + 1) && (i == 0 || !is_ident(b[i - 1])))
}

/// End of the numeric literal starting at `i`, or `None` when a name byte
/// follows it (then it is the start of a name, not a literal).
fn number_end(b: &[u8], i: usize) -> Option<usize> {
    let digits_from = |k: usize, hex: bool| {
        let is_digit = |c: &u8| {
            if hex {
                c.is_ascii_hexdigit()
            } else {
                c.is_ascii_digit()
            }
        };
        b.get(k..).map_or(k, |rest| k + rest.iter().take_while(|c| is_digit(c)).count())
    };
    let at = |k: usize| b.get(k).copied();
    let mut j;
    if at(i) == Some(b'0') && matches!(at(i + 1), Some(b'x' | b'X')) && digits_from(i + 2, true) > i + 2 {
        j = digits_from(i + 2, true);
    } else {
        j = digits_from(i, false);
        if at(j) == Some(b'.') && digits_from(j + 1, false) > j + 1 {
            j = digits_from(j + 1, false);
        }
        if matches!(at(j), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(at(j + 1), Some(b'+' | b'-')));
            let exponent_end = digits_from(j + 1 + sign, false);
            if exponent_end > j + 1 + sign {
                j = exponent_end;
            }
        }
    }
    match at(j) {
        Some(c) if is_ident(c) => None,
        _ => Some(j),
    }
}

/// After the word `IN` ending at `i`: the indexes of `(` and `)` of a list
/// made only of literals (strings, numbers, `?`, each optionally signed).
fn literal_list(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let skip_ws = |k: usize| b.get(k..).map_or(k, |rest| k + rest.iter().take_while(|c| c.is_ascii_whitespace()).count());
    let open = skip_ws(i);
    if b.get(open) != Some(&b'(') {
        return None;
    }
    let mut k = open + 1;
    loop {
        k = skip_ws(k);
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        k = match b.get(k)? {
            b'?' => k + 1,
            b'\'' => quoted_end(b, k),
            _ if starts_number(b, k) => number_end(b, k)?,
            _ => return None,
        };
        k = skip_ws(k);
        match b.get(k)? {
            b',' => k += 1,
            b')' => return Some((open, k)),
            _ => return None,
        }
    }
}

#[cfg(test)]
#[path = "sql_test.rs"]
mod tests;
