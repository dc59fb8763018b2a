//! A few KB of user-data must not take the boot down: one budget for everything decoded from a
//! document, nesting refused before it is parsed, gzip never silently cut.

use std::io::Write;

use wisp_datasources::userdata::{decode, DecodeOptions, PartKind, MAX_DECODED_BYTES};

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A MIME document of `parts` (content type, base64 body, filename).
fn mime(parts: &[(&str, Vec<u8>, &str)]) -> Vec<u8> {
    let mut out = String::from("Content-Type: multipart/mixed; boundary=XX\nMIME-Version: 1.0\n\n");
    for (ctype, body, name) in parts {
        out.push_str(&format!(
            "--XX\nContent-Type: {ctype}\nContent-Transfer-Encoding: base64\n\
             Content-Disposition: attachment; filename=\"{name}\"\n\n{}\n",
            base64(body)
        ));
    }
    out.push_str("--XX--\n");
    out.into_bytes()
}

#[test]
fn gzip_parts_share_one_total_and_the_rest_is_applied() {
    // Each part is under the per-payload cap (16 MiB) but together they pass the total.
    let mut script = b"#!/bin/sh\n".to_vec();
    script.resize(15 * 1024 * 1024, b'#');
    let bomb = gz(&script);
    assert!(bomb.len() < 64 * 1024, "a few KB of user-data");
    let count = (MAX_DECODED_BYTES / (15 * 1024 * 1024)) as usize + 2;
    let mut parts: Vec<(&str, Vec<u8>, &str)> = (0..count)
        .map(|_| ("application/gzip", bomb.clone(), "bomb.gz"))
        .collect();
    parts.push((
        "text/cloud-config",
        b"#cloud-config\nusers: [{name: alice}]\n".to_vec(),
        "users.cfg",
    ));
    let d = decode(&mime(&parts), "user-data", &DecodeOptions::default());
    let scripts = d
        .parts
        .iter()
        .filter(|p| p.kind == PartKind::Script)
        .count();
    assert!(scripts >= 1 && scripts < count, "{scripts} of {count}");
    let total: usize = d.parts.iter().map(|p| p.size).sum();
    assert!(total as u64 <= MAX_DECODED_BYTES);
    assert!(!d.problems.is_empty());
    for p in &d.problems {
        assert_eq!(p.part, "bomb.gz", "{p:?}");
        assert!(
            p.message.contains(&format!(
                "{MAX_DECODED_BYTES}-byte limit on all decoded user-data"
            )),
            "{p:?}"
        );
    }
    // The part after the refused ones is still applied.
    assert_eq!(d.cloud_config["users"][0]["name"], "alice");
}

#[test]
fn the_total_is_an_option() {
    let mut script = b"#!/bin/sh\n".to_vec();
    script.resize(300 * 1024, b'#');
    let payload = gz(&script);
    let parts = vec![
        ("application/gzip", payload.clone(), "one.gz"),
        ("application/gzip", payload, "two.gz"),
    ];
    let opts = DecodeOptions {
        max_decoded_bytes: 1024 * 1024,
        ..Default::default()
    };
    let d = decode(&mime(&parts), "user-data", &opts);
    assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
    assert_eq!(d.problems[0].part, "two.gz");
    assert!(d.problems[0].message.contains("1048576-byte limit"));
    // What is left is handed on (write_files contents draw from it).
    assert!(d.budget_left < 1024 * 1024 - 300 * 1024);
    assert_eq!(d.budget_total, 1024 * 1024);
}

/// `levels` multipart messages, each the only part of the one around it.
fn nested_mime(levels: usize) -> Vec<u8> {
    let mut inner = String::from("Content-Type: text/x-shellscript\n\n#!/bin/sh\necho deep\n");
    for i in 0..levels {
        inner =
            format!("Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n{inner}\n--b{i}--\n");
    }
    let mut doc = String::from("MIME-Version: 1.0\n");
    doc.push_str(&inner);
    doc.into_bytes()
}

#[test]
fn deep_mime_is_refused_before_it_is_parsed() {
    let doc = nested_mime(8000);
    // A budget the document's own size many times over, but far below what parsing every
    // level would copy (the levels' sizes summed, about levels² × 30 bytes).
    let opts = DecodeOptions {
        max_decoded_bytes: 20 * doc.len() as u64,
        ..Default::default()
    };
    let d = decode(&doc, "user-data", &opts);
    assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
    assert_eq!(d.problems[0].part, "user-data");
    assert!(d.problems[0].message.contains("nest deeper than 8 levels"));
    assert!(d.parts.is_empty());
    // Shallow nesting still works.
    let d = decode(&nested_mime(3), "user-data", &DecodeOptions::default());
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert_eq!(d.parts.len(), 1);
}

