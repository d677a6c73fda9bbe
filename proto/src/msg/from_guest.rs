//! The guest's encoder of the [`Message`]s it sends, written out over [`minicbor::Encoder`]
//! (issue 17: the derived encoder, inlined at every send, was about 5 KB of the runtime's ROM).
//!
//! It writes the bytes the derived encoder writes (the tests compare them for every message
//! kind and random messages): `[index, {key: value, …}]`, the keys in order, a `None` field
//! left out, integers in their shortest form, an enum as its wire value (its discriminant).

use alloc::vec::Vec;
use core::convert::Infallible;

use minicbor::Encoder;

use super::{Message, RtmrEvent};

type Result = core::result::Result<(), minicbor::encode::Error<Infallible>>;

/// One field's value.
enum Value<'a> {
    Uint(u64),
    Bool(bool),
    Bytes(&'a [u8]),
    Text(&'a str),
    Events(&'a [RtmrEvent]),
}

use Value::*;

/// `msg` encoded, `None` if only the host sends it.
pub(super) fn encode(msg: &Message) -> Option<core::result::Result<Vec<u8>, minicbor::encode::Error<Infallible>>> {
    let mut e = Encoder::new(Vec::new());
    let (index, fields): (u8, &[Option<Value<'_>>]) = match msg {
        Message::Hello(m) => (
            0,
            &[
                Some(Uint(m.version.into())),
                Some(Uint(m.platform as u64)),
                Some(Uint(m.capabilities.into())),
                Some(Text(&m.runtime)),
            ],
        ),
        Message::DoorbellRequest(m) => (2, &[Some(Uint(m.kind as u64)), Some(Bytes(&m.request))]),
        Message::Evidence(m) => (
            4,
            &[
                Some(Uint(m.platform as u64)),
                Some(Bytes(&m.evidence)),
                Some(Bytes(&m.public_key)),
                Some(Bytes(&m.nonce)),
                m.event_log.as_deref().map(Events),
                bytes(&m.certificates),
                Some(Text(&m.target)),
                bytes(&m.csr),
                bytes(&m.certificates_sha384),
                bytes(&m.evidence_sha384),
            ],
        ),
        Message::Error(m) => (6, &[Some(Uint(m.code as u64)), Some(Text(&m.message))]),
        Message::Done(m) => (7, &[Some(Bool(m.credential_accepted))]),
        Message::Log(m) => (8, &[Some(Text(&m.line))]),
        Message::CredentialRequest(m) => (10, &[Some(Text(&m.ear)), Some(Bytes(&m.public_key)), Some(Bytes(&m.proof))]),
        Message::Connect(m) => (12, &[Some(Uint(m.id.into())), Some(Text(&m.target))]),
        Message::Send(m) => (14, &[Some(Uint(m.id.into())), Some(Bytes(&m.data))]),
        Message::Receive(m) => (15, &[Some(Uint(m.id.into())), Some(Uint(m.max.into()))]),
        Message::Close(m) => (17, &[Some(Uint(m.id.into()))]),
        Message::TimeRequest(_) => (18, &[]),
        Message::Initiate(m) => {
            (20, &[Some(Text(&m.target)), Some(Uint(m.credential_type as u64)), m.hint.as_deref().map(Text)])
        }
        _ => return None,
    };
    Some(message(&mut e, index, fields).map(|()| e.into_writer()))
}

/// An optional byte string.
fn bytes(b: &Option<Vec<u8>>) -> Option<Value<'_>> {
    b.as_deref().map(Bytes)
}

/// `[index, {fields}]`.
fn message(e: &mut Encoder<Vec<u8>>, index: u8, fields: &[Option<Value<'_>>]) -> Result {
    e.array(2)?.u8(index)?;
    map(e, fields)
}

/// A map of the present `fields`, keyed by their positions.
fn map(e: &mut Encoder<Vec<u8>>, fields: &[Option<Value<'_>>]) -> Result {
    e.map(fields.iter().flatten().count() as u64)?;
    for (key, value) in fields.iter().enumerate() {
        if let Some(value) = value {
            e.u8(key as u8)?;
            write(e, value)?;
        }
    }
    Ok(())
}

fn write(e: &mut Encoder<Vec<u8>>, value: &Value<'_>) -> Result {
    match value {
        Uint(n) => e.u64(*n)?,
        Bool(b) => e.bool(*b)?,
        Bytes(b) => e.bytes(b)?,
        Text(s) => e.str(s)?,
        Events(events) => {
            e.array(events.len() as u64)?;
            for event in *events {
                let fields = [
                    Some(Uint(event.rtmr.into())),
                    Some(Uint(event.event_type.into())),
                    Some(Bytes(&event.digest)),
                    Some(Bytes(&event.data)),
                ];
                map(e, &fields)?;
            }
            e
        }
    };
    Ok(())
}
