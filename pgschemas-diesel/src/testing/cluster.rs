//! PostgreSQL's own tools for a throwaway cluster: finding `initdb` and `pg_ctl`, creating
//! the data directory, the command that starts its server, the watchdog that stops it.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::process;

/// How often starting a server on a fresh free port is tried.
const START_ATTEMPTS: u32 = 3;

/// `initdb` and `pg_ctl`, from the same installation.
pub(crate) struct PgBinaries {
    pub(crate) initdb: PathBuf,
    pub(crate) pg_ctl: PathBuf,
}

impl PgBinaries {
    /// Finds them in `PATH` or in `/usr/lib/postgresql/*/bin` (the newest version first);
    /// `None` when PostgreSQL is not installed.
    pub(crate) fn find() -> Option<PgBinaries> {
        // Debian keeps them out of PATH, one directory per major version: prefer the newest.
        let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse().ok()?;
                Some((version, entry.path().join("bin")))
            })
            .collect();
        versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
        let extra: Vec<PathBuf> = versioned.into_iter().map(|(_, dir)| dir).collect();
        let initdb = process::find_binary("initdb", &extra)?;
        // pg_ctl must match initdb's version: look next to it first
        let pg_ctl = initdb
            .parent()
            .map(|dir| dir.join("pg_ctl"))
            .filter(|path| path.is_file())
            .or_else(|| process::find_binary("pg_ctl", &extra))?;
        Some(PgBinaries { initdb, pg_ctl })
    }

    /// Runs `initdb` into `data` (user `postgres`, trust authentication, UTF-8) from `base`,
    /// then appends to its `postgresql.conf`: the comment `# title`, a loopback listen
    /// address, `base` as the socket directory, the `extra` settings, durability off.
    pub(crate) fn init(
        &self,
        base: &Path,
        data: &Path,
        title: &str,
        extra: &str,
    ) -> Result<(), String> {
        process::run(
            process::postgres_command(
                &self.initdb,
                [
                    OsStr::new("-D"),
                    data.as_os_str(),
                    OsStr::new("--username=postgres"),
                    OsStr::new("--auth=trust"),
                    OsStr::new("--encoding=UTF8"),
                    OsStr::new("--no-sync"),
                ],
            )
            .current_dir(base),
            "initdb",
        )?;
        let socket_dir = base.display().to_string().replace('\'', "''");
        let conf = data.join("postgresql.conf");
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .map_err(|e| format!("cannot open {}: {e}", conf.display()))?;
        write!(
            file,
            "\n# {title}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{socket_dir}'\n\
             {extra}fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        )
        .map_err(|e| format!("cannot write {}: {e}", conf.display()))
    }

    /// Starts the cluster in `data` on a free loopback port (another one when a process
    /// takes the port first), logging to `log`; `configure` adjusts the `pg_ctl start`
    /// command (its environment). Returns the port.
    pub(crate) fn start_on_free_port(
        &self,
        data: &Path,
        log: &Path,
        configure: impl Fn(&mut Command),
    ) -> Result<u16, String> {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = process::free_port()?;
            let mut command = self.start_command(data, log, port);
            configure(&mut command);
            match process::run(&mut command, "pg_ctl start") {
                Ok(_) => return Ok(port),
                Err(e) => {
                    last = format!(
                        "{e}\nserver log ({}):\n{}",
                        log.display(),
                        process::tail(&process::read_lossy(log), 10)
                    );
                }
            }
        }
        Err(last)
    }

    /// `pg_ctl start` of the cluster in `data` on `port`, logging to `log`: waits up to 60 s
    /// for the server to accept connections.
    pub(crate) fn start_command(&self, data: &Path, log: &Path, port: u16) -> Command {
        let options = format!("-p {port}");
        let mut command = process::postgres_command(
            &self.pg_ctl,
            [
                OsStr::new("start"),
                OsStr::new("-w"),
                OsStr::new("-t"),
                OsStr::new("60"),
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("-l"),
                log.as_os_str(),
                OsStr::new("-o"),
                OsStr::new(&options),
            ],
        );
        command.current_dir(data.parent().unwrap_or(data));
        command
    }
}

/// A shell, in a process group of its own (a Ctrl-C of the tests does not reach it), that
/// waits for its stdin to close, then stops every server whose data directory is directly
/// under `base` and removes `base`. Closing its stdin (or the exit of this process, however
/// it exits) starts the cleanup; waiting for the child waits for it to finish.
pub(crate) fn spawn_watchdog(binaries: &PgBinaries, base: &Path) -> Result<Child, String> {
    let script = "trap '' HUP INT QUIT TERM; cat >/dev/null; \
                  for d in \"$2\"/*/; do \
                  if [ -f \"${d}postmaster.pid\" ]; then \"$1\" -D \"$d\" -m immediate stop; fi; \
                  done; rm -rf \"$2\"";
    let mut command = process::postgres_command(
        Path::new("/bin/sh"),
        [
            OsStr::new("-c"),
            OsStr::new(script),
            OsStr::new("sh"),
            binaries.pg_ctl.as_os_str(),
            base.as_os_str(),
        ],
    );
    command
        .current_dir(base)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    command
        .spawn()
        .map_err(|e| format!("cannot start the cleanup watchdog: {e}"))
}
