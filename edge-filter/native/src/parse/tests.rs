//! Unit tests of the native glue's parsing (what Envoy hands the module).

use std::io::Cursor;

use super::*;

fn pairs<'a>(list: &'a [(&'a [u8], &'a [u8])]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
    list.iter().copied()
}

#[test]
fn request_head_reads_the_first_method_path_and_authorization() {
    let list: [(&[u8], &[u8]); 6] = [
        (b":method", b"POST"),
        (b":path", b"/api/sales/phone-1/orders"),
        (b"authorization", b"Bearer v1.a.1.x"),
        (b":path", b"/second"),
        (b"authorization", b"Bearer second"),
        (b"user-agent", b"curl"),
    ];
    let head = request_head(pairs(&list));
    assert_eq!(head.method, Some("POST"));
    assert_eq!(head.path, Some("/api/sales/phone-1/orders"));
    assert_eq!(head.authorization, Some("Bearer v1.a.1.x"));
    assert!(head.reserved.is_empty());
}

#[test]
fn request_head_collects_every_client_reserved_header_in_any_case() {
    let list: [(&[u8], &[u8]); 4] =
        [(b"x-seckill-uid", b"mallory"), (b"X-Seckill-Edge-Key", b"guess"), (b"x-seckil", b"not ours"), (b":method", b"GET")];
    let head = request_head(pairs(&list));
    assert_eq!(head.reserved, vec![b"x-seckill-uid".to_vec(), b"X-Seckill-Edge-Key".to_vec()]);
    assert_eq!(head.method, Some("GET"));
}

#[test]
fn request_head_reads_a_non_utf8_value_as_absent_and_takes_a_later_valid_one() {
    let list: [(&[u8], &[u8]); 3] = [(b"authorization", b"Bearer \xff\xfe"), (b":path", b"/\xc3"), (b":path", b"/ok")];
    let head = request_head(pairs(&list));
    assert_eq!(head.authorization, None);
    assert_eq!(head.path, Some("/ok"));
}

#[test]
fn request_head_skips_non_utf8_and_multibyte_names_without_panicking() {
    let list: [(&[u8], &[u8]); 3] = [(b"\xffx-seckill-uid", b"a"), ("x-seckill-ü".as_bytes(), b"b"), ("üüüüüüüüüü".as_bytes(), b"c")];
    let head = request_head(pairs(&list));
    // A non-UTF-8 name is skipped; a UTF-8 one with the reserved prefix is still removed.
    assert_eq!(head.reserved, vec!["x-seckill-ü".as_bytes().to_vec()]);
    assert_eq!(head, RequestHead { reserved: head.reserved.clone(), ..RequestHead::default() });
}

#[test]
fn empty_headers_read_as_nothing() {
    assert_eq!(request_head(std::iter::empty()), RequestHead::default());
}

#[test]
fn header_text_and_win_outcomes() {
    assert_eq!(header_text(b"phone-1.42").as_deref(), Some("phone-1.42"));
    assert_eq!(header_text(b"\xff"), None);
    assert!(outcome_is_win("won"));
    assert!(outcome_is_win(" already_won "));
    assert!(!outcome_is_win("sold_out"));
    assert!(!outcome_is_win("wonder"));
}

#[test]
fn filter_config_takes_both_names_and_refuses_any_other() {
    let json = br#"{"ticket_secrets":["s"],"edge_key":"k"}"#;
    let ok = filter_config(FILTER_NAME.as_bytes(), json).expect("valid");
    assert!(!ok.fault);
    assert_eq!(ok.cfg.edge_key, "k");
    assert!(filter_config(FAULT_FILTER_NAME.as_bytes(), json).expect("valid").fault);
    let e = filter_config(b"seckill_edge2\xff", json).expect_err("unknown name");
    assert!(matches!(e, ConfigRefused::UnknownName(_)));
    assert!(e.to_string().contains("seckill_edge2"), "{e}");
}

