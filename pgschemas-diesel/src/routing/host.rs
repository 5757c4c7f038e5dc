//! Host and path parsing for routing: allocation-free, never panics on any input.

/// The longest host name DNS allows (without the trailing dot).
pub(crate) const MAX_HOST_LEN: usize = 253;

/// The longest folder (first path segment) a route may have.
pub(crate) const MAX_FOLDER_LEN: usize = 253;

/// A normalised host, built on the stack.
pub(crate) struct HostBuf {
    buf: [u8; MAX_HOST_LEN],
    len: usize,
}

impl HostBuf {
    pub(crate) fn new() -> Self {
        Self {
            buf: [0; MAX_HOST_LEN],
            len: 0,
        }
    }

    /// The normalised host.
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// Normalises a `Host` header value (or URI authority): the port dropped, one trailing dot
/// ignored, ASCII lower-cased, one leading `www.` stripped.
///
/// Returns the host (borrowed from `raw` when it is already normal, else written into
/// `storage`) and the port when one was given; `Err(())` for a malformed host: empty, too
/// long, non-ASCII, a character outside `[a-z0-9._-]`, an empty label, a bad port or a
/// malformed IPv6 literal.
pub(crate) fn normalize_host<'a>(
    raw: &'a [u8],
    storage: &'a mut Option<HostBuf>,
) -> Result<(&'a str, Option<&'a str>), ()> {
    if is_normal(raw) {
        return Ok((std::str::from_utf8(raw).map_err(|_| ())?, None));
    }
    let key = storage.insert(HostBuf::new());
    let port = normalize_into(raw, key)?;
    Ok((key.as_str(), port))
}

/// Whether `raw` is a host already in normal form: labels of `[a-z0-9_-]`, no port, no
/// trailing dot, no leading `www.`.
fn is_normal(raw: &[u8]) -> bool {
    if raw.is_empty() || raw.len() > MAX_HOST_LEN || raw.starts_with(b"www.") {
        return false;
    }
    let mut label_len = 0usize;
    for &b in raw {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => label_len += 1,
            b'.' if label_len > 0 => label_len = 0,
            _ => return false,
        }
    }
    label_len > 0
}

fn normalize_into<'a>(raw: &'a [u8], key: &mut HostBuf) -> Result<Option<&'a str>, ()> {
    // Userinfo never belongs in a Host header; refuse it rather than guess.
    let (host, port) = split_port(raw)?;
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return Err(());
    }
    let out = &mut key.buf[..host.len()];
    if host[0] == b'[' {
        // An IPv6 literal, brackets kept: hex digits, ':' and '.' inside.
        if host.len() < 3 || host[host.len() - 1] != b']' {
            return Err(());
        }
        for (o, &b) in out.iter_mut().zip(host) {
            *o = b.to_ascii_lowercase();
        }
        let inner = &out[1..out.len() - 1];
        if !inner
            .iter()
            .all(|b| b.is_ascii_hexdigit() || *b == b':' || *b == b'.')
        {
            return Err(());
        }
        key.len = host.len();
        return Ok(port);
    }
    let mut label_len = 0usize;
    for (o, &b) in out.iter_mut().zip(host) {
        let c = b.to_ascii_lowercase();
        match c {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => label_len += 1,
            b'.' => {
                if label_len == 0 {
                    return Err(());
                }
                label_len = 0;
            }
            _ => return Err(()),
        }
        *o = c;
    }
    if label_len == 0 {
        return Err(());
    }
    let mut n = host.len();
    if n > 4 && &key.buf[..4] == b"www." {
        key.buf.copy_within(4..n, 0);
        n -= 4;
    }
    key.len = n;
    Ok(port)
}

/// Splits `host[:port]` / `[v6][:port]`; the port must be a number up to 65535 (or empty).
fn split_port(raw: &[u8]) -> Result<(&[u8], Option<&str>), ()> {
    let (host, port) = if raw.first() == Some(&b'[') {
        let end = raw.iter().position(|&b| b == b']').ok_or(())?;
        let (host, rest) = raw.split_at(end + 1);
        match rest {
            [] => (host, None),
            [b':', port @ ..] => (host, Some(port)),
            _ => return Err(()),
        }
    } else {
        match raw.iter().position(|&b| b == b':') {
            None => (raw, None),
            Some(i) => (&raw[..i], Some(&raw[i + 1..])),
        }
    };
    let port = match port {
        None => None,
        Some([]) => None,
        Some(p) if p.len() <= 5 && p.iter().all(u8::is_ascii_digit) => {
            // Digits only, so this is valid UTF-8.
            let p = std::str::from_utf8(p).map_err(|_| ())?;
            p.parse::<u16>().map_err(|_| ())?;
            Some(p)
        }
        Some(_) => return Err(()),
    };
    Ok((host, port))
}

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

