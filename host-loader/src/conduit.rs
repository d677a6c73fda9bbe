//! The workload's connections on the host's side: TCP to the targets it names, for `twi run`.
//! The host is only a conduit: it relays bytes the workload protects with TLS, so nothing here
//! looks at them; it bounds how long it waits, so a silent target cannot hang the run.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::bridge::{Conduit, ConduitError};

/// How long to wait for a connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read may wait for the first byte.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Open connections at once.
const MAX_CONNECTIONS: usize = 16;

/// TCP connections, by the guest's connection id.
#[derive(Debug, Default)]
pub struct TcpConduit {
    streams: HashMap<u16, TcpStream>,
}

fn io(e: std::io::Error) -> ConduitError {
    ConduitError(e.to_string())
}

impl TcpConduit {
    fn stream(&mut self, id: u16) -> Result<&mut TcpStream, ConduitError> {
        self.streams.get_mut(&id).ok_or_else(|| ConduitError(format!("connection {id} is not open")))
    }
}

impl Conduit for TcpConduit {
    fn connect(&mut self, id: u16, host_port: &str) -> Result<(), ConduitError> {
        if self.streams.len() >= MAX_CONNECTIONS {
            return Err(ConduitError(format!("{MAX_CONNECTIONS} connections are open already")));
        }
        let address = host_port
            .to_socket_addrs()
            .map_err(io)?
            .next()
            .ok_or_else(|| ConduitError(format!("{host_port} resolves to no address")))?;
        let stream = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT).map_err(io)?;
        stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        self.streams.insert(id, stream);
        Ok(())
    }

    fn send(&mut self, id: u16, data: &[u8]) -> Result<(), ConduitError> {
        self.stream(id)?.write_all(data).map_err(io)
    }

    fn receive(&mut self, id: u16, max: usize) -> Result<Vec<u8>, ConduitError> {
        let stream = self.stream(id)?;
        let mut buf = vec![0u8; max];
        match stream.read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(ConduitError(format!("the target sent nothing for {} s", READ_TIMEOUT.as_secs())))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn close(&mut self, id: u16) {
        self.streams.remove(&id);
    }

    fn now(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn relays_bytes_both_ways_and_reports_the_end() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut hello = [0u8; 5];
            socket.read_exact(&mut hello).unwrap();
            socket.write_all(&[hello.as_slice(), b" back"].concat()).unwrap();
        });
        let mut conduit = TcpConduit::default();
        conduit.connect(1, &format!("127.0.0.1:{port}")).unwrap();
        conduit.send(1, b"hello").unwrap();
        let mut got = Vec::new();
        while got.len() < 10 {
            let data = conduit.receive(1, 64).unwrap();
            assert!(!data.is_empty(), "ended early");
            got.extend(data);
        }
        assert_eq!(got, b"hello back");
        server.join().unwrap();
        assert_eq!(conduit.receive(1, 64).unwrap(), b"", "the end of the stream is an empty read");
        conduit.close(1);
        assert!(conduit.send(1, b"x").is_err());
        assert!(conduit.connect(2, "127.0.0.1:1").is_err(), "nothing listens on port 1");
    }
}
