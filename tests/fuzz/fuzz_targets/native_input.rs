//! The native build's parsing of what Envoy hands the module (`seckill_edge_native::parse`): the
//! request headers, a response header's value, the filter's name and configuration bytes, a feed
//! callout's status and body chunks, and the ELF symbol table of the Envoy loading it. Any bytes
//! either parse or are refused; never a panic (a panic there is caught, but costs the request a
//! `busy`), and what parses keeps its invariants.
//!
//! Input: the first byte picks the parser; the rest is split at NUL bytes into fields (header
//! names and values alternate; body chunks; filter name then configuration). The ELF parser
//! gets the rest whole. `tests/fuzz/seeds/native_input/` holds a seed for each.
#![no_main]
use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use seckill_edge_native::parse;

fn pairs<'a>(fields: &[&'a [u8]]) -> Vec<(&'a [u8], &'a [u8])> {
    fields.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

fn request_headers(fields: &[&[u8]]) {
    let list = pairs(fields);
    let head = parse::request_head(list.iter().copied());
    for name in &head.reserved {
        let name = std::str::from_utf8(name).expect("reserved names are UTF-8");
        assert!(seckill_core::headers::is_reserved(name), "{name:?} is not reserved");
    }
    let reserved = list.iter().filter(|(k, _)| std::str::from_utf8(k).is_ok_and(seckill_core::headers::is_reserved)).count();
    assert_eq!(head.reserved.len(), reserved, "every reserved header is listed once");
    // Each field is the first UTF-8 value of its header.
    for (field, name) in [(head.method, ":method"), (head.path, ":path"), (head.authorization, "authorization")] {
        let first = list.iter().filter(|(k, _)| *k == name.as_bytes()).find_map(|(_, v)| std::str::from_utf8(v).ok());
        assert_eq!(field, first, "{name}");
    }
}

fn callout(fields: &[&[u8]]) {
    let list = pairs(fields);
    if let Some(status) = parse::callout_status(list.iter().copied()) {
        let found = list.iter().any(|(k, v)| *k == b":status" && std::str::from_utf8(v).ok().and_then(|v| v.trim().parse().ok()) == Some(status));
        assert!(found, "status {status} is not in the headers");
    }
    let body = parse::callout_body(fields.iter().copied());
    assert_eq!(body, fields.concat());
}

fn response_value(rest: &[u8]) {
    match parse::header_text(rest) {
        Some(text) => {
            assert_eq!(text.as_bytes(), rest);
            let _ = parse::outcome_is_win(&text);
        }
        None => assert!(std::str::from_utf8(rest).is_err()),
    }
}

fn filter_config(fields: &[&[u8]]) {
    let (name, json) = match fields {
        [name, rest @ ..] => (*name, rest.join(&b"\0"[..])),
        [] => (&b""[..], Vec::new()),
    };
    if let Ok(c) = parse::filter_config(name, &json) {
        assert!(c.cfg.validate().is_ok(), "filter_config returned a config that does not validate");
        assert!(name == parse::FILTER_NAME.as_bytes() || name == parse::FAULT_FILTER_NAME.as_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let fields: Vec<&[u8]> = rest.split(|b| *b == 0).collect();
    match which % 5 {
        0 => request_headers(&fields),
        1 => callout(&fields),
        2 => response_value(rest),
        3 => filter_config(&fields),
        _ => {
            if let Ok(names) = parse::callback_symbols(&mut Cursor::new(rest)) {
                assert!(names.iter().all(|n| n.starts_with(parse::CALLBACK_PREFIX)));
            }
        }
    }
});
