//! The store's SQL is written in PostgreSQL's dialect; this is how SQLite
//! reads it. The whole list of what is translated:
//!
//! - `$N` placeholders become `?N` (bound by number, so `$2` may come before
//!   `$1` and appear twice);
//! - `= ANY($N)`, a list parameter, becomes `IN (SELECT value FROM
//!   json_each(?N))`; the list is bound as a JSON array;
//! - `LEAST(` and `GREATEST(` become SQLite's many-argument `MIN(` and `MAX(`;
//! - the row lock `FOR NO KEY UPDATE` is dropped: the one writer holds the
//!   whole database for its transaction.
//!
//! Everything else the store writes reads the same on both (`IS NOT DISTINCT
//! FROM`, `TRUE`, `ON CONFLICT … DO`, `RETURNING`). Quoted text and
//! identifiers are copied as they are.

/// `sql` as SQLite reads it.
pub fn translate(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16);
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\'' | b'"' => {
                let end = closing_quote(bytes, i);
                out.push_str(&sql[i..end]);
                i = end;
            }
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let end = digits_end(bytes, i + 1);
                out.push('?');
                out.push_str(&sql[i + 1..end]);
                i = end;
            }
            b'=' if let Some((number, end)) = any_list(bytes, i) => {
                out.push_str("IN (SELECT value FROM json_each(?");
                out.push_str(number);
                out.push_str("))");
                i = end;
            }
            _ if word_at(bytes, i, b"LEAST(") => {
                out.push_str("MIN(");
                i += "LEAST(".len();
            }
            _ if word_at(bytes, i, ROW_LOCK) => {
                i += ROW_LOCK.len();
            }
            _ if word_at(bytes, i, b"GREATEST(") => {
                out.push_str("MAX(");
                i += "GREATEST(".len();
            }
            _ => {
                // Copy one whole character (the SQL may hold non-ASCII text).
                let width = utf8_width(c);
                out.push_str(&sql[i..i + width]);
                i += width;
            }
        }
    }
    out
}

/// A row lock, which SQLite has no use for.
const ROW_LOCK: &[u8] = b"FOR NO KEY UPDATE";

/// The end (exclusive) of the quoted text starting at `start`; a doubled
/// quote inside it is part of the text.
fn closing_quote(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

fn digits_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// `= ANY($N)` at `start`: the number and the end of the construct.
fn any_list(bytes: &[u8], start: usize) -> Option<(&str, usize)> {
    const OPEN: &[u8] = b"= ANY($";
    if !bytes[start..].starts_with(OPEN) {
        return None;
    }
    let digits = start + OPEN.len();
    let end = digits_end(bytes, digits);
    if end == digits || bytes.get(end) != Some(&b')') {
        return None;
    }
    let number = std::str::from_utf8(&bytes[digits..end]).ok()?;
    Some((number, end + 1))
}

/// `word` at `i`, not preceded by a letter, digit or underscore.
fn word_at(bytes: &[u8], i: usize, word: &[u8]) -> bool {
    bytes[i..].starts_with(word)
        && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'))
}

fn utf8_width(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn placeholders_lists_and_functions_read_as_sqlite_spells_them() {
        assert_eq!(
            translate("SELECT $2 || $1 || $2 FROM t WHERE id = ANY($3) AND x = LEAST(due_at, $10)"),
            "SELECT ?2 || ?1 || ?2 FROM t WHERE id IN (SELECT value FROM json_each(?3)) AND x = MIN(due_at, ?10)"
        );
        assert_eq!(translate("SELECT GREATEST(a, b)"), "SELECT MAX(a, b)");
        assert_eq!(
            translate(
                "UPDATE t SET n = 1 WHERE id IN (SELECT id FROM t ORDER BY id FOR NO KEY UPDATE)"
            ),
            "UPDATE t SET n = 1 WHERE id IN (SELECT id FROM t ORDER BY id )"
        );
    }

    #[test]
    fn quoted_text_and_other_words_are_left_alone() {
        let sql = "SELECT '$1 = ANY($2)', \"LEAST(\" FROM t WHERE s = 'it''s $3' AND NOT_LEAST(1) AND é = $1";
        assert_eq!(
            translate(sql),
            "SELECT '$1 = ANY($2)', \"LEAST(\" FROM t WHERE s = 'it''s $3' AND NOT_LEAST(1) AND é = ?1"
        );
    }
}
