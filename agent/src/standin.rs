//! MAAS ≥ 3.1 appends checks to custom images (maasserver's
//! `get_custom_image_dependency_validation`): `curtin in-target -- bash -c 'cloud-init
//! --version || …'`, and for an Ubuntu base image also `netplan info`. curtin runs them chrooted
//! into the partition holding `curtin/` — on a BSD image the FAT EFI partition, where there is
//! no bash, so every deployment would fail. The static Linux wisp on that partition, copied as
//! `bin/bash`, answers exactly those checks, says what it is, and refuses anything else.

/// Handles a run under another name; `None` when wisp was run as itself.
pub fn dispatch(argv0: &str, args: &[String]) -> Option<u8> {
    let name = argv0.rsplit('/').next().unwrap_or(argv0);
    match name {
        "bash" | "sh" => Some(shell(args)),
        "cloud-init" | "netplan" => Some(check(name)),
        _ => None,
    }
}

fn check(tool: &str) -> u8 {
    outln!(
        "{tool}: answered by wisp {} (the BSD image's first-boot agent); the image configures itself at first boot",
        env!("CARGO_PKG_VERSION")
    );
    0
}

/// `bash -c '<tool> <args> || (…)'` for the two checks MAAS runs; nothing else.
fn shell(args: &[String]) -> u8 {
    if let [flag, script] = args {
        if flag == "-c" {
            let first = script.split_whitespace().collect::<Vec<_>>();
            match first.as_slice() {
                ["cloud-init", "--version", ..] => return check("cloud-init"),
                ["netplan", "info", ..] => return check("netplan"),
                _ => {}
            }
        }
    }
    eprintln!("bash: this is wisp standing in for MAAS's custom-image checks, not a shell");
    127
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn answers_maas_s_checks_and_nothing_else() {
        let maas = "cloud-init --version || (echo \"cloud-init not detected, MAAS will not be able to configure this machine properly\" && exit 1)";
        assert_eq!(dispatch("/bin/bash", &s(&["-c", maas])), Some(0));
        assert_eq!(
            dispatch("bash", &s(&["-c", "netplan info || (echo x && exit 1)"])),
            Some(0)
        );
        assert_eq!(dispatch("/usr/bin/cloud-init", &s(&["--version"])), Some(0));
        assert_eq!(dispatch("bash", &s(&["-c", "rm -rf /"])), Some(127));
        assert_eq!(dispatch("bash", &s(&["script.sh"])), Some(127));
        assert_eq!(dispatch("/usr/local/sbin/wisp", &s(&["init"])), None);
    }
}
