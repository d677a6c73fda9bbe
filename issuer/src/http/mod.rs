//! The issuer's roles over HTTP (`twi serve`): the same asks the loader makes of
//! [`crate::Issuer`] in-process, as JSON endpoints, so that the Verifier, the Credential
//! Authority and the Key Store can run as a service that `twi run --issuer-url` talks to.
//!
//! Format: the [`wire`] types, shared with the loader's client. Every refusal is a 4xx with
//! `{"error": "<reason>"}` saying what to fix; the issuer's own failures are 5xx with the same
//! shape. Request bodies are limited to [`MAX_BODY`] bytes (413 beyond), and a request must be
//! received and answered within [`REQUEST_TIMEOUT`] (408 beyond: a body sent too slowly).
//!
//! | method and path | role | body → answer |
//! | --- | --- | --- |
//! | `GET /v1/health` | any | `{"status":"ok","roles":[..]}` |
//! | `GET /metrics` | any | the process's counters, Prometheus text format 0.0.4 ([`crate::metrics`]): signatures, X.509 certificates, log records and signed tree heads; counts only |
//! | `GET /v1/keys` | any | JWKS of the served roles' JSON signing keys (Verifier: EAR; CA: WIT; log; Key Store: release receipts) |
//! | `GET /v1/ca/certificate` | CA | the CA certificate (PEM) credentials chain to |
//! | `POST /v1/verifier/ear-cwt` | Verifier | [`wire::EarCwtRequest`] (an attestation result this Verifier signed, unexpired) → [`wire::EarCwtResponse`] (the same result as a CWT) |
//! | `GET /v1/log/checkpoint` | Log | the provenance log's checkpoint: a C2SP signed note (tlog-checkpoint), `text/plain` |
//! | `GET /v1/log/key` | Log | the checkpoint's C2SP verifier key |
//! | `GET /v1/log/proof/{credential id}` | Log | the credential's record (`leaf`), its RFC 9162 inclusion proof and the checkpoint it proves against; 404 if not logged |
//! | `GET /v1/log/consistency/{first}/{second}` | Log | the RFC 9162 consistency proof between two tree sizes |
//! | `POST /v1/log/statements` | Log | a CA process (client certificate under the operator CA; 403 without): [`crate::log_peer::SignRequest`], one issuance's records → [`crate::log_peer::SignResponse`], each signed as a statement (400 for a record that is not well-formed) |
//! | `POST /v1/log/append` | Log | a CA process: [`crate::log_peer::AppendRequest`], statements this log signed → the issuance's `provenance` (signed tree head, inclusion proofs, receipts), appended in one transaction (400 for a statement it did not sign); its `binding`, kept in the private binding table for the statements sealed to an auditor key |
//! | `POST /v1/log/binding` | Log | a CA process renewing: [`crate::log_peer::BindingRequest`] → [`crate::log_peer::BindingAnswer`], the binding a sealed record holds, from the private binding table (404 for an unlogged credential); served to no one else |
//! | `GET /.well-known/spiffe-bundle` | CA | the trust domain's SPIFFE bundle ([`crate::bundle`]): the CA (`x509-svid`) and the WIT key (`wit-svid`) only |
//! | `POST /v1/challenge` | Verifier | [`wire::ChallengeRequest`] → [`wire::ChallengeResponse`] (nonce or AF_L1 epoch id) |
//! | `POST /v1/verifier/evidence` | Verifier | [`wire::VerifierRequest`]: mechanism `a` → [`wire::CredentialResponse`] (the Verifier asked the CA); `b` → [`wire::AttestationResultResponse`] (signed EAR binding the key); `c`, `d` (a CA or Key Store process, with a client certificate under the operator CA) → the same, for that role to redeem |
//! | `POST /v1/ca/credential` | CA | [`wire::CredentialAuthorityRequest`]: mechanism `c` (evidence; the CA calls the Verifier), `b` (EAR + proof of possession) or `a` (a Verifier process with a client certificate under the operator CA: evidence + its EAR) → [`wire::CredentialResponse`] |
//! | `GET /.well-known/est/cacerts` | CA | EST (RFC 7030, [`est`]): the CA certificate as base64 certs-only PKCS#7 |
//! | `POST /.well-known/est/simpleenroll` | CA (+ Verifier) | EST: base64 DER PKCS#10, the evidence in the `TWI-Evidence` header → the issued certificate as certs-only PKCS#7 (mechanism C's appraisal) |
//! | `POST /.well-known/est/simplereenroll` | CA (+ Verifier) | EST: as simpleenroll, renewing the credential the `TWI-Renewal-Of` header names (serial or jti) under the policy's renewal rules |
//! | `GET /.well-known/est/csrattrs` | CA | EST: the CSR attributes (a P-384 key, ecdsa-with-SHA384), base64 DER |
//! | `POST /v1/key-store/provision` | Key Store (+ CA) | [`wire::ProvisionRequest`] → [`wire::ProvisionResponse`]: mechanism D's workload-owner step (the CA certifies a fresh key for the workload the policy admits; kept if one is provisioned already) |
//! | `POST /v1/key-store/release` | Key Store (+ Verifier) | [`wire::KeyReleaseRequest`] (evidence binding the ephemeral HPKE key under `Purpose::KeyRelease`) → [`wire::KeyReleaseResponse`] (the provisioned credential, the key HPKE-sealed to that ephemeral key, the signed receipt) |
//!
//! Each role signs with its own key, as in-process: the CA's X.509 key (`issuer-ca.key.pem`)
//! and WIT key (`wit-key.pem`), the Verifier's EAR key (`verifier-key.pem`) and AF_L1 epoch
//! key (`epoch-key.pem`), the provenance log's key (`log-key.pem`), the Key Store's receipt
//! key (`keystore-key.pem`); the CA checks an EAR under the Verifier's public key only.
//!
//! The roles serve together by default; `--roles` chooses which a process exposes, and an
//! endpoint of a role it does not serve answers 501 naming the role. With the roles in
//! separate processes they share the state and the database, not memory, and call each other
//! over mutual TLS ([`peer`]), presenting a certificate under the other's operator CA: B's CA
//! redeems the result a Verifier process kept; C's CA and D's Key Store ask a Verifier process
//! (`twi serve --verifier-url`; `POST /v1/verifier/evidence` with mechanism `c` or `d`), and
//! A's Verifier asks a CA process (`--ca-url`; `POST /v1/ca/credential` with mechanism `a`, the
//! evidence and its result); the asking side redeems the Verifier's kept result once. The
//! `log` role serves the log's checkpoints and proofs, and signs and appends the records of a
//! CA process that does not hold the log's keys (`--log-url`; `POST /v1/log/statements`, then
//! `POST /v1/log/append`). D's Key Store provisions with the CA of its own process.
//!
//! Limits (`listener`, `limits`): a TLS handshake within 10 s, request headers within the idle
//! timeout (which also closes idle connections), a cap on connections (503 with `Retry-After`
//! beyond), challenges per client address (429 with `Retry-After`), every nonce outstanding
//! (503 with `Retry-After`); a handler's panic answers 500 without its text.
//!
//! Transport ([`tls`], `listener`): TLS 1.3 on every listener, the server certificate from
//! files or issued by the service's CA; plain HTTP only on loopback when the operator asks.
//! Provisioning is the workload owner's step: it needs an [`Operator`], which only the TLS
//! listener attaches, for a client certificate under the operator CA (401 without).
//!
//! By job: `api` (roles served, error answers), `handlers` (one function per endpoint),
//! `service` (the router), [`est`] (RFC 7030's two operations), `listener` (connections, TLS
//! handshakes, limits), [`tls`] (certificates), [`wire`] (the bodies).

pub mod access;
mod api;
mod asking;
pub mod est;
mod handlers;
pub mod idempotency;
mod key_store_ca;
mod limits;
mod listener;
pub mod log;
pub mod peer;
pub mod results;
mod service;
pub mod tls;
pub mod wire;

pub use crate::key_store_ca::KeyStoreCaPeer;
pub use api::{MAX_BODY, Roles};
pub use limits::RateLimit;
pub use listener::{ClientAddr, Limits, Transport, serve_until};
pub use peer::{CaPeer, LogPeer, PeerError, Peers, VerifierPeer};
pub use service::{REQUEST_TIMEOUT, RouterLimits, router, router_calling, router_with, router_with_timeout, serve};
pub use tls::{Operator, TlsSettings};
