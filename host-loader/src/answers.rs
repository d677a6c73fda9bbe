//! What the issuer's roles answer, whichever way they are reached (in process or `twi serve`):
//! a credential ([`Obtained`]) or the reason they refused ([`Refusal`], and for TACRA's
//! Initiate [`Declined`] with the error code the guest gets). The bridge and the HTTP client
//! both speak these; neither imports the other for them.

use twi_issuer::Issued;
use twi_issuer::Rejection;
use twi_issuer::http::wire::CredentialResponse;
use twi_issuer::policy::TargetRefusal;
use twi_proto::msg::ErrorCode;

/// A credential the issuer returned, whichever way it was reached.
#[derive(Debug, Clone)]
pub struct Obtained {
    pub certificate_der: Vec<u8>,
    pub credential: CredentialResponse,
}

impl Obtained {
    /// What the embedded issuer issued, in the form the service answers with.
    pub fn from_issued(issued: &Issued) -> Self {
        Self { certificate_der: issued.certificate_der.clone(), credential: CredentialResponse::new(issued) }
    }

    pub(crate) fn from_response(credential: CredentialResponse) -> std::result::Result<Self, String> {
        let (label, der) = der::pem::decode_vec(credential.certificate_pem.as_bytes())
            .map_err(|e| format!("the issuer's certificate_pem is not PEM: {e}"))?;
        if label != "CERTIFICATE" {
            return Err(format!("the issuer's certificate_pem holds a {label}, not a CERTIFICATE"));
        }
        Ok(Self { certificate_der: der, credential })
    }
}

/// Why a role refused (or could not be reached), in its own words: the bridge passes it to the
/// guest and to the user unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

impl From<Rejection> for Refusal {
    fn from(rejection: Rejection) -> Self {
        Self(rejection.to_string())
    }
}

/// Why the issuer answered an Initiate with no Challenge: TACRA's reason (the guest gets it as
/// its error code) and the words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{refusal}")]
pub struct Declined {
    /// [`ErrorCode::InvalidTarget`], [`ErrorCode::UnsupportedType`], [`ErrorCode::RejectedHint`]
    /// or [`ErrorCode::Internal`].
    pub code: ErrorCode,
    pub refusal: Refusal,
}

impl From<Refusal> for Declined {
    fn from(refusal: Refusal) -> Self {
        Self { code: ErrorCode::Internal, refusal }
    }
}

impl From<Rejection> for Declined {
    fn from(rejection: Rejection) -> Self {
        let code = match &rejection {
            Rejection::Target(TargetRefusal::NotServed { .. }) => ErrorCode::InvalidTarget,
            Rejection::Target(TargetRefusal::UnsupportedType { .. }) => ErrorCode::UnsupportedType,
            Rejection::Target(TargetRefusal::RejectedHint { .. }) => ErrorCode::RejectedHint,
            _ => ErrorCode::Internal,
        };
        Self { code, refusal: rejection.into() }
    }
}
