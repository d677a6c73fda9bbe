//! A throwaway PostgreSQL cluster for tests (issue 14 item 6): Debian's server binaries
//! (`/usr/lib/postgresql/*/bin`, installed by `./qemu/install-deps`), `initdb` into a temporary
//! directory, `pg_ctl start` on a free loopback port with the unix socket in that directory,
//! stopped (immediate mode) and removed on drop. PostgreSQL refuses to run as root: as root
//! (CI) the cluster runs as the `postgres` user (`runuser`), its directory chowned to it.
//! A missing server fails with the install command, never a skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster; `url()` connects to its `twi` database as its superuser `twi`.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// The newest installed server's binary directory.
fn server_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    found.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    found.pop().unwrap_or_else(|| {
        panic!("PostgreSQL's server (/usr/lib/postgresql/*/bin/initdb) is not installed: run ./qemu/install-deps")
    })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Cluster {
    /// Starts a cluster with a database `twi` owned by superuser `twi` (trust authentication,
    /// loopback only).
    pub fn start() -> Self {
        let bin = server_bin();
        let as_postgres = is_root();
        let dir = tempfile::Builder::new().prefix("twi-pg-").tempdir().expect("a temporary directory");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let cluster = Self { dir, bin, port, as_postgres };
        if as_postgres {
            let owner = Command::new("chown").args(["-R", "postgres:postgres"]).arg(cluster.dir.path()).status();
            assert!(owner.is_ok_and(|s| s.success()), "cannot chown the cluster directory to postgres");
        }
        let data = cluster.data();
        cluster.run("initdb", &["-D", &data, "-U", "twi", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        let options = format!("-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off", cluster.socket_dir());
        let log = cluster.dir.path().join("server.log").display().to_string();
        cluster.run("pg_ctl", &["-D", &data, "-o", &options, "-l", &log, "-w", "-t", "60", "start"]);
        let createdb = Command::new(cluster.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "twi", "twi"])
            .output()
            .expect("cannot run createdb");
        check("createdb", &createdb);
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn socket_dir(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// Runs a server binary (as `postgres` when we are root).
    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let path = self.bin.join(tool);
        let output = if self.as_postgres {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&path).args(args).output()
        } else {
            Command::new(&path).args(args).output()
        }
        .unwrap_or_else(|e| panic!("cannot run {}: {e} (run ./qemu/install-deps)", path.display()));
        check(tool, &output);
        output
    }

    /// `postgres://twi@127.0.0.1:PORT/twi`.
    pub fn url(&self) -> String {
        format!("postgres://twi@127.0.0.1:{}/twi", self.port)
    }

    /// `psql -c SQL` against the `twi` database; its output.
    pub fn psql(&self, sql: &str) -> Output {
        Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "twi", "-d", "twi", "-v", "ON_ERROR_STOP=1"])
            .args(["-At", "-c", sql])
            .output()
            .expect("cannot run psql")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn check(tool: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{tool} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let path = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&path).args(args).output()
        } else {
            Command::new(&path).args(args).output()
        };
    }
}