#[test]
fn filter_config_refuses_bad_json_naming_the_field() {
    let e = filter_config(FILTER_NAME.as_bytes(), br#"{"ticket_secrets":["s"],"edge_key":"k","window_ms":"soon"}"#).expect_err("bad field");
    assert!(e.to_string().contains("window_ms"), "{e}");
    assert!(matches!(filter_config(FILTER_NAME.as_bytes(), b"  "), Err(ConfigRefused::Invalid(_))));
    assert!(matches!(filter_config(FILTER_NAME.as_bytes(), b"\xff{"), Err(ConfigRefused::Invalid(_))));
}

#[test]
fn callout_status_is_the_first_numeric_status() {
    let list: [(&[u8], &[u8]); 3] = [(b"content-type", b"application/json"), (b":status", b" 200 "), (b":status", b"503")];
    assert_eq!(callout_status(pairs(&list)), Some(200));
    let bad: [(&[u8], &[u8]); 2] = [(b":status", b"2OO"), (b":status", b"\xff")];
    assert_eq!(callout_status(pairs(&bad)), None);
    let too_big: [(&[u8], &[u8]); 1] = [(b":status", b"70000")];
    assert_eq!(callout_status(pairs(&too_big)), None);
    assert_eq!(callout_status(std::iter::empty()), None);
}

#[test]
fn callout_body_joins_the_chunks_in_order() {
    let chunks: [&[u8]; 3] = [b"{\"version\":", b"", b"7}"];
    assert_eq!(callout_body(chunks), b"{\"version\":7}".to_vec());
    assert!(callout_body(std::iter::empty()).is_empty());
}

/// A minimal ELF64 little-endian file: section headers (null, .dynsym, .dynstr) and the given
/// symbols, each (name, defined).
fn elf(symbols: &[(&str, bool)]) -> Vec<u8> {
    let mut strs = vec![0u8];
    let mut syms = vec![0u8; 24]; // symbol 0 is the null symbol
    for (name, defined) in symbols {
        let at = u32::try_from(strs.len()).expect("small");
        strs.extend_from_slice(name.as_bytes());
        strs.push(0);
        let mut s = vec![0u8; 24];
        s[0..4].copy_from_slice(&at.to_le_bytes());
        s[6..8].copy_from_slice(&(if *defined { 12u16 } else { 0 }).to_le_bytes());
        syms.extend_from_slice(&s);
    }
    let (sym_off, str_off) = (64u64, 64 + syms.len() as u64);
    let shoff = str_off + strs.len() as u64;
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
    f[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    f[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
    f.extend_from_slice(&syms);
    f.extend_from_slice(&strs);
    let section = |kind: u32, off: u64, size: u64, link: u32| {
        let mut h = vec![0u8; 64];
        h[4..8].copy_from_slice(&kind.to_le_bytes());
        h[0x18..0x20].copy_from_slice(&off.to_le_bytes());
        h[0x20..0x28].copy_from_slice(&size.to_le_bytes());
        h[0x28..0x2c].copy_from_slice(&link.to_le_bytes());
        h
    };
    f.extend_from_slice(&section(0, 0, 0, 0));
    f.extend_from_slice(&section(11, sym_off, syms.len() as u64, 2));
    f.extend_from_slice(&section(3, str_off, strs.len() as u64, 0));
    f
}

#[test]
fn callback_symbols_lists_the_defined_callbacks_only() {
    let f = elf(&[
        ("envoy_dynamic_module_callback_log", true),
        ("envoy_dynamic_module_callback_http_get_header", false),
        ("main", true),
        ("envoy_dynamic_module_callback_http_set_header", true),
    ]);
    let names = callback_symbols(&mut Cursor::new(f)).expect("parses");
    assert_eq!(names, vec![b"envoy_dynamic_module_callback_log".to_vec(), b"envoy_dynamic_module_callback_http_set_header".to_vec()]);
}

#[test]
fn callback_symbols_refuses_what_is_not_a_whole_elf64() {
    let good = elf(&[("envoy_dynamic_module_callback_log", true)]);
    assert!(callback_symbols(&mut Cursor::new(b"#!/bin/sh\n".to_vec())).is_err());
    assert!(callback_symbols(&mut Cursor::new(Vec::new())).is_err());
    // Every truncation of a valid file is an error, never a panic.
    for len in 0..good.len() {
        assert!(callback_symbols(&mut Cursor::new(good[..len].to_vec())).is_err(), "truncated to {len}");
    }
    // Section headers claimed far past the end are refused before anything is allocated for them.
    let mut far = good.clone();
    far[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(callback_symbols(&mut Cursor::new(far)).is_err());
    let mut huge = good;
    huge[0x3a..0x3c].copy_from_slice(&u16::MAX.to_le_bytes());
    huge[0x3c..0x3e].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(callback_symbols(&mut Cursor::new(huge)).is_err());
}
