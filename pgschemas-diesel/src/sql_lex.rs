//! The lexical pieces of PostgreSQL's SQL that the crate's readers of SQL text share (the
//! statement splitter of `run-sql` and the clone's scan of definitions for the source
//! schema's name): identifier characters, comments and dollar-quote tags, as PostgreSQL's own
//! lexer reads them. Nothing of the crate below.

/// Whether `c` may start an unquoted identifier (non-ASCII bytes included, as PostgreSQL
/// allows).
pub(crate) fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

/// Whether `c` may continue an unquoted identifier (`$` included).
pub(crate) fn is_ident_char(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

/// The index of the newline ending the `--` comment starting at `i`, or the end.
pub(crate) fn line_comment_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i] != b'\n' {
        i += 1;
    }
    i
}

/// The index just after the `*/` closing the (nested) block comment starting at `i`, or the
/// end.
pub(crate) fn block_comment_end(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// The index just after the tag of a dollar quote (`$$`, `$body$`) starting at `i`, if one
/// starts there; `None` for a `$` that opens none (a parameter such as `$1`).
pub(crate) fn dollar_tag_end(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if bytes.get(j).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    while j < bytes.len() && bytes[j] != b'$' {
        if !(is_ident_start(bytes[j]) || bytes[j].is_ascii_digit()) {
            return None;
        }
        j += 1;
    }
    (j < bytes.len()).then_some(j + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_end_where_postgresql_ends_them() {
        let cases: &[(&str, usize)] = &[
            ("/* a */ x", 7),
            ("/* a /* nested */ still */x", 26),
            ("/* unterminated", 15),
            ("/**/", 4),
        ];
        for (sql, end) in cases {
            assert_eq!(block_comment_end(sql.as_bytes(), 0), *end, "{sql}");
        }
        assert_eq!(line_comment_end(b"-- a\nb", 0), 4);
        assert_eq!(line_comment_end(b"-- a", 0), 4);
    }

    #[test]
    fn dollar_tags_are_told_from_parameters() {
        let cases: &[(&str, Option<usize>)] = &[
            ("$$ body $$", Some(2)),
            ("$body$ x $body$", Some(6)),
            ("$1", None),
            ("$a b$", None),
            ("$unterminated", None),
            ("$é$", Some(4)),
        ];
        for (sql, end) in cases {
            assert_eq!(dollar_tag_end(sql.as_bytes(), 0), *end, "{sql}");
        }
    }
}
