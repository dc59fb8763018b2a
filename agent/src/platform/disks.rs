//! Where the root file system lives, for `growpart`: the mount table, then the partition table
//! of the disk that holds it, read from the OS's own read-only tools (`mount`, `gpart show`,
//! `dkctl`, `gpt show`). The tools' output is parsed here; on the running system the tools are
//! run, under `--disks FILE` their outputs are taken from the file (fake roots, image tests),
//! and never are the host's disks probed for a fake root.

use std::collections::BTreeMap;

use super::Platform;

/// The most a tool's output (or the `--disks` file) may hold: a partition table is a few lines.
const MAX_OUTPUT: usize = 1 << 20;

/// How long a disk tool may run: a hung `gpart` or `dkctl` must not stall the boot.
const PROBE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The output of `argv` run on this system (no shell), bounded in size and in time
/// ([`crate::runner`]): a tool still running after `limit` is killed (its process group), and
/// that is an error.
fn host_output(argv: &[&str], limit: std::time::Duration) -> Result<String, String> {
    let line = argv.join(" ");
    let owned: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
    let ran = crate::runner::run(
        &owned,
        &[],
        None,
        &crate::runner::Limits {
            time: Some(limit),
            keep: MAX_OUTPUT,
        },
    )
    .map_err(|e| format!("`{line}`: {e}"))?;
    let Some(status) = ran.status else {
        return Err(format!(
            "`{line}`: still running after {} s: killed",
            limit.as_secs_f64()
        ));
    };
    if ran.stdout_len > MAX_OUTPUT {
        return Err(format!("`{line}`: more than {MAX_OUTPUT} bytes of output"));
    }
    if !status.success() {
        return Err(format!("`{line}` failed ({status})"));
    }
    Ok(String::from_utf8_lossy(&ran.stdout).into_owned())
}

/// Free space after the root partition below this many sectors (1 MiB of 512-byte sectors)
/// is alignment slack, not room to grow: the partition fills the disk.
pub const MIN_GROWTH_SECTORS: u64 = 2048;

/// Where tool outputs come from.
pub enum Probe {
    /// The running system: the tools are run (argv, no shell).
    Host,
    /// Outputs given for each command line (`--disks FILE`).
    Fixture(BTreeMap<String, String>),
}

impl Probe {
    /// The output of `argv`, run without a shell or taken from the fixture.
    pub fn output(&self, argv: &[&str]) -> Result<String, String> {
        let line = argv.join(" ");
        match self {
            Probe::Fixture(map) => map
                .get(&line)
                .cloned()
                .ok_or_else(|| format!("`{line}`: no output for it in the --probes file")),
            Probe::Host => host_output(argv, PROBE_LIMIT),
        }
    }

    /// A `--disks` file: a YAML map of command line to its output, or one such map per OS
    /// (`netbsd:`, `freebsd:`, `openbsd:`, `linux:`), of which `platform`'s is taken.
    pub fn from_file(path: &std::path::Path, platform: Platform) -> Result<Probe, String> {
        use std::io::Read;
        let name = path.display();
        let file = std::fs::File::open(path).map_err(|e| format!("--disks {name}: {e}"))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("--disks {name}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("--disks {name}: not a regular file"));
        }
        // Bounded whatever the size said: the file may grow while it is read.
        let mut raw = Vec::new();
        file.take(MAX_OUTPUT as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(|e| format!("--disks {name}: {e}"))?;
        if raw.len() > MAX_OUTPUT {
            return Err(format!("--disks {name}: larger than {MAX_OUTPUT} bytes"));
        }
        let text = String::from_utf8(raw).map_err(|_| format!("--disks {name}: not UTF-8 text"))?;
        // The one bounded YAML reader (nesting and node budget), as for every YAML text.
        let v: yaml_serde::Value = wisp_datasources::userdata::yaml::from_str(&text)
            .map_err(|e| format!("--disks {name}: {e}"))?;
        let yaml_serde::Value::Mapping(m) = v else {
            return Err(format!(
                "--disks {name}: must be a map of command line to its output"
            ));
        };
        let per_os = !m.is_empty()
            && m.keys()
                .all(|k| matches!(k.as_str(), Some("netbsd" | "freebsd" | "openbsd" | "linux")));
        let m = if per_os {
            match m.get(platform.name()) {
                Some(yaml_serde::Value::Mapping(inner)) => inner.clone(),
                _ => return Err(format!("--disks {name}: no map for {}", platform.name())),
            }
        } else {
            m
        };
        let mut out = BTreeMap::new();
        for (k, v) in &m {
            match (k.as_str(), v.as_str()) {
                (Some(k), Some(v)) => {
                    out.insert(k.to_string(), v.to_string());
                }
                _ => {
                    return Err(format!(
                        "--disks {name}: each entry is a command line and its output as text"
                    ))
                }
            }
        }
        Ok(Probe::Fixture(out))
    }
}

/// The device and file system type mounted on `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootMount {
    pub device: String,
    pub fstype: String,
}

