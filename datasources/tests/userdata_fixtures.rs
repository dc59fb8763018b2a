//! Every user-data format cloud-init accepts, decoded from fixtures.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use wisp_datasources::userdata::{decode, DecodeOptions, Decoded, IncludeFetcher, PartKind};
use yaml_serde::Value;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/userdata")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn y(s: &str) -> Value {
    yaml_serde::from_str(s).unwrap()
}

fn cc(d: &Decoded) -> Value {
    Value::Mapping(d.cloud_config.clone())
}

fn kinds(d: &Decoded) -> Vec<(PartKind, &str)> {
    d.parts.iter().map(|p| (p.kind, p.name.as_str())).collect()
}

struct MapFetcher(HashMap<&'static str, &'static str>);

impl IncludeFetcher for MapFetcher {
    fn fetch(&self, url: &str, _max: u64, _timeout: Duration) -> Result<Vec<u8>, String> {
        self.0
            .get(url)
            .map(|s| s.as_bytes().to_vec())
            .ok_or_else(|| format!("{url}: HTTP 404"))
    }
}

#[test]
fn plain_cloud_config() {
    let d = decode(
        &fixture("cloud-config.txt"),
        "user-data",
        &DecodeOptions::default(),
    );
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert_eq!(kinds(&d), vec![(PartKind::CloudConfig, "part-001")]);
    assert_eq!(
        cc(&d),
        y("{hostname: web1, users: [default, {name: alice, groups: [wheel]}]}")
    );
}

#[test]
fn gzip_is_undone() {
    let d = decode(
        &fixture("cloud-config.txt.gz"),
        "user-data",
        &DecodeOptions::default(),
    );
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert_eq!(cc(&d)["hostname"], y("web1"));
}

#[test]
fn gzip_bomb_is_refused() {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(b"#cloud-config\n").unwrap();
    enc.write_all(&vec![b' '; 2 * 1024 * 1024]).unwrap();
    let gz = enc.finish().unwrap();
    let opts = DecodeOptions {
        max_bytes: 1024 * 1024,
        ..Default::default()
    };
    let d = decode(&gz, "user-data", &opts);
    assert!(d.parts.is_empty());
    assert!(
        d.problems[0].message.contains("expands beyond"),
        "{:?}",
        d.problems
    );
}

#[test]
fn scripts_and_boothooks_are_kept_whole() {
    let d = decode(
        &fixture("script.sh"),
        "user-data",
        &DecodeOptions::default(),
    );
    assert_eq!(kinds(&d), vec![(PartKind::Script, "part-001")]);
    assert_eq!(d.parts[0].content, fixture("script.sh"));
    let d = decode(
        &fixture("boothook.txt"),
        "user-data",
        &DecodeOptions::default(),
    );
    assert_eq!(kinds(&d), vec![(PartKind::Boothook, "part-001")]);
}

#[test]
fn mime_multipart_nested_with_encodings_and_merge_headers() {
    let d = decode(
        &fixture("multipart.txt"),
        "user-data",
        &DecodeOptions::default(),
    );
    assert_eq!(
        kinds(&d),
        vec![
            (PartKind::CloudConfig, "base.cfg"),
            (PartKind::Script, "setup.sh"),
            (PartKind::CloudConfig, "more.cfg"),
            (PartKind::CloudConfig, "part-004"),
        ]
    );
    assert_eq!(d.parts[1].content, b"#!/bin/sh\necho setup\n");
    // more.cfg appends to runcmd (its Merge-Type header); the text/plain part adds ntp.
    assert_eq!(
        cc(&d),
        y("{hostname: mime1, runcmd: [[echo, one], [echo, two]], timezone: UTC, ntp: {servers: [10.0.0.1]}}")
    );
    assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
    assert_eq!(d.problems[0].part, "weird.bin");
    assert!(d.problems[0].message.contains("application/x-frobnicate"));
}

#[test]
fn merge_how_in_the_body_applies_to_that_part() {
    let d = decode(
        &fixture("merge-how.txt"),
        "user-data",
        &DecodeOptions::default(),
    );
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert_eq!(
        cc(&d),
        y("{runcmd: [c], packages: [p1, p2], hostname: later}")
    );
}

