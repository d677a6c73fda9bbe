//! The guest's decoder of the [`Message`]s the host sends, written out over
//! [`minicbor::Decoder`] (issue 17: the derived decoder of these nine messages and minicbor's
//! generic `skip` were 24 KB of the runtime's ROM; this is a fraction of it).
//!
//! It accepts exactly what the derived [`Message`] decoder accepts and yields the same value
//! (the tests decode every message kind, every byte flip and every truncation of them both
//! ways and compare): `[index, {key: value, …}, ignored…]`, map keys any CBOR integer, unknown
//! keys skipped, a repeated key's last value kept, a missing `Option` field `None` (as is
//! `null`), a missing `#[cbor(default)]` field its default, any other missing field an error.
//! It runs after [`super::wire`]'s shape check, so every length is definite and no item is
//! tagged; it still returns `None` rather than panicking on any input.

use alloc::string::String;
use alloc::vec::Vec;

use minicbor::Decoder;

use super::wire::skip_items;
use super::{
    AttestationResult, Challenge, Connected, Credential, DoorbellKind, DoorbellResponse, ErrorCode, ErrorMsg,
    Freshness, KeyRelease, Message, Received, Time,
};

/// Decodes one message the host sends, `None` if `payload` is not one.
pub(super) fn decode(payload: &[u8]) -> Option<Message> {
    let mut d = Decoder::new(payload);
    // A flat enum: a definite, non-empty array; the index, then the variant's one field;
    // further elements are skipped.
    let len = d.array().ok()??;
    if len == 0 {
        return None;
    }
    let index = int(&mut d)?;
    if len == 1 {
        return None;
    }
    let d = &mut d;
    let msg = match index {
        1 => Message::Challenge(challenge(d)?),
        3 => Message::DoorbellResponse(doorbell_response(d)?),
        5 => Message::Credential(credential(d)?),
        6 => Message::Error(error(d)?),
        9 => Message::AttestationResult(AttestationResult { ear: one_field(d, string)? }),
        11 => Message::KeyRelease(key_release(d)?),
        13 => Message::Connected(Connected { id: one_field(d, u16)? }),
        16 => Message::Received(received(d)?),
        19 => Message::Time(Time { unix_seconds: one_field(d, u64)? }),
        _ => return None,
    };
    skip(d, len - 2)?;
    Some(msg)
}

/// Reads a map whose keys `0..fields` are the struct's fields: `field(key, d)` reads the value
/// of a known key; the value of any other integer key is skipped.
fn map(d: &mut Decoder<'_>, fields: i64, field: &mut dyn FnMut(i64, &mut Decoder<'_>) -> Option<()>) -> Option<()> {
    let entries = d.map().ok()??;
    for _ in 0..entries {
        let key = int(d)?;
        if (0..fields).contains(&key) { field(key, d)? } else { skip(d, 1)? }
    }
    Some(())
}

/// A struct of one required field, key 0.
fn one_field<T>(d: &mut Decoder<'_>, read: fn(&mut Decoder<'_>) -> Option<T>) -> Option<T> {
    let mut value = None;
    map(d, 1, &mut |_, d| {
        value = Some(read(d)?);
        Some(())
    })?;
    value
}

fn challenge(d: &mut Decoder<'_>) -> Option<Challenge> {
    let (mut nonce, mut key_release, mut freshness) = (None, None, None);
    map(d, 3, &mut |key, d| {
        match key {
            0 => nonce = Some(bytes(d)?),
            1 => key_release = Some(flag(d)?),
            _ => freshness = Some(*Freshness::ALL.get(index(d)?)?),
        }
        Some(())
    })?;
    Some(Challenge {
        nonce: nonce?,
        key_release: key_release.unwrap_or_default(),
        freshness: freshness.unwrap_or_default(),
    })
}

fn doorbell_response(d: &mut Decoder<'_>) -> Option<DoorbellResponse> {
    let (mut kind, mut status, mut response, mut certificates) = (None, None, None, None);
    map(d, 4, &mut |key, d| {
        match key {
            0 => kind = Some(doorbell_kind(d)?),
            1 => status = Some(u64(d)?),
            2 => response = Some(bytes(d)?),
            _ => certificates = Some(nullable(d, bytes)?),
        }
        Some(())
    })?;
    Some(DoorbellResponse { kind: kind?, status: status?, response: response?, certificates: certificates.flatten() })
}

