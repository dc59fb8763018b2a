//! packaging/manifest is the one list of what wisp installs: image-hooks/install, cross/build's
//! archives (and so the Packer provisioner, which runs the archive's install), the pkgsrc package
//! and the FreeBSD and OpenBSD ports all agree with it; the ports' Makefiles parse with bmake and
//! name the manifest's files, rc.d scripts and Cargo.lock's crates.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[derive(Debug, Clone)]
struct Row {
    layout: String,
    kind: String,
    path: String,
    mode: String,
    owner: String,
    group: String,
    source: String,
}

fn manifest() -> Vec<Row> {
    read("packaging/manifest")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 7, "packaging/manifest: {l}");
            Row {
                layout: f[0].into(),
                kind: f[1].into(),
                path: f[2].into(),
                mode: f[3].into(),
                owner: f[4].into(),
                group: f[5].into(),
                source: f[6].into(),
            }
        })
        .collect()
}

fn rows(layout: &str) -> Vec<Row> {
    let r: Vec<Row> = manifest()
        .into_iter()
        .filter(|r| r.layout == layout)
        .collect();
    assert!(!r.is_empty(), "no {layout} rows");
    r
}

const IMAGES: [&str; 3] = ["netbsd", "freebsd", "openbsd"];
const PACKAGES: [&str; 3] = ["pkgsrc", "freebsd-port", "openbsd-port"];

#[test]
fn the_manifest_is_well_formed() {
    for r in manifest() {
        assert!(
            IMAGES.contains(&r.layout.as_str()) || PACKAGES.contains(&r.layout.as_str()),
            "{r:?}"
        );
        assert!(
            ["dir", "bin", "rcd", "conf", "man", "file", "line"].contains(&r.kind.as_str()),
            "{r:?}"
        );
        assert!(
            r.mode.len() == 4 && r.mode.chars().all(|c| ('0'..='7').contains(&c)),
            "{r:?}"
        );
        assert_eq!(r.owner, "root", "{r:?}");
        match r.kind.as_str() {
            "dir" => assert_eq!(r.source, "-", "{r:?}"),
            "bin" => assert_eq!(r.source, "@binary", "{r:?}"),
            _ => assert!(repo().join(&r.source).is_file(), "{r:?}: no such source"),
        }
    }
    // An image's parents come before what is in them, and each OS gets each part once.
    for os in IMAGES {
        let rs = rows(os);
        for (i, r) in rs.iter().enumerate() {
            let parent = Path::new(&r.path).parent().unwrap();
            if parent != Path::new("/") {
                assert!(
                    rs[..i]
                        .iter()
                        .any(|p| p.kind == "dir" && Path::new(&p.path) == parent),
                    "{os}: {} before its directory",
                    r.path
                );
            }
        }
        for kind in ["bin", "conf", "man", "rcd"] {
            assert!(rs.iter().any(|r| r.kind == kind), "{os}: no {kind}");
        }
        assert!(
            rs.iter()
                .any(|r| r.source.starts_with("packaging/newsyslog/")),
            "{os}: no newsyslog entry"
        );
    }
}

/// A package's file list as its framework writes it, from its manifest rows.
fn expected_plist(layout: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in rows(layout) {
        let p = r.path.clone();
        match (layout, r.kind.as_str()) {
            // pkgsrc adds RCD_SCRIPTS, the FreeBSD framework USE_RC_SUBR, to the list itself.
            ("pkgsrc" | "freebsd-port", "rcd") => {}
            ("pkgsrc" | "freebsd-port", "dir") => {}
            ("freebsd-port", "man") => {
                out.insert(format!("{p}.gz"));
            }
            ("freebsd-port", "conf") => {
                out.insert(format!("@sample {p}"));
            }
            ("openbsd-port", "rcd") => {
                out.insert(format!("@rcscript {p}"));
            }
            ("openbsd-port", "bin") => {
                out.insert(format!("@bin {p}"));
            }
            ("openbsd-port", "man") => {
                out.insert(format!("@man {p}"));
            }
            ("openbsd-port", "dir") => {
                out.insert(format!("{p}/"));
            }
            ("openbsd-port", "conf") => {
                let name = Path::new(&p).file_name().unwrap().to_str().unwrap();
                out.insert(p.clone());
                out.insert("@sample ${SYSCONFDIR}/wisp/".into());
                out.insert(format!("@sample ${{SYSCONFDIR}}/wisp/{name}"));
            }
            _ => {
                out.insert(p);
            }
        }
    }
    out
}

