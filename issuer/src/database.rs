//! The shared store of issuer replicas (issue 14 item 6): PostgreSQL holds what is mutable —
//! the provenance log's records and signed tree heads, the Verifier's nonces (a nonce issued by
//! one replica is redeemed once at any), its AF_L1 epochs, and the mechanism-B attestation
//! results waiting to be redeemed (`redemption`) — so any replica serves any step
//! of a flow. The keys stay in the state directory the replicas share. Without a database
//! every role keeps its state as before: the log in `provenance.sqlite`, nonces and epochs in
//! memory.
//!
//! The blocking `postgres::Client` drives a tokio runtime of its own, which panics where a
//! runtime is entered: [`Postgres::run`] leaves the service's runtime for the call
//! ([`blocking`]). The service calls from its blocking pool, where nothing is entered and the
//! call runs as it is; a scoped thread per call (what this did before) cost an issuance
//! about 1 ms of processor time in thread creation (`bench/run replicas`).
//!
//! A replica keeps up to [`CONNECTIONS`] connections, each used by one call at a time; a call
//! takes a free one, or waits for one. A connection found closed (the server restarted, a
//! failover, an administrator's `pg_terminate_backend`) is opened again by the next call that
//! takes it: the call that saw it break fails (a 503 with `Retry-After`), the replica does not
//! stay broken until it is restarted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use postgres::{Client, NoTls};

mod tls;

/// Why the database could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseError {
    #[error("the database {url}: {what}")]
    Connect { url: String, what: String },
    #[error("the database {url}: {what}")]
    Query { url: String, what: String },
}

/// The connections a replica keeps to the database at most.
pub const CONNECTIONS: usize = 4;

/// The replicas' PostgreSQL database: a few connections, each used by one call at a time.
pub struct Postgres {
    clients: Vec<Mutex<Option<Client>>>,
    /// Where the next call starts looking for a free connection.
    next: AtomicUsize,
    /// How to connect again.
    config: postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// The URL without its password, for messages.
    shown: String,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").field("url", &self.shown).finish_non_exhaustive()
    }
}

/// `t` in milliseconds since the Unix epoch, as the tables store times.
pub(crate) fn unix_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// The SQLSTATE of a unique constraint's violation.
pub(crate) fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}

impl Postgres {
    /// Connects to `url`: over mutually authenticated TLS when it names the files
    /// (`sslrootcert`, `sslcert`, `sslkey`: see `database/tls.rs`), which a host that is not
    /// this machine's requires; plain TCP to a loopback address or a unix socket otherwise.
    pub fn connect(url: &str) -> Result<Self, DatabaseError> {
        let (plain, files) = tls::split(url).map_err(|what| DatabaseError::Connect { url: redacted(url), what })?;
        let mut config: postgres::Config = plain
            .parse()
            .map_err(|e: postgres::Error| DatabaseError::Connect { url: redacted(url), what: e.to_string() })?;
        let shown = shown(&config);
        let fail = |what: String| DatabaseError::Connect { url: shown.clone(), what };
        reachable(&config, &files).map_err(fail)?;
        let tls = files.any().then(|| files.connector()).transpose().map_err(fail)?;
        if tls.is_some() {
            config.ssl_mode(postgres::config::SslMode::Require);
        }
        let mut db = Self { clients: Vec::new(), next: AtomicUsize::new(0), config, tls, shown };
        // The first connection now, so that a wrong URL or an unreachable server is said at start.
        let first = db.open().map_err(|what| DatabaseError::Connect { url: db.shown.clone(), what })?;
        let slots = std::iter::once(Some(first)).chain(std::iter::repeat_with(|| None));
        db.clients = slots.take(CONNECTIONS).map(Mutex::new).collect();
        Ok(db)
    }

    /// A new connection, opened outside any tokio runtime ([`blocking`]); or why not.
    fn open(&self) -> Result<Client, String> {
        let (config, tls) = (&self.config, self.tls.clone());
        blocking(move || match tls {
            Some(tls) => config.connect(tls),
            None => config.connect(NoTls),
        })
        .map_err(|_| "the client panicked".to_string())?
        .map_err(|e| describe(&e))
    }