/// FreeBSD's `mount -p`: fstab(5) lines, `device mountpoint type options dump pass`.
pub fn parse_mount_p(text: &str) -> Option<RootMount> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 3 && f[1] == "/").then(|| RootMount {
            device: f[0].to_string(),
            fstype: f[2].to_string(),
        })
    })
}

/// NetBSD's and OpenBSD's `mount`: `device on mountpoint type fstype (options)`.
pub fn parse_mount(text: &str) -> Option<RootMount> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 5 && f[1] == "on" && f[2] == "/" && f[3] == "type").then(|| RootMount {
            device: f[0].to_string(),
            fstype: f[4].to_string(),
        })
    })
}

/// A line of the mount table as `mount` (no arguments) prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounted {
    pub device: String,
    pub point: String,
    pub fstype: String,
}

impl Mounted {
    /// A FAT file system: NetBSD's and OpenBSD's `msdos`, FreeBSD's `msdosfs`, Linux's
    /// `vfat`.
    pub fn is_fat(&self) -> bool {
        matches!(self.fstype.as_str(), "msdos" | "msdosfs" | "vfat")
    }
}

/// At most this many mount table lines are looked at.
const MAX_MOUNTS: usize = 1024;

/// The mount table as each system's `mount` prints it: `device on point type fstype (options)`
/// on NetBSD, OpenBSD and Linux, `device on point (fstype, options)` on FreeBSD. A mount point
/// may hold blanks, so a line is read from its right end (the options, then the type); a
/// point that holds ` type `, ` (` or ` on ` itself could be read more than one way, and its
/// line is skipped.
pub fn parse_mount_table(text: &str) -> Vec<Mounted> {
    text.lines()
        .take(MAX_MOUNTS)
        .filter_map(parse_mount_line)
        .collect()
}

fn parse_mount_line(line: &str) -> Option<Mounted> {
    let (device, rest) = line.split_once(" on ")?;
    if device.is_empty() || device.contains(char::is_whitespace) {
        return None;
    }
    let (head, options) = match rest.strip_suffix(')').and_then(|r| r.rsplit_once(" (")) {
        Some((head, options)) => (head, Some(options)),
        None => (rest, None),
    };
    let one_word = |w: &str| !w.is_empty() && !w.contains(char::is_whitespace);
    let (point, fstype) = match head.rsplit_once(" type ") {
        Some((point, fstype)) if one_word(fstype) => (point, fstype),
        // FreeBSD: the type is the options' first item.
        _ => (head, options?.split(',').next()?.trim()),
    };
    if !point.starts_with('/')
        || !one_word(fstype)
        || [" type ", " (", " on "].iter().any(|s| point.contains(s))
    {
        return None;
    }
    Some(Mounted {
        device: device.to_string(),
        point: point.to_string(),
        fstype: fstype.to_string(),
    })
}

/// One partition of a table, in sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub index: u32,
    /// The provider name (FreeBSD `vtbd0p2`); empty where the tool shows none (NetBSD).
    pub name: String,
    pub start: u64,
    pub size: u64,
}

/// A disk's partition table as the OS's tool shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    pub disk: String,
    /// `GPT`, `MBR`, …
    pub scheme: String,
    /// The backup GPT is not at the end of the disk (the image was written to a larger one):
    /// it must be moved there before a partition can use the new space.
    pub backup_misplaced: bool,
    pub parts: Vec<Part>,
    /// Free areas `(start, size)`.
    pub free: Vec<(u64, u64)>,
}

/// Where a partition stands in its table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Room {
    /// No partition after it; this many free sectors follow it (the backup GPT moved to the
    /// end of the disk first, when it is misplaced).
    Last { free: u64 },
    /// `next` starts after it: it cannot grow.
    NotLast { next: String },
}

