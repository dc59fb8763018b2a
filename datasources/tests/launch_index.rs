//! Launch index (issue 13): parts of a `#cloud-config-archive`, MIME parts and cloud-config
//! documents may say which instance of a group they are for; as cloud-init's launch-index
//! filter, a datasource with a launch index (ConfigDrive) keeps only the parts for it and those
//! that name none, and one without (MAAS, NoCloud) keeps them all.

use std::io::Write;

use wisp_datasources::userdata::{decode, DecodeOptions, PartKind};
use wisp_datasources::Metadata;

const ARCHIVE: &str = r##"#cloud-config-archive
- type: text/cloud-config
  launch-index: 0
  content: |
    #cloud-config
    hostname: zero
- type: text/cloud-config
  launch-index: 1
  content: |
    #cloud-config
    hostname: one
- content: |
    #!/bin/sh
    echo everyone
- filename: only-one.sh
  launch-index: '1'
  content: |
    #!/bin/sh
    echo one
- |
  #cloud-config
  launch-index: 2
  timezone: UTC
"##;

fn decode_for(index: Option<i64>, doc: &[u8]) -> wisp_datasources::userdata::Decoded {
    decode(
        doc,
        "user-data",
        &DecodeOptions {
            launch_index: index,
            ..Default::default()
        },
    )
}

fn scripts(d: &wisp_datasources::userdata::Decoded) -> Vec<(String, Option<i64>)> {
    d.parts
        .iter()
        .filter(|p| p.kind == PartKind::Script)
        .map(|p| (p.name.clone(), p.launch_index))
        .collect()
}

#[test]
fn without_a_launch_index_every_part_is_kept_and_carries_its_own() {
    let d = decode_for(None, ARCHIVE.as_bytes());
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    // Merged in order: the last hostname wins, all of them are there.
    assert_eq!(d.cloud_config["hostname"], "one");
    assert_eq!(d.cloud_config["timezone"], "UTC");
    let indexes: Vec<Option<i64>> = d.parts.iter().map(|p| p.launch_index).collect();
    assert_eq!(indexes, [Some(0), Some(1), None, Some(1), Some(2)]);
}

#[test]
fn with_a_launch_index_only_its_parts_and_the_unmarked_ones_are_kept() {
    let d = decode_for(Some(1), ARCHIVE.as_bytes());
    assert_eq!(d.cloud_config["hostname"], "one");
    assert!(d.cloud_config.get("timezone").is_none());
    assert_eq!(
        scripts(&d),
        [
            ("part-003".to_string(), None),
            ("only-one.sh".to_string(), Some(1))
        ]
    );
    let left_out: Vec<&str> = d.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(left_out.len(), 2, "{left_out:?}");
    assert!(left_out[0].contains("launch-index 0 is not this instance's (1)"));

    let d = decode_for(Some(0), ARCHIVE.as_bytes());
    assert_eq!(d.cloud_config["hostname"], "zero");
    assert_eq!(scripts(&d), [("part-003".to_string(), None)]);
}

#[test]
fn mime_headers_and_gzip_parts_carry_the_index_and_the_header_wins() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"#!/bin/sh\necho gz\n").unwrap();
    let gz = gz.finish().unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&gz);
    let doc = format!(
        "Content-Type: multipart/mixed; boundary=XX\nMIME-Version: 1.0\n\n\
         --XX\nContent-Type: text/cloud-config\nLaunch-Index: 3\n\n\
         #cloud-config\nlaunch-index: 5\nhostname: three\n\
         --XX\nContent-Type: application/gzip\nContent-Transfer-Encoding: base64\n\
         Launch-Index: 4\nContent-Disposition: attachment; filename=\"four.sh\"\n\n{b64}\n\
         --XX--\n"
    );
    let d = decode_for(Some(3), doc.as_bytes());
    assert_eq!(d.cloud_config["hostname"], "three");
    assert!(scripts(&d).is_empty(), "{:?}", d.parts);
    let d = decode_for(Some(4), doc.as_bytes());
    assert!(d.cloud_config.get("hostname").is_none());
    assert_eq!(scripts(&d), [("four.sh".to_string(), Some(4))]);
    // The document's own key (5) does not count where the header (3) says otherwise.
    let d = decode_for(Some(5), doc.as_bytes());
    assert!(d.cloud_config.get("hostname").is_none());
}

#[test]
fn only_config_drive_has_a_launch_index() {
    let md = |ds: &str, meta: serde_json::Value| Metadata {
        datasource: ds.into(),
        meta_data: meta,
        ..Default::default()
    };
    let j = serde_json::json!({"launch_index": 2});
    assert_eq!(md("ConfigDrive", j.clone()).launch_index(), Some(2));
    assert_eq!(
        md("ConfigDrive", serde_json::json!({"launch_index": "7"})).launch_index(),
        Some(7)
    );
    assert_eq!(
        md("ConfigDrive", serde_json::json!({})).launch_index(),
        None
    );
    assert_eq!(md("MAAS", j.clone()).launch_index(), None);
    assert_eq!(md("NoCloud", j).launch_index(), None);
}