    /// The URL as messages show it (no password).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The first free connection's slot (so that a replica without contention keeps one
    /// connection), or, all busy, one of them in turn, waited for.
    fn take(&self) -> MutexGuard<'_, Option<Client>> {
        for slot in &self.clients {
            if let Ok(slot) = slot.try_lock() {
                return slot;
            }
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        self.clients[turn].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on a connection, outside any tokio runtime ([`blocking`]); a connection that
    /// is closed is opened again first, and one that broke during `f` is dropped.
    pub(crate) fn run<T: Send, E: Send + From<DatabaseError>>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, E> + Send,
    ) -> Result<T, E> {
        let query = |what: String| DatabaseError::Query { url: self.shown.clone(), what };
        let mut slot = self.take();
        if slot.as_ref().is_some_and(Client::is_closed) {
            close(slot.take());
        }
        let client = match slot.take() {
            Some(client) => client,
            None => self.open().map_err(query)?,
        };
        let client = slot.insert(client);
        let result = blocking(|| f(client)).map_err(|_| query("the client panicked".into()))?;
        if slot.as_ref().is_some_and(Client::is_closed) {
            close(slot.take());
        }
        result
    }

    /// Runs `schema` (idempotent DDL) in one transaction under the advisory lock `lock`, so
    /// that replicas starting together create it in turn.
    pub(crate) fn create_schema(&self, lock: i64, schema: &str) -> Result<(), DatabaseError> {
        self.run(|client| {
            let mut tx = client.transaction().map_err(|e| self.error(&e))?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock]).map_err(|e| self.error(&e))?;
            tx.batch_execute(schema).map_err(|e| self.error(&e))?;
            tx.commit().map_err(|e| self.error(&e))
        })
    }

    /// A query error, with the URL (no password).
    pub(crate) fn error(&self, e: &postgres::Error) -> DatabaseError {
        DatabaseError::Query { url: self.shown.clone(), what: describe(e) }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        close(self.clients.iter_mut().filter_map(|c| c.get_mut().unwrap_or_else(PoisonError::into_inner).take()));
    }
}

/// Runs `f`, which may drive a runtime of its own, where that is allowed: on this thread when
/// no runtime is entered here (a blocking-pool thread, a plain thread) or when it is a worker
/// of a multi-threaded runtime, which `block_in_place` leaves for the call; on a scoped thread
/// under a current-thread runtime, where leaving is impossible. A panic in `f` is its `Err`.
fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> std::thread::Result<T> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::CurrentThread) => std::thread::scope(|s| s.spawn(f).join()),
        _ => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tokio::task::block_in_place(f))),
    }
}

/// Drops `clients` on a thread of their own: a client's runtime must not be dropped inside the
/// service's runtime.
fn close(clients: impl IntoIterator<Item = Client>) {
    let clients: Vec<Client> = clients.into_iter().collect();
    if !clients.is_empty() {
        let _ = std::thread::spawn(move || drop(clients)).join();
    }
}

/// A PostgreSQL error with the server's message when there is one.
pub(crate) fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.code().code(), db.message());
    }
    // With its causes (a TLS handshake's says why the certificate was refused).
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(inner) = cause {
        text = format!("{text}: {inner}");
        cause = inner.source();
    }
    text
}

/// The database is reached over mutually authenticated TLS, or on this machine: a remote host
/// without the replica's client certificate and the CA that checks the server is refused
/// rather than spoken to in clear; PostgreSQL speaks no TLS on a unix socket.
fn reachable(config: &postgres::Config, files: &tls::TlsFiles) -> Result<(), String> {
    use postgres::config::Host;
    for host in config.get_hosts() {
        let name = match host {
            Host::Unix(path) if files.any() => {
                return Err(format!("TLS on the unix socket {}: PostgreSQL speaks TLS on TCP only", path.display()));
            }
            Host::Unix(_) => continue,
            Host::Tcp(name) => name,
        };
        let loopback = name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let mutual_tls = files.root.is_some() && files.mutual();
        if !(loopback || mutual_tls) {
            return Err(format!(
                "host `{name}` is not a loopback address: reach it over mutually authenticated TLS (add sslrootcert=CA.pem&sslcert=REPLICA.pem&sslkey=REPLICA.key to the URL), or use 127.0.0.1, ::1, localhost or a unix socket directory (host=/run/postgresql)"
            ));
        }
    }
    Ok(())
}