fn plist_file(layout: &str) -> &'static str {
    match layout {
        "pkgsrc" => "packaging/pkgsrc/sysutils/wisp/PLIST",
        "freebsd-port" => "packaging/freebsd/sysutils/wisp/pkg-plist",
        _ => "packaging/openbsd/sysutils/wisp/pkg/PLIST",
    }
}

#[test]
fn each_package_list_equals_the_manifest() {
    for layout in PACKAGES {
        let text = read(plist_file(layout));
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("@comment"))
            .collect();
        let listed: BTreeSet<String> = lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(lines.len(), listed.len(), "{layout}: a repeated line");
        assert_eq!(listed, expected_plist(layout), "{layout}");
        if layout == "openbsd-port" {
            openbsd_samples_follow_their_examples(&lines);
        }
    }
}

/// OpenBSD's pkg_add copies an `@sample` file from the file listed just before it (pkg_create(1)),
/// and makes an `@sample` directory before the samples in it.
fn openbsd_samples_follow_their_examples(lines: &[&str]) {
    let mut dirs: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(target) = line.strip_prefix("@sample ") else {
            continue;
        };
        if target.ends_with('/') {
            dirs.push(target);
            continue;
        }
        let name = target.rsplit('/').next().unwrap();
        let before = if i > 0 { lines[i - 1] } else { "" };
        assert!(
            before.starts_with("share/examples/") && before.ends_with(&format!("/{name}")),
            "OpenBSD PLIST: {line} must follow its example file, not {before:?}"
        );
        let dir = &target[..target.len() - name.len()];
        assert!(
            dir == "${SYSCONFDIR}/" || dirs.contains(&dir),
            "OpenBSD PLIST: @sample {dir} must come before {line}"
        );
    }
}

#[test]
fn an_openbsd_sample_out_of_place_is_caught() {
    let bad = [
        "share/examples/wisp/wisp.yaml",
        "@sample ${SYSCONFDIR}/wisp/",
        "@sample ${SYSCONFDIR}/wisp/wisp.yaml",
    ];
    assert!(std::panic::catch_unwind(|| openbsd_samples_follow_their_examples(&bad)).is_err());
    let good = [
        "@sample ${SYSCONFDIR}/wisp/",
        "share/examples/wisp/wisp.yaml",
        "@sample ${SYSCONFDIR}/wisp/wisp.yaml",
    ];
    openbsd_samples_follow_their_examples(&good);
}

/// The packages' rc.d scripts are the repository's (the frameworks want them in their own
/// places: pkgsrc files/NAME.sh, FreeBSD files/NAME.in, OpenBSD pkg/NAME.rc), with only the
/// framework's substitutions: the package's own PREFIX first in the binary lookup (pkgsrc's
/// @PREFIX@, FreeBSD's %%PREFIX%%, OpenBSD's ${TRUEPREFIX}) and pkgsrc's @RCD_SCRIPTS_SHELL@.
#[test]
fn the_packages_rc_scripts_are_the_repositorys() {
    let places = "for _wisp in /usr/pkg/sbin/wisp /usr/local/sbin/wisp /usr/sbin/wisp; do";
    let own_first = |prefix: &str| {
        places.replace(
            "for _wisp in ",
            &format!("for _wisp in {prefix}/sbin/wisp "),
        )
    };
    for (layout, copy) in [
        ("pkgsrc", "packaging/pkgsrc/sysutils/wisp/files/{}.sh"),
        (
            "freebsd-port",
            "packaging/freebsd/sysutils/wisp/files/{}.in",
        ),
        ("openbsd-port", "packaging/openbsd/sysutils/wisp/pkg/{}.rc"),
    ] {
        let rcd: Vec<Row> = rows(layout)
            .into_iter()
            .filter(|r| r.kind == "rcd")
            .collect();
        assert!(!rcd.is_empty(), "{layout}");
        for r in rcd {
            let name = Path::new(&r.path).file_name().unwrap().to_str().unwrap();
            let original = read(&r.source);
            let want = match layout {
                "pkgsrc" => {
                    assert!(original.starts_with("#!/bin/sh\n") && original.contains(places));
                    original
                        .replacen("#!/bin/sh\n", "#!@RCD_SCRIPTS_SHELL@\n", 1)
                        .replace(places, &own_first("@PREFIX@"))
                }
                "freebsd-port" => {
                    assert!(original.contains(places));
                    original.replace(places, &own_first("%%PREFIX%%"))
                }
                _ => original.replace("/usr/local", "${TRUEPREFIX}"),
            };
            assert_eq!(read(&copy.replace("{}", name)), want, "{layout}: {name}");
        }
    }
}

