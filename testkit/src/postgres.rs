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
        Self::start_with(false).0
    }

    /// As [`Cluster::start`], but TCP connections are accepted only over TLS with a client
    /// certificate of the cluster's CA whose CN is the user (`hostssl all all 127.0.0.1/32
    /// cert`; plain TCP has no `pg_hba.conf` line). The unix socket stays open to the tests'
    /// own `psql`.
    pub fn start_tls() -> (Self, ClusterTls) {
        let (cluster, tls) = Self::start_with(true);
        (cluster, tls.expect("the TLS files"))
    }

    fn start_with(tls: bool) -> (Self, Option<ClusterTls>) {
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
        let mut options = format!("-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off", cluster.socket_dir());
        let files = tls.then(|| cluster.tls_files(&mut options));
        let log = cluster.dir.path().join("server.log").display().to_string();
        cluster.run("pg_ctl", &["-D", &data, "-o", &options, "-l", &log, "-w", "-t", "60", "start"]);
        let createdb = Command::new(cluster.bin.join("createdb"))
            .args(["-h", &cluster.socket_dir(), "-p", &port.to_string(), "-U", "twi", "twi"])
            .output()
            .expect("cannot run createdb");
        check("createdb", &createdb);
        (cluster, files)
    }

    /// Makes the CA, server and client files (openssl), the server options that use them,
    /// and a `pg_hba.conf` that admits TCP over TLS with a client certificate only.
    fn tls_files(&self, options: &mut String) -> ClusterTls {
        let dir = self.dir.path().join("tls");
        std::fs::create_dir_all(&dir).expect("the TLS directory");
        let at = |name: &str| dir.join(name).display().to_string();
        let ca = make_ca(&dir, "ca", "twi test database CA");
        let other_ca = make_ca(&dir, "other-ca", "another CA");
        sign_leaf(
            &dir,
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
        );
        sign_leaf(&dir, "client", "/CN=twi", "extendedKeyUsage=clientAuth");
        let hba = "local all all trust\nhostssl all all 127.0.0.1/32 cert\n";
        std::fs::write(self.dir.path().join("data/pg_hba.conf"), hba).expect("pg_hba.conf");
        if self.as_postgres {
            let owner = Command::new("chown").args(["-R", "postgres:postgres"]).arg(self.dir.path()).status();
            assert!(owner.is_ok_and(|s| s.success()), "cannot chown the TLS files to postgres");
        }
        options.push_str(&format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c ssl_ca_file={}",
            at("server.pem"),
            at("server.key"),
            at("ca.pem")
        ));
        ClusterTls { ca, client_cert: dir.join("client.pem"), client_key: dir.join("client.key"), other_ca }
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

    /// `psql -c SQL` against the `twi` database (over the unix socket); its output.
    pub fn psql(&self, sql: &str) -> Output {
        Command::new(self.bin.join("psql"))
            .args(["-h", &self.socket_dir(), "-p", &self.port.to_string(), "-U", "twi", "-d", "twi"])
            .args(["-v", "ON_ERROR_STOP=1"])
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

    /// The server's main process (the first line of `postmaster.pid`), whose backends are
    /// its children.
    pub fn server_pid(&self) -> Option<u32> {
        let pid = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid")).ok()?;
        pid.lines().next()?.trim().parse().ok()
    }
}

/// The TLS files of a [`Cluster::start_tls`] cluster.
#[derive(Debug, Clone)]
pub struct ClusterTls {
    /// The CA the server's certificate (for 127.0.0.1) and the client certificate chain to.
    pub ca: PathBuf,
    /// The client certificate of user `twi` and its key (mode 0600).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed neither.
    pub other_ca: PathBuf,
}

impl ClusterTls {
    /// `url` with the TLS parameters libpq names: the CA and, if `client`, the certificate.
    pub fn url(&self, url: &str, client: bool) -> String {
        let mut url = format!("{url}?sslmode=verify-full&sslrootcert={}", self.ca.display());
        if client {
            url += &format!("&sslcert={}&sslkey={}", self.client_cert.display(), self.client_key.display());
        }
        url
    }
}

/// A self-signed CA `NAME.pem` (key `NAME.key`) in `dir`, named `cn`.
fn make_ca(dir: &Path, name: &str, cn: &str) -> PathBuf {
    let (key, pem) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pem")));
    let out = crate::tools::openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={cn}"),
        "-keyout",
        &key.display().to_string(),
        "-out",
        &pem.display().to_string(),
    ]);
    check("openssl req -x509", &out);
    pem
}

/// `NAME.pem` (key `NAME.key`, mode 0600) for `subject`, signed by `ca.pem` in `dir`, with the
/// extensions `extensions` (lines of an openssl extension file).
fn sign_leaf(dir: &Path, name: &str, subject: &str, extensions: &str) {
    use std::os::unix::fs::PermissionsExt;
    let at = |file: &str| dir.join(file).display().to_string();
    let (key, csr, pem, ext) = (
        at(&format!("{name}.key")),
        at(&format!("{name}.csr")),
        at(&format!("{name}.pem")),
        at(&format!("{name}.ext")),
    );
    std::fs::write(&ext, format!("basicConstraints=CA:FALSE\n{extensions}\n")).expect("the extension file");
    let out = crate::tools::openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        subject,
        "-keyout",
        &key,
        "-out",
        &csr,
    ]);
    check("openssl req", &out);
    let out = crate::tools::openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &at("ca.pem"),
        "-CAkey",
        &at("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &ext,
        "-out",
        &pem,
    ]);
    check("openssl x509 -req", &out);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod 600 the key");
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
