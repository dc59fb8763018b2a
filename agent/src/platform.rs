//! The operating systems wisp targets. Everything OS-specific lives in a backend per platform
//! (the cloud-config engine); here is only the name and its detection.

use clap::ValueEnum;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Netbsd,
    Freebsd,
    Openbsd,
    Linux,
}

impl Platform {
    /// The running OS, if wisp supports it.
    pub fn detect() -> Option<Platform> {
        match std::env::consts::OS {
            "netbsd" => Some(Platform::Netbsd),
            "freebsd" => Some(Platform::Freebsd),
            "openbsd" => Some(Platform::Openbsd),
            "linux" => Some(Platform::Linux),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Platform::Netbsd => "netbsd",
            Platform::Freebsd => "freebsd",
            Platform::Openbsd => "openbsd",
            Platform::Linux => "linux",
        }
    }
}
