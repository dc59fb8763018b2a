//! Every YAML text wisp reads is bounded before it is parsed: nesting depth and the memory of
//! the parsed tree (issue 16, items 1 and 3).

mod common;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;

/// wisp.yaml of 100,000 levels of `[` is refused at once, naming the file.
#[test]
fn a_deeply_nested_configuration_is_refused_fast() {
    let t = tempfile::tempdir().unwrap();
    let config = t.path().join("wisp.yaml");
    std::fs::write(&config, format!("ntp: {}", "[".repeat(100_000))).unwrap();
    let doc = t.path().join("user-data");
    std::fs::write(&doc, "#cloud-config\nruncmd: [ls]\n").unwrap();
    let start = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["--platform", "netbsd", "--root"])
        .arg(t.path())
        .arg("--config")
        .arg(&config)
        .args(["--dry-run", "apply", "--user-data"])
        .arg(&doc)
        .output()
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains(&config.display().to_string()) && err.contains("nest deeper than 64"),
        "{err}"
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// 15 MiB of `x: [a,a,…]` (7.8 M list elements, a gigabyte as parsed values) gzips to a few
/// KB. Under a 1 GiB address-space limit wisp refuses that part quickly, naming it and the
/// limit, and applies the next part.
#[test]
fn a_huge_flow_list_is_refused_in_bounded_memory_and_the_rest_applied() {
    let root = fresh_root();
    let mut big = String::from("#cloud-config\nx: [");
    big.push_str(&"a,".repeat(15 * 512 * 1024));
    big.push_str("a]\n");
    let packed = base64::engine::general_purpose::STANDARD.encode(gzip(big.as_bytes()));
    drop(big);
    let doc = format!(
        "Content-Type: multipart/mixed; boundary=\"B\"\nMIME-Version: 1.0\n\n--B\n\
         Content-Type: application/gzip\nContent-Transfer-Encoding: base64\n\
         Content-Disposition: attachment; filename=\"big.yaml\"\n\n{packed}\n--B\n\
         Content-Type: text/cloud-config\n\n#cloud-config\nwrite_files:\n  - path: /etc/after-big\n    content: applied\n--B--\n"
    );
    let user_data = root.path().join("user-data.mime");
    std::fs::write(&user_data, doc).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_wisp"));
    c.args(["--platform", "netbsd", "--root"])
        .arg(root.path())
        .arg("--config")
        .arg(manifest_path("tests/fixtures/no-config.yaml"))
        .args(["apply", "--user-data"])
        .arg(&user_data);
    // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let o = c.output().unwrap();
    let took = start.elapsed();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.code().is_some(), "killed: {:?}\n{out}", o.status);
    assert!(took < Duration::from_secs(60), "{took:?}\n{out}");
    assert!(
        out.contains("big.yaml") && out.contains("the parsed YAML would take more than"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(root.path().join("etc/after-big")).unwrap(),
        "applied"
    );
}
