//! Domains and folders, one set of rules for the configuration, the domain model and routing:
//! what a route may store, how a request's host is normalised to meet it, and how a route is
//! shown in messages.
//!
//! A host name is ASCII: labels of `a-z`, `0-9` and `-` separated by dots, as Django's host
//! validation reads RFC 1034/1035 (`_` is refused). An internationalised domain is stored in
//! its A-label form (`xn--...`), which is what browsers send in the `Host` header; its Unicode
//! form is refused, since no request could ever match it.
//!
//! The lowest layer of the crate beside names and paths: it depends on nothing else in it.

use std::fmt;

/// The longest host name DNS allows (without the trailing dot).
pub(crate) const MAX_HOST_LEN: usize = 253;

/// The longest folder (first path segment) a route may have.
pub(crate) const MAX_FOLDER_LEN: usize = 253;

/// What a folder may be, as messages state it.
pub(crate) const FOLDER_RULE: &str =
    "a folder is one URL path segment of letters, digits, '-', '_', '.' or '~'";

/// Why a domain cannot be a route's domain; `Display` is the reason in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DomainFault {
    /// Nothing but white space.
    Empty,
    /// Longer than 253 characters.
    TooLong,
    /// A character outside ASCII: a Unicode domain instead of its A-label.
    NotAscii(char),
    /// An `_`, which host names do not allow.
    Underscore,
    /// Another character a host name does not have (a scheme, port, path, space...).
    BadCharacter(char),
    /// Two dots in a row, or a leading dot.
    EmptyLabel,
    /// One leading `www.`, which routing strips from request hosts.
    Www,
}

impl fmt::Display for DomainFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the domain is empty"),
            Self::TooLong => f.write_str("the domain is longer than 253 characters"),
            Self::NotAscii(c) => write!(
                f,
                "the domain contains {c:?}; a host name is ASCII: store an internationalised \
                 domain in its A-label form (`xn--...`), which is what browsers send"
            ),
            Self::Underscore => f.write_str(
                "the domain contains '_', which a host name may not (browsers and Django refuse such hosts)",
            ),
            Self::BadCharacter(c) => write!(
                f,
                "the domain contains {c:?}; give the host only, without scheme, port or path"
            ),
            Self::EmptyLabel => {
                f.write_str("the domain has an empty label (a leading dot or two dots in a row)")
            }
            Self::Www => f.write_str(
                "routing strips one leading `www.` from request hosts; store the domain without it",
            ),
        }
    }
}

/// Why a folder cannot be a route's folder; `Display` is the reason in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FolderFault {
    /// Longer than 253 characters.
    TooLong,
    /// `.` or `..`, which URL paths resolve away.
    Dots,
    /// A character outside `[A-Za-z0-9._~-]`.
    BadCharacter(char),
}

impl fmt::Display for FolderFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong => write!(f, "the folder is longer than {MAX_FOLDER_LEN} characters"),
            Self::Dots => write!(f, "the folder is `.` or `..`; {FOLDER_RULE}"),
            Self::BadCharacter(c) => write!(f, "the folder contains {c:?}; {FOLDER_RULE}"),
        }
    }
}

/// A domain as a route stores it: trimmed, ASCII lower case, without one trailing dot.
///
/// # Errors
///
/// The [`DomainFault`] when no request host could ever be normalised to it.
pub(crate) fn stored_domain(raw: &str) -> Result<String, DomainFault> {
    let trimmed = raw.trim();
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if let Some(c) = trimmed.chars().find(|c| !c.is_ascii()) {
        return Err(DomainFault::NotAscii(c));
    }
    let domain = trimmed.to_ascii_lowercase();
    check_name(domain.as_bytes())?;
    if domain.starts_with("www.") {
        return Err(DomainFault::Www);
    }
    Ok(domain)
}

/// A folder as a route stores it: `None` for an empty folder (none).
///
/// # Errors
///
/// The [`FolderFault`] when no request path could ever match it.
pub(crate) fn stored_folder(folder: Option<&str>) -> Result<Option<String>, FolderFault> {
    match folder {
        None | Some("") => Ok(None),
        Some(f) => check_folder(f).map(|()| Some(f.to_owned())),
    }
}

/// Whether `folder` can be a route's folder: one URL path segment of unreserved characters
/// (`[A-Za-z0-9._~-]`), not `.` or `..`.
pub(crate) fn is_valid_folder(folder: &str) -> bool {
    !folder.is_empty() && check_folder(folder).is_ok()
}