impl Table {
    /// Where the partition that starts at `start` stands, if there is one.
    pub fn room(&self, start: u64) -> Option<(Part, Room)> {
        let p = self.parts.iter().find(|p| p.start == start)?.clone();
        if let Some(next) = self
            .parts
            .iter()
            .filter(|q| q.start > p.start)
            .min_by_key(|q| q.start)
        {
            let next = if next.name.is_empty() {
                format!("partition {}", next.index)
            } else {
                next.name.clone()
            };
            return Some((p, Room::NotLast { next }));
        }
        let end = p.start.saturating_add(p.size);
        let free = self
            .free
            .iter()
            .filter(|(s, _)| *s >= end)
            .map(|(_, n)| *n)
            .sum();
        Some((p, Room::Last { free }))
    }
}

fn num(s: &str) -> Option<u64> {
    s.parse().ok()
}

/// FreeBSD's `gpart show -p DISK` (geom_part's format): a header line
/// `=>  first  count  disk  SCHEME  (size) [CORRUPT]`, then one line per partition
/// `start  size  provider  type  (size)` and per free area `start  size  - free -  (size)`.
/// A GPT marked CORRUPT has lost its backup (the disk grew): `gpart recover` rewrites it at
/// the end, and only then does the new space show as free.
pub fn parse_gpart_show(text: &str) -> Result<Table, String> {
    let mut table: Option<Table> = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let Some(header) = line.trim_start().strip_prefix("=>") {
            if table.is_some() {
                break; // the next disk's table
            }
            // `=>` and the first sector may touch: the number is padded to the widest.
            let h: Vec<&str> = header.split_whitespace().collect();
            if h.len() < 4 {
                return Err(format!("gpart show: unexpected header: {line}"));
            }
            table = Some(Table {
                disk: h[2].to_string(),
                scheme: h[3].to_string(),
                backup_misplaced: line.contains("[CORRUPT]"),
                ..Default::default()
            });
            continue;
        }
        let Some(t) = table.as_mut() else { continue };
        if f.len() < 3 {
            continue;
        }
        let (Some(start), Some(size)) = (num(f[0]), num(f[1])) else {
            return Err(format!("gpart show: unexpected line: {line}"));
        };
        if f[2] == "-" && f.get(3) == Some(&"free") {
            t.free.push((start, size));
            continue;
        }
        let name = f[2];
        let index = name
            .strip_prefix(t.disk.as_str())
            .map(|r| r.trim_start_matches(|c: char| c.is_ascii_alphabetic()))
            .and_then(|r| r.parse().ok())
            .or_else(|| name.parse().ok())
            .ok_or_else(|| format!("gpart show: partition {name} is not on {}", t.disk))?;
        t.parts.push(Part {
            index,
            name: name.to_string(),
            start,
            size,
        });
    }
    // A CORRUPT table shows no free space past its old end until it is recovered.
    table.ok_or_else(|| "gpart show: no partition table".to_string())
}

/// FreeBSD's `glabel status`: `Name  Status  Components` lines; the provider under `label`.
pub fn parse_glabel_status(text: &str, label: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 3 && f[0] == label).then(|| f[2].to_string())
    })
}

/// A NetBSD wedge (`dkctl dkN getwedgeinfo`): `dkN at PARENT: NAME` then
/// `dkN: SIZE blocks at OFFSET, type: TYPE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wedge {
    pub parent: String,
    pub offset: u64,
    pub size: u64,
}

pub fn parse_wedgeinfo(text: &str) -> Result<Wedge, String> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let parent = first
        .split_once(" at ")
        .and_then(|(_, rest)| rest.split_once(':'))
        .map(|(p, _)| p.trim().to_string())
        .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
        .ok_or_else(|| format!("dkctl getwedgeinfo: unexpected line: {first}"))?;
    let second = lines.next().unwrap_or_default();
    let f: Vec<&str> = second.split_whitespace().collect();
    match f.as_slice() {
        [_, size, "blocks", "at", offset, ..] => Ok(Wedge {
            parent,
            size: num(size).ok_or_else(|| format!("dkctl getwedgeinfo: size {size}"))?,
            offset: num(offset.trim_end_matches(','))
                .ok_or_else(|| format!("dkctl getwedgeinfo: offset {offset}"))?,
        }),
        _ => Err(format!("dkctl getwedgeinfo: unexpected line: {second}")),
    }
}