/// How messages name the database at `url`: `postgres://user@host:port/dbname`, never the
/// password, and whether it is reached over TLS.
pub fn display_url(url: &str) -> String {
    let Ok((plain, files)) = tls::split(url) else { return redacted(url) };
    let over = match (files.mutual(), files.any()) {
        (true, _) => " (mutual TLS)",
        (false, true) => " (TLS)",
        _ => "",
    };
    plain.parse::<postgres::Config>().map_or_else(|_| redacted(url), |config| shown(&config) + over)
}

/// `user@host:port/dbname` (never the password).
fn shown(config: &postgres::Config) -> String {
    use postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    format!(
        "postgres://{}@{}:{}/{}",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        ports.join(","),
        config.get_dbname().unwrap_or("")
    )
}

/// A URL that did not parse, without anything that may be a password.
fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://…@{host}"),
            None => url.to_string(),
        },
        None if url.contains("password") => "(a connection string with a password)".into(),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        let config: postgres::Config = "postgres://twi:s3cret@127.0.0.1:5433/twi".parse().unwrap();
        assert_eq!(shown(&config), "postgres://twi@127.0.0.1:5433/twi");
        assert!(!redacted("postgres://twi:s3cret@host:bad/twi").contains("s3cret"));
        let e = Postgres::connect("host=127.0.0.1 port=1 user=twi password=s3cret dbname=twi").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn remote_hosts_are_refused_without_mutual_tls() {
        let e = Postgres::connect("postgres://twi@db.example.org/twi").unwrap_err().to_string();
        assert!(e.contains("not a loopback address") && e.contains("sslcert=REPLICA.pem"), "{e}");
        // The server checked but the replica anonymous: not mutual, refused before connecting.
        let e = Postgres::connect("postgres://twi@db.example.org/twi?sslrootcert=/ca.pem").unwrap_err().to_string();
        assert!(e.contains("mutually authenticated TLS"), "{e}");
        assert!(Postgres::connect("host=/nonexistent user=twi").unwrap_err().to_string().contains("/nonexistent"));
        let e = Postgres::connect("host=/run/postgresql user=twi sslrootcert=/ca.pem").unwrap_err().to_string();
        assert!(e.contains("TLS on TCP only"), "{e}");
    }

    /// What the blocking client does on every call: drive a runtime of its own. Nested in an
    /// entered runtime this panics ("Cannot start a runtime from within a runtime").
    fn own_runtime() -> std::thread::ThreadId {
        let own = tokio::runtime::Builder::new_current_thread().build().unwrap();
        own.block_on(async { std::thread::current().id() })
    }

    fn multi_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap()
    }

    #[test]
    fn blocking_calls_run_where_a_runtime_of_their_own_is_allowed() {
        let here = std::thread::current().id();
        assert_eq!(blocking(own_runtime).unwrap(), here, "no runtime: on this thread");
        let service = multi_thread();
        // The service's blocking pool (where issuances run): on that thread, no new one.
        let pooled = service.block_on(async {
            tokio::task::spawn_blocking(|| (std::thread::current().id(), blocking(own_runtime).unwrap())).await
        });
        let (pool_thread, ran_on) = pooled.unwrap();
        assert_eq!(ran_on, pool_thread);
        // A worker of the service's runtime, and its block_on: leaves the runtime for the call.
        let worker = service.block_on(async { tokio::spawn(async { blocking(own_runtime).unwrap() }).await });
        assert!(worker.is_ok());
        assert!(service.block_on(async { blocking(own_runtime) }).is_ok());
        // A current-thread runtime cannot be left: a thread of its own.
        let single = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_ne!(single.block_on(async { blocking(own_runtime) }).unwrap(), here);
    }

    #[test]
    fn a_blocking_call_that_panics_is_an_error() {
        assert!(blocking(|| panic!("a client panicked")).is_err());
        let single = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(single.block_on(async { blocking(|| -> () { panic!("on its own thread") }) }).is_err());
    }
}
