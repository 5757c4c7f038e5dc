//! Operating-system helpers: finding binaries, dropping root, locks, ports, temp dirs.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

/// The operating-system user PostgreSQL tools are run as when this process is root.
pub(crate) const POSTGRES_USER: &str = "postgres";

/// Whether this process runs as root (PostgreSQL and PgBouncer refuse to).
pub(crate) fn running_as_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .ok()
            .filter(|output| output.status.success())
            .is_some_and(|output| output.stdout.trim_ascii() == b"0")
    })
}

/// Finds `name` in `PATH`, then in `extra_dirs`, in that order.
pub(crate) fn find_binary(name: &str, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .iter()
        .chain(extra_dirs)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        fs::metadata(path).is_ok_and(|meta| meta.is_file())
    }
}

/// Whether the test harness may install what a test needs and the machine lacks (Debian's
/// `pgbouncer`, a Citus build): not when `PGSCHEMAS_DIESEL_NO_INSTALL` is set.
pub(crate) fn may_install() -> bool {
    std::env::var_os("PGSCHEMAS_DIESEL_NO_INSTALL").is_none()
}

/// An exclusive lock on the temp directory's `pgschemas-diesel-install-<what>.lock`, held
/// while one test process installs `what`; the others wait on it, then find it installed.
pub(crate) fn install_lock(what: &str) -> Result<fs::File, String> {
    let path = std::env::temp_dir().join(format!("pgschemas-diesel-install-{what}.lock"));
    // Never through a link someone else put there, and never truncated: it is only a lock.
    if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(format!("{} is a symbolic link: remove it", path.display()));
    }
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .and_then(|f| f.lock().map(|()| f))
        .map_err(|e| format!("cannot take {}: {e}", path.display()))
}

/// A command for `program`, run as the `postgres` user when this process is root.
///
/// Uses `runuser -u postgres --` when available, else `su postgres -s /bin/sh -c`.
pub(crate) fn postgres_command<I, S>(program: &Path, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    if !running_as_root() {
        let mut command = Command::new(program);
        command.args(args);
        return command;
    }
    let sbin = [PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")];
    if let Some(runuser) = find_binary("runuser", &sbin) {
        let mut command = Command::new(runuser);
        command
            .args(["-u", POSTGRES_USER, "--"])
            .arg(program)
            .args(args);
        return command;
    }
    let mut script = shell_quote(program.as_os_str());
    for arg in args {
        script.push(' ');
        script.push_str(&shell_quote(arg.as_ref()));
    }
    let mut command = Command::new("su");
    command
        .args([POSTGRES_USER, "-s", "/bin/sh", "-c"])
        .arg(script);
    command
}

/// The command line a user can paste to run `program` the way [`postgres_command`] does.
pub(crate) fn postgres_command_line(program: &Path, args: &[&OsStr]) -> String {
    let mut line = String::new();
    if running_as_root() {
        line.push_str("runuser -u postgres -- ");
    }
    line.push_str(&shell_quote(program.as_os_str()));
    for arg in args {
        line.push(' ');
        line.push_str(&shell_quote(arg));
    }
    line
}

fn shell_quote(arg: &OsStr) -> String {
    let text = arg.to_string_lossy();
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.,:=@%+".contains(&b));
    if plain {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Runs `command` to completion, capturing its output.
pub(crate) fn run(command: &mut Command, what: &str) -> Result<Output, String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run {what} ({command:?}): {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Hands `path` (recursively) to the `postgres` user when this process is root.
pub(crate) fn give_to_postgres(path: &Path) -> Result<(), String> {
    if !running_as_root() {
        return Ok(());
    }
    let owner = format!("{POSTGRES_USER}:");
    run(
        Command::new("chown").arg("-R").arg(owner).arg(path),
        "chown to the postgres user (does the `postgres` OS user exist?)",
    )
    .map(drop)
}

/// A loopback TCP port nothing listens on right now.
pub(crate) fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
}

/// Whether `port` can be bound on the loopback interface.
pub(crate) fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Creates a fresh directory under the system temp dir, named after `prefix`.
pub(crate) fn unique_temp_dir(prefix: &str) -> Result<PathBuf, String> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir();
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("{prefix}-{}-{n}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    Err(format!(
        "cannot create a temporary directory named {prefix}-* in {}",
        base.display()
    ))
}

/// An exclusive lock between processes: a file created with `create_new`, removed on drop.
///
/// A lock file older than `stale_after` is taken to belong to a process that died and is
/// removed.
pub(crate) struct LockFile {
    path: PathBuf,
}

impl LockFile {
    pub(crate) fn acquire(
        path: PathBuf,
        timeout: Duration,
        stale_after: Duration,
    ) -> Result<LockFile, String> {
        let started = SystemTime::now();
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    // the pid is only informative; the lock is the file's existence
                    let _ = writeln!(file, "{}", std::process::id());
                    return Ok(LockFile { path });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let age = fs::metadata(&path)
                        .and_then(|meta| meta.modified())
                        .ok()
                        .and_then(|modified| modified.elapsed().ok());
                    if age.is_some_and(|age| age > stale_after) {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    if started.elapsed().is_ok_and(|waited| waited > timeout) {
                        return Err(format!(
                            "timed out waiting for the lock file {}; remove it if no test is running",
                            path.display()
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(format!("cannot create lock file {}: {e}", path.display())),
            }
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Reads a file to a string, or an empty string, for error messages.
pub(crate) fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(all(test, unix))]
mod tests {
    /// The install lock is never taken through a symbolic link planted at its path, and
    /// never truncates what it opens.
    #[test]
    fn the_install_lock_refuses_a_link_and_truncates_nothing() {
        let dir = std::env::temp_dir().join(format!("pgschemas-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let victim = dir.join("victim.conf");
        std::fs::write(&victim, "important\n").expect("victim");
        let lock = std::env::temp_dir().join("pgschemas-diesel-install-locktest.lock");
        let _ = std::fs::remove_file(&lock);
        std::os::unix::fs::symlink(&victim, &lock).expect("symlink");
        assert!(
            super::install_lock("locktest").is_err(),
            "a link is refused"
        );
        std::fs::remove_file(&lock).expect("remove the link");
        std::fs::write(&lock, "kept\n").expect("a plain file");
        drop(super::install_lock("locktest").expect("lock"));
        assert_eq!(std::fs::read_to_string(&lock).expect("read"), "kept\n");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("read"),
            "important\n"
        );
        let _ = std::fs::remove_file(&lock);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