fn bmake() -> &'static str {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join("bmake").exists());
    assert!(found, "bmake is needed (tests/run installs Debian's bmake)");
    "bmake"
}

/// The values bmake gives the variables of a port's Makefile, with the framework's own files
/// (bsd.pkg.mk, cargo.mk, bsd.port.mk) stubbed out: the Makefile parses, and says what it says.
fn make_vars(dir: &Path, stubs: &Path, vars: &[&str]) -> Vec<String> {
    let mut cmd = Command::new(bmake());
    cmd.current_dir(dir).arg("-m").arg(stubs);
    // What the framework would set, for the values that use it.
    cmd.args(["PREFIX=/usr/pkg", "PKG_SYSCONFDIR=/usr/pkg/etc/wisp"]);
    for v in vars {
        cmd.arg("-V").arg(format!("${{{v}}}"));
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{}: {}",
        dir.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn lock_crates() -> Vec<String> {
    let lock = read("Cargo.lock");
    let mut out = Vec::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |k: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        if field("source").as_deref()
            == Some("registry+https://github.com/rust-lang/crates.io-index")
        {
            out.push(format!(
                "{}-{}",
                field("name").unwrap(),
                field("version").unwrap()
            ));
        }
    }
    assert!(out.len() > 50, "{}", out.len());
    out
}

/// Each install line of a Makefile, `… ${WRKSRC}/SOURCE DEST`, as (source, dest under PREFIX).
fn install_lines(makefile: &str, dest_prefix: &str) -> Vec<(String, String)> {
    makefile
        .lines()
        .filter(|l| {
            let cmd = l.split_whitespace().next().unwrap_or("");
            cmd.starts_with("${INSTALL_") && !cmd.ends_with("_DIR}")
        })
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = f[f.len() - 1]
                .strip_prefix(dest_prefix)
                .unwrap_or_else(|| panic!("{l}: not under {dest_prefix}"))
                .replace("${PKGMANDIR}", "man");
            // The binary is cargo's (target/release/wisp, or CARGO_TARGET_DIR's).
            let src = match f[f.len() - 2] {
                s if s.ends_with("/release/wisp") => "@binary".to_string(),
                s => s
                    .strip_prefix("${WRKSRC}/")
                    .unwrap_or_else(|| panic!("{l}: not from WRKSRC"))
                    .to_string(),
            };
            (src, dest)
        })
        .collect()
}

