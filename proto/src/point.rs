//! Public keys as SEC1 uncompressed points, `0x04 ‖ X ‖ Y`: the one form TWI's formats carry
//! (the vault's public keys, HPKE's `enc`, the manifest's issuer anchor, SubjectPublicKeyInfo
//! in the credentials and requests) and the only one TLS 1.3 allows (RFC 8446 §4.2.8.2).
//!
//! Read and written from the affine coordinates rather than through `sec1::EncodedPoint`: the
//! latter accepts compressed and compact points too, which links the curve's square root
//! (5.3 KB of the guest's ROM for P-384) and, through its `expect`, the `der` and `const-oid`
//! crates' error formatting (issue 17). Nothing TWI reads is compressed, so nothing is lost.

use p384::elliptic_curve::array::typenum::Unsigned;
use p384::elliptic_curve::point::AffineCoordinates;
use p384::elliptic_curve::{CurveArithmetic, FieldBytes, FieldBytesSize, PublicKey};

/// SEC1's tag of an uncompressed point.
const UNCOMPRESSED: u8 = 0x04;

/// The length of a P-384 public key as an uncompressed point.
pub const P384_UNCOMPRESSED_LEN: usize = 97;

/// The public key `bytes` holds as an uncompressed point of curve `C`: the tag 0x04, then X and
/// Y of the field's size each, on the curve and not the identity. `None` for anything else,
/// compressed points included.
pub fn public_key_from_uncompressed<C>(bytes: &[u8]) -> Option<PublicKey<C>>
where
    C: CurveArithmetic,
    C::AffinePoint: AffineCoordinates<FieldRepr = FieldBytes<C>>,
{
    let size = FieldBytesSize::<C>::USIZE;
    let (&UNCOMPRESSED, coordinates) = bytes.split_first()? else { return None };
    if coordinates.len() != 2 * size {
        return None;
    }
    let (x, y) = coordinates.split_at(size);
    let (x, y) = (FieldBytes::<C>::try_from(x).ok()?, FieldBytes::<C>::try_from(y).ok()?);
    let point: Option<C::AffinePoint> = C::AffinePoint::from_coordinates(&x, &y).into();
    PublicKey::from_affine(point?).ok()
}

/// A P-384 public key from its uncompressed point (see [`public_key_from_uncompressed`]).
pub fn p384_from_uncompressed(bytes: &[u8]) -> Option<p384::PublicKey> {
    public_key_from_uncompressed::<p384::NistP384>(bytes)
}

/// The P-384 ECDSA verifying key `bytes` holds as an uncompressed point.
pub fn p384_verifying_key(bytes: &[u8]) -> Option<p384::ecdsa::VerifyingKey> {
    p384_from_uncompressed(bytes).map(p384::ecdsa::VerifyingKey::from)
}

/// `key` as an uncompressed point, `0x04 ‖ X ‖ Y`.
pub fn p384_uncompressed(key: &p384::PublicKey) -> [u8; P384_UNCOMPRESSED_LEN] {
    let point = key.as_affine();
    let mut out = [0u8; P384_UNCOMPRESSED_LEN];
    out[0] = UNCOMPRESSED;
    out[1..49].copy_from_slice(&point.x());
    out[49..].copy_from_slice(&point.y());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::elliptic_curve::sec1::ToSec1Point;

    fn key() -> p384::PublicKey {
        p384::SecretKey::from_slice(&[0x42; 48]).unwrap().public_key()
    }

    #[test]
    fn an_uncompressed_point_round_trips_as_sec1_writes_it() {
        let sec1 = key().to_sec1_point(false);
        assert_eq!(p384_uncompressed(&key()).as_slice(), sec1.as_bytes());
        assert_eq!(p384_from_uncompressed(sec1.as_bytes()), Some(key()));
    }

    #[test]
    fn anything_but_an_uncompressed_point_on_the_curve_is_refused() {
        let good = p384_uncompressed(&key());
        let compressed = key().to_sec1_point(true);
        assert_eq!(p384_from_uncompressed(compressed.as_bytes()), None);
        assert_eq!(p384_from_uncompressed(&good[..96]), None);
        assert_eq!(p384_from_uncompressed(&[good.as_slice(), &[0]].concat()), None);
        assert_eq!(p384_from_uncompressed(&[]), None);
        let mut tagged = good;
        tagged[0] = 0x06;
        assert_eq!(p384_from_uncompressed(&tagged), None);
        let mut off_curve = good;
        off_curve[96] ^= 1;
        assert_eq!(p384_from_uncompressed(&off_curve), None);
        let mut identity = [0u8; P384_UNCOMPRESSED_LEN];
        identity[0] = UNCOMPRESSED;
        assert_eq!(p384_from_uncompressed(&identity), None);
    }
}