#[test]
fn include_fetches_each_url_and_reports_failures() {
    let fetcher = MapFetcher(HashMap::from([
        (
            "http://127.0.0.1:9/one.cfg",
            "#cloud-config\nhostname: included\n",
        ),
        ("http://127.0.0.1:9/two.sh", "#!/bin/sh\necho two\n"),
    ]));
    let opts = DecodeOptions {
        fetcher: Some(&fetcher),
        ..Default::default()
    };
    let d = decode(&fixture("include.txt"), "user-data", &opts);
    assert_eq!(
        kinds(&d),
        vec![
            (PartKind::CloudConfig, "http://127.0.0.1:9/one.cfg"),
            (PartKind::Script, "http://127.0.0.1:9/two.sh"),
        ]
    );
    assert_eq!(cc(&d), y("{hostname: included}"));
    assert_eq!(d.problems.len(), 1);
    assert!(
        d.problems[0].message.contains("/missing"),
        "{:?}",
        d.problems
    );
}

#[test]
fn include_count_is_bounded_and_loops_end() {
    // An include that includes itself.
    let fetcher = MapFetcher(HashMap::from([(
        "http://127.0.0.1:9/self",
        "#include\nhttp://127.0.0.1:9/self\n",
    )]));
    let opts = DecodeOptions {
        fetcher: Some(&fetcher),
        max_includes: 5,
        ..Default::default()
    };
    let d = decode(b"#include\nhttp://127.0.0.1:9/self\n", "user-data", &opts);
    assert!(d.parts.is_empty());
    assert!(
        d.problems
            .iter()
            .any(|p| p.message.contains("more than 5 #include")),
        "{:?}",
        d.problems
    );
}

#[test]
fn include_without_a_fetcher_or_with_a_file_url_is_reported() {
    let d = decode(
        b"#include\nhttp://x/a\n",
        "user-data",
        &DecodeOptions::default(),
    );
    assert!(d.problems[0].message.contains("cannot be fetched"));
    let f = MapFetcher(HashMap::new());
    let opts = DecodeOptions {
        fetcher: Some(&f),
        ..Default::default()
    };
    let d = decode(b"#include\nfile:///etc/shadow\n", "user-data", &opts);
    assert!(
        d.problems[0].message.contains("http(s) URLs only"),
        "{:?}",
        d.problems
    );
}

#[test]
fn cloud_config_archive() {
    let d = decode(
        &fixture("archive.yaml"),
        "user-data",
        &DecodeOptions::default(),
    );
    assert_eq!(
        kinds(&d),
        vec![
            (PartKind::CloudConfig, "part-001"),
            (PartKind::Script, "archived.sh"),
            (PartKind::CloudConfig, "part-003"),
        ]
    );
    assert_eq!(cc(&d), y("{hostname: archived, timezone: Europe/Paris}"));
    // The item without content and the number are reported, by position.
    assert_eq!(d.problems.len(), 2, "{:?}", d.problems);
    assert!(d.problems[0].part.ends_with("[3]"));
    assert!(d.problems[1].part.ends_with("[4]"));
}

#[test]
fn jinja_renders_instance_data() {
    let instance = serde_json::json!({
        "v1": {"local_hostname": "node1.maas", "instance_id": "8kq3dx"},
        "ds": {"meta_data": {"local-hostname": "node1.maas"}}
    });
    let opts = DecodeOptions {
        instance_data: Some(&instance),
        ..Default::default()
    };
    let d = decode(&fixture("jinja.txt"), "user-data", &opts);
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert_eq!(cc(&d)["hostname"], y("node1.maas"));
    assert_eq!(cc(&d)["write_files"][0]["content"], y("8kq3dx node1.maas"));
}