#[test]
fn port_makefiles_parse_and_install_what_the_manifest_lists() {
    let t = tempfile::tempdir().unwrap();
    let stubs = t.path().join("mk");
    std::fs::create_dir_all(&stubs).unwrap();
    for f in ["sys.mk", "bsd.port.mk"] {
        std::fs::write(stubs.join(f), "").unwrap();
    }
    // pkgsrc includes its framework by relative path: a tree of stubs around a copy.
    let tree = t.path().join("pkgsrc");
    for d in ["mk", "lang/rust", "sysutils/wisp"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    std::fs::write(tree.join("mk/bsd.pkg.mk"), "").unwrap();
    std::fs::write(tree.join("lang/rust/cargo.mk"), "").unwrap();
    for f in ["Makefile", "cargo-depends.mk"] {
        std::fs::copy(
            repo().join("packaging/pkgsrc/sysutils/wisp").join(f),
            tree.join("sysutils/wisp").join(f),
        )
        .unwrap();
    }
    let crates = lock_crates();
    let rcd_names = |layout: &str| -> String {
        rows(layout)
            .iter()
            .filter(|r| r.kind == "rcd")
            .map(|r| {
                Path::new(&r.path)
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let installed = |layout: &str| -> BTreeSet<(String, String)> {
        rows(layout)
            .into_iter()
            .filter(|r| !["rcd", "dir"].contains(&r.kind.as_str()))
            .map(|r| (r.source, r.path))
            .collect()
    };

    let v = make_vars(
        &tree.join("sysutils/wisp"),
        &stubs,
        &[
            "PKGNAME:U${DISTNAME}",
            "CATEGORIES",
            "LICENSE",
            "RCD_SCRIPTS",
            "CONF_FILES",
            "CARGO_CRATE_DEPENDS",
            "CARGO_WRKSRC",
            "CARGO_ARGS",
            "MAKE_ENV",
            "ONLY_FOR_PLATFORM",
        ],
    );
    assert_eq!(v[0], "wisp-0.1.0");
    assert_eq!(v[1], "sysutils");
    assert_eq!(v[2], "2-clause-bsd");
    assert_eq!(v[3], rcd_names("pkgsrc"));
    let conf = rows("pkgsrc")
        .into_iter()
        .find(|r| r.kind == "conf")
        .unwrap();
    assert_eq!(
        v[4],
        format!("/usr/pkg/{} /usr/pkg/etc/wisp/wisp.yaml", conf.path),
        "CONF_FILES copies the manifest's sample"
    );
    assert_eq!(
        v[5].split_whitespace().collect::<Vec<_>>(),
        crates,
        "pkgsrc crates"
    );
    // cargo.mk's default CARGO_WRKSRC (the workspace root, where print-cargo-depends finds
    // Cargo.lock), the agent chosen by package; the build knows the package's sysconfdir.
    assert_eq!(v[6], "", "CARGO_WRKSRC is cargo.mk's default");
    assert_eq!(
        v[7].split_whitespace().collect::<Vec<_>>(),
        ["build", "--release", "-p", "wisp"],
        "CARGO_ARGS (with cargo.mk's DEFAULT_CARGO_ARGS, empty here)"
    );
    assert!(
        v[8].split_whitespace()
            .any(|e| e == "WISP_SYSCONFDIR=/usr/pkg/etc/wisp"),
        "MAKE_ENV: {}",
        v[8]
    );
    // The rc.d scripts need NetBSD's rc.subr.
    assert_eq!(v[9], "NetBSD-*-*");
    let mk = read("packaging/pkgsrc/sysutils/wisp/Makefile");
    assert_eq!(
        install_lines(&mk, "${DESTDIR}${PREFIX}/")
            .into_iter()
            .collect::<BTreeSet<_>>(),
        installed("pkgsrc")
    );

    let port = repo().join("packaging/freebsd/sysutils/wisp");
    let v = make_vars(
        &port,
        &stubs,
        &[
            "PORTNAME",
            "CATEGORIES",
            "LICENSE",
            "USES",
            "USE_RC_SUBR",
            "CARGO_ENV",
        ],
    );
    assert_eq!(v[..4], ["wisp", "sysutils", "BSD2CLAUSE", "cargo"]);
    assert_eq!(v[4], rcd_names("freebsd-port"));
    assert_eq!(
        v[5], "WISP_SYSCONFDIR=/usr/pkg/etc/wisp",
        "CARGO_ENV (PREFIX=/usr/pkg here)"
    );
    // USES=cargo reads Makefile.crates itself.
    let o = Command::new(bmake())
        .current_dir(&port)
        .arg("-m")
        .arg(&stubs)
        .args(["-f", "Makefile.crates", "-V", "${CARGO_CRATES}"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        crates,
        "FreeBSD crates"
    );
    assert_eq!(
        install_lines(
            &read("packaging/freebsd/sysutils/wisp/Makefile"),
            "${STAGEDIR}${PREFIX}/"
        )
        .into_iter()
        .collect::<BTreeSet<_>>(),
        installed("freebsd-port")
    );

    let port = repo().join("packaging/openbsd/sysutils/wisp");
    let v = make_vars(
        &port,
        &stubs,
        &[
            "CATEGORIES",
            "MODULES",
            "CONFIGURE_STYLE",
            "PERMIT_PACKAGE",
            "MODCARGO_BUILD_ARGS",
            "MODCARGO_INSTALL_ARGS",
            "MODCARGO_CRATES",
        ],
    );
    assert_eq!(v[..4], ["sysutils", "devel/cargo", "cargo", "Yes"]);
    // devel/cargo's `cargo build` and `cargo install`: the agent alone, Cargo.lock's versions.
    assert_eq!(v[4], "--package wisp --locked");
    assert_eq!(v[5], "--locked");
    let pairs: Vec<String> = v[6]
        .split_whitespace()
        .collect::<Vec<_>>()
        .chunks(2)
        .map(|c| c.join("-"))
        .collect();
    assert_eq!(pairs, crates, "OpenBSD crates");
    let mut ob: BTreeSet<(String, String)> = install_lines(
        &read("packaging/openbsd/sysutils/wisp/Makefile"),
        "${PREFIX}/",
    )
    .into_iter()
    .collect();
    // cargo install puts the binary in bin/; the Makefile moves it to the manifest's place.
    assert!(read("packaging/openbsd/sysutils/wisp/Makefile")
        .contains("\tmv ${PREFIX}/bin/wisp ${PREFIX}/sbin/wisp\n"));
    ob.insert(("@binary".into(), "sbin/wisp".into()));
    assert_eq!(ob, installed("openbsd-port"));

    // And the committed lists are what the generator makes of Cargo.lock.
    let o = Command::new("python3")
        .arg(repo().join("packaging/cargo-crates"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn install_script() -> PathBuf {
    repo().join("image-hooks/install")
}

#[test]
fn the_installer_lists_the_manifest() {
    let t = tempfile::tempdir().unwrap();
    for os in IMAGES {
        let o = Command::new("sh")
            .arg(install_script())
            .args(["--os", os, "--manifest", "--binary", "/b/wisp"])
            .arg(t.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8(o.stdout).unwrap();
        let (listed, cpio) = out
            .strip_prefix("# path mode owner\n")
            .unwrap()
            .split_once("# gen_init_cpio\n")
            .unwrap();
        let want: String = rows(os)
            .iter()
            .map(|r| format!("{} {} {}:{}\n", r.path, r.mode, r.owner, r.group))
            .collect();
        assert_eq!(listed, want, "{os}");
        assert!(
            cpio.contains("file /usr/local/sbin/wisp /b/wisp 0555 0 0\n"),
            "{os}: {cpio}"
        );
    }
}

fn tar_list(archive: &Path) -> BTreeSet<String> {
    let o = Command::new("tar")
        .arg("-tf")
        .arg(archive)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.ends_with('/'))
        .map(str::to_string)
        .collect()
}

#[test]
fn each_archive_holds_what_the_manifest_lists_for_its_os() {
    let t = tempfile::tempdir().unwrap();
    let bin = t.path().join("wisp");
    std::fs::write(&bin, "#!/bin/sh\n").unwrap();
    for os in IMAGES {
        let target = format!("x86_64-unknown-{os}");
        let dist = t.path().join(os);
        let o = Command::new("bash")
            .arg(repo().join("cross/build"))
            .args(["package", &target])
            .arg(&bin)
            .env("WISP_DIST", &dist)
            .env("WISP_XZ_LEVEL", "0")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let name = format!("wisp-0.1.0-{target}");
        let mut want: BTreeSet<String> = rows(os)
            .into_iter()
            .filter(|r| !["dir", "bin"].contains(&r.kind.as_str()))
            .map(|r| format!("{name}/{}", r.source))
            .collect();
        for f in [
            "sbin/wisp",
            "LICENSE",
            "packaging/manifest",
            "image-hooks/install",
        ] {
            want.insert(format!("{name}/{f}"));
        }
        // OpenBSD's base has gzip only: its archive is a .tgz.
        let ext = if os == "openbsd" { "tgz" } else { "tar.xz" };
        let archive = dist.join(format!("{name}.{ext}"));
        let magic = std::fs::read(&archive).unwrap()[..2].to_vec();
        assert_eq!(
            magic,
            if os == "openbsd" {
                vec![0x1f, 0x8b]
            } else {
                vec![0xfd, 0x37]
            }
        );
        assert_eq!(tar_list(&archive), want, "{os}");
    }
}

/// The archive names the Packer templates upload are those cross/build writes (OpenBSD's with
/// the release of the template's install ISO, gzipped).
#[test]
fn packer_templates_name_the_archives_cross_build_writes() {
    let t = tempfile::tempdir().unwrap();
    let bin = t.path().join("wisp");
    std::fs::write(&bin, "#!/bin/sh\n").unwrap();
    let written = |target: &str, release: Option<&str>| -> String {
        let dist = t.path().join(format!("{target}{}", release.unwrap_or("")));
        let o = Command::new("bash")
            .arg(repo().join("cross/build"))
            .args(["package", target])
            .arg(&bin)
            .args(release)
            .env("WISP_DIST", &dist)
            .env("WISP_XZ_LEVEL", "0")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let names: Vec<String> = std::fs::read_dir(&dist)
            .unwrap()
            .map(|e| format!("dist/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        names[0].clone()
    };
    let hcl = read("image-hooks/packer/openbsd.pkr.hcl");
    let iso = hcl.split("iso_image    = \"install").nth(1).unwrap();
    let release = format!("{}.{}", &iso[..1], &iso[1..2]);
    assert!(hcl.contains(&format!(
        "default = \"{}\"",
        written("x86_64-unknown-openbsd", Some(&release))
    )));
    let hcl = read("image-hooks/packer/bsd-qemu.pkr.hcl");
    for os in ["netbsd", "freebsd"] {
        let name = written(&format!("x86_64-unknown-{os}"), None);
        assert_eq!(
            name,
            "dist/wisp-0.1.0-x86_64-unknown-${var.os}.tar.xz".replace("${var.os}", os)
        );
    }
    assert!(hcl.contains("source      = \"dist/wisp-0.1.0-x86_64-unknown-${var.os}.tar.xz\""));
    // A release that is not built is refused.
    let o = Command::new("bash")
        .arg(repo().join("cross/build"))
        .args(["package", "x86_64-unknown-openbsd"])
        .arg(&bin)
        .arg("6.0")
        .output()
        .unwrap();
    assert!(!o.status.success());
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn an_image_install_has_every_file_of_the_manifest_and_one_newsyslog_line() {
    if !is_root() {
        eprintln!("skipped: installing with owners needs root (CI has it)");
        return;
    }
    for os in IMAGES {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        let system_line = "/var/log/messages\t644\t10\t250\t*\tZ\n";
        std::fs::write(r.join("etc/newsyslog.conf"), system_line).unwrap();
        for _ in 0..2 {
            let o = Command::new("sh")
                .arg(install_script())
                .args(["--os", os, "--binary"])
                .arg(common::wisp_bin())
                .arg(r)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{os}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        for row in rows(os) {
            let p = r.join(row.path.trim_start_matches('/'));
            let m = std::fs::metadata(&p).unwrap_or_else(|e| panic!("{os}: {}: {e}", row.path));
            match row.kind.as_str() {
                "dir" => assert!(m.is_dir(), "{os}: {}", row.path),
                "line" => {
                    let text = std::fs::read_to_string(&p).unwrap();
                    let line = read(&row.source);
                    assert_eq!(text, format!("{system_line}{line}"), "{os}: appended once");
                }
                _ => {
                    assert_eq!(
                        format!("{:04o}", m.permissions().mode() & 0o7777),
                        row.mode,
                        "{os}: {}",
                        row.path
                    );
                    if row.kind != "bin" {
                        assert_eq!(
                            std::fs::read(&p).unwrap(),
                            std::fs::read(repo().join(&row.source)).unwrap(),
                            "{os}: {}",
                            row.path
                        );
                    }
                }
            }
        }
        if os == "freebsd" {
            assert_eq!(
                std::fs::read_to_string(r.join("etc/newsyslog.conf")).unwrap(),
                system_line,
                "FreeBSD's own file is left alone (newsyslog.conf.d)"
            );
        }
    }
}

/// The rotation entries: /var/log/wisp.log, root-only like the log itself, no rotation notice
/// written into it, and no process to signal where the format has a way to say so (wisp runs
/// briefly and reopens its log each run).
#[test]
fn newsyslog_entries_fit_each_format() {
    // B (all three newsyslogs have it): no "logfile turned over" line in wisp's own log.
    for (os, flags) in [("netbsd", "BNZ"), ("freebsd", "BNZ"), ("openbsd", "BZ")] {
        let text = read(&format!("packaging/newsyslog/{os}.conf"));
        let f: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(text.lines().count(), 1, "{os}");
        assert_eq!(
            f,
            [
                "/var/log/wisp.log",
                "root:wheel",
                "600",
                "5",
                "1024",
                "*",
                flags
            ],
            "{os}"
        );
    }
}

#[test]
fn the_license_is_the_one_cargo_names() {
    assert!(read("Cargo.toml").contains("license = \"BSD-2-Clause\""));
    let l = read("LICENSE");
    assert!(l.starts_with("BSD 2-Clause License\n"));
    assert!(l.contains("Copyright (c) 2026, The wisp authors"));
    assert_eq!(l.matches("Redistributions ").count(), 2, "two clauses");
}

#[test]
fn archives_install_through_their_own_copy_of_the_installer() {
    // provision.sh has no list of its own: it runs the archive's image-hooks/install.
    let p = read("image-hooks/packer/provision.sh");
    assert!(p.contains(
        "sh \"$pkg/image-hooks/install\" --os \"$os\" --binary \"$pkg/sbin/wisp\" \"$root\""
    ));
    assert!(!p.contains("install -m"), "no file list of its own");
}

/// The frameworks fetch crates from crates.io only: a Cargo.lock package from anywhere else
/// (git, another registry) fails the crate lists, naming the package and its source, and
/// nothing is written.
#[test]
fn the_crate_lists_refuse_a_package_not_from_crates_io() {
    let t = tempfile::tempdir().unwrap();
    let committed = read("packaging/pkgsrc/sysutils/wisp/cargo-depends.mk");
    for source in [
        "git+https://github.com/example/forked?branch=main#0123456789abcdef",
        "sparse+https://registry.example.net/index/",
    ] {
        let lock = t.path().join("Cargo.lock");
        std::fs::write(
            &lock,
            format!(
                "{}\n[[package]]\nname = \"forked\"\nversion = \"1.2.3\"\nsource = \"{source}\"\n",
                read("Cargo.lock")
            ),
        )
        .unwrap();
        for check in [true, false] {
            let mut c = Command::new("python3");
            c.arg(repo().join("packaging/cargo-crates"));
            if check {
                c.arg("--check");
            }
            let o = c.arg("--lock").arg(&lock).output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{err}");
            assert!(
                err.contains("package forked 1.2.3") && err.contains(source),
                "{err}"
            );
        }
    }
    assert_eq!(
        read("packaging/pkgsrc/sysutils/wisp/cargo-depends.mk"),
        committed,
        "nothing written"
    );
}

/// A port's rows say the modes its framework installs with, and its Makefile installs each kind
/// of file with the macro that gives that mode. The frameworks' defaults: OpenBSD's
/// bsd.own.mk (BINMODE 555, NONBINMODE 444 for SHAREMODE and MANMODE, DIRMODE 755; @rcscript
/// is installed as a script, BINMODE); FreeBSD's ports (BINMODE 555 and MANMODE 444 from
/// bsd.own.mk, INSTALL_DATA with bsd.port.mk's _SHAREMODE 0644; USE_RC_SUBR as a script).
#[test]
fn each_ports_modes_are_what_its_install_macros_give() {
    for (layout, makefile, bin, man, data, dir) in [
        (
            "openbsd-port",
            "packaging/openbsd/sysutils/wisp/Makefile",
            "0555",
            "0444",
            "0444",
            "0755",
        ),
        (
            "freebsd-port",
            "packaging/freebsd/sysutils/wisp/Makefile",
            "0555",
            "0444",
            "0644",
            "0755",
        ),
    ] {
        let mk = read(makefile);
        for r in rows(layout) {
            let (mode, macro_) = match r.kind.as_str() {
                "bin" => (bin, "${INSTALL_PROGRAM}"),
                "rcd" => (bin, ""),
                "man" => (man, "${INSTALL_MAN}"),
                "conf" | "file" => (data, "${INSTALL_DATA}"),
                "dir" => (dir, "${INSTALL_DATA_DIR}"),
                k => panic!("{layout}: a {k} row"),
            };
            assert_eq!(r.mode, mode, "{layout}: {}", r.path);
            if macro_.is_empty() || r.kind == "bin" && layout == "openbsd-port" {
                // The framework installs it (rc scripts; cargo install's binary, moved).
                continue;
            }
            let line = mk
                .lines()
                .find(|l| {
                    l.split_whitespace()
                        .last()
                        .is_some_and(|d| d.ends_with(&format!("}}/{}", r.path)))
                })
                .unwrap_or_else(|| panic!("{layout}: nothing installs {}", r.path));
            assert!(
                line.trim_start().starts_with(macro_),
                "{layout}: {} is installed with {line:?}, not {macro_}",
                r.path
            );
        }
    }
}
