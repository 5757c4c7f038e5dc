//! PostgreSQL's own tools for a throwaway cluster: finding `initdb` and `pg_ctl`, creating
//! the data directory, the command that starts its server.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::process;

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