fn credential(d: &mut Decoder<'_>) -> Option<Credential> {
    let (mut certificate, mut workload_id, mut attestation_result, mut wit) = (None, None, None, None);
    map(d, 4, &mut |key, d| {
        match key {
            0 => certificate = Some(bytes(d)?),
            1 => workload_id = Some(string(d)?),
            2 => attestation_result = Some(nullable(d, string)?),
            _ => wit = Some(nullable(d, string)?),
        }
        Some(())
    })?;
    Some(Credential {
        certificate: certificate?,
        workload_id: workload_id?,
        attestation_result: attestation_result.flatten(),
        wit: wit.flatten(),
    })
}

fn error(d: &mut Decoder<'_>) -> Option<ErrorMsg> {
    let (mut code, mut message) = (None, None);
    map(d, 2, &mut |key, d| {
        match key {
            0 => code = Some(error_code(d)?),
            _ => message = Some(string(d)?),
        }
        Some(())
    })?;
    Some(ErrorMsg { code: code?, message: message? })
}

fn key_release(d: &mut Decoder<'_>) -> Option<KeyRelease> {
    let (mut certificate, mut workload_id, mut enc, mut ciphertext) = (None, None, None, None);
    map(d, 4, &mut |key, d| {
        match key {
            0 => certificate = Some(bytes(d)?),
            1 => workload_id = Some(string(d)?),
            2 => enc = Some(bytes(d)?),
            _ => ciphertext = Some(bytes(d)?),
        }
        Some(())
    })?;
    Some(KeyRelease { certificate: certificate?, workload_id: workload_id?, enc: enc?, ciphertext: ciphertext? })
}

fn received(d: &mut Decoder<'_>) -> Option<Received> {
    let (mut id, mut data) = (None, None);
    map(d, 2, &mut |key, d| {
        match key {
            0 => id = Some(u16(d)?),
            _ => data = Some(bytes(d)?),
        }
        Some(())
    })?;
    Some(Received { id: id?, data: data? })
}

/// An integer as the derived decoder reads keys and indices (minicbor's `i64`: any CBOR
/// integer that fits), through the smaller `Decoder::int`.
fn int(d: &mut Decoder<'_>) -> Option<i64> {
    i64::try_from(d.int().ok()?).ok()
}

/// An enum's index, as the derived decoder reads it (any CBOR integer), as a table index.
fn index(d: &mut Decoder<'_>) -> Option<usize> {
    usize::try_from(int(d)?).ok()
}

fn doorbell_kind(d: &mut Decoder<'_>) -> Option<DoorbellKind> {
    use DoorbellKind::*;
    [SnpGuestRequest, TdxGetQuote, TdxReport, TdxRtmrExtend, SnpExtGuestRequest, SvsmCall].get(index(d)?).copied()
}

fn error_code(d: &mut Decoder<'_>) -> Option<ErrorCode> {
    use ErrorCode::*;
    let codes = [
        Malformed,
        UnsupportedVersion,
        UnexpectedMessage,
        VerificationFailed,
        PolicyRejected,
        Internal,
        DoorbellFailed,
        CredentialRejected,
        InvalidTarget,
        UnsupportedType,
        RejectedHint,
    ];
    // The wire values start at 1.
    codes.get(index(d)?.checked_sub(1)?).copied()
}

/// `null` as `None` (as minicbor decodes an `Option`: its one-byte encoding), else `read`'s
/// value.
fn nullable<T>(d: &mut Decoder<'_>, read: fn(&mut Decoder<'_>) -> Option<T>) -> Option<Option<T>> {
    let at = d.position();
    if d.input().get(at) == Some(&NULL) {
        d.set_position(at + 1);
        return Some(None);
    }
    read(d).map(Some)
}

/// CBOR `null` (major type 7, simple value 22).
const NULL: u8 = 0xF6;

/// A boolean, by its byte (as minicbor's `bool` reads it: `false` 0xF4, `true` 0xF5).
fn flag(d: &mut Decoder<'_>) -> Option<bool> {
    let at = d.position();
    let value = match d.input().get(at)? {
        0xF4 => false,
        0xF5 => true,
        _ => return None,
    };
    d.set_position(at + 1);
    Some(value)
}

fn bytes(d: &mut Decoder<'_>) -> Option<Vec<u8>> {
    d.bytes().ok().map(<[u8]>::to_vec)
}

fn string(d: &mut Decoder<'_>) -> Option<String> {
    d.str().ok().map(String::from)
}

/// As minicbor's `u16`: any unsigned integer encoding whose value fits.
fn u16(d: &mut Decoder<'_>) -> Option<u16> {
    u16::try_from(d.u64().ok()?).ok()
}

fn u64(d: &mut Decoder<'_>) -> Option<u64> {
    d.u64().ok()
}

/// Skips `count` items.
fn skip(d: &mut Decoder<'_>, count: u64) -> Option<()> {
    let end = skip_items(d.input(), d.position(), usize::try_from(count).ok()?)?;
    d.set_position(end);
    Some(())
}
