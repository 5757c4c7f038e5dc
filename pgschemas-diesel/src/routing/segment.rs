//! Request-target parsing for routing: the first path segment and the folder prefix.
//! Allocation-free where it can be, never panics on any input.

/// Splits a request target (`/path?query`, or just a path) into its first path segment,
/// with its leading slash, and the rest after it: `/tenant1/a?b` gives (`/tenant1`, `/a?b`),
/// `/` gives (`/`, ``). A target that does not start with `/` has no first segment (``).
pub(crate) fn first_segment(target: &[u8]) -> (&[u8], &[u8]) {
    match target {
        [b'/', rest @ ..] => {
            let end = rest
                .iter()
                .position(|&b| b == b'/' || b == b'?' || b == b'#')
                .unwrap_or(rest.len());
            target.split_at(end + 1)
        }
        _ => (&[], target),
    }
}

/// `target` with a leading `/folder` segment removed (django-pgschemas'
/// `strip_tenant_from_path`): `/tenant1/a?b` gives `/a?b`, `/tenant1` gives `/`. A target
/// that does not start with that segment is returned as it is.
pub(crate) fn strip_folder<'a>(target: &'a str, folder: &str) -> std::borrow::Cow<'a, str> {
    let (segment, rest) = first_segment(target.as_bytes());
    if folder.is_empty() || segment.get(1..) != Some(folder.as_bytes()) {
        return std::borrow::Cow::Borrowed(target);
    }
    let rest = &target[target.len() - rest.len()..];
    if rest.starts_with('/') {
        std::borrow::Cow::Borrowed(rest)
    } else {
        std::borrow::Cow::Owned(format!("/{rest}"))
    }
}

/// Appends `bytes` to `out`, percent-encoding anything that is not visible ASCII, so the
/// result is always a valid header value.
pub(crate) fn push_encoded(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if (0x21..=0x7e).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // django-pgschemas test_middleware.py::test_strip_tenant_from_path_factory, and more:
    // each target's first segment, the rest after it, and the target with `folder` stripped.
    #[test]
    fn request_targets() {
        type Case<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);
        let cases: &[Case<'_>] = &[
            ("/", "/", "", "some", "/"),
            ("", "", "", "some", ""),
            ("*", "", "*", "some", "*"),
            ("/tenant1", "/tenant1", "", "tenant1", "/"),
            ("/tenant1/", "/tenant1", "/", "tenant1", "/"),
            (
                "/tenant1/a/b?x=1",
                "/tenant1",
                "/a/b?x=1",
                "tenant1",
                "/a/b?x=1",
            ),
            ("/tenant1?x=1", "/tenant1", "?x=1", "tenant1", "/?x=1"),
            ("/tenant1#frag", "/tenant1", "#frag", "tenant1", "/#frag"),
            ("//some/path/", "/", "/some/path/", "some", "//some/path/"),
            ("/some/path/", "/some", "/path/", "some", "/path/"),
            ("/some/path/", "/some", "/path/", "", "/some/path/"),
            ("/some/path/", "/some", "/path/", "path", "/some/path/"),
            ("/some", "/some", "", "some", "/"),
            ("/some?x=1", "/some", "?x=1", "some", "/?x=1"),
            ("/some/?x=1", "/some", "/?x=1", "some", "/?x=1"),
            ("/something/", "/something", "/", "some", "/something/"),
            ("//some/", "/", "/some/", "some", "//some/"),
        ];
        for (target, seg, rest, folder, stripped) in cases {
            let (s, r) = first_segment(target.as_bytes());
            assert_eq!((s, r), (seg.as_bytes(), rest.as_bytes()), "{target:?}");
            assert_eq!(
                strip_folder(target, folder),
                *stripped,
                "{target:?} {folder:?}"
            );
        }
    }

    #[test]
    fn encoding() {
        let mut s = String::new();
        push_encoded(&mut s, b"/a b/\xff\x00?q=1");
        assert_eq!(s, "/a%20b/%FF%00?q=1");
    }
}
