//! Golden plans: every document of the corpus, planned for every OS, against a fresh root and a
//! root where some of it exists already. `WISP_BLESS=1 cargo test -p wisp --test plans` rewrites
//! the goldens; review the diff before committing it.

use std::path::{Path, PathBuf};

mod common;

const PLATFORMS: &[&str] = &["netbsd", "freebsd", "openbsd", "linux"];

fn dir(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The plan as JSON, with the root's path replaced by `$ROOT` so goldens do not depend on where
/// the repository is.
fn plan(platform: &str, root: &Path, doc: &Path) -> (Option<i32>, String) {
    let o = common::apply(
        platform,
        root,
        &["--dry-run", "--format", "json"],
        doc,
        None,
    );
    let text = String::from_utf8_lossy(&o.stdout)
        .replace(&root.display().to_string(), "$ROOT")
        .replace(&doc.display().to_string(), "$DOC");
    (o.status.code(), text)
}

/// The root `root_name` as `platform` has it: `roots/<root_name>-<platform>` where an OS has
/// files of its own form (NetBSD's and OpenBSD's syslog.conf), else `roots/<root_name>`.
fn root_for(root_name: &str, platform: &str) -> PathBuf {
    let own = dir(&format!("tests/fixtures/roots/{root_name}-{platform}"));
    if own.is_dir() {
        own
    } else {
        dir(&format!("tests/fixtures/roots/{root_name}"))
    }
}

fn check(root_name: &str, cases: &[&str]) {
    let bless = std::env::var_os("WISP_BLESS").is_some();
    let mut failures = Vec::new();
    for case in cases {
        let doc = dir(&format!("tests/fixtures/corpus/{case}.yaml"));
        for platform in PLATFORMS {
            let root = root_for(root_name, platform);
            let (code, got) = plan(platform, &root, &doc);
            assert!(
                matches!(code, Some(0 | 2)),
                "{platform} {case}: exit {code:?}\n{got}"
            );
            let golden = dir(&format!("tests/golden/{platform}/{root_name}/{case}.json"));
            if bless {
                std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
                std::fs::write(&golden, &got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&golden).unwrap_or_default();
            if want != got {
                failures.push(format!(
                    "{}\n--- want\n{want}\n--- got\n{got}",
                    golden.display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden plan(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn fresh_root() {
    check(
        "fresh",
        &[
            "users",
            "cloud-init-docs",
            "no-users-key",
            "users-empty",
            "forms",
            "merged-duplicates",
            "hostile",
            "bsd-bugs",
            "host-and-files",
            "bad-host",
            "passwords",
            "commands",
            "huge",
            "power",
            "power-bad",
            "packages",
            "packages-hostile",
            "phone-home",
        ],
    );
}

#[test]
fn plans_never_show_a_password() {
    let root = dir("tests/fixtures/roots/fresh");
    let doc = dir("tests/fixtures/corpus/passwords.yaml");
    for platform in PLATFORMS {
        for format in ["json", "text"] {
            let o = common::apply(
                platform,
                &root,
                &["--dry-run", "--format", format],
                &doc,
                None,
            );
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            for secret in [
                "DefaultUserPlain1",
                "PlainSecretPw9",
                "RootTextPw7",
                "GhostPw",
                "$2b$10$QmFz",
                "$6$rounds",
                "$1$abc$def",
                "clearly-not-a-hash",
            ] {
                assert!(
                    !all.contains(secret),
                    "{platform} {format}: {secret} shown:\n{all}"
                );
            }
            assert!(
                all.contains("redacted") || format == "text",
                "{platform}: {all}"
            );
        }
    }
}

#[test]
fn plans_never_show_the_phone_home_password() {
    let root = dir("tests/fixtures/roots/fresh");
    let doc = dir("tests/fixtures/corpus/phone-home.yaml");
    for platform in PLATFORMS {
        for format in ["json", "text"] {
            let o = common::apply(
                platform,
                &root,
                &["--dry-run", "--format", format],
                &doc,
                None,
            );
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(!all.contains("s3cret-ph"), "{platform} {format}:\n{all}");
            assert!(
                all.contains("https://<redacted>@hooks.example.org") && !all.contains("deploy:"),
                "{all}"
            );
        }
    }
}

/// An image that carries host keys (the test keys): what each OS deletes, installs and makes.
#[test]
fn image_with_host_keys() {
    check("image-keys", &["image-host-keys", "host-keys"]);
}

/// rsyslog, ca_certs and locale against a root with each system's syslog.conf (NetBSD and
/// OpenBSD in their own forms: `sys-netbsd`, `sys-openbsd`), login.conf, certctl
/// configuration and bundle: the files and tools of each OS, and the named refusals.
#[test]
fn system_files_root() {
    check("sys", &["sys-modules"]);
}

#[test]
fn root_where_users_exist() {
    check("existing", &["users"]);
}

/// The lock after a creation: dropped on Linux, whose useradd leaves the account locked (`!`)
/// unless a password is set in between; kept on the BSDs, whose tools leave `*`, not their lock.
#[test]
fn a_new_account_is_locked_once() {
    let root = dir("tests/fixtures/roots/fresh");
    let t = tempfile::tempdir().unwrap();
    let doc = t.path().join("u.yaml");
    std::fs::write(
        &doc,
        "#cloud-config\nusers:\n  - name: nopw\n  - {name: withpw, plain_text_passwd: 'x-Pw-1'}\n  - {name: open, lock_passwd: false}\n",
    )
    .unwrap();
    let locks = |platform: &str| -> Vec<String> {
        let (plan, _) = common::json_plan(platform, &root, &doc, None);
        let lock = match platform {
            "linux" => "--lock",
            "netbsd" => "-C",
            "freebsd" => "lock",
            _ => "-Z",
        };
        plan["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| {
                a["argv"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|x| x == lock))
            })
            .map(|a| a["item"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(locks("linux"), vec!["withpw"]);
    for bsd in ["netbsd", "freebsd", "openbsd"] {
        assert_eq!(locks(bsd), vec!["nopw", "withpw"], "{bsd}");
    }
}

/// `growpart` for each OS against disk tool outputs standing in for a machine's disks
/// (`--disks`): the growing commands for a root on the last GPT partition of a disk that grew
/// under the image, an error for one that is not last, and nothing once it fills the disk.
#[test]
fn grow_root() {
    let root = dir("tests/fixtures/roots/grow");
    let doc = dir("tests/fixtures/corpus/growpart.yaml");
    let bless = std::env::var_os("WISP_BLESS").is_some();
    let mut failures = Vec::new();
    for disks in ["root-last", "root-not-last", "root-full"] {
        let file = dir(&format!("tests/fixtures/disks/{disks}.yaml"));
        for platform in PLATFORMS {
            let o = common::apply(
                platform,
                &root,
                &[
                    "--dry-run",
                    "--format",
                    "json",
                    "--disks",
                    file.to_str().unwrap(),
                ],
                &doc,
                None,
            );
            let got = String::from_utf8_lossy(&o.stdout)
                .replace(&root.display().to_string(), "$ROOT")
                .replace(&doc.display().to_string(), "$DOC");
            assert!(
                matches!(o.status.code(), Some(0 | 2)),
                "{platform} {disks}: {o:?}"
            );
            let golden = dir(&format!("tests/golden/{platform}/disks/{disks}.json"));
            if bless {
                std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
                std::fs::write(&golden, &got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&golden).unwrap_or_default();
            if want != got {
                failures.push(format!(
                    "{}\n--- want\n{want}\n--- got\n{got}",
                    golden.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The package modules on a root that has some packages already (pkgsrc's and OpenBSD's
/// package directories; FreeBSD's `pkg query` from the `--probes` file): only what is missing
/// is installed, and with everything present no package tool runs at all.
#[test]
fn packages_against_the_installed_ones() {
    let root = dir("tests/fixtures/roots/packages");
    let probes = dir("tests/fixtures/disks/packages.yaml");
    let bless = std::env::var_os("WISP_BLESS").is_some();
    let mut failures = Vec::new();
    for case in ["packages", "packages-present", "packages-hostile"] {
        let doc = dir(&format!("tests/fixtures/corpus/{case}.yaml"));
        for platform in PLATFORMS {
            let o = common::apply(
                platform,
                &root,
                &[
                    "--dry-run",
                    "--format",
                    "json",
                    "--probes",
                    probes.to_str().unwrap(),
                ],
                &doc,
                None,
            );
            let got = String::from_utf8_lossy(&o.stdout)
                .replace(&root.display().to_string(), "$ROOT")
                .replace(&doc.display().to_string(), "$DOC");
            assert!(
                matches!(o.status.code(), Some(0 | 2)),
                "{platform} {case}: {o:?}"
            );
            let plan: serde_json::Value = serde_json::from_str(&got).unwrap();
            let package_actions = plan["actions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["module"] == "package_update_upgrade_install")
                .count();
            if case == "packages-present" {
                assert_eq!(package_actions, 0, "{platform}: {got}");
            } else if *platform != "linux" {
                assert!(package_actions > 0, "{platform}: {got}");
            }
            let golden = dir(&format!("tests/golden/{platform}/packages/{case}.json"));
            if bless {
                std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
                std::fs::write(&golden, &got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&golden).unwrap_or_default();
            if want != got {
                failures.push(format!(
                    "{}\n--- want\n{want}\n--- got\n{got}",
                    golden.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The final stage's order, as cloud-init's cloud_final_modules: the packages first, then the
/// deferred files (which may be the packages' configuration), then runcmd.
#[test]
fn packages_go_before_deferred_files_and_runcmd() {
    let root = dir("tests/fixtures/roots/packages");
    let t = tempfile::tempdir().unwrap();
    let doc = t.path().join("u.yaml");
    std::fs::write(
        &doc,
        "#cloud-config\nusers: []\nruncmd: [[/usr/pkg/bin/jq, --version]]\n\
         write_files: [{path: /usr/pkg/etc/jq.conf, content: x, defer: true}]\n\
         packages: [jq]\n",
    )
    .unwrap();
    for platform in ["netbsd", "openbsd"] {
        let (plan, _) = common::json_plan(platform, &root, &doc, None);
        let actions = plan["actions"].as_array().unwrap();
        let at = |what: &dyn Fn(&serde_json::Value) -> bool| {
            actions
                .iter()
                .position(what)
                .unwrap_or_else(|| panic!("{platform}: {plan}"))
        };
        let install = at(&|a| a["action"] == "install");
        let deferred = at(&|a| a["action"] == "write" && a["path"] == "/usr/pkg/etc/jq.conf");
        let runcmd = at(&|a| a["module"] == "runcmd" && a["action"] == "exec");
        assert!(
            install < deferred && deferred < runcmd,
            "{platform}: {plan}"
        );
    }
}

/// MAAS's real vendor-data for a deployed machine carries its proxy only as a snap command:
/// the package tool gets it from there.
#[test]
fn maas_s_vendor_data_proxy_reaches_the_package_tool() {
    let root = dir("tests/fixtures/roots/packages");
    let t = tempfile::tempdir().unwrap();
    let doc = t.path().join("u.yaml");
    std::fs::write(&doc, "#cloud-config\nusers: []\npackages: [jq]\n").unwrap();
    let vendor = dir("../../shared/fixtures/vendor-data.yaml");
    let (plan, _) = common::json_plan("netbsd", &root, &doc, Some(&vendor));
    let install = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "install")
        .unwrap_or_else(|| panic!("{plan}"));
    let env: Vec<&str> = install["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        [
            "http_proxy=http://10.20.0.2:8000/",
            "HTTP_PROXY=http://10.20.0.2:8000/",
            "https_proxy=http://10.20.0.2:8000/",
            "HTTPS_PROXY=http://10.20.0.2:8000/"
        ],
        "{plan}"
    );
}
