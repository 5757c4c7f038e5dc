//! Just enough PostgreSQL connection-string handling for the test helpers.

/// Returns `server_url` with its database replaced by `db`.
///
/// Works on URLs (`postgres://user@host:port/db?params`, the query is kept) and on libpq
/// keyword/value strings (`host=... dbname=...`, where a trailing `dbname=` wins).
///
/// # Examples
///
/// ```
/// use pgschemas_diesel::testing::url_with_database;
///
/// assert_eq!(
///     url_with_database("postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "app"),
///     "postgres://postgres@127.0.0.1:5432/app?sslmode=disable",
/// );
/// assert_eq!(
///     url_with_database("host=127.0.0.1 user=postgres", "app"),
///     "host=127.0.0.1 user=postgres dbname='app'",
/// );
/// ```
pub fn url_with_database(server_url: &str, db: &str) -> String {
    let Some((scheme, rest)) = server_url.split_once("://") else {
        let escaped = db.replace('\\', "\\\\").replace('\'', "\\'");
        return format!("{} dbname='{escaped}'", server_url.trim_end());
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let query = rest[authority_end..]
        .split_once('?')
        .map(|(_, query)| query)
        .filter(|query| !query.is_empty());
    let mut url = format!("{scheme}://{authority}/{}", percent_encode(db));
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// Returns `url` with its login replaced by `user` (and no password): the user part of a
/// `postgres://` URL, or a trailing `user=` of a keyword/value string.
pub(crate) fn url_with_user(url: &str, user: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        let escaped = user.replace('\\', "\\\\").replace('\'', "\\'");
        return format!("{} user='{escaped}'", url.trim_end());
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host = match rest[..authority_end].rsplit_once('@') {
        Some((_, host)) => host,
        None => &rest[..authority_end],
    };
    format!(
        "{scheme}://{}@{host}{}",
        percent_encode(user),
        &rest[authority_end..]
    )
}

/// The parts of a `postgres://` URL the test helpers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerAddress {
    /// Host name, IP address, or socket directory; empty when the URL names none.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
}

impl ServerAddress {
    /// Parses the authority of a `postgres://` or `postgresql://` URL.
    ///
    /// A `host=` or `port=` query parameter overrides the authority, as in libpq.
    pub(crate) fn parse(url: &str) -> Result<ServerAddress, String> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!(
                "expected a postgres:// URL, got `{}`",
                redact_password(url)
            ));
        };
        if scheme != "postgres" && scheme != "postgresql" {
            return Err(format!(
                "expected a postgres:// URL, got scheme `{scheme}` in `{}`",
                redact_password(url)
            ));
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => match userinfo.split_once(':') {
                Some((user, password)) => {
                    (Some(percent_decode(user)), Some(percent_decode(password)))
                }
                None => (Some(percent_decode(userinfo)), None),
            },
        };
        let (mut host, mut port) = split_host_port(hostport);
        let query = rest[authority_end..]
            .split_once('?')
            .map(|(_, query)| query)
            .unwrap_or("");
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("host", value)) => host = percent_decode(value),
                Some(("port", value)) => port = Some(value.to_owned()),
                _ => {}
            }
        }
        let port = match port.as_deref() {
            None | Some("") => 5432,
            Some(port) => port
                .parse()
                .map_err(|_| format!("invalid port `{port}` in `{}`", redact_password(url)))?,
        };
        Ok(ServerAddress {
            host,
            port,
            user: user.filter(|user| !user.is_empty()),
            password,
        })
    }
}

fn split_host_port(hostport: &str) -> (String, Option<String>) {
    if let Some(bracketed) = hostport.strip_prefix('[') {
        // IPv6 literal: `[::1]:5432`
        return match bracketed.split_once(']') {
            Some((host, rest)) => (host.to_owned(), rest.strip_prefix(':').map(str::to_owned)),
            None => (hostport.to_owned(), None),
        };
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) => (percent_decode(host), Some(port.to_owned())),
        None => (percent_decode(hostport), None),
    }
}

/// Replaces the password of a URL with `***`, for messages.
pub(crate) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{hostport}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => std::str::from_utf8(hex)
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok()),
            _ => None,
        };
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_and_keeps_the_query() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "t1",
                "postgres://postgres@127.0.0.1:5432/t1",
            ),
            (
                "postgres://u:p%40ss@db.example:6000/app?sslmode=require&application_name=x",
                "t2",
                "postgres://u:p%40ss@db.example:6000/t2?sslmode=require&application_name=x",
            ),
            ("postgresql://localhost", "t3", "postgresql://localhost/t3"),
            ("postgres://localhost/", "t4", "postgres://localhost/t4"),
            (
                "postgres://localhost?host=/var/run/postgresql",
                "t5",
                "postgres://localhost/t5?host=/var/run/postgresql",
            ),
            ("postgres://h/x", "my db", "postgres://h/my%20db"),
            ("host=h user=u", "o'k", "host=h user=u dbname='o\\'k'"),
        ];
        for (url, db, expected) in cases {
            assert_eq!(url_with_database(url, db), expected, "{url} with {db}");
        }
    }

    #[test]
    fn parses_server_addresses() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "127.0.0.1",
                5432,
                Some("postgres"),
                None,
            ),
            ("postgresql://localhost/app", "localhost", 5432, None, None),
            (
                "postgres://u:s%3Acret@[::1]:6543/app",
                "::1",
                6543,
                Some("u"),
                Some("s:cret"),
            ),
            (
                "postgres://u@h:1/d?port=7&host=%2Ftmp",
                "/tmp",
                7,
                Some("u"),
                None,
            ),
        ];
        for (url, host, port, user, password) in cases {
            let parsed = ServerAddress::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.host, host, "{url}");
            assert_eq!(parsed.port, port, "{url}");
            assert_eq!(parsed.user.as_deref(), user, "{url}");
            assert_eq!(parsed.password.as_deref(), password, "{url}");
        }
        assert!(ServerAddress::parse("mysql://h/d").is_err());
        assert!(ServerAddress::parse("host=h").is_err());
        assert!(ServerAddress::parse("postgres://h:notaport/d").is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_password("postgres://u:secret@h/d"),
            "postgres://u:***@h/d"
        );
        assert_eq!(redact_password("postgres://u@h/d"), "postgres://u@h/d");
    }
}
