//! The Verifier's attestation results in both serializations draft-ietf-rats-ear-04 defines:
//! the issuance answers carry the JWT (`eat+jwt`); a caller that wants the CWT
//! (`application/eat+cwt`, COSE_Sign1) asks the Verifier to re-sign the same result as one
//! (`twi run --ear-format cwt|both`, `POST /v1/verifier/ear-cwt`). The Verifier only converts
//! a result it signed itself and that has not expired.

use crate::error::IssuerError;
use crate::issuer::Issuer;

impl Issuer {
    /// The attestation result `jwt` (this issuer's Verifier's) as a CWT.
    pub fn attestation_result_cwt(&self, jwt: &str) -> Result<Vec<u8>, IssuerError> {
        self.verifier.result_as_cwt(jwt, (self.clock)())
    }
}