fn check_folder(folder: &str) -> Result<(), FolderFault> {
    if let Some(c) = folder
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~')))
    {
        return Err(FolderFault::BadCharacter(c));
    }
    if folder.len() > MAX_FOLDER_LEN {
        return Err(FolderFault::TooLong);
    }
    if folder == "." || folder == ".." {
        return Err(FolderFault::Dots);
    }
    Ok(())
}

/// `domain/folder` or `domain`, as messages show a route.
pub(crate) fn route_label(domain: &str, folder: Option<&str>) -> String {
    match folder {
        Some(folder) if !folder.is_empty() => format!("{domain}/{folder}"),
        _ => domain.to_owned(),
    }
}

/// A configured or stored domain as routing keys it: normalised as a request host is, a
/// port refused. Lenient on what normalisation removes (case, one `www.`, a trailing dot).
///
/// # Errors
///
/// Why routing cannot use it.
pub(crate) fn route_host(domain: &str) -> Result<String, &'static str> {
    let mut storage = None;
    match normalize_host(domain.as_bytes(), &mut storage) {
        Ok((host, None)) => Ok(host.to_owned()),
        Ok((_, Some(_))) => Err("a stored domain must not have a port"),
        Err(()) if !domain.is_ascii() => Err(
            "not a valid host name: store an internationalised domain in its A-label form (`xn--...`)",
        ),
        Err(()) => Err("not a valid host name"),
    }
}

/// Checks a lower-case host name: 1 to 253 bytes, labels of `[a-z0-9-]` separated by single
/// dots, no leading or trailing dot.
fn check_name(host: &[u8]) -> Result<(), DomainFault> {
    if host.is_empty() {
        return Err(DomainFault::Empty);
    }
    if host.len() > MAX_HOST_LEN {
        return Err(DomainFault::TooLong);
    }
    let mut label_len = 0usize;
    for &b in host {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' => label_len += 1,
            b'.' if label_len > 0 => label_len = 0,
            b'.' => return Err(DomainFault::EmptyLabel),
            b'_' => return Err(DomainFault::Underscore),
            _ if b.is_ascii() => return Err(DomainFault::BadCharacter(char::from(b))),
            _ => return Err(DomainFault::NotAscii(char::REPLACEMENT_CHARACTER)),
        }
    }
    if label_len == 0 {
        return Err(DomainFault::EmptyLabel);
    }
    Ok(())
}

/// A normalised host, built on the stack.
pub(crate) struct HostBuf {
    buf: [u8; MAX_HOST_LEN],
    len: usize,
}

impl HostBuf {
    fn new() -> Self {
        Self {
            buf: [0; MAX_HOST_LEN],
            len: 0,
        }
    }

    /// The normalised host.
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// Normalises a `Host` header value (or URI authority): the port dropped, one trailing dot
/// ignored, ASCII lower-cased, one leading `www.` stripped. Allocation-free, never panics.
///
/// Returns the host (borrowed from `raw` when it is already normal, else written into
/// `storage`) and the port when one was given; `Err(())` for a malformed host: empty, too
/// long, non-ASCII, a character outside `[a-z0-9.-]`, an empty label, a bad port or a
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

/// Whether `raw` is a host already in normal form: a valid lower-case name, no port, no
/// trailing dot, no leading `www.`.
fn is_normal(raw: &[u8]) -> bool {
    !raw.starts_with(b"www.") && check_name(raw).is_ok()
}

fn normalize_into<'a>(raw: &'a [u8], key: &mut HostBuf) -> Result<Option<&'a str>, ()> {
    // Userinfo never belongs in a Host header; refuse it rather than guess.
    let (host, port) = split_port(raw)?;
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return Err(());
    }
    let out = &mut key.buf[..host.len()];
    for (o, &b) in out.iter_mut().zip(host) {
        *o = b.to_ascii_lowercase();
    }
    if host[0] == b'[' {
        // An IPv6 literal, brackets kept: hex digits, ':' and '.' inside.
        let inner = out.get(1..out.len() - 1).ok_or(())?;
        let hex = |b: &u8| b.is_ascii_hexdigit() || *b == b':' || *b == b'.';
        if host.len() < 3 || host[host.len() - 1] != b']' || !inner.iter().all(hex) {
            return Err(());
        }
        key.len = host.len();
        return Ok(port);
    }
    check_name(out).map_err(|_| ())?;
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

#[cfg(test)]
mod tests;
