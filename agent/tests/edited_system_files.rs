//! System files wisp edits (rc.conf, sshd_config) rather than rewrites: one it cannot read
//! safely — a link, as in NanoBSD's `/conf` layouts — is refused with its name, never replaced
//! by a file holding only wisp's own lines.

use std::path::Path;

mod common;

fn write_doc(dir: &Path, doc: &str) -> std::path::PathBuf {
    let p = dir.join("user-data");
    std::fs::write(&p, doc).unwrap();
    p
}

fn is_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p)
        .unwrap()
        .file_type()
        .is_symlink()
}

#[test]
fn linked_rc_conf_and_sshd_config_keep_their_lines() {
    let t = common::fresh_root();
    let r = t.path();
    let rc = "sshd_enable=\"YES\"\nifconfig_em0=\"DHCP\"\n";
    let sshd = "Port 22\nSubsystem sftp /usr/libexec/sftp-server\n";
    std::fs::remove_file(r.join("etc/rc.conf")).unwrap();
    std::fs::write(r.join("etc/rc.conf.real"), rc).unwrap();
    std::os::unix::fs::symlink("rc.conf.real", r.join("etc/rc.conf")).unwrap();
    std::fs::create_dir_all(r.join("etc/ssh")).unwrap();
    std::fs::write(r.join("etc/ssh/sshd_config.real"), sshd).unwrap();
    std::os::unix::fs::symlink("sshd_config.real", r.join("etc/ssh/sshd_config")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ud = write_doc(
        dir.path(),
        "#cloud-config\nusers: []\nssh_pwauth: true\nntp:\n  servers: [ntp.example.org]\n",
    );
    let o = common::apply("freebsd", r, &[], &ud, None);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for link in ["etc/rc.conf", "etc/ssh/sshd_config"] {
        assert!(is_link(&r.join(link)), "{link} replaced: {out}");
    }
    assert_eq!(
        std::fs::read_to_string(r.join("etc/rc.conf.real")).unwrap(),
        rc
    );
    assert_eq!(
        std::fs::read_to_string(r.join("etc/ssh/sshd_config.real")).unwrap(),
        sshd
    );
    assert!(
        out.contains(
            "error: ssh: ssh_pwauth: not set: /etc/ssh/sshd_config is a symbolic link: refused"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "error: ntp: ntpd_enable: not enabled: /etc/rc.conf is a symbolic link: refused"
        ),
        "{out}"
    );
    // The rest is still applied: ntp.conf is written whole.
    assert!(std::fs::read_to_string(r.join("etc/ntp.conf"))
        .unwrap()
        .contains("server ntp.example.org iburst"));
    assert_eq!(o.status.code(), Some(2), "{out}");
}

#[test]
fn regular_rc_conf_and_sshd_config_are_edited_in_place() {
    let t = common::fresh_root();
    let r = t.path();
    std::fs::create_dir_all(r.join("etc/ssh")).unwrap();
    std::fs::write(
        r.join("etc/ssh/sshd_config"),
        "Port 22\nSubsystem sftp /usr/libexec/sftp-server\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ud = write_doc(
        dir.path(),
        "#cloud-config\nusers: []\nssh_pwauth: true\nntp:\n  servers: [ntp.example.org]\n",
    );
    let o = common::apply("freebsd", r, &[], &ud, None);
    assert!(o.status.success(), "{o:?}");
    let sshd = std::fs::read_to_string(r.join("etc/ssh/sshd_config")).unwrap();
    assert!(sshd.contains("Subsystem sftp") && sshd.contains("PasswordAuthentication yes"));
    let rc = std::fs::read_to_string(r.join("etc/rc.conf")).unwrap();
    assert!(
        rc.contains("sshd=YES") && rc.contains("ntpd_enable=\"YES\""),
        "{rc}"
    );
}