#[test]
fn jinja_statements_are_reported_not_half_rendered() {
    let instance = serde_json::json!({"v1": {}});
    let opts = DecodeOptions {
        instance_data: Some(&instance),
        ..Default::default()
    };
    let d = decode(&fixture("jinja-statement.txt"), "user-data", &opts);
    assert!(d.parts.is_empty());
    assert!(
        d.problems[0].message.contains("not supported"),
        "{:?}",
        d.problems
    );
    // Without instance data at all:
    let d = decode(
        &fixture("jinja.txt"),
        "user-data",
        &DecodeOptions::default(),
    );
    assert!(
        d.problems[0].message.contains("instance data"),
        "{:?}",
        d.problems
    );
}

#[test]
fn a_bad_part_does_not_lose_the_others() {
    let d = decode(
        &fixture("bad-yaml.txt"),
        "user-data",
        &DecodeOptions::default(),
    );
    assert_eq!(cc(&d), y("{hostname: survivor}"));
    assert_eq!(d.problems.len(), 1);
    assert!(
        d.problems[0].message.contains("invalid YAML"),
        "{:?}",
        d.problems
    );
    assert!(d.problems[0].message.contains("line"), "{:?}", d.problems);
}

#[test]
fn unknown_binary_and_wrong_shapes_are_reported() {
    let d = decode(
        &[0x00, 0xff, 0x13, 0x37],
        "user-data",
        &DecodeOptions::default(),
    );
    assert!(d.parts.is_empty());
    assert!(d.problems[0]
        .message
        .starts_with("binary data without a known header"));
    let d = decode(b"just some text\n", "user-data", &DecodeOptions::default());
    assert!(d.problems[0]
        .message
        .starts_with("text without a known header"));
    let d = decode(
        b"#cloud-config\n- a list\n",
        "user-data",
        &DecodeOptions::default(),
    );
    assert!(d.problems[0].message.contains("must be a YAML map"));
    let d = decode(
        b"#part-handler\ndef handle_part(): pass\n",
        "user-data",
        &DecodeOptions::default(),
    );
    assert!(d.problems[0].message.contains("not supported"));
    // Empty user-data is no user-data, not a problem.
    let d = decode(b"", "user-data", &DecodeOptions::default());
    assert!(d.parts.is_empty() && d.problems.is_empty());
    let d = decode(b"#cloud-config\n", "user-data", &DecodeOptions::default());
    assert!(d.problems.is_empty() && d.cloud_config.is_empty());
}

#[test]
fn huge_user_data_is_refused_with_a_clear_error() {
    let opts = DecodeOptions {
        max_bytes: 100,
        ..Default::default()
    };
    let big = format!("#cloud-config\nx: '{}'\n", "a".repeat(200));
    let d = decode(big.as_bytes(), "user-data", &opts);
    assert!(d.parts.is_empty());
    assert!(d.problems[0].message.contains("100-byte limit"));
}

#[test]
fn deep_nesting_is_bounded() {
    let mut doc = b"#cloud-config\nhostname: deep\n".to_vec();
    for _ in 0..20 {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&doc).unwrap();
        doc = enc.finish().unwrap();
    }
    let d = decode(&doc, "user-data", &DecodeOptions::default());
    assert!(d.parts.is_empty());
    assert!(
        d.problems.iter().any(|p| p.message.contains("nest deeper")),
        "{:?}",
        d.problems
    );
}

#[test]
fn maas_vendor_data_fixture_decodes_to_its_cloud_config() {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/vendor-data.yaml");
    let raw = std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the shared/ fixtures sit beside the repository)",
            p.display()
        )
    });
    let value: Value = yaml_serde::from_slice(&raw).unwrap();
    let doc = wisp_datasources::convert_vendor_data(&value, "vendor-data")
        .unwrap()
        .unwrap();
    assert!(doc.starts_with(b"#cloud-config\n"));
    let d = decode(&doc, "vendor-data", &DecodeOptions::default());
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert_eq!(
        cc(&d),
        y(r#"
ntp: {pools: [], servers: [10.20.0.2]}
snap:
  commands:
  - snap set system proxy.http="http://10.20.0.2:8000/" proxy.https="http://10.20.0.2:8000/"
system_info:
  default_user: {gecos: Jane Admin, name: ubuntu}
"#)
    );
}
