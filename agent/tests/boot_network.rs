//! The network configuration in the boot: a NoCloud seed with a `network-config`, and
//! `wisp init --stage local` under a fake root of each BSD writes the system's files; the next
//! boot of the same instance writes nothing; a new instance renders again.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FIXTURE: &str = "01-static-single";

fn fixture(p: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/netcfg/"
    ))
    .join(FIXTURE)
    .join(p)
}

/// A fresh root (accounts, rc.conf) with wisp set to the NoCloud seed.
fn fake_root(wisp_yaml: &str) -> tempfile::TempDir {
    let t = common::fresh_root();
    std::fs::create_dir_all(t.path().join("etc/wisp")).unwrap();
    std::fs::write(t.path().join("etc/wisp/wisp.yaml"), wisp_yaml).unwrap();
    t
}

fn seed(root: &Path, instance_id: &str) {
    let dir = root.join("var/db/wisp/seed/nocloud");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("meta-data"),
        format!("instance-id: {instance_id}\n"),
    )
    .unwrap();
    std::fs::copy(fixture("input.yaml"), dir.join("network-config")).unwrap();
}

/// `wisp --platform OS --root ROOT ARGS…`.
fn wisp(root: &Path, os: &str, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["--platform", os, "--root"])
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

/// The local stage, with `nics` standing in for the machine's interfaces.
fn local_stage_with(root: &Path, os: &str, nics: &Path) -> Output {
    let args: Vec<&std::ffi::OsStr> = ["init", "--stage", "local", "--interfaces"]
        .iter()
        .map(|a| a.as_ref())
        .chain([nics.as_os_str()])
        .collect();
    wisp(root, os, &args)
}

fn local_stage(root: &Path, os: &str) -> Output {
    local_stage_with(root, os, &fixture("nics.yaml"))
}

/// The module lines of `wisp status --long`.
fn status_modules(root: &Path, os: &str) -> String {
    let o = wisp(root, os, &["status".as_ref(), "--long".as_ref()]);
    let long = String::from_utf8_lossy(&o.stdout).into_owned();
    long.split("modules:").nth(1).unwrap_or("").to_string()
}

/// The one file each OS's expected set must contain, with its exact content.
fn checked_file(os: &str) -> &'static str {
    match os {
        "netbsd" => "etc/ifconfig.vioif0",
        "openbsd" => "etc/hostname.vio0",
        _ => "etc/resolv.conf",
    }
}

#[test]
fn the_local_stage_renders_once_per_instance() {
    if !fixture("input.yaml").exists() {
        eprintln!("skipped: the shared fixtures are not beside this checkout");
        return;
    }
    for os in ["netbsd", "freebsd", "openbsd"] {
        let t = fake_root("datasource_list: [NoCloud]\n");
        let r = t.path();
        seed(r, "i-1");
        let o = local_stage(r, os);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{os}: {err}");
        let file = checked_file(os);
        let want = std::fs::read_to_string(fixture(&format!("expected/{os}/{file}"))).unwrap();
        assert_eq!(
            std::fs::read_to_string(r.join(file)).unwrap(),
            want,
            "{os}: {file}"
        );
        let resolv =
            std::fs::read_to_string(fixture(&format!("expected/{os}/etc/resolv.conf"))).unwrap();
        assert_eq!(
            std::fs::read_to_string(r.join("etc/resolv.conf")).unwrap(),
            resolv
        );
        // `wisp status --long` shows the module.
        let modules = status_modules(r, os);
        assert!(
            modules
                .lines()
                .any(|l| l.trim_start().starts_with("network ")),
            "{modules}"
        );
        // The same instance again: nothing is written (an operator's edit stays).
        std::fs::write(r.join(file), "edited by the operator\n").unwrap();
        let o = local_stage(r, os);
        assert_eq!(o.status.code(), Some(0), "{os}");
        assert_eq!(
            std::fs::read_to_string(r.join(file)).unwrap(),
            "edited by the operator\n",
            "{os}: a second boot of the same instance rendered again"
        );
        // A redeployment (new instance): rendered again.
        seed(r, "i-2");
        let o = local_stage(r, os);
        assert_eq!(o.status.code(), Some(0), "{os}");
        assert_eq!(std::fs::read_to_string(r.join(file)).unwrap(), want, "{os}");
    }
}

#[test]
fn network_config_disabled_renders_nothing() {
    if !fixture("input.yaml").exists() {
        return;
    }
    let t = fake_root("datasource_list: [NoCloud]\nnetwork: {config: disabled}\n");
    let r = t.path();
    seed(r, "i-1");
    let o = local_stage(r, "netbsd");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!r.join("etc/ifconfig.vioif0").exists());
    assert!(!r.join("etc/resolv.conf").exists());
}

/// What the rc files cannot express degrades the boot and is shown with the network module.
#[test]
fn what_is_not_rendered_is_reported_with_the_module() {
    let case = common::manifest_path("tests/netcfg/15-second-gateway");
    let t = fake_root("datasource_list: [NoCloud]\n");
    let r = t.path();
    let dir = r.join("var/db/wisp/seed/nocloud");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("meta-data"), "instance-id: i-1\n").unwrap();
    std::fs::copy(case.join("input-v2.yaml"), dir.join("network-config")).unwrap();
    let o = local_stage_with(r, "freebsd", &case.join("nics.yaml"));
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let modules = status_modules(r, "freebsd");
    assert!(
        modules
            .lines()
            .any(|l| l.trim_start().starts_with("network ") && l.contains("WARN")),
        "{modules}"
    );
    assert!(modules.contains("default gateway"), "{modules}");
}

/// MAAS's network config (from the curtin hook's seed, merged into the configuration) is keyed
/// by the deployment's credentials: the second boot, which knows the system id from its cache,
/// renders nothing; new credentials (a redeployment) render again.
#[test]
fn the_maas_seeds_network_is_rendered_once_per_deployment() {
    if !fixture("input.yaml").exists() {
        return;
    }
    let input = std::fs::read_to_string(fixture("input.yaml")).unwrap();
    let config = |token: &str| {
        format!(
            "datasource_list: [MAAS]\ndatasource:\n  MAAS:\n    metadata_url: http://127.0.0.1:9/MAAS/metadata/\n    consumer_key: CK\n    token_key: {token}\n    token_secret: TS\n{input}"
        )
    };
    let t = fake_root(&config("TK1"));
    let r = t.path();
    let file = "etc/ifconfig.vioif0";
    let o = local_stage(r, "netbsd");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let want = std::fs::read_to_string(fixture(&format!("expected/netbsd/{file}"))).unwrap();
    assert_eq!(std::fs::read_to_string(r.join(file)).unwrap(), want);
    // The network stage of the first boot cached the system id.
    std::fs::write(
        r.join("var/db/wisp/instance-data.json"),
        r#"{"v1": {"instance_id": "8kq3dx", "local_hostname": "node1.maas", "public_ssh_keys": []}}"#,
    )
    .unwrap();
    std::fs::write(r.join(file), "edited by the operator\n").unwrap();
    let o = local_stage(r, "netbsd");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(r.join(file)).unwrap(),
        "edited by the operator\n",
        "the second boot rendered again"
    );
    // Redeployed: MAAS gave new credentials.
    std::fs::write(r.join("etc/wisp/wisp.yaml"), config("TK2")).unwrap();
    let o = local_stage(r, "netbsd");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read_to_string(r.join(file)).unwrap(), want);
}