#[test]
fn a_cut_gzip_document_is_an_error_not_a_shorter_one() {
    let whole = gz(b"#cloud-config\nhostname: complete\nruncmd: [echo one, echo two]\n");
    let cut = &whole[..whole.len() - 8];
    let d = decode(cut, "user-data", &DecodeOptions::default());
    assert!(d.cloud_config.is_empty());
    assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
    assert!(d.problems[0].message.contains("invalid gzip data"));
}

/// Seconds to decode `doc`.
fn time_decode(doc: &[u8]) -> (f64, wisp_datasources::userdata::Decoded) {
    let start = std::time::Instant::now();
    let d = decode(doc, "user-data", &DecodeOptions::default());
    (start.elapsed().as_secs_f64(), d)
}

#[test]
fn deep_yaml_is_refused_with_its_line_and_cheaply() {
    let deep = |levels: usize| {
        format!(
            "#cloud-config\nhostname: h\nruncmd: {}{}\n",
            "[".repeat(levels),
            "]".repeat(levels)
        )
    };
    let d = decode(deep(65).as_bytes(), "user-data", &DecodeOptions::default());
    assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
    assert_eq!(d.problems[0].part, "part-001");
    assert_eq!(
        d.problems[0].message,
        "user-data: line 3: YAML collections nest deeper than 64 levels"
    );
    // 64 levels (the map is one) are read.
    let d = decode(deep(63).as_bytes(), "user-data", &DecodeOptions::default());
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    // 100,000 levels cost about what 1,000 do (the scan stops at the limit); read in full
    // they cost quadratic time (over a minute).
    let (small, _) = time_decode(deep(1_000).as_bytes());
    let (large, d) = time_decode(deep(100_000).as_bytes());
    assert!(d.problems[0].message.contains("line 3"), "{:?}", d.problems);
    assert!(
        large < 20.0 * small.max(0.02),
        "1,000 levels {small:.3}s, 100,000 levels {large:.3}s"
    );
    // Block nesting counts too.
    let mut block = String::from("#cloud-config\nwrite_files:\n");
    block.push_str(&"- ".repeat(70));
    block.push_str("x\n");
    let d = decode(block.as_bytes(), "user-data", &DecodeOptions::default());
    assert!(
        d.problems[0].message.contains("deeper than 64"),
        "{:?}",
        d.problems
    );
    // And archives.
    let archive = format!(
        "#cloud-config-archive\n{}{}\n",
        "[".repeat(100),
        "]".repeat(100)
    );
    let d = decode(archive.as_bytes(), "user-data", &DecodeOptions::default());
    assert!(
        d.problems[0].message.contains("line 2: YAML"),
        "{:?}",
        d.problems
    );
}

#[test]
fn includes_that_never_answer_share_one_deadline() {
    use std::time::{Duration, Instant};
    use wisp_datasources::http::{HttpClient, HttpOptions};

    // Accepts every connection and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let urls: Vec<String> = (0..16)
        .map(|i| format!("http://127.0.0.1:{port}/include-{i}"))
        .collect();
    let doc = format!("#include\n{}\n", urls.join("\n"));
    let client = HttpClient::new(&HttpOptions::default()).unwrap();
    let opts = DecodeOptions {
        fetcher: Some(&client),
        include_timeout: Duration::from_millis(300),
        includes_deadline: Duration::from_millis(1500),
        ..Default::default()
    };
    let start = Instant::now();
    let d = decode(doc.as_bytes(), "user-data", &opts);
    let took = start.elapsed();
    // 16 × 300 ms would be 4.8 s: the deadline ends it at 1.5 s.
    assert!(took < Duration::from_millis(3000), "{took:?}");
    assert_eq!(d.problems.len(), 16, "{:?}", d.problems);
    for (p, url) in d.problems.iter().zip(&urls) {
        assert!(p.message.starts_with(&format!("#include {url}: ")), "{p:?}");
    }
    let timed_out = d
        .problems
        .iter()
        .filter(|p| p.message.contains("no answer within"))
        .count();
    assert!((4..=6).contains(&timed_out), "{:?}", d.problems);
    assert!(d
        .problems
        .last()
        .unwrap()
        .message
        .contains("for all #include URLs have passed"));
}