/// NetBSD's `gpt show DISK`: a `start size index contents` header, then one line per area:
/// `PMBR`, `Pri GPT header`, `Pri GPT table`, `Unused`, `GPT part - TYPE` (with its index),
/// `Sec GPT table`, `Sec GPT header`. A disk that grew under its image has space after the
/// secondary header, or none found: `gpt resizedisk` moves it to the end first.
pub fn parse_gpt_show(text: &str, disk: &str) -> Result<Table, String> {
    let mut t = Table {
        disk: disk.to_string(),
        scheme: "GPT".into(),
        ..Default::default()
    };
    let mut header = false;
    let mut last_contents = String::new();
    let mut sec_header = false;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() == Some(&"start") {
            header = true;
            continue;
        }
        if !header || f.len() < 2 {
            continue;
        }
        let (Some(start), Some(size)) = (num(f[0]), num(f[1])) else {
            return Err(format!("gpt show: unexpected line: {line}"));
        };
        // Older gpt(8) leaves the contents of an unused area blank.
        let (index, contents) = match f.get(2).and_then(|s| num(s)) {
            Some(i) => (Some(i), f[3..].join(" ")),
            None if f.len() == 2 => (None, "Unused".to_string()),
            None => (None, f[2..].join(" ")),
        };
        if contents.starts_with("GPT part") {
            let index = index
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| format!("gpt show: a partition with no index: {line}"))?;
            t.parts.push(Part {
                index,
                name: String::new(),
                start,
                size,
            });
        } else if contents == "Unused" {
            t.free.push((start, size));
        } else if contents.starts_with("MBR") {
            t.scheme = "MBR".into();
        }
        sec_header |= contents == "Sec GPT header";
        last_contents = contents;
    }
    if !header {
        return Err("gpt show: no table".into());
    }
    t.backup_misplaced = t.scheme == "GPT" && (!sec_header || last_contents != "Sec GPT header");
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_tables_of_each_system() {
        let freebsd = "/dev/vtbd0p2 on / (ufs, local, soft-updates)\n\
                       devfs on /dev (devfs)\n\
                       /dev/gpt/efiboot0 on /boot/efi (msdosfs, local)\n";
        let m = parse_mount_table(freebsd);
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[2],
            Mounted {
                device: "/dev/gpt/efiboot0".into(),
                point: "/boot/efi".into(),
                fstype: "msdosfs".into()
            }
        );
        assert!(m[2].is_fat() && !m[0].is_fat() && m[1].fstype == "devfs");
        let netbsd =
            "/dev/dk1 on / type ffs (log, local)\n/dev/dk0 on /boot/efi type msdos (local)\n";
        let m = parse_mount_table(netbsd);
        assert_eq!(
            (m[1].device.as_str(), m[1].point.as_str()),
            ("/dev/dk0", "/boot/efi")
        );
        assert!(m[1].is_fat());
        let linux = "/dev/vda15 on /boot/efi type vfat (rw,relatime,fmask=0077)\nnonsense\n";
        let m = parse_mount_table(linux);
        assert_eq!(m.len(), 1);
        assert!(m[0].is_fat());
    }

    /// Last review (5): mount points with blanks are read from the right; a point that holds
    /// the table's own words is skipped, not misread.
    #[test]
    fn mount_points_with_blanks() {
        let m = parse_mount_table(
            "/dev/dk3 on /mnt/my stick type msdos (local)\n\
             /dev/da0s1 on /media/USB DISK (msdosfs, local, nosuid)\n\
             /dev/sdb1 on /media/a b type vfat (rw,nosuid)\n",
        );
        let read: Vec<(&str, &str, &str)> = m
            .iter()
            .map(|m| (m.device.as_str(), m.point.as_str(), m.fstype.as_str()))
            .collect();
        assert_eq!(
            read,
            [
                ("/dev/dk3", "/mnt/my stick", "msdos"),
                ("/dev/da0s1", "/media/USB DISK", "msdosfs"),
                ("/dev/sdb1", "/media/a b", "vfat"),
            ]
        );
        // Points that spell the table's own words: no reading is sure, none is made.
        for line in [
            "/dev/da0s1 on /media/x type msdos y (msdosfs, local)",
            "/dev/da0s1 on /media/x (msdosfs, y (ufs, local)",
            "/dev/dk3 on /mnt/a on b type msdos (local)",
            "/dev/dk3 on /mnt/a (b type msdos (local)",
        ] {
            assert_eq!(parse_mount_table(line), [], "{line}");
        }
    }

    #[test]
    fn a_hung_tool_is_killed_and_named() {
        let start = std::time::Instant::now();
        let e = host_output(&["sleep", "30"], std::time::Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("sleep 30") && e.contains("killed"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(
            host_output(&["echo", "gpt"], PROBE_LIMIT).as_deref(),
            Ok("gpt\n")
        );
    }

    #[test]
    fn a_disks_file_must_be_a_regular_file() {
        // /dev/zero: endless, and its size says 0.
        let e = Probe::from_file(std::path::Path::new("/dev/zero"), Platform::Netbsd)
            .err()
            .unwrap_or_default();
        assert!(
            e.contains("/dev/zero") && e.contains("not a regular file"),
            "{e}"
        );
    }

    /// As `gpart show -p vtbd0` prints a GPT whose backup is at the end: boot, swap, root, and
    /// the free space after.
    const GPART_FREE: &str = "\
=>       40  41942960  vtbd0  GPT  (20G)
         40      1024  vtbd0p1  freebsd-boot  (512K)
       1064   1048576  vtbd0p2  freebsd-swap  (512M)
    1049640   8388608  vtbd0p3  freebsd-ufs  (4.0G)
    9438248  32504752         - free -  (15G)
";

    #[test]
    fn gpart_show_gives_partitions_and_the_free_space_after_the_last() {
        let t = parse_gpart_show(GPART_FREE).unwrap();
        assert_eq!((t.disk.as_str(), t.scheme.as_str()), ("vtbd0", "GPT"));
        assert!(!t.backup_misplaced);
        assert_eq!(t.parts.len(), 3);
        let (p, room) = t.room(1049640).unwrap();
        assert_eq!((p.index, p.name.as_str()), (3, "vtbd0p3"));
        assert_eq!(room, Room::Last { free: 32504752 });
        let (_, room) = t.room(1064).unwrap();
        assert_eq!(
            room,
            Room::NotLast {
                next: "vtbd0p3".into()
            }
        );
        assert!(t.room(7).is_none());
    }

    #[test]
    fn a_corrupt_gpt_means_the_disk_grew_under_the_image() {
        let t = parse_gpart_show(
            "=>      40  4194224  ada0  GPT  (20G) [CORRUPT]\n        40  4194224  ada0p1  freebsd-ufs  (2.0G)\n",
        )
        .unwrap();
        assert!(t.backup_misplaced);
        let (_, room) = t.room(40).unwrap();
        assert_eq!(room, Room::Last { free: 0 });
        let t = parse_gpart_show(
            "=>34  4194270  ada0  GPT  (2.0G)\n  34  4194270  ada0p1  freebsd-ufs  (2.0G)\n",
        )
        .unwrap();
        assert_eq!((t.disk.as_str(), t.parts[0].index), ("ada0", 1));
        assert!(parse_gpart_show("").is_err());
        assert!(parse_gpart_show("=> 1 2\n").is_err());
        assert!(parse_gpart_show("=> 40 9 ada0 GPT (1G)\n x y ada0p1 t\n").is_err());
    }

    #[test]
    fn mount_tables_name_the_root_device() {
        assert_eq!(
            parse_mount_p("/dev/vtbd0p3\t\t/\t\tufs\trw\t1 1\ndevfs\t\t/dev\t\tdevfs\trw\t0 0\n"),
            Some(RootMount {
                device: "/dev/vtbd0p3".into(),
                fstype: "ufs".into()
            })
        );
        assert_eq!(
            parse_mount(
                "/dev/dk1 on / type ffs (log, local)\nkernfs on /kern type kernfs (local)\n"
            ),
            Some(RootMount {
                device: "/dev/dk1".into(),
                fstype: "ffs".into()
            })
        );
        assert_eq!(parse_mount("tmpfs on /tmp type tmpfs (local)\n"), None);
        assert_eq!(
            parse_mount_p("zroot/ROOT/default / zfs rw 0 0\n")
                .unwrap()
                .fstype,
            "zfs"
        );
    }

    #[test]
    fn host_tools_run_without_a_shell_and_failures_are_named() {
        let p = Probe::Host;
        assert_eq!(p.output(&["echo", "a;", "$b"]).unwrap(), "a; $b\n");
        let e = p.output(&["false"]).unwrap_err();
        assert!(e.starts_with("`false` failed"), "{e}");
        let e = p.output(&["/nonexistent/wisp-tool", "x"]).unwrap_err();
        assert!(e.contains("/nonexistent/wisp-tool x"), "{e}");
        // More than the bound is refused, not kept.
        let e = p
            .output(&["head", "-c", "2000000", "/dev/zero"])
            .unwrap_err();
        assert!(e.contains("more than"), "{e}");
        let f = Probe::Fixture(BTreeMap::new());
        assert!(f.output(&["mount"]).unwrap_err().contains("`mount`"));
    }

    #[test]
    fn glabel_status_maps_a_label_to_its_provider() {
        let text = "                                      Name  Status  Components\n\
                    gpt/rootfs     N/A  vtbd0p3\n\
                    gptid/5f1e     N/A  vtbd0p1\n";
        assert_eq!(
            parse_glabel_status(text, "gpt/rootfs").as_deref(),
            Some("vtbd0p3")
        );
        assert_eq!(parse_glabel_status(text, "gpt/none"), None);
    }

    #[test]
    fn netbsd_wedges_name_their_disk_and_offset() {
        let w =
            parse_wedgeinfo("dk1 at wd0: wisp-root\ndk1: 4194304 blocks at 133120, type: ffs\n")
                .unwrap();
        assert_eq!(
            w,
            Wedge {
                parent: "wd0".into(),
                offset: 133120,
                size: 4194304
            }
        );
        assert!(parse_wedgeinfo("").is_err());
        assert!(parse_wedgeinfo("dk1 at ../x: y\ndk1: 1 blocks at 2, type: ffs\n").is_err());
        assert!(parse_wedgeinfo("dk1 at wd0: r\ndk1: many blocks at 2, type: ffs\n").is_err());
    }

    /// `gpt show wd0` of the image written to a 20 GiB disk: the secondary GPT is still where
    /// the image ended, the rest of the disk unused after it.
    const GPT_GROWN: &str = "\
      start      size  index  contents
          0         1         PMBR
          1         1         Pri GPT header
          2        32         Pri GPT table
         34      2014         Unused
       2048    131072      1  GPT part - EFI System
     133120   4194304      2  GPT part - NetBSD FFSv1/FFSv2
    4327424      2015         Unused
    4329439        32         Sec GPT table
    4329471         1         Sec GPT header
    4329472  37613568         Unused
";

    #[test]
    fn gpt_show_finds_the_misplaced_backup_and_the_room_after_the_root() {
        let t = parse_gpt_show(GPT_GROWN, "wd0").unwrap();
        assert!(t.backup_misplaced);
        assert_eq!(t.parts.iter().map(|p| p.index).collect::<Vec<_>>(), [1, 2]);
        let (p, room) = t.room(133120).unwrap();
        assert_eq!(p.index, 2);
        assert_eq!(
            room,
            Room::Last {
                free: 2015 + 37613568
            }
        );
        assert_eq!(
            t.room(2048).unwrap().1,
            Room::NotLast {
                next: "partition 2".into()
            }
        );
        // Grown already: the backup at the end, no room left.
        let full = "  start  size  index  contents\n      0     1         PMBR\n      1     1         Pri GPT header\n      2    32         Pri GPT table\n   2048 41940959   1  GPT part - NetBSD FFSv1/FFSv2\n41943007    32         Sec GPT table\n41943039     1         Sec GPT header\n";
        let t = parse_gpt_show(full, "wd0").unwrap();
        assert!(!t.backup_misplaced);
        assert_eq!(t.room(2048).unwrap().1, Room::Last { free: 0 });
        // gpt(8) of older releases leaves unused areas blank.
        let old = "  start  size  index  contents\n      0     1         PMBR\n   2048  4096      1  GPT part - NetBSD FFSv1/FFSv2\n   6144  9000\n  15144    32         Sec GPT table\n  15176     1         Sec GPT header\n";
        let t = parse_gpt_show(old, "wd0").unwrap();
        assert_eq!(t.room(2048).unwrap().1, Room::Last { free: 9000 });
        assert!(parse_gpt_show("garbage", "wd0").is_err());
        assert!(parse_gpt_show("start size index contents\n x 1 PMBR\n", "wd0").is_err());
    }
}