/// Whether `folder` can be a route's folder: a single URL path segment of unreserved
/// characters (`[A-Za-z0-9._~-]`), not `.` or `..`.
pub(crate) fn is_valid_folder(folder: &str) -> bool {
    !folder.is_empty()
        && folder.len() <= MAX_FOLDER_LEN
        && folder != "."
        && folder != ".."
        && folder
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
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

    fn norm(raw: &str) -> Option<(String, Option<String>)> {
        let mut storage = None;
        let fast = is_normal(raw.as_bytes());
        let got = normalize_host(raw.as_bytes(), &mut storage)
            .ok()
            .map(|(host, port)| (host.to_owned(), port.map(str::to_owned)));
        // The fast path agrees with the full one.
        let mut key = HostBuf::new();
        let slow = normalize_into(raw.as_bytes(), &mut key)
            .ok()
            .map(|port| (key.as_str().to_owned(), port.map(str::to_owned)));
        assert_eq!(got, slow, "{raw:?}");
        if fast {
            assert_eq!(got.as_ref().map(|g| g.0.as_str()), Some(raw));
        }
        got
    }

    #[test]
    fn host_normalisation() {
        type Case<'a> = (&'a str, Option<(&'a str, Option<&'a str>)>);
        let cases: &[Case<'_>] = &[
            ("localhost", Some(("localhost", None))),
            ("LocalHost", Some(("localhost", None))),
            ("localhost:8000", Some(("localhost", Some("8000")))),
            ("localhost:", Some(("localhost", None))),
            ("localhost.", Some(("localhost", None))),
            ("localhost.:80", Some(("localhost", Some("80")))),
            ("www.test.com", Some(("test.com", None))),
            ("WWW.Test.COM:443", Some(("test.com", Some("443")))),
            ("www.www.test.com", Some(("www.test.com", None))),
            ("1www.test.com", Some(("1www.test.com", None))),
            ("www", Some(("www", None))),
            ("www.", Some(("www", None))),
            ("ws_tenant3.localhost", Some(("ws_tenant3.localhost", None))),
            ("[::1]:3000", Some(("[::1]", Some("3000")))),
            ("[::1]", Some(("[::1]", None))),
            ("127.0.0.1:3000", Some(("127.0.0.1", Some("3000")))),
            ("", None),
            (".", None),
            ("..", None),
            ("a..b", None),
            (".a", None),
            ("a b", None),
            (" localhost", None),
            ("localhost:80:80", None),
            ("localhost:http", None),
            ("localhost:123456", None),
            ("localhost:65536", None),
            ("localhost:65535", Some(("localhost", Some("65535")))),
            ("localhost:-1", None),
            ("localhost:+1", None),
            ("user@localhost", None),
            ("localhost/path", None),
            ("héllo.com", None),
            ("[::1", None),
            ("[]", None),
            ("[::1]x", None),
            ("[fe80::1%eth0]", None),
            ("www..", None),
        ];
        for (raw, want) in cases {
            let want = want.map(|(h, p)| (h.to_owned(), p.map(str::to_owned)));
            assert_eq!(norm(raw), want, "{raw:?}");
        }
        assert!(norm(&"a".repeat(253)).is_some());
        assert!(norm(&format!("{}.", "a".repeat(253))).is_some());
        assert!(norm(&"a".repeat(254)).is_none());
    }

    #[test]
    fn first_segments() {
        let cases: &[(&str, &str, &str)] = &[
            ("/", "/", ""),
            ("", "", ""),
            ("*", "", "*"),
            ("/tenant1", "/tenant1", ""),
            ("/tenant1/", "/tenant1", "/"),
            ("/tenant1/a/b?x=1", "/tenant1", "/a/b?x=1"),
            ("/tenant1?x=1", "/tenant1", "?x=1"),
            ("/tenant1#frag", "/tenant1", "#frag"),
            ("//some/path/", "/", "/some/path/"),
            ("/some/path/", "/some", "/path/"),
        ];
        for (target, seg, rest) in cases {
            let (s, r) = first_segment(target.as_bytes());
            assert_eq!((s, r), (seg.as_bytes(), rest.as_bytes()), "{target:?}");
        }
    }

    // django-pgschemas test_middleware.py::test_strip_tenant_from_path_factory, and more.
    #[test]
    fn strip_folders() {
        let cases: &[(&str, &str, &str)] = &[
            ("/some/path/", "", "/some/path/"),
            ("/some/path/", "path", "/some/path/"),
            ("/some/path/", "some", "/path/"),
            ("/some", "some", "/"),
            ("/some?x=1", "some", "/?x=1"),
            ("/some/?x=1", "some", "/?x=1"),
            ("/something/", "some", "/something/"),
            ("//some/", "some", "//some/"),
        ];
        for (target, folder, want) in cases {
            assert_eq!(strip_folder(target, folder), *want, "{target:?} {folder:?}");
        }
    }

    #[test]
    fn folders() {
        for ok in ["tenant1", "a", "t-1_x.y~z", "T1"] {
            assert!(is_valid_folder(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "a?b",
            "a%20b",
            "é",
            &"a".repeat(254),
        ] {
            assert!(!is_valid_folder(bad), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_path_agrees(raw in "[a-zA-Z0-9._:\\[\\]-]{0,20}") {
            norm(&raw);
        }
    }

    #[test]
    fn encoding() {
        let mut s = String::new();
        push_encoded(&mut s, b"/a b/\xff\x00?q=1");
        assert_eq!(s, "/a%20b/%FF%00?q=1");
    }
}
