use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};

use super::*;
use crate::tests::Rng;

#[test]
fn members_are_read_by_name_as_their_text() {
    let text = br#" { "sub" : "spiffe://td/w", "n": -12.5e+3, "cnf": {"jwk": {"crv":"P-384"}}, "a": [1, "x", null, true, {}] } "#;
    let object = Object::parse(text).unwrap();
    assert_eq!(object.string("sub"), Ok(Some("spiffe://td/w")));
    assert_eq!(object.member("n"), Ok(Some(&b"-12.5e+3"[..])));
    assert_eq!(object.member("a"), Ok(Some(&br#"[1, "x", null, true, {}]"#[..])));
    assert_eq!(object.member("absent"), Ok(None));
    let jwk = object.object("cnf").unwrap().unwrap().object("jwk").unwrap().unwrap();
    assert_eq!(jwk.string("crv"), Ok(Some("P-384")));
    assert_eq!(object.string("n"), Err(JsonError), "a number is not a string");
    assert_eq!(object.object("sub").map(|o| o.is_some()), Err(JsonError), "a string is not an object");
    assert_eq!(Object::parse(br#"{"s":"a\"b"}"#).unwrap().string("s"), Err(JsonError), "escaped values are refused");
    assert_eq!(Object::parse(b"{}").unwrap().member("x"), Ok(None));
}

#[test]
fn what_rfc_8259_or_this_reader_refuses_is_refused() {
    let deep_ok = format!("{}1{}", "{\"a\":".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
    assert!(Object::parse(deep_ok.as_bytes()).is_ok());
    let too_deep = format!("{}1{}", "{\"a\":".repeat(MAX_DEPTH + 1), "}".repeat(MAX_DEPTH + 1));
    let many: Vec<String> = (0..=MAX_MEMBERS).map(|i| format!("\"k{i}\":{i}")).collect();
    let too_many = format!("{{{}}}", many.join(","));
    let refused: [&[u8]; 26] = [
        b"",
        b"[]",
        b"\"s\"",
        b"1",
        b"{",
        b"{\"a\"}",
        b"{\"a\":}",
        b"{\"a\":1,}",
        b"{,}",
        b"{\"a\":1}x",
        b"{\"a\":01}",
        b"{\"a\":-}",
        b"{\"a\":1.}",
        b"{\"a\":1e}",
        b"{\"a\":.5}",
        b"{\"a\":+1}",
        b"{\"a\":tru}",
        b"{\"a\":nul}",
        b"{\"a\":\"\x01\"}",
        b"{\"a\":\"\\x\"}",
        b"{\"a\":\"\\u12G4\"}",
        b"{\"a\":\"unterminated}",
        b"{\"a\":1,\"a\":2}",
        b"{\"\\u0061\":1}",
        b"{\"a\":\"\xff\"}",
        b"{'a':1}",
    ];
    for text in refused {
        assert_eq!(Object::parse(text).map(|_| ()), Err(JsonError), "{:?}", String::from_utf8_lossy(text));
    }
    assert!(Object::parse(too_deep.as_bytes()).is_err());
    assert!(Object::parse(too_many.as_bytes()).is_err());
    assert!(Object::parse(br#"{"o":{"b":1,"b":2}}"#).is_err(), "repeated names are refused at any depth");
}

/// A random value; strings hold quotes, backslashes, controls and non-ASCII (escaped by
/// serde_json), names only letters (this reader refuses escaped names).
fn value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth >= 4 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => Value::from(rng.next() as i64 >> rng.below(60)),
        3 => Value::from((rng.next() as f64 / 7.0e9) - 1.0e9),
        4 => {
            let alphabet = ['a', 'Z', '"', '\\', '/', '\n', '\u{1}', 'é', '€', '😀', ' '];
            Value::String((0..rng.below(12)).map(|_| alphabet[rng.below(11)]).collect())
        }
        5 => Value::Array((0..rng.below(4)).map(|_| value(rng, depth + 1)).collect()),
        _ => Value::Object(object(rng, depth + 1)),
    }
}

fn object(rng: &mut Rng, depth: usize) -> Map<String, Value> {
    (0..rng.below(6)).map(|i| (format!("k{i}{}", ["", "x", "Yz"][rng.below(3)]), value(rng, depth))).collect()
}

#[test]
fn every_object_serde_json_writes_is_read_with_each_member_as_serde_json_wrote_it() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for _ in 0..3_000 {
        let map = object(&mut rng, 0);
        let text = serde_json::to_vec(&map).unwrap();
        let read = Object::parse(&text).unwrap_or_else(|_| panic!("refused {}", String::from_utf8_lossy(&text)));
        for (name, member) in &map {
            assert_eq!(read.member(name).unwrap(), Some(&serde_json::to_vec(member).unwrap()[..]));
        }
    }
}

#[test]
fn mutated_texts_never_panic_and_nothing_serde_json_refuses_is_accepted() {
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut text = serde_json::to_vec(&object(&mut rng, 0)).unwrap();
        for _ in 0..=rng.below(3) {
            let at = rng.below(text.len() + 1);
            let bytes = b"{}[]\",:.-+eE0 \\u\x7f\x00\xc3";
            let byte = bytes[rng.below(bytes.len())];
            match rng.below(3) {
                0 if at < text.len() => text[at] = byte,
                1 if at < text.len() => {
                    text.remove(at);
                }
                _ => text.insert(at, byte),
            }
        }
        if let Ok(object) = Object::parse(&text) {
            accepted += 1;
            // serde_json also refuses numbers beyond f64 (`1e999`), which the grammar allows and
            // this reader, which never reads a number's value, accepts.
            let serde = serde_json::from_slice::<Value>(&text);
            let beyond_f64 = serde.as_ref().is_err_and(|e| e.to_string().starts_with("number out of range"));
            assert!(
                serde.is_ok_and(|v| v.is_object()) || beyond_f64,
                "accepted what serde_json refuses: {}",
                String::from_utf8_lossy(&text)
            );
            let _ = (object.member("k0"), object.string("k1"), object.object("k2"));
        }
    }
    assert!(accepted > 1_000, "the mutations left too few valid texts to compare ({accepted})");
}
