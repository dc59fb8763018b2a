//! Launch index (issue 13): parts of a `#cloud-config-archive`, MIME parts and cloud-config
//! documents may say which instance of a group they are for; as cloud-init's launch-index
//! filter, a datasource whose meta-data has a `launch-index` keeps only the parts for it and
//! those that name none, and one without keeps them all.

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

/// A scratch directory, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(files: &[(&str, &str)]) -> Scratch {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wisp-launch-index-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Review of issue 13 (7): cloud-init's launch index is the meta-data's `launch-index` for
/// every datasource (NoCloud's meta-data too); OpenStack's `launch_index` is not copied to it.
#[test]
fn every_datasource_reads_launch_index_from_its_meta_data() {
    use wisp_datasources::configdrive::ConfigDrive;
    use wisp_datasources::nocloud::NoCloud;
    use wisp_datasources::Datasource;
    let seed = Scratch::new(&[("meta-data", "instance-id: i-1\nlaunch-index: 2\n")]);
    let md = NoCloud::from_dir(&seed.0).fetch_metadata().unwrap();
    assert_eq!(md.launch_index(), Some(2));
    let seed = Scratch::new(&[("meta-data", "instance-id: i-1\nlaunch-index: '3'\n")]);
    let md = NoCloud::from_dir(&seed.0).fetch_metadata().unwrap();
    assert_eq!(md.launch_index(), Some(3));
    let seed = Scratch::new(&[("meta-data", "instance-id: i-1\n")]);
    let md = NoCloud::from_dir(&seed.0).fetch_metadata().unwrap();
    assert_eq!(md.launch_index(), None);

    let md_json = "openstack/latest/meta_data.json";
    let drive = Scratch::new(&[(md_json, r#"{"uuid": "u-1", "launch_index": 2}"#)]);
    let md = ConfigDrive::from_dir(&drive.0).fetch_metadata().unwrap();
    assert_eq!(md.launch_index(), None);
    let drive = Scratch::new(&[(md_json, r#"{"uuid": "u-1", "launch-index": 4}"#)]);
    let md = ConfigDrive::from_dir(&drive.0).fetch_metadata().unwrap();
    assert_eq!(md.launch_index(), Some(4));

    let maas = Metadata {
        datasource: "MAAS".into(),
        meta_data: serde_json::json!({"launch-index": 1}),
        ..Default::default()
    };
    assert_eq!(maas.launch_index(), Some(1));
}

/// Review of issue 13 (9): a multipart container's own `Launch-Index` header does not leave
/// its parts out (cloud-init skips containers and filters only the parts they hold).
#[test]
fn a_containers_launch_index_header_is_not_read() {
    let doc = "Content-Type: multipart/mixed; boundary=XX\nMIME-Version: 1.0\nLaunch-Index: 7\n\n\
         --XX\nContent-Type: text/cloud-config\n\n#cloud-config\nhostname: kept\n\
         --XX\nContent-Type: text/cloud-config\nLaunch-Index: 9\n\n#cloud-config\ntimezone: UTC\n\
         --XX--\n";
    let d = decode_for(Some(1), doc.as_bytes());
    assert_eq!(d.cloud_config["hostname"], "kept");
    assert!(d.cloud_config.get("timezone").is_none());
}
